//! The `waguard` command: parses the command line and hands over to the library.

use std::process::ExitCode;

/// mimalloc: under load a third of the gateway's CPU went to glibc's malloc and free (README,
/// Performance). Built with `no_thp`: mimalloc would otherwise ask for transparent huge pages
/// for its arena, and RSS with 1,000 idle connections grew from 44 MiB to 75 MiB.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    waguard::cli::main()
}
