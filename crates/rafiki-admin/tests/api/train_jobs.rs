//! Train jobs (routes 12–20): the contract's checks in order, listings, and whole jobs run by
//! real `rafiki-worker` processes hosting real Python models.

use std::time::{Duration, Instant};

use rafiki_types::status::ServiceType;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::admin_process::free_port;
use crate::helpers::jobs::{
    ask_for_trial, assert_trials_completed_once, dataset, example_job, live_worker_pids, model,
    start_job, start_slow_job, train_job_count, wait_for_job, wait_until_ended,
};
use crate::helpers::models::{SLOW_MODEL, TRIVIAL_MODEL};
use crate::helpers::prerequisites::python_ready;
use crate::helpers::requests::json_ok;
use crate::helpers::{assert_error, fresh_database, spawn_app, spawn_app_on, TestApp};

#[tokio::test]
async fn train_job_checks_follow_the_contract_order() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let other = app.user("other@example.com", "MODEL_DEVELOPER").await;
    let train = dataset(&app, &dev, "TASK_A", b"x,y\n1,2\n").await;
    let val = dataset(&app, &dev, "TASK_A", b"x,y\n1,2\n").await;
    let other_task = dataset(&app, &dev, "TASK_B", b"x,y\n1,2\n").await;
    let not_mine = dataset(&app, &other, "TASK_A", b"x,y\n1,2\n").await;
    let m = model(
        &app,
        &dev,
        "m",
        "TASK_A",
        "Trivial",
        TRIVIAL_MODEL,
        "PRIVATE",
    )
    .await;
    let m_other_task = model(
        &app,
        &dev,
        "mb",
        "TASK_B",
        "Trivial",
        TRIVIAL_MODEL,
        "PRIVATE",
    )
    .await;
    let private_of_other = model(
        &app,
        &other,
        "p",
        "TASK_A",
        "Trivial",
        TRIVIAL_MODEL,
        "PRIVATE",
    )
    .await;
    let body = |train: &str, val: &str, models: Value, budget: Value| {
        json!({"app": "app", "task": "TASK_A", "train_dataset_id": train, "val_dataset_id": val,
               "budget": budget, "model_ids": models, "train_args": null})
    };
    let ghost = uuid::Uuid::new_v4().to_string();
    let cases = [
        (
            body(&ghost, &val, json!([m]), json!({})),
            StatusCode::BAD_REQUEST,
            "InvalidDatasetError",
        ),
        (
            body(&train, &not_mine, json!([m]), json!({})),
            StatusCode::FORBIDDEN,
            "UnauthorizedError",
        ),
        (
            body(&train, &val, json!([]), json!({})),
            StatusCode::BAD_REQUEST,
            "NoModelsForTrainJobError",
        ),
        (
            body(&train, &val, json!([m_other_task]), json!({})),
            StatusCode::BAD_REQUEST,
            "InvalidModelError",
        ),
        (
            body(&train, &val, json!([private_of_other]), json!({})),
            StatusCode::BAD_REQUEST,
            "InvalidModelError",
        ),
        (
            body(&train, &val, json!([m, m]), json!({})),
            StatusCode::BAD_REQUEST,
            "InvalidModelError",
        ),
        (
            body(&train, &other_task, json!([m]), json!({})),
            StatusCode::BAD_REQUEST,
            "InvalidDatasetError",
        ),
        (
            body(&train, &val, json!([m]), json!({"TIME_HOURS": -1})),
            StatusCode::BAD_REQUEST,
            "InvalidRequestError",
        ),
        (
            body(&train, &val, json!([m]), json!({"GPUS": 1})),
            StatusCode::BAD_REQUEST,
            "InvalidRequestError",
        ),
        // The datasets are checked before the models: an empty model list with a foreign
        // dataset is about the dataset.
        (
            body(&train, &not_mine, json!([]), json!({})),
            StatusCode::FORBIDDEN,
            "UnauthorizedError",
        ),
        // No GPUs on this host.
        (
            body(&train, &val, json!([m]), json!({"GPU_COUNT": 1})),
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceDeploymentError",
        ),
    ];
    for (body, status, name) in cases {
        let res = app
            .send(Method::POST, "/train_jobs", Some(&dev), body.clone())
            .await;
        let message = assert_error(res, status, name).await;
        if name == "ServiceDeploymentError" {
            assert!(
                message.contains("1 GPU(s) asked for; the cluster has 0 in all"),
                "{message}"
            );
        }
    }
    let res = app
        .send(
            Method::POST,
            "/train_jobs",
            Some(&dev),
            json!({"app": "a", "task": "TASK_A"}),
        )
        .await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    assert!(message.contains("train_dataset_id"), "{message}");
    // train_args are train()'s keyword arguments: an object or null, nothing else.
    for train_args in [json!([1, 2]), json!("target"), json!(3)] {
        let mut req = body(&train, &val, json!([m]), json!({}));
        req["train_args"] = train_args;
        let res = app.send(Method::POST, "/train_jobs", Some(&dev), req).await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(message.contains("train_args"), "{message}");
    }
    assert_eq!(
        train_job_count(&app).await,
        0,
        "no refused request left a job behind"
    );
}

