//! Hot reload of policy and callers: on file change (inotify, plus a periodic content check
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
}

pub struct Reloader {
    gateway: Arc<Gateway>,
    policy_dir: PathBuf,
    callers_file: PathBuf,
    callers_hash: Mutex<String>,
    /// Revision of the last rejected policy, so a broken edit is reported once, not every poll.
    rejected_revision: Mutex<Option<String>>,
    pub status: Mutex<ReloadStatus>,
}

fn file_hash(path: &Path) -> String {
    std::fs::read(path)
        .map(|b| hex::encode(Sha256::digest(&b)))
        .unwrap_or_default()
}

impl Reloader {
    pub fn new(gateway: Arc<Gateway>, policy_dir: PathBuf, callers_file: PathBuf) -> Reloader {
        let callers_hash = Mutex::new(file_hash(&callers_file));
        Reloader {
            gateway,
            policy_dir,
            callers_file,
            callers_hash,
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
        let hash = file_hash(&self.callers_file);
        let unchanged = self
            .callers_hash
            .lock()
            .map(|h| *h == hash)
            .unwrap_or(false);
        if unchanged && !force {
            return;
        }
        let metrics = &self.gateway.metrics;
        match Callers::load(&self.callers_file) {
            Ok(callers) => {
                let n = callers.len();
                self.gateway.callers.store(Arc::new(callers));
                if let Ok(mut h) = self.callers_hash.lock() {
                    *h = hash;
                }
                metrics
                    .callers_reloads
                    .with_label_values(&["success"])
                    .inc();
                if let Ok(mut s) = self.status.lock() {
                    s.callers_error = None;
                }
                tracing::info!(callers = n, "callers reloaded");
            }
            Err(e) => {
                if let Ok(mut h) = self.callers_hash.lock() {
                    *h = hash;
                }
                metrics.callers_reloads.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, "callers reload rejected; the previous callers keep working");
                if let Ok(mut s) = self.status.lock() {
                    s.callers_error = Some(e.to_string());
                }
            }
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
                    tracing::info!("SIGHUP: reloading policy and callers");
                    self.reload_policy(true).await;
                    self.reload_callers(true).await;
                }
                Some(()) = events.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while events.try_recv().is_ok() {}
                    self.reload_policy(false).await;
                    self.reload_callers(false).await;
                }
                _ = poll.tick(), if watch_files => {
                    self.reload_policy(false).await;
                    self.reload_callers(false).await;
                }
            }
        }
    }

    fn start_watcher(&self, tx: mpsc::UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
        let relevant = Relevance {
            policy_dir: self.policy_dir.clone(),
            callers_dir: self.callers_file.parent().map(Path::to_path_buf),
            callers_name: self.callers_file.file_name().map(|n| n.to_os_string()),
        };
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
        // The callers file's folder, so replacing the file (or a ConfigMap/Secret swap) is seen.
        if let Some(parent) = self.callers_file.parent()
            && let Err(e) = watcher.watch(parent, RecursiveMode::NonRecursive)
        {
            tracing::warn!(error = %e, dir = %parent.display(), "cannot watch the callers file's folder");
        }
        Some(watcher)
    }
}

/// Which file events can change what is loaded. The callers file's folder is watched whole (a
/// replaced file or a Kubernetes Secret swap is only seen there), but other files in it, such
/// as an audit log written on every request, must not wake the reloader.
struct Relevance {
    policy_dir: PathBuf,
    callers_dir: Option<PathBuf>,
    callers_name: Option<std::ffi::OsString>,
}

impl Relevance {
    fn matters(&self, path: &Path) -> bool {
        if path.starts_with(&self.policy_dir) {
            return true;
        }
        let Some(name) = path.file_name() else {
            return true;
        };
        if self.callers_dir.as_deref() != path.parent() {
            return true;
        }
        // `..data`, `..data_tmp`, `..2026_11_26_...`: the ConfigMap/Secret atomic swap.
        Some(name) == self.callers_name.as_deref() || name.as_encoded_bytes().starts_with(b"..")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn audit_writes_beside_the_callers_file_do_not_wake_the_reloader() {
        let r = Relevance {
            policy_dir: PathBuf::from("/etc/waguard/policies"),
            callers_dir: Some(PathBuf::from("/etc/waguard")),
            callers_name: Some("callers.toml".into()),
        };
        assert!(!r.matters(Path::new("/etc/waguard/audit.jsonl")));
        assert!(!r.matters(Path::new("/etc/waguard/audit.jsonl.000000000042")));
        assert!(r.matters(Path::new("/etc/waguard/callers.toml")));
        assert!(r.matters(Path::new("/etc/waguard/..data")));
        assert!(r.matters(Path::new("/etc/waguard/..2026_11_26_10_00_00.123")));
        assert!(r.matters(Path::new("/etc/waguard/policies/waguard/authz.rego")));
        assert!(r.matters(Path::new("/etc/waguard/policies/..data")));
        // Anything outside the two watched places is unexpected: check rather than miss it.
        assert!(r.matters(Path::new("/elsewhere/file")));
    }
}
