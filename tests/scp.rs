//! `waguard scp`: the side door closed. The printed policy must deny exactly the
//! share-creating and share-updating actions of the service model, as botocore (installed in
//! the test venv, independent of waguard's generated operation table) defines them, to everyone
//! but the gateway's role.

#[path = "common/python.rs"]
mod python;

use std::process::Command;

const ROLE: &str = "arn:aws:iam::111122223333:role/platform/waguard-gateway";

fn scp(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_waguard"))
        .arg("scp")
        .args(args)
        .output()
        .unwrap()
}

/// Create*Share and Update*Share operations of botocore's wellarchitected model.
fn model_share_writers() -> Vec<String> {
    let env = python::env();
    let out = Command::new(env.python())
        .args([
            "-c",
            "import botocore.session, json; m = botocore.session.get_session().get_service_model('wellarchitected'); \
             print(json.dumps(sorted(o for o in m.operation_names if (o.startswith('Create') or o.startswith('Update')) and o.endswith('Share'))))",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

#[test]
fn the_scp_denies_every_share_writing_action_of_the_model_except_to_the_gateway_role() {
    let expected: Vec<String> = model_share_writers()
        .into_iter()
        .map(|o| format!("wellarchitected:{o}"))
        .collect();
    assert!(expected.len() >= 5, "{expected:?}");
    for args in [
        vec!["--gateway-role-arn", ROLE],
        vec!["--gateway-role-arn", ROLE, "--identity-policy"],
    ] {
        let out = scp(&args);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let policy: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(policy["Version"], "2012-10-17");
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(statements.len(), 1);
        let s = &statements[0];
        assert_eq!(s["Effect"], "Deny");
        assert_eq!(s["Resource"], "*");
        let mut actions: Vec<String> = s["Action"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap().to_string())
            .collect();
        actions.sort();
        assert_eq!(actions, expected);
        assert_eq!(
            s["Condition"],
            serde_json::json!({"ArnNotEquals": {"aws:PrincipalArn": ROLE}})
        );
    }
}

#[test]
fn anything_but_a_role_arn_is_refused() {
    for bad in [
        "arn:aws:iam::111122223333:role/*",
        "arn:aws:iam::111122223333:user/admin",
        "arn:aws:sts::111122223333:assumed-role/waguard/i-1",
        "waguard",
    ] {
        let out = scp(&["--gateway-role-arn", bad]);
        assert!(!out.status.success(), "{bad}");
        assert!(out.stdout.is_empty());
        assert!(String::from_utf8_lossy(&out.stderr).contains("not an IAM role ARN"));
    }
}
