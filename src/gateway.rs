//! The request pipeline, in order: read -> authenticate -> route -> validate -> decide ->
//! audit the decision -> forward -> audit the outcome -> respond.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Instant, SystemTime};

use arc_swap::ArcSwap;
use bytes::Bytes;
use http::request::Parts;
use http::{Request, Response, StatusCode};
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use serde_json::Value;
use time::OffsetDateTime;

use tokio_util::sync::CancellationToken;

use crate::audit::record::{self, NoAnswer, Verdict};
use crate::audit::summary::{self, AuthFailureKey, Tally, ThrottledKey};
use crate::audit::{AuditLog, AuditRecord};
use crate::auth::{self, Authenticated, Callers};
use crate::config::{AuditFailure, PolicyConfig, PolicyMode};
use crate::error::GatewayError;
use crate::identity::{self, EXCHANGE_PATH, Identity};
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::operation::{self, Access, Routed};
use crate::organization::{OrganizationView, Resolution};
use crate::policy::{self, Decision, Policy};
use crate::upstream::{Outbound, Prepared, Upstream};
use crate::validate::{self, Validated};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;
/// The body type of every response the gateway sends.
pub type Body = BoxBody<Bytes, BoxError>;

/// Upstream answers to write operations are read whole (they are small JSON documents) so
/// the outcome record can name the ShareId or error code.
const MAX_OUTCOME_BODY: usize = 256 * 1024;
/// Attempts for a request whose connection failed before AWS answered (see `forward`).
const UPSTREAM_ATTEMPTS: u32 = 3;
const RETRY_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// Request-path settings taken from the config.
pub struct Settings {
    pub allowed_regions: Option<Vec<String>>,
    pub max_body_bytes: usize,
    /// Time allowed to receive a request body.
    pub body_timeout: std::time::Duration,
    pub policy: PolicyConfig,
    pub audit_on_failure: AuditFailure,
    /// Overall bound on one request, beyond the body and upstream timeouts.
    pub request_deadline: std::time::Duration,
}

/// Everything a request needs; shared by all connections. Callers and policy are swapped
/// whole on reload; a request keeps the ones it started with.
pub struct Gateway {
    pub callers: ArcSwap<Callers>,
    pub policy: ArcSwap<Policy>,
    pub upstream: Upstream,
    pub audit: AuditLog,
    pub metrics: Arc<Metrics>,
    pub settings: Settings,
    /// Set when shutdown gives up on the requests still running: their outcome records then
    /// say `abandoned_at_shutdown` instead of `timeout`.
    pub abandoning: AtomicBool,
    /// The AWS Organization, when `[organizations]` is enabled.
    pub organization: Option<Arc<OrganizationView>>,
    /// `[limits]`.
    pub limiter: Limiter,
    /// `[identity]`: the credential exchange and the sessions it issues.
    pub identity: Option<Arc<Identity>>,
    /// Failed authentications and throttled requests since the last summary record.
    pub refusals: Refusals,
}

/// Refusals counted instead of recorded one by one (see `audit::summary`).
#[derive(Default)]
pub struct Refusals {
    pub auth_failures: Tally<AuthFailureKey>,
    pub throttled: Tally<ThrottledKey>,
}

/// Bytes of the request path written to the request log line.
const LOGGED_PATH_BYTES: usize = 256;

/// A request that policy allowed (or would deny in dry-run), with its decision record not
/// yet written: what [`Gateway::decide`] hands to the forwarding half.
struct Approved {
    parts: Parts,
    body: Bytes,
    auth: Authenticated,
    routed: Routed,
    validated: Validated,
    record: AuditRecord,
}

/// What the pipeline learned about one request, carried through the phases.
struct RequestContext {
    id: String,
    started: Instant,
    peer: SocketAddr,
    operation: &'static str,
    /// Label for metrics: allow, deny, would_deny, invalid, unauthenticated, error.
    decision: &'static str,
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into())
        .map_err(|never| match never {})
        .boxed()
}

fn error_body(e: &GatewayError, request_id: &str) -> Response<Body> {
    e.to_response(request_id)
        .map(|b| b.map_err(|never| match never {}).boxed())
}

/// Decrements the in-flight gauge however the request ends.
struct InFlight<'a>(&'a prometheus::IntGauge);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

