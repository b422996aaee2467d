//! Test harness: a real gateway and a real simulated upstream on loopback, driven by the
//! official AWS SDK or by raw, correctly signed HTTP requests.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use aws_sigv4::http_request::{
    SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode, sign,
};
use aws_sigv4::sign::v4;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use waguard::app::{self, Running};
use waguard::config::Config;
use waguard::server::{self, Limits};
use waguard::sim::{DEMO_TEMPLATE_ARN, Sim};
use waguard::upstream::ServiceCredentials;

pub const TEMPLATE_ARN: &str = DEMO_TEMPLATE_ARN;
pub const SERVICE_KEY: &str = "AKWGTESTSERVICE0001";
pub const SERVICE_SECRET: &str = "service-secret-for-tests-0001";
pub const SERVICE_TOKEN: &str = "service-session-token-for-tests";
pub const PAYMENTS_KEY: &str = "AKWGPAYMENTS0000001";
pub const PAYMENTS_SECRET: &str = "payments-secret-0000001";
pub const PLATFORM_KEY: &str = "AKWGPLATFORM0000001";
pub const PLATFORM_SECRET: &str = "platform-secret-0000001";
pub const APPROVED_OU: &str = "ou-ab12-11111111";
pub const UNAPPROVED_OU: &str = "ou-ab12-99999999";

pub const CALLERS: &str = r#"
[[callers]]
access_key_id = "AKWGPAYMENTS0000001"
secret_access_key = "payments-secret-0000001"
principal = "alice@example.com"
team = "payments"
[callers.attributes]
cost_center = "cc-1001"

[[callers]]
access_key_id = "AKWGPLATFORM0000001"
secret_access_key = "platform-secret-0000001"
principal = "bob@example.com"
team = "platform"
"#;

/// The gateway's service credentials in tests: what the simulated upstream verifies.
pub fn service_credentials() -> ServiceCredentials {
    let creds = Credentials::new(
        SERVICE_KEY,
        SERVICE_SECRET,
        Some(SERVICE_TOKEN.into()),
        None,
        "tests",
    );
    ServiceCredentials::new(SharedCredentialsProvider::new(creds))
}

pub fn repo_policies() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("policies")
}

/// Options for a harness; defaults are a plain-HTTP gateway in front of a plain-HTTP sim.
#[derive(Default)]
pub struct Options {
    /// Extra lines for the `[server]` table.
    pub server_extra: String,
    /// Extra lines for the `[upstream]` table.
    pub upstream_extra: String,
    /// Upstream endpoint override; default: the in-process sim.
    pub endpoint: Option<String>,
    /// Serve the sim over TLS with a generated CA.
    pub sim_tls: bool,
    /// Extra lines for the `[policy]` table.
    pub policy_extra: String,
    /// The simulator also plays AWS Organizations with this tree.
    pub organization: Option<waguard::organization::Snapshot>,
    /// Enables `[organizations]` with these extra lines; its endpoint is the simulator unless
    /// the lines name one.
    pub organizations: Option<String>,
    /// Serve a copy of the repo's policies (in `<dir>/policies`) that the test may edit.
    pub own_policies: bool,
    /// Extra lines for the `[audit]` table.
    pub audit_extra: String,
    /// Extra top-level tables (e.g. `[limits]`), appended to the config.
    pub tables: String,
    /// Appended to the callers file (e.g. `[[identities]]` rules).
    pub callers_extra: String,
    /// Files written into the harness folder before the config is loaded.
    pub files: Vec<(String, Vec<u8>)>,
}

/// Copies a directory tree (files only).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

pub struct Harness {
    pub dir: tempfile::TempDir,
    pub sim: Arc<Sim>,
    pub sim_addr: SocketAddr,
    pub gateway: Running,
    pub audit_file: PathBuf,
    /// Scheme + host + port of the gateway.
    pub endpoint: String,
    sim_stop: std::sync::Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
}

/// A CA and a server certificate for 127.0.0.1/localhost, signed by it.
pub struct TestPki {
    pub ca_pem: String,
    pub cert_pem: String,
    pub key_pem: String,
}

pub fn pki() -> TestPki {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params
        .distinguished_name
        .push(rcgen::DnType::CommonName, "waguard test CA");
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let key = KeyPair::generate().unwrap();
    let params =
        CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
    let issuer = rcgen::Issuer::new(ca_params, ca_key);
    let cert = params.signed_by(&key, &issuer).unwrap();
    TestPki {
        ca_pem: ca.pem(),
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
    }
}

