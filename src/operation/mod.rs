//! The Well-Architected operation table: (method, path template) -> operation, with its parameters.
//!
//! The table is generated from botocore's service model (`tools/gen_operations.py`). Routing is
//! strict: a path that could be read two ways (encoded slashes outside ARN labels, dot segments,
//! repeated slashes, raw `+` or `;`, stray query parameters) is rejected instead of guessed at,
//! because AWS must act on exactly the operation the gateway decided on. Every path label must
//! fit its shape in the model, so the label policy reads is the one AWS acts on.

mod table;

use std::collections::BTreeMap;
use std::sync::LazyLock;

use percent_encoding::percent_decode_str;
use regex::{Regex, RegexBuilder};

use crate::error::GatewayError;

/// Whether an operation only reads state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    Read,
    Write,
}

impl Access {
    pub fn as_str(self) -> &'static str {
        match self {
            Access::Read => "read",
            Access::Write => "write",
        }
    }
}

#[derive(Debug)]
pub enum Segment {
    Literal(&'static str),
    Label(&'static str),
}

#[derive(Debug)]
pub struct QueryParam {
    pub name: &'static str,
    /// List-typed members may repeat (`tagKeys=a&tagKeys=b`).
    pub list: bool,
}

/// One operation of the service model.
#[derive(Debug)]
pub struct OperationSpec {
    pub name: &'static str,
    pub method: &'static str,
    pub path: &'static [Segment],
    pub query: &'static [QueryParam],
    /// Members sent in the JSON body; an empty list means the request has no body.
    pub body: &'static [&'static str],
    pub access: Access,
}

impl OperationSpec {
    /// The kind of resource the operation acts on, in the words policy uses.
    pub fn resource_type(&self) -> &'static str {
        for seg in self.path {
            if let Segment::Label(l) = seg {
                return match *l {
                    "TemplateArn" => "review-template",
                    "WorkloadId" | "WorkloadArn" => "workload",
                    "LensAlias" => "lens",
                    "ProfileArn" => "profile",
                    "ShareInvitationId" => "share-invitation",
                    "profileArn" => "agent-profile",
                    "recommendationArn" => "agent-recommendation",
                    "reportId" => "agent-report",
                    _ => continue,
                };
            }
        }
        ""
    }

    /// The path label naming the resource, if any.
    pub fn resource_label(&self) -> Option<&'static str> {
        self.path.iter().find_map(|s| match s {
            Segment::Label(l) if *l != "ShareId" => Some(*l),
            _ => None,
        })
    }

    /// Operations that create a share: policy must approve the `SharedWith` target.
    pub fn creates_share(&self) -> bool {
        matches!(
            self.name,
            "CreateTemplateShare"
                | "CreateWorkloadShare"
                | "CreateLensShare"
                | "CreateProfileShare"
        )
    }
}

/// What the service model allows in one path label (generated into the table).
#[derive(Debug)]
pub struct LabelShape {
    pub name: &'static str,
    /// The model's shape name (several labels may share one, e.g. `UUID`).
    pub shape: &'static str,
    /// An integer label: `min`/`max` bound its value, not its length.
    pub integer: bool,
    pub min: Option<usize>,
    pub max: Option<usize>,
    pub pattern: Option<&'static str>,
}

/// Patterns for the labels whose shape in the model has none. Without one, anything up to the
/// length limit would reach policy, and characters such as `+`, `;` or `\` can mean different
/// things to the gateway, to whatever sits in front of AWS, and to AWS itself.
const GATEWAY_PATTERNS: &[(&str, &str)] = &[
    // A lens alias (`serverless`, `my-lens`) or a lens ARN: custom lenses
    // `arn:aws:wellarchitected:us-west-2:123456789012:lens/<id>`, AWS lenses
    // `arn:aws:wellarchitected:us-east-1::lens/serverless` (model documentation of LensAlias).
    (
        "LensAlias",
        r"[A-Za-z0-9][A-Za-z0-9_.-]*|arn:aws(-[a-z]+)*:wellarchitected:([a-z]{2}(-[a-z]+)+-[0-9])?:([0-9]{12}|aws)?:lens/[A-Za-z0-9_.-]+",
    ),
    // Question ids of AWS and custom lenses: `priorities`, `sec_securely_operate`, `oe-1`.
    ("QuestionId", r"[A-Za-z0-9_-][A-Za-z0-9_.-]*"),
    // TagResource and friends take any Well-Architected resource ARN (workload, lens, profile,
    // review template), despite the label's name.
    (
        "WorkloadArn",
        r"arn:aws(-[a-z0-9]+)*:wellarchitected:[a-z0-9-]{6,64}:[0-9]{12}:[a-z]+(-[a-z]+)*/[A-Za-z0-9_-]+",
    ),
];

