//! The Well-Architected operation table: (method, path template) -> operation, with its parameters.
//!
//! The table is generated from botocore's service model (`tools/gen_operations.py`). Routing is
//! strict: a path that could be read two ways (encoded slashes outside ARN labels, dot segments,
//! repeated slashes, stray query parameters) is rejected instead of guessed at, because AWS must
//! act on exactly the operation the gateway decided on.

mod table;

use std::collections::BTreeMap;

use percent_encoding::percent_decode_str;

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

/// A request matched to its operation, with decoded path labels and query parameters.
#[derive(Debug)]
pub struct Routed {
    pub spec: &'static OperationSpec,
    /// Path labels, percent-decoded: `TemplateArn` -> `arn:aws:...`.
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
        let r = route("DELETE", "/tags/arn%3Ax", Some("tagKeys=a&tagKeys=b")).unwrap();
        assert_eq!(r.query["tagKeys"], vec!["a", "b"]);
    }
}
