//! The Well-Architected operations the simulator answers over its estate, in the shapes of the
//! service model: listing resources, shares and tags a page at a time (in the region of the
//! request's signature), and creating and deleting shares.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use http::StatusCode;
use serde_json::{Map, Value, json};

use super::estate::{Estate, PermissionType, Resource, ShareStatus, new_share_id};
use crate::drift::ResourceType;
use crate::operation::Routed;

/// Items per page when neither the caller (MaxResults) nor the test (page size) says fewer:
/// the model's largest MaxResults.
const MAX_PAGE: usize = 50;

/// A request to the simulated Well-Architected, signature verified and routed.
pub(super) struct Request<'a> {
    pub routed: &'a Routed,
    /// The JSON body (`{}` when there is none, `null` when it is not JSON).
    pub body: &'a Value,
    /// The region of the signature's credential scope: the only resources the call sees.
    pub region: &'a str,
    /// Items per page set by the test (0: [`MAX_PAGE`]).
    pub page_size: usize,
}

/// Why the simulated service refuses a request, as AWS says it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Refusal {
    Validation(String),
    NotFound {
        resource_id: String,
        resource_type: &'static str,
    },
    Conflict {
        resource_id: String,
        resource_type: &'static str,
        message: String,
    },
}

impl Refusal {
    pub fn status(&self) -> StatusCode {
        match self {
            Refusal::Validation(_) => StatusCode::BAD_REQUEST,
            Refusal::NotFound { .. } => StatusCode::NOT_FOUND,
            Refusal::Conflict { .. } => StatusCode::CONFLICT,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            Refusal::Validation(_) => "ValidationException",
            Refusal::NotFound { .. } => "ResourceNotFoundException",
            Refusal::Conflict { .. } => "ConflictException",
        }
    }

    pub fn message(&self) -> String {
        match self {
            Refusal::Validation(m) => m.clone(),
            Refusal::NotFound { resource_id, .. } => format!("{resource_id} was not found"),
            Refusal::Conflict { message, .. } => message.clone(),
        }
    }

    /// The members besides `Message` (ResourceNotFoundException and ConflictException require
    /// ResourceId and ResourceType).
    pub fn fields(&self) -> Map<String, Value> {
        let mut fields = Map::new();
        if let Refusal::NotFound {
            resource_id,
            resource_type,
        }
        | Refusal::Conflict {
            resource_id,
            resource_type,
            ..
        } = self
        {
            fields.insert("ResourceId".into(), json!(resource_id));
            fields.insert("ResourceType".into(), json!(resource_type));
        }
        fields
    }
}

fn invalid(message: impl Into<String>) -> Refusal {
    Refusal::Validation(message.into())
}

/// The word ResourceNotFoundException and ConflictException use for a resource type.
fn exception_type(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::Template => "REVIEW_TEMPLATE",
        ResourceType::Workload => "WORKLOAD",
        ResourceType::Lens => "LENS",
        ResourceType::Profile => "PROFILE",
    }
}

/// The path label that names the resource in the share operations of a type.
fn resource_label(resource_type: ResourceType) -> &'static str {
    match resource_type {
        ResourceType::Template => "TemplateArn",
        ResourceType::Workload => "WorkloadId",
        ResourceType::Lens => "LensAlias",
        ResourceType::Profile => "ProfileArn",
    }
}

/// What an operation does, and to which type of resource.
enum Action {
    ListResources(ResourceType),
    ListShares(ResourceType),
    CreateShare(ResourceType),
    DeleteShare(ResourceType),
    ListTags,
    GetReviewTemplate,
}

fn action(operation: &str) -> Option<Action> {
    use ResourceType::*;
    Some(match operation {
        "ListReviewTemplates" => Action::ListResources(Template),
        "ListWorkloads" => Action::ListResources(Workload),
        "ListLenses" => Action::ListResources(Lens),
        "ListProfiles" => Action::ListResources(Profile),
        "ListTemplateShares" => Action::ListShares(Template),
        "ListWorkloadShares" => Action::ListShares(Workload),
        "ListLensShares" => Action::ListShares(Lens),
        "ListProfileShares" => Action::ListShares(Profile),
        "CreateTemplateShare" => Action::CreateShare(Template),
        "CreateWorkloadShare" => Action::CreateShare(Workload),
        "CreateLensShare" => Action::CreateShare(Lens),
        "CreateProfileShare" => Action::CreateShare(Profile),
        "DeleteTemplateShare" => Action::DeleteShare(Template),
        "DeleteWorkloadShare" => Action::DeleteShare(Workload),
        "DeleteLensShare" => Action::DeleteShare(Lens),
        "DeleteProfileShare" => Action::DeleteShare(Profile),
        "ListTagsForResource" => Action::ListTags,
        "GetReviewTemplate" => Action::GetReviewTemplate,
        _ => return None,
    })
}

