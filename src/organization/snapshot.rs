//! The organization's tree as read at one moment (root, OUs, accounts), and where a share
//! target sits in it.

use std::collections::HashMap;
use std::time::SystemTime;

use serde::{Deserialize, Serialize};

use crate::validate::{ShareTarget, Target};

/// AWS allows five levels of OUs under the root; anything deeper is a corrupt tree (or a
/// cycle) and is treated as unresolvable rather than walked forever.
const MAX_DEPTH: usize = 16;

/// An OU or account's place in the tree.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Node {
    pub name: String,
    /// The root (`r-…`) or OU (`ou-…`) directly above.
    pub parent: String,
    /// Accounts only: ACTIVE, SUSPENDED, PENDING_CLOSURE.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

/// The tree at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Snapshot {
    /// `o-…`
    pub id: String,
    /// `r-…`
    pub root: String,
    /// The management account's ID.
    pub management_account: Option<String>,
    pub ous: HashMap<String, Node>,
    pub accounts: HashMap<String, Node>,
    #[serde(skip, default = "SystemTime::now")]
    pub taken: SystemTime,
}

/// What the organization says about a share target (see the policy input's `share.target`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resolution {
    /// `Some(false)`: not in the organization; `None`: could not be resolved.
    pub in_organization: Option<bool>,
    /// Root first; for an account its ancestors, for an OU its ancestors then itself.
    pub ou_path: Vec<String>,
    /// The names along `ou_path` (the root is "Root").
    pub ou_path_names: Vec<String>,
    pub name: Option<String>,
    pub status: Option<String>,
}

impl Resolution {
    /// Not in the organization.
    pub fn outside() -> Resolution {
        Resolution {
            in_organization: Some(false),
            ..Resolution::default()
        }
    }
}

/// What the snapshot alone can say about a target.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    Known(Resolution),
    /// An account or OU the snapshot does not hold: it may have joined or moved since the
    /// snapshot was taken; ask Organizations.
    Missing(String),
}

impl Snapshot {
    /// Where `target` sits. IAM principals resolve to their account's place.
    pub fn lookup(&self, target: &Target) -> Lookup {
        match target.kind {
            ShareTarget::Organization => Lookup::Known(if target.id == self.id {
                Resolution {
                    in_organization: Some(true),
                    ..Resolution::default()
                }
            } else {
                Resolution::outside()
            }),
            ShareTarget::Ou => {
                if target.organization.as_ref().is_some_and(|o| *o != self.id)
                    || !self.could_hold_ou(&target.id)
                {
                    return Lookup::Known(Resolution::outside());
                }
                match self.ous.get(&target.id) {
                    Some(node) => self.placed(&target.id, node, true),
                    None => Lookup::Missing(target.id.clone()),
                }
            }
            ShareTarget::Account | ShareTarget::IamPrincipal => {
                let Some(account) = &target.account else {
                    return Lookup::Known(Resolution::default());
                };
                match self.accounts.get(account) {
                    Some(node) => self.placed(account, node, false),
                    None => Lookup::Missing(account.clone()),
                }
            }
            ShareTarget::Unknown => Lookup::Known(Resolution::default()),
        }
    }

    /// OU IDs carry their root's suffix (`r-ab12` holds `ou-ab12-…`): an OU with another
    /// suffix belongs to another organization.
    fn could_hold_ou(&self, ou: &str) -> bool {
        let suffix = self.root.strip_prefix("r-").unwrap_or(&self.root);
        ou.strip_prefix("ou-")
            .and_then(|rest| rest.split('-').next())
            .is_some_and(|s| s == suffix)
    }

    fn placed(&self, id: &str, node: &Node, include_self: bool) -> Lookup {
        match self.path_to(&node.parent) {
            Some((mut ids, mut names)) => {
                if include_self {
                    ids.push(id.to_string());
                    names.push(node.name.clone());
                }
                Lookup::Known(Resolution {
                    in_organization: Some(true),
                    ou_path: ids,
                    ou_path_names: names,
                    name: Some(node.name.clone()),
                    status: node.status.clone(),
                })
            }
            // A parent the snapshot does not hold: the tree changed while it was read.
            None => Lookup::Missing(id.to_string()),
        }
    }

    /// The ids and names from the root down to `parent` (inclusive).
    fn path_to(&self, parent: &str) -> Option<(Vec<String>, Vec<String>)> {
        let mut ids = Vec::new();
        let mut names = Vec::new();
        let mut at = parent;
        for _ in 0..MAX_DEPTH {
            if at == self.root {
                ids.push(self.root.clone());
                names.push("Root".to_string());
                ids.reverse();
                names.reverse();
                return Some((ids, names));
            }
            let node = self.ous.get(at)?;
            ids.push(at.to_string());
            names.push(node.name.clone());
            at = &node.parent;
        }
        None
    }

