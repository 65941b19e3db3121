//! Early stopping of bad trials (docs/pruning.md) through the real admin and real workers: a
//! trial whose curve is bad is stopped at its next log call and shows PRUNED with its step,
//! value and reason; with the option off nothing is; bad options are refused; and a worker
//! cannot post intermediate values for, or prune, a trial that is not its own.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::console_browser::Browser;
use crate::helpers::jobs::{
    ask_for_trial, start_job, train_job_count, wait_for_job, wait_until_ended,
};
use crate::helpers::models::SLOW_MODEL;
use crate::helpers::prerequisites::python_ready;
use crate::helpers::{assert_error, spawn_app, USER_PASSWORD};
use crate::train_jobs::hand_driven_worker;

/// The first trial a worker runs learns (val_acc 0.9 at every epoch); every later one does not
/// (0.1). Each of its 12 epochs takes 0.3 s and logs, inside `except Exception:` (which must
/// not swallow the stop); `destroy()` says it ran. The trial count lives in the worker's
/// scratch folder, which outlives the model instances.
const CURVES_MODEL: &str = r#"
import os, time
from rafiki.model import BaseModel, FloatKnob, logger

class Curves(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"x": FloatKnob(0.0, 1.0)}

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        n = int(open("count").read()) if os.path.exists("count") else 0
        open("count", "w").write(str(n + 1))
        acc = 0.9 if n == 0 else 0.1
        for epoch in range(1, 13):
            time.sleep(0.3)
            try:
                logger.log(val_acc=acc, epoch=epoch)
            except Exception:
                pass

    def evaluate(self, dataset_path):
        return 0.5

    def predict(self, queries):
        return [0 for _ in queries]

    def dump_parameters(self):
        return {"a": 1}

    def load_parameters(self, params):
        pass

    def destroy(self):
        print("destroyed")
"#;

async fn curves_job(pruning: Value) -> (Vec<Value>, Value) {
    let app = spawn_app().await;
    let mut budget = json!({"MODEL_TRIAL_COUNT": 3});
    budget
        .as_object_mut()
        .unwrap()
        .extend(pruning.as_object().unwrap().clone());
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("curves", "Curves", CURVES_MODEL)],
        budget,
        Value::Null,
    )
    .await;
    let job = wait_until_ended(&app, &dev, &path, 180).await;
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let mut with_logs = Vec::new();
    for t in trials.as_array().unwrap() {
        let logs = app
            .get_json(&format!("/trials/{}/logs", t["id"].as_str().unwrap()), &dev)
            .await;
        with_logs.push(json!({"trial": t, "logs": logs}));
    }
    let best = app
        .get_json(&format!("{path}/trials?type=best&max_count=10"), &dev)
        .await;
    // The console's pages of the job and of each trial, as its owner sees them.
    let mut browser = Browser::logged_in(&app, "dev@example.com", USER_PASSWORD).await;
    let job_page = browser
        .page(&format!("/console/train_jobs/myapp/{}", job["app_version"]))
        .await;
    for t in &mut with_logs {
        let id = t["trial"]["id"].as_str().unwrap().to_owned();
        t["page"] = json!(browser.page(&format!("/console/trials/{id}")).await);
    }
    (
        with_logs,
        json!({"job": job, "best": best, "job_page": job_page}),
    )
}

#[tokio::test]
async fn a_bad_curve_is_stopped_at_its_next_log_call_and_shows_pruned() {
    if !python_ready() {
        return;
    }
    let (trials, end) = curves_job(json!({"PRUNER": "MEDIAN", "PRUNE_METRIC": "val_acc",
        "PRUNE_STEP_METRIC": "epoch", "PRUNE_WARMUP_TRIALS": 1}))
    .await;
    // Pruned trials are no failure: the job stops, it does not error.
    assert_eq!(end["job"]["status"], "STOPPED", "{end}");
    assert_eq!(end["job"]["budget"]["PRUNER"], "MEDIAN");
    assert_eq!(trials.len(), 3);
    for t in &trials {
        let (trial, logs) = (&t["trial"], &t["logs"]);
        let epochs = logs["metrics"].as_array().unwrap().len();
        let destroyed = logs["messages"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["message"] == "destroyed");
        assert!(destroyed, "destroy() ran: {t}");
        if trial["no"] == 1 {
            assert_eq!(trial["status"], "COMPLETED", "{t}");
            assert_eq!(epochs, 12, "{t}");
            assert!(trial.get("pruned").is_none(), "{t}");
            continue;
        }
        assert_eq!(trial["status"], "PRUNED", "{t}");
        assert_eq!(trial["score"], Value::Null, "{t}");
        assert_eq!(trial["is_params_saved"], false, "{t}");
        assert_eq!(trial["error"], Value::Null, "{t}");
        let pruned = &trial["pruned"];
        // Judged at its first epoch, against trial 1's 0.9.
        assert_eq!(pruned["step"], 1.0, "{t}");
        assert_eq!(pruned["value"], 0.1, "{t}");
        let reason = pruned["reason"].as_str().unwrap();
        assert!(
            reason.contains("median") && reason.contains("val_acc"),
            "{reason}"
        );
        // Stopped early although the model catches Exception around its log calls.
        assert!(epochs < 12, "stopped before its last epoch: {t}");
        let page = t["page"].as_str().unwrap();
        assert!(
            page.contains("PRUNED") && page.contains("Stopped early at step 1"),
            "{page}"
        );
    }
    let job_page = end["job_page"].as_str().unwrap();
    assert!(
        job_page.contains("completed / pruned / errored / unfinished")
            && job_page.contains("pruning: MEDIAN on val_acc (MAX)"),
        "{job_page}"
    );
    let best = end["best"].as_array().unwrap();
    assert_eq!(
        best.len(),
        1,
        "only the completed trial is a best trial: {best:?}"
    );
    assert_eq!(best[0]["no"], 1);
}

