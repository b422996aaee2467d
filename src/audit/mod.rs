//! The audit log: hash-chained JSON Lines, fsynced before the gateway acts on a decision.
//!
//! A single writer thread owns the file. Requests hand it records and wait; the thread writes
//! every record that is waiting, then calls `fsync` once for all of them (group commit). If a
//! write fails, the batch is rolled back (file truncated to the last good record, chain not
//! advanced) and every waiting request is told, so nothing is acted on without its record.
//! The thread reopens the file when it was removed or replaced, rotates it by size, and keeps
//! retrying after failures so the gateway recovers by itself.

pub mod chain;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use tokio::sync::oneshot;

pub use chain::{ChainHead, VerifyReport, verify_files};

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: cannot open the audit log: {message}")]
    Open { path: PathBuf, message: String },
    #[error("the audit log could not be written: {0}")]
    Write(String),
}

/// How the audit log is kept.
#[derive(Debug, Clone)]
pub struct AuditOptions {
    pub path: PathBuf,
    /// Also copy every record to stdout (for cluster log shipping).
    pub stdout: bool,
    /// Rotate when the file reaches this size; 0 = never.
    pub max_file_bytes: u64,
    /// Rotated files to keep (the oldest beyond this are removed); 0 = keep all.
    pub max_files: usize,
    /// Counted on every failed batch.
    pub failures: Option<prometheus::IntCounter>,
}

/// Records waiting for the writer thread, and who waits on them.
#[derive(Default)]
struct Queue {
    records: Vec<Value>,
    /// Callers of `append`: each hears whether the batch holding its record reached the disk.
    waiting: Vec<oneshot::Sender<Result<(), String>>>,
    flushes: Vec<oneshot::Sender<()>>,
    close: Option<oneshot::Sender<()>>,
    /// The handle was dropped without `close`: write what is queued and stop.
    dropped: bool,
    /// The writer has stopped; nothing more is accepted.
    stopped: bool,
    /// When the oldest queued record that nothing waits on arrived.
    lingering_since: Option<Instant>,
}

impl Queue {
    /// Something is waiting for the writer, or enough has piled up to write now.
    fn urgent(&self) -> bool {
        !self.waiting.is_empty()
            || !self.flushes.is_empty()
            || self.close.is_some()
            || self.dropped
            || self.records.len() >= MAX_BATCH
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The writer never panics while holding the lock; if it did, the queue is still sound.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Handle to the audit writer; shared by all requests.
pub struct AuditLog {
    shared: Arc<Shared>,
    healthy: Arc<AtomicBool>,
    last_error: Arc<Mutex<Option<String>>>,
}

/// Largest number of records written before one fsync.
const MAX_BATCH: usize = 1024;
/// While writes fail, the writer retries this often even without new records.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// Longest time a record nothing waits on (an outcome or a refusal) stays queued when no
/// durable record comes along to carry it. Waking the writer and paying an fsync for each of
/// them doubled the gateway's CPU per request at moderate load.
const LINGER: Duration = Duration::from_millis(50);

const STOPPED: &str = "the audit writer has stopped";

impl AuditLog {
    pub fn open(options: AuditOptions) -> Result<AuditLog, AuditError> {
        let healthy = Arc::new(AtomicBool::new(true));
        let last_error = Arc::new(Mutex::new(None));
        let writer = Writer::open(options, healthy.clone(), last_error.clone())?;
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
        });
        let path = writer.options.path.clone();
        let for_writer = shared.clone();
        std::thread::Builder::new()
            .name("waguard-audit".into())
            .spawn(move || writer.run(&for_writer))
            .map_err(|e| AuditError::Open {
                path,
                message: e.to_string(),
            })?;
        Ok(AuditLog {
            shared,
            healthy,
            last_error,
        })
    }

    /// Appends a record and returns once it is on disk (fsynced).
    pub async fn append(&self, record: Value) -> Result<(), AuditError> {
        self.submit(record).durable().await
    }

    /// Hands a record to the writer now; [`Submitted::durable`] says when it is on disk. Lets a
    /// request prepare its next step while the writer fsyncs.
    pub fn submit(&self, record: Value) -> Submitted {
        let (done, wait) = oneshot::channel();
        {
            let mut q = self.shared.lock();
            if q.stopped {
                return Submitted(None);
            }
            q.records.push(record);
            q.waiting.push(done);
        }
        self.shared.wake.notify_one();
        Submitted(Some(wait))
    }

