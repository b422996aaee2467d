//! Test harness: a real gateway and a real simulated upstream on loopback, driven by the
//! official AWS SDK or by raw, correctly signed HTTP requests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waguard::app::{self, Running};
use waguard::config::Config;
use waguard::server::{self, Limits};
use waguard::sim::{DEMO_TEMPLATE_ARN, Sim};
use waguard::upstream::ServiceCredentials;

pub const TEMPLATE_ARN: &str = DEMO_TEMPLATE_ARN;
pub const SERVICE_KEY: &str = "AKWGTESTSERVICE0001";
pub const SERVICE_SECRET: &str = "service-secret-for-tests-0001";
pub const SERVICE_TOKEN: &str = "service-session-token-for-tests";
pub const PAYMENTS_KEY: &str = "AKWGPAYMENTS0000001";
pub const PAYMENTS_SECRET: &str = "payments-secret-0000001";
pub const PLATFORM_KEY: &str = "AKWGPLATFORM0000001";
pub const PLATFORM_SECRET: &str = "platform-secret-0000001";
pub const APPROVED_OU: &str = "ou-ab12-11111111";
pub const UNAPPROVED_OU: &str = "ou-ab12-99999999";

pub const CALLERS: &str = r#"
[[callers]]
access_key_id = "AKWGPAYMENTS0000001"
secret_access_key = "payments-secret-0000001"
principal = "alice@example.com"
team = "payments"
[callers.attributes]
cost_center = "cc-1001"

[[callers]]
access_key_id = "AKWGPLATFORM0000001"
secret_access_key = "platform-secret-0000001"
principal = "bob@example.com"
team = "platform"
"#;

pub fn repo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// Options for a harness; defaults are a plain-HTTP gateway in front of a plain-HTTP sim.
#[derive(Default)]
pub struct Options {
    /// Extra lines for the `[server]` table.
    pub server_extra: String,
    /// Extra lines for the `[upstream]` table.
    pub upstream_extra: String,
    /// Upstream endpoint override; default: the in-process sim.
    pub endpoint: Option<String>,
    /// Serve the sim over TLS with a generated CA.
    pub sim_tls: bool,
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub sim: Arc<Sim>,
    pub sim_addr: SocketAddr,
    pub gateway: Running,
    pub audit_file: PathBuf,
    /// Scheme + host + port of the gateway.
    pub endpoint: String,
    sim_stop: Option<tokio::sync::oneshot::Sender<()>>,
}

/// A CA and a server certificate for 127.0.0.1/localhost, signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "waguard test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    TestPki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Harness {
        server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let sim = Arc::new(
            Sim::new(
                SERVICE_KEY,
                SERVICE_SECRET,
                Some(SERVICE_TOKEN),
                &[TEMPLATE_ARN],
            )
            .unwrap(),
        );
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_addr = sim_listener.local_addr().unwrap();
        let mut upstream_extra = opts.upstream_extra.clone();
        if !upstream_extra.contains("timeout") {
            upstream_extra.push_str("\ntimeout = 3\nconnect_timeout = 2\n");
        }
        let sim_tls = if opts.sim_tls {
            let pki = pki();
            std::fs::write(dir.path().join("sim-cert.pem"), &pki.cert_pem).unwrap();
            std::fs::write(dir.path().join("sim-key.pem"), &pki.key_pem).unwrap();
            std::fs::write(dir.path().join("upstream-ca.pem"), &pki.ca_pem).unwrap();
            upstream_extra.push_str("\nca_file = \"upstream-ca.pem\"\n");
            Some(
                server::tls_acceptor(
                    &dir.path().join("sim-cert.pem"),
                    &dir.path().join("sim-key.pem"),
                )
                .unwrap(),
            )
        } else {
            None
        };
        let scheme = if opts.sim_tls { "https" } else { "http" };
        let endpoint = opts
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("{scheme}://localhost:{}", sim_addr.port()));
        let (sim_stop, sim_stopped) = tokio::sync::oneshot::channel::<()>();
        let s = sim.clone();
        tokio::spawn(server::serve(
            sim_listener,
            sim_tls,
            Limits::default(),
            move |req, peer| s.clone().handle(req, peer),
            async move {
                let _ = sim_stopped.await;
            },
            Duration::from_secs(1),
        ));

        std::fs::write(dir.path().join("callers.toml"), CALLERS).unwrap();
        let config_text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
{server_extra}

[upstream]
endpoint = "{endpoint}"
{upstream_extra}