impl Gateway {
    /// Handles one request end to end. Never fails: every error becomes an AWS-style answer.
    ///
    /// `client_gone` is cancelled when the client resets or closes the request; until its
    /// decision is on its way to the log the work stops there (HTTP/2 rapid reset costs no
    /// more than the headers), after that it runs to its outcome record.
    pub async fn handle(
        self: Arc<Self>,
        req: Request<hyper::body::Incoming>,
        peer: SocketAddr,
        client_gone: CancellationToken,
    ) -> Response<Body> {
        self.metrics.in_flight.inc();
        let _in_flight = InFlight(&self.metrics.in_flight);
        let mut ctx = RequestContext {
            id: uuid::Uuid::new_v4().to_string(),
            started: Instant::now(),
            peer,
            operation: "unknown",
            decision: "error",
        };
        let method = req.method().clone();
        let path = summary::truncate(req.uri().path(), LOGGED_PATH_BYTES);
        // An overall bound per request. Dropping the pipeline here is safe for the audit log:
        // a request whose decision to forward was recorded owes an outcome record, which its
        // `PendingOutcome` writes when dropped.
        let deadline = self.settings.request_deadline;
        let pipeline = self.pipeline(&mut ctx, req, &client_gone);
        let result = match tokio::time::timeout(deadline, pipeline).await {
            Ok(result) => result,
            Err(_) => Err(GatewayError::UpstreamTimeout(format!(
                "the request did not complete within {}s",
                deadline.as_secs_f64()
            ))),
        };
        let response = match result {
            Ok(resp) => resp,
            Err(e) => {
                if matches!(e, GatewayError::ClientGone) {
                    // Nothing was recorded or forwarded, and nobody waits for the answer.
                    ctx.decision = e.decision_label();
                    self.metrics.cancelled.inc();
                } else if ctx.decision == "error" || ctx.decision == "allow" {
                    ctx.decision = e.decision_label();
                }
                if e.is_internal() {
                    // The caller gets a generic message and the request id; the detail
                    // (credential-provider errors, upstream addresses, file paths) stays here.
                    tracing::warn!(request_id = %ctx.id, code = e.code(), detail = %e, "request failed");
                }
                error_body(&e, &ctx.id)
            }
        };
        let elapsed = ctx.started.elapsed();
        self.metrics
            .requests
            .with_label_values(&[ctx.operation, ctx.decision])
            .inc();
        self.metrics
            .request_duration
            .with_label_values(&[ctx.operation])
            .observe(elapsed.as_secs_f64());
        // Requests that failed authentication are logged at debug only: anyone can send them
        // at any rate, so one line each would let a flood fill the log pipeline. They are
        // counted (`waguard_auth_failures_total`) and summarised in the audit log.
        macro_rules! request_line {
            ($level:expr) => {
                tracing::event!(
                    $level,
                    request_id = %ctx.id,
                    peer = %ctx.peer,
                    method = %method,
                    path = %path,
                    operation = ctx.operation,
                    decision = ctx.decision,
                    status = response.status().as_u16(),
                    elapsed_ms = elapsed.as_secs_f64() * 1000.0,
                    "request"
                )
            };
        }
        if ctx.decision == "unauthenticated" {
            request_line!(tracing::Level::DEBUG);
        } else {
            request_line!(tracing::Level::INFO);
        }
        response
    }

    async fn pipeline(
        &self,
        ctx: &mut RequestContext,
        req: Request<hyper::body::Incoming>,
        client_gone: &CancellationToken,
    ) -> Result<Response<Body>, GatewayError> {
        if req.uri().path() == EXCHANGE_PATH {
            ctx.operation = "CredentialExchange";
            return tokio::select! {
                biased;
                () = client_gone.cancelled() => Err(GatewayError::ClientGone),
                answer = self.exchange(ctx, req) => answer,
            };
        }
        let decided = tokio::select! {
            biased;
            () = client_gone.cancelled() => None,
            decided = self.decide(ctx, req) => Some(decided),
        };
        let Some(decided) = decided else {
            return Err(GatewayError::ClientGone);
        };
        self.forward_approved(ctx, decided?).await
    }

