//! Hot reload of policy, callers and the TLS certificate: on file change (inotify, plus a periodic content check
//! that also catches ConfigMap and git-sync symlink swaps) and on SIGHUP.
//!
//! New versions are read and compiled off the request path and swapped in atomically; requests
//! in flight finish on the version they started with. A broken edit is rejected: the last good
//! version keeps serving and the error is logged, counted and shown on `/readyz`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::auth::Callers;
use crate::gateway::Gateway;
use crate::policy::{Policy, PolicySources};
use crate::server::TlsCertificate;

/// How often the content check runs, whatever inotify says.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// File events come in bursts (editors, `kubectl` swaps); wait for the burst to end.
const DEBOUNCE: Duration = Duration::from_millis(200);

/// What a policy reload attempt found.
enum PolicyReload {
    /// The files are what is serving.
    Serving,
    /// The files are the same broken content as last time (reported then).
    AlreadyRejected,
    Compiled(Policy),
    /// Revision of the rejected content (if it could be read) and why.
    Rejected(Option<String>, String),
}

/// Errors of the last reload attempts, shown on `/readyz`.
#[derive(Default, Debug, Clone)]
pub struct ReloadStatus {
    pub policy_error: Option<String>,
    pub callers_error: Option<String>,
    pub tls_error: Option<String>,
}

pub struct Reloader {
    gateway: Arc<Gateway>,
    policy_dir: PathBuf,
    callers_file: PathBuf,
    callers_hash: Mutex<String>,
    tls: Option<Arc<TlsCertificate>>,
    tls_hash: Mutex<String>,
    /// Revision of the last rejected policy, so a broken edit is reported once, not every poll.
    rejected_revision: Mutex<Option<String>>,
    pub status: Mutex<ReloadStatus>,
}

