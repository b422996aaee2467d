//! `waguard policy test` and `waguard policy eval` as a policy author and CI run them.

use std::path::Path;
use std::process::{Command, Output};

use serde_json::Value;

const REPO: &str = env!("CARGO_MANIFEST_DIR");

fn waguard(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_waguard"))
        .args(args)
        .current_dir(REPO)
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
    let d = tempfile::tempdir().unwrap();
    for (name, text) in files {
        let p = d.path().join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    }
    d
}

/// `N passed, M failed` -> (N, M).
fn summary(line: &str) -> Option<(usize, usize)> {
    let (passed, failed) = line.split_once(" passed, ")?;
    let failed = failed.strip_suffix(" failed")?;
    let all_digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !all_digits(passed) || !all_digits(failed) {
        return None;
    }
    Some((passed.parse().ok()?, failed.parse().ok()?))
}

const POLICY: &str = r#"package waguard.authz
import rego.v1
default decision := {"allow": false, "reasons": ["not approved"]}
"#;

#[test]
fn shipped_policy_tests_all_pass() {
    let out = waguard(&["policy", "test", "policies/"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let last = text.lines().last().unwrap_or_default();
    let (passed, failed) = summary(last).unwrap_or_else(|| panic!("summary line: {last:?}"));
    assert!(passed > 0, "{text}");
    assert_eq!(failed, 0, "{text}");
    assert_eq!(
        text.lines().filter(|l| l.starts_with("PASS ")).count(),
        passed,
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("PASS data.waguard.authz_test.test_")),
        "{text}"
    );
}

#[test]
fn policy_test_defaults_to_the_policies_directory() {
    let out = waguard(&["policy", "test"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    assert!(
        summary(text.lines().last().unwrap_or_default()).is_some_and(|(p, f)| p > 0 && f == 0),
        "{text}"
    );
}

#[test]
fn a_failing_test_fails_the_command_and_is_named() {
    let d = dir_with(&[
        ("authz.rego", POLICY),
        (
            "authz_test.rego",
            "package waguard.authz_test\nimport rego.v1\nimport data.waguard.authz\n\
             test_denies_by_default if not authz.decision.allow\n\
             test_allows_by_default if authz.decision.allow\n",
        ),
    ]);
    let out = waguard(&["policy", "test", d.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("PASS data.waguard.authz_test.test_denies_by_default")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("FAIL data.waguard.authz_test.test_allows_by_default")),
        "{text}"
    );
    assert_eq!(text.lines().last(), Some("1 passed, 1 failed"), "{text}");
}

#[test]
fn a_directory_without_tests_fails() {
    let d = dir_with(&[("authz.rego", POLICY)]);
    let out = waguard(&["policy", "test", d.path().to_str().unwrap()]);
    let text = stdout(&out);
    assert!(!out.status.success(), "{text}");
    assert_eq!(text.lines().last(), Some("0 passed, 0 failed"), "{text}");
}

#[test]
fn a_policy_that_does_not_parse_fails_with_its_file_name() {
    let d = dir_with(&[
        ("authz.rego", "package waguard.authz\ndecision := {{{\n"),
        (
            "authz_test.rego",
            "package waguard.authz_test\nimport rego.v1\ntest_x if true\n",
        ),
    ]);
    let out = waguard(&["policy", "test", d.path().to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("authz.rego"), "{}", stderr(&out));
}

fn eval(input: &str) -> (Output, Value) {
    let out = waguard(&["policy", "eval", "--input", input, "--dir", "policies"]);
    let text = stdout(&out);
    assert!(out.status.success(), "{text}\n{}", stderr(&out));
    let json: Value =
        serde_json::from_str(&text).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {text}"));
    (out, json)
}

#[test]
fn eval_prints_the_denial_and_its_reasons() {
    let (_, json) = eval("policies/examples/deny-template-share.json");
    assert_eq!(json["decision"]["allow"], Value::Bool(false), "{json:#}");
    let reasons = json["decision"]["reasons"].as_array().unwrap();
    assert!(!reasons.is_empty(), "{json:#}");
    assert!(
        reasons[0].as_str().unwrap().contains("ou-ab12-99999999"),
        "{json:#}"
    );
    let revision = json["policy_revision"].as_str().unwrap();
    assert_eq!(revision.len(), 64, "{json:#}");
    assert!(revision.bytes().all(|b| b.is_ascii_hexdigit()), "{json:#}");
}

#[test]
fn eval_prints_an_allow_for_an_approved_target() {
    let (out, json) = eval("policies/examples/allow-template-share.json");
    assert_eq!(json["decision"]["allow"], Value::Bool(true), "{json:#}");
    // Pretty-printed, for people reading it.
    assert!(
        stdout(&out).contains("\n  \"decision\""),
        "{}",
        stdout(&out)
    );
}

#[test]
fn eval_rejects_an_input_that_breaks_the_schema_and_names_the_field() {
    let example = Path::new(REPO).join("policies/examples/deny-template-share.json");
    let mut input: Value =
        serde_json::from_str(&std::fs::read_to_string(example).unwrap()).unwrap();
    input["share"]["target_type"] = Value::String("group".into());
    input["sharedWith"] = Value::String("ou-ab12-11111111".into());
    let d = dir_with(&[("input.json", &input.to_string())]);
    let path = d.path().join("input.json");
    let out = waguard(&[
        "policy",
        "eval",
        "--input",
        path.to_str().unwrap(),
        "--dir",
        "policies",
    ]);
    let err = stderr(&out);
    assert!(!out.status.success(), "{}", stdout(&out));
    assert!(err.contains("/share/target_type"), "{err}");
    assert!(err.contains("sharedWith"), "{err}");
    assert!(stdout(&out).is_empty(), "no decision for a rejected input");
}

#[test]
fn eval_names_an_input_file_that_is_not_json() {
    let d = dir_with(&[("input.json", "{\"operation\": ")]);
    let path = d.path().join("input.json");
    let out = waguard(&["policy", "eval", "--input", path.to_str().unwrap()]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("input.json"), "{}", stderr(&out));
}
