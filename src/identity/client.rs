//! `waguard credentials`, the caller's half of the credential exchange: sign an
//! `sts:GetCallerIdentity` request with the AWS identity the caller already has, without
//! sending it to AWS, hand it to the gateway, and print the credentials the gateway issues in
//! the AWS `credential_process` format.
//!
//! <https://docs.aws.amazon.com/cli/latest/userguide/cli-configure-sourcing-external.html>

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_config::meta::region::RegionProviderChain;
use aws_config::provider_config::ProviderConfig;
use aws_credential_types::Credentials;
use aws_credential_types::provider::ProvideCredentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use bytes::Bytes;
use http::Uri;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::RootCertStore;
use rustls_pki_types::CertificateDer;
use rustls_pki_types::pem::PemObject;
use serde::{Deserialize, Serialize};

use super::exchange::{EXCHANGE_PATH, SERVER_ID_HEADER, SignedRequest};
use crate::upstream::error_chain;

/// The one body a GetCallerIdentity request has.
pub const GET_CALLER_IDENTITY_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// The content type the AWS SDKs send Query protocol requests with.
const FORM_CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// The region used when neither `--region`, the environment nor the profile names one.
pub const DEFAULT_REGION: &str = "us-east-1";
/// Time allowed for the whole exchange with the gateway (it calls STS meanwhile).
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest gateway answer read.
const MAX_ANSWER_BYTES: usize = 64 * 1024;
/// Longest error message from the gateway shown.
const MAX_MESSAGE_CHARS: usize = 1024;

/// What `waguard credentials` was asked to do.
#[derive(Debug, Clone, Default)]
pub struct ClientOptions {
    /// The gateway's base URL, e.g. `https://waguard.example.internal`.
    pub gateway: String,
    /// The AWS profile whose credentials prove who the caller is; default: the default chain.
    pub profile: Option<String>,
    pub region: Option<String>,
    /// What to put in `x-waguard-server-id`; default: the gateway URL's host.
    pub server_id: Option<String>,
    /// The STS URL to sign for; default: `AWS_ENDPOINT_URL_STS`, `AWS_ENDPOINT_URL`, else
    /// `https://sts.<region>.amazonaws.com/`.
    pub sts_endpoint: Option<String>,
    /// Extra trust anchors for the gateway's certificate (PEM); default: `AWS_CA_BUNDLE`.
    pub ca_file: Option<PathBuf>,
}

/// Why no credentials were printed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("--gateway {url:?}: {message}")]
    Gateway { url: String, message: String },
    #[error("the STS endpoint {url:?}: {message}")]
    StsEndpoint { url: String, message: String },
    #[error("--server-id {0:?} must be visible ASCII")]
    ServerId(String),
    #[error("no AWS credentials for {source_name}: {message}")]
    NoCredentials {
        source_name: String,
        message: String,
    },
    #[error("signing the GetCallerIdentity request failed: {0}")]
    Sign(String),
    #[error("{path}: {message}")]
    CaFile { path: String, message: String },
    #[error("setting up TLS: {0}")]
    Tls(String),
    #[error("the gateway at {url} could not be reached: {message}")]
    Unreachable { url: String, message: String },
    #[error("the gateway at {url} did not answer within {}s", EXCHANGE_TIMEOUT.as_secs())]
    Timeout { url: String },
    /// The gateway answered with an AWS error.
    #[error("the gateway refused the credential exchange (HTTP {status} {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("the gateway's answer is not credentials: {0}")]
    Answer(String),
}

/// The credentials the gateway issues, in the `credential_process` format (field names and
/// order as AWS documents them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProcessCredentials {
    #[serde(rename = "Version")]
    pub version: u8,
    #[serde(rename = "AccessKeyId")]
    pub access_key_id: String,
    #[serde(rename = "SecretAccessKey")]
    pub secret_access_key: String,
    #[serde(rename = "SessionToken")]
    pub session_token: String,
    #[serde(rename = "Expiration")]
    pub expiration: String,
}

