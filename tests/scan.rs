//! `waguard scan` against the simulated Well-Architected with a seeded estate: shares made
//! around the gateway, of every resource type, tagged and untagged, over several pages, with
//! throttled calls. The report, the exit codes, `--revoke` (exactly the violations, each
//! audited), and the gateway's background scan after a policy reload.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use waguard::drift::ResourceType;
use waguard::sim::Seed;

const T1: &str = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/11111111111111111111111111111111";
const T2: &str = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/22222222222222222222222222222222";
const W1: &str =
    "arn:aws:wellarchitected:us-east-1:123456789012:workload/44444444444444444444444444444444";
const L1: &str =
    "arn:aws:wellarchitected:us-east-1:123456789012:lens/55555555555555555555555555555555";
const P1: &str =
    "arn:aws:wellarchitected:us-east-1:123456789012:profile/66666666666666666666666666666666";
const P2: &str =
    "arn:aws:wellarchitected:us-east-1:123456789012:profile/77777777777777777777777777777777";
const EU: &str = "arn:aws:wellarchitected:eu-west-1:123456789012:review-template/88888888888888888888888888888888";

/// Every type, tagged and untagged, compliant, violating and inactive shares; two regions.
/// The shipped policy's teams: payments may share with ou-ab12-11111111, ou-ab12-22222222
/// and account 111122223333, READONLY only; platform with 444455556666, 777788889999,
/// ou-cd34-33333333, and lenses with the organization o-exampleorg01.
const ESTATE: &str = r#"
[[resources]]
type = "review-template"
arn = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/11111111111111111111111111111111"
tags = { "waguard:team" = "payments" }
shares = [
  { shared_with = "ou-ab12-11111111", status = "ACCEPTED" },
  { shared_with = "ou-ab12-22222222", status = "PENDING" },
  { shared_with = "ou-ab12-99999999", status = "ACCEPTED" },
  { shared_with = "999999999999", status = "REJECTED" },
  { shared_with = "111122223333", status = "ASSOCIATED" },
]

[[resources]]
type = "review-template"
arn = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/22222222222222222222222222222222"
shares = [ { shared_with = "111122223333", status = "PENDING" } ]

[[resources]]
type = "review-template"
arn = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/33333333333333333333333333333333"
tags = { "waguard:team" = "platform", "cost-center" = "cc-2" }

[[resources]]
type = "workload"
arn = "arn:aws:wellarchitected:us-east-1:123456789012:workload/44444444444444444444444444444444"
tags = { "waguard:team" = "payments" }
shares = [
  { shared_with = "111122223333", status = "ACCEPTED", permission_type = "READONLY" },
  { shared_with = "ou-ab12-22222222", status = "ACCEPTED", permission_type = "CONTRIBUTOR" },
]

[[resources]]
type = "lens"
arn = "arn:aws:wellarchitected:us-east-1:123456789012:lens/55555555555555555555555555555555"
tags = { "waguard:team" = "platform" }
shares = [
  { shared_with = "o-exampleorg01", status = "ACCEPTED" },
  { shared_with = "555555555555", status = "PENDING" },
]

[[resources]]
type = "profile"
arn = "arn:aws:wellarchitected:us-east-1:123456789012:profile/66666666666666666666666666666666"
tags = { "waguard:team" = "platform" }
shares = [ { shared_with = "444455556666", status = "ACCEPTED" } ]

[[resources]]
type = "profile"
arn = "arn:aws:wellarchitected:us-east-1:123456789012:profile/77777777777777777777777777777777"
tags = { "waguard:team" = "payments" }
shares = [ { shared_with = "444455556666", status = "ASSOCIATED" } ]

[[resources]]
type = "review-template"
arn = "arn:aws:wellarchitected:eu-west-1:123456789012:review-template/88888888888888888888888888888888"
tags = { "waguard:team" = "payments" }
shares = [ { shared_with = "ou-ab12-99999999", status = "ACCEPTED" } ]
"#;