/// Answers one request: the JSON body of a 200, or the refusal.
pub(super) fn answer(estate: &mut Estate, req: &Request<'_>) -> Result<Value, Refusal> {
    let operation = req.routed.spec.name;
    let Some(action) = action(operation) else {
        return Err(invalid(format!("{operation} is not simulated")));
    };
    match action {
        Action::ListResources(t) => list_resources(estate, req, t),
        Action::ListShares(t) => list_shares(estate, req, t),
        Action::CreateShare(t) => create_share(estate, req, t),
        Action::DeleteShare(t) => delete_share(estate, req, t),
        Action::ListTags => {
            let arn = req.routed.label("WorkloadArn").unwrap_or_default();
            match estate.get(arn) {
                Some(r) if r.arn.region == req.region => Ok(json!({"Tags": r.tags})),
                _ => Err(Refusal::NotFound {
                    resource_id: arn.to_string(),
                    resource_type: "RESOURCE",
                }),
            }
        }
        Action::GetReviewTemplate => {
            let r = resource(estate, req, ResourceType::Template)?;
            let mut template = json!({
                "TemplateArn": r.arn.arn,
                "TemplateName": r.name,
                "Owner": r.arn.account,
            });
            if !r.tags.is_empty() {
                template["Tags"] = json!(r.tags);
            }
            Ok(json!({ "ReviewTemplate": template }))
        }
    }
}

/// The resource the request's path names, in the request's region.
fn resource<'e>(
    estate: &'e mut Estate,
    req: &Request<'_>,
    resource_type: ResourceType,
) -> Result<&'e mut Resource, Refusal> {
    let name = req
        .routed
        .label(resource_label(resource_type))
        .unwrap_or_default();
    estate
        .find_mut(resource_type, req.region, name)
        .ok_or_else(|| Refusal::NotFound {
            resource_id: name.to_string(),
            resource_type: exception_type(resource_type),
        })
}

/// A string parameter: from the query string, or for operations with a JSON body, from it.
fn param(req: &Request<'_>, name: &str) -> Result<Option<String>, Refusal> {
    if let Some(v) = req.routed.query.get(name).and_then(|v| v.first()) {
        return Ok(Some(v.clone()));
    }
    match req.body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(invalid(format!("{name} must be a string"))),
    }
}

/// `MaxResults`, 1 to 50 (a query parameter, or a number in a JSON body).
fn max_results(req: &Request<'_>) -> Result<Option<usize>, Refusal> {
    let refuse = || invalid("MaxResults must be an integer from 1 to 50");
    let n = if let Some(v) = req.routed.query.get("MaxResults").and_then(|v| v.first()) {
        v.parse::<usize>().map_err(|_| refuse())?
    } else {
        match req.body.get("MaxResults") {
            None | Some(Value::Null) => return Ok(None),
            Some(v) => v
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(refuse)?,
        }
    };
    if (1..=MAX_PAGE).contains(&n) {
        Ok(Some(n))
    } else {
        Err(refuse())
    }
}

/// An enum-typed parameter: one of `allowed`, if given.
fn enum_param(req: &Request<'_>, name: &str, allowed: &[&str]) -> Result<Option<String>, Refusal> {
    match param(req, name)? {
        Some(v) if !allowed.contains(&v.as_str()) => Err(invalid(format!(
            "{name} {v:?} is not one of {}",
            allowed.join(", ")
        ))),
        v => Ok(v),
    }
}

