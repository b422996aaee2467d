//! The signed `sts:GetCallerIdentity` request a caller hands over to prove who it is (the
//! method of Vault's AWS IAM auth and aws-iam-authenticator): the caller signs it with its own
//! AWS credentials without sending it, the gateway checks that it is exactly such a request,
//! bound to this gateway and fresh, sends it to STS and reads the ARN from STS's answer.
//!
//! The gateway only ever sends it to an STS endpoint (`sts.amazonaws.com`,
//! `sts.<region>.amazonaws.com`, or the one `identity.sts_endpoint` names), so the exchange
//! cannot be used to make the gateway call anything else.

use std::collections::BTreeMap;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, Uri};
use http_body_util::Full;
use serde::Deserialize;
use time::OffsetDateTime;

use crate::auth::is_region_name;
use crate::auth::sigv4::{MAX_CLOCK_SKEW, authorization_scope, parse_amz_date};
use crate::error::GatewayError;

/// Where callers post their signed request.
pub const EXCHANGE_PATH: &str = "/_waguard/v1/credentials";
/// The header that binds a signed request to one gateway: signed, and equal to `server_id`.
pub const SERVER_ID_HEADER: &str = "x-waguard-server-id";
/// Largest exchange document accepted.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024;
/// Largest STS answer read.
pub const MAX_STS_ANSWER_BYTES: usize = 64 * 1024;

/// Headers a signed GetCallerIdentity may carry; all of them are forwarded to STS.
const FORWARDED_HEADERS: &[&str] = &[
    "authorization",
    "content-type",
    "host",
    "user-agent",
    "x-amz-content-sha256",
    "x-amz-date",
    "x-amz-security-token",
    SERVER_ID_HEADER,
];

/// The document `waguard credentials` posts: the signed request, not sent.
#[derive(Debug, Clone, PartialEq, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct SignedRequest {
    pub method: String,
    pub url: String,
    pub headers: BTreeMap<String, String>,
    pub body: String,
}

/// What the gateway checks the signed request against.
#[derive(Debug, Clone)]
pub struct ExchangeRules {
    pub server_id: String,
    /// `identity.sts_endpoint`: the only STS the gateway sends to, instead of AWS's.
    pub sts_endpoint: Option<Uri>,
}

fn invalid(msg: impl Into<String>) -> GatewayError {
    GatewayError::Validation(format!(
        "the credential exchange needs a signed sts:GetCallerIdentity request: {}",
        msg.into()
    ))
}

/// The STS region a host stands for: `sts.amazonaws.com` is us-east-1.
fn aws_sts_region(host: &str) -> Option<String> {
    if host == "sts.amazonaws.com" {
        return Some("us-east-1".into());
    }
    let region = host.strip_prefix("sts.")?.strip_suffix(".amazonaws.com")?;
    is_region_name(region).then(|| region.to_string())
}

impl ExchangeRules {
    /// Parses the posted document (strict JSON: no repeated keys) and checks it.
    pub fn parse(
        &self,
        document: &[u8],
        now: SystemTime,
    ) -> Result<Request<Full<Bytes>>, GatewayError> {
        if document.len() > MAX_DOCUMENT_BYTES {
            return Err(invalid(format!(
                "the document exceeds {MAX_DOCUMENT_BYTES} bytes"
            )));
        }
        let value = crate::validate::parse_strict_json(document)?;
        let signed: SignedRequest = serde_json::from_value(value).map_err(|e| {
            invalid(format!(
                "the document is not {{method, url, headers, body}}: {e}"
            ))
        })?;
        self.check(&signed, now)
    }

