//! Train jobs as tests of several features set them up and watch them: the uploads a job
//! needs, jobs started and waited on, and checks of their trials and workers.

use std::time::Duration;

use reqwest::Method;
use serde_json::{json, Value};

use super::forms::RafikiForm;
use super::models::SLOW_MODEL;
use super::poll;
use super::prerequisites::{build_example_datasets, repo_root};
use super::requests::json_ok;
use super::TestApp;

/// How many train jobs the database holds: refused requests must leave none.
pub async fn train_job_count(app: &TestApp) -> i64 {
    sqlx::query_scalar("select count(*) from train_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap()
}

/// Uploads a dataset of `task` with these bytes; returns its id.
pub async fn dataset(app: &TestApp, token: &str, task: &str, bytes: &[u8]) -> String {
    let form = RafikiForm::new()
        .text("name", "data")
        .text("task", task)
        .file("dataset", bytes);
    let body = json_ok(app.post_form("/datasets", token, form).await).await;
    body["id"].as_str().unwrap().to_owned()
}

/// Uploads a model; returns its id.
pub async fn model(
    app: &TestApp,
    token: &str,
    name: &str,
    task: &str,
    class: &str,
    source: &str,
    access_right: &str,
) -> String {
    let form = RafikiForm::new()
        .text("name", name)
        .text("task", task)
        .text("model_class", class)
        .text("dependencies", "{}")
        .text("access_right", access_right)
        .file("model_file_bytes", source.as_bytes());
    let body = json_ok(app.post_form("/models", token, form).await).await;
    body["id"].as_str().unwrap().to_owned()
}

/// Polls a train job until `done(job)` or the deadline.
pub async fn wait_for_job(
    app: &TestApp,
    token: &str,
    path: &str,
    secs: u64,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let what = format!("the job at {path} to get where awaited");
    poll::until(
        &what,
        Duration::from_secs(secs),
        Duration::from_millis(200),
        async || {
            let job = app.get_json(path, token).await;
            if done(&job) {
                Ok(job)
            } else {
                Err(job)
            }
        },
    )
    .await
}

/// Polls a train job until it has ended (STOPPED or ERRORED) or the deadline.
pub async fn wait_until_ended(app: &TestApp, token: &str, path: &str, secs: u64) -> Value {
    wait_for_job(app, token, path, secs, |j| {
        j["status"] == "STOPPED" || j["status"] == "ERRORED"
    })
    .await
}

/// An example model's train job, run until it ends: the model `examples/models/{file}` as
/// `name` of class `class`, on the example datasets `{stem}_train.{ext}` and `{stem}_val.{ext}`
/// (`build_example_datasets`); returns (token, job path, the ended job).
pub async fn example_job(
    app: &TestApp,
    task: &str,
    (stem, ext): (&str, &str),
    (name, class, file): (&str, &str, &str),
    budget: Value,
    train_args: Value,
) -> (String, String, Value) {
    let data = build_example_datasets();
    let train = std::fs::read(data.join(format!("{stem}_train.{ext}"))).unwrap();
    let val = std::fs::read(data.join(format!("{stem}_val.{ext}"))).unwrap();
    let source = std::fs::read_to_string(repo_root().join("examples/models").join(file)).unwrap();
    let (dev, path) = start_job(
        app,
        task,
        (&train, &val),
        &[(name, class, &source)],
        budget,
        train_args,
    )
    .await;
    let job = wait_until_ended(app, &dev, &path, 180).await;
    (dev, path, job)
}

/// A user with two datasets of `task` and a train job of `models` with this budget and
/// train_args; returns (token, job path).
pub async fn start_job(
    app: &TestApp,
    task: &str,
    (train, val): (&[u8], &[u8]),
    models: &[(&str, &str, &str)],
    budget: Value,
    train_args: Value,
) -> (String, String) {
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let path = start_job_as(app, &dev, task, (train, val), models, budget, train_args).await;
    (dev, path)
}

/// [`start_job`] for the model developer of token `dev`; returns the job's path.
pub async fn start_job_as(
    app: &TestApp,
    dev: &str,
    task: &str,
    (train, val): (&[u8], &[u8]),
    models: &[(&str, &str, &str)],
    budget: Value,
    train_args: Value,
) -> String {
    let train_id = dataset(app, dev, task, train).await;
    let val_id = dataset(app, dev, task, val).await;
    let mut ids = Vec::new();
    for (name, class, source) in models {
        ids.push(model(app, dev, name, task, class, source, "PRIVATE").await);
    }
    let res = app
        .send(
            Method::POST,
            "/train_jobs",
            Some(dev),
            json!({"app": "myapp", "task": task, "train_dataset_id": train_id,
                   "val_dataset_id": val_id, "budget": budget, "model_ids": ids,
                   "train_args": train_args}),
        )
        .await;
    let created = json_ok(res).await;
    assert_eq!(created["app"], "myapp");
    format!("/train_jobs/myapp/{}", created["app_version"])
}

/// A job of one model whose trials take 30 s, started and RUNNING: a live worker to stop,
/// ban or kill.
pub async fn start_slow_job(app: &TestApp) -> (String, String) {
    let (dev, path) = start_job(
        app,
        "ANY",
        (b"a", b"b"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"TIME_HOURS": 1}),
        json!({"seconds": 30}),
    )
    .await;
    wait_for_job(app, &dev, &path, 60, |j| j["status"] == "RUNNING").await;
    (dev, path)
}