    /// Everything up to the decision: authenticate (headers first, then the body), throttle,
    /// route, validate, ask policy. A denied or invalid request ends here, its record queued.
    async fn decide(
        &self,
        ctx: &mut RequestContext,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Approved, GatewayError> {
        let (parts, body) = req.into_parts();
        let callers = self.callers.load_full();
        let now = SystemTime::now();
        // Refused on the headers alone when possible, before any of the body is read. Long-term
        // keys come from the callers file; session credentials (with a session token) are the
        // gateway's own, issued by the credential exchange.
        let claimed = auth::sigv4::check_headers_with(&parts, now, auth::SERVICE, |key, token| {
            match (token, &self.identity) {
                (None, _) => callers
                    .get(key)
                    .cloned()
                    .ok_or(GatewayError::UnknownAccessKey),
                (Some(token), Some(identity)) => {
                    identity.sessions.caller(key, token, now).map(Arc::new)
                }
                (Some(_), None) => Err(GatewayError::UnknownAccessKey),
            }
        })
        .map_err(|e| self.auth_failed(ctx, &parts, e))?;
        let body = self.read_body(&parts, body).await?;
        let auth = claimed
            .verify_body(&parts, &body)
            .map_err(|e| self.auth_failed(ctx, &parts, e))?;

        let (routed, validated) = match self.interpret(ctx, &auth, &parts, &body) {
            Ok(r) => r,
            Err(e @ GatewayError::Throttling(_)) => return Err(e),
            Err(e) => {
                let verdict = match e.decision_label() {
                    "deny" => Verdict::Deny,
                    "invalid" => Verdict::Invalid,
                    _ => Verdict::Error,
                };
                self.audit_best_effort(AuditRecord::Decision(record::Decision {
                    operation: ctx.operation.to_string(),
                    decision: verdict,
                    error: Some(e.code().to_string()),
                    reasons: vec![e.to_string()],
                    ..decision_record(ctx, &auth, &parts)
                }));
                return Err(e);
            }
        };
        // Where the share target sits in the organization (the snapshot, or a bounded lookup).
        let (placed, organization) = match (&self.organization, validated.target()) {
            (Some(view), Some(target)) => (Some(view.resolve(target).await), Some(view.context())),
            (Some(view), None) => (None, Some(view.context())),
            (None, _) => (None, None),
        };
        let policy = self.policy.load_full();
        let input = policy::input::build(
            &auth,
            &routed,
            &validated,
            placed.as_ref(),
            organization.as_ref(),
            parts.method.as_str(),
            parts.uri.path(),
            ctx.peer.ip(),
            OffsetDateTime::now_utc(),
        );
        let timer = Instant::now();
        let decision = policy.evaluate_input(input);
        self.metrics
            .policy_evaluation
            .observe(timer.elapsed().as_secs_f64());
        let dry_run = self.settings.policy.mode_for(routed.spec.name) == PolicyMode::DryRun;
        let verdict = match (decision.allow, dry_run) {
            (true, _) => Verdict::Allow,
            (false, true) => Verdict::WouldDeny,
            (false, false) => Verdict::Deny,
        };
        ctx.decision = verdict.as_str();
        let record = AuditRecord::Decision(policy_decision_record(
            ctx,
            &auth,
            &parts,
            &validated,
            placed.as_ref(),
            verdict,
            &decision,
            policy.revision(),
        ));
        if verdict == Verdict::Deny {
            self.audit_best_effort(record);
            if decision.failed {
                // An evaluation error can quote policy internals: the log and the audit
                // record have it, the caller gets the request id.
                tracing::warn!(request_id = %ctx.id, reasons = ?decision.reasons, "policy could not decide; denied");
                return Err(GatewayError::AccessDenied(format!(
                    "waguard denied {}: the policy could not decide (request id {}; the gateway's log has the details)",
                    routed.spec.name, ctx.id
                )));
            }
            return Err(GatewayError::AccessDenied(format!(
                "waguard denied {} for {}: {}",
                routed.spec.name,
                auth.caller.principal,
                decision.reasons.join("; ")
            )));
        }
        Ok(Approved {
            parts,
            body,
            auth,
            routed,
            validated,
            record,
        })
    }

    /// The half after an approving decision: record it durably, forward, record the outcome.
    async fn forward_approved(
        &self,
        ctx: &mut RequestContext,
        approved: Approved,
    ) -> Result<Response<Body>, GatewayError> {
        let Approved {
            parts,
            body,
            auth,
            routed,
            validated,
            record,
        } = approved;
        // The decision to forward is on disk before anything leaves. The request for AWS is
        // signed while the writer fsyncs, and sent only once the record is durable.
        let submitted = self.audit.submit(record);
        // From here on the request owes the log exactly one outcome record, however it ends.
        let mut pending = PendingOutcome::new(self, ctx);
        let waiting = Instant::now();
        let out = outbound(&parts, &auth.region, body);
        let (prepared, (durable, waited)) =
            tokio::join!(self.upstream.prepare(out.clone()), async {
                let durable = submitted.durable().await;
                (durable, waiting.elapsed())
            });
        self.metrics.audit_wait.observe(waited.as_secs_f64());
        if let Err(e) = durable {
            match self.settings.audit_on_failure {
                AuditFailure::FailClosed => {
                    // Nothing was forwarded, and the decision itself is not in the log.
                    pending.disarm();
                    return Err(GatewayError::AuditUnavailable(format!(
                        "the request was not forwarded because its audit record could not be written: {e}"
                    )));
                }
                AuditFailure::FailOpen => {
                    tracing::error!(request_id = %ctx.id, error = %e, "forwarding without an audit record (audit.on_failure = \"fail-open\")");
                }
            }
        }
        // A request that never reached AWS (connection refused or reset before an answer) is
        // retried when repeating it cannot do anything twice: reads, and writes that carry a
        // ClientRequestToken, which AWS de-duplicates.
        let retry_safe =
            routed.spec.access == Access::Read || validated.client_request_token.is_some();
        self.forward(ctx, &mut pending, &routed, retry_safe, out, prepared)
            .await
    }

    /// Sends an approved request to AWS and relays the answer. `first` is `out` already signed
    /// for the first attempt; a retry signs it again. Timeouts are not retried: the first
    /// attempt may still be in flight.
    async fn forward(
        &self,
        ctx: &RequestContext,
        pending: &mut PendingOutcome<'_>,
        routed: &Routed,
        retry_safe: bool,
        out: Outbound<'_>,
        first: Result<Prepared, GatewayError>,
    ) -> Result<Response<Body>, GatewayError> {
        let sent = Instant::now();
        pending.sent = Some(sent);
        let mut attempt = 1;
        let mut first = Some(first);
        let result = loop {
            let prepared = match first.take() {
                Some(p) => p,
                None => self.upstream.prepare(out.clone()).await,
            };
            let result = match prepared {
                Ok(request) => self.upstream.dispatch(request).await,
                Err(e) => Err(e),
            };
            match result {
                Err(GatewayError::UpstreamUnavailable(ref e))
                    if retry_safe && attempt < UPSTREAM_ATTEMPTS =>
                {
                    tracing::warn!(request_id = %ctx.id, attempt, error = %e, "upstream unreachable; retrying");
                    self.metrics
                        .upstream_requests
                        .with_label_values(&[ctx.operation, "error"])
                        .inc();
                    tokio::time::sleep(RETRY_BACKOFF * attempt).await;
                    attempt += 1;
                }
                other => break other,
            }
        };
        self.metrics
            .upstream_duration
            .with_label_values(&[ctx.operation])
            .observe(sent.elapsed().as_secs_f64());
        let resp = match result {
            Ok(r) => r,
            Err(e) => {
                let (status, error) = if matches!(e, GatewayError::UpstreamTimeout(_)) {
                    ("timeout", NoAnswer::Timeout)
                } else {
                    ("error", NoAnswer::UpstreamUnreachable)
                };
                self.metrics
                    .upstream_requests
                    .with_label_values(&[ctx.operation, status])
                    .inc();
                pending.finish(None, None, Some(e.code()), Some(error));
                return Err(e);
            }
        };
        let (head, upstream_body) = resp.into_parts();
        self.metrics
            .upstream_requests
            .with_label_values(&[ctx.operation, head.status.as_str()])
            .inc();
        if routed.spec.access == Access::Read {
            pending.finish(Some(&head), None, None, None);
            let body = upstream_body.map_err(|e| Box::new(e) as BoxError).boxed();
            return Ok(Response::from_parts(head, body));
        }
        let bytes = match Limited::new(upstream_body, MAX_OUTCOME_BODY)
            .collect()
            .await
        {
            Ok(c) => c.to_bytes(),
            Err(e) => {
                let err = GatewayError::UpstreamUnavailable(format!(
                    "reading the Well-Architected response failed: {e}"
                ));
                pending.finish(
                    Some(&head),
                    None,
                    Some(err.code()),
                    Some(NoAnswer::ResponseUnreadable),
                );
                return Err(err);
            }
        };
        pending.finish(Some(&head), Some(&bytes), None, None);
        Ok(Response::from_parts(head, full(bytes)))
    }

    /// Reads the whole body, refusing more than the configured limit.
    async fn read_body(
        &self,
        parts: &Parts,
        body: hyper::body::Incoming,
    ) -> Result<Bytes, GatewayError> {
        self.read_body_up_to(parts, body, self.settings.max_body_bytes)
            .await
    }

    /// Reads the whole body, refusing more than `max` bytes.
    async fn read_body_up_to(
        &self,
        parts: &Parts,
        body: hyper::body::Incoming,
        max: usize,
    ) -> Result<Bytes, GatewayError> {
        let too_large =
            || GatewayError::PayloadTooLarge(format!("the request body exceeds {max} bytes"));
        if let Some(len) = parts.headers.get(http::header::CONTENT_LENGTH) {
            let len: u64 = len
                .to_str()
                .ok()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| GatewayError::Validation("Content-Length is not a number".into()))?;
            if len > max as u64 {
                return Err(too_large());
            }
        }
        // A body trickled in slowly (slowloris) ends the request instead of holding it open.
        let collect = tokio::time::timeout(
            self.settings.body_timeout,
            Limited::new(body, max).collect(),
        );
        let Ok(collected) = collect.await else {
            return Err(GatewayError::Validation(format!(
                "the request body was not received within {}s",
                self.settings.body_timeout.as_secs_f64()
            )));
        };
        match collected {
            Ok(c) => Ok(c.to_bytes()),
            Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
            Err(e) if client_went_away(e.as_ref()) => Err(GatewayError::ClientGone),
            Err(e) => Err(GatewayError::Validation(format!(
                "the request body could not be read: {e}"
            ))),
        }
    }

