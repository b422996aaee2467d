//! The README's promise: the AWS CLI and boto3, unmodified, pointed at `waguard demo`, get a
//! ShareId for an approved OU and AccessDeniedException for another.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

#[test]
fn aws_cli_and_boto3_against_the_demo() {
    let mut demo = Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(demo.stdout.take().unwrap()).lines();
    let first = lines.next().unwrap().unwrap();
    let endpoint = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap()
        .trim_end_matches(',')
        .to_string();
    let out = Command::new("python3")
        .arg(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/clients/demo_clients.py"
        ))
        .arg(&endpoint)
        .output()
        .unwrap();
    // SIGTERM: the demo shuts down gracefully and exits 0.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(demo.id().to_string())
        .status();
    let status = demo.wait().unwrap();
    assert!(
        out.status.success(),
        "AWS CLI / boto3 against the demo failed (CI installs them with `pip install -r .ci/requirements.txt`):\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    println!("{}", String::from_utf8_lossy(&out.stdout));
    assert!(status.success(), "demo exited with {status}");
}