/// Loads the caller's AWS credentials, signs a GetCallerIdentity, exchanges it at the gateway;
/// returns the gateway's credentials.
pub async fn run(options: &ClientOptions) -> Result<ProcessCredentials, ClientError> {
    let gateway = parse_gateway(&options.gateway)?;
    let server_id = match &options.server_id {
        Some(id) => id.clone(),
        None => default_server_id(&gateway),
    };
    if server_id.is_empty() || !server_id.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ClientError::ServerId(server_id));
    }
    let region = resolve_region(options.region.as_deref(), options.profile.as_deref()).await;
    let credentials = load_credentials(options.profile.as_deref(), &region).await?;
    let sts_url = sts_url(&region, options.sts_endpoint.as_deref(), &|name| {
        std::env::var(name).ok()
    })?;
    let signed = sign_get_caller_identity(
        &credentials,
        &region,
        &sts_url,
        &server_id,
        SystemTime::now(),
    )?;
    let ca_file = options
        .ca_file
        .clone()
        .or_else(|| std::env::var_os("AWS_CA_BUNDLE").map(PathBuf::from));
    exchange(&gateway, &signed, ca_file.as_deref()).await
}

/// The gateway URL without a trailing slash; http or https, with a host.
fn parse_gateway(url: &str) -> Result<Uri, ClientError> {
    let fail = |message: &str| ClientError::Gateway {
        url: url.to_string(),
        message: message.to_string(),
    };
    let uri: Uri = url
        .trim_end_matches('/')
        .parse()
        .map_err(|_| fail("not a URL"))?;
    if !matches!(uri.scheme_str(), Some("http" | "https")) || uri.host().is_none() {
        return Err(fail("must be an http:// or https:// URL with a host"));
    }
    if uri.authority().is_some_and(|a| a.as_str().contains('@')) || uri.query().is_some() {
        return Err(fail("must not carry user information or a query"));
    }
    Ok(uri)
}

/// The server id a gateway answers to unless told otherwise: its host name, without the port
/// (and without the brackets of an IPv6 address).
pub fn default_server_id(gateway: &Uri) -> String {
    gateway
        .host()
        .unwrap_or_default()
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_ascii_lowercase()
}

/// `--region`, else the environment (`AWS_REGION`, `AWS_DEFAULT_REGION`), else the profile's
/// `region`, else us-east-1. Never asks the instance metadata service: the region only picks
/// the STS endpoint, and a caller off EC2 should not wait for IMDS to time out.
async fn resolve_region(explicit: Option<&str>, profile: Option<&str>) -> String {
    if let Some(r) = explicit {
        return r.to_string();
    }
    let mut from_profile = aws_config::profile::ProfileFileRegionProvider::builder();
    if let Some(p) = profile {
        from_profile = from_profile.profile_name(p);
    }
    let chain = RegionProviderChain::first_try(
        aws_config::environment::EnvironmentVariableRegionProvider::new(),
    )
    .or_else(from_profile.build());
    chain
        .region()
        .await
        .map(|r| r.to_string())
        .unwrap_or_else(|| DEFAULT_REGION.to_string())
}

/// The caller's own AWS credentials: the named profile's (static keys, SSO, role assumption,
/// credential_process...) or, without one, the default chain's (environment, `AWS_PROFILE` or
/// the default profile, web identity, container, IMDS). With a profile named the environment's
/// keys are not used, as the AWS CLI ignores them under `--profile`.
async fn load_credentials(profile: Option<&str>, region: &str) -> Result<Credentials, ClientError> {
    let region = aws_config::Region::new(region.to_string());
    let provider_config = ProviderConfig::default().with_region(Some(region.clone()));
    let (source_name, result) = match profile {
        Some(name) => {
            let provider = aws_config::profile::ProfileFileCredentialsProvider::builder()
                .configure(&provider_config)
                .profile_name(name)
                .build();
            (
                format!("profile {name:?}"),
                provider.provide_credentials().await,
            )
        }
        None => {
            let provider =
                aws_config::default_provider::credentials::DefaultCredentialsChain::builder()
                    .configure(provider_config)
                    .region(region)
                    .build()
                    .await;
            (
                "the default credential chain".to_string(),
                provider.provide_credentials().await,
            )
        }
    };
    result.map_err(|e| ClientError::NoCredentials {
        source_name,
        message: error_chain(&e),
    })
}

