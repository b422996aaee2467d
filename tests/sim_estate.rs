//! The simulated Well-Architected serves an estate (review templates, workloads, custom lenses,
//! profiles and their shares, seeded from TOML) to the official AWS SDK: its paginators, typed
//! errors and standard retry. The SDK deserialises with shapes derived from the same service
//! model as botocore's, so these tests prove the simulator speaks the real shapes.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aws_credential_types::Credentials;
use aws_sdk_wellarchitected::Client;
use aws_sdk_wellarchitected::config::retry::RetryConfig;
use aws_sdk_wellarchitected::config::{BehaviorVersion, Region};
use aws_sdk_wellarchitected::types::{LensType, PermissionType, ProfileOwnerType};
use common::*;
use waguard::drift::ResourceType;
use waguard::sim::{Seed, SimShare};

const T1: &str = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/a0000000000000000000000000000001";
const T1_REJECTED_SHARE: &str = "5a000000000000000000000000000001";
const W1: &str =
    "arn:aws:wellarchitected:us-east-1:123456789012:workload/b0000000000000000000000000000001";
const W1_ID: &str = "b0000000000000000000000000000001";
const L1: &str =
    "arn:aws:wellarchitected:us-east-1:123456789012:lens/c0000000000000000000000000000001";
const P1: &str =
    "arn:aws:wellarchitected:us-east-1:123456789012:profile/d0000000000000000000000000000001";

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/estate.toml")
}

/// A simulator holding the demo template and the fixture estate.
async fn seeded() -> SimServer {
    let s = SimServer::start().await;
    s.sim.seed(&Seed::load(&fixture()).unwrap()).unwrap();
    s
}

/// The official SDK, signing with the sim's service key for `region`; one request per call.
fn client(s: &SimServer, region: &str) -> Client {
    client_with_retry(s, region, RetryConfig::disabled())
}

fn client_with_retry(s: &SimServer, region: &str, retry: RetryConfig) -> Client {
    let conf = aws_sdk_wellarchitected::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(region.to_string()))
        .endpoint_url(format!("http://{}", s.addr))
        .credentials_provider(Credentials::new(
            SERVICE_KEY,
            SERVICE_SECRET,
            None,
            None,
            "sim-service",
        ))
        .retry_config(retry)
        .build();
    Client::from_conf(conf)
}

fn region_of(arn: &str) -> &str {
    arn.split(':').nth(3).unwrap()
}

/// What the SDK lists in its client's region: every resource (type, ARN) with its tags, and
/// every share of each, sorted as `Sim::estate` sorts.
struct Listed {
    resources: BTreeMap<(ResourceType, String), BTreeMap<String, String>>,
    shares: Vec<SimShare>,
}

