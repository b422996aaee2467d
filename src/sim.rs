//! A simulated Well-Architected upstream: in-memory review templates and shares, and real
//! SigV4 verification of every request against the service credentials it is given.
//!
//! It answers CreateTemplateShare, ListTemplateShares, DeleteTemplateShare, ListReviewTemplates
//! and GetReviewTemplate, and keeps every request it received so tests can check what the
//! gateway forwarded. Given an organization tree it also plays AWS Organizations (the JSON 1.1
//! protocol, `X-Amz-Target: AWSOrganizationsV20161128.<Operation>`, signatures verified the
//! same way): the calls the gateway's organization view makes. Given identities it also plays
//! AWS STS `GetCallerIdentity` (the Query protocol: a form-encoded `POST /`, an XML answer),
//! verifying the signature for service `sts` against those identities: the call the gateway's
//! credential exchange makes.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::auth::sigv4::{authorization_scope, claimed_access_key_id};
use crate::auth::{Caller, Callers, Secret, verify_for_service, verify_with_token};
use crate::error::GatewayError;
use crate::error::error_response;
use crate::gateway::Body;
use crate::operation;
use crate::organization::snapshot::{Node, Snapshot};

/// The template the simulator starts with unless told otherwise.
pub const DEMO_TEMPLATE_ARN: &str = "arn:aws:wellarchitected:us-east-1:123456789012:review-template/0123456789abcdef0123456789abcdef";

/// A request as the simulated AWS received it.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path_and_query: String,
    pub headers: HeaderMap,
    pub body: Bytes,
    /// The access key id whose signature verified, if any.
    pub signed_by: Option<String>,
}

#[derive(Debug, Clone)]
struct ShareRecord {
    share_id: String,
    shared_with: String,
    token: String,
}

#[derive(Default)]
struct State {
    /// Template ARN -> its shares.
    templates: HashMap<String, Vec<ShareRecord>>,
    received: Vec<Received>,
    /// The organization Organizations answers about, if any.
    organization: Option<Snapshot>,
    /// Organizations operations called, in order.
    organization_calls: Vec<String>,
    /// The next this many Organizations calls are throttled.
    throttle_organizations: usize,
    /// Items per page of the list operations (0: the default, 3).
    organizations_page: usize,
    /// How long each Organizations call takes to answer.
    organizations_delay: std::time::Duration,
    /// The AWS identities STS knows.
    identities: Vec<SimIdentity>,
    /// STS calls received, in order.
    sts_calls: Vec<StsCall>,
}

/// An AWS identity the simulated STS knows: its key pair, and the ARN it answers with.
#[derive(Debug, Clone)]
struct SimIdentity {
    access_key_id: String,
    secret_access_key: Secret,
    session_token: Option<String>,
    arn: String,
}

/// An STS call as the simulated STS received and answered it.
#[derive(Debug, Clone)]
pub struct StsCall {
    /// The form parameter `Action` (empty if there was none).
    pub action: String,
    /// The access key id the Authorization header names, verified or not.
    pub access_key_id: Option<String>,
    pub headers: HeaderMap,
    /// The ARN answered, or the error code.
    pub result: Result<String, String>,
}

/// Why an identity cannot be given to the simulated STS.
#[derive(Debug, thiserror::Error)]
pub enum SimIdentityError {
    #[error("identity {access_key_id}: {message}")]
    Key {
        access_key_id: String,
        message: String,
    },
    #[error(
        "identity {access_key_id}: {arn:?} is not an IAM or STS principal ARN (arn:aws:iam::ACCOUNT:user/NAME, arn:aws:sts::ACCOUNT:assumed-role/ROLE/SESSION, ...)"
    )]
    Arn { access_key_id: String, arn: String },
}

/// The `X-Amz-Target` prefix of AWS Organizations operations.
const ORGANIZATIONS_TARGET: &str = "AWSOrganizationsV20161128.";
/// Items per page of the simulated list operations by default: small, so that callers must
/// paginate.
const ORGANIZATIONS_PAGE: usize = 3;

