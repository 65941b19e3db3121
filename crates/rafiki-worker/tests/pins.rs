//! Pins with no distribution for the worker's Python (`dependency_pins`): `strict` fails the
//! model naming the nearest installable versions, `nearest` installs the nearest one and says
//! so in every trial's log and in the environment report. The model's choice wins over the
//! deployment's.

mod support;

use std::path::Path;

use rafiki_types::internal::LogKind;
use rafiki_types::model::DependencyPins;
use rafiki_worker::{train, TrainExit, WorkerConfig};
use serde_json::json;
use support::admin::{JobSpec, TestAdmin, TrialStatus};
use support::{proposal, worker_config, NEEDS_TESTDEP};

/// A job of `NeedsDep` pinning `rafiki-testdep==1.5`, of which only 1.0 and 2.0 exist.
async fn admin_pinning_1_5(pins: Option<DependencyPins>) -> TestAdmin {
    let admin = TestAdmin::start(JobSpec {
        model_file: NEEDS_TESTDEP.as_bytes().to_vec(),
        model_class: "NeedsDep".to_owned(),
        dependencies: vec![("rafiki-testdep".to_owned(), "1.5".to_owned())],
        train_dataset: b"t".to_vec(),
        val_dataset: b"v".to_vec(),
        train_args: None,
        proposals: vec![proposal(1, json!({"k": 1})), proposal(2, json!({"k": 1}))],
    })
    .await;
    admin.with(|s| s.job.model.dependency_pins = pins);
    admin
}

/// A worker of `admin` whose pip finds only `rafiki-testdep` 1.0 and 2.0 (in `dir/wheels`).
fn config(admin: &TestAdmin, dir: &Path, python: &Path, pins: DependencyPins) -> WorkerConfig {
    let wheels = dir.join("wheels");
    std::fs::create_dir_all(&wheels).unwrap();
    for version in ["1.0", "2.0"] {
        support::build_wheel(python, &wheels, "rafiki-testdep", version);
    }
    let mut config = worker_config(&admin.url, dir, python);
    config.pip_args = vec![
        "--no-index".to_owned(),
        "--find-links".to_owned(),
        wheels.display().to_string(),
    ];
    config.dependency_pins = pins;
    config
}

#[tokio::test]
async fn strict_pins_fail_the_model_naming_the_nearest_installable_versions() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    // The deployment would replace it; the model says strict, and the model wins.
    let admin = admin_pinning_1_5(Some(DependencyPins::Strict)).await;
    let config = config(&admin, dir.path(), &python, DependencyPins::Nearest);

    let exit = train::run(&config).await.unwrap();
    let TrainExit::Failed { error } = exit else {
        panic!("{exit:?}");
    };
    for part in [
        "rafiki-testdep==1.5",
        "1.0 (below)",
        "2.0 (above)",
        "dependency_pins",
    ] {
        assert!(error.contains(part), "{part} in {error}");
    }
    admin.with(|s| assert!(s.trials.is_empty()));
    let left: Vec<_> = std::fs::read_dir(&config.venv_dir)
        .map(|d| d.map(|e| e.unwrap().path()).collect())
        .unwrap_or_default();
    assert!(left.is_empty(), "nothing half-built is left: {left:?}");
}

#[tokio::test]
async fn nearest_installs_the_next_release_up_and_says_so_in_every_trial_and_the_report() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = admin_pinning_1_5(Some(DependencyPins::Nearest)).await;
    let config = config(&admin, dir.path(), &python, DependencyPins::Strict);

    assert_eq!(
        train::run(&config).await.unwrap(),
        TrainExit::BudgetSpent { trials: 2 }
    );
    let warning = admin.with(|s| {
        let report = &s.environments[0];
        assert!(!report.reused);
        assert_eq!(report.warnings.len(), 1, "{report:?}");
        report.warnings[0].clone()
    });
    assert!(
        warning.contains("rafiki-testdep==1.5") && warning.contains("rafiki-testdep==2.0"),
        "{warning}"
    );
    for no in [1, 2] {
        admin.with(|s| {
            let trial = s.trial(no);
            assert_eq!(trial.status, TrialStatus::Completed { score: Some(1.0) });
            let messages: Vec<&str> = trial
                .logs
                .iter()
                .filter(|e| e.kind == LogKind::Message)
                .map(|e| e.body["message"].as_str().unwrap())
                .collect();
            assert_eq!(
                messages,
                [format!("Dependencies: {warning}").as_str(), "testdep 2.0"],
                "trial {no}"
            );
        });
    }

    // The deployment's setting serves a model that does not choose; the environment is the
    // same one, and its warning still reaches the report.
    let again = admin_pinning_1_5(None).await;
    let mut config = config;
    config.service.admin_url = again.url.clone();
    config.dependency_pins = DependencyPins::Nearest;
    assert_eq!(
        train::run(&config).await.unwrap(),
        TrainExit::BudgetSpent { trials: 2 }
    );
    again.with(|s| {
        assert!(s.environments[0].reused);
        assert_eq!(s.environments[0].warnings, std::slice::from_ref(&warning));
    });
}
