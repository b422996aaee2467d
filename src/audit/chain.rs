//! The hash chain that makes the audit log tamper evident: sealing records into it, and
//! finding its head in an existing file.
//!
//! Every record carries `seq` (consecutive from 0, across rotated files) and `prev_hash`, the
//! SHA-256 (hex) of the previous record's exact line bytes. Editing, deleting or reordering a
//! record breaks the link to the record after it.

use serde::Serialize;
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
    /// copied (the writer thread seals every record). The record must serialize to a JSON
    /// object without those two fields (every `AuditRecord` does).
    pub fn seal<T: Serialize + ?Sized>(&self, record: &T) -> Result<(Vec<u8>, ChainHead), String> {
        let mut line = Vec::with_capacity(512);
        line.extend_from_slice(b"{\"seq\":");
        line.extend_from_slice(self.next_seq.to_string().as_bytes());
        line.extend_from_slice(b",\"prev_hash\":");
        serde_json::to_writer(&mut line, &self.last_hash).map_err(|e| e.to_string())?;
        let start = line.len();
        serde_json::to_writer(&mut line, record).map_err(|e| e.to_string())?;
        match &line[start..] {
            b"{}" => {
                line.truncate(start);
                line.push(b'}');
            }
            // `{"a":...}` continues the line as `,"a":...}`.
            [b'{', ..] => line[start] = b',',
            _ => return Err("audit records must be JSON objects".into()),
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

/// A log of `n` small decision records, for tests.
#[cfg(test)]
pub(crate) fn test_chain(n: usize) -> Vec<u8> {
    let mut head = ChainHead::genesis();
    let mut out = Vec::new();
    for i in 0..n {
        let (line, next) = head
            .seal(&serde_json::json!({"type": "decision", "i": i}))
            .unwrap();
        out.extend_from_slice(&line);
        out.push(b'\n');
        head = next;
    }
    out
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
        assert!(head.seal(&json!(["not", "an", "object"])).is_err());
    }

    #[test]
    fn recovery_finds_the_head_and_the_torn_tail() {
        let full = test_chain(3);
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
