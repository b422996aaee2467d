//! Commands: `serve`, `demo`, `sim`, `credentials`, `scan`, `scp`, `check-config`,
//! `policy test/eval`, `audit verify/keygen`.

use std::io::IsTerminal;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use aws_credential_types::Credentials;
use aws_credential_types::provider::SharedCredentialsProvider;
use clap::{Parser, Subcommand};

use crate::app;
use crate::auth::Callers;
use crate::config::Config;
use crate::identity::client::{self, ClientOptions};
use crate::policy::Policy;
use crate::policy::testing::{self, EvalError};
use crate::server::{self, Limits};
use crate::sim::{DEMO_TEMPLATE_ARN, Sim};
use crate::upstream::ServiceCredentials;

#[derive(Parser)]
#[command(
    name = "waguard",
    version,
    about = "Policy gateway for AWS Well-Architected sharing"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the gateway.
    Serve {
        #[arg(long, default_value = "waguard.toml")]
        config: PathBuf,
    },
    /// Run the gateway on the example config and policy, against a simulated Well-Architected.
    Demo {
        /// Address the gateway listens on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Send one allowed and one denied share through the gateway, print the answers, exit.
        #[arg(long)]
        exit: bool,
    },
    /// Run the simulated Well-Architected upstream on its own.
    Sim {
        #[arg(long, default_value = "127.0.0.1:8081")]
        listen: SocketAddr,
        /// Service access key id requests must be signed with.
        #[arg(long, env = "AWS_ACCESS_KEY_ID")]
        access_key_id: String,
        #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true)]
        secret_access_key: String,
        #[arg(long, env = "AWS_SESSION_TOKEN", hide_env_values = true)]
        session_token: Option<String>,
        /// Review template ARNs that exist (repeatable); default: the demo template.
        #[arg(long = "template")]
        templates: Vec<String>,
        /// Also play AWS Organizations for this tree (JSON: id, root, management_account, ous
        /// and accounts by id with name, parent and status; see
        /// examples/demo/organization.json).
        #[arg(long)]
        organization: Option<PathBuf>,
        /// An AWS identity the simulated STS knows, ACCESS_KEY:SECRET:ARN (repeatable):
        /// GetCallerIdentity signed with that key pair answers ARN.
        #[arg(long = "identity", value_name = "ACCESS_KEY:SECRET:ARN", value_parser = parse_identity)]
        identities: Vec<SimIdentityArg>,
        /// Also serve this estate (TOML: [[resources]] with type, arn, name, tags and
        /// [[resources.shares]]; see tests/fixtures/estate.toml).
        #[arg(long, value_name = "FILE")]
        seed: Option<PathBuf>,
    },
    /// Print short-lived gateway credentials for the AWS identity you already have, in the
    /// AWS `credential_process` format: signs an sts:GetCallerIdentity request with the
    /// profile's credentials (not sent to AWS) and exchanges it at the gateway.
    Credentials {
        /// The gateway's URL, e.g. https://waguard.example.internal.
        #[arg(long)]
        gateway: String,
        /// The AWS profile that proves who you are (SSO, role, static keys, ...); default: the
        /// default credential chain. Must not itself be a profile using `waguard credentials`.
        #[arg(long)]
        profile: Option<String>,
        /// Region of the STS endpoint signed for; default: AWS_REGION, AWS_DEFAULT_REGION,
        /// the profile's region, else us-east-1.
        #[arg(long)]
        region: Option<String>,
        /// The gateway's identity.server_id; default: the host of --gateway.
        #[arg(long)]
        server_id: Option<String>,
        /// The STS endpoint to sign for (it must be the gateway's identity.sts_endpoint);
        /// default: AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL, else https://sts.<region>.amazonaws.com/.
        #[arg(long)]
        sts_endpoint: Option<String>,
        /// Extra trust anchors (PEM) for the gateway's certificate; default: AWS_CA_BUNDLE.
        #[arg(long)]
        ca_file: Option<PathBuf>,
    },
    /// Rego policy tools for policy authors and CI.
    Policy {
        #[command(subcommand)]
        command: PolicyCommand,
    },
    /// Audit log tools.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
    },
    /// Validate config, callers and policy without serving.
    CheckConfig {
        #[arg(long, default_value = "waguard.toml")]
        config: PathBuf,
    },
    /// Judge every existing share (review templates, workloads, custom lenses, profiles) in
    /// the configured regions with today's policy, using the gateway's service credentials.
    /// Exit 0: all compliant; 3: violations found; 1: errors (the scan is incomplete).
    Scan {
        #[arg(long, default_value = "waguard.toml")]
        config: PathBuf,
        /// Region to scan (repeatable); default: [scan] regions, else upstream.allowed_regions.
        #[arg(long = "region")]
        regions: Vec<String>,
        #[arg(long, value_enum, default_value = "table")]
        format: crate::drift::command::Format,
        /// Delete every violating share (live and denied by policy) after listing them; each
        /// deletion is a `revocation` record in the configured audit log. Without it nothing
        /// changes.
        #[arg(long)]
        revoke: bool,
        /// With --revoke: when there are more violations than this, delete none (a policy
        /// mistake can make every share a violation).
        #[arg(long, default_value_t = crate::drift::command::DEFAULT_MAX_REVOCATIONS)]
        max_revocations: usize,
    },
    /// Print a service control policy that denies every share-creating and share-updating
    /// Well-Architected action (from the service model) to all but the gateway's role.
    Scp {
        /// The IAM role the gateway runs as (its IRSA / Pod Identity role).
        #[arg(long)]
        gateway_role_arn: String,
        /// Print the equivalent identity-based policy instead (to attach to roles and users,
        /// or as a permissions boundary, where there is no AWS Organizations).
        #[arg(long)]
        identity_policy: bool,
    },
}

