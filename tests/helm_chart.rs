//! The Helm chart (charts/waguard) lints, renders and validates with real Helm across its value
//! combinations, and every rendered `waguard.toml` passes this build's `waguard check-config`.
//!
//! The checks live in `charts/waguard/tests/test_chart.py` (Helm's engine and the Kubernetes
//! schemas are Python packages); this test runs it so `cargo test` covers the chart.

use std::path::Path;
use std::process::Command;

/// The script's exit code when its Python packages are missing.
const EXIT_MISSING_PACKAGES: i32 = 3;

#[test]
fn helm_chart_renders_valid_objects_and_a_config_that_passes_check_config() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let script = root.join("charts/waguard/tests/test_chart.py");
    let python = std::env::var("PYTHON").unwrap_or_else(|_| "python3".to_string());
    let output = Command::new(&python)
        .arg(&script)
        .env("WAGUARD_BIN", env!("CARGO_BIN_EXE_waguard"))
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run `{python} {}`: {e}\nThe chart tests need Python 3 with \
                 `pip install -r .ci/requirements-helm.txt`.",
                script.display()
            )
        });
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    if output.status.code() == Some(EXIT_MISSING_PACKAGES) {
        panic!(
            "the chart tests' Python packages are missing: pip install -r .ci/requirements-helm.txt\n{stderr}"
        );
    }
    assert!(
        output.status.success(),
        "chart tests failed ({}):\n{stdout}\n{stderr}",
        output.status
    );
    // Guard against a script that exits 0 without running its cases.
    assert!(
        stdout.contains(" passed, 0 failed"),
        "chart tests printed no summary:\n{stdout}\n{stderr}"
    );
}
