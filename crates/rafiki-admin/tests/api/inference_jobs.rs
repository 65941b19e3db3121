//! Inference jobs (routes 21–25): the contract's checks, and a whole deployment served by real
//! `rafiki-predictor` and `rafiki-worker` processes.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::jobs::{one_trial_job, start_job, stop_deployment, wait_until_ended};
use crate::helpers::models::{SLOW_MODEL, UNLOADABLE_MODEL};
use crate::helpers::poll;
use crate::helpers::prerequisites::{
    build_example_datasets, predictor_built, python_ready, repo_root,
};
use crate::helpers::requests::json_ok;
use crate::helpers::{assert_error, spawn_app, TestApp};

#[tokio::test]
async fn deployments_need_a_stopped_train_job_with_a_saved_trial() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "APP_DEVELOPER").await;
    let deploy = |app_name: &str, version: i64| json!({"app": app_name, "app_version": version, "budget": {}});
    let res = app
        .send(
            Method::POST,
            "/inference_jobs",
            Some(&dev),
            deploy("nope", 1),
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidTrainJobError").await;
    let res = app
        .send(
            Method::GET,
            "/inference_jobs/nope/1",
            Some(&dev),
            Value::Null,
        )
        .await;
    assert_error(
        res,
        StatusCode::NOT_FOUND,
        "InvalidRunningInferenceJobError",
    )
    .await;
    let res = app
        .send(
            Method::POST,
            "/inference_jobs/nope/1/stop",
            Some(&dev),
            Value::Null,
        )
        .await;
    assert_error(
        res,
        StatusCode::NOT_FOUND,
        "InvalidRunningInferenceJobError",
    )
    .await;
    let res = app
        .send(Method::GET, "/inference_jobs", Some(&dev), Value::Null)
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    let res = app
        .send(Method::GET, "/inference_jobs/nope", Some(&dev), Value::Null)
        .await;
    assert_eq!(json_ok(res).await, json!([]));
}

#[tokio::test]
async fn a_running_train_job_cannot_be_deployed() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"TIME_HOURS": 1}),
        json!({"seconds": 30}),
    )
    .await;
    let res = app
        .send(
            Method::POST,
            "/inference_jobs",
            Some(&dev),
            json!({"app": "myapp", "app_version": -1, "budget": {}}),
        )
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidTrainJobError").await;
    app.send(
        Method::POST,
        &format!("{path}/stop"),
        Some(&dev),
        Value::Null,
    )
    .await;
    // Stopped mid-trial, with no completed trial: still nothing to deploy.
    let res = app
        .send(
            Method::POST,
            "/inference_jobs",
            Some(&dev),
            json!({"app": "myapp", "app_version": -1, "budget": {}}),
        )
        .await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidTrainJobError").await;
    assert!(message.contains("no completed trial"), "{message}");
}