#[derive(Subcommand)]
enum PolicyCommand {
    /// Run the Rego unit tests (rules named test_* in *_test.rego files); non-zero exit on any
    /// failure or when no test ran.
    Test {
        /// Policy directory.
        #[arg(default_value = "policies")]
        dir: PathBuf,
    },
    /// Print the decision for an input document, validated first against DIR/input.schema.json
    /// when the directory has one.
    Eval {
        /// The input document (JSON), as `waguard` would build it for a request.
        #[arg(long)]
        input: PathBuf,
        /// Policy directory.
        #[arg(long, default_value = "policies")]
        dir: PathBuf,
    },
}

#[derive(Subcommand)]
enum AuditCommand {
    /// Check the hash chain of audit files (oldest first) and their signed checkpoints; names
    /// the first broken record. Given one file, its rotated predecessors (`FILE.<seq>`) are
    /// checked with it.
    Verify {
        /// The log's verifier key (`PREFIX.pub` from `audit keygen`): every checkpoint's
        /// signature is checked.
        #[arg(long)]
        public_key: Option<PathBuf>,
        /// A signed checkpoint kept outside the log (the `note` of a shipped `checkpoint`
        /// record): the log must still hold every record it covers, unchanged.
        #[arg(long, requires = "public_key")]
        checkpoint: Option<PathBuf>,
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Generate the Ed25519 key that signs audit checkpoints: writes PREFIX.key (the signer
    /// key, mode 0600; `audit.signing_key_file`) and PREFIX.pub (the verifier key, for
    /// `audit verify --public-key`; keep a copy outside the cluster).
    Keygen {
        /// The key's name, normally the log's name (`audit.log_name`).
        #[arg(long)]
        name: String,
        prefix: PathBuf,
    },
}

/// `--identity ACCESS_KEY:SECRET:ARN` of `waguard sim`.
#[derive(Debug, Clone)]
struct SimIdentityArg {
    access_key_id: String,
    secret_access_key: String,
    arn: String,
}

/// Splits on the first two ':' only: the ARN has colons of its own.
fn parse_identity(s: &str) -> Result<SimIdentityArg, String> {
    let mut parts = s.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(key), Some(secret), Some(arn))
            if !key.is_empty() && !secret.is_empty() && arn.starts_with("arn:") =>
        {
            Ok(SimIdentityArg {
                access_key_id: key.into(),
                secret_access_key: secret.into(),
                arn: arn.into(),
            })
        }
        _ => Err("expected ACCESS_KEY:SECRET:ARN, e.g. AKIDEXAMPLE00000001:secret-of-16-chars:arn:aws:sts::123456789012:assumed-role/Dev/alice".into()),
    }
}

/// Entry point of the binary.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    // `credentials` runs as a credential_process: its stderr is for errors, not progress.
    init_tracing(if matches!(cli.command, Command::Credentials { .. }) {
        "warn"
    } else {
        "info"
    });
    // The gateway's config says how many runtime threads serve requests; other commands take
    // tokio's default.
    let (serve, worker_threads) = match &cli.command {
        Command::Serve { config } => match Config::load(config) {
            Ok(config) => {
                let threads = config.server.worker_threads;
                (Some(config), Some(threads))
            }
            Err(e) => {
                eprintln!("waguard: {e}");
                return ExitCode::FAILURE;
            }
        },
        _ => (None, None),
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = worker_threads {
        builder.worker_threads(threads);
    }
    let runtime = match builder.enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("waguard: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(config) = serve {
        return match runtime.block_on(serve_gateway(config)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("waguard: {e}");
                ExitCode::FAILURE
            }
        };
    }
    if let Command::Scan {
        config,
        regions,
        format,
        revoke,
        max_revocations,
    } = cli.command
    {
        let options = crate::drift::command::Options {
            config,
            regions,
            format,
            revoke,
            max_revocations,
        };
        return match runtime.block_on(async {
            server::install_crypto_provider();
            crate::drift::command::run(options, ServiceCredentials::default_chain().await).await
        }) {
            Ok(code) => ExitCode::from(code),
            Err(e) => {
                eprintln!("waguard scan: {e}");
                ExitCode::from(crate::drift::scan::EXIT_ERROR)
            }
        };
    }
    match runtime.block_on(run(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("waguard: {e}");
            ExitCode::FAILURE
        }
    }
}

