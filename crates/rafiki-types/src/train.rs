//! Train jobs, their budgets, trials and trial logs: the DTOs of routes 12–20.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::proposal::Proposal;
use crate::status::{JobStatus, ServiceType, TrialStatus};

/// `POST /train_jobs` request, as Rafiki's client sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateTrainJobRequest {
    /// The application's name; versions count per user and app.
    pub app: String,
    /// The task, e.g. IMAGE_CLASSIFICATION.
    pub task: String,
    /// A dataset of the caller's, of that task.
    pub train_dataset_id: Uuid,
    /// A dataset of the caller's, of that task.
    pub val_dataset_id: Uuid,
    /// `{TIME_HOURS, MODEL_TRIAL_COUNT, GPU_COUNT, CPU_WORKERS_PER_MODEL}`, each optional.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub budget: BTreeMap<String, serde_json::Value>,
    /// Models to tune (own or public, of the task).
    pub model_ids: Vec<Uuid>,
    /// Extra keyword arguments for every model's `train()`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub train_args: Option<serde_json::Value>,
}

/// A train job's budget with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainBudget {
    /// Hours per model (soft: a running trial may finish).
    pub time_hours: f64,
    /// Trials per model; -1 = unlimited.
    pub model_trial_count: i64,
    /// GPUs for the whole job, split evenly over its models.
    pub gpu_count: i64,
    /// Train workers of each model without GPUs, sharing its trials (beyond Rafiki, which
    /// gives such a model one). Jobs stored before the option read 1.
    #[serde(default = "one_worker")]
    pub cpu_workers_per_model: u32,
    /// Early stopping of bad trials (beyond Rafiki; `PRUNER` and the `PRUNE_*` options,
    /// docs/pruning.md); absent when off.
    #[serde(default, flatten, skip_serializing_if = "Option::is_none")]
    pub pruning: Option<crate::pruning::Pruning>,
}

fn one_worker() -> u32 {
    1
}

impl Default for TrainBudget {
    fn default() -> Self {
        TrainBudget {
            time_hours: 0.1,
            model_trial_count: -1,
            gpu_count: 0,
            cpu_workers_per_model: one_worker(),
            pruning: None,
        }
    }
}

/// Why a budget was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{0}")]
pub struct BudgetError(pub String);

impl TrainBudget {
    /// Reads a budget object: unknown keys and bad values are refused, missing keys default.
    pub fn parse(raw: &BTreeMap<String, serde_json::Value>) -> Result<Self, BudgetError> {
        let mut budget = TrainBudget {
            pruning: crate::pruning::Pruning::parse(raw)?,
            ..TrainBudget::default()
        };
        for (key, value) in raw {
            match key.as_str() {
                key if crate::pruning::OPTIONS.contains(&key) => {}
                "TIME_HOURS" => {
                    budget.time_hours = value
                        .as_f64()
                        .filter(|h| h.is_finite() && *h > 0.0)
                        .ok_or_else(|| {
                            BudgetError(format!(
                                "budget TIME_HOURS must be a positive number, got {value}"
                            ))
                        })?;
                }
                "MODEL_TRIAL_COUNT" => {
                    budget.model_trial_count = crate::integer::as_integer(value)
                        .filter(|n| *n == -1 || *n >= 1)
                        .ok_or_else(|| {
                            BudgetError(format!(
                                "budget MODEL_TRIAL_COUNT must be an integer >= 1, or -1 for no \
                                 limit, got {value}"
                            ))
                        })?;
                }
                "GPU_COUNT" => {
                    budget.gpu_count = crate::integer::as_integer(value)
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| {
                            BudgetError(format!(
                                "budget GPU_COUNT must be an integer >= 0, got {value}"
                            ))
                        })?;
                }
                "CPU_WORKERS_PER_MODEL" => {
                    budget.cpu_workers_per_model = crate::integer::as_integer(value)
                        .and_then(|n| u32::try_from(n).ok())
                        .filter(|n| *n >= 1)
                        .ok_or_else(|| {
                            BudgetError(format!(
                                "budget CPU_WORKERS_PER_MODEL must be an integer >= 1, got {value}"
                            ))
                        })?;
                }
                other => {
                    return Err(BudgetError(format!(
                        "unknown budget option `{other}`; expected TIME_HOURS, MODEL_TRIAL_COUNT, \
                         GPU_COUNT, CPU_WORKERS_PER_MODEL or a pruning option ({})",
                        crate::pruning::OPTIONS.join(", ")
                    )))
                }
            }
        }
        Ok(budget)
    }
}

