//! One scan: every share in the given regions judged with today's policy; the report, and
//! revoking what policy does not allow.

use std::collections::BTreeMap;

use serde_json::json;
use time::OffsetDateTime;

use super::estate::{Deleted, Estate, Found, Retry};
use super::{ResourceType, judge_in};
use crate::audit::record::{self, AuditRecord, Revocation, RevocationResult, ScannedShare};
use crate::audit::{AuditError, AuditLog};
use crate::organization::OrganizationView;
use crate::policy::Policy;
use crate::upstream::Upstream;

/// Share statuses under which the share grants (or is about to grant) access. The others
/// (REJECTED, REVOKED, EXPIRED, FAILED) grant nothing: such a share is reported, never
/// counted as a violation or revoked. A status AWS adds later counts as live.
fn is_live(status: &str) -> bool {
    !matches!(status, "REJECTED" | "REVOKED" | "EXPIRED" | "FAILED")
}

/// Today's verdict on one share.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Policy allows creating it today.
    Compliant,
    /// Live, and policy would not allow creating it today.
    Violation,
    /// Policy would not allow it, but it grants nothing (rejected, revoked, expired, failed).
    Inactive,
    /// It could not be judged (policy failed, or the share does not fit the service model):
    /// an error of the scan, never revoked.
    Unjudged,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Compliant => "compliant",
            Verdict::Violation => "violation",
            Verdict::Inactive => "inactive",
            Verdict::Unjudged => "error",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Finding {
    pub found: Found,
    pub verdict: Verdict,
    /// Why policy denies it (or why it could not be judged); empty when compliant.
    pub reasons: Vec<String>,
}

impl Finding {
    pub fn scanned(&self) -> ScannedShare {
        let s = &self.found.share;
        ScannedShare {
            region: self.found.region.clone(),
            resource_type: s.resource_type.as_str().into(),
            resource: s.resource.clone(),
            share_id: s.share_id.clone(),
            shared_with: s.shared_with.clone(),
            status: s.status.clone(),
            team: self.found.team.clone(),
        }
    }

    /// A JSON line of the report.
    pub fn to_json(&self) -> serde_json::Value {
        let s = &self.found.share;
        json!({
            "type": "finding",
            "region": self.found.region,
            "resource_type": s.resource_type.as_str(),
            "resource": s.resource,
            "share_id": s.share_id,
            "shared_with": s.shared_with,
            "status": s.status,
            "permission_type": s.permission_type,
            "team": self.found.team,
            "verdict": self.verdict.as_str(),
            "reasons": self.reasons,
        })
    }
}

/// What a scan found.
#[derive(Debug, Clone)]
pub struct Report {
    /// Sorted by region, resource type, resource, target, share id.
    pub findings: Vec<Finding>,
    pub policy_revision: String,
    /// Regions that could not be read, shares that could not be judged.
    pub errors: Vec<String>,
    /// Regions read completely.
    pub regions_scanned: Vec<String>,
}

/// `waguard scan`'s exit codes.
pub const EXIT_COMPLIANT: u8 = 0;
pub const EXIT_ERROR: u8 = 1;
pub const EXIT_VIOLATIONS: u8 = 3;

impl Report {
    pub fn violations(&self) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(|f| f.verdict == Verdict::Violation)
    }

    /// 1 when the scan is incomplete (errors), else 3 when violations were found, else 0.
    pub fn exit_code(&self) -> u8 {
        if !self.errors.is_empty() {
            EXIT_ERROR
        } else if self.violations().next().is_some() {
            EXIT_VIOLATIONS
        } else {
            EXIT_COMPLIANT
        }
    }

    /// (shares, violations) per resource type, every type present.
    pub fn counts(&self) -> BTreeMap<ResourceType, (u64, u64)> {
        let mut counts: BTreeMap<ResourceType, (u64, u64)> =
            ResourceType::ALL.iter().map(|t| (*t, (0, 0))).collect();
        for f in &self.findings {
            let entry = counts.entry(f.found.share.resource_type).or_default();
            entry.0 += 1;
            if f.verdict == Verdict::Violation {
                entry.1 += 1;
            }
        }
        counts
    }

    /// The report as a table for people.
    pub fn table(&self) -> String {
        let header = [
            "RESOURCE", "SHARE", "TARGET", "STATUS", "TEAM", "VERDICT", "REASONS",
        ]
        .map(str::to_string);
        let rows: Vec<[String; 7]> = self
            .findings
            .iter()
            .map(|f| {
                let s = &f.found.share;
                [
                    format!("{} {}", s.resource_type.as_str(), s.resource),
                    s.share_id.clone(),
                    s.shared_with.clone(),
                    s.status.clone(),
                    if f.found.team.is_empty() {
                        "-".into()
                    } else {
                        f.found.team.clone()
                    },
                    f.verdict.as_str().into(),
                    f.reasons.join("; "),
                ]
            })
            .collect();
        let mut widths = header.clone().map(|h| h.chars().count());
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        for row in std::iter::once(&header).chain(&rows) {
            let cells: Vec<String> = row
                .iter()
                .zip(widths)
                .enumerate()
                .map(|(i, (cell, w))| {
                    if i == row.len() - 1 {
                        cell.clone()
                    } else {
                        format!("{cell:<w$}")
                    }
                })
                .collect();
            out.push_str(cells.join("  ").trim_end());
            out.push('\n');
        }
        let violations = self.violations().count();
        out.push_str(&format!(
            "{} shares in {}: {} compliant, {violations} violations, {} inactive, {} errors (policy revision {})\n",
            self.findings.len(),
            if self.regions_scanned.is_empty() {
                "no region".to_string()
            } else {
                self.regions_scanned.join(", ")
            },
            self.findings
                .iter()
                .filter(|f| f.verdict == Verdict::Compliant)
                .count(),
            self.findings
                .iter()
                .filter(|f| f.verdict == Verdict::Inactive)
                .count(),
            self.errors.len(),
            short(&self.policy_revision),
        ));
        for e in &self.errors {
            out.push_str(&format!("error: {e}\n"));
        }
        out
    }
}