fn init_tracing(default_level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // JSON for log shippers, plain text for people.
    if std::io::stderr().is_terminal() {
        let _ = builder.try_init();
    } else {
        let _ = builder.json().flatten_event(true).try_init();
    }
}

/// Runs the gateway until SIGTERM or SIGINT, then drains it.
async fn serve_gateway(config: Config) -> Result<(), String> {
    server::install_crypto_provider();
    let credentials = ServiceCredentials::default_chain().await;
    let running = app::start(&config, credentials)
        .await
        .map_err(|e| e.to_string())?;
    shutdown_signal().await;
    tracing::info!("shutting down");
    running.shutdown().await;
    Ok(())
}

async fn run(command: Command) -> Result<(), String> {
    server::install_crypto_provider();
    match command {
        Command::Serve { config } => {
            serve_gateway(Config::load(&config).map_err(|e| e.to_string())?).await
        }
        Command::Demo { listen, exit } => demo(listen, exit).await,
        Command::Sim {
            listen,
            access_key_id,
            secret_access_key,
            session_token,
            templates,
            organization,
            identities,
            seed,
        } => {
            let templates: Vec<&str> = if templates.is_empty() {
                vec![DEMO_TEMPLATE_ARN]
            } else {
                templates.iter().map(String::as_str).collect()
            };
            let sim = Arc::new(Sim::new(
                &access_key_id,
                &secret_access_key,
                session_token.as_deref(),
                &templates,
            )?);
            if let Some(path) = &organization {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("{}: {e}", path.display()))?;
                let tree: crate::organization::Snapshot = serde_json::from_str(&text)
                    .map_err(|e| format!("{}: not an organization tree: {e}", path.display()))?;
                sim.set_organization(tree);
            }
            for i in &identities {
                sim.add_identity(&i.access_key_id, &i.secret_access_key, &i.arn)
                    .map_err(|e| format!("--identity: {e}"))?;
            }
            if let Some(path) = &seed {
                let estate = crate::sim::Seed::load(path).map_err(|e| format!("--seed {e}"))?;
                sim.seed(&estate)
                    .map_err(|e| format!("--seed {}: {e}", path.display()))?;
            }
            let listener = tokio::net::TcpListener::bind(listen)
                .await
                .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
            eprintln!(
                "simulated Well-Architected listening on http://{}{}",
                listener.local_addr().map_err(|e| e.to_string())?,
                match identities.len() {
                    0 => String::new(),
                    n => format!(" (also STS GetCallerIdentity for {n} identities)"),
                }
            );
            let handler = move |req, peer| sim.clone().handle(req, peer);
            server::serve(
                listener,
                None,
                Limits::default(),
                handler,
                shutdown_signal(),
                std::time::Duration::from_secs(5),
            )
            .await;
            Ok(())
        }
        Command::Credentials {
            gateway,
            profile,
            region,
            server_id,
            sts_endpoint,
            ca_file,
        } => {
            let options = ClientOptions {
                gateway,
                profile,
                region,
                server_id,
                sts_endpoint,
                ca_file,
            };
            let credentials = client::run(&options).await.map_err(|e| e.to_string())?;
            println!(
                "{}",
                client::to_line(&credentials).map_err(|e| e.to_string())?
            );
            Ok(())
        }
        Command::Policy { command } => policy_command(command),
        Command::Audit {
            command:
                AuditCommand::Verify {
                    public_key,
                    checkpoint,
                    files,
                },
        } => audit_verify(public_key, checkpoint, files),
        Command::Audit {
            command: AuditCommand::Keygen { name, prefix },
        } => {
            let (key, public) =
                crate::audit::checkpoint::keygen(&name, &prefix).map_err(|e| e.to_string())?;
            println!(
                "wrote {} (signer key, keep secret: audit.signing_key_file) and {} (verifier key: audit verify --public-key)",
                key.display(),
                public.display()
            );
            Ok(())
        }
        Command::Scp {
            gateway_role_arn,
            identity_policy,
        } => {
            if !crate::scp::is_role_arn(&gateway_role_arn) {
                return Err(format!(
                    "--gateway-role-arn {gateway_role_arn:?} is not an IAM role ARN (arn:aws:iam::<account>:role/<name>, no wildcards)"
                ));
            }
            let policy = if identity_policy {
                crate::scp::identity_policy(&gateway_role_arn)
            } else {
                crate::scp::service_control_policy(&gateway_role_arn)
            };
            let text = serde_json::to_string_pretty(&policy).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(())
        }
        Command::Scan { .. } => Err("waguard scan runs from main".into()),
        Command::CheckConfig { config } => {
            let c = Config::load(&config).map_err(|e| e.to_string())?;
            let callers = Callers::load(&c.callers.file).map_err(|e| e.to_string())?;
            let policy = Policy::load(&c.policy.dir).map_err(|e| e.to_string())?;
            let signing = match &c.audit.signing_key_file {
                Some(path) => {
                    let key = crate::audit::checkpoint::load_signing_key(path)
                        .map_err(|e| format!("audit.signing_key_file: {e}"))?;
                    format!(", audit checkpoints signed by {}", key.verifier().to_text())
                }
                None => ", audit checkpoints off (no audit.signing_key_file)".into(),
            };
            // The session keys are read as `serve` reads them, so a missing or short key fails
            // here rather than when the pod starts.
            let identity = if c.identity.enabled {
                let loaded =
                    crate::identity::Identity::load(&c.identity).map_err(|e| e.to_string())?;
                format!(
                    ", identity sign-in on ({} session keys, {} [[identities]] rules, sessions of {}s)",
                    c.identity.key_files.len(),
                    callers.identity_rules(),
                    loaded.sessions.duration().as_secs()
                )
            } else {
                String::new()
            };
            println!(
                "{}: ok ({} callers, policy {} revision {}{signing}{identity})",
                config.display(),
                callers.len(),
                c.policy.dir.display(),
                policy.revision()
            );
            Ok(())
        }
    }
}

