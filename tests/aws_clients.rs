//! The README's promise: the AWS CLI and boto3, unmodified, pointed at `waguard demo`, get a
//! ShareId for an approved OU and AccessDeniedException for another.

#[path = "common/python.rs"]
mod python;

#[test]
fn aws_cli_and_boto3_against_the_demo() {
    let (clients, demo) = python::demo_with_clients(python::env(), env!("CARGO_BIN_EXE_waguard"));
    assert!(
        clients.status.success(),
        "AWS CLI / boto3 against the demo failed:\n{}\n{}",
        String::from_utf8_lossy(&clients.stdout),
        String::from_utf8_lossy(&clients.stderr)
    );
    println!("{}", String::from_utf8_lossy(&clients.stdout));
    assert!(demo.success(), "demo exited with {demo}");
}
