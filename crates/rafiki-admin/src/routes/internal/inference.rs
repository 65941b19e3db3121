//! The internal API of inference workers and predictors: a worker fetches the trial it serves
//! and says when it serves or why it cannot; a predictor learns its job's serving workers.
//! Only inference workers pass [`InferenceWorker`], only predictors [`Predictor`].

use axum::extract::State;
use axum::Json;
use rafiki_store::inference_jobs::{self, Role};
use rafiki_store::{models, services, train_jobs, trials};
use rafiki_types::internal::{InferenceWorkerJob, PredictorJob, PredictorWorker, WorkerFailure};
use rafiki_types::status::ServiceStatus;
use serde_json::json;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::orchestrator::callers::{InferenceWorker, Predictor};
use crate::orchestrator::workers::{blob, worker_model};
use crate::state::AppState;
use crate::storage::ObjectKind;

/// `GET /internal/inference/job`: the trial this worker serves.
pub async fn inference_job(
    State(state): State<AppState>,
    worker: InferenceWorker,
) -> ApiResult<Json<InferenceWorkerJob>> {
    let model = models::get(&state.pool, worker.sub.model_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("model {} is gone", worker.sub.model_id))
        })?;
    let trial = &worker.trial;
    let (key, sha256) = trial
        .params_key
        .zip(trial.params_sha256.clone())
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "trial {} has no parameters",
                trial.trial.id
            ))
        })?;
    let (_, size) = state.storage.open_object(ObjectKind::Params, key).await?;
    Ok(Json(InferenceWorkerJob {
        service_id: worker.service.id,
        inference_job_id: worker.job.job.id,
        trial_id: trial.trial.id,
        task: job_task(&state, worker.job.job.train_job_id).await?,
        model: worker_model(&model),
        knobs: trial.trial.proposal.knobs.clone(),
        parameters: blob(trial.trial.id, &sha256, size),
    }))
}

/// The task of the train job an inference job deploys.
async fn job_task(state: &AppState, train_job_id: Uuid) -> ApiResult<String> {
    Ok(train_jobs::get(&state.pool, train_job_id)
        .await?
        .map(|t| t.job.task)
        .unwrap_or_default())
}

/// `POST /internal/inference/ready`: the worker serves; it counts towards RUNNING.
pub async fn worker_ready(
    State(state): State<AppState>,
    worker: InferenceWorker,
) -> ApiResult<Json<serde_json::Value>> {
    state.orchestrator.mark_running(&worker.service).await?;
    Ok(Json(json!({})))
}

/// `POST /internal/inference/fail`: the worker cannot serve its model; the job is ERRORED.
pub async fn worker_failed(
    State(state): State<AppState>,
    worker: InferenceWorker,
    ApiJson(failure): ApiJson<WorkerFailure>,
) -> ApiResult<Json<serde_json::Value>> {
    let error = format!("{}: {}", worker.sub.model_name, failure.error);
    // Ending the job stops its services, this caller among them: it hangs up then, which is
    // why handlers run to completion in tasks of their own (routes::run_to_completion).
    state
        .orchestrator
        .inference_worker_failed(&worker, &error)
        .await?;
    Ok(Json(json!({})))
}

/// `GET /internal/predictor/job`: the predictor's job and its serving workers; polling it
/// moves the predictor towards RUNNING (`Orchestrator::predictor_polled`).
pub async fn predictor_job(
    State(state): State<AppState>,
    predictor: Predictor,
) -> ApiResult<Json<PredictorJob>> {
    let job_id = predictor.job.job.id;
    let mut workers = Vec::new();
    for (service_id, role) in inference_jobs::services_of_job(&state.pool, job_id).await? {
        let Role::Worker { trial_id } = role else {
            continue;
        };
        let Some(worker) = services::get(&state.pool, service_id).await? else {
            continue;
        };
        let (Some(host), Some(port)) = (worker.host.as_ref(), worker.port) else {
            continue;
        };
        if worker.status != ServiceStatus::Running {
            continue;
        }
        let Some(trial) = trials::get(&state.pool, trial_id).await? else {
            continue;
        };
        workers.push(PredictorWorker {
            service_id,
            trial_id,
            model_name: trial.trial.model_name,
            score: trial.trial.score,
            url: format!("http://{host}:{port}"),
        });
    }
    state
        .orchestrator
        .predictor_polled(&predictor, workers.len())
        .await?;
    Ok(Json(PredictorJob {
        inference_job_id: job_id,
        task: job_task(&state, predictor.job.job.train_job_id).await?,
        workers,
    }))
}
