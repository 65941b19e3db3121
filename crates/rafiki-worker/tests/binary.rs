//! The `rafiki-worker` binary as the backend runs it: settings from the environment, exit
//! codes, and SIGTERM.

mod support;

use std::path::Path;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::json;
use support::admin::{JobSpec, TestAdmin, TrialStatus, TOKEN};
use support::{mode, proposal, BY_MODE};
use tokio::process::Command;

fn job(knobs: serde_json::Value, train_args: Option<serde_json::Value>) -> JobSpec {
    JobSpec {
        model_file: BY_MODE.as_bytes().to_vec(),
        model_class: "ByMode".to_owned(),
        dependencies: Vec::new(),
        train_dataset: b"train".to_vec(),
        val_dataset: b"val".to_vec(),
        train_args,
        proposals: vec![proposal(1, knobs)],
    }
}

/// The worker binary for the admin at `admin_url`, logging to `work_dir/../worker.log`.
fn worker(admin_url: &str, work_dir: &Path, python: &Path) -> Command {
    let log = std::fs::File::create(work_dir.with_file_name("worker.log")).unwrap();
    let mut command = Command::new(env!("CARGO_BIN_EXE_rafiki-worker"));
    command
        .stderr(log)
        .env("RAFIKI_ADMIN_URL", admin_url)
        .env("RAFIKI_SERVICE_TOKEN", TOKEN)
        .env("RAFIKI_SERVICE_TYPE", "TRAIN")
        .env("RAFIKI_WORK_DIR", work_dir)
        .env("RAFIKI_PYTHON", python)
        .kill_on_drop(true);
    command
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

fn read_pid(path: &Path) -> i32 {
    std::fs::read_to_string(path)
        .unwrap()
        .trim()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_kills_the_model_and_its_children_and_exits_zero() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("model.pid");
    let child_pid_file = dir.path().join("child.pid");
    let admin = TestAdmin::start(job(
        mode("hang", 0.5),
        Some(json!({"pid_file": pid_file, "child_pid_file": child_pid_file})),
    ))
    .await;
    let mut worker = worker(&admin.url, &dir.path().join("work"), &python)
        .spawn()
        .unwrap();

    support::eventually(
        Duration::from_secs(60),
        "the model to start training",
        || pid_file.exists() && child_pid_file.exists(),
    )
    .await;
    let (model, grandchild) = (read_pid(&pid_file), read_pid(&child_pid_file));
    assert!(alive(model) && alive(grandchild));

    let worker_pid = Pid::from_raw(worker.id().unwrap() as i32);
    kill(worker_pid, Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), worker.wait())
        .await
        .expect("the worker exits promptly after SIGTERM")
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("worker.log")).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(log.contains("SIGTERM"), "{log}");
    support::eventually(
        Duration::from_secs(10),
        "the model's processes to die",
        || !alive(model) && !alive(grandchild),
    )
    .await;
    // The worker leaves the in-flight trial to the admin.
    admin.with(|s| assert_eq!(s.trial(1).status, TrialStatus::Running));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_zero_when_the_budget_is_spent() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(job(mode("ok", 0.5), None)).await;
    let status = worker(&admin.url, &dir.path().join("work"), &python)
        .arg("train")
        .status()
        .await
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("worker.log")).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    admin.with(|s| {
        assert_eq!(
            s.trial(1).status,
            TrialStatus::Completed { score: Some(0.5) }
        );
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interpreter_without_rafiki_fails_the_job_and_the_binary_exits_zero() {
    let dir = tempfile::tempdir().unwrap();
    let python = support::python_without_rafiki(dir.path());
    let admin = TestAdmin::start(job(mode("ok", 0.5), None)).await;
    let status = worker(&admin.url, &dir.path().join("work"), &python)
        .arg("train")
        .status()
        .await
        .unwrap();
    let log = std::fs::read_to_string(dir.path().join("worker.log")).unwrap();
    // Not a crash that the admin would restart only to see it again.
    assert_eq!(status.code(), Some(0), "{log}");
    admin.with(|s| {
        let [error] = s.failures.as_slice() else {
            panic!("one failure expected: {:?}", s.failures);
        };
        let expected = format!("cannot start the model runtime with {}: ", python.display());
        assert!(error.starts_with(&expected), "{error}");
        assert!(error.contains("No module named 'rafiki'"), "{error}");
        assert!(
            error.ends_with(
                "(the workers' interpreter lacks the rafiki package; see RAFIKI_PYTHON)"
            ),
            "{error}"
        );
        assert!(s.trials.is_empty());
        assert_eq!(s.calls.last().unwrap(), "POST /internal/train/fail");
    });
}

#[tokio::test]
async fn bad_settings_exit_with_code_two() {
    let status = Command::new(env!("CARGO_BIN_EXE_rafiki-worker"))
        .arg("train")
        .env_remove("RAFIKI_ADMIN_URL")
        .env_remove("RAFIKI_SERVICE_TOKEN")
        .env_remove("RAFIKI_WORK_DIR")
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
    let status = Command::new(env!("CARGO_BIN_EXE_rafiki-worker"))
        .arg("predict")
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
}