/// Splits `total` GPUs over `parts` models: evenly, the first `total % parts` get one more.
pub fn split_gpus(total: u32, parts: usize) -> Vec<u32> {
    if parts == 0 {
        return Vec::new();
    }
    let parts_u32 = u32::try_from(parts).unwrap_or(u32::MAX);
    let (each, extra) = (total / parts_u32, total % parts_u32);
    (0..parts_u32)
        .map(|i| each + u32::from(i < extra))
        .collect()
}

/// `POST /train_jobs` and `POST /train_jobs/{app}/{v}/stop` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainJobRef {
    /// The job's id.
    pub id: Uuid,
    /// Its app.
    pub app: String,
    /// Its version.
    pub app_version: i32,
}

/// A train job (the contract's shape T, with `budget`; `error` is an addition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainJob {
    /// The job's id.
    pub id: Uuid,
    /// Its status.
    pub status: JobStatus,
    /// Its app.
    pub app: String,
    /// Its version.
    pub app_version: i32,
    /// Its task.
    pub task: String,
    /// Training data.
    pub train_dataset_id: Uuid,
    /// Validation data.
    pub val_dataset_id: Uuid,
    /// Extra `train()` arguments.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub train_args: Option<serde_json::Value>,
    /// The budget, defaults filled in.
    pub budget: TrainBudget,
    /// When it was created.
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub datetime_started: DateTime<Utc>,
    /// When it stopped or errored.
    #[serde(with = "crate::time::rfc3339_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub datetime_stopped: Option<DateTime<Utc>>,
    /// Why it errored, if it did.
    pub error: Option<String>,
    /// While the job waits for GPUs (it reads STARTED meanwhile), why: e.g. `waiting for 2
    /// GPUs; 1 free`. Absent when it is not waiting (an addition to Rafiki's fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_reason: Option<String>,
}

/// `GET /train_jobs/{app}/{app_version}`: shape T with what its workers reported about their
/// dependency environments (an addition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrainJobDetail {
    /// The job, as listed.
    #[serde(flatten)]
    pub job: TrainJob,
    /// One entry per worker that reported (train workers, then the inference workers of its
    /// deployments), oldest first.
    #[serde(default)]
    pub environments: Vec<ServiceEnvironment>,
}

/// How one worker got its model's dependencies (`docs/worker.md`, "Dependency environments").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ServiceEnvironment {
    /// The worker.
    pub service_id: Uuid,
    /// `TRAIN` or `INFERENCE`.
    pub service_type: ServiceType,
    /// The model it hosts.
    pub model_name: String,
    /// Seconds until the dependencies were ready (not charged to `TIME_HOURS`).
    pub seconds: f64,
    /// Whether an existing environment (or the worker's own interpreter) served, with no
    /// `pip install`.
    pub reused: bool,
    /// The environment's size on disk; 0 when the worker's interpreter served.
    pub size_bytes: u64,
    /// What the user should know (e.g. a pin replaced by the nearest installable release).
    pub warnings: Vec<String>,
}

/// A trial (the contract's shape R; `error` is an addition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Trial {
    /// The trial's id.
    pub id: Uuid,
    /// Its number within its model, from 1.
    pub no: i32,
    /// The worker (service) that ran it.
    pub worker_id: Option<Uuid>,
    /// What it was asked to do.
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub proposal: Proposal,
    /// When it started.
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub datetime_started: DateTime<Utc>,
    /// When it ended.
    #[serde(with = "crate::time::rfc3339_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub datetime_stopped: Option<DateTime<Utc>>,
    /// Its status.
    pub status: TrialStatus,
    /// The model's name.
    pub model_name: String,
    /// What `evaluate()` returned (higher is better).
    pub score: Option<f64>,
    /// Whether its parameters are stored.
    pub is_params_saved: bool,
    /// Why it errored (with the model's traceback), if it did.
    pub error: Option<String>,
    /// A PRUNED trial's last value of the objective, its step and why it was stopped
    /// (docs/pruning.md); absent for other statuses (an addition to Rafiki's fields).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pruned: Option<crate::pruning::PruneDecision>,
}

