//! Rego policy (regorus): load a policy directory, compile it once, decide per request.
//!
//! Every `*.rego` below the directory is a module (except `*_test.rego`, which only
//! `waguard policy test` loads) and every `*.json` is a data document placed under `data` at its
//! path: `waguard/teams.json` becomes `data.waguard.teams`. Not data: `*.schema.json` (the input
//! document's schema) and the top-level `examples/` folder (example inputs). The compiled policy is immutable and
//! shared by all requests; a decision never blocks another.
//!
//! The package `waguard.index` (if a module declares it) is evaluated once, when the policy is
//! compiled, and served as data rather than as rules: see [`prepare`].

pub mod input;
pub mod prepare;
mod scan;
pub mod testing;

use std::collections::HashMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use regorus::{CompiledPolicy, Engine};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use crate::settle;

/// The rule every decision comes from.
pub const DECISION_RULE: &str = "data.waguard.authz.decision";

/// How many folder levels a policy directory may nest.
pub const MAX_DEPTH: usize = 32;

#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    #[error("{path}: cannot read: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("{dir}: no *.rego files found")]
    Empty { dir: PathBuf },
    #[error("{dir}: {message}")]
    Compile { dir: PathBuf, message: String },
    #[error(
        "{dir}: the policy files kept changing while being read; not loading what may be a half-written policy"
    )]
    Unsettled { dir: PathBuf },
}

/// The outcome of a policy evaluation.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    pub allow: bool,
    pub reasons: Vec<String>,
    /// The policy could not decide (evaluation failed, or its answer was malformed): denied,
    /// and the reasons are for the gateway's log and audit record, not for the caller.
    pub failed: bool,
}

impl Decision {
    /// A denial because the policy could not decide.
    fn failed(reason: impl Into<String>) -> Decision {
        Decision {
            allow: false,
            reasons: vec![reason.into()],
            failed: true,
        }
    }
}

/// One policy file read from disk.
#[derive(Debug, Clone)]
pub struct PolicyFile {
    /// Path relative to the policy directory, with '/' separators.
    pub relative: String,
    pub path: PathBuf,
    pub text: String,
}

/// The files of a policy directory, before compilation.
#[derive(Debug, Clone, Default)]
pub struct PolicySources {
    pub modules: Vec<PolicyFile>,
    pub tests: Vec<PolicyFile>,
    pub data: Vec<PolicyFile>,
}

impl PolicySources {
    /// Reads every `.rego` and `.json` file below `dir` in a stable order (see
    /// [`PolicySources::read_once`]). Files that changed a moment ago are read again after a
    /// short pause, until two reads agree, so a file still being written is not loaded half
    /// done ([`settle::read_steady`]).
    pub fn read(dir: &Path) -> Result<PolicySources, PolicyError> {
        settle::read_steady(
            || {
                let (value, changed) = Self::read_once(dir)?;
                Ok(settle::Read {
                    digest: value.digest(),
                    value,
                    changed,
                })
            },
            || PolicyError::Unsettled {
                dir: dir.to_path_buf(),
            },
        )
    }

    /// One pass over `dir`: every `.rego` and `.json` file below it, and when any file or
    /// folder read last changed ([`settle::changed_at`]), for the caller to tell whether the
    /// files are still being written.
    ///
    /// Hidden entries (Kubernetes ConfigMap `..data` internals, `.git`) are skipped. Symlinks
    /// are followed, as ConfigMap mounts and git-sync need, but every folder must be reached by
    /// one path only: a symlink loop, or a second path to a folder already read (which would
    /// load its files twice, under two names), is an error naming the symlink, as are folders
    /// nested more than [`MAX_DEPTH`] levels deep. So is a dangling symlink: it names a file
    /// that is missing, and loading without it could allow what it would deny.
    pub fn read_once(dir: &Path) -> Result<(PolicySources, Option<SystemTime>), PolicyError> {
        let meta = std::fs::metadata(dir).map_err(|source| PolicyError::Read {
            path: dir.to_path_buf(),
            source,
        })?;
        let mut walk = Walk {
            root: dir,
            seen: HashMap::new(),
            ancestors: Vec::new(),
            files: Vec::new(),
            changed: None,
        };
        walk.folder(dir, &meta, 0)?;
        let Walk {
            mut files, changed, ..
        } = walk;
        files.sort_by(|a, b| a.relative.cmp(&b.relative));
        let mut sources = PolicySources::default();
        for f in files {
            if f.relative.ends_with("_test.rego") {
                sources.tests.push(f);
            } else if f.relative.ends_with(".rego") {
                sources.modules.push(f);
            } else {
                sources.data.push(f);
            }
        }
        Ok((sources, changed))
    }

