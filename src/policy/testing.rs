//! Policy authoring tools: run a policy directory's Rego unit tests, and decide one input document.
//!
//! `waguard policy test` and `waguard policy eval` are built on these. A test is a rule whose name
//! starts with `test_`, declared in a `*_test.rego` module; it passes only if it evaluates to
//! exactly `true` (false, undefined, any other value or an evaluation error fail it), as in
//! `opa test`.

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::{Decision, Policy, PolicyError, PolicySources};

/// Rules whose names start with this are tests.
pub const TEST_PREFIX: &str = "test_";

/// The JSON Schema of the input document, looked up in the policy directory.
pub const INPUT_SCHEMA_FILE: &str = "input.schema.json";

/// The outcome of one test rule.
#[derive(Debug, Clone, PartialEq)]
pub struct TestResult {
    /// The package as a rule path: `data.waguard.authz_test`.
    pub package: String,
    /// The rule name: `test_read_operation_allowed`.
    pub name: String,
    /// The `*_test.rego` file that declares it.
    pub file: PathBuf,
    pub passed: bool,
    /// Why it failed; `None` when it passed.
    pub reason: Option<String>,
    pub duration: Duration,
}

impl TestResult {
    /// The full rule path: `data.waguard.authz_test.test_x`.
    pub fn rule(&self) -> String {
        format!("{}.{}", self.package, self.name)
    }
}

/// Every test of a policy directory, in file order and, within a file, in declaration order.
#[derive(Debug, Clone)]
pub struct TestReport {
    pub dir: PathBuf,
    pub results: Vec<TestResult>,
}

impl TestReport {
    pub fn passed(&self) -> usize {
        self.results.iter().filter(|r| r.passed).count()
    }

    pub fn failed(&self) -> usize {
        self.results.len() - self.passed()
    }

    /// True when at least one test ran and none failed: a directory without tests is a failure,
    /// so a misplaced or misnamed test file cannot make CI green.
    pub fn is_success(&self) -> bool {
        !self.results.is_empty() && self.failed() == 0
    }

    /// One line per test, then the summary line `N passed, M failed`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if self.results.is_empty() {
            let _ = writeln!(
                out,
                "no tests found in {}: tests are rules named {TEST_PREFIX}* in *_test.rego files",
                self.dir.display()
            );
        }
        for r in &self.results {
            let ms = r.duration.as_secs_f64() * 1000.0;
            if r.passed {
                let _ = writeln!(out, "PASS {} ({ms:.1}ms)", r.rule());
            } else {
                let reason = r.reason.as_deref().unwrap_or("failed");
                // Keep one line per test; continuation lines of long errors are indented.
                let reason = reason.trim_end().replace('\n', "\n    ");
                let _ = writeln!(out, "FAIL {} ({ms:.1}ms): {reason}", r.rule());
            }
        }
        let _ = write!(out, "{} passed, {} failed", self.passed(), self.failed());
        out
    }
}

