//! The request path end to end: the official AWS SDK -> waguard -> simulated Well-Architected.

mod common;

use std::time::{Duration, SystemTime};

use aws_sdk_wellarchitected::error::ProvideErrorMetadata;
use common::*;

fn share_id_re(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| b.is_ascii_hexdigit())
}

#[tokio::test]
async fn allowed_share_returns_the_upstream_share_id() {
    let h = Harness::start().await;
    let out = h
        .payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("token-allowed-1")
        .send()
        .await
        .expect("approved share goes through");
    let share_id = out.share_id().unwrap().to_string();
    assert!(share_id_re(&share_id), "{share_id}");
    assert_eq!(out.template_arn(), Some(TEMPLATE_ARN));
    assert_eq!(
        h.sim.shares(TEMPLATE_ARN),
        vec![(share_id, APPROVED_OU.to_string())]
    );

    // What AWS received: signed with the service key and token, no trace of the caller's credentials.
    let received = h.sim.received();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.signed_by.as_deref(), Some(SERVICE_KEY));
    let auth = r.headers["authorization"].to_str().unwrap();
    assert!(
        auth.contains(&format!("Credential={SERVICE_KEY}/")),
        "{auth}"
    );
    assert!(!auth.contains(PAYMENTS_KEY));
    assert_eq!(r.headers["x-amz-security-token"], SERVICE_TOKEN);
    for (name, value) in r.headers.iter() {
        let v = value.to_str().unwrap_or("");
        assert!(
            !v.contains(PAYMENTS_KEY) && !v.contains(PAYMENTS_SECRET),
            "{name}: {v}"
        );
    }
    assert!(
        r.path_and_query
            .starts_with("/templates/shares/arn%3Aaws%3Awellarchitected"),
        "{}",
        r.path_and_query
    );
    let body: serde_json::Value = serde_json::from_slice(&r.body).unwrap();
    assert_eq!(body["SharedWith"], APPROVED_OU);
    assert_eq!(body["ClientRequestToken"], "token-allowed-1");
    h.stop().await;
}

#[tokio::test]
async fn forwarded_body_is_byte_identical() {
    let h = Harness::start().await;
    // Unusual but valid spacing and member order must survive untouched.
    let body = format!(
        "{{ \"ClientRequestToken\" : \"tok-bytes\",\n  \"SharedWith\":\"{APPROVED_OU}\" }}"
    );
    let path = template_path(TEMPLATE_ARN);
    let resp = RawRequest::new("POST", &path, body.clone())
        .send(h.gateway.addr)
        .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    let received = h.sim.received();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body.as_ref(), body.as_bytes());
    assert_eq!(received[0].path_and_query, path);
    assert!(resp.header("x-amzn-requestid").is_some());
    h.stop().await;
}

