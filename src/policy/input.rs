//! The policy input document: what policy knows about a request (names are a contract).

use std::net::IpAddr;

use serde_json::{Map, Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::auth::Authenticated;
use crate::operation::Routed;
use crate::validate::Validated;

/// Builds `input` for `data.waguard.authz.decision`.
pub fn build(
    auth: &Authenticated,
    routed: &Routed,
    validated: &Validated,
    method: &str,
    raw_path: &str,
    source_ip: IpAddr,
    now: OffsetDateTime,
) -> Value {
    let spec = routed.spec;
    let caller = &auth.caller;
    let mut query = Map::new();
    for (k, values) in &routed.query {
        let v = match values.as_slice() {
            [one] if !spec.query.iter().any(|p| p.name == k && p.list) => {
                Value::String(one.clone())
            }
            many => Value::Array(many.iter().cloned().map(Value::String).collect()),
        };
        query.insert(k.clone(), v);
    }
    let mut input = json!({
        "operation": spec.name,
        "access": spec.access.as_str(),
        "region": auth.region,
        "caller": {
            "access_key_id": caller.access_key_id,
            "principal": caller.principal,
            "team": caller.team,
            "attributes": caller.attributes,
        },
        "resource": {
            "type": spec.resource_type(),
            "arn": validated.resource.as_deref().unwrap_or(""),
        },
        "request": {
            "method": method,
            "path": raw_path,
            "query": query,
            "body": if validated.body.is_null() { Value::Object(Map::new()) } else { validated.body.clone() },
        },
        "source_ip": source_ip.to_string(),
        "time": now.format(&Rfc3339).unwrap_or_default(),
    });
    if let Some(share) = &validated.share {
        let mut s = Map::new();
        if let Some(w) = &share.shared_with {
            s.insert("shared_with".into(), Value::String(w.clone()));
        }
        if let Some(t) = share.target {
            s.insert("target_type".into(), Value::String(t.as_str().into()));
        }
        if let Some(p) = &share.permission_type {
            s.insert("permission_type".into(), Value::String(p.clone()));
        }
        if let Some(obj) = input.as_object_mut() {
            obj.insert("share".into(), Value::Object(s));
        }
    }
    input
}
