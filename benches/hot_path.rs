//! Micro-benchmarks of the request hot path: inbound SigV4 verification, routing and
//! validation, the policy decision (one core and two cores), and outbound signing.
//!
//! Run: `cargo bench --bench hot_path`. Figures are in the README. `WAGUARD_BENCH_POLICY_DIR`
//! benchmarks another policy directory instead of `policies/`.

use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use aws_credential_types::Credentials;
use criterion::{Criterion, criterion_group, criterion_main};
use http::request::Parts;
use std::hint::black_box;
use waguard::auth::{Caller, Callers, Secret, verify};
use waguard::operation::route;
use waguard::policy::{Policy, input};
use waguard::validate::validate;

/// The allocator the `waguard` binary uses (src/main.rs).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

const KEY: &str = "AKWGBENCHCALLER0001";
const SECRET: &str = "bench-caller-secret-0001";
const PATH: &str = "/templates/shares/arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Areview-template%2F0123456789abcdef0123456789abcdef";
const BODY: &[u8] = br#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"bench-token"}"#;

/// Benchmarks another policy directory (e.g. an older revision, to compare) instead of the
/// repository's `policies/`. The decision benchmarks then measure whatever it decides.
const POLICY_DIR_VAR: &str = "WAGUARD_BENCH_POLICY_DIR";

fn policy_dir() -> PathBuf {
    std::env::var_os(POLICY_DIR_VAR)
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("policies"))
}

fn callers() -> Callers {
    Callers::from_callers(
        Path::new("bench"),
        vec![Caller {
            access_key_id: KEY.into(),
            secret_access_key: Secret::new(SECRET),
            principal: "alice@example.com".into(),
            team: "payments".into(),
            attributes: Default::default(),
        }],
    )
    .unwrap()
}

/// A request signed the way the AWS SDKs sign it.
fn signed_parts() -> Parts {
    let uri = format!("http://127.0.0.1:8080{PATH}");
    let mut req = http::Request::builder()
        .method("POST")
        .uri(&uri)
        .header("host", "127.0.0.1:8080")
        .header("content-type", "application/json")
        .header("user-agent", "aws-sdk-rust/1.0")
        .header(
            "amz-sdk-invocation-id",
            "0b3e2a1c-8a4f-4c8e-9b1d-2f6f0e3d4c5b",
        )
        .body(())
        .unwrap();
    let caller = Credentials::new(KEY, SECRET, None, None, "bench");
    let signed =
        waguard::upstream::sign_headers("POST", &uri, req.headers(), BODY, "us-east-1", &caller)
            .unwrap();
    req.headers_mut().extend(signed);
    let (mut parts, _) = req.into_parts();
    parts.uri = PATH.parse().unwrap();
    parts
}

