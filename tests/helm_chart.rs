//! The Helm chart (charts/waguard) lints, renders and validates with real Helm across its value
//! combinations, and every rendered `waguard.toml` passes this build's `waguard check-config`.
//!
//! The checks live in `charts/waguard/tests/test_chart.py` (Helm's engine and the Kubernetes
//! schemas are Python packages, provisioned by `common/python.rs`); this test runs it so
//! `cargo test` covers the chart.

#[path = "common/python.rs"]
mod python;

#[test]
fn helm_chart_renders_valid_objects_and_a_config_that_passes_check_config() {
    let output = python::run_chart_tests(python::env(), env!("CARGO_BIN_EXE_waguard"));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
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
