//! Every seed in `corpus/<target>/` must pass its target (no panic, properties hold), so the
//! corpus doubles as a regression suite: `cargo test --no-default-features` in this folder.
//! Inputs under `crashes/<target>/` reproduce reported waguard bugs; they are replayed by the
//! ignored test below (`-- --ignored`) and are expected to fail until the bug is fixed.

use std::path::Path;

fn files(dir: &Path) -> Vec<std::path::PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut v: Vec<_> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.is_file() && p.file_name().is_some_and(|n| n != "README.md"))
        .collect();
    v.sort();
    v
}

fn replay(folder: &str) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(folder);
    let mut failures = Vec::new();
    let all = waguard_fuzz::TARGETS.iter().chain(if folder == "crashes" {
        waguard_fuzz::VARIANTS
    } else {
        &[]
    });
    for (name, run) in all {
        for f in files(&root.join(name)) {
            let data = std::fs::read(&f).unwrap();
            if std::panic::catch_unwind(|| run(&data)).is_err() {
                failures.push(f.display().to_string());
            }
        }
    }
    failures
}

#[test]
fn corpus_passes_every_target() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus");
    for (name, _) in waguard_fuzz::TARGETS {
        assert!(
            !files(&root.join(name)).is_empty(),
            "corpus/{name} is empty"
        );
    }
    let failures = replay("corpus");
    assert!(failures.is_empty(), "seeds failing: {failures:#?}");
}

#[test]
#[ignore = "reproducers of open waguard bugs; run with --ignored"]
fn crashes_reproduce() {
    let failures = replay("crashes");
    assert!(failures.is_empty(), "still failing: {failures:#?}");
}

#[test]
fn signed_seeds_are_accepted() {
    use waguard_fuzz::sigv4;
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/sigv4");
    let mut n = 0;
    for f in files(&dir) {
        if !f
            .file_name()
            .unwrap()
            .to_string_lossy()
            .starts_with("signed")
        {
            continue;
        }
        let data = std::fs::read(&f).unwrap();
        let req = sigv4::parse_raw(&data).expect("seed parses");
        let parts = req.to_parts().expect("seed builds");
        let r = waguard::auth::verify(&parts, &req.body, &sigv4::CALLERS, sigv4::now());
        assert!(r.is_ok(), "{}: {r:?}", f.display());
        n += 1;
    }
    assert!(n >= 5, "only {n} signed seeds");
}
