//! Inference mode against the in-test admin, with the real Python runtime: loading a trial's
//! model, serving and batching predictions, model errors and crashes, failures to load, and
//! the binary's exit codes.

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rafiki_worker::config::BatchSettings;
use rafiki_worker::InferenceExit;
use serde_json::{json, Value};
use support::inference::{
    encode_params, InferenceAdmin, RunningWorker, WorkerSpec, PREDICT_SECRET, SCALER,
};

/// A client that sends the job's predict secret, as the job's predictor does.
fn http() -> reqwest::Client {
    let secret = format!("Bearer {PREDICT_SECRET}");
    reqwest::Client::builder()
        .no_proxy()
        .default_headers(reqwest::header::HeaderMap::from_iter([(
            reqwest::header::AUTHORIZATION,
            secret.parse().unwrap(),
        )]))
        .build()
        .unwrap()
}

fn scaler(python: &Path, scale: f64, params: &str) -> WorkerSpec {
    WorkerSpec {
        model_file: SCALER.as_bytes().to_vec(),
        model_class: "Scaler".to_owned(),
        knobs: json!({"scale": scale}),
        params: encode_params(python, params),
        score: Some(0.5),
    }
}

/// Starts an inference worker with `token` on a fresh port; returns its base URL.
fn start_worker(
    admin: &InferenceAdmin,
    token: &str,
    python: &Path,
    dir: &Path,
    batching: BatchSettings,
) -> (String, RunningWorker) {
    let mut config = support::worker_config(&admin.url, dir, python);
    config.service.service_token = token.to_owned().into();
    config.batching = batching;
    let worker = RunningWorker::start(config);
    admin.set_url(token, &worker.url);
    (worker.url.clone(), worker)
}

async fn wait_ready(admin: &InferenceAdmin, token: &str) {
    support::eventually(Duration::from_secs(60), "the worker to be ready", || {
        admin.with(|s| {
            let worker = s.worker(token);
            assert!(worker.failures.is_empty(), "{:?}", worker.failures);
            worker.ready
        })
    })
    .await;
}

async fn post_queries(url: &str, queries: Value) -> (u16, Option<String>, Value) {
    let response = http()
        .post(format!("{url}/predict"))
        .json(&json!({ "queries": queries }))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, content_type, response.json().await.unwrap())
}

