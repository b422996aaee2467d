//! The audit log's schema: one Rust type per record kind (`audit.schema.json` documents the
//! same for log pipelines, and a test checks every record the gateway writes against it).
//!
//! Every line is one [`AuditRecord`] as JSON, preceded by the chain fields `seq` and
//! `prev_hash` (see `chain`). Optional facts are written as `null`, never left out, so each
//! kind has one fixed set of fields.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

/// One audit record; `type` names the kind.
// Decisions are the common case and the largest; boxing them would add an allocation per
// request to save copying a few hundred bytes once into the writer's queue.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum AuditRecord {
    /// Requests that failed authentication during one interval, counted (nothing was
    /// decided or forwarded). Summarised so that anonymous traffic cannot fill the log.
    AuthFailures(RefusalSummary<AuthFailureCount>),
    /// Authenticated requests refused by `[limits]` during one interval, counted.
    Throttled(RefusalSummary<ThrottledCount>),
    /// Gateway credentials were issued for an AWS identity STS vouched for.
    CredentialExchange(CredentialExchange),
    /// What was decided for an authenticated request.
    Decision(Decision),
    /// What happened to a request whose decision was to forward it.
    Outcome(Outcome),
    /// A share the drift scan found that today's policy does not allow (continuous mode; once
    /// per share until it is fixed).
    ShareViolation(ShareViolation),
    /// `waguard scan --revoke` deleted (or failed to delete) a share policy does not allow.
    Revocation(Revocation),
    /// A signed statement of the chain head (see `checkpoint`).
    Checkpoint(Checkpoint),
    /// Writes failed for a while; requests were refused meanwhile.
    AuditOutage(AuditOutage),
    /// The file was removed or replaced while the gateway ran; the chain continues.
    AuditReopened(AuditNote),
    /// A crash left an incomplete final record, which was discarded at startup.
    AuditRecovery(AuditRecovery),
    /// Rotated files beyond `audit.max_files` were removed.
    AuditRetention(AuditRetention),
}

impl AuditRecord {
    /// The `type` value of this kind.
    pub fn kind(&self) -> &'static str {
        match self {
            AuditRecord::AuthFailures(_) => "auth_failures",
            AuditRecord::Throttled(_) => "throttled",
            AuditRecord::CredentialExchange(_) => "credential_exchange",
            AuditRecord::Decision(_) => "decision",
            AuditRecord::Outcome(_) => "outcome",
            AuditRecord::ShareViolation(_) => "share_violation",
            AuditRecord::Revocation(_) => "revocation",
            AuditRecord::Checkpoint(_) => "checkpoint",
            AuditRecord::AuditOutage(_) => "audit_outage",
            AuditRecord::AuditReopened(_) => "audit_reopened",
            AuditRecord::AuditRecovery(_) => "audit_recovery",
            AuditRecord::AuditRetention(_) => "audit_retention",
        }
    }
}

/// `audit.schema.json`: the JSON Schema of one audit line, for log pipelines.
pub const SCHEMA: &str = include_str!("../../audit.schema.json");

/// What in an audit line (parsed) breaks `audit.schema.json`; empty when it conforms.
pub fn schema_violations(line: &Value) -> Vec<String> {
    static VALIDATOR: OnceLock<Result<jsonschema::Validator, String>> = OnceLock::new();
    let validator = VALIDATOR.get_or_init(|| {
        let schema: Value = serde_json::from_str(SCHEMA).map_err(|e| e.to_string())?;
        jsonschema::options()
            .should_validate_formats(true)
            .build(&schema)
            .map_err(|e| e.to_string())
    });
    match validator {
        Ok(v) => v
            .iter_errors(line)
            .map(|e| format!("{}: {e}", e.instance_path().as_str()))
            .collect(),
        Err(e) => vec![format!("audit.schema.json does not compile: {e}")],
    }
}

/// The time now, as RFC 3339 UTC (what every record's `time` holds).
pub fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

/// Refusals counted over one interval (`audit.summary_interval`), at most
/// `MAX_SUMMARY_ENTRIES` distinct entries; the rest are only counted in `unlisted`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RefusalSummary<E> {
    pub time: String,
    /// When the first refusal of this interval happened.
    pub since: String,
    /// Every refusal of the interval, listed or not.
    pub total: u64,
    /// Refusals whose entry did not fit in the list (distinct entries beyond the cap).
    pub unlisted: u64,
    /// Most frequent first.
    pub entries: Vec<E>,
}

