//! What policy sees is what AWS parses: path labels fit the service model and hold nothing
//! decoders read differently, a request has one Content-Type (JSON, UTF-8) and exactly that one
//! is forwarded, and the headers of AWS's answer that concern only the link to AWS stay there.

mod common;

use std::net::SocketAddr;

use common::*;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::{TokioExecutor, TokioIo};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const WORKLOAD_ID: &str = "0123456789abcdef0123456789abcdef";

fn share_body() -> String {
    format!("{{\"SharedWith\":\"{APPROVED_OU}\",\"ClientRequestToken\":\"tok-1\"}}")
}

/// Sends a correctly signed request and asserts the gateway answered 400 ValidationException.
async fn assert_validation_error(h: &Harness, req: RawRequest<'_>) {
    let resp = req.send(h.gateway.addr).await;
    assert_eq!(
        (resp.status, resp.error_type()),
        (400, Some("ValidationException")),
        "{} {}: {resp:?}",
        req.method,
        req.path_and_query
    );
}

#[tokio::test]
async fn path_labels_outside_the_model_or_read_differently_by_decoders_are_refused() {
    let h = Harness::start().await;
    let long_alias = format!("/lenses/{}/shares", "a".repeat(129));
    let answers = format!("/workloads/{WORKLOAD_ID}/lensReviews/serverless/answers");
    let requests: Vec<(&str, String, String)> = vec![
        // `+` is a space to form decoders, a plus to others; encoded, it is still not an alias.
        ("POST", "/lenses/my+lens/shares".into(), share_body()),
        ("POST", "/lenses/my%2Blens/shares".into(), share_body()),
        // `;` starts path parameters that some servers strip.
        ("POST", "/lenses/my-lens;v=2/shares".into(), share_body()),
        ("POST", "/lenses/my-lens%3Bv=2/shares".into(), share_body()),
        // A backslash is a separator to some servers; `%25` would be decoded twice by some.
        ("POST", "/lenses/my%5Clens/shares".into(), share_body()),
        ("POST", "/lenses/my%252Flens/shares".into(), share_body()),
        ("POST", "/lenses/my%20lens/shares".into(), share_body()),
        ("POST", long_alias, share_body()),
        // A lens ARN must name a lens.
        (
            "POST",
            "/lenses/arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Aworkload%2Fx/shares"
                .into(),
            share_body(),
        ),
        // QuestionId and MilestoneNumber, which had only a length limit.
        ("GET", format!("{answers}/q%2B1"), String::new()),
        ("GET", format!("{answers}/q%3B1"), String::new()),
        (
            "GET",
            format!("/workloads/{WORKLOAD_ID}/milestones/02"),
            String::new(),
        ),
        // The tag operations' label is any resource ARN, but an ARN.
        ("GET", "/tags/not-an-arn".into(), String::new()),
    ];
    for (method, path, body) in &requests {
        let mut req = RawRequest::new(method, path, body.clone());
        if body.is_empty() {
            req.headers.clear();
        }
        assert_validation_error(&h, req).await;
    }
    assert!(h.sim.received().is_empty(), "{:?}", h.sim.received());
    h.stop().await;
}