/// The STS URL to sign for: `explicit`, else `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`,
/// else AWS's regional endpoint.
pub fn sts_url(
    region: &str,
    explicit: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ClientError> {
    let configured = explicit
        .map(str::to_string)
        .or_else(|| env("AWS_ENDPOINT_URL_STS"))
        .or_else(|| env("AWS_ENDPOINT_URL"))
        .filter(|u| !u.trim().is_empty());
    let Some(url) = configured else {
        if !crate::auth::is_region_name(region) {
            return Err(ClientError::StsEndpoint {
                url: format!("https://sts.{region}.amazonaws.com/"),
                message: format!("{region:?} is not an AWS region name"),
            });
        }
        return Ok(format!("https://sts.{region}.amazonaws.com/"));
    };
    let fail = |message: &str| ClientError::StsEndpoint {
        url: url.clone(),
        message: message.to_string(),
    };
    let uri: Uri = url.trim().parse().map_err(|_| fail("not a URL"))?;
    let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
        return Err(fail("must be an absolute http:// or https:// URL"));
    };
    if !matches!(scheme, "http" | "https")
        || !matches!(uri.path(), "" | "/")
        || uri.query().is_some()
    {
        return Err(fail(
            "must be http:// or https:// with a host (and port), without a path or query",
        ));
    }
    Ok(format!("{scheme}://{authority}/"))
}

/// Signs GetCallerIdentity for `sts_url` the way the AWS SDKs do, with the server id header
/// among the signed headers so the signature is good for this one gateway only.
pub fn sign_get_caller_identity(
    credentials: &Credentials,
    region: &str,
    sts_url: &str,
    server_id: &str,
    time: SystemTime,
) -> Result<SignedRequest, ClientError> {
    let fail = |e: &dyn std::fmt::Display| ClientError::Sign(e.to_string());
    let uri: Uri = sts_url.parse().map_err(|e| fail(&e))?;
    let host = uri
        .authority()
        .map(|a| a.as_str().to_string())
        .ok_or_else(|| ClientError::Sign(format!("{sts_url} has no host")))?;
    let mut headers: BTreeMap<String, String> = BTreeMap::new();
    headers.insert("content-type".into(), FORM_CONTENT_TYPE.into());
    headers.insert("host".into(), host);
    headers.insert(SERVER_ID_HEADER.into(), server_id.into());
    let identity: Identity = credentials.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| fail(&e))?
        .into();
    let signable = SignableRequest::new(
        "POST",
        sts_url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(GET_CALLER_IDENTITY_BODY.as_bytes()),
    )
    .map_err(|e| fail(&e))?;
    let (instructions, _signature) = sign(signable, &params).map_err(|e| fail(&e))?.into_parts();
    for (name, value) in instructions.headers() {
        headers.insert(name.to_ascii_lowercase(), value.to_string());
    }
    Ok(SignedRequest {
        method: "POST".into(),
        url: sts_url.into(),
        headers,
        body: GET_CALLER_IDENTITY_BODY.into(),
    })
}

/// Trust anchors for the gateway: webpki's, the platform's, and `ca_file`'s.
fn tls_config(ca_file: Option<&Path>) -> Result<rustls::ClientConfig, ClientError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // Platform roots are a bonus (corporate CAs); their absence is fine.
    for cert in rustls_native_certs::load_native_certs().certs {
        let _ = roots.add(cert);
    }
    if let Some(path) = ca_file {
        let fail = |message: String| ClientError::CaFile {
            path: path.display().to_string(),
            message,
        };
        let pem = std::fs::read(path).map_err(|e| fail(e.to_string()))?;
        let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(&pem)
            .collect::<Result<_, _>>()
            .map_err(|e| fail(e.to_string()))?;
        if certs.is_empty() {
            return Err(fail("the file has no CERTIFICATE blocks".into()));
        }
        for cert in certs {
            roots.add(cert).map_err(|e| fail(e.to_string()))?;
        }
    }
    Ok(rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| ClientError::Tls(e.to_string()))?
    .with_root_certificates(roots)
    .with_no_client_auth())
}