    /// Queues a record without waiting for the disk: for records nothing waits on (outcomes,
    /// refusals). It is written with the next group commit, at the latest after [`LINGER`];
    /// a failure is counted and logged.
    pub fn record(&self, record: Value) {
        let wake = {
            let mut q = self.shared.lock();
            if q.stopped {
                tracing::error!("{STOPPED}; a record was dropped");
                return;
            }
            q.records.push(record);
            // The first lingering record starts the writer's linger timer: an idle writer
            // sleeps without a timeout and must be told. Later ones ride the same timer.
            let first = q.lingering_since.is_none();
            q.lingering_since.get_or_insert_with(Instant::now);
            first || q.records.len() >= MAX_BATCH
        };
        if wake {
            self.shared.wake.notify_one();
        }
    }

    /// Returns once every record queued before this call has been written (or failed).
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        {
            let mut q = self.shared.lock();
            if q.stopped {
                return;
            }
            q.flushes.push(done);
        }
        self.shared.wake.notify_one();
        let _ = wait.await;
    }

    /// Whether the last write succeeded (readiness).
    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn last_error(&self) -> Option<String> {
        self.last_error.lock().ok().and_then(|e| e.clone())
    }

    /// Writes what is queued, logs the chain head and stops the writer.
    pub async fn close(&self) {
        let (done, wait) = oneshot::channel();
        {
            let mut q = self.shared.lock();
            if q.stopped {
                return;
            }
            q.close = Some(done);
        }
        self.shared.wake.notify_one();
        let _ = wait.await;
    }
}

/// A record handed to the writer (see [`AuditLog::submit`]).
#[must_use = "a submitted record is only known to be on disk once `durable` says so"]
pub struct Submitted(Option<oneshot::Receiver<Result<(), String>>>);

impl Submitted {
    /// Returns once the record is on disk, or why it could not be written.
    pub async fn durable(self) -> Result<(), AuditError> {
        let Some(wait) = self.0 else {
            return Err(AuditError::Write(STOPPED.into()));
        };
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AuditError::Write(e)),
            Err(_) => Err(AuditError::Write(STOPPED.into())),
        }
    }
}

impl Drop for AuditLog {
    fn drop(&mut self) {
        self.shared.lock().dropped = true;
        self.shared.wake.notify_one();
    }
}

struct Writer {
    options: AuditOptions,
    file: Option<File>,
    /// (device, inode) of the open file, to notice it being removed or replaced.
    identity: Option<(u64, u64)>,
    /// Bytes of the open file that hold complete, fsynced records.
    len: u64,
    head: ChainHead,
    /// Seq of the first record in the current file (names the file when rotated).
    file_first_seq: u64,
    /// Records to write ahead of the next batch (recovery and outage notes).
    notes: Vec<Value>,
    outage: Option<Outage>,
    healthy: Arc<AtomicBool>,
    last_error: Arc<Mutex<Option<String>>>,
}

struct Outage {
    since: String,
    refused: u64,
    error: String,
}

fn now() -> String {
    OffsetDateTime::now_utc()
        .format(&Rfc3339)
        .unwrap_or_default()
}

fn open_err(path: &Path, e: impl std::fmt::Display) -> AuditError {
    AuditError::Open {
        path: path.to_path_buf(),
        message: e.to_string(),
    }
}

impl Writer {
    fn open(
        options: AuditOptions,
        healthy: Arc<AtomicBool>,
        last_error: Arc<Mutex<Option<String>>>,
    ) -> Result<Writer, AuditError> {
        let path = options.path.clone();
        let mut notes = Vec::new();
        let mut head = None;
        match std::fs::metadata(&path) {
            Ok(meta) if meta.is_file() => {
                let bytes = std::fs::read(&path).map_err(|e| open_err(&path, e))?;
                let (h, torn) = chain::recover_head(&bytes).map_err(|e| open_err(&path, e))?;
                if torn > 0 {
                    // A crash mid-write left part of a record that was never acknowledged.
                    let keep = (bytes.len() - torn) as u64;
                    let f = OpenOptions::new()
                        .write(true)
                        .open(&path)
                        .map_err(|e| open_err(&path, e))?;
                    f.set_len(keep)
                        .and_then(|_| f.sync_all())
                        .map_err(|e| open_err(&path, e))?;
                    notes.push(json!({
                        "type": "audit_recovery",
                        "time": now(),
                        "message": "discarded an incomplete final record left by a crash; its request was never acted on",
                        "discarded_bytes": torn,
                        "discarded_sha256": chain::line_hash(&bytes[bytes.len() - torn..]),
                    }));
                }
                head = h;
            }
            Ok(_) => {} // A device such as /dev/null or /dev/full: nothing to recover.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(open_err(&path, e)),
        }
        if head.is_none() {
            head = latest_rotated(&path).map_err(|e| open_err(&path, e))?;
        }
        let head = head.unwrap_or_else(ChainHead::genesis);
        let mut w = Writer {
            file_first_seq: head.next_seq,
            options,
            file: None,
            identity: None,
            len: 0,
            head,
            notes,
            outage: None,
            healthy,
            last_error,
        };
        w.reopen().map_err(|e| open_err(&path, e))?;
        Ok(w)
    }

