//! Listeners: TCP or TLS, HTTP/1.1 and HTTP/2 on one port, limits, graceful shutdown.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwap;
use http::{Request, Response};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::gateway::Body;

#[derive(Debug, thiserror::Error)]
pub enum TlsSetupError {
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error("TLS configuration: {0}")]
    Config(String),
}

/// Connection-level limits.
#[derive(Debug, Clone)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub header_read_timeout: Duration,
    pub max_concurrent_streams: u32,
    /// Connections open at once; the accept loop pauses at the limit (the kernel's accept
    /// queue holds further clients until a connection closes).
    pub max_connections: usize,
    /// A connection without a request in progress for this long is closed gracefully.
    pub idle_timeout: Duration,
    /// Where open connections and idle closes are counted.
    pub counters: Option<ConnectionCounters>,
}

/// Metrics of the accept loop.
#[derive(Debug, Clone)]
pub struct ConnectionCounters {
    pub open: prometheus::IntGauge,
    pub idle_closed: prometheus::IntCounter,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_header_bytes: 16 * 1024,
            header_read_timeout: Duration::from_secs(10),
            max_concurrent_streams: 128,
            max_connections: 1024,
            idle_timeout: Duration::from_secs(60),
            counters: None,
        }
    }
}

/// HTTP/2 PING interval on a connection, and how long the answer may take before the
/// connection is considered dead and closed.
const H2_KEEP_ALIVE_INTERVAL: Duration = Duration::from_secs(30);
const H2_KEEP_ALIVE_TIMEOUT: Duration = Duration::from_secs(20);
/// HTTP/2 streams a client may reset before the gateway accepted them, and streams the
/// gateway may reset for protocol errors, before the connection is closed (h2's defaults,
/// set here so they cannot silently change; CVE-2023-44487 and CVE-2024-2653 class floods).
const H2_MAX_PENDING_ACCEPT_RESETS: usize = 20;
const H2_MAX_LOCAL_ERROR_RESETS: usize = 1024;

/// Whether a connection has a request in progress, and since when it has had none.
struct Activity {
    active: std::sync::atomic::AtomicUsize,
    idle_since: std::sync::Mutex<tokio::time::Instant>,
}

/// Marks one request in progress on a connection for as long as it lives.
struct Busy(Arc<Activity>);

impl Activity {
    fn new() -> Arc<Activity> {
        Arc::new(Activity {
            active: std::sync::atomic::AtomicUsize::new(0),
            idle_since: std::sync::Mutex::new(tokio::time::Instant::now()),
        })
    }

    fn begin(self: &Arc<Self>) -> Busy {
        self.active
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(self.clone())
    }