/// A plot a model declared (`logger.define_plot`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogPlot {
    /// The plot's title.
    pub title: String,
    /// The metrics it shows.
    pub metrics: Vec<String>,
    /// The metric on the x axis, or `null` for time.
    pub x_axis: Option<String>,
    /// When it was declared.
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub time: DateTime<Utc>,
}

/// A message a model logged.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogMessage {
    /// When.
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub time: DateTime<Utc>,
    /// What.
    pub message: String,
}

/// `GET /trials/{id}/logs` (CONTRACT §5). Each `metrics` entry is `{time, <name>: number...}`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TrialLogs {
    /// Declared plots, in logging order.
    pub plots: Vec<LogPlot>,
    /// Logged metrics, in logging order.
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub metrics: Vec<serde_json::Map<String, serde_json::Value>>,
    /// Logged messages, in logging order.
    pub messages: Vec<LogMessage>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn budget(v: serde_json::Value) -> Result<TrainBudget, BudgetError> {
        TrainBudget::parse(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn budgets_default_and_refuse_unknown_keys_and_bad_values() {
        assert_eq!(budget(json!({})).unwrap(), TrainBudget::default());
        let b = budget(json!({"TIME_HOURS": 1, "MODEL_TRIAL_COUNT": 5, "GPU_COUNT": 2})).unwrap();
        assert_eq!(
            (b.time_hours, b.model_trial_count, b.gpu_count),
            (1.0, 5, 2)
        );
        for bad in [
            json!({"TIME_HOURS": 0}),
            json!({"TIME_HOURS": "1"}),
            json!({"MODEL_TRIAL_COUNT": 0}),
            json!({"MODEL_TRIAL_COUNT": 1.5}),
            json!({"GPU_COUNT": -1}),
            json!({"CPU_COUNT": 1}),
            json!({"CPU_WORKERS_PER_MODEL": 0}),
            json!({"CPU_WORKERS_PER_MODEL": -3}),
            json!({"CPU_WORKERS_PER_MODEL": 2.5}),
            json!({"CPU_WORKERS_PER_MODEL": "4"}),
            json!({"CPU_WORKERS_PER_MODEL": 1e12}),
        ] {
            assert!(budget(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn cpu_workers_default_to_one_also_for_jobs_stored_before_the_option() {
        assert_eq!(TrainBudget::default().cpu_workers_per_model, 1);
        let b = budget(json!({"CPU_WORKERS_PER_MODEL": 4.0})).unwrap();
        assert_eq!(b.cpu_workers_per_model, 4);
        let stored: TrainBudget = serde_json::from_value(
            json!({"TIME_HOURS": 1.0, "MODEL_TRIAL_COUNT": 3, "GPU_COUNT": 0}),
        )
        .unwrap();
        assert_eq!(stored.cpu_workers_per_model, 1);
        let round = serde_json::to_value(&b).unwrap();
        assert_eq!(round["CPU_WORKERS_PER_MODEL"], 4);
        assert!(round.get("PRUNER").is_none());
    }

    #[test]
    fn pruning_options_round_trip_through_the_stored_budget() {
        let b =
            budget(json!({"PRUNER": "ASHA", "PRUNE_METRIC": "val_acc", "TIME_HOURS": 1})).unwrap();
        let stored = serde_json::to_value(&b).unwrap();
        assert_eq!(stored["PRUNER"], "ASHA");
        assert_eq!(stored["PRUNE_REDUCTION_FACTOR"], 3);
        let back: TrainBudget = serde_json::from_value(stored).unwrap();
        assert_eq!(back, b);
        let off: TrainBudget =
            serde_json::from_value(serde_json::to_value(TrainBudget::default()).unwrap()).unwrap();
        assert_eq!(off.pruning, None);
    }

    #[test]
    fn gpus_split_evenly_with_the_first_models_taking_the_rest() {
        assert_eq!(split_gpus(5, 3), vec![2, 2, 1]);
        assert_eq!(split_gpus(1, 3), vec![1, 0, 0]);
        assert_eq!(split_gpus(0, 2), vec![0, 0]);
        assert_eq!(split_gpus(4, 2), vec![2, 2]);
    }
}
