//! Assembles a running gateway from a config: loads callers and policy, opens the audit log,
//! binds the listeners and serves until told to stop.

use std::future::Future;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};

use arc_swap::ArcSwap;
use http::Response;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::admin;
use crate::audit::checkpoint::{KeyError, load_signing_key};
use crate::audit::{AuditError, AuditLog, AuditOptions};
use crate::auth::{Callers, CallersError};
use crate::config::Config;
use crate::gateway::{Body, Gateway, Refusals, Settings};
use crate::identity::{Identity, IdentitySetupError};
use crate::limits::Limiter;
use crate::metrics::Metrics;
use crate::organization::{OrganizationMetrics, OrganizationView};
use crate::policy::{Policy, PolicyError};
use crate::reload::Reloader;
use crate::server::{self, ConnectionCounters, Limits, TlsCertificate, TlsSetupError};
use crate::upstream::{ServiceCredentials, Upstream, UpstreamSetupError};

#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Callers(#[from] CallersError),
    #[error(transparent)]
    Policy(#[from] PolicyError),
    #[error(transparent)]
    Audit(#[from] AuditError),
    #[error("audit.signing_key_file: {0}")]
    AuditKey(#[from] KeyError),
    #[error(transparent)]
    Upstream(#[from] UpstreamSetupError),
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error(transparent)]
    Identity(#[from] IdentitySetupError),
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
}

/// A gateway serving in the background.
pub struct Running {
    pub addr: SocketAddr,
    pub admin_addr: Option<SocketAddr>,
    pub gateway: Arc<Gateway>,
    pub reloader: Arc<Reloader>,
    stop: watch::Sender<bool>,
    tasks: std::sync::Mutex<Vec<JoinHandle<()>>>,
    /// Every request task, so shutdown can wait for them before closing the audit log.
    requests: TaskTracker,
    /// Cancels the requests still running when the shutdown grace is over.
    abandon: CancellationToken,
    grace: std::time::Duration,
}

impl Running {
    /// Stops accepting, lets in-flight requests finish within the grace period, flushes and
    /// closes the audit log, and returns.
    ///
    /// Request tasks outlive their connections (a forwarded request runs to its outcome record
    /// even if its client hangs up), so the log is closed only once they have finished, or the
    /// grace is over and the rest were cancelled: each of those still writes its outcome
    /// record (`abandoned_at_shutdown`) before the log closes.
    pub async fn shutdown(&self) {
        let deadline = tokio::time::Instant::now() + self.grace;
        let _ = self.stop.send(true);
        let tasks = self
            .tasks
            .lock()
            .map(|mut t| std::mem::take(&mut *t))
            .unwrap_or_default();
        for t in tasks {
            let _ = t.await;
        }
        self.requests.close();
        if tokio::time::timeout_at(deadline, self.requests.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                requests = self.requests.len(),
                "shutdown grace period over; abandoning the requests still running"
            );
            self.gateway.abandoning.store(true, Ordering::Relaxed);
            self.abandon.cancel();
            self.requests.wait().await;
        }
        self.gateway.flush_refusals();
        self.gateway.audit.close().await;
    }
}

/// The audit log as `[audit]` describes it (its signing key loaded).
pub fn audit_options(config: &Config) -> Result<AuditOptions, StartError> {
    let signing_key = match &config.audit.signing_key_file {
        Some(path) => Some(Arc::new(load_signing_key(path)?)),
        None => None,
    };
    Ok(AuditOptions {
        stdout: config.audit.stdout,
        stdout_buffer_bytes: config.audit.stdout_buffer_bytes,
        max_file_bytes: config.audit.max_file_bytes,
        max_files: config.audit.max_files,
        signing_key,
        log_name: config.audit.log_name.clone(),
        checkpoint_interval: config.audit.checkpoint_interval,
        ..AuditOptions::new(config.audit.file.clone())
    })
}

async fn bind(addr: SocketAddr) -> Result<TcpListener, StartError> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| StartError::Bind { addr, source })
}

