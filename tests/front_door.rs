//! Abuse resistance at the front door: what anyone who can reach the port can make the
//! gateway do (write to the audit log, read bodies, hold connections and request slots), and
//! what a noisy authenticated caller can (`[limits]`).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bytes::Bytes;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Reads one HTTP/1.1 response (headers and a Content-Length body) from a keep-alive
/// connection; `None` if the connection closed or nothing came within `within`.
async fn read_one_response(stream: &mut TcpStream, within: Duration) -> Option<RawResponse> {
    let mut buf = Vec::new();
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + len {
                return Some(parse_response(&buf[..end + 4 + len]));
            }
        }
        let mut chunk = [0u8; 4096];
        match tokio::time::timeout_at(deadline, stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) | Err(_) => return None,
            Ok(Ok(n)) => buf.extend_from_slice(&chunk[..n]),
        }
    }
}

async fn wait_until<F, Fut>(within: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    while start.elapsed() < within {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    false
}

async fn gauge(h: &Harness, series: &str) -> f64 {
    metric(&h.admin_get("/metrics").await.body, series).unwrap_or(-1.0)
}

/// A correctly signed CreateTemplateShare whose body is announced but only half sent: the
/// request is held in its body read until the client sends the rest or goes away.
fn half_sent_share(addr: SocketAddr, token: &str) -> Vec<u8> {
    let (path, body) = share_request(APPROVED_OU, token);
    let bytes = RawRequest::new("POST", &path, body.clone()).to_bytes(addr);
    bytes[..bytes.len() - body.len() / 2].to_vec()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anonymous_flood_is_counted_in_one_summary_not_written_record_by_record() {
    let h = Harness::start().await;
    let addr = h.gateway.addr;
    let long_path = format!("/templates/shares/{}", "a".repeat(15_000));
    let total = 2_000;
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let long_path = long_path.clone();
        tasks.push(tokio::spawn(async move {
            let mut stream = TcpStream::connect(addr).await.unwrap();
            for i in 0..total / 8 {
                // A third claim an access key, each a different one: more distinct entries
                // than a summary lists.
                let auth = if i % 3 == 0 {
                    format!(
                        "authorization: AWS4-HMAC-SHA256 Credential=AKFLOOD{worker}X{i:05}/20260101/us-east-1/wellarchitected/aws4_request, SignedHeaders=host;x-amz-date, Signature={}\r\nx-amz-date: 20260101T000000Z\r\n",
                        "0".repeat(64)
                    )
                } else {
                    String::new()
                };
                let req = format!("GET {long_path} HTTP/1.1\r\nhost: localhost\r\n{auth}\r\n");
                stream.write_all(req.as_bytes()).await.unwrap();
                let resp = read_one_response(&mut stream, Duration::from_secs(10))
                    .await
                    .expect("every anonymous request is answered");
                assert_eq!(resp.status, 403);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    // A legitimate share afterwards is decided and recorded as usual.
    h.payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("after-the-flood")
        .send()
        .await
        .unwrap();

    let records = h.audit_records().await;
    let summaries: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "auth_failures")
        .collect();
    assert_eq!(summaries.len(), 1, "one summary for the interval");
    let s = summaries[0];
    assert_eq!(s["total"], total);
    let entries = s["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 100, "distinct entries are capped");
    let listed: u64 = entries.iter().map(|e| e["count"].as_u64().unwrap()).sum();
    assert_eq!(listed + s["unlisted"].as_u64().unwrap(), total);
    assert!(s["unlisted"].as_u64().unwrap() > 0);
    // The most frequent entry first: the requests without any Authorization header.
    assert_eq!(entries[0]["error"], "MissingAuthenticationTokenException");
    assert_eq!(entries[0]["access_key_id"], serde_json::Value::Null);
    assert!(
        entries
            .iter()
            .all(|e| e["sample_path"].as_str().unwrap().len() <= 256)
    );
    assert!(
        records
            .iter()
            .any(|r| r["type"] == "decision" && r["client_request_token"] == "after-the-flood")
    );
    let size = std::fs::metadata(&h.audit_file).unwrap().len();
    assert!(
        size < 64 * 1024,
        "{total} anonymous requests of 15 KB paths wrote {size} bytes of audit log"
    );
    let m = h.admin_get("/metrics").await.body;
    let counted: f64 = m
        .lines()
        .filter(|l| l.starts_with("waguard_auth_failures_total{"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(counted, total as f64, "{m}");
    h.stop().await;
}

#[tokio::test]
async fn the_summary_is_written_every_interval_without_a_flush_or_shutdown() {
    let sim = SimServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = write_process_config(
        dir.path(),
        &format!("http://127.0.0.1:{}", sim.addr.port()),
        &audit,
        "summary_interval = 1",
    );
    let gw = GatewayProcess::start(&config, false).await;
    for _ in 0..3 {
        let resp = send_raw(
            gw.addr,
            b"GET /templates/shares/x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(resp.status, 403);
    }
    let mut found = None;
    let start = Instant::now();
    while found.is_none() && start.elapsed() < Duration::from_secs(10) {
        found = audit_lines(&audit)
            .into_iter()
            .find(|r| r["type"] == "auth_failures");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let found = found.expect("an auth_failures record within the interval");
    assert_eq!(found["total"], 3);
    assert_eq!(found["entries"][0]["source_ip"], "127.0.0.1");
    assert_eq!(found["entries"][0]["sample_path"], "/templates/shares/x");
}

#[tokio::test]
async fn unauthenticated_requests_do_not_write_a_log_line_each() {
    let sim = SimServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = write_process_config(
        dir.path(),
        &format!("http://127.0.0.1:{}", sim.addr.port()),
        &audit,
        "",
    );
    let log = dir.path().join("gateway.log");
    let gw = GatewayProcess::start_logging_to(&config, &[("RUST_LOG", "info")], &log).await;
    for _ in 0..50 {
        let resp = send_raw(
            gw.addr,
            b"GET /templates/shares/x HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n",
        )
        .await;
        assert_eq!(resp.status, 403);
    }
    let (path, body) = share_request(APPROVED_OU, "logged");
    assert_eq!(
        RawRequest::new("POST", &path, body)
            .send(gw.addr)
            .await
            .status,
        200
    );
    gw.signal("TERM");
    let mut gw = gw;
    let _ = tokio::task::spawn_blocking(move || gw.child.wait()).await;
    let text = std::fs::read_to_string(&log).unwrap();
    let request_lines: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("\"message\":\"request\""))
        .collect();
    assert_eq!(request_lines.len(), 1, "{text}");
    assert!(
        request_lines[0].contains("\"decision\":\"allow\""),
        "{text}"
    );
}

#[tokio::test]
async fn requests_that_fail_on_their_headers_are_refused_before_the_body_is_sent() {
    let h = Harness::start_with(Options {
        server_extra: "request_timeout = 60".into(),
        ..Default::default()
    })
    .await;
    let addr = h.gateway.addr;
    let now = time::OffsetDateTime::now_utc();
    let date = format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        now.year(),
        now.month() as u8,
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    );
    let scope = |key: &str, day: &str| {
        format!(
            "authorization: AWS4-HMAC-SHA256 Credential={key}/{day}/us-east-1/wellarchitected/aws4_request, SignedHeaders=host;x-amz-date, Signature={}\r\n",
            "0".repeat(64)
        )
    };
    let cases = [
        (String::new(), "MissingAuthenticationTokenException"),
        (
            format!(
                "{}x-amz-date: {date}\r\n",
                scope("AKWGNOBODY00000001", &date[..8])
            ),
            "UnrecognizedClientException",
        ),
        (
            format!(
                "{}x-amz-date: 20200101T000000Z\r\n",
                scope(PAYMENTS_KEY, "20200101")
            ),
            "InvalidSignatureException",
        ),
    ];
    for (auth, code) in cases {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        // A 500 KB body is announced; not a byte of it is sent.
        let head = format!(
            "POST /templates/shares/x HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: 500000\r\n{auth}\r\n"
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        let resp = read_one_response(&mut stream, Duration::from_secs(10))
            .await
            .unwrap_or_else(|| panic!("{code}: no answer without the body"));
        assert_eq!(resp.status, 403);
        assert_eq!(resp.error_type(), Some(code));
    }
    h.stop().await;
}

#[tokio::test]
async fn beyond_max_in_flight_requests_get_a_retryable_503_at_once() {
    let h = Harness::start_with(Options {
        server_extra: "max_in_flight = 2\nrequest_timeout = 60".into(),
        ..Default::default()
    })
    .await;
    let addr = h.gateway.addr;
    let mut holders = Vec::new();
    for i in 0..2 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(&half_sent_share(addr, &format!("held-{i}")))
            .await
            .unwrap();
        holders.push(s);
    }
    assert!(
        wait_until(Duration::from_secs(5), || async {
            gauge(&h, "waguard_in_flight_requests").await == 2.0
        })
        .await
    );
    let (path, body) = share_request(APPROVED_OU, "third");
    let resp = RawRequest::new("POST", &path, body).send(addr).await;
    assert_eq!(resp.status, 503, "{resp:?}");
    assert_eq!(resp.error_type(), Some("ServiceUnavailableException"));
    assert_eq!(
        gauge(&h, "waguard_requests_shed_total{reason=\"in_flight\"}").await,
        1.0
    );
    // A client that gives up frees its slot at once, not after the body timeout.
    drop(holders.pop());
    let served = wait_until(Duration::from_secs(5), || {
        let (path, body) = share_request(APPROVED_OU, "after-a-slot-freed");
        async move { RawRequest::new("POST", &path, body).send(addr).await.status == 200 }
    })
    .await;
    assert!(served, "no request was served after a slot freed");
    h.stop().await;
}

#[tokio::test]
async fn beyond_max_connections_a_client_waits_until_a_connection_closes() {
    let h = Harness::start_with(Options {
        server_extra: "max_connections = 2".into(),
        ..Default::default()
    })
    .await;
    let addr = h.gateway.addr;
    let idle: Vec<TcpStream> = vec![
        TcpStream::connect(addr).await.unwrap(),
        TcpStream::connect(addr).await.unwrap(),
    ];
    assert!(
        wait_until(Duration::from_secs(5), || async {
            gauge(&h, "waguard_connections_open").await == 2.0
        })
        .await
    );
    let mut third = TcpStream::connect(addr).await.unwrap();
    third
        .write_all(b"GET /templates/shares/x HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_one_response(&mut third, Duration::from_millis(500))
            .await
            .is_none(),
        "a third connection was served while two were open"
    );
    assert_eq!(gauge(&h, "waguard_connections_open").await, 2.0);
    drop(idle);
    let resp = read_one_response(&mut third, Duration::from_secs(5))
        .await
        .expect("served once a connection closed");
    assert_eq!(resp.status, 403);
    h.stop().await;
}

#[tokio::test]
async fn idle_connections_are_closed_and_busy_ones_are_not() {
    let h = Harness::start_with(Options {
        server_extra: "idle_timeout = 1\nrequest_timeout = 60".into(),
        ..Default::default()
    })
    .await;
    let addr = h.gateway.addr;
    // HTTP/1.1 keep-alive: one request, then silence.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(b"GET /templates/shares/x HTTP/1.1\r\nhost: localhost\r\n\r\n")
        .await
        .unwrap();
    assert!(
        read_one_response(&mut s, Duration::from_secs(5))
            .await
            .is_some()
    );
    let mut rest = [0u8; 64];
    let closed = tokio::time::timeout(Duration::from_secs(5), s.read(&mut rest)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "idle HTTP/1.1 connection still open: {closed:?}"
    );

    // HTTP/2 (h2c): a connection that never opens a stream is sent GOAWAY and closed.
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (_client, conn) = h2::client::handshake(tcp).await.unwrap();
    let ended = tokio::time::timeout(Duration::from_secs(5), conn).await;
    assert!(ended.is_ok(), "idle HTTP/2 connection still open");

    // A request in progress for longer than the idle timeout is not cut off.
    let (path, body) = share_request(APPROVED_OU, "slow-body");
    let bytes = RawRequest::new("POST", &path, body.clone()).to_bytes(addr);
    let (head, tail) = bytes.split_at(bytes.len() - body.len());
    let mut slow = TcpStream::connect(addr).await.unwrap();
    slow.write_all(head).await.unwrap();
    tokio::time::sleep(Duration::from_millis(2500)).await;
    slow.write_all(tail).await.unwrap();
    let resp = read_one_response(&mut slow, Duration::from_secs(5))
        .await
        .expect("the slow request was answered");
    assert_eq!(resp.status, 200, "{resp:?}");
    assert!(gauge(&h, "waguard_connections_idle_closed_total").await >= 2.0);
    h.stop().await;
}

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// User + system CPU time of a process, in seconds.
fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap();
    let after_comm = &stat[stat.rfind(')').unwrap() + 2..];
    let fields: Vec<&str> = after_comm.split(' ').collect();
    let ticks: f64 = fields[11].parse::<f64>().unwrap() + fields[12].parse::<f64>().unwrap();
    ticks / 100.0
}

/// Opens `n` HTTP/2 streams of correctly signed CreateTemplateShare requests, sends half of
/// each body, and resets each stream at once (the CVE-2023-44487 pattern, with a body so the
/// gateway would otherwise wait for it). Reconnects when the gateway ends a connection.
async fn rapid_reset(addr: SocketAddr, n: usize) -> (usize, usize) {
    let (mut reset, mut connections) = (0, 0);
    'outer: while reset < n {
        let Ok(tcp) = TcpStream::connect(addr).await else {
            break;
        };
        connections += 1;
        let Ok((client, conn)) = h2::client::handshake(tcp).await else {
            continue;
        };
        let driver = tokio::spawn(conn);
        let mut client = client;
        while reset < n {
            client = match client.ready().await {
                Ok(c) => c,
                Err(_) => {
                    driver.abort();
                    continue 'outer;
                }
            };
            let (path, body) = share_request(APPROVED_OU, &format!("reset-{reset}"));
            let headers = RawRequest::new("POST", &path, body.clone()).signed_headers(addr);
            let mut req = http::Request::builder()
                .method("POST")
                .uri(format!("http://localhost:{}{path}", addr.port()));
            for (k, v) in headers {
                if k != "host" {
                    req = req.header(k, v);
                }
            }
            let req = req.header("content-length", body.len()).body(()).unwrap();
            let Ok((_response, mut stream)) = client.send_request(req, false) else {
                driver.abort();
                continue 'outer;
            };
            let _ = stream.send_data(Bytes::from(body[..body.len() / 2].to_string()), false);
            stream.send_reset(h2::Reason::CANCEL);
            reset += 1;
        }
        driver.abort();
    }
    (reset, connections)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http2_rapid_reset_costs_no_slots_no_records_and_bounded_memory() {
    let sim = SimServer::start().await;
    let dir = tempfile::tempdir().unwrap();
    let audit = dir.path().join("audit.jsonl");
    let config = write_process_config(
        dir.path(),
        &format!("http://127.0.0.1:{}", sim.addr.port()),
        &audit,
        "",
    );
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "shutdown_grace = 10",
        "shutdown_grace = 10\nmax_in_flight = 64\nrequest_timeout = 60",
    );
    std::fs::write(&config, text).unwrap();
    let gw = GatewayProcess::start(&config, false).await;
    let pid = gw.child.id();
    let metrics = || async { gw.admin_get("/metrics").await.1 };

    // Warm up, then measure.
    let (path, body) = share_request(APPROVED_OU, "before");
    assert_eq!(
        RawRequest::new("POST", &path, body)
            .send(gw.addr)
            .await
            .status,
        200
    );
    // The sim answers a repeated share with 409 ConflictException: forwarded all the same.
    let rss_before = rss_kib(pid);
    let cpu_before = cpu_seconds(pid);
    let streams = 5_000;
    let (reset, connections) = rapid_reset(gw.addr, streams).await;
    assert_eq!(reset, streams);

    // Every reset request left at once: no slot is held until the 60 s body timeout.
    let mut in_flight = -1.0;
    for _ in 0..250 {
        in_flight = metric(&metrics().await, "waguard_in_flight_requests").unwrap();
        if in_flight == 0.0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(in_flight, 0.0, "reset requests still held their slots");
    let cpu = cpu_seconds(pid) - cpu_before;
    let rss_after = rss_kib(pid);
    eprintln!(
        "{streams} reset streams over {connections} connections: {:.1} µs of gateway CPU each, RSS {rss_before} -> {rss_after} KiB",
        cpu * 1e6 / streams as f64
    );
    let (path, body) = share_request(APPROVED_OU, "after");
    let resp = RawRequest::new("POST", &path, body).send(gw.addr).await;
    assert!(
        [200, 409].contains(&resp.status),
        "a legitimate request after the flood: {resp:?}"
    );
    let m = metrics().await;
    let cancelled = metric(&m, "waguard_requests_cancelled_total").unwrap();
    // Streams reset before hyper accepted them never reach the gateway (h2 closes such a
    // connection after 20); the others were cancelled in their body read.
    assert!(cancelled > 0.0, "no reset request reached the gateway: {m}");
    eprintln!("{cancelled} reset requests reached the gateway and were cancelled");
    assert!(
        rss_after < rss_before + 64 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
    gw.signal("TERM");
    let mut child = gw;
    let _ = tokio::task::spawn_blocking(move || child.child.wait()).await;
    let decided: Vec<_> = audit_lines(&audit)
        .into_iter()
        .filter(|r| r["type"] == "decision")
        .collect();
    assert_eq!(
        decided.len(),
        2,
        "only the two complete requests were decided: {:?}",
        decided
            .iter()
            .map(|d| d["client_request_token"].clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(sim.sim.received().len(), 2);
}

/// How many requests ended with this decision: `waguard_requests_cancelled_total` for
/// "cancelled", else the sum of `waguard_requests_total` over the series with it.
async fn decided(h: &Harness, decision: &str) -> f64 {
    let metrics = h.admin_get("/metrics").await.body;
    if decision == "cancelled" {
        return metric(&metrics, "waguard_requests_cancelled_total").unwrap_or(-1.0);
    }
    let label = format!("decision=\"{decision}\"");
    metrics
        .lines()
        .filter(|l| l.starts_with("waguard_requests_total{") && l.contains(&label))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Whether `decided(h, decision)` reaches `n` within 5 s.
async fn reaches(h: &Harness, decision: &str, n: f64) -> bool {
    wait_until(Duration::from_secs(5), || async {
        decided(h, decision).await == n
    })
    .await
}

/// Sends the first half of a signed share's body on a new HTTP/2 stream, then `finish`es it.
async fn h2_share(
    addr: SocketAddr,
    token: &str,
    finish: impl FnOnce(&mut h2::SendStream<Bytes>, &str),
) {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let (path, body) = share_request(APPROVED_OU, token);
    let mut req = http::Request::builder()
        .method("POST")
        .uri(format!("http://localhost:{}{path}", addr.port()));
    for (k, v) in RawRequest::new("POST", &path, body.clone()).signed_headers(addr) {
        if k != "host" {
            req = req.header(k, v);
        }
    }
    let req = req.header("content-length", body.len()).body(()).unwrap();
    let (_response, mut stream) = client.send_request(req, false).unwrap();
    stream
        .send_data(Bytes::from(body[..body.len() / 2].to_string()), false)
        .unwrap();
    finish(&mut stream, &body[body.len() / 2..]);
    // Let the frames reach the gateway before the connection goes.
    tokio::time::sleep(Duration::from_millis(200)).await;
    driver.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_leaving_mid_body_is_cancelled_and_a_broken_body_is_invalid() {
    let h = Harness::start().await;
    let addr = h.gateway.addr;
    // HTTP/1.1: half the body, then the connection closes.
    let mut s = TcpStream::connect(addr).await.unwrap();
    s.write_all(&half_sent_share(addr, "h1-leaves"))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    drop(s);
    assert!(
        reaches(&h, "cancelled", 1.0).await,
        "an HTTP/1.1 client closing mid-body was not counted as cancelled"
    );

    // HTTP/2: half the body, then the client resets its stream.
    h2_share(addr, "h2-resets", |stream, _| {
        stream.send_reset(h2::Reason::CANCEL)
    })
    .await;
    assert!(
        reaches(&h, "cancelled", 2.0).await,
        "an HTTP/2 stream reset mid-body was not counted as cancelled"
    );

    // HTTP/2: more body than its content-length announced. The gateway resets the stream:
    // the request's fault, not the client leaving.
    h2_share(addr, "h2-overlong", |stream, rest| {
        let _ = stream.send_data(Bytes::from(format!("{rest}{rest}")), true);
    })
    .await;
    assert!(
        reaches(&h, "invalid", 1.0).await,
        "a body longer than its content-length was not counted as invalid"
    );
    assert_eq!(decided(&h, "cancelled").await, 2.0);
    assert_eq!(decided(&h, "error").await, 0.0);

    // None of them reached a decision: nothing was recorded or forwarded.
    h.stop().await;
    let decided: Vec<_> = h
        .audit_records()
        .await
        .into_iter()
        .filter(|r| r["type"] == "decision")
        .collect();
    assert!(decided.is_empty(), "{decided:?}");
    assert!(h.sim.received().is_empty());
}

fn limits_harness() -> Options {
    Options {
        tables: r#"
[limits]
per_caller_rate = 100
per_caller_burst = 100

[limits.operations.CreateTemplateShare]
per_caller_rate = 0.001
per_caller_burst = 2
"#
        .into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn a_caller_over_its_limit_gets_throttling_exception_before_its_body_is_parsed() {
    let h = Harness::start_with(limits_harness()).await;
    let payments = h.payments();
    for i in 0..2 {
        // The second is forwarded and answered 409 by the sim (already shared).
        let forwarded = payments
            .create_template_share()
            .template_arn(TEMPLATE_ARN)
            .shared_with(APPROVED_OU)
            .client_request_token(format!("within-{i}"))
            .send()
            .await;
        if let Err(e) = forwarded {
            assert_eq!(
                e.raw_response().map(|r| r.status().as_u16()),
                Some(409),
                "{e:?}"
            );
        }
    }
    let err = payments
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("over")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(400),
        "{err:?}"
    );
    let service_err = err.into_service_error();
    assert!(
        service_err.is_throttling_exception(),
        "the SDK sees its modeled ThrottlingException: {service_err:?}"
    );
    // Checked before the body is parsed: a malformed body is throttled, not invalid.
    let path = template_path(TEMPLATE_ARN);
    let resp = RawRequest::new("POST", &path, "{not json")
        .send(h.gateway.addr)
        .await;
    assert_eq!(resp.error_type(), Some("ThrottlingException"), "{resp:?}");
    // The operation's own bucket: reads of the same caller, and shares of another caller,
    // are not affected.
    payments
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap();
    let platform = h.client(PLATFORM_KEY, PLATFORM_SECRET);
    let other = platform
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("platform")
        .send()
        .await;
    if let Err(e) = &other {
        assert!(
            !e.as_service_error()
                .is_some_and(|s| s.is_throttling_exception()),
            "{e:?}"
        );
    }

    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(
            &m,
            "waguard_throttled_total{operation=\"CreateTemplateShare\",team=\"payments\"}"
        ),
        Some(2.0),
        "{m}"
    );
    let records = h.audit_records().await;
    let decided: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "decision" && r["caller"]["team"] == "payments")
        .map(|r| r["operation"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        decided,
        [
            "CreateTemplateShare",
            "CreateTemplateShare",
            "ListTemplateShares"
        ],
        "throttled requests are not decided"
    );
    let throttled: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "throttled")
        .collect();
    assert_eq!(throttled.len(), 1);
    assert_eq!(throttled[0]["total"], 2);
    let entry = &throttled[0]["entries"][0];
    assert_eq!(entry["access_key_id"], PAYMENTS_KEY);
    assert_eq!(entry["operation"], "CreateTemplateShare");
    assert_eq!(entry["limit"], "caller");
    assert_eq!(entry["count"], 2);
    let creates = h
        .sim
        .received()
        .iter()
        .filter(|r| r.method == "POST")
        .count();
    assert_eq!(
        creates,
        2 + usize::from(other.is_ok()),
        "only decided shares were forwarded"
    );
    h.stop().await;
}

#[test]
fn limits_config_errors_name_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let base = "[server]\nlisten = \"127.0.0.1:0\"\n[policy]\ndir = \"p\"\n[callers]\nfile = \"c\"\n[audit]\nfile = \"a\"\n";
    for (extra, key) in [
        ("[limits]\nper_team_burst = 5\n", "limits.per_team_burst"),
        (
            "[limits.operations.CreateTemplateShares]\nper_caller_rate = 1\n",
            "limits.operations.CreateTemplateShares",
        ),
    ] {
        let err = waguard::config::Config::parse(
            &dir.path().join("waguard.toml"),
            &format!("{base}{extra}"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains(key), "{err}");
    }
    let small = base.replace(
        "listen = \"127.0.0.1:0\"",
        "listen = \"127.0.0.1:0\"\nmax_header_bytes = 4096",
    );
    let err = waguard::config::Config::parse(Path::new("waguard.toml"), &small)
        .unwrap_err()
        .to_string();
    assert!(err.contains("server.max_header_bytes"), "{err}");
}

#[tokio::test]
async fn a_policy_that_cannot_decide_denies_without_telling_the_caller_why() {
    let h = Harness::start_with(Options {
        own_policies: true,
        ..Default::default()
    })
    .await;
    let rego = h.dir.path().join("policies/waguard/authz.rego");
    std::fs::write(
        &rego,
        "package waguard.authz\n\ndecision := {\"allow\": \"yes, internal detail 7f3a\", \"reasons\": []}\n",
    )
    .unwrap();
    let before = h.gateway.gateway.policy.load().revision().to_string();
    // Loaded once the file has been left alone for a second.
    assert!(
        wait_until(Duration::from_secs(10), || async {
            h.gateway.reloader.reload_policy(true).await;
            h.gateway.gateway.policy.load().revision() != before
        })
        .await
    );
    let err = h
        .payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("undecided")
        .send()
        .await
        .unwrap_err();
    let service = err.into_service_error();
    assert_eq!(service.meta().code(), Some("AccessDeniedException"));
    let message = service.meta().message().unwrap_or_default().to_string();
    assert!(message.contains("could not decide"), "{message}");
    assert!(
        !message.contains("boolean") && !message.contains("7f3a"),
        "{message}"
    );
    let records = h.audit_records().await;
    let decision = records.iter().find(|r| r["type"] == "decision").unwrap();
    assert_eq!(decision["decision"], "deny");
    assert!(
        decision["reasons"][0].as_str().unwrap().contains("boolean"),
        "the audit record keeps the detail: {decision}"
    );
    assert!(h.sim.received().is_empty());
    h.stop().await;
}