/// (resource, shared_with, status, team, verdict) of every share the scan must report.
fn expected() -> BTreeSet<(String, String, String, String, String)> {
    let row = |r: &str, with: &str, status: &str, team: &str, verdict: &str| {
        (
            r.to_string(),
            with.to_string(),
            status.to_string(),
            team.to_string(),
            verdict.to_string(),
        )
    };
    [
        row(T1, "ou-ab12-11111111", "ACCEPTED", "payments", "compliant"),
        row(T1, "ou-ab12-22222222", "PENDING", "payments", "compliant"),
        row(T1, "ou-ab12-99999999", "ACCEPTED", "payments", "violation"),
        row(T1, "999999999999", "REJECTED", "payments", "inactive"),
        row(T1, "111122223333", "ASSOCIATED", "payments", "compliant"),
        row(T2, "111122223333", "PENDING", "", "violation"),
        row(W1, "111122223333", "ACCEPTED", "payments", "compliant"),
        row(W1, "ou-ab12-22222222", "ACCEPTED", "payments", "violation"),
        row(L1, "o-exampleorg01", "ACCEPTED", "platform", "compliant"),
        row(L1, "555555555555", "PENDING", "platform", "violation"),
        row(P1, "444455556666", "ACCEPTED", "platform", "compliant"),
        row(P2, "444455556666", "ASSOCIATED", "payments", "violation"),
        row(EU, "ou-ab12-99999999", "ACCEPTED", "payments", "violation"),
    ]
    .into_iter()
    .collect()
}

fn seed(sim: &waguard::sim::Sim, dir: &Path) {
    let path = dir.join("estate.toml");
    std::fs::write(&path, ESTATE).unwrap();
    sim.seed(&Seed::load(&path).unwrap()).unwrap();
}