#[tokio::test]
async fn without_a_pruner_the_same_curves_all_complete() {
    if !python_ready() {
        return;
    }
    let (trials, end) = curves_job(json!({})).await;
    assert_eq!(end["job"]["status"], "STOPPED", "{end}");
    assert!(end["job"]["budget"].get("PRUNER").is_none(), "{end}");
    for t in &trials {
        assert_eq!(t["trial"]["status"], "COMPLETED", "{t}");
        assert_eq!(t["logs"]["metrics"].as_array().unwrap().len(), 12, "{t}");
    }
}

#[tokio::test]
async fn bad_pruning_options_are_refused_and_create_nothing() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let train = crate::helpers::jobs::dataset(&app, &dev, "ANY", b"a").await;
    let val = crate::helpers::jobs::dataset(&app, &dev, "ANY", b"b").await;
    let model =
        crate::helpers::jobs::model(&app, &dev, "slow", "ANY", "Slow", SLOW_MODEL, "PRIVATE").await;
    for (budget, says) in [
        (json!({"PRUNER": "ASHA"}), "PRUNE_METRIC"),
        (
            json!({"PRUNER": "HYPERBAND", "PRUNE_METRIC": "acc"}),
            "PRUNER",
        ),
        (json!({"PRUNE_METRIC": "acc"}), "needs PRUNER"),
        (
            json!({"PRUNER": "ASHA", "PRUNE_METRIC": "acc", "PRUNE_MODE": "BEST"}),
            "PRUNE_MODE",
        ),
        (
            json!({"PRUNER": "ASHA", "PRUNE_METRIC": "acc", "PRUNE_REDUCTION_FACTOR": 1}),
            "PRUNE_REDUCTION_FACTOR",
        ),
        (
            json!({"PRUNER": "ASHA", "PRUNE_METRIC": "acc", "PRUNE_MIN_STEP": -1}),
            "PRUNE_MIN_STEP",
        ),
    ] {
        let res = app
            .send(
                Method::POST,
                "/train_jobs",
                Some(&dev),
                json!({"app": "myapp", "task": "ANY", "train_dataset_id": train,
                       "val_dataset_id": val, "budget": budget, "model_ids": [model]}),
            )
            .await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(message.contains(says), "{budget}: {message}");
    }
    assert_eq!(train_job_count(&app).await, 0);
}

#[tokio::test]
async fn a_worker_cannot_post_intermediates_for_or_prune_a_trial_not_its_own() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 100, "PRUNER": "MEDIAN", "PRUNE_METRIC": "val_acc",
               "PRUNE_WARMUP_TRIALS": 1}),
        json!({"seconds": 30}),
    )
    .await;
    let token = "a-hand-made-service-token";
    hand_driven_worker(&app, &dev, &path, token).await;
    let job = wait_for_job(&app, &dev, &path, 60, |j| j["status"] == "RUNNING").await;
    assert_eq!(job["status"], "RUNNING");
    // A worker learns which metric to post at once.
    let res = app
        .send(Method::GET, "/internal/train/job", Some(token), Value::Null)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let own: Value = res.json().await.unwrap();
    assert_eq!(own["prune_metric"], "val_acc", "{own}");
    // The real worker's trial, running.
    let theirs: uuid::Uuid =
        sqlx::query_scalar("select id from trials where status = 'RUNNING' limit 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let mine = ask_for_trial(&app, token).await;
    let mine = mine["trial"]["id"].as_str().unwrap().to_owned();
    let bad_curve = |acc: f64| {
        json!({"entries": [{"time": "2026-12-30T00:00:00Z", "kind": "METRICS",
                            "body": {"val_acc": acc}}]})
    };
    // The hand-made worker's own trial gets a good curve, so that the median judges theirs.
    let res = app
        .send(
            Method::POST,
            &format!("/internal/trials/{mine}/logs"),
            Some(token),
            bad_curve(0.9),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // A bad value posted for the other worker's trial is refused, records nothing, prunes
    // nothing.
    let res = app
        .send(
            Method::POST,
            &format!("/internal/trials/{theirs}/logs"),
            Some(token),
            bad_curve(0.0),
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidTrialError").await;
    let (points, decided): (i64, bool) = sqlx::query_as(
        "select (select count(*) from trial_intermediates where trial_id = $1), \
                (select prune_reason is not null from trials where id = $1)",
    )
    .bind(theirs)
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!((points, decided), (0, false));
    // Nor can it finish a trial PRUNED that no pruner stopped, its own included.
    for trial in [theirs.to_string(), mine.clone()] {
        let res = app
            .send(
                Method::POST,
                &format!("/internal/trials/{trial}/finish"),
                Some(token),
                json!({"status": "PRUNED"}),
            )
            .await;
        assert_error(res, StatusCode::NOT_FOUND, "InvalidTrialError").await;
    }
    let trial = app.get_json(&format!("/trials/{theirs}"), &dev).await;
    assert_eq!(trial["status"], "RUNNING", "{trial}");
    let res = app
        .send(
            Method::POST,
            &format!("{path}/stop"),
            Some(&dev),
            Value::Null,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}
