//! The whole train loop against the in-test admin, with the real Python runtime.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use rafiki_types::internal::LogKind;
use rafiki_worker::{train, TrainError, TrainExit};
use serde_json::{json, Value};
use support::admin::{AdminState, JobSpec, TestAdmin, TrialStatus};
use support::{mode, proposal, worker_config, BY_MODE};

/// A job of the `ByMode` model with these proposals.
fn by_mode_job(proposals: Vec<Value>) -> JobSpec {
    JobSpec {
        model_file: BY_MODE.as_bytes().to_vec(),
        model_class: "ByMode".to_owned(),
        dependencies: Vec::new(),
        train_dataset: b"some training text".to_vec(),
        val_dataset: b"some validation text".to_vec(),
        train_args: None,
        proposals: proposals
            .into_iter()
            .enumerate()
            .map(|(i, knobs)| proposal(i as u32 + 1, knobs))
            .collect(),
    }
}

async fn run_worker(admin: &TestAdmin, dir: &Path, python: &Path) -> Result<TrainExit, TrainError> {
    train::run(&worker_config(&admin.url, dir, python)).await
}

/// Every trial's logs were posted before its finish, and nothing after it.
fn assert_logs_precede_finish(state: &AdminState) {
    for trial in &state.trials {
        let finish = format!("POST /internal/trials/{}/finish", trial.id);
        let logs = format!("POST /internal/trials/{}/logs", trial.id);
        let at = state
            .calls
            .iter()
            .position(|c| *c == finish)
            .unwrap_or_else(|| panic!("trial {} was never finished", trial.no));
        assert!(
            !state.calls[at..].contains(&logs),
            "trial {} got logs after its finish",
            trial.no
        );
    }
}

fn messages(logs: &[rafiki_types::internal::LogEntry]) -> Vec<String> {
    logs.iter()
        .filter(|e| e.kind == LogKind::Message)
        .map(|e| e.body["message"].as_str().unwrap().to_owned())
        .collect()
}

/// The wine datasets of examples/datasets/build_datasets.py, built into `dir`.
fn build_wine(python: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let script = "import sys\nsys.path.insert(0, sys.argv[1])\nimport build_datasets\n\
                  build_datasets.build_tabular_classification(sys.argv[2])";
    let output = Command::new(python)
        .args(["-c", script])
        .arg(support::repo_root().join("examples/datasets"))
        .arg(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    (dir.join("wine_train.csv"), dir.join("wine_val.csv"))
}

#[tokio::test]
async fn the_example_mlp_classifier_is_tuned_end_to_end() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let (train_csv, val_csv) = build_wine(&python, dir.path());
    let train_dataset = std::fs::read(&train_csv).unwrap();
    let header = String::from_utf8_lossy(&train_dataset)
        .lines()
        .next()
        .unwrap()
        .to_owned();
    let features: Vec<&str> = header.split(',').filter(|c| *c != "target").collect();
    let knobs = |size: u32, activation: &str| json!({"hidden_layer_size": size, "alpha": 0.001, "activation": activation, "max_iter": 300});
    let mut second = proposal(2, knobs(8, "tanh"));
    second.to_save_params = false;
    let admin = TestAdmin::start(JobSpec {
        model_file: std::fs::read(
            support::repo_root().join("examples/models/tabular_classification/SkMlpClf.py"),
        )
        .unwrap(),
        model_class: "SkMlpClf".to_owned(),
        dependencies: vec![("scikit-learn".to_owned(), String::new())],
        train_dataset,
        val_dataset: std::fs::read(&val_csv).unwrap(),
        train_args: Some(json!({"features": features, "target": "target"})),
        proposals: vec![proposal(1, knobs(16, "relu")), second],
    })
    .await;

    let exit = run_worker(&admin, dir.path(), &python).await.unwrap();
    assert_eq!(exit, TrainExit::BudgetSpent { trials: 2 });

    admin.with(|s| {
        assert_eq!(s.calls[0], "GET /internal/train/job");
        assert_eq!(s.downloads(), 3);
        let config = s.knob_config.as_ref().expect("a knob config");
        assert_eq!(
            config["hidden_layer_size"],
            json!({"type": "INTEGER", "value_min": 8, "value_max": 64, "is_exp": false})
        );
        assert_eq!(config["max_iter"], json!({"type": "FIXED", "value": 300}));
        assert_eq!(s.trials.len(), 2);
        for trial in &s.trials {
            match trial.status {
                TrialStatus::Completed { score: Some(score) } => {
                    assert!(score > 0.5 && score <= 1.0, "trial {}: {score}", trial.no)
                }
                ref other => panic!("trial {}: {other:?}", trial.no),
            }
            // The loss plot is defined before the losses it plots, which come epoch by epoch.
            assert_eq!(trial.logs[0].kind, LogKind::Plot);
            let epochs: Vec<i64> = trial
                .logs
                .iter()
                .filter_map(|e| e.body.get("epoch").and_then(Value::as_i64))
                .collect();
            assert!(epochs.len() >= 2, "{:?}", trial.logs);
            assert!(epochs.windows(2).all(|w| w[0] < w[1]), "{epochs:?}");
            let last = trial.logs.last().unwrap();
            assert!(last.body.get("train_accuracy").is_some(), "{last:?}");
        }
        let keys = support::decode_param_keys(&python, s.trial(1).params.as_ref().unwrap());
        assert_eq!(
            keys,
            [
                "b0",
                "b1",
                "features",
                "labels",
                "mean",
                "num_classes",
                "std",
                "target",
                "w0",
                "w1"
            ]
        );
        assert!(s.trial(2).params.is_none(), "to_save_params was false");
        assert!(s.failures.is_empty());
        assert_eq!(s.calls.last().unwrap(), "POST /internal/train/trials");
        assert_logs_precede_finish(s);
    });
}

