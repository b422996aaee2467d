//! One enum of everything that can stop a request, mapped in one place to an AWS restJson1 error.
//!
//! SDKs decide the exception type from the `x-amzn-ErrorType` header (and the body's `__type`),
//! and surface the `Message` member, so every error the gateway makes is shaped like AWS's own.

use bytes::Bytes;
use http::{HeaderValue, Response, StatusCode};
use http_body_util::Full;

/// Why the gateway answered a request itself instead of forwarding it.
#[derive(Debug, thiserror::Error)]
pub enum GatewayError {
    /// No `Authorization` header (or query signature) at all.
    #[error("Missing Authentication Token")]
    MissingAuthentication,
    /// The Authorization header is present but not a well-formed SigV4 header.
    #[error("{0}")]
    IncompleteSignature(String),
    /// The access key id is not in the callers file, or its session token is not one this
    /// gateway issued.
    #[error("The security token included in the request is invalid.")]
    UnknownAccessKey,
    /// A session token this gateway issued, expired.
    #[error("The security token included in the request is expired")]
    ExpiredToken,
    /// Signature mismatch, stale or future date, wrong scope, wrong payload hash.
    #[error("{0}")]
    InvalidSignature(String),
    /// The request is well signed but cannot be interpreted unambiguously or breaks the model.
    #[error("{0}")]
    Validation(String),
    /// Method + path match no Well-Architected operation.
    #[error("{0}")]
    UnknownOperation(String),
    /// Policy said no.
    #[error("{0}")]
    AccessDenied(String),
    /// Body or headers larger than the configured limit.
    #[error("{0}")]
    PayloadTooLarge(String),
    /// The audit record of a decision could not be written; the request is not forwarded.
    #[error("{0}")]
    AuditUnavailable(String),
    /// Service credentials could not be loaded or signing failed.
    #[error("{0}")]
    Credentials(String),
    /// The upstream could not be reached or did not answer in time.
    #[error("{0}")]
    UpstreamUnavailable(String),
    /// The upstream did not answer within the configured timeout.
    #[error("{0}")]
    UpstreamTimeout(String),
    /// A bug or an unexpected state; never leaks detail to the caller.
    #[error("{0}")]
    Internal(String),
    /// `[limits]`: the caller's or team's token bucket is empty.
    #[error("{0}")]
    Throttling(String),
    /// `server.max_in_flight` requests are already being handled.
    #[error("{0}")]
    Overloaded(String),
    /// The client reset the request or closed its connection before the gateway decided;
    /// nobody waits for the answer.
    #[error("the client closed the request")]
    ClientGone,
}

impl GatewayError {
    /// The AWS error code SDKs map to an exception type.
    pub fn code(&self) -> &'static str {
        match self {
            GatewayError::MissingAuthentication => "MissingAuthenticationTokenException",
            GatewayError::IncompleteSignature(_) => "IncompleteSignatureException",
            GatewayError::UnknownAccessKey => "UnrecognizedClientException",
            GatewayError::ExpiredToken => "ExpiredTokenException",
            GatewayError::InvalidSignature(_) => "InvalidSignatureException",
            GatewayError::Validation(_) => "ValidationException",
            GatewayError::UnknownOperation(_) => "UnknownOperationException",
            GatewayError::AccessDenied(_) => "AccessDeniedException",
            GatewayError::PayloadTooLarge(_) => "ValidationException",
            GatewayError::AuditUnavailable(_) => "InternalServerException",
            GatewayError::Credentials(_) => "InternalServerException",
            GatewayError::UpstreamUnavailable(_) => "ServiceUnavailableException",
            GatewayError::UpstreamTimeout(_) => "ServiceUnavailableException",
            GatewayError::Internal(_) => "InternalServerException",
            GatewayError::Throttling(_) => "ThrottlingException",
            GatewayError::Overloaded(_) => "ServiceUnavailableException",
            GatewayError::ClientGone => "ValidationException",
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            GatewayError::MissingAuthentication
            | GatewayError::IncompleteSignature(_)
            | GatewayError::UnknownAccessKey
            | GatewayError::ExpiredToken
            | GatewayError::InvalidSignature(_)
            | GatewayError::AccessDenied(_) => StatusCode::FORBIDDEN,
            // AWS answers throttling with 400 (restJson1); SDKs retry it with backoff.
            GatewayError::Validation(_)
            | GatewayError::Throttling(_)
            | GatewayError::ClientGone => StatusCode::BAD_REQUEST,
            // AWS answers an unroutable request with 404 UnknownOperationException.
            GatewayError::UnknownOperation(_) => StatusCode::NOT_FOUND,
            GatewayError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            GatewayError::AuditUnavailable(_)
            | GatewayError::Credentials(_)
            | GatewayError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
            GatewayError::UpstreamUnavailable(_) => StatusCode::BAD_GATEWAY,
            GatewayError::UpstreamTimeout(_) => StatusCode::GATEWAY_TIMEOUT,
            GatewayError::Overloaded(_) => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    /// The decision label used in audit records and metrics for this error.
    pub fn decision_label(&self) -> &'static str {
        match self {
            GatewayError::MissingAuthentication
            | GatewayError::IncompleteSignature(_)
            | GatewayError::UnknownAccessKey
            | GatewayError::ExpiredToken
            | GatewayError::InvalidSignature(_) => "unauthenticated",
            GatewayError::Validation(_)
            | GatewayError::UnknownOperation(_)
            | GatewayError::PayloadTooLarge(_) => "invalid",
            GatewayError::AccessDenied(_) => "deny",
            GatewayError::Throttling(_) => "throttled",
            GatewayError::Overloaded(_) => "overloaded",
            GatewayError::ClientGone => "cancelled",
            _ => "error",
        }
    }

