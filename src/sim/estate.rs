//! The simulated account's estate: Well-Architected resources of four types (review templates,
//! workloads, custom lenses, profiles) with their tags and shares, and the seed file that
//! describes one.
//!
//! A seed is TOML, strict (unknown keys are errors):
//!
//! ```toml
//! [[resources]]
//! type = "review-template"          # workload | lens | profile
//! arn = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/<32 hex>"
//! name = "optional"                 # default: the id (the ARN's last segment)
//! tags = { "waguard:team" = "payments" }
//! [[resources.shares]]
//! shared_with = "ou-ab12-11111111"  # account id, o-… organization id, ou-… OU id, IAM ARN
//! status = "ACCEPTED"               # default ACCEPTED
//! permission_type = "READONLY"      # workloads only, default READONLY
//! share_id = "<32 hex>"             # default: generated
//! ```

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Deserializer};

use crate::drift::ResourceType;
use crate::validate::ShareTarget;

/// The status of a share (the model's `ShareStatus`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ShareStatus {
    Accepted,
    Rejected,
    Pending,
    Revoked,
    Expired,
    Associating,
    Associated,
    Failed,
}

impl ShareStatus {
    pub const ALL: [ShareStatus; 8] = [
        ShareStatus::Accepted,
        ShareStatus::Rejected,
        ShareStatus::Pending,
        ShareStatus::Revoked,
        ShareStatus::Expired,
        ShareStatus::Associating,
        ShareStatus::Associated,
        ShareStatus::Failed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ShareStatus::Accepted => "ACCEPTED",
            ShareStatus::Rejected => "REJECTED",
            ShareStatus::Pending => "PENDING",
            ShareStatus::Revoked => "REVOKED",
            ShareStatus::Expired => "EXPIRED",
            ShareStatus::Associating => "ASSOCIATING",
            ShareStatus::Associated => "ASSOCIATED",
            ShareStatus::Failed => "FAILED",
        }
    }
}

impl FromStr for ShareStatus {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        ShareStatus::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| {
                let all: Vec<&str> = ShareStatus::ALL.iter().map(|x| x.as_str()).collect();
                format!("{s:?} is not a share status ({})", all.join(", "))
            })
    }
}

impl fmt::Display for ShareStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a workload share lets its target do (the model's `PermissionType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum PermissionType {
    Readonly,
    Contributor,
}

impl PermissionType {
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionType::Readonly => "READONLY",
            PermissionType::Contributor => "CONTRIBUTOR",
        }
    }
}

impl FromStr for PermissionType {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "READONLY" => Ok(PermissionType::Readonly),
            "CONTRIBUTOR" => Ok(PermissionType::Contributor),
            _ => Err(format!(
                "{s:?} is not a permission type (READONLY, CONTRIBUTOR)"
            )),
        }
    }
}

impl fmt::Display for PermissionType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A share of the estate, as tests see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimShare {
    pub resource_type: ResourceType,
    /// The resource's ARN (for workloads too, not the WorkloadId).
    pub resource: String,
    pub share_id: String,
    pub shared_with: String,
    pub status: String,
    /// Workload shares: READONLY or CONTRIBUTOR.
    pub permission_type: Option<String>,
}

/// Why a resource or share cannot be added to the estate.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{arn}: {message}")]
pub struct EstateError {
    pub arn: String,
    pub message: String,
}

/// Why a seed cannot be loaded or applied.
#[derive(Debug, thiserror::Error)]
pub enum SeedError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, not a seed, or a seed that does not describe a valid estate.
    #[error("{}: {message}", path.display())]
    File { path: PathBuf, message: String },
    #[error("resources[{index}] {source}")]
    Resource { index: usize, source: EstateError },
}

/// An estate described in TOML (see the module documentation).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Seed {
    #[serde(default)]
    pub resources: Vec<SeedResource>,
}

/// One resource of a seed. Seeding a resource that exists (the same ARN) adds its shares and
/// merges its tags.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedResource {
    #[serde(rename = "type", deserialize_with = "resource_type")]
    pub resource_type: ResourceType,
    pub arn: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub shares: Vec<SeedShare>,
}

