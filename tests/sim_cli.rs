//! `waguard sim` and `waguard serve` as two processes, as someone trying the gateway by hand
//! would run them; and the audit copy on stdout for cluster log shipping.

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use common::*;

#[tokio::test]
async fn the_sim_command_verifies_the_gateways_signatures_and_serves_shares() {
    let port = free_port();
    let mut sim = Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(["sim", "--listen", &format!("127.0.0.1:{port}")])
        .env("AWS_ACCESS_KEY_ID", SERVICE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SERVICE_SECRET)
        .env_remove("AWS_SESSION_TOKEN")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // It says where it listens once it is ready.
    let mut lines = BufReader::new(sim.stderr.take().unwrap()).lines();
    let ready = lines.next().unwrap().unwrap();
    assert!(ready.contains(&format!("127.0.0.1:{port}")), "{ready}");

    let dir = tempfile::tempdir().unwrap();
    let config = write_process_config(
        dir.path(),
        &format!("http://127.0.0.1:{port}"),
        &dir.path().join("audit.jsonl"),
        "stdout = true",
    );
    let gw = GatewayProcess::start_with_stdout(&config).await;
    let (path, body) = share_request(APPROVED_OU, "sim-cli-1");
    let resp = RawRequest::new("POST", &path, body.clone())
        .send(gw.addr)
        .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(resp.body.contains("\"ShareId\""), "{}", resp.body);
    // The same token and parameters: the same share (idempotent).
    let again = RawRequest::new("POST", &path, body).send(gw.addr).await;
    assert_eq!(again.body, resp.body);

    // A request signed with any other key is refused by the sim.
    let (path, body) = share_request(APPROVED_OU, "direct");
    let mut direct = RawRequest::new("POST", &path, body);
    direct.key = PAYMENTS_KEY;
    let to_sim = direct
        .send(format!("127.0.0.1:{port}").parse().unwrap())
        .await;
    assert_eq!(to_sim.status, 403, "{to_sim:?}");

    // Audit records are also copied to stdout.
    gw.signal("TERM");
    let mut gw = gw;
    let stdout = gw.child.stdout.take().unwrap();
    let copied: Vec<String> = tokio::task::spawn_blocking(move || {
        BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
            .collect()
    })
    .await
    .unwrap();
    let _ = gw.child.wait();
    assert!(
        copied
            .iter()
            .any(|l| l.contains("\"client_request_token\":\"sim-cli-1\"")
                && l.contains("\"type\":\"decision\"")),
        "{copied:?}"
    );
    let on_disk = std::fs::read_to_string(dir.path().join("audit.jsonl")).unwrap();
    assert_eq!(
        copied.join("\n") + "\n",
        on_disk,
        "stdout carries exactly the records on disk"
    );
    let _ = sim.kill();
    let _ = sim.wait();
    tokio::time::sleep(Duration::from_millis(10)).await;
}
