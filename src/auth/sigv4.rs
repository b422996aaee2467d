//! Inbound AWS Signature Version 4 verification, computed exactly as AWS computes it.
//!
//! Spec: <https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html>.
//! The canonical request is rebuilt from the bytes on the wire (raw path and query, the
//! headers the caller signed, the SHA-256 of the body actually received), so what was
//! signed is exactly what the gateway decides on.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use hmac::{Hmac, Mac};
use http::HeaderMap;
use http::request::Parts;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use time::OffsetDateTime;
use time::macros::format_description;

use super::{Caller, Callers, SERVICE, is_region_name};
use crate::error::GatewayError;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";
/// AWS rejects signatures dated more than 5 minutes away from its clock.
pub const MAX_CLOCK_SKEW: Duration = Duration::from_secs(5 * 60);

/// RFC 3986 unreserved characters stay; everything else is percent-encoded (SigV4 `UriEncode`).
const SIGV4_ENCODE: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// Same as above, but the path keeps its slashes.
const SIGV4_PATH_ENCODE: &AsciiSet = &SIGV4_ENCODE.remove(b'/');

/// SigV4's `UriEncode`: what the SDKs do to a path label (an ARN's `:` and `/` included) or a
/// query value.
pub fn uri_encode(s: &str) -> String {
    utf8_percent_encode(s, SIGV4_ENCODE).to_string()
}

/// A caller whose signature checked out.
#[derive(Debug, Clone)]
pub struct Authenticated {
    pub caller: Arc<Caller>,
    /// The region from the credential scope: where the caller wants the request to go.
    pub region: String,
    pub signed_at: OffsetDateTime,
}

/// The parsed `Authorization` header.
#[derive(Debug, PartialEq)]
struct AuthorizationHeader<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn incomplete(msg: impl Into<String>) -> GatewayError {
    GatewayError::IncompleteSignature(msg.into())
}

fn parse_authorization(value: &str) -> Result<AuthorizationHeader<'_>, GatewayError> {
    let rest = value
        .strip_prefix(ALGORITHM)
        .and_then(|r| r.strip_prefix(' '))
        .ok_or_else(|| {
            incomplete(format!(
                "Authorization header must start with '{ALGORITHM} ' (only SigV4 is accepted)"
            ))
        })?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(',') {
        let part = part.trim_matches(' ');
        let (k, v) = part.split_once('=').ok_or_else(|| {
            incomplete(format!(
                "Authorization header has a malformed part: {part:?}"
            ))
        })?;
        let slot = match k {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            _ => {
                return Err(incomplete(format!(
                    "Authorization header has an unknown part {k:?}"
                )));
            }
        };
        if slot.replace(v).is_some() {
            return Err(incomplete(format!("Authorization header repeats {k:?}")));
        }
    }
    let credential = credential
        .ok_or_else(|| incomplete("Authorization header requires 'Credential' parameter."))?;
    let signed_headers = signed_headers
        .ok_or_else(|| incomplete("Authorization header requires 'SignedHeaders' parameter."))?;
    let signature = signature
        .ok_or_else(|| incomplete("Authorization header requires 'Signature' parameter."))?;

    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(incomplete(
            "Credential must have the form <access key id>/<date>/<region>/<service>/aws4_request",
        ));
    };
    if terminator != "aws4_request" {
        return Err(incomplete("Credential scope must end with aws4_request"));
    }
    if signature.len() != 64
        || !signature
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(incomplete("Signature must be 64 lowercase hex characters"));
    }
    let signed: Vec<&str> = signed_headers.split(';').collect();
    let well_formed = signed.iter().all(|h| {
        !h.is_empty()
            && h.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    });
    let sorted_unique = signed.windows(2).all(|w| w[0] < w[1]);
    if !well_formed || !sorted_unique {
        return Err(incomplete(
            "SignedHeaders must be lowercase header names, sorted and separated by ';'",
        ));
    }
    Ok(AuthorizationHeader {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed,
        signature,
    })
}

