//! Train jobs (routes 12–17) and `POST /actions/stop_all_jobs`: creating a job validates in the
//! contract's order and hands it to the orchestrator; lookups by app are the caller's own jobs.

use axum::extract::State;
use axum::Json;
use rafiki_store::train_jobs::{self, NewTrainJob, TrainJobRecord};
use rafiki_store::{datasets, models, services, trials};
use rafiki_types::audit::{AuditAction, TargetKind};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::train::{
    CreateTrainJobRequest, TrainBudget, TrainJob, TrainJobDetail, TrainJobRef, Trial,
};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::audit::Origin;
use crate::auth::extract::{AuthUser, Authorized, Superadmins};
use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath, ApiQuery};
use crate::paging::{Listing, PageParams};
use crate::state::AppState;

/// Longest app name: it appears in URLs and listings.
pub const MAX_APP_CHARS: usize = 128;
/// Largest page of the full trial listing (`limit`).
pub const MAX_TRIALS_PAGE: i64 = 10_000;

fn reference(record: &TrainJobRecord) -> TrainJobRef {
    TrainJobRef {
        id: record.job.id,
        app: record.job.app.clone(),
        app_version: record.job.app_version,
    }
}

/// Creates a train job and launches its workers; answers without waiting for training.
#[utoipa::path(post, path = "/train_jobs", request_body = CreateTrainJobRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = TrainJobRef),
    (status = 400, description = "InvalidDatasetError, InvalidTrainJobError, NoModelsForTrainJobError, InvalidModelError or InvalidRequestError", body = ErrorBody),
    (status = 403, description = "UnauthorizedError: a dataset of someone else's", body = ErrorBody),
    (status = 503, description = "ServiceDeploymentError: not enough GPUs, or a launch failed", body = ErrorBody)))]
pub async fn create_train_job(
    State(state): State<AppState>,
    caller: AuthUser,
    origin: Origin,
    ApiJson(req): ApiJson<CreateTrainJobRequest>,
) -> ApiResult<Json<TrainJobRef>> {
    Ok(Json(reference(
        &create(&state, caller, &origin, &req).await?,
    )))
}