    /// Works out the operation and validates it, including the gateway's own region limits.
    fn interpret(
        &self,
        ctx: &mut RequestContext,
        auth: &Authenticated,
        parts: &Parts,
        body: &Bytes,
    ) -> Result<(Routed, Validated), GatewayError> {
        let routed = operation::route(parts.method.as_str(), parts.uri.path(), parts.uri.query());
        if let Ok(r) = &routed {
            ctx.operation = r.spec.name;
        }
        self.throttle(ctx, auth)?;
        if let Some(allowed) = &self.settings.allowed_regions
            && !allowed.iter().any(|r| r == &auth.region)
        {
            return Err(GatewayError::AccessDenied(format!(
                "region {} is not served by this gateway (allowed: {})",
                auth.region,
                allowed.join(", ")
            )));
        }
        let routed = routed?;
        let validated = validate::validate(&routed, &parts.method, &parts.headers, body)?;
        Ok((routed, validated))
    }

    /// `POST /_waguard/v1/credentials`: trades a signed GetCallerIdentity for gateway session
    /// credentials. The request is checked (see `identity::exchange`), sent to STS, and the ARN
    /// STS answers with is mapped to a team by the `[[identities]]` rules. The issuance is
    /// recorded durably before the credentials are handed out.
    async fn exchange(
        &self,
        ctx: &mut RequestContext,
        req: Request<hyper::body::Incoming>,
    ) -> Result<Response<Body>, GatewayError> {
        let (parts, body) = req.into_parts();
        let Some(id) = &self.identity else {
            return Err(GatewayError::UnknownOperation(
                "the credential exchange is not enabled on this gateway ([identity])".into(),
            ));
        };
        if parts.method != http::Method::POST {
            return Err(GatewayError::UnknownOperation(format!(
                "{EXCHANGE_PATH} takes POST"
            )));
        }
        let refused = |e: GatewayError, principal: Option<&str>, result: &str| {
            self.metrics
                .credential_exchanges
                .with_label_values(&[result])
                .inc();
            self.refused_unauthenticated(ctx, &parts, e, principal)
        };
        let document = self
            .read_body_up_to(&parts, body, identity::exchange::MAX_DOCUMENT_BYTES)
            .await
            .map_err(|e| match e {
                GatewayError::ClientGone => e,
                e => refused(e, None, "invalid"),
            })?;
        let now = SystemTime::now();
        let sts_request = id
            .rules
            .parse(&document, now)
            .map_err(|e| refused(e, None, "invalid"))?;
        let aws_access_key_id = sts_request
            .headers()
            .get(http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| auth::sigv4::authorization_scope(v).ok())
            .map(|s| s.access_key_id)
            .unwrap_or_default();
        let answer = {
            // Anyone can post a well-formed exchange (only STS checks the signature), so a
            // turn is waited for briefly: a flood of them answers 503 instead of holding the
            // gateway's request slots.
            let _turn =
                match tokio::time::timeout(identity::STS_TURN_WAIT, id.sts_calls.acquire()).await {
                    Ok(Ok(turn)) => turn,
                    Ok(Err(_)) => {
                        return Err(GatewayError::Internal(
                            "the STS call limiter is closed".into(),
                        ));
                    }
                    Err(_) => {
                        self.metrics
                            .credential_exchanges
                            .with_label_values(&["busy"])
                            .inc();
                        return Err(GatewayError::Overloaded(format!(
                            "the credential exchange is busy ({} STS calls in flight); retry",
                            identity::MAX_STS_CALLS
                        )));
                    }
                };
            self.upstream
                .send_to_sts(
                    sts_request,
                    identity::STS_TIMEOUT,
                    identity::exchange::MAX_STS_ANSWER_BYTES,
                )
                .await
                .inspect_err(|_| {
                    self.metrics
                        .credential_exchanges
                        .with_label_values(&["sts_unavailable"])
                        .inc();
                })?
        };
        let arn = identity::exchange::caller_arn(answer.0, &answer.1)
            .map_err(|e| refused(e, None, "refused_by_sts"))?;
        let callers = self.callers.load_full();
        let Some(rule) = callers.identity(&arn) else {
            let e = GatewayError::AccessDenied(format!(
                "no [[identities]] rule of this gateway maps {arn} to a team"
            ));
            return Err(refused(e, Some(&arn), "no_rule"));
        };
        let issued = id.sessions.issue(&arn, &rule.team, &rule.attributes, now)?;
        let expiration = time::OffsetDateTime::from(issued.expires)
            .format(&time::format_description::well_known::Rfc3339)
            .map_err(|e| GatewayError::Internal(format!("formatting the expiry: {e}")))?;
        let record = AuditRecord::CredentialExchange(record::CredentialExchange {
            request_id: ctx.id.clone(),
            time: record::now(),
            source_ip: ctx.peer.ip().to_string(),
            principal: arn.clone(),
            team: rule.team.clone(),
            access_key_id: issued.access_key_id.clone(),
            aws_access_key_id,
            expiration: expiration.clone(),
        });
        // Credentials leave only once their issuance is on disk (unless fail-open).
        if let Err(e) = self.audit.submit(record).durable().await {
            match self.settings.audit_on_failure {
                AuditFailure::FailClosed => {
                    return Err(GatewayError::AuditUnavailable(format!(
                        "no credentials were issued because the record could not be written: {e}"
                    )));
                }
                AuditFailure::FailOpen => {
                    tracing::error!(request_id = %ctx.id, error = %e, "issuing credentials without an audit record (audit.on_failure = \"fail-open\")");
                }
            }
        }
        self.metrics
            .credential_exchanges
            .with_label_values(&["issued"])
            .inc();
        ctx.decision = "allow";
        tracing::info!(request_id = %ctx.id, principal = %arn, team = %rule.team, access_key_id = %issued.access_key_id, expiration = %expiration, "credentials issued");
        let body = serde_json::json!({
            "Version": 1,
            "AccessKeyId": issued.access_key_id,
            "SecretAccessKey": issued.secret_access_key.expose(),
            "SessionToken": issued.session_token,
            "Expiration": expiration,
        });
        let mut resp = Response::new(full(body.to_string()));
        resp.headers_mut().insert(
            http::header::CONTENT_TYPE,
            http::HeaderValue::from_static("application/json"),
        );
        resp.headers_mut().insert(
            http::header::CACHE_CONTROL,
            http::HeaderValue::from_static("no-store"),
        );
        if let Ok(v) = http::HeaderValue::from_str(&ctx.id) {
            resp.headers_mut().insert("x-amzn-requestid", v);
        }
        Ok(resp)
    }