    /// A content hash of the modules and data: the policy revision recorded with decisions.
    pub fn revision(&self) -> String {
        hash_files(self.modules.iter().chain(&self.data))
    }

    /// A content hash of every file read, tests included.
    fn digest(&self) -> String {
        hash_files(self.modules.iter().chain(&self.data).chain(&self.tests))
    }

    /// Merges all data documents into one `data` object, each at its path.
    pub fn data_document(&self) -> Result<Value, PolicyError> {
        let mut root = Value::Object(Map::new());
        for f in &self.data {
            let value: Value = serde_json::from_str(&f.text).map_err(|e| PolicyError::Invalid {
                path: f.path.clone(),
                message: format!("not valid JSON: {e}"),
            })?;
            let stem = f.relative.trim_end_matches(".json");
            let mut node = &mut root;
            let parts: Vec<&str> = stem.split('/').collect();
            for (i, part) in parts.iter().enumerate() {
                let Value::Object(map) = node else {
                    return Err(PolicyError::Invalid {
                        path: f.path.clone(),
                        message: format!("data path {stem} collides with another data document"),
                    });
                };
                if i + 1 == parts.len() {
                    if map.insert((*part).to_string(), value.clone()).is_some() {
                        return Err(PolicyError::Invalid {
                            path: f.path.clone(),
                            message: format!("data path {stem} is defined twice"),
                        });
                    }
                    break;
                }
                node = map
                    .entry((*part).to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
            }
        }
        Ok(root)
    }

    /// An engine with every module (and optionally the tests) and the data loaded, as
    /// `waguard policy test` runs them: rules of the prepared package ([`prepare`]) are
    /// evaluated lazily like any other rule.
    pub fn engine(&self, with_tests: bool) -> Result<Engine, PolicyError> {
        let tests: &[PolicyFile] = if with_tests { &self.tests } else { &[] };
        let (mut engine, _) = Self::engine_with(self.modules.iter().chain(tests))?;
        engine
            .add_data(regorus::Value::from(self.data_document()?))
            .map_err(invalid_data)?;
        Ok(engine)
    }

    /// The engine requests are decided with: the modules and data of [`PolicySources::engine`],
    /// except that the prepared package (`data.waguard.index`, see [`prepare`]) is evaluated
    /// here, once, and served as data instead of as rules.
    pub fn serving_engine(&self) -> Result<Engine, PolicyError> {
        let (engine, packages) = Self::engine_with(self.modules.iter())?;
        let document = self.data_document()?;
        let (mut index_files, mut serving) = (Vec::new(), Vec::new());
        for (file, package) in self.modules.iter().zip(&packages) {
            if prepare::is_prepared_package(package) {
                index_files.push(file);
            } else {
                serving.push(file);
            }
        }
        let mut engine = if index_files.is_empty() {
            engine
        } else {
            if let Some(path) = prepare::defined_in(&document) {
                return Err(PolicyError::Invalid {
                    path: PathBuf::from("data"),
                    message: format!(
                        "the data documents define {path}, which the package {} prepares",
                        prepare::PREPARED_PACKAGE.trim_start_matches("data.")
                    ),
                });
            }
            for file in &index_files {
                prepare::check_reads_only_data(file)?;
            }
            // The prepared package sees the data and its own modules only.
            let (mut index_engine, _) = Self::engine_with(index_files.into_iter())?;
            index_engine
                .add_data(regorus::Value::from(document.clone()))
                .map_err(invalid_data)?;
            let index = prepare::evaluate(&mut index_engine)?;
            let (mut engine, _) = Self::engine_with(serving.into_iter())?;
            engine.add_data(index).map_err(invalid_data)?;
            engine
        };
        engine
            .add_data(regorus::Value::from(document))
            .map_err(invalid_data)?;
        Ok(engine)
    }

    /// An engine with `files` added as modules, and the package each declares.
    fn engine_with<'a>(
        files: impl Iterator<Item = &'a PolicyFile>,
    ) -> Result<(Engine, Vec<String>), PolicyError> {
        let mut engine = Engine::new();
        engine.set_rego_v0(false);
        let mut packages = Vec::new();
        for f in files {
            let package = engine
                .add_policy(f.path.display().to_string(), f.text.clone())
                .map_err(|e| PolicyError::Invalid {
                    path: f.path.clone(),
                    message: e.to_string(),
                })?;
            packages.push(package);
        }
        Ok((engine, packages))
    }
}

