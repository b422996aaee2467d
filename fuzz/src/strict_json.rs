//! `strict_json`: `waguard::validate::parse_strict_json` never panics; whatever it accepts,
//! serde_json accepts too with the same `Value`, and no key repeats anywhere in it; whatever
//! serde_json accepts and it refuses must repeat a key somewhere.

use waguard::error::GatewayError;
use waguard::validate::parse_strict_json;

use crate::json;

pub fn run(data: &[u8]) {
    let strict = parse_strict_json(data);
    let loose = serde_json::from_slice::<serde_json::Value>(data);
    match (&strict, &loose) {
        (Ok(s), Ok(l)) => {
            assert_eq!(s, l, "strict and serde_json values differ");
            // Independent scan: an accepted document repeats no key at any depth.
            match json::parse(data) {
                Ok(tree) => {
                    if let Some(dup) = json::first_duplicate(&tree) {
                        panic!("parse_strict_json accepted a duplicate key: {dup}");
                    }
                    assert!(
                        json::same_as_value(&tree, s),
                        "independent reader disagrees with the accepted value"
                    );
                }
                Err(e) => panic!(
                    "parse_strict_json and serde_json accept a document the independent reader refuses: {e}"
                ),
            }
        }
        (Ok(_), Err(e)) => panic!("parse_strict_json accepted what serde_json refuses: {e}"),
        (Err(err), Ok(_)) => {
            assert!(
                matches!(err, GatewayError::Validation(_)),
                "unexpected error kind {err:?}"
            );
            // The only thing strict refuses beyond serde_json is a repeated key.
            let tree = json::parse(data).unwrap_or_else(|e| {
                panic!("serde_json accepts a document the independent reader refuses: {e}")
            });
            assert!(
                json::first_duplicate(&tree).is_some(),
                "parse_strict_json refused duplicate-free JSON serde_json accepts: {err}"
            );
        }
        (Err(err), Err(_)) => assert!(
            matches!(err, GatewayError::Validation(_)),
            "unexpected error kind {err:?}"
        ),
    }
}
