//! The Python tools some tests drive (AWS CLI, boto3, moto_server, Helm's engine), in a
//! project-local virtual environment that the tests create themselves, the way cargo fetches
//! crates: on first use, from the pinned `tests/python/requirements.txt`, under
//! `target/tmp/pyenv`; reused by later runs and shared by test binaries running at the same time
//! (an exclusive lock on `target/tmp/pyenv.lock`); rebuilt when the requirements or the base
//! Python change. The only system prerequisite is `python3` with its `venv` module.
//!
//! Nothing is installed into the system Python: `python3 -m venv` makes an isolated environment
//! (no system site-packages), which is also allowed where PEP 668 forbids `pip install`.
#![allow(dead_code)]

use std::ffi::OsString;
use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output, Stdio};
use std::sync::OnceLock;

use sha2::{Digest, Sha256};

/// The pinned requirements, relative to the repository.
pub const REQUIREMENTS: &str = "tests/python/requirements.txt";
/// The file whose content records what an environment was built from; written last.
const STAMP: &str = "waguard-requirements.sha256";

/// A provisioned virtual environment.
#[derive(Debug, Clone)]
pub struct PythonEnv {
    dir: PathBuf,
    /// Whether this call built it (false: an up-to-date environment was reused).
    pub built: bool,
}

impl PythonEnv {
    /// The environment's interpreter.
    pub fn python(&self) -> PathBuf {
        self.bin("python")
    }

    /// An executable the environment installed (`aws`, `moto_server`).
    pub fn bin(&self, name: &str) -> PathBuf {
        self.dir.join("bin").join(name)
    }

    /// `PATH` with the environment's `bin` first, for scripts that run `aws` themselves.
    pub fn path_var(&self) -> OsString {
        let mut paths = vec![self.dir.join("bin")];
        if let Some(path) = std::env::var_os("PATH") {
            paths.extend(std::env::split_paths(&path));
        }
        std::env::join_paths(paths).unwrap_or_default()
    }

    /// A command running `script` with this environment's interpreter and `PATH`.
    pub fn script(&self, script: &Path) -> Command {
        let mut command = Command::new(self.python());
        command
            .arg(script)
            .env("PATH", self.path_var())
            .env("VIRTUAL_ENV", &self.dir)
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH");
        command
    }
}

/// The shared environment of this checkout, provisioned once per test process.
///
/// Panics with the reason (a missing `python3`/`venv`, a failed `pip install`) when it cannot be
/// provisioned: a test that needs these tools cannot run without them.
pub fn env() -> &'static PythonEnv {
    static ENV: OnceLock<PythonEnv> = OnceLock::new();
    ENV.get_or_init(|| {
        let base = std::env::var_os("WAGUARD_TEST_PYTHON").unwrap_or_else(|| "python3".into());
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("pyenv");
        let requirements = Path::new(env!("CARGO_MANIFEST_DIR")).join(REQUIREMENTS);
        provision(&base, None, &requirements, &dir).unwrap_or_else(|e| panic!("{e}"))
    })
}

