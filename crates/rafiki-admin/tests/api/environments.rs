//! Dependency environments through the API: a model's dependencies are installed once on the
//! host, later train jobs and deployments with the same dependencies reuse them, every worker's
//! report is in its train job's detail (`environments`), and installing does not count against
//! `TIME_HOURS`.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, State};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::sync::watch;

use crate::helpers::forms::RafikiForm;
use crate::helpers::jobs::{dataset, wait_for_job, wait_until_ended};
use crate::helpers::poll;
use crate::helpers::prerequisites::{predictor_built, python_ready, repo_root};
use crate::helpers::requests::json_ok;
use crate::helpers::servers::serve;
use crate::helpers::{fresh_database, spawn_app_on, TestApp};

/// A model that needs `rafiki-testdep` (not installed in the worker's interpreter).
const NEEDS_TESTDEP: &str = include_str!("../../../../tests/models/NeedsTestdep.py");

/// A package index for pip's `--find-links` that holds back its wheels until released.
struct HeldIndex {
    url: String,
    release: watch::Sender<bool>,
    asked: Arc<AtomicUsize>,
}

#[derive(Clone)]
struct IndexState {
    wheel_name: String,
    wheel: Vec<u8>,
    released: watch::Receiver<bool>,
    asked: Arc<AtomicUsize>,
}

async fn index_page(State(state): State<IndexState>) -> Html<String> {
    Html(format!(
        "<html><body><a href=\"{0}\">{0}</a></body></html>",
        state.wheel_name
    ))
}

async fn wheel_file(State(mut state): State<IndexState>, Path(name): Path<String>) -> Response {
    if name != state.wheel_name {
        return axum::http::StatusCode::NOT_FOUND.into_response();
    }
    state.asked.fetch_add(1, Ordering::SeqCst);
    let _ = state.released.wait_for(|released| *released).await;
    state.wheel.into_response()
}

/// Builds the `rafiki-testdep` 1.2.3 wheel and serves it, held back.
async fn held_index(python: &str) -> HeldIndex {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new(python)
        .arg(repo_root().join("tests/deps/make_wheel.py"))
        .arg(dir.path())
        .args(["rafiki-testdep", "1.2.3"])
        .status()
        .unwrap();
    assert!(status.success());
    let wheel_name = "rafiki_testdep-1.2.3-py3-none-any.whl".to_owned();
    let wheel = std::fs::read(dir.path().join(&wheel_name)).unwrap();
    let (release, released) = watch::channel(false);
    let asked = Arc::new(AtomicUsize::new(0));
    let router = Router::new()
        .route("/", get(index_page))
        .route("/{name}", get(wheel_file))
        .with_state(IndexState {
            wheel_name,
            wheel,
            released,
            asked: asked.clone(),
        });
    HeldIndex {
        url: serve("127.0.0.1", router).await,
        release,
        asked,
    }
}

async fn start_train_job(app: &TestApp, dev: &str, body: Value) -> String {
    let created = json_ok(app.send(Method::POST, "/train_jobs", Some(dev), body).await).await;
    format!(
        "/train_jobs/{}/{}",
        created["app"].as_str().unwrap(),
        created["app_version"]
    )
}

