//! Load-time preparation of data: the package `data.waguard.index` is evaluated once, when the
//! policy loads, and served as data.
//!
//! Rules in that package read only `data` (never `input`): they reshape the team data for the
//! questions the decision asks, such as "which OUs may this team share lenses with?", answered
//! by one lookup of a prepared set instead of per-request list scans and override handling.
//! The interpreter costs microseconds per rule evaluated, so evaluating them per request would
//! cost more than the decision itself. Serving their value as data keeps the Rego the single
//! definition of the index: `waguard policy test` evaluates the same rules lazily, so a test
//! that replaces `data.waguard.teams` sees the index of its own team data.

use std::path::PathBuf;

use super::{PolicyError, PolicyFile};

/// The package whose rules are evaluated once at load time and served as data.
pub const PREPARED_PACKAGE: &str = "data.waguard.index";

/// True for a module of the prepared package (or a package below it).
pub fn is_prepared_package(package: &str) -> bool {
    package
        .strip_prefix(PREPARED_PACKAGE)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with('.'))
}

/// Refuses a prepared module that reads `input`: its value would differ between the load-time
/// evaluation (no input) and the tests (lazy, with the test's input).
pub fn check_reads_only_data(file: &PolicyFile) -> Result<(), PolicyError> {
    match first_input_reference(&file.text) {
        Some(line) => Err(PolicyError::Invalid {
            path: file.path.clone(),
            message: format!(
                "line {line}: package {} is evaluated once when the policy loads and may read \
                 only data, not input",
                PREPARED_PACKAGE.trim_start_matches("data.")
            ),
        }),
        None => Ok(()),
    }
}

/// The prepared package's path if a data document already defines it (or anything below it),
/// as `data.waguard.index`.
pub fn defined_in(document: &serde_json::Value) -> Option<&'static str> {
    let pointer: String = PREPARED_PACKAGE
        .split('.')
        .skip(1)
        .map(|c| format!("/{c}"))
        .collect();
    document.pointer(&pointer).map(|_| PREPARED_PACKAGE)
}

/// Evaluates the prepared package in `engine` (its modules and the data loaded, no input) and
/// returns it as a data document to merge: `{"waguard": {"index": {...}}}`.
pub fn evaluate(engine: &mut regorus::Engine) -> Result<regorus::Value, PolicyError> {
    let failed = |message: String| PolicyError::Invalid {
        path: PathBuf::from(PREPARED_PACKAGE),
        message: format!("cannot prepare the policy's data: {message}"),
    };
    let results = engine
        .eval_query(PREPARED_PACKAGE.to_string(), false)
        .map_err(|e| failed(e.to_string()))?;
    let value = results
        .result
        .first()
        .and_then(|r| r.expressions.first())
        .map(|e| e.value.clone())
        .unwrap_or(regorus::Value::Undefined);
    if value.as_object().is_err() {
        return Err(failed("the package did not evaluate to an object".into()));
    }
    // data.waguard.index -> {"waguard": {"index": value}}
    let mut document = value;
    let components: Vec<&str> = PREPARED_PACKAGE.split('.').skip(1).collect();
    for component in components.into_iter().rev() {
        let mut parent = regorus::Value::new_object();
        parent
            .as_object_mut()
            .map_err(|e| failed(e.to_string()))?
            .insert(regorus::Value::from(component), document);
        document = parent;
    }
    Ok(document)
}

/// The line (1-based) of the first reference to `input` outside comments and strings, if any.
fn first_input_reference(text: &str) -> Option<usize> {
    super::scan::words(text)
        .find(|w| w.text == "input" && !w.after_dot)
        .map(|w| w.line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prepared_packages_are_the_index_and_below() {
        assert!(is_prepared_package("data.waguard.index"));
        assert!(is_prepared_package("data.waguard.index.extra"));
        assert!(!is_prepared_package("data.waguard.indexes"));
        assert!(!is_prepared_package("data.waguard.authz"));
    }

    #[test]
    fn input_references_are_found_outside_comments_and_strings() {
        assert_eq!(
            first_input_reference("x := 1 # input\ny := \"input\"\n"),
            None
        );
        assert_eq!(
            first_input_reference("x := data.input.y\nz := `input`\n"),
            None
        );
        assert_eq!(first_input_reference("x := inputs\n"), None);
        assert_eq!(first_input_reference("a := 1\nb := input.x\n"), Some(2));
        assert_eq!(first_input_reference("a := `\n\n`\nb := input\n"), Some(4));
    }
}
