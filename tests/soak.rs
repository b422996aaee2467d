//! Soak: thousands of requests from many connections, a mix of allowed, denied, invalid and
//! unauthenticated. Every answer is right, every decision is audited exactly once, and nothing
//! leaks: no in-flight requests left, connections closed, memory flat.

mod common;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use aws_sdk_wellarchitected::error::ProvideErrorMetadata;
use common::*;

const WORKERS: usize = 16;
const PER_WORKER: usize = 150;

fn open_fds() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|d| d.count())
        .unwrap_or(0)
}

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap_or(0)
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Kind {
    Allowed,
    Denied,
    Invalid,
    Unauthenticated,
}

/// One round of load; returns how many requests of each kind were sent.
async fn round(h: &Arc<Harness>, round_no: usize) -> HashMap<Kind, usize> {
    let mut tasks = Vec::new();
    for w in 0..WORKERS {
        let h = h.clone();
        tasks.push(tokio::spawn(async move {
            // Each worker has its own SDK clients (own connection pools).
            let good = h.payments();
            let bad = h.client(PAYMENTS_KEY, "not-the-secret-000001");
            let mut sent: HashMap<Kind, usize> = HashMap::new();
            for i in 0..PER_WORKER {
                let token = format!("soak-{round_no}-{w}-{i}");
                let kind = [
                    Kind::Allowed,
                    Kind::Denied,
                    Kind::Invalid,
                    Kind::Unauthenticated,
                ][(w + i) % 4];
                *sent.entry(kind).or_default() += 1;
                match kind {
                    Kind::Allowed => {
                        // The same approved OU every time: the first share is created, the rest
                        // are the upstream's ConflictException; both mean "allowed".
                        match good
                            .create_template_share()
                            .template_arn(TEMPLATE_ARN)
                            .shared_with(APPROVED_OU)
                            .client_request_token(&token)
                            .send()
                            .await
                        {
                            Ok(out) => assert!(out.share_id().is_some()),
                            Err(e) => assert!(e.into_service_error().is_conflict_exception()),
                        }
                    }
                    Kind::Denied => {
                        let e = good
                            .create_template_share()
                            .template_arn(TEMPLATE_ARN)
                            .shared_with(UNAPPROVED_OU)
                            .client_request_token(&token)
                            .send()
                            .await
                            .unwrap_err();
                        assert!(e.into_service_error().is_access_denied_exception());
                    }
                    Kind::Invalid => {
                        let e = good
                            .create_template_share()
                            .template_arn(TEMPLATE_ARN)
                            .shared_with("short")
                            .client_request_token(&token)
                            .send()
                            .await
                            .unwrap_err();
                        assert_eq!(e.code(), Some("ValidationException"));
                    }
                    Kind::Unauthenticated => {
                        let e = bad
                            .list_template_shares()
                            .template_arn(TEMPLATE_ARN)
                            .send()
                            .await
                            .unwrap_err();
                        assert_eq!(e.code(), Some("InvalidSignatureException"));
                    }
                }
            }
            sent
        }));
    }
    let mut total: HashMap<Kind, usize> = HashMap::new();
    for t in tasks {
        for (k, n) in t.await.unwrap() {
            *total.entry(k).or_default() += n;
        }
    }
    total
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn thousands_of_mixed_requests_all_answered_audited_once_and_nothing_leaks() {
    let h = Arc::new(Harness::start().await);
    let first = round(&h, 0).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let rss_after_first = rss_kib();
    // Pooled keep-alive connections to the upstream stay open (bounded by concurrency); what
    // must not happen is growth from one round to the next.
    let fds_after_first = open_fds();
    let second = round(&h, 1).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_after_second = rss_kib();

    let sent = |k: Kind| first.get(&k).copied().unwrap_or(0) + second.get(&k).copied().unwrap_or(0);
    assert_eq!(
        sent(Kind::Allowed)
            + sent(Kind::Denied)
            + sent(Kind::Invalid)
            + sent(Kind::Unauthenticated),
        2 * WORKERS * PER_WORKER
    );

    let records = h.audit_records().await;
    let mut per_token: HashMap<String, usize> = HashMap::new();
    let (mut invalid, mut auth_failures) = (0, 0);
    for r in &records {
        match (r["type"].as_str(), r["decision"].as_str()) {
            (Some("decision"), Some("allow" | "deny")) => {
                *per_token
                    .entry(r["client_request_token"].as_str().unwrap().to_string())
                    .or_default() += 1
            }
            (Some("decision"), Some("invalid")) => invalid += 1,
            (Some("auth_failures"), _) => auth_failures += r["total"].as_u64().unwrap() as usize,
            _ => {}
        }
    }
    assert_eq!(
        per_token.len(),
        sent(Kind::Allowed) + sent(Kind::Denied),
        "every allowed and denied request has a decision record"
    );
    assert!(
        per_token.values().all(|n| *n == 1),
        "a decision was recorded more than once"
    );
    assert_eq!(invalid, sent(Kind::Invalid));
    assert_eq!(auth_failures, sent(Kind::Unauthenticated));
    let forwarded = h.sim.received().len();
    assert_eq!(
        forwarded,
        sent(Kind::Allowed),
        "exactly the allowed requests reached the upstream"
    );
    assert_eq!(
        records.iter().filter(|r| r["type"] == "outcome").count(),
        forwarded
    );

    let m = h.admin_get("/metrics").await.body;
    assert_eq!(metric(&m, "waguard_in_flight_requests"), Some(0.0));
    assert_eq!(
        metric(
            &m,
            "waguard_requests_total{decision=\"deny\",operation=\"CreateTemplateShare\"}"
        ),
        Some(sent(Kind::Denied) as f64)
    );

    // Each round's SDK clients are dropped with their connections (both ends live in this
    // process). The gateway's pool of idle upstream connections may have grown in round 2, up
    // to one connection per concurrent worker (two descriptors each, the simulated upstream
    // being in this process too); a leak per request would be hundreds.
    let allowed_growth = 2 * WORKERS + 4;
    let mut fds_after = open_fds();
    for _ in 0..20 {
        if fds_after <= fds_after_first + allowed_growth {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
        fds_after = open_fds();
    }
    assert!(
        fds_after <= fds_after_first + allowed_growth,
        "file descriptors leaked: {fds_after_first} after round 1, {fds_after} after round 2"
    );
    // The second round (as many requests as the first) must not grow memory noticeably. The
    // simulated upstream keeps every request it received, about 1 KiB each.
    let growth = rss_after_second.saturating_sub(rss_after_first);
    assert!(
        growth < 16 * 1024,
        "RSS grew by {growth} KiB over {} requests",
        WORKERS * PER_WORKER
    );
    println!(
        "requests: {}, RSS after round 1: {rss_after_first} KiB, after round 2: {rss_after_second} KiB, fds {fds_after_first} -> {fds_after}",
        2 * WORKERS * PER_WORKER
    );
    h.stop().await;
}
