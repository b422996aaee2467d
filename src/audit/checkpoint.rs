//! Signed checkpoints of the audit chain: when they are due, and the `checkpoint` record that
//! states the chain head (origin, number of records, head hash) as a C2SP `tlog-checkpoint`
//! body in a C2SP `signed-note`, signed with the log's Ed25519 key.
//!
//! The hash line is the head of waguard's hash chain (SHA-256 of record `size - 1`'s line,
//! which commits to every record before it through `prev_hash`), not an RFC 6962 Merkle root:
//! the note verifies with any signed-note implementation, and `waguard audit verify` checks
//! what it states against the log.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::chain::ChainHead;
use super::note::{self, SigningKey, VerifierKey};
use super::record::{self, AuditRecord};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{path}: {message}")]
    File { path: PathBuf, message: String },
}

/// Reads a signer key file (`waguard audit keygen`'s `PREFIX.key`). The error never shows the
/// file's content.
pub fn load_signing_key(path: &Path) -> Result<SigningKey, KeyError> {
    let err = |message: String| KeyError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    SigningKey::parse(&text).map_err(|e| err(format!("not a signed-note signer key: {e}")))
}

/// Reads a verifier key file (`PREFIX.pub`).
pub fn load_verifier_key(path: &Path) -> Result<VerifierKey, KeyError> {
    let err = |message: String| KeyError::File {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| err(e.to_string()))?;
    VerifierKey::parse(&text).map_err(|e| err(format!("not a signed-note verifier key: {e}")))
}

/// Writes `PREFIX.key` (mode 0600, never overwritten) and `PREFIX.pub` for a new key pair.
pub fn keygen(name: &str, prefix: &Path) -> Result<(PathBuf, PathBuf), KeyError> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let with_ext = |ext: &str| {
        let mut p = prefix.as_os_str().to_os_string();
        p.push(ext);
        PathBuf::from(p)
    };
    let (key_path, pub_path) = (with_ext(".key"), with_ext(".pub"));
    let (signer, verifier) = note::generate(name).map_err(|e| KeyError::File {
        path: key_path.clone(),
        message: e.to_string(),
    })?;
    let file_err = |path: &Path, e: std::io::Error| KeyError::File {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let mut key_file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&key_path)
        .map_err(|e| file_err(&key_path, e))?;
    key_file
        .write_all(format!("{signer}\n").as_bytes())
        .and_then(|()| key_file.sync_all())
        .map_err(|e| file_err(&key_path, e))?;
    std::fs::write(&pub_path, format!("{verifier}\n")).map_err(|e| file_err(&pub_path, e))?;
    Ok((key_path, pub_path))
}

/// Decides when the writer signs the chain head, and signs it.
pub(super) struct Checkpointer {
    key: SigningKey,
    origin: String,
    interval: Duration,
    /// The chain length the last checkpoint (and the checkpoint record itself) covered.
    covered: u64,
    /// When the next checkpoint is due, once records were written after the last one.
    due: Option<Instant>,
}

impl Checkpointer {
    pub fn new(key: SigningKey, origin: String, interval: Duration, head: &ChainHead) -> Self {
        Checkpointer {
            key,
            origin,
            interval,
            covered: head.next_seq,
            due: None,
        }
    }

    /// Records were written: a checkpoint becomes due one interval later.
    pub fn wrote(&mut self, head: &ChainHead) {
        if head.next_seq > self.covered && self.due.is_none() {
            self.due = Some(Instant::now() + self.interval);
        }
    }

    /// How long until a checkpoint is due; `None` when none is pending.
    pub fn due_in(&self) -> Option<Duration> {
        self.due
            .map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Whether records were written since the last checkpoint.
    pub fn pending(&self, head: &ChainHead) -> bool {
        head.next_seq > self.covered
    }

    /// The checkpoint record stating `head` (to be written as record `head.next_seq`).
    pub fn record(&self, head: &ChainHead) -> Result<AuditRecord, String> {
        let hash: [u8; 32] = hex::decode(&head.last_hash)
            .ok()
            .and_then(|h| h.try_into().ok())
            .ok_or("the chain head is not a SHA-256 hash")?;
        let body = note::Checkpoint {
            origin: self.origin.clone(),
            size: head.next_seq,
            hash,
            extensions: Vec::new(),
        };
        let signed = self
            .key
            .sign(&body.to_text())
            .map_err(|e| format!("signing the checkpoint: {e}"))?;
        Ok(AuditRecord::Checkpoint(record::Checkpoint {
            time: record::now(),
            origin: self.origin.clone(),
            size: head.next_seq,
            hash: head.last_hash.clone(),
            note: signed,
        }))
    }

    /// The checkpoint record is on disk: `head` is the chain after it.
    pub fn written(&mut self, head: &ChainHead, note: &str) {
        self.covered = head.next_seq;
        self.due = None;
        tracing::info!(origin = %self.origin, size = head.next_seq - 1, note, "audit checkpoint");
    }
}