#[tokio::test]
async fn failed_trials_are_errored_with_their_reason_and_the_loop_goes_on() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(by_mode_job(vec![
        mode("ok", 0.25),
        mode("raise", 0.5),
        mode("garbage", 0.5),
        mode("ok", 0.75),
    ]))
    .await;

    let exit = run_worker(&admin, dir.path(), &python).await.unwrap();
    assert_eq!(exit, TrainExit::BudgetSpent { trials: 4 });

    admin.with(|s| {
        assert_eq!(
            s.trial(1).status,
            TrialStatus::Completed { score: Some(0.25) }
        );
        let TrialStatus::Errored { error } = &s.trial(2).status else {
            panic!("{:?}", s.trial(2).status);
        };
        assert!(
            error.contains("ByMode.train() raised RuntimeError"),
            "{error}"
        );
        assert!(
            error.contains("Traceback (most recent call last)"),
            "{error}"
        );
        assert!(
            error.contains("refusing to train with score 0.5"),
            "{error}"
        );
        assert!(s.trial(2).params.is_none());
        let TrialStatus::Errored { error } = &s.trial(3).status else {
            panic!("{:?}", s.trial(3).status);
        };
        assert!(error.contains("evaluate()"), "{error}");
        assert_eq!(
            s.trial(4).status,
            TrialStatus::Completed { score: Some(0.75) }
        );
        // A failed trial's logs are still forwarded, in order.
        for no in 1..=4 {
            let logs = &s.trial(no).logs;
            assert_eq!(
                messages(logs)[0],
                format!(
                    "training in mode {}",
                    s.trial(no).proposal.knobs["mode"].as_str().unwrap()
                )
            );
            assert_eq!(logs[1].kind, LogKind::Metrics);
            assert_eq!(logs[1].body, json!({"step": 1}));
        }
        assert!(s.failures.is_empty());
        assert_logs_precede_finish(s);
    });
}