    /// Resolves once the connection has had no request in progress for `timeout`.
    async fn idle_for(&self, timeout: Duration) {
        loop {
            let next = {
                let since = self
                    .idle_since
                    .lock()
                    .map(|t| *t)
                    .unwrap_or_else(|_| tokio::time::Instant::now());
                if self.active.load(std::sync::atomic::Ordering::SeqCst) > 0 {
                    tokio::time::Instant::now() + timeout
                } else if since.elapsed() >= timeout {
                    return;
                } else {
                    since + timeout
                }
            };
            tokio::time::sleep_until(next).await;
        }
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        if let Ok(mut t) = self.0.idle_since.lock() {
            *t = tokio::time::Instant::now();
        }
        self.0
            .active
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Installs the process-wide rustls crypto provider (aws-lc-rs). Safe to call more than once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// The gateway's TLS certificate and key, read from PEM files and swapped in place when the
/// files change (cert-manager renewals; see `reload`): each handshake uses the current one,
/// connections already open keep theirs.
#[derive(Debug)]
pub struct TlsCertificate {
    pub cert_file: PathBuf,
    pub key_file: PathBuf,
    current: ArcSwap<CertifiedKey>,
}

impl TlsCertificate {
    pub fn load(cert_file: &Path, key_file: &Path) -> Result<TlsCertificate, TlsSetupError> {
        Ok(TlsCertificate {
            cert_file: cert_file.to_path_buf(),
            key_file: key_file.to_path_buf(),
            current: ArcSwap::from_pointee(load_certified_key(cert_file, key_file)?),
        })
    }

    /// Reads the files again. On success new handshakes use them; on failure (unreadable, not
    /// PEM, key not matching the certificate) the current certificate stays.
    pub fn reload(&self) -> Result<(), TlsSetupError> {
        let key = load_certified_key(&self.cert_file, &self.key_file)?;
        self.current.store(Arc::new(key));
        Ok(())
    }
}

impl ResolvesServerCert for TlsCertificate {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

fn load_certified_key(cert_file: &Path, key_file: &Path) -> Result<CertifiedKey, TlsSetupError> {
    let file_err = |p: &Path, m: String| TlsSetupError::File {
        path: p.display().to_string(),
        message: m,
    };
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert_file)
        .map_err(|e| file_err(cert_file, e.to_string()))?
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(cert_file, e.to_string()))?;
    if certs.is_empty() {
        return Err(file_err(cert_file, "no CERTIFICATE blocks".into()));
    }
    let key =
        PrivateKeyDer::from_pem_file(key_file).map_err(|e| file_err(key_file, e.to_string()))?;
    // Also checks that the key belongs to the certificate.
    CertifiedKey::from_der(certs, key, &rustls::crypto::aws_lc_rs::default_provider()).map_err(
        |e| {
            TlsSetupError::Config(format!(
                "{} with {}: {e}",
                cert_file.display(),
                key_file.display()
            ))
        },
    )
}

/// A TLS acceptor serving `certificate`, offering h2 and http/1.1.
pub fn tls_acceptor(certificate: Arc<TlsCertificate>) -> Result<TlsAcceptor, TlsSetupError> {
    let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::aws_lc_rs::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| TlsSetupError::Config(e.to_string()))?
    .with_no_client_auth()
    .with_cert_resolver(certificate);
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

/// Serves `handler` on `listener` until `shutdown` resolves, then lets open connections finish
/// their in-flight requests for up to `grace`.
pub async fn serve<H, F>(
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    limits: Limits,
    handler: H,
    shutdown: impl Future<Output = ()>,
    grace: Duration,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = Response<Body>> + Send + 'static,
{
    let mut builder = auto::Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout)
        // A client may shut its write side and wait for the answer (e.g. `nc -N`).
        .half_close(true)
        .max_buf_size(limits.max_header_bytes.max(8192))
        .keep_alive(true);
    builder
        .http2()
        .timer(TokioTimer::new())
        .max_header_list_size(limits.max_header_bytes as u32)
        .max_concurrent_streams(limits.max_concurrent_streams)
        .max_pending_accept_reset_streams(H2_MAX_PENDING_ACCEPT_RESETS)
        .max_local_error_reset_streams(H2_MAX_LOCAL_ERROR_RESETS)
        .keep_alive_interval(Some(H2_KEEP_ALIVE_INTERVAL))
        .keep_alive_timeout(H2_KEEP_ALIVE_TIMEOUT);
    let builder = Arc::new(builder);
    let stopping = CancellationToken::new();
    let connections = TaskTracker::new();
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    tokio::pin!(shutdown);

    loop {
        // At `max_connections` the loop stops accepting until a connection closes.
        let slot = tokio::select! {
            slot = slots.clone().acquire_owned() => match slot {
                Ok(s) => s,
                Err(_) => break,
            },
            _ = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let activity = Activity::new();
        let handler = handler.clone();
        let busy = activity.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let handler = handler.clone();
            let busy = busy.begin();
            async move {
                let resp = handler(req, peer).await;
                drop(busy);
                Ok::<_, Infallible>(resp)
            }
        });
        let builder = builder.clone();
        let tls = tls.clone();
        let stopping = stopping.clone();
        let limits = limits.clone();
        connections.spawn(async move {
            let _slot = slot;
            if let Some(c) = &limits.counters {
                c.open.inc();
            }
            match tls {
                None => {
                    serve_connection(
                        &builder,
                        TokioIo::new(stream),
                        service,
                        peer,
                        &activity,
                        &limits,
                        &stopping,
                    )
                    .await;
                }
                Some(acceptor) => {
                    let handshake =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(stream))
                            .await;
                    match handshake {
                        Ok(Ok(s)) => {
                            serve_connection(
                                &builder,
                                TokioIo::new(s),
                                service,
                                peer,
                                &activity,
                                &limits,
                                &stopping,
                            )
                            .await;
                        }
                        Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                        Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                    }
                }
            }
            if let Some(c) = &limits.counters {
                c.open.dec();
            }
        });
    }
    drop(listener);
    stopping.cancel();
    connections.close();
    tokio::select! {
        _ = connections.wait() => tracing::info!("all connections closed"),
        _ = tokio::time::sleep(grace) => tracing::warn!("shutdown grace period over; closing remaining connections"),
    }
}

/// Serves one connection until it ends; on shutdown or after `idle_timeout` without a
/// request it is closed gracefully (HTTP/1 after the current response, HTTP/2 with GOAWAY).
async fn serve_connection<I, S>(
    builder: &auto::Builder<TokioExecutor>,
    io: I,
    service: S,
    peer: SocketAddr,
    activity: &Activity,
    limits: &Limits,
    stopping: &CancellationToken,
) where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    S: hyper::service::Service<Request<Incoming>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    let conn = builder.serve_connection(io, service);
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            ended = conn.as_mut() => {
                if let Err(e) = ended {
                    tracing::debug!(%peer, error = %e, "connection ended with an error");
                }
                return;
            }
            () = stopping.cancelled(), if !closing => {
                closing = true;
                conn.as_mut().graceful_shutdown();
            }
            () = activity.idle_for(limits.idle_timeout), if !closing => {
                closing = true;
                tracing::debug!(%peer, "closing an idle connection");
                if let Some(c) = &limits.counters {
                    c.idle_closed.inc();
                }
                conn.as_mut().graceful_shutdown();
            }
        }
    }
}
