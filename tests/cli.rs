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

#[test]
fn check_config_accepts_the_example_and_names_bad_keys() {
    let example = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo/waguard.toml");
    // The example's policy dir is filled in by `demo`; point a copy at the repo's policies.
    let dir = tempfile::tempdir().unwrap();
    let text = std::fs::read_to_string(example).unwrap().replace(
        "dir = \"policies\"",
        &format!("dir = \"{}/policies\"", env!("CARGO_MANIFEST_DIR")),
    );
    std::fs::write(dir.path().join("waguard.toml"), &text).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/examples/demo/callers.toml"),
        dir.path().join("callers.toml"),
    )
    .unwrap();
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
