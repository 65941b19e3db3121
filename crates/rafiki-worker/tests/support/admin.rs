//! An in-test admin: the train calls of the internal API (`docs/internal-api.md`) over
//! in-memory state, recording what the worker sent so tests can assert on it.
//!
//! It stands in for rafiki-admin's internal routes: bearer-token checks (401 with the error
//! envelope once the service is "stopped"), 404 for ids outside the job, knob configs validated
//! with the rules of `rafiki_types::knob`, trials handed out from a list of proposals and
//! recorded RUNNING, and logs, parameters and results accepted only for a RUNNING trial.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use rafiki_types::internal::{
    BlobRef, EnvironmentReport, LogBatch, LogEntry, NextTrial, TrainWorkerJob, TrialAssignment,
    TrialOutcome, WorkerFailure, WorkerModel,
};
use rafiki_types::knob::KnobConfig;
use rafiki_types::proposal::Proposal;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use uuid::Uuid;

/// The bearer token the test admin accepts.
pub const TOKEN: &str = "service-token-for-tests";

/// A trial's state as the admin records it.
#[derive(Debug, Clone, PartialEq)]
pub enum TrialStatus {
    Running,
    Completed { score: Option<f64> },
    Errored { error: String },
    Pruned,
}

/// One trial handed to the worker, and everything the worker sent about it.
#[derive(Debug, Clone)]
pub struct TrialRecord {
    pub id: Uuid,
    pub no: i32,
    pub proposal: Proposal,
    pub status: TrialStatus,
    pub logs: Vec<LogEntry>,
    pub log_batches: usize,
    pub params: Option<Vec<u8>>,
}

/// What the job is made of.
pub struct JobSpec {
    pub model_file: Vec<u8>,
    pub model_class: String,
    pub dependencies: Vec<(String, String)>,
    pub train_dataset: Vec<u8>,
    pub val_dataset: Vec<u8>,
    pub train_args: Option<Value>,
    /// One trial per proposal, then `BUDGET_SPENT`.
    pub proposals: Vec<Proposal>,
}

/// The admin's memory.
pub struct AdminState {
    pub job: TrainWorkerJob,
    pub blobs: HashMap<Uuid, Vec<u8>>,
    pub proposals: VecDeque<Proposal>,
    /// Answer `PUT knob_config` with this 400 message whatever the config.
    pub reject_knob_config: Option<String>,
    /// Answer this many `GET /internal/train/job` with 503 first.
    pub unavailable_job_calls: u32,
    /// Stop the service (401 from then on) once this many trials are finished.
    pub stop_after_finished: Option<usize>,
    pub stopped: bool,
    /// Every authorised call, `METHOD path`, in arrival order.
    pub calls: Vec<String>,
    pub knob_config: Option<Value>,
    pub trials: Vec<TrialRecord>,
    pub failures: Vec<String>,
    /// What `POST /internal/environment` reported.
    pub environments: Vec<EnvironmentReport>,
}

impl AdminState {
    pub fn downloads(&self) -> usize {
        self.calls
            .iter()
            .filter(|c| {
                c.starts_with("GET /internal/models/") || c.starts_with("GET /internal/datasets/")
            })
            .count()
    }

    pub fn trial(&self, no: i32) -> &TrialRecord {
        self.trials
            .iter()
            .find(|t| t.no == no)
            .expect("no such trial")
    }
}

type Shared = Arc<Mutex<AdminState>>;

/// A running test admin.
pub struct TestAdmin {
    pub url: String,
    pub state: Shared,
    server: tokio::task::JoinHandle<()>,
}

impl Drop for TestAdmin {
    fn drop(&mut self) {
        self.server.abort();
    }
}

fn blob(bytes: &[u8]) -> BlobRef {
    BlobRef {
        id: Uuid::new_v4(),
        sha256: hex::encode(Sha256::digest(bytes)),
        size_bytes: bytes.len() as i64,
    }
}

