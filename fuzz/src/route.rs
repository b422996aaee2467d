//! `route`: input `METHOD SP PATH[?QUERY]` (no space: method GET). `waguard::operation::route`
//! never panics and fails only with ValidationException / UnknownOperationException. When it
//! routes, an independent reading of the same bytes must agree with it:
//!
//! - the method and every literal segment match the operation's template byte for byte;
//! - the raw path has no `+` and no `;` (read differently by different decoders);
//! - every label is the percent-decoding of its raw segment (decoded here, not by waguard), is
//!   valid UTF-8 without control characters, is not `.`/`..`, and contains `/` only when the
//!   label name ends with `Arn` or is `LensAlias`;
//! - every label fits its shape in the service model, checked here without regexes: only
//!   `A-Z a-z 0-9 : / _ . -` (so no `+`, `;`, `\`, `%` or whitespace once decoded), the
//!   model's length (or, for MilestoneNumber, plain decimal 1 to 100), and per label the form
//!   (32 hex digits, a UUID, or an ARN of the right resource type with a 12-digit account);
//! - the query holds only the operation's parameters, non-list ones once, no `+`;
//! - re-encoding the decoded labels and query the way the SDKs do and routing again gives the
//!   same operation, labels and query (decode/encode round trip).
//!
//! Also: `canonical_uri` of any path decodes back to that path (it is injective), and
//! `canonical_query` yields sorted, fully encoded `k=v` pairs.

use std::collections::BTreeMap;

use waguard::auth::sigv4::{canonical_query, canonical_uri};
use waguard::error::GatewayError;
use waguard::operation::{Routed, Segment, label_shape, route};

use crate::util::{percent_decode, sdk_encode};

pub fn split(s: &str) -> (&str, &str, Option<&str>) {
    let (method, target) = s.split_once(' ').unwrap_or(("GET", s));
    match target.split_once('?') {
        Some((p, q)) => (method, p, Some(q)),
        None => (method, target, None),
    }
}

pub fn run(data: &[u8]) {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    let (method, path, query) = split(s);
    check_canonical(path, query);
    match route(method, path, query) {
        Ok(routed) => check_routed(method, path, query, &routed),
        Err(GatewayError::Validation(_) | GatewayError::UnknownOperation(_)) => {}
        Err(other) => panic!("route failed with an unexpected error kind: {other:?}"),
    }
}

fn check_canonical(path: &str, query: Option<&str>) {
    let c = canonical_uri(path);
    if path.is_empty() {
        assert_eq!(c, "/");
    } else {
        let back = percent_decode(&c).expect("canonical_uri produced a malformed escape");
        assert_eq!(back, path.as_bytes(), "canonical_uri is not invertible");
        assert!(
            c.bytes().all(|b| b.is_ascii_alphanumeric()
                || matches!(b, b'-' | b'.' | b'_' | b'~' | b'/' | b'%')),
            "canonical_uri left a reserved character: {c:?}"
        );
    }
    if let Some(q) = query {
        let cq = canonical_query(q);
        let pairs: Vec<&str> = if cq.is_empty() {
            Vec::new()
        } else {
            cq.split('&').collect()
        };
        for p in &pairs {
            let (k, v) = p
                .split_once('=')
                .unwrap_or_else(|| panic!("canonical_query pair without '=': {p:?}"));
            for part in [k, v] {
                assert!(
                    part.bytes().all(|b| b.is_ascii_alphanumeric()
                        || matches!(b, b'-' | b'.' | b'_' | b'~' | b'%')),
                    "canonical_query left a reserved character: {cq:?}"
                );
                assert!(
                    percent_decode(part).is_some(),
                    "canonical_query produced a malformed escape: {cq:?}"
                );
            }
        }
        let split: Vec<(&str, &str)> = pairs
            .iter()
            .map(|p| p.split_once('=').unwrap_or((p, "")))
            .collect();
        assert!(
            split.windows(2).all(|w| w[0] <= w[1]),
            "canonical_query is not sorted: {cq:?}"
        );
    }
}

