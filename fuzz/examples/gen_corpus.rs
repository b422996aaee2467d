//! Writes the seed corpus under `corpus/<target>/` (run from the fuzz folder):
//!
//!     cargo run --no-default-features --example gen_corpus
//!
//! The sigv4 seeds are signed with aws-sigv4 at the targets' fixed clock, so they stay valid.
//! Existing files of the same name are overwritten; nothing else is removed.

use std::path::Path;

use waguard_fuzz::sigv4::{self, HOST, KEY, KEY2, Req, SECRET, SECRET2};
use waguard_fuzz::validate::{SHARE_ID, TEMPLATE_ARN_ENC, WORKLOAD_ID};

const TOKEN: &str = "3f0a9d1e-2b7c-4e5f-8a6d-9c0b1e2f3a4b";
const LENS_ARN_ENC: &str = "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Alens%2F0123456789abcdef0123456789abcdef";
const PROFILE_ARN_ENC: &str =
    "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Aprofile%2Fabc123";
const WORKLOAD_ARN_ENC: &str = "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Aworkload%2F0123456789abcdef0123456789abcdef";

fn write(target: &str, name: &str, data: &[u8]) {
    let dir = Path::new("corpus").join(target);
    std::fs::create_dir_all(&dir).expect("create corpus folder");
    std::fs::write(dir.join(name), data).expect("write seed");
}

fn route_seeds() {
    let a = TEMPLATE_ARN_ENC;
    let w = WORKLOAD_ID;
    let s = SHARE_ID;
    let seeds: Vec<(&str, String)> = vec![
        (
            "create_template_share",
            format!("POST /templates/shares/{a}"),
        ),
        (
            "list_template_shares",
            format!(
                "GET /templates/shares/{a}?MaxResults=50&SharedWithPrefix=ou-ab12&NextToken=eyJrIjoxfQ%3D%3D"
            ),
        ),
        (
            "delete_template_share",
            format!("DELETE /templates/shares/{a}/{s}?ClientRequestToken={TOKEN}"),
        ),
        (
            "create_workload_share",
            format!("POST /workloads/{w}/shares"),
        ),
        (
            "update_workload_share",
            format!("PATCH /workloads/{w}/shares/{s}"),
        ),
        (
            "create_lens_share_arn",
            format!("POST /lenses/{LENS_ARN_ENC}/shares"),
        ),
        (
            "export_lens",
            "GET /lenses/serverless/export?LensVersion=1.0".into(),
        ),
        (
            "create_profile_share",
            format!("POST /profiles/{PROFILE_ARN_ENC}/shares"),
        ),
        (
            "untag_list_param",
            format!("DELETE /tags/{WORKLOAD_ARN_ENC}?tagKeys=team&tagKeys=cost%20center"),
        ),
        (
            "get_answer",
            format!(
                "GET /workloads/{w}/lensReviews/wellarchitected/answers/sec_1?MilestoneNumber=2"
            ),
        ),
        (
            "list_share_invitations",
            "GET /shareInvitations?ShareResourceType=TEMPLATE&MaxResults=10".into(),
        ),
        (
            "update_share_invitation",
            format!("PATCH /shareInvitations/{s}"),
        ),
        (
            "agent_recommendations",
            format!(
                "GET /api/v1/agent-profiles/{PROFILE_ARN_ENC}/recommendations?maxResults=5&pillar=security&state=OPEN"
            ),
        ),
        (
            "upgrade_profile",
            format!("PUT /workloads/{w}/profiles/{PROFILE_ARN_ENC}/upgrade"),
        ),
        ("encoded_slash_literal", "POST /templates%2Fshares/x".into()),
        ("encoded_dot_dot", "POST /templates/shares/%2e%2e".into()),
        (
            "encoded_slash_in_id",
            "GET /workloads/abc%2Fdef/shares".into(),
        ),
        (
            "plus_in_query",
            format!("GET /templates/shares/{a}?SharedWithPrefix=a+b"),
        ),
        ("bad_utf8_escape", "POST /templates/shares/%C3%28".into()),
        (
            "repeated_param",
            format!("GET /templates/shares/{a}?MaxResults=1&MaxResults=2"),
        ),
        ("plus_in_label", "POST /lenses/my+lens/shares".into()),
        (
            "encoded_plus_in_label",
            "POST /lenses/my%2Blens/shares".into(),
        ),
        (
            "semicolon_in_label",
            "POST /lenses/my-lens;v=2/shares".into(),
        ),
        ("backslash_in_label", "POST /lenses/my%5Clens/shares".into()),
        (
            "aws_lens_arn",
            "POST /lenses/arn%3Aaws%3Awellarchitected%3Aus-east-1%3A%3Alens%2Fserverless/shares"
                .into(),
        ),
        ("milestone", format!("GET /workloads/{w}/milestones/12")),
        (
            "milestone_leading_zero",
            format!("GET /workloads/{w}/milestones/012"),
        ),
        (
            "report_uuid",
            "GET /api/v1/reports/01234567-89ab-cdef-0123-456789abcdef".into(),
        ),
    ];
    for (name, s) in seeds {
        write("route", name, s.as_bytes());
    }
}

