//! Faults on both sides: upstreams that reset, fail or throttle, and clients that trickle,
//! half-close or flood. Each ends in bounded time with the right AWS error, audited, and other
//! clients are unaffected.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use aws_sdk_wellarchitected::error::ProvideErrorMetadata;
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A scripted upstream: `answer(n)` decides what connection number `n` gets.
async fn scripted_upstream<F>(answer: F) -> (std::net::SocketAddr, Arc<AtomicUsize>)
where
    F: Fn(usize) -> Option<String> + Send + Sync + 'static,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let answer = Arc::new(answer);
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let n = c.fetch_add(1, Ordering::SeqCst);
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                match answer(n) {
                    // Reset: close with SO_LINGER 0 so the peer sees RST, not FIN. (Deprecated
                    // because a non-zero linger blocks on drop; zero does not.)
                    #[allow(deprecated)]
                    None => {
                        let _ = s.set_linger(Some(Duration::ZERO));
                        drop(s);
                    }
                    Some(resp) => {
                        let _ = s.write_all(resp.as_bytes()).await;
                        let _ = s.shutdown().await;
                    }
                }
            });
        }
    });
    (addr, count)
}

fn http_response(status: &str, error_type: Option<&str>, body: &str) -> String {
    let et = error_type
        .map(|t| format!("x-amzn-errortype: {t}\r\n"))
        .unwrap_or_default();
    format!(
        "HTTP/1.1 {status}\r\ncontent-type: application/json\r\nx-amzn-requestid: up-1\r\n{et}content-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    )
}

fn share_ok() -> String {
    http_response(
        "200 OK",
        None,
        &format!(
            "{{\"TemplateArn\":\"{TEMPLATE_ARN}\",\"ShareId\":\"0123456789abcdef0123456789abcdef\"}}"
        ),
    )
}

async fn harness_for(addr: std::net::SocketAddr) -> Harness {
    Harness::start_with(Options {
        endpoint: Some(format!("http://{addr}")),
        upstream_extra: "timeout = 2\nconnect_timeout = 1".into(),
        ..Default::default()
    })
    .await
}

#[tokio::test]
async fn a_reset_before_the_answer_is_retried_for_idempotent_requests() {
    // The first connection is reset, the second answers.
    let (addr, count) = scripted_upstream(|n| if n == 0 { None } else { Some(share_ok()) }).await;
    let h = harness_for(addr).await;
    let out = h
        .payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("retry-1")
        .send()
        .await
        .unwrap();
    assert_eq!(out.share_id(), Some("0123456789abcdef0123456789abcdef"));
    assert_eq!(count.load(Ordering::SeqCst), 2);
    h.stop().await;
}

#[tokio::test]
async fn an_upstream_that_keeps_resetting_is_a_bounded_5xx_and_audited() {
    let (addr, count) = scripted_upstream(|_| None).await;
    let h = harness_for(addr).await;
    let started = Instant::now();
    let err = h
        .payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("reset-all")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(502),
        "{err:?}"
    );
    assert_eq!(err.code(), Some("ServiceUnavailableException"));
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(count.load(Ordering::SeqCst), 3, "three attempts, no more");
    let outcome = h
        .audit_records()
        .await
        .into_iter()
        .find(|r| r["type"] == "outcome")
        .unwrap();
    assert_eq!(outcome["error_code"], "ServiceUnavailableException");
    h.stop().await;
}

#[tokio::test]
async fn a_response_cut_off_mid_body_is_a_5xx_not_a_truncated_success() {
    let cut = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 500\r\n\r\n{{\"TemplateArn\":\"{TEMPLATE_ARN}\""
    );
    let (addr, _) = scripted_upstream(move |_| Some(cut.clone())).await;
    let h = harness_for(addr).await;
    let err = h
        .payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("cut")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(502),
        "{err:?}"
    );
    let outcome = h
        .audit_records()
        .await
        .into_iter()
        .find(|r| r["type"] == "outcome")
        .unwrap();
    assert_eq!(outcome["upstream_status"], 200);
    assert_eq!(outcome["error_code"], "ServiceUnavailableException");
    h.stop().await;
}