    /// `[limits]`, right after authentication: an empty bucket refuses the request before its
    /// body is parsed or policy is asked. Counted, and summarised in the audit log.
    fn throttle(&self, ctx: &mut RequestContext, auth: &Authenticated) -> Result<(), GatewayError> {
        let caller = &auth.caller;
        let Err((exceeded, wait)) =
            self.limiter
                .check(&caller.access_key_id, &caller.team, ctx.operation)
        else {
            return Ok(());
        };
        ctx.decision = "throttled";
        self.metrics
            .throttled
            .with_label_values(&[caller.team.as_str(), ctx.operation])
            .inc();
        self.refusals.throttled.note(
            ThrottledKey {
                access_key_id: caller.access_key_id.clone(),
                principal: caller.principal.clone(),
                team: caller.team.clone(),
                operation: ctx.operation,
                limit: exceeded.as_str(),
            },
            String::new,
        );
        Err(GatewayError::Throttling(format!(
            "Rate exceeded: the {} limit for {} is used up; retry in {:.1}s",
            exceeded.as_str(),
            ctx.operation,
            wait.as_secs_f64().max(0.1)
        )))
    }

    /// A request that failed authentication is counted, not recorded on its own: anyone
    /// can send those at any rate (see `audit::summary`).
    fn auth_failed(&self, ctx: &RequestContext, parts: &Parts, e: GatewayError) -> GatewayError {
        self.refused_unauthenticated(ctx, parts, e, None)
    }