/// A config for `waguard scan` against the simulator at `sim`, scanning both regions.
fn scan_config(dir: &Path, sim: std::net::SocketAddr, extra: &str) -> PathBuf {
    let callers = dir.join("callers.toml");
    std::fs::write(&callers, "").unwrap();
    let path = dir.join("waguard.toml");
    std::fs::write(
        &path,
        format!(
            r#"
[server]
listen = "127.0.0.1:0"

[upstream]
endpoint = "http://localhost:{port}"
allowed_regions = ["us-east-1", "eu-west-1"]
timeout = 5

[policy]
dir = "{policies}"

[callers]
file = "callers.toml"

[audit]
file = "audit.jsonl"
{extra}
"#,
            port = sim.port(),
            policies = repo_policies().display(),
        ),
    )
    .unwrap();
    path
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

async fn scan(config: &Path, args: &[&str], key: (&str, &str)) -> Run {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_waguard"));
    cmd.arg("scan")
        .arg("--config")
        .arg(config)
        .args(args)
        .env("AWS_ACCESS_KEY_ID", key.0)
        .env("AWS_SECRET_ACCESS_KEY", key.1)
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("AWS_PROFILE")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .env("RUST_LOG", "warn");
    let out = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("scan finished")
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

const SERVICE: (&str, &str) = (SERVICE_KEY, SERVICE_SECRET);

fn findings(stdout: &str) -> Vec<serde_json::Value> {
    stdout
        .lines()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .filter(|v| v["type"] == "finding")
        .collect()
}

fn rows(findings: &[serde_json::Value]) -> BTreeSet<(String, String, String, String, String)> {
    findings
        .iter()
        .map(|f| {
            let s = |k: &str| f[k].as_str().unwrap_or_default().to_string();
            (
                s("resource"),
                s("shared_with"),
                s("status"),
                s("team"),
                s("verdict"),
            )
        })
        .collect()
}

fn policy_revision() -> String {
    waguard::policy::Policy::load(&repo_policies())
        .unwrap()
        .revision()
        .to_string()
}

#[tokio::test]
async fn the_scan_reports_every_share_with_todays_verdict_and_exits_3_on_violations() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::start().await;
    seed(&sim.sim, dir.path());
    // Several pages of every list, and throttled calls that must be waited out.
    sim.sim.set_page_size(2);
    sim.sim.throttle_well_architected(3);
    let before = sim.sim.estate();
    let config = scan_config(dir.path(), sim.addr, "");

    let run = scan(&config, &["--format", "json"], SERVICE).await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    let found = findings(&run.stdout);
    assert_eq!(rows(&found), expected(), "{}", run.stdout);
    assert_eq!(found.len(), expected().len(), "no share twice");
    assert_eq!(sim.sim.well_architected_throttled(), 3);
    // Each share's id and type come from AWS's listing; reasons say why.
    let contributor = found
        .iter()
        .find(|f| f["resource"] == W1 && f["shared_with"] == "ou-ab12-22222222")
        .unwrap();
    assert_eq!(contributor["resource_type"], "workload");
    assert_eq!(contributor["permission_type"], "CONTRIBUTOR");
    assert!(
        contributor["reasons"][0]
            .as_str()
            .unwrap()
            .contains("CONTRIBUTOR"),
        "{contributor}"
    );
    let untagged = found.iter().find(|f| f["resource"] == T2).unwrap();
    assert!(
        untagged["reasons"][0]
            .as_str()
            .unwrap()
            .contains("not mapped to any team"),
        "{untagged}"
    );
    for f in &found {
        let share = before
            .iter()
            .find(|s| s.resource == f["resource"] && s.shared_with == f["shared_with"])
            .unwrap();
        assert_eq!(f["share_id"], share.share_id.as_str());
    }
    // Progress went to stderr (the simulator also has the untagged, unshared demo template);
    // report-only changed nothing and wrote no audit log.
    assert!(
        run.stderr
            .contains("us-east-1: 4 review-templates, 6 shares"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.sim.estate(), before);
    assert!(!dir.path().join("audit.jsonl").exists());
    let calls = sim.sim.well_architected_calls();
    assert!(
        calls.iter().all(|c| c.starts_with("List")),
        "a report-only scan only reads: {calls:?}"
    );

    // The table says the same for people.
    let run = scan(&config, &[], SERVICE).await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let header = run.stdout.lines().next().unwrap();
    for column in [
        "RESOURCE", "SHARE", "TARGET", "STATUS", "TEAM", "VERDICT", "REASONS",
    ] {
        assert!(header.contains(column), "{header}");
    }
    assert!(
        run.stdout.contains(&format!(
            "13 shares in us-east-1, eu-west-1: 6 compliant, 6 violations, 1 inactive, 0 errors (policy revision {})",
            &policy_revision()[..12]
        )),
        "{}",
        run.stdout
    );

    // One region only.
    let run = scan(
        &config,
        &["--format", "json", "--region", "eu-west-1"],
        SERVICE,
    )
    .await;
    assert_eq!(run.code, 3, "{}", run.stderr);
    let eu: Vec<_> = rows(&findings(&run.stdout)).into_iter().collect();
    assert_eq!(eu.len(), 1);
    assert_eq!(eu[0].0, EU);
}

#[tokio::test]
async fn revoke_deletes_exactly_the_violations_and_audits_each() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::start().await;
    seed(&sim.sim, dir.path());
    sim.sim.set_page_size(2);
    let before = sim.sim.estate();
    let config = scan_config(dir.path(), sim.addr, "");

    // More violations than the bound: a policy mistake looks like this, so nothing goes.
    let run = scan(&config, &["--revoke", "--max-revocations", "5"], SERVICE).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("6 violations is more than --max-revocations 5: nothing was revoked"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.sim.estate(), before);

    let run = scan(&config, &["--revoke"], SERVICE).await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    // The list of what will be deleted comes before the deletions.
    let listed = run.stdout.find("revoking 6 shares:").expect(&run.stdout);
    let first_result = run.stdout.find(": revoked").expect(&run.stdout);
    assert!(listed < first_result, "{}", run.stdout);

    let violating: BTreeSet<(String, String)> = expected()
        .into_iter()
        .filter(|r| r.4 == "violation")
        .map(|r| (r.0, r.1))
        .collect();
    let after = sim.sim.estate();
    let gone: BTreeSet<(String, String)> = before
        .iter()
        .filter(|s| !after.contains(s))
        .map(|s| (s.resource.clone(), s.shared_with.clone()))
        .collect();
    assert_eq!(gone, violating, "exactly the violations were deleted");
    assert_eq!(after.len(), before.len() - violating.len());
    let deletes: Vec<String> = sim
        .sim
        .well_architected_calls()
        .into_iter()
        .filter(|c| c.starts_with("Delete"))
        .collect();
    let kinds: BTreeSet<&str> = deletes.iter().map(String::as_str).collect();
    assert_eq!(
        kinds,
        BTreeSet::from([
            "DeleteLensShare",
            "DeleteProfileShare",
            "DeleteTemplateShare",
            "DeleteWorkloadShare"
        ])
    );
    assert_eq!(deletes.len(), violating.len());

    // One revocation record per deleted share: what, why, under which policy.
    let audit = dir.path().join("audit.jsonl");
    let records = audit_lines(&audit);
    let revocations: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "revocation")
        .collect();
    assert_eq!(revocations.len(), violating.len());
    let revision = policy_revision();
    for r in &revocations {
        assert_eq!(r["result"], "revoked");
        assert_eq!(r["policy_revision"], revision.as_str());
        assert!(!r["reasons"].as_array().unwrap().is_empty(), "{r}");
        let key = (
            r["share"]["resource"].as_str().unwrap().to_string(),
            r["share"]["shared_with"].as_str().unwrap().to_string(),
        );
        assert!(violating.contains(&key), "{r}");
        let share = before
            .iter()
            .find(|s| s.resource == key.0 && s.shared_with == key.1)
            .unwrap();
        assert_eq!(r["share"]["share_id"], share.share_id.as_str());
    }
    let verify = std::process::Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(["audit", "verify"])
        .arg(&audit)
        .output()
        .unwrap();
    assert!(verify.status.success(), "{verify:?}");

    // What is left is compliant (the inactive share stays: it grants nothing).
    let run = scan(&config, &["--format", "json"], SERVICE).await;
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        findings(&run.stdout)
            .iter()
            .all(|f| f["verdict"] == "compliant" || f["verdict"] == "inactive")
    );
}