/// Makes sure `dir` holds a virtual environment built by `base_python` from `requirements`, building it when it is missing, incomplete or stale. `path` replaces `PATH`
/// for looking up `base_python` and running it (the fresh-machine test's bare Python).
pub fn provision(
    base_python: &std::ffi::OsStr,
    path: Option<&OsString>,
    requirements: &Path,
    dir: &Path,
) -> Result<PythonEnv, String> {
    let parent = dir
        .parent()
        .ok_or("the environment needs a parent folder")?;
    fs::create_dir_all(parent).map_err(|e| format!("cannot create {}: {e}", parent.display()))?;

    // Concurrent test binaries (cargo nextest, or two `cargo test` runs) wait here for the one
    // that builds; the lock is released when `lock` is dropped, also if this process dies.
    let lock_path = dir.with_extension("lock");
    let lock = File::create(&lock_path)
        .map_err(|e| format!("cannot create {}: {e}", lock_path.display()))?;
    lock.lock()
        .map_err(|e| format!("cannot lock {}: {e}", lock_path.display()))?;

    let base = |args: &[&str]| {
        let mut command = Command::new(base_python);
        command
            .args(args)
            .env_remove("PYTHONHOME")
            .env_remove("PYTHONPATH");
        if let Some(path) = path {
            command.env("PATH", path);
        }
        command.output()
    };
    let version = base(&["-c", "import sys; print(sys.version)"]).map_err(|e| {
        format!(
            "cannot run `{}` ({e}): the tests that drive the AWS CLI, boto3, moto and Helm need \
             Python 3 (3.11 or newer) with its venv module on PATH (Debian/Ubuntu: \
             `apt-get install python3 python3-venv`); set WAGUARD_TEST_PYTHON to use another \
             interpreter",
            base_python.to_string_lossy()
        )
    })?;
    if !version.status.success() {
        return Err(failure("python3 --version", &version));
    }

    let wanted = {
        let mut hash = Sha256::new();
        hash.update(
            fs::read(requirements)
                .map_err(|e| format!("cannot read {}: {e}", requirements.display()))?,
        );
        hash.update(&version.stdout);
        hex::encode(hash.finalize())
    };
    let stamp = dir.join(STAMP);
    let mut env = PythonEnv {
        dir: dir.to_path_buf(),
        built: false,
    };
    if fs::read_to_string(&stamp).ok().as_deref() == Some(wanted.as_str()) && env.python().exists()
    {
        return Ok(env);
    }

    // Missing, stale or half-built (the stamp is written last): build from scratch.
    if dir.exists() {
        fs::remove_dir_all(dir).map_err(|e| format!("cannot remove {}: {e}", dir.display()))?;
    }
    let dir_arg = dir.to_string_lossy();
    let venv = base(&["-m", "venv", dir_arg.as_ref()])
        .map_err(|e| format!("cannot run python3 -m venv: {e}"))?;
    if !venv.status.success() {
        return Err(format!(
            "{}\nThe tests need Python's venv module (Debian/Ubuntu: `apt-get install \
             python3-venv`).",
            failure("python3 -m venv", &venv)
        ));
    }
    eprintln!(
        "provisioning Python tools in {} from {} (once)",
        dir.display(),
        requirements.display()
    );
    let pip = Command::new(env.python())
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(["--no-input", "-r"])
        .arg(requirements)
        .env_remove("PYTHONHOME")
        .env_remove("PYTHONPATH")
        .env_remove("PIP_USER")
        .output()
        .map_err(|e| format!("cannot run pip: {e}"))?;
    if !pip.status.success() {
        return Err(failure(
            &format!("pip install -r {}", requirements.display()),
            &pip,
        ));
    }
    let partial = stamp.with_extension("partial");
    fs::write(&partial, &wanted)
        .and_then(|()| fs::rename(&partial, &stamp))
        .map_err(|e| format!("cannot write {}: {e}", stamp.display()))?;
    env.built = true;
    Ok(env)
}

fn failure(what: &str, output: &Output) -> String {
    format!(
        "`{what}` failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// Starts `waguard demo` on a free port, drives it with `tests/clients/demo_clients.py` (the
/// AWS CLI and boto3), then stops it with SIGTERM. Returns the clients' output and the demo's
/// exit status.
pub fn demo_with_clients(env: &PythonEnv, waguard_bin: &str) -> (Output, ExitStatus) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut demo = Command::new(waguard_bin)
        .args(["demo", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start waguard demo: {e}"));
    let stdout = demo.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let first = lines.next().and_then(Result::ok).unwrap_or_default();
    // Keep reading: the demo prints more, and a closed pipe would end it (EPIPE).
    std::thread::spawn(move || lines.for_each(drop));
    let endpoint = first
        .split_whitespace()
        .find(|w| w.starts_with("http://127.0.0.1:"))
        .unwrap_or_else(|| panic!("the demo printed no endpoint: {first:?}"))
        .trim_end_matches(',')
        .to_string();
    let clients = env
        .script(&root.join("tests/clients/demo_clients.py"))
        .arg(&endpoint)
        .output()
        .unwrap_or_else(|e| panic!("cannot run demo_clients.py: {e}"));
    // SIGTERM: the demo shuts down gracefully and exits 0.
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(demo.id().to_string())
        .status();
    let status = demo
        .wait()
        .unwrap_or_else(|e| panic!("waiting for the demo: {e}"));
    (clients, status)
}

/// Runs the chart tests (`charts/waguard/tests/test_chart.py`) with this build's binary.
pub fn run_chart_tests(env: &PythonEnv, waguard_bin: &str) -> Output {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    env.script(&root.join("charts/waguard/tests/test_chart.py"))
        .env("WAGUARD_BIN", waguard_bin)
        .current_dir(root)
        .output()
        .unwrap_or_else(|e| panic!("cannot run test_chart.py: {e}"))
}