/// The simulated service.
pub struct Sim {
    credentials: Callers,
    session_token: Option<String>,
    state: Mutex<State>,
    /// Organizations calls being answered now, and the most there ever were at once.
    organizations_in_flight: AtomicUsize,
    organizations_most_in_flight: AtomicUsize,
}

impl Sim {
    /// A simulator that accepts requests signed with this key pair (and session token, if any).
    pub fn new(
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
        templates: &[&str],
    ) -> Result<Sim, String> {
        let callers = Callers::from_callers(
            Path::new("<sim service credentials>"),
            vec![Caller {
                access_key_id: access_key_id.into(),
                secret_access_key: Secret::new(secret_access_key),
                principal: "waguard-service".into(),
                team: "service".into(),
                attributes: Default::default(),
            }],
        )
        .map_err(|e| e.to_string())?;
        let mut state = State::default();
        for t in templates {
            state.templates.insert((*t).to_string(), Vec::new());
        }
        Ok(Sim {
            credentials: callers,
            session_token: session_token.map(str::to_string),
            state: Mutex::new(state),
            organizations_in_flight: AtomicUsize::new(0),
            organizations_most_in_flight: AtomicUsize::new(0),
        })
    }

    /// STS answers GetCallerIdentity signed with this key pair with `arn`.
    pub fn add_identity(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        arn: &str,
    ) -> Result<(), SimIdentityError> {
        self.add_identity_with_token(access_key_id, secret_access_key, None, arn)
    }

    /// Like [`Sim::add_identity`], for temporary credentials (an SSO or assumed-role session):
    /// requests must carry this session token, signed.
    pub fn add_identity_with_token(
        &self,
        access_key_id: &str,
        secret_access_key: &str,
        session_token: Option<&str>,
        arn: &str,
    ) -> Result<(), SimIdentityError> {
        if !crate::identity::exchange::is_principal_arn(arn) {
            return Err(SimIdentityError::Arn {
                access_key_id: access_key_id.into(),
                arn: arn.into(),
            });
        }
        let identity = SimIdentity {
            access_key_id: access_key_id.into(),
            secret_access_key: Secret::new(secret_access_key),
            session_token: session_token.map(str::to_string),
            arn: arn.into(),
        };
        // The same checks as any caller key (16-128 of A-Z 0-9, a printable secret).
        identity_callers(std::slice::from_ref(&identity)).map_err(|e| SimIdentityError::Key {
            access_key_id: access_key_id.into(),
            message: e.to_string(),
        })?;
        if let Ok(mut s) = self.state.lock() {
            s.identities
                .retain(|i| i.access_key_id != identity.access_key_id);
            s.identities.push(identity);
        }
        Ok(())
    }

    /// Every STS call received so far, in order.
    pub fn sts_calls(&self) -> Vec<StsCall> {
        self.state
            .lock()
            .map(|s| s.sts_calls.clone())
            .unwrap_or_default()
    }