    /// Errors of the gateway or what lies behind it, not of the request: their detail
    /// (credential-provider errors, upstream addresses, audit file paths) goes to the
    /// gateway's log under the request id, and the caller gets [`Self::public_message`].
    pub fn is_internal(&self) -> bool {
        matches!(
            self,
            GatewayError::AuditUnavailable(_)
                | GatewayError::Credentials(_)
                | GatewayError::UpstreamUnavailable(_)
                | GatewayError::UpstreamTimeout(_)
                | GatewayError::Internal(_)
        )
    }

    /// What the caller is told: the message itself for errors about the request, a generic
    /// one naming the request id for internal errors.
    pub fn public_message(&self, request_id: &str) -> String {
        let what = match self {
            GatewayError::AuditUnavailable(_) => {
                "The request was not forwarded: the gateway could not record its decision. Retry later"
            }
            GatewayError::Credentials(_) => {
                "The gateway could not sign the request for AWS Well-Architected"
            }
            GatewayError::UpstreamUnavailable(_) => {
                "AWS Well-Architected could not be reached through the gateway. Retry later"
            }
            GatewayError::UpstreamTimeout(_) => "AWS Well-Architected did not answer in time",
            GatewayError::Internal(_) => "The gateway failed to process the request",
            _ => return self.to_string(),
        };
        format!("{what} (request id {request_id}; the gateway's log has the details).")
    }

    /// Builds the AWS-shaped response: status, `x-amzn-ErrorType`, `x-amzn-RequestId`, JSON body.
    pub fn to_response(&self, request_id: &str) -> Response<Full<Bytes>> {
        error_response(
            self.status(),
            self.code(),
            &self.public_message(request_id),
            request_id,
        )
    }
}

/// A restJson1 error response, as AWS sends it.
pub fn error_response(
    status: StatusCode,
    code: &str,
    message: &str,
    request_id: &str,
) -> Response<Full<Bytes>> {
    let body = serde_json::json!({ "__type": code, "Message": message, "message": message });
    let mut resp = Response::new(Full::new(Bytes::from(body.to_string())));
    *resp.status_mut() = status;
    let headers = resp.headers_mut();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    if let Ok(v) = HeaderValue::from_str(code) {
        headers.insert("x-amzn-errortype", v);
    }
    if let Ok(v) = HeaderValue::from_str(request_id) {
        headers.insert("x-amzn-requestid", v);
    }
    resp
}

#[cfg(test)]
mod tests {
    use super::*;
    use http_body_util::BodyExt;

    #[tokio::test]
    async fn access_denied_is_shaped_like_aws() {
        let resp = GatewayError::AccessDenied("not approved".into()).to_response("rid-1");
        assert_eq!(resp.status(), StatusCode::FORBIDDEN);
        assert_eq!(resp.headers()["x-amzn-errortype"], "AccessDeniedException");
        assert_eq!(resp.headers()["x-amzn-requestid"], "rid-1");
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(v["Message"], "not approved");
    }

    #[tokio::test]
    async fn internal_errors_tell_the_caller_only_the_request_id() {
        for e in [
            GatewayError::Credentials("failed to load credentials from /var/run/secrets/eks.amazonaws.com/serviceaccount/token".into()),
            GatewayError::UpstreamUnavailable("connect to https://10.1.2.3:8443 failed".into()),
            GatewayError::AuditUnavailable("/var/lib/waguard/audit.jsonl: No space left on device".into()),
            GatewayError::Internal("poisoned lock".into()),
        ] {
            let resp = e.to_response("rid-9");
            let body = resp.into_body().collect().await.unwrap().to_bytes();
            let text = String::from_utf8(body.to_vec()).unwrap();
            for secret in ["/var/", "10.1.2.3", "poisoned", "eks"] {
                assert!(!text.contains(secret), "{text}");
            }
            assert!(text.contains("request id rid-9"), "{text}");
        }
        let throttled = GatewayError::Throttling("Rate exceeded".into());
        assert_eq!(throttled.status(), StatusCode::BAD_REQUEST);
        assert_eq!(throttled.code(), "ThrottlingException");
        assert_eq!(throttled.public_message("r"), "Rate exceeded");
    }
}