/// Validates a train job in the contract's order and hands it to the orchestrator, which
/// launches its workers (and records the job's audit row with it): `POST /train_jobs`' logic,
/// shared with the console's form.
pub async fn create(
    state: &AppState,
    caller: AuthUser,
    origin: &Origin,
    req: &CreateTrainJobRequest,
) -> ApiResult<TrainJobRecord> {
    let app = req.app.trim();
    if app.is_empty() || app.chars().count() > MAX_APP_CHARS || app.contains('/') {
        return Err(ApiError::invalid_request(format!(
            "`app` must be 1 to {MAX_APP_CHARS} characters without `/`."
        )));
    }
    if req.task.trim().is_empty() {
        return Err(ApiError::invalid_request("`task` must not be empty."));
    }
    // 1. The datasets exist and are the caller's.
    let mut dataset_tasks = Vec::new();
    for (field, id) in [
        ("train_dataset_id", req.train_dataset_id),
        ("val_dataset_id", req.val_dataset_id),
    ] {
        let dataset = datasets::get(&state.pool, id).await?.ok_or_else(|| {
            ApiError::new(
                ErrorName::InvalidDatasetError,
                format!("No dataset has id {id} (`{field}`)."),
            )
        })?;
        if dataset.owner_id != caller.id {
            return Err(ApiError::forbidden(format!(
                "Dataset {id} (`{field}`) is not yours."
            )));
        }
        dataset_tasks.push((field, id, dataset.task));
    }
    // 2. No live job of the same app.
    if train_jobs::has_live(&state.pool, caller.id, app).await? {
        return Err(ApiError::new(
            ErrorName::InvalidTrainJobError,
            format!("A train job of app `{app}` is already running; stop it first."),
        ));
    }
    // 3. At least one model.
    if req.model_ids.is_empty() {
        return Err(ApiError::new(
            ErrorName::NoModelsForTrainJobError,
            "`model_ids` is empty: give at least one model.",
        ));
    }
    // 4. Every model is available to the caller for the task.
    for (i, id) in req.model_ids.iter().enumerate() {
        if req.model_ids[..i].contains(id) {
            return Err(ApiError::new(
                ErrorName::InvalidModelError,
                format!("Model {id} is listed twice."),
            ));
        }
        let model = models::get(&state.pool, *id)
            .await?
            .filter(|m| caller.may_use_model(m))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorName::InvalidModelError,
                    format!("No model with id {id} is available to you."),
                )
            })?;
        if model.task != req.task {
            return Err(ApiError::new(
                ErrorName::InvalidModelError,
                format!(
                    "Model `{}` is for task {}, not {}.",
                    model.name, model.task, req.task
                ),
            ));
        }
    }
    // 5. The datasets are of the job's task.
    for (field, id, task) in &dataset_tasks {
        if *task != req.task {
            return Err(ApiError::new(
                ErrorName::InvalidDatasetError,
                format!(
                    "Dataset {id} (`{field}`) is for task {task}, not {}.",
                    req.task
                ),
            ));
        }
    }
    // 6. The budget, and train_args: keyword arguments of `train()`, so an object (or null);
    // anything else would only fail in every worker.
    let budget =
        TrainBudget::parse(&req.budget).map_err(|e| ApiError::invalid_request(e.to_string()))?;
    if let Some(args) = req
        .train_args
        .as_ref()
        .filter(|a| !a.is_null() && !a.is_object())
    {
        return Err(ApiError::invalid_request(format!(
            "`train_args` must be an object of keyword arguments for train() (or null), \
             not {args}."
        )));
    }
    let new = NewTrainJob {
        user_id: caller.id,
        app,
        task: &req.task,
        budget,
        train_dataset_id: req.train_dataset_id,
        val_dataset_id: req.val_dataset_id,
        train_args: req.train_args.as_ref().filter(|a| !a.is_null()),
    };
    Ok(state
        .orchestrator
        .create_train_job(&new, &req.model_ids, &origin.actor(caller))
        .await?)
}

/// `?user_id=` of the listings.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ByUser {
    /// Whose jobs (another user's only for admins).
    pub user_id: Option<Uuid>,
}

impl ByUser {
    /// The user whose jobs to list: required, and another user only for admins.
    pub fn user_to_list(&self, caller: AuthUser) -> ApiResult<Uuid> {
        let user_id = self
            .user_id
            .ok_or_else(|| ApiError::invalid_request("Query parameter `user_id` is required."))?;
        if !caller.may_act_for(user_id) {
            return Err(ApiError::forbidden("Only admins list other users' jobs."));
        }
        Ok(user_id)
    }
}

/// Lists a user's train jobs, newest first, a page at a time.
#[utoipa::path(get, path = "/train_jobs", params(ByUser, PageParams), security(("bearer" = [])),
    responses(
    (status = 200, body = Vec<TrainJob>),
    (status = 400, description = "InvalidRequestError: no user_id, or a bad `limit` or `offset`",
        body = ErrorBody),
    (status = 403, description = "UnauthorizedError: another user's jobs", body = ErrorBody)))]
pub async fn list_train_jobs(
    State(state): State<AppState>,
    caller: AuthUser,
    Listing { filters, page }: Listing<ByUser>,
) -> ApiResult<Json<Vec<TrainJob>>> {
    let user_id = filters.user_to_list(caller)?;
    let jobs = train_jobs::list(&state.pool, user_id, None, page.limit, page.offset).await?;
    Ok(Json(jobs.into_iter().map(|r| r.job).collect()))
}