fn bench(c: &mut Criterion) {
    let callers = callers();
    let parts = signed_parts();
    let policy = Arc::new(Policy::load(&policy_dir()).unwrap());
    let auth = verify(&parts, BODY, &callers, SystemTime::now()).unwrap();
    let routed = route("POST", PATH, None).unwrap();
    let validated = validate(&routed, &parts.method, &parts.headers, BODY).unwrap();
    let now = time::OffsetDateTime::now_utc();
    let ip = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let doc = input::build(
        &auth, &routed, &validated, None, None, "POST", PATH, ip, now,
    );
    assert!(policy.evaluate_input(doc.clone()).allow);
    let service = Credentials::new(
        "AKWGSERVICE00000001",
        "service-secret-0001",
        Some("token".into()),
        None,
        "bench",
    );
    let upstream_url = format!("https://wellarchitected.us-east-1.amazonaws.com{PATH}");
    let mut out_headers = http::HeaderMap::new();
    out_headers.insert(
        "host",
        "wellarchitected.us-east-1.amazonaws.com".parse().unwrap(),
    );
    out_headers.insert("content-type", "application/json".parse().unwrap());

    c.bench_function("sigv4_verify", |b| {
        b.iter(|| verify(black_box(&parts), BODY, &callers, SystemTime::now()).unwrap())
    });
    c.bench_function("route_and_validate", |b| {
        b.iter(|| {
            let r = route("POST", black_box(PATH), None).unwrap();
            validate(&r, &parts.method, &parts.headers, black_box(BODY)).unwrap()
        })
    });
    c.bench_function("policy_decision", |b| {
        b.iter(|| policy.evaluate_input(black_box(doc.clone())))
    });
    // The same share with the gateway's organization context: an account three OUs deep, under
    // an OU the team approved (Root > payments > payments-prod > payments-prod-eu).
    let org_doc = organization_context(&doc);
    let org_decision = policy.evaluate_input(org_doc.clone());
    assert!(
        std::env::var_os(POLICY_DIR_VAR).is_some()
            || (org_decision.allow && org_decision.reasons[0].contains("under an OU approved")),
        "{org_decision:?}"
    );
    c.bench_function("policy_decision_org_context", |b| {
        b.iter(|| policy.evaluate_input(black_box(org_doc.clone())))
    });
    // A read (GetWorkload) by the same caller: the most common request.
    let read_doc = read_request(&doc);
    assert!(policy.evaluate_input(read_doc.clone()).allow);
    c.bench_function("policy_decision_read", |b| {
        b.iter(|| policy.evaluate_input(black_box(read_doc.clone())))
    });
    let sign_out = || {
        waguard::upstream::sign_headers(
            "POST",
            &upstream_url,
            &out_headers,
            BODY,
            "us-east-1",
            &service,
        )
        .unwrap()
    };
    c.bench_function("outbound_sign", |b| b.iter(&sign_out));
    c.bench_function("verify_decide_sign", |b| {
        b.iter(|| {
            let auth = verify(&parts, BODY, &callers, SystemTime::now()).unwrap();
            let routed = route("POST", PATH, None).unwrap();
            let validated = validate(&routed, &parts.method, &parts.headers, BODY).unwrap();
            let doc = input::build(
                &auth, &routed, &validated, None, None, "POST", PATH, ip, now,
            );
            assert!(policy.evaluate_input(doc).allow);
            sign_out()
        })
    });
    // Decisions on both cores at once: the compiled policy is shared, with no lock.
    c.bench_function("policy_decision_2_threads", |b| {
        b.iter_custom(|iters| two_threads([&policy, &policy], &doc, iters))
    });
    // The same, with a separately compiled policy per thread (no shared reference counts).
    let own = [
        Arc::new(Policy::load(&policy_dir()).unwrap()),
        Arc::new(Policy::load(&policy_dir()).unwrap()),
    ];
    c.bench_function("policy_decision_2_threads_own_policy", |b| {
        b.iter_custom(|iters| two_threads([&own[0], &own[1]], &doc, iters))
    });
    // One decision after the thread slept 1 ms, as a gateway worker does between requests at
    // 1,000 req/s: what the policy costs with cold caches (only the decision is timed).
    let mut after_idle = c.benchmark_group("after_idle");
    after_idle
        .sample_size(10)
        .measurement_time(Duration::from_millis(300))
        .warm_up_time(Duration::from_millis(100));
    after_idle.bench_function("policy_decision_after_1ms_idle", |b| {
        b.iter_custom(|iters| {
            let mut timed = Duration::ZERO;
            for _ in 0..iters {
                std::thread::sleep(Duration::from_millis(1));
                let start = Instant::now();
                black_box(policy.evaluate_input(doc.clone()));
                timed += start.elapsed();
            }
            timed
        })
    });
    after_idle.finish();
}

/// `doc` (a CreateTemplateShare) sharing with account 222233334444, as the gateway describes it
/// with `[organizations]` configured.
fn organization_context(doc: &regorus::Value) -> regorus::Value {
    let mut doc: serde_json::Value = serde_json::to_value(doc).unwrap();
    doc["request"]["body"]["SharedWith"] = "222233334444".into();
    doc["share"] = serde_json::json!({
        "shared_with": "222233334444",
        "target_type": "account",
        "target": {
            "id": "222233334444",
            "type": "account",
            "account": "222233334444",
            "in_organization": true,
            "ou_path": ["r-ab12", "ou-ab12-11111111", "ou-ab12-22222222", "ou-ab12-44444444"],
            "ou_path_names": ["Root", "payments", "payments-prod", "payments-prod-eu"],
            "name": "pay-prod-eu-1",
            "status": "ACTIVE",
        },
    });
    doc["organization"] =
        serde_json::json!({"id": "o-exampleorg01", "root": "r-ab12", "snapshot_age_seconds": 42});
    regorus::Value::from(doc)
}

/// `doc`'s caller reading a workload (GetWorkload).
fn read_request(doc: &regorus::Value) -> regorus::Value {
    let mut doc: serde_json::Value = serde_json::to_value(doc).unwrap();
    let fields = doc.as_object_mut().unwrap();
    fields.remove("share");
    fields.insert("operation".into(), "GetWorkload".into());
    fields.insert("access".into(), "read".into());
    fields.insert(
        "resource".into(),
        serde_json::json!({"type": "workload", "arn": "0123456789abcdef0123456789abcdef"}),
    );
    fields.insert(
        "request".into(),
        serde_json::json!({"method": "GET", "path": "/workloads/0123456789abcdef0123456789abcdef", "query": {}, "body": {}}),
    );
    regorus::Value::from(doc)
}

/// Wall time for `iters` decisions made by two threads in parallel, so criterion's "time per
/// iteration" is the inverse of the 2-core throughput.
fn two_threads(policies: [&Arc<Policy>; 2], doc: &regorus::Value, iters: u64) -> Duration {
    let per_thread = iters.div_ceil(2);
    let start = Instant::now();
    std::thread::scope(|s| {
        for policy in policies {
            s.spawn(move || {
                for _ in 0..per_thread {
                    black_box(policy.evaluate_input(doc.clone()));
                }
            });
        }
    });
    start.elapsed()
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(50).measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = bench
}
criterion_main!(benches);
