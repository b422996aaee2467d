//! Hot reload of policy, callers and the TLS certificate: on file change (inotify, plus a periodic content check
//! that also catches ConfigMap and git-sync symlink swaps) and on SIGHUP.
//!
//! New versions are read and compiled off the request path and swapped in atomically; requests
//! in flight finish on the version they started with. Files still being written are not loaded:
//! a version is taken only once its files have been left alone for [`settle::QUIET`], and until
//! then the reload is postponed, not rejected. A broken edit is rejected: the last good version
//! keeps serving and the error is logged, counted and shown on `/readyz`.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use notify::{RecursiveMode, Watcher};
use sha2::{Digest, Sha256};
use tokio::sync::{mpsc, watch};

use crate::auth::Callers;
use crate::gateway::Gateway;
use crate::policy::{Policy, PolicySources};
use crate::server::TlsCertificate;
use crate::settle;

/// How often the content check runs, whatever inotify says.
const POLL_EVERY: Duration = Duration::from_secs(2);
/// File events come in bursts (editors, `kubectl` swaps); wait for the burst to end.
const DEBOUNCE: Duration = Duration::from_millis(200);
/// Added to a postponed reload's wait, so the retry finds the files settled, not a moment short.
const RETRY_MARGIN: Duration = Duration::from_millis(50);

/// Errors of the last reload attempts, shown on `/readyz`.
#[derive(Default, Debug, Clone)]
pub struct ReloadStatus {
    pub policy_error: Option<String>,
    pub callers_error: Option<String>,
    pub tls_error: Option<String>,
}

/// After files have kept changing this long, each postponed reload is logged as a warning: an
/// edit is waiting on something that keeps writing (a process logging into the policy dir?).
const POSTPONED_TOO_LONG: Duration = Duration::from_secs(30);

/// Content seen but not loaded yet because it changed a moment ago.
#[derive(Debug)]
struct Waiting {
    digest: String,
    /// When this process first saw this content.
    seen: Instant,
    /// When the first of the postponements in a row began (the content may have changed since).
    postponed: Instant,
}

type Pending = Mutex<Option<Waiting>>;

pub struct Reloader {
    gateway: Arc<Gateway>,
    policy_dir: PathBuf,
    callers_file: PathBuf,
    tls: Option<Arc<TlsCertificate>>,
    /// Hash of the TLS files last loaded or rejected.
    tls_hash: Mutex<String>,
    /// Revision (or read error) of the last rejected policy, so a broken edit is reported
    /// once, not every poll.
    rejected_policy: Mutex<Option<String>>,
    /// Digest (or read error) of the last rejected callers file, likewise.
    rejected_callers: Mutex<Option<String>>,
    policy_pending: Pending,
    callers_pending: Pending,
    tls_pending: Pending,
    pub status: Mutex<ReloadStatus>,
}

/// The data behind a mutex even if a panic poisoned it: reload state stays usable.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// SHA-256 over the files' contents, to notice a change (an unreadable file counts as empty),
/// and when any of them last changed (an unreadable one counts as changed now).
fn files_state(paths: &[&Path]) -> (String, Option<SystemTime>) {
    let mut h = Sha256::new();
    let mut changed = None;
    for p in paths {
        let bytes = std::fs::read(p);
        let at = match (&bytes, std::fs::metadata(p)) {
            (Ok(_), Ok(meta)) => settle::changed_at(&meta),
            _ => Some(SystemTime::now()),
        };
        changed = changed.max(at);
        let bytes = bytes.unwrap_or_default();
        h.update((bytes.len() as u64).to_le_bytes());
        h.update(&bytes);
    }
    (hex::encode(h.finalize()), changed)
}

fn tls_files(tls: &TlsCertificate) -> [&Path; 2] {
    [&tls.cert_file, &tls.key_file]
}

/// Whether content read now (named by `digest`, its files last changed at `changed`) may be
/// loaded, or how long to wait before looking again. It may once its files have been left
/// alone for [`settle::QUIET`], by their change times or, when those are no help (a clock
/// ahead of this one), by this process seeing the same content for that long.
fn settled(pending: &Pending, digest: &str, changed: Option<SystemTime>) -> Result<(), Duration> {
    let mut pending = lock(pending);
    let Some(wait) = settle::quiet_in(changed) else {
        *pending = None;
        return Ok(());
    };
    let now = Instant::now();
    match pending.as_mut() {
        Some(w) if w.digest == digest => {
            match settle::QUIET
                .checked_sub(w.seen.elapsed())
                .filter(|d| !d.is_zero())
            {
                None => {
                    *pending = None;
                    Ok(())
                }
                Some(rest) => Err(wait.min(rest)),
            }
        }
        Some(w) => {
            w.digest = digest.to_string();
            w.seen = now;
            Err(wait)
        }
        None => {
            *pending = Some(Waiting {
                digest: digest.to_string(),
                seen: now,
                postponed: now,
            });
            Err(wait)
        }
    }
}

