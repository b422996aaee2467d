//! The gateway knows the AWS Organization: where a share target sits (read through the official
//! `aws-sdk-organizations` from the simulator, which verifies signatures), what it learns on
//! demand, and how it fails closed. What the gateway resolved is visible in each decision's
//! audit record (`in_organization`, `ou_path`).

mod common;

use std::time::Duration;

use common::*;
use waguard::organization::Snapshot;

/// The demo organization: Root > payments > payments-prod > pay-prod-1 (333748161105), ...
fn demo_organization() -> Snapshot {
    let text = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/demo/organization.json"
    ))
    .unwrap();
    serde_json::from_str(&text).unwrap()
}

async fn harness(extra: &str) -> Harness {
    Harness::start_with(Options {
        organization: Some(demo_organization()),
        organizations: Some(extra.into()),
        ..Default::default()
    })
    .await
}

/// Shares the demo template with `shared_with` as team payments; returns the decision record.
async fn share(h: &Harness, shared_with: &str, token: &str) -> serde_json::Value {
    let (path, body) = share_request(shared_with, token);
    RawRequest::new("POST", &path, body)
        .send(h.gateway.addr)
        .await;
    h.audit_records()
        .await
        .into_iter()
        .find(|r| r["type"] == "decision" && r["client_request_token"] == token)
        .unwrap_or_else(|| panic!("no decision record for {token}"))
}

/// A port where every connection is closed at once: Organizations unreachable.
async fn refusing_endpoint() -> (u16, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let task = tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            drop(stream);
        }
    });
    (port, task)
}

fn path_of(record: &serde_json::Value) -> Vec<String> {
    serde_json::from_value(record["ou_path"].clone()).unwrap()
}

#[tokio::test]
async fn targets_resolve_from_the_snapshot_without_calling_organizations_per_request() {
    let h = harness("").await;
    // The startup refresh walked the tree (paginated: the simulator answers 3 items a page).
    let walk = h.sim.organization_calls();
    assert!(
        walk.contains(&"DescribeOrganization".to_string()),
        "{walk:?}"
    );
    assert!(walk.contains(&"ListRoots".to_string()));
    assert!(
        walk.iter()
            .filter(|c| *c == "ListOrganizationalUnitsForParent")
            .count()
            >= 5
    );

    let nested = share(&h, "222233334444", "nested").await;
    assert_eq!(nested["in_organization"], true);
    assert_eq!(
        path_of(&nested),
        [
            "r-ab12",
            "ou-ab12-11111111",
            "ou-ab12-22222222",
            "ou-ab12-44444444"
        ]
    );
    // Both forms of an OU name the same place; an OU's path ends with itself.
    for (form, token) in [
        ("ou-ab12-22222222", "ou-id"),
        (
            "arn:aws:organizations::111111111111:ou/o-exampleorg01/ou-ab12-22222222",
            "ou-arn",
        ),
    ] {
        let r = share(&h, form, token).await;
        assert_eq!(r["in_organization"], true, "{form}");
        assert_eq!(
            path_of(&r),
            ["r-ab12", "ou-ab12-11111111", "ou-ab12-22222222"]
        );
    }
    let org = share(
        &h,
        "arn:aws:organizations::111111111111:organization/o-exampleorg01",
        "org-arn",
    )
    .await;
    assert_eq!(org["in_organization"], true);
    assert_eq!(org["target_type"], "organization");
    // Another organization's OU is outside without asking anyone.
    let foreign = share(&h, "ou-zz99-22222222", "foreign-ou").await;
    assert_eq!(foreign["in_organization"], false);
    // None of these asked Organizations: the snapshot knew.
    assert_eq!(h.sim.organization_calls(), walk);
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(metric(&m, "waguard_organization_accounts"), Some(6.0));
    assert_eq!(
        metric(
            &m,
            "waguard_organization_lookups_total{result=\"snapshot\"}"
        ),
        Some(5.0)
    );
    let ready = h.admin_get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    assert!(ready.body.contains("\"accounts\":6"), "{}", ready.body);
    h.stop().await;
}

