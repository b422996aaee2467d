//! `validate`: the input is a JSON request body, or `#` + Content-Type header values (one per
//! line, none at all for `#`) + an empty line + the body. It is validated
//! (`waguard::validate::validate`, by default with Content-Type `application/json`) as the body
//! of a routed CreateTemplateShare, CreateWorkloadShare and UpdateWorkloadShare. Never a panic;
//! failures are ValidationException.
//!
//! With headers given: two or more Content-Type headers are refused; one is accepted exactly
//! when it is `application/json` with at most a `charset=utf-8` parameter (case-insensitive,
//! spaces and tabs around `;`, checked here without waguard's code), and then the answer is the
//! one for `application/json`, with that value as the request's content type; none is accepted
//! only without a body.
//!
//! When waguard accepts, an independent parse of the same bytes must agree:
//!
//! - `serde_json::from_slice::<Value>` succeeds and gives the body waguard decided on;
//! - the independent reader (`crate::json`) finds no repeated key at any depth;
//! - there is no member outside the operation's body members;
//! - SharedWith, PermissionType and ClientRequestToken are the ones serde_json reads, within the
//!   service model's limits, and the share target type matches a regex-free classification;
//! - the policy input (`waguard::policy::input::build`) carries that same SharedWith and body.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::{Arc, LazyLock};

use http::{HeaderMap, HeaderValue, Method};
use serde_json::Value;
use time::OffsetDateTime;
use waguard::auth::{Authenticated, Caller, Secret};
use waguard::error::GatewayError;
use waguard::operation::{Routed, route};
use waguard::policy::input;
use waguard::validate::{Validated, validate};

use crate::json;

pub const TEMPLATE_ARN_ENC: &str = "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Areview-template%2F0123456789abcdef0123456789abcdef";
pub const WORKLOAD_ID: &str = "0123456789abcdef0123456789abcdef";
pub const SHARE_ID: &str = "fedcba9876543210fedcba9876543210";

struct Case {
    method: Method,
    path: String,
    routed: Routed,
}

static CASES: LazyLock<Vec<Case>> = LazyLock::new(|| {
    [
        ("POST", format!("/templates/shares/{TEMPLATE_ARN_ENC}")),
        ("POST", format!("/workloads/{WORKLOAD_ID}/shares")),
        (
            "PATCH",
            format!("/workloads/{WORKLOAD_ID}/shares/{SHARE_ID}"),
        ),
    ]
    .into_iter()
    .map(|(m, p)| Case {
        method: m.parse().expect("method"),
        routed: route(m, &p, None).expect("fixed paths route"),
        path: p,
    })
    .collect()
});

static HEADERS: LazyLock<HeaderMap> = LazyLock::new(|| {
    let mut h = HeaderMap::new();
    h.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h
});

static AUTH: LazyLock<Authenticated> = LazyLock::new(|| Authenticated {
    caller: Arc::new(Caller {
        access_key_id: "AKWGFUZZCALLER0001".into(),
        secret_access_key: Secret::new("fuzz-secret-key-0001"),
        principal: "fuzz@example.com".into(),
        team: "payments".into(),
        attributes: Default::default(),
    }),
    region: "us-east-1".into(),
    signed_at: OffsetDateTime::UNIX_EPOCH,
});