fn invalid_data(e: impl std::fmt::Display) -> PolicyError {
    PolicyError::Invalid {
        path: PathBuf::from("data"),
        message: e.to_string(),
    }
}

fn hash_files<'a>(files: impl Iterator<Item = &'a PolicyFile>) -> String {
    let mut h = Sha256::new();
    for f in files {
        h.update(f.relative.as_bytes());
        h.update([0]);
        h.update((f.text.len() as u64).to_be_bytes());
        h.update(f.text.as_bytes());
    }
    hex::encode(h.finalize())
}

/// One pass over a policy directory (see [`PolicySources::read_once`]).
struct Walk<'a> {
    root: &'a Path,
    /// Every folder entered, by (device, inode), with the path it was first reached by.
    seen: HashMap<(u64, u64), PathBuf>,
    /// The folders from the root down to the one being read, to tell a loop from a second path.
    ancestors: Vec<(u64, u64)>,
    files: Vec<PolicyFile>,
    /// The latest change of any file or folder read.
    changed: Option<SystemTime>,
}

impl Walk<'_> {
    fn folder(
        &mut self,
        dir: &Path,
        meta: &std::fs::Metadata,
        depth: usize,
    ) -> Result<(), PolicyError> {
        let id = (meta.dev(), meta.ino());
        if let Some(first) = self.seen.get(&id) {
            let message = if self.ancestors.contains(&id) {
                format!(
                    "symlink loop: leads back to {}, a folder that contains it",
                    first.display()
                )
            } else {
                format!(
                    "the same folder as {}; a folder may be reached by one path only",
                    first.display()
                )
            };
            return Err(PolicyError::Invalid {
                path: dir.to_path_buf(),
                message,
            });
        }
        if depth > MAX_DEPTH {
            return Err(PolicyError::Invalid {
                path: dir.to_path_buf(),
                message: format!(
                    "more than {MAX_DEPTH} folder levels below {}",
                    self.root.display()
                ),
            });
        }
        self.seen.insert(id, dir.to_path_buf());
        self.ancestors.push(id);
        let read_error = |path: &Path| {
            let path = path.to_path_buf();
            move |source| PolicyError::Read { path, source }
        };
        let mut entries = std::fs::read_dir(dir)
            .map_err(read_error(dir))?
            .collect::<Result<Vec<_>, _>>()
            .map_err(read_error(dir))?;
        // In name order, so a broken tree is reported the same way every time.
        entries.sort_by_key(|e| e.file_name());
        for entry in entries {
            let name = entry.file_name();
            let Some(name) = name.to_str() else { continue };
            if name.starts_with('.') {
                continue;
            }
            let path = entry.path();
            // metadata() follows symlinks, as ConfigMap mounts need.
            let meta = std::fs::metadata(&path).map_err(read_error(&path))?;
            if meta.is_dir() {
                // Example input documents (for `waguard policy eval`) are not data either.
                if dir == self.root && name == "examples" {
                    continue;
                }
                self.folder(&path, &meta, depth + 1)?;
            } else if name.ends_with(".schema.json") {
                // The input document's JSON Schema lives beside the policy; it is not data.
                continue;
            } else if name.ends_with(".rego") || name.ends_with(".json") {
                let text = std::fs::read_to_string(&path).map_err(read_error(&path))?;
                // Looked at after reading, so a write during the read counts as recent.
                let after = std::fs::metadata(&path).map_err(read_error(&path))?;
                self.note(&after);
                let relative = path
                    .strip_prefix(self.root)
                    .unwrap_or(&path)
                    .components()
                    .map(|c| c.as_os_str().to_string_lossy())
                    .collect::<Vec<_>>()
                    .join("/");
                self.files.push(PolicyFile {
                    relative,
                    path,
                    text,
                });
            }
        }
        self.ancestors.pop();
        // A file added, removed or renamed changes its folder's ctime.
        let after = std::fs::metadata(dir).map_err(read_error(dir))?;
        self.note(&after);
        Ok(())
    }

    fn note(&mut self, meta: &std::fs::Metadata) {
        self.changed = self.changed.max(settle::changed_at(meta));
    }
}

