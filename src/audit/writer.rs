//! The writer thread: takes what requests queued, seals it into the chain and writes it with
//! one fsync (group commit), adds signed checkpoints when due, reports every failure to the
//! requests that wait, and retries until the file can be written again.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::chain::ChainHead;
use super::checkpoint::Checkpointer;
use super::file::AuditFile;
use super::record::{AuditOutage, AuditRecord, now};
use super::stdout::StdoutCopy;
use super::{LINGER, Shared};

/// While writes fail, the writer retries this often even without new records.
const RETRY_EVERY: Duration = Duration::from_secs(1);
/// How long the stdout copy may take to drain at shutdown.
const STDOUT_DRAIN: Duration = Duration::from_secs(1);

pub(super) struct Writer {
    pub file: AuditFile,
    pub head: ChainHead,
    /// Records to write ahead of the next batch (recovery, reopen and retention notes).
    pub notes: Vec<AuditRecord>,
    pub outage: Option<Outage>,
    pub checkpoints: Option<Checkpointer>,
    pub stdout: Option<StdoutCopy>,
    pub max_file_bytes: u64,
    pub max_files: usize,
    pub failures: Option<prometheus::IntCounter>,
}

pub(super) struct Outage {
    since: String,
    refused: u64,
    error: String,
}

/// Marks the writer dead when its thread ends, however it ends (readiness reports it).
struct Alive<'a>(&'a Shared);

impl Drop for Alive<'_> {
    fn drop(&mut self) {
        self.0.status.writer_alive.store(false, Ordering::Release);
        if std::thread::panicking() {
            tracing::error!(
                "the audit writer thread panicked; requests that need a durable record are refused"
            );
        }
        // Nobody will answer what is still queued: tell the waiting requests now.
        let mut q = self.0.lock();
        q.stopped = true;
        q.waiting.clear();
        q.flushes.clear();
        q.close.take();
    }
}