/// SHA-256 over the files' contents, to notice a change (an unreadable file counts as empty).
fn files_hash(paths: &[&Path]) -> String {
    let mut h = Sha256::new();
    for p in paths {
        let bytes = std::fs::read(p).unwrap_or_default();
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    hex::encode(h.finalize())
}

fn tls_files(tls: &TlsCertificate) -> [&Path; 2] {
    [&tls.cert_file, &tls.key_file]
}

impl Reloader {
    pub fn new(
        gateway: Arc<Gateway>,
        policy_dir: PathBuf,
        callers_file: PathBuf,
        tls: Option<Arc<TlsCertificate>>,
    ) -> Reloader {
        let callers_hash = Mutex::new(files_hash(&[&callers_file]));
        let tls_hash = Mutex::new(
            tls.as_deref()
                .map(|t| files_hash(&tls_files(t)))
                .unwrap_or_default(),
        );
        Reloader {
            gateway,
            policy_dir,
            callers_file,
            callers_hash,
            tls,
            tls_hash,
            rejected_revision: Mutex::default(),
            status: Mutex::default(),
        }
    }

    pub fn status(&self) -> ReloadStatus {
        self.status.lock().map(|s| s.clone()).unwrap_or_default()
    }

    /// Reloads the policy if its content changed. Compilation runs on a blocking thread.
    pub async fn reload_policy(&self, force: bool) {
        let dir = self.policy_dir.clone();
        let current = self.gateway.policy.load().revision().to_string();
        let rejected = self.rejected_revision.lock().ok().and_then(|r| r.clone());
        let outcome = tokio::task::spawn_blocking(move || {
            let sources = match PolicySources::read(&dir) {
                Ok(s) => s,
                Err(e) => return PolicyReload::Rejected(None, e.to_string()),
            };
            let revision = sources.revision();
            if !force && revision == current {
                return PolicyReload::Serving;
            }
            if !force && Some(&revision) == rejected.as_ref() {
                return PolicyReload::AlreadyRejected;
            }
            match Policy::compile(&dir, &sources) {
                Ok(p) => PolicyReload::Compiled(p),
                Err(e) => PolicyReload::Rejected(Some(revision), e.to_string()),
            }
        })
        .await
        .unwrap_or_else(|e| {
            PolicyReload::Rejected(None, format!("policy reload task failed: {e}"))
        });
        let metrics = &self.gateway.metrics;
        match outcome {
            PolicyReload::AlreadyRejected => {}
            PolicyReload::Serving => {
                // The files match what is serving (perhaps a bad edit was undone): all clear.
                self.set_policy_state(None, None);
            }
            PolicyReload::Compiled(policy) => {
                let revision = policy.revision().to_string();
                self.gateway.policy.store(Arc::new(policy));
                metrics.set_policy_revision(&revision);
                metrics.policy_reloads.with_label_values(&["success"]).inc();
                self.set_policy_state(None, None);
                tracing::info!(%revision, "policy reloaded");
            }
            PolicyReload::Rejected(revision, e) => {
                metrics.policy_reloads.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, serving = %self.gateway.policy.load().revision(), "policy reload rejected; the last good policy keeps serving");
                self.set_policy_state(revision, Some(e));
            }
        }
    }

    fn set_policy_state(&self, rejected: Option<String>, error: Option<String>) {
        if let Ok(mut r) = self.rejected_revision.lock() {
            *r = rejected;
        }
        if let Ok(mut s) = self.status.lock() {
            s.policy_error = error;
        }
    }

    /// Reloads the callers file if its content changed.
    pub async fn reload_callers(&self, force: bool) {
        let hash = files_hash(&[&self.callers_file]);
        if !self.changed(&self.callers_hash, hash, force) {
            return;
        }
        let result = Callers::load(&self.callers_file).map(|callers| {
            let n = callers.len();
            self.gateway.callers.store(Arc::new(callers));
            format!("{n} callers")
        });
        self.report(
            "callers",
            &self.gateway.metrics.callers_reloads,
            |s| &mut s.callers_error,
            result.map_err(|e| e.to_string()),
        );
    }

    /// Reloads the TLS certificate and key if either file changed (a renewed certificate).
    pub async fn reload_tls(&self, force: bool) {
        let Some(tls) = &self.tls else {
            return;
        };
        let hash = files_hash(&tls_files(tls));
        if !self.changed(&self.tls_hash, hash, force) {
            return;
        }
        let result = tls.reload().map(|()| tls.cert_file.display().to_string());
        self.report(
            "TLS certificate",
            &self.gateway.metrics.tls_reloads,
            |s| &mut s.tls_error,
            result.map_err(|e| e.to_string()),
        );
    }

    /// Whether the content behind `last` changed (or a reload is forced); remembers `hash`, so
    /// a broken edit is reported once, not at every check.
    fn changed(&self, last: &Mutex<String>, hash: String, force: bool) -> bool {
        let Ok(mut last) = last.lock() else {
            return true;
        };
        let changed = *last != hash;
        *last = hash;
        changed || force
    }

    /// Counts, logs and shows on `/readyz` the result of a callers or TLS reload. On failure
    /// the previous version keeps serving.
    fn report(
        &self,
        what: &str,
        counter: &prometheus::IntCounterVec,
        field: impl FnOnce(&mut ReloadStatus) -> &mut Option<String>,
        result: Result<String, String>,
    ) {
        let label = if result.is_ok() { "success" } else { "error" };
        counter.with_label_values(&[label]).inc();
        match &result {
            Ok(loaded) => tracing::info!(loaded = %loaded, "{what} reloaded"),
            Err(e) => {
                tracing::error!(error = %e, "{what} reload rejected; the previous version keeps serving")
            }
        }
        if let Ok(mut s) = self.status.lock() {
            *field(&mut s) = result.err();
        }
    }

    /// Watches files and SIGHUP until `stop` turns true.
    pub async fn run(self: Arc<Self>, watch_files: bool, mut stop: watch::Receiver<bool>) {
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        let (tx, mut events) = mpsc::unbounded_channel::<()>();
        // Keep the watcher alive for the life of this task.
        let _watcher = if watch_files {
            self.start_watcher(tx)
        } else {
            None
        };
        let mut hup = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut poll = tokio::time::interval(POLL_EVERY);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stopped => return,
                _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => {
                    tracing::info!("SIGHUP: reloading policy, callers and TLS certificate");
                    self.reload_policy(true).await;
                    self.reload_callers(true).await;
                    self.reload_tls(true).await;
                }
                Some(()) = events.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while events.try_recv().is_ok() {}
                    self.reload_policy(false).await;
                    self.reload_callers(false).await;
                    self.reload_tls(false).await;
                }
                _ = poll.tick(), if watch_files => {
                    self.reload_policy(false).await;
                    self.reload_callers(false).await;
                    self.reload_tls(false).await;
                }
            }
        }
    }

    fn start_watcher(&self, tx: mpsc::UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
        let mut files = vec![self.callers_file.clone()];
        if let Some(tls) = &self.tls {
            files.extend(tls_files(tls).map(Path::to_path_buf));
        }
        let relevant = Relevance {
            policy_dir: self.policy_dir.clone(),
            files,
        };
        let folders = relevant.folders();
        let mut watcher = match notify::recommended_watcher(
            move |res: notify::Result<notify::Event>| match res {
                Ok(event) if !event.paths.iter().any(|p| relevant.matters(p)) => {}
                // Errors (such as an overflowed event queue) may hide a change: check.
                _ => {
                    let _ = tx.send(());
                }
            },
        ) {
            Ok(w) => w,
            Err(e) => {
                tracing::warn!(error = %e, "file watching unavailable; relying on the periodic check and SIGHUP");
                return None;
            }
        };
        if let Err(e) = watcher.watch(&self.policy_dir, RecursiveMode::Recursive) {
            tracing::warn!(error = %e, dir = %self.policy_dir.display(), "cannot watch the policy dir");
        }
        // The folders of the callers and TLS files, so replacing a file (or a ConfigMap/Secret
        // swap) is seen.
        for dir in folders {
            if let Err(e) = watcher.watch(&dir, RecursiveMode::NonRecursive) {
                tracing::warn!(error = %e, dir = %dir.display(), "cannot watch a config folder");
            }
        }
        Some(watcher)
    }
}