/// The caller's train jobs of an app, highest version first, a page at a time.
#[utoipa::path(get, path = "/train_jobs/{app}", security(("bearer" = [])),
    params(("app" = String, Path), PageParams), responses((status = 200, body = Vec<TrainJob>),
    (status = 400, description = "InvalidRequestError: a bad `limit` or `offset`", body = ErrorBody)))]
pub async fn list_train_jobs_of_app(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath(app): ApiPath<String>,
    Listing { page, .. }: Listing,
) -> ApiResult<Json<Vec<TrainJob>>> {
    let jobs =
        train_jobs::list(&state.pool, caller.id, Some(&app), page.limit, page.offset).await?;
    Ok(Json(jobs.into_iter().map(|r| r.job).collect()))
}

/// The caller's job of `app` at `app_version` (-1: the latest), or `InvalidTrainJobError`.
pub async fn caller_job(
    state: &AppState,
    caller: AuthUser,
    app: &str,
    app_version: i32,
) -> ApiResult<TrainJobRecord> {
    train_jobs::get_by_app(&state.pool, caller.id, app, app_version)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorName::InvalidTrainJobError,
                format!("You have no train job of app `{app}` version {app_version}."),
            )
            .with_status(axum::http::StatusCode::NOT_FOUND)
        })
}

/// One of the caller's train jobs, with what its workers reported about their dependency
/// environments.
#[utoipa::path(get, path = "/train_jobs/{app}/{app_version}", security(("bearer" = [])),
    params(("app" = String, Path), ("app_version" = i32, Path, description = "-1 for the latest")),
    responses((status = 200, body = TrainJobDetail),
    (status = 404, description = "InvalidTrainJobError", body = ErrorBody)))]
pub async fn get_train_job(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath((app, app_version)): ApiPath<(String, i32)>,
) -> ApiResult<Json<TrainJobDetail>> {
    let record = caller_job(&state, caller, &app, app_version).await?;
    let environments = services::environments_of_train_job(&state.pool, record.job.id).await?;
    Ok(Json(TrainJobDetail {
        job: record.job,
        environments,
    }))
}

/// Stops a train job; returns when its workers are gone and it reads STOPPED.
#[utoipa::path(post, path = "/train_jobs/{app}/{app_version}/stop", security(("bearer" = [])),
    params(("app" = String, Path), ("app_version" = i32, Path)),
    responses((status = 200, body = TrainJobRef),
    (status = 404, description = "InvalidTrainJobError", body = ErrorBody)))]
pub async fn stop_train_job(
    State(state): State<AppState>,
    caller: AuthUser,
    origin: Origin,
    ApiPath((app, app_version)): ApiPath<(String, i32)>,
) -> ApiResult<Json<TrainJobRef>> {
    Ok(Json(reference(
        &stop(&state, caller, &origin, &app, app_version).await?,
    )))
}

/// Stops the caller's job of `app` at `app_version` (`POST /train_jobs/{app}/{v}/stop`'s
/// logic, shared with the console): returns when its workers are gone, its end recorded with
/// its audit row.
pub async fn stop(
    state: &AppState,
    caller: AuthUser,
    origin: &Origin,
    app: &str,
    app_version: i32,
) -> ApiResult<TrainJobRecord> {
    let record = caller_job(state, caller, app, app_version).await?;
    let event = origin.actor(caller).did(
        AuditAction::TrainJobStop,
        TargetKind::TrainJob,
        record.job.id,
    );
    state
        .orchestrator
        .stop_train_job(record.job.id, &event)
        .await?;
    Ok(record)
}

/// Query of the trial listing: `type=best` with `max_count`, or `limit` and `offset`.
#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TrialsQuery {
    /// `best` for the best trials.
    #[serde(rename = "type")]
    pub kind: Option<String>,
    /// How many best trials (default 2).
    pub max_count: Option<i64>,
    /// Page size of the full listing (default 1000).
    pub limit: Option<i64>,
    /// Offset into the full listing (default 0).
    pub offset: Option<i64>,
}