    /// STS: GetCallerIdentity, signature verified for service `sts` against the identities.
    fn sts(&self, parts: &http::request::Parts, body: &[u8], request_id: &str) -> Response<Body> {
        let Ok(mut state) = self.state.lock() else {
            return sts_err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Receiver",
                "InternalFailure",
                "state poisoned",
                request_id,
            );
        };
        let claimed = claimed_access_key_id(&parts.headers);
        let identity = claimed
            .as_deref()
            .and_then(|k| state.identities.iter().find(|i| i.access_key_id == k))
            .cloned();
        let form: Vec<(String, String)> = form_urlencoded::parse(body)
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        let param = |name: &str| {
            form.iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
                .unwrap_or_default()
        };
        let action = param("Action");
        let answer = match identity_callers(identity.as_slice()) {
            Err(e) => Err((
                StatusCode::INTERNAL_SERVER_ERROR,
                "Receiver",
                "InternalFailure",
                e.to_string(),
            )),
            Ok(callers) => verify_for_service(
                parts,
                body,
                &callers,
                SystemTime::now(),
                identity.as_ref().and_then(|i| i.session_token.as_deref()),
                "sts",
            )
            .map_err(sts_error)
            .and_then(|_| {
                if parts.method != http::Method::POST {
                    Err((
                        StatusCode::BAD_REQUEST,
                        "Sender",
                        "InvalidAction",
                        "the simulated STS takes POST with a form-encoded body".into(),
                    ))
                } else if action != "GetCallerIdentity" || param("Version") != "2011-06-15" {
                    Err((
                        StatusCode::BAD_REQUEST,
                        "Sender",
                        "InvalidAction",
                        format!(
                            "Could not find operation {action} for version {}",
                            param("Version")
                        ),
                    ))
                } else {
                    identity
                        .as_ref()
                        .map(|i| i.arn.clone())
                        .ok_or_else(|| sts_error(GatewayError::UnknownAccessKey))
                }
            }),
        };
        state.sts_calls.push(StsCall {
            action,
            access_key_id: claimed,
            headers: parts.headers.clone(),
            result: answer.clone().map_err(|(_, _, code, _)| code.to_string()),
        });
        match answer {
            Ok(arn) => sts_ok(&arn, request_id),
            Err((status, kind, code, message)) => sts_err(status, kind, code, &message, request_id),
        }
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// The shares of a template: `(ShareId, SharedWith)`.
    pub fn shares(&self, template_arn: &str) -> Vec<(String, String)> {
        self.state
            .lock()
            .ok()
            .and_then(|s| {
                s.templates.get(template_arn).map(|v| {
                    v.iter()
                        .map(|r| (r.share_id.clone(), r.shared_with.clone()))
                        .collect()
                })
            })
            .unwrap_or_default()
    }

    /// Plays AWS Organizations for this tree (see `waguard sim --organization`).
    pub fn set_organization(&self, organization: Snapshot) {
        if let Ok(mut s) = self.state.lock() {
            s.organization = Some(organization);
        }
    }

    /// Changes the simulated organization (an account moves, joins, is suspended...).
    pub fn edit_organization(&self, edit: impl FnOnce(&mut Snapshot)) {
        if let Ok(mut s) = self.state.lock()
            && let Some(o) = s.organization.as_mut()
        {
            edit(o);
        }
    }