    /// Counts a refusal of a caller the gateway could not authenticate (or, for a credential
    /// exchange, could not map to a team: `principal` is the ARN STS vouched for).
    fn refused_unauthenticated(
        &self,
        ctx: &RequestContext,
        parts: &Parts,
        e: GatewayError,
        principal: Option<&str>,
    ) -> GatewayError {
        self.metrics
            .auth_failures
            .with_label_values(&[e.code()])
            .inc();
        let access_key_id = auth::sigv4::claimed_access_key_id(&parts.headers)
            .map(|k| summary::truncate(&k, summary::ACCESS_KEY_CHARS));
        self.refusals.auth_failures.note(
            AuthFailureKey {
                source_ip: ctx.peer.ip(),
                access_key_id,
                error: e.code(),
                principal: principal.map(|p| summary::truncate(p, summary::SAMPLE_PATH_BYTES)),
            },
            || parts.uri.path().to_string(),
        );
        e
    }

    /// Writes the counted refusals since the last call as summary records (each kind only
    /// if there were any). Runs every `audit.summary_interval` and at shutdown.
    pub fn flush_refusals(&self) {
        if let Some(s) = self.refusals.auth_failures.take() {
            self.audit.record(AuditRecord::AuthFailures(s));
        }
        if let Some(s) = self.refusals.throttled.take() {
            self.audit.record(AuditRecord::Throttled(s));
        }
    }