#[tokio::test]
async fn content_type_parameters_other_than_a_utf8_charset_are_refused() {
    let h = Harness::start().await;
    let path = template_path(TEMPLATE_ARN);
    for content_type in [
        "application/json; charset=utf-7",
        "application/json; charset=iso-8859-1",
        "application/json; charset=\"utf-8\"",
        "application/json; charset=utf-8; profile=x",
        "application/json; boundary=x",
        "application/json, text/plain",
        "application/x-amz-json-1.1",
    ] {
        let mut req = RawRequest::new("POST", &path, share_body());
        req.headers = vec![("content-type", content_type.to_string())];
        assert_validation_error(&h, req).await;
    }
    // Not on a request without a body either: it would be forwarded as sent.
    let mut req = RawRequest::new("GET", &path, Vec::new());
    req.headers = vec![("content-type", "text/plain; charset=utf-7".to_string())];
    assert_validation_error(&h, req).await;
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn the_validated_content_type_is_forwarded_alone() {
    let h = Harness::start().await;
    let path = template_path(TEMPLATE_ARN);
    let mut req = RawRequest::new("POST", &path, share_body());
    req.headers = vec![(
        "content-type",
        "application/json; charset=UTF-8".to_string(),
    )];
    let resp = req.send(h.gateway.addr).await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let received = h.sim.received();
    assert_eq!(received.len(), 1);
    let forwarded: Vec<_> = received[0].headers.get_all("content-type").iter().collect();
    assert_eq!(forwarded, ["application/json; charset=UTF-8"]);
    h.stop().await;
}

#[tokio::test]
async fn two_content_type_headers_are_refused_over_http1() {
    let h = Harness::start().await;
    let path = template_path(TEMPLATE_ARN);
    for second in ["application/json; charset=utf-7", "application/json"] {
        let req = RawRequest::new("POST", &path, share_body()).header("content-type", second);
        assert_validation_error(&h, req).await;
    }
    assert!(h.sim.received().is_empty(), "{:?}", h.sim.received());
    h.stop().await;
}

#[tokio::test]
async fn two_content_type_headers_are_refused_over_http2() {
    let h = Harness::start().await;
    let path = template_path(TEMPLATE_ARN);
    // Signed as HTTP/1 over both headers, then sent over h2c (the host in :authority).
    let raw = RawRequest::new("POST", &path, share_body())
        .header("content-type", "application/json; charset=utf-7")
        .to_bytes(h.gateway.addr);
    let text = String::from_utf8(raw).unwrap();
    let head = text.split("\r\n\r\n").next().unwrap();
    let stream = tokio::net::TcpStream::connect(h.gateway.addr)
        .await
        .unwrap();
    let (mut send, conn) =
        hyper::client::conn::http2::handshake(TokioExecutor::new(), TokioIo::new(stream))
            .await
            .unwrap();
    tokio::spawn(conn);
    let mut req = http::Request::post(format!("http://localhost:{}{path}", h.gateway.addr.port()));
    for line in head.lines().skip(1) {
        let (k, v) = line.split_once(": ").unwrap();
        if !matches!(k, "host" | "connection" | "content-length") {
            req = req.header(k, v);
        }
    }
    let req = req
        .body(Full::new(bytes::Bytes::from(share_body())))
        .unwrap();
    assert_eq!(req.headers().get_all("content-type").iter().count(), 2);
    let resp = send.send_request(req).await.unwrap();
    let status = resp.status();
    let error_type = resp.headers().get("x-amzn-errortype").cloned();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    assert_eq!(
        error_type.as_ref().and_then(|v| v.to_str().ok()),
        Some("ValidationException")
    );
    assert!(h.sim.received().is_empty(), "{:?}", h.sim.received());
    h.stop().await;
}

/// A stand-in for AWS that answers every request 200 with a response naming `x-secret-hop`
/// in its `Connection` header, over HTTP/1.1 keep-alive.
async fn hop_header_upstream() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                loop {
                    // One request: the head, then Content-Length bytes of body.
                    let head_end = loop {
                        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                            break i + 4;
                        }
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    };
                    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
                    let len: usize = head
                        .lines()
                        .find_map(|l| l.strip_prefix("content-length:"))
                        .and_then(|v| v.trim().parse().ok())
                        .unwrap_or(0);
                    while buf.len() < head_end + len {
                        let mut chunk = [0u8; 4096];
                        match stream.read(&mut chunk).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => buf.extend_from_slice(&chunk[..n]),
                        }
                    }
                    buf.drain(..head_end + len);
                    let body = r#"{"TemplateArn":"x","TemplateShareSummaries":[]}"#;
                    let resp = format!(
                        "HTTP/1.1 200 OK\r\nConnection: x-secret-hop, X-Other-Hop\r\nx-secret-hop: 1\r\nx-other-hop: 2\r\nx-amzn-requestid: req-1\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                        body.len()
                    );
                    if stream.write_all(resp.as_bytes()).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

#[tokio::test]
async fn response_headers_named_in_connection_are_not_relayed() {
    let upstream = hop_header_upstream().await;
    let h = Harness::start_with(Options {
        endpoint: Some(format!("http://127.0.0.1:{}", upstream.port())),
        ..Default::default()
    })
    .await;
    let path = template_path(TEMPLATE_ARN);
    // A read (streamed back) and a write (read whole for the audit record).
    let mut list = RawRequest::new("GET", &path, Vec::new());
    list.headers.clear();
    let create = RawRequest::new("POST", &path, share_body());
    for req in [list, create] {
        let resp = req.send(h.gateway.addr).await;
        assert_eq!(resp.status, 200, "{resp:?}");
        assert_eq!(resp.header("x-amzn-requestid"), Some("req-1"), "{resp:?}");
        for hop in ["x-secret-hop", "x-other-hop"] {
            assert_eq!(
                resp.header(hop),
                None,
                "{} relayed {hop}: {resp:?}",
                req.method
            );
        }
        if let Some(c) = resp.header("connection") {
            assert!(!c.to_ascii_lowercase().contains("hop"), "{resp:?}");
        }
    }
    h.stop().await;
}
