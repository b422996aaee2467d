//! The hash chain that makes the audit log tamper evident, and its verifier.
//!
//! Every record carries `seq` (consecutive from 0, across rotated files) and `prev_hash`, the
//! SHA-256 (hex) of the previous record's exact line bytes. Editing, deleting or reordering a
//! record breaks the link to the record after it.

use std::path::{Path, PathBuf};

use serde_json::Value;
use sha2::{Digest, Sha256};

/// `prev_hash` of the very first record.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// Where the chain stands: what the next record must carry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainHead {
    pub next_seq: u64,
    pub last_hash: String,
}

impl ChainHead {
    pub fn genesis() -> ChainHead {
        ChainHead {
            next_seq: 0,
            last_hash: GENESIS.to_string(),
        }
    }

    /// Adds `seq` and `prev_hash` to a record and returns its line (without newline) and the
    /// head after it. The two come first in the line; the record is serialized as it is, not
    /// copied (the writer thread seals every record).
    pub fn seal(&self, record: &Value) -> Result<(Vec<u8>, ChainHead), String> {
        let Value::Object(map) = record else {
            return Err("audit records must be JSON objects".into());
        };
        if map.contains_key("seq") || map.contains_key("prev_hash") {
            return Err("audit records must not carry seq or prev_hash".into());
        }
        let mut line = Vec::with_capacity(512);
        line.extend_from_slice(b"{\"seq\":");
        line.extend_from_slice(self.next_seq.to_string().as_bytes());
        line.extend_from_slice(b",\"prev_hash\":");
        serde_json::to_writer(&mut line, &self.last_hash).map_err(|e| e.to_string())?;
        if map.is_empty() {
            line.push(b'}');
        } else {
            // `{"a":...}` continues the line as `,"a":...}`.
            let start = line.len();
            serde_json::to_writer(&mut line, record).map_err(|e| e.to_string())?;
            line[start] = b',';
        }
        let next = ChainHead {
            next_seq: self.next_seq + 1,
            last_hash: line_hash(&line),
        };
        Ok((line, next))
    }
}

pub fn line_hash(line: &[u8]) -> String {
    hex::encode(Sha256::digest(line))
}

/// What verification found.
#[derive(Debug)]
pub struct VerifyReport {
    pub records: u64,
    pub first_seq: Option<u64>,
    pub head: Option<ChainHead>,
    /// The chain starts after seq 0 (earlier records are in files not given).
    pub starts_mid_chain: bool,
}

#[derive(Debug, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct VerifyError {
    pub file: PathBuf,
    pub line: usize,
    pub message: String,
}

/// Verifies one or more audit files as one chain, in the order given (oldest first).
pub fn verify_files(files: &[PathBuf]) -> Result<VerifyReport, VerifyError> {
    let mut report = VerifyReport {
        records: 0,
        first_seq: None,
        head: None,
        starts_mid_chain: false,
    };
    for file in files {
        let bytes = std::fs::read(file).map_err(|e| VerifyError {
            file: file.clone(),
            line: 0,
            message: format!("cannot read: {e}"),
        })?;
        verify_bytes(file, &bytes, &mut report)?;
    }
    Ok(report)
}

fn verify_bytes(file: &Path, bytes: &[u8], report: &mut VerifyReport) -> Result<(), VerifyError> {
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
    for (i, line) in bytes.split(|b| *b == b'\n').enumerate() {
        let n = i + 1;
        if line.is_empty() {
            if n == bytes.split(|b| *b == b'\n').count() {
                break;
            }
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
        report.head = Some(ChainHead {
            next_seq: seq + 1,
            last_hash: line_hash(line),
        });
        report.records += 1;
    }
    Ok(())
}

/// Reads the head of an existing log: the chain state after its last complete record, and
/// how many bytes of a torn final record (a crash mid-write) follow it.
pub fn recover_head(bytes: &[u8]) -> Result<(Option<ChainHead>, usize), String> {
    let complete = match bytes.iter().rposition(|b| *b == b'\n') {
        Some(i) => i + 1,
        None => 0,
    };
    let torn = bytes.len() - complete;
    let body = &bytes[..complete];
    let Some(last) = body[..body.len().saturating_sub(1)]
        .split(|b| *b == b'\n')
        .next_back()
        .filter(|l| !l.is_empty())
    else {
        return Ok((None, torn));
    };
    let v: Value = serde_json::from_slice(last).map_err(|e| {
        format!("the last complete record is not JSON ({e}); run `waguard audit verify`")
    })?;
    let seq = v
        .get("seq")
        .and_then(Value::as_u64)
        .ok_or("the last record has no seq; run `waguard audit verify`")?;
    Ok((
        Some(ChainHead {
            next_seq: seq + 1,
            last_hash: line_hash(last),
        }),
        torn,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_sealed_line_is_the_record_with_seq_and_prev_hash_first() {
        let head = ChainHead::genesis();
        let record = json!({"type": "decision", "reasons": ["a \"quoted\" reason"], "n": 1});
        let (line, next) = head.seal(&record).unwrap();
        let text = String::from_utf8(line.clone()).unwrap();
        assert!(text.starts_with("{\"seq\":0,\"prev_hash\":\""), "{text}");
        let mut parsed: Value = serde_json::from_slice(&line).unwrap();
        let fields = parsed.as_object_mut().unwrap();
        assert_eq!(fields.remove("seq"), Some(json!(0)));
        assert_eq!(fields.remove("prev_hash"), Some(json!(GENESIS)));
        assert_eq!(parsed, record);
        assert_eq!(next.next_seq, 1);
        assert_eq!(next.last_hash, line_hash(&line));
        let (empty, _) = next.seal(&json!({})).unwrap();
        let empty: Value = serde_json::from_slice(&empty).unwrap();
        assert_eq!(empty["seq"], 1);
        assert!(head.seal(&json!({"seq": 7})).is_err());
        assert!(head.seal(&json!({"prev_hash": "x"})).is_err());
        assert!(head.seal(&json!(["not", "an", "object"])).is_err());
    }

    fn chain(n: usize) -> Vec<u8> {
        let mut head = ChainHead::genesis();
        let mut out = Vec::new();
        for i in 0..n {
            let (line, next) = head.seal(&json!({"type": "decision", "i": i})).unwrap();
            out.extend_from_slice(&line);
            out.push(b'\n');
            head = next;
        }
        out
    }

    fn verify(bytes: &[u8]) -> Result<VerifyReport, VerifyError> {
        let mut r = VerifyReport {
            records: 0,
            first_seq: None,
            head: None,
            starts_mid_chain: false,
        };
        verify_bytes(Path::new("audit.jsonl"), bytes, &mut r).map(|_| r)
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

    #[test]
    fn recovery_finds_the_head_and_the_torn_tail() {
        let full = chain(3);
        let (head, torn) = recover_head(&full).unwrap();
        assert_eq!(head.as_ref().unwrap().next_seq, 3);
        assert_eq!(torn, 0);
        let mut torn_bytes = full.clone();
        torn_bytes.extend_from_slice(b"{\"type\":\"deci");
        let (head2, torn) = recover_head(&torn_bytes).unwrap();
        assert_eq!(head2, head);
        assert_eq!(torn, 13);
        assert_eq!(recover_head(b"").unwrap(), (None, 0));
    }
}
