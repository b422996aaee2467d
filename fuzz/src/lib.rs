//! Fuzz target bodies for waguard, shared by the cargo-afl binaries in `src/bin/` and by the
//! corpus replay (`src/bin/replay.rs`, `tests/replay.rs`).
//!
//! Every target is a plain `fn(&[u8])` that panics when waguard panics or when one of the
//! properties checked here does not hold. The oracles are deliberately written apart from
//! waguard's own code (own percent-decoder, own JSON scanner, aws-sigv4 as the reference
//! signer), so a shared misunderstanding does not hide a bug.

pub mod json;
pub mod route;
pub mod sigv4;
pub mod strict_json;
pub mod util;
pub mod validate;

/// The fuzz targets by name (one cargo-afl binary each).
pub const TARGETS: &[(&str, fn(&[u8]))] = &[
    ("route", route::run),
    ("validate", validate::run),
    ("strict_json", strict_json::run),
    ("sigv4", sigv4::run),
];

/// Variants the replay runner knows besides the targets (no AFL binary; same inputs).
pub const VARIANTS: &[(&str, fn(&[u8]))] = &[("sigv4_verify_only", sigv4::run_verify_only)];

pub fn target(name: &str) -> Option<fn(&[u8])> {
    TARGETS
        .iter()
        .chain(VARIANTS)
        .find(|(n, _)| *n == name)
        .map(|(_, f)| *f)
}
