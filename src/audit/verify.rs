//! `waguard audit verify`: checks the hash chain across files, every signed checkpoint in the
//! log against the chain at its position, and optionally a checkpoint kept outside the log.
//!
//! The chain alone catches an edited, deleted, inserted or reordered record, but not a rewrite
//! of everything after some point (an attacker re-hashes the rest) nor records cut off at the
//! end. Signed checkpoints catch a rewrite of anything before the last checkpoint the log still
//! holds; a checkpoint kept elsewhere (shipped off the host) also catches truncation and the
//! removal of checkpoints themselves, up to its position.

use std::path::{Path, PathBuf};

use serde_json::Value;

use super::chain::{ChainHead, GENESIS, line_hash};
use super::note::{self, VerifierKey};

/// What to check beyond the chain.
#[derive(Debug, Default)]
pub struct VerifyOptions {
    /// Verifies the signature of every checkpoint record.
    pub public_key: Option<VerifierKey>,
    /// A signed checkpoint kept outside the log (needs `public_key`): the log must still hold
    /// every record it covers, unchanged.
    pub checkpoint: Option<String>,
}

/// What verification found.
#[derive(Debug, Default)]
pub struct VerifyReport {
    pub records: u64,
    pub first_seq: Option<u64>,
    pub head: Option<ChainHead>,
    /// The chain starts after seq 0 (earlier records are in files not given).
    pub starts_mid_chain: bool,
    /// Checkpoint records whose signature was verified.
    pub checkpoints_verified: u64,
    /// Checkpoint records seen without a key to verify them (consistent with the chain).
    pub checkpoints_unverified: u64,
    /// Records covered by the last checkpoint in the log (its size).
    pub last_checkpoint_size: Option<u64>,
    /// The outside checkpoint's size, when one was given and matched.
    pub external_size: Option<u64>,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct VerifyError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// An outside checkpoint, opened with the key.
struct External {
    size: u64,
    hash: String,
    matched: bool,
}

/// Verifies one or more audit files as one chain, in the order given (oldest first).
pub fn verify_files(
    files: &[PathBuf],
    options: &VerifyOptions,
) -> Result<VerifyReport, VerifyError> {
    let general = |message: String| VerifyError {
        file: files.last().cloned().unwrap_or_default(),
        line: 0,
        message,
    };
    let mut external = match &options.checkpoint {
        None => None,
        Some(text) => {
            let key = options.public_key.as_ref().ok_or_else(|| {
                general("an outside checkpoint can only be checked with --public-key".into())
            })?;
            let body = note::open(text, key)
                .map_err(|e| general(format!("the outside checkpoint does not verify: {e}")))?;
            let cp = note::Checkpoint::parse(body)
                .map_err(|e| general(format!("the outside checkpoint is malformed: {e}")))?;
            Some(External {
                size: cp.size,
                hash: hex::encode(cp.hash),
                matched: cp.size == 0,
            })
        }
    };
    let mut report = VerifyReport::default();
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| VerifyError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        verify_bytes(file, &bytes, options, external.as_mut(), &mut report)?;
    }
    if let Some(ext) = external {
        if !ext.matched {
            let held = report.head.as_ref().map_or(0, |h| h.next_seq);
            let message = if held < ext.size {
                format!(
                    "the log was truncated: the outside checkpoint covers {} records, the files hold records up to seq {} only",
                    ext.size,
                    held as i128 - 1
                )
            } else {
                format!(
                    "the outside checkpoint covers seq 0 to {}, which is before the first record given (seq {}); pass the older files too",
                    ext.size - 1,
                    report.first_seq.unwrap_or(0)
                )
            };
            return Err(general(message));
        }
        report.external_size = Some(ext.size);
    }
    Ok(report)
}

