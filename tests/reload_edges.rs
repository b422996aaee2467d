//! Hot reload at the edges: files still being written are never loaded half done, and a policy
//! tree with a symlink loop is refused with an error naming the link (at reload and from the
//! command line), while the last good version keeps serving.

mod common;

use std::io::Write;
use std::path::Path;
use std::time::Duration;

use common::*;
use waguard::policy::PolicySources;

/// The pause between two writes of a file "being written": longer than the reloader's
/// debounce (200 ms), so a reloader that trusts whatever parses reads the file mid-write,
/// and well below the quiet time (1 s) a file must be left alone before it is loaded.
const WRITE_PAUSE: Duration = Duration::from_millis(100);
/// How long the tests keep a file being written: longer than a periodic content check (2 s).
const WRITING_FOR: usize = 25;

fn append(path: &Path, text: &str) {
    let mut f = std::fs::OpenOptions::new().append(true).open(path).unwrap();
    f.write_all(text.as_bytes()).unwrap();
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

async fn share_status(h: &Harness, ou: &str, token: &str) -> u16 {
    let (path, body) = share_request(ou, token);
    RawRequest::new("POST", &path, body)
        .send(h.gateway.addr)
        .await
        .status
}

async fn reloads(h: &Harness, what: &str, result: &str) -> Option<f64> {
    let m = h.admin_get("/metrics").await.body;
    metric(
        &m,
        &format!("waguard_{what}_reloads_total{{result=\"{result}\"}}"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_file_being_written_is_never_served_half_done() {
    let h = Harness::start_with(Options {
        own_policies: true,
        ..Default::default()
    })
    .await;
    let dir = h.dir.path().join("policies");
    let rego = dir.join("waguard/authz.rego");
    let serving = h.gateway.gateway.policy.load().revision().to_string();
    assert_eq!(share_status(&h, UNAPPROVED_OU, "before").await, 403);

    // The new authz.rego, written front to back. Its first part alone is a valid policy that
    // allows everything; the whole file decides as the shipped policy does.
    let shipped = std::fs::read_to_string(&rego).unwrap();
    let (_, rules) = shipped.split_once("import rego.v1\n").unwrap();
    let first = "package waguard.authz\n\nimport rego.v1\n\ndefault finished := false\n\n\
                 decision := {\"allow\": true, \"reasons\": [\"half-written policy\"]} if not finished\n";
    let rest = format!("{rules}\nfinished := true\n");

    std::fs::write(&rego, first).unwrap();
    for i in 0..WRITING_FOR {
        tokio::time::sleep(WRITE_PAUSE).await;
        assert_eq!(
            h.gateway.gateway.policy.load().revision(),
            serving,
            "a half-written policy was loaded"
        );
        assert_eq!(
            share_status(&h, UNAPPROVED_OU, &format!("mid-{i}")).await,
            403
        );
        // Postponed, not rejected: nothing to report while the file is being written.
        assert_eq!(h.gateway.reloader.status().policy_error, None);
        append(&rego, &format!("# still writing {i}\n"));
    }
    append(&rego, &rest);

    let finished = PolicySources::read(&dir).unwrap().revision();
    let loaded =
        wait_for(|| async { h.gateway.gateway.policy.load().revision() == finished }).await;
    assert!(loaded, "the finished file was not loaded");
    assert_eq!(share_status(&h, UNAPPROVED_OU, "after").await, 403);
    assert_eq!(share_status(&h, APPROVED_OU, "after").await, 200);
    assert_eq!(reloads(&h, "policy", "success").await, Some(1.0));
    assert_eq!(reloads(&h, "policy", "error").await, Some(0.0));
    assert_eq!(h.gateway.reloader.status().policy_error, None);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callers_file_being_written_is_never_served_half_done() {
    let h = Harness::start().await;
    let callers = h.dir.path().join("callers.toml");
    let platform = h.client(PLATFORM_KEY, PLATFORM_SECRET);
    let carol_key = "AKWGNEWCALLER000001";
    let carol = h.client(carol_key, "new-caller-secret-00001");

    // The new file, written front to back: its first part alone is a valid callers file that
    // lacks the platform team's key.
    let split = CALLERS.rfind("[[callers]]").unwrap();
    let (first, platform_entry) = CALLERS.split_at(split);
    let rest = format!(
        "{platform_entry}\n[[callers]]\naccess_key_id = \"{carol_key}\"\nsecret_access_key = \"new-caller-secret-00001\"\nprincipal = \"carol@example.com\"\nteam = \"payments\"\n"
    );

    std::fs::write(&callers, first).unwrap();
    for i in 0..WRITING_FOR {
        tokio::time::sleep(WRITE_PAUSE).await;
        assert!(
            h.gateway.gateway.callers.load().get(PLATFORM_KEY).is_some(),
            "a half-written callers file was loaded"
        );
        if i % 5 == 0 {
            let listed = platform
                .list_template_shares()
                .template_arn(TEMPLATE_ARN)
                .send()
                .await;
            assert!(listed.is_ok(), "{listed:?}");
        }
        assert_eq!(h.gateway.reloader.status().callers_error, None);
        append(&callers, &format!("# still writing {i}\n"));
    }
    append(&callers, &rest);

    let works = wait_for(|| async {
        carol
            .list_template_shares()
            .template_arn(TEMPLATE_ARN)
            .send()
            .await
            .is_ok()
    })
    .await;
    assert!(works, "the finished file was not loaded");
    assert!(
        platform
            .list_template_shares()
            .template_arn(TEMPLATE_ARN)
            .send()
            .await
            .is_ok()
    );
    assert_eq!(h.gateway.gateway.callers.load().len(), 3);
    assert_eq!(reloads(&h, "callers", "success").await, Some(1.0));
    assert_eq!(reloads(&h, "callers", "error").await, Some(0.0));
    h.stop().await;
}

#[tokio::test]
async fn a_symlink_loop_in_the_policy_dir_is_rejected_naming_the_link() {
    let h = Harness::start_with(Options {
        own_policies: true,
        ..Default::default()
    })
    .await;
    let dir = h.dir.path().join("policies");
    let serving = h.gateway.gateway.policy.load().revision().to_string();
    let link = dir.join("waguard/loop");
    std::os::unix::fs::symlink("..", &link).unwrap();

    let reported = wait_for(|| async { h.gateway.reloader.status().policy_error.is_some() }).await;
    assert!(reported, "the loop was not reported");
    let error = h.gateway.reloader.status().policy_error.unwrap();
    assert_eq!(
        error,
        format!(
            "{}: symlink loop: leads back to {}, a folder that contains it",
            link.display(),
            dir.display()
        )
    );
    let ready = h.admin_get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert_eq!(h.gateway.gateway.policy.load().revision(), serving);
    assert_eq!(share_status(&h, APPROVED_OU, "loop-1").await, 200);
    assert_eq!(share_status(&h, UNAPPROVED_OU, "loop-2").await, 403);
    // Reported once, not at every periodic check.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(reloads(&h, "policy", "error").await, Some(1.0));

    std::fs::remove_file(&link).unwrap();
    let cleared = wait_for(|| async { h.gateway.reloader.status().policy_error.is_none() }).await;
    assert!(cleared, "removing the loop did not clear the error");
    h.stop().await;
}

#[test]
fn the_command_line_refuses_a_policy_dir_with_a_symlink_loop() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path().join("policies");
    copy_dir(&repo_policies(), &dir);
    std::os::unix::fs::symlink(".", dir.join("loop")).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(["policy", "test"])
        .arg(&dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}: symlink loop: leads back to {}",
            dir.join("loop").display(),
            dir.display()
        )),
        "{stderr}"
    );
}
