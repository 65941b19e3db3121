//! The internal API of train workers: their job, their model's knob config, the next trial,
//! a trial's result, and the failure of their model. Only train workers pass the
//! [`TrainWorker`] extractor; what each call changes is decided by the orchestrator.

use axum::extract::State;
use axum::Json;
use rafiki_store::{datasets, models, trials};
use rafiki_types::error::ErrorName;
use rafiki_types::ids::{ServiceId, TrialId};
use rafiki_types::internal::{
    KnobConfigAccepted, NextTrial, TrainWorkerJob, TrialOutcome, WorkerFailure,
};
use rafiki_types::status::TrialStatus;
use serde_json::json;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::orchestrator::callers::TrainWorker;
use crate::orchestrator::workers::{blob, worker_model};
use crate::state::AppState;

/// `GET /internal/train/job`: what this worker works on; marks it RUNNING.
pub async fn train_job(
    State(state): State<AppState>,
    worker: TrainWorker,
) -> ApiResult<Json<TrainWorkerJob>> {
    let model = models::get(&state.pool, worker.sub.model_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "model of sub-job {} is gone",
                worker.sub.id
            ))
        })?;
    let train = job_dataset(&state, worker.job.job.train_dataset_id).await?;
    let val = job_dataset(&state, worker.job.job.val_dataset_id).await?;
    state.orchestrator.mark_running(&worker.service).await?;
    Ok(Json(TrainWorkerJob {
        service_id: worker.service.id,
        train_job_id: worker.job.job.id,
        sub_train_job_id: worker.sub.id,
        task: worker.job.job.task.clone(),
        train_args: worker.job.job.train_args.clone(),
        prune_metric: worker
            .job
            .job
            .budget
            .pruning
            .as_ref()
            .map(|p| p.metric.clone()),
        model: worker_model(&model),
        train_dataset: blob(train.id, &train.sha256, train.size_bytes),
        val_dataset: blob(val.id, &val.sha256, val.size_bytes),
    }))
}

async fn job_dataset(state: &AppState, id: Uuid) -> ApiResult<datasets::DatasetRecord> {
    datasets::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("dataset {id} is gone")))
}

/// `PUT /internal/train/knob_config`: the model's search space; picks its advisor. An invalid
/// config ends the model's sub-job ERRORED.
pub async fn knob_config(
    State(state): State<AppState>,
    worker: TrainWorker,
    ApiJson(raw): ApiJson<serde_json::Value>,
) -> ApiResult<Json<KnobConfigAccepted>> {
    Ok(Json(
        state.orchestrator.accept_knob_config(&worker, &raw).await?,
    ))
}

/// `POST /internal/train/trials`: the next trial, recorded RUNNING in the same transaction as
/// the advisor's decision, or `BUDGET_SPENT`.
pub async fn next_trial(
    State(state): State<AppState>,
    worker: TrainWorker,
) -> ApiResult<Json<NextTrial>> {
    Ok(Json(state.orchestrator.next_trial(&worker).await?))
}

/// `POST /internal/trials/{id}/finish`: the trial's result; its end and duration (the
/// worker's report of its timing) go to the metrics.
pub async fn finish_trial(
    State(state): State<AppState>,
    worker: TrainWorker,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(outcome): ApiJson<TrialOutcome>,
) -> ApiResult<Json<serde_json::Value>> {
    if let TrialOutcome::Completed { score: Some(score) } = outcome {
        if !score.is_finite() {
            return Err(ApiError::invalid_request(
                "`score` must be a finite number.",
            ));
        }
    }
    let (trial, worker) = (TrialId(id), ServiceId(worker.service.id));
    match trials::finish(&state.pool, trial, worker, &outcome).await? {
        trials::Finished::Now { seconds } => {
            let status = match outcome {
                TrialOutcome::Completed { .. } => TrialStatus::Completed,
                TrialOutcome::Errored { .. } => TrialStatus::Errored,
                TrialOutcome::Pruned => TrialStatus::Pruned,
            };
            state.metrics.trial_finished(status, seconds);
        }
        // Counted when it was finished.
        trials::Finished::Already => {}
        trials::Finished::Refused => {
            return Err(ApiError::new(
                ErrorName::InvalidTrialError,
                "Not a running trial of this worker, or (PRUNED) not one its pruner stopped.",
            ))
        }
    }
    Ok(Json(json!({})))
}

/// `POST /internal/train/fail`: this worker's model cannot be tuned; its sub-job ERRORED.
pub async fn train_failed(
    State(state): State<AppState>,
    worker: TrainWorker,
    ApiJson(failure): ApiJson<WorkerFailure>,
) -> ApiResult<Json<serde_json::Value>> {
    state
        .orchestrator
        .train_worker_failed(&worker, &failure.error)
        .await?;
    Ok(Json(json!({})))
}
