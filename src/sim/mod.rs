//! A simulated Well-Architected upstream: an in-memory estate of review templates, workloads,
//! custom lenses and profiles with their tags and shares, and real SigV4 verification of every
//! request against the service credentials it is given.
//!
//! It answers, in the shapes of botocore's service model and only about resources in the
//! region of the request's signature: ListReviewTemplates, ListWorkloads, ListLenses,
//! ListProfiles; List/Create/Delete of Template, Workload, Lens and Profile shares (creation
//! idempotent on ClientRequestToken); ListTagsForResource; GetReviewTemplate. Lists are paged
//! (`NextToken`, `MaxResults`, [`Sim::set_page_size`]); calls can be throttled
//! ([`Sim::throttle_well_architected`]). The estate comes from [`Sim::new`]'s templates, a
//! [`Seed`] file (`waguard sim --seed`) or [`Sim::add_resource`] / [`Sim::add_share`]. It
//! keeps every request it received so tests can check what the gateway forwarded.
//!
//! Given an organization tree it also plays AWS Organizations (the JSON 1.1 protocol, see
//! `organizations.rs`), and given identities AWS STS `GetCallerIdentity` (the Query protocol,
//! see `sts.rs`), verifying signatures for those services the same way.

mod estate;
mod organizations;
mod sts;
mod well_architected;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Map, Value, json};

use crate::auth::{Caller, Callers, Secret, verify_for_service, verify_with_token};
use crate::drift::ResourceType;
use crate::error::error_response;
use crate::gateway::Body;
use crate::operation;
use crate::organization::snapshot::Snapshot;

pub use estate::{
    EstateError, PermissionType, ResourceArn, Seed, SeedError, SeedResource, SeedShare,
    ShareStatus, SimShare,
};
pub use sts::{SimIdentityError, StsCall};

use estate::Estate;
use organizations::ORGANIZATIONS_TARGET;
use sts::{SimIdentity, is_sts};

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

