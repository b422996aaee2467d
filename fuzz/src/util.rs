//! Small independent helpers: percent-decoding and -encoding written here, not borrowed from
//! waguard, so the oracles do not share its code.

/// Strict percent-decoding of bytes: `None` for a `%` not followed by two hex digits.
pub fn percent_decode(raw: &str) -> Option<Vec<u8>> {
    let b = raw.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            let hi = hex_val(*b.get(i + 1)?)?;
            let lo = hex_val(*b.get(i + 2)?)?;
            out.push(hi << 4 | lo);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    Some(out)
}

fn hex_val(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Encodes like the AWS SDKs encode a non-greedy path label or a query component: everything
/// but RFC 3986 unreserved characters (`A-Z a-z 0-9 - . _ ~`) becomes `%XX`.
pub fn sdk_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len() * 3);
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// SigV4 header-value normalisation as the spec and aws-sigv4 define it: trim spaces at both
/// ends and turn runs of spaces into one. Only spaces: tabs and other whitespace are kept.
pub fn sigv4_trim_all(v: &[u8]) -> Vec<u8> {
    let mut start = 0;
    let mut end = v.len();
    while start < end && v[start] == b' ' {
        start += 1;
    }
    while end > start && v[end - 1] == b' ' {
        end -= 1;
    }
    let mut out = Vec::with_capacity(end - start);
    for &c in &v[start..end] {
        if c == b' ' && out.last() == Some(&b' ') {
            continue;
        }
        out.push(c);
    }
    out
}

/// Query pairs decoded by percent-decoding only (a `+` stays a `+`), sorted: two queries with
/// equal results mean the same thing to any decoder. `None` if a component is malformed.
pub fn strict_query_pairs(q: &str) -> Option<Vec<(Vec<u8>, Vec<u8>)>> {
    if q.is_empty() {
        return Some(Vec::new());
    }
    let mut out = Vec::new();
    for pair in q.split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        out.push((percent_decode(k)?, percent_decode(v)?));
    }
    out.sort();
    Some(out)
}