/// Verifies the SigV4 signature of a request whose body has been fully read.
pub fn verify(
    parts: &Parts,
    body: &[u8],
    callers: &Callers,
    now: SystemTime,
) -> Result<Authenticated, GatewayError> {
    verify_with_token(parts, body, callers, now, None)
}

/// Like [`verify`], for temporary credentials: `session_token` must be sent, signed and equal.
/// With `None`, any session token is refused (waguard's caller keys are long-term keys).
pub fn verify_with_token(
    parts: &Parts,
    body: &[u8],
    callers: &Callers,
    now: SystemTime,
    session_token: Option<&str>,
) -> Result<Authenticated, GatewayError> {
    verify_for_service(parts, body, callers, now, session_token, SERVICE)
}

/// Like [`verify_with_token`], for a request signed for another AWS service (the simulator
/// also plays AWS Organizations).
pub fn verify_for_service(
    parts: &Parts,
    body: &[u8],
    callers: &Callers,
    now: SystemTime,
    session_token: Option<&str>,
    service: &str,
) -> Result<Authenticated, GatewayError> {
    check_headers(parts, callers, now, session_token, service)?.verify_body(parts, body)
}

/// A request whose headers passed every check that does not need the body: a well-formed
/// SigV4 `Authorization` header for this service and a valid region, every `x-amz-*` header
/// signed, a date within the allowed skew, a known access key. Only the signature itself,
/// which covers the body's hash, is left to [`Claimed::verify_body`].
///
/// The gateway runs this before reading the body, so a request that can be refused on its
/// headers costs no body read.
#[derive(Debug)]
pub struct Claimed<'a> {
    auth: AuthorizationHeader<'a>,
    amz_date: &'a str,
    caller: Arc<Caller>,
    signed_at: OffsetDateTime,
}

impl Claimed<'_> {
    /// The caller the request claims to come from (not yet proven).
    pub fn caller(&self) -> &Caller {
        &self.caller
    }

    /// Checks the payload hash and the signature over the request and `body`.
    pub fn verify_body(self, parts: &Parts, body: &[u8]) -> Result<Authenticated, GatewayError> {
        let Claimed {
            auth,
            amz_date,
            caller,
            signed_at,
        } = self;
        let payload_hash = hex::encode(Sha256::digest(body));
        if let Some(claimed) = single_header(&parts.headers, "x-amz-content-sha256")?
            && claimed != payload_hash
        {
            return Err(GatewayError::InvalidSignature(
                "The provided 'x-amz-content-sha256' header does not match what was computed."
                    .into(),
            ));
        }

        let canonical = canonical_request(parts, &auth.signed_headers, &payload_hash)?;
        let scope = format!(
            "{}/{}/{}/aws4_request",
            auth.date, auth.region, auth.service
        );
        let string_to_sign = format!(
            "{ALGORITHM}\n{amz_date}\n{scope}\n{}",
            hex::encode(Sha256::digest(canonical.as_bytes()))
        );
        let key = signing_key(
            caller.secret_access_key.expose(),
            auth.date,
            auth.region,
            auth.service,
        );
        let expected = hex::encode(hmac(&key, string_to_sign.as_bytes()));
        if !bool::from(expected.as_bytes().ct_eq(auth.signature.as_bytes())) {
            return Err(GatewayError::InvalidSignature(
                "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.".into(),
            ));
        }
        Ok(Authenticated {
            caller,
            region: auth.region.to_string(),
            signed_at,
        })
    }
}

/// The header half of SigV4 verification (see [`Claimed`]) for long-term keys from `callers`;
/// `session_token`, when given, must be sent, signed and equal (the simulator's service
/// credentials); without it any session token is refused.
pub fn check_headers<'a>(
    parts: &'a Parts,
    callers: &Callers,
    now: SystemTime,
    session_token: Option<&str>,
    service: &str,
) -> Result<Claimed<'a>, GatewayError> {
    check_headers_with(parts, now, service, |access_key_id, sent| {
        match (session_token, sent) {
            (None, None) => {}
            (Some(expected), Some(sent))
                if bool::from(expected.as_bytes().ct_eq(sent.as_bytes())) => {}
            _ => return Err(GatewayError::UnknownAccessKey),
        }
        callers
            .get(access_key_id)
            .cloned()
            .ok_or(GatewayError::UnknownAccessKey)
    })
}

