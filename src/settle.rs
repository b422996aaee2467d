//! Telling a file that is still being written from one that is done.
//!
//! A writer that is not atomic (`cp`, an editor saving in place, a script appending) leaves a
//! file half-written for a moment, and a half can parse: the first half of a policy may allow
//! everything, the first half of the callers file may still hold a revoked key. So content is
//! taken only once it has settled: no file or folder read changed for [`QUIET`], by the files'
//! own change times, or else the same content was read twice.

use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::time::{Duration, Instant, SystemTime};

/// How long files must have been left alone before the reloader loads them.
pub const QUIET: Duration = Duration::from_secs(1);
/// The pause between two reads of files that changed a moment ago, when loading them at
/// startup or from the command line.
const PAUSE: Duration = Duration::from_millis(100);
/// How long loading at startup waits for files that keep changing before it gives up.
const PATIENCE: Duration = Duration::from_secs(3);

/// When a file's content or name last changed: the later of its mtime and its ctime. The
/// ctime also moves when a file is renamed into place, and unlike the mtime it cannot be
/// set back (`touch -d`, `cp -p` and `tar` set the mtime only).
pub fn changed_at(meta: &Metadata) -> Option<SystemTime> {
    let ctime = u32::try_from(meta.ctime_nsec()).ok().and_then(|nanos| {
        let secs = u64::try_from(meta.ctime()).ok()?;
        SystemTime::UNIX_EPOCH.checked_add(Duration::new(secs, nanos))
    });
    match (meta.modified().ok(), ctime) {
        (Some(m), Some(c)) => Some(m.max(c)),
        (m, c) => m.or(c),
    }
}

/// How long until something that changed at `changed` has been left alone for [`QUIET`];
/// `None` when it already has. A change time in the future (a skewed clock) counts as now.
pub fn quiet_in(changed: Option<SystemTime>) -> Option<Duration> {
    let changed = changed?;
    match SystemTime::now().duration_since(changed) {
        Ok(age) => QUIET.checked_sub(age).filter(|d| !d.is_zero()),
        Err(_) => Some(QUIET),
    }
}

/// One read of some files: what was read, a digest of it, and when any of the files last
/// changed (see [`changed_at`]).
pub struct Read<T> {
    pub value: T,
    pub digest: String,
    pub changed: Option<SystemTime>,
}

/// Reads with `read` until the result can be trusted, for loading at startup or from the
/// command line: at once when nothing changed in the last [`QUIET`]; otherwise again after
/// a short pause, until two reads in a row agree. Files that keep changing for a few seconds
/// are an error (`busy`), not a reason to load a half-written version.
pub fn read_steady<T, E>(
    mut read: impl FnMut() -> Result<Read<T>, E>,
    busy: impl FnOnce() -> E,
) -> Result<T, E> {
    let mut last = read()?;
    if quiet_in(last.changed).is_none() {
        return Ok(last.value);
    }
    let started = Instant::now();
    loop {
        std::thread::sleep(PAUSE);
        let again = read()?;
        if again.digest == last.digest {
            return Ok(again.value);
        }
        if started.elapsed() >= PATIENCE {
            return Err(busy());
        }
        last = again;
    }
}