async fn list_everything(c: &Client) -> Listed {
    let mut resources = BTreeMap::new();
    let mut shares = Vec::new();
    let share =
        |t, arn: &str, id: Option<&str>, with: Option<&str>, status: Option<&str>| SimShare {
            resource_type: t,
            resource: arn.to_string(),
            share_id: id.unwrap().to_string(),
            shared_with: with.unwrap().to_string(),
            status: status.unwrap().to_string(),
            permission_type: None,
        };

    let mut pages = c.list_review_templates().into_paginator().send();
    while let Some(page) = pages.next().await {
        for t in page.unwrap().review_templates() {
            let arn = t.template_arn().unwrap().to_string();
            assert_eq!(t.owner(), Some("123456789012"));
            let mut shares_pages = c
                .list_template_shares()
                .template_arn(&arn)
                .into_paginator()
                .send();
            while let Some(p) = shares_pages.next().await {
                let p = p.unwrap();
                assert_eq!(p.template_arn(), Some(arn.as_str()));
                for s in p.template_share_summaries() {
                    let status = s.status().map(|x| x.as_str());
                    shares.push(share(
                        ResourceType::Template,
                        &arn,
                        s.share_id(),
                        s.shared_with(),
                        status,
                    ));
                }
            }
            resources.insert((ResourceType::Template, arn), BTreeMap::new());
        }
    }

    let mut pages = c.list_workloads().into_paginator().send();
    while let Some(page) = pages.next().await {
        for w in page.unwrap().workload_summaries() {
            let arn = w.workload_arn().unwrap().to_string();
            let id = w.workload_id().unwrap();
            assert!(arn.ends_with(&format!("/{id}")), "{arn} {id}");
            let mut shares_pages = c
                .list_workload_shares()
                .workload_id(id)
                .into_paginator()
                .send();
            while let Some(p) = shares_pages.next().await {
                let p = p.unwrap();
                assert_eq!(p.workload_id(), Some(id));
                for s in p.workload_share_summaries() {
                    let status = s.status().map(|x| x.as_str());
                    let mut one = share(
                        ResourceType::Workload,
                        &arn,
                        s.share_id(),
                        s.shared_with(),
                        status,
                    );
                    one.permission_type = s.permission_type().map(|p| p.as_str().to_string());
                    shares.push(one);
                }
            }
            resources.insert((ResourceType::Workload, arn), BTreeMap::new());
        }
    }

    let mut pages = c
        .list_lenses()
        .lens_type(LensType::CustomSelf)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for l in page.unwrap().lens_summaries() {
            let arn = l.lens_arn().unwrap().to_string();
            assert_eq!(l.lens_alias(), Some(arn.as_str()));
            assert_eq!(l.lens_type(), Some(&LensType::CustomSelf));
            let mut shares_pages = c
                .list_lens_shares()
                .lens_alias(&arn)
                .into_paginator()
                .send();
            while let Some(p) = shares_pages.next().await {
                for s in p.unwrap().lens_share_summaries() {
                    let status = s.status().map(|x| x.as_str());
                    shares.push(share(
                        ResourceType::Lens,
                        &arn,
                        s.share_id(),
                        s.shared_with(),
                        status,
                    ));
                }
            }
            resources.insert((ResourceType::Lens, arn), BTreeMap::new());
        }
    }

    let mut pages = c
        .list_profiles()
        .profile_owner_type(ProfileOwnerType::SelfValue)
        .into_paginator()
        .send();
    while let Some(page) = pages.next().await {
        for p in page.unwrap().profile_summaries() {
            let arn = p.profile_arn().unwrap().to_string();
            let mut shares_pages = c
                .list_profile_shares()
                .profile_arn(&arn)
                .into_paginator()
                .send();
            while let Some(page) = shares_pages.next().await {
                for s in page.unwrap().profile_share_summaries() {
                    let status = s.status().map(|x| x.as_str());
                    shares.push(share(
                        ResourceType::Profile,
                        &arn,
                        s.share_id(),
                        s.shared_with(),
                        status,
                    ));
                }
            }
            resources.insert((ResourceType::Profile, arn), BTreeMap::new());
        }
    }

    for ((_, arn), tags) in resources.iter_mut() {
        let out = c
            .list_tags_for_resource()
            .workload_arn(arn)
            .send()
            .await
            .unwrap();
        if let Some(t) = out.tags() {
            tags.extend(t.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
    }
    shares.sort_by(|a, b| {
        (a.resource_type, &a.resource, &a.shared_with).cmp(&(
            b.resource_type,
            &b.resource,
            &b.shared_with,
        ))
    });
    Listed { resources, shares }
}

/// The seeded resources of one region, with their tags.
fn seeded_resources(
    seed: &Seed,
    region: &str,
) -> BTreeMap<(ResourceType, String), BTreeMap<String, String>> {
    seed.resources
        .iter()
        .filter(|r| region_of(&r.arn) == region)
        .map(|r| ((r.resource_type, r.arn.clone()), r.tags.clone()))
        .collect()
}

fn calls_of(s: &SimServer, operation: &str) -> usize {
    s.sim
        .well_architected_calls()
        .iter()
        .filter(|c| *c == operation)
        .count()
}

#[tokio::test]
async fn sdk_paginators_list_every_resource_and_share_of_the_region_over_several_pages() {
    let s = seeded().await;
    s.sim.set_page_size(2);
    let seed = Seed::load(&fixture()).unwrap();

    let listed = list_everything(&client(&s, "us-east-1")).await;
    // Every seeded us-east-1 resource (and the demo template the sim starts with), with its
    // tags; nothing from eu-west-1.
    let mut expected = seeded_resources(&seed, "us-east-1");
    expected.insert(
        (ResourceType::Template, TEMPLATE_ARN.to_string()),
        BTreeMap::new(),
    );
    assert_eq!(listed.resources, expected);
    // Every share, exactly as the sim holds it.
    let in_region = |region: &str| -> Vec<SimShare> {
        s.sim
            .estate()
            .into_iter()
            .filter(|x| region_of(&x.resource) == region)
            .collect()
    };
    assert_eq!(listed.shares, in_region("us-east-1"));
    // ...and as seeded: status ACCEPTED and (workloads) READONLY unless the seed says otherwise.
    let mut seeded_shares = 0;
    for r in seed
        .resources
        .iter()
        .filter(|r| region_of(&r.arn) == "us-east-1")
    {
        for want in &r.shares {
            seeded_shares += 1;
            let got = listed
                .shares
                .iter()
                .find(|x| x.resource == r.arn && x.shared_with == want.shared_with)
                .unwrap_or_else(|| panic!("{} {} not listed", r.arn, want.shared_with));
            assert_eq!(got.status, want.status.as_str());
            let permission = (r.resource_type == ResourceType::Workload).then(|| {
                want.permission_type
                    .map_or("READONLY", |p| p.as_str())
                    .to_string()
            });
            assert_eq!(got.permission_type, permission, "{}", got.shared_with);
            if let Some(id) = &want.share_id {
                assert_eq!(&got.share_id, id);
            }
        }
    }
    assert_eq!(listed.shares.len(), seeded_shares);
    assert!(listed.shares.iter().any(|x| x.resource == W1
        && x.shared_with == "444455556666"
        && x.status == "PENDING"
        && x.permission_type.as_deref() == Some("CONTRIBUTOR")));

    // Page size 2: every list took more than one page somewhere.
    for op in [
        "ListReviewTemplates",
        "ListWorkloads",
        "ListLenses",
        "ListProfiles",
    ] {
        assert!(calls_of(&s, op) >= 2, "{op} was not paged");
    }
    for (op, t) in [
        ("ListTemplateShares", ResourceType::Template),
        ("ListWorkloadShares", ResourceType::Workload),
        ("ListLensShares", ResourceType::Lens),
        ("ListProfileShares", ResourceType::Profile),
    ] {
        let resources = expected.keys().filter(|(rt, _)| *rt == t).count();
        assert!(calls_of(&s, op) > resources, "{op} was not paged");
    }

    // The other region sees its own resources only.
    let eu = list_everything(&client(&s, "eu-west-1")).await;
    assert_eq!(eu.resources, seeded_resources(&seed, "eu-west-1"));
    assert_eq!(eu.resources.len(), 4);
    assert_eq!(eu.shares, in_region("eu-west-1"));
    assert_eq!(eu.shares.len(), 3);
    // A us-east-1 resource is not found from eu-west-1.
    let err = client(&s, "eu-west-1")
        .list_template_shares()
        .template_arn(T1)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}

#[tokio::test]
async fn list_filters_narrow_what_is_listed() {
    let s = seeded().await;
    let c = client(&s, "us-east-1");
    let official = c
        .list_lenses()
        .lens_type(LensType::AwsOfficial)
        .send()
        .await
        .unwrap();
    assert!(official.lens_summaries().is_empty());
    let shared = c
        .list_profiles()
        .profile_owner_type(ProfileOwnerType::Shared)
        .send()
        .await
        .unwrap();
    assert!(shared.profile_summaries().is_empty());
    let pending = c
        .list_template_shares()
        .template_arn(T1)
        .status(aws_sdk_wellarchitected::types::ShareStatus::Pending)
        .send()
        .await
        .unwrap();
    let with: Vec<_> = pending
        .template_share_summaries()
        .iter()
        .map(|x| x.shared_with().unwrap())
        .collect();
    assert_eq!(with, ["111122223333"]);
    let named = c
        .list_workloads()
        .workload_name_prefix("ledg")
        .send()
        .await
        .unwrap();
    assert_eq!(named.workload_summaries().len(), 1);
    assert_eq!(
        named.workload_summaries()[0].workload_name(),
        Some("ledger")
    );
}

#[tokio::test]
async fn sdk_deletes_remove_exactly_the_named_share_and_a_second_delete_is_not_found() {
    let s = seeded().await;
    let c = client(&s, "us-east-1");
    let before = s.sim.estate();
    let id_of = |arn: &str, with: &str| {
        before
            .iter()
            .find(|x| x.resource == arn && x.shared_with == with)
            .unwrap()
            .share_id
            .clone()
    };
    let workload_share = id_of(W1, "444455556666");
    let lens_share = id_of(L1, "222233334444");
    let profile_share = id_of(P1, "ou-ab12-99999999");

    for round in 0..2 {
        let template = c
            .delete_template_share()
            .template_arn(T1)
            .share_id(T1_REJECTED_SHARE)
            .send()
            .await;
        let workload = c
            .delete_workload_share()
            .workload_id(W1_ID)
            .share_id(&workload_share)
            .send()
            .await;
        let lens = c
            .delete_lens_share()
            .lens_alias(L1)
            .share_id(&lens_share)
            .send()
            .await;
        let profile = c
            .delete_profile_share()
            .profile_arn(P1)
            .share_id(&profile_share)
            .send()
            .await;
        if round == 0 {
            template.unwrap();
            workload.unwrap();
            lens.unwrap();
            profile.unwrap();
        } else {
            let gone = |e: bool, what: &str| assert!(e, "second delete of the {what} share");
            gone(
                template
                    .unwrap_err()
                    .into_service_error()
                    .is_resource_not_found_exception(),
                "template",
            );
            gone(
                workload
                    .unwrap_err()
                    .into_service_error()
                    .is_resource_not_found_exception(),
                "workload",
            );
            gone(
                lens.unwrap_err()
                    .into_service_error()
                    .is_resource_not_found_exception(),
                "lens",
            );
            gone(
                profile
                    .unwrap_err()
                    .into_service_error()
                    .is_resource_not_found_exception(),
                "profile",
            );
        }
    }
    let removed: BTreeSet<&str> = [
        T1_REJECTED_SHARE,
        workload_share.as_str(),
        lens_share.as_str(),
        profile_share.as_str(),
    ]
    .into();
    let expected: Vec<SimShare> = before
        .iter()
        .filter(|x| !removed.contains(x.share_id.as_str()))
        .cloned()
        .collect();
    assert_eq!(s.sim.estate(), expected);
    assert_eq!(expected.len(), before.len() - 4);
}

#[tokio::test]
async fn sdk_creates_shares_of_every_type_idempotently_as_pending() {
    let s = seeded().await;
    let c = client(&s, "us-east-1");
    let w = c
        .create_workload_share()
        .workload_id(W1_ID)
        .shared_with("999988887777")
        .permission_type(PermissionType::Contributor)
        .client_request_token("create-w")
        .send()
        .await
        .unwrap();
    assert_eq!(w.workload_id(), Some(W1_ID));
    let again = c
        .create_workload_share()
        .workload_id(W1_ID)
        .shared_with("999988887777")
        .permission_type(PermissionType::Contributor)
        .client_request_token("create-w")
        .send()
        .await
        .unwrap();
    assert_eq!(again.share_id(), w.share_id());
    let reused = c
        .create_workload_share()
        .workload_id(W1_ID)
        .shared_with("999988887776")
        .permission_type(PermissionType::Readonly)
        .client_request_token("create-w")
        .send()
        .await
        .unwrap_err();
    assert!(reused.into_service_error().is_conflict_exception());
    let already = c
        .create_lens_share()
        .lens_alias(L1)
        .shared_with("ou-ab12-11111111")
        .send()
        .await
        .unwrap_err();
    assert!(already.into_service_error().is_conflict_exception());
    let lens = c
        .create_lens_share()
        .lens_alias(L1)
        .shared_with("999988887777")
        .send()
        .await
        .unwrap();
    let profile = c
        .create_profile_share()
        .profile_arn(P1)
        .shared_with("999988887777")
        .send()
        .await
        .unwrap();
    assert_eq!(profile.profile_arn(), Some(P1));

    let estate = s.sim.estate();
    let made = |arn: &str| {
        estate
            .iter()
            .find(|x| x.resource == arn && x.shared_with == "999988887777")
            .unwrap()
            .clone()
    };
    let ws = made(W1);
    assert_eq!(Some(ws.share_id.as_str()), w.share_id());
    assert_eq!(ws.status, "PENDING");
    assert_eq!(ws.permission_type.as_deref(), Some("CONTRIBUTOR"));
    assert_eq!(Some(made(L1).share_id.as_str()), lens.share_id());
    assert_eq!(made(P1).status, "PENDING");
    assert_eq!(made(P1).permission_type, None);
}

#[tokio::test]
async fn a_throttled_call_is_retried_by_the_sdks_standard_retry_and_succeeds() {
    let s = seeded().await;
    let retry = RetryConfig::standard()
        .with_max_attempts(3)
        .with_initial_backoff(Duration::from_millis(10));
    let c = client_with_retry(&s, "us-east-1", retry);
    s.sim.throttle_well_architected(1);
    let listed = c.list_workloads().send().await.unwrap();
    assert_eq!(listed.workload_summaries().len(), 3);
    assert_eq!(s.sim.well_architected_throttled(), 1);
    assert_eq!(
        s.sim.well_architected_calls(),
        ["ListWorkloads", "ListWorkloads"]
    );

    // Without retries the throttling is the SDK's typed error.
    s.sim.throttle_well_architected(1);
    let err = client(&s, "us-east-1")
        .list_review_templates()
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_throttling_exception());
    assert_eq!(s.sim.well_architected_throttled(), 2);
}

