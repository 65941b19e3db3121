//! An in-test admin for inference jobs: the calls of inference workers and of the predictor in
//! the internal API (`docs/internal-api.md`, "Inference workers" and "Predictors"), over
//! in-memory state, recording what the services sent. Also the test model they serve and a
//! helper that encodes parameters with the real codec.
//!
//! It stands in for rafiki-admin's internal inference routes: each worker has its own bearer
//! token and sees only its own model file and trial parameters (404 otherwise); the predictor's
//! token lists the workers that said ready, with their URL and score; once `stopped` every call
//! answers 401 with the error envelope. The predictor crate's tests include this file too, so it
//! depends on nothing else in `support`.
#![allow(dead_code)] // Each test binary uses a different part.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use axum::extract::{Path as UrlPath, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use rafiki_service::predict_secret::PredictSecret;
use rafiki_types::internal::{
    BlobRef, EnvironmentReport, InferenceWorkerJob, PredictorJob, PredictorWorker, WorkerFailure,
    WorkerModel,
};
use rafiki_worker::{inference, InferenceExit, TrainError, WorkerConfig};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;
use uuid::Uuid;

/// The predictor's bearer token.
pub const PREDICTOR_TOKEN: &str = "predictor-token-for-tests";
/// The inference job's predict secret that test workers require and test predictors send.
pub const PREDICT_SECRET: &str = "predict-secret-of-the-tests-inference-job";

/// [`PREDICT_SECRET`] as the worker and the predictor take it.
pub fn predict_secret() -> PredictSecret {
    PredictSecret::new(PREDICT_SECRET).unwrap()
}

/// A model for inference tests. Knob `scale`; parameters `bias` (a float), optionally
/// `calls_file` (each `predict` appends its batch size there), `pid_file` (its pid and a random
/// word are written there when the parameters load) and `refuse` (`load_parameters` raises). A query `q` is
/// answered with `q * scale + bias`; the query `"boom"` makes `predict` raise, `"crash"` ends
/// the interpreter, `"sleep"` sleeps 1 s and is answered with `bias`, and `"probs"` is
/// answered with the vector `[bias, 1 - bias]`.
pub const SCALER: &str = r#"
import os
import time
from rafiki.model import BaseModel, FloatKnob


class Scaler(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"scale": FloatKnob(0.0, 10.0)}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.scale = knobs["scale"]

    def train(self, dataset_path, shared_params=None, **train_args):
        pass

    def evaluate(self, dataset_path):
        return 0.0

    def dump_parameters(self):
        return {"bias": self.bias}

    def load_parameters(self, params):
        if params.get("refuse"):
            raise ValueError("these parameters belong to another model")
        self.bias = params["bias"]
        self.calls_file = params.get("calls_file")
        if params.get("pid_file"):
            with open(params["pid_file"], "w") as f:
                # Sandboxed runtimes all have the same pid in their own namespace; the
                # random part tells two processes apart.
                f.write(f"{os.getpid()} {os.urandom(8).hex()}")

    def predict(self, queries):
        if self.calls_file:
            with open(self.calls_file, "a") as f:
                f.write(f"{len(queries)}\n")
        answers = []
        for q in queries:
            if q == "boom":
                raise ValueError("boom is not a number")
            if q == "crash":
                os._exit(7)
            if q == "sleep":
                time.sleep(1.0)
                answers.append(self.bias)
            elif q == "probs":
                answers.append([self.bias, 1.0 - self.bias])
            else:
                answers.append(q * self.scale + self.bias)
        return answers
"#;

