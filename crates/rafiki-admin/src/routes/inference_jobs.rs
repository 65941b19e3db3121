//! Inference jobs (routes 21–25): deploy a stopped train job's best trial of each model behind
//! a predictor, list deployments, find the running one and its `predictor_host`, stop it.

use axum::extract::State;
use axum::Json;
use rafiki_store::inference_jobs::{self, InferenceJobRecord};
use rafiki_store::{services, trials};
use rafiki_types::audit::{AuditAction, TargetKind};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::ids::{TrainJobId, UserId};
use rafiki_types::inference::{
    CreateInferenceJobRequest, CreatedInferenceJob, InferenceBudget, InferenceJob, InferenceJobRef,
    RunningInferenceJob,
};
use rafiki_types::status::{BackendKind, JobStatus};

use crate::audit::Origin;
use crate::auth::extract::AuthUser;
use crate::config::Settings;
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
    origin: Origin,
    ApiJson(req): ApiJson<CreateInferenceJobRequest>,
) -> ApiResult<Json<CreatedInferenceJob>> {
    Ok(Json(create(&state, caller, &origin, req).await?))
}

/// Deploys the best trial of each model of the caller's stopped train job: `POST
/// /inference_jobs`' logic, shared with the console's deploy button. The job's audit row is
/// written with it.
pub async fn create(
    state: &AppState,
    caller: AuthUser,
    origin: &Origin,
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
        .create_inference_job(
            UserId(caller.id),
            TrainJobId(train.job.id),
            &best,
            budget,
            &origin.actor(caller),
        )
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
    Ok(published_predictor(state, inference_job_id)
        .await?
        .for_clients(&state.settings))
}

/// `host:port` the admin itself dials to reach an inference job's predictor (the console's
/// predict box): not always `predictor_host`, whose host is the clients' name for this machine.
pub async fn predictor_address_for_admin(
    state: &AppState,
    inference_job_id: uuid::Uuid,
) -> ApiResult<String> {
    Ok(published_predictor(state, inference_job_id)
        .await?
        .for_admin(&state.settings))
}

/// Where a predictor's port is published.
#[derive(Debug, Default)]
struct PublishedPredictor {
    /// The address of the node it is published on (swarm); `None`: this machine.
    node: Option<String>,
    port: Option<i32>,
}

impl PublishedPredictor {
    fn for_clients(&self, settings: &Settings) -> String {
        let host = self.node.as_deref().unwrap_or(&settings.addr);
        format!("{host}:{}", self.port.unwrap_or_default())
    }

    fn for_admin(&self, settings: &Settings) -> String {
        // A node's address leads to its node from anywhere, the admin's container included,
        // except a loopback one (a one-node swarm advertised on 127.0.0.1): that is this
        // machine, which the admin reaches as it reaches predictors published here.
        let host = match self.node.as_deref() {
            Some(node) if !is_loopback(node) => node,
            _ => &settings.predictor_reach_host,
        };
        format!("{host}:{}", self.port.unwrap_or_default())
    }
}

fn is_loopback(host: &str) -> bool {
    host.parse::<std::net::IpAddr>()
        .is_ok_and(|ip| ip.is_loopback())
}

async fn published_predictor(
    state: &AppState,
    inference_job_id: uuid::Uuid,
) -> ApiResult<PublishedPredictor> {
    let mut published = PublishedPredictor::default();
    for (service_id, role) in inference_jobs::services_of_job(&state.pool, inference_job_id).await?
    {
        if role == inference_jobs::Role::Predictor {
            let Some(predictor) = services::get(&state.pool, service_id).await? else {
                continue;
            };
            published.port = predictor.port;
            // The swarm backend publishes a predictor on its node, whose address it stores;
            // the others on this machine.
            if predictor.backend == BackendKind::Swarm {
                published.node = predictor.host;
            }
        }
    }
    Ok(published)
}

/// Stops the running inference job; returns when its services are gone.
#[utoipa::path(post, path = "/inference_jobs/{app}/{app_version}/stop", security(("bearer" = [])),
    params(("app" = String, Path), ("app_version" = i32, Path)),
    responses((status = 200, body = InferenceJobRef),
    (status = 404, description = "InvalidRunningInferenceJobError", body = ErrorBody)))]
pub async fn stop_inference_job(
    State(state): State<AppState>,
    caller: AuthUser,
    origin: Origin,
    ApiPath((app, app_version)): ApiPath<(String, i32)>,
) -> ApiResult<Json<InferenceJobRef>> {
    let record = stop(&state, caller, &origin, &app, app_version).await?;
    Ok(Json(InferenceJobRef {
        id: record.job.id,
        train_job_id: record.job.train_job_id,
        app: record.job.app,
        app_version: record.job.app_version,
    }))
}

/// Stops the caller's running inference job of `app`/`app_version` (`POST
/// /inference_jobs/{app}/{v}/stop`'s logic, shared with the console): returns when its
/// services are gone, its end recorded with its audit row.
pub async fn stop(
    state: &AppState,
    caller: AuthUser,
    origin: &Origin,
    app: &str,
    app_version: i32,
) -> ApiResult<InferenceJobRecord> {
    let record = running_job(state, caller, app, app_version).await?;
    let event = origin.actor(caller).did(
        AuditAction::InferenceJobStop,
        TargetKind::InferenceJob,
        record.job.id,
    );
    state
        .orchestrator
        .stop_inference_job(record.job.id, &event)
        .await?;
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(reach: &str) -> Settings {
        let mut settings = Settings::dev_defaults();
        settings.addr = "rafiki.example".into();
        settings.predictor_reach_host = reach.into();
        settings
    }

    #[test]
    fn the_admin_dials_predictors_here_at_the_reach_host_and_clients_are_told_the_address() {
        let here = PublishedPredictor {
            node: None,
            port: Some(40001),
        };
        // Unset, the reach host is RAFIKI_ADDR: the process backend's choice is unchanged.
        let unset = settings("rafiki.example");
        assert_eq!(here.for_clients(&unset), "rafiki.example:40001");
        assert_eq!(here.for_admin(&unset), "rafiki.example:40001");
        let in_a_container = settings("host.docker.internal");
        assert_eq!(here.for_clients(&in_a_container), "rafiki.example:40001");
        assert_eq!(
            here.for_admin(&in_a_container),
            "host.docker.internal:40001"
        );
    }

    #[test]
    fn a_swarm_predictor_is_dialled_on_its_node_unless_the_node_is_a_loopback_address() {
        let settings = settings("host.docker.internal");
        let on = |node: &str| PublishedPredictor {
            node: Some(node.into()),
            port: Some(30000),
        };
        assert_eq!(on("10.0.0.7").for_clients(&settings), "10.0.0.7:30000");
        assert_eq!(on("10.0.0.7").for_admin(&settings), "10.0.0.7:30000");
        assert_eq!(on("127.0.0.1").for_clients(&settings), "127.0.0.1:30000");
        assert_eq!(
            on("127.0.0.1").for_admin(&settings),
            "host.docker.internal:30000"
        );
    }
}