/// Loads `dir` with its tests and data, runs every `test_*` rule of the test modules.
///
/// Errors are for a directory that cannot be read or compiled; failing tests are in the report.
pub fn run_tests(dir: &Path) -> Result<TestReport, PolicyError> {
    let sources = PolicySources::read(dir)?;
    let mut engine = sources.engine(true)?;
    let packages = engine
        .get_policy_package_components()
        .map_err(|e| compile_error(dir, e))?;

    let mut tests = Vec::new();
    let mut seen = HashSet::new();
    for file in &sources.tests {
        // The engine labels each module with the path it was added under (PolicySources::engine).
        let source = file.path.display().to_string();
        let Some(package) = packages.iter().find(|p| p.source_file == source) else {
            continue;
        };
        let package = package_path(&package.components);
        for candidate in test_rule_candidates(&file.text) {
            // The scan only proposes names; the parsed module says which are rule heads.
            let declared = engine
                .has_declared_rule_rooted_at(&source, &candidate.name)
                .map_err(|e| compile_error(dir, e))?;
            if declared && seen.insert((package.clone(), candidate.name.clone())) {
                tests.push((package.clone(), candidate, file.path.clone()));
            }
        }
    }

    // Preparing the engine (analysis of every module) happens on the first evaluation; doing it
    // here keeps it out of the first test's time and reports a policy that does not compile once.
    engine
        .eval_query("true".to_string(), false)
        .map_err(|e| compile_error(dir, e))?;

    let mut results = Vec::with_capacity(tests.len());
    for (package, Candidate { name, function }, file) in tests {
        if function {
            results.push(TestResult {
                reason: Some(format!(
                    "{name} is a function (it takes arguments); a test takes none, so rename the helper or drop its arguments"
                )),
                package,
                name,
                file,
                passed: false,
                duration: Duration::ZERO,
            });
            continue;
        }
        let start = Instant::now();
        let outcome = engine.eval_rule(format!("{package}.{name}"));
        let duration = start.elapsed();
        let reason = match outcome {
            Ok(v) if v == regorus::Value::from(true) => None,
            Ok(regorus::Value::Undefined) => {
                Some("undefined: a condition in the test's body was not met".to_string())
            }
            Ok(v) if v == regorus::Value::from(false) => Some("evaluated to false".to_string()),
            Ok(v) => Some(format!(
                "evaluated to {}, not true (is a fixture named {TEST_PREFIX}*?)",
                preview(&v)
            )),
            Err(e) => Some(format!("error: {e}")),
        };
        results.push(TestResult {
            package,
            name,
            file,
            passed: reason.is_none(),
            reason,
            duration,
        });
    }
    Ok(TestReport {
        dir: dir.to_path_buf(),
        results,
    })
}

fn compile_error(dir: &Path, e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Compile {
        dir: dir.to_path_buf(),
        message: e.to_string(),
    }
}

/// A rule path for package components: `["waguard", "authz_test"]` -> `data.waguard.authz_test`.
fn package_path(components: &[String]) -> String {
    let mut path = String::from("data");
    for c in components {
        let identifier = c
            .chars()
            .next()
            .is_some_and(|ch| ch.is_ascii_alphabetic() || ch == '_')
            && c.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '_');
        if identifier {
            path.push('.');
            path.push_str(c);
        } else {
            // Quoted components (`package x["a-b"]`) need bracket notation in a rule path.
            path.push('[');
            path.push_str(&Value::String(c.clone()).to_string());
            path.push(']');
        }
    }
    path
}

/// A value shortened for a one-line message.
fn preview(v: &regorus::Value) -> String {
    const MAX: usize = 80;
    let text = serde_json::to_string(v).unwrap_or_else(|_| "a value".to_string());
    if text.chars().count() <= MAX {
        text
    } else {
        let cut: String = text.chars().take(MAX).collect();
        format!("{cut}...")
    }
}

/// A name in a test module that may be a test rule.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidate {
    name: String,
    /// Declared with arguments (`test_x(a) := ...`): a function, which cannot be run as a test.
    function: bool,
}

/// `test_*` identifiers of a Rego source that could be rule heads, outside comments and strings,
/// and not after a `.` (references such as `data.x.test_y`). Identifiers that start a line (rule
/// heads, possibly after `default`) come first, in order, so results follow declaration order.
fn test_rule_candidates(text: &str) -> Vec<Candidate> {
    let mut heads: Vec<(&str, bool)> = Vec::new();
    let mut others: Vec<(&str, bool)> = Vec::new();
    for word in super::scan::words(text) {
        if !word.text.starts_with(TEST_PREFIX) || word.after_dot {
            continue;
        }
        if word.line_start {
            let rest = text[word.end..].trim_start_matches([' ', '\t']);
            heads.push((word.text, rest.starts_with('(')));
        } else {
            others.push((word.text, false));
        }
    }
    let mut out: Vec<Candidate> = Vec::new();
    for (name, function) in heads.into_iter().chain(others) {
        match out.iter_mut().find(|c| c.name == name) {
            Some(c) => c.function |= function,
            None => out.push(Candidate {
                name: name.to_string(),
                function,
            }),
        }
    }
    out
}

