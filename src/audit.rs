//! The audit log: one JSON line per event, appended and fsynced before the gateway acts.
//!
//! A single writer thread owns the file. Requests hand it records and wait; the thread writes
//! every record that is waiting, then calls `fsync` once for all of them (group commit), so
//! concurrent requests share the cost of durability.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::mpsc;

use serde_json::Value;
use tokio::sync::oneshot;

#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("{path}: cannot open the audit log: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the audit log could not be written: {0}")]
    Write(String),
}

struct Entry {
    line: Vec<u8>,
    done: oneshot::Sender<Result<(), String>>,
}

/// Handle to the audit writer; cheap to share.
pub struct AuditLog {
    tx: mpsc::Sender<Entry>,
    path: PathBuf,
}

/// Largest number of records written before one fsync.
const MAX_BATCH: usize = 512;

impl AuditLog {
    pub fn open(path: &Path, also_stdout: bool) -> Result<AuditLog, AuditError> {
        let file = open_append(path)?;
        let (tx, rx) = mpsc::channel::<Entry>();
        let thread_path = path.to_path_buf();
        std::thread::Builder::new()
            .name("waguard-audit".into())
            .spawn(move || writer(thread_path, file, rx, also_stdout))
            .map_err(|source| AuditError::Open {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(AuditLog {
            tx,
            path: path.to_path_buf(),
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends a record and returns once it is on disk.
    pub async fn append(&self, record: &Value) -> Result<(), AuditError> {
        let mut line = serde_json::to_vec(record).map_err(|e| AuditError::Write(e.to_string()))?;
        line.push(b'\n');
        let (done, wait) = oneshot::channel();
        self.tx
            .send(Entry { line, done })
            .map_err(|_| AuditError::Write("the audit writer has stopped".into()))?;
        match wait.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(AuditError::Write(e)),
            Err(_) => Err(AuditError::Write("the audit writer has stopped".into())),
        }
    }
}

fn open_append(path: &Path) -> Result<File, AuditError> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|source| AuditError::Open {
            path: path.to_path_buf(),
            source,
        })
}

fn writer(path: PathBuf, mut file: File, rx: mpsc::Receiver<Entry>, also_stdout: bool) {
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(e) => batch.push(e),
                Err(_) => break,
            }
        }
        let mut buf = Vec::with_capacity(batch.iter().map(|e| e.line.len()).sum());
        for e in &batch {
            buf.extend_from_slice(&e.line);
        }
        let result = file
            .write_all(&buf)
            .and_then(|_| file.sync_data())
            .map_err(|e| format!("{}: {e}", path.display()));
        if let Err(e) = &result {
            tracing::error!(error = %e, "audit write failed");
        } else if also_stdout {
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(&buf);
            let _ = out.flush();
        }
        for e in batch {
            let _ = e.done.send(result.clone());
        }
    }
}
