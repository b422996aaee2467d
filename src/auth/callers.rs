//! The callers file: access keys waguard issued, and the principal and team each one stands for.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::SystemTime;

use serde::Deserialize;

use crate::identity::IdentityRule;
use sha2::{Digest, Sha256};

use crate::settle;

/// A secret access key. Never printed: `Debug` shows a placeholder.
#[derive(Clone, Deserialize)]
#[serde(transparent)]
pub struct Secret(String);

impl Secret {
    pub fn new(s: impl Into<String>) -> Secret {
        Secret(s.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

/// One team member or automation that holds a waguard access key.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Caller {
    pub access_key_id: String,
    pub secret_access_key: Secret,
    pub principal: String,
    pub team: String,
    #[serde(default)]
    pub attributes: BTreeMap<String, String>,
}

#[derive(Debug, thiserror::Error)]
pub enum CallersError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: key `callers[{index}].{key}`: {message}")]
    Invalid {
        file: PathBuf,
        index: usize,
        key: &'static str,
        message: String,
    },
    #[error("{file}: key `identities[{index}].arn`: {message}")]
    InvalidIdentity {
        file: PathBuf,
        index: usize,
        message: String,
    },
    #[error(
        "{file}: the file kept changing while being read; not loading what may be a half-written callers file"
    )]
    Unsettled { file: PathBuf },
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct CallersFile {
    #[serde(default)]
    callers: Vec<Caller>,
    /// AWS identities that may exchange a signed GetCallerIdentity for gateway credentials.
    #[serde(default)]
    identities: Vec<IdentityRule>,
}

/// All callers, by access key id, and the `[[identities]]` rules.
#[derive(Debug, Default)]
pub struct Callers {
    by_key: HashMap<String, Arc<Caller>>,
    identities: Vec<IdentityRule>,
    /// [`Callers::digest_of`] the text they were parsed from (empty if not from a file).
    digest: String,
}

impl Callers {
    /// Reads and parses the callers file. A file that changed a moment ago is read again after
    /// a short pause, until two reads agree, so one still being written is not loaded half
    /// done ([`settle::read_steady`]).
    pub fn load(path: &Path) -> Result<Callers, CallersError> {
        let text = settle::read_steady(
            || {
                let (value, changed) = Self::read(path)?;
                Ok(settle::Read {
                    digest: Self::digest_of(&value),
                    value,
                    changed,
                })
            },
            || CallersError::Unsettled {
                file: path.to_path_buf(),
            },
        )?;
        Self::parse(path, &text)
    }

    /// The text of the callers file, and when it last changed ([`settle::changed_at`], looked
    /// at after reading, so a write during the read counts as recent).
    pub fn read(path: &Path) -> Result<(String, Option<SystemTime>), CallersError> {
        let read_error = |source| CallersError::Read {
            file: path.to_path_buf(),
            source,
        };
        let text = std::fs::read_to_string(path).map_err(read_error)?;
        let meta = std::fs::metadata(path).map_err(read_error)?;
        Ok((text, settle::changed_at(&meta)))
    }

    pub fn parse(path: &Path, text: &str) -> Result<Callers, CallersError> {
        let file: CallersFile = toml::from_str(text).map_err(|e| CallersError::Parse {
            file: path.to_path_buf(),
            message: redacted_parse_error(text, &e),
        })?;
        let mut callers = Self::from_callers(path, file.callers)?;
        for (index, rule) in file.identities.iter().enumerate() {
            if let Some(message) = rule.problem() {
                return Err(CallersError::InvalidIdentity {
                    file: path.to_path_buf(),
                    index,
                    message,
                });
            }
        }
        callers.identities = file.identities;
        callers.digest = Self::digest_of(text);
        Ok(callers)
    }

    /// A content hash of a callers file's text, to tell whether it is what is serving.
    pub fn digest_of(text: &str) -> String {
        hex::encode(Sha256::digest(text.as_bytes()))
    }

    /// [`Callers::digest_of`] the text these callers were parsed from.
    pub fn digest(&self) -> &str {
        &self.digest
    }

    pub fn from_callers(path: &Path, callers: Vec<Caller>) -> Result<Callers, CallersError> {
        let mut by_key = HashMap::new();
        for (index, caller) in callers.into_iter().enumerate() {
            let invalid = |key: &'static str, message: &str| CallersError::Invalid {
                file: path.to_path_buf(),
                index,
                key,
                message: message.to_string(),
            };
            let id = &caller.access_key_id;
            if id.len() < 16
                || id.len() > 128
                || !id
                    .bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
            {
                return Err(invalid(
                    "access_key_id",
                    "must be 16 to 128 characters of A-Z and 0-9",
                ));
            }
            let secret = caller.secret_access_key.expose();
            if secret.len() < 16 || !secret.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(invalid(
                    "secret_access_key",
                    "must be at least 16 printable ASCII characters",
                ));
            }
            if caller.principal.trim().is_empty() {
                return Err(invalid("principal", "must not be empty"));
            }
            if caller.team.trim().is_empty() {
                return Err(invalid("team", "must not be empty"));
            }
            if by_key.contains_key(id) {
                return Err(invalid(
                    "access_key_id",
                    "appears more than once in the file",
                ));
            }
            by_key.insert(id.clone(), Arc::new(caller));
        }
        Ok(Callers {
            by_key,
            identities: Vec::new(),
            digest: String::new(),
        })
    }

    pub fn get(&self, access_key_id: &str) -> Option<&Arc<Caller>> {
        self.by_key.get(access_key_id)
    }

    /// The first `[[identities]]` rule matching an ARN STS answered with.
    pub fn identity(&self, arn: &str) -> Option<&IdentityRule> {
        crate::identity::rules::find(&self.identities, arn)
    }

    /// How many `[[identities]]` rules there are.
    pub fn identity_rules(&self) -> usize {
        self.identities.len()
    }

    pub fn len(&self) -> usize {
        self.by_key.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_key.is_empty()
    }
}

