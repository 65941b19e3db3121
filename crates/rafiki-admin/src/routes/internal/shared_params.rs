//! Parameter sharing between the train workers of one model: a trial proposed with
//! `GLOBAL_BEST` or `GLOBAL_RECENT` starts from the saved parameters of a COMPLETED trial of
//! the caller's own sub-job, which this route names and `GET /internal/trials/{id}/parameters`
//! serves. Nothing of another sub-job (another model, job or user) is ever answered: the
//! sub-job comes from the caller's service token, never from the request.

use axum::extract::State;
use axum::Json;
use rafiki_store::trials::{self, SharedChoice};
use rafiki_types::internal::{SharedParameters, SharedParametersAnswer};
use rafiki_types::proposal::ParamsType;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::orchestrator::callers::TrainWorker;
use crate::orchestrator::workers::blob;
use crate::state::AppState;
use crate::storage::ObjectKind;

/// `GET /internal/train/parameters/{params_type}`: the best (`GLOBAL_BEST`) or most recent
/// (`GLOBAL_RECENT`) saved parameters of this worker's sub-job, or `{"shared": null}` when no
/// trial of it has saved any yet. `LOCAL_*` parameters are the worker's own and `NONE` asks for
/// nothing: both are refused with `InvalidRequestError`.
pub async fn shared_parameters(
    State(state): State<AppState>,
    worker: TrainWorker,
    ApiPath(params_type): ApiPath<ParamsType>,
) -> ApiResult<Json<SharedParametersAnswer>> {
    let choice = match params_type {
        ParamsType::GlobalBest => SharedChoice::Best,
        ParamsType::GlobalRecent => SharedChoice::Recent,
        other => {
            return Err(ApiError::invalid_request(format!(
            "Only GLOBAL_BEST and GLOBAL_RECENT parameters are shared through the admin, not {}.",
            other.as_str()
        )))
        }
    };
    let Some(trial) = trials::shared_params_of_sub_job(&state.pool, worker.sub.id, choice).await?
    else {
        return Ok(Json(SharedParametersAnswer { shared: None }));
    };
    let (key, sha256) = trial
        .params_key
        .zip(trial.params_sha256.clone())
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!(
                "trial {} has a parameters key without a checksum",
                trial.trial.id
            ))
        })?;
    let (_, size) = state.storage.open_object(ObjectKind::Params, key).await?;
    Ok(Json(SharedParametersAnswer {
        shared: Some(SharedParameters {
            trial_id: trial.trial.id,
            score: trial.trial.score,
            parameters: blob(trial.trial.id, &sha256, size),
        }),
    }))
}