/// Why an input document could not be decided.
#[derive(Debug, thiserror::Error)]
pub enum EvalError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: not valid JSON: {message}")]
    Json { path: PathBuf, message: String },
    #[error("the input schema is not a valid JSON Schema: {message}")]
    InvalidSchema { message: String },
    #[error(
        "input does not match the input schema ({} problem{}):{}",
        .violations.len(),
        if .violations.len() == 1 { "" } else { "s" },
        render_violations(.violations)
    )]
    Input { violations: Vec<SchemaViolation> },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

/// One way an input document breaks the schema.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SchemaViolation {
    /// JSON pointer to the offending value: `/share/target_type`; empty for the document itself.
    pub pointer: String,
    pub message: String,
}

impl std::fmt::Display for SchemaViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let at = if self.pointer.is_empty() {
            "(document root)"
        } else {
            &self.pointer
        };
        write!(f, "{at}: {}", self.message)
    }
}

fn render_violations(violations: &[SchemaViolation]) -> String {
    violations.iter().map(|v| format!("\n  {v}")).collect()
}

/// A decision for one input document, with the revision of the policy that made it.
#[derive(Debug, Clone, PartialEq)]
pub struct EvalOutput {
    pub decision: Decision,
    pub policy_revision: String,
}

impl EvalOutput {
    /// `{"decision": {"allow": .., "reasons": [..]}, "policy_revision": ".."}`.
    pub fn to_json(&self) -> Value {
        json!({
            "decision": {
                "allow": self.decision.allow,
                "reasons": self.decision.reasons,
            },
            "policy_revision": self.policy_revision,
        })
    }
}

/// Validates `input` against `schema` (when given), then decides it with the policy in `dir`
/// exactly as the gateway would.
pub fn eval_input(
    dir: &Path,
    input: &Value,
    schema: Option<&Value>,
) -> Result<EvalOutput, EvalError> {
    if let Some(schema) = schema {
        validate_input(input, schema)?;
    }
    let policy = Policy::load(dir)?;
    Ok(EvalOutput {
        decision: policy.evaluate(input),
        policy_revision: policy.revision().to_string(),
    })
}

/// Checks `input` against a JSON Schema and reports every violation, ordered by path.
pub fn validate_input(input: &Value, schema: &Value) -> Result<(), EvalError> {
    let validator = jsonschema::options()
        .should_validate_formats(true)
        .build(schema)
        .map_err(|e| EvalError::InvalidSchema {
            message: e.to_string(),
        })?;
    let mut violations: Vec<SchemaViolation> = validator
        .iter_errors(input)
        .map(|e| SchemaViolation {
            pointer: e.instance_path().as_str().to_string(),
            message: e.to_string(),
        })
        .collect();
    if violations.is_empty() {
        return Ok(());
    }
    violations.sort();
    violations.dedup();
    Err(EvalError::Input { violations })
}

/// `<dir>/input.schema.json`, parsed, if the policy directory ships one.
pub fn load_input_schema(dir: &Path) -> Result<Option<Value>, EvalError> {
    let path = dir.join(INPUT_SCHEMA_FILE);
    if !path.is_file() {
        return Ok(None);
    }
    read_json_file(&path).map(Some)
}

