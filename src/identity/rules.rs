//! `[[identities]]` in the callers file: which AWS identities (as STS names them) belong to
//! which team. The first rule whose `arn` glob matches wins.
//!
//! STS names an assumed-role session `arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION`, without
//! the role's path, so a session matches the rules for its role, `arn:aws:iam::ACCOUNT:role/ROLE`
//! (and `…:role/any/path/ROLE`: role names are unique within an account, paths are not part of
//! the session ARN), as well as rules written for the session ARN itself.

use std::collections::BTreeMap;

use serde::Deserialize;

/// One `[[identities]]` entry.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityRule {
    /// A glob over the IAM role or user ARN: `*` matches any run of characters, `?` one.
    pub arn: String,
    pub team: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

impl IdentityRule {
    /// Why the rule cannot be used, if it cannot.
    pub fn problem(&self) -> Option<String> {
        if self.team.trim().is_empty() {
            return Some("team must not be empty".into());
        }
        let arn = &self.arn;
        let Some(rest) = arn.strip_prefix("arn:") else {
            return Some("arn must start with arn:".into());
        };
        let parts: Vec<&str> = rest.splitn(5, ':').collect();
        if parts.len() != 5 || !matches!(parts[1], "iam" | "sts") {
            return Some(
                "arn must be an IAM (arn:aws:iam::ACCOUNT:role/… or user/…) or STS ARN".into(),
            );
        }
        if parts[4].is_empty() || parts[3].is_empty() {
            return Some("arn must name an account and a resource".into());
        }
        // A path cannot be checked against a session ARN (STS leaves it out): a rule that
        // would restrict by path alone would match every role of the account.
        if let Some((path, name)) = role_path_and_name(arn)
            && !path.is_empty()
            && name.chars().all(|c| c == '*')
        {
            return Some(format!(
                "{arn:?} restricts roles by path only; STS session ARNs do not carry the role's path, so name the role (a prefix glob like …/Payments* is fine)"
            ));
        }
        None
    }
}

/// For `arn:P:iam::A:role/PATH/NAME`: (`PATH/`, `NAME`).
fn role_path_and_name(arn: &str) -> Option<(&str, &str)> {
    let (_, resource) = arn.split_once(":role/")?;
    match resource.rfind('/') {
        Some(i) => Some((&resource[..=i], &resource[i + 1..])),
        None => Some(("", resource)),
    }
}

/// `*` matches any run of characters, `?` exactly one; everything else itself.
pub fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// For a session ARN `arn:P:sts::A:assumed-role/ROLE/SESSION`: (`arn:P:iam::A:role/`, `ROLE`).
fn assumed_role(arn: &str) -> Option<(String, &str)> {
    let rest = arn.strip_prefix("arn:")?;
    let mut parts = rest.splitn(5, ':');
    let partition = parts.next()?;
    let service = parts.next()?;
    let _region = parts.next()?;
    let account = parts.next()?;
    let resource = parts.next()?;
    if service != "sts" {
        return None;
    }
    let role = resource.strip_prefix("assumed-role/")?.split('/').next()?;
    (!role.is_empty()).then(|| (format!("arn:{partition}:iam::{account}:role/"), role))
}

fn rule_matches(rule: &str, arn: &str) -> bool {
    if glob(rule, arn) {
        return true;
    }
    let (Some((role_prefix, role)), Some((rule_path, rule_name))) =
        (assumed_role(arn), role_path_and_name(rule))
    else {
        return false;
    };
    // The rule without its path, matched against the role the session belongs to.
    let Some(rule_prefix) = rule.strip_suffix(&format!("{rule_path}{rule_name}")) else {
        return false;
    };
    glob(rule_prefix, &role_prefix) && glob(rule_name, role)
}

/// The first rule matching `arn`.
pub fn find<'a>(rules: &'a [IdentityRule], arn: &str) -> Option<&'a IdentityRule> {
    rules.iter().find(|r| rule_matches(&r.arn, arn))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(arn: &str, team: &str) -> IdentityRule {
        IdentityRule {
            arn: arn.into(),
            team: team.into(),
            attributes: BTreeMap::new(),
        }
    }

    #[test]
    fn globs() {
        assert!(glob("a*c", "abbbc"));
        assert!(glob("a*", "a/b/c"));
        assert!(glob("a?c", "abc"));
        assert!(!glob("a?c", "ac"));
        assert!(!glob("abc", "abcd"));
        assert!(glob("*", ""));
        assert!(glob("*x*y", "zzxzzy"));
        assert!(!glob("*x*y", "zzxzz"));
    }

    #[test]
    fn sessions_match_their_roles_rules_with_or_without_a_path() {
        let rules = vec![
            rule("arn:aws:iam::111122223333:user/ci-*", "platform"),
            rule(
                "arn:aws:iam::111122223333:role/aws-reserved/sso.amazonaws.com/AWSReservedSSO_PaymentsDev_*",
                "payments",
            ),
            rule("arn:aws:iam::111122223333:role/Security", "security"),
            rule(
                "arn:aws:sts::444455556666:assumed-role/Audit/*@example.com",
                "audit",
            ),
        ];
        let team = |arn: &str| find(&rules, arn).map(|r| r.team.as_str());
        assert_eq!(
            team(
                "arn:aws:sts::111122223333:assumed-role/AWSReservedSSO_PaymentsDev_0123abcd/alice@example.com"
            ),
            Some("payments")
        );
        assert_eq!(
            team("arn:aws:sts::111122223333:assumed-role/Security/i-0abc"),
            Some("security")
        );
        assert_eq!(
            team("arn:aws:iam::111122223333:user/ci-deploy"),
            Some("platform")
        );
        assert_eq!(
            team("arn:aws:sts::444455556666:assumed-role/Audit/carol@example.com"),
            Some("audit")
        );
        // Another account, another role, a role name that only starts alike, a user named
        // like a role.
        assert_eq!(
            team("arn:aws:sts::999999999999:assumed-role/Security/x"),
            None
        );
        assert_eq!(
            team("arn:aws:sts::111122223333:assumed-role/SecurityAdmin/x"),
            None
        );
        assert_eq!(team("arn:aws:iam::111122223333:user/Security"), None);
        assert_eq!(
            team("arn:aws:sts::444455556666:assumed-role/Audit/mallory"),
            None
        );
        // The first matching rule wins.
        let both = vec![
            rule("arn:aws:iam::111122223333:role/*", "a"),
            rule("arn:aws:iam::111122223333:role/Security", "b"),
        ];
        assert_eq!(
            find(&both, "arn:aws:sts::111122223333:assumed-role/Security/s")
                .map(|r| r.team.as_str()),
            Some("a")
        );
    }

    #[test]
    fn rules_that_cannot_work_are_refused() {
        assert!(
            rule("arn:aws:iam::111122223333:role/teams/*", "t")
                .problem()
                .is_some()
        );
        assert!(
            rule("arn:aws:iam::111122223333:role/teams/Pay*", "t")
                .problem()
                .is_none()
        );
        assert!(
            rule("arn:aws:iam::111122223333:role/*", "t")
                .problem()
                .is_none()
        );
        assert!(rule("arn:aws:s3:::bucket", "t").problem().is_some());
        assert!(rule("role/x", "t").problem().is_some());
        assert!(
            rule("arn:aws:iam::111122223333:role/x", " ")
                .problem()
                .is_some()
        );
    }
}