/// A compiled, immutable policy: what requests are decided with.
pub struct Policy {
    compiled: CompiledPolicy,
    revision: String,
    dir: PathBuf,
}

impl std::fmt::Debug for Policy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Policy")
            .field("dir", &self.dir)
            .field("revision", &self.revision)
            .finish()
    }
}

impl Policy {
    /// Reads and compiles a policy directory; fails if `data.waguard.authz.decision` is not defined.
    pub fn load(dir: &Path) -> Result<Policy, PolicyError> {
        let sources = PolicySources::read(dir)?;
        Self::compile(dir, &sources)
    }

    pub fn compile(dir: &Path, sources: &PolicySources) -> Result<Policy, PolicyError> {
        if sources.modules.is_empty() {
            return Err(PolicyError::Empty {
                dir: dir.to_path_buf(),
            });
        }
        let mut engine = sources.serving_engine()?;
        let defined = engine
            .get_packages()
            .map(|pkgs| pkgs.iter().any(|p| p == "data.waguard.authz"))
            .unwrap_or(false);
        if !defined {
            return Err(PolicyError::Compile {
                dir: dir.to_path_buf(),
                message: "no module declares `package waguard.authz`".into(),
            });
        }
        let compiled = engine
            .compile_with_entrypoint(&DECISION_RULE.into())
            .map_err(|e| PolicyError::Compile {
                dir: dir.to_path_buf(),
                message: e.to_string(),
            })?;
        let policy = Policy {
            compiled,
            revision: sources.revision(),
            dir: dir.to_path_buf(),
        };
        // Evaluating once warms internal caches before requests share the policy.
        let _ = policy.evaluate(&Value::Object(Map::new()));
        Ok(policy)
    }