#[tokio::test]
async fn a_bad_next_token_is_a_validation_exception() {
    let s = seeded().await;
    let c = client(&s, "us-east-1");
    let err = c
        .list_template_shares()
        .template_arn(T1)
        .next_token("not-a-token-we-issued")
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_validation_exception());
    // In a JSON body (ListWorkloads) too, and a token of another operation.
    s.sim.set_page_size(1);
    let first = c.list_review_templates().send().await.unwrap();
    let token = first.next_token().unwrap();
    let err = c
        .list_workloads()
        .next_token(token)
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_validation_exception());
}

#[tokio::test]
async fn tags_of_an_unknown_resource_are_not_found() {
    let s = seeded().await;
    let err = client(&s, "us-east-1")
        .list_tags_for_resource()
        .workload_arn(W1.replace("b000", "f000"))
        .send()
        .await
        .unwrap_err();
    assert!(err.into_service_error().is_resource_not_found_exception());
}

/// Waits up to 20 s for a child to exit; kills it (and fails) if it does not.
fn exit_of(mut child: std::process::Child) -> std::process::Output {
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > Duration::from_secs(20) {
            child.kill().unwrap();
            panic!("waguard sim did not exit");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

fn sim_command(seed: &Path, port: u16) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_waguard"));
    c.args(["sim", "--listen", &format!("127.0.0.1:{port}"), "--seed"])
        .arg(seed)
        .env("AWS_ACCESS_KEY_ID", SERVICE_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SERVICE_SECRET)
        .env_remove("AWS_SESSION_TOKEN")
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    c
}

#[test]
fn the_sim_command_refuses_a_bad_seed_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    for (name, text, reason) in [
        (
            "wrong-type.toml",
            format!("[[resources]]\ntype = \"workload\"\narn = \"{T1}\"\n"),
            "not a workload ARN",
        ),
        (
            "unknown-key.toml",
            format!("[[resources]]\ntype = \"review-template\"\narn = \"{T1}\"\nowner = \"me\"\n"),
            "owner",
        ),
        ("missing.toml", String::new(), "No such file"),
    ] {
        let path = dir.path().join(name);
        if !text.is_empty() {
            std::fs::write(&path, text).unwrap();
        }
        let out = exit_of(sim_command(&path, free_port()).spawn().unwrap());
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{name}: {stderr}");
        assert!(
            stderr.contains(&path.display().to_string()) && stderr.contains(reason),
            "{name}: {stderr}"
        );
    }
}

#[tokio::test]
async fn the_sim_command_serves_a_seed_file() {
    let port = free_port();
    let mut child = sim_command(&fixture(), port).spawn().unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let ready = tokio::task::spawn_blocking(move || lines.next())
        .await
        .unwrap();
    let ready = ready.unwrap().unwrap();
    assert!(ready.contains(&format!("127.0.0.1:{port}")), "{ready}");
    let conf = aws_sdk_wellarchitected::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("eu-west-1"))
        .endpoint_url(format!("http://127.0.0.1:{port}"))
        .credentials_provider(Credentials::new(
            SERVICE_KEY,
            SERVICE_SECRET,
            None,
            None,
            "sim-service",
        ))
        .retry_config(RetryConfig::disabled())
        .build();
    let profiles = Client::from_conf(conf)
        .list_profiles()
        .send()
        .await
        .map(|o| {
            o.profile_summaries()
                .iter()
                .map(|p| p.profile_name().unwrap_or_default().to_string())
                .collect::<Vec<_>>()
        });
    child.kill().unwrap();
    child.wait().unwrap();
    assert_eq!(profiles.unwrap(), ["EU profile"]);
}
