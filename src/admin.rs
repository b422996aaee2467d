//! The admin listener: `/metrics` (Prometheus), `/healthz` (process alive), `/readyz` (able to
//! serve: policy loaded, service credentials available, audit log writable).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::json;

use crate::gateway::{Body, Gateway};
use crate::reload::Reloader;

pub struct Admin {
    pub gateway: Arc<Gateway>,
    pub reloader: Arc<Reloader>,
}

fn respond(status: StatusCode, content_type: &'static str, body: String) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static(content_type),
    );
    resp
}

impl Admin {
    pub async fn handle(self: Arc<Self>, req: Request<Incoming>) -> Response<Body> {
        match req.uri().path() {
            "/metrics" => {
                let metrics = &self.gateway.metrics;
                let age = self
                    .gateway
                    .organization
                    .as_ref()
                    .map(|o| o.status().snapshot_age_seconds.unwrap_or(-1.0));
                if let Some(age) = age {
                    metrics.organization_snapshot_age.set(age);
                }
                respond(
                    StatusCode::OK,
                    "text/plain; version=0.0.4",
                    metrics.render(),
                )
            }
            "/healthz" => respond(
                StatusCode::OK,
                "application/json",
                json!({"status": "ok"}).to_string(),
            ),
            "/readyz" => {
                let (status, body) = self.readiness().await;
                respond(status, "application/json", body.to_string())
            }
            _ => respond(
                StatusCode::NOT_FOUND,
                "application/json",
                json!({"error": "not found"}).to_string(),
            ),
        }
    }

    /// Ready when requests can be decided, recorded and forwarded. A rejected policy or
    /// callers reload is reported but does not make the gateway unready: the last good
    /// version keeps serving, and a bad edit must not take every replica out of service.
    async fn readiness(&self) -> (StatusCode, serde_json::Value) {
        let gw = &self.gateway;
        let mut problems = Vec::new();
        if let Err(e) = gw.upstream.credentials.get().await {
            problems.push(format!("service credentials: {e}"));
        }
        if let Err(why) = gw.audit.health() {
            problems.push(why.to_string());
        }
        let organization = gw.organization.as_ref().map(|o| o.status());
        if let Some(o) = &organization
            && o.snapshot_age_seconds.is_none()
        {
            // Without any snapshot every OU rule fails closed; with an old one the gateway
            // keeps deciding on it (and says how old it is).
            problems.push(format!(
                "no AWS Organizations snapshot yet: {}",
                o.last_error.as_deref().unwrap_or("first refresh pending")
            ));
        }
        let reload = self.reloader.status();
        let body = json!({
            "status": if problems.is_empty() { "ready" } else { "not ready" },
            "reasons": problems,
            "policy_revision": gw.policy.load().revision(),
            "policy_reload_error": reload.policy_error,
            "callers_reload_error": reload.callers_error,
            "tls_reload_error": reload.tls_error,
            "organization": organization.map(|o| json!({
                "snapshot_age_seconds": o.snapshot_age_seconds,
                "accounts": o.accounts,
                "last_refresh_error": o.last_error,
            })),
        });
        let status = if problems.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, body)
    }
}