    /// The next `n` Organizations calls answer TooManyRequestsException.
    pub fn throttle_organizations(&self, n: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.throttle_organizations = n;
        }
    }

    /// Every Organizations call takes `delay` to answer (a slow or distant endpoint).
    pub fn delay_organizations(&self, delay: std::time::Duration) {
        if let Ok(mut s) = self.state.lock() {
            s.organizations_delay = delay;
        }
    }

    /// The most Organizations calls that were being answered at the same time.
    pub fn most_concurrent_organization_calls(&self) -> usize {
        self.organizations_most_in_flight.load(Ordering::SeqCst)
    }

    /// Items per page of the Organizations list operations (AWS answers up to 20).
    pub fn set_organizations_page_size(&self, n: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.organizations_page = n;
        }
    }

    /// The Organizations operations called so far, in order.
    pub fn organization_calls(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.organization_calls.clone())
            .unwrap_or_default()
    }

    fn organizations(&self, operation: &str, body: &[u8], request_id: &str) -> Response<Body> {
        let Ok(mut state) = self.state.lock() else {
            return org_err("ServiceException", "state poisoned", request_id);
        };
        state.organization_calls.push(operation.to_string());
        if state.throttle_organizations > 0 {
            state.throttle_organizations -= 1;
            return org_err(
                "TooManyRequestsException",
                "You have sent too many requests in too short a period of time.",
                request_id,
            );
        }
        let Some(org) = state.organization.as_ref() else {
            return org_err(
                "AWSOrganizationsNotInUseException",
                "Your account is not a member of an organization.",
                request_id,
            );
        };
        let input: Value = serde_json::from_slice(body).unwrap_or(Value::Null);
        let arg = |name: &str| input[name].as_str().unwrap_or_default().to_string();
        let mgmt = org.management_account.clone().unwrap_or_default();
        let ou_json = |id: &str, node: &Node| {
            json!({"Id": id, "Name": node.name,
                   "Arn": format!("arn:aws:organizations::{mgmt}:ou/{}/{id}", org.id)})
        };
        let account_json = |id: &str, node: &Node| {
            json!({"Id": id, "Name": node.name, "Status": node.status.as_deref().unwrap_or("ACTIVE"),
                   "Email": format!("{id}@example.com"),
                   "Arn": format!("arn:aws:organizations::{mgmt}:account/{}/{id}", org.id)})
        };
        match operation {
            "DescribeOrganization" => org_ok(
                json!({"Organization": {"Id": org.id, "FeatureSet": "ALL",
                    "Arn": format!("arn:aws:organizations::{mgmt}:organization/{}", org.id),
                    "MasterAccountId": mgmt,
                    "MasterAccountArn": format!("arn:aws:organizations::{mgmt}:account/{}/{mgmt}", org.id)}}),
                request_id,
            ),
            "ListRoots" => org_ok(
                json!({"Roots": [{"Id": org.root, "Name": "Root",
                    "Arn": format!("arn:aws:organizations::{mgmt}:root/{}/{}", org.id, org.root),
                    "PolicyTypes": []}]}),
                request_id,
            ),
            "ListOrganizationalUnitsForParent" | "ListAccountsForParent" => {
                let parent = arg("ParentId");
                if parent != org.root && !org.ous.contains_key(&parent) {
                    return org_err(
                        "ParentNotFoundException",
                        "We can't find a root or OU with the ParentId that you specified.",
                        request_id,
                    );
                }
                let (key, mut items): (&str, Vec<(String, Value)>) =
                    if operation == "ListAccountsForParent" {
                        let items = org.accounts.iter().filter(|(_, n)| n.parent == parent);
                        (
                            "Accounts",
                            items
                                .map(|(id, n)| (id.clone(), account_json(id, n)))
                                .collect(),
                        )
                    } else {
                        let items = org.ous.iter().filter(|(_, n)| n.parent == parent);
                        (
                            "OrganizationalUnits",
                            items.map(|(id, n)| (id.clone(), ou_json(id, n))).collect(),
                        )
                    };
                items.sort_by(|a, b| a.0.cmp(&b.0));
                let page_size = match state.organizations_page {
                    0 => ORGANIZATIONS_PAGE,
                    n => n,
                };
                let start: usize = arg("NextToken").parse().unwrap_or(0);
                let page: Vec<Value> = items
                    .iter()
                    .skip(start)
                    .take(page_size)
                    .map(|(_, v)| v.clone())
                    .collect();
                let mut out = json!({});
                out[key] = Value::from(page);
                if start + page_size < items.len() {
                    out["NextToken"] = json!((start + page_size).to_string());
                }
                org_ok(out, request_id)
            }
            "ListParents" => {
                let child = arg("ChildId");
                let parent = org
                    .accounts
                    .get(&child)
                    .or_else(|| org.ous.get(&child))
                    .map(|n| n.parent.clone());
                match parent {
                    Some(p) => {
                        let kind = if p == org.root {
                            "ROOT"
                        } else {
                            "ORGANIZATIONAL_UNIT"
                        };
                        org_ok(json!({"Parents": [{"Id": p, "Type": kind}]}), request_id)
                    }
                    None => org_err(
                        "ChildNotFoundException",
                        "We can't find an organizational unit (OU) or AWS account with the ChildId that you specified.",
                        request_id,
                    ),
                }
            }
            "DescribeAccount" => match org.accounts.get(&arg("AccountId")) {
                Some(n) => org_ok(
                    json!({"Account": account_json(&arg("AccountId"), n)}),
                    request_id,
                ),
                None => org_err(
                    "AccountNotFoundException",
                    "You specified an account that doesn't exist.",
                    request_id,
                ),
            },
            "DescribeOrganizationalUnit" => {
                let id = arg("OrganizationalUnitId");
                match org.ous.get(&id) {
                    Some(n) => org_ok(json!({"OrganizationalUnit": ou_json(&id, n)}), request_id),
                    None => org_err(
                        "OrganizationalUnitNotFoundException",
                        "We can't find an OU with the OrganizationalUnitId that you specified.",
                        request_id,
                    ),
                }
            }
            other => org_err(
                "InvalidInputException",
                &format!("{other} is not simulated"),
                request_id,
            ),
        }
    }

    pub async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        _peer: SocketAddr,
    ) -> Response<Body> {
        let request_id = uuid::Uuid::new_v4().to_string();
        let (parts, body) = req.into_parts();
        let body = match Limited::new(body, 4 * 1024 * 1024).collect().await {
            Ok(b) => b.to_bytes(),
            Err(_) => {
                return err(
                    StatusCode::BAD_REQUEST,
                    "ValidationException",
                    "unreadable body",
                    &request_id,
                );
            }
        };
        if is_sts(&parts, &body) {
            return self.sts(&parts, &body, &request_id);
        }
        let organizations_operation = parts
            .headers
            .get("x-amz-target")
            .and_then(|v| v.to_str().ok())
            .and_then(|t| t.strip_prefix(ORGANIZATIONS_TARGET))
            .map(str::to_string);
        let verified = match &organizations_operation {
            Some(_) => verify_for_service(
                &parts,
                &body,
                &self.credentials,
                SystemTime::now(),
                self.session_token.as_deref(),
                "organizations",
            ),
            None => verify_with_token(
                &parts,
                &body,
                &self.credentials,
                SystemTime::now(),
                self.session_token.as_deref(),
            ),
        };
        if let Some(operation) = organizations_operation {
            if let Err(e) = verified {
                return err(e.status(), e.code(), &e.to_string(), &request_id);
            }
            let delay = self
                .state
                .lock()
                .map(|s| s.organizations_delay)
                .unwrap_or_default();
            let in_flight = self.organizations_in_flight.fetch_add(1, Ordering::SeqCst) + 1;
            self.organizations_most_in_flight
                .fetch_max(in_flight, Ordering::SeqCst);
            if !delay.is_zero() {
                tokio::time::sleep(delay).await;
            }
            let resp = self.organizations(&operation, &body, &request_id);
            self.organizations_in_flight.fetch_sub(1, Ordering::SeqCst);
            return resp;
        }
        let Ok(mut state) = self.state.lock() else {
            return err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "state poisoned",
                &request_id,
            );
        };
        state.received.push(Received {
            method: parts.method.to_string(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map(|p| p.to_string())
                .unwrap_or_default(),
            headers: parts.headers.clone(),
            body: body.clone(),
            signed_by: verified
                .as_ref()
                .ok()
                .map(|a| a.caller.access_key_id.clone()),
        });
        if let Err(e) = verified {
            return err(e.status(), e.code(), &e.to_string(), &request_id);
        }
        let routed =
            match operation::route(parts.method.as_str(), parts.uri.path(), parts.uri.query()) {
                Ok(r) => r,
                Err(e) => return err(e.status(), e.code(), &e.to_string(), &request_id),
            };
        let arn = routed.label("TemplateArn").unwrap_or("").to_string();
        let parsed: Value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(&body).unwrap_or(Value::Null)
        };
        match routed.spec.name {
            "CreateTemplateShare" => {
                let (Some(shared_with), Some(token)) = (
                    parsed["SharedWith"].as_str(),
                    parsed["ClientRequestToken"].as_str(),
                ) else {
                    return err(
                        StatusCode::BAD_REQUEST,
                        "ValidationException",
                        "SharedWith and ClientRequestToken are required",
                        &request_id,
                    );
                };
                let Some(shares) = state.templates.get_mut(&arn) else {
                    return not_found(&arn, &request_id);
                };
                if let Some(existing) = shares.iter().find(|s| s.token == token) {
                    if existing.shared_with == shared_with {
                        // Same token, same parameters: the same share (idempotent retry).
                        return ok(
                            json!({"TemplateArn": arn, "ShareId": existing.share_id}),
                            &request_id,
                        );
                    }
                    return err(
                        StatusCode::CONFLICT,
                        "ConflictException",
                        "ClientRequestToken was already used with different parameters",
                        &request_id,
                    );
                }
                if shares.iter().any(|s| s.shared_with == shared_with) {
                    return err(
                        StatusCode::CONFLICT,
                        "ConflictException",
                        &format!("template is already shared with {shared_with}"),
                        &request_id,
                    );
                }
                let share_id = uuid::Uuid::new_v4().simple().to_string();
                shares.push(ShareRecord {
                    share_id: share_id.clone(),
                    shared_with: shared_with.into(),
                    token: token.into(),
                });
                ok(
                    json!({"TemplateArn": arn, "ShareId": share_id}),
                    &request_id,
                )
            }
            "ListTemplateShares" => {
                let Some(shares) = state.templates.get(&arn) else {
                    return not_found(&arn, &request_id);
                };
                let prefix = routed
                    .query
                    .get("SharedWithPrefix")
                    .and_then(|v| v.first())
                    .cloned()
                    .unwrap_or_default();
                let summaries: Vec<Value> = shares
                    .iter()
                    .filter(|s| s.shared_with.starts_with(&prefix))
                    .map(|s| json!({"ShareId": s.share_id, "SharedWith": s.shared_with, "Status": "PENDING"}))
                    .collect();
                ok(
                    json!({"TemplateArn": arn, "TemplateShareSummaries": summaries}),
                    &request_id,
                )
            }
            "DeleteTemplateShare" => {
                let share_id = routed.label("ShareId").unwrap_or("").to_string();
                let Some(shares) = state.templates.get_mut(&arn) else {
                    return not_found(&arn, &request_id);
                };
                let before = shares.len();
                shares.retain(|s| s.share_id != share_id);
                if shares.len() == before {
                    return not_found(&share_id, &request_id);
                }
                ok(json!({}), &request_id)
            }
            "ListReviewTemplates" => {
                let summaries: Vec<Value> = state
                    .templates
                    .keys()
                    .map(|a| json!({"TemplateArn": a, "TemplateName": a.rsplit('/').next()}))
                    .collect();
                ok(json!({"ReviewTemplates": summaries}), &request_id)
            }
            "GetReviewTemplate" => {
                if !state.templates.contains_key(&arn) {
                    return not_found(&arn, &request_id);
                }
                ok(
                    json!({"ReviewTemplate": {"TemplateArn": arn, "TemplateName": arn.rsplit('/').next()}}),
                    &request_id,
                )
            }
            other => err(
                StatusCode::BAD_REQUEST,
                "ValidationException",
                &format!("{other} is not simulated"),
                &request_id,
            ),
        }
    }
}