/// Unauthenticated requests from one source with one claimed key and one error.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct AuthFailureCount {
    pub source_ip: String,
    /// The access key id the request claimed (never the signature, secret or token),
    /// truncated to 128 characters.
    pub access_key_id: Option<String>,
    /// The AWS error code the caller got.
    pub error: String,
    /// For a refused credential exchange: the ARN STS vouched for (it matched no
    /// `[[identities]]` rule); otherwise `null`.
    pub principal: Option<String>,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
    /// The path of the first such request, truncated to 256 bytes.
    pub sample_path: String,
}

/// Short-lived gateway credentials issued for an AWS identity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CredentialExchange {
    pub request_id: String,
    pub time: String,
    pub source_ip: String,
    /// The ARN STS answered with: the principal of every request made with the credentials.
    pub principal: String,
    pub team: String,
    /// The issued access key id (never the secret or the session token).
    pub access_key_id: String,
    /// The AWS access key id that signed the GetCallerIdentity request.
    pub aws_access_key_id: String,
    pub expiration: String,
}

/// Throttled requests of one caller for one operation.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ThrottledCount {
    pub access_key_id: String,
    pub principal: String,
    pub team: String,
    pub operation: String,
    /// Which bucket was empty: `caller` or `team`.
    pub limit: String,
    pub count: u64,
    pub first_seen: String,
    pub last_seen: String,
}

/// Who made a request, as the callers file names them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallerRef {
    pub principal: String,
    pub team: String,
    pub access_key_id: String,
}

/// The outcome of policy (or of validation, before policy).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    Allow,
    Deny,
    /// Denied by policy in dry-run mode, and forwarded.
    WouldDeny,
    /// Refused before policy: the request was malformed or broke the service model.
    Invalid,
    /// Refused before policy for another reason (a region this gateway does not serve).
    Error,
}