/// One page of `items` (sorted by their cursor key, which is unique), and the token for the
/// next page. Tokens name the operation and the last key returned, so a page is right even
/// when items were added or removed between calls.
fn page<T>(
    req: &Request<'_>,
    items: Vec<(String, T)>,
) -> Result<(Vec<T>, Option<String>), Refusal> {
    let operation = req.routed.spec.name;
    let after = match param(req, "NextToken")? {
        None => None,
        Some(token) => Some(decode_token(operation, &token).ok_or_else(|| {
            invalid(format!(
                "NextToken {token:?} is not a token this operation issued"
            ))
        })?),
    };
    let mut size = max_results(req)?.unwrap_or(MAX_PAGE);
    if req.page_size > 0 {
        size = size.min(req.page_size);
    }
    let mut rest = items
        .into_iter()
        .filter(|(key, _)| after.as_ref().is_none_or(|a| key > a))
        .peekable();
    let mut out = Vec::new();
    let mut last = None;
    while out.len() < size {
        let Some((key, item)) = rest.next() else {
            break;
        };
        out.push(item);
        last = Some(key);
    }
    let next = match (rest.peek(), last) {
        (Some(_), Some(last)) => Some(encode_token(operation, &last)),
        _ => None,
    };
    Ok((out, next))
}

fn encode_token(operation: &str, after: &str) -> String {
    URL_SAFE_NO_PAD.encode(format!("{operation}\n{after}"))
}

fn decode_token(operation: &str, token: &str) -> Option<String> {
    let bytes = URL_SAFE_NO_PAD.decode(token).ok()?;
    let text = String::from_utf8(bytes).ok()?;
    let (op, after) = text.split_once('\n')?;
    (op == operation).then(|| after.to_string())
}

/// A list answer: `items` under `key`, and `NextToken` if there is more.
fn listing(mut out: Value, key: &str, items: Vec<Value>, next: Option<String>) -> Value {
    out[key] = Value::from(items);
    if let Some(next) = next {
        out["NextToken"] = json!(next);
    }
    out
}

fn list_resources(
    estate: &Estate,
    req: &Request<'_>,
    resource_type: ResourceType,
) -> Result<Value, Refusal> {
    // Filters that leave no resource: the simulator has no AWS-official or shared-in lenses,
    // no draft lenses, and no profiles shared in.
    let mut none = false;
    let mut name_prefix = None;
    let mut exact_name = None;
    match resource_type {
        ResourceType::Workload => name_prefix = param(req, "WorkloadNamePrefix")?,
        ResourceType::Lens => {
            let lens_type = enum_param(
                req,
                "LensType",
                &["AWS_OFFICIAL", "CUSTOM_SHARED", "CUSTOM_SELF"],
            )?;
            let status = enum_param(req, "LensStatus", &["ALL", "DRAFT", "PUBLISHED"])?;
            none = lens_type.is_some_and(|t| t != "CUSTOM_SELF")
                || status.is_some_and(|s| s == "DRAFT");
            exact_name = param(req, "LensName")?;
        }
        ResourceType::Profile => {
            let owner = enum_param(req, "ProfileOwnerType", &["SELF", "SHARED"])?;
            none = owner.is_some_and(|o| o == "SHARED");
            name_prefix = param(req, "ProfileNamePrefix")?;
        }
        ResourceType::Template => {}
    }
    let items: Vec<(String, Value)> = estate
        .in_region(resource_type, req.region)
        .filter(|_| !none)
        .filter(|r| name_prefix.as_ref().is_none_or(|p| r.name.starts_with(p)))
        .filter(|r| exact_name.as_ref().is_none_or(|n| &r.name == n))
        .map(|r| (r.arn.arn.clone(), resource_summary(r)))
        .collect();
    let (items, next) = page(req, items)?;
    let key = match resource_type {
        ResourceType::Template => "ReviewTemplates",
        ResourceType::Workload => "WorkloadSummaries",
        ResourceType::Lens => "LensSummaries",
        ResourceType::Profile => "ProfileSummaries",
    };
    Ok(listing(json!({}), key, items, next))
}

/// A resource as its type's `List…` operation summarises it.
fn resource_summary(r: &Resource) -> Value {
    let a = &r.arn;
    match a.resource_type {
        ResourceType::Template => {
            json!({"TemplateArn": a.arn, "TemplateName": r.name, "Owner": a.account})
        }
        ResourceType::Workload => json!({
            "WorkloadId": a.id, "WorkloadArn": a.arn, "WorkloadName": r.name, "Owner": a.account,
        }),
        // A custom lens's alias is its ARN. LensSummary's LensStatus is the model's LensStatus
        // (CURRENT, NOT_CURRENT, ...), not the PUBLISHED of the ListLenses filter.
        ResourceType::Lens => json!({
            "LensArn": a.arn, "LensAlias": a.arn, "LensName": r.name,
            "LensType": "CUSTOM_SELF", "Owner": a.account, "LensStatus": "CURRENT",
        }),
        ResourceType::Profile => {
            json!({"ProfileArn": a.arn, "ProfileName": r.name, "Owner": a.account})
        }
    }
}