#[tokio::test]
async fn train_job_listings_are_the_callers_unless_admin() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "APP_DEVELOPER").await;
    let other = app.user("other@example.com", "APP_DEVELOPER").await;
    let admin = app.user("admin@example.com", "ADMIN").await;
    let dev_id = app.user_id("dev@example.com").await.to_string();
    let res = app
        .send(Method::GET, "/train_jobs", Some(&dev), Value::Null)
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    let path = format!("/train_jobs?user_id={dev_id}");
    let res = app
        .send(Method::GET, &path, Some(&other), Value::Null)
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    for token in [&dev, &admin] {
        let res = app.send(Method::GET, &path, Some(token), Value::Null).await;
        assert_eq!(json_ok(res).await, json!([]));
    }
    let res = app
        .send(Method::GET, "/train_jobs/app/1", Some(&dev), Value::Null)
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidTrainJobError").await;
    let res = app
        .send(
            Method::POST,
            "/train_jobs/app/-1/stop",
            Some(&dev),
            Value::Null,
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidTrainJobError").await;
    let res = app
        .send(
            Method::POST,
            "/actions/stop_all_jobs",
            Some(&admin),
            Value::Null,
        )
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    let sa = app.superadmin().await;
    let res = app
        .send(
            Method::POST,
            "/actions/stop_all_jobs",
            Some(&sa),
            Value::Null,
        )
        .await;
    assert_eq!(
        json_ok(res).await,
        json!({"train_jobs": [], "inference_jobs": []})
    );
}

/// A model whose `train` always raises.
const RAISING_MODEL: &str = r#"
from rafiki.model import BaseModel, IntegerKnob

class Raises(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"n": IntegerKnob(1, 5)}

    def train(self, dataset_path, shared_params=None, **train_args):
        raise ValueError("this model cannot learn")

    def evaluate(self, dataset_path):
        return 0.0

    def predict(self, queries):
        return queries

    def dump_parameters(self):
        return {}

    def load_parameters(self, params):
        pass
"#;

#[tokio::test]
async fn an_example_model_trains_to_stopped_with_trials_logs_and_parameters() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path, job) = example_job(
        &app,
        "TABULAR_CLASSIFICATION",
        ("wine", "csv"),
        ("mlp", "SkMlpClf", "tabular_classification/SkMlpClf.py"),
        json!({"MODEL_TRIAL_COUNT": 3}),
        json!({"target": "target"}),
    )
    .await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    assert!(job["datetime_stopped"].is_string());
    assert_eq!(job["budget"]["MODEL_TRIAL_COUNT"], 3);

    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trials = trials.as_array().unwrap();
    assert_eq!(trials.len(), 3, "exactly the budget's trials: {trials:?}");
    let mut nos: Vec<i64> = trials.iter().map(|t| t["no"].as_i64().unwrap()).collect();
    assert_eq!(nos, vec![3, 2, 1], "newest first");
    nos.sort();
    for t in trials {
        assert_eq!(t["status"], "COMPLETED", "{t}");
        assert_eq!(t["model_name"], "mlp");
        assert_eq!(t["is_params_saved"], true);
        let score = t["score"].as_f64().unwrap();
        assert!(
            score > 0.5 && score <= 1.0,
            "a sensible accuracy on wine: {score}"
        );
        for key in [
            "trial_no",
            "knobs",
            "params_type",
            "to_eval",
            "to_cache_params",
            "to_save_params",
            "meta",
        ] {
            assert!(
                t["proposal"].get(key).is_some(),
                "{key} in {}",
                t["proposal"]
            );
        }
        let hidden = t["proposal"]["knobs"]["hidden_layer_size"]
            .as_i64()
            .unwrap();
        assert!((8..=64).contains(&hidden));
    }

    let best = app
        .get_json(&format!("{path}/trials?type=best"), &dev)
        .await;
    let best = best.as_array().unwrap();
    assert_eq!(best.len(), 2, "max_count defaults to 2");
    let top = trials
        .iter()
        .map(|t| t["score"].as_f64().unwrap())
        .fold(f64::MIN, f64::max);
    assert_eq!(best[0]["score"].as_f64().unwrap(), top);
    assert!(best[0]["score"].as_f64() >= best[1]["score"].as_f64());

    let id = best[0]["id"].as_str().unwrap();
    let one = app.get_json(&format!("/trials/{id}"), &dev).await;
    assert_eq!(one["id"], id);
    let logs = app.get_json(&format!("/trials/{id}/logs"), &dev).await;
    for key in ["plots", "metrics", "messages"] {
        assert!(logs[key].is_array(), "{logs}");
    }
    let res = app
        .send(
            Method::GET,
            &format!("/trials/{id}/parameters"),
            Some(&dev),
            Value::Null,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    let bytes = res.bytes().await.unwrap();
    assert!(
        bytes.starts_with(b"RAFKPRMS"),
        "the parameters codec's magic"
    );

    let other = app.user("other@example.com", "APP_DEVELOPER").await;
    let res = app
        .send(
            Method::GET,
            &format!("/trials/{id}"),
            Some(&other),
            Value::Null,
        )
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    assert!(
        live_worker_pids(&app).await.is_empty(),
        "no worker left running"
    );
}