    pub fn revision(&self) -> &str {
        &self.revision
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Decides on an input document. Undefined results, wrong shapes and errors all deny.
    pub fn evaluate(&self, input: &Value) -> Decision {
        self.evaluate_input(regorus::Value::from(input.clone()))
    }

    /// Decides on an input document already in the engine's form (see [`input::build`]).
    pub fn evaluate_input(&self, input: regorus::Value) -> Decision {
        match self.compiled.eval_with_input(input) {
            Ok(result) => decision_from_value(&result),
            Err(e) => Decision::failed(format!("policy evaluation failed: {e}")),
        }
    }
}

/// Interprets the policy's answer; anything but `{"allow": bool, "reasons": [string]}` denies.
pub fn decision_from_value(result: &regorus::Value) -> Decision {
    if *result == regorus::Value::Undefined {
        return Decision::failed(format!("{DECISION_RULE} is undefined for this request"));
    }
    if result.as_object().is_err() {
        return Decision::failed("policy decision is not an object");
    }
    let Ok(allow) = result[&regorus::Value::from("allow")].as_bool().copied() else {
        return Decision::failed("policy decision has no boolean `allow`");
    };
    let reasons = match &result[&regorus::Value::from("reasons")] {
        regorus::Value::Undefined => Vec::new(),
        regorus::Value::Array(items) => {
            let mut out = Vec::with_capacity(items.len());
            for item in items.iter() {
                match item.as_string() {
                    Ok(s) => out.push(s.to_string()),
                    Err(_) => return Decision::failed("policy decision `reasons` must be strings"),
                }
            }
            out
        }
        _ => return Decision::failed("policy decision `reasons` must be an array"),
    };
    if !allow && reasons.is_empty() {
        return Decision::failed("denied by policy (no reason given)");
    }
    Decision {
        allow,
        reasons,
        failed: false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A temporary policy directory holding `files` (path relative to it, content).
    pub(crate) fn dir_with(files: &[(&str, &str)]) -> tempfile::TempDir {
        let d = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let p = d.path().join(name);
            std::fs::create_dir_all(p.parent().unwrap()).unwrap();
            std::fs::write(p, text).unwrap();
        }
        d
    }

    const POLICY: &str = r#"
        package waguard.authz
        import rego.v1
        default decision := {"allow": false, "reasons": ["not approved"]}
        decision := {"allow": true, "reasons": ["approved"]} if {
            input.share.shared_with in data.waguard.teams[input.caller.team].ous
        }
    "#;

    #[test]
    fn data_documents_land_at_their_path() {
        let d = dir_with(&[
            ("waguard/authz.rego", POLICY),
            (
                "waguard/teams.json",
                r#"{"payments": {"ous": ["ou-ab12-11111111"]}}"#,
            ),
        ]);
        let p = Policy::load(d.path()).unwrap();
        let allow = p.evaluate(
            &json!({"caller": {"team": "payments"}, "share": {"shared_with": "ou-ab12-11111111"}}),
        );
        assert!(allow.allow, "{allow:?}");
        let deny = p.evaluate(
            &json!({"caller": {"team": "payments"}, "share": {"shared_with": "ou-ab12-99999999"}}),
        );
        assert_eq!(
            deny,
            Decision {
                allow: false,
                reasons: vec!["not approved".into()],
                failed: false,
            }
        );
    }

    #[test]
    fn malformed_decisions_deny() {
        for rule in [
            r#"decision := true"#,
            r#"decision := {"allow": "yes"}"#,
            r#"decision := {"allow": true, "reasons": [1]}"#,
            r#"decision := {"allow": false}"#,
            r#"decision := {"allow": true} if { input.never }"#,
        ] {
            let d = dir_with(&[(
                "authz.rego",
                &format!("package waguard.authz\nimport rego.v1\n{rule}\n"),
            )]);
            let p = Policy::load(d.path()).unwrap();
            let decision = p.evaluate(&json!({}));
            assert!(!decision.allow, "{rule}");
            assert!(!decision.reasons.is_empty(), "{rule}");
        }
    }

    #[test]
    fn missing_package_and_syntax_errors_fail_to_load() {
        let d = dir_with(&[("x.rego", "package other\nimport rego.v1\nallow := true\n")]);
        assert!(
            Policy::load(d.path())
                .unwrap_err()
                .to_string()
                .contains("waguard.authz")
        );
        let d = dir_with(&[("authz.rego", "package waguard.authz\ndecision := {{{\n")]);
        let err = Policy::load(d.path()).unwrap_err().to_string();
        assert!(err.contains("authz.rego"), "{err}");
    }

    const INDEX: &str = r#"
        package waguard.index
        import rego.v1
        # Reads only data: evaluated once at load time.
        approved contains ou if some ou in data.waguard.teams.payments.ous
    "#;

    const INDEXED_POLICY: &str = r#"
        package waguard.authz
        import rego.v1
        default decision := {"allow": false, "reasons": ["not approved"]}
        decision := {"allow": true, "reasons": ["approved"]} if {
            input.share.shared_with in data.waguard.index.approved
        }
    "#;

    #[test]
    fn the_prepared_package_is_served_as_data() {
        let d = dir_with(&[
            ("waguard/authz.rego", INDEXED_POLICY),
            ("waguard/index.rego", INDEX),
            (
                "waguard/teams.json",
                r#"{"payments": {"ous": ["ou-ab12-11111111"]}}"#,
            ),
        ]);
        let sources = PolicySources::read(d.path()).unwrap();
        let mut served = sources.serving_engine().unwrap();
        // Only the decision's package is left to evaluate; the index is data.
        assert_eq!(served.get_packages().unwrap(), ["data.waguard.authz"]);
        let approved = served
            .eval_query("data.waguard.index.approved".into(), false)
            .unwrap();
        assert_eq!(
            serde_json::to_value(&approved.result[0].expressions[0].value).unwrap(),
            json!(["ou-ab12-11111111"])
        );
        let p = Policy::load(d.path()).unwrap();
        assert!(
            p.evaluate(&json!({"share": {"shared_with": "ou-ab12-11111111"}}))
                .allow
        );
        assert!(
            !p.evaluate(&json!({"share": {"shared_with": "ou-ab12-99999999"}}))
                .allow
        );
    }

    #[test]
    fn a_prepared_package_that_reads_input_is_refused() {
        let index = "package waguard.index\nimport rego.v1\nx := input.caller.team\n";
        let d = dir_with(&[
            ("waguard/authz.rego", INDEXED_POLICY),
            ("waguard/index.rego", index),
        ]);
        let err = Policy::load(d.path()).unwrap_err().to_string();
        assert!(err.contains("index.rego"), "{err}");
        assert!(err.contains("line 3"), "{err}");
        assert!(err.contains("may read only data, not input"), "{err}");
    }

    #[test]
    fn a_prepared_package_that_fails_or_collides_does_not_load() {
        let failing = "package waguard.index\nimport rego.v1\nx := sprintf(\"%q\", [1])\n";
        let d = dir_with(&[
            ("waguard/authz.rego", INDEXED_POLICY),
            ("waguard/index.rego", failing),
        ]);
        let err = Policy::load(d.path()).unwrap_err().to_string();
        assert!(err.contains("cannot prepare the policy's data"), "{err}");
        let d = dir_with(&[
            ("waguard/authz.rego", INDEXED_POLICY),
            ("waguard/index.rego", INDEX),
            (
                "waguard/index.json",
                r#"{"approved": ["ou-ab12-99999999"]}"#,
            ),
        ]);
        let err = Policy::load(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("the data documents define data.waguard.index"),
            "{err}"
        );
    }

    /// The shipped policy decides alike whether its index is served as data (the gateway) or
    /// evaluated as rules (`waguard policy test`).
    #[test]
    fn the_shipped_policy_decides_alike_with_a_lazy_index() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies");
        let sources = PolicySources::read(&dir).unwrap();
        let served = Policy::load(&dir).unwrap();
        let mut lazy = sources.engine(false).unwrap();
        for entry in std::fs::read_dir(dir.join("examples")).unwrap() {
            let path = entry.unwrap().path();
            let input: Value =
                serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
            lazy.set_input(regorus::Value::from(input.clone()));
            let expected = decision_from_value(&lazy.eval_rule(DECISION_RULE.into()).unwrap());
            assert_eq!(served.evaluate(&input), expected, "{}", path.display());
        }
    }