fn list_shares(
    estate: &mut Estate,
    req: &Request<'_>,
    resource_type: ResourceType,
) -> Result<Value, Refusal> {
    let prefix = param(req, "SharedWithPrefix")?.unwrap_or_default();
    let status: Option<ShareStatus> = param(req, "Status")?
        .map(|s| s.parse().map_err(Refusal::Validation))
        .transpose()?;
    let r = resource(estate, req, resource_type)?;
    let mut items: Vec<(String, Value)> = r
        .shares
        .iter()
        .filter(|s| s.shared_with.starts_with(&prefix))
        .filter(|s| status.is_none_or(|st| s.status == st))
        .map(|s| {
            let mut summary = json!({
                "ShareId": s.share_id, "SharedWith": s.shared_with, "Status": s.status.as_str(),
            });
            if let Some(p) = s.permission_type {
                summary["PermissionType"] = json!(p.as_str());
            }
            (s.share_id.clone(), summary)
        })
        .collect();
    items.sort_by(|a, b| a.0.cmp(&b.0));
    let out = match resource_type {
        ResourceType::Template => json!({"TemplateArn": r.arn.arn}),
        ResourceType::Workload => json!({"WorkloadId": r.arn.id}),
        ResourceType::Lens | ResourceType::Profile => json!({}),
    };
    let (items, next) = page(req, items)?;
    let key = match resource_type {
        ResourceType::Template => "TemplateShareSummaries",
        ResourceType::Workload => "WorkloadShareSummaries",
        ResourceType::Lens => "LensShareSummaries",
        ResourceType::Profile => "ProfileShareSummaries",
    };
    Ok(listing(out, key, items, next))
}

fn create_share(
    estate: &mut Estate,
    req: &Request<'_>,
    resource_type: ResourceType,
) -> Result<Value, Refusal> {
    let (Some(shared_with), Some(token)) =
        (param(req, "SharedWith")?, param(req, "ClientRequestToken")?)
    else {
        return Err(invalid("SharedWith and ClientRequestToken are required"));
    };
    let permission = match resource_type {
        ResourceType::Workload => {
            let Some(p) = param(req, "PermissionType")? else {
                return Err(invalid("PermissionType is required"));
            };
            Some(p.parse::<PermissionType>().map_err(Refusal::Validation)?)
        }
        _ => None,
    };
    let r = resource(estate, req, resource_type)?;
    let conflict = |message: String| Refusal::Conflict {
        resource_id: r.arn.arn.clone(),
        resource_type: exception_type(resource_type),
        message,
    };
    let existing = r.shares.iter().find(|s| s.token.as_deref() == Some(&token));
    let share_id = match existing {
        // The same token and parameters: the same share (an idempotent retry).
        Some(s) if s.shared_with == shared_with && s.permission_type == permission => {
            s.share_id.clone()
        }
        Some(_) => {
            return Err(conflict(
                "ClientRequestToken was already used with different parameters".into(),
            ));
        }
        None => {
            if r.shares.iter().any(|s| s.shared_with == shared_with) {
                return Err(conflict(format!(
                    "{} is already shared with {shared_with}",
                    resource_type.as_str()
                )));
            }
            let share_id = new_share_id();
            r.shares.push(super::estate::Share {
                share_id: share_id.clone(),
                shared_with,
                status: ShareStatus::Pending,
                permission_type: permission,
                token: Some(token),
            });
            share_id
        }
    };
    Ok(match resource_type {
        ResourceType::Template => json!({"TemplateArn": r.arn.arn, "ShareId": share_id}),
        ResourceType::Workload => json!({"WorkloadId": r.arn.id, "ShareId": share_id}),
        ResourceType::Lens => json!({"ShareId": share_id}),
        ResourceType::Profile => json!({"ProfileArn": r.arn.arn, "ShareId": share_id}),
    })
}