#[tokio::test]
async fn a_scan_that_cannot_read_the_estate_exits_1_and_revokes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::start().await;
    seed(&sim.sim, dir.path());
    let before = sim.sim.estate();
    let config = scan_config(dir.path(), sim.addr, "");
    // Credentials AWS does not accept: every call is refused.
    let run = scan(
        &config,
        &["--revoke"],
        ("AKIDNOTTHESERVICE001", "not-the-service-secret-0001"),
    )
    .await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("error: ListReviewTemplates in us-east-1:"),
        "{}",
        run.stdout
    );
    assert_eq!(sim.sim.estate(), before);
    assert!(
        audit_lines(&dir.path().join("audit.jsonl"))
            .iter()
            .all(|r| r["type"] != "revocation")
    );

    // No regions at all is a usage error, before anything is called.
    let bare = tempfile::tempdir().unwrap();
    let config = scan_config(bare.path(), sim.addr, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("allowed_regions = [\"us-east-1\", \"eu-west-1\"]\n", "");
    std::fs::write(&config, text).unwrap();
    let run = scan(&config, &[], SERVICE).await;
    assert_eq!(run.code, 1);
    assert!(run.stderr.contains("no regions to scan"), "{}", run.stderr);
}

#[tokio::test]
async fn revoke_refuses_an_audit_log_the_gateway_is_writing() {
    let h = Harness::start().await;
    let config = h.dir.path().join("waguard.toml");
    let run = scan(&config, &["--revoke", "--region", "us-east-1"], SERVICE).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("another process is writing this audit log"),
        "{}",
        run.stderr
    );
    assert!(h.sim.well_architected_calls().is_empty());
}

