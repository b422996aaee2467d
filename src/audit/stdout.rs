//! The audit log's copy on stdout, for cluster log shipping. It runs on its own thread behind
//! a bounded buffer: a slow or stopped reader of stdout never holds up the file's durability
//! (or the requests waiting on it). What does not fit is dropped from stdout only (the file has
//! it) and counted in `waguard_audit_stdout_dropped_total`.

use std::io::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, SyncSender, TrySendError, channel, sync_channel};
use std::time::Duration;

/// Batches waiting at most (each holds one group commit's records).
const BUFFER_BATCHES: usize = 1024;

pub(super) struct StdoutCopy {
    batches: SyncSender<Vec<u8>>,
    /// Closed by the copying thread when it has written everything.
    finished: Receiver<()>,
    queued_bytes: Arc<AtomicUsize>,
    /// Bytes of records waiting for stdout at most; beyond it batches are dropped from stdout.
    limit: usize,
    dropped: Option<prometheus::IntCounter>,
}

impl StdoutCopy {
    pub fn start(
        limit: usize,
        dropped: Option<prometheus::IntCounter>,
    ) -> std::io::Result<StdoutCopy> {
        let (batches, rx) = sync_channel(BUFFER_BATCHES);
        let queued_bytes = Arc::new(AtomicUsize::new(0));
        let queued = queued_bytes.clone();
        let (done, finished) = channel();
        std::thread::Builder::new()
            .name("waguard-audit-stdout".into())
            .spawn(move || copy(rx, &queued, done))?;
        Ok(StdoutCopy {
            batches,
            finished,
            queued_bytes,
            limit,
            dropped,
        })
    }

    /// Queues a written batch (`records` records) for stdout, or drops it when the buffer is
    /// full.
    pub fn send(&self, batch: &[u8], records: usize) {
        let len = batch.len();
        let fits = self.queued_bytes.fetch_add(len, Ordering::AcqRel) + len <= self.limit;
        let sent = fits
            && match self.batches.try_send(batch.to_vec()) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => false,
            };
        if !sent {
            self.queued_bytes.fetch_sub(len, Ordering::AcqRel);
            if let Some(c) = &self.dropped {
                c.inc_by(records as u64);
            }
        }
    }

    /// At shutdown: lets the reader take what is queued, for at most `within`.
    pub fn finish(self, within: Duration) {
        drop(self.batches);
        let _ = self.finished.recv_timeout(within);
    }
}

fn copy(batches: Receiver<Vec<u8>>, queued: &AtomicUsize, done: Sender<()>) {
    let mut out = std::io::stdout();
    for batch in batches {
        let _ = out.write_all(&batch).and_then(|()| out.flush());
        queued.fetch_sub(batch.len(), Ordering::AcqRel);
    }
    drop(done);
}