fn policy_command(command: PolicyCommand) -> Result<(), String> {
    match command {
        PolicyCommand::Test { dir } => {
            let report = testing::run_tests(&dir).map_err(|e| e.to_string())?;
            println!("{}", report.render());
            if report.is_success() {
                Ok(())
            } else if report.results.is_empty() {
                Err(format!("{}: no policy tests ran", dir.display()))
            } else {
                Err(format!(
                    "{} of {} policy tests failed",
                    report.failed(),
                    report.results.len()
                ))
            }
        }
        PolicyCommand::Eval { input, dir } => {
            let document = testing::read_json_file(&input).map_err(|e| e.to_string())?;
            let schema = testing::load_input_schema(&dir).map_err(|e| e.to_string())?;
            let out =
                testing::eval_input(&dir, &document, schema.as_ref()).map_err(|e| match e {
                    EvalError::Input { .. } => format!("{}: {e}", input.display()),
                    e => e.to_string(),
                })?;
            let text = serde_json::to_string_pretty(&out.to_json()).map_err(|e| e.to_string())?;
            println!("{text}");
            Ok(())
        }
    }
}

/// Resolves on SIGTERM or SIGINT.
pub async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    let _ = ctrl_c.await;
}

/// The example files `waguard demo` runs on, shipped in the binary.
const DEMO_FILES: &[(&str, &str)] = &[
    (
        "waguard.toml",
        include_str!("../examples/demo/waguard.toml"),
    ),
    (
        "callers.toml",
        include_str!("../examples/demo/callers.toml"),
    ),
    (
        "policies/waguard/authz.rego",
        include_str!("../policies/waguard/authz.rego"),
    ),
    (
        "policies/waguard/index.rego",
        include_str!("../policies/waguard/index.rego"),
    ),
    (
        "policies/waguard/teams.json",
        include_str!("../policies/waguard/teams.json"),
    ),
    ("organization.json", DEMO_ORGANIZATION),
];
/// The organization `waguard demo` (and `waguard sim --organization`) plays.
const DEMO_ORGANIZATION: &str = include_str!("../examples/demo/organization.json");
const DEMO_SERVICE_KEY: &str = "AKWGDEMOSERVICEKEY01";
const DEMO_SERVICE_SECRET: &str = "demo-service-secret-not-for-production";
pub const DEMO_CALLER_KEY: &str = "AKWGDEMOPAYMENTS0001";
pub const DEMO_CALLER_SECRET: &str = "demo-payments-secret-0001";
/// The AWS identity the demo's simulated STS knows: alice's session of the PaymentsDev role,
/// as IAM Identity Center would hand it out.
pub const DEMO_IDENTITY_KEY: &str = "AKIDDEMOPAYMENTS0001";
pub const DEMO_IDENTITY_SECRET: &str = "demo-alice-aws-secret-0001";
pub const DEMO_IDENTITY_ARN: &str =
    "arn:aws:sts::123456789012:assumed-role/PaymentsDev/alice@example.com";
/// The demo's `[[identities]]` rule: the PaymentsDev role belongs to team payments.
const DEMO_IDENTITY_RULE: &str = r#"
# AWS identities that may sign in with `waguard credentials`: sessions of the PaymentsDev role
# (arn:aws:sts::123456789012:assumed-role/PaymentsDev/<session>) act for team payments.
[[identities]]
arn = "arn:aws:iam::123456789012:role/PaymentsDev"
team = "payments"
[identities.attributes]
cost_center = "cc-1001"
"#;
/// The OU the demo template was shared with around the gateway.
const DEMO_DRIFT_TARGET: &str = "ou-ab12-99999999";
/// The server id the demo gateway answers to: the host of `http://localhost:PORT`.
const DEMO_SERVER_ID: &str = "localhost";
/// The AWS profiles of the demo's AWS config file.
const DEMO_BASE_PROFILE: &str = "waguard-demo-base";
const DEMO_GOVERNED_PROFILE: &str = "governed";

