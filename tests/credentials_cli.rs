//! Signing in with the AWS identity a caller already has: the simulated STS that stands in for
//! AWS, and `waguard credentials` (the real binary, as a `credential_process` runs it) trading
//! a signed GetCallerIdentity at a gateway for credentials that the official SDK then uses.

mod common;
#[path = "common/python.rs"]
mod python;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use common::*;
use waguard::app::Running;

const BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";

/// Alice's SSO session of the PaymentsDev role (temporary credentials with a session token).
const ALICE_KEY: &str = "ASIAALICEPAYMENTS001";
const ALICE_SECRET: &str = "alice-sso-secret-0000000000000001";
const ALICE_TOKEN: &str = "alice-sso-session-token-IQoJb3JpZ2luX2VjEJr";
const ALICE_ARN: &str = "arn:aws:sts::123456789012:assumed-role/PaymentsDev/alice@example.com";
/// A CI user with long-term keys, also mapped to payments.
const CI_KEY: &str = "AKIACIPAYMENTS000001";
const CI_SECRET: &str = "ci-user-secret-00000000000000001";
const CI_ARN: &str = "arn:aws:iam::123456789012:user/ci/payments-deployer";
/// Mallory's role has no `[[identities]]` rule.
const MALLORY_KEY: &str = "AKIAMALLORY000000001";
const MALLORY_SECRET: &str = "mallory-secret-000000000000000001";
const MALLORY_ARN: &str = "arn:aws:sts::123456789012:assumed-role/Sandbox/mallory";

const IDENTITY_RULES: &str = r#"
[[identities]]
arn = "arn:aws:iam::123456789012:role/PaymentsDev"
team = "payments"
[identities.attributes]
cost_center = "cc-1001"

[[identities]]
arn = "arn:aws:iam::123456789012:user/ci/*"
team = "payments"
"#;

