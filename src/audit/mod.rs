//! The audit log: typed records, hash-chained JSON Lines, fsynced before the gateway acts on a
//! decision, with signed checkpoints of the chain.
//!
//! Requests hand records to one writer thread through a queue (this file); the thread groups
//! what is waiting into one write and one fsync (`writer`), in a file it rotates, trims and
//! recovers (`file`), sealing each record into the hash chain (`chain`) and signing the chain
//! head now and then (`checkpoint`, `note`). `verify` checks all of that after the fact;
//! `record` is the schema.

pub mod chain;
pub mod checkpoint;
mod file;
pub mod note;
pub mod record;
mod stdout;
pub mod summary;
pub mod verify;
mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

pub use chain::ChainHead;
pub use file::rotated_files;
pub use note::SigningKey;
pub use record::AuditRecord;
pub use verify::{VerifyOptions, VerifyReport, verify_files};

use checkpoint::Checkpointer;
use file::AuditFile;
use stdout::StdoutCopy;
use writer::Writer;

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
    /// Bytes the stdout copy may hold while its reader falls behind.
    pub stdout_buffer_bytes: usize,
    /// Rotate when the file reaches this size; 0 = never.
    pub max_file_bytes: u64,
    /// Rotated files to keep (the oldest beyond this are removed); 0 = keep all.
    pub max_files: usize,
    /// Signs checkpoints of the chain; `None`: no checkpoints.
    pub signing_key: Option<Arc<SigningKey>>,
    /// The origin line of checkpoints.
    pub log_name: String,
    pub checkpoint_interval: Duration,
    /// Records waiting this long for the writer make the log unhealthy (readiness).
    pub stall_after: Duration,
    /// Counted on every failed batch.
    pub failures: Option<prometheus::IntCounter>,
    /// Counts records dropped from the stdout copy (never from the file).
    pub stdout_dropped: Option<prometheus::IntCounter>,
}

impl AuditOptions {
    /// Options for a log at `path` with everything else at its default.
    pub fn new(path: PathBuf) -> AuditOptions {
        AuditOptions {
            path,
            stdout: false,
            stdout_buffer_bytes: 4 * 1024 * 1024,
            max_file_bytes: 0,
            max_files: 0,
            signing_key: None,
            log_name: "waguard".into(),
            checkpoint_interval: Duration::from_secs(10),
            stall_after: STALLED_AFTER,
            failures: None,
            stdout_dropped: None,
        }
    }
}

/// Records that have waited this long for the writer make readiness fail by default.
pub const STALLED_AFTER: Duration = Duration::from_secs(5);

type Waiter = oneshot::Sender<Result<(), String>>;

/// Records waiting for the writer thread, and who waits on them.
#[derive(Default)]
struct Queue {
    records: Vec<AuditRecord>,
    /// Callers of `submit`: each hears whether the batch holding its record reached the disk.
    waiting: Vec<Waiter>,
    flushes: Vec<oneshot::Sender<()>>,
    close: Option<oneshot::Sender<()>>,
    /// The handle was dropped without `close`: write what is queued and stop.
    dropped: bool,
    /// The writer has stopped; nothing more is accepted.
    stopped: bool,
    /// When the oldest queued record that nothing waits on arrived.
    lingering_since: Option<Instant>,
    /// The writer will wake by then anyway and write whatever lingers: set after each batch
    /// that requests waited on, whose outcome records follow a moment later. Until then a
    /// lingering record need not wake the writer (a wake-up is a context switch on the
    /// request's path).
    sweep_at: Option<Instant>,
    /// When the oldest record in `records` arrived.
    queued_since: Option<Instant>,
    /// While the writer writes a batch: when its oldest record arrived.
    writing_since: Option<Instant>,
    /// Test hook: the writer panics (see `AuditLog::poison_writer`).
    #[cfg(test)]
    poison: bool,
    /// Test hook: how often `record` woke the writer.
    #[cfg(test)]
    record_wakes: usize,
}

impl Queue {
    /// Something is waiting for the writer, or enough has piled up to write now.
    fn urgent(&self) -> bool {
        #[cfg(test)]
        if self.poison {
            return true;
        }
        !self.waiting.is_empty()
            || !self.flushes.is_empty()
            || self.close.is_some()
            || self.dropped
            || self.records.len() >= MAX_BATCH
    }

    fn push(&mut self, record: AuditRecord) {
        self.records.push(record);
        self.queued_since.get_or_insert_with(Instant::now);
    }
}