/// Logs a postponed reload: at debug level, or as a warning once it has waited too long.
fn postponed(pending: &Pending, what: &str, wait: Duration) {
    let waited = lock(pending)
        .as_ref()
        .map(|w| w.postponed.elapsed())
        .unwrap_or_default();
    if waited >= POSTPONED_TOO_LONG {
        tracing::warn!(
            waited_seconds = waited.as_secs(),
            "{what} keep changing; not loaded until they have been left alone for a second"
        );
    } else {
        tracing::debug!(retry_in = ?wait, "{what} still being written; reload postponed");
    }
}

/// The shorter of two waits, either of which may be absent.
fn sooner(a: Option<Duration>, b: Option<Duration>) -> Option<Duration> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

impl Reloader {
    pub fn new(
        gateway: Arc<Gateway>,
        policy_dir: PathBuf,
        callers_file: PathBuf,
        tls: Option<Arc<TlsCertificate>>,
    ) -> Reloader {
        let tls_hash = Mutex::new(
            tls.as_deref()
                .map(|t| files_state(&tls_files(t)).0)
                .unwrap_or_default(),
        );
        Reloader {
            gateway,
            policy_dir,
            callers_file,
            tls,
            tls_hash,
            rejected_policy: Mutex::default(),
            rejected_callers: Mutex::default(),
            policy_pending: Mutex::default(),
            callers_pending: Mutex::default(),
            tls_pending: Mutex::default(),
            status: Mutex::default(),
        }
    }

    pub fn status(&self) -> ReloadStatus {
        lock(&self.status).clone()
    }

    /// Reloads the policy if its content changed (or `force`). Reading and compiling run on a
    /// blocking thread. Returns how long to wait before trying again when the files are still
    /// being written.
    pub async fn reload_policy(&self, force: bool) -> Option<Duration> {
        let dir = self.policy_dir.clone();
        let read = tokio::task::spawn_blocking(move || PolicySources::read_once(&dir))
            .await
            .map_err(|e| format!("policy reload task failed: {e}"))
            .and_then(|r| r.map_err(|e| e.to_string()));
        // A read error counts as a change just now: replacing a file or a ConfigMap swap can
        // fail a read for a moment, so it is reported only if it persists.
        let (key, changed) = match &read {
            Ok((sources, changed)) => (sources.revision(), *changed),
            Err(e) => (format!("error: {e}"), Some(SystemTime::now())),
        };
        if !force && key == self.gateway.policy.load().revision() {
            // The files match what is serving (perhaps a bad edit was undone): all clear.
            *lock(&self.policy_pending) = None;
            self.set_policy_state(None, None);
            return None;
        }
        if !force && lock(&self.rejected_policy).as_ref() == Some(&key) {
            // The same broken content as last time, reported then.
            return None;
        }
        if let Err(wait) = settled(&self.policy_pending, &key, changed) {
            postponed(&self.policy_pending, "policy files", wait);
            return Some(wait);
        }
        let compiled = match read {
            Err(e) => Err(e),
            Ok((sources, _)) => {
                let dir = self.policy_dir.clone();
                tokio::task::spawn_blocking(move || Policy::compile(&dir, &sources))
                    .await
                    .map_err(|e| format!("policy reload task failed: {e}"))
                    .and_then(|r| r.map_err(|e| e.to_string()))
            }
        };
        let metrics = &self.gateway.metrics;
        match compiled {
            Ok(policy) => {
                let revision = policy.revision().to_string();
                self.gateway.policy.store(Arc::new(policy));
                metrics.set_policy_revision(&revision);
                metrics.policy_reloads.with_label_values(&["success"]).inc();
                self.set_policy_state(None, None);
                tracing::info!(%revision, "policy reloaded");
            }
            Err(e) => {
                metrics.policy_reloads.with_label_values(&["error"]).inc();
                tracing::error!(error = %e, serving = %self.gateway.policy.load().revision(), "policy reload rejected; the last good policy keeps serving");
                self.set_policy_state(Some(key), Some(e));
            }
        }
        None
    }

