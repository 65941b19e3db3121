//! Shared by the worker's integration tests: the Python interpreter to test with, small model
//! files, and the in-test admin.
#![allow(dead_code)] // Each test binary uses a different part.

pub mod admin;
pub mod inference;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use rafiki_service::config::RetryPolicy;
use rafiki_types::proposal::Proposal;
use rafiki_worker::WorkerConfig;
use serde_json::{json, Value};

/// The interpreter of `RAFIKI_PYTHON` (default `python3`) when it can `import rafiki`; else
/// prints why the test is skipped and gives `None`.
pub fn python() -> Option<PathBuf> {
    let python = std::env::var("RAFIKI_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let works = Command::new(&python)
        .args(["-c", "import rafiki"])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false);
    if works {
        Some(PathBuf::from(python))
    } else {
        eprintln!(
            "SKIPPED: `{python}` cannot `import rafiki`. Set RAFIKI_PYTHON to an interpreter with \
             the package, e.g. `python3 -m venv .venv && .venv/bin/pip install -e './python[test,examples]'` \
             then RAFIKI_PYTHON=$PWD/.venv/bin/python"
        );
        None
    }
}

/// A Python that cannot run the model runtime: a fresh virtual environment in `dir` (made with
/// the `python3` on PATH), which cannot see the `rafiki` package.
pub fn python_without_rafiki(dir: &Path) -> PathBuf {
    let venv = dir.join("venv-without-rafiki");
    let output = Command::new("python3")
        .args(["-m", "venv", "--without-pip"])
        .arg(&venv)
        .output()
        .expect("python3 runs");
    assert!(
        output.status.success(),
        "cannot make a virtual environment: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let python = venv.join("bin").join("python");
    let imports = Command::new(&python)
        .args(["-c", "import rafiki"])
        .status()
        .expect("the new interpreter runs");
    assert!(!imports.success(), "{} has rafiki", python.display());
    python
}

/// `let python = require_python!();` at the start of a test that needs the real runtime.
#[macro_export]
macro_rules! require_python {
    () => {
        match support::python() {
            Some(python) => python,
            None => return,
        }
    };
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Waits until `condition` holds, failing the test after `limit`.
pub async fn eventually(limit: Duration, what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + limit;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A model that works: it reads a text file, logs a plot and metrics, scores `x / 10`.
pub const WORKS: &str = r#"
import numpy as np
from rafiki.model import BaseModel, CategoricalKnob, IntegerKnob, logger


class Works(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"x": IntegerKnob(1, 10), "colour": CategoricalKnob(["red", "blue"])}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.x = knobs["x"]

    def train(self, dataset_path, shared_params=None, **train_args):
        with open(dataset_path) as f:
            self.words = len(f.read().split())
        self.train_args = train_args
        logger.define_plot("Loss", ["loss"], x_axis="epoch")
        for epoch in range(3):
            logger.log(loss=1.0 / (epoch + 1), epoch=epoch)
        logger.log("trained", words=self.words)

    def evaluate(self, dataset_path):
        return self.x / 10

    def predict(self, queries):
        return [self.x for _ in queries]

    def dump_parameters(self):
        return {"x": self.x, "words": self.words, "w": np.arange(4.0), "args": repr(self.train_args)}

    def load_parameters(self, params):
        self.x = params["x"]
"#;

/// A model that prints from Python, writes to stderr from Python and at the C level, and logs
/// in between.
pub const PRINTS: &str = r#"
import os
import sys
from rafiki.model import BaseModel, FixedKnob, logger

print("printed while importing")


class Prints(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"k": FixedKnob(1)}

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        print("first print")
        logger.log("between the prints")
        print("second print")
        sys.stderr.write("a warning on stderr\n")
        sys.stderr.flush()
        os.write(1, b"C-level write to fd 1\n")

    def evaluate(self, dataset_path):
        print("evaluating")
        return 0.5

    def predict(self, queries):
        return queries

    def dump_parameters(self):
        return {}

    def load_parameters(self, params):
        pass
"#;

/// A model whose `train` raises.
pub const RAISES_IN_TRAIN: &str = r#"
from rafiki.model import BaseModel, FixedKnob


class Raises(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"k": FixedKnob(1)}

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        raise ValueError("the data is bad")

    def evaluate(self, dataset_path):
        return 1.0

    def predict(self, queries):
        return queries

    def dump_parameters(self):
        return {}

    def load_parameters(self, params):
        pass
"#;

/// A model that does what its `mode` knob says: `ok`, `raise` (in train), `garbage` (a score
/// that is not a number), `crash` (the interpreter exits in train), `hang` (writes its pid and a
/// child's pid to the files of train_args `pid_file` / `child_pid_file`, then sleeps).
pub const BY_MODE: &str = r#"
import os
import subprocess
import sys
import time
from rafiki.model import BaseModel, CategoricalKnob, FloatKnob, logger


class ByMode(BaseModel):
    @staticmethod
    def get_knob_config():
        return {
            "mode": CategoricalKnob(["ok", "raise", "garbage", "crash", "hang", "chatty"]),
            "score": FloatKnob(0.0, 1.0),
        }

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.mode = knobs["mode"]
        self.score = knobs["score"]

    def train(self, dataset_path, shared_params=None, **train_args):
        print(f"training in mode {self.mode}")
        logger.log(step=1)
        if self.mode == "raise":
            raise RuntimeError(f"refusing to train with score {self.score}")
        if self.mode == "crash":
            sys.stderr.write("about to crash\n")
            sys.stderr.flush()
            os._exit(3)
        if self.mode == "chatty":
            for i in range(1200):
                logger.log(i=i)
        if self.mode == "hang":
            child = subprocess.Popen(["sleep", "300"])
            with open(train_args["child_pid_file"], "w") as f:
                f.write(str(child.pid))
            with open(train_args["pid_file"], "w") as f:
                f.write(str(os.getpid()))
            time.sleep(300)

    def evaluate(self, dataset_path):
        if self.mode == "garbage":
            return "not a number"
        return self.score

    def predict(self, queries):
        return queries

    def dump_parameters(self):
        return {"mode": self.mode, "score": self.score}

    def load_parameters(self, params):
        pass
"#;

/// A proposal with Rafiki's defaults (evaluate, save parameters).
pub fn proposal(no: u32, knobs: Value) -> Proposal {
    Proposal::new(
        no,
        serde_json::from_value(knobs).expect("knobs are an object"),
    )
}

/// `ByMode` knobs.
pub fn mode(mode: &str, score: f64) -> Value {
    json!({"mode": mode, "score": score})
}

/// A file in the model's scratch folder of a worker set up by [`worker_config`] in `dir`: the
/// one folder a sandboxed model may write, so test models that report through files write there.
pub fn scratch_file(dir: &Path, name: &str) -> PathBuf {
    dir.join("work").join("scratch").join(name)
}

/// Settings for a worker of `admin_url`, working in `work_dir`, retrying quickly.
pub fn worker_config(admin_url: &str, work_dir: &Path, python: &Path) -> WorkerConfig {
    let venvs = work_dir.join("venvs");
    let mut config = WorkerConfig::from_lookup(|name| match name {
        "RAFIKI_ADMIN_URL" => Some(admin_url.to_owned()),
        "RAFIKI_SERVICE_TOKEN" => Some(admin::TOKEN.to_owned()),
        "RAFIKI_WORK_DIR" => Some(work_dir.join("work").display().to_string()),
        "RAFIKI_PYTHON" => Some(python.display().to_string()),
        "RAFIKI_VENV_DIR" => Some(venvs.display().to_string()),
        // As the process backend runs workers: models (and pip) in the sandbox.
        "RAFIKI_SANDBOX" => Some("bwrap".to_owned()),
        _ => None,
    })
    .expect("valid settings");
    config.service.retry = RetryPolicy {
        attempts: 4,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(100),
    };
    config
}

/// The keys of a parameters file, decoded by the Python package's own reader.
pub fn decode_param_keys(python: &Path, bytes: &[u8]) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("params.bin");
    std::fs::write(&path, bytes).unwrap();
    let output = Command::new(python)
        .args([
            "-c",
            "import json, sys\nfrom rafiki.params import read_params_file\n\
             p = read_params_file(sys.argv[1])\nprint(json.dumps(sorted(p)))",
        ])
        .arg(&path)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the parameters do not decode: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap()
}

/// A wheel of `name` at `version` (a module `name` with `_` for `-`, holding `VERSION`) in
/// `dir`, for pip with `--no-index --find-links dir` (`tests/deps/make_wheel.py`).
pub fn build_wheel(python: &Path, dir: &Path, name: &str, version: &str) {
    let status = Command::new(python)
        .arg(repo_root().join("tests/deps/make_wheel.py"))
        .arg(dir)
        .args([name, version])
        .status()
        .unwrap();
    assert!(status.success());
}

/// A model that imports `rafiki_testdep` (see [`build_wheel`]) and logs its version in
/// `train`.
pub const NEEDS_TESTDEP: &str = include_str!("../../../../tests/models/NeedsTestdep.py");