/// `python_dict` (a Python expression) encoded by `rafiki.params.encode_params`.
pub fn encode_params(python: &Path, python_dict: &str) -> Vec<u8> {
    let script = format!(
        "import sys\nfrom rafiki.params import encode_params\n\
         sys.stdout.buffer.write(encode_params({python_dict}))"
    );
    let output = Command::new(python).args(["-c", &script]).output().unwrap();
    assert!(
        output.status.success(),
        "encoding parameters failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// An inference worker (`inference::run_on`) running on a thread of its own. Its future is not
/// `Send` (the runtime driver's log sinks are not), so it gets its own tokio runtime there.
/// Dropping it stops the worker as SIGTERM would: the future is dropped, which kills the Python
/// child's process group.
pub struct RunningWorker {
    pub url: String,
    result: Option<oneshot::Receiver<Result<InferenceExit, TrainError>>>,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl RunningWorker {
    /// Starts a worker with `config` on a fresh port of 127.0.0.1.
    pub fn start(config: WorkerConfig) -> RunningWorker {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let (result_tx, result_rx) = oneshot::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .unwrap();
            let result = runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                let secret = predict_secret();
                tokio::select! {
                    result = inference::run_on(&config, &secret, listener) => Some(result),
                    _ = stop_rx => None,
                }
            });
            if let Some(result) = result {
                let _ = result_tx.send(result);
            }
            runtime.shutdown_timeout(std::time::Duration::from_secs(1));
        });
        RunningWorker {
            url,
            result: Some(result_rx),
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    /// Whether the worker's future has ended.
    pub fn has_ended(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Waits (up to `limit`) for the worker to end by itself, and returns how.
    pub async fn ended(mut self, limit: std::time::Duration) -> Result<InferenceExit, TrainError> {
        let result = self.result.take().unwrap();
        tokio::time::timeout(limit, result)
            .await
            .expect("the worker ends in time")
            .expect("the worker's thread reports its end")
    }
}

impl Drop for RunningWorker {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// What one inference worker serves.
pub struct WorkerSpec {
    pub model_file: Vec<u8>,
    pub model_class: String,
    pub knobs: Value,
    pub params: Vec<u8>,
    pub score: Option<f64>,
}

/// One inference worker as the admin knows it.
pub struct WorkerRecord {
    pub token: String,
    pub job: InferenceWorkerJob,
    pub model_file: Vec<u8>,
    pub params: Vec<u8>,
    pub score: Option<f64>,
    /// Where it listens (the test knows; the backend would).
    pub url: Option<String>,
    pub ready: bool,
    pub failures: Vec<String>,
    /// What its `POST /internal/environment` reported.
    pub environment: Option<EnvironmentReport>,
}

/// The admin's memory.
pub struct AdminState {
    pub inference_job_id: Uuid,
    pub task: String,
    pub workers: Vec<WorkerRecord>,
    /// Every call answers 401 from now on.
    pub stopped: bool,
    /// Every authorised call, `METHOD path`, in arrival order.
    pub calls: Vec<String>,
    pub predictor_polls: usize,
}

type Shared = Arc<Mutex<AdminState>>;

/// A running test admin.
pub struct InferenceAdmin {
    pub url: String,
    pub state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for InferenceAdmin {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn blob(id: Uuid, bytes: &[u8]) -> BlobRef {
    BlobRef {
        id,
        sha256: hex::encode(Sha256::digest(bytes)),
        size_bytes: bytes.len() as i64,
    }
}

impl InferenceAdmin {
    /// An admin of one inference job of `task`, with no workers yet.
    pub async fn start(task: &str) -> InferenceAdmin {
        let state = Arc::new(Mutex::new(AdminState {
            inference_job_id: Uuid::new_v4(),
            task: task.to_owned(),
            workers: Vec::new(),
            stopped: false,
            calls: Vec::new(),
            predictor_polls: 0,
        }));
        let app = Router::new()
            .route("/internal/inference/job", get(inference_job))
            .route("/internal/models/{id}/file", get(model_file))
            .route("/internal/trials/{id}/parameters", get(parameters))
            .route("/internal/inference/ready", post(ready))
            .route("/internal/inference/fail", post(fail))
            .route("/internal/environment", post(environment))
            .route("/internal/predictor/job", get(predictor_job))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        InferenceAdmin { url, state, server }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut AdminState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
    }

    /// Adds a worker that will fetch its job with the returned token.
    pub fn add_worker(&self, spec: WorkerSpec) -> String {
        self.with(|s| {
            let token = format!("worker-token-{}", s.workers.len());
            let model_id = Uuid::new_v4();
            let trial_id = Uuid::new_v4();
            let job = InferenceWorkerJob {
                service_id: Uuid::new_v4(),
                inference_job_id: s.inference_job_id,
                trial_id,
                task: s.task.clone(),
                model: WorkerModel {
                    id: model_id,
                    name: "test-model".to_owned(),
                    model_class: spec.model_class,
                    dependencies: Default::default(),
                    dependency_pins: None,
                    file: blob(model_id, &spec.model_file),
                },
                knobs: serde_json::from_value(spec.knobs).expect("knobs are an object"),
                parameters: blob(trial_id, &spec.params),
            };
            s.workers.push(WorkerRecord {
                token: token.clone(),
                job,
                model_file: spec.model_file,
                params: spec.params,
                score: spec.score,
                url: None,
                ready: false,
                failures: Vec::new(),
                environment: None,
            });
            token
        })
    }

    /// Sets where the worker of `token` listens.
    pub fn set_url(&self, token: &str, url: &str) {
        self.with(|s| s.worker_mut(token).url = Some(url.to_owned()));
    }

    /// Adds a worker that serves at `url` already (an in-test HTTP worker): the predictor
    /// lists it at once.
    pub fn add_serving(&self, url: &str, score: Option<f64>) -> String {
        let token = self.add_worker(WorkerSpec {
            model_file: Vec::new(),
            model_class: "NotLoaded".to_owned(),
            knobs: json!({}),
            params: Vec::new(),
            score,
        });
        self.with(|s| {
            let worker = s.worker_mut(&token);
            worker.url = Some(url.to_owned());
            worker.ready = true;
        });
        token
    }

    /// Gives the worker of `token` a model with these dependencies.
    pub fn set_dependencies(&self, token: &str, dependencies: &[(&str, &str)]) {
        self.with(|s| {
            s.worker_mut(token).job.model.dependencies = dependencies
                .iter()
                .map(|(name, version)| (name.to_string(), version.to_string()))
                .collect();
        });
    }

    /// Takes the worker of `token` out of the predictor's list.
    pub fn remove(&self, token: &str) {
        self.with(|s| s.workers.retain(|w| w.token != token));
    }
}

impl AdminState {
    pub fn worker(&self, token: &str) -> &WorkerRecord {
        self.workers
            .iter()
            .find(|w| w.token == token)
            .expect("no such worker")
    }

    pub fn worker_mut(&mut self, token: &str) -> &mut WorkerRecord {
        self.workers
            .iter_mut()
            .find(|w| w.token == token)
            .expect("no such worker")
    }
}

/// An error answer in the API's envelope.
pub struct Refusal(StatusCode, &'static str, String);

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = json!({"error": self.1, "message": self.2});
        (self.0, Json(body)).into_response()
    }
}

fn error(status: StatusCode, name: &'static str, message: impl Into<String>) -> Refusal {
    Refusal(status, name, message.into())
}

type Answer = Result<Response, Refusal>;

/// Who called: a worker (its index) or the predictor.
enum Caller {
    Worker(usize),
    Predictor,
}

/// Checks the token and records the call; the guard is the state to work on.
fn authorise<'a>(
    state: &'a Shared,
    headers: &HeaderMap,
    call: String,
) -> Result<(std::sync::MutexGuard<'a, AdminState>, Caller), Refusal> {
    let mut guard = state.lock().unwrap();
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    let caller = if presented == PREDICTOR_TOKEN {
        Some(Caller::Predictor)
    } else {
        guard
            .workers
            .iter()
            .position(|w| w.token == presented)
            .map(Caller::Worker)
    };
    match caller {
        Some(caller) if !guard.stopped => {
            guard.calls.push(call);
            Ok((guard, caller))
        }
        _ => Err(error(
            StatusCode::UNAUTHORIZED,
            "UnauthorizedError",
            "unknown or stopped service",
        )),
    }
}

fn forbidden() -> Refusal {
    error(
        StatusCode::FORBIDDEN,
        "UnauthorizedError",
        "wrong kind of service",
    )
}

fn worker_of(caller: Caller) -> Result<usize, Refusal> {
    match caller {
        Caller::Worker(i) => Ok(i),
        Caller::Predictor => Err(forbidden()),
    }
}

fn octets(bytes: Vec<u8>) -> Response {
    ([("content-type", "application/octet-stream")], bytes).into_response()
}

async fn inference_job(State(state): State<Shared>, headers: HeaderMap) -> Answer {
    let (s, caller) = authorise(&state, &headers, "GET /internal/inference/job".into())?;
    let i = worker_of(caller)?;
    Ok(Json(s.workers[i].job.clone()).into_response())
}

async fn model_file(
    State(state): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<Uuid>,
) -> Answer {
    let call = format!("GET /internal/models/{id}/file");
    let (s, caller) = authorise(&state, &headers, call)?;
    let worker = &s.workers[worker_of(caller)?];
    if worker.job.model.id != id {
        let message = "not this job's model";
        return Err(error(StatusCode::NOT_FOUND, "InvalidModelError", message));
    }
    Ok(octets(worker.model_file.clone()))
}

async fn parameters(
    State(state): State<Shared>,
    headers: HeaderMap,
    UrlPath(id): UrlPath<Uuid>,
) -> Answer {
    let call = format!("GET /internal/trials/{id}/parameters");
    let (s, caller) = authorise(&state, &headers, call)?;
    let worker = &s.workers[worker_of(caller)?];
    if worker.job.trial_id != id {
        let message = "not the trial this worker serves";
        return Err(error(StatusCode::NOT_FOUND, "InvalidTrialError", message));
    }
    Ok(octets(worker.params.clone()))
}

async fn ready(State(state): State<Shared>, headers: HeaderMap) -> Answer {
    let (mut s, caller) = authorise(&state, &headers, "POST /internal/inference/ready".into())?;
    let i = worker_of(caller)?;
    s.workers[i].ready = true;
    Ok(Json(json!({})).into_response())
}

async fn fail(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(failure): Json<WorkerFailure>,
) -> Answer {
    let (mut s, caller) = authorise(&state, &headers, "POST /internal/inference/fail".into())?;
    let i = worker_of(caller)?;
    s.workers[i].failures.push(failure.error);
    Ok(Json(json!({})).into_response())
}

async fn environment(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(report): Json<EnvironmentReport>,
) -> Answer {
    let (mut s, caller) = authorise(&state, &headers, "POST /internal/environment".into())?;
    let i = worker_of(caller)?;
    s.workers[i].environment = Some(report);
    Ok(Json(json!({})).into_response())
}

async fn predictor_job(State(state): State<Shared>, headers: HeaderMap) -> Answer {
    let (mut s, caller) = authorise(&state, &headers, "GET /internal/predictor/job".into())?;
    if !matches!(caller, Caller::Predictor) {
        return Err(forbidden());
    }
    s.predictor_polls += 1;
    let workers = s
        .workers
        .iter()
        .filter(|w| w.ready)
        .filter_map(|w| {
            Some(PredictorWorker {
                service_id: w.job.service_id,
                trial_id: w.job.trial_id,
                model_name: w.job.model.name.clone(),
                score: w.score,
                url: w.url.clone()?,
            })
        })
        .collect();
    Ok(Json(PredictorJob {
        inference_job_id: s.inference_job_id,
        task: s.task.clone(),
        workers,
    })
    .into_response())
}
