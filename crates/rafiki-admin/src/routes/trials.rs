//! Trials (routes 18–20): one trial, its logs, its parameters. A trial is visible to its job's
//! owner and to admins.

use axum::extract::State;
use axum::response::Response;
use axum::Json;
use rafiki_store::train_jobs;
use rafiki_store::trials::{self, TrialRecord};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::internal::LogKind;
use rafiki_types::time::to_wire;
use rafiki_types::train::{LogMessage, LogPlot, Trial, TrialLogs};
use uuid::Uuid;

use crate::auth::extract::AuthUser;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::routes::download::stored_object;
use crate::state::AppState;
use crate::storage::ObjectKind;

/// The trial if the caller may see it: `InvalidTrialError` when it does not exist,
/// `UnauthorizedError` when it belongs to someone else's job. The rule of every trial route,
/// and of the console's trial page.
pub async fn visible_trial(state: &AppState, caller: AuthUser, id: Uuid) -> ApiResult<TrialRecord> {
    let record = trials::get(&state.pool, id).await?.ok_or_else(|| {
        ApiError::new(
            ErrorName::InvalidTrialError,
            format!("No trial has id {id}."),
        )
    })?;
    if !caller.is_admin() {
        let job = train_jobs::get(&state.pool, record.train_job_id).await?;
        if !job.is_some_and(|j| caller.may_act_for(j.user_id)) {
            return Err(ApiError::forbidden(
                "This trial belongs to another user's job.",
            ));
        }
    }
    Ok(record)
}

/// One trial.
#[utoipa::path(get, path = "/trials/{id}", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = Trial),
    (status = 403, description = "UnauthorizedError", body = ErrorBody),
    (status = 404, description = "InvalidTrialError", body = ErrorBody)))]
pub async fn get_trial(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Trial>> {
    Ok(Json(visible_trial(&state, caller, id).await?.trial))
}

/// What the trial's model logged (CONTRACT §5), in logging order.
#[utoipa::path(get, path = "/trials/{id}/logs", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses((status = 200, body = TrialLogs),
    (status = 403, description = "UnauthorizedError", body = ErrorBody),
    (status = 404, description = "InvalidTrialError", body = ErrorBody)))]
pub async fn get_trial_logs(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<TrialLogs>> {
    let record = visible_trial(&state, caller, id).await?;
    Ok(Json(logs_of(&state, &record).await?))
}

/// What a trial's model logged, as `GET /trials/{id}/logs` answers it; `record` comes from
/// [`visible_trial`].
pub async fn logs_of(state: &AppState, record: &TrialRecord) -> ApiResult<TrialLogs> {
    let mut logs = TrialLogs::default();
    for entry in trials::logs(&state.pool, record.trial.id).await? {
        match entry.kind {
            LogKind::Message => logs.messages.push(LogMessage {
                time: entry.time,
                message: entry.body["message"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned(),
            }),
            LogKind::Metrics => {
                // `time` first as the contract writes it, then the metrics in the order the
                // model logged them; a metric called `time` does not replace the time.
                let mut point =
                    serde_json::Map::from_iter([("time".to_owned(), to_wire(&entry.time).into())]);
                for (name, value) in entry.body.as_object().cloned().unwrap_or_default() {
                    point.entry(name).or_insert(value);
                }
                logs.metrics.push(point);
            }
            LogKind::Plot => logs.plots.push(LogPlot {
                title: entry.body["title"].as_str().unwrap_or_default().to_owned(),
                metrics: entry.body["metrics"]
                    .as_array()
                    .map(|m| {
                        m.iter()
                            .filter_map(|v| v.as_str().map(str::to_owned))
                            .collect()
                    })
                    .unwrap_or_default(),
                x_axis: entry.body["x_axis"].as_str().map(str::to_owned),
                time: entry.time,
            }),
        }
    }
    Ok(logs)
}

/// The trial's saved parameters, in the codec of `docs/parameters.md`.
#[utoipa::path(get, path = "/trials/{id}/parameters", security(("bearer" = [])),
    params(("id" = Uuid, Path)), responses(
    (status = 200, body = Vec<u8>, content_type = "application/octet-stream"),
    (status = 403, description = "UnauthorizedError", body = ErrorBody),
    (status = 404, description = "InvalidTrialError: no such trial, or no parameters saved", body = ErrorBody)))]
pub async fn get_trial_parameters(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let record = visible_trial(&state, caller, id).await?;
    parameters_of(&state, &record).await
}

/// A trial's stored parameters as `GET /trials/{id}/parameters` answers them
/// (`InvalidTrialError` when none were saved); `record` comes from [`visible_trial`].
pub async fn parameters_of(state: &AppState, record: &TrialRecord) -> ApiResult<Response> {
    let id = record.trial.id;
    let key = record.params_key.ok_or_else(|| {
        ApiError::new(
            ErrorName::InvalidTrialError,
            format!("Trial {id} has no saved parameters."),
        )
    })?;
    stored_object(&state.storage, ObjectKind::Params, key).await
}
