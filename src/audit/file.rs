//! The audit file's life cycle: opening and crash recovery, durable appends that roll back on
//! failure, noticing a removed or replaced file, rotation by size, and retention of rotated
//! files. Knows bytes and files, not what the records mean.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

use super::chain::{self, ChainHead};
use super::record::{AuditNote, AuditRecord, AuditRecovery, AuditRetention, now};

/// The open audit file.
pub(super) struct AuditFile {
    path: PathBuf,
    file: Option<File>,
    /// (device, inode) of the open file, to notice it being removed or replaced.
    identity: Option<(u64, u64)>,
    /// Bytes of the open file that hold complete, fsynced records.
    len: u64,
    /// Seq of the first record in the current file (names the file when rotated).
    first_seq: u64,
    /// `<path>.lock`, exclusively locked while this process writes the log: a second writer
    /// (another gateway, or `waguard scan --revoke` on the same file) would fork the chain.
    lock: Option<File>,
}

/// How long opening waits for another writer of the same log to let go of it (a writer of
/// this process that is just closing), before refusing.
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Takes the log's writer lock, `<path>.lock`; `None` for a device such as /dev/full.
fn take_lock(path: &Path) -> Result<Option<File>, String> {
    if std::fs::metadata(path).is_ok_and(|m| !m.is_file()) {
        return Ok(None);
    }
    let mut name = path
        .file_name()
        .map(|n| n.to_os_string())
        .unwrap_or_default();
    name.push(".lock");
    let lock_path = path.with_file_name(name);
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| format!("{}: {e}", lock_path.display()))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(Some(file)),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(50));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(format!(
                    "another process is writing this audit log (it holds {}); two writers would fork the hash chain: give each process its own audit.file",
                    lock_path.display()
                ));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(format!("{}: {e}", lock_path.display()));
            }
        }
    }
}

/// What opening found: the chain head to continue from, and notes for the log.
pub(super) struct Opened {
    pub file: AuditFile,
    pub head: ChainHead,
    pub notes: Vec<AuditRecord>,
}