#[derive(Default)]
struct State {
    /// The Well-Architected resources and their shares.
    estate: Estate,
    received: Vec<Received>,
    /// Well-Architected operations called with a verified signature, in order.
    well_architected_calls: Vec<String>,
    /// The next this many Well-Architected calls are throttled.
    throttle_well_architected: usize,
    /// How many Well-Architected calls were throttled.
    well_architected_throttled: usize,
    /// Items per page of the Well-Architected list operations (0: the model's largest, 50).
    page_size: usize,
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
    sts_calls: Vec<sts::StsCall>,
}

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
    /// A simulator that accepts requests signed with this key pair (and session token, if any),
    /// owning these review templates (ARNs; their region and account come from the ARN).
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
            let arn = ResourceArn::parse(ResourceType::Template, t).map_err(|e| e.to_string())?;
            state
                .estate
                .add_resource(arn, None, &BTreeMap::new())
                .map_err(|e| e.to_string())?;
        }
        Ok(Sim {
            credentials: callers,
            session_token: session_token.map(str::to_string),
            state: Mutex::new(state),
            organizations_in_flight: AtomicUsize::new(0),
            organizations_most_in_flight: AtomicUsize::new(0),
        })
    }

    fn state(&self) -> Result<std::sync::MutexGuard<'_, State>, EstateError> {
        self.state.lock().map_err(|_| EstateError {
            arn: String::new(),
            message: "the simulator's state is poisoned".into(),
        })
    }

    /// Adds every resource and share of `seed` to the estate, or nothing if any is invalid.
    pub fn seed(&self, seed: &Seed) -> Result<(), SeedError> {
        let mut state = self
            .state()
            .map_err(|source| SeedError::Resource { index: 0, source })?;
        let mut estate = state.estate.clone();
        estate.apply(seed)?;
        state.estate = estate;
        Ok(())
    }

    /// Adds a resource (its region and owner from the ARN), or merges `tags` into the one with
    /// this ARN.
    pub fn add_resource(
        &self,
        resource_type: ResourceType,
        arn: &str,
        tags: &[(&str, &str)],
    ) -> Result<(), EstateError> {
        let arn = ResourceArn::parse(resource_type, arn)?;
        let tags: BTreeMap<String, String> = tags
            .iter()
            .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
            .collect();
        self.state()?.estate.add_resource(arn, None, &tags)
    }

    /// Shares a resource of the estate; `permission_type` is for workloads (default READONLY).
    /// Answers the new share's id.
    pub fn add_share(
        &self,
        resource_type: ResourceType,
        arn: &str,
        shared_with: &str,
        status: ShareStatus,
        permission_type: Option<PermissionType>,
    ) -> Result<String, EstateError> {
        let mut state = self.state()?;
        match state.estate.get(arn) {
            Some(r) if r.arn.resource_type == resource_type => {}
            _ => {
                return Err(EstateError {
                    arn: arn.to_string(),
                    message: format!("no such {}", resource_type.as_str()),
                });
            }
        }
        state
            .estate
            .add_share(arn, shared_with, status, permission_type, None, None)
    }

    /// Every share of every resource, sorted by (resource type, resource ARN, shared with).
    pub fn estate(&self) -> Vec<SimShare> {
        self.state
            .lock()
            .map(|s| s.estate.shares())
            .unwrap_or_default()
    }

    /// Items per page of the Well-Architected list operations (0: the default, 50); a caller's
    /// smaller MaxResults still wins.
    pub fn set_page_size(&self, n: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.page_size = n;
        }
    }

    /// The next `n` Well-Architected calls (signature verified) answer 429 ThrottlingException.
    pub fn throttle_well_architected(&self, n: usize) {
        if let Ok(mut s) = self.state.lock() {
            s.throttle_well_architected = n;
        }
    }

    /// How many Well-Architected calls were throttled so far.
    pub fn well_architected_throttled(&self) -> usize {
        self.state
            .lock()
            .map(|s| s.well_architected_throttled)
            .unwrap_or_default()
    }

    /// The Well-Architected operations received with a verified signature, in order (throttled
    /// ones too).
    pub fn well_architected_calls(&self) -> Vec<String> {
        self.state
            .lock()
            .map(|s| s.well_architected_calls.clone())
            .unwrap_or_default()
    }

    /// Every request received so far, in order.
    pub fn received(&self) -> Vec<Received> {
        self.state
            .lock()
            .map(|s| s.received.clone())
            .unwrap_or_default()
    }

    /// The shares of a template: `(ShareId, SharedWith)`, in the order they were made.
    pub fn shares(&self, template_arn: &str) -> Vec<(String, String)> {
        self.state
            .lock()
            .ok()
            .and_then(|s| {
                s.estate.get(template_arn).map(|r| {
                    r.shares
                        .iter()
                        .map(|s| (s.share_id.clone(), s.shared_with.clone()))
                        .collect()
                })
            })
            .unwrap_or_default()
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
        if let Some(operation) = organizations_operation {
            let verified = verify_for_service(
                &parts,
                &body,
                &self.credentials,
                SystemTime::now(),
                self.session_token.as_deref(),
                "organizations",
            );
            if let Err(e) = verified {
                return err(e.status(), e.code(), &e.to_string(), &request_id);
            }
            return self
                .organizations_call(&operation, &body, &request_id)
                .await;
        }
        let verified = verify_with_token(
            &parts,
            &body,
            &self.credentials,
            SystemTime::now(),
            self.session_token.as_deref(),
        );
        self.well_architected(&parts, &body, verified, &request_id)
    }

    /// A Well-Architected call: recorded, then (signature verified) routed, maybe throttled,
    /// and answered from the estate.
    fn well_architected(
        &self,
        parts: &http::request::Parts,
        body: &Bytes,
        verified: Result<crate::auth::Authenticated, crate::error::GatewayError>,
        request_id: &str,
    ) -> Response<Body> {
        let Ok(mut state) = self.state.lock() else {
            return err(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "state poisoned",
                request_id,
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
        let auth = match verified {
            Ok(a) => a,
            Err(e) => return err(e.status(), e.code(), &e.to_string(), request_id),
        };
        let routed =
            match operation::route(parts.method.as_str(), parts.uri.path(), parts.uri.query()) {
                Ok(r) => r,
                Err(e) => return err(e.status(), e.code(), &e.to_string(), request_id),
            };
        state
            .well_architected_calls
            .push(routed.spec.name.to_string());
        if state.throttle_well_architected > 0 {
            state.throttle_well_architected -= 1;
            state.well_architected_throttled += 1;
            return err(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Rate exceeded",
                request_id,
            );
        }
        let parsed: Value = if body.is_empty() {
            json!({})
        } else {
            serde_json::from_slice(body).unwrap_or(Value::Null)
        };
        let page_size = state.page_size;
        let request = well_architected::Request {
            routed: &routed,
            body: &parsed,
            region: &auth.region,
            page_size,
        };
        match well_architected::answer(&mut state.estate, &request) {
            Ok(answer) => ok(answer, request_id),
            Err(refusal) => err_with_fields(
                refusal.status(),
                refusal.code(),
                &refusal.message(),
                refusal.fields(),
                request_id,
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
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}

fn err(status: StatusCode, code: &str, message: &str, request_id: &str) -> Response<Body> {
    error_response(status, code, message, request_id)
        .map(|b| b.map_err(|never| match never {}).boxed())
}

/// A restJson1 error like [`err`], with the error shape's other members.
fn err_with_fields(
    status: StatusCode,
    code: &str,
    message: &str,
    fields: Map<String, Value>,
    request_id: &str,
) -> Response<Body> {
    if fields.is_empty() {
        return err(status, code, message, request_id);
    }
    let mut body = fields;
    body.insert("__type".into(), json!(code));
    body.insert("Message".into(), json!(message));
    body.insert("message".into(), json!(message));
    let mut resp = ok(Value::Object(body), request_id);
    *resp.status_mut() = status;
    if let Ok(v) = HeaderValue::from_str(code) {
        resp.headers_mut().insert("x-amzn-errortype", v);
    }
    resp
}