/// A job of one model on the `ANY` task with a one-trial budget, trained until it is STOPPED
/// (any backend the app has): `(developer's token, the job's path)`.
pub async fn one_trial_job(
    app: &TestApp,
    model: (&str, &str, &str),
    train_args: Value,
) -> (String, String) {
    let budget = json!({"MODEL_TRIAL_COUNT": 1});
    let (dev, path) = start_job(app, "ANY", (b"a", b"b"), &[model], budget, train_args).await;
    let job = wait_until_ended(app, &dev, &path, 120).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    (dev, path)
}

/// Asserts that the job has exactly `count` trials, numbered 1..=count, each COMPLETED once.
pub async fn assert_trials_completed_once(app: &TestApp, token: &str, path: &str, count: i64) {
    let trials = app.get_json(&format!("{path}/trials"), token).await;
    let trials = trials.as_array().unwrap();
    let mut numbers: Vec<i64> = trials.iter().map(|t| t["no"].as_i64().unwrap()).collect();
    numbers.sort_unstable();
    assert_eq!(numbers, (1..=count).collect::<Vec<_>>(), "{trials:?}");
    assert!(
        trials.iter().all(|t| t["status"] == "COMPLETED"),
        "{trials:?}"
    );
}

/// Pids of the job's worker processes that are still alive.
pub async fn live_worker_pids(app: &TestApp) -> Vec<i32> {
    let ids: Vec<Option<String>> = sqlx::query_scalar("select backend_id from services")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    ids.into_iter()
        .flatten()
        .filter_map(|id| id.parse().ok())
        .filter(|pid: &i32| {
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| {
                    !s.rsplit_once(')')
                        .map(|(_, r)| r.trim_start().starts_with('Z'))
                        .unwrap_or(true)
                })
                .unwrap_or(false)
        })
        .collect()
}

/// Asserts that every train worker of the job left its output in its service log, as a
/// container backend keeps it when it removes the worker.
pub async fn assert_train_workers_output_kept(app: &TestApp) {
    let workers: Vec<uuid::Uuid> =
        sqlx::query_scalar("select id from services where service_type = 'TRAIN'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for worker in workers {
        let log = app.data_dir.join(format!("services/{worker}/service.log"));
        let kept = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !kept.is_empty(),
            "the removed worker's output is kept in {log:?}"
        );
    }
}

/// Deploys the latest version of `app_name` without GPUs; returns the answer of
/// `POST /inference_jobs`.
pub async fn deploy_latest(app: &TestApp, token: &str, app_name: &str) -> Value {
    json_ok(
        app.send(
            Method::POST,
            "/inference_jobs",
            Some(token),
            json!({"app": app_name, "app_version": -1, "budget": {"GPU_COUNT": 0}}),
        )
        .await,
    )
    .await
}

/// Stops the deployment of `app_name` version 1 (its predictor and workers outlive the test's
/// admin otherwise); returns the answer.
pub async fn stop_deployment(app: &TestApp, token: &str, app_name: &str) -> Value {
    let path = format!("/inference_jobs/{app_name}/1/stop");
    json_ok(
        app.send(Method::POST, &path, Some(token), Value::Null)
            .await,
    )
    .await
}

