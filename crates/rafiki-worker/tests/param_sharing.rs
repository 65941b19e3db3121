//! A proposal's parameter-sharing fields through the real worker and Python runtime, against
//! the in-test admin: `LOCAL_*` parameters from the worker's own cache (across a restart),
//! `to_cache_params`, `to_save_params: false` and `to_eval: false`. The model
//! (`tests/models/SharedCounter.py`) raises when it is not given what the test expects.
//! `GLOBAL_*` parameters, which need the real admin, are tested in rafiki-admin's API tests.

mod support;

use std::path::Path;

use rafiki_types::proposal::{ParamsType, Proposal};
use rafiki_worker::{train, TrainExit};
use serde_json::{json, Value};
use support::admin::{JobSpec, TestAdmin, TrialRecord, TrialStatus};
use support::{proposal, worker_config};

const SHARED_COUNTER: &str = include_str!("../../../tests/models/SharedCounter.py");

/// A trial of `SharedCounter` scoring `x / 10` that fails unless it starts from parameters of
/// generation `expect` (0: from scratch).
fn counter(no: u32, x: i64, expect: i64, params_type: ParamsType) -> Proposal {
    let mut p = proposal(
        no,
        json!({"x": x, "expect_generation": expect, "forbid_eval": false,
               "share": true, "quick": false}),
    );
    p.params_type = params_type;
    p
}

/// The same, caching its parameters and saving none.
fn cached(no: u32, x: i64, expect: i64, params_type: ParamsType) -> Proposal {
    let mut p = counter(no, x, expect, params_type);
    p.to_cache_params = true;
    p.to_save_params = false;
    p
}

async fn counter_admin(proposals: Vec<Proposal>) -> TestAdmin {
    TestAdmin::start(JobSpec {
        model_file: SHARED_COUNTER.as_bytes().to_vec(),
        model_class: "SharedCounter".to_owned(),
        dependencies: Vec::new(),
        train_dataset: b"train".to_vec(),
        val_dataset: b"val".to_vec(),
        train_args: None,
        proposals,
    })
    .await
}

async fn run(admin: &TestAdmin, dir: &Path, python: &Path) -> TrainExit {
    train::run(&worker_config(&admin.url, dir, python))
        .await
        .unwrap()
}

fn messages(trial: &TrialRecord) -> Vec<String> {
    trial
        .logs
        .iter()
        .filter_map(|e| e.body.get("message").and_then(Value::as_str))
        .map(str::to_owned)
        .collect()
}

/// What the model logged it received: `null` or the lineage of the parameters.
fn received(trial: &TrialRecord) -> Value {
    let line = messages(trial)
        .into_iter()
        .find_map(|m| m.strip_prefix("shared: ").map(str::to_owned))
        .unwrap_or_else(|| panic!("trial {} logged no shared line", trial.no));
    serde_json::from_str(&line).unwrap()
}

fn assert_completed(trial: &TrialRecord, score: Option<f64>) {
    assert_eq!(
        trial.status,
        TrialStatus::Completed { score },
        "trial {}: {:?}",
        trial.no,
        messages(trial)
    );
}

#[tokio::test]
async fn local_parameters_chain_the_trials_of_a_worker_and_survive_its_restart() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = counter_admin(vec![
        // Nothing cached yet: from scratch, said in the log.
        cached(1, 5, 0, ParamsType::LocalRecent),
        cached(2, 2, 1, ParamsType::LocalRecent),
        cached(3, 3, 2, ParamsType::LocalRecent),
    ])
    .await;
    assert_eq!(
        run(&admin, dir.path(), &python).await,
        TrainExit::BudgetSpent { trials: 3 }
    );
    let first_origin = admin.with(|s| {
        for no in 1..=3 {
            let trial = s.trial(no);
            assert_completed(trial, Some([0.5, 0.2, 0.3][no as usize - 1]));
            assert_eq!(trial.params, None, "to_save_params false: nothing uploaded");
        }
        assert!(
            messages(s.trial(1))
                .contains(&"No LOCAL_RECENT parameters yet: training from scratch".to_owned()),
            "{:?}",
            s.trial(1).logs
        );
        assert_eq!(received(s.trial(1)), Value::Null);
        assert_eq!(received(s.trial(2))["generation"], 1);
        assert_eq!(received(s.trial(3))["generation"], 2);
        let from = format!(
            "Training from the LOCAL_RECENT parameters of trial {}",
            s.trial(2).id
        );
        assert!(
            messages(s.trial(3)).contains(&from),
            "{:?}",
            messages(s.trial(3))
        );
        received(s.trial(2))["origin"].clone()
    });

    // A restarted worker (same work dir) still has them: the newest is generation 3, the best
    // (x = 5) generation 1, the very parameters trial 2 started from.
    admin.with(|s| {
        s.proposals.extend([
            counter(4, 1, 3, ParamsType::LocalRecent),
            counter(5, 1, 1, ParamsType::LocalBest),
        ])
    });
    assert_eq!(
        run(&admin, dir.path(), &python).await,
        TrainExit::BudgetSpent { trials: 2 }
    );
    admin.with(|s| {
        assert_completed(s.trial(4), Some(0.1));
        assert_completed(s.trial(5), Some(0.1));
        assert_eq!(received(s.trial(5))["origin"], first_origin);
        assert_eq!(received(s.trial(5))["score"], 0.5);
        // Trials 4 and 5 saved their parameters (the default) but cached none.
        assert!(s.trial(4).params.is_some() && s.trial(5).params.is_some());
    });
    let cached: usize = std::fs::read_dir(dir.path().join("work/cache/local_params"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().file_name() != "index.json")
        .count();
    assert_eq!(cached, 3);
}

#[tokio::test]
async fn a_trial_not_to_evaluate_completes_unscored_and_one_not_to_save_uploads_nothing() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let mut unevaluated = counter(1, 4, 0, ParamsType::None);
    unevaluated.to_eval = false;
    unevaluated.knobs["forbid_eval"] = json!(true);
    let mut unsaved = counter(2, 6, 0, ParamsType::None);
    unsaved.to_save_params = false;
    // Expects generation 1 from the cache, but nothing was cached: it fails, which shows
    // that neither trial cached anything.
    let expects_a_cache = counter(3, 6, 1, ParamsType::LocalBest);
    let admin = counter_admin(vec![unevaluated, unsaved, expects_a_cache]).await;
    assert_eq!(
        run(&admin, dir.path(), &python).await,
        TrainExit::BudgetSpent { trials: 3 }
    );
    admin.with(|s| {
        assert_completed(s.trial(1), None);
        let keys = support::decode_param_keys(&python, s.trial(1).params.as_ref().unwrap());
        assert_eq!(keys, ["generation", "origin", "score", "weights"]);
        assert_completed(s.trial(2), Some(0.6));
        assert_eq!(s.trial(2).params, None);
        assert!(
            !s.calls.contains(&format!(
                "PUT /internal/trials/{}/parameters",
                s.trial(2).id
            )),
            "no upload was even tried"
        );
        match &s.trial(3).status {
            TrialStatus::Errored { error } => assert!(
                error.contains("expected shared generation 1, got 0"),
                "{error}"
            ),
            other => panic!("trial 3: {other:?}"),
        }
    });
}