#[tokio::test]
async fn many_log_entries_arrive_in_order_in_a_few_batches() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(by_mode_job(vec![mode("chatty", 0.5)])).await;

    let exit = run_worker(&admin, dir.path(), &python).await.unwrap();
    assert_eq!(exit, TrainExit::BudgetSpent { trials: 1 });
    admin.with(|s| {
        let trial = s.trial(1);
        let counted: Vec<i64> = trial
            .logs
            .iter()
            .filter_map(|e| e.body.get("i").and_then(Value::as_i64))
            .collect();
        assert_eq!(counted, (0..1200).collect::<Vec<_>>());
        // 1203 entries with at most 500 a batch: at least 3 posts, and far fewer than entries.
        assert!(
            (3..=50).contains(&trial.log_batches),
            "{} batches",
            trial.log_batches
        );
        assert_logs_precede_finish(s);
    });
}

#[tokio::test]
async fn a_missing_class_is_reported_with_train_fail() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let mut job = by_mode_job(vec![mode("ok", 0.5)]);
    job.model_class = "NoSuchClass".to_owned();
    let admin = TestAdmin::start(job).await;

    let exit = run_worker(&admin, dir.path(), &python).await.unwrap();
    let TrainExit::Failed { error } = exit else {
        panic!("{exit:?}");
    };
    assert!(error.contains("NoSuchClass"), "{error}");
    admin.with(|s| {
        assert_eq!(s.failures, std::slice::from_ref(&error));
        assert!(s.knob_config.is_none());
        assert!(s.trials.is_empty());
        assert_eq!(s.calls.last().unwrap(), "POST /internal/train/fail");
    });
}

#[tokio::test]
async fn an_interpreter_that_cannot_run_the_runtime_fails_the_model() {
    let dir = tempfile::tempdir().unwrap();
    let without_rafiki = support::python_without_rafiki(dir.path());
    let missing = dir.path().join("no-such-python");
    for (python, cause) in [
        (&without_rafiki, "No module named 'rafiki'"),
        (&missing, "No such file or directory"),
    ] {
        let admin = TestAdmin::start(by_mode_job(vec![mode("ok", 0.5)])).await;
        // In the sandbox, as the process backend runs workers.
        let exit = run_worker(&admin, dir.path(), python).await.unwrap();
        let TrainExit::Failed { error } = exit else {
            panic!("{exit:?}");
        };
        let start = format!("cannot start the model runtime with {}: ", python.display());
        assert!(error.starts_with(&start), "{error}");
        assert!(error.contains(cause), "{error}");
        assert!(error.contains("RAFIKI_PYTHON"), "{error}");
        admin.with(|s| {
            assert_eq!(s.failures, std::slice::from_ref(&error));
            assert!(s.trials.is_empty());
        });
    }
}

#[tokio::test]
async fn three_failed_trials_in_a_row_give_the_model_up() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(by_mode_job(vec![mode("raise", 0.5); 10])).await;

    let exit = run_worker(&admin, dir.path(), &python).await.unwrap();
    let TrainExit::Failed { error } = exit else {
        panic!("{exit:?}");
    };
    assert!(error.starts_with("3 trials in a row failed"), "{error}");
    admin.with(|s| {
        assert_eq!(s.trials.len(), 3);
        assert!(s
            .trials
            .iter()
            .all(|t| matches!(t.status, TrialStatus::Errored { .. })));
        assert_eq!(s.failures.len(), 1);
        assert_eq!(s.calls.last().unwrap(), "POST /internal/train/fail");
    });
}

#[tokio::test]
async fn a_crashed_runtime_errors_its_trial_and_is_restarted() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(by_mode_job(vec![mode("crash", 0.5), mode("ok", 0.5)])).await;

    let exit = run_worker(&admin, dir.path(), &python).await.unwrap();
    assert_eq!(exit, TrainExit::BudgetSpent { trials: 2 });
    admin.with(|s| {
        let TrialStatus::Errored { error } = &s.trial(1).status else {
            panic!("{:?}", s.trial(1).status);
        };
        assert!(error.contains("died during `train`"), "{error}");
        assert!(error.contains("about to crash"), "{error}");
        assert!(messages(&s.trial(1).logs).contains(&"about to crash".to_owned()));
        assert_eq!(
            s.trial(2).status,
            TrialStatus::Completed { score: Some(0.5) }
        );
    });
}

