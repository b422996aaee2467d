//! `sigv4`: `waguard::auth::verify` against a fixed callers set at a fixed time.
//!
//! Two kinds of input, told apart by the first byte:
//!
//! * **Raw** (anything not starting with `#`): an HTTP/1-like request head and body,
//!   `METHOD SP TARGET LF (Name: value LF)* LF body`. The request is built as
//!   `http::request::Parts` (inputs the `http` crate refuses are skipped) and verified.
//!   `verify` must not panic, and whenever it returns Ok the signature must be exactly what the
//!   independent signer (aws-sigv4) computes for that request with the named caller's secret.
//!   A fuzzer cannot forge an HMAC, so Ok only ever comes from the signed seeds and mutations
//!   of them that waguard considers equivalent: each of those must be equivalent to aws-sigv4.
//!
//! * **Structured** (`#` then `template field pos_hi pos_lo byte flags skew` then the rest):
//!   a request is built from an SDK-shaped template (or, for template 5, from a fuzzed
//!   `path?query` line) with the rest of the input as its body, and signed correctly with
//!   aws-sigv4 as the SDKs do. waguard must accept it. Then exactly one thing is changed
//!   (a byte of the body, of the path/query, of a header value or name, of the method; or a
//!   header added or removed) and the result must be refused, unless the change is a no-op:
//!   the same method, path, percent-decoded query, body, and - after the SigV4 spec's space
//!   trimming - the same values for every signed, `x-amz-*` and `Authorization` header.
//!   Unsigned ordinary headers may change: SigV4 does not cover them.

use std::path::Path;
use std::sync::LazyLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    PayloadChecksumKind, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign,
};
use aws_sigv4::sign::v4;
use http::request::Parts;
use http::{HeaderName, HeaderValue};
use waguard::auth::sigv4::parse_amz_date;
use waguard::auth::{Caller, Callers, Secret, verify};
use waguard::operation::route;

use crate::util::{sigv4_trim_all, strict_query_pairs};

pub const KEY: &str = "AKWGFUZZCALLER0001";
pub const SECRET: &str = "fuzz-secret-key-0001";
pub const KEY2: &str = "AKWGFUZZCALLER0002";
pub const SECRET2: &str = "other-fuzz-secret-0002";
pub const HOST: &str = "gw.example:8080";
/// The gateway's clock for every run: 2026-01-01T00:00:00Z (deterministic for AFL).
pub const NOW_UNIX: u64 = 1_767_225_600;
pub const AMZ_DATE: &str = "20260101T000000Z";

/// `WAGUARD_FUZZ_IGNORE_TAB_COLLAPSE=1` stops reporting the known divergence in
/// `crashes/sigv4/README.md` (waguard folds tabs in signed header values into spaces, SigV4 and
/// aws-sigv4 do not), so a run can look past it. Read once, before the fork server starts.
pub static IGNORE_TAB_COLLAPSE: LazyLock<bool> = LazyLock::new(|| {
    std::env::var_os("WAGUARD_FUZZ_IGNORE_TAB_COLLAPSE").is_some_and(|v| v == "1")
});

/// `WAGUARD_FUZZ_VERIFY_ONLY=1`: report a changed request that `verify` accepts even when the
/// gateway's next step, `operation::route`, refuses it (see `crashes/sigv4_verify_only/`).
/// By default such a request counts as refused, because the gateway never acts on it.
pub static VERIFY_ONLY: LazyLock<bool> =
    LazyLock::new(|| std::env::var_os("WAGUARD_FUZZ_VERIFY_ONLY").is_some_and(|v| v == "1"));

pub fn now() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(NOW_UNIX)
}