/// `scan.toml`: the demo's config pointed at the simulator (Well-Architected and
/// Organizations), with an audit log of its own (the gateway holds `audit.jsonl`).
fn write_demo_scan_config(dir: &Path, sim: SocketAddr) -> Result<PathBuf, String> {
    let base = dir.join("waguard.toml");
    let text = std::fs::read_to_string(&base).map_err(|e| format!("{}: {e}", base.display()))?;
    let text = text
        .replace(
            "[upstream]\n",
            &format!("[upstream]\nendpoint = \"http://{sim}\"\n"),
        )
        .replace("file = \"audit.jsonl\"", "file = \"scan-audit.jsonl\"");
    let text = format!("{text}\n[organizations]\nenabled = true\nendpoint = \"http://{sim}\"\n");
    let path = dir.join("scan.toml");
    std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(path)
}

fn write_demo_files(dir: &Path) -> Result<(), String> {
    for (name, text) in DEMO_FILES {
        let path = dir.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| format!("{}: {e}", parent.display()))?;
        }
        std::fs::write(&path, text).map_err(|e| format!("{}: {e}", path.display()))?;
    }
    Ok(())
}

async fn demo(listen: SocketAddr, exit: bool) -> Result<(), String> {
    let dir = tempfile::Builder::new()
        .prefix("waguard-demo-")
        .tempdir()
        .map_err(|e| e.to_string())?;
    write_demo_files(dir.path())?;
    let key_file = write_demo_identity_files(dir.path())?;

    let sim = Arc::new(Sim::new(
        DEMO_SERVICE_KEY,
        DEMO_SERVICE_SECRET,
        None,
        &[DEMO_TEMPLATE_ARN],
    )?);
    let organization: crate::organization::Snapshot = serde_json::from_str(DEMO_ORGANIZATION)
        .map_err(|e| format!("the demo organization: {e}"))?;
    sim.set_organization(organization);
    sim.add_identity(DEMO_IDENTITY_KEY, DEMO_IDENTITY_SECRET, DEMO_IDENTITY_ARN)
        .map_err(|e| format!("the demo identity: {e}"))?;
    // Drift: the template belongs to payments, and someone shared it directly (around the
    // gateway) with an OU payments may not share with.
    sim.add_resource(
        crate::drift::ResourceType::Template,
        DEMO_TEMPLATE_ARN,
        &[("waguard:team", "payments")],
    )
    .map_err(|e| format!("the demo estate: {e}"))?;
    sim.add_share(
        crate::drift::ResourceType::Template,
        DEMO_TEMPLATE_ARN,
        DEMO_DRIFT_TARGET,
        crate::sim::ShareStatus::Accepted,
        None,
    )
    .map_err(|e| format!("the demo estate: {e}"))?;
    let sim_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| e.to_string())?;
    let sim_addr = sim_listener.local_addr().map_err(|e| e.to_string())?;
    let (stop_sim, sim_stopped) = tokio::sync::oneshot::channel::<()>();
    let sim_handler = {
        let sim = sim.clone();
        move |req, peer| sim.clone().handle(req, peer)
    };
    let sim_task = tokio::spawn(server::serve(
        sim_listener,
        None,
        Limits::default(),
        sim_handler,
        async move {
            let _ = sim_stopped.await;
        },
        std::time::Duration::from_secs(1),
    ));

    let mut config = Config::load(&dir.path().join("waguard.toml")).map_err(|e| e.to_string())?;
    config.server.listen = listen;
    config.server.admin_listen = None;
    config.upstream.endpoint = Some(format!("http://{sim_addr}"));
    // The simulator also plays AWS Organizations with the demo organization.
    config.organizations.enabled = true;
    config.organizations.endpoint = Some(format!("http://{sim_addr}"));
    // And STS: callers may sign in with the demo AWS identity.
    config.identity.enabled = true;
    config.identity.server_id = Some(DEMO_SERVER_ID.into());
    config.identity.key_files = vec![key_file];
    config.identity.sts_endpoint = Some(format!("http://{sim_addr}"));
    let creds = Credentials::new(
        DEMO_SERVICE_KEY,
        DEMO_SERVICE_SECRET,
        None,
        None,
        "waguard-demo",
    );
    let running = app::start(
        &config,
        ServiceCredentials::new(SharedCredentialsProvider::new(creds)),
    )
    .await
    .map_err(|e| e.to_string())?;
    let endpoint = format!("http://{}", running.addr);

    println!(
        "waguard demo: gateway on {endpoint}, simulated Well-Architected (and Organizations, STS) on http://{sim_addr}"
    );
    println!("config, callers and policy: {}", dir.path().display());
    println!("audit log: {}\n", config.audit.file.display());
    println!(
        "Team \"payments\" may share with its approved OUs (ou-ab12-11111111, ou-ab12-22222222), nothing else."
    );
    println!("Use its caller key (issued by waguard; it cannot call AWS directly):\n");
    println!(
        "  export AWS_ACCESS_KEY_ID={DEMO_CALLER_KEY} AWS_SECRET_ACCESS_KEY={DEMO_CALLER_SECRET} AWS_DEFAULT_REGION=us-east-1\n"
    );
    println!("Allowed (approved OU) -> a ShareId:");
    println!(
        "  aws wellarchitected create-template-share --endpoint-url {endpoint} --template-arn {DEMO_TEMPLATE_ARN} --shared-with ou-ab12-11111111\n"
    );
    println!("Denied (OU not approved) -> AccessDeniedException:");
    println!(
        "  aws wellarchitected create-template-share --endpoint-url {endpoint} --template-arn {DEMO_TEMPLATE_ARN} --shared-with ou-ab12-99999999\n"
    );
    println!(
        "The gateway knows the (simulated) AWS Organization, {}/organization.json:",
        dir.path().display()
    );
    println!(
        "Allowed (account 333748161105 sits in Root/payments/payments-prod, under an approved OU):"
    );
    println!(
        "  aws wellarchitected create-template-share --endpoint-url {endpoint} --template-arn {DEMO_TEMPLATE_ARN} --shared-with 333748161105\n"
    );
    println!("Denied (account 123412341234 is not in the organization):");
    println!(
        "  aws wellarchitected create-template-share --endpoint-url {endpoint} --template-arn {DEMO_TEMPLATE_ARN} --shared-with 123412341234\n"
    );

    let sign_in = DemoSignIn::new(dir.path(), running.addr, sim_addr)?;
    sign_in.print();

    let scan_config = write_demo_scan_config(dir.path(), sim_addr)?;
    println!(
        "Shares made around the gateway: the simulated account also holds a share nobody made through"
    );
    println!(
        "waguard (the template shared directly with {DEMO_DRIFT_TARGET}). Find it with the gateway's service"
    );
    println!(
        "credentials (exit code 3: violations found; add --revoke to delete it, audited):
"
    );
    println!(
        "  AWS_ACCESS_KEY_ID={DEMO_SERVICE_KEY} AWS_SECRET_ACCESS_KEY={DEMO_SERVICE_SECRET} waguard scan --config {}\n",
        scan_config.display()
    );

    let mut result = Ok(());
    if exit {
        let caller = Credentials::new(DEMO_CALLER_KEY, DEMO_CALLER_SECRET, None, None, "demo");
        for (target, expect_allow) in [
            ("ou-ab12-11111111", true),
            ("ou-ab12-99999999", false),
            ("333748161105", true),
            ("123412341234", false),
        ] {
            let (status, body) =
                demo_client::create_template_share(&endpoint, DEMO_TEMPLATE_ARN, target, &caller)
                    .await?;
            println!("create-template-share --shared-with {target}: HTTP {status} {body}");
            if (status == 200) != expect_allow {
                result = Err(format!(
                    "demo: expected {} for {target}",
                    if expect_allow { "a share" } else { "a denial" }
                ));
            }
        }
        if let Err(e) = sign_in.exercise().await {
            result = result.and(Err(e));
        }
        let options = crate::drift::command::Options {
            config: scan_config,
            regions: Vec::new(),
            format: crate::drift::command::Format::Table,
            revoke: false,
            max_revocations: crate::drift::command::DEFAULT_MAX_REVOCATIONS,
        };
        let service = Credentials::new(
            DEMO_SERVICE_KEY,
            DEMO_SERVICE_SECRET,
            None,
            None,
            "waguard-demo",
        );
        println!("waguard scan:");
        let code = crate::drift::command::run(
            options,
            ServiceCredentials::new(SharedCredentialsProvider::new(service)),
        )
        .await?;
        if code != crate::drift::scan::EXIT_VIOLATIONS {
            result = result.and(Err(format!(
                "demo: the scan exited {code}, expected 3 (the share made around the gateway)"
            )));
        }
    } else {
        println!("Press Ctrl-C to stop.");
        shutdown_signal().await;
    }
    running.shutdown().await;
    let _ = stop_sim.send(());
    let _ = sim_task.await;
    result
}