#[tokio::test]
async fn a_deployed_tabular_classifier_serves_ensembled_predictions() {
    if !python_ready() || !predictor_built() {
        return;
    }
    let data = build_example_datasets();
    let train = std::fs::read(data.join("wine_train.csv")).unwrap();
    let val_text = std::fs::read_to_string(data.join("wine_val.csv")).unwrap();
    let source = std::fs::read_to_string(
        repo_root().join("examples/models/tabular_classification/SkMlpClf.py"),
    )
    .unwrap();
    let app = spawn_app().await;
    let (dev, path) = start_job(
        &app,
        "TABULAR_CLASSIFICATION",
        (&train, val_text.as_bytes()),
        &[("mlp", "SkMlpClf", &source), ("mlp2", "SkMlpClf", &source)],
        json!({"MODEL_TRIAL_COUNT": 2}),
        json!({"target": "target"}),
    )
    .await;
    let job = wait_until_ended(&app, &dev, &path, 180).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let best = app
        .get_json(&format!("{path}/trials?type=best&max_count=1"), &dev)
        .await;
    let best_score = best[0]["score"].as_f64().unwrap();

    let deploy = json!({"app": "myapp", "app_version": -1, "budget": {"GPU_COUNT": 0}});
    let created = json_ok(
        app.send(Method::POST, "/inference_jobs", Some(&dev), deploy.clone())
            .await,
    )
    .await;
    assert_eq!(created["app_version"], 1);
    let host = created["predictor_host"].as_str().unwrap().to_owned();
    assert!(host.starts_with("127.0.0.1:"), "{host}");
    let res = app
        .send(Method::POST, "/inference_jobs", Some(&dev), deploy)
        .await;
    assert_error(res, StatusCode::CONFLICT, "RunningInferenceJobExistsError").await;

    poll::until(
        "the deployment RUNNING",
        Duration::from_secs(120),
        Duration::from_millis(200),
        async || {
            let running = app.get_json("/inference_jobs/myapp/1", &dev).await;
            assert_eq!(running["predictor_host"], host.as_str());
            if running["status"] == "RUNNING" {
                return Ok(());
            }
            assert_eq!(running["status"], "STARTED", "{running}");
            Err(running)
        },
    )
    .await;

    let mut lines = val_text.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let mut queries = Vec::new();
    let mut labels = Vec::new();
    for line in lines.filter(|l| !l.is_empty()) {
        let mut query = serde_json::Map::new();
        for (name, value) in header.iter().zip(line.split(',')) {
            if *name == "target" {
                labels.push(value.parse::<usize>().unwrap());
            } else {
                query.insert((*name).to_owned(), json!(value.parse::<f64>().unwrap()));
            }
        }
        queries.push(Value::Object(query));
    }
    let client = reqwest::Client::new();
    let url = format!("http://{host}/predict");
    let one: Value = client
        .post(&url)
        .json(&json!({"query": queries[0]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let probs = one["prediction"]
        .as_array()
        .unwrap_or_else(|| panic!("a probability vector: {one}"));
    assert_eq!(probs.len(), 3);
    let total: f64 = probs.iter().map(|p| p.as_f64().unwrap()).sum();
    assert!(
        (total - 1.0).abs() < 1e-6,
        "an average of probability vectors sums to 1: {total}"
    );
    assert_eq!(one["predictions"], json!([]));

    let many: Value = client
        .post(&url)
        .json(&json!({"queries": queries}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(many["prediction"].is_null());
    let predictions = many["predictions"].as_array().unwrap();
    assert_eq!(predictions.len(), labels.len());
    let correct = predictions
        .iter()
        .zip(&labels)
        .filter(|(p, label)| {
            let p = p.as_array().unwrap();
            let argmax = (0..p.len())
                .max_by(|a, b| p[*a].as_f64().partial_cmp(&p[*b].as_f64()).unwrap())
                .unwrap();
            argmax == **label
        })
        .count();
    let accuracy = correct as f64 / labels.len() as f64;
    assert!(
        accuracy >= best_score - 0.15,
        "ensemble accuracy {accuracy} vs best validation score {best_score}"
    );

    // A worker killed while serving: the predictor answers from the other one.
    let pids: Vec<String> = sqlx::query_scalar(
        "select backend_id from services where service_type = 'INFERENCE' and backend_id is not null",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(pids.len(), 2);
    let victim: i32 = pids[0].parse().unwrap();
    nix::sys::signal::killpg(
        nix::unistd::Pid::from_raw(victim),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    for query in queries.iter().take(5) {
        let res = client
            .post(&url)
            .json(&json!({"query": query}))
            .send()
            .await
            .unwrap();
        assert_eq!(
            res.status(),
            StatusCode::OK,
            "the other worker still answers"
        );
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer["prediction"].as_array().unwrap().len(), 3);
    }

    let res = client
        .post(&url)
        .json(&json!({"nope": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        res.json::<Value>().await.unwrap()["error"],
        "InvalidRequestError"
    );

    let stopped = stop_deployment(&app, &dev, "myapp").await;
    assert_eq!(stopped["app"], "myapp");
    let res = app
        .send(
            Method::GET,
            "/inference_jobs/myapp/1",
            Some(&dev),
            Value::Null,
        )
        .await;
    assert_error(
        res,
        StatusCode::NOT_FOUND,
        "InvalidRunningInferenceJobError",
    )
    .await;
    let listed = app.get_json("/inference_jobs/myapp", &dev).await;
    assert_eq!(listed[0]["status"], "STOPPED");
    let live: i64 = sqlx::query_scalar(
        "select count(*) from services where status in ('STARTED', 'DEPLOYING', 'RUNNING')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(live, 0, "no service left running");
    assert!(
        client
            .post(&url)
            .json(&json!({"query": queries[0]}))
            .send()
            .await
            .is_err(),
        "the predictor is gone"
    );
}

#[tokio::test]
async fn a_model_that_fails_in_load_parameters_makes_the_deployment_errored() {
    if !python_ready() || !predictor_built() {
        return;
    }
    let app = spawn_app().await;
    let (dev, _) = one_trial_job(
        &app,
        ("unloadable", "Unloadable", UNLOADABLE_MODEL),
        Value::Null,
    )
    .await;
    let deploy = json!({"app": "myapp", "app_version": -1, "budget": {}});
    json_ok(
        app.send(Method::POST, "/inference_jobs", Some(&dev), deploy)
            .await,
    )
    .await;
    let listed = poll::until(
        "the deployment ERRORED",
        Duration::from_secs(60),
        Duration::from_millis(200),
        async || {
            let listed = app.get_json("/inference_jobs/myapp", &dev).await;
            if listed[0]["status"] == "ERRORED" {
                return Ok(listed);
            }
            assert_ne!(
                listed[0]["status"], "RUNNING",
                "a deployment that cannot load never runs"
            );
            Err(listed)
        },
    )
    .await;
    let error = listed[0]["error"].as_str().unwrap();
    assert!(
        error.contains("another world"),
        "the reason is visible: {error}"
    );
    let res = app
        .send(
            Method::GET,
            "/inference_jobs/myapp/1",
            Some(&dev),
            Value::Null,
        )
        .await;
    assert_error(
        res,
        StatusCode::NOT_FOUND,
        "InvalidRunningInferenceJobError",
    )
    .await;
    poll::until(
        "no live service of the errored deployment",
        Duration::from_secs(30),
        Duration::from_millis(200),
        async || {
            let live: i64 = sqlx::query_scalar(
                "select count(*) from services where status in ('STARTED', 'DEPLOYING', 'RUNNING')",
            )
            .fetch_one(&app.pool)
            .await
            .unwrap();
            match live {
                0 => Ok(()),
                _ => Err(format!("{live} live services")),
            }
        },
    )
    .await;
}

/// Deploys the caller's stopped train job of `myapp` and waits until it is RUNNING; returns
/// its `predictor_host`.
async fn deploy_and_wait_until_running(app: &TestApp, dev: &str) -> String {
    let deploy = json!({"app": "myapp", "app_version": -1, "budget": {}});
    let created = json_ok(
        app.send(Method::POST, "/inference_jobs", Some(dev), deploy)
            .await,
    )
    .await;
    poll::until(
        "the deployment RUNNING",
        Duration::from_secs(120),
        Duration::from_millis(200),
        async || {
            let running = app.get_json("/inference_jobs/myapp/1", dev).await;
            if running["status"] == "RUNNING" {
                return Ok(());
            }
            assert_eq!(running["status"], "STARTED", "{running}");
            Err(running)
        },
    )
    .await;
    created["predictor_host"].as_str().unwrap().to_owned()
}

/// Sends a raw `POST /predict` body; the status and the raw answer text.
async fn predict_raw(host: &str, body: &str) -> (StatusCode, String) {
    let res = reqwest::Client::new()
        .post(format!("http://{host}/predict"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    (res.status(), res.text().await.unwrap())
}

/// A model that reports the order of the keys of every JSON object it gets (knobs declared
/// out of alphabetical order, train_args, queries) and answers with an object whose keys are
/// out of alphabetical order too; shared with the Python client's end-to-end test.
const KEY_ORDER_MODEL: &str = include_str!("../../../../tests/models/KeyOrder.py");

/// Where `needle` is in `text`, which must hold it.
fn position(text: &str, needle: &str) -> usize {
    text.find(needle)
        .unwrap_or_else(|| panic!("{needle} not in {text}"))
}

#[tokio::test]
async fn json_objects_keep_their_key_order_from_client_to_model_and_back() {
    if !python_ready() || !predictor_built() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = one_trial_job(
        &app,
        ("keys", "KeyOrder", KEY_ORDER_MODEL),
        json!({"zz": 1, "aa": 2, "mm": 3}),
    )
    .await;

    // Raw answers: a parsed map could reorder the keys itself.
    let job_text = app.get(&path, &dev).await.text().await.unwrap();
    assert!(
        job_text.contains(r#""train_args":{"zz":1,"aa":2,"mm":3}"#),
        "{job_text}"
    );
    let trials_text = app
        .get(&format!("{path}/trials"), &dev)
        .await
        .text()
        .await
        .unwrap();
    let knobs = &trials_text[position(&trials_text, r#""knobs":{"zeta":"#)..];
    assert!(
        position(knobs, r#""alpha":"a","mid":"#) < position(knobs, "}"),
        "the proposal's knobs in the model's order: {trials_text}"
    );
    let trial_id = app.get_json(&format!("{path}/trials"), &dev).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let logs = app
        .get(&format!("/trials/{trial_id}/logs"), &dev)
        .await
        .text()
        .await
        .unwrap();
    for seen in [
        r#"knobs [\"zeta\", \"alpha\", \"mid\"]"#,
        r#"train_args [\"zz\", \"aa\", \"mm\"]"#,
        r#""zz":1.0,"aa":2.0,"mm":3.0}"#,
    ] {
        assert!(logs.contains(seen), "{seen} in {logs}");
    }

    let host = deploy_and_wait_until_running(&app, &dev).await;
    let (status, answer) = predict_raw(
        &host,
        r#"{"queries": [{"petal_width": 0.2, "alpha": 1, "sepal": 3}, {"b": 1, "a": 2}]}"#,
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert_eq!(
        answer,
        r#"{"prediction":null,"predictions":[{"keys":["petal_width","alpha","sepal"],"knobs":["zeta","alpha","mid"],"zebra":1,"apple":2,"mango":3},{"keys":["b","a"],"knobs":["zeta","alpha","mid"],"zebra":1,"apple":2,"mango":3}]}"#
    );
    let (status, answer) = predict_raw(&host, r#"{"query": {"z": 1, "y": 2}}"#).await;
    assert_eq!(status, StatusCode::OK, "{answer}");
    assert!(
        answer.starts_with(r#"{"prediction":{"keys":["z","y"],"#),
        "{answer}"
    );
    stop_deployment(&app, &dev, "myapp").await;
}

/// A model that trains but whose `predict` always raises.
const PREDICT_RAISES_MODEL: &str = r#"
from rafiki.model import BaseModel, FixedKnob

class PredictRaises(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"k": FixedKnob(1)}

    def train(self, dataset_path, shared_params=None, **train_args):
        pass

    def evaluate(self, dataset_path):
        return 0.5

    def predict(self, queries):
        raise ValueError("bad query")

    def dump_parameters(self):
        return {"n": 1}

    def load_parameters(self, params):
        pass
"#;

#[tokio::test]
async fn a_model_whose_predict_raises_makes_the_predictor_answer_500_with_its_error() {
    if !python_ready() || !predictor_built() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = one_trial_job(
        &app,
        ("raiser", "PredictRaises", PREDICT_RAISES_MODEL),
        Value::Null,
    )
    .await;
    let trial_id = app.get_json(&format!("{path}/trials"), &dev).await[0]["id"]
        .as_str()
        .unwrap()
        .to_owned();

    let host = deploy_and_wait_until_running(&app, &dev).await;
    let (status, answer) = predict_raw(&host, r#"{"query": {"x": 1}}"#).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{answer}");
    let body: Value = serde_json::from_str(&answer).unwrap();
    assert_eq!(body["error"], "InternalServerError", "{answer}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Model \"raiser\" (trial {trial_id}) failed on this request:"
        )),
        "{message}"
    );
    assert!(message.contains("ValueError: bad query"), "{message}");
    assert!(!message.contains("Traceback"), "{message}");
    stop_deployment(&app, &dev, "myapp").await;
}