#[tokio::test]
async fn a_model_that_raises_in_train_makes_the_job_errored_with_the_reason() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("raises", "Raises", RAISING_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 10}),
        Value::Null,
    )
    .await;
    let job = wait_for_job(&app, &dev, &path, 60, |j| j["status"] == "ERRORED").await;
    assert!(job["error"].as_str().unwrap().contains("raises"), "{job}");
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trials = trials.as_array().unwrap();
    assert!(
        !trials.is_empty() && trials.len() < 10,
        "stopped after a few failures: {}",
        trials.len()
    );
    for t in trials {
        assert_eq!(t["status"], "ERRORED");
        assert!(
            t["error"]
                .as_str()
                .unwrap()
                .contains("this model cannot learn"),
            "{t}"
        );
    }
}

#[tokio::test]
async fn two_models_where_one_is_broken_end_errored_after_the_other_stops() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[
            ("raises", "Raises", RAISING_MODEL),
            ("slow", "Slow", SLOW_MODEL),
        ],
        json!({"MODEL_TRIAL_COUNT": 2}),
        json!({"seconds": 0.2}),
    )
    .await;
    let job = wait_until_ended(&app, &dev, &path, 90).await;
    assert_eq!(job["status"], "ERRORED", "{job}");
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let completed = trials
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["model_name"] == "slow" && t["status"] == "COMPLETED")
        .count();
    assert_eq!(completed, 2, "the working model used its whole budget");
}

#[tokio::test]
async fn stop_is_synchronous_and_leaves_no_worker() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = start_slow_job(&app).await;
    assert!(!live_worker_pids(&app).await.is_empty());
    let stopped = json_ok(
        app.send(
            Method::POST,
            &format!("{path}/stop"),
            Some(&dev),
            Value::Null,
        )
        .await,
    )
    .await;
    assert_eq!(stopped["app"], "myapp");
    let job = app.get_json(&path, &dev).await;
    assert_eq!(job["status"], "STOPPED");
    assert!(
        live_worker_pids(&app).await.is_empty(),
        "the workers are gone when stop returns"
    );
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    for t in trials.as_array().unwrap() {
        assert!(
            t["status"] == "ERRORED" || t["status"] == "COMPLETED",
            "{t}"
        );
    }
    // A new version of the app can start now.
    let res = app
        .send(
            Method::POST,
            &format!("{path}/stop"),
            Some(&dev),
            Value::Null,
        )
        .await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "stopping a stopped job is harmless"
    );
}

#[tokio::test]
async fn a_worker_killed_mid_trial_is_restarted_and_its_trial_run_again() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 3}),
        json!({"seconds": 2}),
    )
    .await;
    wait_for_job(&app, &dev, &path, 60, |j| j["status"] == "RUNNING").await;
    let pids = live_worker_pids(&app).await;
    assert_eq!(pids.len(), 1);
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(pids[0]),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let job = wait_until_ended(&app, &dev, &path, 120).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    // The killed worker's trial was handed to it again when it was relaunched: the crash cost
    // no trial of the budget, and every trial completed once.
    assert_trials_completed_once(&app, &dev, &path, 3).await;
    let restarts: i32 = sqlx::query_scalar("select restarts from services")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(restarts, 1);
}