/// What readiness needs to know about the log.
struct Status {
    healthy: AtomicBool,
    writer_alive: AtomicBool,
    last_error: Mutex<Option<String>>,
}

impl Status {
    fn wrote(&self, result: &Result<(), String>) {
        self.healthy.store(result.is_ok(), Ordering::Relaxed);
        if let Ok(mut last) = self.last_error.lock() {
            *last = result.as_ref().err().cloned();
        }
    }
}

struct Shared {
    queue: Mutex<Queue>,
    wake: Condvar,
    status: Status,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        // The writer never panics while holding the lock; if it did, the queue is still sound.
        self.queue.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why the log cannot take records right now (readiness reasons).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unhealthy {
    /// The last write failed; the writer retries every second.
    WriteFailed(String),
    /// Records have waited for the writer this long (a hung disk or volume).
    Stalled(Duration),
    /// The writer thread has ended (it panicked, or the log was closed).
    WriterStopped,
}

impl std::fmt::Display for Unhealthy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Unhealthy::WriteFailed(e) => write!(f, "audit log not writable: {e}"),
            Unhealthy::Stalled(d) => write!(
                f,
                "audit writer stalled: records have waited {:.1}s to be written",
                d.as_secs_f64()
            ),
            Unhealthy::WriterStopped => write!(f, "audit writer stopped"),
        }
    }
}

/// Handle to the audit writer; shared by all requests.
pub struct AuditLog {
    shared: Arc<Shared>,
    stall_after: Duration,
}

/// Largest number of records written before one fsync.
const MAX_BATCH: usize = 1024;
/// Longest time a record nothing waits on (an outcome or a refusal) stays queued when no
/// durable record comes along to carry it. Waking the writer and paying an fsync for each of
/// them doubled the gateway's CPU per request at moderate load.
const LINGER: Duration = Duration::from_millis(50);

const STOPPED: &str = "the audit writer has stopped";

impl AuditLog {
    pub fn open(options: AuditOptions) -> Result<AuditLog, AuditError> {
        let path = options.path.clone();
        let open_err = |message: String| AuditError::Open {
            path: path.clone(),
            message,
        };
        let opened = AuditFile::open(&options.path).map_err(&open_err)?;
        let stdout = if options.stdout {
            Some(
                StdoutCopy::start(options.stdout_buffer_bytes, options.stdout_dropped.clone())
                    .map_err(|e| open_err(e.to_string()))?,
            )
        } else {
            None
        };
        let checkpoints = options.signing_key.as_ref().map(|key| {
            Checkpointer::new(
                SigningKey::clone(key),
                options.log_name.clone(),
                options.checkpoint_interval,
                &opened.head,
            )
        });
        let writer = Writer {
            file: opened.file,
            head: opened.head,
            notes: opened.notes,
            outage: None,
            checkpoints,
            stdout,
            max_file_bytes: options.max_file_bytes,
            max_files: options.max_files,
            failures: options.failures.clone(),
        };
        let shared = Arc::new(Shared {
            queue: Mutex::new(Queue::default()),
            wake: Condvar::new(),
            status: Status {
                healthy: AtomicBool::new(true),
                writer_alive: AtomicBool::new(true),
                last_error: Mutex::new(None),
            },
        });
        let for_writer = shared.clone();
        std::thread::Builder::new()
            .name("waguard-audit".into())
            .spawn(move || writer.run(&for_writer))
            .map_err(|e| open_err(e.to_string()))?;
        Ok(AuditLog {
            shared,
            stall_after: options.stall_after,
        })
    }

    /// Appends a record and returns once it is on disk (fsynced).
    pub async fn append(&self, record: AuditRecord) -> Result<(), AuditError> {
        self.submit(record).durable().await
    }

    /// Hands a record to the writer now; [`Submitted::durable`] says when it is on disk. Lets a
    /// request prepare its next step while the writer fsyncs.
    pub fn submit(&self, record: AuditRecord) -> Submitted {
        let (done, wait) = oneshot::channel();
        {
            let mut q = self.shared.lock();
            if q.stopped {
                return Submitted(None);
            }
            q.push(record);
            q.waiting.push(done);
        }
        self.shared.wake.notify_one();
        Submitted(Some(wait))
    }