#[tokio::test]
async fn accounts_that_joined_or_moved_are_seen_on_demand_and_after_a_refresh() {
    let h = harness("").await;
    let walk = h.sim.organization_calls().len();
    // A new account joins payments-prod after the snapshot was taken.
    h.sim.edit_organization(|o| {
        o.accounts.insert(
            "999988887777".into(),
            waguard::organization::Node {
                name: "pay-prod-2".into(),
                parent: "ou-ab12-22222222".into(),
                status: Some("ACTIVE".into()),
            },
        );
    });
    let joined = share(&h, "999988887777", "joined").await;
    assert_eq!(joined["in_organization"], true);
    assert_eq!(
        path_of(&joined),
        ["r-ab12", "ou-ab12-11111111", "ou-ab12-22222222"]
    );
    let calls = h.sim.organization_calls()[walk..].to_vec();
    assert!(calls.contains(&"DescribeAccount".to_string()), "{calls:?}");
    assert!(calls.contains(&"ListParents".to_string()), "{calls:?}");
    // Asked once: the answer is remembered.
    let again = share(&h, "999988887777", "joined-again").await;
    assert_eq!(path_of(&again), path_of(&joined));
    assert_eq!(h.sim.organization_calls().len(), walk + calls.len());

    // An account unknown to the organization is outside, and remembered as such.
    let stranger = share(&h, "123412341234", "stranger").await;
    assert_eq!(stranger["in_organization"], false);
    let after = h.sim.organization_calls().len();
    share(&h, "123412341234", "stranger-again").await;
    assert_eq!(h.sim.organization_calls().len(), after);

    // pay-prod-1 moves to sandbox: the next refresh sees it there.
    h.sim.edit_organization(|o| {
        o.accounts.get_mut("333748161105").unwrap().parent = "ou-ab12-99999999".into();
    });
    let before = share(&h, "333748161105", "before-move").await;
    assert_eq!(
        path_of(&before),
        ["r-ab12", "ou-ab12-11111111", "ou-ab12-22222222"]
    );
    let view = h.gateway.gateway.organization.clone().unwrap();
    view.refresh().await.unwrap();
    let moved = share(&h, "333748161105", "after-move").await;
    assert_eq!(path_of(&moved), ["r-ab12", "ou-ab12-99999999"]);
    h.stop().await;
}

#[tokio::test]
async fn throttling_is_waited_out_and_an_unreachable_organizations_fails_closed() {
    let h = harness("").await;
    let view = h.gateway.gateway.organization.clone().unwrap();
    // Organizations throttles the next three calls: the refresh backs off and succeeds.
    h.sim.throttle_organizations(3);
    view.refresh().await.unwrap();
    assert!(view.status().last_error.is_none());
    h.stop().await;

    // Nothing listens where Organizations should be: the gateway starts without a snapshot,
    // says so, and leaves every target unresolved (policy fails closed on it).
    // Organizations' endpoint hangs up on every connection (the port stays ours, so no other
    // test's server can take it over).
    let (port, refusing) = refusing_endpoint().await;
    let h = harness(&format!(
        "endpoint = \"http://127.0.0.1:{port}\"\nlookup_timeout = 1"
    ))
    .await;
    let unresolved = share(&h, "333748161105", "unreachable").await;
    assert_eq!(unresolved["in_organization"], serde_json::Value::Null);
    assert_eq!(path_of(&unresolved), Vec::<String>::new());
    let ready = h.admin_get("/readyz").await;
    assert_eq!(ready.status, 503, "{}", ready.body);
    assert!(
        ready.body.contains("organization_snapshot_missing"),
        "{}",
        ready.body
    );
    let m = h.admin_get("/metrics").await.body;
    assert_eq!(
        metric(&m, "waguard_organization_snapshot_age_seconds"),
        Some(-1.0)
    );
    // Organizations comes back: the background refresh (retrying with backoff) finds it
    // without a restart, and targets resolve again.
    refusing.abort();
    let _ = refusing.await;
    let back = SimServer::start_at(&format!("127.0.0.1:{port}"), Some(SERVICE_TOKEN)).await;
    back.sim.set_organization(demo_organization());
    let mut ready = h.admin_get("/readyz").await;
    for _ in 0..200 {
        if ready.status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        ready = h.admin_get("/readyz").await;
    }
    assert_eq!(ready.status, 200, "{}", ready.body);
    let resolved = share(&h, "333748161105", "recovered").await;
    assert_eq!(resolved["in_organization"], true);
    h.stop().await;
}

#[tokio::test]
async fn the_simulated_organizations_refuses_requests_not_signed_by_the_service() {
    let h = harness("").await;
    let walk = h.sim.organization_calls();
    // The gateway's own calls verified (it has a snapshot); an unsigned one does not.
    assert_eq!(
        h.gateway
            .gateway
            .organization
            .as_ref()
            .unwrap()
            .status()
            .accounts,
        Some(6)
    );
    let unsigned = "POST / HTTP/1.1\r\nhost: localhost\r\nx-amz-target: AWSOrganizationsV20161128.DescribeOrganization\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: 2\r\nconnection: close\r\n\r\n{}";
    let resp = send_raw(h.sim_addr, unsigned.as_bytes()).await;
    assert_eq!(resp.status, 403, "{resp:?}");
    assert_eq!(h.sim.organization_calls(), walk);
    h.stop().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
}

#[path = "common/python.rs"]
mod python;