#[tokio::test]
async fn versions_count_per_user_and_app() {
    if !python_ready() {
        return;
    }
    let database = fresh_database().await;
    let app = spawn_app_on(&database, &[]).await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 1}),
        json!({"seconds": 0}),
    )
    .await;
    assert!(path.ends_with("/1"));
    let res = app.send(Method::GET, &path, Some(&dev), Value::Null).await;
    let job = json_ok(res).await;
    let body = json!({"app": "myapp", "task": "ANY", "train_dataset_id": job["train_dataset_id"],
        "val_dataset_id": job["val_dataset_id"], "budget": {"MODEL_TRIAL_COUNT": 1},
        "model_ids": [], "train_args": null});
    // While version 1 runs, a second job of the app is refused (before the model check).
    if app.get_json(&path, &dev).await["status"] != "STOPPED" {
        let res = app
            .send(Method::POST, "/train_jobs", Some(&dev), body.clone())
            .await;
        assert_error(res, StatusCode::BAD_REQUEST, "InvalidTrainJobError").await;
    }
    wait_for_job(&app, &dev, &path, 60, |j| j["status"] == "STOPPED").await;
    let models: Vec<uuid::Uuid> = sqlx::query_scalar("select id from models")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    let mut body = body;
    body["model_ids"] = json!(models);
    let second = json_ok(
        app.send(Method::POST, "/train_jobs", Some(&dev), body)
            .await,
    )
    .await;
    assert_eq!(second["app_version"], 2);
    let listed = app.get_json("/train_jobs/myapp", &dev).await;
    let versions: Vec<i64> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|j| j["app_version"].as_i64().unwrap())
        .collect();
    assert_eq!(versions, vec![2, 1]);
    let latest = app.get_json("/train_jobs/myapp/-1", &dev).await;
    assert_eq!(latest["app_version"], 2);
    app.send(
        Method::POST,
        "/train_jobs/myapp/2/stop",
        Some(&dev),
        Value::Null,
    )
    .await;
}

#[tokio::test]
async fn an_admin_restart_mid_job_loses_no_trial_and_no_job() {
    if !python_ready() {
        return;
    }
    let port = free_port();
    let database = fresh_database().await;
    let data_dir = std::env::temp_dir().join(format!("rafiki-restart-{}", uuid::Uuid::new_v4()));
    let extra = [("admin_port", json!(port)), ("data_dir", json!(data_dir))];
    let first = spawn_app_on(&database, &extra).await;
    let (dev, path) = start_job(
        &first,
        "ANY",
        (b"a", b"b"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 4}),
        json!({"seconds": 1}),
    )
    .await;
    wait_for_job(&first, &dev, &path, 60, |j| j["status"] == "RUNNING").await;
    first.shutdown().await;
    // The admin is away for a moment while its worker goes on. A sleep, not a poll: the time
    // away is what the test is about (trials go on without an admin).
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let second = spawn_app_on(&database, &extra).await;
    let job = wait_until_ended(&second, &dev, &path, 120).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    // The worker went on through the restart: every trial completed once.
    assert_trials_completed_once(&second, &dev, &path, 4).await;
    // The adopted worker exited normally once the budget was spent (the new admin cannot read
    // the exit status of a process that is not its child): it was not taken for a crash.
    let restarts: Vec<i32> = sqlx::query_scalar("select restarts from services")
        .fetch_all(&second.pool)
        .await
        .unwrap();
    assert_eq!(restarts, [0], "the adopted worker was relaunched");
    let live: i64 = sqlx::query_scalar(
        "select count(*) from services where status in ('STARTED', 'DEPLOYING', 'RUNNING')",
    )
    .fetch_one(&second.pool)
    .await
    .unwrap();
    assert_eq!(live, 0);
}

#[tokio::test]
async fn every_other_example_model_trains_to_stopped_with_sensible_scores() {
    if !python_ready() {
        return;
    }
    // (task, dataset stem, model file, class, train_args, lowest sensible score)
    let examples = [
        (
            "IMAGE_CLASSIFICATION",
            "digits",
            "image_classification/SkLogRegImage.py",
            "SkLogRegImage",
            Value::Null,
            0.8,
        ),
        (
            "TABULAR_REGRESSION",
            "diabetes",
            "tabular_regression/SkRidgeReg.py",
            "SkRidgeReg",
            json!({"target": "target"}),
            0.0,
        ),
        (
            "POS_TAGGING",
            "pos",
            "pos_tagging/BigramHmm.py",
            "BigramHmm",
            Value::Null,
            0.8,
        ),
    ];
    for (task, stem, file, class, train_args, lowest) in examples {
        let ext = if stem == "digits" || stem == "pos" {
            "zip"
        } else {
            "csv"
        };
        let app = spawn_app().await;
        let (dev, path, job) = example_job(
            &app,
            task,
            (stem, ext),
            (class, class, file),
            json!({"MODEL_TRIAL_COUNT": 3}),
            train_args,
        )
        .await;
        assert_eq!(job["status"], "STOPPED", "{task}: {job}");
        let trials = app.get_json(&format!("{path}/trials"), &dev).await;
        let trials = trials.as_array().unwrap();
        assert_eq!(trials.len(), 3, "{task}");
        let mut best = f64::MIN;
        for t in trials {
            assert_eq!(t["status"], "COMPLETED", "{task}: {t}");
            let score = t["score"].as_f64().unwrap();
            assert!(score.is_finite() && score <= 1.0, "{task}: {score}");
            best = best.max(score);
        }
        // Some knob values do badly (a regression's R^2 can go negative); the best must not.
        assert!(best >= lowest, "{task}: a sensible best score, got {best}");
    }
}

