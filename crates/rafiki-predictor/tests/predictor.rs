//! The predictor over HTTP: in-test workers whose answers, failures and delays the tests
//! choose, real inference workers with the Python runtime, and the in-test admin of
//! rafiki-worker's tests (shared, so both crates test against the same stand-in).

#[path = "../../rafiki-worker/tests/support/inference.rs"]
mod inference_support;

use std::path::PathBuf;
use std::process::Command as StdCommand;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::header::AUTHORIZATION;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use axum::{Json, Router};
use inference_support::{encode_params, InferenceAdmin, RunningWorker, WorkerSpec, SCALER};
use inference_support::{PREDICTOR_TOKEN, PREDICT_SECRET};
use rafiki_predictor::{Finished, PredictorConfig, PredictorError};
use rafiki_service::config::RetryPolicy;
use rafiki_types::internal::WorkerPredictRequest;
use rafiki_worker::WorkerConfig;
use serde_json::{json, Value};
use tokio::task::JoinHandle;

type Answerer = dyn Fn(&[Value]) -> (u16, Value) + Send + Sync;

/// An in-test inference worker: answers `POST /predict` with what `answer` says after `delay`,
/// recording the queries it got and the request id each came with. Like a real worker it refuses (403) requests without the job's
/// predict secret, so every test that gets answers shows the predictor sends it.
struct FakeWorker {
    url: String,
    received: Arc<Mutex<Vec<Vec<Value>>>>,
    request_ids: Arc<Mutex<Vec<Option<String>>>>,
    server: JoinHandle<()>,
}

impl Drop for FakeWorker {
    fn drop(&mut self) {
        self.server.abort();
    }
}

#[derive(Clone)]
struct FakeState {
    delay: Duration,
    answer: Arc<Answerer>,
    received: Arc<Mutex<Vec<Vec<Value>>>>,
    request_ids: Arc<Mutex<Vec<Option<String>>>>,
}

async fn fake_predict(
    State(state): State<FakeState>,
    headers: HeaderMap,
    Json(request): Json<WorkerPredictRequest>,
) -> (StatusCode, Json<Value>) {
    let expected = format!("Bearer {PREDICT_SECRET}");
    if headers.get(AUTHORIZATION).map(|v| v.as_bytes()) != Some(expected.as_bytes()) {
        let refusal = json!({"error": "UnauthorizedError", "message": "no predict secret"});
        return (StatusCode::FORBIDDEN, Json(refusal));
    }
    state.received.lock().unwrap().push(request.queries.clone());
    let request_id = headers
        .get("x-request-id")
        .map(|id| id.to_str().unwrap().to_owned());
    state.request_ids.lock().unwrap().push(request_id);
    tokio::time::sleep(state.delay).await;
    let (status, body) = (state.answer)(&request.queries);
    (StatusCode::from_u16(status).unwrap(), Json(body))
}

impl FakeWorker {
    async fn start(
        delay: Duration,
        answer: impl Fn(&[Value]) -> (u16, Value) + Send + Sync + 'static,
    ) -> FakeWorker {
        let received = Arc::new(Mutex::new(Vec::new()));
        let request_ids = Arc::new(Mutex::new(Vec::new()));
        let state = FakeState {
            delay,
            answer: Arc::new(answer),
            received: received.clone(),
            request_ids: request_ids.clone(),
        };
        let app = Router::new()
            .route("/predict", post(fake_predict))
            .with_state(state);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FakeWorker {
            url,
            received,
            request_ids,
            server,
        }
    }

    /// A worker whose model fails on every batch: a 500 in the envelope real workers answer
    /// with (crates/rafiki-worker/src/inference.rs).
    async fn model_error(message: &str) -> FakeWorker {
        let body = json!({"error": "InternalServerError", "message": message});
        Self::start(Duration::ZERO, move |_| (500, body.clone())).await
    }

    /// A worker that answers every query with `prediction`.
    async fn constant(prediction: Value) -> FakeWorker {
        Self::start(Duration::ZERO, move |queries| {
            (
                200,
                json!({"predictions": vec![prediction.clone(); queries.len()]}),
            )
        })
        .await
    }

    fn received(&self) -> Vec<Vec<Value>> {
        self.received.lock().unwrap().clone()
    }