#[path = "common/moto.rs"]
mod moto;
use moto::Moto;

/// moto's Organizations with a new organization (its management account only).
trait MotoOrganizations {
    async fn with_organization() -> (Moto, aws_sdk_organizations::Client);
    fn client(&self) -> aws_sdk_organizations::Client;
}

impl MotoOrganizations for Moto {
    /// moto with a new organization (its management account only), and a client for it.
    async fn with_organization() -> (Moto, aws_sdk_organizations::Client) {
        let moto = Moto::start().await;
        let org = moto.client();
        org.create_organization()
            .feature_set(aws_sdk_organizations::types::OrganizationFeatureSet::All)
            .send()
            .await
            .unwrap();
        (moto, org)
    }

    fn client(&self) -> aws_sdk_organizations::Client {
        self.organizations_client()
    }
}

#[tokio::test]
async fn reads_an_organization_from_moto_server_an_independent_implementation() {
    let (moto, org) = Moto::with_organization().await;
    let root = org.list_roots().send().await.unwrap().roots()[0]
        .id()
        .unwrap()
        .to_string();
    let ou = |name: &'static str, parent: String| {
        let org = org.clone();
        async move {
            org.create_organizational_unit()
                .parent_id(parent)
                .name(name)
                .send()
                .await
                .unwrap()
                .organizational_unit()
                .unwrap()
                .id()
                .unwrap()
                .to_string()
        }
    };
    let payments = ou("payments", root.clone()).await;
    let prod = ou("payments-prod", payments.clone()).await;
    let created = org
        .create_account()
        .account_name("pay-prod-1")
        .email("pay-prod-1@example.com")
        .send()
        .await
        .unwrap();
    let account = created
        .create_account_status()
        .unwrap()
        .account_id()
        .unwrap()
        .to_string();
    org.move_account()
        .account_id(&account)
        .source_parent_id(&root)
        .destination_parent_id(&prod)
        .send()
        .await
        .unwrap();

    let h = Harness::start_with(Options {
        organizations: Some(format!("endpoint = \"{}\"", moto.endpoint)),
        ..Default::default()
    })
    .await;
    let placed = share(&h, &account, "moto-account").await;
    assert_eq!(placed["in_organization"], true, "{placed}");
    assert_eq!(
        path_of(&placed),
        [root.clone(), payments.clone(), prod.clone()]
    );
    let nested_ou = share(&h, &prod, "moto-ou").await;
    assert_eq!(path_of(&nested_ou), [root.clone(), payments, prod]);
    // An account moto has never heard of: outside the organization.
    let stranger = share(&h, "123412341234", "moto-stranger").await;
    assert_eq!(stranger["in_organization"], false, "{stranger}");
    let ready = h.admin_get("/readyz").await;
    assert_eq!(ready.status, 200, "{}", ready.body);
    h.stop().await;
}

/// What an SDK caller sees for CreateTemplateShare: Ok(ShareId) or Err(the error message).
async fn sdk_share(
    client: &aws_sdk_wellarchitected::Client,
    shared_with: &str,
) -> Result<String, String> {
    use aws_sdk_wellarchitected::error::ProvideErrorMetadata;
    client
        .create_template_share()
        .template_arn(TEMPLATE_ARN)
        .shared_with(shared_with)
        .client_request_token(uuid::Uuid::new_v4().to_string())
        .send()
        .await
        .map(|out| out.share_id().unwrap_or_default().to_string())
        .map_err(|e| {
            assert_eq!(e.code(), Some("AccessDeniedException"), "{e:?}");
            e.message().unwrap_or_default().to_string()
        })
}

#[tokio::test]
async fn approved_ous_cover_everything_below_them_end_to_end() {
    let h = harness("").await;
    let payments = h.payments();
    let platform = h.client(PLATFORM_KEY, PLATFORM_SECRET);

    // payments-prod-eu sits under payments-prod, which payments may share with.
    assert!(sdk_share(&payments, "222233334444").await.is_ok());
    // A child OU of an approved OU, named by its ARN.
    assert!(
        sdk_share(
            &payments,
            "arn:aws:organizations::111111111111:ou/o-exampleorg01/ou-ab12-44444444"
        )
        .await
        .is_ok()
    );
    // Outside the organization and not listed: denied.
    let outside = sdk_share(&payments, "123412341234").await.unwrap_err();
    assert!(outside.contains("123412341234"), "{outside}");
    // Suspended: never.
    let suspended = sdk_share(&payments, "555566667777").await.unwrap_err();
    assert!(
        suspended.to_lowercase().contains("suspended"),
        "{suspended}"
    );

    // platform has no OU in this organization: the reason names where the account sits.
    let elsewhere = sdk_share(&platform, "333748161105").await.unwrap_err();
    assert!(
        elsewhere.contains("Root/payments/payments-prod"),
        "{elsewhere}"
    );
    // An account the team lists is approved as it is.
    assert!(sdk_share(&platform, "444455556666").await.is_ok());

    // pay-prod-1 moves out of payments to the sandbox OU: after the refresh, platform's reason
    // names the new place.
    h.sim.edit_organization(|o| {
        o.accounts.get_mut("333748161105").unwrap().parent = "ou-ab12-99999999".into();
    });
    h.gateway
        .gateway
        .organization
        .clone()
        .unwrap()
        .refresh()
        .await
        .unwrap();
    let moved = sdk_share(&platform, "333748161105").await.unwrap_err();
    assert!(moved.contains("Root/sandbox"), "{moved}");
    h.stop().await;
}

