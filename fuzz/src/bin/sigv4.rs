//! cargo-afl target `sigv4`: see `src/sigv4.rs` for what it checks.

fn main() {
    // Lazily built statics are initialised before the fork server starts, so every
    // iteration runs the same code (AFL stability).
    waguard_fuzz::sigv4::warm_up();
    afl::fuzz!(|data: &[u8]| {
        waguard_fuzz::sigv4::run(data);
    });
}