#[tokio::test]
async fn denied_share_is_the_sdks_access_denied_exception() {
    let h = Harness::start().await;
    let err = h
        .payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(UNAPPROVED_OU)
        .send()
        .await
        .unwrap_err();
    let service_err = err.into_service_error();
    assert!(service_err.is_access_denied_exception(), "{service_err:?}");
    let msg = service_err.message().unwrap_or_default();
    assert!(
        msg.contains(UNAPPROVED_OU) && msg.contains("payments"),
        "{msg}"
    );
    assert!(
        h.sim.received().is_empty(),
        "a denied request reached the upstream"
    );

    // Another team's approved OU is not this team's.
    let err = h
        .client(PLATFORM_KEY, PLATFORM_SECRET)
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_access_denied_exception());
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn authentication_failures_use_aws_codes_and_never_reach_upstream() {
    let h = Harness::start().await;
    let wrong_secret = h
        .client(PAYMENTS_KEY, "not-the-right-secret-0001")
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        wrong_secret.code(),
        Some("InvalidSignatureException"),
        "{wrong_secret:?}"
    );

    let unknown = h
        .client("AKWGNOBODY000000001", PAYMENTS_SECRET)
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        unknown.code(),
        Some("UnrecognizedClientException"),
        "{unknown:?}"
    );

    let path = template_path(TEMPLATE_ARN);
    let mut stale = RawRequest::new("GET", &path, Vec::new());
    stale.headers.clear();
    stale.time = SystemTime::now() - Duration::from_secs(6 * 60);
    let resp = stale.send(h.gateway.addr).await;
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.error_type(),
        Some("InvalidSignatureException"),
        "{resp:?}"
    );

    let unsigned = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
    let resp = send_raw(h.gateway.addr, unsigned.as_bytes()).await;
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.error_type(),
        Some("MissingAuthenticationTokenException")
    );

    let malformed = format!(
        "GET {path} HTTP/1.1\r\nhost: localhost\r\nauthorization: AWS4-HMAC-SHA256 Credential=x\r\nx-amz-date: 20261126T000000Z\r\nconnection: close\r\n\r\n"
    );
    let resp = send_raw(h.gateway.addr, malformed.as_bytes()).await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.error_type(), Some("IncompleteSignatureException"));

    assert!(h.sim.received().is_empty());
    let records = h.audit_records().await;
    let failures: Vec<_> = records
        .iter()
        .filter(|r| r["type"] == "auth_failures")
        .collect();
    assert_eq!(failures.len(), 1, "one summary: {records:#?}");
    assert_eq!(failures[0]["total"], 5);
    assert!(
        records.iter().all(|r| r["type"] != "decision"),
        "nothing was decided for unauthenticated requests"
    );
    let text = std::fs::read_to_string(&h.audit_file).unwrap();
    assert!(
        !text.contains(PAYMENTS_SECRET) && !text.contains("Signature="),
        "secrets in audit"
    );
    h.stop().await;
}

#[tokio::test]
async fn invalid_requests_are_validation_exceptions() {
    let h = Harness::start().await;
    let bad_arn = h
        .payments()
        .create_template_share()
        .template_arn("arn:aws:wellarchitected:us-east-1:123456789012:workload/0123456789abcdef0123456789abcdef")
        .shared_with(APPROVED_OU)
        .send()
        .await
        .unwrap_err();
    assert_eq!(bad_arn.code(), Some("ValidationException"), "{bad_arn:?}");

    let short = h
        .payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with("ou-short")
        .send()
        .await
        .unwrap_err();
    assert_eq!(short.code(), Some("ValidationException"), "{short:?}");
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn idempotent_retries_and_conflicts_pass_through() {
    let h = Harness::start().await;
    let c = h.payments();
    let first = c
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("same-token")
        .send()
        .await
        .unwrap();
    let again = c
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("same-token")
        .send()
        .await
        .unwrap();
    assert_eq!(first.share_id(), again.share_id());
    let conflict = c
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("other-token")
        .send()
        .await
        .unwrap_err();
    assert!(conflict.into_service_error().is_conflict_exception());

    let missing = c
        .create_template_share()
        .template_arn("arn:aws:wellarchitected:us-east-1:123456789012:review-template/ffffffffffffffffffffffffffffffff")
        .shared_with(APPROVED_OU)
        .send()
        .await
        .unwrap_err();
    assert!(
        missing
            .into_service_error()
            .is_resource_not_found_exception()
    );
    h.stop().await;
}

#[tokio::test]
async fn list_and_delete_template_shares_work_through_the_gateway() {
    let h = Harness::start().await;
    let c = h.payments();
    let created = c
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .send()
        .await
        .unwrap();
    let listed = c
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .shared_with_prefix("ou-ab12")
        .send()
        .await
        .unwrap();
    let summaries = listed.template_share_summaries();
    assert_eq!(summaries.len(), 1);
    assert_eq!(summaries[0].shared_with(), Some(APPROVED_OU));
    c.delete_template_share()
        .template_arn(TEMPLATE_ARN)
        .share_id(created.share_id().unwrap())
        .send()
        .await
        .unwrap();
    assert!(h.sim.shares(TEMPLATE_ARN).is_empty());
    h.stop().await;
}

#[tokio::test]
async fn operations_the_policy_does_not_allow_are_denied() {
    let h = Harness::start().await;
    let err = h
        .payments()
        .delete_review_template()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_access_denied_exception());
    // No known operation at all: fail closed.
    let resp = RawRequest::new("POST", "/not/an/operation", "{}")
        .send(h.gateway.addr)
        .await;
    assert_eq!(resp.status, 404, "{resp:?}");
    assert_eq!(resp.error_type(), Some("UnknownOperationException"));
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn regions_outside_the_allow_list_are_refused() {
    let h = Harness::start_with(Options {
        upstream_extra: "allowed_regions = [\"eu-west-1\"]".into(),
        ..Default::default()
    })
    .await;
    let err = h
        .payments()
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_access_denied_exception());
    assert!(h.sim.received().is_empty());
    h.stop().await;
}