[policy]
dir = "{policies}"

[callers]
file = "callers.toml"

[audit]
file = "audit.jsonl"
"#,
            server_extra = opts.server_extra,
            policies = repo_policies().display(),
        );
        let config_path = dir.path().join("waguard.toml");
        std::fs::write(&config_path, config_text).unwrap();
        let config = Config::load(&config_path).unwrap();
        let creds = Credentials::new(
            SERVICE_KEY,
            SERVICE_SECRET,
            Some(SERVICE_TOKEN.into()),
            None,
            "tests",
        );
        let gateway = app::start(
            &config,
            ServiceCredentials::new(SharedCredentialsProvider::new(creds)),
        )
        .await
        .unwrap();
        let gw_scheme = if config.server.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoint = format!("{gw_scheme}://localhost:{}", gateway.addr.port());
        Harness {
            audit_file: config.audit.file.clone(),
            dir,
            sim,
            sim_addr,
            gateway,
            endpoint,
            sim_stop: Some(sim_stop),
        }
    }

    /// The official SDK client, pointed at the gateway with a caller key. Retries are off so
    /// each call is exactly one request.
    pub fn client(&self, key: &str, secret: &str) -> aws_sdk_wellarchitected::Client {
        self.client_with(key, secret, None)
    }

    pub fn client_with(
        &self,
        key: &str,
        secret: &str,
        http: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
    ) -> aws_sdk_wellarchitected::Client {
        let mut conf = aws_sdk_wellarchitected::Config::builder()
            .behavior_version(aws_sdk_wellarchitected::config::BehaviorVersion::latest())
            .region(aws_sdk_wellarchitected::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(key, secret, None, None, "test-caller"))
            .retry_config(aws_sdk_wellarchitected::config::retry::RetryConfig::disabled());
        if let Some(http) = http {
            conf = conf.http_client(http);
        }
        aws_sdk_wellarchitected::Client::from_conf(conf.build())
    }

    pub fn payments(&self) -> aws_sdk_wellarchitected::Client {
        self.client(PAYMENTS_KEY, PAYMENTS_SECRET)
    }

    /// Every audit record written so far.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.audit_file)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    pub async fn stop(mut self) {
        self.gateway.shutdown().await;
        if let Some(s) = self.sim_stop.take() {
            let _ = s.send(());
        }
    }
}

/// A raw HTTP/1.1 exchange's answer.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn error_type(&self) -> Option<&str> {
        self.header("x-amzn-errortype")
    }
}

/// A request signed exactly over the bytes that will be sent (no path normalisation), so the
/// signature is valid and only the gateway's validation can stop it.
pub struct RawRequest<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: Vec<u8>,
    pub key: &'a str,
    pub secret: &'a str,
    pub time: SystemTime,
}

impl<'a> RawRequest<'a> {
    pub fn new(method: &'a str, path_and_query: &'a str, body: impl Into<Vec<u8>>) -> Self {
        RawRequest {
            method,
            path_and_query,
            headers: vec![("content-type", "application/json".to_string())],
            body: body.into(),
            key: PAYMENTS_KEY,
            secret: PAYMENTS_SECRET,
            time: SystemTime::now(),
        }
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Signs and renders the request as the bytes to write on the wire.
    pub fn to_bytes(&self, addr: SocketAddr) -> Vec<u8> {
        let host = format!("localhost:{}", addr.port());
        let mut headers: Vec<(String, String)> = vec![("host".into(), host.clone())];
        for (k, v) in &self.headers {
            headers.push((k.to_string(), v.clone()));
        }
        let mut settings = SigningSettings::default();
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = Credentials::new(self.key, self.secret, None, None, "raw").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("wellarchitected")
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let url = format!("http://{host}{}", self.path_and_query);
        let signable = SignableRequest::new(
            self.method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&self.body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path_and_query).into_bytes();
        for (k, v) in &headers {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        for (k, v) in instructions.headers() {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                self.body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&self.body);
        out
    }

    pub async fn send(&self, addr: SocketAddr) -> RawResponse {
        send_raw(addr, &self.to_bytes(addr)).await
    }
}

/// Writes bytes to the gateway and reads the whole answer (the request says `connection: close`).
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_string(),
    }
}

/// The percent-encoded template path, as SDKs send it.
pub fn template_path(arn: &str) -> String {
    format!(
        "/templates/shares/{}",
        percent_encoding::utf8_percent_encode(arn, percent_encoding::NON_ALPHANUMERIC)
    )
}