fn ok(body: Value, request_id: &str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

fn err(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response<Body> {
    error_response(status, code, message, request_id)
        .map(|b| b.map_err(|never| match never {}).boxed())
}

fn not_found(what: &str, request_id: &str) -> Response<Body> {
    err(
        StatusCode::NOT_FOUND,
        "ResourceNotFoundException",
        &format!("{what} was not found"),
        request_id,
    )
}

/// An AWS JSON 1.1 answer.
fn org_ok(body: Value, request_id: &str) -> Response<Body> {
    let mut resp = ok(body, request_id);
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/x-amz-json-1.1"),
    );
    resp
}

/// An AWS JSON 1.1 error: status 400 and the error's `__type`.
fn org_err(code: &str, message: &str, request_id: &str) -> Response<Body> {
    let mut resp = org_ok(json!({"__type": code, "Message": message}), request_id);
    *resp.status_mut() = StatusCode::BAD_REQUEST;
    resp
}

/// Whether a request is for STS: signed for service `sts`, or (unsigned or not) a Query
/// protocol call, a form-encoded body naming an `Action`, which no Well-Architected or
/// Organizations request is.
fn is_sts(parts: &http::request::Parts, body: &[u8]) -> bool {
    let scope = parts
        .headers
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| authorization_scope(v).ok());
    if let Some(scope) = scope {
        return scope.service == "sts";
    }
    let form = parts
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.starts_with("application/x-www-form-urlencoded"));
    form && form_urlencoded::parse(body).any(|(k, _)| k == "Action")
}