    #[test]
    fn a_symlink_loop_is_refused_naming_the_link() {
        let d = dir_with(&[("waguard/authz.rego", POLICY)]);
        std::os::unix::fs::symlink("..", d.path().join("waguard/loop")).unwrap();
        let err = PolicySources::read(d.path()).unwrap_err().to_string();
        let link = d.path().join("waguard/loop");
        assert_eq!(
            err,
            format!(
                "{}: symlink loop: leads back to {}, a folder that contains it",
                link.display(),
                d.path().display()
            )
        );
        // Two folders linking to each other.
        let d = dir_with(&[
            ("authz.rego", POLICY),
            ("a/x.json", "{}"),
            ("b/y.json", "{}"),
        ]);
        std::os::unix::fs::symlink("../b", d.path().join("a/to_b")).unwrap();
        std::os::unix::fs::symlink("../a", d.path().join("b/to_a")).unwrap();
        let err = Policy::load(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("a/to_b/to_a: symlink loop: leads back to"),
            "{err}"
        );
    }

    #[test]
    fn a_second_path_to_a_folder_already_read_is_refused() {
        let d = dir_with(&[("authz.rego", POLICY), ("lib/teams.json", "{}")]);
        std::os::unix::fs::symlink("lib", d.path().join("more")).unwrap();
        let err = Policy::load(d.path()).unwrap_err().to_string();
        assert!(
            err.contains("more: the same folder as") && err.contains("lib;"),
            "{err}"
        );
    }