/// A model whose `get_knob_config` raises: its class cannot be tuned at all.
const BROKEN_KNOBS_MODEL: &str = r#"
from rafiki.model import BaseModel

class BrokenKnobs(BaseModel):
    @staticmethod
    def get_knob_config():
        raise RuntimeError("no knobs today")

    def train(self, dataset_path, shared_params=None, **train_args):
        pass

    def evaluate(self, dataset_path):
        return 1.0

    def predict(self, queries):
        return queries

    def dump_parameters(self):
        return {}

    def load_parameters(self, params):
        pass
"#;

#[tokio::test]
async fn a_model_that_raises_in_get_knob_config_makes_the_job_errored_with_the_reason() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let started = Instant::now();
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("broken", "BrokenKnobs", BROKEN_KNOBS_MODEL)],
        json!({}),
        Value::Null,
    )
    .await;
    let job = wait_for_job(&app, &dev, &path, 60, |j| j["status"] == "ERRORED").await;
    assert!(started.elapsed() < Duration::from_secs(60));
    let error = job["error"].as_str().unwrap();
    assert!(
        error.contains("broken") && error.contains("no knobs today"),
        "{job}"
    );
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    assert_eq!(trials, json!([]), "no trial was started");
}

/// A slow job of 100 trials with a second worker the test plays by hand, calling as `token`;
/// returns the user's token, the job's path and the hand-driven worker's id.
async fn hand_driven_job(app: &TestApp, token: &str) -> (String, String, uuid::Uuid) {
    let (dev, path) = start_job(
        app,
        "ANY",
        (b"a", b"b"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 100}),
        json!({"seconds": 0.5}),
    )
    .await;
    let worker = hand_driven_worker(app, &dev, &path, token).await;
    (dev, path, worker)
}

