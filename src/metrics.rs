//! Every Prometheus metric the gateway exports, defined in one place.
//!
//! Label values come from closed sets: operation names from the service model (or `unknown`),
//! decisions from [`crate::error::GatewayError::decision_label`] plus `allow` / `deny` /
//! `would_deny`, HTTP status codes. Never raw paths, ARNs or caller input.

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

const LATENCY_BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];
const POLICY_BUCKETS: &[f64] = &[
    0.000_005, 0.00001, 0.000_025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.005, 0.01,
];

/// Waiting for the disk: fsync takes ~0.1 ms on a quiet local disk, many ms on a busy one.
const AUDIT_BUCKETS: &[f64] = &[
    0.000_025, 0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1,
];

pub struct Metrics {
    registry: Registry,
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub policy_evaluation: Histogram,
    pub upstream_requests: IntCounterVec,
    pub upstream_duration: HistogramVec,
    pub audit_write_failures: IntCounter,
    pub audit_stdout_dropped: IntCounter,
    pub audit_wait: Histogram,
    pub in_flight: IntGauge,
    pub organization_snapshot_age: prometheus::Gauge,
    pub organization_accounts: IntGauge,
    pub organization_lookups: IntCounterVec,
    pub policy_info: IntGaugeVec,
    pub policy_reloads: IntCounterVec,
    pub callers_reloads: IntCounterVec,
    pub tls_reloads: IntCounterVec,
    pub auth_failures: IntCounterVec,
    pub throttled: IntCounterVec,
    pub shed: IntCounterVec,
    pub cancelled: IntCounter,
    pub connections_open: IntGauge,
    pub connections_idle_closed: IntCounter,
    pub credential_exchanges: IntCounterVec,
    pub shares: IntGaugeVec,
    pub share_violations: IntGaugeVec,
    pub scan_last_success: prometheus::Gauge,
    pub scan_errors: IntCounter,
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "waguard_requests_total",
                "Requests by operation and decision",
            ),
            &["operation", "decision"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "waguard_request_duration_seconds",
                "Time from request received to response head",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        )?;
        let policy_evaluation = Histogram::with_opts(
            HistogramOpts::new(
                "waguard_policy_evaluation_duration_seconds",
                "Time to evaluate the policy decision",
            )
            .buckets(POLICY_BUCKETS.to_vec()),
        )?;
        let upstream_requests = IntCounterVec::new(
            Opts::new(
                "waguard_upstream_requests_total",
                "Forwarded requests by operation and upstream status",
            ),
            &["operation", "status"],
        )?;
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "waguard_upstream_duration_seconds",
                "Time for the upstream to answer",
            )
            .buckets(LATENCY_BUCKETS.to_vec()),
            &["operation"],
        )?;
        let audit_write_failures = IntCounter::new(
            "waguard_audit_write_failures_total",
            "Audit batches that could not be written",
        )?;
        let audit_stdout_dropped = IntCounter::new(
            "waguard_audit_stdout_dropped_total",
            "Audit records left out of the stdout copy because its reader fell behind (the file has them)",
        )?;
        let audit_wait = Histogram::with_opts(
            HistogramOpts::new(
                "waguard_audit_wait_duration_seconds",
                "Time an allowed request waits for its decision record to be on disk",
            )
            .buckets(AUDIT_BUCKETS.to_vec()),
        )?;
        let in_flight = IntGauge::new("waguard_in_flight_requests", "Requests being processed")?;
        let organization_snapshot_age = prometheus::Gauge::new(
            "waguard_organization_snapshot_age_seconds",
            "Age of the AWS Organizations snapshot policy decides with (-1: none yet)",
        )?;
        let organization_accounts = IntGauge::new(
            "waguard_organization_accounts",
            "Accounts in the latest AWS Organizations snapshot",
        )?;
        let organization_lookups = IntCounterVec::new(
            Opts::new(
                "waguard_organization_lookups_total",
                "Share targets resolved in the organization, by how: snapshot, cache, found, not_found, error, timeout, no_snapshot",
            ),
            &["result"],
        )?;
        let policy_info = IntGaugeVec::new(
            Opts::new(
                "waguard_policy_info",
                "The policy revision being served (value 1)",
            ),
            &["revision"],
        )?;
        let policy_reloads = IntCounterVec::new(
            Opts::new("waguard_policy_reloads_total", "Policy reloads by result"),
            &["result"],
        )?;
        let callers_reloads = IntCounterVec::new(
            Opts::new(
                "waguard_callers_reloads_total",
                "Callers file reloads by result",
            ),
            &["result"],
        )?;
        let tls_reloads = IntCounterVec::new(
            Opts::new(
                "waguard_tls_reloads_total",
                "TLS certificate reloads by result",
            ),
            &["result"],
        )?;
        let auth_failures = IntCounterVec::new(
            Opts::new(
                "waguard_auth_failures_total",
                "Requests that failed authentication, by the AWS error code answered",
            ),
            &["code"],
        )?;
        let throttled = IntCounterVec::new(
            Opts::new(
                "waguard_throttled_total",
                "Requests refused by [limits] (ThrottlingException), by team and operation",
            ),
            &["team", "operation"],
        )?;
        let shed = IntCounterVec::new(
            Opts::new(
                "waguard_requests_shed_total",
                "Requests answered 503 at once because server.max_in_flight were being handled",
            ),
            &["reason"],
        )?;
        let cancelled = IntCounter::new(
            "waguard_requests_cancelled_total",
            "Requests abandoned because their client reset or closed them before the decision was recorded",
        )?;
        let connections_open = IntGauge::new(
            "waguard_connections_open",
            "Client connections open (at most server.max_connections)",
        )?;
        let connections_idle_closed = IntCounter::new(
            "waguard_connections_idle_closed_total",
            "Client connections closed after server.idle_timeout without a request",
        )?;
        let credential_exchanges = IntCounterVec::new(
            Opts::new(
                "waguard_credential_exchanges_total",
                "Credential exchanges by result: issued, invalid, refused_by_sts, no_rule, sts_unavailable, busy",
            ),
            &["result"],
        )?;
        let shares = IntGaugeVec::new(
            Opts::new(
                "waguard_shares",
                "Shares that exist, by resource type, as the last complete background scan found them",
            ),
            &["resource_type"],
        )?;
        let share_violations = IntGaugeVec::new(
            Opts::new(
                "waguard_share_violations",
                "Live shares today's policy would not allow, by resource type, as the last complete background scan found them",
            ),
            &["resource_type"],
        )?;
        let scan_last_success = prometheus::Gauge::new(
            "waguard_scan_last_success_timestamp_seconds",
            "When the last complete background scan ended (Unix time; 0: none yet)",
        )?;
        let scan_errors = IntCounter::new(
            "waguard_scan_errors_total",
            "Background scans that could not read every region or judge every share",
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new("waguard_build_info", "Build information (value 1)"),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);

        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(policy_evaluation.clone()))?;
        registry.register(Box::new(upstream_requests.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(audit_write_failures.clone()))?;
        registry.register(Box::new(audit_stdout_dropped.clone()))?;
        registry.register(Box::new(audit_wait.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        registry.register(Box::new(organization_snapshot_age.clone()))?;
        registry.register(Box::new(organization_accounts.clone()))?;
        registry.register(Box::new(organization_lookups.clone()))?;
        registry.register(Box::new(policy_info.clone()))?;
        registry.register(Box::new(policy_reloads.clone()))?;
        registry.register(Box::new(callers_reloads.clone()))?;
        registry.register(Box::new(tls_reloads.clone()))?;
        registry.register(Box::new(auth_failures.clone()))?;
        registry.register(Box::new(throttled.clone()))?;
        registry.register(Box::new(shed.clone()))?;
        registry.register(Box::new(cancelled.clone()))?;
        registry.register(Box::new(connections_open.clone()))?;
        registry.register(Box::new(connections_idle_closed.clone()))?;
        registry.register(Box::new(credential_exchanges.clone()))?;
        registry.register(Box::new(shares.clone()))?;
        registry.register(Box::new(share_violations.clone()))?;
        registry.register(Box::new(scan_last_success.clone()))?;
        registry.register(Box::new(scan_errors.clone()))?;
        registry.register(Box::new(build_info))?;
        shed.with_label_values(&["in_flight"]);
        for result in ["success", "error"] {
            policy_reloads.with_label_values(&[result]);
            callers_reloads.with_label_values(&[result]);
            tls_reloads.with_label_values(&[result]);
        }
        Ok(Metrics {
            registry,
            requests,
            request_duration,
            policy_evaluation,
            upstream_requests,
            upstream_duration,
            audit_write_failures,
            audit_stdout_dropped,
            audit_wait,
            in_flight,
            organization_snapshot_age,
            organization_accounts,
            organization_lookups,
            policy_info,
            policy_reloads,
            callers_reloads,
            tls_reloads,
            auth_failures,
            throttled,
            shed,
            cancelled,
            connections_open,
            connections_idle_closed,
            credential_exchanges,
            shares,
            share_violations,
            scan_last_success,
            scan_errors,
        })
    }

    /// Marks `revision` as the policy being served.
    pub fn set_policy_revision(&self, revision: &str) {
        self.policy_info.reset();
        self.policy_info.with_label_values(&[revision]).set(1);
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut buf);
        String::from_utf8(buf).unwrap_or_default()
    }
}