/// The identities as a caller registry, for the SigV4 verifier.
fn identity_callers(identities: &[SimIdentity]) -> Result<Callers, crate::auth::CallersError> {
    Callers::from_callers(
        Path::new("<sim STS identities>"),
        identities
            .iter()
            .map(|i| Caller {
                access_key_id: i.access_key_id.clone(),
                secret_access_key: i.secret_access_key.clone(),
                principal: i.arn.clone(),
                team: "sts".into(),
                attributes: Default::default(),
            })
            .collect(),
    )
}

/// A refused signature as STS words it: (status, error type, code, message).
fn sts_error(e: GatewayError) -> (StatusCode, &'static str, &'static str, String) {
    let (status, code) = match &e {
        GatewayError::MissingAuthentication => {
            (StatusCode::FORBIDDEN, "MissingAuthenticationToken")
        }
        GatewayError::IncompleteSignature(_) => (StatusCode::BAD_REQUEST, "IncompleteSignature"),
        GatewayError::UnknownAccessKey => (StatusCode::FORBIDDEN, "InvalidClientTokenId"),
        GatewayError::ExpiredToken => (StatusCode::FORBIDDEN, "ExpiredToken"),
        GatewayError::InvalidSignature(_) => (StatusCode::FORBIDDEN, "SignatureDoesNotMatch"),
        _ => (StatusCode::BAD_REQUEST, "InvalidParameterValue"),
    };
    (status, "Sender", code, e.to_string())
}