/// One share of a seeded resource.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedShare {
    pub shared_with: String,
    #[serde(default = "accepted")]
    pub status: ShareStatus,
    /// Workloads only; default READONLY.
    #[serde(default)]
    pub permission_type: Option<PermissionType>,
    /// 32 lowercase hex digits; default: generated.
    #[serde(default)]
    pub share_id: Option<String>,
}

fn accepted() -> ShareStatus {
    ShareStatus::Accepted
}

fn resource_type<'de, D: Deserializer<'de>>(d: D) -> Result<ResourceType, D::Error> {
    let name = String::deserialize(d)?;
    ResourceType::ALL
        .into_iter()
        .find(|t| t.as_str() == name)
        .ok_or_else(|| {
            serde::de::Error::custom(format!(
                "unknown resource type {name:?}, expected one of review-template, workload, lens, profile"
            ))
        })
}

impl Seed {
    /// Reads and checks a seed file; every error names the file.
    pub fn load(path: &Path) -> Result<Seed, SeedError> {
        let text = std::fs::read_to_string(path).map_err(|source| SeedError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let seed = Seed::parse(&text).map_err(|message| SeedError::File {
            path: path.to_path_buf(),
            message,
        })?;
        // The same checks as applying it to an empty estate.
        Estate::default()
            .apply(&seed)
            .map_err(|e| SeedError::File {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(seed)
    }

    /// Parses seed TOML (without checking ARNs and targets: [`Seed::load`] and `Sim::seed` do).
    pub fn parse(text: &str) -> Result<Seed, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }
}

/// A Well-Architected resource ARN of a known type, taken apart:
/// `arn:PARTITION:wellarchitected:REGION:ACCOUNT:TYPE/ID`, the ID 32 lowercase hex digits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceArn {
    pub resource_type: ResourceType,
    pub arn: String,
    pub region: String,
    pub account: String,
    pub id: String,
}

impl ResourceArn {
    pub fn parse(resource_type: ResourceType, arn: &str) -> Result<ResourceArn, EstateError> {
        let refuse = |why: &str| EstateError {
            arn: arn.to_string(),
            message: format!(
                "not a {} ARN ({why}; expected arn:aws:wellarchitected:REGION:ACCOUNT:{}/<32 lowercase hex>)",
                resource_type.as_str(),
                resource_type.as_str()
            ),
        };
        let parts: Vec<&str> = arn.splitn(6, ':').collect();
        let [prefix, partition, service, region, account, resource] = parts.as_slice() else {
            return Err(refuse("too few fields"));
        };
        if *prefix != "arn" || !is_partition(partition) || *service != "wellarchitected" {
            return Err(refuse("not a Well-Architected ARN"));
        }
        if !is_region(region) {
            return Err(refuse("bad region"));
        }
        if account.len() != 12 || !account.bytes().all(|b| b.is_ascii_digit()) {
            return Err(refuse("the account must be 12 digits"));
        }
        let Some((kind, id)) = resource.split_once('/') else {
            return Err(refuse("no resource id"));
        };
        if kind != resource_type.as_str() {
            return Err(refuse(&format!("the resource type is {kind:?}")));
        }
        if !is_share_like_id(id) {
            return Err(refuse("the id must be 32 lowercase hex digits"));
        }
        Ok(ResourceArn {
            resource_type,
            arn: arn.to_string(),
            region: (*region).to_string(),
            account: (*account).to_string(),
            id: id.to_string(),
        })
    }
}

/// `aws`, `aws-cn`, `aws-us-gov`, ...
fn is_partition(s: &str) -> bool {
    s.strip_prefix("aws").is_some_and(|rest| {
        rest.is_empty()
            || rest.strip_prefix('-').is_some_and(|r| {
                r.split('-')
                    .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
            })
    })
}

/// `us-east-1`, `us-gov-west-1`, `eu-central-2`: two letters, words, a digit.
fn is_region(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    let (Some(first), Some(last)) = (parts.first(), parts.last()) else {
        return false;
    };
    parts.len() >= 3
        && first.len() == 2
        && first.bytes().all(|b| b.is_ascii_lowercase())
        && last.len() == 1
        && last.bytes().all(|b| b.is_ascii_digit())
        && parts[1..parts.len() - 1]
            .iter()
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_lowercase()))
}

/// 32 lowercase hex digits (resource ids, share ids).
fn is_share_like_id(s: &str) -> bool {
    s.len() == 32 && s.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
}