/// Initialises the lazily built statics (and waguard's regexes) before the fork server starts,
/// so the first iteration does not differ from the others.
pub fn warm_up() {
    LazyLock::force(&CASES);
    LazyLock::force(&HEADERS);
    LazyLock::force(&AUTH);
    run(br#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"t","PermissionType":"READONLY"}"#);
    run(br#"{"SharedWith":"o-abcdefghij","ClientRequestToken":"t"}"#);
    run(br#"{"PermissionType":"CONTRIBUTOR"}"#);
}

/// `application/json`, then at most `;charset=utf-8`, spaces and tabs around the `;`, any case.
fn content_type_ok(value: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(value) else {
        return false;
    };
    let lower = text.to_ascii_lowercase();
    let ows = |s: &str| s.trim_start_matches([' ', '\t']).to_string();
    let Some(rest) = ows(&lower).strip_prefix("application/json").map(ows) else {
        return false;
    };
    if rest.is_empty() {
        return true;
    }
    let Some(param) = rest.strip_prefix(';') else {
        return false;
    };
    ows(param).trim_end_matches([' ', '\t']) == "charset=utf-8"
}

/// Splits `#` + header lines + empty line + body; `None` when the header values are not legal
/// header values (they could not arrive at all).
fn split_headers(data: &[u8]) -> Option<(Vec<HeaderValue>, &[u8])> {
    let rest = data.strip_prefix(b"#")?;
    let end = rest.windows(2).position(|w| w == b"\n\n")?;
    let (lines, body) = (&rest[..end], &rest[end + 2..]);
    let mut values = Vec::new();
    if !lines.is_empty() {
        for line in lines.split(|b| *b == b'\n') {
            values.push(HeaderValue::from_bytes(line).ok()?);
        }
    }
    Some((values, body))
}

pub fn run(data: &[u8]) {
    if data.first() == Some(&b'#') {
        if let Some((values, body)) = split_headers(data) {
            run_with_content_types(&values, body);
        }
        return;
    }
    run_body(data);
}

fn run_with_content_types(values: &[HeaderValue], body: &[u8]) {
    let mut headers = HeaderMap::new();
    for v in values {
        headers.append(http::header::CONTENT_TYPE, v.clone());
    }
    for case in CASES.iter() {
        let name = case.routed.spec.name;
        let got = validate(&case.routed, &case.method, &headers, body);
        if let Err(e) = &got {
            assert!(
                matches!(e, GatewayError::Validation(_)),
                "{name}: validate failed with an unexpected error kind: {e:?}"
            );
        }
        let reference = validate(&case.routed, &case.method, &HEADERS, body);
        match values {
            [] => {
                if body.is_empty() {
                    assert_eq!(
                        got.is_ok(),
                        reference.is_ok(),
                        "{name}: no Content-Type changed the answer for an empty body"
                    );
                } else {
                    assert!(got.is_err(), "{name}: accepted a body without Content-Type");
                }
            }
            [one] if content_type_ok(one.as_bytes()) => {
                assert_eq!(
                    got.is_ok(),
                    reference.is_ok(),
                    "{name}: Content-Type {one:?} changed the answer: {got:?} vs {reference:?}"
                );
            }
            [one] => assert!(got.is_err(), "{name}: accepted Content-Type {one:?}"),
            _ => assert!(
                got.is_err(),
                "{name}: accepted {} Content-Types",
                values.len()
            ),
        }
        if let Ok(v) = &got {
            assert_eq!(
                v.content_type.as_ref(),
                values.first(),
                "{name}: the decided Content-Type differs"
            );
            if !body.is_empty() {
                check(case, body, v);
            }
        }
    }
}

fn run_body(data: &[u8]) {
    for case in CASES.iter() {
        match validate(&case.routed, &case.method, &HEADERS, data) {
            Ok(v) => check(case, data, &v),
            Err(GatewayError::Validation(_)) => {}
            Err(other) => panic!(
                "{}: validate failed with an unexpected error kind: {other:?}",
                case.routed.spec.name
            ),
        }
    }
}

/// 12 digits, `o-` + 10-32 of [a-z0-9], `ou-` + 4-32 + `-` + 8-32 of [a-z0-9], else unknown.
fn classify(s: &str) -> &'static str {
    let lower_alnum = |t: &str, min: usize, max: usize| {
        (min..=max).contains(&t.len())
            && t.bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
    };
    if s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit()) {
        return "account";
    }
    if let Some(rest) = s.strip_prefix("o-")
        && lower_alnum(rest, 10, 32)
    {
        return "organization";
    }
    if let Some(rest) = s.strip_prefix("ou-")
        && let Some((a, b)) = rest.split_once('-')
        && lower_alnum(a, 4, 32)
        && lower_alnum(b, 8, 32)
    {
        return "ou";
    }
    "unknown"
}

fn check(case: &Case, data: &[u8], v: &Validated) {
    let spec = case.routed.spec;
    let name = spec.name;
    let value: Value = serde_json::from_slice(data)
        .unwrap_or_else(|e| panic!("{name}: waguard accepted a body serde_json refuses: {e}"));
    let tree = json::parse(data).unwrap_or_else(|e| {
        panic!("{name}: waguard accepted a body the independent reader refuses: {e}")
    });
    if let Some(dup) = json::first_duplicate(&tree) {
        panic!("{name}: waguard accepted a body with a repeated key: {dup}");
    }
    let Value::Object(members) = &value else {
        panic!("{name}: waguard accepted a body that is not an object");
    };
    for k in members.keys() {
        assert!(
            spec.body.contains(&k.as_str()),
            "{name}: accepted member {k:?} outside {:?}",
            spec.body
        );
    }
    assert_eq!(
        v.body, value,
        "{name}: decided body differs from serde_json's"
    );

    let str_member = |k: &str| match members.get(k) {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => panic!("{name}: accepted non-string {k}: {other}"),
    };
    let shared_with = str_member("SharedWith");
    let permission = str_member("PermissionType");
    let token = str_member("ClientRequestToken");
    let share = v
        .share
        .as_ref()
        .unwrap_or_else(|| panic!("{name}: no share decided"));

    assert_eq!(
        v.client_request_token.as_deref(),
        token,
        "{name}: token differs"
    );
    if let Some(t) = token {
        assert!(
            (1..=2048).contains(&t.len()) && t.is_ascii(),
            "{name}: token {t:?} breaks the model"
        );
    }
    match name {
        "CreateTemplateShare" | "CreateWorkloadShare" => {
            let sw = shared_with.unwrap_or_else(|| panic!("{name}: accepted without SharedWith"));
            assert_eq!(
                share.shared_with.as_deref(),
                Some(sw),
                "{name}: SharedWith differs"
            );
            let n = sw.chars().count();
            assert!((12..=2048).contains(&n), "{name}: SharedWith length {n}");
            assert!(
                token.is_some(),
                "{name}: accepted without ClientRequestToken"
            );
            assert_eq!(
                share.target.as_ref().map(|t| t.kind.as_str()),
                Some(classify(sw)),
                "{name}: target type of {sw:?}"
            );
        }
        _ => assert_eq!(share.shared_with, None, "{name}: SharedWith decided"),
    }
    if matches!(name, "CreateWorkloadShare" | "UpdateWorkloadShare") {
        let p = permission.unwrap_or_else(|| panic!("{name}: accepted without PermissionType"));
        assert!(
            matches!(p, "READONLY" | "CONTRIBUTOR"),
            "{name}: PermissionType {p:?}"
        );
        assert_eq!(
            share.permission_type.as_deref(),
            Some(p),
            "{name}: PermissionType differs"
        );
    } else {
        assert_eq!(
            share.permission_type, None,
            "{name}: PermissionType decided"
        );
    }

    // What policy sees.
    let doc = serde_json::to_value(input::build(
        &AUTH,
        &case.routed,
        v,
        None,
        None,
        case.method.as_str(),
        &case.path,
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        OffsetDateTime::UNIX_EPOCH,
    ))
    .expect("the policy input serializes to JSON");
    assert_eq!(doc["operation"], name);
    assert_eq!(
        doc["request"]["body"], value,
        "{name}: policy input body differs"
    );
    assert_eq!(
        doc["share"]["shared_with"].as_str(),
        shared_with,
        "{name}: policy input shared_with differs"
    );
    assert_eq!(
        doc["share"]["permission_type"].as_str(),
        if matches!(name, "CreateWorkloadShare" | "UpdateWorkloadShare") {
            permission
        } else {
            None
        },
        "{name}: policy input permission_type differs"
    );
}
