//! cargo-afl target `route`: see `src/route.rs` for what it checks.

fn main() {
    // Lazily built statics are initialised before the fork server starts, so every
    // iteration runs the same code (AFL stability).
    waguard_fuzz::route::run(b"POST /templates/shares/arn%3Aaws%3Awellarchitected%3Aus-east-1%3A123456789012%3Areview-template%2F0123456789abcdef0123456789abcdef");
    afl::fuzz!(|data: &[u8]| {
        waguard_fuzz::route::run(data);
    });
}