/// A new share id, as AWS writes them: 32 lowercase hex digits.
pub(super) fn new_share_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// One share of a resource.
#[derive(Debug, Clone)]
pub(super) struct Share {
    pub share_id: String,
    pub shared_with: String,
    pub status: ShareStatus,
    /// Workload shares only.
    pub permission_type: Option<PermissionType>,
    /// The ClientRequestToken that created it (none for seeded shares).
    pub token: Option<String>,
}

/// A resource of the estate.
#[derive(Debug, Clone)]
pub(super) struct Resource {
    pub arn: ResourceArn,
    pub name: String,
    pub tags: BTreeMap<String, String>,
    /// In the order they were made.
    pub shares: Vec<Share>,
}

/// Every resource, by ARN.
#[derive(Debug, Clone, Default)]
pub(super) struct Estate {
    resources: BTreeMap<String, Resource>,
}

impl Estate {
    /// Adds a resource, or merges `tags` (and a new name, if given) into the one with this ARN.
    pub fn add_resource(
        &mut self,
        arn: ResourceArn,
        name: Option<&str>,
        tags: &BTreeMap<String, String>,
    ) -> Result<(), EstateError> {
        let refuse = |message: String| EstateError {
            arn: arn.arn.clone(),
            message,
        };
        if let Some(name) = name {
            // The model's length limits of TemplateName, WorkloadName, ProfileName, LensName.
            let (min, max) = match arn.resource_type {
                ResourceType::Lens => (1, 128),
                _ => (3, 100),
            };
            let len = name.chars().count();
            if len < min || len > max {
                return Err(refuse(format!(
                    "name {name:?} must be {min} to {max} characters"
                )));
            }
        }
        for (key, value) in tags {
            if key.is_empty() || key.chars().count() > 128 || value.chars().count() > 256 {
                return Err(refuse(format!(
                    "tag {key:?}: keys are 1 to 128 characters, values up to 256"
                )));
            }
        }
        let resource = self
            .resources
            .entry(arn.arn.clone())
            .or_insert_with(|| Resource {
                name: arn.id.clone(),
                arn,
                tags: BTreeMap::new(),
                shares: Vec::new(),
            });
        if let Some(name) = name {
            resource.name = name.to_string();
        }
        resource
            .tags
            .extend(tags.iter().map(|(k, v)| (k.clone(), v.clone())));
        Ok(())
    }

    /// Adds a share to the resource with this ARN; its id is generated unless given.
    pub fn add_share(
        &mut self,
        arn: &str,
        shared_with: &str,
        status: ShareStatus,
        permission_type: Option<PermissionType>,
        share_id: Option<&str>,
        token: Option<&str>,
    ) -> Result<String, EstateError> {
        let refuse = |message: String| EstateError {
            arn: arn.to_string(),
            message,
        };
        if ShareTarget::classify(shared_with) == ShareTarget::Unknown {
            return Err(refuse(format!(
                "shared_with {shared_with:?} is not an account id, organization id, OU id or IAM principal ARN"
            )));
        }
        if let Some(id) = share_id {
            if !is_share_like_id(id) {
                return Err(refuse(format!(
                    "share_id {id:?} must be 32 lowercase hex digits"
                )));
            }
            if self.share(id).is_some() {
                return Err(refuse(format!("share_id {id} is already used")));
            }
        }
        let Some(resource) = self.resources.get_mut(arn) else {
            return Err(refuse("no such resource".into()));
        };
        let permission_type = match (resource.arn.resource_type, permission_type) {
            (ResourceType::Workload, p) => Some(p.unwrap_or(PermissionType::Readonly)),
            (_, None) => None,
            (other, Some(_)) => {
                return Err(refuse(format!(
                    "permission_type applies to workload shares only, not {}",
                    other.as_str()
                )));
            }
        };
        if resource.shares.iter().any(|s| s.shared_with == shared_with) {
            return Err(refuse(format!("already shared with {shared_with}")));
        }
        let share_id = share_id.map_or_else(new_share_id, str::to_string);
        resource.shares.push(Share {
            share_id: share_id.clone(),
            shared_with: shared_with.to_string(),
            status,
            permission_type,
            token: token.map(str::to_string),
        });
        Ok(share_id)
    }

