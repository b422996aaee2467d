//! Judging shares that already exist (made before the gateway, around it, or compliant once and
//! no longer) with today's policy: the core of `waguard scan` (issue #12).
//!
//! The contract with policy: a share is judged with the input the gateway would have built for
//! creating it — the same `Create<Type>Share` request routed and validated by the same code —
//! plus `"scan": {"share_id", "status"}`, and a caller whose team is the resource's owning team
//! (its `waguard:team` tag; `""` when untagged). The share is compliant when the decision allows.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

use http::{HeaderMap, HeaderValue, Method};
use time::OffsetDateTime;

use crate::auth::{Authenticated, Caller, Secret};
use crate::error::GatewayError;
use crate::organization::{Context, OrganizationView, Resolution};
use crate::policy::{Decision, Policy, input};
use crate::{operation, validate};

pub mod command;
pub mod estate;
pub mod scan;
pub mod watch;

/// What a share is of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ResourceType {
    Template,
    Workload,
    Lens,
    Profile,
}

impl ResourceType {
    pub const ALL: [ResourceType; 4] = [
        ResourceType::Template,
        ResourceType::Workload,
        ResourceType::Lens,
        ResourceType::Profile,
    ];

    /// The label metrics and reports use.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Template => "review-template",
            ResourceType::Workload => "workload",
            ResourceType::Lens => "lens",
            ResourceType::Profile => "profile",
        }
    }

    /// The operation that creates such a share (and, with `Delete`, removes it).
    pub fn create_operation(self) -> &'static str {
        match self {
            ResourceType::Template => "CreateTemplateShare",
            ResourceType::Workload => "CreateWorkloadShare",
            ResourceType::Lens => "CreateLensShare",
            ResourceType::Profile => "CreateProfileShare",
        }
    }
}

/// A share as the List<Type>Shares operations describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExistingShare {
    pub resource_type: ResourceType,
    /// The template, profile or workload ARN, or the lens alias / ARN.
    pub resource: String,
    /// For workloads, the WorkloadId (the create path names the workload by id).
    pub workload_id: Option<String>,
    pub share_id: String,
    pub shared_with: String,
    pub status: String,
    /// Workload shares: READONLY or CONTRIBUTOR.
    pub permission_type: Option<String>,
}

/// The method, raw path and JSON body of the request that would create `share`.
fn create_request(share: &ExistingShare) -> Result<(String, serde_json::Value), GatewayError> {
    let enc = crate::auth::sigv4::uri_encode;
    let mut body = serde_json::json!({
        "SharedWith": share.shared_with,
        "ClientRequestToken": format!("waguard-scan-{}", share.share_id),
    });
    let path = match share.resource_type {
        ResourceType::Template => format!("/templates/shares/{}", enc(&share.resource)),
        ResourceType::Profile => format!("/profiles/{}/shares", enc(&share.resource)),
        ResourceType::Lens => format!("/lenses/{}/shares", enc(&share.resource)),
        ResourceType::Workload => {
            let id = share.workload_id.as_deref().ok_or_else(|| {
                GatewayError::Validation(format!(
                    "workload share {} has no workload id",
                    share.share_id
                ))
            })?;
            if let Some(p) = &share.permission_type {
                body["PermissionType"] = p.clone().into();
            }
            format!("/workloads/{}/shares", enc(id))
        }
    };
    Ok((path, body))
}

/// The request that would create a share, routed and validated as the gateway would.
struct Creation {
    path: String,
    routed: operation::Routed,
    validated: validate::Validated,
}

impl Creation {
    fn of(share: &ExistingShare) -> Result<Creation, GatewayError> {
        let (path, body) = create_request(share)?;
        let routed = operation::route("POST", &path, None)?;
        if routed.spec.name != share.resource_type.create_operation() {
            return Err(GatewayError::Internal(format!(
                "{path} routed to {} instead of {}",
                routed.spec.name,
                share.resource_type.create_operation()
            )));
        }
        let bytes = serde_json::to_vec(&body)
            .map_err(|e| GatewayError::Internal(format!("scan request body: {e}")))?;
        let mut headers = HeaderMap::new();
        headers.insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        let validated = validate::validate(&routed, &Method::POST, &headers, &bytes)?;
        Ok(Creation {
            path,
            routed,
            validated,
        })
    }

    fn input(
        &self,
        share: &ExistingShare,
        team: &str,
        region: &str,
        placed: Option<&Resolution>,
        organization: Option<&Context>,
        now: OffsetDateTime,
    ) -> regorus::Value {
        let auth = Authenticated {
            caller: Arc::new(Caller {
                access_key_id: "WAGUARDSCAN".into(),
                secret_access_key: Secret::new(""),
                principal: "waguard-scan".into(),
                team: team.to_string(),
                attributes: BTreeMap::new(),
            }),
            region: region.to_string(),
            signed_at: now,
        };
        let mut value = input::build(
            &auth,
            &self.routed,
            &self.validated,
            placed,
            organization,
            "POST",
            &self.path,
            IpAddr::V4(Ipv4Addr::UNSPECIFIED),
            now,
        );
        if let Ok(fields) = value.as_object_mut() {
            let scan: BTreeMap<regorus::Value, regorus::Value> = [
                ("share_id", share.share_id.as_str()),
                ("status", share.status.as_str()),
            ]
            .into_iter()
            .map(|(k, v)| (regorus::Value::from(k), regorus::Value::from(v)))
            .collect();
            fields.insert(regorus::Value::from("scan"), regorus::Value::from(scan));
        }
        value
    }
}