#[tokio::test]
async fn an_unresolved_target_is_denied_with_the_lookup_failure_unless_listed_exactly() {
    let (port, _refusing) = refusing_endpoint().await;
    let h = harness(&format!(
        "endpoint = \"http://127.0.0.1:{port}\"\nlookup_timeout = 1"
    ))
    .await;
    let payments = h.payments();
    // Only an OU (or organization) rule could approve pay-prod-1: fail closed, and say why.
    let denied = sdk_share(&payments, "333748161105").await.unwrap_err();
    assert!(denied.contains("lookup"), "{denied}");
    // Exact list matches still decide.
    assert!(sdk_share(&payments, "111122223333").await.is_ok());
    assert!(sdk_share(&payments, "ou-ab12-22222222").await.is_ok());
    h.stop().await;
}

#[tokio::test]
async fn the_organization_is_read_with_an_assumed_role_when_role_arn_is_set() {
    // moto plays both STS (AssumeRole) and Organizations; the gateway runs as a process so
    // that STS's endpoint can be set the standard way (AWS_ENDPOINT_URL_STS).
    let (moto, _org) = Moto::with_organization().await;
    let role = "arn:aws:iam::123456789012:role/waguard-organizations-read";
    let with_sts_at = |sts: &str, dir: &std::path::Path| {
        let config = write_process_config(dir, "http://127.0.0.1:9", &dir.join("audit.jsonl"), "");
        let mut text = std::fs::read_to_string(&config).unwrap();
        text.push_str(&format!(
            "\n[organizations]\nenabled = true\nendpoint = \"{}\"\nrole_arn = \"{role}\"\nlookup_timeout = 1\n",
            moto.endpoint
        ));
        std::fs::write(&config, text).unwrap();
        (config, sts.to_string())
    };
    // STS answers: the role is assumed and the organization read with its credentials.
    let dir = tempfile::tempdir().unwrap();
    let (config, sts) = with_sts_at(&moto.endpoint, dir.path());
    let gw = GatewayProcess::start_with_env(&config, &[("AWS_ENDPOINT_URL_STS", &sts)]).await;
    let (status, body) = gw.admin_get("/readyz").await;
    assert!(body.contains("\"accounts\":1"), "{status} {body}");
    drop(gw);
    // STS hangs up: no role, so no snapshot, although Organizations itself answers.
    let (port, _refusing) = refusing_endpoint().await;
    let dir = tempfile::tempdir().unwrap();
    let (config, sts) = with_sts_at(&format!("http://127.0.0.1:{port}"), dir.path());
    let gw = GatewayProcess::start_with_env(&config, &[("AWS_ENDPOINT_URL_STS", &sts)]).await;
    let (status, body) = gw.admin_get("/readyz").await;
    assert_eq!(status, 503, "{body}");
    assert!(body.contains("organization_snapshot_missing"), "{body}");
}

#[tokio::test]
async fn a_caller_naming_many_unknown_accounts_cannot_flood_organizations() {
    let h = harness("lookup_timeout = 5").await;
    // Each Organizations call now takes 100 ms; twelve requests name twelve accounts the
    // snapshot does not hold, all at once.
    h.sim.delay_organizations(Duration::from_millis(100));
    let before = h.sim.organization_calls().len();
    let requests: Vec<_> = (0..12)
        .map(|i| {
            let addr = h.gateway.addr;
            tokio::spawn(async move {
                let (path, body) =
                    share_request(&format!("1234123412{i:02}"), &format!("flood-{i}"));
                RawRequest::new("POST", &path, body).send(addr).await
            })
        })
        .collect();
    for r in requests {
        assert_eq!(r.await.unwrap().status, 403);
    }
    // Every account was asked about, but never more than two lookups at a time.
    assert!(h.sim.organization_calls().len() >= before + 12);
    assert!(
        h.sim.most_concurrent_organization_calls() <= 2,
        "{} Organizations calls at once",
        h.sim.most_concurrent_organization_calls()
    );
    h.stop().await;
}
