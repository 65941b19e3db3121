//! The internal API of inference workers and predictors (`docs/internal-api.md`): a worker
//! fetches its trial, model and parameters and says when it serves or why it cannot; a
//! predictor learns its job's serving workers.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use rafiki_store::inference_jobs::{self, InferenceJobRecord, Role};
use rafiki_store::models;
use rafiki_store::services::{self, ServiceRecord};
use rafiki_store::train_jobs::{self, SubTrainJob};
use rafiki_store::trials::{self, TrialRecord};
use rafiki_types::error::ErrorName;
use rafiki_types::internal::{InferenceWorkerJob, PredictorJob, PredictorWorker, WorkerFailure};
use rafiki_types::status::ServiceStatus;
use serde_json::json;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::routes::download::stored_object;
use crate::routes::internal::{blob, mark_running, worker_model, ServiceCaller};
use crate::state::AppState;
use crate::storage::ObjectKind;

/// An inference worker's job, trial and sub-job.
pub struct WorkerContext {
    /// The inference job.
    pub job: InferenceJobRecord,
    /// The trial the worker serves.
    pub trial: TrialRecord,
    /// The trial's sub-job (its model).
    pub sub: SubTrainJob,
}

/// The context of an inference worker, or 403 for any other service.
pub async fn worker_context(state: &AppState, service: &ServiceRecord) -> ApiResult<WorkerContext> {
    let not_worker = || ApiError::forbidden("Only inference workers may do this.");
    let Some((job_id, Role::Worker { trial_id })) =
        inference_jobs::role_of_service(&state.pool, service.id).await?
    else {
        return Err(not_worker());
    };
    let job = inference_jobs::get(&state.pool, job_id)
        .await?
        .ok_or_else(not_worker)?;
    let trial = trials::get(&state.pool, trial_id)
        .await?
        .ok_or_else(not_worker)?;
    let sub = train_jobs::get_sub(&state.pool, trial.sub_train_job_id)
        .await?
        .ok_or_else(not_worker)?;
    Ok(WorkerContext { job, trial, sub })
}

/// `GET /internal/inference/job`: the trial this worker serves.
pub async fn inference_job(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
) -> ApiResult<Json<InferenceWorkerJob>> {
    let ctx = worker_context(&state, &service).await?;
    let model = models::get(&state.pool, ctx.sub.model_id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("model {} is gone", ctx.sub.model_id)))?;
    let (key, sha256) = ctx
        .trial
        .params_key
        .zip(ctx.trial.params_sha256.clone())
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "trial {} has no parameters",
                ctx.trial.trial.id
            ))
        })?;
    let (_, size) = state
        .storage
        .open_object(ObjectKind::Params, key)
        .await
        .map_err(ApiError::internal)?;
    Ok(Json(InferenceWorkerJob {
        service_id: service.id,
        inference_job_id: ctx.job.job.id,
        trial_id: ctx.trial.trial.id,
        task: ctx.job_task(&state).await?,
        model: worker_model(&model),
        knobs: ctx.trial.trial.proposal.knobs.clone(),
        parameters: blob(ctx.trial.trial.id, &sha256, size),
    }))
}

impl WorkerContext {
    async fn job_task(&self, state: &AppState) -> ApiResult<String> {
        Ok(train_jobs::get(&state.pool, self.job.job.train_job_id)
            .await?
            .map(|t| t.job.task)
            .unwrap_or_default())
    }
}

/// `GET /internal/trials/{id}/parameters`: the parameters of the trial this worker serves.
pub async fn trial_parameters(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let ctx = worker_context(&state, &service).await?;
    match ctx.trial.params_key.filter(|_| ctx.trial.trial.id == id) {
        Some(key) => stored_object(&state.storage, ObjectKind::Params, key).await,
        None => Err(ApiError::new(
            ErrorName::InvalidTrialError,
            "Not the trial this worker serves.",
        )),
    }
}

/// `POST /internal/inference/ready`: the worker serves; it counts towards RUNNING.
pub async fn worker_ready(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
) -> ApiResult<Json<serde_json::Value>> {
    worker_context(&state, &service).await?;
    mark_running(&state, &service).await?;
    Ok(Json(json!({})))
}

/// `POST /internal/inference/fail`: the worker cannot serve its model; the job is ERRORED.
pub async fn worker_failed(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    ApiJson(failure): ApiJson<WorkerFailure>,
) -> ApiResult<Json<serde_json::Value>> {
    let ctx = worker_context(&state, &service).await?;
    let error = format!("{}: {}", ctx.sub.model_name, failure.error);
    // Ending the job stops its services, this caller among them: it hangs up then, which is
    // why handlers run to completion in tasks of their own (routes::run_to_completion).
    state
        .orchestrator
        .inference_worker_failed(service.id, ctx.job.job.id, &error)
        .await?;
    Ok(Json(json!({})))
}

/// `GET /internal/predictor/job`: the predictor's job and its serving workers.
///
/// A job must not read RUNNING before its predictor can answer, and an answer in flight proves
/// nothing. The predictor polls in a loop (apply the answer, wait, ask again), so the first
/// answer that lists serving workers moves it to DEPLOYING, and the next call, which it only
/// makes once it has applied that answer, to RUNNING.
pub async fn predictor_job(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
) -> ApiResult<Json<PredictorJob>> {
    let not_predictor = || ApiError::forbidden("Only predictors may do this.");
    let Some((job_id, Role::Predictor)) =
        inference_jobs::role_of_service(&state.pool, service.id).await?
    else {
        return Err(not_predictor());
    };
    let job = inference_jobs::get(&state.pool, job_id)
        .await?
        .ok_or_else(not_predictor)?;
    let task = train_jobs::get(&state.pool, job.job.train_job_id)
        .await?
        .map(|t| t.job.task)
        .unwrap_or_default();
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
    if !workers.is_empty() {
        let next = match service.status {
            ServiceStatus::Started => Some(ServiceStatus::Deploying),
            ServiceStatus::Deploying => Some(ServiceStatus::Running),
            _ => None,
        };
        if let Some(next) = next {
            services::set_status(&state.pool, service.id, service.status, next, None).await?;
        }
    }
    Ok(Json(PredictorJob {
        inference_job_id: job_id,
        task,
        workers,
    }))
}