#[tokio::test]
async fn upstream_errors_and_throttling_reach_the_caller_as_aws_sent_them() {
    for (status, code, sdk_status) in [
        ("429 Too Many Requests", "ThrottlingException", 429),
        ("500 Internal Server Error", "InternalServerException", 500),
        ("402 Payment Required", "ServiceQuotaExceededException", 402),
    ] {
        let resp = http_response(
            status,
            Some(code),
            &format!("{{\"Message\":\"upstream says {code}\"}}"),
        );
        let (addr, count) = scripted_upstream(move |_| Some(resp.clone())).await;
        let h = harness_for(addr).await;
        let err = h
            .payments()
            .create_template_share()
            .template_arn(TEMPLATE_ARN)
            .shared_with(APPROVED_OU)
            .client_request_token("e")
            .send()
            .await
            .unwrap_err();
        assert_eq!(
            err.raw_response().map(|r| r.status().as_u16()),
            Some(sdk_status)
        );
        assert_eq!(err.code(), Some(code), "{err:?}");
        assert_eq!(
            err.message(),
            Some(format!("upstream says {code}").as_str())
        );
        assert_eq!(
            count.load(Ordering::SeqCst),
            1,
            "an answered request is never retried by the gateway"
        );
        let outcome = h
            .audit_records()
            .await
            .into_iter()
            .find(|r| r["type"] == "outcome")
            .unwrap();
        assert_eq!(outcome["error_code"], code);
        assert_eq!(outcome["upstream_status"], sdk_status);
        assert_eq!(outcome["aws_request_id"], "up-1");
        h.stop().await;
    }
}

#[tokio::test]
async fn slowloris_clients_are_cut_off_and_others_are_served() {
    let h = Harness::start_with(Options {
        server_extra: "request_timeout = 1".into(),
        ..Default::default()
    })
    .await;
    let addr = h.gateway.addr;
    // Headers that never finish.
    let mut slow_headers = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow_headers
        .write_all(b"POST /templates/shares/x HTTP/1.1\r\nhost: localhost\r\n")
        .await
        .unwrap();
    // A body that never finishes.
    let (path, body) = share_request(APPROVED_OU, "slow-body");
    let full = RawRequest::new("POST", &path, body).to_bytes(addr);
    let mut slow_body = tokio::net::TcpStream::connect(addr).await.unwrap();
    slow_body.write_all(&full[..full.len() - 10]).await.unwrap();

    // Meanwhile another client is served normally.
    h.payments()
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap();

    let started = Instant::now();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), slow_headers.read_to_end(&mut buf))
        .await
        .unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "slow headers held the connection for {:?}",
        started.elapsed()
    );
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), slow_body.read_to_end(&mut buf))
        .await
        .unwrap();
    let resp = parse_response(&buf);
    assert_eq!(resp.status, 400, "{resp:?}");
    assert!(resp.body.contains("not received within"), "{}", resp.body);
    assert!(
        h.sim
            .received()
            .iter()
            .all(|r| !String::from_utf8_lossy(&r.body).contains("slow-body"))
    );
    h.stop().await;
}

#[tokio::test]
async fn a_half_closed_client_still_gets_its_answer() {
    let h = Harness::start().await;
    let (path, body) = share_request(APPROVED_OU, "half-closed");
    let bytes = RawRequest::new("POST", &path, body).to_bytes(h.gateway.addr);
    let mut s = tokio::net::TcpStream::connect(h.gateway.addr)
        .await
        .unwrap();
    s.write_all(&bytes).await.unwrap();
    s.shutdown().await.unwrap(); // our write side is closed; we still read
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(parse_response(&buf).status, 200);
    h.stop().await;
}