/// The demo's `[[identities]]` rule (appended to its callers file unless it has one) and a
/// fresh random session key; returns the key's path.
fn write_demo_identity_files(dir: &Path) -> Result<PathBuf, String> {
    let callers = dir.join("callers.toml");
    let mut text =
        std::fs::read_to_string(&callers).map_err(|e| format!("{}: {e}", callers.display()))?;
    if !text.contains("[[identities]]") {
        text.push_str(DEMO_IDENTITY_RULE);
        std::fs::write(&callers, text).map_err(|e| format!("{}: {e}", callers.display()))?;
    }
    let key_file = dir.join("identity.key");
    let mut key = [0u8; 32];
    aws_lc_rs::rand::fill(&mut key)
        .map_err(|_| "cannot draw random bytes for the demo's session key".to_string())?;
    write_private(&key_file, &key)?;
    Ok(key_file)
}

/// Writes a file only its owner may read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), String> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options
        .open(path)
        .and_then(|mut f| f.write_all(bytes))
        .map_err(|e| format!("{}: {e}", path.display()))
}

/// Signing in to the demo with an AWS identity: the AWS config that does it, and `--exit`'s
/// run through it.
struct DemoSignIn {
    /// How callers reach the gateway: `http://localhost:PORT` (the host is the server id).
    gateway: String,
    /// The simulated STS.
    sts: String,
    config_file: PathBuf,
    config_text: String,
}

