//! The admin listener: `/healthz` (process alive) and `/readyz` (able to serve).

use std::sync::Arc;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use serde_json::json;

use crate::gateway::{Body, Gateway};

fn json_response(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(
        Full::new(Bytes::from(body.to_string()))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("application/json"),
    );
    resp
}

pub async fn handle(gateway: Arc<Gateway>, req: Request<Incoming>) -> Response<Body> {
    match req.uri().path() {
        "/healthz" => json_response(StatusCode::OK, json!({"status": "ok"})),
        "/readyz" => {
            let policy = gateway.policy.load();
            match gateway.upstream.credentials.get().await {
                Ok(_) => json_response(
                    StatusCode::OK,
                    json!({"status": "ready", "policy_revision": policy.revision()}),
                ),
                Err(e) => json_response(
                    StatusCode::SERVICE_UNAVAILABLE,
                    json!({"status": "not ready", "reason": e.to_string()}),
                ),
            }
        }
        _ => json_response(StatusCode::NOT_FOUND, json!({"error": "not found"})),
    }
}
