//! The credential exchange against moto_server's STS (an implementation written by someone
//! else): a caller proves its AWS identity with a signed GetCallerIdentity, gets short-lived
//! gateway credentials, and the official SDK uses them for allowed and denied shares.

mod common;
#[path = "common/moto.rs"]
mod moto;
#[path = "common/python.rs"]
mod python;

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use common::*;
use moto::Moto;
use waguard::identity::{SERVER_ID_HEADER, SessionKey, Sessions, SignedRequest};

const SERVER_ID: &str = "waguard.test.internal";
const KEY: [u8; 32] = [42; 32];
const ROLE: &str = "arn:aws:iam::123456789012:role/teams/payments/PaymentsDev";

fn identity_options(sts: &str) -> Options {
    Options {
        files: vec![("identity.key".into(), KEY.to_vec())],
        tables: format!(
            "[identity]\nenabled = true\nserver_id = \"{SERVER_ID}\"\nkey_files = [\"identity.key\"]\nsts_endpoint = \"{sts}\"\n"
        ),
        callers_extra: format!(
            "[[identities]]\narn = \"{ROLE}\"\nteam = \"payments\"\n[identities.attributes]\ncost_center = \"cc-2002\"\n"
        ),
        ..Default::default()
    }
}

/// A Query-protocol STS request signed with `creds`; with `server_id`, bound to a gateway.
fn sts_request(
    endpoint: &str,
    body: &str,
    creds: &Credentials,
    server_id: Option<&str>,
) -> SignedRequest {
    sts_request_at(endpoint, body, creds, server_id, SystemTime::now())
}

/// [`sts_request`] signed at `time`.
fn sts_request_at(
    endpoint: &str,
    body: &str,
    creds: &Credentials,
    server_id: Option<&str>,
    time: SystemTime,
) -> SignedRequest {
    let host = endpoint.trim_start_matches("http://").to_string();
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded; charset=utf-8".to_string(),
        ),
        ("host".to_string(), host),
    ];
    if let Some(id) = server_id {
        headers.push((SERVER_ID_HEADER.to_string(), id.to_string()));
    }
    let identity = creds.clone().into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let url = format!("{endpoint}/");
    let signable = SignableRequest::new(
        "POST",
        &url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let mut all: BTreeMap<String, String> = headers.into_iter().collect();
    for (k, v) in instructions.headers() {
        all.insert(k.to_string(), v.to_string());
    }
    SignedRequest {
        method: "POST".into(),
        url,
        headers: all,
        body: body.into(),
    }
}

fn xml(text: &str, tag: &str) -> String {
    let start = text.find(&format!("<{tag}>")).unwrap() + tag.len() + 2;
    let end = start + text[start..].find(&format!("</{tag}>")).unwrap();
    text[start..end].to_string()
}

/// Assumes `role` in moto's STS: credentials with a session token, as SSO or IRSA hand out.
async fn assume_role(moto: &Moto, role: &str, session: &str) -> Credentials {
    let base = Credentials::new("AKIDMOTOBASE0000001", "moto-base-secret", None, None, "t");
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleArn={}&RoleSessionName={session}",
        percent_encoding::utf8_percent_encode(role, percent_encoding::NON_ALPHANUMERIC)
    );
    let signed = sts_request(&moto.endpoint, &body, &base, None);
    let client = reqwest_like(&signed).await;
    assert_eq!(client.0, 200, "{}", client.1);
    Credentials::new(
        xml(&client.1, "AccessKeyId"),
        xml(&client.1, "SecretAccessKey"),
        Some(xml(&client.1, "SessionToken")),
        None,
        "moto",
    )
}

/// Sends a signed request as is (plain HTTP to moto).
async fn reqwest_like(signed: &SignedRequest) -> (u16, String) {
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    let client: Client<_, Full<bytes::Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let mut req = http::Request::builder().method("POST").uri(&signed.url);
    for (k, v) in &signed.headers {
        req = req.header(k, v);
    }
    let resp = client
        .request(
            req.body(Full::new(bytes::Bytes::from(signed.body.clone())))
                .unwrap(),
        )
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let body = resp.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&body).into_owned())
}

/// Posts a credential exchange to the gateway.
async fn exchange(h: &Harness, signed: &SignedRequest) -> RawResponse {
    let body = serde_json::to_vec(signed).unwrap();
    let req = format!(
        "POST /_waguard/v1/credentials HTTP/1.1\r\nhost: localhost\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        body.len()
    );
    let mut bytes = req.into_bytes();
    bytes.extend_from_slice(&body);
    send_raw(h.gateway.addr, &bytes).await
}