impl TestAdmin {
    pub async fn start(spec: JobSpec) -> TestAdmin {
        let file = blob(&spec.model_file);
        let train = blob(&spec.train_dataset);
        let val = blob(&spec.val_dataset);
        let job = TrainWorkerJob {
            service_id: Uuid::new_v4(),
            train_job_id: Uuid::new_v4(),
            sub_train_job_id: Uuid::new_v4(),
            task: "TEST_TASK".to_owned(),
            train_args: spec.train_args,
            prune_metric: None,
            model: WorkerModel {
                id: Uuid::new_v4(),
                name: "test-model".to_owned(),
                model_class: spec.model_class,
                dependencies: spec.dependencies.into_iter().collect(),
                dependency_pins: None,
                file: file.clone(),
            },
            train_dataset: train.clone(),
            val_dataset: val.clone(),
        };
        let blobs = HashMap::from([
            (job.model.id, spec.model_file),
            (train.id, spec.train_dataset),
            (val.id, spec.val_dataset),
        ]);
        let state = Arc::new(Mutex::new(AdminState {
            job,
            blobs,
            proposals: spec.proposals.into(),
            reject_knob_config: None,
            unavailable_job_calls: 0,
            stop_after_finished: None,
            stopped: false,
            calls: Vec::new(),
            knob_config: None,
            trials: Vec::new(),
            failures: Vec::new(),
            environments: Vec::new(),
        }));
        let app = Router::new()
            .route("/internal/train/job", get(train_job))
            .route("/internal/models/{id}/file", get(model_file))
            .route("/internal/datasets/{id}", get(dataset))
            .route("/internal/train/knob_config", put(knob_config))
            .route("/internal/train/trials", post(next_trial))
            .route("/internal/trials/{id}/logs", post(logs))
            .route("/internal/trials/{id}/parameters", put(parameters))
            .route("/internal/trials/{id}/finish", post(finish))
            .route("/internal/train/fail", post(fail))
            .route("/internal/environment", post(environment))
            .with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let server = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        TestAdmin { url, state, server }
    }

    pub fn with<T>(&self, f: impl FnOnce(&mut AdminState) -> T) -> T {
        f(&mut self.state.lock().unwrap())
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

/// Checks the token and records the call; the guard is the state to work on.
fn authorise<'a>(
    state: &'a Shared,
    headers: &HeaderMap,
    call: String,
) -> Result<std::sync::MutexGuard<'a, AdminState>, Refusal> {
    let guard = state.lock().unwrap();
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "));
    if guard.stopped || presented != Some(TOKEN) {
        return Err(error(
            StatusCode::UNAUTHORIZED,
            "UnauthorizedError",
            "unknown or stopped service",
        ));
    }
    let mut guard = guard;
    guard.calls.push(call);
    Ok(guard)
}

async fn train_job(State(state): State<Shared>, headers: HeaderMap) -> Answer {
    let mut s = authorise(&state, &headers, "GET /internal/train/job".into())?;
    if s.unavailable_job_calls > 0 {
        s.unavailable_job_calls -= 1;
        let status = StatusCode::SERVICE_UNAVAILABLE;
        return Err(error(status, "InternalServerError", "starting up"));
    }
    Ok(Json(s.job.clone()).into_response())
}

fn octets(bytes: Vec<u8>) -> Response {
    ([("content-type", "application/octet-stream")], bytes).into_response()
}

async fn model_file(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
) -> Answer {
    let s = authorise(&state, &headers, format!("GET /internal/models/{id}/file"))?;
    if id != s.job.model.id {
        return Err(error(
            StatusCode::NOT_FOUND,
            "InvalidModelError",
            "not this job's model",
        ));
    }
    Ok(octets(s.blobs[&id].clone()))
}

async fn dataset(State(state): State<Shared>, headers: HeaderMap, Path(id): Path<Uuid>) -> Answer {
    let s = authorise(&state, &headers, format!("GET /internal/datasets/{id}"))?;
    if id != s.job.train_dataset.id && id != s.job.val_dataset.id {
        let message = "not this job's dataset";
        return Err(error(StatusCode::NOT_FOUND, "InvalidDatasetError", message));
    }
    Ok(octets(s.blobs[&id].clone()))
}

