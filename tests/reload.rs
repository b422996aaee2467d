//! Policy as code at runtime: hot reload on edits (also under load, and through ConfigMap-style
//! symlink swaps), SIGHUP, rejected broken edits, callers reload, and dry-run mode.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::*;

const NEW_OU: &str = "ou-ab12-33333333";

fn approve_new_ou(teams_json: &std::path::Path) {
    let text = std::fs::read_to_string(teams_json).unwrap();
    let edited = text.replacen(
        "\"ou-ab12-22222222\"",
        &format!("\"ou-ab12-22222222\", \"{NEW_OU}\""),
        1,
    );
    assert_ne!(text, edited);
    // Write-then-rename, as editors and config tools do.
    let tmp = teams_json.with_extension("json.tmp");
    std::fs::write(&tmp, edited).unwrap();
    std::fs::rename(&tmp, teams_json).unwrap();
}

async fn share_status(h: &Harness, ou: &str, token: &str) -> u16 {
    let (path, body) = share_request(ou, token);
    RawRequest::new("POST", &path, body)
        .send(h.gateway.addr)
        .await
        .status
}

async fn wait_for<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn editing_a_data_file_changes_the_next_decision_under_load() {
    let h = Arc::new(
        Harness::start_with(Options {
            own_policies: true,
            ..Default::default()
        })
        .await,
    );
    assert_eq!(share_status(&h, NEW_OU, "first").await, 403);
    let revision_before = h.gateway.gateway.policy.load().revision().to_string();

    // Concurrent load throughout the reload: every answer must be a decision, never a failure.
    let stop = Arc::new(AtomicBool::new(false));
    let mut workers = Vec::new();
    for w in 0..8 {
        let (h, stop) = (h.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            let mut seen = Vec::new();
            let mut i = 0;
            while !stop.load(Ordering::Relaxed) {
                seen.push(share_status(&h, NEW_OU, &format!("load-{w}-{i}")).await);
                i += 1;
            }
            seen
        }));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    approve_new_ou(&h.dir.path().join("policies/waguard/teams.json"));
    let switched =
        wait_for(|| async { h.gateway.gateway.policy.load().revision() != revision_before }).await;
    assert!(switched, "the edit was not picked up");
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        let seen = w.await.unwrap();
        // 403 before the swap; after it, one share is created (200) and repeats conflict (409).
        assert!(
            seen.iter().all(|s| matches!(s, 200 | 403 | 409)),
            "{seen:?}"
        );
        // The swap is atomic: once a worker saw an allow, it never saw a deny again.
        if let Some(first_allowed) = seen.iter().position(|s| *s != 403) {
            assert!(seen[first_allowed..].iter().all(|s| *s != 403), "{seen:?}");
        }
    }
    assert_eq!(
        h.sim
            .shares(TEMPLATE_ARN)
            .iter()
            .filter(|(_, w)| w == NEW_OU)
            .count(),
        1
    );
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(&m, "waguard_policy_reloads_total{result=\"success\"}"),
        Some(1.0),
        "{m}"
    );
    h.stop().await;
}

#[tokio::test]
async fn a_broken_edit_is_rejected_and_the_last_good_policy_keeps_serving() {
    let h = Harness::start_with(Options {
        own_policies: true,
        ..Default::default()
    })
    .await;
    let revision = h.gateway.gateway.policy.load().revision().to_string();
    let rego = h.dir.path().join("policies/waguard/authz.rego");
    let good = std::fs::read_to_string(&rego).unwrap();
    std::fs::write(&rego, format!("{good}\nthis is not rego {{\n")).unwrap();

    let reported = wait_for(|| async {
        let r = h.admin_get("/readyz").await;
        r.body.contains("policy_reload\":\"rejected")
    })
    .await;
    assert!(reported, "the rejected reload was not reported on /readyz");
    let ready = h.admin_get("/readyz").await;
    assert_eq!(
        ready.status, 200,
        "a bad edit must not take the gateway out of service"
    );
    // /readyz (no authentication) says only that a reload was rejected; the detail, naming
    // the file, is in the gateway's log and reload status.
    assert!(!ready.body.contains("authz.rego"), "{}", ready.body);
    let detail = h.gateway.reloader.status().policy_error.unwrap_or_default();
    assert!(
        detail.contains("authz.rego"),
        "the error names the file: {detail}"
    );
    assert_eq!(h.gateway.gateway.policy.load().revision(), revision);
    assert_eq!(share_status(&h, APPROVED_OU, "still-allowed").await, 200);
    assert_eq!(share_status(&h, UNAPPROVED_OU, "still-denied").await, 403);
    // Reported once, not once per periodic check.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(&m, "waguard_policy_reloads_total{result=\"error\"}"),
        Some(1.0),
        "{m}"
    );

    std::fs::write(&rego, &good).unwrap();
    let cleared = wait_for(|| async {
        let r = h.admin_get("/readyz").await;
        r.body.contains("\"policy_reload\":\"ok\"")
    })
    .await;
    assert!(cleared);
    h.stop().await;
}

