//! `cargo test` on a fresh machine: the tests provision their own Python tools from a bare
//! Python (no AWS CLI, boto3, Helm or moto packages), reuse them, rebuild them when the pinned
//! requirements change, and say what is missing when Python itself cannot make a venv.

#[path = "common/python.rs"]
mod python;

use std::ffi::OsString;
use std::path::Path;
use std::process::Command;

/// A bare virtual environment (nothing but pip) whose `bin` comes first on the returned `PATH`.
fn bare_python(dir: &Path) -> OsString {
    let bare = dir.join("bare");
    let status = Command::new("python3")
        .args(["-m", "venv"])
        .arg(&bare)
        .status()
        .unwrap();
    assert!(status.success(), "python3 -m venv failed");
    let mut paths = vec![bare.join("bin")];
    paths.extend(std::env::split_paths(&std::env::var_os("PATH").unwrap()));
    std::env::join_paths(paths).unwrap()
}

fn imports(python: &str, path: &OsString, module: &str) -> bool {
    Command::new(python)
        .args(["-c", &format!("import {module}")])
        .env("PATH", path)
        .output()
        .unwrap()
        .status
        .success()
}

#[test]
fn client_and_chart_tests_pass_from_a_bare_python_first_on_path() {
    let tmp = tempfile::tempdir().unwrap();
    let path = bare_python(tmp.path());
    // The precondition: the `python3` on this PATH has none of the tools.
    for module in [
        "boto3",
        "awscli",
        "helm_python",
        "kubernetes_validate",
        "moto",
    ] {
        assert!(
            !imports("python3", &path, module),
            "the bare Python unexpectedly has {module}"
        );
    }
    let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join(python::REQUIREMENTS);
    let env = python::provision(
        "python3".as_ref(),
        Some(&path),
        &requirements,
        &tmp.path().join("env"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert!(env.built);
    assert!(env.bin("aws").exists() && env.bin("moto_server").exists());

    let (clients, demo) = python::demo_with_clients(&env, env!("CARGO_BIN_EXE_waguard"));
    assert!(
        clients.status.success(),
        "AWS CLI / boto3 from the provisioned env failed:\n{}\n{}",
        String::from_utf8_lossy(&clients.stdout),
        String::from_utf8_lossy(&clients.stderr)
    );
    assert!(demo.success());
    let chart = python::run_chart_tests(&env, env!("CARGO_BIN_EXE_waguard"));
    assert!(
        chart.status.success()
            && String::from_utf8_lossy(&chart.stdout).contains(" passed, 0 failed"),
        "chart tests from the provisioned env failed:\n{}\n{}",
        String::from_utf8_lossy(&chart.stdout),
        String::from_utf8_lossy(&chart.stderr)
    );
    // Nothing went into the Python on PATH.
    assert!(!imports("python3", &path, "boto3"));
}

#[test]
fn environment_is_reused_shared_and_rebuilt_when_requirements_change() {
    let tmp = tempfile::tempdir().unwrap();
    let requirements = tmp.path().join("requirements.txt");
    // No packages: this test is about the environment's life cycle, not about pip downloads.
    std::fs::write(&requirements, "# nothing yet\n").unwrap();
    let dir = tmp.path().join("env");
    let provision = || python::provision("python3".as_ref(), None, &requirements, &dir);

    // Two test binaries at once: one builds, the other waits for the lock and reuses it.
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(provision);
        let b = s.spawn(provision);
        (a.join().unwrap().unwrap(), b.join().unwrap().unwrap())
    });
    assert_eq!(
        [a.built, b.built].iter().filter(|b| **b).count(),
        1,
        "exactly one of two concurrent provisions builds"
    );
    let marker = dir.join("marker");
    std::fs::write(&marker, "").unwrap();

    let again = provision().unwrap();
    assert!(!again.built, "an up-to-date environment is reused");
    assert!(marker.exists());

    std::fs::write(&requirements, "# a pin changed\n").unwrap();
    let rebuilt = provision().unwrap();
    assert!(
        rebuilt.built,
        "changed requirements rebuild the environment"
    );
    assert!(!marker.exists());
    assert!(rebuilt.python().exists());
}

#[test]
fn a_missing_python_is_named_with_what_to_install() {
    let tmp = tempfile::tempdir().unwrap();
    let requirements = tmp.path().join("requirements.txt");
    std::fs::write(&requirements, "").unwrap();
    let err = python::provision(
        "python3-that-is-not-installed".as_ref(),
        None,
        &requirements,
        &tmp.path().join("env"),
    )
    .unwrap_err();
    assert!(err.contains("venv"), "{err}");
    assert!(err.contains("python3-that-is-not-installed"), "{err}");
}