async fn knob_config(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(body): Json<Value>,
) -> Answer {
    let mut s = authorise(&state, &headers, "PUT /internal/train/knob_config".into())?;
    let invalid = |message: String| error(StatusCode::BAD_REQUEST, "InvalidModelError", message);
    if let Some(message) = s.reject_knob_config.clone() {
        return Err(invalid(message));
    }
    let config: KnobConfig =
        serde_json::from_value(body.clone()).map_err(|e| invalid(e.to_string()))?;
    for (name, knob) in &config {
        knob.validate(name).map_err(|e| invalid(e.to_string()))?;
    }
    s.knob_config = Some(body);
    Ok(Json(json!({"advisor_type": "FIXED"})).into_response())
}

async fn next_trial(State(state): State<Shared>, headers: HeaderMap) -> Answer {
    let mut s = authorise(&state, &headers, "POST /internal/train/trials".into())?;
    if s.knob_config.is_none() {
        let message = "no knob config yet";
        return Err(error(
            StatusCode::BAD_REQUEST,
            "InvalidTrainJobError",
            message,
        ));
    }
    let Some(proposal) = s.proposals.pop_front() else {
        return Ok(Json(NextTrial::BudgetSpent).into_response());
    };
    let record = TrialRecord {
        id: Uuid::new_v4(),
        no: s.trials.len() as i32 + 1,
        proposal: proposal.clone(),
        status: TrialStatus::Running,
        logs: Vec::new(),
        log_batches: 0,
        params: None,
    };
    let trial = TrialAssignment {
        id: record.id,
        no: record.no,
        proposal,
    };
    s.trials.push(record);
    Ok(Json(NextTrial::Trial { trial }).into_response())
}

/// The RUNNING trial `id`, or the refusal.
fn running(s: &mut AdminState, id: Uuid) -> Result<&mut TrialRecord, Refusal> {
    let trial = s
        .trials
        .iter_mut()
        .find(|t| t.id == id)
        .ok_or_else(|| error(StatusCode::NOT_FOUND, "InvalidTrialError", "no such trial"))?;
    if trial.status != TrialStatus::Running {
        let message = "the trial is not running";
        return Err(error(StatusCode::BAD_REQUEST, "InvalidTrialError", message));
    }
    Ok(trial)
}

async fn logs(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(batch): Json<LogBatch>,
) -> Answer {
    let mut s = authorise(&state, &headers, format!("POST /internal/trials/{id}/logs"))?;
    let trial = running(&mut s, id)?;
    trial.logs.extend(batch.entries);
    trial.log_batches += 1;
    Ok(Json(json!({})).into_response())
}

async fn parameters(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    body: Bytes,
) -> Answer {
    let call = format!("PUT /internal/trials/{id}/parameters");
    let mut s = authorise(&state, &headers, call)?;
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok());
    if content_type != Some("application/octet-stream") {
        let message = "parameters are application/octet-stream";
        return Err(error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestError",
            message,
        ));
    }
    running(&mut s, id)?.params = Some(body.to_vec());
    Ok(Json(json!({})).into_response())
}

async fn finish(
    State(state): State<Shared>,
    headers: HeaderMap,
    Path(id): Path<Uuid>,
    Json(outcome): Json<TrialOutcome>,
) -> Answer {
    let mut s = authorise(
        &state,
        &headers,
        format!("POST /internal/trials/{id}/finish"),
    )?;
    running(&mut s, id)?.status = match outcome {
        TrialOutcome::Completed { score } => TrialStatus::Completed { score },
        TrialOutcome::Errored { error } => TrialStatus::Errored { error },
        TrialOutcome::Pruned => TrialStatus::Pruned,
    };
    let finished = s
        .trials
        .iter()
        .filter(|t| t.status != TrialStatus::Running)
        .count();
    if s.stop_after_finished == Some(finished) {
        s.stopped = true;
    }
    Ok(Json(json!({})).into_response())
}

async fn fail(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(failure): Json<WorkerFailure>,
) -> Answer {
    let mut s = authorise(&state, &headers, "POST /internal/train/fail".into())?;
    s.failures.push(failure.error);
    Ok(Json(json!({})).into_response())
}

async fn environment(
    State(state): State<Shared>,
    headers: HeaderMap,
    Json(report): Json<EnvironmentReport>,
) -> Answer {
    let mut s = authorise(&state, &headers, "POST /internal/environment".into())?;
    s.environments.push(report);
    Ok(Json(json!({})).into_response())
}
