//! The policy input document: what policy knows about a request (names are a contract).

use std::collections::BTreeMap;
use std::net::IpAddr;

use regorus::Value;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Authenticated;
use crate::operation::Routed;
use crate::organization::{Context, Resolution};
use crate::validate::Validated;

/// Builds `input` for `data.waguard.authz.decision`, directly as the policy engine's value (a
/// detour through `serde_json::Value` cost ~6 µs per request). `policies/input.schema.json`
/// describes it; a test checks that the documents built here match it.
#[allow(clippy::too_many_arguments)]
pub fn build(
    auth: &Authenticated,
    routed: &Routed,
    validated: &Validated,
    placed: Option<&Resolution>,
    organization: Option<&Context>,
    method: &str,
    raw_path: &str,
    source_ip: IpAddr,
    now: OffsetDateTime,
) -> Value {
    let spec = routed.spec;
    let caller = &auth.caller;
    let query = routed.query.iter().map(|(k, values)| {
        let v = match values.as_slice() {
            [one] if !spec.query.iter().any(|p| p.name == k && p.list) => Value::from(one.as_str()),
            many => Value::from(
                many.iter()
                    .map(|v| Value::from(v.as_str()))
                    .collect::<Vec<_>>(),
            ),
        };
        (Value::from(k.as_str()), v)
    });
    let attributes = caller
        .attributes
        .iter()
        .map(|(k, v)| (Value::from(k.as_str()), Value::from(v.as_str())));
    let body = if validated.body.is_null() {
        Value::new_object()
    } else {
        Value::from(validated.body.clone())
    };
    let mut input = object([
        ("operation", Value::from(spec.name)),
        ("access", Value::from(spec.access.as_str())),
        ("region", Value::from(auth.region.as_str())),
        (
            "caller",
            object([
                ("access_key_id", Value::from(caller.access_key_id.as_str())),
                ("principal", Value::from(caller.principal.as_str())),
                ("team", Value::from(caller.team.as_str())),
                (
                    "attributes",
                    Value::from(attributes.collect::<BTreeMap<_, _>>()),
                ),
            ]),
        ),
        (
            "resource",
            object([
                ("type", Value::from(spec.resource_type())),
                (
                    "arn",
                    Value::from(validated.resource.as_deref().unwrap_or("")),
                ),
            ]),
        ),
        (
            "request",
            object([
                ("method", Value::from(method)),
                ("path", Value::from(raw_path)),
                ("query", Value::from(query.collect::<BTreeMap<_, _>>())),
                ("body", body),
            ]),
        ),
        ("source_ip", Value::from(source_ip.to_string())),
        (
            "time",
            Value::from(now.format(&Rfc3339).unwrap_or_default()),
        ),
    ]);
    if let Some(share) = &validated.share {
        let mut s = BTreeMap::new();
        if let Some(w) = &share.shared_with {
            s.insert(Value::from("shared_with"), Value::from(w.as_str()));
        }
        if let Some(t) = &share.target {
            s.insert(Value::from("target_type"), Value::from(t.kind.as_str()));
        }
        if let Some(p) = &share.permission_type {
            s.insert(Value::from("permission_type"), Value::from(p.as_str()));
        }
        if let Some(t) = &share.target {
            let unresolved = Resolution::default();
            let placed = placed.unwrap_or(&unresolved);
            let strings = |v: &[String]| {
                Value::from(
                    v.iter()
                        .map(|x| Value::from(x.as_str()))
                        .collect::<Vec<_>>(),
                )
            };
            s.insert(
                Value::from("target"),
                object([
                    ("id", Value::from(t.id.as_str())),
                    ("type", Value::from(t.kind.as_str())),
                    ("account", optional(t.account.as_deref())),
                    (
                        "in_organization",
                        placed.in_organization.map_or(Value::Null, Value::from),
                    ),
                    ("ou_path", strings(&placed.ou_path)),
                    ("ou_path_names", strings(&placed.ou_path_names)),
                    ("name", optional(placed.name.as_deref())),
                    ("status", optional(placed.status.as_deref())),
                ]),
            );
        }
        if let Ok(fields) = input.as_object_mut() {
            fields.insert(Value::from("share"), Value::from(s));
        }
    }
    if let (Some(o), Ok(fields)) = (organization, input.as_object_mut()) {
        fields.insert(
            Value::from("organization"),
            object([
                ("id", optional(o.id.as_deref())),
                ("root", optional(o.root.as_deref())),
                (
                    "snapshot_age_seconds",
                    o.snapshot_age_seconds.map_or(Value::Null, Value::from),
                ),
            ]),
        );
    }
    input
}

fn optional(s: Option<&str>) -> Value {
    s.map_or(Value::Null, Value::from)
}

fn object<const N: usize>(fields: [(&str, Value); N]) -> Value {
    Value::from(
        fields
            .into_iter()
            .map(|(k, v)| (Value::from(k), v))
            .collect::<BTreeMap<_, _>>(),
    )
}