/// The policy input for judging `share` as if `team` were creating it now.
pub fn scan_input(
    share: &ExistingShare,
    team: &str,
    region: &str,
    placed: Option<&Resolution>,
    organization: Option<&Context>,
    now: OffsetDateTime,
) -> Result<regorus::Value, GatewayError> {
    Ok(Creation::of(share)?.input(share, team, region, placed, organization, now))
}

/// Today's verdict on an existing share, with the share's target placed in the organization
/// the way the gateway places a request's target.
pub async fn judge_in(
    policy: &Policy,
    share: &ExistingShare,
    team: &str,
    region: &str,
    organization: Option<&OrganizationView>,
    now: OffsetDateTime,
) -> Result<Decision, GatewayError> {
    let creation = Creation::of(share)?;
    let (placed, context) = match (organization, creation.validated.target()) {
        (Some(view), Some(target)) => (Some(view.resolve(target).await), Some(view.context())),
        _ => (None, None),
    };
    let input = creation.input(share, team, region, placed.as_ref(), context.as_ref(), now);
    Ok(policy.evaluate_input(input))
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/0123456789abcdef0123456789abcdef";

    fn policy() -> Policy {
        Policy::load(&std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")).unwrap()
    }

    fn share(kind: ResourceType, resource: &str, shared_with: &str) -> ExistingShare {
        ExistingShare {
            resource_type: kind,
            resource: resource.into(),
            workload_id: (kind == ResourceType::Workload)
                .then(|| "0123456789abcdef0123456789abcdef".to_string()),
            share_id: "11112222333344445555666677778888".into(),
            shared_with: shared_with.into(),
            status: "ACCEPTED".into(),
            permission_type: (kind == ResourceType::Workload).then(|| "READONLY".to_string()),
        }
    }

    #[test]
    fn an_existing_share_is_judged_with_the_input_of_its_creation() {
        let now = OffsetDateTime::now_utc();
        let s = share(ResourceType::Template, TEMPLATE, "ou-ab12-11111111");
        let input = scan_input(&s, "payments", "us-east-1", None, None, now).unwrap();
        let json: serde_json::Value = serde_json::from_str(&input.to_json_str().unwrap()).unwrap();
        assert_eq!(json["operation"], "CreateTemplateShare");
        assert_eq!(json["access"], "write");
        assert_eq!(json["caller"]["team"], "payments");
        assert_eq!(json["resource"]["arn"], TEMPLATE);
        assert_eq!(json["share"]["shared_with"], "ou-ab12-11111111");
        assert_eq!(json["share"]["target_type"], "ou");
        assert_eq!(json["scan"]["share_id"], s.share_id);
        assert_eq!(json["scan"]["status"], "ACCEPTED");
        // The documented input schema covers scan inputs (`waguard policy eval` accepts them).
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let schema = crate::policy::testing::load_input_schema(&dir)
            .unwrap()
            .unwrap();
        crate::policy::testing::validate_input(&json, &schema).unwrap();

        let p = policy();
        let verdict = |s: &ExistingShare, team: &str| {
            p.evaluate_input(scan_input(s, team, "us-east-1", None, None, now).unwrap())
        };
        assert!(
            verdict(&s, "payments").allow,
            "an approved OU of the owning team"
        );
        let other = share(ResourceType::Template, TEMPLATE, "ou-ab12-99999999");
        let denied = verdict(&other, "payments");
        assert!(!denied.allow && !denied.failed, "{denied:?}");
        let untagged = verdict(&s, "");
        assert!(
            !untagged.allow,
            "an untagged resource has no team: {untagged:?}"
        );
    }

    #[test]
    fn every_resource_type_routes_to_its_create_operation() {
        let now = OffsetDateTime::now_utc();
        for (kind, resource) in [
            (ResourceType::Template, TEMPLATE),
            (
                ResourceType::Workload,
                "arn:aws:wellarchitected:us-east-1:123456789012:workload/0123456789abcdef0123456789abcdef",
            ),
            (
                ResourceType::Lens,
                "arn:aws:wellarchitected:us-east-1:123456789012:lens/0123456789abcdef0123456789abcdef",
            ),
            (
                ResourceType::Profile,
                "arn:aws:wellarchitected:us-east-1:123456789012:profile/0123456789abcdef0123456789abcdef",
            ),
        ] {
            let input = scan_input(
                &share(kind, resource, "123456789012"),
                "payments",
                "us-east-1",
                None,
                None,
                now,
            )
            .unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            let json: serde_json::Value =
                serde_json::from_str(&input.to_json_str().unwrap()).unwrap();
            assert_eq!(json["operation"], kind.create_operation());
            assert_eq!(json["share"]["target_type"], "account");
        }
    }
}