/// Posts the signed request to the gateway and reads the credentials it answers with.
pub async fn exchange(
    gateway: &Uri,
    signed: &SignedRequest,
    ca_file: Option<&Path>,
) -> Result<ProcessCredentials, ClientError> {
    let base = gateway.to_string();
    let url = format!("{}{EXCHANGE_PATH}", base.trim_end_matches('/'));
    let unreachable = |message: String| ClientError::Unreachable {
        url: base.clone(),
        message,
    };
    let document = serde_json::to_vec(signed).map_err(|e| ClientError::Sign(e.to_string()))?;
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls_config(ca_file)?)
        .https_or_http()
        .enable_http1()
        .enable_http2()
        .wrap_connector(http);
    let client = Client::builder(TokioExecutor::new()).build(connector);
    let request = http::Request::post(&url)
        .header(http::header::CONTENT_TYPE, "application/json")
        .header(http::header::ACCEPT, "application/json")
        .header(
            http::header::USER_AGENT,
            concat!("waguard-credentials/", env!("CARGO_PKG_VERSION")),
        )
        .body(Full::new(Bytes::from(document)))
        .map_err(|e| unreachable(e.to_string()))?;
    let answer = async {
        let response = client
            .request(request)
            .await
            .map_err(|e| unreachable(error_chain(&e)))?;
        let (parts, body) = response.into_parts();
        let body = Limited::new(body, MAX_ANSWER_BYTES)
            .collect()
            .await
            .map_err(|e| unreachable(format!("reading the answer: {e}")))?
            .to_bytes();
        Ok::<_, ClientError>((parts, body))
    };
    let (parts, body) = tokio::time::timeout(EXCHANGE_TIMEOUT, answer)
        .await
        .map_err(|_| ClientError::Timeout { url: base.clone() })??;
    if !parts.status.is_success() {
        return Err(refusal(parts.status, &parts.headers, &body));
    }
    let credentials: ProcessCredentials = serde_json::from_slice(&body)
        .map_err(|e| ClientError::Answer(format!("HTTP {}: {e}", parts.status.as_u16())))?;
    if credentials.version != 1
        || credentials.access_key_id.is_empty()
        || credentials.secret_access_key.is_empty()
        || credentials.session_token.is_empty()
        || credentials.expiration.is_empty()
    {
        return Err(ClientError::Answer(
            "Version 1 with AccessKeyId, SecretAccessKey, SessionToken and Expiration expected"
                .into(),
        ));
    }
    Ok(credentials)
}