/// Loads everything the config names and starts serving.
pub async fn start(
    config: &Config,
    credentials: ServiceCredentials,
) -> Result<Running, StartError> {
    server::install_crypto_provider();
    let callers = Callers::load(&config.callers.file)?;
    let policy = Policy::load(&config.policy.dir)?;
    let metrics = Arc::new(Metrics::new()?);
    let audit = AuditLog::open(AuditOptions {
        failures: Some(metrics.audit_write_failures.clone()),
        stdout_dropped: Some(metrics.audit_stdout_dropped.clone()),
        ..audit_options(config)?
    })?;
    let organization = if config.organizations.enabled {
        let view = Arc::new(
            OrganizationView::new(
                &config.organizations,
                credentials.provider(),
                Some(OrganizationMetrics {
                    accounts: metrics.organization_accounts.clone(),
                    lookups: metrics.organization_lookups.clone(),
                }),
            )
            .await,
        );
        // Serve with a snapshot when one can be had soon; otherwise start without one (policy
        // fails closed for OU rules) and let the background refresh keep trying.
        let first = tokio::time::timeout(view.startup_timeout(), view.refresh())
            .await
            .is_ok_and(|r| r.is_ok());
        Some((view, first))
    } else {
        None
    };
    let upstream = Upstream::new(&config.upstream, credentials)?;
    let identity = if config.identity.enabled {
        Some(Arc::new(Identity::load(&config.identity)?))
    } else {
        None
    };
    let upstream_timeout = upstream.timeout();
    let certificate = match (&config.server.tls_cert_file, &config.server.tls_key_file) {
        (Some(cert), Some(key)) => Some(Arc::new(TlsCertificate::load(cert, key)?)),
        _ => None,
    };
    let tls = match &certificate {
        Some(c) => Some(server::tls_acceptor(c.clone())?),
        None => None,
    };
    tracing::info!(
        callers = callers.len(),
        policy_revision = policy.revision(),
        policy_dir = %config.policy.dir.display(),
        "configuration loaded"
    );
    metrics.set_policy_revision(policy.revision());
    let gateway = Arc::new(Gateway {
        callers: ArcSwap::from_pointee(callers),
        policy: ArcSwap::from_pointee(policy),
        upstream,
        audit,
        metrics,
        settings: Settings {
            allowed_regions: config.upstream.allowed_regions.clone(),
            max_body_bytes: config.server.max_body_bytes,
            body_timeout: config.server.request_timeout,
            policy: config.policy.clone(),
            audit_on_failure: config.audit.on_failure,
            request_deadline: config.server.request_timeout + upstream_timeout,
        },
        abandoning: AtomicBool::new(false),
        organization: organization.as_ref().map(|(view, _)| view.clone()),
        limiter: Limiter::new(&config.limits),
        identity,
        refusals: Refusals::default(),
    });
    let reloader = Arc::new(Reloader::new(
        gateway.clone(),
        config.policy.dir.clone(),
        config.callers.file.clone(),
        certificate,
    ));

    let listener = bind(config.server.listen).await?;
    let addr = listener.local_addr().map_err(|source| StartError::Bind {
        addr: config.server.listen,
        source,
    })?;
    let (stop, stopped) = watch::channel(false);
    let limits = Limits {
        max_header_bytes: config.server.max_header_bytes,
        header_read_timeout: config.server.request_timeout,
        max_connections: config.server.max_connections,
        idle_timeout: config.server.idle_timeout,
        counters: Some(ConnectionCounters {
            open: gateway.metrics.connections_open.clone(),
            idle_closed: gateway.metrics.connections_idle_closed.clone(),
        }),
        ..Limits::default()
    };
    let mut tasks = vec![tokio::spawn(
        reloader.clone().run(config.policy.watch, stopped.clone()),
    )];
    if let Some((view, first)) = organization {
        tasks.push(tokio::spawn(view.run(first, stopped.clone())));
    }
    if let Some(interval) = config.scan.interval {
        let regions = config
            .scan
            .regions
            .clone()
            .or_else(|| config.upstream.allowed_regions.clone())
            .unwrap_or_default();
        let watch = crate::drift::watch::Watch {
            gateway: gateway.clone(),
            regions,
            team_tag: config.scan.team_tag.clone(),
            interval,
        };
        tasks.push(tokio::spawn(watch.run(stopped.clone())));
    }
    tasks.push(tokio::spawn(summarise_refusals(
        gateway.clone(),
        config.audit.summary_interval,
        stopped.clone(),
    )));
    let requests = TaskTracker::new();
    let abandon = CancellationToken::new();
    let (gw, tracker, cancel) = (gateway.clone(), requests.clone(), abandon.clone());
    let max_in_flight = config.server.max_in_flight;
    let slots = Arc::new(Semaphore::new(max_in_flight));
    let handler = move |req, peer| {
        // Beyond `server.max_in_flight` a request is answered 503 at once, before any work.
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            gw.metrics.shed.with_label_values(&["in_flight"]).inc();
            return RunsToEnd::answered(crate::gateway::overloaded_response(max_in_flight));
        };
        let gw = gw.clone();
        let cancel = cancel.clone();
        // Counted by the tracker until the request has finished, wherever it runs.
        let running = tracker.token();
        // Cancelled when hyper drops this request's future: the client reset the stream or
        // closed the connection. Until the decision to forward is recorded that stops the
        // request; after it, the request runs on to its outcome record.
        let client_gone = CancellationToken::new();
        let work = {
            let client_gone = client_gone.clone();
            async move {
                let (_slot, _running) = (slot, running);
                // Shutdown, once its grace is over, cancels it.
                tokio::select! {
                    resp = gw.handle(req, peer, client_gone) => resp,
                    () = cancel.cancelled() => crate::gateway::shutdown_response(),
                }
            }
        };
        RunsToEnd::new(Box::pin(work), client_gone)
    };
    tasks.push(tokio::spawn(server::serve(
        listener,
        tls,
        limits,
        handler,
        wait_for(stopped.clone()),
        config.server.shutdown_grace,
    )));

    let mut admin_addr = None;
    if let Some(a) = config.server.admin_listen {
        let listener = bind(a).await?;
        admin_addr = Some(
            listener
                .local_addr()
                .map_err(|source| StartError::Bind { addr: a, source })?,
        );
        let admin = Arc::new(admin::Admin {
            gateway: gateway.clone(),
            reloader: reloader.clone(),
        });
        let handler = move |req, _peer| admin.clone().handle(req);
        tasks.push(tokio::spawn(server::serve(
            listener,
            None,
            // The admin port answers probes and scrapes; it needs few connections.
            Limits {
                max_connections: 64,
                ..Limits::default()
            },
            handler,
            wait_for(stopped),
            config.server.shutdown_grace,
        )));
    }
    tracing::info!(
        %addr,
        admin = ?admin_addr,
        tls = config.server.tls_cert_file.is_some(),
        worker_threads = tokio::runtime::Handle::current().metrics().num_workers(),
        "waguard listening"
    );
    Ok(Running {
        addr,
        admin_addr,
        gateway,
        reloader,
        stop,
        tasks: std::sync::Mutex::new(tasks),
        requests,
        abandon,
        grace: config.server.shutdown_grace,
    })
}