impl Harness {
    pub async fn start() -> Harness {
        Self::start_with(Options::default()).await
    }

    pub async fn start_with(opts: Options) -> Harness {
        server::install_crypto_provider();
        let dir = tempfile::tempdir().unwrap();
        let sim = Arc::new(
            Sim::new(
                SERVICE_KEY,
                SERVICE_SECRET,
                Some(SERVICE_TOKEN),
                &[TEMPLATE_ARN],
            )
            .unwrap(),
        );
        if let Some(o) = &opts.organization {
            sim.set_organization(o.clone());
        }
        let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let sim_addr = sim_listener.local_addr().unwrap();
        let mut upstream_extra = opts.upstream_extra.clone();
        if !upstream_extra.contains("timeout") {
            upstream_extra.push_str("\ntimeout = 3\nconnect_timeout = 2\n");
        }
        let sim_tls = if opts.sim_tls {
            let pki = pki();
            std::fs::write(dir.path().join("sim-cert.pem"), &pki.cert_pem).unwrap();
            std::fs::write(dir.path().join("sim-key.pem"), &pki.key_pem).unwrap();
            std::fs::write(dir.path().join("upstream-ca.pem"), &pki.ca_pem).unwrap();
            upstream_extra.push_str("\nca_file = \"upstream-ca.pem\"\n");
            Some(
                server::tls_acceptor(Arc::new(
                    server::TlsCertificate::load(
                        &dir.path().join("sim-cert.pem"),
                        &dir.path().join("sim-key.pem"),
                    )
                    .unwrap(),
                ))
                .unwrap(),
            )
        } else {
            None
        };
        let scheme = if opts.sim_tls { "https" } else { "http" };
        let endpoint = opts
            .endpoint
            .clone()
            .unwrap_or_else(|| format!("{scheme}://localhost:{}", sim_addr.port()));
        let (sim_stop, sim_stopped) = tokio::sync::oneshot::channel::<()>();
        let s = sim.clone();
        tokio::spawn(server::serve(
            sim_listener,
            sim_tls,
            Limits::default(),
            move |req, peer| s.clone().handle(req, peer),
            async move {
                let _ = sim_stopped.await;
            },
            Duration::from_secs(1),
        ));

        std::fs::write(
            dir.path().join("callers.toml"),
            format!("{CALLERS}\n{}", opts.callers_extra),
        )
        .unwrap();
        for (name, bytes) in &opts.files {
            std::fs::write(dir.path().join(name), bytes).unwrap();
        }
        let policies = if opts.own_policies {
            copy_dir(&repo_policies(), &dir.path().join("policies"));
            dir.path().join("policies")
        } else {
            repo_policies()
        };
        let config_text = format!(
            r#"
[server]
listen = "127.0.0.1:0"
admin_listen = "127.0.0.1:0"
{server_extra}

[upstream]
endpoint = "{endpoint}"
{upstream_extra}

[policy]
dir = "{policies}"
{policy_extra}

[callers]
file = "callers.toml"

[audit]
file = "audit.jsonl"
{audit_extra}
{organizations}
{tables}
"#,
            audit_extra = opts.audit_extra,
            tables = opts.tables,
            organizations = match &opts.organizations {
                None => String::new(),
                Some(extra) if extra.contains("endpoint") => {
                    format!("[organizations]\nenabled = true\n{extra}\n")
                }
                Some(extra) => format!(
                    "[organizations]\nenabled = true\nendpoint = \"{scheme}://localhost:{}\"\n{extra}\n",
                    sim_addr.port()
                ),
            },
            server_extra = opts.server_extra,
            policy_extra = opts.policy_extra,
            policies = policies.display(),
        );
        let config_path = dir.path().join("waguard.toml");
        std::fs::write(&config_path, config_text).unwrap();
        let config = Config::load(&config_path).unwrap();
        let gateway = app::start(&config, service_credentials()).await.unwrap();
        let gw_scheme = if config.server.tls_cert_file.is_some() {
            "https"
        } else {
            "http"
        };
        let endpoint = format!("{gw_scheme}://localhost:{}", gateway.addr.port());
        Harness {
            audit_file: config.audit.file.clone(),
            dir,
            sim,
            sim_addr,
            gateway,
            endpoint,
            sim_stop: std::sync::Mutex::new(Some(sim_stop)),
        }
    }