    /// Records of requests that are refused anyway: queued for the next group commit without
    /// holding up the answer (nothing is forwarded either way); a failed write is counted.
    fn audit_best_effort(&self, record: AuditRecord) {
        self.audit.record(record);
    }
}

/// The outcome record an approved request owes the audit log. `finish` writes it with what
/// AWS answered; if the request ends any other way (the overall deadline, or shutdown giving
/// up on it) it is written on drop, with `upstream_status: null` and why.
struct PendingOutcome<'a> {
    gateway: &'a Gateway,
    request_id: String,
    operation: &'static str,
    /// When the request was first sent; `None` while it has not left the gateway.
    sent: Option<Instant>,
    armed: bool,
}

impl<'a> PendingOutcome<'a> {
    fn new(gateway: &'a Gateway, ctx: &RequestContext) -> Self {
        PendingOutcome {
            gateway,
            request_id: ctx.id.clone(),
            operation: ctx.operation,
            sent: None,
            armed: true,
        }
    }

    /// The request ends without owing an outcome (its decision never reached the log).
    fn disarm(&mut self) {
        self.armed = false;
    }

    /// Writes the outcome: AWS's answer (`head`, and `body` for write operations), or the
    /// gateway's error code and why there is no answer.
    fn finish(
        &mut self,
        head: Option<&http::response::Parts>,
        body: Option<&Bytes>,
        gateway_error: Option<&str>,
        error: Option<NoAnswer>,
    ) {
        self.armed = false;
        let parsed: Option<Value> = body.and_then(|b| serde_json::from_slice(b).ok());
        let status = head.map(|h| h.status);
        let aws_error = head.and_then(|h| {
            if h.status.is_success() {
                return None;
            }
            h.headers
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok())
                .map(|s| s.split(':').next().unwrap_or(s).to_string())
                .or_else(|| {
                    parsed
                        .as_ref()
                        .and_then(|p| p.get("__type"))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                })
        });
        let record = AuditRecord::Outcome(record::Outcome {
            request_id: self.request_id.clone(),
            time: record::now(),
            operation: self.operation.to_string(),
            forwarded: self.sent.is_some(),
            upstream_status: status.map(|s| s.as_u16()),
            aws_request_id: head
                .and_then(|h| h.headers.get("x-amzn-requestid"))
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            share_id: if status == Some(StatusCode::OK) {
                parsed
                    .as_ref()
                    .and_then(|p| p.get("ShareId"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            } else {
                None
            },
            error_code: gateway_error.map(str::to_string).or(aws_error),
            error,
            latency_ms: self.sent.map(|s| s.elapsed().as_secs_f64() * 1000.0),
        });
        // The decision was durable before forwarding; the outcome need not hold up the answer.
        self.gateway.audit.record(record);
    }
}

impl Drop for PendingOutcome<'_> {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let why = if self.gateway.abandoning.load(Ordering::Relaxed) {
            NoAnswer::AbandonedAtShutdown
        } else {
            NoAnswer::Timeout
        };
        tracing::warn!(request_id = %self.request_id, operation = self.operation, forwarded = self.sent.is_some(), why = ?why, "request ended before AWS answered");
        let code = GatewayError::UpstreamTimeout(String::new()).code();
        self.finish(None, None, Some(code), Some(why));
    }
}