impl DemoSignIn {
    fn new(dir: &Path, gateway: SocketAddr, sim: SocketAddr) -> Result<DemoSignIn, String> {
        let port = gateway.port();
        // The server id is "localhost", which `waguard credentials` takes from the URL's
        // host; a gateway listening elsewhere than loopback gets the server id spelled out.
        let (gateway, server_id_flag) =
            if gateway.ip().is_loopback() || gateway.ip().is_unspecified() {
                (format!("http://localhost:{port}"), String::new())
            } else {
                (
                    format!("http://{gateway}"),
                    format!(" --server-id {DEMO_SERVER_ID}"),
                )
            };
        let sts = format!("http://{sim}");
        let exe = std::env::current_exe()
            .map(|p| p.display().to_string())
            .unwrap_or_else(|_| "waguard".into());
        let exe = if exe.contains(char::is_whitespace) {
            format!("\"{exe}\"")
        } else {
            exe
        };
        let config_text = format!(
            "[profile {DEMO_BASE_PROFILE}]\n\
             aws_access_key_id = {DEMO_IDENTITY_KEY}\n\
             aws_secret_access_key = {DEMO_IDENTITY_SECRET}\n\
             region = us-east-1\n\
             \n\
             [profile {DEMO_GOVERNED_PROFILE}]\n\
             credential_process = {exe} credentials --gateway {gateway} --profile {DEMO_BASE_PROFILE} --sts-endpoint {sts}{server_id_flag}\n\
             region = us-east-1\n\
             services = waguard\n\
             \n\
             [services waguard]\n\
             wellarchitected =\n  endpoint_url = {gateway}\n"
        );
        let config_file = dir.join("aws-config");
        std::fs::write(&config_file, &config_text)
            .map_err(|e| format!("{}: {e}", config_file.display()))?;
        Ok(DemoSignIn {
            gateway,
            sts,
            config_file,
            config_text,
        })
    }

    fn print(&self) {
        println!(
            "Or sign in with the AWS identity you already have, no waguard key needed: `waguard credentials`"
        );
        println!(
            "signs an sts:GetCallerIdentity request with your AWS credentials (SSO, role, keys), without"
        );
        println!(
            "sending it, and trades it at the gateway for short-lived credentials. The simulated STS knows"
        );
        println!(
            "one identity, {DEMO_IDENTITY_ARN};\nthe [[identities]] rule in callers.toml maps its role PaymentsDev to team \"payments\"."
        );
        println!(
            "This AWS config (written to {}) uses it:\n",
            self.config_file.display()
        );
        for line in self.config_text.lines() {
            if line.is_empty() {
                println!();
            } else {
                println!("  {line}");
            }
        }
        println!();
        println!("  export AWS_CONFIG_FILE={}\n", self.config_file.display());
        println!("Allowed (approved OU), with gateway-issued credentials -> a ShareId:");
        println!(
            "  aws wellarchitected create-template-share --profile {DEMO_GOVERNED_PROFILE} --template-arn {DEMO_TEMPLATE_ARN} --shared-with ou-ab12-22222222\n"
        );
        println!("Denied (OU not approved) -> AccessDeniedException naming the session ARN:");
        println!(
            "  aws wellarchitected create-template-share --profile {DEMO_GOVERNED_PROFILE} --template-arn {DEMO_TEMPLATE_ARN} --shared-with ou-ab12-99999999\n"
        );
        println!("(AWS CLI 2.13 or newer reads `services`.)\n");
    }

    /// `--exit`: the exchange `credential_process` makes, then an allowed and a denied share
    /// with the credentials it got.
    async fn exercise(&self) -> Result<(), String> {
        let aws = Credentials::new(
            DEMO_IDENTITY_KEY,
            DEMO_IDENTITY_SECRET,
            None,
            None,
            "waguard-demo-identity",
        );
        let sts =
            client::sts_url("us-east-1", Some(&self.sts), &|_| None).map_err(|e| e.to_string())?;
        let signed = client::sign_get_caller_identity(
            &aws,
            "us-east-1",
            &sts,
            DEMO_SERVER_ID,
            std::time::SystemTime::now(),
        )
        .map_err(|e| e.to_string())?;
        let gateway: http::Uri = self
            .gateway
            .parse()
            .map_err(|e| format!("{}: {e}", self.gateway))?;
        let issued = client::exchange(&gateway, &signed, None)
            .await
            .map_err(|e| format!("demo: credentials --profile {DEMO_BASE_PROFILE}: {e}"))?;
        println!(
            "credentials --profile {DEMO_BASE_PROFILE}: {} (session of {DEMO_IDENTITY_ARN}) until {}",
            issued.access_key_id, issued.expiration
        );
        let session = Credentials::new(
            issued.access_key_id,
            issued.secret_access_key,
            Some(issued.session_token),
            None,
            "waguard-demo-session",
        );
        let mut result = Ok(());
        for (target, expect_allow) in [("ou-ab12-22222222", true), ("ou-ab12-99999999", false)] {
            let (status, body) = demo_client::create_template_share(
                &self.gateway,
                DEMO_TEMPLATE_ARN,
                target,
                &session,
            )
            .await?;
            println!(
                "create-template-share --profile {DEMO_GOVERNED_PROFILE} --shared-with {target}: HTTP {status} {body}"
            );
            if (status == 200) != expect_allow {
                result = Err(format!(
                    "demo: expected {} for {target} with the exchanged credentials",
                    if expect_allow { "a share" } else { "a denial" }
                ));
            }
        }
        result
    }
}

