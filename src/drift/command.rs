//! `waguard scan`: reads the config as the gateway does, scans, prints the report, and with
//! `--revoke` deletes the violating shares, each with an audit record.

use std::io::Write;
use std::path::PathBuf;

use super::estate::Retry;
use super::scan::{EXIT_ERROR, Report, Scan};
use crate::audit::AuditLog;
use crate::audit::record::RevocationResult;
use crate::config::Config;
use crate::organization::OrganizationView;
use crate::policy::Policy;
use crate::upstream::{ServiceCredentials, Upstream};

/// How the report is printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns and a summary line, for people.
    Table,
    /// One JSON object per line (`type`: `finding`, then `revocation`), for pipelines.
    Json,
}

pub struct Options {
    pub config: PathBuf,
    /// Regions to scan instead of `[scan] regions` / `upstream.allowed_regions`.
    pub regions: Vec<String>,
    pub format: Format,
    pub revoke: bool,
    /// `--revoke` deletes nothing when it finds more violations than this.
    pub max_revocations: usize,
}

/// `--max-revocations` by default: a policy mistake (an emptied team list) makes every share a
/// violation, and revoking them all would be an outage of its own.
pub const DEFAULT_MAX_REVOCATIONS: usize = 20;

/// Runs the scan; the exit code is the report's (0, 3, or 1), or 1 when a revocation failed.
pub async fn run(options: Options, credentials: ServiceCredentials) -> Result<u8, String> {
    let config = Config::load(&options.config).map_err(|e| e.to_string())?;
    let regions = regions(&options, &config)?;
    let policy = Policy::load(&config.policy.dir).map_err(|e| e.to_string())?;
    // Opened before anything is judged, so that nothing is deleted without its record.
    let audit = if options.revoke {
        let audit_options = crate::app::audit_options(&config).map_err(|e| e.to_string())?;
        // The report is this command's stdout; its records go to the audit file only.
        let audit_options = crate::audit::AuditOptions {
            stdout: false,
            ..audit_options
        };
        Some(AuditLog::open(audit_options).map_err(|e| format!("--revoke: {e}"))?)
    } else {
        None
    };
    let organization = if config.organizations.enabled {
        let view = OrganizationView::new(&config.organizations, credentials.provider(), None).await;
        // Without the organization, every OU rule denies: judging (let alone revoking) on
        // that would be wrong, so the scan does not start.
        view.refresh().await.map_err(|e| {
            format!("[organizations] is on but the organization could not be read: {e}")
        })?;
        Some(view)
    } else {
        None
    };
    let upstream = Upstream::new(&config.upstream, credentials).map_err(|e| e.to_string())?;
    let scan = Scan {
        upstream: &upstream,
        organization: organization.as_ref(),
        regions: &regions,
        team_tag: &config.scan.team_tag,
        retry: Retry::default(),
    };
    eprintln!(
        "scanning {} with policy {} (revision {})",
        regions.join(", "),
        config.policy.dir.display(),
        policy.revision()
    );
    let report = scan.run(&policy, &|line| eprintln!("{line}")).await;
    let mut out = std::io::stdout();
    print_report(&mut out, &report, options.format).map_err(|e| e.to_string())?;
    let mut code = report.exit_code();
    if let Some(audit) = audit {
        let revoked = revoke(
            &mut out,
            &scan,
            &report,
            &audit,
            options.format,
            options.max_revocations,
        )
        .await;
        audit.close().await;
        if !revoked? {
            code = EXIT_ERROR;
        }
    }
    Ok(code)
}

fn regions(options: &Options, config: &Config) -> Result<Vec<String>, String> {
    let regions = if !options.regions.is_empty() {
        options.regions.clone()
    } else if let Some(r) = config
        .scan
        .regions
        .as_ref()
        .or(config.upstream.allowed_regions.as_ref())
    {
        r.clone()
    } else {
        return Err(
            "no regions to scan: pass --region, or set [scan] regions or upstream.allowed_regions"
                .into(),
        );
    };
    for r in &regions {
        if !crate::auth::is_region_name(r) {
            return Err(format!("--region {r:?} is not a region name"));
        }
    }
    Ok(regions)
}

fn print_report(out: &mut impl Write, report: &Report, format: Format) -> std::io::Result<()> {
    match format {
        Format::Table => out.write_all(report.table().as_bytes()),
        Format::Json => {
            for f in &report.findings {
                writeln!(out, "{}", f.to_json())?;
            }
            Ok(())
        }
    }
}

/// Deletes every violation, printing the list first and each result after. `Ok(false)` when a
/// delete failed; `Err` when a record could not be written (it stops at once: nothing more is
/// deleted without its record).
async fn revoke(
    out: &mut impl Write,
    scan: &Scan<'_>,
    report: &Report,
    audit: &AuditLog,
    format: Format,
    max: usize,
) -> Result<bool, String> {
    let violations: Vec<_> = report.violations().collect();
    if violations.is_empty() {
        return Ok(true);
    }
    if violations.len() > max {
        return Err(format!(
            "{} violations is more than --max-revocations {max}: nothing was revoked. A policy mistake looks like this; if the report is right, rerun with --max-revocations {}",
            violations.len(),
            violations.len()
        ));
    }
    if !report.errors.is_empty() {
        // Revoking from a partial view is still right for what was seen; say so.
        eprintln!("the scan had errors; revoking the violations it did find");
    }
    let io = |e: std::io::Error| e.to_string();
    if format == Format::Table {
        writeln!(out, "\nrevoking {} shares:", violations.len()).map_err(io)?;
        for f in &violations {
            let s = &f.found.share;
            writeln!(
                out,
                "  {} {} share {} with {}: {}",
                s.resource_type.as_str(),
                s.resource,
                s.share_id,
                s.shared_with,
                f.reasons.join("; ")
            )
            .map_err(io)?;
        }
        out.flush().map_err(io)?;
    }
    let mut all_done = true;
    for f in violations {
        let revocation = scan
            .revoke(f, &report.policy_revision, audit)
            .await
            .map_err(|e| {
                format!(
                    "share {} of {}: the revocation record could not be written ({e}); stopped revoking",
                    f.found.share.share_id, f.found.share.resource
                )
            })?;
        if revocation.result == RevocationResult::Failed {
            all_done = false;
        }
        match format {
            Format::Json => {
                let mut line = serde_json::to_value(&revocation).map_err(|e| e.to_string())?;
                line["type"] = "revocation".into();
                writeln!(out, "{line}").map_err(io)?;
            }
            Format::Table => {
                let result = match revocation.result {
                    RevocationResult::Revoked => "revoked".to_string(),
                    RevocationResult::AlreadyGone => "already gone".to_string(),
                    RevocationResult::Failed => format!(
                        "FAILED: {}",
                        revocation.error.as_deref().unwrap_or_default()
                    ),
                };
                writeln!(out, "  {}: {result}", f.found.share.share_id).map_err(io)?;
            }
        }
    }
    Ok(all_done)
}
