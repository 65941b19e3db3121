//! Inference jobs (routes 21–25): deploy a stopped train job's best trial of each model behind
//! a predictor, list deployments, find the running one and its `predictor_host`, stop it.

use axum::extract::State;
use axum::Json;
use rafiki_store::inference_jobs::{self, InferenceJobRecord};
use rafiki_store::{services, trials};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::ids::{TrainJobId, UserId};
use rafiki_types::inference::{
    CreateInferenceJobRequest, CreatedInferenceJob, InferenceBudget, InferenceJob, InferenceJobRef,
    RunningInferenceJob,
};
use rafiki_types::status::{BackendKind, JobStatus};

use crate::auth::extract::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::paging::{Listing, PageParams};
use crate::routes::train_jobs::{caller_job, ByUser};
use crate::state::AppState;

/// Deploys the best trial of each model of a stopped train job.
#[utoipa::path(post, path = "/inference_jobs", request_body = CreateInferenceJobRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = CreatedInferenceJob),
    (status = 400, description = "InvalidTrainJobError (not stopped, or no trial with saved parameters) or InvalidRequestError", body = ErrorBody),
    (status = 404, description = "InvalidTrainJobError: no such train job", body = ErrorBody),
    (status = 409, description = "RunningInferenceJobExistsError", body = ErrorBody),
    (status = 503, description = "ServiceDeploymentError", body = ErrorBody)))]
pub async fn create_inference_job(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiJson(req): ApiJson<CreateInferenceJobRequest>,
) -> ApiResult<Json<CreatedInferenceJob>> {
    Ok(Json(create(&state, caller, req).await?))
}

/// Deploys the best trial of each model of the caller's stopped train job: `POST
/// /inference_jobs`' logic, shared with the console's deploy button.
pub async fn create(
    state: &AppState,
    caller: AuthUser,
    req: CreateInferenceJobRequest,
) -> ApiResult<CreatedInferenceJob> {
    let train = caller_job(state, caller, &req.app, req.app_version).await?;
    if train.job.status != JobStatus::Stopped {
        return Err(ApiError::new(
            ErrorName::InvalidTrainJobError,
            format!(
                "Train job `{}` version {} is {}; only a STOPPED train job can be deployed.",
                train.job.app, train.job.app_version, train.job.status
            ),
        ));
    }
    let best = trials::best_per_model(&state.pool, train.job.id).await?;
    if best.is_empty() {
        return Err(ApiError::new(
            ErrorName::InvalidTrainJobError,
            "The train job has no completed trial with saved parameters.",
        ));
    }
    if inference_jobs::get_live_of_train_job(&state.pool, train.job.id)
        .await?
        .is_some()
    {
        return Err(ApiError::new(
            ErrorName::RunningInferenceJobExistsError,
            "This train job is already deployed; stop that inference job first.",
        ));
    }
    let budget = InferenceBudget::parse(&req.budget)
        .map_err(|e| ApiError::invalid_request(e.to_string()))?;
    let launched = state
        .orchestrator
        .create_inference_job(UserId(caller.id), TrainJobId(train.job.id), &best, budget)
        .await?;
    Ok(CreatedInferenceJob {
        id: launched.id,
        train_job_id: train.job.id,
        app: train.job.app,
        app_version: train.job.app_version,
        predictor_host: format!(
            "{}:{}",
            launched
                .predictor_host
                .unwrap_or_else(|| state.settings.addr.clone()),
            launched.predictor_port
        ),
    })
}

/// Lists a user's inference jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/inference_jobs", params(ByUser, PageParams),
    security(("bearer" = [])), responses((status = 200, body = Vec<InferenceJob>),
    (status = 400, description = "InvalidRequestError: no user_id, or a bad `limit` or `offset`",
        body = ErrorBody),
    (status = 403, description = "UnauthorizedError", body = ErrorBody)))]
pub async fn list_inference_jobs(
    State(state): State<AppState>,
    caller: AuthUser,
    Listing { filters, page }: Listing<ByUser>,
) -> ApiResult<Json<Vec<InferenceJob>>> {
    let user_id = filters.user_to_list(caller)?;
    let jobs = inference_jobs::list(&state.pool, user_id, None, page.limit, page.offset).await?;
    Ok(Json(jobs.into_iter().map(|r| r.job).collect()))
}