    /// Queues a record without waiting for the disk: for records nothing waits on (outcomes,
    /// refusals). It is written with the next group commit, at the latest after [`LINGER`];
    /// a failure is counted and logged.
    pub fn record(&self, record: AuditRecord) {
        let wake = {
            let mut q = self.shared.lock();
            if q.stopped {
                tracing::error!(kind = record.kind(), "{STOPPED}; a record was dropped");
                return;
            }
            q.push(record);
            // The first lingering record starts the writer's linger timer: an idle writer
            // sleeps without a timeout and must be told, unless it already sleeps until a
            // sweep (which comes before this record's linger would end). Later ones ride the
            // same timer.
            let first = q.lingering_since.is_none();
            q.lingering_since.get_or_insert_with(Instant::now);
            let wake = (first && q.sweep_at.is_none()) || q.records.len() >= MAX_BATCH;
            #[cfg(test)]
            if wake {
                q.record_wakes += 1;
            }
            wake
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

    /// Whether records can be written now; why not, otherwise (readiness).
    pub fn health(&self) -> Result<(), Unhealthy> {
        let status = &self.shared.status;
        if !status.writer_alive.load(Ordering::Acquire) {
            return Err(Unhealthy::WriterStopped);
        }
        let waited = {
            let q = self.shared.lock();
            [q.queued_since, q.writing_since]
                .into_iter()
                .flatten()
                .map(|t| t.elapsed())
                .max()
        };
        if let Some(waited) = waited
            && waited > self.stall_after
        {
            return Err(Unhealthy::Stalled(waited));
        }
        if !status.healthy.load(Ordering::Relaxed) {
            let error = status
                .last_error
                .lock()
                .ok()
                .and_then(|e| e.clone())
                .unwrap_or_default();
            return Err(Unhealthy::WriteFailed(error));
        }
        Ok(())
    }

    /// Writes what is queued (with a final checkpoint), logs the chain head and stops the
    /// writer.
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

    /// Test hook: makes the writer thread panic the next time it looks at the queue.
    #[cfg(test)]
    fn poison_writer(&self) {
        self.shared.lock().poison = true;
        self.shared.wake.notify_one();
    }

    /// Test hook: a log whose writer never takes anything, as if its disk hung.
    #[cfg(test)]
    fn open_with_hung_writer(stall_after: Duration) -> AuditLog {
        AuditLog {
            shared: Arc::new(Shared {
                queue: Mutex::new(Queue::default()),
                wake: Condvar::new(),
                status: Status {
                    healthy: AtomicBool::new(true),
                    writer_alive: AtomicBool::new(true),
                    last_error: Mutex::new(None),
                },
            }),
            stall_after,
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    use std::fs::OpenOptions;
    use std::io::Write;
    use std::path::Path;

    use serde_json::Value;

    fn options(path: &Path) -> AuditOptions {
        AuditOptions::new(path.to_path_buf())
    }

    /// A small record whose `request_id` says which it is.
    fn rec(i: impl std::fmt::Display) -> AuditRecord {
        AuditRecord::Outcome(record::Outcome {
            request_id: i.to_string(),
            time: record::now(),
            operation: "CreateTemplateShare".into(),
            forwarded: true,
            upstream_status: Some(200),
            aws_request_id: None,
            share_id: None,
            error_code: None,
            error: None,
            latency_ms: Some(1.0),
        })
    }

    fn no_options() -> VerifyOptions {
        VerifyOptions::default()
    }

    #[tokio::test]
    async fn records_chain_across_restarts_and_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let mut o = options(&path);
        o.max_file_bytes = 400;
        let log = AuditLog::open(o.clone()).unwrap();
        for i in 0..10 {
            log.append(rec(i)).await.unwrap();
        }
        log.close().await;
        let log = AuditLog::open(o).unwrap();
        log.append(rec(10)).await.unwrap();
        log.close().await;
        let mut files = rotated_files(&path).unwrap();
        assert!(files.len() >= 2, "{files:?}");
        files.push(path.clone());
        let report = verify_files(&files, &no_options()).unwrap();
        assert_eq!(report.records, 11);
        assert!(!report.starts_mid_chain);
    }

    #[tokio::test]
    async fn a_second_writer_of_the_same_log_is_refused_until_the_first_closes() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let first = AuditLog::open(options(&path)).unwrap();
        first.append(rec(0)).await.unwrap();
        let refused = AuditLog::open(options(&path))
            .err()
            .expect("a second writer");
        assert!(
            refused
                .to_string()
                .contains("another process is writing this audit log"),
            "{refused}"
        );
        first.append(rec(1)).await.unwrap();
        first.close().await;
        // Closed: the next writer continues the same chain.
        let second = AuditLog::open(options(&path)).unwrap();
        second.append(rec(2)).await.unwrap();
        second.close().await;
        let report = verify_files(&[path], &no_options()).unwrap();
        assert_eq!(report.records, 3);
    }

    #[tokio::test]
    async fn a_record_nothing_waits_on_reaches_the_disk_by_itself() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(options(&path)).unwrap();
        // Let the writer fall asleep first: an idle gateway is the case that matters.
        tokio::time::sleep(Duration::from_millis(200)).await;
        log.record(rec("n1"));
        // No flush, no other record: the writer's linger timer must write it.
        let mut text = String::new();
        for _ in 0..100 {
            text = std::fs::read_to_string(&path).unwrap_or_default();
            if !text.is_empty() {
                break;
            }
            tokio::time::sleep(LINGER / 5).await;
        }
        assert!(text.contains("\"n1\""), "{text:?}");
        // A durable append carries whatever is queued with it, in order.
        log.record(rec("n2"));
        log.append(rec("n3")).await.unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let two = text.find("\"n2\"").unwrap();
        let three = text.find("\"n3\"").unwrap();
        assert!(two < three, "{text}");
        log.close().await;
        assert!(log.append(rec("late")).await.is_err());
    }

    #[tokio::test]
    async fn an_outcome_after_a_durable_record_rides_the_sweep_without_waking_the_writer() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(options(&path)).unwrap();
        tokio::time::sleep(Duration::from_millis(100)).await;
        // An idle gateway: a request's decision is made durable, then its outcome follows.
        // The sweep is armed when the writer takes the decision's batch and fires LINGER later;
        // a disk slower than that (a loaded machine) lets it pass before the outcome comes, and
        // then the outcome rightly wakes the writer. So try until a decision is durable with
        // the sweep still well ahead.
        let mut tries = 0;
        let appended = loop {
            tries += 1;
            log.append(rec("decision")).await.unwrap();
            let appended = Instant::now();
            let sweep_ahead = log
                .shared
                .lock()
                .sweep_at
                .is_some_and(|at| at > appended + LINGER / 2);
            if sweep_ahead {
                break appended;
            }
            assert!(
                tries < 10,
                "no fsync took under {:?} in 10 tries",
                LINGER / 2
            );
            tokio::time::sleep(2 * LINGER).await;
        };
        log.record(rec("outcome"));
        assert_eq!(
            log.shared.lock().record_wakes,
            0,
            "the outcome woke the writer"
        );
        // The sweep fires within LINGER; the rest of this wait is for the disk (generous: a
        // loaded machine's fsync can take a while).
        let mut text = String::new();
        while appended.elapsed() < 20 * LINGER {
            text = std::fs::read_to_string(&path).unwrap();
            if text.contains("\"outcome\"") {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        // Written by the sweep the durable batch armed, without a wake of its own.
        assert!(text.contains("\"outcome\""), "{text}");
        // With no sweep armed (the writer sleeps without a timeout), a record still wakes it.
        tokio::time::sleep(2 * LINGER).await;
        log.record(rec("alone"));
        assert_eq!(log.shared.lock().record_wakes, 1);
        log.flush().await;
        assert!(
            std::fs::read_to_string(&path)
                .unwrap()
                .contains("\"alone\"")
        );
        log.close().await;
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
            log.append(rec(i)).await.unwrap();
        }
        log.close().await;
        let mut files = rotated_files(&path).unwrap();
        assert_eq!(files.len(), 2, "{files:?}");
        files.push(path.clone());
        // What is left is one intact chain that starts where the removed files ended.
        let report = verify_files(&files, &no_options()).unwrap();
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
            .filter(|r| r["type"] == "outcome")
            .map(|r| r["request_id"].as_str().unwrap().parse::<u64>().unwrap())
            .collect();
        assert_eq!(kept.last(), Some(&29));
        assert!(kept.windows(2).all(|w| w[1] == w[0] + 1), "{kept:?}");
    }

    #[tokio::test]
    async fn a_torn_tail_is_discarded_and_noted() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let log = AuditLog::open(options(&path)).unwrap();
        log.append(rec("d")).await.unwrap();
        log.close().await;
        let mut f = OpenOptions::new().append(true).open(&path).unwrap();
        f.write_all(b"{\"type\":\"decis").unwrap();
        let log = AuditLog::open(options(&path)).unwrap();
        log.append(rec("d")).await.unwrap();
        log.close().await;
        let report = verify_files(std::slice::from_ref(&path), &no_options()).unwrap();
        assert_eq!(report.records, 3);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("\"type\":\"audit_recovery\""));
    }

    fn signing_key() -> Arc<SigningKey> {
        let (signer, _) = note::generate("audit.example").unwrap();
        Arc::new(SigningKey::parse(&signer).unwrap())
    }

    /// Options for a log at `path` that signs checkpoints with `key`.
    fn signed_options(path: &Path, key: &Arc<SigningKey>) -> AuditOptions {
        let mut o = options(path);
        o.signing_key = Some(key.clone());
        o.log_name = "audit.example".into();
        o
    }

    fn lines(path: &Path) -> Vec<Value> {
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }

    #[tokio::test]
    async fn checkpoints_are_signed_while_records_are_written_and_at_close() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let key = signing_key();
        let mut o = signed_options(&path, &key);
        o.checkpoint_interval = Duration::from_millis(200);
        let log = AuditLog::open(o).unwrap();
        // Idle: no records, no checkpoints.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(lines(&path).is_empty());
        log.append(rec(1)).await.unwrap();
        log.append(rec(2)).await.unwrap();
        // Without further traffic, a checkpoint follows within the interval.
        let mut records = Vec::new();
        for _ in 0..100 {
            records = lines(&path);
            if records.len() == 3 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(records.len(), 3, "{records:#?}");
        let cp = &records[2];
        assert_eq!(cp["type"], "checkpoint");
        assert_eq!(cp["size"], 2);
        assert_eq!(cp["origin"], "audit.example");
        assert_eq!(cp["hash"], records[2]["prev_hash"]);
        let body = note::open(cp["note"].as_str().unwrap(), &key.verifier()).unwrap();
        let parsed = note::Checkpoint::parse(body).unwrap();
        assert_eq!(parsed.size, 2);
        assert_eq!(hex::encode(parsed.hash), cp["hash"].as_str().unwrap());
        // Nothing new: no second checkpoint.
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert_eq!(lines(&path).len(), 3);
        // Close signs what came after the last checkpoint.
        log.append(rec(3)).await.unwrap();
        log.close().await;
        let records = lines(&path);
        assert_eq!(records.len(), 5);
        assert_eq!(records[4]["type"], "checkpoint");
        assert_eq!(records[4]["size"], 4);
        let report = verify_files(
            std::slice::from_ref(&path),
            &VerifyOptions {
                public_key: Some(key.verifier()),
                checkpoint: None,
            },
        )
        .unwrap();
        assert_eq!(report.checkpoints_verified, 2);
        assert_eq!(report.last_checkpoint_size, Some(4));
    }

    #[tokio::test]
    async fn every_rotated_file_ends_with_a_signed_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("audit.jsonl");
        let key = signing_key();
        let mut o = signed_options(&path, &key);
        o.max_file_bytes = 1500;
        let log = AuditLog::open(o).unwrap();
        for i in 0..20 {
            log.append(rec(i)).await.unwrap();
        }
        log.close().await;
        let mut files = rotated_files(&path).unwrap();
        assert!(files.len() >= 2, "{files:?}");
        for f in &files {
            let records = lines(f);
            assert_eq!(records.last().unwrap()["type"], "checkpoint", "{f:?}");
        }
        files.push(path.clone());
        let report = verify_files(
            &files,
            &VerifyOptions {
                public_key: Some(key.verifier()),
                checkpoint: None,
            },
        )
        .unwrap();
        assert!(report.checkpoints_verified >= 3);
    }

    #[tokio::test]
    async fn records_waiting_on_a_hung_writer_make_the_log_unhealthy() {
        let log = AuditLog::open_with_hung_writer(Duration::from_millis(100));
        assert_eq!(log.health(), Ok(()));
        log.record(rec(1));
        tokio::time::sleep(Duration::from_millis(150)).await;
        assert!(
            matches!(log.health(), Err(Unhealthy::Stalled(d)) if d >= Duration::from_millis(100)),
            "{:?}",
            log.health()
        );
    }

    #[tokio::test]
    async fn a_dead_writer_makes_the_log_unhealthy_and_refuses_records() {
        let dir = tempfile::tempdir().unwrap();
        let log = AuditLog::open(options(&dir.path().join("audit.jsonl"))).unwrap();
        log.append(rec(1)).await.unwrap();
        log.poison_writer();
        for _ in 0..100 {
            if log.health().is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert_eq!(log.health(), Err(Unhealthy::WriterStopped));
        assert!(log.append(rec(2)).await.is_err());
    }
}