fn body_seeds() -> Vec<(&'static str, Vec<u8>)> {
    let t = TOKEN;
    let mut v: Vec<(&str, Vec<u8>)> = vec![
        ("ou", format!(r#"{{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"{t}"}}"#).into()),
        (
            "account_readonly",
            format!(r#"{{"SharedWith":"123456789012","PermissionType":"READONLY","ClientRequestToken":"{t}"}}"#).into(),
        ),
        (
            "org_contributor",
            br#"{"SharedWith":"o-abcdefghij","PermissionType":"CONTRIBUTOR","ClientRequestToken":"x"}"#.to_vec(),
        ),
        ("permission_only", br#"{"PermissionType":"READONLY"}"#.to_vec()),
        (
            "dup_shared_with",
            br#"{"SharedWith":"ou-ab12-11111111","SharedWith":"123456789012","ClientRequestToken":"t"}"#.to_vec(),
        ),
        (
            "dup_via_escape",
            br#"{"SharedWith":"ou-ab12-11111111","Shared\u0057ith":"123456789012","ClientRequestToken":"t"}"#.to_vec(),
        ),
        (
            "escapes_in_values",
            br#"{"SharedWith":"ou-ab12-\u0031\u00311111111","ClientRequestToken":"t\/1\"\\"}"#.to_vec(),
        ),
        (
            "iam_arn",
            br#"{"SharedWith":"arn:aws:iam::123456789012:root","ClientRequestToken":"tok"}"#.to_vec(),
        ),
        (
            "surrogate_pairs",
            br#"{"SharedWith":"\ud83d\ude00\ud83d\ude00\ud83d\ude00\ud83d\ude00\ud83d\ude00\ud83d\ude00","ClientRequestToken":"t"}"#.to_vec(),
        ),
        (
            "whitespace",
            b" \n\t{ \"SharedWith\" : \"123456789012\" ,\r\n \"ClientRequestToken\" : \"x\" } \n".to_vec(),
        ),
        (
            "nested_dup",
            br#"{"SharedWith":"123456789012","ClientRequestToken":"t","Extra":{"a":[1,{"b":2,"b":3}]}}"#.to_vec(),
        ),
        ("trailing_data", br#"{"SharedWith":"123456789012","ClientRequestToken":"t"} x"#.to_vec()),
        ("number_target", br#"{"SharedWith":123456789012,"ClientRequestToken":"t"}"#.to_vec()),
        ("null_target", br#"{"SharedWith":null,"ClientRequestToken":"t"}"#.to_vec()),
        ("empty_object", b"{}".to_vec()),
        (
            "bom",
            b"\xef\xbb\xbf{\"SharedWith\":\"123456789012\",\"ClientRequestToken\":\"t\"}".to_vec(),
        ),
        (
            "non_ascii_token",
            "{\"SharedWith\":\"123456789012\",\"ClientRequestToken\":\"t\u{f6}k\"}".into(),
        ),
        (
            "invalid_utf8",
            b"{\"SharedWith\":\"ou-ab12-1111111\xff\",\"ClientRequestToken\":\"t\"}".to_vec(),
        ),
    ];
    v.push((
        "huge_number",
        br#"{"PermissionType":"READONLY","x":1e400}"#.to_vec(),
    ));
    v
}

fn json_seeds() {
    for (name, b) in body_seeds() {
        write("validate", name, &b);
        write("strict_json", name, &b);
    }
    // `#` + Content-Type values, one a line, + an empty line + the body (see src/validate.rs).
    let body = format!(
        r#"{{"SharedWith":"ou-ab12-11111111","PermissionType":"READONLY","ClientRequestToken":"{TOKEN}"}}"#
    );
    for (name, types) in [
        ("ct_charset_utf8", "application/json; charset=UTF-8"),
        ("ct_charset_utf7", "application/json; charset=utf-7"),
        ("ct_other_parameter", "application/json;charset=utf-8;q=1"),
        ("ct_amz_json", "application/x-amz-json-1.1"),
        (
            "ct_two_headers",
            "application/json\napplication/json; charset=utf-7",
        ),
        ("ct_none", ""),
    ] {
        write("validate", name, format!("#{types}\n\n{body}").as_bytes());
    }
    let extra: Vec<(&str, Vec<u8>)> = vec![
        ("numbers", br#"[0,-0,1.5e3,-2E-7,18446744073709551615,18446744073709551616,-9223372036854775809,1e308]"#.to_vec()),
        ("literals", br#"{"t":true,"f":false,"n":null,"s":"","a":[]}"#.to_vec()),
        ("nul_escape", br#"{"k":"\u0000\b\f\n\r\t"}"#.to_vec()),
        ("lone_surrogate", br#"{"k":"\ud800"}"#.to_vec()),
        ("empty_key_dup", br#"{"":1,"":2}"#.to_vec()),
        ("deep_dup", br#"[{"a":{"b":[{"c":1,"d":2,"c":3}]}}]"#.to_vec()),
        ("deep_nesting", [&[b'['; 130][..], &[b']'; 130][..]].concat()),
        ("scalar_string", br#""just a string""#.to_vec()),
    ];
    for (name, b) in extra {
        write("strict_json", name, &b);
    }
}

fn sigv4_seeds() {
    for (i, s) in sigv4::seeds().into_iter().enumerate() {
        let kind = if s.first() == Some(&b'#') {
            "structured"
        } else {
            "signed"
        };
        write("sigv4", &format!("{kind}_{i:02}"), &s);
    }
    // Real header shapes: Authorization without spaces after the commas (some SDKs), a request
    // signed by the second caller, and a few that must be refused.
    let body = br#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"t"}"#;
    let mut base = Req {
        method: b"POST".to_vec(),
        target: format!("/templates/shares/{TEMPLATE_ARN_ENC}").into_bytes(),
        headers: vec![
            (b"host".to_vec(), HOST.as_bytes().to_vec()),
            (b"content-type".to_vec(), b"application/json".to_vec()),
        ],
        body: body.to_vec(),
    };
    let mut other = base.clone();
    sigv4::sign_req(&mut other, KEY2, SECRET2, sigv4::now(), true).expect("sign");
    write("sigv4", "signed_caller2_content_sha", &other.to_raw());

    sigv4::sign_req(&mut base, KEY, SECRET, sigv4::now(), false).expect("sign");
    let mut compact = base.clone();
    for (n, v) in compact.headers.iter_mut() {
        if n == b"authorization" {
            *v = String::from_utf8_lossy(v).replace(", ", ",").into_bytes();
        }
    }
    write("sigv4", "signed_compact_authorization", &compact.to_raw());

    let mut token = base.clone();
    token.headers.push((
        b"x-amz-security-token".to_vec(),
        b"FwoGZXIvYXdzEJr".to_vec(),
    ));
    write("sigv4", "session_token", &token.to_raw());

    let mut presigned = base.clone();
    presigned.target.extend_from_slice(
        b"?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKWGFUZZCALLER0001%2F20260101%2Fus-east-1%2Fwellarchitected%2Faws4_request&X-Amz-Signature=00",
    );
    write("sigv4", "presigned_query", &presigned.to_raw());

    let mut unsigned = base.clone();
    unsigned.headers.retain(|(n, _)| n != b"authorization");
    write("sigv4", "no_authorization", &unsigned.to_raw());
}

fn main() {
    route_seeds();
    json_seeds();
    sigv4_seeds();
    println!("corpus written under corpus/");
}