pub static CALLERS: LazyLock<Callers> = LazyLock::new(|| {
    let caller = |k: &str, s: &str, team: &str| Caller {
        access_key_id: k.into(),
        secret_access_key: Secret::new(s),
        principal: format!("{team}@example.com"),
        team: team.into(),
        attributes: Default::default(),
    };
    Callers::from_callers(
        Path::new("fuzz"),
        vec![
            caller(KEY, SECRET, "payments"),
            caller(KEY2, SECRET2, "platform"),
        ],
    )
    .expect("fixed callers are valid")
});

fn secret_of(key: &str) -> Option<&'static str> {
    match key {
        KEY => Some(SECRET),
        KEY2 => Some(SECRET2),
        _ => None,
    }
}

/// A request as bytes, before the `http` crate sees it.
#[derive(Clone, PartialEq)]
pub struct Req {
    pub method: Vec<u8>,
    /// Origin-form request target: `/path?query`.
    pub target: Vec<u8>,
    pub headers: Vec<(Vec<u8>, Vec<u8>)>,
    pub body: Vec<u8>,
}

impl std::fmt::Debug for Req {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let s = |b: &[u8]| String::from_utf8_lossy(b).into_owned();
        let mut d = f.debug_struct("Req");
        d.field("method", &s(&self.method));
        d.field("target", &s(&self.target));
        let headers: Vec<(String, String)> =
            self.headers.iter().map(|(n, v)| (s(n), s(v))).collect();
        d.field("headers", &headers);
        d.field("body", &s(&self.body));
        d.finish()
    }
}

impl Req {
    pub fn to_parts(&self) -> Option<Parts> {
        let method = http::Method::from_bytes(&self.method).ok()?;
        let uri = http::Uri::try_from(self.target.as_slice()).ok()?;
        let mut b = http::Request::builder().method(method).uri(uri);
        for (n, v) in &self.headers {
            let n = HeaderName::from_bytes(n).ok()?;
            let v = HeaderValue::from_bytes(v).ok()?;
            b = b.header(n, v);
        }
        b.body(()).ok().map(|r| r.into_parts().0)
    }

    /// The text form the raw mode reads (used to write the seed corpus).
    pub fn to_raw(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.extend_from_slice(&self.method);
        out.push(b' ');
        out.extend_from_slice(&self.target);
        out.push(b'\n');
        for (n, v) in &self.headers {
            out.extend_from_slice(n);
            out.extend_from_slice(b": ");
            out.extend_from_slice(v);
            out.push(b'\n');
        }
        out.push(b'\n');
        out.extend_from_slice(&self.body);
        out
    }
}

pub fn warm_up() {
    LazyLock::force(&CALLERS);
    LazyLock::force(&IGNORE_TAB_COLLAPSE);
    LazyLock::force(&VERIFY_ONLY);
    for seed in seeds() {
        run(&seed);
    }
}

pub fn run(data: &[u8]) {
    run_with(data, *VERIFY_ONLY);
}

/// The stricter variant: a changed request must be refused by `verify` itself.
pub fn run_verify_only(data: &[u8]) {
    run_with(data, true);
}

fn run_with(data: &[u8], verify_only: bool) {
    match data.split_first() {
        Some((b'#', rest)) => structured(rest, verify_only),
        _ => raw(data),
    }
}

// ---------------------------------------------------------------------------------------------
// Raw mode

pub fn parse_raw(data: &[u8]) -> Option<Req> {
    let (head, body) = match find(data, b"\n\n") {
        Some(i) => (&data[..i], &data[i + 2..]),
        None => (data, &[][..]),
    };
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next()?;
    let sp = first.iter().position(|&b| b == b' ')?;
    let mut req = Req {
        method: first[..sp].to_vec(),
        target: first[sp + 1..].to_vec(),
        headers: Vec::new(),
        body: body.to_vec(),
    };
    for line in lines {
        let colon = line.iter().position(|&b| b == b':')?;
        let name = &line[..colon];
        let mut v = &line[colon + 1..];
        while let [b' ' | b'\t', r @ ..] = v {
            v = r;
        }
        while let [r @ .., b' ' | b'\t'] = v {
            v = r;
        }
        req.headers.push((name.to_vec(), v.to_vec()));
    }
    Some(req)
}

