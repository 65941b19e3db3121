//! The file transfers of the internal API: a worker downloads its model's file, a train worker
//! its job's datasets, uploads its trials' parameters and downloads those its sub-job shares,
//! an inference worker downloads the parameters of the trial it serves. Each refuses what is
//! not the caller's own.

use axum::body::Body;
use axum::extract::State;
use axum::response::Response;
use axum::Json;
use futures_util::StreamExt;
use rafiki_store::{datasets, models, trials};
use rafiki_types::error::ErrorName;
use rafiki_types::ids::{ServiceId, TrialId};
use rafiki_types::status::TrialStatus;
use serde_json::json;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::orchestrator::callers::{ModelWorker, TrainWorker};
use crate::routes::download::stored_object;
use crate::state::AppState;
use crate::storage::{ObjectKind, WriteError};

/// `GET /internal/models/{id}/file`: the file of this worker's model (train or inference).
pub async fn model_file(
    State(state): State<AppState>,
    worker: ModelWorker,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let model = if worker.model_id() == id {
        models::get(&state.pool, id).await?
    } else {
        None
    };
    let key = model
        .map(|m| m.storage_key)
        .ok_or_else(|| ApiError::new(ErrorName::InvalidModelError, "Not this worker's model."))?;
    stored_object(&state.storage, ObjectKind::ModelFile, key).await
}

/// `GET /internal/datasets/{id}`: a dataset of this train worker's job.
pub async fn dataset_file(
    State(state): State<AppState>,
    worker: TrainWorker,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let job = &worker.job.job;
    let dataset = if id == job.train_dataset_id || id == job.val_dataset_id {
        datasets::get(&state.pool, id).await?
    } else {
        None
    };
    let key = dataset.map(|d| d.storage_key).ok_or_else(|| {
        ApiError::new(ErrorName::InvalidDatasetError, "Not a dataset of this job.")
    })?;
    stored_object(&state.storage, ObjectKind::Dataset, key).await
}

/// `PUT /internal/trials/{id}/parameters`: stores the parameters of a trial of this train
/// worker's (streamed to disk).
pub async fn put_trial_parameters(
    State(state): State<AppState>,
    worker: TrainWorker,
    ApiPath(id): ApiPath<Uuid>,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    worker.own_trial(&state, id).await?;
    let max_bytes = state.settings.max_params_bytes;
    let mut upload = state.storage.create(ObjectKind::Params, max_bytes).await?;
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| ApiError::invalid_request(format!("Upload broken: {e}")))?;
        upload.write(&chunk).await.map_err(|err| match err {
            WriteError::TooLarge { max_bytes } => ApiError::new(
                ErrorName::PayloadTooLargeError,
                format!("Parameters over {max_bytes} bytes (RAFIKI_MAX_PARAMS_BYTES)."),
            ),
            WriteError::Io(e) => ApiError::internal(e),
        })?;
    }
    let stored = upload.finish().await?;
    // Unless kept, `stored` is removed when dropped.
    let (trial, worker) = (TrialId(id), ServiceId(worker.service.id));
    match trials::set_params(&state.pool, trial, worker, stored.key(), stored.sha256()).await? {
        trials::ParamsStored::Stored => stored.keep(),
        trials::ParamsStored::AlreadyStored => {}
        trials::ParamsStored::Refused => {
            return Err(ApiError::new(
                ErrorName::InvalidTrialError,
                "The trial is not running, or already has other parameters.",
            ))
        }
    }
    Ok(Json(json!({})))
}

/// `GET /internal/trials/{id}/parameters`: the parameters of the trial this inference worker
/// serves, or, for a train worker, those of a COMPLETED trial of its own sub-job (parameter
/// sharing: `GET /internal/train/parameters/...` names the trial).
pub async fn get_trial_parameters(
    State(state): State<AppState>,
    worker: ModelWorker,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let key = match &worker {
        ModelWorker::Inference(w) => w.trial.params_key.filter(|_| w.trial.trial.id == id),
        ModelWorker::Train(w) => trials::get(&state.pool, id)
            .await?
            .filter(|t| t.sub_train_job_id == w.sub.id && t.trial.status == TrialStatus::Completed)
            .and_then(|t| t.params_key),
    };
    match key {
        Some(key) => stored_object(&state.storage, ObjectKind::Params, key).await,
        None => Err(ApiError::new(
            ErrorName::InvalidTrialError,
            match worker {
                ModelWorker::Inference(_) => "Not the trial this worker serves.",
                ModelWorker::Train(_) => "Not a completed trial with parameters of this model.",
            },
        )),
    }
}