/// A train job's trials: newest first, or the best ones with `type=best`.
#[utoipa::path(get, path = "/train_jobs/{app}/{app_version}/trials", security(("bearer" = [])),
    params(("app" = String, Path), ("app_version" = i32, Path), TrialsQuery),
    responses((status = 200, body = Vec<Trial>),
    (status = 404, description = "InvalidTrainJobError", body = ErrorBody)))]
pub async fn list_trials(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath((app, app_version)): ApiPath<(String, i32)>,
    ApiQuery(query): ApiQuery<TrialsQuery>,
) -> ApiResult<Json<Vec<Trial>>> {
    let job = caller_job(&state, caller, &app, app_version).await?;
    let records = match query.kind.as_deref() {
        Some("best") => {
            let max_count = query.max_count.unwrap_or(2);
            if max_count < 1 {
                return Err(ApiError::invalid_request("`max_count` must be at least 1."));
            }
            trials::best_for_job(&state.pool, job.job.id, max_count).await?
        }
        None => {
            let limit = query.limit.unwrap_or(1000);
            let offset = query.offset.unwrap_or(0);
            if !(1..=MAX_TRIALS_PAGE).contains(&limit) || offset < 0 {
                return Err(ApiError::invalid_request(format!(
                    "`limit` must be 1 to {MAX_TRIALS_PAGE} and `offset` at least 0."
                )));
            }
            trials::list_for_job(&state.pool, job.job.id, limit, offset).await?
        }
        Some(other) => {
            return Err(ApiError::invalid_request(format!(
                "Unknown `type={other}`; the only type is `best`."
            )))
        }
    };
    Ok(Json(records.into_iter().map(|r| r.trial).collect()))
}

/// `{id}` of a stopped job.
#[derive(Serialize, utoipa::ToSchema)]
pub struct JobId {
    /// The job's id.
    pub id: Uuid,
}

/// `POST /actions/stop_all_jobs` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct StoppedJobs {
    /// Train jobs that were stopped.
    pub train_jobs: Vec<JobId>,
    /// Inference jobs that were stopped.
    pub inference_jobs: Vec<JobId>,
}

/// Stops every live job of every user (superadmin only).
#[utoipa::path(post, path = "/actions/stop_all_jobs", security(("bearer" = [])), responses(
    (status = 200, body = StoppedJobs),
    (status = 403, description = "UnauthorizedError", body = ErrorBody)))]
pub async fn stop_all_jobs(
    State(state): State<AppState>,
    caller: Authorized<Superadmins>,
    origin: Origin,
) -> ApiResult<Json<StoppedJobs>> {
    Ok(Json(stop_all(&state, caller, &origin).await?))
}

/// Stops every live job of every user, inference jobs first: what `POST /actions/stop_all_jobs`
/// and the console's stop-everything button both do. Only for the superadmin: the caller's
/// [`Authorized`] is the proof. Each job stopped gets a `jobs.stop_all` audit row.
pub async fn stop_all(
    state: &AppState,
    caller: Authorized<Superadmins>,
    origin: &Origin,
) -> ApiResult<StoppedJobs> {
    let actor = origin.actor(caller.0);
    let mut inference = Vec::new();
    for job in rafiki_store::inference_jobs::list_live(&state.pool).await? {
        let event = actor.did(
            AuditAction::JobsStopAll,
            TargetKind::InferenceJob,
            job.job.id,
        );
        state
            .orchestrator
            .stop_inference_job(job.job.id, &event)
            .await?;
        inference.push(JobId { id: job.job.id });
    }
    let mut train = Vec::new();
    for job in train_jobs::list_live(&state.pool).await? {
        let event = actor.did(AuditAction::JobsStopAll, TargetKind::TrainJob, job.job.id);
        state
            .orchestrator
            .stop_train_job(job.job.id, &event)
            .await?;
        train.push(JobId { id: job.job.id });
    }
    Ok(StoppedJobs {
        train_jobs: train,
        inference_jobs: inference,
    })
}