/// The header half of SigV4 verification, with `resolve` naming the caller (and so the
/// secret) for the access key id and the session token sent (`x-amz-security-token`, which
/// must then be signed like every `x-amz-*` header).
pub fn check_headers_with<'a>(
    parts: &'a Parts,
    now: SystemTime,
    service: &str,
    resolve: impl FnOnce(&str, Option<&str>) -> Result<Arc<Caller>, GatewayError>,
) -> Result<Claimed<'a>, GatewayError> {
    let headers = &parts.headers;
    if let Some(q) = parts.uri.query()
        && q.split('&').any(|kv| {
            kv.split('=').next().is_some_and(|k| {
                k.eq_ignore_ascii_case("X-Amz-Signature")
                    || k.eq_ignore_ascii_case("X-Amz-Credential")
            })
        })
    {
        return Err(incomplete(
            "Query string (presigned) authentication is not accepted; sign the request with an Authorization header",
        ));
    }
    let mut auth_values = headers.get_all(http::header::AUTHORIZATION).iter();
    let Some(auth) = auth_values.next() else {
        return Err(GatewayError::MissingAuthentication);
    };
    if auth_values.next().is_some() {
        return Err(incomplete("more than one Authorization header"));
    }
    let auth = auth
        .to_str()
        .map_err(|_| incomplete("Authorization header is not ASCII"))?;
    let auth = parse_authorization(auth)?;

    let amz_date = single_header(headers, "x-amz-date")?.ok_or_else(|| {
        incomplete("Authorization header requires existence of a 'X-Amz-Date' header.")
    })?;
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(GatewayError::InvalidSignature(format!(
                "'{required}' must be a signed header"
            )));
        }
    }
    // Every x-amz-* header the caller sent must be covered by the signature, or it could
    // have been added in transit.
    for name in headers.keys() {
        let n = name.as_str();
        if n.starts_with("x-amz-") && !auth.signed_headers.contains(&n) {
            return Err(GatewayError::InvalidSignature(format!(
                "header '{n}' is present but not signed"
            )));
        }
    }
    let session_token = single_header(headers, "x-amz-security-token")?;

    let signed_at = parse_amz_date(amz_date).ok_or_else(|| {
        incomplete(format!(
            "X-Amz-Date {amz_date:?} is not in the form YYYYMMDD'T'HHMMSS'Z'"
        ))
    })?;
    if &amz_date[..8] != auth.date {
        return Err(GatewayError::InvalidSignature(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '{}' != '{}'",
            auth.date,
            &amz_date[..8]
        )));
    }
    if auth.service != service {
        return Err(GatewayError::InvalidSignature(format!(
            "Credential should be scoped to correct service: '{service}'."
        )));
    }
    if !is_region_name(auth.region) {
        return Err(GatewayError::InvalidSignature(
            "Credential should be scoped to a valid region.".into(),
        ));
    }
    let now = OffsetDateTime::from(now);
    let skew = (now - signed_at).unsigned_abs();
    if skew > MAX_CLOCK_SKEW {
        return Err(GatewayError::InvalidSignature(format!(
            "Signature expired or not yet valid: {amz_date} is more than 5 minutes from the gateway's time {}",
            format_amz_date(now)
        )));
    }

    let caller = resolve(auth.access_key_id, session_token)?;
    Ok(Claimed {
        auth,
        amz_date,
        caller,
        signed_at,
    })
}

/// The parts of a SigV4 `Authorization` header (for checking a request signed for someone
/// else, such as the GetCallerIdentity request of a credential exchange).
#[derive(Debug, Clone, PartialEq)]
pub struct Scope {
    pub access_key_id: String,
    pub date: String,
    pub region: String,
    pub service: String,
    pub signed_headers: Vec<String>,
}

