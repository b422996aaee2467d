//! Request validation per the service model, with strict JSON: the gateway decides on exactly
//! what AWS will parse, so anything two parsers could read differently is refused.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::LazyLock;

use http::{HeaderMap, HeaderValue};
use regex::Regex;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::operation::Routed;

/// A full-match pattern. Patterns are constants checked by the unit tests; should one ever fail
/// to compile it matches nothing, so validation fails closed instead of panicking.
struct Pattern(LazyLock<Option<Regex>>);

macro_rules! pattern {
    ($re:expr) => {
        Pattern(LazyLock::new(|| {
            Regex::new(concat!("^(?:", $re, ")$")).ok()
        }))
    };
}

impl Pattern {
    fn is_match(&self, s: &str) -> bool {
        self.0.as_ref().is_some_and(|r| r.is_match(s))
    }
}

/// What kind of principal a share grants access to, classified from `SharedWith`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ShareTarget {
    Account,
    Organization,
    Ou,
    /// An IAM user or role (workload shares may name one).
    IamPrincipal,
    Unknown,
}

impl ShareTarget {
    pub fn classify(shared_with: &str) -> ShareTarget {
        Target::parse(shared_with).kind
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ShareTarget::Account => "account",
            ShareTarget::Organization => "organization",
            ShareTarget::Ou => "ou",
            ShareTarget::IamPrincipal => "iam_principal",
            ShareTarget::Unknown => "unknown",
        }
    }
}

/// A `SharedWith` value normalised: the ID and ARN forms of an organization or OU name the
/// same target. The request forwarded to AWS keeps `SharedWith` as sent; only what policy
/// and the organization view see is normalised.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    pub kind: ShareTarget,
    /// The account ID, `o-…`, `ou-…`, the IAM ARN, or for `Unknown` the value as sent.
    pub id: String,
    /// The account an account or IAM principal belongs to.
    pub account: Option<String>,
    /// The organization an OU or organization ARN names (`o-…`).
    pub organization: Option<String>,
}

impl Target {
    pub fn parse(shared_with: &str) -> Target {
        // https://docs.aws.amazon.com/organizations/latest/APIReference/API_OrganizationalUnit.html
        static ACCOUNT: Pattern = pattern!("[0-9]{12}");
        static ORG: Pattern = pattern!("o-[a-z0-9]{10,32}");
        static OU: Pattern = pattern!("ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}");
        static ORG_ARN: Pattern =
            pattern!("arn:aws(-[a-z]+)*:organizations::[0-9]{12}:organization/o-[a-z0-9]{10,32}");
        static OU_ARN: Pattern = pattern!(
            "arn:aws(-[a-z]+)*:organizations::[0-9]{12}:ou/o-[a-z0-9]{10,32}/ou-[a-z0-9]{4,32}-[a-z0-9]{8,32}"
        );
        // IAM names and paths: https://docs.aws.amazon.com/IAM/latest/UserGuide/reference_iam-quotas.html
        static IAM_ARN: Pattern = pattern!(
            "arn:aws(-[a-z]+)*:iam::[0-9]{12}:(user|role)/([A-Za-z0-9+=,.@_-]+/)*[A-Za-z0-9+=,.@_-]{1,64}"
        );
        let target = |kind, id: &str, account: Option<&str>, organization: Option<&str>| Target {
            kind,
            id: id.to_string(),
            account: account.map(str::to_string),
            organization: organization.map(str::to_string),
        };
        let last = |s: &'static str| shared_with.rsplit(s).next().unwrap_or(shared_with);
        if ACCOUNT.is_match(shared_with) {
            target(ShareTarget::Account, shared_with, Some(shared_with), None)
        } else if ORG.is_match(shared_with) {
            target(
                ShareTarget::Organization,
                shared_with,
                None,
                Some(shared_with),
            )
        } else if OU.is_match(shared_with) {
            target(ShareTarget::Ou, shared_with, None, None)
        } else if ORG_ARN.is_match(shared_with) {
            let org = last("/");
            target(ShareTarget::Organization, org, None, Some(org))
        } else if OU_ARN.is_match(shared_with) {
            let mut parts = shared_with.rsplit('/');
            let ou = parts.next().unwrap_or_default();
            let org = parts.next();
            target(ShareTarget::Ou, ou, None, org)
        } else if IAM_ARN.is_match(shared_with) {
            let account = shared_with.split(':').nth(4);
            target(ShareTarget::IamPrincipal, shared_with, account, None)
        } else {
            target(ShareTarget::Unknown, shared_with, None, None)
        }
    }
}