#[tokio::test]
async fn an_http2_stream_flood_is_bounded_and_others_are_served() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let h = Harness::start().await;
    let stream = tokio::net::TcpStream::connect(h.gateway.addr)
        .await
        .unwrap();
    let (send, conn) = hyper::client::conn::http2::Builder::new(TokioExecutor::new())
        .handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    // 1,000 unauthenticated streams at once on one connection.
    let started = Instant::now();
    let mut streams = Vec::new();
    for _ in 0..1000 {
        let mut send = send.clone();
        let req = http::Request::get(format!(
            "http://localhost:{}/reviewTemplates",
            h.gateway.addr.port()
        ))
        .body(Full::new(bytes::Bytes::new()))
        .unwrap();
        streams.push(tokio::spawn(async move {
            match send.send_request(req).await {
                Ok(r) => {
                    let status = r.status().as_u16();
                    let _ = r.into_body().collect().await;
                    status
                }
                Err(_) => 0,
            }
        }));
    }
    // Another client is served while the flood is in progress.
    h.payments()
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap();
    let mut statuses = Vec::new();
    for s in streams {
        statuses.push(
            tokio::time::timeout(Duration::from_secs(20), s)
                .await
                .unwrap()
                .unwrap(),
        );
    }
    assert!(started.elapsed() < Duration::from_secs(20));
    assert!(
        statuses.iter().all(|s| *s == 403 || *s == 0),
        "{statuses:?}"
    );
    assert!(statuses.iter().filter(|s| **s == 403).count() >= 128);
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(metric(&m, "waguard_in_flight_requests"), Some(0.0));
    h.stop().await;
}

#[tokio::test]
async fn a_client_that_leaves_mid_request_still_gets_its_request_audited_to_the_end() {
    // The upstream takes half a second; the client hangs up after 100 ms.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = vec![0u8; 65536];
                let _ = s.read(&mut buf).await;
                tokio::time::sleep(Duration::from_millis(500)).await;
                let _ = s.write_all(share_ok().as_bytes()).await;
            });
        }
    });
    let h = harness_for(addr).await;
    // Over HTTP/2, where a client going away cancels its streams at once.
    let (path, body) = share_request(APPROVED_OU, "left-early");
    let raw =
        String::from_utf8(RawRequest::new("POST", &path, body.clone()).to_bytes(h.gateway.addr))
            .unwrap();
    let stream = tokio::net::TcpStream::connect(h.gateway.addr)
        .await
        .unwrap();
    let (mut send, conn) = hyper::client::conn::http2::handshake(
        hyper_util::rt::TokioExecutor::new(),
        hyper_util::rt::TokioIo::new(stream),
    )
    .await
    .unwrap();
    let conn = tokio::spawn(conn);
    let mut req = http::Request::post(format!("http://localhost:{}{path}", h.gateway.addr.port()));
    for line in raw.split("\r\n\r\n").next().unwrap().lines().skip(1) {
        let (k, v) = line.split_once(": ").unwrap();
        if !matches!(k, "host" | "connection" | "content-length") {
            req = req.header(k, v);
        }
    }
    let pending = tokio::spawn(
        send.send_request(
            req.body(http_body_util::Full::new(bytes::Bytes::from(body)))
                .unwrap(),
        ),
    );
    tokio::time::sleep(Duration::from_millis(100)).await;
    pending.abort();
    conn.abort();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let records = h.audit_records().await;
    let decision = records
        .iter()
        .find(|r| r["type"] == "decision" && r["client_request_token"] == "left-early")
        .unwrap();
    let outcome = records
        .iter()
        .find(|r| r["type"] == "outcome" && r["request_id"] == decision["request_id"]);
    assert!(
        outcome.is_some(),
        "the forwarded request has no outcome record: {records:#?}"
    );
    assert_eq!(outcome.unwrap()["upstream_status"], 200);
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(
            &m,
            "waguard_requests_total{decision=\"allow\",operation=\"CreateTemplateShare\"}"
        ),
        Some(1.0)
    );
    h.stop().await;
}