    fn reopen(&mut self) -> std::io::Result<()> {
        let path = &self.options.path;
        let file = OpenOptions::new().create(true).append(true).open(path)?;
        let meta = file.metadata()?;
        self.identity = Some((meta.dev(), meta.ino()));
        self.len = meta.len();
        if meta.len() == 0 {
            self.file_first_seq = self.head.next_seq;
        }
        self.file = Some(file);
        sync_parent(path);
        Ok(())
    }

    /// Makes sure the open file is still the one at the path; reopens it otherwise.
    fn ensure_file(&mut self) -> std::io::Result<()> {
        let current = std::fs::metadata(&self.options.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if self.file.is_some() && current.is_some() && current == self.identity {
            return Ok(());
        }
        let replaced = self.file.is_some();
        self.file = None;
        self.reopen()?;
        if replaced {
            tracing::warn!(path = %self.options.path.display(), "audit log was removed or replaced; writing to a new file");
            self.notes.push(json!({
                "type": "audit_reopened",
                "time": now(),
                "message": "the audit file was removed or replaced while the gateway ran; the chain continues here",
            }));
        }
        Ok(())
    }

    fn run(mut self, shared: &Shared) {
        loop {
            let (records, waiting, flushes, close, stop) = {
                let mut q = shared.lock();
                loop {
                    if q.urgent() {
                        break;
                    }
                    // Without anything urgent the writer sleeps until a record nothing waits
                    // on has lingered long enough, or (during an outage) until the next retry.
                    let linger = q
                        .lingering_since
                        .map(|t| LINGER.saturating_sub(t.elapsed()));
                    let retry = self.outage.is_some().then_some(RETRY_EVERY);
                    let timeout = match (linger, retry) {
                        (Some(a), Some(b)) => Some(a.min(b)),
                        (a, b) => a.or(b),
                    };
                    match timeout {
                        None => q = shared.wake.wait(q).unwrap_or_else(|e| e.into_inner()),
                        Some(t) if t.is_zero() => break,
                        Some(t) => {
                            let (guard, result) = shared
                                .wake
                                .wait_timeout(q, t)
                                .unwrap_or_else(|e| e.into_inner());
                            q = guard;
                            if result.timed_out() {
                                break;
                            }
                        }
                    }
                }
                let stop = q.close.is_some() || q.dropped;
                if stop {
                    q.stopped = true;
                }
                q.lingering_since = None;
                (
                    std::mem::take(&mut q.records),
                    std::mem::take(&mut q.waiting),
                    std::mem::take(&mut q.flushes),
                    q.close.take(),
                    stop,
                )
            };
            // An empty batch during an outage writes just the outage note, to recover.
            if !records.is_empty() || !self.notes.is_empty() || self.outage.is_some() {
                let result = self.write_batch(&records);
                for w in waiting {
                    let _ = w.send(result.clone());
                }
            }
            for f in flushes {
                let _ = f.send(());
            }
            if stop {
                tracing::info!(next_seq = self.head.next_seq, last_hash = %self.head.last_hash, "audit log closed");
                if let Some(done) = close {
                    let _ = done.send(());
                }
                return;
            }
        }
    }

    /// Writes notes and records, fsyncs once. All or nothing.
    fn write_batch(&mut self, records: &[Value]) -> Result<(), String> {
        let result = self.try_write(records);
        match &result {
            Ok(()) => {
                self.healthy.store(true, Ordering::Relaxed);
                if let Ok(mut e) = self.last_error.lock() {
                    *e = None;
                }
            }
            Err(e) => {
                tracing::error!(error = %e, records = records.len(), "audit write failed; the affected requests are refused");
                if let Some(c) = &self.options.failures {
                    c.inc();
                }
                self.healthy.store(false, Ordering::Relaxed);
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(e.clone());
                }
                let outage = self.outage.get_or_insert_with(|| Outage {
                    since: now(),
                    refused: 0,
                    error: String::new(),
                });
                outage.refused += records.len() as u64;
                outage.error = e.clone();
            }
        }
        result
    }