/// Length limit of a label whose shape has no `max`.
const DEFAULT_LABEL_MAX: usize = 2048;

/// The shapes of every path label, with their patterns compiled (full match, ASCII classes:
/// `\d` is `[0-9]` as in the Java patterns AWS validates with, not any Unicode digit). A
/// pattern that does not compile matches nothing, so routing fails closed; the unit tests
/// check they all compile.
static LABEL_RULES: LazyLock<Vec<(&'static LabelShape, Option<Regex>)>> = LazyLock::new(|| {
    table::LABELS
        .iter()
        .map(|shape| {
            let pattern = shape.pattern.or_else(|| {
                GATEWAY_PATTERNS
                    .iter()
                    .find(|(name, _)| *name == shape.name)
                    .map(|(_, p)| *p)
            });
            let regex = pattern.and_then(|p| {
                RegexBuilder::new(&format!("^(?:{p})$"))
                    .unicode(false)
                    .build()
                    .ok()
            });
            (shape, regex)
        })
        .collect()
});

/// The model's shape of a path label, if the table has one.
pub fn label_shape(name: &str) -> Option<&'static LabelShape> {
    table::LABELS.iter().find(|s| s.name == name)
}

/// Characters refused in any decoded path label: their meaning differs between decoders
/// (`+` is a space to form decoders, `;` starts path parameters for some servers, `\` is a
/// path separator for others, `%` would be decoded a second time by some).
fn ambiguous_label_char(c: char) -> bool {
    matches!(c, '+' | ';' | '\\' | '%') || c.is_whitespace() || c.is_control()
}

/// Checks a decoded path label against its shape in the model.
fn check_label(name: &str, value: &str) -> Result<(), GatewayError> {
    let refuse = || {
        invalid(format!(
            "{name} {value:?} does not satisfy the service model's constraints"
        ))
    };
    let Some((shape, regex)) = LABEL_RULES.iter().find(|(s, _)| s.name == name) else {
        return Err(refuse());
    };
    if shape.integer {
        // Plain decimal only: `02` or `+2` would name the same number to AWS but another
        // string to policy.
        let canonical = value.bytes().all(|b| b.is_ascii_digit())
            && !value.starts_with('0')
            && !value.is_empty();
        let in_range = value.parse::<usize>().is_ok_and(|n| {
            shape.min.is_none_or(|min| n >= min) && shape.max.is_none_or(|max| n <= max)
        });
        return if canonical && in_range {
            Ok(())
        } else {
            Err(refuse())
        };
    }
    let len = value.chars().count();
    let long_enough = len >= shape.min.unwrap_or(1).max(1);
    let short_enough = len <= shape.max.unwrap_or(DEFAULT_LABEL_MAX);
    if long_enough && short_enough && regex.as_ref().is_some_and(|r| r.is_match(value)) {
        Ok(())
    } else {
        Err(refuse())
    }
}

/// A request matched to its operation, with decoded path labels and query parameters.
#[derive(Debug)]
pub struct Routed {
    pub spec: &'static OperationSpec,
    /// Path labels, percent-decoded: `TemplateArn` -> `arn:aws:...`. Each fits its shape in
    /// the model.
    pub labels: BTreeMap<&'static str, String>,
    /// Query parameters, percent-decoded; list members keep every value in order.
    pub query: BTreeMap<String, Vec<String>>,
}

impl Routed {
    pub fn label(&self, name: &str) -> Option<&str> {
        self.labels.get(name).map(String::as_str)
    }
}

/// Every operation the gateway knows.
pub fn all() -> &'static [OperationSpec] {
    table::OPERATIONS
}

pub fn by_name(name: &str) -> Option<&'static OperationSpec> {
    table::OPERATIONS.iter().find(|op| op.name == name)
}

fn invalid(msg: impl Into<String>) -> GatewayError {
    GatewayError::Validation(msg.into())
}

/// Labels that hold ARNs (or a lens alias, which may be a lens ARN) may contain an encoded `/`.
fn label_may_contain_slash(label: &str) -> bool {
    label.ends_with("Arn") || label == "LensAlias"
}

