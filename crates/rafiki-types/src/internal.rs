//! The internal API between the admin and its services (train workers, inference workers,
//! predictors), documented in `docs/internal-api.md`. Services authenticate with the bearer
//! token the backend gave them (`RAFIKI_SERVICE_TOKEN`); every call is scoped to that service's
//! job. Services hold no database credentials.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::knob::AdvisorType;
use crate::proposal::Proposal;

/// Environment variables the backend sets for every service.
pub mod env {
    /// Base URL of the admin, e.g. `http://127.0.0.1:3000`.
    pub const ADMIN_URL: &str = "RAFIKI_ADMIN_URL";
    /// The service's id.
    pub const SERVICE_ID: &str = "RAFIKI_SERVICE_ID";
    /// The service's bearer token for the internal API.
    pub const SERVICE_TOKEN: &str = "RAFIKI_SERVICE_TOKEN";
    /// `TRAIN`, `INFERENCE` or `PREDICT`.
    pub const SERVICE_TYPE: &str = "RAFIKI_SERVICE_TYPE";
    /// A directory the service may write to (caches, virtual environments, scratch).
    pub const WORK_DIR: &str = "RAFIKI_WORK_DIR";
    /// The Python interpreter that has the `rafiki` package (default `python3`).
    pub const PYTHON: &str = "RAFIKI_PYTHON";
    /// Port the service listens on (inference workers and predictors).
    pub const PORT: &str = "RAFIKI_PORT";
    /// Address the service binds to (inference workers and predictors).
    pub const BIND_HOST: &str = "RAFIKI_BIND_HOST";
    /// Most bytes a model's dataset loading may extract from a zip dataset (0: no limit).
    pub const MAX_DATASET_UNZIPPED_BYTES: &str = "RAFIKI_MAX_DATASET_UNZIPPED_BYTES";
    /// Most entries of a zip dataset a model's dataset loading accepts (0: no limit).
    pub const MAX_DATASET_ZIP_ENTRIES: &str = "RAFIKI_MAX_DATASET_ZIP_ENTRIES";
    /// The inference job's secret (its predictor and inference workers): the predictor sends
    /// it as `Authorization: Bearer <secret>` with every `POST /predict`, and workers refuse
    /// requests without it.
    pub const PREDICT_SECRET: &str = "RAFIKI_PREDICT_SECRET";
    /// Workers: the shared store of dependency environments.
    pub const VENV_DIR: &str = "RAFIKI_VENV_DIR";
    /// Workers: the most gigabytes the store's environments may take (0: no bound).
    pub const ENV_CACHE_MAX_GB: &str = "RAFIKI_ENV_CACHE_MAX_GB";
    /// Workers: extra `pip install` arguments, split on whitespace.
    pub const PIP_ARGS: &str = "RAFIKI_PIP_ARGS";
    /// Workers: `strict` or `nearest`, for models that do not choose (`DependencyPins`).
    pub const DEPENDENCY_PINS: &str = "RAFIKI_DEPENDENCY_PINS";
}

/// A stored blob the worker downloads and caches by id and checksum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BlobRef {
    /// The dataset's or model's id.
    pub id: Uuid,
    /// Hex sha256 of the bytes.
    pub sha256: String,
    /// Exact size.
    pub size_bytes: i64,
}

/// The model a worker hosts.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerModel {
    /// The model's id; its file is at `GET /internal/models/{id}/file`.
    pub id: Uuid,
    /// The model's name.
    pub name: String,
    /// The class to load from the file.
    pub model_class: String,
    /// `{package: version}` to install before loading (empty: none).
    pub dependencies: BTreeMap<String, String>,
    /// The model's choice for pins that cannot be installed (`None`: the worker's setting).
    #[serde(default)]
    pub dependency_pins: Option<crate::model::DependencyPins>,
    /// The file's checksum and size.
    pub file: BlobRef,
}

/// `GET /internal/train/job`: what a train worker works on. Calling it marks the service
/// RUNNING.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrainWorkerJob {
    /// This service.
    pub service_id: Uuid,
    /// The train job.
    pub train_job_id: Uuid,
    /// The sub-job (one model of the train job) this worker tunes.
    pub sub_train_job_id: Uuid,
    /// The job's task.
    pub task: String,
    /// Extra arguments for `train()`, from the train job.
    pub train_args: Option<serde_json::Value>,
    /// The logged metric the job's pruner judges trials by (`PRUNE_METRIC`), if the job prunes:
    /// the worker posts an entry that logs it at once, instead of batching it, so that the
    /// decision comes before the model's next log call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune_metric: Option<String>,
    /// The model.
    pub model: WorkerModel,
    /// Training data; downloaded from `GET /internal/datasets/{id}`.
    pub train_dataset: BlobRef,
    /// Validation data.
    pub val_dataset: BlobRef,
}

/// `PUT /internal/train/knob_config` answer: which advisor tunes this model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct KnobConfigAccepted {
    /// `FIXED`, `BAYES_OPT` or `RANDOM`.
    pub advisor_type: AdvisorType,
}

/// A trial the worker must run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TrialAssignment {
    /// The trial's id.
    pub id: Uuid,
    /// Its number within the model, from 1.
    pub no: i32,
    /// What to do.
    pub proposal: Proposal,
}

/// `POST /internal/train/trials` answer: the next trial, or the end of this model's budget.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "decision", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum NextTrial {
    /// Run this trial (already recorded RUNNING, with this worker as its worker).
    Trial {
        /// The trial.
        trial: TrialAssignment,
    },
    /// No more trials: exit cleanly.
    BudgetSpent,
}