/// A minimal SigV4 client for `demo --exit`, signing the way the AWS SDKs do.
mod demo_client {
    use aws_credential_types::Credentials;
    use bytes::Bytes;
    use http_body_util::{BodyExt, Full};
    use hyper_util::client::legacy::Client;
    use hyper_util::rt::TokioExecutor;
    use percent_encoding::{NON_ALPHANUMERIC, utf8_percent_encode};

    pub async fn create_template_share(
        endpoint: &str,
        template_arn: &str,
        shared_with: &str,
        caller: &Credentials,
    ) -> Result<(u16, String), String> {
        let path = format!(
            "/templates/shares/{}",
            utf8_percent_encode(template_arn, NON_ALPHANUMERIC)
        );
        let url = format!("{endpoint}{path}");
        let body = serde_json::json!({"SharedWith": shared_with, "ClientRequestToken": uuid::Uuid::new_v4().to_string()}).to_string();
        let host = endpoint.trim_start_matches("http://").to_string();
        let mut req = http::Request::post(&url)
            .header("host", &host)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(body.clone())))
            .map_err(|e| e.to_string())?;
        let signed = crate::upstream::sign_headers(
            "POST",
            &url,
            req.headers(),
            body.as_bytes(),
            "us-east-1",
            caller,
        )
        .map_err(|e| e.to_string())?;
        req.headers_mut().extend(signed);
        let client = Client::builder(TokioExecutor::new()).build_http();
        let resp = client.request(req).await.map_err(|e| e.to_string())?;
        let status = resp.status().as_u16();
        let bytes = resp
            .into_body()
            .collect()
            .await
            .map_err(|e| e.to_string())?
            .to_bytes();
        Ok((status, String::from_utf8_lossy(&bytes).into_owned()))
    }
}

/// `waguard audit verify`: the chain, the checkpoints with a key, an outside checkpoint.
fn audit_verify(
    public_key: Option<PathBuf>,
    checkpoint: Option<PathBuf>,
    files: Vec<PathBuf>,
) -> Result<(), String> {
    use crate::audit::checkpoint::load_verifier_key;
    let files = if let [one] = files.as_slice() {
        let mut all =
            crate::audit::rotated_files(one).map_err(|e| format!("{}: {e}", one.display()))?;
        all.push(one.clone());
        all
    } else {
        files
    };
    let options = crate::audit::VerifyOptions {
        public_key: match &public_key {
            Some(p) => Some(load_verifier_key(p).map_err(|e| e.to_string())?),
            None => None,
        },
        checkpoint: match &checkpoint {
            Some(p) => {
                Some(std::fs::read_to_string(p).map_err(|e| format!("{}: {e}", p.display()))?)
            }
            None => None,
        },
    };
    let report = crate::audit::verify_files(&files, &options)
        .map_err(|e| format!("audit log does not verify: {e}"))?;
    let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
    let range = match (report.first_seq, &report.head) {
        (Some(first), Some(head)) => format!("seq {first}..{}", head.next_seq - 1),
        _ => "no records".into(),
    };
    println!(
        "ok: {} records ({range}) in {}; chain intact",
        report.records,
        names.join(", ")
    );
    if report.starts_mid_chain {
        println!("note: the chain starts after seq 0; earlier records are in files not given");
    }
    let held = report.head.as_ref().map_or(0, |h| h.next_seq);
    if options.public_key.is_some() {
        match report.last_checkpoint_size {
            Some(size) => println!(
                "ok: {} signed checkpoints verified; the last covers seq 0..{} ({} records after it are protected by the chain only)",
                report.checkpoints_verified,
                size as i128 - 1,
                held.saturating_sub(size + 1)
            ),
            None => println!(
                "warning: no checkpoint in these files; without one, a rewrite of the whole log cannot be detected"
            ),
        }
    } else {
        println!(
            "note: without --public-key the checkpoints' signatures are not checked ({} seen): an attacker who can write the files could rewrite records and re-hash the chain, or cut records off the end, without this check noticing",
            report.checkpoints_unverified
        );
    }
    match report.external_size {
        Some(size) => {
            println!("ok: the outside checkpoint's {size} records are all here, unchanged")
        }
        None if options.public_key.is_some() => println!(
            "note: without --checkpoint (a checkpoint kept outside the log), truncation back to an earlier checkpoint cannot be detected"
        ),
        None => {}
    }
    Ok(())
}