/// Strict percent-decoding of one path or query component.
fn decode_component(raw: &str, what: &str) -> Result<String, GatewayError> {
    let bytes = raw.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'%' {
            let hex_ok = bytes.get(i + 1).is_some_and(u8::is_ascii_hexdigit)
                && bytes.get(i + 2).is_some_and(u8::is_ascii_hexdigit);
            if !hex_ok {
                return Err(invalid(format!("{what} has a malformed percent-encoding")));
            }
            i += 3;
            continue;
        }
        // Only characters that are legal unencoded in a URI component.
        let legal = b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:@".contains(&b);
        if !legal {
            return Err(invalid(format!(
                "{what} contains a character that must be percent-encoded"
            )));
        }
        i += 1;
    }
    percent_decode_str(raw)
        .decode_utf8()
        .map(|s| s.into_owned())
        .map_err(|_| invalid(format!("{what} is not valid UTF-8 once decoded")))
}

/// Matches method and raw path against the table; rejects anything ambiguous.
pub fn route(
    method: &str,
    raw_path: &str,
    raw_query: Option<&str>,
) -> Result<Routed, GatewayError> {
    let Some(rest) = raw_path.strip_prefix('/') else {
        return Err(invalid("request path must start with '/'"));
    };
    // Raw `+` and `;` are legal in a path, but read differently: `+` is a space to form
    // decoders, and `;` starts path parameters (RFC 3986 section 3.3) that some servers drop.
    for (c, why) in [
        (
            '+',
            "some decoders read it as a space; encode a plus as %2B",
        ),
        (';', "some servers read it as the start of path parameters"),
    ] {
        if rest.contains(c) {
            return Err(invalid(format!("request path contains '{c}': {why}")));
        }
    }
    let raw_segments: Vec<&str> = rest.split('/').collect();
    for seg in &raw_segments {
        if seg.is_empty() {
            return Err(invalid(
                "request path has an empty segment (repeated or trailing '/')",
            ));
        }
    }
    // Decode once; dot segments, encoded or not, are refused: servers disagree on them.
    let mut decoded = Vec::with_capacity(raw_segments.len());
    for seg in &raw_segments {
        let d = decode_component(seg, "request path")?;
        if d == "." || d == ".." {
            return Err(invalid("request path has a dot segment"));
        }
        decoded.push(d);
    }

    let mut path_matched_other_method = false;
    let mut found = None;
    'ops: for spec in table::OPERATIONS {
        if spec.path.len() != decoded.len() {
            continue;
        }
        for (i, seg) in spec.path.iter().enumerate() {
            match seg {
                // Literals must match byte for byte, unencoded.
                Segment::Literal(l) => {
                    if raw_segments[i] != *l {
                        continue 'ops;
                    }
                }
                Segment::Label(_) => {}
            }
        }
        if spec.method != method {
            path_matched_other_method = true;
            continue;
        }
        // A literal always beats a label: prefer the most specific template.
        let literals = spec
            .path
            .iter()
            .filter(|s| matches!(s, Segment::Literal(_)))
            .count();
        match found {
            Some((_, best)) if best >= literals => {}
            _ => found = Some((spec, literals)),
        }
    }
    let Some((spec, _)) = found else {
        return Err(GatewayError::UnknownOperation(
            if path_matched_other_method {
                format!("{method} is not an operation on this path")
            } else {
                "No Well-Architected operation matches this request".to_string()
            },
        ));
    };

    let mut labels = BTreeMap::new();
    for (i, seg) in spec.path.iter().enumerate() {
        if let Segment::Label(name) = seg {
            let value = std::mem::take(&mut decoded[i]);
            if value.contains('/') && !label_may_contain_slash(name) {
                return Err(invalid(format!("{name} must not contain '/'")));
            }
            if value.chars().any(char::is_control) {
                return Err(invalid(format!("{name} contains control characters")));
            }
            if let Some(c) = value.chars().find(|c| ambiguous_label_char(*c)) {
                return Err(invalid(format!(
                    "{name} contains {c:?}, which decoders read differently"
                )));
            }
            check_label(name, &value)?;
            labels.insert(*name, value);
        }
    }

    let mut query: BTreeMap<String, Vec<String>> = BTreeMap::new();
    if let Some(raw) = raw_query {
        if raw.contains('+') {
            // '+' means a space to some decoders and a plus to others; SDKs send %20 / %2B.
            return Err(invalid(
                "query string contains '+'; encode spaces as %20 and plus as %2B",
            ));
        }
        if !raw.is_empty() {
            for pair in raw.split('&') {
                let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                let k = decode_component(k, "query parameter name")?;
                let v = decode_component(v, "query parameter value")?;
                let Some(param) = spec.query.iter().find(|p| p.name == k) else {
                    return Err(invalid(format!(
                        "{} does not take the query parameter {k:?}",
                        spec.name
                    )));
                };
                let values = query.entry(k).or_default();
                if !values.is_empty() && !param.list {
                    return Err(invalid(format!(
                        "query parameter {:?} is repeated",
                        param.name
                    )));
                }
                values.push(v);
            }
        }
    }
    Ok(Routed {
        spec,
        labels,
        query,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Areview-template%2F0123456789abcdef0123456789abcdef";

    #[test]
    fn routes_template_share_operations() {
        let r = route("POST", &format!("/templates/shares/{ARN}"), None).unwrap();
        assert_eq!(r.spec.name, "CreateTemplateShare");
        assert_eq!(
            r.label("TemplateArn"),
            Some(
                "arn:aws:wellarchitected:us-east-1:123456789012:review-template/0123456789abcdef0123456789abcdef"
            )
        );
        let r = route(
            "GET",
            &format!("/templates/shares/{ARN}"),
            Some("MaxResults=5&SharedWithPrefix=ou-"),
        )
        .unwrap();
        assert_eq!(r.spec.name, "ListTemplateShares");
        assert_eq!(r.query["MaxResults"], vec!["5"]);
        let r = route(
            "DELETE",
            &format!("/templates/shares/{ARN}/0123456789abcdef0123456789abcdef"),
            Some("ClientRequestToken=x"),
        )
        .unwrap();
        assert_eq!(r.spec.name, "DeleteTemplateShare");
    }

    #[test]
    fn every_share_operation_is_routable() {
        for name in [
            "CreateTemplateShare",
            "DeleteTemplateShare",
            "ListTemplateShares",
            "CreateWorkloadShare",
            "DeleteWorkloadShare",
            "ListWorkloadShares",
            "UpdateWorkloadShare",
            "CreateLensShare",
            "DeleteLensShare",
            "ListLensShares",
            "CreateProfileShare",
            "DeleteProfileShare",
            "ListProfileShares",
            "ListShareInvitations",
            "UpdateShareInvitation",
        ] {
            assert!(by_name(name).is_some(), "{name}");
        }
        assert_eq!(by_name("ListLenses").unwrap().access, Access::Read);
        assert_eq!(by_name("ListCheckDetails").unwrap().access, Access::Read);
        assert_eq!(
            by_name("CreateTemplateShare").unwrap().access,
            Access::Write
        );
    }

    #[test]
    fn literal_beats_label() {
        // /workloads/{WorkloadId}/shares vs nothing else; /lenses/{LensAlias}/export is a literal.
        let r = route("GET", "/lenses/serverless/export", None).unwrap();
        assert_eq!(r.spec.name, "ExportLens");
    }

    #[test]
    fn rejects_ambiguous_paths() {
        let cases = [
            "/templates//shares/x",
            "/templates/shares/x/",
            "/templates/./shares/x",
            "/templates/shares/..",
            "/templates/shares/%2e%2e",
            "/templates%2Fshares/x",
            "/workloads/abc%2Fdef/shares",
            "/templates/shares/%zz",
            "/templates/shares/%C3%28",
        ];
        for p in cases {
            let err = route("POST", p, None).unwrap_err();
            assert!(
                matches!(
                    err,
                    GatewayError::Validation(_) | GatewayError::UnknownOperation(_)
                ),
                "{p}: {err:?}"
            );
        }
    }

    #[test]
    fn unknown_operations_fail_closed() {
        assert!(matches!(
            route("POST", "/nothing/here", None),
            Err(GatewayError::UnknownOperation(_))
        ));
        assert!(matches!(
            route("PUT", &format!("/templates/shares/{ARN}"), None),
            Err(GatewayError::UnknownOperation(_))
        ));
    }

    #[test]
    fn query_is_strict() {
        let p = format!("/templates/shares/{ARN}");
        assert!(route("GET", &p, Some("Bogus=1")).is_err());
        assert!(route("GET", &p, Some("MaxResults=1&MaxResults=2")).is_err());
        assert!(route("GET", &p, Some("SharedWithPrefix=a+b")).is_err());
        let tags = "/tags/arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Aworkload%2F0123456789abcdef0123456789abcdef";
        let r = route("DELETE", tags, Some("tagKeys=a&tagKeys=b")).unwrap();
        assert_eq!(r.query["tagKeys"], vec!["a", "b"]);
    }

    #[test]
    fn every_label_has_a_compiled_pattern_or_is_an_integer() {
        for spec in all() {
            for seg in spec.path {
                if let Segment::Label(name) = seg {
                    let shape = label_shape(name).unwrap_or_else(|| panic!("{name}: no shape"));
                    let rule = LABEL_RULES.iter().find(|(s, _)| s.name == *name).unwrap();
                    assert!(shape.integer || rule.1.is_some(), "{name}: no pattern");
                }
            }
        }
    }

    #[test]
    fn labels_follow_the_model() {
        let hex = "0123456789abcdef0123456789abcdef";
        let uuid = "01234567-89ab-cdef-0123-456789abcdef";
        let ok = [
            (
                "TemplateArn",
                "arn:aws:wellarchitected:us-east-1:123456789012:review-template/0123456789abcdef0123456789abcdef",
            ),
            (
                "ProfileArn",
                "arn:aws:wellarchitected:us-east-1:123456789012:profile/abc123",
            ),
            ("WorkloadId", hex),
            ("ShareId", hex),
            ("LensAlias", "serverless"),
            ("LensAlias", "my-lens"),
            (
                "LensAlias",
                "arn:aws:wellarchitected:us-east-1::lens/serverless",
            ),
            (
                "LensAlias",
                "arn:aws:wellarchitected::aws:lens/wellarchitected",
            ),
            (
                "LensAlias",
                "arn:aws:wellarchitected:us-west-2:123456789012:lens/0123456789abcdef01234567890abcdef",
            ),
            ("QuestionId", "sec_securely_operate"),
            ("MilestoneNumber", "1"),
            ("MilestoneNumber", "100"),
            (
                "WorkloadArn",
                "arn:aws:wellarchitected:us-east-1:123456789012:workload/0123456789abcdef0123456789abcdef",
            ),
            (
                "WorkloadArn",
                "arn:aws:wellarchitected:us-east-1:123456789012:review-template/0123456789abcdef0123456789abcdef",
            ),
            ("reportId", uuid),
            (
                "profileArn",
                "arn:aws:wellarchitected:us-east-1:123456789012:agent-profile/p_1",
            ),
        ];
        for (name, value) in ok {
            assert!(check_label(name, value).is_ok(), "{name} {value}");
        }
        let bad = [
            ("LensAlias", "a".repeat(129)),
            ("LensAlias", "lens+x".into()),
            ("LensAlias", "lens;x".into()),
            ("LensAlias", "lens\\x".into()),
            ("LensAlias", "lens x".into()),
            ("LensAlias", "lens%2Fx".into()),
            ("LensAlias", "../serverless".into()),
            ("LensAlias", "arn:aws:wellarchitected:us-east-1::workload/x".into()),
            ("QuestionId", "q/1".into()),
            ("QuestionId", "q".repeat(129)),
            ("MilestoneNumber", "0".into()),
            ("MilestoneNumber", "02".into()),
            ("MilestoneNumber", "+2".into()),
            ("MilestoneNumber", "101".into()),
            ("WorkloadArn", "arn:x".into()),
            ("WorkloadId", hex.to_uppercase()),
            // A Unicode digit is a `\d` to a Unicode-aware regex, not to AWS.
            ("TemplateArn", "arn:aws:wellarchitected:us-east-\u{0661}:123456789012:review-template/0123456789abcdef0123456789abcdef".into()),
            ("reportId", uuid.to_uppercase()),
            ("NoSuchLabel", "x".into()),
        ];
        for (name, value) in bad {
            assert!(check_label(name, &value).is_err(), "{name} {value}");
        }
    }

    #[test]
    fn decoder_dependent_path_characters_are_refused() {
        for p in [
            "/lenses/my+lens/shares",
            "/lenses/my%2Blens/shares",
            "/lenses/my-lens;v=1/shares",
            "/lenses/my-lens%3Bv=1/shares",
            "/lenses/my%5Clens/shares",
            "/lenses/my%20lens/shares",
            "/lenses/my%09lens/shares",
            "/lenses/my%252Flens/shares",
        ] {
            assert!(
                matches!(route("POST", p, None), Err(GatewayError::Validation(_))),
                "{p}"
            );
        }
        assert!(route("POST", "/lenses/my-lens/shares", None).is_ok());
        let answer = "/workloads/0123456789abcdef0123456789abcdef/lensReviews/serverless/answers";
        assert!(route("GET", &format!("{answer}/q%2B1"), None).is_err());
        assert!(route("GET", &format!("{answer}/q_1"), None).is_ok());
    }
}