    /// Checks that `signed` is a fresh GetCallerIdentity for an accepted STS endpoint, bound to
    /// this gateway, and returns it as the request to send.
    pub fn check(
        &self,
        signed: &SignedRequest,
        now: SystemTime,
    ) -> Result<Request<Full<Bytes>>, GatewayError> {
        if signed.method != "POST" {
            return Err(invalid("the method must be POST"));
        }
        let uri: Uri = signed
            .url
            .parse()
            .map_err(|_| invalid("the url does not parse"))?;
        let (Some(scheme), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return Err(invalid("the url must be absolute"));
        };
        if authority.as_str().contains('@') {
            return Err(invalid("the url must not carry user information"));
        }
        if !matches!(uri.path(), "/" | "") || uri.query().is_some() {
            return Err(invalid(
                "the url must be the STS endpoint itself, without path or query",
            ));
        }
        let host = authority.host().to_ascii_lowercase();
        let region_of_host = match &self.sts_endpoint {
            Some(configured) => {
                if Some(scheme) != configured.scheme_str()
                    || Some(authority.as_str()) != configured.authority().map(|a| a.as_str())
                {
                    return Err(invalid(format!(
                        "the url must be this gateway's STS endpoint {configured}"
                    )));
                }
                None
            }
            None => {
                if scheme != "https" || authority.port_u16().is_some_and(|p| p != 443) {
                    return Err(invalid("the url must be https on port 443"));
                }
                Some(aws_sts_region(&host).ok_or_else(|| {
                    invalid(format!(
                        "{host} is not an STS endpoint (sts.amazonaws.com or sts.<region>.amazonaws.com)"
                    ))
                })?)
            }
        };

        let mut form = form_urlencoded::parse(signed.body.as_bytes()).collect::<Vec<_>>();
        form.sort();
        if signed.body.len() > 512
            || form
                != [
                    ("Action".into(), "GetCallerIdentity".into()),
                    ("Version".into(), "2011-06-15".into()),
                ]
        {
            return Err(invalid(
                "the body must be exactly Action=GetCallerIdentity&Version=2011-06-15",
            ));
        }

        let mut headers = HeaderMap::new();
        for (name, value) in &signed.headers {
            let lower = name.to_ascii_lowercase();
            if !FORWARDED_HEADERS.contains(&lower.as_str()) {
                return Err(invalid(format!(
                    "header {name:?} is not part of a GetCallerIdentity request"
                )));
            }
            let name = HeaderName::from_bytes(lower.as_bytes())
                .map_err(|_| invalid(format!("header {name:?} is not a header name")))?;
            if headers.contains_key(&name) {
                return Err(invalid(format!("header {name} appears twice")));
            }
            let value = HeaderValue::from_str(value)
                .map_err(|_| invalid(format!("header {name} is not visible ASCII")))?;
            headers.insert(name, value);
        }
        let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok());
        if let Some(h) = header("host")
            && !h.eq_ignore_ascii_case(authority.as_str())
        {
            return Err(invalid("the host header does not match the url"));
        }
        if let Some(ct) = header("content-type") {
            let essence = ct.split(';').next().unwrap_or("").trim();
            if !essence.eq_ignore_ascii_case("application/x-www-form-urlencoded") {
                return Err(invalid(
                    "the content-type must be application/x-www-form-urlencoded",
                ));
            }
        }
        if header(SERVER_ID_HEADER) != Some(self.server_id.as_str()) {
            return Err(GatewayError::AccessDenied(format!(
                "the signed request is not for this gateway: its {SERVER_ID_HEADER} header must be {:?}",
                self.server_id
            )));
        }
        let authorization = header("authorization")
            .ok_or_else(|| invalid("the authorization header is missing"))?;
        let scope = authorization_scope(authorization)?;
        if scope.service != "sts" {
            return Err(invalid("the signature must be for the sts service"));
        }
        if let Some(region) = &region_of_host
            && &scope.region != region
        {
            return Err(invalid(format!(
                "the signature's region {} does not match the endpoint's {region}",
                scope.region
            )));
        }
        for required in ["host", "x-amz-date", SERVER_ID_HEADER] {
            if !scope.signed_headers.iter().any(|h| h == required) {
                return Err(invalid(format!("{required} must be a signed header")));
            }
        }
        for name in headers.keys() {
            if name.as_str().starts_with("x-amz-")
                && !scope.signed_headers.iter().any(|h| h == name.as_str())
            {
                return Err(invalid(format!("{name} must be signed")));
            }
        }
        let date =
            header("x-amz-date").ok_or_else(|| invalid("the x-amz-date header is missing"))?;
        let signed_at = parse_amz_date(date).ok_or_else(|| invalid("x-amz-date does not parse"))?;
        if (OffsetDateTime::from(now) - signed_at).unsigned_abs() > MAX_CLOCK_SKEW {
            return Err(GatewayError::InvalidSignature(
                "the signed GetCallerIdentity request is more than 5 minutes old (or ahead); sign a new one".into(),
            ));
        }

