//! The gateway's background scan (`[scan] interval`): the scan on a timer with the policy
//! being served, its metrics, and a `share_violation` record once per violating share until
//! the share is fixed. It never touches readiness or the request path: a failing scan is
//! counted and logged, and the last complete scan's figures stay.

use std::collections::HashSet;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::watch;

use super::estate::Retry;
use super::scan::{Finding, Scan};
use crate::audit::record::{self, AuditRecord, ShareViolation};
use crate::gateway::Gateway;

/// How many of a failed round's errors are logged.
const LOGGED_ERRORS: usize = 5;

/// The background scan gives up on a throttled call sooner than `waguard scan`: the next
/// round tries again, and it shares the service's rate limits with the request path.
const BACKGROUND_RETRY: Retry = Retry {
    attempts: 3,
    first_wait: Duration::from_millis(250),
    max_wait: Duration::from_secs(2),
};

pub struct Watch {
    pub gateway: Arc<Gateway>,
    pub regions: Vec<String>,
    pub team_tag: String,
    pub interval: Duration,
}

/// A share is known by its region and id.
type Key = (String, String);

fn key(f: &Finding) -> Key {
    (f.found.region.clone(), f.found.share.share_id.clone())
}

impl Watch {
    /// Scans at once, then every `interval` after the previous scan ended, until `stopped`.
    pub async fn run(self, mut stopped: watch::Receiver<bool>) {
        let mut recorded = HashSet::new();
        loop {
            tokio::select! {
                () = self.round(&mut recorded) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
            tokio::select! {
                () = tokio::time::sleep(self.interval) => {}
                _ = stopped.wait_for(|s| *s) => return,
            }
        }
    }

    /// One scan. `recorded`: the violations already recorded (and not fixed since).
    async fn round(&self, recorded: &mut HashSet<Key>) {
        let metrics = &self.gateway.metrics;
        let organization = self.gateway.organization.as_deref();
        if organization.is_some_and(|view| view.status().snapshot_age_seconds.is_none()) {
            // Every OU rule would deny: judging now would report violations that are not.
            metrics.scan_errors.inc();
            tracing::warn!("background scan skipped: no organization snapshot yet");
            return;
        }
        let policy = self.gateway.policy.load_full();
        let scan = Scan {
            upstream: &self.gateway.upstream,
            organization,
            regions: &self.regions,
            team_tag: &self.team_tag,
            retry: BACKGROUND_RETRY,
        };
        let report = scan
            .run(
                &policy,
                &|line| tracing::debug!(progress = %line, "background scan"),
            )
            .await;
        let mut current = HashSet::new();
        for f in report.violations() {
            let k = key(f);
            if !recorded.contains(&k) {
                self.gateway
                    .audit
                    .record(AuditRecord::ShareViolation(ShareViolation {
                        time: record::now(),
                        share: f.scanned(),
                        reasons: f.reasons.clone(),
                        policy_revision: report.policy_revision.clone(),
                    }));
                tracing::warn!(
                    resource = %f.found.share.resource,
                    share_id = %f.found.share.share_id,
                    shared_with = %f.found.share.shared_with,
                    reasons = ?f.reasons,
                    "share violates policy"
                );
            }
            current.insert(k);
        }
        if !report.errors.is_empty() {
            // What this round did not see may still be there: keep what was recorded.
            recorded.extend(current);
            metrics.scan_errors.inc();
            tracing::warn!(
                errors = report.errors.len(),
                first = ?report.errors.iter().take(LOGGED_ERRORS).collect::<Vec<_>>(),
                "background scan incomplete; the share metrics keep the last complete scan"
            );
            return;
        }
        // A share fixed (or deleted) since is recorded again if it comes back.
        *recorded = current;
        for (kind, (shares, violations)) in report.counts() {
            metrics
                .shares
                .with_label_values(&[kind.as_str()])
                .set(shares as i64);
            metrics
                .share_violations
                .with_label_values(&[kind.as_str()])
                .set(violations as i64);
        }
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or_default();
        metrics.scan_last_success.set(now);
        tracing::info!(
            shares = report.findings.len(),
            violations = report.violations().count(),
            policy_revision = %report.policy_revision,
            "background scan complete"
        );
    }
}