    /// Starts a second gateway on this harness's config file after `edit` rewrote its text,
    /// sharing the simulated upstream. It writes its own audit log, `audit-second.jsonl`
    /// (one writer per log), unless `edit` names another.
    pub async fn start_second_gateway(&self, edit: impl FnOnce(String) -> String) -> Running {
        let path = self.dir.path().join("waguard.toml");
        let text = edit(std::fs::read_to_string(&path).unwrap())
            .replace("file = \"audit.jsonl\"", "file = \"audit-second.jsonl\"");
        let config = Config::parse(&path, &text).unwrap();
        app::start(&config, service_credentials()).await.unwrap()
    }

    /// GET on the admin listener (`/metrics`, `/healthz`, `/readyz`).
    pub async fn admin_get(&self, path: &str) -> RawResponse {
        let req = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
        send_raw(self.gateway.admin_addr.unwrap(), req.as_bytes()).await
    }

    /// The official SDK client, pointed at the gateway with a caller key. Retries are off so
    /// each call is exactly one request.
    pub fn client(&self, key: &str, secret: &str) -> aws_sdk_wellarchitected::Client {
        self.client_with(key, secret, None)
    }

    pub fn client_with(
        &self,
        key: &str,
        secret: &str,
        http: Option<aws_smithy_runtime_api::client::http::SharedHttpClient>,
    ) -> aws_sdk_wellarchitected::Client {
        let mut conf = aws_sdk_wellarchitected::Config::builder()
            .behavior_version(aws_sdk_wellarchitected::config::BehaviorVersion::latest())
            .region(aws_sdk_wellarchitected::config::Region::new("us-east-1"))
            .endpoint_url(&self.endpoint)
            .credentials_provider(Credentials::new(key, secret, None, None, "test-caller"))
            .retry_config(aws_sdk_wellarchitected::config::retry::RetryConfig::disabled());
        if let Some(http) = http {
            conf = conf.http_client(http);
        }
        aws_sdk_wellarchitected::Client::from_conf(conf.build())
    }

    pub fn payments(&self) -> aws_sdk_wellarchitected::Client {
        self.client(PAYMENTS_KEY, PAYMENTS_SECRET)
    }

    /// Every audit record of the requests answered so far (waits for queued records).
    /// Every record in the audit file after a flush, each checked against `audit.schema.json`.
    /// Every audit record so far, with the refusals counted since the last summary written
    /// as summary records now (as if `audit.summary_interval` ended).
    pub async fn audit_records(&self) -> Vec<serde_json::Value> {
        self.gateway.gateway.flush_refusals();
        self.gateway.gateway.audit.flush().await;
        audit_lines(&self.audit_file)
    }

    pub async fn stop(&self) {
        self.gateway.shutdown().await;
        if let Some(s) = self.sim_stop.lock().unwrap().take() {
            let _ = s.send(());
        }
    }
}

/// A raw HTTP/1.1 exchange's answer.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    pub fn error_type(&self) -> Option<&str> {
        self.header("x-amzn-errortype")
    }
}

/// A request signed exactly over the bytes that will be sent (no path normalisation), so the
/// signature is valid and only the gateway's validation can stop it.
pub struct RawRequest<'a> {
    pub method: &'a str,
    pub path_and_query: &'a str,
    pub headers: Vec<(&'a str, String)>,
    pub body: Vec<u8>,
    pub key: &'a str,
    pub secret: &'a str,
    pub time: SystemTime,
}

impl<'a> RawRequest<'a> {
    pub fn new(method: &'a str, path_and_query: &'a str, body: impl Into<Vec<u8>>) -> Self {
        RawRequest {
            method,
            path_and_query,
            headers: vec![("content-type", "application/json".to_string())],
            body: body.into(),
            key: PAYMENTS_KEY,
            secret: PAYMENTS_SECRET,
            time: SystemTime::now(),
        }
    }