#[tokio::test]
async fn unreachable_upstream_is_a_retryable_5xx() {
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = closed.local_addr().unwrap().port();
    drop(closed);
    let h = Harness::start_with(Options {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        ..Default::default()
    })
    .await;
    let started = std::time::Instant::now();
    let err = h
        .payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .send()
        .await
        .unwrap_err();
    let raw = err.raw_response().map(|r| r.status().as_u16());
    assert_eq!(raw, Some(502), "{err:?}");
    assert_eq!(err.code(), Some("ServiceUnavailableException"));
    assert!(
        err.message()
            .unwrap_or_default()
            .contains("could not be reached")
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    let outcomes: Vec<_> = h
        .audit_records()
        .await
        .into_iter()
        .filter(|r| r["type"] == "outcome")
        .collect();
    assert_eq!(outcomes.len(), 1);
    assert_eq!(outcomes[0]["error_code"], "ServiceUnavailableException");
    h.stop().await;
}

#[tokio::test]
async fn every_decision_is_audited() {
    let h = Harness::start().await;
    let c = h.payments();
    let ok = c
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("audit-1")
        .send()
        .await
        .unwrap();
    let _ = c
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(UNAPPROVED_OU)
        .client_request_token("audit-2")
        .send()
        .await
        .unwrap_err();
    let records = h.audit_records().await;
    let decisions: Vec<_> = records.iter().filter(|r| r["type"] == "decision").collect();
    assert_eq!(decisions.len(), 2, "{records:?}");
    let allow = decisions[0];
    assert_eq!(allow["decision"], "allow");
    assert_eq!(allow["operation"], "CreateTemplateShare");
    assert_eq!(allow["caller"]["principal"], "alice@example.com");
    assert_eq!(allow["caller"]["team"], "payments");
    assert_eq!(allow["shared_with"], APPROVED_OU);
    assert_eq!(allow["target_type"], "ou");
    assert_eq!(allow["client_request_token"], "audit-1");
    assert_eq!(allow["resource_arn"], TEMPLATE_ARN);
    assert_eq!(allow["region"], "us-east-1");
    assert_eq!(allow["policy_revision"].as_str().unwrap().len(), 64);
    let deny = decisions[1];
    assert_eq!(deny["decision"], "deny");
    assert!(deny["reasons"][0].as_str().unwrap().contains(UNAPPROVED_OU));
    let outcome = records.iter().find(|r| r["type"] == "outcome").unwrap();
    assert_eq!(outcome["request_id"], allow["request_id"]);
    assert_eq!(outcome["upstream_status"], 200);
    assert_eq!(outcome["share_id"].as_str(), ok.share_id());
    assert!(outcome["aws_request_id"].is_string());
    h.stop().await;
}

#[tokio::test]
async fn hanging_upstream_times_out_with_a_5xx() {
    // Accepts connections and never answers.
    let hang = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = hang.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hang.accept().await {
            held.push(s);
        }
    });
    let h = Harness::start_with(Options {
        endpoint: Some(format!("http://127.0.0.1:{port}")),
        upstream_extra: "timeout = 1".into(),
        ..Default::default()
    })
    .await;
    let started = std::time::Instant::now();
    let err = h
        .payments()
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        err.raw_response().map(|r| r.status().as_u16()),
        Some(504),
        "{err:?}"
    );
    assert!(
        err.message()
            .unwrap_or_default()
            .contains("did not answer in time (request id "),
        "{err:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    h.stop().await;
}