#[tokio::test]
async fn a_retried_request_for_a_trial_gets_the_same_trial_and_an_abandoned_one_is_errored() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let token = "a-hand-made-service-token";
    let (dev, path, _) = hand_driven_job(&app, token).await;
    let next = || ask_for_trial(&app, token);

    // The answer was lost and the worker asks again: the same trial, not a second one.
    let first = next().await;
    assert_eq!(first["decision"], "TRIAL", "{first}");
    let again = next().await;
    assert_eq!(again, first);

    // Once the worker has worked on it, asking again abandons it.
    let trial_id = first["trial"]["id"].as_str().unwrap().to_owned();
    let res = app
        .send(
            Method::POST,
            &format!("/internal/trials/{trial_id}/logs"),
            Some(token),
            json!({"entries": [{"time": "2026-11-27T00:00:00Z", "kind": "MESSAGE",
                                "body": {"message": "started"}}]}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let second = next().await;
    assert_eq!(second["decision"], "TRIAL", "{second}");
    assert_ne!(second["trial"]["id"], first["trial"]["id"]);
    let abandoned = app.get_json(&format!("/trials/{trial_id}"), &dev).await;
    assert_eq!(abandoned["status"], "ERRORED", "{abandoned}");
    assert!(
        abandoned["error"]
            .as_str()
            .unwrap()
            .contains("without finishing"),
        "{abandoned}"
    );
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

/// Once the job's real worker has started trials, adds a second worker of the same model with
/// `token`, driven by hand through the internal API. Its backend is not the admin's, so
/// supervision leaves it alone. Returns its id.
pub(crate) async fn hand_driven_worker(
    app: &TestApp,
    dev: &str,
    path: &str,
    token: &str,
) -> uuid::Uuid {
    wait_for_job(app, dev, path, 60, |j| j["status"] == "RUNNING").await;
    let (sub_id, job_id): (uuid::Uuid, uuid::Uuid) = sqlx::query_as(
        "select w.sub_train_job_id, s.train_job_id from train_job_workers w \
         join sub_train_jobs s on s.id = w.sub_train_job_id limit 1",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let worker = hand_made_service(app, ServiceType::Train, job_id, token).await;
    rafiki_store::services::insert_train_worker(
        &app.pool,
        rafiki_types::ids::ServiceId(worker),
        rafiki_types::ids::SubTrainJobId(sub_id),
    )
    .await
    .unwrap();
    worker
}

/// A live service of `service_type` for job `job_id` that calls as `token`, written by hand.
/// Its backend is not the admin's, so supervision leaves it alone. Returns its id.
pub(crate) async fn hand_made_service(
    app: &TestApp,
    service_type: ServiceType,
    job_id: uuid::Uuid,
    token: &str,
) -> uuid::Uuid {
    let id = uuid::Uuid::new_v4();
    rafiki_store::services::insert(
        &app.pool,
        &rafiki_store::services::NewService {
            id,
            service_type,
            backend: rafiki_types::status::BackendKind::Docker,
            token_hash: &rafiki_admin::orchestrator::token_hash(token),
            node: "local",
            gpus: &[],
            image: "none",
            job_id,
        },
    )
    .await
    .unwrap();
    id
}

/// Makes a predictor by hand for the job that `hand_driven_worker` joined, calling as `token`.
async fn hand_made_predictor(app: &TestApp, token: &str) {
    let (train_job_id, user_id): (uuid::Uuid, uuid::Uuid) =
        sqlx::query_as("select id, user_id from train_jobs limit 1")
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let job_id = rafiki_store::inference_jobs::insert(
        &app.pool,
        rafiki_types::ids::UserId(user_id),
        rafiki_types::ids::TrainJobId(train_job_id),
        rafiki_types::inference::InferenceBudget::default(),
        "a-secret",
    )
    .await
    .unwrap();
    let predictor = hand_made_service(app, ServiceType::Predict, job_id, token).await;
    rafiki_store::inference_jobs::insert_predictor(
        &app.pool,
        rafiki_types::ids::InferenceJobId(job_id),
        rafiki_types::ids::ServiceId(predictor),
    )
    .await
    .unwrap();
}

#[tokio::test]
async fn each_internal_route_refuses_services_of_another_kind() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (worker, predictor) = ("a-train-worker-token", "a-predictor-token");
    let (dev, path, _) = hand_driven_job(&app, worker).await;
    hand_made_predictor(&app, predictor).await;
    let some_id = uuid::Uuid::new_v4();
    let refused = |token: &'static str, method: Method, path: String, body: Value| {
        let app = &app;
        async move {
            let res = app.send(method, &path, Some(token), body).await;
            let message = assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
            (path, message)
        }
    };
    // A train worker is neither an inference worker nor a predictor.
    for (method, path, body) in [
        (
            Method::GET,
            "/internal/inference/job".to_owned(),
            Value::Null,
        ),
        (
            Method::POST,
            "/internal/inference/ready".to_owned(),
            Value::Null,
        ),
        (
            Method::POST,
            "/internal/inference/fail".to_owned(),
            json!({"error": "no"}),
        ),
        (
            Method::GET,
            "/internal/predictor/job".to_owned(),
            Value::Null,
        ),
    ] {
        let (path, message) = refused(worker, method, path, body).await;
        assert!(message.starts_with("Only "), "{path}: {message}");
    }
    // A predictor runs no model and no trial.
    for (method, path, body) in [
        (Method::GET, "/internal/train/job".to_owned(), Value::Null),
        (
            Method::PUT,
            "/internal/train/knob_config".to_owned(),
            json!({}),
        ),
        (
            Method::POST,
            "/internal/train/trials".to_owned(),
            Value::Null,
        ),
        (
            Method::POST,
            "/internal/train/fail".to_owned(),
            json!({"error": "no"}),
        ),
        (
            Method::POST,
            format!("/internal/trials/{some_id}/logs"),
            json!({"entries": []}),
        ),
        (
            Method::POST,
            format!("/internal/trials/{some_id}/finish"),
            json!({"status": "ERRORED"}),
        ),
        (
            Method::GET,
            format!("/internal/models/{some_id}/file"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/internal/datasets/{some_id}"),
            Value::Null,
        ),
        (
            Method::GET,
            format!("/internal/trials/{some_id}/parameters"),
            Value::Null,
        ),
        (
            Method::GET,
            "/internal/train/parameters/GLOBAL_BEST".to_owned(),
            Value::Null,
        ),
        (
            Method::POST,
            "/internal/environment".to_owned(),
            json!({"reused": true, "seconds": 0.0, "size_bytes": 0, "warnings": []}),
        ),
    ] {
        let (path, message) = refused(predictor, method, path, body).await;
        assert!(message.starts_with("Only "), "{path}: {message}");
    }
    // A train worker may read the parameters of its own sub-job's trials only: not this one.
    let res = app
        .send(
            Method::GET,
            &format!("/internal/trials/{some_id}/parameters"),
            Some(worker),
            Value::Null,
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidTrialError").await;
    // The predictor's own route answers it, and no one else's token works.
    let res = app
        .send(
            Method::GET,
            "/internal/predictor/job",
            Some(predictor),
            Value::Null,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .send(
            Method::GET,
            "/internal/train/job",
            Some("no-such-token"),
            Value::Null,
        )
        .await;
    assert_error(res, StatusCode::UNAUTHORIZED, "UnauthorizedError").await;
    let res = app
        .send(Method::GET, "/internal/train/job", None, Value::Null)
        .await;
    assert_error(
        res,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthorizationHeaderError",
    )
    .await;
    // The job's real worker would train on after the test: it outlives its admin.
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

#[tokio::test]
async fn a_retried_finish_or_parameters_upload_whose_answer_was_lost_is_answered_again() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let token = "a-hand-made-service-token";
    let (dev, path, _) = hand_driven_job(&app, token).await;
    let trial = ask_for_trial(&app, token).await;
    let trial_id = trial["trial"]["id"].as_str().unwrap().to_owned();
    let put_params = |bytes: &'static [u8]| {
        app.client
            .put(format!(
                "{}/internal/trials/{trial_id}/parameters",
                app.address
            ))
            .bearer_auth(token)
            .body(bytes)
            .send()
    };
    // The worker sends the same parameters again (the admin died before answering, say).
    for _ in 0..2 {
        assert_eq!(
            put_params(b"the parameters").await.unwrap().status(),
            StatusCode::OK
        );
    }
    let res = put_params(b"other parameters").await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "InvalidTrialError").await;
    let finish_path = format!("/internal/trials/{trial_id}/finish");
    let finish = |outcome: Value| app.send(Method::POST, &finish_path, Some(token), outcome);
    for _ in 0..2 {
        let res = finish(json!({"status": "COMPLETED", "score": 0.5})).await;
        assert_eq!(res.status(), StatusCode::OK);
    }
    let res = finish(json!({"status": "ERRORED", "error": "another outcome"})).await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidTrialError").await;
    let finished = app.get_json(&format!("/trials/{trial_id}"), &dev).await;
    assert_eq!(finished["status"], "COMPLETED", "{finished}");
    assert_eq!(finished["score"], 0.5, "{finished}");
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

#[tokio::test]
async fn a_trial_whose_worker_died_after_storing_its_parameters_is_run_again_in_full() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let token = "a-hand-made-service-token";
    let (dev, path, worker) = hand_driven_job(&app, token).await;
    let next_trial = || async { ask_for_trial(&app, token).await["trial"].clone() };
    let put_params = |trial_id: String, bytes: &'static [u8]| {
        app.client
            .put(format!(
                "{}/internal/trials/{trial_id}/parameters",
                app.address
            ))
            .bearer_auth(token)
            .body(bytes)
            .send()
    };
    let first = next_trial().await;
    let trial_id = first["id"].as_str().unwrap().to_owned();
    let res = put_params(trial_id.clone(), b"first attempt")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    // The worker dies before finishing; supervision prepares the relaunch.
    let mut conn = app.pool.acquire().await.unwrap();
    rafiki_store::trials::requeue_in_flight_of_worker(&mut conn, worker)
        .await
        .unwrap();
    drop(conn);
    // The relaunched worker gets the same trial, stores its own parameters and finishes it.
    let again = next_trial().await;
    assert_eq!(again["id"], first["id"], "{again}");
    assert_eq!(again["no"], first["no"]);
    let res = put_params(trial_id.clone(), b"second attempt")
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let finish_path = format!("/internal/trials/{trial_id}/finish");
    let res = app
        .send(
            Method::POST,
            &finish_path,
            Some(token),
            json!({"status": "COMPLETED", "score": 0.5}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let finished = app.get_json(&format!("/trials/{trial_id}"), &dev).await;
    assert_eq!(finished["status"], "COMPLETED", "{finished}");
    assert_eq!(finished["is_params_saved"], true);
    let params = app
        .get(&format!("/trials/{trial_id}/parameters"), &dev)
        .await;
    assert_eq!(params.bytes().await.unwrap().as_ref(), b"second attempt");
    app.send(
        Method::POST,
        &format!("{path}/stop"),
        Some(&dev),
        Value::Null,
    )
    .await;
}

#[tokio::test]
async fn cpu_workers_of_one_model_share_its_trial_budget_with_distinct_knobs() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 6, "CPU_WORKERS_PER_MODEL": 3}),
        json!({"seconds": 2}),
    )
    .await;
    let subs: Vec<(uuid::Uuid, i64)> = sqlx::query_as(
        "select sub_train_job_id, count(*) from train_job_workers group by sub_train_job_id",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(subs.len(), 1, "one sub-job: {subs:?}");
    assert_eq!(subs[0].1, 3, "three workers for it");

    let job = wait_until_ended(&app, &dev, &path, 180).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    assert_eq!(job["budget"]["CPU_WORKERS_PER_MODEL"], 3);
    // The budget counts the model's trials, not each worker's: none more, none lost.
    assert_trials_completed_once(&app, &dev, &path, 6).await;
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trials = trials.as_array().unwrap();
    let mut knobs: Vec<String> = trials
        .iter()
        .map(|t| t["proposal"]["knobs"].to_string())
        .collect();
    knobs.sort();
    knobs.dedup();
    assert_eq!(
        knobs.len(),
        6,
        "no two trials got the same knobs: {trials:?}"
    );
    let mut workers: Vec<&str> = trials
        .iter()
        .map(|t| t["worker_id"].as_str().unwrap())
        .collect();
    workers.sort_unstable();
    workers.dedup();
    // Six 2 s trials: one worker cannot have run them all before the others started.
    assert!(
        workers.len() >= 2,
        "the workers shared the trials: {trials:?}"
    );
    assert!(
        live_worker_pids(&app).await.is_empty(),
        "no worker left running"
    );
}