impl Writer {
    pub fn run(mut self, shared: &Shared) {
        let _alive = Alive(shared);
        loop {
            let (records, waiting, flushes, close, stop) = {
                let mut q = shared.lock();
                loop {
                    if q.urgent() {
                        break;
                    }
                    // Without anything urgent the writer sleeps until a record nothing waits
                    // on has lingered long enough, a checkpoint is due, or (during an outage)
                    // until the next retry; with none of these, until it is woken.
                    let timeout = [
                        q.lingering_since
                            .map(|t| LINGER.saturating_sub(t.elapsed())),
                        q.sweep_at
                            .map(|t| t.saturating_duration_since(Instant::now())),
                        self.outage.as_ref().map(|_| RETRY_EVERY),
                        self.checkpoints.as_ref().and_then(Checkpointer::due_in),
                    ]
                    .into_iter()
                    .flatten()
                    .min();
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
                #[cfg(test)]
                if q.poison {
                    drop(q);
                    panic!("the audit writer was poisoned by a test");
                }
                let stop = q.close.is_some() || q.dropped;
                if stop {
                    q.stopped = true;
                }
                q.lingering_since = None;
                q.writing_since = q.queued_since.take();
                // Requests that wait on this batch add their outcome records a moment after
                // it is written: wake by then, so they need not wake the writer.
                q.sweep_at = (!q.waiting.is_empty()).then(|| Instant::now() + LINGER);
                (
                    std::mem::take(&mut q.records),
                    std::mem::take(&mut q.waiting),
                    std::mem::take(&mut q.flushes),
                    q.close.take(),
                    stop,
                )
            };
            let checkpoint_due = self
                .checkpoints
                .as_ref()
                .is_some_and(|c| c.due_in().is_some_and(|d| d.is_zero()));
            // An empty batch during an outage writes just the outage note, to recover.
            if !records.is_empty()
                || !self.notes.is_empty()
                || self.outage.is_some()
                || checkpoint_due
                || stop
            {
                let result = self.write_batch(shared, &records, checkpoint_due || stop);
                for w in waiting {
                    let _ = w.send(result.clone());
                }
            }
            for f in flushes {
                let _ = f.send(());
            }
            shared.lock().writing_since = None;
            if stop {
                tracing::info!(next_seq = self.head.next_seq, last_hash = %self.head.last_hash, "audit log closed");
                if let Some(stdout) = self.stdout.take() {
                    stdout.finish(STDOUT_DRAIN);
                }
                // Another writer (a restarted gateway in the same process) may open the log
                // as soon as `close` returns.
                self.file.release();
                if let Some(done) = close {
                    let _ = done.send(());
                }
                return;
            }
        }
    }

    /// Writes notes and records (and a checkpoint after them if `checkpoint` or the file is
    /// about to rotate), with one fsync. All or nothing.
    fn write_batch(
        &mut self,
        shared: &Shared,
        records: &[AuditRecord],
        checkpoint: bool,
    ) -> Result<(), String> {
        let result = self.try_write(records, checkpoint);
        shared.status.wrote(&result);
        match &result {
            Ok(()) => {}
            Err(e) => {
                tracing::error!(error = %e, records = records.len(), "audit write failed; the affected requests are refused");
                if let Some(c) = &self.failures {
                    c.inc();
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

    fn try_write(&mut self, records: &[AuditRecord], checkpoint: bool) -> Result<(), String> {
        let path = self.file.path().display().to_string();
        if let Some(note) = self
            .file
            .ensure_open(&self.head)
            .map_err(|e| format!("{path}: {e}"))?
        {
            self.notes.push(note);
        }
        let mut head = self.head.clone();
        let mut buf = Vec::new();
        let mut count = 0;
        let outage_note = self.outage.as_ref().map(|o| {
            AuditRecord::AuditOutage(AuditOutage {
                time: now(),
                since: o.since.clone(),
                refused_records: o.refused,
                error: o.error.clone(),
                message: "audit writes failed for a while; the requests whose records could not be written were refused".into(),
            })
        });
        for r in self.notes.iter().chain(outage_note.iter()).chain(records) {
            seal_into(&mut buf, &mut head, r)?;
            count += 1;
        }
        // A checkpoint closes every file, so each rotated file ends with a signed head.
        let rotating = self
            .file
            .is_full(self.max_file_bytes.saturating_sub(buf.len() as u64));
        let mut checkpoint_note = None;
        if let Some(c) = &self.checkpoints
            && c.pending(&head)
            && (checkpoint || rotating)
        {
            let record = c.record(&head)?;
            seal_into(&mut buf, &mut head, &record)?;
            count += 1;
            if let AuditRecord::Checkpoint(cp) = record {
                checkpoint_note = Some(cp.note);
            }
        }
        if buf.is_empty() {
            return Ok(());
        }
        self.file.append(&buf)?;
        self.head = head;
        self.notes.clear();
        self.outage = None;
        if let Some(c) = &mut self.checkpoints {
            match &checkpoint_note {
                Some(note) => c.written(&self.head, note),
                None => c.wrote(&self.head),
            }
        }
        if let Some(stdout) = &self.stdout {
            stdout.send(&buf, count);
        }
        if self.file.is_full(self.max_file_bytes) {
            self.file.rotate(&self.head);
            if let Some(note) = self.file.apply_retention(self.max_files) {
                // Written now rather than with the next batch: the gateway may be idle.
                self.notes.push(note);
                return self.try_write(&[], false);
            }
        }
        Ok(())
    }
}

/// Seals `record` into the chain after `head` and appends its line to `buf`.
fn seal_into(buf: &mut Vec<u8>, head: &mut ChainHead, record: &AuditRecord) -> Result<(), String> {
    let (line, next) = head.seal(record)?;
    buf.extend_from_slice(&line);
    buf.push(b'\n');
    *head = next;
    Ok(())
}