/// Trains the slow model (0.2 s a trial) for two trials and waits, up to `secs`, for the job
/// to end STOPPED with both trials COMPLETED; returns the user's token and the job's path.
pub async fn two_slow_trials(app: &TestApp, secs: u64) -> (String, String) {
    let (dev, path) = start_job(
        app,
        "ANY",
        (b"train", b"val"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 2}),
        json!({"seconds": 0.2}),
    )
    .await;
    let job = wait_until_ended(app, &dev, &path, secs).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trials = trials.as_array().unwrap();
    assert_eq!(trials.len(), 2, "{trials:?}");
    assert!(
        trials.iter().all(|t| t["status"] == "COMPLETED"),
        "{trials:?}"
    );
    (dev, path)
}

/// A developer's dataset and slow model, to submit jobs of 30 s trials with (as many GPUs as
/// asked for).
pub struct Submitter {
    /// The developer's token.
    pub dev: String,
    data: String,
    model: String,
}

impl Submitter {
    /// The developer, their dataset and model.
    pub async fn new(app: &TestApp) -> Self {
        let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
        let data = dataset(app, &dev, "ANY", b"x").await;
        let model = model(app, &dev, "slow", "ANY", "Slow", SLOW_MODEL, "PRIVATE").await;
        Submitter { dev, data, model }
    }

    /// The body of a job of app `app_name` asking for `gpus`.
    pub fn body(&self, app_name: &str, gpus: i64) -> Value {
        json!({"app": app_name, "task": "ANY", "train_dataset_id": self.data,
               "val_dataset_id": self.data, "model_ids": [self.model],
               "budget": {"GPU_COUNT": gpus, "TIME_HOURS": 1},
               "train_args": {"seconds": 30}})
    }

    /// `POST /train_jobs` of a job of app `app_name` asking for `gpus`.
    async fn post(&self, app: &TestApp, app_name: &str, gpus: i64) -> reqwest::Response {
        app.send(
            Method::POST,
            "/train_jobs",
            Some(&self.dev),
            self.body(app_name, gpus),
        )
        .await
    }

    /// Submits a job of app `app_name` asking for `gpus`; returns its path.
    pub async fn submit(&self, app: &TestApp, app_name: &str, gpus: i64) -> String {
        let created = json_ok(self.post(app, app_name, gpus).await).await;
        format!("/train_jobs/{app_name}/{}", created["app_version"])
    }

    /// Submits a job that must be refused for its GPUs (503 `ServiceDeploymentError`);
    /// returns the refusal's message.
    pub async fn refused(&self, app: &TestApp, app_name: &str, gpus: i64) -> String {
        super::assert_error(
            self.post(app, app_name, gpus).await,
            reqwest::StatusCode::SERVICE_UNAVAILABLE,
            "ServiceDeploymentError",
        )
        .await
    }

    /// The job at `path`.
    pub async fn get(&self, app: &TestApp, path: &str) -> Value {
        app.get_json(path, &self.dev).await
    }

    /// Stops the job at `path`.
    pub async fn stop(&self, app: &TestApp, path: &str) {
        json_ok(
            app.send(
                Method::POST,
                &format!("{path}/stop"),
                Some(&self.dev),
                json!({}),
            )
            .await,
        )
        .await;
    }

    /// Waits until the job at `path` runs (and no longer waits).
    pub async fn running(&self, app: &TestApp, path: &str) -> Value {
        wait_for_job(app, &self.dev, path, 90, |j| {
            j["status"] == "RUNNING" && j.get("waiting_reason").is_none()
        })
        .await
    }
}

/// The devices held, as (node, device, app of the job of the holding service).
pub async fn allocations(app: &TestApp) -> Vec<(String, i32, String)> {
    sqlx::query_as(
        "select a.node, a.device, j.app from gpu_allocations a \
         join services s on s.id = a.service_id join train_jobs j on j.id = s.job_id \
         order by a.node, a.device",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap()
}

/// Queries the predictor at `host` (`host:port`) with `[1, 2]`, as Rafiki's clients do;
/// returns its answer after checking it is a 200 with a numeric prediction (the slow model's).
pub async fn predict(host: &str) -> Value {
    let res = reqwest::Client::new()
        .post(format!("http://{host}/predict"))
        .json(&json!({"query": [1, 2]}))
        .send()
        .await
        .expect("the predictor answers");
    assert_eq!(res.status(), reqwest::StatusCode::OK);
    let answer: Value = res.json().await.unwrap();
    assert!(answer["prediction"].is_number(), "{answer}");
    answer
}

/// `POST /internal/train/trials` as a worker calling as `token`: its answer.
pub async fn ask_for_trial(app: &TestApp, token: &str) -> Value {
    json_ok(
        app.send(
            Method::POST,
            "/internal/train/trials",
            Some(token),
            Value::Null,
        )
        .await,
    )
    .await
}
