//! Refusals that are counted, not recorded one by one: requests that failed authentication
//! and throttled requests. Anyone who can reach the port can make the first kind, at any rate,
//! so each costs a counter bump in memory; once per `audit.summary_interval` the counts become
//! one record. Memory is bounded by [`MAX_SUMMARY_ENTRIES`] distinct entries per interval.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::SystemTime;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::record::{AuthFailureCount, RefusalSummary, ThrottledCount};

/// Distinct entries kept per interval; refusals beyond them are counted in `unlisted`.
pub const MAX_SUMMARY_ENTRIES: usize = 100;
/// Bytes of a request path kept as an entry's sample.
pub const SAMPLE_PATH_BYTES: usize = 256;
/// Characters of a claimed access key id kept.
pub const ACCESS_KEY_CHARS: usize = 128;

struct Count {
    count: u64,
    first_seen: SystemTime,
    last_seen: SystemTime,
    sample_path: String,
}

struct State<K> {
    since: Option<SystemTime>,
    total: u64,
    unlisted: u64,
    entries: HashMap<K, Count>,
}

/// Counts of one kind of refusal since the last [`Tally::take`].
pub struct Tally<K> {
    state: Mutex<State<K>>,
}

impl<K: Eq + Hash> Default for Tally<K> {
    fn default() -> Self {
        Tally {
            state: Mutex::new(State {
                since: None,
                total: 0,
                unlisted: 0,
                entries: HashMap::new(),
            }),
        }
    }
}

/// Who failed authentication, as far as the request says.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AuthFailureKey {
    pub source_ip: std::net::IpAddr,
    pub access_key_id: Option<String>,
    pub error: &'static str,
    /// A refused credential exchange's ARN.
    pub principal: Option<String>,
}

/// Who was throttled, for what, by which bucket.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ThrottledKey {
    pub access_key_id: String,
    pub principal: String,
    pub team: String,
    pub operation: &'static str,
    pub limit: &'static str,
}

fn rfc3339(t: SystemTime) -> String {
    OffsetDateTime::from(t).format(&Rfc3339).unwrap_or_default()
}

/// `s` cut to at most `max` bytes on a character boundary.
pub fn truncate(s: &str, max: usize) -> String {
    if s.len() <= max {
        return s.to_string();
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s[..end].to_string()
}

impl<K: Eq + Hash> Tally<K> {
    /// Counts one refusal. `sample_path` is asked for only when the entry is new.
    pub fn note(&self, key: K, sample_path: impl FnOnce() -> String) {
        let now = SystemTime::now();
        let Ok(mut state) = self.state.lock() else {
            return;
        };
        state.since.get_or_insert(now);
        state.total += 1;
        if let Some(c) = state.entries.get_mut(&key) {
            c.count += 1;
            c.last_seen = now;
            return;
        }
        if state.entries.len() >= MAX_SUMMARY_ENTRIES {
            state.unlisted += 1;
            return;
        }
        state.entries.insert(
            key,
            Count {
                count: 1,
                first_seen: now,
                last_seen: now,
                sample_path: truncate(&sample_path(), SAMPLE_PATH_BYTES),
            },
        );
    }

    /// The counts so far, most frequent first, and a fresh start; `None` if there were none.
    fn take_with<E>(&self, entry: impl Fn(K, Count) -> E) -> Option<RefusalSummary<E>> {
        let (since, total, unlisted, entries) = {
            let mut state = self.state.lock().ok()?;
            let since = state.since.take()?;
            let total = std::mem::take(&mut state.total);
            let unlisted = std::mem::take(&mut state.unlisted);
            (since, total, unlisted, std::mem::take(&mut state.entries))
        };
        let mut entries: Vec<(K, Count)> = entries.into_iter().collect();
        entries.sort_by(|a, b| {
            b.1.count
                .cmp(&a.1.count)
                .then(a.1.first_seen.cmp(&b.1.first_seen))
        });
        Some(RefusalSummary {
            time: rfc3339(SystemTime::now()),
            since: rfc3339(since),
            total,
            unlisted,
            entries: entries.into_iter().map(|(k, c)| entry(k, c)).collect(),
        })
    }
}

impl Tally<AuthFailureKey> {
    pub fn take(&self) -> Option<RefusalSummary<AuthFailureCount>> {
        self.take_with(|k, c| AuthFailureCount {
            source_ip: k.source_ip.to_string(),
            access_key_id: k.access_key_id,
            error: k.error.to_string(),
            principal: k.principal,
            count: c.count,
            first_seen: rfc3339(c.first_seen),
            last_seen: rfc3339(c.last_seen),
            sample_path: c.sample_path,
        })
    }
}

impl Tally<ThrottledKey> {
    pub fn take(&self) -> Option<RefusalSummary<ThrottledCount>> {
        self.take_with(|k, c| ThrottledCount {
            access_key_id: k.access_key_id,
            principal: k.principal,
            team: k.team,
            operation: k.operation.to_string(),
            limit: k.limit.to_string(),
            count: c.count,
            first_seen: rfc3339(c.first_seen),
            last_seen: rfc3339(c.last_seen),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: u8, key: Option<&str>) -> AuthFailureKey {
        AuthFailureKey {
            source_ip: std::net::IpAddr::from([10, 0, 0, ip]),
            access_key_id: key.map(str::to_string),
            error: "MissingAuthenticationTokenException",
            principal: None,
        }
    }

    #[test]
    fn counts_per_entry_most_frequent_first_then_starts_over() {
        let t: Tally<AuthFailureKey> = Tally::default();
        assert!(t.take().is_none());
        t.note(key(1, None), || "/a".into());
        for _ in 0..3 {
            t.note(key(2, Some("AKX")), || "/b".repeat(1000));
        }
        let s = t.take().unwrap();
        assert_eq!((s.total, s.unlisted), (4, 0));
        assert_eq!(s.entries.len(), 2);
        assert_eq!(s.entries[0].source_ip, "10.0.0.2");
        assert_eq!(s.entries[0].count, 3);
        assert_eq!(s.entries[0].sample_path.len(), SAMPLE_PATH_BYTES);
        assert_eq!(s.entries[1].sample_path, "/a");
        assert!(t.take().is_none(), "taking starts a new interval");
    }

    #[test]
    fn distinct_entries_beyond_the_cap_are_only_counted() {
        let t: Tally<AuthFailureKey> = Tally::default();
        for i in 0..(MAX_SUMMARY_ENTRIES + 50) {
            t.note(key(1, Some(&format!("AK{i}"))), String::new);
        }
        t.note(key(1, Some("AK0")), String::new);
        let s = t.take().unwrap();
        assert_eq!(s.entries.len(), MAX_SUMMARY_ENTRIES);
        assert_eq!(s.unlisted, 50);
        assert_eq!(s.total, MAX_SUMMARY_ENTRIES as u64 + 51);
        assert_eq!(s.entries[0].count, 2);
    }

    #[test]
    fn truncation_keeps_whole_characters() {
        assert_eq!(truncate("aé", 2), "a");
        assert_eq!(truncate("abc", 3), "abc");
    }
}