/// The share a request asks for (share-creating and share-updating operations).
#[derive(Debug, Clone)]
pub struct Share {
    pub shared_with: Option<String>,
    pub target: Option<Target>,
    pub permission_type: Option<String>,
}

impl Validated {
    /// The share target a share-creating request names.
    pub fn target(&self) -> Option<&Target> {
        self.share.as_ref().and_then(|s| s.target.as_ref())
    }
}

/// What validation established about a request.
#[derive(Debug)]
pub struct Validated {
    /// The parsed JSON body (`Null` when the operation has no body).
    pub body: Value,
    pub share: Option<Share>,
    pub client_request_token: Option<String>,
    /// The ARN or id of the resource acted on, from the path.
    pub resource: Option<String>,
    /// The request's one Content-Type, as validated; the only one that may be forwarded.
    pub content_type: Option<HeaderValue>,
}

fn invalid(msg: impl Into<String>) -> GatewayError {
    GatewayError::Validation(msg.into())
}

/// Headers that would make AWS, or something in front of it, read the request differently.
pub fn check_headers(headers: &HeaderMap) -> Result<(), GatewayError> {
    for name in [
        "x-http-method-override",
        "x-http-method",
        "x-method-override",
    ] {
        if headers.contains_key(name) {
            return Err(invalid(format!("the {name} header is not accepted")));
        }
    }
    if headers.contains_key(http::header::CONTENT_ENCODING) {
        return Err(invalid(
            "Content-Encoding is not accepted; send the body uncompressed",
        ));
    }
    content_type(headers)?;
    Ok(())
}

/// The request's Content-Type, if it has one: exactly one header, `application/json` with at
/// most a `charset=utf-8` parameter. The body is read as UTF-8 JSON; any other charset, or a
/// parameter the gateway does not know, could make AWS read the same bytes differently, and
/// with two headers the gateway and AWS could each read another one.
pub fn content_type(headers: &HeaderMap) -> Result<Option<&HeaderValue>, GatewayError> {
    let mut values = headers.get_all(http::header::CONTENT_TYPE).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(invalid("the request has more than one Content-Type header"));
    }
    let refuse = || {
        invalid(
            "Content-Type must be application/json, optionally with charset=utf-8 and no other parameter",
        )
    };
    let text = value.to_str().map_err(|_| refuse())?;
    let mut parts = text.split(';');
    let essence = parts.next().unwrap_or_default().trim_matches([' ', '\t']);
    // restJson1 clients send application/json; other JSON media types
    // (application/x-amz-json-1.1 is the awsJson protocol's) are not this API's.
    if !essence.eq_ignore_ascii_case("application/json") {
        return Err(refuse());
    }
    if let Some(param) = parts.next() {
        // RFC 9110 section 5.6.6: no whitespace around '='; a quoted value is refused too.
        let param = param.trim_matches([' ', '\t']);
        if !param.eq_ignore_ascii_case("charset=utf-8") {
            return Err(refuse());
        }
    }
    if parts.next().is_some() {
        return Err(refuse());
    }
    Ok(Some(value))
}