    fn try_write(&mut self, records: &[Value]) -> Result<(), String> {
        let path = self.options.path.display().to_string();
        self.ensure_file().map_err(|e| format!("{path}: {e}"))?;
        let mut head = self.head.clone();
        let mut buf = Vec::new();
        let outage_note = self.outage.as_ref().map(|o| {
            json!({
                "type": "audit_outage",
                "time": now(),
                "since": o.since,
                "refused_records": o.refused,
                "error": o.error,
                "message": "audit writes failed for a while; the requests whose records could not be written were refused",
            })
        });
        for r in self.notes.iter().chain(outage_note.iter()).chain(records) {
            let (line, next) = head.seal(r)?;
            buf.extend_from_slice(&line);
            buf.push(b'\n');
            head = next;
        }
        let Some(file) = self.file.as_mut() else {
            return Err(format!("{path}: not open"));
        };
        if let Err(e) = file.write_all(&buf).and_then(|_| file.sync_data()) {
            // Roll back whatever part of the batch reached the file; reopen next time.
            let _ = file.set_len(self.len);
            self.file = None;
            return Err(format!("{path}: {e}"));
        }
        self.len += buf.len() as u64;
        self.head = head;
        self.notes.clear();
        self.outage = None;
        if self.options.stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
        if self.options.max_file_bytes > 0 && self.len >= self.options.max_file_bytes {
            self.rotate();
        }
        Ok(())
    }

    /// Renames the full file to `<name>.<first seq>` and starts a new one; the chain carries on.
    fn rotate(&mut self) {
        let path = &self.options.path;
        let rotated = rotated_name(path, self.file_first_seq);
        match std::fs::rename(path, &rotated) {
            Ok(()) => {
                tracing::info!(rotated = %rotated.display(), next_seq = self.head.next_seq, last_hash = %self.head.last_hash, "audit log rotated");
                self.file = None;
                self.file_first_seq = self.head.next_seq;
                if let Err(e) = self.reopen() {
                    tracing::error!(error = %e, "could not open a new audit file after rotation");
                }
                self.apply_retention();
            }
            Err(e) => {
                tracing::error!(error = %e, "audit log rotation failed; continuing in the current file")
            }
        }
    }
}

impl Writer {
    /// Removes the oldest rotated files beyond `max_files`. The removal is recorded in the
    /// chain (an `audit_retention` record naming the files and the first seq still kept), so
    /// a log that starts mid-chain says why.
    fn apply_retention(&mut self) {
        let keep = self.options.max_files;
        if keep == 0 {
            return;
        }
        let files = match rotated_files(&self.options.path) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "audit retention: cannot list rotated files");
                return;
            }
        };
        let excess = files.len().saturating_sub(keep);
        let mut removed = Vec::new();
        for file in &files[..excess] {
            match std::fs::remove_file(file) {
                Ok(()) => removed.push(file_name(file)),
                Err(e) => {
                    tracing::error!(file = %file.display(), error = %e, "audit retention: cannot remove a rotated file");
                }
            }
        }
        if removed.is_empty() {
            return;
        }
        sync_parent(&self.options.path);
        let first_kept_seq = files
            .get(excess)
            .and_then(|f| f.extension())
            .and_then(|e| e.to_str())
            .and_then(|e| e.parse::<u64>().ok())
            .unwrap_or(self.file_first_seq);
        tracing::info!(
            ?removed,
            first_kept_seq,
            "audit retention removed rotated files"
        );
        self.notes.push(json!({
            "type": "audit_retention",
            "time": now(),
            "removed": removed,
            "first_kept_seq": first_kept_seq,
            "message": format!("rotated audit files beyond audit.max_files = {keep} were removed; records before seq {first_kept_seq} are no longer on this volume"),
        }));
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn rotated_name(path: &Path, first_seq: u64) -> PathBuf {
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(format!(".{first_seq:012}"));
    path.with_file_name(name)
}