fn find(h: &[u8], n: &[u8]) -> Option<usize> {
    h.windows(n.len()).position(|w| w == n)
}

fn raw(data: &[u8]) {
    let Some(req) = parse_raw(data) else { return };
    let Some(parts) = req.to_parts() else { return };
    // Public helpers must not panic on anything a client can send.
    if let Some(Ok(d)) = parts.headers.get("x-amz-date").map(|v| v.to_str()) {
        let _ = parse_amz_date(d);
    }
    let _ = waguard::auth::sigv4::claimed_access_key_id(&parts.headers);
    if let Ok(a) = verify(&parts, &req.body, &CALLERS, now()) {
        oracle_agrees(&parts, &req.body, &a.region);
    }
}

/// The Authorization header's three parts, read here (not by waguard).
struct AuthParts<'a> {
    key: &'a str,
    date: &'a str,
    region: &'a str,
    signed: Vec<&'a str>,
    signature: &'a str,
}

fn auth_parts(v: &str) -> Option<AuthParts<'_>> {
    let rest = v.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut cred, mut signed, mut sig) = (None, None, None);
    for part in rest.split(',') {
        let (k, v) = part.trim_matches(' ').split_once('=')?;
        match k {
            "Credential" => cred = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => sig = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = cred?.split('/').collect();
    let [key, date, region, _service, _term] = scope[..] else {
        return None;
    };
    Some(AuthParts {
        key,
        date,
        region,
        signed: signed?.split(';').collect(),
        signature: sig?,
    })
}

/// `YYYYMMDD'T'HHMMSS'Z'` read without waguard's parser.
fn amz_time(s: &str) -> Option<SystemTime> {
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return None;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        let t = s.get(r)?;
        t.bytes()
            .all(|c| c.is_ascii_digit())
            .then(|| t.parse().ok())?
    };
    let date = time::Date::from_calendar_date(
        num(0..4)? as i32,
        time::Month::try_from(num(4..6)? as u8).ok()?,
        num(6..8)? as u8,
    )
    .ok()?;
    let t = time::Time::from_hms(num(9..11)? as u8, num(11..13)? as u8, num(13..15)? as u8).ok()?;
    let odt = time::PrimitiveDateTime::new(date, t).assume_utc();
    Some(SystemTime::from(odt))
}