#[tokio::test]
async fn a_rejected_knob_config_gives_the_model_up() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(by_mode_job(vec![mode("ok", 0.5)])).await;
    admin.with(|s| s.reject_knob_config = Some("knob `mode`: not for this task".to_owned()));

    let exit = run_worker(&admin, dir.path(), &python).await.unwrap();
    let TrainExit::Failed { error } = exit else {
        panic!("{exit:?}");
    };
    assert!(error.contains("knob `mode`: not for this task"), "{error}");
    admin.with(|s| {
        assert_eq!(s.failures.len(), 1);
        assert!(s.trials.is_empty());
    });
}

#[tokio::test]
async fn a_stopped_service_exits_quietly() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(by_mode_job(vec![mode("ok", 0.5); 3])).await;
    admin.with(|s| s.stop_after_finished = Some(1));

    let exit = run_worker(&admin, dir.path(), &python).await.unwrap();
    assert_eq!(exit, TrainExit::Stopped);
    admin.with(|s| {
        assert_eq!(s.trials.len(), 1);
        assert!(s.failures.is_empty());
    });
}

#[tokio::test]
async fn transient_admin_errors_are_retried() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(by_mode_job(vec![mode("ok", 0.5)])).await;
    admin.with(|s| s.unavailable_job_calls = 2);

    let exit = run_worker(&admin, dir.path(), &python).await.unwrap();
    assert_eq!(exit, TrainExit::BudgetSpent { trials: 1 });
    admin.with(|s| {
        let job_calls = s
            .calls
            .iter()
            .filter(|c| *c == "GET /internal/train/job")
            .count();
        assert_eq!(job_calls, 3);
    });

    // An admin that stays unavailable ends the worker with an error (a crash, restarted).
    let admin = TestAdmin::start(by_mode_job(vec![mode("ok", 0.5)])).await;
    admin.with(|s| s.unavailable_job_calls = 100);
    let err = run_worker(&admin, dir.path(), &python).await.unwrap_err();
    assert!(
        err.to_string().contains("gave up after 4 attempts"),
        "{err}"
    );
}

#[tokio::test]
async fn downloads_are_cached_by_id_and_checksum() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(by_mode_job(vec![])).await;
    assert_eq!(
        run_worker(&admin, dir.path(), &python).await.unwrap(),
        TrainExit::BudgetSpent { trials: 0 }
    );
    assert_eq!(admin.with(|s| s.downloads()), 3);

    // A second run finds all three files.
    assert_eq!(
        run_worker(&admin, dir.path(), &python).await.unwrap(),
        TrainExit::BudgetSpent { trials: 0 }
    );
    assert_eq!(admin.with(|s| s.downloads()), 3);

    // A cached file that no longer matches is downloaded again.
    let (id, sha) = admin.with(|s| (s.job.train_dataset.id, s.job.train_dataset.sha256.clone()));
    let cached = dir.path().join(format!("work/cache/datasets/{id}-{sha}"));
    std::fs::write(&cached, b"tampered").unwrap();
    run_worker(&admin, dir.path(), &python).await.unwrap();
    assert_eq!(admin.with(|s| s.downloads()), 4);
    assert_eq!(std::fs::read(&cached).unwrap(), b"some training text");
}

#[tokio::test]
async fn a_download_that_does_not_match_its_checksum_is_not_kept() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = TestAdmin::start(by_mode_job(vec![mode("ok", 0.5)])).await;
    let id = admin.with(|s| {
        let id = s.job.val_dataset.id;
        s.blobs.insert(id, b"corrupted on the server".to_vec());
        id
    });
    let err = run_worker(&admin, dir.path(), &python).await.unwrap_err();
    assert!(err.to_string().contains("sha256"), "{err}");
    let folder = dir.path().join("work/cache/datasets");
    let names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.contains(&id.to_string())),
        "{names:?}"
    );
    admin.with(|s| assert!(s.trials.is_empty()));
}