/// The caller's inference jobs of an app, newest first, a page at a time.
#[utoipa::path(get, path = "/inference_jobs/{app}", security(("bearer" = [])),
    params(("app" = String, Path), PageParams),
    responses((status = 200, body = Vec<InferenceJob>),
    (status = 400, description = "InvalidRequestError: a bad `limit` or `offset`", body = ErrorBody)))]
pub async fn list_inference_jobs_of_app(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath(app): ApiPath<String>,
    Listing { page, .. }: Listing,
) -> ApiResult<Json<Vec<InferenceJob>>> {
    let jobs =
        inference_jobs::list(&state.pool, caller.id, Some(&app), page.limit, page.offset).await?;
    Ok(Json(jobs.into_iter().map(|r| r.job).collect()))
}

/// The running inference job of the caller's train job `app`/`app_version`, or
/// `InvalidRunningInferenceJobError`: who may see, stop or query an inference job.
pub async fn running_job(
    state: &AppState,
    caller: AuthUser,
    app: &str,
    app_version: i32,
) -> ApiResult<InferenceJobRecord> {
    let none = || {
        ApiError::new(
            ErrorName::InvalidRunningInferenceJobError,
            format!("No inference job of app `{app}` version {app_version} is running."),
        )
    };
    let train = caller_job(state, caller, app, app_version)
        .await
        .map_err(|_| none())?;
    inference_jobs::get_live_of_train_job(&state.pool, train.job.id)
        .await?
        .ok_or_else(none)
}

/// The running (STARTED or RUNNING) inference job with its `predictor_host`.
#[utoipa::path(get, path = "/inference_jobs/{app}/{app_version}", security(("bearer" = [])),
    params(("app" = String, Path), ("app_version" = i32, Path, description = "-1 for the latest")),
    responses((status = 200, body = RunningInferenceJob),
    (status = 404, description = "InvalidRunningInferenceJobError", body = ErrorBody)))]
pub async fn get_running_inference_job(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath((app, app_version)): ApiPath<(String, i32)>,
) -> ApiResult<Json<RunningInferenceJob>> {
    let record = running_job(&state, caller, &app, app_version).await?;
    let predictor_host = predictor_host(&state, record.job.id).await?;
    Ok(Json(RunningInferenceJob {
        job: record.job,
        predictor_host,
    }))
}

/// `host:port` of an inference job's predictor, as clients reach it.
pub async fn predictor_host(state: &AppState, inference_job_id: uuid::Uuid) -> ApiResult<String> {
    let mut port = None;
    let mut host = state.settings.addr.clone();
    for (service_id, role) in inference_jobs::services_of_job(&state.pool, inference_job_id).await?
    {
        if role == inference_jobs::Role::Predictor {
            let Some(predictor) = services::get(&state.pool, service_id).await? else {
                continue;
            };
            port = predictor.port;
            // The swarm backend publishes a predictor on its node, whose address it stores;
            // the others on this machine.
            if predictor.backend == BackendKind::Swarm {
                if let Some(node) = predictor.host {
                    host = node;
                }
            }
        }
    }
    Ok(format!("{host}:{}", port.unwrap_or_default()))
}

/// Stops the running inference job; returns when its services are gone.
#[utoipa::path(post, path = "/inference_jobs/{app}/{app_version}/stop", security(("bearer" = [])),
    params(("app" = String, Path), ("app_version" = i32, Path)),
    responses((status = 200, body = InferenceJobRef),
    (status = 404, description = "InvalidRunningInferenceJobError", body = ErrorBody)))]
pub async fn stop_inference_job(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath((app, app_version)): ApiPath<(String, i32)>,
) -> ApiResult<Json<InferenceJobRef>> {
    let record = stop(&state, caller, &app, app_version).await?;
    Ok(Json(InferenceJobRef {
        id: record.job.id,
        train_job_id: record.job.train_job_id,
        app: record.job.app,
        app_version: record.job.app_version,
    }))
}

/// Stops the caller's running inference job of `app`/`app_version` (`POST
/// /inference_jobs/{app}/{v}/stop`'s logic, shared with the console): returns when its
/// services are gone.
pub async fn stop(
    state: &AppState,
    caller: AuthUser,
    app: &str,
    app_version: i32,
) -> ApiResult<InferenceJobRecord> {
    let record = running_job(state, caller, app, app_version).await?;
    state.orchestrator.stop_inference_job(record.job.id).await?;
    Ok(record)
}