/// Recomputes the signature of an accepted request with aws-sigv4 and requires equality.
fn oracle_agrees(parts: &Parts, body: &[u8], region: &str) {
    let auth = parts.headers[http::header::AUTHORIZATION]
        .to_str()
        .expect("accepted Authorization is ASCII");
    let a = auth_parts(auth).unwrap_or_else(|| {
        panic!("accepted an Authorization header the oracle cannot read: {auth:?}")
    });
    assert_eq!(a.region, region, "accepted region differs from the scope");
    let secret = secret_of(a.key).unwrap_or_else(|| panic!("accepted unknown key {:?}", a.key));
    let amz_date = parts.headers["x-amz-date"]
        .to_str()
        .expect("accepted x-amz-date is ASCII");
    let at = amz_time(amz_date).unwrap_or_else(|| panic!("accepted X-Amz-Date {amz_date:?}"));
    assert_eq!(
        &amz_date[..8],
        a.date,
        "accepted a scope date that is not X-Amz-Date's"
    );
    let skew = at
        .duration_since(now())
        .or_else(|_| now().duration_since(at))
        .unwrap_or_default();
    assert!(
        skew <= Duration::from_secs(300),
        "accepted a date {skew:?} away"
    );

    if *IGNORE_TAB_COLLAPSE
        && a.signed.iter().any(|n| {
            parts
                .headers
                .get_all(*n)
                .iter()
                .any(|v| v.as_bytes().contains(&b'\t'))
        })
    {
        return;
    }
    let mut headers: Vec<(&str, String)> = Vec::new();
    for name in &a.signed {
        if matches!(*name, "x-amz-date" | "x-amz-content-sha256") {
            continue;
        }
        for v in parts.headers.get_all(*name) {
            headers.push((name, v.to_str().expect("signed value is ASCII").to_string()));
        }
    }
    let host = match parts.headers.get(http::header::HOST) {
        Some(h) => h.to_str().expect("host is ASCII").to_string(),
        None => parts
            .uri
            .authority()
            .expect("accepted without host or authority")
            .to_string(),
    };
    let pq = parts
        .uri
        .path_and_query()
        .map(|p| p.as_str())
        .unwrap_or("/");
    let uri = format!("http://{host}{pq}");
    let mut settings = SigningSettings::default();
    settings.excluded_headers = None;
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    if a.signed.contains(&"x-amz-content-sha256") {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity = Credentials::new(a.key, secret, None, None, "fuzz").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(a.region)
        .name("wellarchitected")
        .time(at)
        .settings(settings)
        .build()
        .expect("signing params")
        .into();
    let signable = SignableRequest::new(
        parts.method.as_str(),
        uri,
        headers.iter().map(|(k, v)| (*k, v.as_str())),
        SignableBody::Bytes(body),
    )
    .unwrap_or_else(|e| panic!("waguard accepted a request aws-sigv4 cannot sign: {e}"));
    let out = sign(signable, &params)
        .unwrap_or_else(|e| panic!("waguard accepted a request aws-sigv4 cannot sign: {e}"));
    let (instructions, signature) = out.into_parts();
    let (ref_headers, _) = instructions.into_parts();
    let ref_auth = ref_headers
        .iter()
        .find(|h| h.name() == "authorization")
        .map(|h| h.value().to_string())
        .unwrap_or_default();
    let ref_signed = auth_parts(&ref_auth)
        .map(|p| p.signed.join(";"))
        .unwrap_or_default();
    assert_eq!(
        ref_signed,
        a.signed.join(";"),
        "accepted SignedHeaders differ from what aws-sigv4 signs for this request"
    );
    assert_eq!(
        signature, a.signature,
        "waguard accepted a signature aws-sigv4 does not compute for this request\n{parts:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// Structured mode

pub const TEMPLATE_ARN_ENC: &str = crate::validate::TEMPLATE_ARN_ENC;

/// SDK-shaped requests: (method, target, has JSON body).
pub fn templates() -> Vec<(&'static str, String, bool)> {
    let wl = crate::validate::WORKLOAD_ID;
    let share = crate::validate::SHARE_ID;
    vec![
        (
            "POST",
            format!("/templates/shares/{TEMPLATE_ARN_ENC}"),
            true,
        ),
        (
            "GET",
            format!("/templates/shares/{TEMPLATE_ARN_ENC}?MaxResults=50&SharedWithPrefix=ou-ab12"),
            false,
        ),
        ("POST", format!("/workloads/{wl}/shares"), true),
        ("PATCH", format!("/workloads/{wl}/shares/{share}"), true),
        (
            "DELETE",
            format!(
                "/templates/shares/{TEMPLATE_ARN_ENC}/{share}?ClientRequestToken=3f0a9d1e-2b7c-4e5f-8a6d-9c0b1e2f3a4b"
            ),
            false,
        ),
    ]
}

/// Signs `req` (host and the other headers already in it) with aws-sigv4 the way the SDKs do,
/// and appends the headers the signer adds. `None` if aws-sigv4 will not sign it.
pub fn sign_req(
    req: &mut Req,
    key: &str,
    secret: &str,
    at: SystemTime,
    content_sha: bool,
) -> Option<()> {
    let target = std::str::from_utf8(&req.target).ok()?;
    let method = std::str::from_utf8(&req.method).ok()?;
    let headers: Vec<(&str, &str)> = req
        .headers
        .iter()
        .map(|(n, v)| Some((std::str::from_utf8(n).ok()?, std::str::from_utf8(v).ok()?)))
        .collect::<Option<_>>()?;
    let mut settings = SigningSettings::default();
    settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
    if content_sha {
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
    }
    let identity = Credentials::new(key, secret, None, None, "fuzz").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("wellarchitected")
        .time(at)
        .settings(settings)
        .build()
        .ok()?
        .into();
    let signable = SignableRequest::new(
        method,
        format!("http://{HOST}{target}"),
        headers.into_iter(),
        SignableBody::Bytes(&req.body),
    )
    .ok()?;
    let (instructions, _) = sign(signable, &params).ok()?.into_parts();
    let (added, _) = instructions.into_parts();
    for h in added {
        req.headers
            .push((h.name().as_bytes().to_vec(), h.value().as_bytes().to_vec()));
    }
    Some(())
}

/// Builds and signs the structured request; `None` when the input does not make one.
pub fn build_structured(template: u8, flags: u8, skew: u8, rest: &[u8]) -> Option<(Req, bool)> {
    let tpls = templates();
    let t = template as usize % (tpls.len() + 1);
    let (method, target, body) = if t < tpls.len() {
        let (m, p, has_body) = &tpls[t];
        (
            m.to_string(),
            p.clone(),
            if *has_body { rest.to_vec() } else { Vec::new() },
        )
    } else {
        // Fuzzed `METHOD /path?query` line, then the body.
        let (line, body) = match rest.iter().position(|&b| b == b'\n') {
            Some(i) => (&rest[..i], &rest[i + 1..]),
            None => (rest, &[][..]),
        };
        let line = std::str::from_utf8(line).ok()?;
        let (m, p) = line.split_once(' ')?;
        if !p.starts_with('/') {
            return None;
        }
        (m.to_string(), p.to_string(), body.to_vec())
    };
    let mut req = Req {
        method: method.into_bytes(),
        target: target.into_bytes(),
        headers: vec![(b"host".to_vec(), HOST.as_bytes().to_vec())],
        body,
    };
    if !req.body.is_empty() || flags & 1 != 0 {
        let ct: &[u8] = if flags & 32 != 0 {
            b"application/x-amz-json-1.1"
        } else {
            b"application/json"
        };
        req.headers.push((b"content-type".to_vec(), ct.to_vec()));
    }
    if flags & 2 != 0 {
        req.headers.push((
            b"x-amz-user-agent".to_vec(),
            b"aws-sdk-rust/1.3.9 api/wellarchitected/1.0 os/linux lang/rust/1.95.0".to_vec(),
        ));
    }
    if flags & 4 != 0 {
        req.headers.push((
            b"amz-sdk-invocation-id".to_vec(),
            b"6b1f0c1e-5c1a-4a39-9d0e-0f4c2b7e8a11".to_vec(),
        ));
        req.headers
            .push((b"amz-sdk-request".to_vec(), b"attempt=1; max=3".to_vec()));
    }
    if flags & 16 != 0 {
        // Unsigned: aws-sigv4 leaves user-agent out by default, as the SDKs do.
        req.headers.push((
            b"user-agent".to_vec(),
            b"aws-cli/2.15.30 Python/3.11.8 Linux/6.1 exe/x86_64.debian.12".to_vec(),
        ));
    }
    let content_sha = flags & 8 != 0;
    let offset = (skew as i64 - 128) * 2; // -256 ..= 254 s: inside the 5 minute window
    let at = if offset >= 0 {
        now() + Duration::from_secs(offset as u64)
    } else {
        now() - Duration::from_secs((-offset) as u64)
    };
    sign_req(&mut req, KEY, SECRET, at, content_sha)?;
    Some((req, content_sha))
}

const INSERT_NAMES: &[&str] = &[
    "x-amz-security-token",
    "x-amz-target",
    "x-amz-content-sha256",
    "x-amz-date",
    "authorization",
    "host",
    "content-type",
    "content-encoding",
    "x-http-method-override",
    "user-agent",
    "x-amz-user-agent",
    "accept",
    "X-Amz-Date",
    "x-amz-meta-extra",
];

fn structured(d: &[u8], verify_only: bool) {
    if d.len() < 7 {
        return;
    }
    let (template, field, pos, newb, flags, skew) = (
        d[0],
        d[1],
        u16::from_be_bytes([d[2], d[3]]) as usize,
        d[4],
        d[5],
        d[6],
    );
    let Some((orig, _)) = build_structured(template, flags, skew, &d[7..]) else {
        return;
    };
    let Some(parts) = orig.to_parts() else { return };
    let presigned_looking = parts.uri.query().is_some_and(|q| {
        q.split('&').any(|kv| {
            let k = kv.split('=').next().unwrap_or("");
            k.eq_ignore_ascii_case("X-Amz-Signature") || k.eq_ignore_ascii_case("X-Amz-Credential")
        })
    });
    if presigned_looking {
        return;
    }
    if let Err(e) = verify(&parts, &orig.body, &CALLERS, now()) {
        panic!("waguard refused a request aws-sigv4 signed: {e:?}\n{orig:?}");
    }

    let mut m = orig.clone();
    let flip = |v: &mut Vec<u8>| {
        if v.is_empty() {
            return;
        }
        let i = pos % v.len();
        v[i] = newb;
    };
    match field % 7 {
        0 => flip(&mut m.body),
        1 => flip(&mut m.target),
        2 => {
            let count = m.headers.len();
            let v = &mut m.headers[pos % count].1;
            if !v.is_empty() {
                let i = (pos / count) % v.len();
                v[i] = newb;
            }
        }
        3 => {
            let count = m.headers.len();
            let n = &mut m.headers[pos % count].0;
            let i = (pos / count) % n.len();
            n[i] = newb;
        }
        4 => flip(&mut m.method),
        5 => {
            let name = INSERT_NAMES[pos % INSERT_NAMES.len()];
            let value: Vec<u8> = match newb % 4 {
                0 => b"1".to_vec(),
                1 => Vec::new(),
                // A copy of an existing value of that name, if any.
                2 => m
                    .headers
                    .iter()
                    .find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes()))
                    .map(|(_, v)| v.clone())
                    .unwrap_or_else(|| b"1".to_vec()),
                _ => AMZ_DATE.as_bytes().to_vec(),
            };
            m.headers.push((name.as_bytes().to_vec(), value));
        }
        _ => {
            let h = pos % m.headers.len();
            m.headers.remove(h);
        }
    }
    // hyper hands the gateway origin-form targets (`/path?query`); other forms never route.
    if m == orig || !m.target.starts_with(b"/") {
        return;
    }
    let Some(mparts) = m.to_parts() else { return };
    if verify(&mparts, &m.body, &CALLERS, now()).is_ok() {
        // The gateway routes every verified request before acting on it; what routing refuses
        // is refused, unless the verify-only variant is asked for.
        let routed = route(
            mparts.method.as_str(),
            mparts.uri.path(),
            mparts.uri.query(),
        );
        if !verify_only && routed.is_err() {
            return;
        }
        if let Err(why) = equivalent(&orig, &parts, &m, &mparts) {
            panic!(
                "waguard accepted a request changed after signing ({why})\nsigned:  {orig:?}\nchanged: {m:?}"
            );
        }
    }
}

/// Whether two requests are the same to anything SigV4 protects; `Err` names the difference.
fn equivalent(a: &Req, ap: &Parts, b: &Req, bp: &Parts) -> Result<(), String> {
    if ap.method != bp.method {
        return Err("method".into());
    }
    if ap.uri.path() != bp.uri.path() {
        return Err("path".into());
    }
    if ap.uri.query() != bp.uri.query() {
        let qa = strict_query_pairs(ap.uri.query().unwrap_or(""));
        let qb = strict_query_pairs(bp.uri.query().unwrap_or(""));
        if qa.is_none() || qa != qb {
            return Err("query".into());
        }
    }
    if a.body != b.body {
        return Err("body".into());
    }
    let signed: Vec<String> = ap
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(auth_parts)
        .map(|p| p.signed.iter().map(|s| s.to_string()).collect())
        .unwrap_or_default();
    let protected =
        |n: &str| n == "authorization" || n.starts_with("x-amz-") || signed.iter().any(|s| s == n);
    let mut names: Vec<&HeaderName> = ap.headers.keys().chain(bp.headers.keys()).collect();
    names.sort_by(|x, y| x.as_str().cmp(y.as_str()));
    names.dedup();
    for n in names {
        if !protected(n.as_str()) {
            continue;
        }
        let norm = |v: &HeaderValue| {
            if *IGNORE_TAB_COLLAPSE {
                let spaced: Vec<u8> = v
                    .as_bytes()
                    .iter()
                    .map(|&b| if b == b'\t' { b' ' } else { b })
                    .collect();
                sigv4_trim_all(&spaced)
            } else {
                sigv4_trim_all(v.as_bytes())
            }
        };
        let va: Vec<Vec<u8>> = ap.headers.get_all(n).iter().map(norm).collect();
        let vb: Vec<Vec<u8>> = bp.headers.get_all(n).iter().map(norm).collect();
        if va != vb {
            return Err(format!(
                "header {n}: {:?} -> {:?}",
                va.iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect::<Vec<_>>(),
                vb.iter()
                    .map(|v| String::from_utf8_lossy(v).into_owned())
                    .collect::<Vec<_>>()
            ));
        }
    }
    Ok(())
}

/// Seeds for both modes (also written to `corpus/sigv4` by `examples/gen_corpus.rs`).
pub fn seeds() -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let bodies: [&[u8]; 3] = [
        br#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"3f0a9d1e-2b7c-4e5f-8a6d-9c0b1e2f3a4b"}"#,
        br#"{"SharedWith":"123456789012","PermissionType":"READONLY","ClientRequestToken":"t-1"}"#,
        br#"{"PermissionType":"CONTRIBUTOR"}"#,
    ];
    // Raw, correctly signed at NOW: the fuzzer mutates them into near misses.
    for (i, (m, p, has_body)) in templates().into_iter().enumerate() {
        let body = if has_body {
            bodies[i % bodies.len()].to_vec()
        } else {
            Vec::new()
        };
        let mut req = Req {
            method: m.as_bytes().to_vec(),
            target: p.into_bytes(),
            headers: vec![(b"host".to_vec(), HOST.as_bytes().to_vec())],
            body,
        };
        if !req.body.is_empty() {
            req.headers
                .push((b"content-type".to_vec(), b"application/json".to_vec()));
        }
        if i % 2 == 0 {
            req.headers.push((
                b"x-amz-user-agent".to_vec(),
                b"aws-sdk-rust/1.3.9 api/wellarchitected/1.0 os/linux".to_vec(),
            ));
        }
        if sign_req(&mut req, KEY, SECRET, now(), i == 3).is_some() {
            out.push(req.to_raw());
        }
    }
    // Structured: one per template and mutation kind.
    let picks = [
        (0u8, 0u8),
        (1, 1),
        (2, 2),
        (3, 3),
        (4, 4),
        (0, 5),
        (2, 6),
        (5, 1),
        (5, 2),
        (1, 5),
    ];
    for (t, field) in picks {
        {
            let mut s = vec![
                b'#',
                t,
                field,
                0,
                17 + t + field,
                b'X',
                0x1b | (t << 2),
                128,
            ];
            if t == 5 {
                s.extend_from_slice(b"GET /reviewTemplates?MaxResults=5\n");
            } else {
                s.extend_from_slice(bodies[(t as usize) % bodies.len()]);
            }
            out.push(s);
        }
    }
    out
}