    pub fn age(&self) -> std::time::Duration {
        self.taken.elapsed().unwrap_or_default()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Root r-ab12 > payments (ou-ab12-11111111) > payments-prod (ou-ab12-22222222) >
    /// account 333748161105; Root > platform (ou-ab12-33333333) > account 444455556666
    /// (suspended 555566667777).
    pub fn example() -> Snapshot {
        let node = |name: &str, parent: &str, status: Option<&str>| Node {
            name: name.into(),
            parent: parent.into(),
            status: status.map(str::to_string),
        };
        Snapshot {
            id: "o-exampleorg01".into(),
            root: "r-ab12".into(),
            management_account: Some("111111111111".into()),
            ous: HashMap::from([
                ("ou-ab12-11111111".into(), node("payments", "r-ab12", None)),
                (
                    "ou-ab12-22222222".into(),
                    node("payments-prod", "ou-ab12-11111111", None),
                ),
                ("ou-ab12-33333333".into(), node("platform", "r-ab12", None)),
            ]),
            accounts: HashMap::from([
                (
                    "333748161105".into(),
                    node("pay-prod-1", "ou-ab12-22222222", Some("ACTIVE")),
                ),
                (
                    "444455556666".into(),
                    node("platform-tools", "ou-ab12-33333333", Some("ACTIVE")),
                ),
                (
                    "555566667777".into(),
                    node("old-platform", "ou-ab12-33333333", Some("SUSPENDED")),
                ),
            ]),
            taken: SystemTime::now(),
        }
    }

    fn known(s: &Snapshot, shared_with: &str) -> Resolution {
        match s.lookup(&Target::parse(shared_with)) {
            Lookup::Known(r) => r,
            Lookup::Missing(id) => panic!("{shared_with}: missing {id}"),
        }
    }

    #[test]
    fn an_account_resolves_to_its_ou_path_root_first() {
        let r = known(&example(), "333748161105");
        assert_eq!(r.in_organization, Some(true));
        assert_eq!(
            r.ou_path,
            ["r-ab12", "ou-ab12-11111111", "ou-ab12-22222222"]
        );
        assert_eq!(r.ou_path_names, ["Root", "payments", "payments-prod"]);
        assert_eq!(r.name.as_deref(), Some("pay-prod-1"));
        assert_eq!(r.status.as_deref(), Some("ACTIVE"));
    }

    #[test]
    fn an_ou_resolves_to_its_ancestors_then_itself_in_either_form() {
        let s = example();
        for form in [
            "ou-ab12-22222222",
            "arn:aws:organizations::111111111111:ou/o-exampleorg01/ou-ab12-22222222",
        ] {
            let r = known(&s, form);
            assert_eq!(
                r.ou_path,
                ["r-ab12", "ou-ab12-11111111", "ou-ab12-22222222"]
            );
            assert_eq!(r.name.as_deref(), Some("payments-prod"));
        }
        // Another organization's OU, by its ARN or by its root suffix.
        let other = "arn:aws:organizations::999999999999:ou/o-otherorg0001/ou-ab12-22222222";
        assert_eq!(known(&s, other).in_organization, Some(false));
        assert_eq!(known(&s, "ou-zz99-22222222").in_organization, Some(false));
    }

    #[test]
    fn organizations_iam_principals_and_unknowns() {
        let s = example();
        assert_eq!(known(&s, "o-exampleorg01").in_organization, Some(true));
        assert_eq!(
            known(
                &s,
                "arn:aws:organizations::111111111111:organization/o-exampleorg01"
            )
            .in_organization,
            Some(true)
        );
        assert_eq!(known(&s, "o-otherorg0001").in_organization, Some(false));
        let role = known(&s, "arn:aws:iam::444455556666:role/deploy");
        assert_eq!(role.ou_path, ["r-ab12", "ou-ab12-33333333"]);
        assert_eq!(known(&s, "not-a-target").in_organization, None);
        assert_eq!(
            known(&s, "555566667777").status.as_deref(),
            Some("SUSPENDED")
        );
    }

    #[test]
    fn targets_the_snapshot_does_not_hold_are_missing() {
        let s = example();
        assert_eq!(
            s.lookup(&Target::parse("123456789012")),
            Lookup::Missing("123456789012".into())
        );
        assert_eq!(
            s.lookup(&Target::parse("ou-ab12-99999999")),
            Lookup::Missing("ou-ab12-99999999".into())
        );
        // A cycle or a parent that is not there is not walked forever.
        let mut broken = example();
        broken.ous.get_mut("ou-ab12-11111111").unwrap().parent = "ou-ab12-22222222".into();
        assert!(matches!(
            broken.lookup(&Target::parse("333748161105")),
            Lookup::Missing(_)
        ));
    }
}