fn batch_sizes(path: &Path) -> Vec<usize> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| l.parse().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_trials_model_serves_with_its_knobs_and_parameters() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let token = admin.add_worker(scaler(&python, 2.0, "{'bias': 0.5}"));
    let (url, worker) = start_worker(
        &admin,
        &token,
        &python,
        dir.path(),
        BatchSettings::default(),
    );
    wait_ready(&admin, &token).await;

    let (status, content_type, body) = post_queries(&url, json!([1, 2, 3])).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body, json!({"predictions": [2.5, 4.5, 6.5]}));
    let (status, _, body) = post_queries(&url, json!([])).await;
    assert_eq!((status, body), (200, json!({"predictions": []})));

    let health = http().get(format!("{url}/health")).send().await.unwrap();
    assert_eq!(health.status().as_u16(), 200);

    // The worker fetched its job, the model file and the trial's parameters, reported its
    // dependencies (none: the interpreter served), then said ready.
    let (model_id, trial_id) = admin.with(|s| {
        let job = &s.worker(&token).job;
        (job.model.id, job.trial_id)
    });
    admin.with(|s| {
        assert_eq!(
            s.calls,
            [
                "GET /internal/inference/job".to_owned(),
                format!("GET /internal/models/{model_id}/file"),
                format!("GET /internal/trials/{trial_id}/parameters"),
                "POST /internal/environment".to_owned(),
                "POST /internal/inference/ready".to_owned(),
            ]
        )
    });
    assert!(!worker.has_ended());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bodies_and_unknown_routes_get_the_error_envelope() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let token = admin.add_worker(scaler(&python, 1.0, "{'bias': 0.0}"));
    let (url, _worker) = start_worker(
        &admin,
        &token,
        &python,
        dir.path(),
        BatchSettings::default(),
    );
    wait_ready(&admin, &token).await;

    for body in ["not json", r#"{"query": 1}"#, r#"{"queries": 5}"#] {
        let response = http()
            .post(format!("{url}/predict"))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 400, "{body}");
        assert_eq!(response.headers()["content-type"], "application/json");
        let envelope: Value = response.json().await.unwrap();
        assert_eq!(envelope["error"], "InvalidRequestError", "{body}");
        assert!(envelope["message"].as_str().unwrap().contains("queries"));
    }
    let response = http().get(format!("{url}/nothing")).send().await.unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let envelope: Value = response.json().await.unwrap();
    assert_eq!(envelope["error"], "NotFoundError");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_without_the_jobs_predict_secret_are_refused() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let calls = support::scratch_file(dir.path(), "calls");
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let params = format!(
        "{{'bias': 0.0, 'calls_file': {:?}}}",
        calls.display().to_string()
    );
    let token = admin.add_worker(scaler(&python, 1.0, &params));
    let (url, _worker) = start_worker(
        &admin,
        &token,
        &python,
        dir.path(),
        BatchSettings::default(),
    );
    wait_ready(&admin, &token).await;

    let stranger = reqwest::Client::builder().no_proxy().build().unwrap();
    let wrong = format!("Bearer {}", PREDICT_SECRET.replace('s', "z"));
    let attempts = [
        (None, 401, "InvalidAuthorizationHeaderError"),
        (
            Some(format!("Basic {PREDICT_SECRET}")),
            401,
            "InvalidAuthorizationHeaderError",
        ),
        (Some(wrong), 403, "UnauthorizedError"),
        (
            Some(format!("Bearer {PREDICT_SECRET}x")),
            403,
            "UnauthorizedError",
        ),
    ];
    for (authorization, status, name) in attempts {
        for (method, path) in [
            ("POST", "/predict"),
            ("GET", "/health"),
            ("GET", "/nothing"),
        ] {
            let mut request = stranger
                .request(method.parse().unwrap(), format!("{url}{path}"))
                .json(&json!({"queries": [1]}));
            if let Some(value) = &authorization {
                request = request.header("authorization", value);
            }
            let response = request.send().await.unwrap();
            assert_eq!(
                response.status().as_u16(),
                status,
                "{path} {authorization:?}"
            );
            // Refusals name a request id too (a fresh one: none was sent).
            let id = response.headers()["x-request-id"].to_str().unwrap();
            assert!(uuid::Uuid::parse_str(id).is_ok(), "{path}: {id}");
            let envelope: Value = response.json().await.unwrap();
            assert_eq!(envelope["error"], name, "{path} {authorization:?}");
        }
    }
    assert!(
        batch_sizes(&calls).is_empty(),
        "no refused request reached the model"
    );
    let (status, _, body) = post_queries(&url, json!([3])).await;
    assert_eq!((status, body), (200, json!({"predictions": [3.0]})));
    assert_eq!(batch_sizes(&calls), [1]);
    // The predictor's request id is kept.
    let answer = http()
        .post(format!("{url}/predict"))
        .header("x-request-id", "predictor-7")
        .json(&json!({"queries": [4]}))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status().as_u16(), 200);
    assert_eq!(answer.headers()["x-request-id"], "predictor-7");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_batched_into_few_predict_calls_and_answered_in_order() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let calls = support::scratch_file(dir.path(), "calls.txt");
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let params = format!(
        "{{'bias': 0.5, 'calls_file': {:?}}}",
        calls.display().to_string()
    );
    let token = admin.add_worker(scaler(&python, 10.0, &params));
    let batching = BatchSettings {
        max_batch_size: 16,
        max_wait: Duration::from_millis(2),
    };
    let (url, _worker) = start_worker(&admin, &token, &python, dir.path(), batching);
    wait_ready(&admin, &token).await;

    // Keep the model busy for a second so that the requests below queue up meanwhile.
    let busy = tokio::spawn({
        let url = url.clone();
        async move { post_queries(&url, json!(["sleep"])).await }
    });
    support::eventually(Duration::from_secs(10), "the busy predict call", || {
        batch_sizes(&calls) == [1]
    })
    .await;
    let requests: Vec<_> = (0..20)
        .map(|i| {
            let url = url.clone();
            tokio::spawn(async move { post_queries(&url, json!([i * 2, i * 2 + 1])).await })
        })
        .collect();
    for (i, request) in requests.into_iter().enumerate() {
        let (status, _, body) = request.await.unwrap();
        assert_eq!(status, 200, "{body}");
        let (a, b) = ((i * 2) as f64, (i * 2 + 1) as f64);
        assert_eq!(
            body,
            json!({"predictions": [a * 10.0 + 0.5, b * 10.0 + 0.5]}),
            "request {i}"
        );
    }
    assert_eq!(busy.await.unwrap().2, json!({"predictions": [0.5]}));

    let sizes = batch_sizes(&calls);
    let after_busy = &sizes[1..];
    assert_eq!(after_busy.iter().sum::<usize>(), 40, "{sizes:?}");
    assert!(
        after_busy.iter().all(|&n| n <= 16),
        "a batch over the maximum: {sizes:?}"
    );
    // 20 requests of 2 queries in batches of at most 16 queries: 3 calls when everything had
    // queued behind the busy call; a few more if some requests came late.
    assert!(
        (3..=8).contains(&after_busy.len()),
        "20 requests took {} predict calls: {sizes:?}",
        after_busy.len()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_model_error_fails_its_batch_with_500_and_the_worker_keeps_serving() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = support::scratch_file(dir.path(), "model.pid");
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let params = format!(
        "{{'bias': 1.0, 'pid_file': {:?}}}",
        pid_file.display().to_string()
    );
    let token = admin.add_worker(scaler(&python, 3.0, &params));
    let (url, worker) = start_worker(
        &admin,
        &token,
        &python,
        dir.path(),
        BatchSettings::default(),
    );
    wait_ready(&admin, &token).await;

    let (status, content_type, body) = post_queries(&url, json!([1, "boom"])).await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(content_type.as_deref(), Some("application/json"));
    assert_eq!(body["error"], "InternalServerError");
    let message = body["message"].as_str().unwrap();
    assert!(message.contains("boom is not a number"), "{message}");
    let (status, _, body) = post_queries(&url, json!([2])).await;
    assert_eq!((status, body), (200, json!({"predictions": [7.0]})));

    // A child that dies fails its batch; a fresh one serves the next request.
    let first_pid = std::fs::read_to_string(&pid_file).unwrap();
    let (status, _, body) = post_queries(&url, json!(["crash"])).await;
    assert_eq!(status, 500, "{body}");
    assert!(body["message"].as_str().unwrap().contains("died"), "{body}");
    let (status, _, body) = post_queries(&url, json!([0])).await;
    assert_eq!((status, body), (200, json!({"predictions": [1.0]})));
    assert_ne!(std::fs::read_to_string(&pid_file).unwrap(), first_pid);

    assert!(!worker.has_ended());
    admin.with(|s| assert!(s.worker(&token).failures.is_empty()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parameters_the_model_refuses_are_reported_and_the_worker_ends() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let token = admin.add_worker(scaler(&python, 1.0, "{'bias': 0.0, 'refuse': True}"));
    let (url, worker) = start_worker(
        &admin,
        &token,
        &python,
        dir.path(),
        BatchSettings::default(),
    );
    let exit = worker.ended(Duration::from_secs(60)).await.unwrap();
    let InferenceExit::Failed { error } = exit else {
        panic!("expected a failure, got {exit:?}");
    };
    assert!(
        error.contains("these parameters belong to another model"),
        "{error}"
    );
    assert!(error.contains("Traceback"), "{error}");
    admin.with(|s| {
        let worker = s.worker(&token);
        assert_eq!(worker.failures, std::slice::from_ref(&error));
        assert!(!worker.ready);
    });
    // Nothing listens any more.
    assert!(http().get(format!("{url}/health")).send().await.is_err());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_class_that_does_not_load_is_reported() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let mut spec = scaler(&python, 1.0, "{'bias': 0.0}");
    spec.model_class = "Missing".to_owned();
    let token = admin.add_worker(spec);
    let (_url, worker) = start_worker(
        &admin,
        &token,
        &python,
        dir.path(),
        BatchSettings::default(),
    );
    let exit = worker.ended(Duration::from_secs(60)).await.unwrap();
    let InferenceExit::Failed { error } = exit else {
        panic!("expected a failure, got {exit:?}");
    };
    assert!(error.contains("Missing"), "{error}");
    admin.with(|s| assert_eq!(s.worker(&token).failures, std::slice::from_ref(&error)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_interpreter_without_rafiki_is_reported() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let token = admin.add_worker(scaler(&python, 1.0, "{'bias': 0.0}"));
    let without_rafiki = support::python_without_rafiki(dir.path());
    let (_url, worker) = start_worker(
        &admin,
        &token,
        &without_rafiki,
        dir.path(),
        BatchSettings::default(),
    );
    let exit = worker.ended(Duration::from_secs(60)).await.unwrap();
    let InferenceExit::Failed { error } = exit else {
        panic!("expected a failure, got {exit:?}");
    };
    assert!(
        error.starts_with("cannot start the model runtime with "),
        "{error}"
    );
    assert!(error.contains("No module named 'rafiki'"), "{error}");
    admin.with(|s| {
        let worker = s.worker(&token);
        assert_eq!(worker.failures, std::slice::from_ref(&error));
        assert!(!worker.ready);
    });
}

#[tokio::test]
async fn a_stopped_service_ends_quietly() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let token = admin.add_worker(scaler(&python, 1.0, "{'bias': 0.0}"));
    admin.with(|s| s.stopped = true);
    let (_url, worker) = start_worker(
        &admin,
        &token,
        &python,
        dir.path(),
        BatchSettings::default(),
    );
    assert_eq!(
        worker.ended(Duration::from_secs(60)).await.unwrap(),
        InferenceExit::Stopped
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn alive(pid: i32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => !stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_serves_until_sigterm_then_kills_the_model_and_exits_zero() {
    let python = require_python!();
    let dir = tempfile::tempdir().unwrap();
    let pid_file = support::scratch_file(dir.path(), "model.pid");
    let admin = InferenceAdmin::start("TABULAR_REGRESSION").await;
    let params = format!(
        "{{'bias': 0.0, 'pid_file': {:?}}}",
        pid_file.display().to_string()
    );
    let token = admin.add_worker(scaler(&python, 2.0, &params));
    let port = free_port();
    admin.set_url(&token, &format!("http://127.0.0.1:{port}"));
    let log_path = dir.path().join("worker.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut worker = tokio::process::Command::new(env!("CARGO_BIN_EXE_rafiki-worker"))
        .stderr(log)
        .env("RAFIKI_ADMIN_URL", &admin.url)
        .env("RAFIKI_SERVICE_TOKEN", &token)
        .env("RAFIKI_SERVICE_TYPE", "INFERENCE")
        .env("RAFIKI_WORK_DIR", dir.path().join("work"))
        .env("RAFIKI_PYTHON", &python)
        .env("RAFIKI_BIND_HOST", "127.0.0.1")
        .env("RAFIKI_PORT", port.to_string())
        .env("RAFIKI_PREDICT_SECRET", PREDICT_SECRET)
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    wait_ready(&admin, &token).await;
    let url = format!("http://127.0.0.1:{port}");
    let (status, _, body) = post_queries(&url, json!([4])).await;
    assert_eq!((status, body), (200, json!({"predictions": [8.0]})));

    let model: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(alive(model));
    let started = Instant::now();
    kill(Pid::from_raw(worker.id().unwrap() as i32), Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(Duration::from_secs(10), worker.wait())
        .await
        .expect("the worker exits promptly after SIGTERM")
        .unwrap();
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert_eq!(status.code(), Some(0), "{log}");
    assert!(started.elapsed() < Duration::from_secs(5), "{log}");
    support::eventually(Duration::from_secs(10), "the model to die", || {
        !alive(model)
    })
    .await;
}

#[tokio::test]
async fn inference_mode_without_a_port_or_a_predict_secret_exits_with_code_two() {
    let dir = tempfile::tempdir().unwrap();
    for (port, secret) in [(None, Some(PREDICT_SECRET)), (Some("8080"), None)] {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rafiki-worker"));
        command
            .arg("inference")
            .env("RAFIKI_ADMIN_URL", "http://127.0.0.1:9")
            .env("RAFIKI_SERVICE_TOKEN", "t")
            .env("RAFIKI_WORK_DIR", dir.path())
            .env_remove("RAFIKI_PORT")
            .env_remove("RAFIKI_PREDICT_SECRET");
        if let Some(port) = port {
            command.env("RAFIKI_PORT", port);
        }
        if let Some(secret) = secret {
            command.env("RAFIKI_PREDICT_SECRET", secret);
        }
        let output = command.output().await.unwrap();
        let log = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{log}");
        let missing = if port.is_none() {
            "RAFIKI_PORT"
        } else {
            "RAFIKI_PREDICT_SECRET"
        };
        assert!(log.contains(missing), "{log}");
    }
}
