//! cargo-afl target `strict_json`: see `src/strict_json.rs` for what it checks.

fn main() {
    // Lazily built statics are initialised before the fork server starts, so every
    // iteration runs the same code (AFL stability).
    waguard_fuzz::strict_json::run(br#"{"a":[1,2.5,"x"]}"#);
    afl::fuzz!(|data: &[u8]| {
        waguard_fuzz::strict_json::run(data);
    });
}