/// A TOML error in the callers file as `line L, column C: message`, without the source line
/// toml would quote (it may hold a secret) and without any value from the file in the message:
/// a `"quoted"` string or a `` `quoted` `` number or boolean (serde's "invalid type: integer
/// `…`") shows as `…`. Kept: the name of an unknown or missing key (``unknown field `tem` ``)
/// and the fixed list after "expected".
fn redacted_parse_error(text: &str, e: &toml::de::Error) -> String {
    let at = e.span().map(|span| {
        let before = text.get(..span.start).unwrap_or(text);
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        format!("line {line}, column {column}: ")
    });
    let mut message = String::new();
    let mut quoted = false;
    // Inside a `backtick` span: whether its text is kept.
    let mut ticked: Option<bool> = None;
    for c in e.message().trim_end().chars() {
        match (c, ticked) {
            ('`', None) if !quoted => {
                let keep = message.ends_with("field ")
                    || message.starts_with("expected")
                    || message.contains(" expected");
                ticked = Some(keep);
                message.push_str(if keep { "`" } else { "`…" });
            }
            ('`', Some(_)) => {
                ticked = None;
                message.push('`');
            }
            (_, Some(true)) => message.push(c),
            (_, Some(false)) => {}
            ('"', None) if !quoted => {
                quoted = true;
                message.push_str("\"…");
            }
            ('"', None) => {
                quoted = false;
                message.push('"');
            }
            ('\n', None) if !quoted => message.push(' '),
            (_, None) if quoted => {}
            (c, None) => message.push(c),
        }
    }
    format!("{}{message}", at.unwrap_or_default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_syntax_error_names_the_line_but_never_shows_a_secret() {
        for text in [
            "[[callers]]\naccess_key_id = \"AKWGPAYMENTS00001\"\nsecret_access_key = \"very-secret-value-0001\" stray\n",
            "[[callers]]\naccess_key_id = \"AKWGPAYMENTS00001\"\nsecret_access_key = [\"very-secret-value-0001\"]\nprincipal = \"a\"\nteam = \"t\"\n",
            "[[callers]]\nsecret_access_key = \"very-secret-value-0001\n",
        ] {
            let err = Callers::parse(Path::new("callers.toml"), text)
                .unwrap_err()
                .to_string();
            assert!(!err.contains("very-secret"), "{err}");
            assert!(err.starts_with("callers.toml: line "), "{err}");
        }
    }

    #[test]
    fn a_type_error_never_shows_the_value() {
        let head =
            "[[callers]]\naccess_key_id = \"AKWGPAYMENTS00001\"\nprincipal = \"a\"\nteam = \"t\"\n";
        for (line, value) in [
            (
                "secret_access_key = 98765432109876543210",
                "98765432109876543210",
            ),
            ("secret_access_key = true", "true"),
            ("secret_access_key = 31415.9265", "31415.9265"),
            (
                "secret_access_key = \"s\"\n[callers.attributes]\ncc = 4242",
                "4242",
            ),
        ] {
            let err = Callers::parse(Path::new("callers.toml"), &format!("{head}{line}\n"))
                .unwrap_err()
                .to_string();
            assert!(!err.contains(value), "{err}");
            assert!(err.contains("invalid type: "), "{err}");
            assert!(err.contains("expected a string"), "{err}");
        }
    }

    #[test]
    fn the_digest_names_the_text_parsed() {
        let c = Callers::parse(Path::new("callers.toml"), GOOD).unwrap();
        assert_eq!(c.digest(), Callers::digest_of(GOOD));
        assert_ne!(c.digest(), Callers::digest_of(&format!("{GOOD}\n")));
    }

    const GOOD: &str = r#"
        [[callers]]
        access_key_id = "AKWGPAYMENTS00001"
        secret_access_key = "payments-secret-0001"
        principal = "alice@example.com"
        team = "payments"
        [callers.attributes]
        cost_center = "cc-1"
    "#;

    #[test]
    fn loads_callers_with_attributes() {
        let c = Callers::parse(Path::new("callers.toml"), GOOD).unwrap();
        let alice = c.get("AKWGPAYMENTS00001").unwrap();
        assert_eq!(alice.team, "payments");
        assert_eq!(alice.attributes["cost_center"], "cc-1");
    }

    #[test]
    fn debug_never_shows_the_secret() {
        let c = Callers::parse(Path::new("callers.toml"), GOOD).unwrap();
        let shown = format!("{:?}", c);
        assert!(!shown.contains("payments-secret-0001"), "{shown}");
    }

    #[test]
    fn duplicate_keys_and_bad_fields_name_the_entry() {
        let twice = format!(
            "{GOOD}\n{}",
            GOOD.replace("[callers.attributes]\n", "")
                .replace("cost_center = \"cc-1\"", "")
        );
        let err = Callers::parse(Path::new("c.toml"), &twice)
            .unwrap_err()
            .to_string();
        assert!(err.contains("callers[1].access_key_id"), "{err}");

        let bad = GOOD.replace("team = \"payments\"", "team = \" \"");
        let err = Callers::parse(Path::new("c.toml"), &bad)
            .unwrap_err()
            .to_string();
        assert!(err.contains("callers[0].team"), "{err}");

        let unknown = GOOD.replace("team =", "tem = \"x\"\nteam =");
        let err = Callers::parse(Path::new("c.toml"), &unknown)
            .unwrap_err()
            .to_string();
        assert!(err.contains("c.toml") && err.contains("tem"), "{err}");
    }
}