/// A model that declares an architecture and ENAS's five policies, and sleeps in `train`.
const ENAS_MODEL: &str = r#"
import time
from rafiki.model import ArchKnob, BaseModel, PolicyKnob

class Cells(BaseModel):
    @staticmethod
    def get_knob_config():
        policies = ["SHARE_PARAMS", "DOWNSCALE", "EARLY_STOP", "SKIP_TRAIN", "QUICK_EVAL"]
        config = {p.lower(): PolicyKnob(p) for p in policies}
        config["cells"] = ArchKnob([[0, 1], ["conv", "pool", "identity"]])
        return config

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        time.sleep(float(train_args.get("seconds", 1.0)))

    def evaluate(self, dataset_path):
        return 0.5

    def predict(self, queries):
        return [0 for _ in queries]

    def dump_parameters(self):
        return {"w": 1}

    def load_parameters(self, params):
        pass
"#;

#[tokio::test]
async fn an_architecture_model_with_enas_policies_gets_enas_and_each_worker_its_own_cycle() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("cells", "Cells", ENAS_MODEL)],
        json!({"TIME_HOURS": 24, "MODEL_TRIAL_COUNT": 100}),
        json!({"seconds": 30}),
    )
    .await;
    let token = "a-hand-made-service-token";
    hand_driven_worker(&app, &dev, &path, token).await;
    let advisor: Option<String> = sqlx::query_scalar("select advisor_type from sub_train_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(advisor.as_deref(), Some("ENAS"));

    // The real worker's first trial trains its copy of the shared parameters.
    let first: Value = sqlx::query_scalar("select proposal from trials where no = 1")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(first["meta"], json!({"proposal_type": "TRAIN"}), "{first}");
    assert_eq!(first["params_type"], "LOCAL_RECENT");
    assert_eq!(first["to_eval"], false);
    assert_eq!(first["to_cache_params"], true);
    assert_eq!(first["knobs"]["early_stop"], true);

    // The second worker has trained nothing: it starts its own cycle with a TRAIN trial...
    let mine = ask_for_trial(&app, token).await;
    assert_eq!(mine["decision"], "TRIAL", "{mine}");
    assert_eq!(mine["trial"]["proposal"]["meta"]["proposal_type"], "TRAIN");
    let trial_id = mine["trial"]["id"].as_str().unwrap().to_owned();
    let res = app
        .send(
            Method::POST,
            &format!("/internal/trials/{trial_id}/finish"),
            Some(token),
            json!({"status": "COMPLETED", "score": null}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // ...then evaluates architectures on what it trained.
    let next = ask_for_trial(&app, token).await;
    let proposal = &next["trial"]["proposal"];
    assert_eq!(proposal["meta"]["proposal_type"], "EVAL", "{next}");
    assert_eq!(proposal["params_type"], "LOCAL_RECENT");
    assert_eq!(proposal["to_save_params"], false);
    assert_eq!(proposal["knobs"]["skip_train"], true);
    assert_eq!(proposal["knobs"]["quick_eval"], true);
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

#[tokio::test]
async fn the_enas_example_runs_enas_with_each_eval_trial_on_its_workers_trained_parameters() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, _, job) = example_job(
        &app,
        "IMAGE_CLASSIFICATION",
        ("digits", "zip"),
        ("enas", "NumpyEnas", "image_classification/NumpyEnas.py"),
        json!({"TIME_HOURS": 24, "MODEL_TRIAL_COUNT": 5}),
        Value::Null,
    )
    .await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let trials: Vec<(i32, String, Option<f64>, Value, uuid::Uuid)> =
        sqlx::query_as("select no, status, score, proposal, id from trials order by no")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(trials.len(), 5);
    for (no, status, score, proposal, id) in &trials {
        assert_eq!(status, "COMPLETED", "trial {no}: {proposal}");
        let kind = proposal["meta"]["proposal_type"].as_str().unwrap();
        let logs = app.get_json(&format!("/trials/{id}/logs"), &dev).await;
        let shared = logs["messages"].as_array().unwrap().iter().any(|m| {
            m["message"]
                .as_str()
                .unwrap()
                .ends_with("shared weight arrays")
        });
        if *no == 1 {
            // The worker's first trial trains from scratch and is not evaluated.
            assert_eq!(kind, "TRAIN");
            assert_eq!(*score, None);
            assert!(!shared, "{logs}");
        } else {
            // The others evaluate on what that trial trained, cached by the worker.
            assert_eq!(kind, "EVAL", "trial {no}");
            assert!(
                score.is_some_and(|s| (0.0..=1.0).contains(&s)),
                "trial {no}"
            );
            assert!(shared, "trial {no} got no shared parameters: {logs}");
        }
    }
}