type Work = Pin<Box<dyn Future<Output = Response<Body>> + Send>>;

/// A request's work, run in its connection's task: no hand-off to another task and back for
/// each request. If hyper drops it unfinished (the client reset the stream or closed the
/// connection), `client_gone` is cancelled and the rest runs on as a task of its own, so a
/// request whose decision to forward was recorded still gets its outcome recorded.
struct RunsToEnd {
    work: Option<Work>,
    client_gone: CancellationToken,
}

impl RunsToEnd {
    fn new(work: Work, client_gone: CancellationToken) -> Self {
        RunsToEnd {
            work: Some(work),
            client_gone,
        }
    }

    /// An answer that needs no work (the request was shed).
    fn answered(response: Response<Body>) -> Self {
        Self::new(
            Box::pin(std::future::ready(response)),
            CancellationToken::new(),
        )
    }
}

impl Future for RunsToEnd {
    type Output = Response<Body>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response<Body>> {
        let Some(work) = self.work.as_mut() else {
            return Poll::Ready(crate::gateway::internal_error_response());
        };
        // A panic (a bug) fails this request with a 500, as it would in a task of its own,
        // instead of taking the connection's other requests with it.
        let polled = std::panic::catch_unwind(AssertUnwindSafe(|| work.as_mut().poll(cx)));
        let response = match polled {
            Ok(Poll::Pending) => return Poll::Pending,
            Ok(Poll::Ready(response)) => response,
            Err(_) => crate::gateway::internal_error_response(),
        };
        self.work = None;
        Poll::Ready(response)
    }
}

impl Drop for RunsToEnd {
    fn drop(&mut self) {
        let Some(work) = self.work.take() else {
            return;
        };
        self.client_gone.cancel();
        // Always inside the runtime (hyper drops it from its connection task). Without one,
        // dropping the work still writes a forwarded request's outcome record.
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                // A panic here ends only this task, as any task's would.
                let _ = work.await;
            });
        }
    }
}

/// Writes the counted refusals as summary records every `interval`, and once more on stop.
async fn summarise_refusals(
    gateway: Arc<Gateway>,
    interval: std::time::Duration,
    mut stopped: watch::Receiver<bool>,
) {
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticks.tick().await;
    loop {
        tokio::select! {
            _ = ticks.tick() => gateway.flush_refusals(),
            _ = stopped.wait_for(|s| *s) => break,
        }
    }
}

async fn wait_for(mut stopped: watch::Receiver<bool>) {
    let _ = stopped.wait_for(|s| *s).await;
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;
    use tokio::sync::oneshot;

    #[tokio::test]
    async fn a_request_dropped_unfinished_runs_on_knowing_its_client_is_gone() {
        let client_gone = CancellationToken::new();
        let (finished, saw) = oneshot::channel();
        let work = {
            let client_gone = client_gone.clone();
            async move {
                tokio::time::sleep(Duration::from_millis(50)).await;
                let _ = finished.send(client_gone.is_cancelled());
                crate::gateway::shutdown_response()
            }
        };
        let mut request = RunsToEnd::new(Box::pin(work), client_gone);
        assert!(
            tokio::time::timeout(Duration::from_millis(5), &mut request)
                .await
                .is_err()
        );
        drop(request);
        assert_eq!(
            tokio::time::timeout(Duration::from_secs(5), saw).await,
            Ok(Ok(true)),
            "the rest of the request did not run, or did not see its client gone"
        );
    }

    #[tokio::test]
    async fn a_panic_in_a_request_answers_it_500_instead_of_unwinding_its_connection() {
        let work = async {
            tokio::task::yield_now().await;
            panic!("a bug on the request path");
        };
        let response = RunsToEnd::new(Box::pin(work), CancellationToken::new()).await;
        assert_eq!(response.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
    }
}