    /// Adds every resource and share of `seed`. On error the estate may be partly changed:
    /// apply to a copy to keep it whole.
    pub fn apply(&mut self, seed: &Seed) -> Result<(), SeedError> {
        for (index, r) in seed.resources.iter().enumerate() {
            let at = |source| SeedError::Resource { index, source };
            let arn = ResourceArn::parse(r.resource_type, &r.arn).map_err(at)?;
            self.add_resource(arn, r.name.as_deref(), &r.tags)
                .map_err(at)?;
            for s in &r.shares {
                self.add_share(
                    &r.arn,
                    &s.shared_with,
                    s.status,
                    s.permission_type,
                    s.share_id.as_deref(),
                    None,
                )
                .map_err(at)?;
            }
        }
        Ok(())
    }

    /// The resource with this ARN.
    pub fn get(&self, arn: &str) -> Option<&Resource> {
        self.resources.get(arn)
    }

    /// The resources of one type in one region, by ARN.
    pub fn in_region(
        &self,
        resource_type: ResourceType,
        region: &str,
    ) -> impl Iterator<Item = &Resource> {
        self.resources
            .values()
            .filter(move |r| r.arn.resource_type == resource_type && r.arn.region == region)
    }

    /// The resource of this type in this region that a request names: by ARN, or for
    /// workloads by WorkloadId.
    pub fn find_mut(
        &mut self,
        resource_type: ResourceType,
        region: &str,
        name: &str,
    ) -> Option<&mut Resource> {
        self.resources.values_mut().find(|r| {
            r.arn.resource_type == resource_type
                && r.arn.region == region
                && match resource_type {
                    ResourceType::Workload => r.arn.id == name,
                    _ => r.arn.arn == name,
                }
        })
    }

    /// The share with this id, anywhere.
    fn share(&self, share_id: &str) -> Option<&Share> {
        self.resources
            .values()
            .flat_map(|r| r.shares.iter())
            .find(|s| s.share_id == share_id)
    }