fn label_may_contain_slash(name: &str) -> bool {
    name.ends_with("Arn") || name == "LensAlias"
}

fn lower_hex(s: &str, n: usize) -> bool {
    s.len() == n
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// 8-4-4-4-12 lowercase hex digits.
fn uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| lower_hex(p, n))
}

/// `arn:aws…:wellarchitected:<region>:<account>:<resource>`, split into region, account and
/// resource; `None` if it is not a Well-Architected ARN.
fn wa_arn(s: &str) -> Option<(&str, &str, &str)> {
    let mut parts = s.splitn(6, ':');
    let (arn, partition, service) = (parts.next()?, parts.next()?, parts.next()?);
    let (region, account, resource) = (parts.next()?, parts.next()?, parts.next()?);
    (arn == "arn" && partition.starts_with("aws") && service == "wellarchitected")
        .then_some((region, account, resource))
}

fn account(s: &str) -> bool {
    s.len() == 12 && s.bytes().all(|b| b.is_ascii_digit())
}

/// An ARN of `kind` (`review-template/…`) in an account, whose id passes `id`.
fn arn_of(s: &str, kind: &str, id: impl Fn(&str) -> bool) -> bool {
    wa_arn(s).is_some_and(|(region, acct, resource)| {
        !region.is_empty()
            && account(acct)
            && resource
                .strip_prefix(kind)
                .and_then(|r| r.strip_prefix('/'))
                .is_some_and(id)
    })
}

fn word(s: &str, extra: &[u8]) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || extra.contains(&b))
}

/// The label fits its shape in the service model (necessary conditions, written apart from
/// waguard's patterns).
fn check_label_shape(op: &str, name: &str, v: &str) {
    let shape = label_shape(name).unwrap_or_else(|| panic!("{op}: label {name} has no shape"));
    if shape.integer {
        let n: usize = v
            .parse()
            .unwrap_or_else(|_| panic!("{op}: {name} = {v:?} is not a number"));
        assert!(
            v.bytes().all(|b| b.is_ascii_digit()) && !v.starts_with('0') && (1..=100).contains(&n),
            "{op}: {name} = {v:?} is not plain decimal 1 to 100"
        );
        return;
    }
    assert!(
        v.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b":/_.-".contains(&b)),
        "{op}: {name} = {v:?} has a character outside A-Z a-z 0-9 : / _ . -"
    );
    let len = v.chars().count();
    assert!(
        len >= shape.min.unwrap_or(1).max(1) && len <= shape.max.unwrap_or(2048),
        "{op}: {name} has length {len}, outside the model's"
    );
    let ok = match name {
        "WorkloadId" | "ShareId" | "ShareInvitationId" => lower_hex(v, 32),
        "id" | "reportId" | "generationId" => uuid(v),
        "TemplateArn" => arn_of(v, "review-template", |id| lower_hex(id, 32)),
        "ProfileArn" => arn_of(v, "profile", |id| {
            word(id, b"") && !id.bytes().any(|b| b.is_ascii_uppercase())
        }),
        "profileArn" => arn_of(v, "agent-profile", |id| word(id, b"_-")),
        "recommendationArn" => arn_of(v, "agent-recommendation", uuid),
        "WorkloadArn" => wa_arn(v).is_some_and(|(region, acct, resource)| {
            !region.is_empty()
                && account(acct)
                && resource
                    .split_once('/')
                    .is_some_and(|(kind, id)| word(kind, b"-") && word(id, b"_-"))
        }),
        "LensAlias" => match wa_arn(v) {
            None => !v.contains(':') && !v.contains('/'),
            Some((_, acct, resource)) => {
                (acct.is_empty() || acct == "aws" || account(acct))
                    && resource
                        .strip_prefix("lens/")
                        .is_some_and(|id| word(id, b"_.-"))
            }
        },
        "QuestionId" => !v.contains(':') && !v.contains('/'),
        other => panic!("{op}: label {other} has no check here; add one"),
    };
    assert!(ok, "{op}: {name} = {v:?} does not fit the model");
}