fn short(revision: &str) -> &str {
    revision.get(..12).unwrap_or(revision)
}

/// Where and how to scan.
pub struct Scan<'a> {
    pub upstream: &'a Upstream,
    pub organization: Option<&'a OrganizationView>,
    pub regions: &'a [String],
    pub team_tag: &'a str,
    pub retry: Retry,
}

impl Scan<'_> {
    /// Reads every region and judges every share with `policy`. A region that cannot be read
    /// is an error of the report; the others are still judged.
    pub async fn run(&self, policy: &Policy, progress: &(dyn Fn(String) + Sync)) -> Report {
        let estate = Estate::new(self.upstream, self.team_tag, self.retry);
        let mut findings = Vec::new();
        let mut errors = Vec::new();
        let mut regions_scanned = Vec::new();
        for region in self.regions {
            match estate.shares_in(region, progress).await {
                Ok(found) => {
                    regions_scanned.push(region.clone());
                    for f in found {
                        findings.push(self.judge(policy, f).await);
                        // A decision takes tens of microseconds and needs no I/O: without a
                        // yield, judging a large estate would hold a gateway worker for
                        // seconds and delay the requests queued behind it.
                        tokio::task::yield_now().await;
                    }
                }
                Err(e) => errors.push(e.to_string()),
            }
        }
        findings.sort_by(|a, b| {
            let key = |f: &Finding| {
                let s = &f.found.share;
                (
                    f.found.region.clone(),
                    s.resource_type,
                    s.resource.clone(),
                    s.shared_with.clone(),
                    s.share_id.clone(),
                )
            };
            key(a).cmp(&key(b))
        });
        for f in &findings {
            if f.verdict == Verdict::Unjudged {
                errors.push(format!(
                    "share {} of {}: could not be judged: {}",
                    f.found.share.share_id,
                    f.found.share.resource,
                    f.reasons.join("; ")
                ));
            }
        }
        Report {
            findings,
            policy_revision: policy.revision().to_string(),
            errors,
            regions_scanned,
        }
    }

    async fn judge(&self, policy: &Policy, found: Found) -> Finding {
        let decision = judge_in(
            policy,
            &found.share,
            &found.team,
            &found.region,
            self.organization,
            OffsetDateTime::now_utc(),
        )
        .await;
        let (verdict, reasons) = match decision {
            Err(e) => (Verdict::Unjudged, vec![e.to_string()]),
            Ok(d) if d.failed => (Verdict::Unjudged, d.reasons),
            Ok(d) if d.allow => (Verdict::Compliant, Vec::new()),
            Ok(d) if is_live(&found.share.status) => (Verdict::Violation, d.reasons),
            Ok(d) => (Verdict::Inactive, d.reasons),
        };
        Finding {
            found,
            verdict,
            reasons,
        }
    }

    /// Deletes one violating share and records it. The record is written (durably) after
    /// AWS answered, whatever the answer; an error here means the record could not be
    /// written, and the caller must stop.
    pub async fn revoke(
        &self,
        finding: &Finding,
        policy_revision: &str,
        audit: &AuditLog,
    ) -> Result<Revocation, AuditError> {
        let estate = Estate::new(self.upstream, self.team_tag, self.retry);
        let (result, error) = match estate
            .delete(&finding.found.region, &finding.found.share)
            .await
        {
            Ok(Deleted::Revoked) => (RevocationResult::Revoked, None),
            Ok(Deleted::AlreadyGone) => (RevocationResult::AlreadyGone, None),
            Err(e) => (RevocationResult::Failed, Some(e.to_string())),
        };
        let revocation = Revocation {
            time: record::now(),
            share: finding.scanned(),
            reasons: finding.reasons.clone(),
            policy_revision: policy_revision.to_string(),
            result,
            error,
        };
        audit
            .append(AuditRecord::Revocation(revocation.clone()))
            .await?;
        Ok(revocation)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_live_statuses_can_be_violations() {
        for live in [
            "ACCEPTED",
            "PENDING",
            "ASSOCIATING",
            "ASSOCIATED",
            "SOMETHING_NEW",
        ] {
            assert!(is_live(live), "{live}");
        }
        for gone in ["REJECTED", "REVOKED", "EXPIRED", "FAILED"] {
            assert!(!is_live(gone), "{gone}");
        }
    }
}