#[tokio::test]
async fn jobs_and_deployments_with_the_same_dependencies_reuse_one_environment_installed_off_the_budget(
) {
    if !python_ready() || !predictor_built() {
        return;
    }
    let python = std::env::var("RAFIKI_PYTHON").unwrap();
    let index = held_index(&python).await;
    let app = spawn_app_on(
        &fresh_database().await,
        &[(
            "pip_args",
            json!(format!("--no-index --find-links {}/", index.url)),
        )],
    )
    .await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let train = dataset(&app, &dev, "ANY", b"train").await;
    let val = dataset(&app, &dev, "ANY", b"val").await;
    let form = RafikiForm::new()
        .text("name", "needs-dep")
        .text("task", "ANY")
        .text("model_class", "NeedsDep")
        .text("dependencies", r#"{"rafiki-testdep": "1.2.3"}"#)
        .file("model_file_bytes", NEEDS_TESTDEP.as_bytes());
    let model = json_ok(app.post_form("/models", &dev, form).await).await["id"].clone();
    // 7.2 seconds of budget, and an install held back for longer than that: charged to the
    // budget, the install would leave no time for a single trial.
    let job_of = |app_name: &str| {
        json!({"app": app_name, "task": "ANY", "train_dataset_id": train,
               "val_dataset_id": val, "model_ids": [model],
               "budget": {"TIME_HOURS": 0.002, "MODEL_TRIAL_COUNT": 1}})
    };
    let first = start_train_job(&app, &dev, job_of("first")).await;
    poll::until(
        "pip asking for the wheel",
        Duration::from_secs(120),
        Duration::from_millis(100),
        async || match index.asked.load(Ordering::SeqCst) {
            0 => Err("no request for it"),
            _ => Ok(()),
        },
    )
    .await;
    // Not a wait for something: the install must be held back for longer than the job's whole
    // budget, so time has to pass.
    tokio::time::sleep(Duration::from_secs(10)).await;
    index.release.send(true).unwrap();

    let job = wait_until_ended(&app, &dev, &first, 180).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let trials = app.get_json(&format!("{first}/trials"), &dev).await;
    assert_eq!(trials.as_array().unwrap().len(), 1, "{trials}");
    assert_eq!(trials[0]["status"], "COMPLETED", "{trials}");
    let environments = job["environments"].as_array().unwrap();
    assert_eq!(environments.len(), 1, "{job}");
    let built = &environments[0];
    assert_eq!(built["service_type"], "TRAIN");
    assert_eq!(built["model_name"], "needs-dep");
    assert_eq!(built["reused"], false);
    assert!(built["size_bytes"].as_u64().unwrap() > 0, "{built}");
    assert!(built["seconds"].as_f64().unwrap() > 0.0, "{built}");
    assert_eq!(built["warnings"], json!([]));
    // Shape T is untouched by the addition.
    for key in [
        "id",
        "status",
        "app",
        "app_version",
        "budget",
        "datetime_started",
    ] {
        assert!(job.get(key).is_some(), "{key} in {job}");
    }
    let clock: (
        chrono::DateTime<chrono::Utc>,
        Option<chrono::DateTime<chrono::Utc>>,
    ) = sqlx::query_as("select datetime_started, budget_started_at from sub_train_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let budget_started = clock.1.expect("the budget clock started");
    let held_for =
        chrono::Duration::milliseconds((built["seconds"].as_f64().unwrap() * 1e3) as i64);
    assert!(
        budget_started >= clock.0 + held_for,
        "the clock starts after the install: {clock:?}, {built}"
    );

    // The same dependencies again: no install, the same environment.
    let second = start_train_job(&app, &dev, job_of("second")).await;
    let job = wait_until_ended(&app, &dev, &second, 180).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    assert_eq!(job["environments"][0]["reused"], true, "{job}");

    let deploy = json!({"app": "second", "app_version": 1, "budget": {}});
    json_ok(
        app.send(Method::POST, "/inference_jobs", Some(&dev), deploy)
            .await,
    )
    .await;
    let job = wait_for_job(&app, &dev, &second, 120, |job| {
        job["environments"].as_array().unwrap().len() == 2
    })
    .await;
    let served = &job["environments"][1];
    assert_eq!(served["service_type"], "INFERENCE", "{job}");
    assert_eq!(served["reused"], true, "{job}");
    assert_eq!(served["size_bytes"], built["size_bytes"], "{job}");
    let stopped = app
        .send(
            Method::POST,
            "/inference_jobs/second/1/stop",
            Some(&dev),
            Value::Null,
        )
        .await;
    json_ok(stopped).await;

    let store = rafiki_worker::envs::EnvStore::new(app.data_dir.join("envs"));
    assert_eq!(
        store.list().unwrap().len(),
        1,
        "one environment on the host"
    );
    assert_eq!(
        index.asked.load(Ordering::SeqCst),
        1,
        "the wheel was fetched once"
    );
}
