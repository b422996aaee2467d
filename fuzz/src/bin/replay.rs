//! Runs a target over files without AFL (plain build, full panic message and backtrace):
//!
//!     cargo run --release --no-default-features --bin replay -- route crashes/route/*
//!     cargo run --release --no-default-features --bin replay -- sigv4 corpus/sigv4
//!
//! A folder argument means every file in it. Exits non-zero if any input panics.

use std::path::PathBuf;

fn main() {
    let mut args = std::env::args().skip(1);
    let Some(name) = args.next() else {
        eprintln!("usage: replay <target> <file or folder>...");
        std::process::exit(2);
    };
    let Some(run) = waguard_fuzz::target(&name) else {
        eprintln!(
            "unknown target {name:?}; one of: {}",
            waguard_fuzz::TARGETS
                .iter()
                .map(|(n, _)| *n)
                .collect::<Vec<_>>()
                .join(", ")
        );
        std::process::exit(2);
    };
    let mut files: Vec<PathBuf> = Vec::new();
    for a in args {
        let p = PathBuf::from(a);
        if p.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&p)
                .expect("readable folder")
                .filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| p.is_file())
                .collect();
            entries.sort();
            files.extend(entries);
        } else {
            files.push(p);
        }
    }
    let mut failed = 0;
    for f in &files {
        let data = std::fs::read(f).expect("readable input");
        let r = std::panic::catch_unwind(|| run(&data));
        match r {
            Ok(()) => println!("ok    {}", f.display()),
            Err(_) => {
                failed += 1;
                println!("PANIC {}", f.display());
            }
        }
    }
    println!("{} passed, {} failed", files.len() - failed, failed);
    if failed > 0 {
        std::process::exit(1);
    }
}