fn check_routed(method: &str, path: &str, query: Option<&str>, routed: &Routed) {
    let spec = routed.spec;
    assert!(
        !path.contains('+') && !path.contains(';'),
        "{}: routed a path with a raw '+' or ';': {path:?}",
        spec.name
    );
    assert_eq!(
        spec.method, method,
        "{} routed from method {method}",
        spec.name
    );
    let raw: Vec<&str> = path
        .strip_prefix('/')
        .expect("routed a path without a leading '/'")
        .split('/')
        .collect();
    assert_eq!(
        raw.len(),
        spec.path.len(),
        "{}: segment count differs from the template",
        spec.name
    );
    let mut label_count = 0;
    for (seg, tmpl) in raw.iter().zip(spec.path) {
        match tmpl {
            Segment::Literal(l) => assert_eq!(seg, l, "{}: literal segment differs", spec.name),
            Segment::Label(name) => {
                label_count += 1;
                let decoded = percent_decode(seg)
                    .unwrap_or_else(|| panic!("{name}: routed a malformed escape in {seg:?}"));
                let decoded = String::from_utf8(decoded)
                    .unwrap_or_else(|_| panic!("{name}: routed a label that is not UTF-8"));
                let got = routed
                    .label(name)
                    .unwrap_or_else(|| panic!("{}: label {name} missing", spec.name));
                assert_eq!(
                    got, decoded,
                    "{name}: decoded label differs from raw {seg:?}"
                );
                assert!(!got.is_empty(), "{name}: empty label");
                assert!(got != "." && got != "..", "{name}: dot segment routed");
                if got.contains('/') {
                    assert!(
                        label_may_contain_slash(name),
                        "{}: label {name} = {got:?} contains '/' (raw {seg:?})",
                        spec.name
                    );
                }
                assert!(
                    !got.chars().any(char::is_control),
                    "{name}: control character in {got:?}"
                );
                check_label_shape(spec.name, name, got);
            }
        }
    }
    assert_eq!(
        routed.labels.len(),
        label_count,
        "{}: extra labels",
        spec.name
    );

    // The query, read independently.
    let mut expected: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(q) = query {
        assert!(!q.contains('+'), "routed a query containing '+'");
        if !q.is_empty() {
            for pair in q.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = String::from_utf8(percent_decode(k).expect("malformed query name"))
                    .expect("query name not UTF-8");
                let v = String::from_utf8(percent_decode(v).expect("malformed query value"))
                    .expect("query value not UTF-8");
                let param = spec
                    .query
                    .iter()
                    .find(|p| p.name == k)
                    .unwrap_or_else(|| panic!("{}: routed unknown query {k:?}", spec.name));
                let values = expected.entry(k).or_default();
                assert!(
                    values.is_empty() || param.list,
                    "{}: repeated non-list parameter {}",
                    spec.name,
                    param.name
                );
                values.push(v);
            }
        }
    }
    assert_eq!(routed.query, expected, "{}: query differs", spec.name);

    // Round trip: encode like an SDK, route again, same answer.
    let mut re_path = String::new();
    for tmpl in spec.path {
        re_path.push('/');
        match tmpl {
            Segment::Literal(l) => re_path.push_str(l),
            Segment::Label(name) => re_path.push_str(&sdk_encode(routed.label(name).unwrap_or(""))),
        }
    }
    let re_query: Vec<String> = routed
        .query
        .iter()
        .flat_map(|(k, vs)| {
            vs.iter()
                .map(move |v| format!("{}={}", sdk_encode(k), sdk_encode(v)))
        })
        .collect();
    let re_query = re_query.join("&");
    let again = route(
        method,
        &re_path,
        if query.is_some() {
            Some(&re_query)
        } else {
            None
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{}: re-encoded request {re_path}?{re_query} refused: {e:?}",
            spec.name
        )
    });
    assert_eq!(
        again.spec.name, spec.name,
        "re-encoded request routes elsewhere"
    );
    assert_eq!(again.labels, routed.labels, "re-encoded labels differ");
    assert_eq!(again.query, routed.query, "re-encoded query differs");
}