impl AuditFile {
    /// Opens (creating) the file, discards a torn final record a crash left behind, and finds
    /// the chain head in it or, for a new file, in the newest rotated file.
    pub fn open(path: &Path) -> Result<Opened, String> {
        let lock = take_lock(path)?;
        let mut notes = Vec::new();
        let mut head = None;
        match std::fs::metadata(path) {
            Ok(meta) if meta.is_file() => {
                let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
                let (h, torn) = chain::recover_head(&bytes)?;
                if torn > 0 {
                    // A crash mid-write left part of a record that was never acknowledged.
                    let keep = (bytes.len() - torn) as u64;
                    let f = OpenOptions::new()
                        .write(true)
                        .open(path)
                        .map_err(|e| e.to_string())?;
                    f.set_len(keep)
                        .and_then(|_| f.sync_all())
                        .map_err(|e| e.to_string())?;
                    notes.push(AuditRecord::AuditRecovery(AuditRecovery {
                        time: now(),
                        message: "discarded an incomplete final record left by a crash; its request was never acted on".into(),
                        discarded_bytes: torn as u64,
                        discarded_sha256: chain::line_hash(&bytes[bytes.len() - torn..]),
                    }));
                }
                head = h;
            }
            Ok(_) => {} // A device such as /dev/full: nothing to recover.
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(e.to_string()),
        }
        if head.is_none() {
            head = latest_rotated(path)?;
        }
        let head = head.unwrap_or_else(ChainHead::genesis);
        let mut file = AuditFile {
            path: path.to_path_buf(),
            file: None,
            identity: None,
            len: 0,
            first_seq: head.next_seq,
            lock,
        };
        file.reopen(&head).map_err(|e| e.to_string())?;
        Ok(Opened { file, head, notes })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Closes the file and lets go of the writer lock (the log is closed).
    pub fn release(&mut self) {
        self.file = None;
        self.lock = None;
    }

    fn reopen(&mut self, head: &ChainHead) -> std::io::Result<()> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.path)?;
        let meta = file.metadata()?;
        self.identity = Some((meta.dev(), meta.ino()));
        self.len = meta.len();
        if meta.len() == 0 {
            self.first_seq = head.next_seq;
        }
        self.file = Some(file);
        sync_parent(&self.path);
        Ok(())
    }

    /// Makes sure the open file is still the one at the path; reopens it otherwise. Returns a
    /// note for the log when the file was removed or replaced under the gateway.
    pub fn ensure_open(&mut self, head: &ChainHead) -> std::io::Result<Option<AuditRecord>> {
        let current = std::fs::metadata(&self.path)
            .ok()
            .map(|m| (m.dev(), m.ino()));
        if self.file.is_some() && current.is_some() && current == self.identity {
            return Ok(None);
        }
        let replaced = self.file.is_some();
        self.file = None;
        self.reopen(head)?;
        if !replaced {
            return Ok(None);
        }
        tracing::warn!(path = %self.path.display(), "audit log was removed or replaced; writing to a new file");
        Ok(Some(AuditRecord::AuditReopened(AuditNote {
            time: now(),
            message: "the audit file was removed or replaced while the gateway ran; the chain continues here".into(),
        })))
    }

    /// Appends `bytes` (whole records) and fsyncs. All or nothing: on failure whatever part
    /// reached the file is cut off again, and the file is reopened next time.
    pub fn append(&mut self, bytes: &[u8]) -> Result<(), String> {
        let path = self.path.display();
        let Some(file) = self.file.as_mut() else {
            return Err(format!("{path}: not open"));
        };
        if let Err(e) = file.write_all(bytes).and_then(|_| file.sync_data()) {
            let _ = file.set_len(self.len);
            self.file = None;
            return Err(format!("{path}: {e}"));
        }
        self.len += bytes.len() as u64;
        Ok(())
    }

    /// Whether the file has reached the size at which it is rotated (0: never).
    pub fn is_full(&self, max_file_bytes: u64) -> bool {
        max_file_bytes > 0 && self.len >= max_file_bytes
    }

    /// Renames the file to `<name>.<first seq>` and starts a new one; the chain carries on.
    pub fn rotate(&mut self, head: &ChainHead) {
        let rotated = rotated_name(&self.path, self.first_seq);
        match std::fs::rename(&self.path, &rotated) {
            Ok(()) => {
                tracing::info!(rotated = %rotated.display(), next_seq = head.next_seq, last_hash = %head.last_hash, "audit log rotated");
                self.file = None;
                self.first_seq = head.next_seq;
                if let Err(e) = self.reopen(head) {
                    tracing::error!(error = %e, "could not open a new audit file after rotation");
                }
            }
            Err(e) => {
                tracing::error!(error = %e, "audit log rotation failed; continuing in the current file")
            }
        }
    }

    /// Removes the oldest rotated files beyond `keep` (0: keep all). Returns a note naming
    /// the files and the first seq still kept, so a log that starts mid-chain says why.
    pub fn apply_retention(&mut self, keep: usize) -> Option<AuditRecord> {
        if keep == 0 {
            return None;
        }
        let files = match rotated_files(&self.path) {
            Ok(f) => f,
            Err(e) => {
                tracing::error!(error = %e, "audit retention: cannot list rotated files");
                return None;
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
            return None;
        }
        sync_parent(&self.path);
        let first_kept_seq = files
            .get(excess)
            .and_then(|f| f.extension())
            .and_then(|e| e.to_str())
            .and_then(|e| e.parse::<u64>().ok())
            .unwrap_or(self.first_seq);
        tracing::info!(
            ?removed,
            first_kept_seq,
            "audit retention removed rotated files"
        );
        Some(AuditRecord::AuditRetention(AuditRetention {
            time: now(),
            removed,
            first_kept_seq,
            message: format!(
                "rotated audit files beyond audit.max_files = {keep} were removed; records before seq {first_kept_seq} are no longer on this volume"
            ),
        }))
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