/// Which file events can change what is loaded. The folders of the callers and TLS files are
/// watched whole (a replaced file or a Kubernetes Secret swap is only seen there), but other
/// files in them, such as an audit log written on every request, must not wake the reloader.
struct Relevance {
    policy_dir: PathBuf,
    /// The callers file and the TLS certificate and key files.
    files: Vec<PathBuf>,
}

impl Relevance {
    /// The folders to watch (once each).
    fn folders(&self) -> Vec<PathBuf> {
        let mut dirs: Vec<PathBuf> = Vec::new();
        for dir in self.files.iter().filter_map(|f| f.parent()) {
            if !dirs.iter().any(|d| d == dir) {
                dirs.push(dir.to_path_buf());
            }
        }
        dirs
    }

    fn matters(&self, path: &Path) -> bool {
        if path.starts_with(&self.policy_dir) {
            return true;
        }
        let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
            return true;
        };
        let mut in_watched_folder = false;
        for file in &self.files {
            if file.parent() == Some(dir) {
                in_watched_folder = true;
                if file.file_name() == Some(name) {
                    return true;
                }
            }
        }
        // `..data`, `..data_tmp`, `..2026_11_26_...`: the ConfigMap/Secret atomic swap. Anything
        // outside the watched places is unexpected: check rather than miss it.
        !in_watched_folder || name.as_encoded_bytes().starts_with(b"..")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_writes_beside_the_callers_file_do_not_wake_the_reloader() {
        let r = Relevance {
            policy_dir: PathBuf::from("/etc/waguard/policies"),
            files: vec![
                PathBuf::from("/etc/waguard/callers.toml"),
                PathBuf::from("/etc/waguard/tls/tls.crt"),
                PathBuf::from("/etc/waguard/tls/tls.key"),
            ],
        };
        assert_eq!(
            r.folders(),
            [
                PathBuf::from("/etc/waguard"),
                PathBuf::from("/etc/waguard/tls")
            ]
        );
        assert!(!r.matters(Path::new("/etc/waguard/audit.jsonl")));
        assert!(!r.matters(Path::new("/etc/waguard/audit.jsonl.000000000042")));
        assert!(r.matters(Path::new("/etc/waguard/callers.toml")));
        assert!(r.matters(Path::new("/etc/waguard/..data")));
        assert!(r.matters(Path::new("/etc/waguard/..2026_11_26_10_00_00.123")));
        assert!(r.matters(Path::new("/etc/waguard/policies/waguard/authz.rego")));
        assert!(r.matters(Path::new("/etc/waguard/policies/..data")));
        assert!(r.matters(Path::new("/etc/waguard/tls/tls.key")));
        assert!(r.matters(Path::new("/etc/waguard/tls/..data")));
        assert!(!r.matters(Path::new("/etc/waguard/tls/notes.txt")));
        // Anything outside the two watched places is unexpected: check rather than miss it.
        assert!(r.matters(Path::new("/elsewhere/file")));
    }
}