#[tokio::test]
async fn a_configmap_style_symlink_swap_is_picked_up() {
    // Kubernetes mounts a ConfigMap as: ..<timestamp>/files, ..data -> ..<timestamp>, and
    // top-level links into ..data. An update swaps ..data atomically.
    let dir = tempfile::tempdir().unwrap();
    let mount = dir.path().join("mount");
    let v1 = mount.join("..2026_11_26_v1");
    copy_dir(&repo_policies(), &v1);
    std::os::unix::fs::symlink("..2026_11_26_v1", mount.join("..data")).unwrap();
    std::os::unix::fs::symlink("..data/waguard", mount.join("waguard")).unwrap();

    let h = Harness::start_with(Options {
        policy_extra: String::new(),
        own_policies: false,
        ..Default::default()
    })
    .await;
    // Point a second gateway at the mount (the harness's own gateway serves the repo policies).
    let gw = h
        .start_second_gateway(|text| {
            text.replace(
                &format!("dir = \"{}\"", repo_policies().display()),
                &format!("dir = \"{}\"", mount.display()),
            )
        })
        .await;
    let (path, body) = share_request(NEW_OU, "cm-1");
    assert_eq!(
        RawRequest::new("POST", &path, body)
            .send(gw.addr)
            .await
            .status,
        403
    );

    let v2 = mount.join("..2026_11_26_v2");
    copy_dir(&v1, &v2);
    approve_new_ou(&v2.join("waguard/teams.json"));
    std::os::unix::fs::symlink("..2026_11_26_v2", mount.join("..data_tmp")).unwrap();
    std::fs::rename(mount.join("..data_tmp"), mount.join("..data")).unwrap();
    std::fs::remove_dir_all(&v1).unwrap();

    let addr = gw.addr;
    let allowed = wait_for(|| async {
        let (path, body) = share_request(NEW_OU, "cm-2");
        RawRequest::new("POST", &path, body).send(addr).await.status != 403
    })
    .await;
    assert!(allowed, "the swapped ConfigMap was not picked up");
    gw.shutdown().await;
    h.stop().await;
}

#[tokio::test]
async fn sighup_reloads_when_file_watching_is_off() {
    let dir = tempfile::tempdir().unwrap();
    let sim = SimServer::start().await;
    copy_dir(&repo_policies(), &dir.path().join("policies"));
    let config = write_process_config(
        dir.path(),
        &format!("http://{}", sim.addr),
        &dir.path().join("audit.jsonl"),
        "",
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        &format!("dir = \"{}\"", repo_policies().display()),
        "dir = \"policies\"\nwatch = false",
    );
    std::fs::write(&config, text).unwrap();
    let gw = GatewayProcess::start(&config, false).await;
    let send = |token: &'static str| {
        let addr = gw.addr;
        async move {
            let (path, body) = share_request(NEW_OU, token);
            RawRequest::new("POST", &path, body).send(addr).await.status
        }
    };
    assert_eq!(send("hup-1").await, 403);
    approve_new_ou(&dir.path().join("policies/waguard/teams.json"));
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        send("hup-2").await,
        403,
        "reloaded although watching is off"
    );
    gw.signal("HUP");
    let mut status = 0;
    for i in 0..40 {
        tokio::time::sleep(Duration::from_millis(50)).await;
        status = send(["hup-3", "hup-4", "hup-5"][i % 3]).await;
        if status != 403 {
            break;
        }
    }
    assert_eq!(status, 200);
}

#[tokio::test]
async fn the_callers_file_reloads_and_a_broken_one_is_rejected() {
    let h = Harness::start().await;
    let new_key = "AKWGNEWCALLER000001";
    let new_secret = "new-caller-secret-00001";
    let c = h.client(new_key, new_secret);
    let err = c
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap_err();
    assert!(format!("{err:?}").contains("UnrecognizedClientException"));

    let callers = h.dir.path().join("callers.toml");
    let added = format!(
        "{CALLERS}\n[[callers]]\naccess_key_id = \"{new_key}\"\nsecret_access_key = \"{new_secret}\"\nprincipal = \"carol@example.com\"\nteam = \"payments\"\n"
    );
    std::fs::write(&callers, &added).unwrap();
    let works = wait_for(|| async {
        c.list_template_shares()
            .template_arn(TEMPLATE_ARN)
            .send()
            .await
            .is_ok()
    })
    .await;
    assert!(works, "the new caller key was not picked up");

    std::fs::write(
        &callers,
        format!("{added}\n[[callers]]\naccess_key_id = \"short\"\n"),
    )
    .unwrap();
    let reported = wait_for(|| async {
        h.admin_get("/readyz")
            .await
            .body
            .contains("callers_reload\":\"rejected")
    })
    .await;
    assert!(reported);
    assert!(
        c.list_template_shares()
            .template_arn(TEMPLATE_ARN)
            .send()
            .await
            .is_ok(),
        "the last good callers keep working"
    );
    h.stop().await;
}

#[tokio::test]
async fn dry_run_records_would_deny_and_forwards() {
    let h = Harness::start_with(Options {
        policy_extra: "mode = \"dry-run\"\noperation_modes = { CreateLensShare = \"enforce\" }"
            .into(),
        ..Default::default()
    })
    .await;
    assert_eq!(share_status(&h, UNAPPROVED_OU, "dry-1").await, 200);
    assert_eq!(h.sim.received().len(), 1);
    let records = h.audit_records().await;
    let d = records.iter().find(|r| r["type"] == "decision").unwrap();
    assert_eq!(d["decision"], "would_deny");
    assert!(d["reasons"][0].as_str().unwrap().contains(UNAPPROVED_OU));
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(
            &m,
            "waguard_requests_total{decision=\"would_deny\",operation=\"CreateTemplateShare\"}"
        ),
        Some(1.0)
    );
    // The per-operation override still enforces.
    let lens = RawRequest::new(
        "POST",
        "/lenses/custom-lens/shares",
        format!("{{\"SharedWith\":\"{UNAPPROVED_OU}\",\"ClientRequestToken\":\"l\"}}"),
    )
    .send(h.gateway.addr)
    .await;
    assert_eq!(lens.status, 403, "{lens:?}");
    assert_eq!(h.sim.received().len(), 1);
    h.stop().await;
}
