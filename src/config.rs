//! `waguard.toml` parsed once into typed settings; every error names the file and the key.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Parse { file: PathBuf, message: String },
    #[error("{file}: key `{key}`: {message}")]
    Invalid {
        file: PathBuf,
        key: &'static str,
        message: String,
    },
}

/// The whole gateway configuration, with every relative path already resolved.
#[derive(Debug, Clone)]
pub struct Config {
    pub file: PathBuf,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub policy: PolicyConfig,
    pub callers: CallersConfig,
    pub audit: AuditConfig,
    pub organizations: OrganizationsConfig,
    pub limits: crate::limits::LimitsConfig,
    pub identity: crate::identity::IdentityConfig,
    pub scan: ScanConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    #[serde(default)]
    pub admin_listen: Option<SocketAddr>,
    #[serde(default)]
    pub tls_cert_file: Option<PathBuf>,
    #[serde(default)]
    pub tls_key_file: Option<PathBuf>,
    /// Largest request body accepted, in bytes.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Largest total size of request headers accepted, in bytes.
    #[serde(default = "default_max_header_bytes")]
    pub max_header_bytes: usize,
    /// Time allowed to receive a request's headers, and again its body.
    #[serde(default = "default_request_timeout", with = "secs")]
    pub request_timeout: Duration,
    /// How long in-flight requests may take to finish after SIGTERM.
    #[serde(default = "default_shutdown_grace", with = "secs")]
    pub shutdown_grace: Duration,
    /// Open client connections at most; further connections wait in the kernel's accept
    /// queue until one closes.
    #[serde(default = "default_max_connections")]
    pub max_connections: usize,
    /// Requests being handled at most (all connections together); beyond it a request is
    /// answered 503 ServiceUnavailableException at once, which SDKs retry.
    #[serde(default = "default_max_in_flight")]
    pub max_in_flight: usize,
    /// A connection with no request in progress for this long is closed (HTTP/1 keep-alive
    /// and HTTP/2 alike).
    #[serde(default = "default_idle_timeout", with = "secs")]
    pub idle_timeout: Duration,
    /// Threads of the async runtime that serve requests. Default: two, or one where the
    /// process may use only one CPU. Not one per core of the machine: a Kubernetes node's
    /// dozens of cores would mean dozens of threads handing a few requests a minute between
    /// them.
    #[serde(default = "default_worker_threads")]
    pub worker_threads: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UpstreamConfig {
    /// Fixed upstream base URL; default is `https://wellarchitected.{region}.amazonaws.com`.
    #[serde(default)]
    pub endpoint: Option<String>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub allowed_regions: Option<Vec<String>>,
    #[serde(default = "default_connect_timeout", with = "secs")]
    pub connect_timeout: Duration,
    #[serde(default = "default_upstream_timeout", with = "secs")]
    pub timeout: Duration,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyConfig {
    pub dir: PathBuf,
    /// `enforce` (default) or `dry-run`: in dry-run, denials are recorded as would-deny and
    /// the request proceeds.
    #[serde(default)]
    pub mode: PolicyMode,
    /// Per-operation overrides of `mode`, e.g. `{ CreateLensShare = "dry-run" }`.
    #[serde(default)]
    pub operation_modes: BTreeMap<String, PolicyMode>,
    /// Watch the policy dir and the callers file and reload on change (SIGHUP always reloads).
    #[serde(default = "default_true")]
    pub watch: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PolicyMode {
    #[default]
    Enforce,
    DryRun,
}

impl PolicyConfig {
    /// The mode for one operation.
    pub fn mode_for(&self, operation: &str) -> PolicyMode {
        self.operation_modes
            .get(operation)
            .copied()
            .unwrap_or(self.mode)
    }
}

/// What to do when the audit record of a decision cannot be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AuditFailure {
    /// Refuse the request (default).
    #[default]
    FailClosed,
    /// Forward anyway, and count and log the missing record.
    FailOpen,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallersConfig {
    pub file: PathBuf,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditConfig {
    pub file: PathBuf,
    #[serde(default)]
    pub stdout: bool,
    /// Bytes of records the stdout copy may hold while its reader falls behind; beyond it,
    /// records are left out of stdout (never out of the file) and counted.
    #[serde(default = "default_stdout_buffer_bytes")]
    pub stdout_buffer_bytes: usize,
    #[serde(default)]
    pub on_failure: AuditFailure,
    /// Rotate the file when it reaches this size (bytes); 0 = never.
    #[serde(default = "default_max_file_bytes")]
    pub max_file_bytes: u64,
    /// Rotated files to keep; older ones are removed (and the removal recorded). 0 = keep all.
    #[serde(default)]
    pub max_files: usize,
    /// The log's name: the origin line of its signed checkpoints.
    #[serde(default = "default_log_name")]
    pub log_name: String,
    /// The Ed25519 signer key (C2SP signed-note format, from `waguard audit keygen`) that signs
    /// checkpoints; without it no checkpoints are written.
    #[serde(default)]
    pub signing_key_file: Option<PathBuf>,
    /// How often a checkpoint is written while records are being written.
    #[serde(default = "default_checkpoint_interval", with = "secs")]
    pub checkpoint_interval: Duration,
    /// How often counted refusals (failed authentication, throttling) become one record.
    #[serde(default = "default_summary_interval", with = "secs")]
    pub summary_interval: Duration,
}

/// `[organizations]`: reading the AWS Organization so policy can decide by OU.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OrganizationsConfig {
    #[serde(default)]
    pub enabled: bool,
    /// Another endpoint than AWS Organizations' (tests, VPC endpoints).
    #[serde(default)]
    pub endpoint: Option<String>,
    /// A role to assume for reading Organizations (in the management account or a delegated
    /// administrator); default: the gateway's own credentials.
    #[serde(default)]
    pub role_arn: Option<String>,
    #[serde(default = "default_refresh_interval", with = "secs")]
    pub refresh_interval: Duration,
    #[serde(default = "default_lookup_timeout", with = "secs")]
    pub lookup_timeout: Duration,
}

/// `[scan]`: judging the shares that already exist (`waguard scan`, and the gateway's
/// background scan).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScanConfig {
    /// Regions scanned; default: `upstream.allowed_regions`.
    #[serde(default)]
    pub regions: Option<Vec<String>>,
    /// The resource tag whose value is the owning team.
    #[serde(default = "default_team_tag")]
    pub team_tag: String,
    /// The gateway scans in the background this often (seconds); off when unset.
    #[serde(default, with = "opt_secs")]
    pub interval: Option<Duration>,
}

impl Default for ScanConfig {
    fn default() -> Self {
        ScanConfig {
            regions: None,
            team_tag: default_team_tag(),
            interval: None,
        }
    }
}

fn default_team_tag() -> String {
    "waguard:team".into()
}

impl Default for OrganizationsConfig {
    fn default() -> Self {
        OrganizationsConfig {
            enabled: false,
            endpoint: None,
            role_arn: None,
            refresh_interval: default_refresh_interval(),
            lookup_timeout: default_lookup_timeout(),
        }
    }
}

fn default_refresh_interval() -> Duration {
    Duration::from_secs(300)
}
fn default_lookup_timeout() -> Duration {
    Duration::from_secs(2)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    server: ServerConfig,
    #[serde(default = "default_upstream")]
    upstream: UpstreamConfig,
    policy: PolicyConfig,
    callers: CallersConfig,
    audit: AuditConfig,
    #[serde(default)]
    organizations: OrganizationsConfig,
    #[serde(default)]
    limits: crate::limits::LimitsConfig,
    #[serde(default)]
    identity: crate::identity::IdentityConfig,
    #[serde(default)]
    scan: ScanConfig,
}

fn default_upstream() -> UpstreamConfig {
    UpstreamConfig {
        endpoint: None,
        ca_file: None,
        allowed_regions: None,
        connect_timeout: default_connect_timeout(),
        timeout: default_upstream_timeout(),
    }
}
fn default_true() -> bool {
    true
}
fn default_max_file_bytes() -> u64 {
    100 * 1024 * 1024
}
fn default_stdout_buffer_bytes() -> usize {
    4 * 1024 * 1024
}
fn default_log_name() -> String {
    "waguard".into()
}
fn default_checkpoint_interval() -> Duration {
    Duration::from_secs(10)
}
fn default_max_body_bytes() -> usize {
    // ImportLens carries a lens JSON of up to 500 KB; everything else is far smaller.
    1024 * 1024
}
fn default_max_header_bytes() -> usize {
    16 * 1024
}
fn default_request_timeout() -> Duration {
    Duration::from_secs(30)
}
fn default_max_connections() -> usize {
    1024
}
/// More runtime threads than this only add memory and wake-ups.
pub const MAX_WORKER_THREADS: usize = 64;

fn default_max_in_flight() -> usize {
    256
}
fn default_worker_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}
fn default_idle_timeout() -> Duration {
    Duration::from_secs(60)
}
fn default_summary_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_shutdown_grace() -> Duration {
    Duration::from_secs(20)
}
fn default_connect_timeout() -> Duration {
    Duration::from_secs(5)
}
fn default_upstream_timeout() -> Duration {
    Duration::from_secs(30)
}

/// An endpoint override: an http(s) URL with a host and no path or query.
fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let uri: http::Uri = endpoint.parse().map_err(|e| format!("not a URL: {e}"))?;
    let scheme_ok = matches!(uri.scheme_str(), Some("https") | Some("http"));
    if !scheme_ok || uri.host().is_none() {
        return Err(format!(
            "{endpoint:?} must be an http:// or https:// URL with a host"
        ));
    }
    if uri.path() != "/" && !uri.path().is_empty() || uri.query().is_some() {
        return Err(format!("{endpoint:?} must not have a path or query"));
    }
    Ok(())
}