    fn set_policy_state(&self, rejected: Option<String>, error: Option<String>) {
        *lock(&self.rejected_policy) = rejected;
        lock(&self.status).policy_error = error;
    }

    /// Reloads the callers file if its content changed (or `force`). Returns how long to wait
    /// before trying again when the file is still being written.
    pub async fn reload_callers(&self, force: bool) -> Option<Duration> {
        let read = Callers::read(&self.callers_file);
        // A read error counts as a change just now (see `reload_policy`).
        let (key, changed) = match &read {
            Ok((text, changed)) => (Callers::digest_of(text), *changed),
            Err(e) => (format!("error: {e}"), Some(SystemTime::now())),
        };
        if !force && key == self.gateway.callers.load().digest() {
            // The file is what is serving (perhaps a bad edit was undone): all clear.
            *lock(&self.callers_pending) = None;
            *lock(&self.rejected_callers) = None;
            lock(&self.status).callers_error = None;
            return None;
        }
        if !force && lock(&self.rejected_callers).as_ref() == Some(&key) {
            return None;
        }
        if let Err(wait) = settled(&self.callers_pending, &key, changed) {
            postponed(&self.callers_pending, "callers file contents", wait);
            return Some(wait);
        }
        let result = read
            .and_then(|(text, _)| Callers::parse(&self.callers_file, &text))
            .map(|callers| {
                let n = callers.len();
                self.gateway.callers.store(Arc::new(callers));
                format!("{n} callers")
            });
        *lock(&self.rejected_callers) = result.is_err().then_some(key);
        self.report(
            "callers",
            &self.gateway.metrics.callers_reloads,
            |s| &mut s.callers_error,
            result.map_err(|e| e.to_string()),
        );
        None
    }

    /// Reloads the TLS certificate and key if either file changed (a renewed certificate), or
    /// `force`. Returns how long to wait before trying again when they are still being written.
    pub async fn reload_tls(&self, force: bool) -> Option<Duration> {
        let tls = self.tls.as_ref()?;
        let (hash, changed) = files_state(&tls_files(tls));
        if !force && *lock(&self.tls_hash) == hash {
            *lock(&self.tls_pending) = None;
            return None;
        }
        if let Err(wait) = settled(&self.tls_pending, &hash, changed) {
            postponed(&self.tls_pending, "TLS files", wait);
            return Some(wait);
        }
        // Remembered whatever the outcome, so a broken pair is reported once, not every check.
        *lock(&self.tls_hash) = hash;
        let result = tls.reload().map(|()| tls.cert_file.display().to_string());
        self.report(
            "TLS certificate",
            &self.gateway.metrics.tls_reloads,
            |s| &mut s.tls_error,
            result.map_err(|e| e.to_string()),
        );
        None
    }