/// Parses a SigV4 `Authorization` header value.
pub fn authorization_scope(value: &str) -> Result<Scope, GatewayError> {
    let a = parse_authorization(value)?;
    Ok(Scope {
        access_key_id: a.access_key_id.to_string(),
        date: a.date.to_string(),
        region: a.region.to_string(),
        service: a.service.to_string(),
        signed_headers: a.signed_headers.iter().map(|h| h.to_string()).collect(),
    })
}

/// The access key id named in the Authorization header, if it parses (for audit of failures).
pub fn claimed_access_key_id(headers: &HeaderMap) -> Option<String> {
    let v = headers.get(http::header::AUTHORIZATION)?.to_str().ok()?;
    parse_authorization(v)
        .ok()
        .map(|a| a.access_key_id.to_string())
}

fn single_header<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>, GatewayError> {
    let mut values = headers.get_all(name).iter();
    let Some(v) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(incomplete(format!("more than one {name} header")));
    }
    v.to_str()
        .map(Some)
        .map_err(|_| incomplete(format!("{name} header is not ASCII")))
}

fn canonical_request(
    parts: &Parts,
    signed_headers: &[&str],
    payload_hash: &str,
) -> Result<String, GatewayError> {
    let mut out = String::with_capacity(512);
    out.push_str(parts.method.as_str());
    out.push('\n');
    out.push_str(&canonical_uri(parts.uri.path()));
    out.push('\n');
    out.push_str(&canonical_query(parts.uri.query().unwrap_or("")));
    out.push('\n');
    for name in signed_headers {
        out.push_str(name);
        out.push(':');
        let mut values = parts.headers.get_all(*name).iter().peekable();
        if values.peek().is_none() {
            if *name == "host" {
                // HTTP/2 carries the host in :authority, which hyper puts in the URI.
                let authority = parts.uri.authority().ok_or_else(|| {
                    GatewayError::InvalidSignature("signed header 'host' is missing".into())
                })?;
                out.push_str(authority.as_str());
                out.push('\n');
                continue;
            }
            return Err(GatewayError::InvalidSignature(format!(
                "signed header '{name}' is missing from the request"
            )));
        }
        let mut first = true;
        for v in values {
            let v = v.to_str().map_err(|_| {
                GatewayError::InvalidSignature(format!("signed header '{name}' is not ASCII"))
            })?;
            if !first {
                out.push(',');
            }
            first = false;
            push_collapsed(&mut out, v);
        }
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&signed_headers.join(";"));
    out.push('\n');
    out.push_str(payload_hash);
    Ok(out)
}