fn verify_bytes(
    file: &Path,
    bytes: &[u8],
    options: &VerifyOptions,
    mut external: Option<&mut External>,
    report: &mut VerifyReport,
) -> Result<(), VerifyError> {
    let err = |line: usize, message: String| VerifyError {
        file: file.to_path_buf(),
        line,
        message,
    };
    if !bytes.is_empty() && !bytes.ends_with(b"\n") {
        let line = bytes.split(|b| *b == b'\n').count();
        return Err(err(
            line,
            "the last record is incomplete (no newline)".into(),
        ));
    }
    let body = bytes.strip_suffix(b"\n").unwrap_or(bytes);
    if body.is_empty() {
        return Ok(());
    }
    for (i, line) in body.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        if line.is_empty() {
            return Err(err(n, "empty line".into()));
        }
        let v: Value =
            serde_json::from_slice(line).map_err(|e| err(n, format!("not a JSON record: {e}")))?;
        let seq = v
            .get("seq")
            .and_then(Value::as_u64)
            .ok_or_else(|| err(n, "record has no seq".into()))?;
        let prev = v
            .get("prev_hash")
            .and_then(Value::as_str)
            .ok_or_else(|| err(n, "record has no prev_hash".into()))?;
        match &report.head {
            None => {
                report.first_seq = Some(seq);
                if seq == 0 {
                    if prev != GENESIS {
                        return Err(err(n, "seq 0 must have the genesis prev_hash".into()));
                    }
                } else {
                    report.starts_mid_chain = true;
                }
            }
            Some(head) => {
                if seq != head.next_seq {
                    return Err(err(
                        n,
                        format!(
                            "seq {seq} where {} was expected: records were deleted, inserted or reordered",
                            head.next_seq
                        ),
                    ));
                }
                if prev != head.last_hash {
                    return Err(err(
                        n,
                        format!(
                            "seq {seq}: prev_hash does not match the record before it: that record was edited, or records were removed or reordered"
                        ),
                    ));
                }
            }
        }
        if v.get("type").and_then(Value::as_str) == Some("checkpoint") {
            check_checkpoint(&v, seq, prev, options, report).map_err(|m| err(n, m))?;
        }
        let hash = line_hash(line);
        if let Some(ext) = external.as_deref_mut()
            && seq + 1 == ext.size
        {
            if hash != ext.hash {
                return Err(err(
                    n,
                    format!(
                        "seq {seq} is not the record the outside checkpoint covers: the log was rewritten at or before this record"
                    ),
                ));
            }
            ext.matched = true;
        }
        report.head = Some(ChainHead {
            next_seq: seq + 1,
            last_hash: hash,
        });
        report.records += 1;
    }
    Ok(())
}

/// A checkpoint record at `seq` states the chain before it: `size == seq` and `hash` is the
/// `prev_hash` it carries; with a key, its signed note must verify and say the same.
fn check_checkpoint(
    record: &Value,
    seq: u64,
    prev_hash: &str,
    options: &VerifyOptions,
    report: &mut VerifyReport,
) -> Result<(), String> {
    let size = record.get("size").and_then(Value::as_u64);
    let hash = record.get("hash").and_then(Value::as_str);
    if size != Some(seq) || hash != Some(prev_hash) {
        return Err(format!(
            "checkpoint at seq {seq} does not state the chain before it (size {size:?}, hash {hash:?})"
        ));
    }
    let Some(key) = &options.public_key else {
        report.checkpoints_unverified += 1;
        report.last_checkpoint_size = Some(seq);
        return Ok(());
    };
    let text = record
        .get("note")
        .and_then(Value::as_str)
        .ok_or_else(|| format!("checkpoint at seq {seq} has no note"))?;
    let body = note::open(text, key)
        .map_err(|e| format!("checkpoint at seq {seq}: the signature does not verify: {e}"))?;
    let cp = note::Checkpoint::parse(body)
        .map_err(|e| format!("checkpoint at seq {seq}: malformed: {e}"))?;
    let origin = record.get("origin").and_then(Value::as_str);
    if cp.size != seq || hex::encode(cp.hash) != prev_hash || Some(cp.origin.as_str()) != origin {
        return Err(format!(
            "checkpoint at seq {seq}: the signed note says size {} for origin {:?}, which is not the chain before this record: the log was rewritten",
            cp.size, cp.origin
        ));
    }
    report.checkpoints_verified += 1;
    report.last_checkpoint_size = Some(seq);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::chain::test_chain as chain;

    fn verify(bytes: &[u8]) -> Result<VerifyReport, VerifyError> {
        let mut r = VerifyReport::default();
        verify_bytes(
            Path::new("audit.jsonl"),
            bytes,
            &VerifyOptions::default(),
            None,
            &mut r,
        )
        .map(|_| r)
    }

    fn lines(bytes: &[u8]) -> Vec<String> {
        String::from_utf8(bytes.to_vec())
            .unwrap()
            .lines()
            .map(str::to_string)
            .collect()
    }

    fn join(lines: &[String]) -> Vec<u8> {
        let mut s = lines.join("\n");
        s.push('\n');
        s.into_bytes()
    }

    #[test]
    fn an_intact_chain_verifies() {
        let r = verify(&chain(5)).unwrap();
        assert_eq!(r.records, 5);
        assert!(!r.starts_mid_chain);
        assert_eq!(verify(b"").unwrap().records, 0);
    }

    #[test]
    fn edits_deletions_and_reorders_name_the_first_broken_record() {
        let l = lines(&chain(5));
        let mut edited = l.clone();
        edited[2] = edited[2].replace("\"i\":2", "\"i\":7");
        assert_eq!(verify(&join(&edited)).unwrap_err().line, 4);

        let mut deleted = l.clone();
        deleted.remove(1);
        assert_eq!(verify(&join(&deleted)).unwrap_err().line, 2);

        let mut reordered = l.clone();
        reordered.swap(2, 3);
        assert_eq!(verify(&join(&reordered)).unwrap_err().line, 3);

        let mut truncated = join(&l);
        truncated.truncate(truncated.len() - 3);
        assert!(
            verify(&truncated)
                .unwrap_err()
                .message
                .contains("incomplete")
        );
    }
}