    /// The `x-request-id` of each request received, in order.
    fn request_ids(&self) -> Vec<Option<String>> {
        self.request_ids.lock().unwrap().clone()
    }
}

struct RunningPredictor {
    url: String,
    task: JoinHandle<Result<Finished, PredictorError>>,
}

impl Drop for RunningPredictor {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn predictor_config(admin_url: &str, timeout_ms: u64) -> PredictorConfig {
    let mut config = PredictorConfig::from_lookup(|name| match name {
        "RAFIKI_ADMIN_URL" => Some(admin_url.to_owned()),
        "RAFIKI_SERVICE_TOKEN" => Some(PREDICTOR_TOKEN.to_owned()),
        "RAFIKI_PREDICT_SECRET" => Some(PREDICT_SECRET.to_owned()),
        "RAFIKI_PORT" => Some("0".to_owned()),
        "RAFIKI_PREDICT_TIMEOUT_MS" => Some(timeout_ms.to_string()),
        "RAFIKI_PREDICTOR_POLL_MS" => Some("50".to_owned()),
        _ => None,
    })
    .unwrap();
    config.service.retry = RetryPolicy {
        attempts: 3,
        initial_backoff: Duration::from_millis(20),
        max_backoff: Duration::from_millis(50),
    };
    config
}

/// Starts a predictor for `admin`'s job and waits until it has taken the job in.
async fn start_predictor(admin: &InferenceAdmin, timeout_ms: u64) -> RunningPredictor {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let config = predictor_config(&admin.url, timeout_ms);
    let task = tokio::spawn(async move { rafiki_predictor::run_on(&config, listener).await });
    let predictor = RunningPredictor { url, task };
    polls_pass(admin, 2).await;
    predictor
}

/// Waits until the predictor asked for its job `n` more times (so it saw the latest state).
async fn polls_pass(admin: &InferenceAdmin, n: usize) {
    let target = admin.with(|s| s.predictor_polls) + n;
    let deadline = Instant::now() + Duration::from_secs(30);
    while admin.with(|s| s.predictor_polls) < target {
        assert!(Instant::now() < deadline, "the predictor stopped polling");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Lists a worker serving at `url` as one of model `name`; returns its trial id.
fn add_model(admin: &InferenceAdmin, url: &str, name: &str, score: Option<f64>) -> String {
    let token = admin.add_serving(url, score);
    admin.with(|s| {
        let worker = s.worker_mut(&token);
        worker.job.model.name = name.to_owned();
        worker.job.trial_id.to_string()
    })
}

/// The URL of a port nothing listens on.
async fn closed_port_url() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    format!("http://{}", listener.local_addr().unwrap())
}

fn http() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().build().unwrap()
}

/// `POST /predict` with `body`: status, `Content-Type`, JSON answer.
async fn predict(url: &str, body: &str) -> (u16, String, Value) {
    let response = http()
        .post(format!("{url}/predict"))
        .header("content-type", "application/json")
        .body(body.to_owned())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_owned();
    (status, content_type, response.json().await.unwrap())
}

fn assert_close(actual: &Value, expected: &Value) {
    fn close(a: &Value, e: &Value) -> bool {
        match (a, e) {
            (Value::Array(a), Value::Array(e)) => {
                a.len() == e.len() && a.iter().zip(e).all(|(a, e)| close(a, e))
            }
            _ => match (a.as_f64(), e.as_f64()) {
                (Some(a), Some(e)) => (a - e).abs() < 1e-9,
                _ => a == e,
            },
        }
    }
    assert!(close(actual, expected), "{actual} != {expected}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn classification_probabilities_are_averaged_for_query_and_queries() {
    let admin = InferenceAdmin::start("TABULAR_CLASSIFICATION").await;
    let a = FakeWorker::constant(json!([0.2, 0.8])).await;
    let b = FakeWorker::constant(json!([0.6, 0.4])).await;
    admin.add_serving(&a.url, Some(0.9));
    admin.add_serving(&b.url, Some(0.1));
    let predictor = start_predictor(&admin, 2000).await;

    let (status, content_type, body) = predict(&predictor.url, r#"{"query": [1, 2]}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type, "application/json");
    assert_eq!(body["predictions"], json!([]));
    assert_close(&body["prediction"], &json!([0.4, 0.6]));

    let (status, _, body) =
        predict(&predictor.url, r#"{"queries": [[1, 2], [3, 4], [5, 6]]}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["prediction"], Value::Null);
    assert_close(
        &body["predictions"],
        &json!([[0.4, 0.6], [0.4, 0.6], [0.4, 0.6]]),
    );

    // Every worker got every query of each request, in one call.
    for worker in [&a, &b] {
        assert_eq!(
            worker.received(),
            [
                vec![json!([1, 2])],
                vec![json!([1, 2]), json!([3, 4]), json!([5, 6])]
            ]
        );
    }
    let (status, _, body) = predict(&predictor.url, r#"{"queries": []}"#).await;
    assert_eq!(
        (status, body),
        (200, json!({"prediction": null, "predictions": []}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_tasks_take_the_best_scoring_answer_and_follow_the_jobs_workers() {
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let low = FakeWorker::constant(json!(1.5)).await;
    let high = FakeWorker::constant(json!(2.5)).await;
    admin.add_serving(&low.url, Some(0.3));
    let best = admin.add_serving(&high.url, Some(0.9));
    let predictor = start_predictor(&admin, 2000).await;

    let (status, _, body) = predict(&predictor.url, r#"{"query": {"x": 1}}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body, json!({"prediction": 2.5, "predictions": []}));
    assert_eq!(low.received().len(), 1, "the other worker is asked too");

    admin.remove(&best);
    polls_pass(&admin, 2).await;
    let (_, _, body) = predict(&predictor.url, r#"{"queries": [1, 2]}"#).await;
    assert_eq!(body, json!({"prediction": null, "predictions": [1.5, 1.5]}));
    assert_eq!(high.received().len(), 1, "a worker that left is not asked");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_slow_and_malformed_workers_are_left_out() {
    let admin = InferenceAdmin::start("IMAGE_CLASSIFICATION").await;
    let good = FakeWorker::constant(json!([0.1, 0.9])).await;
    let failing = FakeWorker::start(Duration::ZERO, |_| {
        (
            500,
            json!({"error": "InternalServerError", "message": "model error"}),
        )
    })
    .await;
    let slow = FakeWorker::start(Duration::from_secs(5), |queries| {
        (
            200,
            json!({"predictions": vec![json!([1.0, 0.0]); queries.len()]}),
        )
    })
    .await;
    let short = FakeWorker::start(Duration::ZERO, |_| {
        (200, json!({"predictions": [[1.0, 0.0]]}))
    })
    .await;
    let garbage = FakeWorker::start(Duration::ZERO, |_| (200, json!({"no": "predictions"}))).await;
    let three_classes = FakeWorker::constant(json!([0.2, 0.2, 0.6])).await;
    admin.add_serving(&failing.url, Some(1.0));
    admin.add_serving(&slow.url, Some(1.0));
    admin.add_serving(&short.url, Some(1.0));
    admin.add_serving(&garbage.url, Some(1.0));
    admin.add_serving(&three_classes.url, Some(0.5));
    admin.add_serving(&good.url, Some(0.9));
    let predictor = start_predictor(&admin, 300).await;

    let started = Instant::now();
    let (status, _, body) = predict(&predictor.url, r#"{"queries": ["a", "b"]}"#).await;
    let took = started.elapsed();
    assert_eq!(status, 200, "{body}");
    assert_close(&body["predictions"], &json!([[0.1, 0.9], [0.1, 0.9]]));
    assert!(
        took < Duration::from_secs(2),
        "a slow worker held the request for {took:?}"
    );
    assert_eq!(slow.received().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_answer_at_all_is_a_503_service_deployment_error() {
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let predictor = start_predictor(&admin, 300).await;
    // No worker serves yet.
    let (status, content_type, body) = predict(&predictor.url, r#"{"query": 1}"#).await;
    assert_eq!((status, content_type.as_str()), (503, "application/json"));
    assert_eq!(body["error"], "ServiceDeploymentError");

    let failing = FakeWorker::start(Duration::ZERO, |_| (500, json!({}))).await;
    let slow = FakeWorker::start(Duration::from_secs(5), |_| (200, json!({}))).await;
    admin.add_serving(&failing.url, Some(0.5));
    admin.add_serving(&slow.url, None);
    polls_pass(&admin, 2).await;
    let (status, content_type, body) = predict(&predictor.url, r#"{"query": 1}"#).await;
    assert_eq!((status, content_type.as_str()), (503, "application/json"));
    assert_eq!(body["error"], "ServiceDeploymentError");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("2 inference workers"), "{message}");
    // Which way each failed, without the workers' internals (a 500 without the envelope is
    // not a model's error).
    assert!(message.contains("1 did not answer in time"), "{message}");
    assert!(
        message.contains("1 answered with an error or the wrong number of predictions"),
        "{message}"
    );

    let closed = closed_port_url().await;
    admin.add_serving(&closed, None);
    polls_pass(&admin, 2).await;
    let (status, _, body) = predict(&predictor.url, r#"{"query": 1}"#).await;
    assert_eq!(status, 503, "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("3 inference workers"), "{message}");
    assert!(message.contains("1 could not be reached"), "{message}");
    assert!(
        !message.contains(&closed[7..]),
        "no worker address: {message}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_error_in_every_worker_is_a_500_naming_each_model_and_its_error() {
    let admin = InferenceAdmin::start("TABULAR_CLASSIFICATION").await;
    let xgb = FakeWorker::model_error(
        "Model.predict() raised ValueError: feature_names mismatch\nsecond line of a crash",
    )
    .await;
    let long = "x".repeat(1000);
    let mlp = FakeWorker::model_error(&format!("Model.predict() raised KeyError: {long}")).await;
    let xgb_trial = add_model(&admin, &xgb.url, "xgb", Some(0.9));
    let mlp_trial = add_model(&admin, &mlp.url, "mlp", Some(0.8));
    let predictor = start_predictor(&admin, 2000).await;

    let (status, content_type, body) = predict(&predictor.url, r#"{"query": {"a": 1}}"#).await;
    assert_eq!((status, content_type.as_str()), (500, "application/json"));
    assert_eq!(body["error"], "InternalServerError", "{body}");
    let message = body["message"].as_str().unwrap();
    assert!(
        message.starts_with(&format!(
            "Model \"xgb\" (trial {xgb_trial}) failed on this request: \
             Model.predict() raised ValueError: feature_names mismatch; "
        )),
        "{message}"
    );
    assert!(
        message.contains(&format!(
            "Model \"mlp\" (trial {mlp_trial}) failed on this request: \
             Model.predict() raised KeyError: xxx"
        )),
        "{message}"
    );
    // One line per model, and a bounded one.
    assert!(!message.contains("second line"), "{message}");
    assert!(!message.contains('\n'), "{message}");
    assert!(message.len() < 800, "{} characters", message.len());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn model_errors_win_over_timeouts_and_any_whole_answer_wins_over_both() {
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let failing = FakeWorker::model_error("Model.predict() raised ValueError: bad query").await;
    let slow = FakeWorker::start(Duration::from_secs(5), |queries| {
        (200, json!({"predictions": vec![json!(1); queries.len()]}))
    })
    .await;
    let trial = add_model(&admin, &failing.url, "reg", Some(0.9));
    add_model(&admin, &slow.url, "slowpoke", Some(0.5));
    let predictor = start_predictor(&admin, 300).await;

    let (status, _, body) = predict(&predictor.url, r#"{"queries": [1, 2]}"#).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(body["error"], "InternalServerError");
    assert_eq!(
        body["message"],
        format!(
            "Model \"reg\" (trial {trial}) failed on this request: \
             Model.predict() raised ValueError: bad query (1 other inference worker gave no answer)"
        )
    );

    let good = FakeWorker::constant(json!(7)).await;
    add_model(&admin, &good.url, "good", Some(0.1));
    polls_pass(&admin, 2).await;
    let (status, _, body) = predict(&predictor.url, r#"{"queries": [1, 2]}"#).await;
    assert_eq!(
        (status, body),
        (200, json!({"prediction": null, "predictions": [7, 7]}))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_are_400_and_the_index_is_text() {
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let worker = FakeWorker::constant(json!(0)).await;
    admin.add_serving(&worker.url, None);
    let predictor = start_predictor(&admin, 2000).await;

    for body in [
        "not json",
        "[1, 2]",
        r#"{"q": 1}"#,
        r#"{"queries": 5}"#,
        r#"{"query": 1, "queries": [1]}"#,
        r#"{}"#,
    ] {
        let (status, content_type, envelope) = predict(&predictor.url, body).await;
        assert_eq!(status, 400, "{body}: {envelope}");
        assert_eq!(content_type, "application/json", "{body}");
        assert_eq!(envelope["error"], "InvalidRequestError", "{body}");
        assert!(envelope["message"].is_string());
    }
    assert!(worker.received().is_empty());

    let index = http().get(&predictor.url).send().await.unwrap();
    assert_eq!(index.status().as_u16(), 200);
    assert!(index.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert!(index.text().await.unwrap().contains("/predict"));

    let missing = http()
        .get(format!("{}/nothing", predictor.url))
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status().as_u16(), 404);
    let envelope: Value = missing.json().await.unwrap();
    assert_eq!(envelope["error"], "NotFoundError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_401_from_the_admin_ends_the_predictor() {
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let mut predictor = start_predictor(&admin, 2000).await;
    admin.with(|s| s.stopped = true);
    let finished = tokio::time::timeout(Duration::from_secs(10), &mut predictor.task)
        .await
        .expect("the predictor ends")
        .unwrap()
        .unwrap();
    assert_eq!(finished, Finished::Stopped);
}

/// The interpreter of `RAFIKI_PYTHON` when it can `import rafiki`; else prints why the test is
/// skipped.
fn python() -> Option<PathBuf> {
    let python = std::env::var("RAFIKI_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let works = StdCommand::new(&python)
        .args(["-c", "import rafiki"])
        .output()
        .is_ok_and(|o| o.status.success());
    if !works {
        eprintln!("SKIPPED: `{python}` cannot `import rafiki`; set RAFIKI_PYTHON");
    }
    works.then(|| PathBuf::from(python))
}

fn worker_config(
    admin_url: &str,
    token: &str,
    dir: &std::path::Path,
    python: &std::path::Path,
) -> WorkerConfig {
    WorkerConfig::from_lookup(|name| match name {
        "RAFIKI_ADMIN_URL" => Some(admin_url.to_owned()),
        "RAFIKI_SERVICE_TOKEN" => Some(token.to_owned()),
        "RAFIKI_WORK_DIR" => Some(dir.join(token).display().to_string()),
        "RAFIKI_PYTHON" => Some(python.display().to_string()),
        _ => None,
    })
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_inference_workers_are_averaged_end_to_end() {
    let Some(python) = python() else { return };
    let dir = tempfile::tempdir().unwrap();
    let admin = InferenceAdmin::start("TABULAR_CLASSIFICATION").await;
    let mut workers = Vec::new();
    for (bias, score) in [(0.2, 0.7), (0.6, 0.8)] {
        let token = admin.add_worker(WorkerSpec {
            model_file: SCALER.as_bytes().to_vec(),
            model_class: "Scaler".to_owned(),
            knobs: json!({"scale": 1.0}),
            params: encode_params(&python, &format!("{{'bias': {bias}}}")),
            score: Some(score),
        });
        let worker = RunningWorker::start(worker_config(&admin.url, &token, dir.path(), &python));
        admin.set_url(&token, &worker.url);
        workers.push((token, worker));
    }
    let predictor = start_predictor(&admin, 5000).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    while !admin.with(|s| s.workers.iter().all(|w| w.ready)) {
        assert!(Instant::now() < deadline, "the workers did not get ready");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    polls_pass(&admin, 2).await;

    let (status, _, body) = predict(&predictor.url, r#"{"query": "probs"}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_close(&body["prediction"], &json!([0.4, 0.6]));

    // Concurrent requests of the two shapes, each answered with its own queries' mean.
    let requests: Vec<_> = (0..16)
        .map(|i| {
            let url = predictor.url.clone();
            tokio::spawn(async move {
                let body = if i % 2 == 0 {
                    json!({"query": i}).to_string()
                } else {
                    json!({"queries": [i, "probs", i + 1]}).to_string()
                };
                (i, predict(&url, &body).await)
            })
        })
        .collect();
    for request in requests {
        let (i, (status, _, body)) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let i = i as f64;
        // Each worker answers q + bias; the mean is q + 0.4.
        if i as i64 % 2 == 0 {
            assert_close(&body["prediction"], &json!(i + 0.4));
        } else {
            assert_close(&body["predictions"], &json!([i + 0.4, [0.4, 0.6], i + 1.4]));
        }
    }

    // A worker that went away is left out; the other one still answers.
    let (status, _, body) = predict(&predictor.url, r#"{"query": 1.0}"#).await;
    assert_eq!(status, 200, "{body}");
    drop(workers.remove(0));
    let (status, _, body) = predict(&predictor.url, r#"{"query": 1.0}"#).await;
    assert_eq!(status, 200, "{body}");
    assert_close(&body["prediction"], &json!(1.6));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exits_zero_on_sigterm_and_on_a_401_and_two_on_bad_settings() {
    use nix::sys::signal::{kill, Signal};
    use nix::unistd::Pid;

    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let dir = tempfile::tempdir().unwrap();
    let log_path = dir.path().join("predictor.log");
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let binary = || {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rafiki-predictor"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .unwrap();
        command
            .stderr(log)
            .env("RAFIKI_ADMIN_URL", &admin.url)
            .env("RAFIKI_SERVICE_TOKEN", PREDICTOR_TOKEN)
            .env("RAFIKI_PREDICT_SECRET", PREDICT_SECRET)
            .env("RAFIKI_SERVICE_TYPE", "PREDICT")
            .env("RAFIKI_BIND_HOST", "127.0.0.1")
            .env("RAFIKI_PORT", port.to_string())
            .kill_on_drop(true);
        command
    };
    let mut predictor = binary().spawn().unwrap();
    polls_pass(&admin, 2).await;
    let index = http()
        .get(format!("http://127.0.0.1:{port}/"))
        .send()
        .await
        .unwrap();
    assert_eq!(index.status().as_u16(), 200);
    kill(
        Pid::from_raw(predictor.id().unwrap() as i32),
        Signal::SIGTERM,
    )
    .unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), predictor.wait())
        .await
        .expect("the predictor exits promptly after SIGTERM")
        .unwrap();
    let log = || std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(status.code(), Some(0), "{}", log());
    assert!(log().contains("SIGTERM"), "{}", log());

    admin.with(|s| s.stopped = true);
    let status = tokio::time::timeout(Duration::from_secs(30), binary().status())
        .await
        .expect("a stopped predictor exits")
        .unwrap();
    assert_eq!(status.code(), Some(0), "{}", log());

    let status = binary().env_remove("RAFIKI_PORT").status().await.unwrap();
    assert_eq!(status.code(), Some(2));
    let status = binary()
        .env("RAFIKI_LOG_FORMAT", "xml")
        .status()
        .await
        .unwrap();
    assert_eq!(status.code(), Some(2));
    assert!(
        log().contains("RAFIKI_LOG_FORMAT must be `text` or `json`, not `xml`"),
        "{}",
        log()
    );
}

/// Every answer names its request's id (the client's when sane, else a fresh UUID v4), and
/// every worker is asked under that id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_ids_are_echoed_or_made_and_sent_on_to_the_workers() {
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let one = FakeWorker::constant(json!(1.0)).await;
    let two = FakeWorker::constant(json!(2.0)).await;
    admin.add_serving(&one.url, Some(0.3));
    admin.add_serving(&two.url, Some(0.9));
    let predictor = start_predictor(&admin, 2000).await;
    let ask = |id: Option<&str>| {
        let mut req = http()
            .post(format!("{}/predict", predictor.url))
            .header("content-type", "application/json")
            .body(r#"{"query": 1}"#);
        if let Some(id) = id {
            req = req.header("x-request-id", id);
        }
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status().as_u16(), 200);
            res.headers()["x-request-id"].to_str().unwrap().to_owned()
        }
    };
    let is_fresh = |id: &str| uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 4);

    let made = ask(None).await;
    assert!(is_fresh(&made), "{made}");
    assert_eq!(ask(Some("console-42")).await, "console-42");
    let long = "x".repeat(129);
    for insane in ["two words", long.as_str()] {
        let replaced = ask(Some(insane)).await;
        assert!(is_fresh(&replaced), "{insane:?} gave {replaced}");
    }
    for worker in [&one, &two] {
        let ids = worker.request_ids();
        assert_eq!(ids.len(), 4, "{ids:?}");
        assert_eq!(ids[0].as_deref(), Some(made.as_str()));
        assert_eq!(ids[1].as_deref(), Some("console-42"));
        assert!(ids[2..]
            .iter()
            .all(|id| id.as_deref().is_some_and(is_fresh)));
    }

    // The index and unknown routes name one too.
    for path in ["/", "/nowhere"] {
        let res = http()
            .get(format!("{}{path}", predictor.url))
            .send()
            .await
            .unwrap();
        assert!(is_fresh(res.headers()["x-request-id"].to_str().unwrap()));
    }
}

/// `GET /metrics` of the predictor at `url`, as Prometheus asks for it, parsed.
async fn scrape(url: &str) -> rafiki_testing::metrics::Metrics {
    let response = http()
        .get(format!("{url}/metrics"))
        .header("accept", "application/openmetrics-text;version=1.0.0")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-type"],
        "application/openmetrics-text; version=1.0.0; charset=utf-8"
    );
    rafiki_testing::metrics::Metrics::parse(&response.text().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_requests_batches_and_each_members_calls_and_failures() {
    let admin = InferenceAdmin::start("IMAGE_CLASSIFICATION").await;
    let good = FakeWorker::constant(json!([0.1, 0.9])).await;
    let failing = FakeWorker::model_error("model error").await;
    let slow = FakeWorker::start(Duration::from_secs(5), |queries| {
        (
            200,
            json!({"predictions": vec![json!([1.0, 0.0]); queries.len()]}),
        )
    })
    .await;
    // Members 0, 1 and 2, in the admin's order.
    add_model(&admin, &good.url, "good-model", Some(0.9));
    add_model(&admin, &failing.url, "secret-model-name", Some(0.5));
    add_model(&admin, &slow.url, "slow", Some(0.1));
    let predictor = start_predictor(&admin, 300).await;

    let (status, _, body) = predict(&predictor.url, r#"{"queries": ["a", "b", "c"]}"#).await;
    assert_eq!(status, 200, "{body}");
    let (status, _, _) = predict(&predictor.url, r#"{"query": "private query"}"#).await;
    assert_eq!(status, 200);
    let (status, _, _) = predict(&predictor.url, "not json").await;
    assert_eq!(status, 400);
    let res = http()
        .get(format!("{}/nope/{}", predictor.url, uuid::Uuid::new_v4()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);

    let metrics = scrape(&predictor.url).await;
    let requests = "rafiki_predictor_requests";
    let ok = [("route", "/predict"), ("status", "200")];
    assert_eq!(metrics.value(requests, &ok), 2.0);
    let bad = [("route", "/predict"), ("status", "400")];
    assert_eq!(metrics.value(requests, &bad), 1.0);
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(metrics.value(requests, &unmatched), 1.0);
    assert_eq!(
        metrics.observations(
            "rafiki_predictor_request_duration_seconds",
            &[("route", "/predict")]
        ),
        3
    );
    // Two requests whose body parsed: batches of 3 queries and 1.
    assert_eq!(metrics.observations("rafiki_predictor_batch_size", &[]), 2);
    let worker_seconds = "rafiki_predictor_worker_duration_seconds";
    for worker in ["0", "1", "2"] {
        assert_eq!(
            metrics.observations(worker_seconds, &[("worker", worker)]),
            2
        );
    }
    let failures = "rafiki_predictor_worker_failures";
    assert_eq!(metrics.value(failures, &[("worker", "0")]), 0.0);
    assert_eq!(
        metrics.value(failures, &[("worker", "1"), ("kind", "error")]),
        2.0
    );
    assert_eq!(
        metrics.value(failures, &[("worker", "2"), ("kind", "timeout")]),
        2.0
    );
    // No id, model name, URL or query is a label value.
    let text = http()
        .get(format!("{}/metrics", predictor.url))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for secret in [
        "secret-model-name",
        "private query",
        "nope",
        good.url.as_str(),
    ] {
        assert!(!text.contains(secret), "{secret} in\n{text}");
    }
    assert!(
        text.contains("# TYPE rafiki_predictor_requests_total counter"),
        "{text}"
    );
}