/// Header values are trimmed and runs of spaces collapse to one (SigV4 "Trimall"). Only the
/// space character: a tab is part of the value, as the AWS signers treat it, so a tab swapped
/// for a space in transit breaks the signature.
fn push_collapsed(out: &mut String, v: &str) {
    let mut last_space = false;
    for c in v.trim_matches(' ').chars() {
        if c == ' ' {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
}

/// SigV4 encodes the already-encoded path a second time for every service but S3, so the
/// `%3A` of an ARN label is signed as `%253A`.
pub fn canonical_uri(raw_path: &str) -> String {
    if raw_path.is_empty() {
        return "/".into();
    }
    utf8_percent_encode(raw_path, SIGV4_PATH_ENCODE).to_string()
}

/// Query parameters decoded, re-encoded with SigV4's set and sorted by name then value.
pub fn canonical_query(raw_query: &str) -> String {
    if raw_query.is_empty() {
        return String::new();
    }
    let mut params: Vec<(String, String)> = form_urlencoded::parse(raw_query.as_bytes())
        .map(|(k, v)| {
            (
                utf8_percent_encode(&k, SIGV4_ENCODE).to_string(),
                utf8_percent_encode(&v, SIGV4_ENCODE).to_string(),
            )
        })
        .collect();
    params.sort();
    params
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&")
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC-SHA256 accepts keys of any length, so this cannot fail.
    match <Hmac<Sha256> as Mac>::new_from_slice(key) {
        Ok(mut mac) => {
            mac.update(data);
            mac.finalize().into_bytes().to_vec()
        }
        Err(_) => Vec::new(),
    }
}

fn signing_key(secret: &str, date: &str, region: &str, service: &str) -> Vec<u8> {
    let k_date = hmac(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    let k_region = hmac(&k_date, region.as_bytes());
    let k_service = hmac(&k_region, service.as_bytes());
    hmac(&k_service, b"aws4_request")
}

pub fn parse_amz_date(s: &str) -> Option<OffsetDateTime> {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    if s.len() != 16 {
        return None;
    }
    time::PrimitiveDateTime::parse(s, fmt)
        .ok()
        .map(|t| t.assume_utc())
}

pub fn format_amz_date(t: OffsetDateTime) -> String {
    let fmt = format_description!("[year][month][day]T[hour][minute][second]Z");
    t.format(fmt).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::Secret;
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_sigv4::sign::v4;
    use std::path::Path;

    const KEY: &str = "AKWGTESTCALLER0001";
    const SECRET: &str = "test-secret-key-0001";

    fn callers() -> Callers {
        Callers::from_callers(
            Path::new("test"),
            vec![Caller {
                access_key_id: KEY.into(),
                secret_access_key: Secret::new(SECRET),
                principal: "alice".into(),
                team: "payments".into(),
                attributes: Default::default(),
            }],
        )
        .unwrap()
    }

    /// Signs like the AWS SDKs do, with aws-sigv4 (an independent implementation).
    fn signed(
        method: &str,
        path_and_query: &str,
        body: &[u8],
        secret: &str,
        at: SystemTime,
    ) -> Parts {
        let uri = format!("http://gw.example:8080{path_and_query}");
        let mut req = http::Request::builder()
            .method(method)
            .uri(&uri)
            .header("host", "gw.example:8080")
            .header("content-type", "application/json")
            .body(())
            .unwrap();
        let identity = Credentials::new(KEY, secret, None, None, "test").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("wellarchitected")
            .time(at)
            .settings(SigningSettings::default())
            .build()
            .unwrap()
            .into();
        let headers: Vec<(String, String)> = req
            .headers()
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_str().unwrap().to_string()))
            .collect();
        let signable = SignableRequest::new(
            method,
            uri.clone(),
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        instructions.apply_to_request_http1x(&mut req);
        // The server sees origin-form URIs.
        let (mut parts, _) = req.into_parts();
        parts.uri = path_and_query.parse().unwrap();
        parts
    }

    const ARN_PATH: &str = "/templates/shares/arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Areview-template%2F0123456789abcdef0123456789abcdef";

    #[test]
    fn accepts_what_aws_sigv4_signs() {
        let body = br#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"t"}"#;
        let now = SystemTime::now();
        let parts = signed("POST", ARN_PATH, body, SECRET, now);
        let auth = verify(&parts, body, &callers(), now).unwrap();
        assert_eq!(auth.caller.principal, "alice");
        assert_eq!(auth.region, "us-east-1");

        let q = "/templates/shares/x?SharedWithPrefix=ou-%2A%20x&MaxResults=5";
        let parts = signed("GET", q, b"", SECRET, now);
        verify(&parts, b"", &callers(), now).unwrap();
    }

    #[test]
    fn rejects_tampered_body_path_and_wrong_secret() {
        let body = br#"{"SharedWith":"ou-ab12-11111111"}"#;
        let now = SystemTime::now();
        let parts = signed("POST", ARN_PATH, body, SECRET, now);
        let other = br#"{"SharedWith":"ou-ab12-99999999"}"#;
        assert!(matches!(
            verify(&parts, other, &callers(), now),
            Err(GatewayError::InvalidSignature(_))
        ));

        let mut moved = parts.clone();
        moved.uri = ARN_PATH.replace("0123", "4567").parse().unwrap();
        assert!(matches!(
            verify(&moved, body, &callers(), now),
            Err(GatewayError::InvalidSignature(_))
        ));

        let parts = signed("POST", ARN_PATH, body, "wrong-secret-000000", now);
        assert!(matches!(
            verify(&parts, body, &callers(), now),
            Err(GatewayError::InvalidSignature(_))
        ));
    }

    #[test]
    fn rejects_stale_and_future_dates() {
        let now = SystemTime::now();
        for at in [
            now - Duration::from_secs(301),
            now + Duration::from_secs(301),
        ] {
            let parts = signed("GET", "/reviewTemplates", b"", SECRET, at);
            let err = verify(&parts, b"", &callers(), now).unwrap_err();
            assert_eq!(err.code(), "InvalidSignatureException", "{err}");
        }
        let parts = signed(
            "GET",
            "/reviewTemplates",
            b"",
            SECRET,
            now - Duration::from_secs(290),
        );
        verify(&parts, b"", &callers(), now).unwrap();
    }

    #[test]
    fn classifies_missing_malformed_and_unknown() {
        let now = SystemTime::now();
        let mut parts = signed("GET", "/reviewTemplates", b"", SECRET, now);
        let good = parts.headers[http::header::AUTHORIZATION].clone();

        parts.headers.remove(http::header::AUTHORIZATION);
        assert_eq!(
            verify(&parts, b"", &callers(), now).unwrap_err().code(),
            "MissingAuthenticationTokenException"
        );

        parts.headers.insert(
            http::header::AUTHORIZATION,
            "AWS4-HMAC-SHA256 Credential=x".parse().unwrap(),
        );
        assert_eq!(
            verify(&parts, b"", &callers(), now).unwrap_err().code(),
            "IncompleteSignatureException"
        );

        let unknown = good.to_str().unwrap().replace(KEY, "AKWGSOMEBODYELSE01");
        parts
            .headers
            .insert(http::header::AUTHORIZATION, unknown.parse().unwrap());
        assert_eq!(
            verify(&parts, b"", &callers(), now).unwrap_err().code(),
            "UnrecognizedClientException"
        );

        // An x-amz-* header added after signing is refused.
        parts.headers.insert(http::header::AUTHORIZATION, good);
        parts
            .headers
            .insert("x-amz-target", "Evil".parse().unwrap());
        assert_eq!(
            verify(&parts, b"", &callers(), now).unwrap_err().code(),
            "InvalidSignatureException"
        );
    }

    #[test]
    fn header_whitespace_is_canonicalized_like_the_sdk_signers() {
        // Found by the sigv4 fuzz target: tabs are not spaces.
        let now = SystemTime::now();
        let mut parts = signed("GET", "/reviewTemplates", b"", SECRET, now);
        verify(&parts, b"", &callers(), now).unwrap();
        let signed_ct = parts.headers["content-type"].clone();
        parts
            .headers
            .insert("content-type", "application/json  ".parse().unwrap());
        verify(&parts, b"", &callers(), now).expect("trailing spaces are trimmed");
        parts
            .headers
            .insert("content-type", "application/json\t".parse().unwrap());
        assert!(
            verify(&parts, b"", &callers(), now).is_err(),
            "a tab is not trimmed"
        );
        parts.headers.insert("content-type", signed_ct);
        verify(&parts, b"", &callers(), now).unwrap();
    }

    #[test]
    fn double_encodes_the_path() {
        assert_eq!(
            canonical_uri("/templates/shares/arn%3Aaws"),
            "/templates/shares/arn%253Aaws"
        );
        assert_eq!(canonical_uri(""), "/");
        assert_eq!(canonical_query("b=2&a=%2A&a=1"), "a=%2A&a=1&b=2");
    }

    #[test]
    fn secret_is_not_in_the_error_or_debug() {
        let c = callers();
        assert!(!format!("{c:?}").contains(SECRET));
        let _ = Secret::new("x");
    }
}
