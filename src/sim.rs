//! A simulated Well-Architected upstream: in-memory review templates and shares, and real
//! SigV4 verification of every request against the service credentials it is given.
//!
//! It answers CreateTemplateShare, ListTemplateShares, DeleteTemplateShare, ListReviewTemplates
//! and GetReviewTemplate, and keeps every request it received so tests can check what the
//! gateway forwarded.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use serde_json::{Value, json};

use crate::auth::{Caller, Callers, Secret, verify_with_token};
use crate::error::error_response;
use crate::gateway::Body;
use crate::operation;

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
}

/// The simulated service.
pub struct Sim {
    credentials: Callers,
    session_token: Option<String>,
    state: Mutex<State>,
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
        })
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
        let verified = verify_with_token(
            &parts,
            &body,
            &self.credentials,
            SystemTime::now(),
            self.session_token.as_deref(),
        );
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