    pub fn header(mut self, name: &'a str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// Signs and renders the request as the bytes to write on the wire.
    pub fn to_bytes(&self, addr: SocketAddr) -> Vec<u8> {
        let mut out = format!("{} {} HTTP/1.1\r\n", self.method, self.path_and_query).into_bytes();
        for (k, v) in self.signed_headers(addr) {
            out.extend_from_slice(format!("{k}: {v}\r\n").as_bytes());
        }
        out.extend_from_slice(
            format!(
                "content-length: {}\r\nconnection: close\r\n\r\n",
                self.body.len()
            )
            .as_bytes(),
        );
        out.extend_from_slice(&self.body);
        out
    }

    /// The request's headers (`host` first) with the signature headers added.
    pub fn signed_headers(&self, addr: SocketAddr) -> Vec<(String, String)> {
        let host = format!("localhost:{}", addr.port());
        let mut headers: Vec<(String, String)> = vec![("host".into(), host.clone())];
        for (k, v) in &self.headers {
            headers.push((k.to_string(), v.clone()));
        }
        let mut settings = SigningSettings::default();
        settings.uri_path_normalization_mode = UriPathNormalizationMode::Disabled;
        let identity = Credentials::new(self.key, self.secret, None, None, "raw").into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region("us-east-1")
            .name("wellarchitected")
            .time(self.time)
            .settings(settings)
            .build()
            .unwrap()
            .into();
        let url = format!("http://{host}{}", self.path_and_query);
        let signable = SignableRequest::new(
            self.method,
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(&self.body),
        )
        .unwrap();
        let (instructions, _) = sign(signable, &params).unwrap().into_parts();
        for (k, v) in instructions.headers() {
            headers.push((k.to_string(), v.to_string()));
        }
        headers
    }

    pub async fn send(&self, addr: SocketAddr) -> RawResponse {
        send_raw(addr, &self.to_bytes(addr)).await
    }
}

/// Writes bytes to the gateway and reads the whole answer (the request says `connection: close`).
pub async fn send_raw(addr: SocketAddr, bytes: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut buf = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut buf)).await;
    parse_response(&buf)
}

pub fn parse_response(buf: &[u8]) -> RawResponse {
    let text = String::from_utf8_lossy(buf).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let headers = lines
        .filter_map(|l| {
            l.split_once(':')
                .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        })
        .collect();
    RawResponse {
        status,
        headers,
        body: body.to_string(),
    }
}

/// The percent-encoded template path, as SDKs send it.
pub fn template_path(arn: &str) -> String {
    format!(
        "/templates/shares/{}",
        percent_encoding::utf8_percent_encode(arn, percent_encoding::NON_ALPHANUMERIC)
    )
}

