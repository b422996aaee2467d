//! Closing the side door: a policy that denies every share-creating and share-updating
//! Well-Architected action to everyone but the gateway's role, so shares can only be made
//! through the gateway. The actions come from the service model (the operation table generated
//! from botocore's wellarchitected service-2.json), not a hand-kept list.

use serde_json::{Value, json};

use crate::operation;

/// The Well-Architected operations that create or change a share: `Create…Share` and
/// `Update…Share` (UpdateShareInvitation is the recipient accepting, not sharing).
pub fn share_writing_actions() -> Vec<&'static str> {
    let mut names: Vec<&'static str> = operation::all()
        .iter()
        .map(|op| op.name)
        .filter(|name| {
            (name.starts_with("Create") || name.starts_with("Update")) && name.ends_with("Share")
        })
        .collect();
    names.sort_unstable();
    names
}

/// Whether `arn` is an IAM role ARN (`arn:<partition>:iam::<account>:role/<path/>name`), with
/// no wildcards.
pub fn is_role_arn(arn: &str) -> bool {
    crate::identity::exchange::is_principal_arn(arn)
        && arn.split(':').nth(2) == Some("iam")
        && arn
            .splitn(6, ':')
            .nth(5)
            .and_then(|resource| resource.strip_prefix("role/"))
            .is_some_and(|r| !r.is_empty() && !r.ends_with('/'))
        && !arn.contains(['*', '?'])
}

/// The deny statement shared by both policy kinds.
fn statement(gateway_role_arn: &str) -> Value {
    let actions: Vec<String> = share_writing_actions()
        .iter()
        .map(|a| format!("wellarchitected:{a}"))
        .collect();
    json!({
        "Sid": "WaguardSharesOnlyThroughTheGateway",
        "Effect": "Deny",
        "Action": actions,
        "Resource": "*",
        // aws:PrincipalArn of a role session is the role's ARN, so the gateway's sessions
        // (IRSA, Pod Identity) are the exception whatever their session names.
        "Condition": {"ArnNotEquals": {"aws:PrincipalArn": gateway_role_arn}}
    })
}

/// A service control policy for the organization (or the OUs/accounts that own templates).
pub fn service_control_policy(gateway_role_arn: &str) -> Value {
    json!({"Version": "2012-10-17", "Statement": [statement(gateway_role_arn)]})
}

/// The same deny as an identity-based policy, for accounts outside AWS Organizations or a
/// permissions boundary: attach it to every role and user that could share.
pub fn identity_policy(gateway_role_arn: &str) -> Value {
    service_control_policy(gateway_role_arn)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_actions_are_every_create_and_update_share_of_the_model() {
        let actions = share_writing_actions();
        for expected in [
            "CreateLensShare",
            "CreateProfileShare",
            "CreateTemplateShare",
            "CreateWorkloadShare",
            "UpdateWorkloadShare",
        ] {
            assert!(actions.contains(&expected), "{actions:?}");
        }
        assert!(!actions.contains(&"UpdateShareInvitation"));
        assert!(!actions.iter().any(|a| a.starts_with("Delete")));
        // Every one is a real operation of the model, and writes.
        for a in &actions {
            let op = operation::by_name(a).unwrap();
            assert_eq!(op.access, operation::Access::Write, "{a}");
        }
    }

    #[test]
    fn the_policy_denies_them_to_everyone_but_the_gateway_role() {
        let role = "arn:aws:iam::111122223333:role/waguard/waguard-gateway";
        let scp = service_control_policy(role);
        let s = &scp["Statement"][0];
        assert_eq!(scp["Version"], "2012-10-17");
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Resource"], "*");
        assert_eq!(s["Condition"]["ArnNotEquals"]["aws:PrincipalArn"], role);
        assert_eq!(
            s["Action"].as_array().unwrap().len(),
            share_writing_actions().len()
        );
        assert!(is_role_arn(role));
        for bad in [
            "arn:aws:iam::111122223333:user/x",
            "arn:aws:sts::111122223333:assumed-role/r/s",
            "arn:aws:iam::111122223333:role/*",
            "arn:aws:iam::1111:role/x",
            "role/x",
        ] {
            assert!(!is_role_arn(bad), "{bad}");
        }
    }
}
