//! The gateway is a security boundary: requests it cannot interpret unambiguously are refused,
//! even when correctly signed, and never reach AWS.

mod common;

use common::*;

fn ok_body() -> String {
    format!("{{\"SharedWith\":\"{APPROVED_OU}\",\"ClientRequestToken\":\"tok\"}}")
}

/// Sends a correctly signed request and asserts it was refused with an AWS error.
async fn assert_refused(h: &Harness, req: RawRequest<'_>, status: u16, error_type: Option<&str>) {
    let resp = req.send(h.gateway.addr).await;
    assert_eq!(
        resp.status, status,
        "{} {}: {resp:?}",
        req.method, req.path_and_query
    );
    if let Some(t) = error_type {
        assert_eq!(resp.error_type(), Some(t), "{resp:?}");
        let body: serde_json::Value = serde_json::from_str(&resp.body).unwrap();
        assert!(
            !body["Message"].as_str().unwrap_or_default().is_empty(),
            "{resp:?}"
        );
    }
}

#[tokio::test]
async fn ambiguous_bodies_are_refused() {
    let h = Harness::start().await;
    let path = template_path(TEMPLATE_ARN);
    let bodies: Vec<Vec<u8>> = vec![
        // Two parsers could each pick a different SharedWith.
        format!("{{\"SharedWith\":\"{APPROVED_OU}\",\"SharedWith\":\"123456789012\",\"ClientRequestToken\":\"t\"}}").into_bytes(),
        // Members the model does not have (including a case variant).
        format!("{{\"SharedWith\":\"{APPROVED_OU}\",\"ClientRequestToken\":\"t\",\"sharedWith\":\"123456789012\"}}").into_bytes(),
        format!("{{\"SharedWith\":\"{APPROVED_OU}\",\"ClientRequestToken\":\"t\",\"PermissionType\":\"CONTRIBUTOR\"}}").into_bytes(),
        b"SharedWith=ou-ab12-11111111&ClientRequestToken=t".to_vec(),
        b"{\"SharedWith\":\"ou-ab12-1111111\xff\",\"ClientRequestToken\":\"t\"}".to_vec(),
        format!("\u{feff}{}", ok_body()).into_bytes(),
        format!("{} {{}}", ok_body()).into_bytes(),
        b"[]".to_vec(),
        format!("{{\"SharedWith\":[\"{APPROVED_OU}\"],\"ClientRequestToken\":\"t\"}}").into_bytes(),
    ];
    for body in bodies {
        assert_refused(
            &h,
            RawRequest::new("POST", &path, body),
            400,
            Some("ValidationException"),
        )
        .await;
    }
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn ambiguous_paths_are_refused() {
    let h = Harness::start().await;
    let arn = template_path(TEMPLATE_ARN);
    let arn_segment = arn.trim_start_matches("/templates/shares/").to_string();
    let paths = vec![
        format!("/templates%2Fshares/{arn_segment}"),
        format!("/templates/./shares/{arn_segment}"),
        format!("/templates/x/../shares/{arn_segment}"),
        format!("/templates//shares/{arn_segment}"),
        format!("/templates/shares//{arn_segment}"),
        format!("/templates/shares/{arn_segment}/"),
        format!("/templates/shares/%2e%2e/{arn_segment}"),
        format!("/templates/shares/{arn_segment}%00"),
        format!("/Templates/shares/{arn_segment}"),
    ];
    for p in &paths {
        let resp = RawRequest::new("POST", p, ok_body())
            .send(h.gateway.addr)
            .await;
        assert!(matches!(resp.status, 400 | 404), "{p}: {resp:?}");
        assert!(
            matches!(
                resp.error_type(),
                Some("ValidationException") | Some("UnknownOperationException")
            ),
            "{p}: {resp:?}"
        );
    }
    // Query strings: unknown, repeated, or ambiguous parameters.
    for q in [
        "?Bogus=1",
        "?MaxResults=1&MaxResults=2",
        "?SharedWithPrefix=ou+x",
        "?SharedWithPrefix=%zz",
    ] {
        let p = format!("{arn}{q}");
        let mut req = RawRequest::new("GET", &p, Vec::new());
        req.headers.clear();
        assert_refused(&h, req, 400, Some("ValidationException")).await;
    }
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn ambiguous_headers_are_refused() {
    let h = Harness::start().await;
    let path = template_path(TEMPLATE_ARN);
    for (name, value) in [
        ("x-http-method-override", "DELETE"),
        ("x-http-method", "DELETE"),
        ("x-method-override", "DELETE"),
        ("content-encoding", "gzip"),
    ] {
        let req = RawRequest::new("POST", &path, ok_body()).header(name, value);
        assert_refused(&h, req, 400, Some("ValidationException")).await;
    }
    // A JSON body declared as something else.
    let mut req = RawRequest::new("POST", &path, ok_body());
    req.headers = vec![("content-type", "text/plain".into())];
    assert_refused(&h, req, 400, Some("ValidationException")).await;
    // A body on a GET.
    assert_refused(
        &h,
        RawRequest::new("GET", &path, "{}"),
        400,
        Some("ValidationException"),
    )
    .await;
    // A body on an operation without one.
    let del = format!("{path}/0123456789abcdef0123456789abcdef?ClientRequestToken=x");
    assert_refused(
        &h,
        RawRequest::new("DELETE", &del, "{}"),
        400,
        Some("ValidationException"),
    )
    .await;
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn unsigned_additions_are_refused() {
    let h = Harness::start().await;
    let path = template_path(TEMPLATE_ARN);
    let signed = RawRequest::new("POST", &path, ok_body()).to_bytes(h.gateway.addr);
    let text = String::from_utf8(signed).unwrap();
    // An x-amz-* header slipped in after signing.
    let tampered = text.replacen(
        "\r\n",
        "\r\nx-amz-target: WellArchitected.DeleteWorkload\r\n",
        1,
    );
    let resp = send_raw(h.gateway.addr, tampered.as_bytes()).await;
    assert_eq!(resp.status, 403, "{resp:?}");
    assert_eq!(resp.error_type(), Some("InvalidSignatureException"));
    // The body swapped after signing.
    let swapped = text.replace(APPROVED_OU, "ou-ab12-99999999");
    let resp = send_raw(h.gateway.addr, swapped.as_bytes()).await;
    assert_eq!(resp.status, 403, "{resp:?}");
    assert_eq!(resp.error_type(), Some("InvalidSignatureException"));
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn oversized_bodies_and_headers_are_refused() {
    let h = Harness::start_with(Options {
        server_extra: "max_body_bytes = 4096\nmax_header_bytes = 8192".into(),
        ..Default::default()
    })
    .await;
    let path = template_path(TEMPLATE_ARN);
    let big = format!(
        "{{\"SharedWith\":\"{APPROVED_OU}\",\"ClientRequestToken\":\"{}\"}}",
        "a".repeat(5000)
    );
    assert_refused(
        &h,
        RawRequest::new("POST", &path, big),
        413,
        Some("ValidationException"),
    )
    .await;

    let req = RawRequest::new("POST", &path, ok_body()).header("x-padding", "p".repeat(9000));
    let resp = req.send(h.gateway.addr).await;
    assert_eq!(resp.status, 431, "{resp:?}");

    // Classic request smuggling: both Content-Length and Transfer-Encoding.
    let smuggle = format!(
        "POST {path} HTTP/1.1\r\nhost: localhost\r\ncontent-length: 4\r\ntransfer-encoding: chunked\r\nconnection: close\r\n\r\n0\r\n\r\n"
    );
    let resp = send_raw(h.gateway.addr, smuggle.as_bytes()).await;
    assert!(
        resp.status == 400 || resp.status == 403 || resp.status == 0,
        "{resp:?}"
    );
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn http2_requests_are_verified_against_authority() {
    use http_body_util::{BodyExt, Full};
    use hyper_util::rt::{TokioExecutor, TokioIo};

    let h = Harness::start().await;
    let path = template_path(TEMPLATE_ARN);
    // Sign as an HTTP/1 request, then send the same signed headers over h2c (no Host header:
    // the host travels in :authority).
    let raw = RawRequest::new("POST", &path, ok_body()).to_bytes(h.gateway.addr);
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
    let resp = send
        .send_request(req.body(Full::new(bytes::Bytes::from(ok_body()))).unwrap())
        .await
        .unwrap();
    let status = resp.status();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(h.sim.received().len(), 1);
    h.stop().await;
}