#[tokio::test]
async fn missing_dependencies_are_installed_into_a_cached_virtual_environment() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let wheels = dir.path().join("wheels");
    std::fs::create_dir(&wheels).unwrap();
    support::build_wheel(&python, &wheels, "rafiki-testdep", "1.2.3");
    let job = || JobSpec {
        model_file: support::NEEDS_TESTDEP.as_bytes().to_vec(),
        model_class: "NeedsDep".to_owned(),
        dependencies: vec![
            ("rafiki-testdep".to_owned(), "1.2.3".to_owned()),
            ("numpy".to_owned(), String::new()),
        ],
        train_dataset: b"t".to_vec(),
        val_dataset: b"v".to_vec(),
        train_args: None,
        proposals: vec![proposal(1, json!({"k": 1}))],
    };
    let admin = TestAdmin::start(job()).await;
    let mut config = worker_config(&admin.url, dir.path(), &python);
    config.pip_args = vec![
        "--no-index".to_owned(),
        "--find-links".to_owned(),
        wheels.display().to_string(),
    ];
    assert_eq!(
        train::run(&config).await.unwrap(),
        TrainExit::BudgetSpent { trials: 1 }
    );
    admin.with(|s| {
        assert_eq!(
            s.trial(1).status,
            TrialStatus::Completed { score: Some(1.0) }
        );
        assert_eq!(messages(&s.trial(1).logs), ["testdep 1.2.3"]);
    });
    let venvs: Vec<PathBuf> = std::fs::read_dir(&config.venv_dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(
        venvs.len(),
        1,
        "one finished environment, no leftovers: {venvs:?}"
    );
    let marker = venvs[0].join(rafiki_worker::envs::MANIFEST);
    let built = std::fs::metadata(&marker).unwrap().modified().unwrap();

    // The same dependencies again: the environment is reused, not rebuilt.
    let admin = TestAdmin::start(job()).await;
    config.service.admin_url = admin.url.clone();
    // The same pip arguments (they are part of the environment's key), with the wheels gone:
    // pip could not install anything now.
    std::fs::remove_dir_all(&wheels).unwrap();
    assert_eq!(
        train::run(&config).await.unwrap(),
        TrainExit::BudgetSpent { trials: 1 }
    );
    assert_eq!(
        std::fs::metadata(&marker).unwrap().modified().unwrap(),
        built
    );
}

#[tokio::test]
async fn dependencies_that_cannot_be_installed_fail_the_model() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let mut job = by_mode_job(vec![mode("ok", 0.5)]);
    job.dependencies = vec![("rafiki-no-such-package".to_owned(), "9.9.9".to_owned())];
    let admin = TestAdmin::start(job).await;
    let mut config = worker_config(&admin.url, dir.path(), &python);
    config.pip_args = vec!["--no-index".to_owned()];

    let exit = train::run(&config).await.unwrap();
    let TrainExit::Failed { error } = exit else {
        panic!("{exit:?}");
    };
    assert!(error.contains("rafiki-no-such-package==9.9.9"), "{error}");
    admin.with(|s| {
        assert_eq!(s.failures, std::slice::from_ref(&error));
        assert!(s.trials.is_empty());
    });
    // Nothing half-built is left behind.
    let left: Vec<_> = std::fs::read_dir(&config.venv_dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "{left:?}");
}

#[tokio::test]
async fn dependencies_the_interpreter_has_need_no_environment() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let mut job = by_mode_job(vec![mode("ok", 0.5)]);
    job.dependencies = vec![("numpy".to_owned(), String::new())];
    let admin = TestAdmin::start(job).await;
    let config = worker_config(&admin.url, dir.path(), &python);

    assert_eq!(
        train::run(&config).await.unwrap(),
        TrainExit::BudgetSpent { trials: 1 }
    );
    assert!(!config.venv_dir.exists());
}