        let mut request = Request::new(Full::new(Bytes::from(signed.body.clone())));
        *request.method_mut() = Method::POST;
        *request.uri_mut() = uri.clone();
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// The text of the first `<tag>` element in `xml`, entities decoded.
fn xml_text(xml: &str, tag: &str) -> Option<String> {
    let start = xml.find(&format!("<{tag}>"))? + tag.len() + 2;
    let end = start + xml[start..].find(&format!("</{tag}>"))?;
    let raw = &xml[start..end];
    if raw.contains('<') {
        return None;
    }
    Some(
        raw.replace("&lt;", "<")
            .replace("&gt;", ">")
            .replace("&quot;", "\"")
            .replace("&apos;", "'")
            .replace("&amp;", "&"),
    )
}

/// An IAM or STS principal ARN as STS names callers.
pub fn is_principal_arn(arn: &str) -> bool {
    let Some(rest) = arn.strip_prefix("arn:") else {
        return false;
    };
    let parts: Vec<&str> = rest.splitn(5, ':').collect();
    let [partition, service, region, account, resource] = parts[..] else {
        return false;
    };
    partition.starts_with("aws")
        && matches!(service, "iam" | "sts")
        && region.is_empty()
        && account.len() == 12
        && account.bytes().all(|b| b.is_ascii_digit())
        && !resource.is_empty()
        && arn.len() <= 2048
        && arn.bytes().all(|b| b.is_ascii_graphic())
}

/// What STS answered: the caller's ARN, or why there is none.
pub fn caller_arn(status: http::StatusCode, body: &[u8]) -> Result<String, GatewayError> {
    let text = std::str::from_utf8(body).unwrap_or("");
    if !status.is_success() {
        let code = xml_text(text, "Code")
            .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
            .unwrap_or_else(|| format!("HTTP {}", status.as_u16()));
        return Err(GatewayError::AccessDenied(format!(
            "STS did not accept the signed GetCallerIdentity request ({code})"
        )));
    }
    let result = text
        .find("<GetCallerIdentityResult>")
        .map(|i| &text[i..])
        .unwrap_or("");
    match xml_text(result, "Arn") {
        Some(arn) if is_principal_arn(&arn) => Ok(arn),
        _ => Err(GatewayError::UpstreamUnavailable(
            "STS answered GetCallerIdentity without a principal ARN".into(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;

    const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

    fn signed(url: &str, region: &str, server_id: &str, at: SystemTime) -> SignedRequest {
        let host = url
            .trim_start_matches("https://")
            .trim_start_matches("http://")
            .trim_end_matches('/');
        let headers = vec![
            (
                "content-type",
                "application/x-www-form-urlencoded; charset=utf-8".to_string(),
            ),
            ("host", host.to_string()),
            (SERVER_ID_HEADER, server_id.to_string()),
        ];
        let identity = Credentials::new("AKIDEXAMPLE", "secret", None, None, "t").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(region)
            .name("sts")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().map(|(k, v)| (*k, v.as_str())),
            SignableBody::Bytes(BODY.as_bytes()),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        let mut all: BTreeMap<String, String> = headers
            .into_iter()
            .map(|(k, v)| (k.to_string(), v))
            .collect();
        for (k, v) in instructions.headers() {
            all.insert(k.to_string(), v.to_string());
        }
        SignedRequest {
            method: "POST".into(),
            url: url.into(),
            headers: all,
            body: BODY.into(),
        }
    }

    fn rules() -> ExchangeRules {
        ExchangeRules {
            server_id: "waguard.example.internal".into(),
            sts_endpoint: None,
        }
    }

    #[test]
    fn a_fresh_bound_get_caller_identity_to_aws_sts_is_accepted() {
        let now = SystemTime::now();
        for (url, region) in [
            ("https://sts.amazonaws.com/", "us-east-1"),
            ("https://sts.eu-west-1.amazonaws.com/", "eu-west-1"),
        ] {
            let req = rules()
                .check(&signed(url, region, "waguard.example.internal", now), now)
                .unwrap();
            assert_eq!(req.uri().to_string(), url);
            assert!(req.headers().contains_key("authorization"));
        }
    }

    #[test]
    fn anything_else_is_refused() {
        let now = SystemTime::now();
        let good = || {
            signed(
                "https://sts.amazonaws.com/",
                "us-east-1",
                "waguard.example.internal",
                now,
            )
        };
        let refused = |s: SignedRequest, why: &str| {
            assert!(rules().check(&s, now).is_err(), "{why}: {s:?}");
        };
        refused(
            signed(
                "https://sts.amazonaws.com/",
                "us-east-1",
                "other-gateway",
                now,
            ),
            "server id",
        );
        refused(
            signed(
                "https://sts.amazonaws.com/",
                "us-east-1",
                "waguard.example.internal",
                now - std::time::Duration::from_secs(600),
            ),
            "stale",
        );
        refused(
            signed(
                "https://evil.example.com/",
                "us-east-1",
                "waguard.example.internal",
                now,
            ),
            "host",
        );
        refused(
            signed(
                "https://sts.amazonaws.com.evil.example/",
                "us-east-1",
                "waguard.example.internal",
                now,
            ),
            "suffix",
        );
        refused(
            signed(
                "http://sts.amazonaws.com/",
                "us-east-1",
                "waguard.example.internal",
                now,
            ),
            "http",
        );
        refused(
            signed(
                "https://sts.eu-west-1.amazonaws.com/",
                "us-east-1",
                "waguard.example.internal",
                now,
            ),
            "region",
        );
        let mut s = good();
        s.body = "Action=AssumeRole&Version=2011-06-15".into();
        refused(s, "action");
        let mut s = good();
        s.body = format!("{BODY}&RoleArn=x");
        refused(s, "extra parameter");
        let mut s = good();
        s.method = "GET".into();
        refused(s, "method");
        let mut s = good();
        s.url = "https://sts.amazonaws.com/?Action=GetCallerIdentity".into();
        refused(s, "query");
        let mut s = good();
        s.headers.insert("x-forwarded-for".into(), "1.2.3.4".into());
        refused(s, "extra header");
        let mut s = good();
        s.headers.insert(
            "X-Waguard-Server-Id".into(),
            "waguard.example.internal".into(),
        );
        refused(s, "repeated header");
        let mut s = good();
        s.headers
            .insert("x-amz-security-token".into(), "unsigned".into());
        refused(s, "unsigned token");
        let mut s = good();
        s.url = "https://user@sts.amazonaws.com/".into();
        refused(s, "userinfo");
        assert!(
            rules()
                .parse(br#"{"method":"POST","method":"POST"}"#, now)
                .is_err()
        );
        assert!(
            rules()
                .parse(&vec![b' '; MAX_DOCUMENT_BYTES + 1], now)
                .is_err()
        );
    }

    #[test]
    fn a_configured_endpoint_replaces_aws_sts_and_nothing_else_is_accepted() {
        let now = SystemTime::now();
        let r = ExchangeRules {
            server_id: "gw".into(),
            sts_endpoint: Some("http://127.0.0.1:4566".parse().unwrap()),
        };
        assert!(
            r.check(
                &signed("http://127.0.0.1:4566/", "us-east-1", "gw", now),
                now
            )
            .is_ok()
        );
        assert!(
            r.check(
                &signed("http://127.0.0.1:4567/", "us-east-1", "gw", now),
                now
            )
            .is_err()
        );
        assert!(
            r.check(
                &signed("https://sts.amazonaws.com/", "us-east-1", "gw", now),
                now
            )
            .is_err()
        );
    }

    #[test]
    fn sts_answers() {
        let ok = br#"<GetCallerIdentityResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <GetCallerIdentityResult>
    <Arn>arn:aws:sts::123456789012:assumed-role/Dev/alice@example.com</Arn>
    <UserId>AROAEXAMPLE:alice@example.com</UserId>
    <Account>123456789012</Account>
  </GetCallerIdentityResult>
  <ResponseMetadata><RequestId>01234567-89ab-cdef-0123-456789abcdef</RequestId></ResponseMetadata>
</GetCallerIdentityResponse>"#;
        assert_eq!(
            caller_arn(http::StatusCode::OK, ok).unwrap(),
            "arn:aws:sts::123456789012:assumed-role/Dev/alice@example.com"
        );
        let denied = br#"<ErrorResponse><Error><Type>Sender</Type><Code>SignatureDoesNotMatch</Code><Message>x</Message></Error></ErrorResponse>"#;
        let e = caller_arn(http::StatusCode::FORBIDDEN, denied).unwrap_err();
        assert!(e.to_string().contains("SignatureDoesNotMatch"), "{e}");
        assert!(caller_arn(http::StatusCode::OK, b"<Arn>not-an-arn</Arn>").is_err());
        assert!(
            caller_arn(
                http::StatusCode::OK,
                b"<Arn><Arn>arn:aws:iam::123456789012:user/x</Arn></Arn>"
            )
            .is_err()
        );
    }
}