/// XML character data.
fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// The UserId STS answers for an ARN: `AROA…:SESSION` for an assumed role, `AIDA…` for a user,
/// the account for root. The unique id part is derived from the ARN, so it is stable.
fn user_id(arn: &str, account: &str) -> String {
    use sha2::{Digest, Sha256};
    let unique: String = hex::encode_upper(Sha256::digest(arn.as_bytes()))
        .chars()
        .take(17)
        .collect();
    let resource = arn.splitn(6, ':').nth(5).unwrap_or_default();
    if resource == "root" {
        return account.to_string();
    }
    match resource.strip_prefix("assumed-role/") {
        Some(role_session) => {
            let session = role_session
                .split_once('/')
                .map(|(_, s)| s)
                .unwrap_or_default();
            format!("AROA{unique}:{session}")
        }
        None => format!("AIDA{unique}"),
    }
}

/// STS's answer to GetCallerIdentity.
fn sts_ok(arn: &str, request_id: &str) -> Response<Body> {
    let account = arn.split(':').nth(4).unwrap_or_default();
    let body = format!(
        "<GetCallerIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <GetCallerIdentityResult>\n    <Arn>{}</Arn>\n    <UserId>{}</UserId>\n    <Account>{}</Account>\n  </GetCallerIdentityResult>\n  <ResponseMetadata>\n    <RequestId>{}</RequestId>\n  </ResponseMetadata>\n</GetCallerIdentityResponse>\n",
        xml_escape(arn),
        xml_escape(&user_id(arn, account)),
        xml_escape(account),
        xml_escape(request_id),
    );
    sts_response(StatusCode::OK, body, request_id)
}

/// An STS (Query protocol) error.
fn sts_err(
    status: StatusCode,
    kind: &str,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<Body> {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <Error>\n    <Type>{kind}</Type>\n    <Code>{code}</Code>\n    <Message>{}</Message>\n  </Error>\n  <RequestId>{}</RequestId>\n</ErrorResponse>\n",
        xml_escape(message),
        xml_escape(request_id),
    );
    sts_response(status, body, request_id)
}

fn sts_response(status: StatusCode, body: String, request_id: &str) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/xml"),
    );
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}