/// An AWS restJson error answer as a [`ClientError::Refused`]: the code from
/// `x-amzn-ErrorType` or `__type` (without the `:namespace` or `#` parts AWS adds), the message
/// from `Message` / `message`, cut short and reduced to printable characters.
fn refusal(status: http::StatusCode, headers: &http::HeaderMap, body: &[u8]) -> ClientError {
    let json: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
    let clean_code = |c: &str| {
        let c = c.split(':').next().unwrap_or_default();
        c.rsplit('#').next().unwrap_or_default().to_string()
    };
    let code = headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(clean_code)
        .or_else(|| json["__type"].as_str().map(clean_code))
        .filter(|c| !c.is_empty() && c.len() <= 128 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
        .unwrap_or_else(|| "UnknownError".into());
    let message = json["Message"]
        .as_str()
        .or_else(|| json["message"].as_str())
        .map(str::to_string)
        .unwrap_or_else(|| String::from_utf8_lossy(body).into_owned());
    let message: String = message
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .take(MAX_MESSAGE_CHARS)
        .collect();
    ClientError::Refused {
        status: status.as_u16(),
        code,
        message: message.trim().to_string(),
    }
}

/// The credentials as one `credential_process` line.
pub fn to_line(credentials: &ProcessCredentials) -> Result<String, ClientError> {
    serde_json::to_string(credentials).map_err(|e| ClientError::Answer(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::identity::ExchangeRules;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE00000001",
            "client-secret-0000000001",
            token.map(str::to_string),
            None,
            "t",
        )
    }

    #[test]
    fn the_signed_request_passes_the_gateways_check() {
        let now = SystemTime::now();
        let rules = ExchangeRules {
            server_id: "waguard.example.internal".into(),
            sts_endpoint: None,
        };
        for token in [None, Some("session-token-from-sso")] {
            for region in ["us-east-1", "eu-west-1"] {
                let url = sts_url(region, None, &|_| None).unwrap();
                let signed = sign_get_caller_identity(
                    &creds(token),
                    region,
                    &url,
                    "waguard.example.internal",
                    now,
                )
                .unwrap();
                assert_eq!(signed.body, GET_CALLER_IDENTITY_BODY);
                assert_eq!(
                    signed
                        .headers
                        .get("x-amz-security-token")
                        .map(String::as_str),
                    token
                );
                let req = rules.check(&signed, now).unwrap();
                assert_eq!(req.uri().to_string(), url);
            }
        }
    }

    #[test]
    fn a_configured_sts_endpoint_is_signed_for_and_passes() {
        let now = SystemTime::now();
        let rules = ExchangeRules {
            server_id: "localhost".into(),
            sts_endpoint: Some("http://127.0.0.1:4566".parse().unwrap()),
        };
        let url = sts_url("us-east-1", Some("http://127.0.0.1:4566"), &|_| None).unwrap();
        assert_eq!(url, "http://127.0.0.1:4566/");
        let signed =
            sign_get_caller_identity(&creds(None), "us-east-1", &url, "localhost", now).unwrap();
        assert_eq!(signed.headers["host"], "127.0.0.1:4566");
        rules.check(&signed, now).unwrap();
    }

    #[test]
    fn the_sts_endpoint_comes_from_the_flag_then_the_environment() {
        let env = |name: &str| match name {
            "AWS_ENDPOINT_URL_STS" => Some("https://sts.vpce.example:8443".to_string()),
            "AWS_ENDPOINT_URL" => Some("https://everything.example".to_string()),
            _ => None,
        };
        assert_eq!(
            sts_url("eu-west-1", Some("http://x:1/"), &env).unwrap(),
            "http://x:1/"
        );
        assert_eq!(
            sts_url("eu-west-1", None, &env).unwrap(),
            "https://sts.vpce.example:8443/"
        );
        let only_global = |name: &str| {
            (name == "AWS_ENDPOINT_URL").then(|| "https://everything.example".to_string())
        };
        assert_eq!(
            sts_url("eu-west-1", None, &only_global).unwrap(),
            "https://everything.example/"
        );
        assert_eq!(
            sts_url("eu-west-1", None, &|_| None).unwrap(),
            "https://sts.eu-west-1.amazonaws.com/"
        );
        assert!(sts_url("not a region", None, &|_| None).is_err());
        assert!(sts_url("us-east-1", Some("https://x/path"), &|_| None).is_err());
    }

    #[test]
    fn the_server_id_defaults_to_the_gateway_host() {
        for (url, id) in [
            (
                "https://waguard.example.internal",
                "waguard.example.internal",
            ),
            ("http://localhost:8080/", "localhost"),
            (
                "https://WAGUARD.Example.Internal:443",
                "waguard.example.internal",
            ),
            ("http://[::1]:8080", "::1"),
        ] {
            assert_eq!(default_server_id(&parse_gateway(url).unwrap()), id, "{url}");
        }
        assert!(parse_gateway("ftp://x").is_err());
        assert!(parse_gateway("waguard.example.internal").is_err());
    }

    #[test]
    fn refusals_carry_the_code_and_message_only() {
        let mut headers = http::HeaderMap::new();
        headers.insert(
            "x-amzn-errortype",
            http::HeaderValue::from_static("AccessDeniedException:http://internal.amazon.com/"),
        );
        let e = refusal(
            http::StatusCode::FORBIDDEN,
            &headers,
            br#"{"__type":"AccessDeniedException","Message":"no rule for arn:aws:sts::1:x\n"}"#,
        );
        assert_eq!(
            e.to_string(),
            "the gateway refused the credential exchange (HTTP 403 AccessDeniedException): no rule for arn:aws:sts::1:x"
        );
        let e = refusal(
            http::StatusCode::BAD_GATEWAY,
            &http::HeaderMap::new(),
            b"<html>",
        );
        assert!(e.to_string().contains("HTTP 502 UnknownError"), "{e}");
    }
}