fn delete_share(
    estate: &mut Estate,
    req: &Request<'_>,
    resource_type: ResourceType,
) -> Result<Value, Refusal> {
    if param(req, "ClientRequestToken")?.is_none_or(|t| t.is_empty()) {
        return Err(invalid("ClientRequestToken is required"));
    }
    let share_id = req.routed.label("ShareId").unwrap_or_default().to_string();
    let r = resource(estate, req, resource_type)?;
    let before = r.shares.len();
    r.shares.retain(|s| s.share_id != share_id);
    if r.shares.len() == before {
        return Err(Refusal::NotFound {
            resource_id: share_id,
            resource_type: "SHARE",
        });
    }
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::operation;
    use crate::sim::estate::{ResourceArn, Seed};

    const TEMPLATE: &str = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/0123456789abcdef0123456789abcdef";

    fn estate_with_shares(n: usize) -> Estate {
        let mut estate = Estate::default();
        let arn = ResourceArn::parse(ResourceType::Template, TEMPLATE).unwrap();
        estate.add_resource(arn, None, &Default::default()).unwrap();
        for i in 0..n {
            estate
                .add_share(
                    TEMPLATE,
                    &format!("1111222233{i:02}"),
                    ShareStatus::Accepted,
                    None,
                    None,
                    None,
                )
                .unwrap();
        }
        estate
    }

    fn call(
        estate: &mut Estate,
        method: &str,
        path: &str,
        query: Option<&str>,
    ) -> Result<Value, Refusal> {
        let routed = operation::route(method, path, query).unwrap();
        answer(
            estate,
            &Request {
                routed: &routed,
                body: &json!({}),
                region: "us-east-1",
                page_size: 0,
            },
        )
    }

    fn shares_path_of(arn: &str) -> String {
        format!(
            "/templates/shares/{}",
            percent_encoding::utf8_percent_encode(arn, percent_encoding::NON_ALPHANUMERIC)
        )
    }

    fn shares_path() -> String {
        shares_path_of(TEMPLATE)
    }

    #[test]
    fn pages_follow_the_token_to_the_end_without_repeats() {
        let mut estate = estate_with_shares(5);
        let path = shares_path();
        let mut seen = Vec::new();
        let mut query = "MaxResults=2".to_string();
        loop {
            let out = call(&mut estate, "GET", &path, Some(&query)).unwrap();
            let page = out["TemplateShareSummaries"].as_array().unwrap().clone();
            assert!(page.len() <= 2);
            seen.extend(
                page.iter()
                    .map(|s| s["ShareId"].as_str().unwrap().to_string()),
            );
            match out["NextToken"].as_str() {
                Some(t) => query = format!("MaxResults=2&NextToken={t}"),
                None => break,
            }
        }
        assert_eq!(seen.len(), 5);
        let mut unique = seen.clone();
        unique.dedup();
        assert_eq!(unique, seen);
    }

    #[test]
    fn garbled_or_foreign_tokens_are_validation_errors() {
        let mut estate = estate_with_shares(3);
        let foreign = encode_token("ListWorkloadShares", "x");
        for token in ["garbled!", "AAAA", foreign.as_str()] {
            let e = call(
                &mut estate,
                "GET",
                &shares_path(),
                Some(&format!("NextToken={token}")),
            )
            .unwrap_err();
            assert_eq!(e.code(), "ValidationException", "{token}");
        }
        let e = call(&mut estate, "GET", &shares_path(), Some("MaxResults=51")).unwrap_err();
        assert_eq!(e.code(), "ValidationException");
    }

    #[test]
    fn other_regions_resources_are_not_found() {
        let seed = Seed::parse(&format!(
            "[[resources]]\ntype = \"review-template\"\narn = \"{}\"",
            TEMPLATE.replace("us-east-1", "eu-west-1")
        ))
        .unwrap();
        let mut estate = Estate::default();
        estate.apply(&seed).unwrap();
        let out = call(&mut estate, "GET", "/reviewTemplates", None).unwrap();
        assert_eq!(out, json!({"ReviewTemplates": []}));
        let e = call(
            &mut estate,
            "GET",
            &shares_path_of(&TEMPLATE.replace("us-east-1", "eu-west-1")),
            None,
        )
        .unwrap_err();
        assert_eq!(e.code(), "ResourceNotFoundException");
        assert_eq!(e.fields()["ResourceType"], "REVIEW_TEMPLATE");
    }
}
