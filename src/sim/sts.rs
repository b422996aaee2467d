//! The simulated AWS STS: `GetCallerIdentity` in the Query protocol (a form-encoded `POST /`,
//! an XML answer), signatures verified for service `sts` against the identities it is given:
//! the call the gateway's credential exchange makes.

use std::path::Path;
use std::time::SystemTime;

use http::{HeaderMap, Response, StatusCode};

use super::Sim;
use crate::auth::sigv4::{authorization_scope, claimed_access_key_id};
use crate::auth::{Caller, Callers, Secret, verify_for_service};
use crate::error::GatewayError;
use crate::gateway::Body;

/// An AWS identity the simulated STS knows: its key pair, and the ARN it answers with.
#[derive(Debug, Clone)]
pub(super) struct SimIdentity {
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

impl Sim {
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
    pub(super) fn sts(
        &self,
        parts: &http::request::Parts,
        body: &[u8],
        request_id: &str,
    ) -> Response<Body> {
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
}

/// Whether a request is for STS: signed for service `sts`, or (unsigned or not) a Query
/// protocol call, a form-encoded body naming an `Action`, which no Well-Architected or
/// Organizations request is.
pub(super) fn is_sts(parts: &http::request::Parts, body: &[u8]) -> bool {
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
    let mut resp = crate::admin::respond(status, "text/xml", body);
    if let Ok(v) = http::HeaderValue::from_str(request_id) {
        resp.headers_mut().insert("x-amzn-requestid", v);
    }
    resp
}
