//! Property: for any request the gateway forwards, the operation, resource and SharedWith it
//! decided on are exactly what an independent parse of the forwarded bytes gives. Requests are
//! generated with every encoding trick at hand: percent-encoded letters, lowercase hex, raw
//! colons, JSON unicode escapes, duplicate and case-variant keys, odd whitespace.

mod common;

use std::collections::BTreeMap;

use common::*;
use percent_encoding::percent_decode_str;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use serde_json::Value;

const TARGETS: &[&str] = &[
    APPROVED_OU,
    UNAPPROVED_OU,
    "ou-ab12-22222222",
    "111122223333",
    "o-exampleorg01",
    "999999999999",
];

#[derive(Debug, Clone)]
struct Case {
    method: &'static str,
    /// How each character of the ARN is written: 0 as is (when legal), 1 %XX upper, 2 %xx lower.
    arn_style: Vec<u8>,
    target: usize,
    /// Characters of SharedWith written as \uXXXX.
    escape_mask: Vec<bool>,
    duplicate: Option<usize>,
    extra_key: Option<&'static str>,
    spaces: usize,
    swap_order: bool,
    lens: bool,
}

fn case() -> impl Strategy<Value = Case> {
    (
        prop_oneof![8 => Just("POST"), 1 => Just("GET"), 1 => Just("PUT")],
        prop::collection::vec(0u8..3, 96),
        0..TARGETS.len(),
        prop::collection::vec(any::<bool>(), 16),
        prop::option::weighted(0.15, 0..TARGETS.len()),
        prop::option::weighted(
            0.1,
            prop_oneof![
                Just("sharedWith"),
                Just("PermissionType"),
                Just("Shared\\u0057ith")
            ],
        ),
        0usize..3,
        any::<bool>(),
        prop::bool::weighted(0.15),
    )
        .prop_map(
            |(
                method,
                arn_style,
                target,
                escape_mask,
                duplicate,
                extra_key,
                spaces,
                swap_order,
                lens,
            )| Case {
                method,
                arn_style,
                target,
                escape_mask,
                duplicate,
                extra_key,
                spaces,
                swap_order,
                lens,
            },
        )
}

fn encode_arn(arn: &str, style: &[u8]) -> String {
    arn.chars()
        .enumerate()
        .map(|(i, c)| {
            let s = style.get(i).copied().unwrap_or(0);
            let must = !(c.is_ascii_alphanumeric() || "-._~:".contains(c));
            match (s, must) {
                (0, false) => c.to_string(),
                (2, _) => format!("%{:02x}", c as u32),
                _ => format!("%{:02X}", c as u32),
            }
        })
        .collect()
}

fn json_string(s: &str, mask: &[bool]) -> String {
    let mut out = String::from("\"");
    for (i, c) in s.chars().enumerate() {
        if mask.get(i).copied().unwrap_or(false) {
            out.push_str(&format!("\\u{:04x}", c as u32));
        } else {
            out.push(c);
        }
    }
    out.push('"');
    out
}

fn render(c: &Case, token: &str) -> (String, String, Vec<u8>) {
    let path = if c.lens {
        "/lenses/my-lens/shares".to_string()
    } else {
        format!(
            "/templates/shares/{}",
            encode_arn(TEMPLATE_ARN, &c.arn_style)
        )
    };
    let sp = " ".repeat(c.spaces);
    let mut members = vec![
        format!(
            "\"SharedWith\"{sp}:{sp}{}",
            json_string(TARGETS[c.target], &c.escape_mask)
        ),
        format!("\"ClientRequestToken\":{sp}\"{token}\""),
    ];
    if c.swap_order {
        members.reverse();
    }
    if let Some(d) = c.duplicate {
        members.push(format!("\"SharedWith\":\"{}\"", TARGETS[d]));
    }
    if let Some(k) = c.extra_key {
        members.push(format!("\"{k}\":\"123456789012\""));
    }
    let body = if c.method == "GET" {
        String::new()
    } else {
        format!("{{{sp}{}{sp}}}", members.join(&format!(",{sp}")))
    };
    (c.method.to_string(), path, body.into_bytes())
}