impl Verdict {
    /// The label metrics and the request log use.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
            Verdict::WouldDeny => "would_deny",
            Verdict::Invalid => "invalid",
            Verdict::Error => "error",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Decision {
    pub request_id: String,
    pub time: String,
    pub caller: CallerRef,
    pub source_ip: String,
    /// The Well-Architected operation, or `unknown` when the request matched none.
    pub operation: String,
    pub region: String,
    pub method: String,
    pub path: String,
    pub resource_arn: Option<String>,
    pub shared_with: Option<String>,
    pub target_type: Option<String>,
    pub permission_type: Option<String>,
    pub client_request_token: Option<String>,
    pub decision: Verdict,
    /// The AWS error code of a request refused before policy.
    pub error: Option<String>,
    pub reasons: Vec<String>,
    /// SHA-256 of the policy and data that decided; `null` when policy was not asked.
    pub policy_revision: Option<String>,
    /// Whether the share target is in the AWS Organization (`null`: not resolved, or
    /// `[organizations]` is off), so the decision can be explained later.
    pub in_organization: Option<bool>,
    /// Where the target sat: root first, the target itself last for an OU.
    pub ou_path: Vec<String>,
}

/// Why a forwarded request has no answer from AWS.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NoAnswer {
    /// The upstream or the request's overall deadline ran out.
    Timeout,
    /// The upstream could not be reached, or reset the connection, after any retries.
    UpstreamUnreachable,
    /// AWS answered, but its response could not be read whole.
    ResponseUnreadable,
    /// The gateway shut down and its grace period ended before AWS answered.
    AbandonedAtShutdown,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Outcome {
    /// The same id as the request's `decision` record.
    pub request_id: String,
    pub time: String,
    pub operation: String,
    /// Whether the request left the gateway (false: it ended while being prepared).
    pub forwarded: bool,
    pub upstream_status: Option<u16>,
    pub aws_request_id: Option<String>,
    pub share_id: Option<String>,
    /// AWS's error code, or the one the gateway answered with.
    pub error_code: Option<String>,
    pub error: Option<NoAnswer>,
    /// From sending to the answer (or to giving up); `null` when nothing was sent.
    pub latency_ms: Option<f64>,
}

/// A share as the drift scan found it, and the team that owns its resource.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScannedShare {
    pub region: String,
    /// `review-template`, `workload`, `lens` or `profile`.
    pub resource_type: String,
    /// The resource's ARN.
    pub resource: String,
    pub share_id: String,
    pub shared_with: String,
    /// The share's status as AWS listed it (ACCEPTED, PENDING, ...).
    pub status: String,
    /// The resource's team tag (`[scan] team_tag`); empty when untagged.
    pub team: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareViolation {
    pub time: String,
    pub share: ScannedShare,
    /// Why policy would not allow creating this share today.
    pub reasons: Vec<String>,
    pub policy_revision: String,
}

/// Whether a revocation's delete succeeded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RevocationResult {
    /// AWS deleted the share.
    Revoked,
    /// The share was already gone when the delete reached AWS.
    AlreadyGone,
    /// AWS refused or did not answer; the share may still exist (see `error`).
    Failed,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Revocation {
    pub time: String,
    pub share: ScannedShare,
    /// Why policy does not allow the share: the reasons the deletion was made for.
    pub reasons: Vec<String>,
    pub policy_revision: String,
    pub result: RevocationResult,
    /// AWS's error code and message when the delete failed.
    pub error: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub time: String,
    /// The log's name (`audit.log_name`), the checkpoint's first line.
    pub origin: String,
    /// How many records precede this one: seq 0 to `size - 1`.
    pub size: u64,
    /// The chain hash after record `size - 1` (the `prev_hash` this record carries), hex.
    pub hash: String,
    /// The C2SP signed note, verbatim: checkpoint text, blank line, signature line.
    pub note: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditOutage {
    pub time: String,
    pub since: String,
    pub refused_records: u64,
    pub error: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditNote {
    pub time: String,
    pub message: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecovery {
    pub time: String,
    pub message: String,
    pub discarded_bytes: u64,
    pub discarded_sha256: String,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRetention {
    pub time: String,
    pub removed: Vec<String>,
    pub first_kept_seq: u64,
    pub message: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::ChainHead;

    /// Where each kind sits in [`samples`]; a new kind fails to compile here until it has a
    /// sample (and so a schema check).
    fn index(record: &AuditRecord) -> usize {
        match record {
            AuditRecord::AuthFailures(_) => 0,
            AuditRecord::Decision(_) => 1,
            AuditRecord::Outcome(_) => 2,
            AuditRecord::Checkpoint(_) => 3,
            AuditRecord::AuditOutage(_) => 4,
            AuditRecord::AuditReopened(_) => 5,
            AuditRecord::AuditRecovery(_) => 6,
            AuditRecord::AuditRetention(_) => 7,
            AuditRecord::Throttled(_) => 8,
            AuditRecord::CredentialExchange(_) => 9,
            AuditRecord::ShareViolation(_) => 10,
            AuditRecord::Revocation(_) => 11,
        }
    }

    fn samples() -> Vec<AuditRecord> {
        let hash = "ab".repeat(32);
        vec![
            AuditRecord::AuthFailures(RefusalSummary {
                time: now(),
                since: now(),
                total: 7,
                unlisted: 2,
                entries: vec![
                    AuthFailureCount {
                        source_ip: "10.0.0.7".into(),
                        access_key_id: None,
                        error: "MissingAuthenticationTokenException".into(),
                        principal: None,
                        count: 4,
                        first_seen: now(),
                        last_seen: now(),
                        sample_path: "/templates/shares/x".into(),
                    },
                    AuthFailureCount {
                        source_ip: "10.0.0.8".into(),
                        access_key_id: Some("AKWGPAYMENTS0000001".into()),
                        error: "AccessDeniedException".into(),
                        principal: Some("arn:aws:sts::123456789012:assumed-role/Dev/x".into()),
                        count: 1,
                        first_seen: now(),
                        last_seen: now(),
                        sample_path: "/".into(),
                    },
                ],
            }),
            AuditRecord::Decision(Decision {
                request_id: "r2".into(),
                time: now(),
                caller: CallerRef {
                    principal: "alice@example.com".into(),
                    team: "payments".into(),
                    access_key_id: "AKWGPAYMENTS0000001".into(),
                },
                source_ip: "10.0.0.7".into(),
                operation: "CreateTemplateShare".into(),
                region: "us-east-1".into(),
                method: "POST".into(),
                path: "/templates/shares/x".into(),
                resource_arn: Some(
                    "arn:aws:wellarchitected:us-east-1:123456789012:review-template/x".into(),
                ),
                shared_with: Some("ou-ab12-11111111".into()),
                target_type: Some("ou".into()),
                permission_type: None,
                client_request_token: Some("t".into()),
                decision: Verdict::WouldDeny,
                error: None,
                reasons: vec!["not approved".into()],
                policy_revision: Some(hash.clone()),
                in_organization: Some(true),
                ou_path: vec!["r-ab12".into(), "ou-ab12-11111111".into()],
            }),
            AuditRecord::Outcome(Outcome {
                request_id: "r2".into(),
                time: now(),
                operation: "CreateTemplateShare".into(),
                forwarded: true,
                upstream_status: None,
                aws_request_id: None,
                share_id: None,
                error_code: Some("ServiceUnavailableException".into()),
                error: Some(NoAnswer::AbandonedAtShutdown),
                latency_ms: Some(12.5),
            }),
            AuditRecord::Checkpoint(Checkpoint {
                time: now(),
                origin: "audit.example".into(),
                size: 3,
                hash: hash.clone(),
                note: "audit.example\n3\nq83vq83v\n\n— audit.example AAAA\n".into(),
            }),
            AuditRecord::AuditOutage(AuditOutage {
                time: now(),
                since: now(),
                refused_records: 2,
                error: "No space left on device".into(),
                message: "m".into(),
            }),
            AuditRecord::AuditReopened(AuditNote {
                time: now(),
                message: "m".into(),
            }),
            AuditRecord::AuditRecovery(AuditRecovery {
                time: now(),
                message: "m".into(),
                discarded_bytes: 12,
                discarded_sha256: hash.clone(),
            }),
            AuditRecord::AuditRetention(AuditRetention {
                time: now(),
                removed: vec!["audit.jsonl.000000000000".into()],
                first_kept_seq: 40,
                message: "m".into(),
            }),
            AuditRecord::Throttled(RefusalSummary {
                time: now(),
                since: now(),
                total: 3,
                unlisted: 0,
                entries: vec![ThrottledCount {
                    access_key_id: "AKWGPAYMENTS0000001".into(),
                    principal: "alice@example.com".into(),
                    team: "payments".into(),
                    operation: "CreateTemplateShare".into(),
                    limit: "caller".into(),
                    count: 3,
                    first_seen: now(),
                    last_seen: now(),
                }],
            }),
            AuditRecord::CredentialExchange(CredentialExchange {
                request_id: "r9".into(),
                time: now(),
                source_ip: "10.0.0.9".into(),
                principal: "arn:aws:sts::123456789012:assumed-role/Dev/alice@example.com".into(),
                team: "payments".into(),
                access_key_id: "ASIAABCDEFGHIJKLMNOP".into(),
                aws_access_key_id: "ASIAEXAMPLEEXAMPLE00".into(),
                expiration: now(),
            }),
            AuditRecord::ShareViolation(ShareViolation {
                time: now(),
                share: scanned(),
                reasons: vec!["ou-ab12-99999999 is not an approved OU of team payments".into()],
                policy_revision: hash.clone(),
            }),
            AuditRecord::Revocation(Revocation {
                time: now(),
                share: scanned(),
                reasons: vec!["ou-ab12-99999999 is not an approved OU of team payments".into()],
                policy_revision: hash.clone(),
                result: RevocationResult::Failed,
                error: Some("ThrottlingException: Rate exceeded".into()),
            }),
        ]
    }

    fn scanned() -> ScannedShare {
        ScannedShare {
            region: "us-east-1".into(),
            resource_type: "review-template".into(),
            resource: "arn:aws:wellarchitected:us-east-1:123456789012:review-template/x".into(),
            share_id: "0123456789abcdef0123456789abcdef".into(),
            shared_with: "ou-ab12-99999999".into(),
            status: "ACCEPTED".into(),
            team: "payments".into(),
        }
    }

    #[test]
    fn every_kind_sealed_into_a_line_conforms_to_the_schema_and_reads_back() {
        let samples = samples();
        let covered: Vec<usize> = samples.iter().map(index).collect();
        assert_eq!(covered, (0..samples.len()).collect::<Vec<_>>());
        let schema: Value = serde_json::from_str(SCHEMA).unwrap();
        assert_eq!(schema["oneOf"].as_array().unwrap().len(), samples.len());
        let mut head = ChainHead::genesis();
        for record in &samples {
            let (line, next) = head.seal(record).unwrap();
            head = next;
            let parsed: Value = serde_json::from_slice(&line).unwrap();
            assert_eq!(parsed["type"], record.kind());
            assert_eq!(schema_violations(&parsed), Vec::<String>::new(), "{parsed}");
            let back: AuditRecord = serde_json::from_value(parsed).unwrap();
            assert_eq!(&back, record);
        }
    }

    #[test]
    fn the_schema_refuses_a_missing_field_an_unknown_field_and_an_unknown_kind() {
        let (line, _) = ChainHead::genesis().seal(&samples()[1]).unwrap();
        let good: Value = serde_json::from_slice(&line).unwrap();
        let mut missing = good.clone();
        missing.as_object_mut().unwrap().remove("reasons");
        assert!(!schema_violations(&missing).is_empty());
        let mut extra = good.clone();
        extra["secret_access_key"] = "x".into();
        assert!(!schema_violations(&extra).is_empty());
        let mut unknown = good;
        unknown["type"] = "something_else".into();
        assert!(!schema_violations(&unknown).is_empty());
    }
}
