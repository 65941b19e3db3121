//! The interpreter the process backend's workers run models with (`RAFIKI_PYTHON`), checked
//! once when the admin starts: it must run and import the `rafiki` package's model runtime.
//!
//! Without the check an admin whose interpreter lacks the package accepts train jobs whose
//! workers can never start a model, and the first sign of it is a job ERRORED for no reason
//! its user can act on. So `rafiki-admin` refuses to start instead, `--dev` included (a dev
//! admin that cannot train is of no use), saying how to fix it. With the docker backend the
//! interpreter is the worker image's, and nothing is checked here.
//!
//! The check runs the interpreter as workers do: by the same path, with the environment the
//! backend gives its services, outside any sandbox (it is the operator's interpreter, not a
//! model's).

use std::process::Stdio;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tokio::process::Command;

use crate::backend::process::{service_base_env, worker_program};

/// How long the interpreter may take to import the runtime (numpy, on a cold and busy machine).
const CHECK_TIMEOUT: Duration = Duration::from_secs(60);

/// The Python that the check runs: the version first (an old Python may not even parse the
/// package), then the runtime's imports, then what it found, as JSON on stdout.
const CHECK: &str = r#"
import json, platform, sys
if sys.version_info < (3, 9):
    sys.exit("Python %s is too old: rafiki needs 3.9 or newer" % platform.python_version())
import rafiki, rafiki.runtime
print(json.dumps({
    "executable": sys.executable,
    "version": platform.python_version(),
    "rafiki": rafiki.__version__,
}))
"#;

/// The workers' interpreter, as `GET /health` reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct WorkersPython {
    /// `RAFIKI_PYTHON` as workers are given it.
    pub interpreter: String,
    /// Its real path (`sys.executable`).
    pub executable: String,
    /// Its Python version.
    pub version: String,
    /// The version of its `rafiki` package.
    pub rafiki: String,
}

/// What the check prints.
#[derive(Deserialize)]
struct Found {
    executable: String,
    version: String,
    rafiki: String,
}

/// Whether `python` (`RAFIKI_PYTHON`) can run the model runtime; if not, why and how to fix it.
pub async fn check(python: &str) -> Result<WorkersPython, String> {
    let interpreter = worker_program(python);
    let problem = match run_check(&interpreter).await {
        Ok(found) => {
            return Ok(WorkersPython {
                interpreter,
                executable: found.executable,
                version: found.version,
                rafiki: found.rafiki,
            })
        }
        Err(problem) => problem,
    };
    Err(format!(
        "the workers' interpreter `{interpreter}` (RAFIKI_PYTHON) cannot run models: {problem}. \
         Workers need Python 3.9 or newer with the rafiki package. Start Rafiki with \
         scripts/run.sh, which installs the package into the repository's .venv and uses it; \
         or install it yourself (`python3 -m venv .venv && .venv/bin/pip install -e \
         './python[examples]'` in the repository) and set RAFIKI_PYTHON=/path/to/.venv/bin/python \
         (any interpreter that can `import rafiki.runtime`)"
    ))
}

/// Runs [`CHECK`] with `interpreter`; the problem in a few words when it fails.
async fn run_check(interpreter: &str) -> Result<Found, String> {
    let child = Command::new(interpreter)
        .args(["-c", CHECK])
        .env_clear()
        .envs(service_base_env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run it: {e}"))?;
    let output = tokio::time::timeout(CHECK_TIMEOUT, child.wait_with_output())
        .await
        .map_err(|_| format!("it did not import the runtime within {CHECK_TIMEOUT:?}"))?
        .map_err(|e| format!("cannot run it: {e}"))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        // Python's last line names the exception (or says why it exited).
        return Err(
            match stderr.lines().map(str::trim).rfind(|l| !l.is_empty()) {
                Some(last) => last.to_owned(),
                None => format!("it exited with {}", output.status),
            },
        );
    }
    serde_json::from_slice(&output.stdout).map_err(|e| {
        format!(
            "it answered {:?} ({e})",
            String::from_utf8_lossy(&output.stdout).trim()
        )
    })
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    /// An executable shell script `dir/name` standing in for an interpreter.
    fn stand_in(dir: &std::path::Path, name: &str, body: &str) -> String {
        let path = dir.join(name);
        std::fs::write(&path, format!("#!/bin/sh\n{body}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    fn assert_says_how_to_fix(error: &str) {
        for fix in [
            "scripts/run.sh",
            "pip install -e",
            "RAFIKI_PYTHON=/path/to/",
        ] {
            assert!(error.contains(fix), "no `{fix}` in: {error}");
        }
    }

    #[tokio::test]
    async fn an_interpreter_that_is_not_there_is_refused_with_the_fix() {
        let error = check("/nonexistent/python3").await.unwrap_err();
        assert!(error.contains("`/nonexistent/python3`"), "{error}");
        assert!(error.contains("No such file or directory"), "{error}");
        assert_says_how_to_fix(&error);
    }

    #[tokio::test]
    async fn python_s_last_words_say_why() {
        let dir = tempfile::tempdir().unwrap();
        let python = stand_in(
            dir.path(),
            "python",
            "echo 'Traceback (most recent call last):' >&2\n\
             echo \"ModuleNotFoundError: No module named 'rafiki'\" >&2\nexit 1",
        );
        let error = check(&python).await.unwrap_err();
        assert!(
            error.contains("cannot run models: ModuleNotFoundError: No module named 'rafiki'."),
            "{error}"
        );
        assert!(!error.contains("Traceback"), "{error}");
        assert_says_how_to_fix(&error);
    }

    #[tokio::test]
    async fn what_the_interpreter_reports_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let python = stand_in(
            dir.path(),
            "python",
            r#"echo '{"executable": "/usr/bin/python3.11", "version": "3.11.2", "rafiki": "0.1.0"}'"#,
        );
        assert_eq!(
            check(&python).await.unwrap(),
            WorkersPython {
                interpreter: python,
                executable: "/usr/bin/python3.11".into(),
                version: "3.11.2".into(),
                rafiki: "0.1.0".into(),
            }
        );
        let garbled = stand_in(dir.path(), "garbled", "echo hello");
        let error = check(&garbled).await.unwrap_err();
        assert!(error.contains("it answered \"hello\""), "{error}");
    }

    #[tokio::test]
    async fn a_relative_interpreter_is_run_as_workers_run_it() {
        // Workers run in folders of their own, so a relative path with a folder is made
        // absolute from here, for them and for the check alike.
        let error = check("no-such-dir/python").await.unwrap_err();
        let absolute = std::path::absolute("no-such-dir/python").unwrap();
        assert!(
            error.contains(&format!("`{}`", absolute.display())),
            "{error}"
        );
    }
}
