//! cargo-afl target `validate`: see `src/validate.rs` for what it checks.

fn main() {
    // Lazily built statics are initialised before the fork server starts, so every
    // iteration runs the same code (AFL stability).
    waguard_fuzz::validate::warm_up();
    afl::fuzz!(|data: &[u8]| {
        waguard_fuzz::validate::run(data);
    });
}
