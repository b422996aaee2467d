//! Audit trail, metrics and the operations surface: exact records and metric values, and the
//! failure paths for real (a full disk, a read-only directory, a deleted file, kill -9, SIGTERM).

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use aws_sdk_wellarchitected::error::ProvideErrorMetadata;
use common::*;

fn audit_verify(files: &[&Path]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(["audit", "verify"])
        .args(files)
        .output()
        .unwrap()
}

#[tokio::test]
async fn decisions_are_audited_and_counted_exactly() {
    let h = Harness::start().await;
    let c = h.payments();
    c.create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("t-allow")
        .send()
        .await
        .unwrap();
    c.create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(UNAPPROVED_OU)
        .client_request_token("t-deny")
        .send()
        .await
        .unwrap_err();
    c.create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with("too-short")
        .client_request_token("t-invalid")
        .send()
        .await
        .unwrap_err();
    h.client(PAYMENTS_KEY, "a-wrong-secret-000001")
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap_err();

    let records = h.audit_records().await;
    let kinds: Vec<(&str, &str)> = records
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap(),
                r["decision"].as_str().or(r["error"].as_str()).unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("decision", "allow"),
            ("outcome", ""),
            ("decision", "deny"),
            ("decision", "invalid"),
            ("auth_failures", ""),
        ],
        "{records:#?}"
    );
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r["seq"], i as u64);
        assert_eq!(r["prev_hash"].as_str().unwrap().len(), 64);
    }
    let invalid = &records[3];
    assert_eq!(invalid["error"], "ValidationException");
    assert_eq!(invalid["caller"]["principal"], "alice@example.com");
    let auth_failures = &records[4];
    assert_eq!(auth_failures["total"], 1);
    let entry = &auth_failures["entries"][0];
    assert_eq!(entry["access_key_id"], PAYMENTS_KEY);
    assert_eq!(entry["error"], "InvalidSignatureException");
    assert_eq!(entry["count"], 1);
    let text = std::fs::read_to_string(&h.audit_file).unwrap();
    assert!(
        !text.contains("a-wrong-secret")
            && !text.contains(PAYMENTS_SECRET)
            && !text.contains("Signature=")
    );
    let outcome = &records[1];
    assert_eq!(outcome["request_id"], records[0]["request_id"]);
    assert_eq!(outcome["upstream_status"], 200);
    assert!(outcome["share_id"].as_str().unwrap().len() == 32);

    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(
            &m,
            "waguard_requests_total{decision=\"allow\",operation=\"CreateTemplateShare\"}"
        ),
        Some(1.0),
        "{m}"
    );
    assert_eq!(
        metric(
            &m,
            "waguard_requests_total{decision=\"deny\",operation=\"CreateTemplateShare\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            "waguard_requests_total{decision=\"invalid\",operation=\"CreateTemplateShare\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            "waguard_requests_total{decision=\"unauthenticated\",operation=\"unknown\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(
            &m,
            "waguard_upstream_requests_total{operation=\"CreateTemplateShare\",status=\"200\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        metric(&m, "waguard_policy_evaluation_duration_seconds_count"),
        Some(2.0)
    );
    assert_eq!(
        metric(
            &m,
            "waguard_request_duration_seconds_count{operation=\"CreateTemplateShare\"}"
        ),
        Some(3.0)
    );
    assert_eq!(metric(&m, "waguard_audit_write_failures_total"), Some(0.0));
    // Only the allowed request waited for its decision record to reach the disk.
    assert_eq!(
        metric(&m, "waguard_audit_wait_duration_seconds_count"),
        Some(1.0)
    );
    assert!(metric(&m, "waguard_audit_wait_duration_seconds_sum").unwrap() > 0.0);
    assert_eq!(metric(&m, "waguard_in_flight_requests"), Some(0.0));
    let revision = h.gateway.gateway.policy.load().revision().to_string();
    assert_eq!(
        metric(
            &m,
            &format!("waguard_policy_info{{revision=\"{revision}\"}}")
        ),
        Some(1.0)
    );
    assert!(m.contains(&format!(
        "waguard_build_info{{version=\"{}\"}} 1",
        env!("CARGO_PKG_VERSION")
    )));
    assert!(
        !m.contains(TEMPLATE_ARN) && !m.contains("/templates/"),
        "raw input in metric labels"
    );

    assert_eq!(h.admin_get("/healthz").await.status, 200);
    let ready = h.admin_get("/readyz").await;
    assert_eq!(ready.status, 200, "{ready:?}");
    assert!(ready.body.contains(&revision));
    h.stop().await;
    let out = audit_verify(&[&h.audit_file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn audit_verify_catches_edited_deleted_and_reordered_records() {
    let h = Harness::start().await;
    let c = h.payments();
    for i in 0..4 {
        let _ = c
            .create_template_share()
            .template_arn(TEMPLATE_ARN)
            .shared_with(UNAPPROVED_OU)
            .client_request_token(format!("v{i}"))
            .send()
            .await;
    }
    h.stop().await;
    let path = h.audit_file.clone();
    let ok = audit_verify(&[&path]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("4 records"));
    let original = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = original.lines().collect();

    let tamper = |lines: Vec<String>| {
        std::fs::write(&path, lines.join("\n") + "\n").unwrap();
        let out = audit_verify(&[&path]);
        assert!(!out.status.success());
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let mut edited: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    edited[1] = edited[1].replace("\"deny\"", "\"allow\"");
    assert!(
        tamper(edited).contains(":3:"),
        "an edit of record 2 is caught at record 3"
    );
    let mut deleted: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    deleted.remove(2);
    assert!(tamper(deleted).contains(":3:"));
    let mut reordered: Vec<String> = lines.iter().map(|s| s.to_string()).collect();
    reordered.swap(1, 2);
    let msg = tamper(reordered);
    assert!(msg.contains(":2:"), "{msg}");
}

#[tokio::test]
async fn a_full_disk_refuses_requests_until_writes_work_again() {
    let h = Harness::start().await;
    let c = h.payments();
    c.create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("before")
        .send()
        .await
        .unwrap();

    // The disk fills up: the audit file now points at /dev/full (writes fail with ENOSPC).
    let old = h.audit_file.with_extension("jsonl.before-full");
    std::fs::rename(&h.audit_file, &old).unwrap();
    std::os::unix::fs::symlink("/dev/full", &h.audit_file).unwrap();
    let err = c
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with("ou-ab12-22222222")
        .client_request_token("during")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(500),
        "{err:?}"
    );
    assert!(
        err.message().unwrap_or_default().contains("not forwarded"),
        "{err:?}"
    );
    assert_eq!(
        h.sim.received().len(),
        1,
        "a request without its audit record reached the upstream"
    );
    let m = h.admin_get("/metrics").await.body;
    assert!(metric(&m, "waguard_audit_write_failures_total").unwrap() >= 1.0);
    let ready = h.admin_get("/readyz").await;
    assert_eq!(ready.status, 503, "{ready:?}");
    assert!(ready.body.contains("audit"), "{}", ready.body);

    // Space again: the gateway recovers by itself.
    std::fs::remove_file(&h.audit_file).unwrap();
    let mut ready = 0;
    for _ in 0..50 {
        ready = h.admin_get("/readyz").await.status;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 200);
    c.create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with("ou-ab12-22222222")
        .client_request_token("after")
        .send()
        .await
        .unwrap();
    h.stop().await;
    let out = audit_verify(&[&old, &h.audit_file]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = std::fs::read_to_string(&h.audit_file).unwrap();
    assert!(text.contains("\"type\":\"audit_outage\""), "{text}");
    assert!(!text.contains("\"client_request_token\":\"during\""));
}

#[tokio::test]
async fn a_deleted_audit_file_is_recreated_and_noted() {
    let h = Harness::start().await;
    let c = h.payments();
    c.create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .send()
        .await
        .unwrap();
    std::fs::remove_file(&h.audit_file).unwrap();
    c.create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with("ou-ab12-22222222")
        .client_request_token("after-delete")
        .send()
        .await
        .unwrap();
    h.stop().await;
    let records = h.audit_records().await;
    assert_eq!(records[0]["type"], "audit_reopened", "{records:#?}");
    assert!(
        records
            .iter()
            .any(|r| r["client_request_token"] == "after-delete")
    );
    let out = audit_verify(&[&h.audit_file]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).contains("starts after seq 0"));
}

#[tokio::test]
async fn fail_open_forwards_without_a_record_only_when_configured() {
    let (_dir, sim, audit, config) = process_setup("on_failure = \"fail-open\"").await;
    let gw = GatewayProcess::start(&config, false).await;
    std::fs::remove_file(&audit).unwrap();
    std::os::unix::fs::symlink("/dev/full", &audit).unwrap();
    let (path, body) = share_request(APPROVED_OU, "open");
    let mut req = RawRequest::new("POST", &path, body);
    req.key = PAYMENTS_KEY;
    let resp = req.send(gw.addr).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(sim.sim.received().len(), 1);
    let (status, m) = gw.admin_get("/metrics").await;
    assert_eq!(status, 200);
    assert!(metric(&m, "waguard_audit_write_failures_total").unwrap() >= 1.0);
}

#[tokio::test]
async fn a_read_only_directory_fails_closed_and_recovers() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let audit_dir = dir.path().join("audit");
    std::fs::create_dir(&audit_dir).unwrap();
    // The gateway runs as an unprivileged user so that directory permissions apply to it.
    if is_root() {
        std::process::Command::new("chown")
            .args(["65534:65534"])
            .arg(&audit_dir)
            .status()
            .unwrap();
    }
    let sim = SimServer::start().await;
    let audit = audit_dir.join("audit.jsonl");
    let config = write_process_config(dir.path(), &format!("http://{}", sim.addr), &audit, "");
    for f in ["waguard.toml", "callers.toml"] {
        std::fs::set_permissions(dir.path().join(f), std::fs::Permissions::from_mode(0o644))
            .unwrap();
    }
    let gw = GatewayProcess::start(&config, true).await;
    let send = |token: &'static str| {
        let addr = gw.addr;
        async move {
            // ro-1 and ro-3 are different shares (the same one twice would be a conflict).
            let ou = if token == "ro-3" {
                "ou-ab12-22222222"
            } else {
                APPROVED_OU
            };
            let (path, body) = share_request(ou, token);
            RawRequest::new("POST", &path, body).send(addr).await
        }
    };
    assert_eq!(send("ro-1").await.status, 200);

    // The file goes away and the directory turns read-only: nothing can be recorded.
    std::fs::rename(&audit, dir.path().join("audit-before.jsonl")).unwrap();
    std::fs::set_permissions(&audit_dir, std::fs::Permissions::from_mode(0o555)).unwrap();
    let resp = send("ro-2").await;
    assert_eq!(resp.status, 500, "{resp:?}");
    assert_eq!(resp.error_type(), Some("InternalServerException"));
    assert_eq!(sim.sim.received().len(), 1);
    assert_eq!(gw.admin_get("/readyz").await.0, 503);

    std::fs::set_permissions(&audit_dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut ready = 0;
    for _ in 0..50 {
        ready = gw.admin_get("/readyz").await.0;
        if ready == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ready, 200);
    assert_eq!(send("ro-3").await.status, 200);
    assert_eq!(sim.sim.received().len(), 2);
    let out = audit_verify(&[&dir.path().join("audit-before.jsonl"), &audit]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn kill_9_mid_load_loses_no_decision_record() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::start().await;
    let audit = dir.path().join("audit.jsonl");
    let config = write_process_config(dir.path(), &format!("http://{}", sim.addr), &audit, "");
    let mut gw = GatewayProcess::start(&config, false).await;
    let addr = gw.addr;
    let mut tasks = Vec::new();
    for i in 0..300 {
        tasks.push(tokio::spawn(async move {
            let (path, body) = share_request(
                if i % 2 == 0 {
                    APPROVED_OU
                } else {
                    UNAPPROVED_OU
                },
                &format!("crash-{i}"),
            );
            let _ = tokio::time::timeout(
                Duration::from_secs(10),
                RawRequest::new("POST", &path, body).send(addr),
            )
            .await;
        }));
        if i == 150 {
            gw.child.kill().unwrap();
            gw.child.wait().unwrap();
        }
    }
    for t in tasks {
        let _ = t.await;
    }
    // Restart on the same file: it is repaired if torn, and the chain continues.
    drop(gw);
    let gw = GatewayProcess::start(&config, false).await;
    let (path, body) = share_request("ou-ab12-22222222", "after-crash");
    assert_eq!(
        RawRequest::new("POST", &path, body)
            .send(gw.addr)
            .await
            .status,
        200
    );
    drop(gw);

    let out = audit_verify(&[&audit]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let records = audit_lines(&audit);
    let received = sim.sim.received();
    assert!(!received.is_empty());
    for r in &received {
        let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
        let token = body["ClientRequestToken"].as_str().unwrap();
        let audited = records.iter().any(|rec| {
            rec["type"] == "decision"
                && rec["decision"] == "allow"
                && rec["client_request_token"] == token
        });
        assert!(
            audited,
            "upstream received {token} without a decision record"
        );
    }
}

#[tokio::test]
async fn sigterm_finishes_in_flight_requests_and_exits_cleanly() {
    // An upstream that takes a second to answer.
    let slow = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let slow_addr = slow.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = slow.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(Duration::from_millis(1000)).await;
                let body = format!(
                    "{{\"TemplateArn\":\"{TEMPLATE_ARN}\",\"ShareId\":\"0123456789abcdef0123456789abcdef\"}}"
                );
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-amzn-requestid: slow-1\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = write_process_config(dir.path(), &format!("http://{slow_addr}"), &audit, "");
    let mut gw = GatewayProcess::start(&config, false).await;
    let addr = gw.addr;
    let in_flight = tokio::spawn(async move {
        let (path, body) = share_request(APPROVED_OU, "graceful");
        RawRequest::new("POST", &path, body).send(addr).await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    gw.signal("TERM");
    tokio::time::sleep(Duration::from_millis(200)).await;
    // No new connections once shutting down.
    assert!(
        tokio::net::TcpStream::connect(addr).await.is_err(),
        "still accepting after SIGTERM"
    );
    let resp = in_flight.await.unwrap();
    assert_eq!(resp.status, 200, "{resp:?}");
    let status = tokio::task::spawn_blocking(move || gw.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    let text = std::fs::read_to_string(&audit).unwrap();
    assert!(
        text.contains("\"type\":\"outcome\"") && text.contains("slow-1"),
        "{text}"
    );
}

/// Reads the audit file as it is on disk, without asking the writer to flush.
fn records_on_disk(path: &Path) -> Vec<serde_json::Value> {
    audit_lines(path)
}

/// Polls the file (no flush, no traffic) until `done` holds or `within` has passed.
async fn wait_on_disk(
    path: &Path,
    within: Duration,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let start = std::time::Instant::now();
    loop {
        let records = records_on_disk(path);
        if done(&records) || start.elapsed() > within {
            return records;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn an_idle_gateways_records_reach_the_disk_without_further_traffic() {
    let h = Harness::start().await;
    // Let the audit writer fall asleep: this gateway sees a few requests a minute.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let c = h.payments();
    c.create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("idle-allow")
        .send()
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    c.create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(UNAPPROVED_OU)
        .client_request_token("idle-deny")
        .send()
        .await
        .unwrap_err();
    // No flush, no shutdown, no further request: the outcome of the allowed request and the
    // decision of the denied one are on disk on their own. (The README promises 50 ms; two
    // seconds of polling keeps this test about "written at all" on a loaded CI machine, where
    // without the writer being woken they stay in memory indefinitely.)
    let records = wait_on_disk(&h.audit_file, Duration::from_secs(2), |r| {
        r.iter().any(|r| r["type"] == "outcome")
            && r.iter().any(|r| r["client_request_token"] == "idle-deny")
    })
    .await;
    let allow = records
        .iter()
        .find(|r| r["client_request_token"] == "idle-allow")
        .expect("the allow decision is on disk");
    let outcome = records
        .iter()
        .find(|r| r["type"] == "outcome" && r["request_id"] == allow["request_id"]);
    assert_eq!(
        outcome.map(|o| o["upstream_status"].clone()),
        Some(serde_json::json!(200)),
        "the outcome is not on disk: {records:#?}"
    );
    let deny = records
        .iter()
        .find(|r| r["client_request_token"] == "idle-deny");
    assert_eq!(
        deny.map(|d| d["decision"].clone()),
        Some(serde_json::json!("deny")),
        "the deny decision is not on disk: {records:#?}"
    );
    h.stop().await;
}

/// An upstream that sends the head of a 200 answer and part of its body, then stalls.
async fn stalling_upstream(stall: Duration) -> std::net::SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                let head = "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nx-amzn-requestid: stall-1\r\ncontent-length: 200\r\n\r\n{\"TemplateArn\":";
                let _ = s.write_all(head.as_bytes()).await;
                tokio::time::sleep(stall).await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_request_past_its_deadline_gets_its_outcome_record_and_its_own_request_id() {
    // The upstream answers the head in time and then stalls: only the overall per-request
    // deadline (request_timeout + upstream timeout = 2 s) ends it, after it was forwarded.
    let addr = stalling_upstream(Duration::from_secs(30)).await;
    let h = Harness::start_with(Options {
        endpoint: Some(format!("http://{addr}")),
        server_extra: "request_timeout = 1".into(),
        upstream_extra: "timeout = 1".into(),
        ..Default::default()
    })
    .await;
    let (path, body) = share_request(APPROVED_OU, "deadline");
    let resp = RawRequest::new("POST", &path, body)
        .send(h.gateway.addr)
        .await;
    assert_eq!(resp.status, 504, "{resp:?}");
    let records = h.audit_records().await;
    let decision = records
        .iter()
        .find(|r| r["type"] == "decision" && r["client_request_token"] == "deadline")
        .unwrap();
    assert_eq!(decision["decision"], "allow");
    // The caller's error names the same request as the audit record.
    assert_eq!(
        resp.header("x-amzn-requestid"),
        decision["request_id"].as_str()
    );
    let outcomes: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "outcome" && r["request_id"] == decision["request_id"])
        .collect();
    assert_eq!(outcomes.len(), 1, "{records:#?}");
    assert_eq!(outcomes[0]["upstream_status"], serde_json::Value::Null);
    assert_eq!(outcomes[0]["error"], "timeout");
    assert_eq!(outcomes[0]["forwarded"], true);
    // Counted like any request that ended in an error.
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(metric(&m, "waguard_in_flight_requests"), Some(0.0));
    assert_eq!(
        metric(
            &m,
            "waguard_requests_total{decision=\"error\",operation=\"CreateTemplateShare\"}"
        ),
        Some(1.0)
    );
    h.stop().await;
}

#[tokio::test]
async fn sigterm_past_the_grace_still_writes_the_outcome_of_every_forwarded_request() {
    // The upstream never finishes its answer; the grace is one second.
    let addr = stalling_upstream(Duration::from_secs(60)).await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = write_process_config(dir.path(), &format!("http://{addr}"), &audit, "");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("shutdown_grace = 10", "shutdown_grace = 1");
    std::fs::write(&config, text).unwrap();
    let mut gw = GatewayProcess::start(&config, false).await;
    let gw_addr = gw.addr;
    let in_flight: Vec<_> = (0..3)
        .map(|i| {
            tokio::spawn(async move {
                let (path, body) = share_request(APPROVED_OU, &format!("abandoned-{i}"));
                RawRequest::new("POST", &path, body).send(gw_addr).await
            })
        })
        .collect();
    // Forwarded (decision durable, upstream reached) before the signal.
    let forwarded = wait_on_disk(&audit, Duration::from_secs(5), |r| {
        r.iter().filter(|r| r["decision"] == "allow").count() == 3
    })
    .await;
    assert_eq!(
        forwarded
            .iter()
            .filter(|r| r["decision"] == "allow")
            .count(),
        3
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    gw.signal("TERM");
    let status = tokio::task::spawn_blocking(move || gw.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success(), "{status}");
    for t in in_flight {
        let _ = t.await;
    }
    let records = records_on_disk(&audit);
    for d in records.iter().filter(|r| r["decision"] == "allow") {
        let outcomes: Vec<_> = records
            .iter()
            .filter(|r| r["type"] == "outcome" && r["request_id"] == d["request_id"])
            .collect();
        assert_eq!(outcomes.len(), 1, "{d}: {records:#?}");
        assert_eq!(outcomes[0]["error"], "abandoned_at_shutdown");
        assert_eq!(outcomes[0]["upstream_status"], serde_json::Value::Null);
    }
    let out = audit_verify(&[&audit]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A gateway-process config in front of a fresh simulator, with its audit file in a new temp
/// folder and `extra_audit` lines in `[audit]`. Returns (folder, simulator, audit file, config).
async fn process_setup(
    extra_audit: &str,
) -> (
    tempfile::TempDir,
    SimServer,
    std::path::PathBuf,
    std::path::PathBuf,
) {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::start().await;
    let audit = dir.path().join("audit.jsonl");
    let config = write_process_config(
        dir.path(),
        &format!("http://{}", sim.addr),
        &audit,
        extra_audit,
    );
    (dir, sim, audit, config)
}

fn waguard(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(args)
        .output()
        .unwrap()
}

/// `waguard audit keygen`: PREFIX.key (private, 0600) and PREFIX.pub.
fn keygen(dir: &Path, name: &str) -> (std::path::PathBuf, std::path::PathBuf) {
    let prefix = dir.join("audit-signing");
    let out = waguard(&["audit", "keygen", "--name", name, prefix.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let key = dir.join("audit-signing.key");
    let public = dir.join("audit-signing.pub");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the signer key must be private");
    let public_text = std::fs::read_to_string(&public).unwrap();
    assert!(
        public_text.starts_with(&format!("{name}+")),
        "{public_text}"
    );
    assert!(!public_text.contains("PRIVATE"));
    // Never overwrites a key.
    let again = waguard(&["audit", "keygen", "--name", name, prefix.to_str().unwrap()]);
    assert!(!again.status.success());
    (key, public)
}

/// Rewrites a log as an attacker with write access would: `edit` changes the lines, then every
/// `seq`, `prev_hash` (and a checkpoint's `hash`) is recomputed so the chain verifies again.
fn rewrite_and_rehash(path: &Path, edit: impl FnOnce(&mut Vec<String>)) {
    use sha2::{Digest, Sha256};
    let mut lines: Vec<String> = std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    edit(&mut lines);
    let mut prev = "0".repeat(64);
    for (seq, line) in lines.iter_mut().enumerate() {
        let mut v: serde_json::Value = serde_json::from_str(line).unwrap();
        let fields = v.as_object_mut().unwrap();
        fields.remove("seq");
        fields.remove("prev_hash");
        if fields["type"] == "checkpoint" {
            fields.insert("size".into(), seq.into());
            fields.insert("hash".into(), prev.clone().into());
        }
        let rest = serde_json::to_string(&v).unwrap();
        *line = format!("{{\"seq\":{seq},\"prev_hash\":\"{prev}\",{}", &rest[1..]);
        prev = hex::encode(Sha256::digest(line.as_bytes()));
    }
    std::fs::write(path, lines.join("\n") + "\n").unwrap();
}

#[tokio::test]
async fn signed_checkpoints_let_audit_verify_catch_rewrites_edits_and_truncation() {
    let keys = tempfile::tempdir().unwrap();
    let (key, public) = keygen(keys.path(), "audit.example.internal");
    let (dir, _sim, audit, config) = process_setup(&format!(
        "stdout = true\nlog_name = \"audit.example.internal\"\nsigning_key_file = \"{}\"\ncheckpoint_interval = 1",
        key.display()
    ))
    .await;
    let mut gw = GatewayProcess::start_with_stdout(&config).await;
    let shipped_stdout = gw.child.stdout.take().unwrap();
    // What a log shipper would keep: every line the gateway prints on stdout.
    let shipper = std::thread::spawn(move || {
        use std::io::BufRead;
        std::io::BufReader::new(shipped_stdout)
            .lines()
            .map_while(Result::ok)
            .collect::<Vec<String>>()
    });
    for (i, ou) in [APPROVED_OU, UNAPPROVED_OU, APPROVED_OU].iter().enumerate() {
        let (path, body) = share_request(ou, &format!("cp-{i}"));
        RawRequest::new("POST", &path, body).send(gw.addr).await;
    }
    // A checkpoint follows the records within the interval, without further traffic.
    let records = wait_on_disk(&audit, Duration::from_secs(5), |r| {
        r.iter().any(|r| r["type"] == "checkpoint")
    })
    .await;
    assert!(
        records.iter().any(|r| r["type"] == "checkpoint"),
        "{records:#?}"
    );
    let (path, body) = share_request(APPROVED_OU, "cp-last");
    RawRequest::new("POST", &path, body).send(gw.addr).await;
    gw.signal("TERM");
    let status = tokio::task::spawn_blocking(move || gw.child.wait().unwrap())
        .await
        .unwrap();
    assert!(status.success());
    let shipped = shipper.join().unwrap();
    let shipped_checkpoint: serde_json::Value = shipped
        .iter()
        .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap())
        .rfind(|r| r["type"] == "checkpoint")
        .expect("checkpoints are shipped on stdout");
    // Shutdown signed everything before it.
    let records = audit_lines(&audit);
    let last = records.last().unwrap();
    assert_eq!(last["type"], "checkpoint");
    assert_eq!(last["size"].as_u64().unwrap() + 1, records.len() as u64);
    assert_eq!(shipped_checkpoint, *last);
    let kept_elsewhere = dir.path().join("checkpoint.note");
    std::fs::write(
        &kept_elsewhere,
        shipped_checkpoint["note"].as_str().unwrap(),
    )
    .unwrap();

    let verify = |file: &Path, with_checkpoint: bool| {
        let mut args = vec!["audit", "verify", "--public-key", public.to_str().unwrap()];
        if with_checkpoint {
            args.extend(["--checkpoint", kept_elsewhere.to_str().unwrap()]);
        }
        args.push(file.to_str().unwrap());
        let out = waguard(&args);
        (
            out.status.success(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
        )
    };
    let (ok, text) = verify(&audit, true);
    assert!(ok, "{text}");
    assert!(text.contains("signed checkpoints verified"), "{text}");
    assert!(text.contains("outside checkpoint"), "{text}");

    let copy = |name: &str| {
        let p = dir.path().join(name);
        std::fs::copy(&audit, &p).unwrap();
        p
    };
    let deny_line = |lines: &Vec<String>| {
        lines
            .iter()
            .position(|l| l.contains("\"decision\":\"deny\""))
            .unwrap()
    };

    // 1. A re-hashed rewrite (the denied share now reads as allowed): the plain chain verifies,
    //    the signed checkpoints after it do not.
    let rewritten = copy("rewritten.jsonl");
    rewrite_and_rehash(&rewritten, |lines| {
        let i = deny_line(lines);
        lines[i] = lines[i].replace("\"decision\":\"deny\"", "\"decision\":\"allow\"");
    });
    let plain = audit_verify(&[&rewritten]);
    assert!(
        plain.status.success(),
        "the unkeyed chain cannot see this: {}",
        String::from_utf8_lossy(&plain.stderr)
    );
    assert!(String::from_utf8_lossy(&plain.stdout).contains("without --public-key"));
    let (ok, text) = verify(&rewritten, false);
    assert!(!ok && text.contains("rewritten"), "{text}");
    // Re-signing is what the attacker cannot do: a forged note fails the signature check.
    let forged = copy("forged.jsonl");
    rewrite_and_rehash(&forged, |lines| {
        for l in lines
            .iter_mut()
            .filter(|l| l.contains("\"type\":\"checkpoint\""))
        {
            *l = l.replace("audit.example.internal\\n", "audit.example.internal\\n1");
        }
    });
    let (ok, text) = verify(&forged, false);
    assert!(!ok && text.contains("signature does not verify"), "{text}");

    // 2. The same rewrite with every checkpoint removed: only the one kept elsewhere sees it.
    let stripped = copy("stripped.jsonl");
    rewrite_and_rehash(&stripped, |lines| {
        let i = deny_line(lines);
        lines[i] = lines[i].replace("\"decision\":\"deny\"", "\"decision\":\"allow\"");
        lines.retain(|l| !l.contains("\"type\":\"checkpoint\""));
    });
    let (ok, text) = verify(&stripped, false);
    assert!(ok, "{text}");
    assert!(text.contains("no checkpoint"), "{text}");
    let (ok, text) = verify(&stripped, true);
    assert!(!ok, "{text}");

    // 3. The last record edited (and the final checkpoint dropped, chain re-hashed).
    let edited_last = copy("edited-last.jsonl");
    rewrite_and_rehash(&edited_last, |lines| {
        lines.pop();
        let last = lines.len() - 1;
        lines[last] = lines[last].replace("\"upstream_status\":200", "\"upstream_status\":403");
    });
    assert!(audit_verify(&[&edited_last]).status.success());
    let (ok, text) = verify(&edited_last, true);
    assert!(!ok && text.contains("rewritten"), "{text}");

    // 4. The tail cut off (back to a complete record, chain intact).
    let truncated = copy("truncated.jsonl");
    rewrite_and_rehash(&truncated, |lines| {
        lines.truncate(lines.len() - 3);
    });
    assert!(audit_verify(&[&truncated]).status.success());
    let (ok, text) = verify(&truncated, true);
    assert!(!ok && text.contains("truncated"), "{text}");

    // 5. A key that is not the log's.
    let other = tempfile::tempdir().unwrap();
    let (_, other_public) = keygen(other.path(), "audit.example.internal");
    let out = waguard(&[
        "audit",
        "verify",
        "--public-key",
        other_public.to_str().unwrap(),
        audit.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
}

#[tokio::test]
async fn a_stopped_stdout_reader_does_not_hold_up_allowed_requests() {
    let (_dir, _sim, audit, config) =
        process_setup("stdout = true\nstdout_buffer_bytes = 65536").await;
    let mut gw = GatewayProcess::start_with_stdout(&config).await;
    // The log shipper reading the gateway's stdout is stopped (SIGSTOP): the pipe fills up.
    struct Reader(std::process::Child);
    impl Reader {
        fn signal(&self, sig: &str) -> bool {
            std::process::Command::new("kill")
                .args([sig, &self.0.id().to_string()])
                .status()
                .unwrap()
                .success()
        }
    }
    impl Drop for Reader {
        fn drop(&mut self) {
            self.signal("-CONT");
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let reader = Reader(
        std::process::Command::new("cat")
            .stdin(std::process::Stdio::from(gw.child.stdout.take().unwrap()))
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap(),
    );
    assert!(reader.signal("-STOP"));
    // ~300 allowed requests write well over the pipe (64 KiB) and the copy's buffer (64 KiB).
    // Each must still be answered: a writer blocked on stdout would hang them all.
    let n = 300;
    for i in 0..n {
        let (path, body) = share_request(APPROVED_OU, &format!("stdout-{i}"));
        let resp = tokio::time::timeout(
            Duration::from_secs(10),
            RawRequest::new("POST", &path, body).send(gw.addr),
        )
        .await
        .unwrap_or_else(|_| panic!("request {i} hung behind the stopped stdout reader"));
        // Forwarded and answered (the simulator says 409 to a repeated share).
        assert!(
            resp.status == 200 || resp.status == 409,
            "request {i}: {resp:?}"
        );
    }
    let (_, metrics) = gw.admin_get("/metrics").await;
    let dropped = metric(&metrics, "waguard_audit_stdout_dropped_total").unwrap();
    assert!(dropped > 0.0, "{metrics}");
    let (ready, body) = gw.admin_get("/readyz").await;
    assert_eq!(ready, 200, "{body}");
    assert!(reader.signal("-CONT"));
    gw.signal("TERM");
    let _ = tokio::task::spawn_blocking(move || gw.child.wait()).await;
    drop(reader);
    // The file has every decision, whatever stdout missed.
    let decisions = audit_lines(&audit)
        .iter()
        .filter(|r| r["decision"] == "allow")
        .count();
    assert_eq!(decisions, n);
}