/// Reads a JSON document; errors name the file.
pub fn read_json_file(path: &Path) -> Result<Value, EvalError> {
    let text = std::fs::read_to_string(path).map_err(|source| EvalError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    serde_json::from_str(&text).map_err(|e| EvalError::Json {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const REPO_POLICIES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/policies");

    use crate::policy::tests::dir_with;

    const POLICY: &str = r#"
package waguard.authz
import rego.v1
default decision := {"allow": false, "reasons": ["not approved"]}
decision := {"allow": true, "reasons": ["approved"]} if {
    input.team == "payments"
}
"#;

    const TESTS: &str = r#"
# test_in_a_comment is not a test
package waguard.authz_test
import rego.v1
import data.waguard.authz

fixture := {"team": "payments"}

test_allows_payments if {
    authz.decision.allow with input as fixture
}

test_denies_others_wrongly if {
    authz.decision.allow with input as {"team": "other"}
}

test_undefined if {
    input.no_such_field == "x"
}

test_message_mentions_test_in_string if {
    msg := "test_not_a_rule"
    contains(msg, "not_a")
}

default test_with_default := false
test_with_default if authz.decision.reasons == ["something else"]
"#;

    fn result<'a>(report: &'a TestReport, name: &str) -> &'a TestResult {
        report
            .results
            .iter()
            .find(|r| r.name == name)
            .unwrap_or_else(|| panic!("{name} not run:\n{}", report.render()))
    }

    #[test]
    fn reports_each_test_rule_in_declaration_order() {
        let d = dir_with(&[
            ("waguard/authz.rego", POLICY),
            ("waguard/authz_test.rego", TESTS),
        ]);
        let report = run_tests(d.path()).unwrap();
        let names: Vec<&str> = report.results.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(
            names,
            [
                "test_allows_payments",
                "test_denies_others_wrongly",
                "test_undefined",
                "test_message_mentions_test_in_string",
                "test_with_default",
            ]
        );
        assert!(result(&report, "test_allows_payments").passed);
        assert!(result(&report, "test_message_mentions_test_in_string").passed);
        let wrong = result(&report, "test_denies_others_wrongly");
        assert!(!wrong.passed);
        assert_eq!(wrong.package, "data.waguard.authz_test");
        assert!(wrong.file.ends_with("waguard/authz_test.rego"));
        // `default ... := false` plus a body that does not hold is false, not undefined.
        let defaulted = result(&report, "test_with_default");
        assert!(!defaulted.passed);
        assert_eq!(defaulted.reason.as_deref(), Some("evaluated to false"));
        assert_eq!((report.passed(), report.failed()), (2, 3));
        assert!(!report.is_success());

        let text = report.render();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 6, "{text}");
        assert!(
            lines[0].starts_with("PASS data.waguard.authz_test.test_allows_payments ("),
            "{text}"
        );
        assert!(lines[0].ends_with("ms)"), "{text}");
        assert!(
            lines[1].starts_with("FAIL data.waguard.authz_test.test_denies_others_wrongly ("),
            "{text}"
        );
        assert!(lines[1].ends_with("): undefined: a condition in the test's body was not met"));
        assert_eq!(lines[5], "2 passed, 3 failed");
    }

    #[test]
    fn undefined_test_rule_counts_as_failed() {
        let d = dir_with(&[
            ("authz.rego", POLICY),
            (
                "authz_test.rego",
                "package waguard.authz_test\nimport rego.v1\ntest_never if { 1 == 2 }\n",
            ),
        ]);
        let report = run_tests(d.path()).unwrap();
        assert_eq!(report.results.len(), 1);
        let r = &report.results[0];
        assert!(!r.passed);
        assert!(
            r.reason.as_deref().unwrap().starts_with("undefined"),
            "{r:?}"
        );
        assert_eq!(report.render().lines().last(), Some("0 passed, 1 failed"));
    }

    #[test]
    fn non_boolean_and_erroring_tests_fail_without_stopping_the_run() {
        let tests = r#"
package waguard.authz_test
import rego.v1

test_fixture := {"team": "payments"}

conflicting := 1 if true
conflicting := 2 if true

test_conflict if conflicting == 1

test_after_error if true

test_helper(x) := x == 1
"#;
        let d = dir_with(&[("authz.rego", POLICY), ("authz_test.rego", tests)]);
        let report = run_tests(d.path()).unwrap();
        let fixture = result(&report, "test_fixture");
        assert!(!fixture.passed);
        assert!(
            fixture
                .reason
                .as_deref()
                .unwrap()
                .starts_with("evaluated to {\"team\":\"payments\"}, not true"),
            "{fixture:?}"
        );
        let conflict = result(&report, "test_conflict");
        assert!(!conflict.passed);
        assert!(
            conflict.reason.as_deref().unwrap().starts_with("error: "),
            "{conflict:?}"
        );
        assert!(
            result(&report, "test_after_error").passed,
            "{}",
            report.render()
        );
        let helper = result(&report, "test_helper");
        assert!(!helper.passed);
        assert!(
            helper.reason.as_deref().unwrap().contains("is a function"),
            "{helper:?}"
        );
        assert_eq!(report.failed(), 3);
    }

    #[test]
    fn tests_in_several_files_and_packages_all_run() {
        let d = dir_with(&[
            ("authz.rego", POLICY),
            (
                "a/one_test.rego",
                "package waguard.one_test\nimport rego.v1\ntest_a if true\n",
            ),
            (
                "b/two_test.rego",
                "package waguard.authz\nimport rego.v1\ntest_b if decision.allow == false\n",
            ),
        ]);
        let report = run_tests(d.path()).unwrap();
        let rules: Vec<String> = report.results.iter().map(TestResult::rule).collect();
        assert_eq!(
            rules,
            ["data.waguard.one_test.test_a", "data.waguard.authz.test_b"]
        );
        assert!(report.is_success(), "{}", report.render());
    }

    #[test]
    fn a_directory_without_tests_is_not_a_success() {
        let d = dir_with(&[("authz.rego", POLICY)]);
        let report = run_tests(d.path()).unwrap();
        assert_eq!((report.passed(), report.failed()), (0, 0));
        assert!(!report.is_success());
        let text = report.render();
        assert!(text.starts_with("no tests found in "), "{text}");
        assert_eq!(text.lines().last(), Some("0 passed, 0 failed"));
    }

    #[test]
    fn a_test_file_that_does_not_parse_is_an_error_naming_it() {
        let d = dir_with(&[
            ("authz.rego", POLICY),
            (
                "authz_test.rego",
                "package waguard.authz_test\ntest_x if {{{\n",
            ),
        ]);
        let err = run_tests(d.path()).unwrap_err().to_string();
        assert!(err.contains("authz_test.rego"), "{err}");
    }

    #[test]
    fn candidates_skip_comments_strings_and_references() {
        let text = "# test_comment\npackage p\nimport data.q.test_imported\nx := \"test_string\"\ny := `test_raw`\ntest_real if data.q.test_ref\ndefault test_defaulted := false\n  z := test_used_before\ntest_used_before := true\n";
        let names: Vec<String> = test_rule_candidates(text)
            .into_iter()
            .map(|c| c.name)
            .collect();
        assert_eq!(names, ["test_real", "test_defaulted", "test_used_before"]);
    }

    #[test]
    fn quoted_package_components_use_brackets() {
        assert_eq!(
            package_path(&["waguard".into(), "authz_test".into()]),
            "data.waguard.authz_test"
        );
        assert_eq!(package_path(&["a-b".into()]), "data[\"a-b\"]");
    }

    fn repo_schema() -> Value {
        load_input_schema(Path::new(REPO_POLICIES))
            .unwrap()
            .expect("policies/input.schema.json")
    }

    fn example(name: &str) -> Value {
        read_json_file(&Path::new(REPO_POLICIES).join("examples").join(name)).unwrap()
    }

    #[test]
    fn schema_violations_are_reported_with_their_paths() {
        let mut input = example("deny-template-share.json");
        input["share"]["target_type"] = json!("group");
        input["caller"]["team"] = json!(7);
        input["extra"] = json!(true);
        input.as_object_mut().unwrap().remove("region");
        let err = validate_input(&input, &repo_schema()).unwrap_err();
        let EvalError::Input { violations } = &err else {
            panic!("{err}");
        };
        let pointers: Vec<&str> = violations.iter().map(|v| v.pointer.as_str()).collect();
        assert!(pointers.contains(&"/share/target_type"), "{err}");
        assert!(pointers.contains(&"/caller/team"), "{err}");
        let root: Vec<&str> = violations
            .iter()
            .filter(|v| v.pointer.is_empty())
            .map(|v| v.message.as_str())
            .collect();
        assert!(root.iter().any(|m| m.contains("\"region\"")), "{err}");
        assert!(root.iter().any(|m| m.contains("'extra'")), "{err}");
        let text = err.to_string();
        assert!(text.contains("/share/target_type: \"group\""), "{text}");
        assert!(text.contains("(document root): "), "{text}");
    }

    #[test]
    fn share_operations_need_their_share_fields() {
        let mut input = example("allow-template-share.json");
        input.as_object_mut().unwrap().remove("share");
        let err = validate_input(&input, &repo_schema())
            .unwrap_err()
            .to_string();
        assert!(err.contains("\"share\" is a required property"), "{err}");

        let mut input = example("allow-template-share.json");
        input["operation"] = json!("CreateWorkloadShare");
        let err = validate_input(&input, &repo_schema())
            .unwrap_err()
            .to_string();
        assert!(err.contains("/share: \"permission_type\""), "{err}");
    }

    #[test]
    fn an_invalid_schema_is_reported_as_such() {
        let err = validate_input(&json!({}), &json!({"type": 12})).unwrap_err();
        assert!(matches!(err, EvalError::InvalidSchema { .. }), "{err}");
    }

    #[test]
    fn example_inputs_are_allowed_and_denied_by_the_shipped_policy() {
        let dir = Path::new(REPO_POLICIES);
        let schema = repo_schema();
        let allow = eval_input(dir, &example("allow-template-share.json"), Some(&schema)).unwrap();
        assert!(allow.decision.allow, "{allow:?}");
        let deny = eval_input(dir, &example("deny-template-share.json"), Some(&schema)).unwrap();
        assert!(!deny.decision.allow);
        assert_eq!(
            deny.decision.reasons,
            [
                "team \"payments\" may not share review-template with ou \"ou-ab12-99999999\": not in the team's approved OUs"
            ]
        );
        assert_eq!(deny.policy_revision.len(), 64);
        let nested = eval_input(
            dir,
            &example("allow-account-in-approved-ou.json"),
            Some(&schema),
        )
        .unwrap();
        assert!(nested.decision.allow, "{nested:?}");
        let other_ou = eval_input(
            dir,
            &example("deny-account-in-unapproved-ou.json"),
            Some(&schema),
        )
        .unwrap();
        assert_eq!(
            other_ou.decision.reasons,
            [
                "team \"platform\" may not share review-template: account 888899990000 (sandbox-1) is under Root/sandbox, which is not under an OU approved for team \"platform\""
            ]
        );
        let out = deny.to_json();
        assert_eq!(out["decision"]["allow"], json!(false));
        assert_eq!(out["policy_revision"], json!(deny.policy_revision));
    }

    /// Inputs built by the gateway itself, from requests through the real router and validator.
    mod gateway_inputs {
        use std::collections::{BTreeMap, BTreeSet};
        use std::net::IpAddr;
        use std::sync::Arc;

        use http::HeaderMap;
        use time::macros::datetime;

        use super::*;
        use crate::auth::{Authenticated, Caller, Secret};
        use crate::operation::{self, route};
        use crate::organization::{Context, Resolution};
        use crate::policy::input;
        use crate::validate::validate;

        const TEMPLATE: &str = "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Areview-template%2F0123456789abcdef0123456789abcdef";
        const PROFILE: &str =
            "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Aprofile%2Fabc123";
        const WORKLOAD_ARN: &str = "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Aworkload%2F0123456789abcdef0123456789abcdef";
        const HEX: &str = "0123456789abcdef0123456789abcdef";

        fn build(method: &str, path: &str, query: Option<&str>, body: &str, ip: &str) -> Value {
            build_with(method, path, query, body, ip, None, None)
        }

        /// As the gateway builds it with `[organizations]`: the target as `placed`, and the
        /// organization's facts.
        fn build_with(
            method: &str,
            path: &str,
            query: Option<&str>,
            body: &str,
            ip: &str,
            placed: Option<&Resolution>,
            organization: Option<&Context>,
        ) -> Value {
            let caller = Caller {
                access_key_id: "AKWGDEMOPAYMENTS0001".into(),
                secret_access_key: Secret::new("secret"),
                principal: "alice@example.com".into(),
                team: "payments".into(),
                attributes: BTreeMap::from([("cost_center".into(), "cc-1001".into())]),
            };
            let auth = Authenticated {
                caller: Arc::new(caller),
                region: "us-east-1".into(),
                signed_at: datetime!(2026-11-26 10:00:00 UTC),
            };
            let routed = route(method, path, query).unwrap();
            let mut headers = HeaderMap::new();
            if !body.is_empty() {
                headers.insert(
                    http::header::CONTENT_TYPE,
                    "application/json".parse().unwrap(),
                );
            }
            let m: http::Method = method.parse().unwrap();
            let validated = validate(&routed, &m, &headers, body.as_bytes()).unwrap();
            let doc = input::build(
                &auth,
                &routed,
                &validated,
                placed,
                organization,
                method,
                path,
                ip.parse::<IpAddr>().unwrap(),
                datetime!(2026-11-26 10:00:00 UTC),
            );
            serde_json::to_value(doc).unwrap()
        }

        #[test]
        fn inputs_the_gateway_builds_match_the_schema() {
            let schema = repo_schema();
            let cases = [
                build(
                    "POST",
                    &format!("/templates/shares/{TEMPLATE}"),
                    None,
                    r#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"t-1"}"#,
                    "10.0.0.7",
                ),
                build(
                    "POST",
                    &format!("/workloads/{HEX}/shares"),
                    None,
                    r#"{"SharedWith":"123456789012","PermissionType":"CONTRIBUTOR","ClientRequestToken":"t"}"#,
                    "::1",
                ),
                build(
                    "POST",
                    "/lenses/my-lens/shares",
                    None,
                    r#"{"SharedWith":"arn:aws:iam::123456789012:user/x","ClientRequestToken":"t"}"#,
                    "10.0.0.7",
                ),
                build(
                    "POST",
                    &format!("/profiles/{PROFILE}/shares"),
                    None,
                    r#"{"SharedWith":"o-exampleorg01","ClientRequestToken":"t"}"#,
                    "10.0.0.7",
                ),
                build(
                    "PATCH",
                    &format!("/workloads/{HEX}/shares/{HEX}"),
                    None,
                    r#"{"PermissionType":"READONLY"}"#,
                    "10.0.0.7",
                ),
                build("GET", &format!("/workloads/{HEX}"), None, "", "10.0.0.7"),
                build("POST", "/workloadsSummaries", None, "", "10.0.0.7"),
                build(
                    "GET",
                    &format!("/templates/shares/{TEMPLATE}"),
                    Some("SharedWithPrefix=ou-&NextToken=abc"),
                    "",
                    "10.0.0.7",
                ),
                build(
                    "DELETE",
                    &format!("/templates/shares/{TEMPLATE}/{HEX}"),
                    Some("ClientRequestToken=t"),
                    "",
                    "10.0.0.7",
                ),
                build(
                    "DELETE",
                    &format!("/tags/{WORKLOAD_ARN}"),
                    Some("tagKeys=a&tagKeys=b"),
                    "",
                    "2001:db8::7",
                ),
                build(
                    "POST",
                    "/lenses/my-lens/shares",
                    None,
                    r#"{"SharedWith":"arn:aws:iam::123456789012:group/admins","ClientRequestToken":"t"}"#,
                    "10.0.0.7",
                ),
                // With [organizations]: placed, outside, and not resolved (no snapshot yet).
                build_with(
                    "POST",
                    &format!("/templates/shares/{TEMPLATE}"),
                    None,
                    r#"{"SharedWith":"222233334444","ClientRequestToken":"t"}"#,
                    "10.0.0.7",
                    Some(&nested_account()),
                    Some(&demo_organization()),
                ),
                build_with(
                    "POST",
                    &format!("/workloads/{HEX}/shares"),
                    None,
                    r#"{"SharedWith":"arn:aws:iam::333748161105:role/x","PermissionType":"READONLY","ClientRequestToken":"t"}"#,
                    "10.0.0.7",
                    Some(&Resolution::outside()),
                    Some(&demo_organization()),
                ),
                build_with(
                    "POST",
                    &format!("/templates/shares/{TEMPLATE}"),
                    None,
                    r#"{"SharedWith":"arn:aws:organizations::111111111111:ou/o-exampleorg01/ou-ab12-22222222","ClientRequestToken":"t"}"#,
                    "10.0.0.7",
                    None,
                    Some(&Context::default()),
                ),
            ];
            for input in &cases {
                if let Err(e) = validate_input(input, &schema) {
                    panic!("{e}\n{input:#}");
                }
            }
            // The cases exercise what the schema distinguishes.
            assert_eq!(cases[0]["share"]["target"]["in_organization"], json!(null));
            assert!(cases[0].get("organization").is_none());
            assert_eq!(cases[1]["share"]["permission_type"], json!("CONTRIBUTOR"));
            assert_eq!(cases[2]["share"]["target_type"], json!("iam_principal"));
            assert!(cases[4]["share"].get("shared_with").is_none());
            assert!(cases[5].get("share").is_none());
            assert_eq!(cases[9]["request"]["query"]["tagKeys"], json!(["a", "b"]));
            assert_eq!(cases[10]["share"]["target_type"], json!("unknown"));
            assert_eq!(cases[11]["share"]["target"]["in_organization"], json!(true));
            assert_eq!(
                cases[12]["share"]["target"]["account"],
                json!("333748161105")
            );
            assert_eq!(
                cases[13]["share"]["target"]["id"],
                json!("ou-ab12-22222222")
            );
            assert_eq!(cases[13]["organization"]["id"], json!(null));
        }

        /// pay-prod-eu-1 in the demo organization: Root > payments > payments-prod >
        /// payments-prod-eu.
        fn nested_account() -> Resolution {
            Resolution {
                in_organization: Some(true),
                ou_path: [
                    "r-ab12",
                    "ou-ab12-11111111",
                    "ou-ab12-22222222",
                    "ou-ab12-44444444",
                ]
                .map(String::from)
                .to_vec(),
                ou_path_names: ["Root", "payments", "payments-prod", "payments-prod-eu"]
                    .map(String::from)
                    .to_vec(),
                name: Some("pay-prod-eu-1".into()),
                status: Some("ACTIVE".into()),
            }
        }

        fn demo_organization() -> Context {
            Context {
                id: Some("o-exampleorg01".into()),
                root: Some("r-ab12".into()),
                snapshot_age_seconds: Some(42.0),
            }
        }

        #[test]
        fn example_inputs_are_what_the_gateway_builds() {
            for (file, target) in [
                ("allow-template-share.json", "ou-ab12-11111111"),
                ("deny-template-share.json", "ou-ab12-99999999"),
            ] {
                let example = example(file);
                let token = example["request"]["body"]["ClientRequestToken"]
                    .as_str()
                    .unwrap();
                let body = json!({"SharedWith": target, "ClientRequestToken": token}).to_string();
                let built = build(
                    "POST",
                    &format!("/templates/shares/{TEMPLATE}"),
                    None,
                    &body,
                    "10.0.0.7",
                );
                // The gateway writes fractional seconds; the examples keep the time short.
                let mut example = example;
                example["time"] = built["time"].clone();
                assert_eq!(built, example, "{file}");
            }
            // The organization examples, as a gateway with [organizations] builds them.
            let example = example("allow-account-in-approved-ou.json");
            let built = build_with(
                "POST",
                &format!("/templates/shares/{TEMPLATE}"),
                None,
                &example["request"]["body"].to_string(),
                "10.0.0.7",
                Some(&nested_account()),
                Some(&demo_organization()),
            );
            let mut example = example;
            example["time"] = built["time"].clone();
            assert_eq!(built, example);
        }

        #[test]
        fn schema_names_every_operation_and_resource_type() {
            let schema = repo_schema();
            let listed = |v: &Value| -> BTreeSet<String> {
                v["enum"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect()
            };
            let operations = listed(&schema["properties"]["operation"]);
            let known: BTreeSet<String> = operation::all()
                .iter()
                .map(|o| o.name.to_string())
                .collect();
            assert_eq!(operations, known, "regenerate the operation enum");
            let types = listed(&schema["properties"]["resource"]["properties"]["type"]);
            for op in operation::all() {
                assert!(types.contains(op.resource_type()), "{}", op.name);
                let methods = listed(&schema["properties"]["request"]["properties"]["method"]);
                assert!(methods.contains(op.method), "{}", op.name);
            }
        }
    }
}