fn sdk_with(h: &Harness, creds: Credentials) -> aws_sdk_wellarchitected::Client {
    let conf = aws_sdk_wellarchitected::Config::builder()
        .behavior_version(aws_sdk_wellarchitected::config::BehaviorVersion::latest())
        .region(aws_sdk_wellarchitected::config::Region::new("us-east-1"))
        .endpoint_url(&h.endpoint)
        .credentials_provider(creds)
        .retry_config(aws_sdk_wellarchitected::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_wellarchitected::Client::from_conf(conf)
}

const GCI: &str = "Action=GetCallerIdentity&Version=2011-06-15";

#[tokio::test]
async fn an_assumed_role_session_vouched_for_by_sts_gets_credentials_that_the_sdk_uses() {
    let moto = Moto::start().await;
    let h = Harness::start_with(identity_options(&moto.endpoint)).await;
    let role = assume_role(&moto, ROLE, "alice").await;
    let resp = exchange(
        &h,
        &sts_request(&moto.endpoint, GCI, &role, Some(SERVER_ID)),
    )
    .await;
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.header("cache-control"), Some("no-store"));
    let issued: HashMap<String, serde_json::Value> = serde_json::from_str(&resp.body).unwrap();
    assert_eq!(issued["Version"], 1);
    let expiration = time::OffsetDateTime::parse(
        issued["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let left = expiration - time::OffsetDateTime::now_utc();
    assert!(left > time::Duration::minutes(59) && left <= time::Duration::minutes(60));
    let session = Credentials::new(
        issued["AccessKeyId"].as_str().unwrap(),
        issued["SecretAccessKey"].as_str().unwrap(),
        Some(issued["SessionToken"].as_str().unwrap().to_string()),
        None,
        "waguard",
    );
    let client = sdk_with(&h, session.clone());
    let share = client
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("session-allowed")
        .send()
        .await
        .unwrap();
    assert!(share.share_id().is_some());
    let denied = client
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(UNAPPROVED_OU)
        .client_request_token("session-denied")
        .send()
        .await
        .unwrap_err();
    assert_eq!(
        denied.into_service_error().meta().code(),
        Some("AccessDeniedException")
    );

    let session_arn = "arn:aws:sts::123456789012:assumed-role/PaymentsDev/alice";
    let records = h.audit_records().await;
    let exchange_record = records
        .iter()
        .find(|r| r["type"] == "credential_exchange")
        .unwrap();
    assert_eq!(exchange_record["principal"], session_arn);
    assert_eq!(exchange_record["team"], "payments");
    assert_eq!(exchange_record["access_key_id"], issued["AccessKeyId"]);
    assert_eq!(exchange_record["aws_access_key_id"], role.access_key_id());
    let decisions: Vec<_> = records.iter().filter(|r| r["type"] == "decision").collect();
    assert_eq!(decisions.len(), 2);
    for d in &decisions {
        assert_eq!(d["caller"]["principal"], session_arn);
        assert_eq!(d["caller"]["team"], "payments");
        assert_eq!(d["caller"]["access_key_id"], issued["AccessKeyId"]);
    }
    assert_eq!(decisions[0]["decision"], "allow");
    assert_eq!(decisions[1]["decision"], "deny");
    let text = std::fs::read_to_string(&h.audit_file).unwrap();
    assert!(!text.contains(issued["SecretAccessKey"].as_str().unwrap()));
    assert!(!text.contains(issued["SessionToken"].as_str().unwrap()));
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(&m, "waguard_credential_exchanges_total{result=\"issued\"}"),
        Some(1.0)
    );
    h.stop().await;
}

#[tokio::test]
async fn sessions_are_checked_like_aws_checks_its_own() {
    let moto = Moto::start().await;
    let h = Harness::start_with(identity_options(&moto.endpoint)).await;
    let now = SystemTime::now();
    let principal = "arn:aws:sts::123456789012:assumed-role/PaymentsDev/bob";
    // A replica with the same key issued these; this gateway verifies them without state.
    let ours = Sessions::new(
        vec![SessionKey::from_bytes(KEY.to_vec()).unwrap()],
        Duration::from_secs(900),
    )
    .unwrap();
    let as_creds = |i: &waguard::identity::Issued| {
        Credentials::new(
            &i.access_key_id,
            i.secret_access_key.expose(),
            Some(i.session_token.clone()),
            None,
            "t",
        )
    };
    let list = |creds: Credentials| {
        let client = sdk_with(&h, creds);
        async move {
            client
                .list_template_shares()
                .template_arn(TEMPLATE_ARN)
                .send()
                .await
        }
    };
    let fresh = ours
        .issue(principal, "payments", &BTreeMap::new(), now)
        .unwrap();
    list(as_creds(&fresh)).await.unwrap();

    let expired = ours
        .issue(
            principal,
            "payments",
            &BTreeMap::new(),
            now - Duration::from_secs(1000),
        )
        .unwrap();
    let e = list(as_creds(&expired)).await.unwrap_err();
    assert_eq!(e.raw_response().map(|r| r.status().as_u16()), Some(403));
    assert_eq!(
        e.into_service_error().meta().code(),
        Some("ExpiredTokenException")
    );

    // Signed with a key this gateway does not (or no longer: rotated out) have.
    let stranger = Sessions::new(
        vec![SessionKey::from_bytes(vec![7; 32]).unwrap()],
        Duration::from_secs(900),
    )
    .unwrap();
    let forged = stranger
        .issue(principal, "security", &BTreeMap::new(), now)
        .unwrap();
    let e = list(as_creds(&forged)).await.unwrap_err();
    assert_eq!(
        e.into_service_error().meta().code(),
        Some("UnrecognizedClientException")
    );
    // A genuine token whose payload was edited (team raised), its MAC kept.
    let (payload, mac) = fresh.session_token.split_once('.').unwrap();
    use base64::Engine;
    let engine = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut claims: serde_json::Value =
        serde_json::from_slice(&engine.decode(payload).unwrap()).unwrap();
    claims["team"] = "security".into();
    let altered = format!(
        "{}.{mac}",
        engine.encode(serde_json::to_vec(&claims).unwrap())
    );
    let e = list(Credentials::new(
        &fresh.access_key_id,
        fresh.secret_access_key.expose(),
        Some(altered),
        None,
        "t",
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e.into_service_error().meta().code(),
        Some("UnrecognizedClientException")
    );
    // A genuine token with the secret of another session: the signature does not match.
    let other = ours
        .issue(principal, "payments", &BTreeMap::new(), now)
        .unwrap();
    let mixed = Credentials::new(
        &fresh.access_key_id,
        other.secret_access_key.expose(),
        Some(fresh.session_token.clone()),
        None,
        "t",
    );
    let e = list(mixed).await.unwrap_err();
    assert_eq!(
        e.into_service_error().meta().code(),
        Some("InvalidSignatureException")
    );
    // A static caller key cannot be combined with a session token.
    let e = list(Credentials::new(
        PAYMENTS_KEY,
        PAYMENTS_SECRET,
        Some(fresh.session_token.clone()),
        None,
        "t",
    ))
    .await
    .unwrap_err();
    assert_eq!(
        e.into_service_error().meta().code(),
        Some("UnrecognizedClientException")
    );
    // Only the one valid session's request reached Well-Architected.
    assert_eq!(h.sim.received().len(), 1);
    h.stop().await;
}

#[tokio::test]
async fn an_identity_without_a_rule_another_gateways_request_and_a_refused_signature_get_nothing() {
    let moto = Moto::start().await;
    let h = Harness::start_with(identity_options(&moto.endpoint)).await;
    // moto vouches for this role, but no [[identities]] rule names it.
    let intern = assume_role(&moto, "arn:aws:iam::123456789012:role/Intern", "eve").await;
    let resp = exchange(
        &h,
        &sts_request(&moto.endpoint, GCI, &intern, Some(SERVER_ID)),
    )
    .await;
    assert_eq!(resp.status, 403, "{resp:?}");
    assert_eq!(resp.error_type(), Some("AccessDeniedException"));
    assert!(
        resp.body
            .contains("arn:aws:sts::123456789012:assumed-role/Intern/eve"),
        "{}",
        resp.body
    );
    // A request signed for another gateway is not accepted here (and never sent to STS).
    let role = assume_role(&moto, ROLE, "alice").await;
    let resp = exchange(
        &h,
        &sts_request(&moto.endpoint, GCI, &role, Some("other-gateway.internal")),
    )
    .await;
    assert_eq!(resp.status, 403, "{resp:?}");
    // Anything but GetCallerIdentity is refused before STS is asked.
    let resp = exchange(
        &h,
        &sts_request(
            &moto.endpoint,
            "Action=AssumeRole&Version=2011-06-15&RoleArn=x&RoleSessionName=y",
            &role,
            Some(SERVER_ID),
        ),
    )
    .await;
    assert_eq!(resp.status, 400, "{resp:?}");
    assert_eq!(resp.error_type(), Some("ValidationException"));
    let records = h.audit_records().await;
    assert!(records.iter().all(|r| r["type"] != "credential_exchange"));
    let summary = records
        .iter()
        .find(|r| r["type"] == "auth_failures")
        .expect("refused exchanges are counted");
    let entries = summary["entries"].as_array().unwrap();
    assert!(
        entries.iter().any(|e| e["principal"]
            == "arn:aws:sts::123456789012:assumed-role/Intern/eve"
            && e["error"] == "AccessDeniedException"),
        "{summary}"
    );
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(&m, "waguard_credential_exchanges_total{result=\"no_rule\"}"),
        Some(1.0)
    );
    h.stop().await;
}

/// A stand-in STS that accepts connections and answers nothing until released: counts how
/// many exchanges reach STS at once.
async fn silent_sts() -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
    let accepted = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let count = accepted.clone();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            count.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            held.push(s);
        }
    });
    (endpoint, accepted)
}