    /// Every share, sorted by (resource type, resource ARN, shared with).
    pub fn shares(&self) -> Vec<SimShare> {
        let mut all: Vec<SimShare> = self
            .resources
            .values()
            .flat_map(|r| {
                r.shares.iter().map(|s| SimShare {
                    resource_type: r.arn.resource_type,
                    resource: r.arn.arn.clone(),
                    share_id: s.share_id.clone(),
                    shared_with: s.shared_with.clone(),
                    status: s.status.as_str().to_string(),
                    permission_type: s.permission_type.map(|p| p.as_str().to_string()),
                })
            })
            .collect();
        all.sort_by(|a, b| {
            (a.resource_type, &a.resource, &a.shared_with).cmp(&(
                b.resource_type,
                &b.resource,
                &b.shared_with,
            ))
        });
        all
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEMPLATE: &str = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/0123456789abcdef0123456789abcdef";
    const WORKLOAD: &str =
        "arn:aws:wellarchitected:eu-west-1:123456789012:workload/11111111111111111111111111111111";

    #[test]
    fn arns_must_have_their_types_shape() {
        let ok = ResourceArn::parse(ResourceType::Template, TEMPLATE).unwrap();
        assert_eq!(ok.region, "us-east-1");
        assert_eq!(ok.account, "123456789012");
        assert_eq!(ok.id, "0123456789abcdef0123456789abcdef");
        let gov = "arn:aws-us-gov:wellarchitected:us-gov-west-1:123456789012:profile/0123456789abcdef0123456789abcdef";
        assert!(ResourceArn::parse(ResourceType::Profile, gov).is_ok());
        for (kind, bad) in [
            (ResourceType::Workload, TEMPLATE),
            (
                ResourceType::Template,
                &TEMPLATE.replace("abcdef", "ABCDEF"),
            ),
            (
                ResourceType::Template,
                &TEMPLATE.replace("us-east-1", "useast1"),
            ),
            (
                ResourceType::Template,
                &TEMPLATE.replace("123456789012", "1234"),
            ),
            (
                ResourceType::Template,
                &TEMPLATE.replace("arn:aws:", "arn:gcp:"),
            ),
            (
                ResourceType::Lens,
                "arn:aws:wellarchitected:us-east-1::lens/serverless",
            ),
            (ResourceType::Lens, "lens"),
        ] {
            assert!(ResourceArn::parse(kind, bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn seeds_default_status_and_permission_and_merge_by_arn() {
        let seed = Seed::parse(&format!(
            r#"
            [[resources]]
            type = "workload"
            arn = "{WORKLOAD}"
            tags = {{ "waguard:team" = "payments" }}
            [[resources.shares]]
            shared_with = "111122223333"

            [[resources]]
            type = "workload"
            arn = "{WORKLOAD}"
            name = "checkout"
            tags = {{ env = "prod" }}
            [[resources.shares]]
            shared_with = "o-abcdefghij"
            status = "PENDING"
            permission_type = "CONTRIBUTOR"
            share_id = "22222222222222222222222222222222"
            "#
        ))
        .unwrap();
        let mut estate = Estate::default();
        estate.apply(&seed).unwrap();
        let w = estate.get(WORKLOAD).unwrap();
        assert_eq!(w.name, "checkout");
        assert_eq!(w.tags.len(), 2);
        let shares = estate.shares();
        assert_eq!(shares.len(), 2);
        assert_eq!(shares[0].shared_with, "111122223333");
        assert_eq!(shares[0].status, "ACCEPTED");
        assert_eq!(shares[0].permission_type.as_deref(), Some("READONLY"));
        assert_eq!(shares[0].share_id.len(), 32);
        assert_eq!(shares[1].share_id, "22222222222222222222222222222222");
        assert_eq!(shares[1].permission_type.as_deref(), Some("CONTRIBUTOR"));
    }

    #[test]
    fn bad_seeds_are_refused_with_the_reason() {
        let cases = [
            (
                format!("[[resources]]\ntype = \"workload\"\narn = \"{TEMPLATE}\""),
                "not a workload ARN",
            ),
            (
                format!(
                    "[[resources]]\ntype = \"review-template\"\narn = \"{TEMPLATE}\"\n[[resources.shares]]\nshared_with = \"ou-ab12-11111111\"\npermission_type = \"READONLY\""
                ),
                "workload shares only",
            ),
            (
                format!(
                    "[[resources]]\ntype = \"review-template\"\narn = \"{TEMPLATE}\"\n[[resources.shares]]\nshared_with = \"everyone\""
                ),
                "not an account id",
            ),
            (
                format!(
                    "[[resources]]\ntype = \"review-template\"\narn = \"{TEMPLATE}\"\n[[resources.shares]]\nshared_with = \"ou-ab12-11111111\"\n[[resources.shares]]\nshared_with = \"ou-ab12-11111111\""
                ),
                "already shared",
            ),
            (
                format!(
                    "[[resources]]\ntype = \"review-template\"\narn = \"{TEMPLATE}\"\n[[resources.shares]]\nshared_with = \"ou-ab12-11111111\"\nshare_id = \"XYZ\""
                ),
                "32 lowercase hex",
            ),
        ];
        for (text, reason) in cases {
            let seed = Seed::parse(&text).unwrap();
            let e = Estate::default().apply(&seed).unwrap_err().to_string();
            assert!(e.contains(reason) && e.starts_with("resources[0]"), "{e}");
        }
        for (text, reason) in [
            (
                "[[resources]]\ntype = \"dashboard\"\narn = \"x\"",
                "unknown resource type",
            ),
            (
                "[[resources]]\ntype = \"lens\"\narn = \"x\"\ncolour = 1",
                "colour",
            ),
            (
                &format!(
                    "[[resources]]\ntype = \"review-template\"\narn = \"{TEMPLATE}\"\n[[resources.shares]]\nshared_with = \"ou-ab12-11111111\"\nstatus = \"DONE\""
                ),
                "DONE",
            ),
        ] {
            let e = Seed::parse(text).unwrap_err();
            assert!(e.contains(reason), "{e}");
        }
    }

    #[test]
    fn statuses_and_permissions_parse_from_their_model_names() {
        for s in ShareStatus::ALL {
            assert_eq!(s.as_str().parse::<ShareStatus>(), Ok(s));
        }
        assert!("accepted".parse::<ShareStatus>().is_err());
        assert_eq!("CONTRIBUTOR".parse(), Ok(PermissionType::Contributor));
        assert!("WRITE".parse::<PermissionType>().is_err());
    }
}