/// Validates body and parameters of a routed request.
pub fn validate(
    routed: &Routed,
    method: &http::Method,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<Validated, GatewayError> {
    check_headers(headers)?;
    let content_type = content_type(headers)?.cloned();
    let spec = routed.spec;
    let body = if spec.body.is_empty() {
        if !body.is_empty() {
            return Err(invalid(format!("{} takes no request body", spec.name)));
        }
        Value::Null
    } else if *method == http::Method::GET {
        return Err(invalid("a GET request must not have a body"));
    } else {
        if !body.is_empty() && content_type.is_none() {
            return Err(invalid(
                "the request body must be sent as Content-Type: application/json",
            ));
        }
        let value = if body.is_empty() {
            Value::Object(Map::new())
        } else {
            parse_strict_json(body)?
        };
        let Value::Object(members) = &value else {
            return Err(invalid("the request body must be a JSON object"));
        };
        for key in members.keys() {
            if !spec.body.contains(&key.as_str()) {
                return Err(invalid(format!(
                    "{} does not take the member {key:?}",
                    spec.name
                )));
            }
        }
        value
    };

    let mut v = Validated {
        client_request_token: None,
        share: None,
        resource: spec
            .resource_label()
            .and_then(|l| routed.label(l))
            .map(str::to_string),
        body,
        content_type,
    };
    if let Some(token) = string_member(&v.body, "ClientRequestToken")?
        .or_else(|| query_one(&routed.query, "ClientRequestToken"))
    {
        if token.is_empty() || token.len() > 2048 || !token.is_ascii() {
            return Err(invalid(
                "ClientRequestToken must be 1 to 2048 ASCII characters",
            ));
        }
        v.client_request_token = Some(token.to_string());
    }

    if spec.creates_share() {
        let shared_with = required_string(&v.body, "SharedWith")?;
        if shared_with.chars().count() < 12 || shared_with.chars().count() > 2048 {
            return Err(invalid("SharedWith must be 12 to 2048 characters"));
        }
        if v.client_request_token.is_none() {
            return Err(invalid("ClientRequestToken is required"));
        }
        let permission_type = if spec.name == "CreateWorkloadShare" {
            Some(permission_type(&v.body)?)
        } else {
            None
        };
        v.share = Some(Share {
            target: Some(Target::parse(shared_with)),
            shared_with: Some(shared_with.to_string()),
            permission_type,
        });
    } else if spec.name == "UpdateWorkloadShare" {
        v.share = Some(Share {
            shared_with: None,
            target: None,
            permission_type: Some(permission_type(&v.body)?),
        });
    } else if spec.name == "UpdateShareInvitation" {
        let action = required_string(&v.body, "ShareInvitationAction")?;
        if !matches!(action, "ACCEPT" | "REJECT") {
            return Err(invalid("ShareInvitationAction must be ACCEPT or REJECT"));
        }
    } else if spec.name.starts_with("Delete")
        && spec.name.ends_with("Share")
        && v.client_request_token.is_none()
    {
        return Err(invalid("ClientRequestToken is required"));
    }
    Ok(v)
}

fn permission_type(body: &Value) -> Result<String, GatewayError> {
    let p = required_string(body, "PermissionType")?;
    if !matches!(p, "READONLY" | "CONTRIBUTOR") {
        return Err(invalid("PermissionType must be READONLY or CONTRIBUTOR"));
    }
    Ok(p.to_string())
}

fn query_one<'a>(query: &'a BTreeMap<String, Vec<String>>, name: &str) -> Option<&'a str> {
    query.get(name).and_then(|v| v.first()).map(String::as_str)
}

fn string_member<'a>(body: &'a Value, name: &str) -> Result<Option<&'a str>, GatewayError> {
    match body.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{name} must be a string"))),
    }
}

fn required_string<'a>(body: &'a Value, name: &str) -> Result<&'a str, GatewayError> {
    string_member(body, name)?.ok_or_else(|| invalid(format!("{name} is required")))
}

/// Parses JSON, refusing duplicate object keys at any depth and trailing data.
pub fn parse_strict_json(body: &[u8]) -> Result<Value, GatewayError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let StrictValue(v) = serde::Deserialize::deserialize(&mut de)
        .map_err(|e| invalid(format!("the request body is not valid JSON: {e}")))?;
    de.end()
        .map_err(|e| invalid(format!("the request body is not valid JSON: {e}")))?;
    Ok(v)
}

struct StrictValue(Value);