/// What [`Upstream::prepare`] needs of a request: exactly the bytes that were decided on.
fn outbound<'a>(parts: &'a Parts, region: &'a str, body: Bytes) -> Outbound<'a> {
    Outbound {
        method: &parts.method,
        path_and_query: parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/"),
        region,
        headers: &parts.headers,
        body,
    }
}

/// The decision record's facts about the request and its caller; what was decided is
/// filled in by the caller of this function.
fn decision_record(ctx: &RequestContext, auth: &Authenticated, parts: &Parts) -> record::Decision {
    record::Decision {
        request_id: ctx.id.clone(),
        time: record::now(),
        caller: record::CallerRef {
            principal: auth.caller.principal.clone(),
            team: auth.caller.team.clone(),
            access_key_id: auth.caller.access_key_id.clone(),
        },
        source_ip: ctx.peer.ip().to_string(),
        operation: ctx.operation.to_string(),
        region: auth.region.clone(),
        method: parts.method.to_string(),
        path: parts.uri.path().to_string(),
        resource_arn: None,
        shared_with: None,
        target_type: None,
        permission_type: None,
        client_request_token: None,
        decision: Verdict::Error,
        error: None,
        reasons: Vec::new(),
        policy_revision: None,
        in_organization: None,
        ou_path: Vec::new(),
    }
}

/// The record of a policy decision; `placed` is where the target sits in the organization.
#[allow(clippy::too_many_arguments)]
fn policy_decision_record(
    ctx: &RequestContext,
    auth: &Authenticated,
    parts: &Parts,
    validated: &Validated,
    placed: Option<&Resolution>,
    verdict: Verdict,
    decision: &Decision,
    revision: &str,
) -> record::Decision {
    let share = validated.share.as_ref();
    record::Decision {
        resource_arn: validated.resource.clone(),
        shared_with: share.and_then(|s| s.shared_with.clone()),
        target_type: share
            .and_then(|s| s.target.as_ref())
            .map(|t| t.kind.as_str().to_string()),
        permission_type: share.and_then(|s| s.permission_type.clone()),
        client_request_token: validated.client_request_token.clone(),
        decision: verdict,
        reasons: decision.reasons.clone(),
        policy_revision: Some(revision.to_string()),
        in_organization: placed.and_then(|p| p.in_organization),
        ou_path: placed.map(|p| p.ou_path.clone()).unwrap_or_default(),
        ..decision_record(ctx, auth, parts)
    }
}

/// The answer to a request abandoned at shutdown (its client has most likely gone already).
pub fn shutdown_response() -> Response<Body> {
    let e = GatewayError::UpstreamUnavailable("the gateway is shutting down".into());
    error_body(&e, &uuid::Uuid::new_v4().to_string())
}

/// Whether a body read failed because the client left (reset its HTTP/2 stream, went away
/// with the connection, or closed an HTTP/1 connection before the body was complete), not
/// because the body was malformed. Hyper reads the body before it notices the reset, so
/// this is where most cancellations show.
fn client_went_away(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(e);
    while let Some(e) = cause {
        if let Some(e) = e.downcast_ref::<hyper::Error>()
            && (e.is_incomplete_message() || e.is_canceled() || e.is_closed())
        {
            return true;
        }
        if let Some(e) = e.downcast_ref::<h2::Error>() {
            // A reset or GOAWAY the peer sent, or the connection itself failing. A reset the
            // gateway sent (a protocol error in the body) is the request's fault.
            return e.is_io() || (e.is_remote() && (e.is_reset() || e.is_go_away()));
        }
        if e.is::<std::io::Error>() {
            return true;
        }
        cause = e.source();
    }
    false
}

/// The answer when `server.max_in_flight` requests are already being handled.
pub fn overloaded_response(max_in_flight: usize) -> Response<Body> {
    let e = GatewayError::Overloaded(format!(
        "the gateway is handling its maximum of {max_in_flight} requests; retry"
    ));
    error_body(&e, &uuid::Uuid::new_v4().to_string())
}

/// The answer when the request task itself failed (a bug); never leaks detail.
pub fn internal_error_response() -> Response<Body> {
    let e = GatewayError::Internal("the gateway failed to process the request".into());
    error_body(&e, &uuid::Uuid::new_v4().to_string())
}