/// An optional duration in seconds.
mod opt_secs {
    use serde::{Deserialize, Deserializer, de::Error};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Duration>, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v)
            .map(Some)
            .map_err(|_| D::Error::custom(format!("{v} is not a valid number of seconds")))
    }
}

/// Durations are written as seconds (integer or fractional) in the config file.
mod secs {
    use serde::{Deserialize, Deserializer, de::Error};
    use std::time::Duration;

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Duration, D::Error> {
        let v = f64::deserialize(d)?;
        Duration::try_from_secs_f64(v)
            .map_err(|_| D::Error::custom(format!("{v} is not a valid number of seconds")))
    }
}

impl Config {
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            file: path.to_path_buf(),
            source,
        })?;
        Self::parse(path, &text)
    }

    /// Parses config text as if read from `path` (relative paths resolve against its folder).
    pub fn parse(path: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = toml::from_str(text).map_err(|e| ConfigError::Parse {
            file: path.to_path_buf(),
            message: e.to_string().trim_end().replace('\n', " "),
        })?;
        let base = path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &Path| -> PathBuf {
            if p.is_absolute() {
                p.to_path_buf()
            } else {
                base.join(p)
            }
        };
        let invalid = |key: &'static str, message: String| ConfigError::Invalid {
            file: path.to_path_buf(),
            key,
            message,
        };

        let mut server = raw.server;
        match (&server.tls_cert_file, &server.tls_key_file) {
            (Some(_), None) => {
                return Err(invalid(
                    "server.tls_key_file",
                    "required when server.tls_cert_file is set".into(),
                ));
            }
            (None, Some(_)) => {
                return Err(invalid(
                    "server.tls_cert_file",
                    "required when server.tls_key_file is set".into(),
                ));
            }
            _ => {}
        }
        server.tls_cert_file = server.tls_cert_file.as_deref().map(resolve);
        server.tls_key_file = server.tls_key_file.as_deref().map(resolve);
        if server.max_body_bytes == 0 {
            return Err(invalid("server.max_body_bytes", "must be above 0".into()));
        }
        // HTTP/1 reads headers into a buffer of at least 8 KiB, so a smaller limit could not
        // be enforced there.
        if server.max_header_bytes < 8192 {
            return Err(invalid(
                "server.max_header_bytes",
                "must be at least 8192".into(),
            ));
        }
        if server.max_connections == 0 {
            return Err(invalid("server.max_connections", "must be above 0".into()));
        }
        if server.max_in_flight == 0 {
            return Err(invalid("server.max_in_flight", "must be above 0".into()));
        }
        if !(1..=MAX_WORKER_THREADS).contains(&server.worker_threads) {
            return Err(invalid(
                "server.worker_threads",
                format!("must be between 1 and {MAX_WORKER_THREADS}"),
            ));
        }
        if server.idle_timeout < Duration::from_secs(1) {
            return Err(invalid(
                "server.idle_timeout",
                "must be at least 1 second".into(),
            ));
        }

        let mut upstream = raw.upstream;
        if let Some(endpoint) = &upstream.endpoint {
            check_endpoint(endpoint).map_err(|m| invalid("upstream.endpoint", m))?;
        }
        upstream.ca_file = upstream.ca_file.as_deref().map(resolve);
        if let Some(regions) = &upstream.allowed_regions {
            for r in regions {
                if !crate::auth::is_region_name(r) {
                    return Err(invalid(
                        "upstream.allowed_regions",
                        format!("{r:?} is not a region name"),
                    ));
                }
            }
        }

        for op in raw.policy.operation_modes.keys() {
            if crate::operation::by_name(op).is_none() {
                return Err(invalid(
                    "policy.operation_modes",
                    format!("{op:?} is not a Well-Architected operation"),
                ));
            }
        }
        let policy = PolicyConfig {
            dir: resolve(&raw.policy.dir),
            ..raw.policy
        };
        let callers = CallersConfig {
            file: resolve(&raw.callers.file),
        };
        let audit = AuditConfig {
            file: resolve(&raw.audit.file),
            signing_key_file: raw.audit.signing_key_file.as_deref().map(resolve),
            ..raw.audit
        };
        if !crate::audit::note::is_key_name(&audit.log_name) {
            return Err(invalid(
                "audit.log_name",
                format!(
                    "{:?} must be non-empty, without spaces or '+'",
                    audit.log_name
                ),
            ));
        }
        if audit.stdout_buffer_bytes < 64 * 1024 {
            return Err(invalid(
                "audit.stdout_buffer_bytes",
                "must be at least 65536".into(),
            ));
        }
        if audit.summary_interval < Duration::from_secs(1) {
            return Err(invalid(
                "audit.summary_interval",
                "must be at least 1 second".into(),
            ));
        }
        if audit.checkpoint_interval < Duration::from_secs(1) {
            return Err(invalid(
                "audit.checkpoint_interval",
                "must be at least 1 second".into(),
            ));
        }
        let organizations = raw.organizations;
        if let Some(endpoint) = &organizations.endpoint {
            check_endpoint(endpoint).map_err(|m| invalid("organizations.endpoint", m))?;
        }
        if let Some(role) = &organizations.role_arn
            && !(role.starts_with("arn:aws") && role.contains(":iam::") && role.contains(":role/"))
        {
            return Err(invalid(
                "organizations.role_arn",
                format!("{role:?} is not an IAM role ARN"),
            ));
        }
        if organizations.refresh_interval < Duration::from_secs(10) {
            return Err(invalid(
                "organizations.refresh_interval",
                "must be at least 10 seconds (Organizations throttles per management account)"
                    .into(),
            ));
        }
        if organizations.lookup_timeout.is_zero()
            || organizations.lookup_timeout > Duration::from_secs(30)
        {
            return Err(invalid(
                "organizations.lookup_timeout",
                "must be above 0 and at most 30 seconds".into(),
            ));
        }
        let limits = raw.limits;
        if let Err((key, message)) = limits.check() {
            return Err(ConfigError::Parse {
                file: path.to_path_buf(),
                message: format!("key `{key}`: {message}"),
            });
        }
        let mut identity = raw.identity;
        identity.key_files = identity.key_files.iter().map(|p| resolve(p)).collect();
        if let Some(endpoint) = &identity.sts_endpoint {
            check_endpoint(endpoint).map_err(|m| invalid("identity.sts_endpoint", m))?;
        }
        if identity.session_duration < crate::identity::MIN_SESSION
            || identity.session_duration > crate::identity::MAX_SESSION
        {
            return Err(invalid(
                "identity.session_duration",
                "must be between 60 and 43200 seconds".into(),
            ));
        }
        if identity.enabled {
            match &identity.server_id {
                Some(id)
                    if !id.is_empty()
                        && id.len() <= 256
                        && id.bytes().all(|b| b.is_ascii_graphic()) => {}
                _ => {
                    return Err(invalid(
                        "identity.server_id",
                        "required when identity is enabled: what callers sign into the x-waguard-server-id header, e.g. the gateway's host name (visible ASCII, at most 256 characters)".into(),
                    ));
                }
            }
            if identity.key_files.is_empty() {
                return Err(invalid(
                    "identity.key_files",
                    "required when identity is enabled: files of at least 32 random bytes (head -c 32 /dev/urandom); the first signs, all verify".into(),
                ));
            }
        }
        let scan = raw.scan;
        if let Some(regions) = &scan.regions {
            if regions.is_empty() {
                return Err(invalid(
                    "scan.regions",
                    "must name at least one region".into(),
                ));
            }
            for r in regions {
                if !crate::auth::is_region_name(r) {
                    return Err(invalid(
                        "scan.regions",
                        format!("{r:?} is not a region name"),
                    ));
                }
            }
        }
        let tag_ok = (1..=128).contains(&scan.team_tag.chars().count())
            && !scan.team_tag.starts_with("aws:");
        if !tag_ok {
            return Err(invalid(
                "scan.team_tag",
                format!(
                    "{:?} must be a tag key of 1 to 128 characters, not starting with aws:",
                    scan.team_tag
                ),
            ));
        }
        if let Some(interval) = scan.interval {
            if interval < Duration::from_secs(1) {
                return Err(invalid("scan.interval", "must be at least 1 second".into()));
            }
            if scan.regions.is_none() && upstream.allowed_regions.is_none() {
                return Err(invalid(
                    "scan.regions",
                    "required for the background scan when upstream.allowed_regions is unset"
                        .into(),
                ));
            }
        }
        Ok(Config {
            file: path.to_path_buf(),
            server,
            upstream,
            policy,
            callers,
            audit,
            organizations,
            limits,
            identity,
            scan,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
        [server]
        listen = "127.0.0.1:8080"
        admin_listen = "127.0.0.1:9090"
        [upstream]
        allowed_regions = ["us-east-1"]
        [policy]
        dir = "policies"
        [callers]
        file = "callers.toml"
        [audit]
        file = "/var/log/audit.jsonl"
    "#;

    #[test]
    fn resolves_relative_paths_against_the_config_folder() {
        let c = Config::parse(Path::new("/etc/waguard/waguard.toml"), GOOD).unwrap();
        assert_eq!(c.policy.dir, Path::new("/etc/waguard/policies"));
        assert_eq!(c.callers.file, Path::new("/etc/waguard/callers.toml"));
        assert_eq!(c.audit.file, Path::new("/var/log/audit.jsonl"));
        assert_eq!(c.server.max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn unknown_key_names_key_and_file() {
        let text = GOOD.replace("[policy]", "[policy]\ndirr = \"x\"");
        let err = Config::parse(Path::new("/etc/w.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("/etc/w.toml"), "{err}");
        assert!(err.contains("dirr"), "{err}");
    }

    #[test]
    fn scan_settings_are_checked_and_name_their_key() {
        let c = Config::parse(Path::new("w.toml"), GOOD).unwrap();
        assert_eq!(c.scan, ScanConfig::default(), "off by default");
        assert_eq!(c.scan.team_tag, "waguard:team");
        let with = |table: &str| format!("{GOOD}\n[scan]\n{table}\n");
        let c = Config::parse(Path::new("w.toml"), &with("interval = 900")).unwrap();
        assert_eq!(c.scan.interval, Some(Duration::from_secs(900)));
        for (table, key) in [
            ("regions = []", "scan.regions"),
            ("regions = [\"Mars\"]", "scan.regions"),
            ("team_tag = \"\"", "scan.team_tag"),
            ("team_tag = \"aws:owner\"", "scan.team_tag"),
            ("interval = 0.5", "scan.interval"),
            ("colour = \"blue\"", "colour"),
        ] {
            let err = Config::parse(Path::new("w.toml"), &with(table))
                .unwrap_err()
                .to_string();
            assert!(err.contains(key), "{table}: {err}");
        }
        // The background scan needs regions from somewhere.
        let text = GOOD.replace("allowed_regions = [\"us-east-1\"]", "");
        let err = Config::parse(
            Path::new("w.toml"),
            &format!("{text}\n[scan]\ninterval = 60\n"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("scan.regions"), "{err}");
    }

    #[test]
    fn worker_threads_default_to_two_at_most_and_are_bounded() {
        let c = Config::parse(Path::new("w.toml"), GOOD).unwrap();
        let cpus = std::thread::available_parallelism().unwrap().get();
        assert_eq!(c.server.worker_threads, cpus.min(2));
        let with =
            |n: usize| GOOD.replace("[upstream]", &format!("worker_threads = {n}\n[upstream]"));
        let c = Config::parse(Path::new("w.toml"), &with(4)).unwrap();
        assert_eq!(c.server.worker_threads, 4);
        for n in [0, MAX_WORKER_THREADS + 1] {
            let err = Config::parse(Path::new("w.toml"), &with(n))
                .unwrap_err()
                .to_string();
            assert!(err.contains("server.worker_threads"), "{n}: {err}");
        }
    }

    #[test]
    fn bad_values_name_the_key() {
        let text = GOOD.replace("127.0.0.1:8080", "not-an-address");
        let err = Config::parse(Path::new("w.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("listen"), "{err}");

        let text = GOOD.replace("[\"us-east-1\"]", "[\"Mars\"]");
        let err = Config::parse(Path::new("w.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("upstream.allowed_regions"), "{err}");

        let text = GOOD.replace("[upstream]", "[upstream]\nendpoint = \"ftp://x\"");
        let err = Config::parse(Path::new("w.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("upstream.endpoint"), "{err}");

        let text = GOOD.replace(
            "[upstream]",
            "[upstream]\ntimeout = -1.0\nendpoint = \"http://127.0.0.1:1\"",
        );
        let err = Config::parse(Path::new("w.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("timeout"), "{err}");
    }

    #[test]
    fn tls_needs_both_files() {
        let text = GOOD.replace("[upstream]", "").replace(
            "admin_listen = \"127.0.0.1:9090\"",
            "tls_cert_file = \"c.pem\"\n[upstream]",
        );
        let err = Config::parse(Path::new("w.toml"), &text)
            .unwrap_err()
            .to_string();
        assert!(err.contains("server.tls_key_file"), "{err}");
    }
}