impl<'de> serde::Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a JSON value")
    }
    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| E::custom("number out of range"))
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.insert(key.clone(), v).is_some() {
                return Err(de::Error::custom(format!("duplicate key {key:?}")));
            }
        }
        Ok(Value::Object(out))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation::route;

    const ARN: &str = "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Areview-template%2F0123456789abcdef0123456789abcdef";

    fn json_headers() -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(
            http::header::CONTENT_TYPE,
            "application/json".parse().unwrap(),
        );
        h
    }

    fn create_share(body: &str) -> Result<Validated, GatewayError> {
        let r = route("POST", &format!("/templates/shares/{ARN}"), None).unwrap();
        validate(&r, &http::Method::POST, &json_headers(), body.as_bytes())
    }

    #[test]
    fn classifies_share_targets() {
        assert_eq!(ShareTarget::classify("123456789012"), ShareTarget::Account);
        assert_eq!(
            ShareTarget::classify("o-abcdefghij"),
            ShareTarget::Organization
        );
        assert_eq!(ShareTarget::classify("ou-ab12-abcdefgh"), ShareTarget::Ou);
        for unknown in [
            "12345678901",
            "1234567890123",
            "o-short",
            "ou-ab1-abcdefgh",
            "OU-AB12-ABCDEFGH",
            "arn:aws:iam::123456789012:root",
            "arn:aws:iam::123456789012:group/admins",
            "arn:aws:organizations::123456789012:ou/o-abcdefghij/ou-ab1-abcdefgh",
            "arn:aws:organizations::123456789012:account/o-abcdefghij/123456789012",
            "arn:aws:organizations::12345678901:organization/o-abcdefghij",
            " 123456789012",
            "123456789012\n",
        ] {
            assert_eq!(
                ShareTarget::classify(unknown),
                ShareTarget::Unknown,
                "{unknown}"
            );
        }
    }

    #[test]
    fn normalises_arn_forms_to_the_ids_they_name() {
        let ou =
            Target::parse("arn:aws:organizations::111111111111:ou/o-exampleorg01/ou-ab12-22222222");
        assert_eq!(
            (ou.kind, ou.id.as_str()),
            (ShareTarget::Ou, "ou-ab12-22222222")
        );
        assert_eq!(ou.organization.as_deref(), Some("o-exampleorg01"));
        let org = Target::parse("arn:aws:organizations::111111111111:organization/o-exampleorg01");
        assert_eq!(
            (org.kind, org.id.as_str()),
            (ShareTarget::Organization, "o-exampleorg01")
        );
        let role = Target::parse("arn:aws:iam::333748161105:role/team/deploy-role");
        assert_eq!(role.kind, ShareTarget::IamPrincipal);
        assert_eq!(role.id, "arn:aws:iam::333748161105:role/team/deploy-role");
        assert_eq!(role.account.as_deref(), Some("333748161105"));
        let user = Target::parse("arn:aws:iam::333748161105:user/alice");
        assert_eq!(user.kind, ShareTarget::IamPrincipal);
        let account = Target::parse("333748161105");
        assert_eq!(account.account.as_deref(), Some("333748161105"));
        assert_eq!(
            Target::parse("o-exampleorg01").organization.as_deref(),
            Some("o-exampleorg01")
        );
    }

    #[test]
    fn accepts_a_well_formed_template_share() {
        let v = create_share(r#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"tok-1"}"#)
            .unwrap();
        let share = v.share.unwrap();
        assert_eq!(share.shared_with.as_deref(), Some("ou-ab12-11111111"));
        assert_eq!(share.target.as_ref().map(|t| t.kind), Some(ShareTarget::Ou));
        assert_eq!(v.client_request_token.as_deref(), Some("tok-1"));
        assert!(
            v.resource
                .unwrap()
                .ends_with("review-template/0123456789abcdef0123456789abcdef")
        );
    }

    #[test]
    fn rejects_what_aws_might_read_differently() {
        let cases = [
            r#"{"SharedWith":"ou-ab12-11111111","SharedWith":"123456789012","ClientRequestToken":"t"}"#,
            r#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"t","Extra":1}"#,
            r#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"t"} trailing"#,
            r#"["SharedWith"]"#,
            r#"{"SharedWith":123456789012,"ClientRequestToken":"t"}"#,
            r#"{"SharedWith":"short","ClientRequestToken":"t"}"#,
            r#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"tök"}"#,
            r#"{"SharedWith":"ou-ab12-11111111"}"#,
            "SharedWith=ou-ab12-11111111",
        ];
        for body in cases {
            assert!(
                matches!(create_share(body), Err(GatewayError::Validation(_))),
                "{body}"
            );
        }
        let r = route("POST", &format!("/templates/shares/{ARN}"), None).unwrap();
        let bad_utf8 = b"{\"SharedWith\":\"ou-ab12-1111111\xff\",\"ClientRequestToken\":\"t\"}";
        assert!(validate(&r, &http::Method::POST, &json_headers(), bad_utf8).is_err());
        let mut gz = json_headers();
        gz.insert(http::header::CONTENT_ENCODING, "gzip".parse().unwrap());
        assert!(validate(&r, &http::Method::POST, &gz, b"{}").is_err());
        let mut ovr = json_headers();
        ovr.insert("x-http-method-override", "DELETE".parse().unwrap());
        assert!(validate(&r, &http::Method::POST, &ovr, b"{}").is_err());
        let mut form = HeaderMap::new();
        form.insert(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded".parse().unwrap(),
        );
        assert!(
            validate(
                &r,
                &http::Method::POST,
                &form,
                br#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"t"}"#
            )
            .is_err()
        );
    }

    #[test]
    fn template_arn_follows_the_model() {
        // Labels are checked against the model when the request is routed.
        let bad = "arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Aworkload%2F0123456789abcdef0123456789abcdef";
        assert!(matches!(
            route("POST", &format!("/templates/shares/{bad}"), None),
            Err(GatewayError::Validation(_))
        ));
    }

    fn with_content_types(values: &[&str]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for v in values {
            h.append(http::header::CONTENT_TYPE, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn content_type_is_json_with_at_most_a_utf8_charset() {
        let r = route("POST", &format!("/templates/shares/{ARN}"), None).unwrap();
        let body = br#"{"SharedWith":"ou-ab12-11111111","ClientRequestToken":"t"}"#;
        for ok in [
            "application/json",
            "Application/JSON",
            "application/json; charset=utf-8",
            "application/json;charset=UTF-8",
            "application/json ;  Charset=Utf-8",
        ] {
            let v = validate(&r, &http::Method::POST, &with_content_types(&[ok]), body)
                .unwrap_or_else(|e| panic!("{ok}: {e:?}"));
            assert_eq!(v.content_type.unwrap(), ok);
        }
        for bad in [
            "application/json; charset=utf-7",
            "application/json; charset=iso-8859-1",
            "application/json; charset=\"utf-8\"",
            "application/json; charset = utf-8",
            "application/json; charset=utf-8; charset=utf-7",
            "application/json; charset=utf-8;",
            "application/json; boundary=x",
            "application/json;",
            "application/json, text/plain",
            "application/x-amz-json-1.1",
            "application/jsonx",
            "text/json",
            "",
        ] {
            assert!(
                matches!(
                    validate(&r, &http::Method::POST, &with_content_types(&[bad]), body),
                    Err(GatewayError::Validation(_))
                ),
                "{bad}"
            );
        }
        // Two headers: the gateway and AWS could each read another one.
        let two = with_content_types(&["application/json", "application/json; charset=utf-7"]);
        assert!(validate(&r, &http::Method::POST, &two, body).is_err());
        let same = with_content_types(&["application/json", "application/json"]);
        assert!(validate(&r, &http::Method::POST, &same, body).is_err());
        // Also on a request without a body.
        let get = route("GET", &format!("/templates/shares/{ARN}"), None).unwrap();
        let utf7 = with_content_types(&["application/json; charset=utf-7"]);
        assert!(validate(&get, &http::Method::GET, &utf7, b"").is_err());
        // A body needs a Content-Type.
        assert!(validate(&r, &http::Method::POST, &HeaderMap::new(), body).is_err());
    }

    #[test]
    fn get_with_body_is_rejected() {
        let r = route("GET", &format!("/templates/shares/{ARN}"), None).unwrap();
        assert!(validate(&r, &http::Method::GET, &json_headers(), b"{}").is_err());
        assert!(validate(&r, &http::Method::GET, &HeaderMap::new(), b"").is_ok());
    }
}