    #[test]
    fn folders_nested_too_deep_are_refused() {
        let deep = vec!["d"; MAX_DEPTH].join("/");
        let d = dir_with(&[("authz.rego", POLICY), (&format!("{deep}/ok.json"), "{}")]);
        assert!(PolicySources::read(d.path()).is_ok());
        let d = dir_with(&[("authz.rego", POLICY), (&format!("{deep}/d/x.json"), "{}")]);
        let err = PolicySources::read(d.path()).unwrap_err().to_string();
        assert!(err.contains("more than 32 folder levels below"), "{err}");
    }

    #[test]
    fn configmap_style_symlinks_are_followed_and_a_dangling_one_is_an_error() {
        let d = dir_with(&[("..2026_01_01/waguard/authz.rego", POLICY)]);
        std::os::unix::fs::symlink("..2026_01_01", d.path().join("..data")).unwrap();
        std::os::unix::fs::symlink("..data/waguard", d.path().join("waguard")).unwrap();
        let sources = PolicySources::read(d.path()).unwrap();
        assert_eq!(sources.modules.len(), 1);
        assert_eq!(sources.modules[0].relative, "waguard/authz.rego");
        // A link to a missing file might hide a deny rule: refuse rather than skip it.
        std::os::unix::fs::symlink("..data/gone.rego", d.path().join("gone.rego")).unwrap();
        let err = PolicySources::read(d.path()).unwrap_err().to_string();
        assert!(err.contains("gone.rego: cannot read"), "{err}");
    }

    #[test]
    fn a_read_tells_when_the_files_last_changed() {
        let d = dir_with(&[("authz.rego", POLICY)]);
        let (_, changed) = PolicySources::read_once(d.path()).unwrap();
        let age = SystemTime::now().duration_since(changed.unwrap()).unwrap();
        assert!(age < std::time::Duration::from_secs(5), "{age:?}");
    }

    #[test]
    fn revision_changes_with_content() {
        let d = dir_with(&[("authz.rego", POLICY), ("t.json", "{}")]);
        let a = PolicySources::read(d.path()).unwrap().revision();
        std::fs::write(d.path().join("t.json"), "{\"x\":1}").unwrap();
        let b = PolicySources::read(d.path()).unwrap().revision();
        assert_ne!(a, b);
    }
}