/// Rotated files of `path`, oldest first.
pub fn rotated_files(path: &Path) -> std::io::Result<Vec<PathBuf>> {
    let Some(dir) = path.parent().map(|p| {
        if p.as_os_str().is_empty() {
            Path::new(".")
        } else {
            p
        }
    }) else {
        return Ok(Vec::new());
    };
    let Some(stem) = path.file_name().and_then(|n| n.to_str()) else {
        return Ok(Vec::new());
    };
    let mut found = Vec::new();
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    for entry in entries {
        let entry = entry?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else { continue };
        if let Some(suffix) = name.strip_prefix(stem).and_then(|s| s.strip_prefix('.'))
            && suffix.len() == 12
            && suffix.bytes().all(|b| b.is_ascii_digit())
        {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

fn latest_rotated(path: &Path) -> Result<Option<ChainHead>, String> {
    let files = rotated_files(path).map_err(|e| e.to_string())?;
    let Some(last) = files.last() else {
        return Ok(None);
    };
    let bytes = std::fs::read(last).map_err(|e| format!("{}: {e}", last.display()))?;
    chain::recover_head(&bytes)
        .map(|(h, _)| h)
        .map_err(|e| format!("{}: {e}", last.display()))
}

fn sync_parent(path: &Path) {
    if let Some(dir) = path.parent()
        && let Ok(d) = File::open(if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        })
    {
        let _ = d.sync_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(path: &Path) -> AuditOptions {
        AuditOptions {
            path: path.to_path_buf(),
            stdout: false,
            max_file_bytes: 0,
            max_files: 0,
            failures: None,
        }
    }

    #[tokio::test]
    async fn records_chain_across_restarts_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut o = options(&path);
        o.max_file_bytes = 400;
        let log = AuditLog::open(o.clone()).unwrap();
        for i in 0..10 {
            log.append(json!({"type": "decision", "i": i}))
                .await
                .unwrap();
        }
        log.close().await;
        let log = AuditLog::open(o).unwrap();
        log.append(json!({"type": "decision", "i": 10}))
            .await
            .unwrap();
        log.close().await;
        let mut files = rotated_files(&path).unwrap();
        assert!(files.len() >= 2, "{files:?}");
        files.push(path.clone());
        let report = verify_files(&files).unwrap();
        assert_eq!(report.records, 11);
        assert!(!report.starts_mid_chain);
    }

    #[tokio::test]
    async fn a_record_nothing_waits_on_reaches_the_disk_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(options(&path)).unwrap();
        // Let the writer fall asleep first: an idle gateway is the case that matters.
        tokio::time::sleep(Duration::from_millis(200)).await;
        log.record(json!({"type": "outcome", "n": 1}));
        // No flush, no other record: the writer's linger timer must write it.
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() {
                break;
            }
            tokio::time::sleep(LINGER / 5).await;
        }
        assert!(text.contains("\"n\":1"), "{text:?}");
        // A durable append carries whatever is queued with it, in order.
        log.record(json!({"type": "outcome", "n": 2}));
        log.append(json!({"type": "decision", "n": 3}))
            .await
            .unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let two = text.find("\"n\":2").unwrap();
        let three = text.find("\"n\":3").unwrap();
        assert!(two < three, "{text}");
        log.close().await;
        assert!(log.append(json!({"type": "decision"})).await.is_err());
    }

    #[tokio::test]
    async fn retention_keeps_max_files_rotated_files_and_records_what_it_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut o = options(&path);
        o.max_file_bytes = 400;
        o.max_files = 2;
        let log = AuditLog::open(o).unwrap();
        for i in 0..30 {
            log.append(json!({"type": "decision", "i": i}))
                .await
                .unwrap();
        }
        log.close().await;
        let mut files = rotated_files(&path).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        files.push(path.clone());
        // What is left is one intact chain that starts where the removed files ended.
        let report = verify_files(&files).unwrap();
        assert!(report.starts_mid_chain);
        let text: String = files
            .iter()
            .map(|f| std::fs::read_to_string(f).unwrap())
            .collect();
        let notes: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["type"] == "audit_retention")
            .collect();
        assert!(!notes.is_empty());
        let last = notes.last().unwrap();
        assert!(
            last["removed"][0]
                .as_str()
                .unwrap()
                .starts_with("audit.jsonl.")
        );
        // The last removal left the oldest file that is still there.
        assert_eq!(last["first_kept_seq"].as_u64(), report.first_seq);
        // Every decision from the first kept seq on is still there.
        let kept: Vec<u64> = text
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|r| r["type"] == "decision")
            .map(|r| r["i"].as_u64().unwrap())
            .collect();
        assert_eq!(kept.last(), Some(&29));
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
    }

    #[tokio::test]
    async fn a_torn_tail_is_discarded_and_noted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(options(&path)).unwrap();
        log.append(json!({"type": "decision"})).await.unwrap();
        log.close().await;
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"type\":\"decis").unwrap();
        let log = AuditLog::open(options(&path)).unwrap();
        log.append(json!({"type": "decision"})).await.unwrap();
        log.close().await;
        let report = verify_files(std::slice::from_ref(&path)).unwrap();
        assert_eq!(report.records, 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"type\":\"audit_recovery\""));
    }
}
