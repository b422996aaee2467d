//! The admin listener: `/metrics` (Prometheus), `/healthz` (process alive), `/readyz` (able to
//! serve: policy loaded, service credentials available, audit log writable).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::json;

use crate::audit::Unhealthy;
use crate::gateway::{Body, Gateway};
use crate::reload::Reloader;

pub struct Admin {
    pub gateway: Arc<Gateway>,
    pub reloader: Arc<Reloader>,
}

/// A plain answer with a body and its content type.
pub(crate) fn respond(
    status: StatusCode,
    content_type: &'static str,
    body: String,
) -> Response<Body> {
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
    ///
    /// The port has no authentication, so the answer carries reason codes, never error
    /// text (which can name files, endpoints or credential sources); the detail is in the
    /// gateway's log.
    async fn readiness(&self) -> (StatusCode, serde_json::Value) {
        let gw = &self.gateway;
        let mut reasons: Vec<&'static str> = Vec::new();
        if gw.upstream.credentials.get().await.is_err() {
            reasons.push("service_credentials_unavailable");
        }
        if let Err(why) = gw.audit.health() {
            reasons.push(match why {
                Unhealthy::WriteFailed(_) => "audit_write_failing",
                Unhealthy::Stalled(_) => "audit_writer_stalled",
                Unhealthy::WriterStopped => "audit_writer_stopped",
            });
        }
        let organization = gw.organization.as_ref().map(|o| o.status());
        if let Some(o) = &organization
            && o.snapshot_age_seconds.is_none()
        {
            // Without any snapshot every OU rule fails closed; with an old one the gateway
            // keeps deciding on it (and says how old it is).
            reasons.push("organization_snapshot_missing");
        }
        let reload = self.reloader.status();
        let outcome = |e: &Option<String>| if e.is_some() { "rejected" } else { "ok" };
        let body = json!({
            "status": if reasons.is_empty() { "ready" } else { "not ready" },
            "reasons": reasons,
            "policy_revision": gw.policy.load().revision(),
            "policy_reload": outcome(&reload.policy_error),
            "callers_reload": outcome(&reload.callers_error),
            "tls_reload": outcome(&reload.tls_error),
            "organization": organization.map(|o| json!({
                "snapshot_age_seconds": o.snapshot_age_seconds,
                "accounts": o.accounts,
                "last_refresh": if o.last_error.is_some() { "failing" } else { "ok" },
            })),
        });
        let status = if reasons.is_empty() {
            StatusCode::OK
        } else {
            StatusCode::SERVICE_UNAVAILABLE
        };
        (status, body)
    }
}