/// Kind of a trial log entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LogKind {
    /// `{"message": str}`.
    Message,
    /// `{name: number, ...}`.
    Metrics,
    /// `{"title": str, "metrics": [str], "x_axis": str | null}`.
    Plot,
}

/// One thing a model logged during a trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogEntry {
    /// When it was logged.
    #[serde(with = "crate::time::rfc3339")]
    pub time: DateTime<Utc>,
    /// What it is.
    pub kind: LogKind,
    /// Its content, shaped by `kind`.
    pub body: serde_json::Value,
}

/// `POST /internal/trials/{id}/logs` body: entries in logging order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LogBatch {
    /// The entries.
    pub entries: Vec<LogEntry>,
}

/// `POST /internal/trials/{id}/finish` body.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrialOutcome {
    /// Trained (and evaluated if the proposal said so).
    Completed {
        /// What `evaluate()` returned; `null` when not evaluated.
        score: Option<f64>,
    },
    /// The model raised or returned garbage.
    Errored {
        /// The reason, with the traceback when there is one.
        error: String,
    },
    /// Stopped as the admin's answer to its logs said (the decision it recorded is what the
    /// trial shows); not evaluated, no parameters.
    Pruned,
}

/// `POST /internal/train/fail` body: this model cannot be tuned (its class does not load, its
/// knob config is invalid, or too many trials in a row failed). The sub-job becomes ERRORED.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerFailure {
    /// Why, for the user.
    pub error: String,
}

/// `POST /internal/environment` body: how a worker provided its model's dependencies, sent
/// once per service start, before the model is loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnvironmentReport {
    /// Seconds from asking for the dependencies until they were ready: checking the
    /// interpreter, waiting for another worker's build, building, checking a reused one.
    pub seconds: f64,
    /// Whether no `pip install` ran for this service (an existing environment or the worker's
    /// own interpreter served).
    pub reused: bool,
    /// Bytes on disk of the dependency environment; 0 when the worker's interpreter served.
    pub size_bytes: u64,
    /// What the user should know about the environment (e.g. a pin replaced by the nearest
    /// installable release).
    #[serde(default)]
    pub warnings: Vec<String>,
}

/// `GET /internal/inference/job`: what an inference worker serves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InferenceWorkerJob {
    /// This service.
    pub service_id: Uuid,
    /// The inference job.
    pub inference_job_id: Uuid,
    /// The trial whose trained model this worker serves.
    pub trial_id: Uuid,
    /// The job's task.
    pub task: String,
    /// The model (class, file, dependencies).
    pub model: WorkerModel,
    /// The trial's knobs: the model is instantiated with them before loading parameters.
    pub knobs: crate::knob::Knobs,
    /// The trial's parameters: `id` is the trial's id; download from
    /// `GET /internal/trials/{id}/parameters`.
    pub parameters: BlobRef,
}

/// A worker's `POST /predict` body (the predictor sends every query of a request at once).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerPredictRequest {
    /// The queries, in order.
    pub queries: Vec<serde_json::Value>,
}

/// A worker's `POST /predict` answer: one prediction per query, same order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WorkerPredictResponse {
    /// The predictions.
    pub predictions: Vec<serde_json::Value>,
}

/// One inference worker as its predictor sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictorWorker {
    /// The worker's service id.
    pub service_id: Uuid,
    /// The trial it serves.
    pub trial_id: Uuid,
    /// The name of that trial's model: a model that fails on a request is named to the caller.
    pub model_name: String,
    /// That trial's score (the best-scoring answer wins for tasks that are not averaged).
    pub score: Option<f64>,
    /// Base URL of the worker, e.g. `http://127.0.0.1:41234`.
    pub url: String,
}

/// `GET /internal/predictor/job`: the predictor's job and its serving workers (only those that
/// reported ready). The predictor calls it once it listens (which marks it RUNNING) and then
/// every second or so to follow changes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PredictorJob {
    /// The inference job.
    pub inference_job_id: Uuid,
    /// The task, which decides how predictions are combined.
    pub task: String,
    /// The workers serving now.
    pub workers: Vec<PredictorWorker>,
}

/// `GET /internal/train/parameters/{GLOBAL_BEST|GLOBAL_RECENT}`: the parameters a trial of
/// this worker's sub-job starts from, or `null` when no trial of the sub-job has saved any yet.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedParametersAnswer {
    /// The chosen trial's parameters.
    pub shared: Option<SharedParameters>,
}

/// A COMPLETED trial's saved parameters, as a train worker of the same sub-job gets them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SharedParameters {
    /// The trial.
    pub trial_id: Uuid,
    /// Its score (`null` when it was not evaluated).
    pub score: Option<f64>,
    /// Its parameters: `id` is the trial's id; download from
    /// `GET /internal/trials/{id}/parameters`.
    pub parameters: BlobRef,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn next_trial_is_tagged_by_decision() {
        let spent: NextTrial = serde_json::from_value(json!({"decision": "BUDGET_SPENT"})).unwrap();
        assert_eq!(spent, NextTrial::BudgetSpent);
        let outcome = serde_json::to_value(TrialOutcome::Completed { score: Some(0.5) }).unwrap();
        assert_eq!(outcome, json!({"status": "COMPLETED", "score": 0.5}));
    }
}
