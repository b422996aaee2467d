//! The `waguard` binary as a user runs it.

use std::process::Command;

fn waguard() -> Command {
    Command::new(env!("CARGO_BIN_EXE_waguard"))
}

#[test]
fn demo_shows_one_allowed_and_one_denied_share() {
    let out = waguard()
        .args(["demo", "--exit", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout
            .contains("aws wellarchitected create-template-share --endpoint-url http://127.0.0.1:"),
        "{stdout}"
    );
    assert!(stdout.contains("export AWS_ACCESS_KEY_ID="), "{stdout}");
    let allowed = stdout
        .lines()
        .find(|l| l.contains("--shared-with ou-ab12-11111111: HTTP"))
        .unwrap();
    assert!(
        allowed.contains("HTTP 200") && allowed.contains("\"ShareId\""),
        "{allowed}"
    );
    let denied = stdout
        .lines()
        .find(|l| l.contains("--shared-with ou-ab12-99999999: HTTP"))
        .unwrap();
    assert!(
        denied.contains("HTTP 403") && denied.contains("AccessDeniedException"),
        "{denied}"
    );
    // The demo organization: an account under an approved OU is allowed, one outside the
    // organization denied.
    let in_ou = stdout
        .lines()
        .find(|l| l.contains("--shared-with 333748161105: HTTP"))
        .unwrap();
    assert!(in_ou.contains("HTTP 200"), "{in_ou}");
    let outside = stdout
        .lines()
        .find(|l| l.contains("--shared-with 123412341234: HTTP"))
        .unwrap();
    assert!(
        outside.contains("HTTP 403") && outside.contains("AccessDeniedException"),
        "{outside}"
    );
}

/// A copy of the example config (and its callers file) in `dir`, pointed at the repo's
/// policies (`demo` fills the example's policy dir in); returns its text.
fn example_config(dir: &std::path::Path) -> String {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/demo/waguard.toml"
    ))
    .unwrap()
    .replace(
        "dir = \"policies\"",
        &format!("dir = \"{}/policies\"", env!("CARGO_MANIFEST_DIR")),
    );
    std::fs::write(dir.join("waguard.toml"), &text).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo/callers.toml"),
        dir.join("callers.toml"),
    )
    .unwrap();
    text
}

#[test]
fn check_config_accepts_the_example_and_names_bad_keys() {
    let dir = tempfile::tempdir().unwrap();
    let text = example_config(dir.path());
    let out = waguard()
        .args(["check-config", "--config"])
        .arg(dir.path().join("waguard.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("2 callers"));

    std::fs::write(
        dir.path().join("waguard.toml"),
        text.replace("[audit]", "[audit]\nfsync = false"),
    )
    .unwrap();
    let out = waguard()
        .args(["check-config", "--config"])
        .arg(dir.path().join("waguard.toml"))
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("waguard.toml") && err.contains("fsync"),
        "{err}"
    );
}

/// Starts `waguard serve` on a copy of the example config with `server` lines added, returns
/// the worker thread count its "waguard listening" line reports, and stops it.
fn serve_and_read_worker_threads(server: &str) -> u64 {
    use std::io::{BufRead, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let text = example_config(dir.path())
        .replace("127.0.0.1:8080\"", &format!("127.0.0.1:0\"\n{server}"))
        .replace("127.0.0.1:9090", "127.0.0.1:0");
    std::fs::write(dir.path().join("waguard.toml"), &text).unwrap();
    let mut child = waguard()
        .args(["serve", "--config"])
        .arg(dir.path().join("waguard.toml"))
        .env("AWS_ACCESS_KEY_ID", "AKWGTESTSERVICE0001")
        .env("AWS_SECRET_ACCESS_KEY", "test-service-secret")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", "/dev/null")
        .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut seen = Vec::new();
    let mut threads = None;
    for line in BufReader::new(child.stderr.take().unwrap()).lines() {
        let line = line.unwrap();
        if line.contains("waguard listening") {
            let v: serde_json::Value = serde_json::from_str(&line).unwrap();
            threads = v["worker_threads"].as_u64();
            break;
        }
        seen.push(line);
    }
    let _ = child.kill();
    let _ = child.wait();
    threads.unwrap_or_else(|| panic!("no \"waguard listening\" line: {seen:#?}"))
}

#[test]
fn serve_runs_as_many_runtime_threads_as_configured() {
    // Two by default (one where the process may use one CPU), whatever the machine's (or the
    // Kubernetes node's) core count.
    let cpus = std::thread::available_parallelism().unwrap().get() as u64;
    assert_eq!(serve_and_read_worker_threads(""), cpus.min(2));
    assert_eq!(serve_and_read_worker_threads("worker_threads = 1"), 1);
    assert_eq!(serve_and_read_worker_threads("worker_threads = 3"), 3);
}