/// A free loopback port (bound and released; good enough for tests).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// An in-process simulated upstream, for gateways running as separate processes.
pub struct SimServer {
    pub sim: Arc<Sim>,
    pub addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl SimServer {
    pub async fn start() -> SimServer {
        Self::start_at("127.0.0.1:0", None).await
    }

    /// A simulator on `addr` that expects the service key with `session_token` (the in-process
    /// harness's gateways sign with one).
    pub async fn start_at(addr: &str, session_token: Option<&str>) -> SimServer {
        server::install_crypto_provider();
        let sim = Arc::new(
            Sim::new(SERVICE_KEY, SERVICE_SECRET, session_token, &[TEMPLATE_ARN]).unwrap(),
        );
        let listener = tokio::net::TcpListener::bind(addr).await.unwrap();
        let addr = listener.local_addr().unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let s = sim.clone();
        tokio::spawn(server::serve(
            listener,
            None,
            Limits::default(),
            move |req, peer| s.clone().handle(req, peer),
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(1),
        ));
        SimServer {
            sim,
            addr,
            stop: Some(stop),
        }
    }
}

impl Drop for SimServer {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

/// `waguard serve` as its own process (for signals, kill -9 and file-system faults).
pub struct GatewayProcess {
    pub child: std::process::Child,
    pub addr: SocketAddr,
    pub admin: SocketAddr,
    pub config: PathBuf,
}

/// Writes a config for a gateway process in `dir`, forwarding to `upstream`.
pub fn write_process_config(
    dir: &Path,
    upstream: &str,
    audit_file: &Path,
    extra_audit: &str,
) -> PathBuf {
    std::fs::write(dir.join("callers.toml"), CALLERS).unwrap();
    let text = format!(
        r#"
[server]
listen = "127.0.0.1:{port}"
admin_listen = "127.0.0.1:{admin}"
shutdown_grace = 10

[upstream]
endpoint = "{upstream}"
timeout = 5

[policy]
dir = "{policies}"

[callers]
file = "callers.toml"

[audit]
file = "{audit}"
{extra_audit}
"#,
        port = free_port(),
        admin = free_port(),
        policies = repo_policies().display(),
        audit = audit_file.display(),
    );
    let path = dir.join("waguard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

impl GatewayProcess {
    /// Starts `waguard serve`, optionally as an unprivileged user (so file permissions apply
    /// even when the tests run as root), and waits until it answers `/healthz`.
    pub async fn start(config: &Path, unprivileged: bool) -> GatewayProcess {
        Self::spawn(config, unprivileged, false, &[], None).await
    }

    /// Like `start`, with the gateway's stdout piped to `child.stdout`.
    pub async fn start_with_stdout(config: &Path) -> GatewayProcess {
        Self::spawn(config, false, true, &[], None).await
    }

    /// Like `start`, with extra environment variables.
    pub async fn start_with_env(config: &Path, env: &[(&str, &str)]) -> GatewayProcess {
        Self::spawn(config, false, false, env, None).await
    }

    /// Like `start_with_env`, with the gateway's stderr (its log) written to `log`.
    pub async fn start_logging_to(
        config: &Path,
        env: &[(&str, &str)],
        log: &Path,
    ) -> GatewayProcess {
        Self::spawn(config, false, false, env, Some(log)).await
    }

    async fn spawn(
        config: &Path,
        unprivileged: bool,
        pipe_stdout: bool,
        env: &[(&str, &str)],
        stderr: Option<&Path>,
    ) -> GatewayProcess {
        let text = std::fs::read_to_string(config).unwrap();
        let parsed = Config::parse(config, &text).unwrap();
        let bin = env!("CARGO_BIN_EXE_waguard");
        let mut cmd = if unprivileged && is_root() {
            let mut c = std::process::Command::new("setpriv");
            c.args([
                "--reuid=65534",
                "--regid=65534",
                "--clear-groups",
                "--inh-caps=-all",
                "--bounding-set=-all",
                bin,
            ]);
            c
        } else {
            std::process::Command::new(bin)
        };
        cmd.arg("serve")
            .arg("--config")
            .arg(config)
            .env("AWS_ACCESS_KEY_ID", SERVICE_KEY)
            .env("AWS_SECRET_ACCESS_KEY", SERVICE_SECRET)
            .env_remove("AWS_SESSION_TOKEN")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", "/dev/null")
            .env("AWS_SHARED_CREDENTIALS_FILE", "/dev/null")
            .env("RUST_LOG", "warn")
            .envs(env.iter().copied())
            .stdout(if pipe_stdout {
                std::process::Stdio::piped()
            } else {
                std::process::Stdio::null()
            })
            .stderr(match stderr {
                Some(path) => std::fs::File::create(path).unwrap().into(),
                None => std::process::Stdio::inherit(),
            });
        let child = cmd.spawn().unwrap();
        let p = GatewayProcess {
            child,
            addr: parsed.server.listen,
            admin: parsed.server.admin_listen.unwrap(),
            config: config.to_path_buf(),
        };
        for _ in 0..200 {
            if p.admin_get("/healthz").await.0 == 200 {
                return p;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("gateway process did not come up");
    }

    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        let req = format!("GET {path} HTTP/1.1\r\nhost: localhost\r\nconnection: close\r\n\r\n");
        match TcpStream::connect(self.admin).await {
            Ok(mut s) => {
                let _ = s.write_all(req.as_bytes()).await;
                let mut buf = Vec::new();
                let _ = tokio::time::timeout(Duration::from_secs(5), s.read_to_end(&mut buf)).await;
                let r = parse_response(&buf);
                (r.status, r.body)
            }
            Err(_) => (0, String::new()),
        }
    }

    pub fn signal(&self, sig: &str) {
        std::process::Command::new("kill")
            .arg(format!("-{sig}"))
            .arg(self.child.id().to_string())
            .status()
            .unwrap();
    }
}

impl Drop for GatewayProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

pub fn is_root() -> bool {
    std::process::Command::new("id")
        .arg("-u")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
        .unwrap_or(false)
}

/// A correctly signed CreateTemplateShare for `shared_with` with client token `token`.
pub fn share_request(shared_with: &str, token: &str) -> (String, String) {
    (
        template_path(TEMPLATE_ARN),
        format!("{{\"SharedWith\":\"{shared_with}\",\"ClientRequestToken\":\"{token}\"}}"),
    )
}

/// Value of a Prometheus sample line, e.g. `waguard_requests_total{decision="allow",operation="X"}`.
pub fn metric(text: &str, series: &str) -> Option<f64> {
    text.lines().find_map(|l| {
        l.strip_prefix(series)
            .and_then(|rest| rest.trim().parse().ok())
    })
}

/// The complete records of an audit file as they are on disk, each checked against `audit.schema.json`
/// (so every test that reads the log also checks the schema log pipelines rely on).
pub fn audit_lines(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    // Only complete lines: a reader polling the file may catch a write half done.
    let complete = text.rfind('\n').map_or("", |end| &text[..end]);
    complete
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let violations = waguard::audit::record::schema_violations(&v);
            assert!(
                violations.is_empty(),
                "audit record breaks audit.schema.json: {violations:?}\n{l}"
            );
            v
        })
        .collect()
}