#[tokio::test]
async fn only_checked_requests_reach_sts_and_at_most_eight_at_a_time() {
    let (sts, reached) = silent_sts().await;
    let h = std::sync::Arc::new(Harness::start_with(identity_options(&sts)).await);
    let creds = Credentials::new("AKIDANYONE000000001", "any-secret", None, None, "t");
    // Refused before STS: another action, another gateway's server id, a stale signature is
    // not even needed. None of these may open a connection to STS.
    let (elsewhere, reached_elsewhere) = silent_sts().await;
    for signed in [
        sts_request(
            &sts,
            "Action=GetSessionToken&Version=2011-06-15",
            &creds,
            Some(SERVER_ID),
        ),
        sts_request(&sts, GCI, &creds, Some("someone-else")),
        sts_request(&sts, GCI, &creds, None),
        // Another host than the STS endpoint (an attacker's, or anything inside the network).
        sts_request(&elsewhere, GCI, &creds, Some(SERVER_ID)),
        // Signed six minutes ago.
        sts_request_at(
            &sts,
            GCI,
            &creds,
            Some(SERVER_ID),
            SystemTime::now() - Duration::from_secs(360),
        ),
    ] {
        let resp = exchange(&h, &signed).await;
        assert!(resp.status == 400 || resp.status == 403, "{resp:?}");
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 0);
    assert_eq!(
        reached_elsewhere.load(std::sync::atomic::Ordering::SeqCst),
        0
    );
    // Twelve valid exchanges against an STS that never answers: eight reach it, the others
    // wait their turn.
    let mut waiting = Vec::new();
    for _ in 0..12 {
        let h = h.clone();
        let signed = sts_request(&sts, GCI, &creds, Some(SERVER_ID));
        waiting.push(tokio::spawn(async move { exchange(&h, &signed).await }));
    }
    let mut seen = 0;
    for _ in 0..50 {
        seen = reached.load(std::sync::atomic::Ordering::SeqCst);
        if seen >= 8 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        reached.load(std::sync::atomic::Ordering::SeqCst),
        8,
        "seen {seen}"
    );
    // The four without a turn are answered 503 after a short wait, not held.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let mut busy = 0;
    for w in waiting {
        if w.is_finished() {
            let resp = w.await.unwrap();
            assert_eq!(resp.status, 503, "{resp:?}");
            assert_eq!(resp.error_type(), Some("ServiceUnavailableException"));
            busy += 1;
        } else {
            w.abort();
        }
    }
    assert_eq!(busy, 4);
    assert_eq!(reached.load(std::sync::atomic::Ordering::SeqCst), 8);
}

#[test]
fn check_config_reads_the_session_keys_as_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("callers.toml"), CALLERS).unwrap();
    std::fs::write(dir.path().join("short.key"), [1u8; 16]).unwrap();
    std::fs::write(dir.path().join("good.key"), KEY).unwrap();
    let check = |key: &str| {
        let config = dir.path().join("waguard.toml");
        std::fs::write(
            &config,
            format!(
                "[server]\nlisten = \"127.0.0.1:0\"\n[policy]\ndir = \"{}\"\n[callers]\nfile = \"callers.toml\"\n[audit]\nfile = \"audit.jsonl\"\n[identity]\nenabled = true\nserver_id = \"{SERVER_ID}\"\nkey_files = [\"{key}\"]\n",
                repo_policies().display()
            ),
        )
        .unwrap();
        std::process::Command::new(env!("CARGO_BIN_EXE_waguard"))
            .args(["check-config", "--config"])
            .arg(&config)
            .output()
            .unwrap()
    };
    let ok = check("good.key");
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("identity sign-in on (1 session keys"));
    for bad in ["short.key", "missing.key"] {
        let out = check(bad);
        assert!(!out.status.success());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("identity.key_files") && err.contains(bad),
            "{err}"
        );
    }
}