#[tokio::test]
async fn the_background_scan_exports_violations_and_records_each_once_until_fixed() {
    let h = Harness::start_with(Options {
        own_policies: true,
        tables: "[scan]\ninterval = 1\nregions = [\"us-east-1\"]\n".into(),
        ..Options::default()
    })
    .await;
    seed(&h.sim, h.dir.path());
    // The harness's template belongs to payments: shares made through the gateway comply.
    h.sim
        .add_resource(
            ResourceType::Template,
            TEMPLATE_ARN,
            &[("waguard:team", "payments")],
        )
        .unwrap();
    let us_violations = |kind: ResourceType| {
        expected()
            .iter()
            .filter(|r| r.4 == "violation" && !r.0.contains("eu-west-1") && kind_of(&r.0) == kind)
            .count() as f64
    };
    let metrics = || async { h.admin_get("/metrics").await.body };
    let gauge = |text: &str, name: &str, kind: ResourceType| {
        metric(
            text,
            &format!("{name}{{resource_type=\"{}\"}}", kind.as_str()),
        )
    };
    let wait_for = |want: f64| {
        let metrics = &metrics;
        async move {
            for _ in 0..200 {
                let text = metrics().await;
                if gauge(&text, "waguard_share_violations", ResourceType::Template) == Some(want) {
                    return text;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            panic!("waguard_share_violations for templates never reached {want}");
        }
    };
    let text = wait_for(us_violations(ResourceType::Template)).await;
    for kind in ResourceType::ALL {
        assert_eq!(
            gauge(&text, "waguard_share_violations", kind),
            Some(us_violations(kind)),
            "{kind:?}\n{text}"
        );
        let shares = expected()
            .iter()
            .filter(|r| !r.0.contains("eu-west-1") && kind_of(&r.0) == kind)
            .count() as f64;
        assert_eq!(
            gauge(&text, "waguard_shares", kind),
            Some(shares),
            "{kind:?}"
        );
    }
    assert!(metric(&text, "waguard_scan_last_success_timestamp_seconds").unwrap() > 1.7e9);
    assert_eq!(metric(&text, "waguard_scan_errors_total"), Some(0.0));

    // Payments loses ou-ab12-11111111: its template share there is a violation from the next
    // scan on, without a restart.
    let teams = h.dir.path().join("policies/waguard/teams.json");
    let text = std::fs::read_to_string(&teams).unwrap().replace(
        "\"ous\": [\"ou-ab12-11111111\", \"ou-ab12-22222222\"]",
        "\"ous\": [\"ou-ab12-22222222\"]",
    );
    assert!(!text.contains("\"ou-ab12-11111111\""));
    let tmp = teams.with_extension("json.tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, &teams).unwrap();
    wait_for(us_violations(ResourceType::Template) + 1.0).await;
    // Readiness never depends on the scan.
    assert_eq!(h.admin_get("/readyz").await.status, 200);

    // A round that fails (its first call throttled until the background scan gives up) is
    // counted; the gauges keep the last complete scan, readiness and requests are unaffected.
    h.sim.throttle_well_architected(3);
    let mut failed = String::new();
    for _ in 0..200 {
        failed = metrics().await;
        if metric(&failed, "waguard_scan_errors_total") == Some(1.0) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(
        metric(&failed, "waguard_scan_errors_total"),
        Some(1.0),
        "{failed}"
    );
    assert_eq!(
        gauge(&failed, "waguard_share_violations", ResourceType::Template),
        Some(us_violations(ResourceType::Template) + 1.0)
    );
    assert_eq!(h.admin_get("/readyz").await.status, 200);
    let (path, body) = share_request("ou-ab12-22222222", "after-a-failed-scan");
    assert_eq!(
        RawRequest::new("POST", &path, body)
            .send(h.gateway.addr)
            .await
            .status,
        200
    );
    let last = metric(&failed, "waguard_scan_last_success_timestamp_seconds").unwrap();
    let mut recovered = false;
    for _ in 0..200 {
        let text = metrics().await;
        if metric(&text, "waguard_scan_last_success_timestamp_seconds").unwrap() > last {
            recovered = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(recovered, "the next round succeeds again");

    // Several rounds later each violation still has exactly one record.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let records = h.audit_records().await;
    let violations: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "share_violation")
        .collect();
    let distinct: BTreeSet<String> = violations
        .iter()
        .map(|r| r["share"]["share_id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(violations.len(), distinct.len(), "one record per share");
    let us_total: f64 = ResourceType::ALL.iter().map(|k| us_violations(*k)).sum();
    assert_eq!(distinct.len() as f64, us_total + 1.0);
    let newest = violations
        .iter()
        .find(|r| r["share"]["shared_with"] == "ou-ab12-11111111")
        .expect("the share the reload made a violation was recorded");
    assert_ne!(newest["policy_revision"], policy_revision().as_str());
    h.stop().await;
}

fn kind_of(arn: &str) -> ResourceType {
    if arn.contains(":review-template/") {
        ResourceType::Template
    } else if arn.contains(":workload/") {
        ResourceType::Workload
    } else if arn.contains(":lens/") {
        ResourceType::Lens
    } else {
        ResourceType::Profile
    }
}

#[path = "common/moto.rs"]
mod moto;
#[path = "common/python.rs"]
mod python;

/// moto's Organizations: an organization whose "payments" OU holds one account, and a second
/// account at the root. Returns (moto, client, root, payments OU, account in it, account at root).
async fn moto_organization() -> (
    moto::Moto,
    aws_sdk_organizations::Client,
    String,
    String,
    String,
    String,
) {
    let moto = moto::Moto::start().await;
    let org = moto.organizations_client();
    org.create_organization()
        .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
        .send()
        .await
        .unwrap();
    let root = org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let payments = org
        .create_organizational_unit()
        .parent_id(&root)
        .name("payments")
        .send()
        .await
        .unwrap()
        .organizational_unit()
        .unwrap()
        .id()
        .unwrap()
        .to_string();
    let account = |name: &'static str| {
        let org = org.clone();
        async move {
            org.create_account()
                .account_name(name)
                .email(format!("{name}@example.com"))
                .send()
                .await
                .unwrap()
                .create_account_status()
                .unwrap()
                .account_id()
                .unwrap()
                .to_string()
        }
    };
    let inside = account("pay-prod").await;
    let elsewhere = account("sandbox").await;
    org.move_account()
        .account_id(&inside)
        .source_parent_id(&root)
        .destination_parent_id(&payments)
        .send()
        .await
        .unwrap();
    (moto, org, root, payments, inside, elsewhere)
}

#[tokio::test]
async fn with_organizations_an_account_moved_out_of_an_approved_ou_becomes_a_violation() {
    let (moto, org, root, payments_ou, inside, elsewhere) = moto_organization().await;
    let dir = tempfile::tempdir().unwrap();
    // Payments may share with the OU moto made (and, the organization known, what is below it).
    copy_dir(&repo_policies(), &dir.path().join("policies"));
    let teams = dir.path().join("policies/waguard/teams.json");
    let text = std::fs::read_to_string(&teams).unwrap().replace(
        "\"ous\": [\"ou-ab12-11111111\", \"ou-ab12-22222222\"]",
        &format!("\"ous\": [\"{payments_ou}\"]"),
    );
    std::fs::write(&teams, text).unwrap();
    let sim = SimServer::start().await;
    sim.sim
        .add_resource(ResourceType::Template, T1, &[("waguard:team", "payments")])
        .unwrap();
    for target in [&inside, &elsewhere] {
        sim.sim
            .add_share(
                ResourceType::Template,
                T1,
                target,
                waguard::sim::ShareStatus::Accepted,
                None,
            )
            .unwrap();
    }
    let config = scan_config(
        dir.path(),
        sim.addr,
        &format!(
            "\n[organizations]\nenabled = true\nendpoint = \"{}\"\n",
            moto.endpoint
        ),
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("dir = \"{}\"", repo_policies().display()),
        "dir = \"policies\"",
    );
    std::fs::write(&config, text).unwrap();
    let verdicts = |stdout: &str| {
        findings(stdout)
            .iter()
            .map(|f| {
                (
                    f["shared_with"].as_str().unwrap().to_string(),
                    f["verdict"].as_str().unwrap().to_string(),
                )
            })
            .collect::<BTreeSet<_>>()
    };

    let run = scan(
        &config,
        &["--format", "json", "--region", "us-east-1"],
        SERVICE,
    )
    .await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        verdicts(&run.stdout),
        BTreeSet::from([
            (inside.clone(), "compliant".to_string()),
            (elsewhere.clone(), "violation".to_string()),
        ])
    );

    // The account moves to the root: the share made while it sat in payments is a violation now.
    org.move_account()
        .account_id(&inside)
        .source_parent_id(&payments_ou)
        .destination_parent_id(&root)
        .send()
        .await
        .unwrap();
    let run = scan(
        &config,
        &["--format", "json", "--region", "us-east-1"],
        SERVICE,
    )
    .await;
    assert_eq!(run.code, 3, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        verdicts(&run.stdout),
        BTreeSet::from([
            (inside.clone(), "violation".to_string()),
            (elsewhere.clone(), "violation".to_string()),
        ])
    );

    // Organizations unreachable: no verdicts on a view that would deny every OU rule.
    drop(moto);
    let run = scan(&config, &["--revoke", "--region", "us-east-1"], SERVICE).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr.contains("the organization could not be read"),
        "{}",
        run.stderr
    );
    assert_eq!(sim.sim.estate().len(), 2, "nothing revoked");
}

#[tokio::test]
async fn a_revocation_that_cannot_be_recorded_stops_the_scan_after_that_share() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::start().await;
    seed(&sim.sim, dir.path());
    let before = sim.sim.estate();
    // Every write to /dev/full fails: the first revocation's record cannot be written.
    let config = scan_config(dir.path(), sim.addr, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("file = \"audit.jsonl\"", "file = \"/dev/full\"");
    std::fs::write(&config, text).unwrap();
    let run = scan(&config, &["--revoke"], SERVICE).await;
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stderr
            .contains("the revocation record could not be written")
            && run.stderr.contains("stopped revoking"),
        "{}",
        run.stderr
    );
    let deletes = sim
        .sim
        .well_architected_calls()
        .into_iter()
        .filter(|c| c.starts_with("Delete"))
        .count();
    assert_eq!(deletes, 1, "nothing after the unrecorded deletion");
    assert_eq!(sim.sim.estate().len(), before.len() - 1);
}

#[tokio::test]
async fn the_background_scan_skips_rounds_while_the_organization_is_unknown() {
    // Organizations never answers: every OU rule would deny, so no round may judge.
    let h = Harness::start_with(Options {
        organizations: Some("endpoint = \"http://127.0.0.1:1\"\nlookup_timeout = 0.2".into()),
        tables: "[scan]\ninterval = 1\nregions = [\"us-east-1\"]\n".into(),
        ..Options::default()
    })
    .await;
    seed(&h.sim, h.dir.path());
    let mut text = String::new();
    for _ in 0..100 {
        text = h.admin_get("/metrics").await.body;
        if metric(&text, "waguard_scan_errors_total").unwrap_or(0.0) >= 2.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        metric(&text, "waguard_scan_errors_total").unwrap() >= 2.0,
        "{text}"
    );
    assert_eq!(
        metric(&text, "waguard_scan_last_success_timestamp_seconds"),
        Some(0.0)
    );
    assert!(
        !text.contains("waguard_share_violations{"),
        "no verdicts without the organization"
    );
    assert!(
        h.sim
            .well_architected_calls()
            .iter()
            .all(|c| !c.starts_with("List")),
        "nothing was read"
    );
    let records = h.audit_records().await;
    assert!(records.iter().all(|r| r["type"] != "share_violation"));
    h.stop().await;
}