/// A GetCallerIdentity signed with aws-sigv4 for `url` (not by waguard's own client code).
fn signed_get_caller_identity(
    url: &str,
    key: &str,
    secret: &str,
    token: Option<&str>,
    extra: &[(&str, &str)],
) -> Vec<(String, String)> {
    let host = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .to_string();
    let mut headers: Vec<(String, String)> = vec![
        (
            "content-type".into(),
            "application/x-www-form-urlencoded; charset=utf-8".into(),
        ),
        ("host".into(), host),
    ];
    for (k, v) in extra {
        headers.push((k.to_string(), v.to_string()));
    }
    let identity = Credentials::new(key, secret, token.map(str::to_string), None, "test").into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name("sts")
        .time(SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let signable = SignableRequest::new(
        "POST",
        url,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(BODY.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    for (k, v) in instructions.headers() {
        headers.push((k.to_string(), v.to_string()));
    }
    headers
}

async fn post_to_sts(addr: SocketAddr, headers: &[(String, String)]) -> RawResponse {
    let mut raw = "POST / HTTP/1.1\r\n".to_string();
    for (k, v) in headers {
        raw.push_str(&format!("{k}: {v}\r\n"));
    }
    raw.push_str(&format!(
        "content-length: {}\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    ));
    send_raw(addr, raw.as_bytes()).await
}

fn xml_code(body: &str) -> &str {
    body.split("<Code>")
        .nth(1)
        .and_then(|r| r.split("</Code>").next())
        .unwrap_or("")
}

#[tokio::test]
async fn the_simulated_sts_answers_who_signed_and_refuses_bad_signatures() {
    let sts = SimServer::start().await;
    sts.sim.add_identity(CI_KEY, CI_SECRET, CI_ARN).unwrap();
    sts.sim
        .add_identity_with_token(ALICE_KEY, ALICE_SECRET, Some(ALICE_TOKEN), ALICE_ARN)
        .unwrap();
    let url = format!("http://{}/", sts.addr);

    // A known identity: 200, the AWS XML document naming its ARN and account.
    let ok = post_to_sts(
        sts.addr,
        &signed_get_caller_identity(&url, CI_KEY, CI_SECRET, None, &[]),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert_eq!(ok.header("content-type"), Some("text/xml"));
    assert!(
        ok.body.starts_with(
            "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
        ),
        "{}",
        ok.body
    );
    assert!(
        ok.body.contains(&format!("<Arn>{CI_ARN}</Arn>")),
        "{}",
        ok.body
    );
    assert!(
        ok.body.contains("<Account>123456789012</Account>"),
        "{}",
        ok.body
    );
    assert!(ok.body.contains("<UserId>AIDA"), "a user's id: {}", ok.body);

    // Temporary credentials: the session token must be sent and signed.
    let session = post_to_sts(
        sts.addr,
        &signed_get_caller_identity(&url, ALICE_KEY, ALICE_SECRET, Some(ALICE_TOKEN), &[]),
    )
    .await;
    assert_eq!(session.status, 200, "{session:?}");
    assert!(
        session.body.contains(&format!("<Arn>{ALICE_ARN}</Arn>"))
            && session.body.contains(":alice@example.com</UserId>"),
        "{}",
        session.body
    );
    let no_token = post_to_sts(
        sts.addr,
        &signed_get_caller_identity(&url, ALICE_KEY, ALICE_SECRET, None, &[]),
    )
    .await;
    assert_eq!(
        (no_token.status, xml_code(&no_token.body)),
        (403, "InvalidClientTokenId"),
        "{no_token:?}"
    );

    // A wrong secret: SignatureDoesNotMatch, as an AWS Query protocol error.
    let wrong = post_to_sts(
        sts.addr,
        &signed_get_caller_identity(&url, CI_KEY, "not-the-ci-user-secret-000000001", None, &[]),
    )
    .await;
    assert_eq!(wrong.status, 403, "{wrong:?}");
    assert_eq!(
        xml_code(&wrong.body),
        "SignatureDoesNotMatch",
        "{}",
        wrong.body
    );
    assert!(
        wrong.body.contains("<Type>Sender</Type>") && wrong.body.contains("<RequestId>"),
        "{}",
        wrong.body
    );

    // An access key STS does not know: InvalidClientTokenId.
    let unknown = post_to_sts(
        sts.addr,
        &signed_get_caller_identity(&url, "AKIAUNKNOWN000000001", CI_SECRET, None, &[]),
    )
    .await;
    assert_eq!(
        (unknown.status, xml_code(&unknown.body)),
        (403, "InvalidClientTokenId"),
        "{unknown:?}"
    );

    // A header added after signing breaks the signature, as at AWS.
    let mut tampered = signed_get_caller_identity(&url, CI_KEY, CI_SECRET, None, &[]);
    tampered.push(("x-amz-security-token".into(), "added-later".into()));
    let tampered = post_to_sts(sts.addr, &tampered).await;
    assert_eq!(tampered.status, 403, "{tampered:?}");

    // Every call is counted, and none of them is a Well-Architected request.
    let calls = sts.sim.sts_calls();
    assert_eq!(calls.len(), 6, "{calls:?}");
    assert_eq!(calls[0].result.as_deref(), Ok(CI_ARN));
    assert_eq!(calls[0].access_key_id.as_deref(), Some(CI_KEY));
    assert!(calls.iter().all(|c| c.action == "GetCallerIdentity"));
    assert_eq!(
        calls[3].result.as_ref().unwrap_err(),
        "SignatureDoesNotMatch"
    );
    assert!(sts.sim.received().is_empty());
}

#[tokio::test]
async fn the_sim_command_plays_sts_for_the_identities_it_is_given() {
    let port = free_port();
    let mut sim = tokio::process::Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(["sim", "--listen", &format!("127.0.0.1:{port}")])
        .args(["--identity", &format!("{CI_KEY}:{CI_SECRET}:{CI_ARN}")])
        .env("AWS_ACCESS_KEY_ID", SERVICE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SERVICE_SECRET)
        .env_remove("AWS_SESSION_TOKEN")
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    // It says where it listens once it is ready.
    let mut stderr = tokio::io::BufReader::new(sim.stderr.take().unwrap());
    let mut ready = String::new();
    tokio::io::AsyncBufReadExt::read_line(&mut stderr, &mut ready)
        .await
        .unwrap();
    assert!(ready.contains(&format!("127.0.0.1:{port}")), "{ready}");
    let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let url = format!("http://{addr}/");
    // The ARN's own colons stay in the ARN.
    let ok = post_to_sts(
        addr,
        &signed_get_caller_identity(&url, CI_KEY, CI_SECRET, None, &[]),
    )
    .await;
    assert_eq!(ok.status, 200, "{ok:?}");
    assert!(
        ok.body.contains(&format!("<Arn>{CI_ARN}</Arn>")),
        "{}",
        ok.body
    );
    let wrong = post_to_sts(
        addr,
        &signed_get_caller_identity(&url, CI_KEY, "not-the-ci-user-secret-000000001", None, &[]),
    )
    .await;
    assert_eq!(xml_code(&wrong.body), "SignatureDoesNotMatch", "{wrong:?}");
    sim.kill().await.unwrap();

    // A malformed --identity is refused before anything listens.
    let bad = tokio::process::Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--identity",
            "AKIAONLYKEY",
        ])
        .env("AWS_ACCESS_KEY_ID", SERVICE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SERVICE_SECRET)
        .output()
        .await
        .unwrap();
    assert!(!bad.status.success());
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("ACCESS_KEY:SECRET:ARN"),
        "{}",
        String::from_utf8_lossy(&bad.stderr)
    );
}

/// A harness whose second gateway has `[identity]` enabled against the simulated STS, with the
/// identity rules in its callers file and an audit log of its own.
struct IdentityGateway {
    harness: Harness,
    gateway: Running,
    /// `http://localhost:PORT`: its host is the server id.
    url: String,
    sts: String,
}

async fn identity_gateway() -> IdentityGateway {
    let harness = Harness::start().await;
    harness
        .sim
        .add_identity_with_token(ALICE_KEY, ALICE_SECRET, Some(ALICE_TOKEN), ALICE_ARN)
        .unwrap();
    harness.sim.add_identity(CI_KEY, CI_SECRET, CI_ARN).unwrap();
    harness
        .sim
        .add_identity(MALLORY_KEY, MALLORY_SECRET, MALLORY_ARN)
        .unwrap();
    let dir = harness.dir.path();
    std::fs::write(
        dir.join("callers-identities.toml"),
        format!("{CALLERS}\n{IDENTITY_RULES}"),
    )
    .unwrap();
    std::fs::write(dir.join("identity.key"), [7u8; 32]).unwrap();
    let sts = format!("http://127.0.0.1:{}", harness.sim_addr.port());
    let table = format!(
        "\n[identity]\nenabled = true\nserver_id = \"localhost\"\nkey_files = [\"identity.key\"]\nsts_endpoint = \"{sts}\"\n"
    );
    let gateway = harness
        .start_second_gateway(|text| {
            let text = text
                .replace(
                    "file = \"callers.toml\"",
                    "file = \"callers-identities.toml\"",
                )
                .replace("file = \"audit.jsonl\"", "file = \"audit-identity.jsonl\"");
            format!("{text}{table}")
        })
        .await;
    let url = format!("http://localhost:{}", gateway.addr.port());
    IdentityGateway {
        harness,
        gateway,
        url,
        sts,
    }
}

/// An AWS config and credentials file holding the profiles `waguard credentials` signs with.
fn write_aws_files(dir: &Path) {
    std::fs::write(
        dir.join("credentials"),
        format!(
            "[alice-sso]\naws_access_key_id = {ALICE_KEY}\naws_secret_access_key = {ALICE_SECRET}\naws_session_token = {ALICE_TOKEN}\n\n\
             [ci]\naws_access_key_id = {CI_KEY}\naws_secret_access_key = {CI_SECRET}\n\n\
             [mallory]\naws_access_key_id = {MALLORY_KEY}\naws_secret_access_key = {MALLORY_SECRET}\n\n\
             [stranger]\naws_access_key_id = AKIASTRANGER00000001\naws_secret_access_key = stranger-secret-0000000000000001\n"
        ),
    )
    .unwrap();
    std::fs::write(
        dir.join("config"),
        "[profile alice-sso]\nregion = us-east-1\n\n[profile ci]\nregion = eu-west-1\n",
    )
    .unwrap();
}

/// Runs the real `waguard credentials` with only these AWS files and no AWS environment.
async fn waguard_credentials(aws_dir: &Path, args: &[&str]) -> std::process::Output {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_waguard"));
    command.arg("credentials").args(args);
    for var in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_DEFAULT_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_ENDPOINT_URL_STS",
        "AWS_CA_BUNDLE",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "RUST_LOG",
    ] {
        command.env_remove(var);
    }
    tokio::time::timeout(
        Duration::from_secs(60),
        command
            .env("AWS_CONFIG_FILE", aws_dir.join("config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", aws_dir.join("credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output(),
    )
    .await
    .expect("waguard credentials finishes")
    .unwrap()
}

/// An SDK client for the gateway with the credentials `waguard credentials` printed.
fn client_with_process_credentials(
    endpoint: &str,
    json: &serde_json::Value,
) -> aws_sdk_wellarchitected::Client {
    let credentials = Credentials::new(
        json["AccessKeyId"].as_str().unwrap(),
        json["SecretAccessKey"].as_str().unwrap(),
        Some(json["SessionToken"].as_str().unwrap().to_string()),
        None,
        "waguard-credentials",
    );
    let conf = aws_sdk_wellarchitected::Config::builder()
        .behavior_version(aws_sdk_wellarchitected::config::BehaviorVersion::latest())
        .region(aws_sdk_wellarchitected::config::Region::new("us-east-1"))
        .endpoint_url(endpoint)
        .credentials_provider(credentials)
        .retry_config(aws_sdk_wellarchitected::config::retry::RetryConfig::disabled())
        .build();
    aws_sdk_wellarchitected::Client::from_conf(conf)
}

#[tokio::test(flavor = "multi_thread")]
async fn an_sso_session_signs_in_and_shares_only_where_its_team_may() {
    let g = identity_gateway().await;
    let aws = tempfile::tempdir().unwrap();
    write_aws_files(aws.path());

    let out = waguard_credentials(
        aws.path(),
        &[
            "--gateway",
            &g.url,
            "--profile",
            "alice-sso",
            "--sts-endpoint",
            &g.sts,
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Exactly one line: the credential_process document.
    assert_eq!(stdout.lines().count(), 1, "{stdout}");
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).unwrap();
    let keys: Vec<&str> = json
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys.iter()
            .copied()
            .collect::<std::collections::BTreeSet<_>>(),
        [
            "AccessKeyId",
            "Expiration",
            "SecretAccessKey",
            "SessionToken",
            "Version"
        ]
        .into_iter()
        .collect(),
        "{json}"
    );
    assert_eq!(json["Version"], 1);
    let key = json["AccessKeyId"].as_str().unwrap();
    assert!(key.starts_with("ASIA") && key != ALICE_KEY, "{key}");
    assert!(!stdout.contains(ALICE_SECRET) && !stdout.contains(ALICE_TOKEN));
    let expires = time::OffsetDateTime::parse(
        json["Expiration"].as_str().unwrap(),
        &time::format_description::well_known::Rfc3339,
    )
    .unwrap();
    let in_an_hour = time::OffsetDateTime::now_utc() + time::Duration::hours(1);
    assert!(
        (expires - in_an_hour).abs() < time::Duration::minutes(2),
        "{expires}"
    );

    // STS was asked once, with alice's signed session token and the server id signed in.
    let calls = g.harness.sim.sts_calls();
    assert_eq!(calls.len(), 1, "{calls:?}");
    assert_eq!(calls[0].result.as_deref(), Ok(ALICE_ARN));
    assert_eq!(calls[0].headers["x-waguard-server-id"], "localhost");
    assert_eq!(calls[0].headers["x-amz-security-token"], ALICE_TOKEN);
    let authorization = calls[0].headers["authorization"].to_str().unwrap();
    assert!(
        authorization.contains("/us-east-1/sts/aws4_request")
            && authorization.contains("x-waguard-server-id"),
        "{authorization}"
    );

    // The official SDK with those credentials: policy decides for team payments.
    let client = client_with_process_credentials(&g.url, &json);
    let allowed = client
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(APPROVED_OU)
        .client_request_token("credentials-cli-allowed")
        .send()
        .await
        .unwrap();
    assert!(allowed.share_id().is_some_and(|s| !s.is_empty()));
    assert_eq!(g.harness.sim.shares(TEMPLATE_ARN).len(), 1);
    let denied = client
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(UNAPPROVED_OU)
        .client_request_token("credentials-cli-denied")
        .send()
        .await
        .unwrap_err();
    let service = denied.as_service_error().expect("a service error");
    assert_eq!(service.meta().code(), Some("AccessDeniedException"));
    assert!(
        service.meta().message().unwrap_or("").contains(ALICE_ARN),
        "the denial names the session: {service:?}"
    );
    assert_eq!(g.harness.sim.shares(TEMPLATE_ARN).len(), 1);
    // The forwarded share was re-signed with the gateway's own key, never alice's.
    let forwarded = g.harness.sim.received();
    assert_eq!(forwarded.len(), 1);
    assert_eq!(forwarded[0].signed_by.as_deref(), Some(SERVICE_KEY));
    g.gateway.shutdown().await;
    g.harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn long_term_keys_sign_in_too_with_the_region_and_server_id_given() {
    let g = identity_gateway().await;
    let aws = tempfile::tempdir().unwrap();
    write_aws_files(aws.path());
    // The ci profile's region is eu-west-1: the signature is scoped to it.
    let out = waguard_credentials(
        aws.path(),
        &[
            "--gateway",
            &format!("http://127.0.0.1:{}/", g.gateway.addr.port()),
            "--server-id",
            "localhost",
            "--profile",
            "ci",
            "--sts-endpoint",
            &g.sts,
        ],
    )
    .await;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let calls = g.harness.sim.sts_calls();
    assert_eq!(calls[0].result.as_deref(), Ok(CI_ARN));
    assert!(
        calls[0].headers["authorization"]
            .to_str()
            .unwrap()
            .contains("/eu-west-1/sts/aws4_request")
    );
    assert!(!calls[0].headers.contains_key("x-amz-security-token"));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let listed = client_with_process_credentials(&g.url, &json)
        .list_template_shares()
        .template_arn(TEMPLATE_ARN)
        .send()
        .await
        .unwrap();
    assert!(listed.template_share_summaries().is_empty());
    g.gateway.shutdown().await;
    g.harness.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refusals_exit_non_zero_with_the_gateways_error_and_no_secret() {
    let g = identity_gateway().await;
    let aws = tempfile::tempdir().unwrap();
    write_aws_files(aws.path());
    let run = |profile: &'static str, extra: Vec<String>| {
        let mut args: Vec<String> = vec![
            "--gateway".into(),
            g.url.clone(),
            "--profile".into(),
            profile.into(),
        ];
        if !extra.iter().any(|a| a == "--sts-endpoint") {
            args.extend(["--sts-endpoint".into(), g.sts.clone()]);
        }
        args.extend(extra);
        let aws = aws.path().to_path_buf();
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            waguard_credentials(&aws, &args).await
        }
    };
    let refused = |out: &std::process::Output| {
        assert!(!out.status.success());
        assert!(
            out.stdout.is_empty(),
            "{}",
            String::from_utf8_lossy(&out.stdout)
        );
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        for secret in [ALICE_SECRET, ALICE_TOKEN, MALLORY_SECRET, CI_SECRET] {
            assert!(!stderr.contains(secret), "{stderr}");
        }
        stderr
    };

    // An identity no [[identities]] rule maps: AccessDeniedException naming the ARN.
    let stderr = refused(&run("mallory", vec![]).await);
    assert!(
        stderr.contains("AccessDeniedException") && stderr.contains(MALLORY_ARN),
        "{stderr}"
    );
    // Keys STS does not know: STS's refusal, passed on.
    let stderr = refused(&run("stranger", vec![]).await);
    assert!(
        stderr.contains("AccessDeniedException") && stderr.contains("InvalidClientTokenId"),
        "{stderr}"
    );
    // Signed for another gateway.
    let stderr = refused(
        &run(
            "alice-sso",
            vec!["--server-id".into(), "other-gateway".into()],
        )
        .await,
    );
    assert!(
        stderr.contains("AccessDeniedException") && stderr.contains("x-waguard-server-id"),
        "{stderr}"
    );
    // Signed for an STS the gateway does not use.
    let stderr = refused(
        &run(
            "alice-sso",
            vec!["--sts-endpoint".into(), "http://127.0.0.1:9".into()],
        )
        .await,
    );
    assert!(stderr.contains("ValidationException"), "{stderr}");
    // A profile that does not exist: no request at all.
    let stderr = refused(&run("nobody", vec![]).await);
    assert!(stderr.contains("nobody"), "{stderr}");

    // Only mallory's and the stranger's requests reached STS; nothing reached Well-Architected.
    let calls = g.harness.sim.sts_calls();
    let results: Vec<_> = calls.iter().map(|c| c.result.clone()).collect();
    assert_eq!(
        results,
        vec![
            Ok(MALLORY_ARN.to_string()),
            Err("InvalidClientTokenId".to_string())
        ]
    );
    assert!(g.harness.sim.received().is_empty());

    // A gateway without [identity] says so.
    let out = waguard_credentials(
        aws.path(),
        &[
            "--gateway",
            &g.harness.endpoint,
            "--profile",
            "alice-sso",
            "--sts-endpoint",
            &g.sts,
        ],
    )
    .await;
    let stderr = refused(&out);
    assert!(stderr.contains("not enabled"), "{stderr}");
    g.gateway.shutdown().await;
    g.harness.stop().await;
}

#[test]
fn the_demo_prints_a_profile_that_signs_in_with_an_aws_identity() {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(["demo", "--exit", "--listen", "127.0.0.1:0"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let process = stdout
        .lines()
        .find(|l| l.trim_start().starts_with("credential_process = "))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        process.contains(" credentials --gateway http://localhost:")
            && process.contains("--profile waguard-demo-base"),
        "{process}"
    );
    let mut sections = BTreeMap::new();
    for line in stdout.lines().map(str::trim) {
        if line.starts_with('[') {
            sections.insert(line.to_string(), ());
        }
    }
    for section in [
        "[profile waguard-demo-base]",
        "[profile governed]",
        "[services waguard]",
    ] {
        assert!(sections.contains_key(section), "{section}: {stdout}");
    }
    assert!(
        stdout.contains("aws wellarchitected create-template-share --profile governed"),
        "{stdout}"
    );
    // --exit also signs in with the demo identity and shares with what it got.
    let allowed = stdout
        .lines()
        .find(|l| l.contains("--profile governed --shared-with ou-ab12-22222222: HTTP"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(allowed.contains("HTTP 200"), "{allowed}");
    let denied = stdout
        .lines()
        .find(|l| l.contains("--profile governed --shared-with ou-ab12-99999999: HTTP"))
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(
        denied.contains("HTTP 403")
            && denied.contains("assumed-role/PaymentsDev/alice@example.com"),
        "{denied}"
    );
}

/// The demo's printed AWS config, used unmodified by the real AWS CLI and boto3: they run
/// `waguard credentials` as the governed profile's credential_process and reach the gateway
/// through `services`.
#[test]
fn the_aws_cli_and_boto3_use_the_demos_governed_profile() {
    use std::io::BufRead;
    let env = python::env();
    let mut demo = std::process::Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufReader::new(demo.stdout.take().unwrap()).lines();
    let config_file = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|l| {
            l.trim()
                .strip_prefix("export AWS_CONFIG_FILE=")
                .map(str::to_string)
        })
        .expect("the demo prints its AWS config file");
    // Keep reading: a closed pipe would end the demo (EPIPE).
    std::thread::spawn(move || lines.for_each(drop));
    let aws_home = tempfile::tempdir().unwrap();
    let run = |program: &Path, args: &[&str]| {
        let mut command = std::process::Command::new(program);
        command.args(args);
        for (var, _) in std::env::vars_os() {
            if var.to_string_lossy().starts_with("AWS_") {
                command.env_remove(var);
            }
        }
        command
            .env("AWS_CONFIG_FILE", &config_file)
            .env(
                "AWS_SHARED_CREDENTIALS_FILE",
                aws_home.path().join("credentials"),
            )
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("HOME", aws_home.path())
            .env("PATH", env.path_var())
            .output()
            .unwrap()
    };
    let share = |target: &str| {
        run(
            &env.bin("aws"),
            &[
                "wellarchitected",
                "create-template-share",
                "--profile",
                "governed",
                "--template-arn",
                TEMPLATE_ARN,
                "--shared-with",
                target,
            ],
        )
    };
    let allowed = share("ou-ab12-22222222");
    let denied = share(UNAPPROVED_OU);
    let boto3 = run(
        &env.python(),
        &[
            "-c",
            &format!(
                "import boto3, botocore.exceptions\n\
                 wa = boto3.Session(profile_name='governed').client('wellarchitected')\n\
                 print(wa.create_template_share(TemplateArn='{TEMPLATE_ARN}', SharedWith='{APPROVED_OU}', ClientRequestToken='boto3-governed')['ShareId'])\n\
                 try:\n    wa.create_template_share(TemplateArn='{TEMPLATE_ARN}', SharedWith='{UNAPPROVED_OU}', ClientRequestToken='boto3-denied')\n\
                 except botocore.exceptions.ClientError as e:\n    print(e.response['Error']['Code'], e.response['Error']['Message'])\n"
            ),
        ],
    );
    let _ = std::process::Command::new("kill")
        .arg("-TERM")
        .arg(demo.id().to_string())
        .status();
    let status = demo.wait().unwrap();

    let text = |o: &std::process::Output| {
        format!(
            "{}{}",
            String::from_utf8_lossy(&o.stdout),
            String::from_utf8_lossy(&o.stderr)
        )
    };
    assert!(allowed.status.success(), "{}", text(&allowed));
    assert!(text(&allowed).contains("\"ShareId\""), "{}", text(&allowed));
    assert!(!denied.status.success(), "{}", text(&denied));
    assert!(
        text(&denied).contains("AccessDeniedException")
            && text(&denied).contains("assumed-role/PaymentsDev/alice@example.com"),
        "{}",
        text(&denied)
    );
    assert!(boto3.status.success(), "{}", text(&boto3));
    let boto3_out = String::from_utf8_lossy(&boto3.stdout);
    let mut boto3_lines = boto3_out.lines();
    assert!(
        boto3_lines.next().is_some_and(|id| id.len() >= 8),
        "{boto3_out}"
    );
    assert!(
        boto3_lines
            .next()
            .is_some_and(|l| l.starts_with("AccessDeniedException ")),
        "{boto3_out}"
    );
    assert!(status.success(), "demo exited with {status}");
}