    /// Checks policy, callers and TLS files; returns how soon to look again for those still
    /// being written.
    async fn reload_all(&self, force: bool) -> Option<Duration> {
        let policy = self.reload_policy(force).await;
        let callers = self.reload_callers(force).await;
        let tls = self.reload_tls(force).await;
        sooner(sooner(policy, callers), tls)
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
        *field(&mut lock(&self.status)) = result.err();
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
        // When to look again at files that were still being written. Kept even when file
        // watching is off, so a SIGHUP that came mid-write still takes effect.
        let mut retry: Option<tokio::time::Instant> = None;
        loop {
            let again = tokio::select! {
                _ = &mut stopped => return,
                _ = async { match hup.as_mut() { Some(h) => { h.recv().await; } None => std::future::pending().await } } => {
                    tracing::info!("SIGHUP: reloading policy, callers and TLS certificate");
                    self.reload_all(true).await
                }
                Some(()) = events.recv() => {
                    tokio::time::sleep(DEBOUNCE).await;
                    while events.try_recv().is_ok() {}
                    self.reload_all(false).await
                }
                _ = poll.tick(), if watch_files => self.reload_all(false).await,
                _ = tokio::time::sleep_until(retry.unwrap_or_else(tokio::time::Instant::now)), if retry.is_some() => {
                    self.reload_all(false).await
                }
            };
            retry = again.map(|wait| tokio::time::Instant::now() + wait + RETRY_MARGIN);
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
        watch(relevant, tx)
    }
}

/// Watches the policy dir and the folders of the callers and TLS files; sends on `tx` when an
/// event may have changed what is loaded. `None` when file watching is unavailable.
fn watch(relevant: Relevance, tx: mpsc::UnboundedSender<()>) -> Option<notify::RecommendedWatcher> {
    let folders = relevant.folders();
    let policy_dir = relevant.policy_dir.clone();
    let mut watcher = match notify::recommended_watcher(
        move |res: notify::Result<notify::Event>| match res {
            Ok(event) if !relevant.may_change(&event) => {}
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
    if let Err(e) = watcher.watch(&policy_dir, RecursiveMode::Recursive) {
        tracing::warn!(error = %e, dir = %policy_dir.display(), "cannot watch the policy dir");
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

    /// Whether `event` may have changed what is loaded. Reads never do: the reloader's own
    /// reads of the policy dir raise open, access and close events, and reacting to them made
    /// it re-read the whole dir every debounce period, forever.
    fn may_change(&self, event: &notify::Event) -> bool {
        use notify::event::{AccessKind, AccessMode, EventKind};
        let read_only = matches!(event.kind, EventKind::Access(kind)
            if kind != AccessKind::Close(AccessMode::Write));
        !read_only && event.paths.iter().any(|p| self.matters(p))
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

    fn ago(secs: u64) -> Option<SystemTime> {
        SystemTime::now().checked_sub(Duration::from_secs(secs))
    }

    #[test]
    fn reading_the_watched_files_is_not_a_change_but_writing_one_is() {
        let dir = tempfile::tempdir().unwrap();
        let policy_dir = dir.path().join("policies");
        std::fs::create_dir(&policy_dir).unwrap();
        let file = policy_dir.join("authz.rego");
        std::fs::write(&file, "package waguard.authz\n").unwrap();
        let (tx, mut events) = mpsc::unbounded_channel();
        let relevant = Relevance {
            policy_dir: policy_dir.clone(),
            files: Vec::new(),
        };
        let _watcher = watch(relevant, tx).expect("inotify works here");
        // What every content check does: list the dir and read each file.
        for _ in 0..3 {
            assert_eq!(std::fs::read_dir(&policy_dir).unwrap().count(), 1);
            std::fs::read(&file).unwrap();
        }
        std::thread::sleep(Duration::from_millis(300));
        assert!(
            events.try_recv().is_err(),
            "reading the files counted as a change"
        );
        std::fs::write(&file, "package waguard.authz\n# edited\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(5);
        while events.try_recv().is_err() {
            assert!(Instant::now() < deadline, "the edit was not noticed");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn content_is_loaded_only_once_its_files_were_left_alone() {
        let pending = Pending::default();
        // Changed long ago: at once.
        assert_eq!(settled(&pending, "a", ago(60)), Ok(()));
        // Changed just now: wait, and look again when it is QUIET old.
        let wait = settled(&pending, "b", Some(SystemTime::now())).unwrap_err();
        assert!(
            wait > Duration::from_millis(900) && wait <= settle::QUIET,
            "{wait:?}"
        );
        // Different content again: the wait starts over.
        assert!(settled(&pending, "c", Some(SystemTime::now())).is_err());
        assert!(lock(&pending).as_ref().is_some_and(|w| w.digest == "c"));
    }

    #[test]
    fn content_dated_in_the_future_settles_once_it_stopped_changing() {
        let pending = Pending::default();
        let future = SystemTime::now().checked_add(Duration::from_secs(3600));
        assert_eq!(settled(&pending, "a", future), Err(settle::QUIET));
        let wait = settled(&pending, "a", future).unwrap_err();
        assert!(wait <= settle::QUIET);
        // The same content, seen for QUIET by this process's clock.
        if let Some(w) = lock(&pending).as_mut() {
            w.seen -= settle::QUIET;
        }
        assert_eq!(settled(&pending, "a", future), Ok(()));
        assert!(lock(&pending).is_none());
    }

    #[test]
    fn loading_at_startup_reads_a_fresh_file_until_two_reads_agree() {
        let mut reads = ["half", "more", "done", "done"].into_iter();
        let mut count = 0;
        let got: Result<&str, ()> = settle::read_steady(
            || {
                count += 1;
                let value = reads.next().unwrap();
                Ok(settle::Read {
                    value,
                    digest: value.to_string(),
                    changed: Some(SystemTime::now()),
                })
            },
            || (),
        );
        assert_eq!((got, count), (Ok("done"), 4));
        // A file left alone for a while is read once.
        let mut count = 0;
        let got: Result<&str, ()> = settle::read_steady(
            || {
                count += 1;
                Ok(settle::Read {
                    value: "old",
                    digest: "old".into(),
                    changed: ago(60),
                })
            },
            || (),
        );
        assert_eq!((got, count), (Ok("old"), 1));
    }

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