/// What an independent reader makes of the forwarded bytes: (operation, resource, SharedWith).
fn independent_parse(
    method: &str,
    path_and_query: &str,
    body: &[u8],
) -> (String, String, Option<String>) {
    let path = path_and_query.split('?').next().unwrap_or("");
    let segments: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|s| percent_decode_str(s).decode_utf8_lossy().into_owned())
        .collect();
    let seg: Vec<&str> = segments.iter().map(String::as_str).collect();
    let (op, resource) = match (method, seg.as_slice()) {
        ("POST", ["templates", "shares", arn]) => ("CreateTemplateShare", arn.to_string()),
        ("GET", ["templates", "shares", arn]) => ("ListTemplateShares", arn.to_string()),
        ("POST", ["lenses", alias, "shares"]) => ("CreateLensShare", alias.to_string()),
        ("GET", ["lenses", alias, "shares"]) => ("ListLensShares", alias.to_string()),
        _ => ("?", String::new()),
    };
    let shared_with = serde_json::from_slice::<Value>(body).ok().and_then(|v| {
        v.get("SharedWith")
            .and_then(Value::as_str)
            .map(str::to_string)
    });
    (op.to_string(), resource, shared_with)
}

#[test]
fn forwarded_requests_are_exactly_what_was_decided() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let h = rt.block_on(Harness::start());
    let mut runner = TestRunner::new(Config {
        cases: 256,
        failure_persistence: None,
        ..Config::default()
    });
    let n = std::cell::Cell::new(0u32);
    let forwarded_count = std::cell::Cell::new(0u32);
    runner
        .run(&case(), |c| {
            n.set(n.get() + 1);
            let token = format!("prop-{}", n.get());
            let (method, path, body) = render(&c, &token);
            let before = h.sim.received().len();
            let mut req = RawRequest::new(&method, &path, body.clone());
            if body.is_empty() {
                req.headers.clear();
            }
            let resp = rt.block_on(req.send(h.gateway.addr));
            let received = h.sim.received();
            prop_assert!(resp.status < 500, "{c:?} -> {resp:?}");
            if received.len() == before {
                prop_assert!(
                    (400..500).contains(&resp.status),
                    "not forwarded but {resp:?}"
                );
                return Ok(());
            }
            forwarded_count.set(forwarded_count.get() + 1);
            prop_assert_eq!(received.len(), before + 1);
            let sent = &received[before];
            prop_assert_eq!(
                sent.body.as_ref(),
                body.as_slice(),
                "body changed in transit"
            );
            let (op, resource, shared_with) =
                independent_parse(&sent.method, &sent.path_and_query, &sent.body);
            let records = rt.block_on(h.audit_records());
            let d = records
                .iter()
                .rev()
                .find(|r| r["type"] == "decision")
                .unwrap();
            prop_assert_eq!(
                d["decision"].as_str(),
                Some("allow"),
                "the forwarded request was allowed"
            );
            if method != "GET" {
                prop_assert_eq!(
                    d["client_request_token"].as_str(),
                    Some(token.as_str()),
                    "the decision is this request's"
                );
            }
            prop_assert_eq!(d["operation"].as_str(), Some(op.as_str()));
            prop_assert_eq!(d["resource_arn"].as_str().unwrap_or(""), resource.as_str());
            prop_assert_eq!(d["shared_with"].as_str().map(str::to_string), shared_with);
            Ok(())
        })
        .unwrap();
    let forwarded_count = forwarded_count.get();
    assert!(
        forwarded_count > 20,
        "too few forwarded cases ({forwarded_count}) to mean anything"
    );
    rt.block_on(h.stop());
    // Keep the decided-per-operation tally visible in the test output.
    let mut ops: BTreeMap<String, u32> = BTreeMap::new();
    for r in rt.block_on(h.audit_records()) {
        if r["type"] == "decision" {
            *ops.entry(format!(
                "{}:{}",
                r["operation"].as_str().unwrap_or("-"),
                r["decision"].as_str().unwrap_or("-")
            ))
            .or_default() += 1;
        }
    }
    println!("{ops:?}");
}
