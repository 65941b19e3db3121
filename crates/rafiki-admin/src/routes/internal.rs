//! The internal API for services (`docs/internal-api.md`): authenticated by the service's
//! bearer token, every call scoped to that service's job. Train workers fetch their job and
//! files, report their model's knob config, ask for trials, and send logs, parameters and
//! results here.

use axum::body::Body;
use axum::extract::{FromRequestParts, State};
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use axum::response::Response;
use axum::Json;
use chrono::Utc;
use futures_util::StreamExt;
use rafiki_store::services::ServiceRecord;
use rafiki_store::train_jobs::{self, SubTrainJob, TrainJobRecord};
use rafiki_store::{datasets, models, services, trials};
use rafiki_types::error::ErrorName;
use rafiki_types::internal::{
    BlobRef, EnvironmentReport, KnobConfigAccepted, LogBatch, LogEntry, LogKind, NextTrial,
    TrainWorkerJob, TrialAssignment, TrialOutcome, WorkerFailure, WorkerModel,
};
use rafiki_types::knob::{validate_knob_config, KnobConfig};
use rafiki_types::status::{JobStatus, ServiceStatus, ServiceType, TrialStatus};
use serde_json::json;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::orchestrator::token_hash;
use crate::routes::download::stored_object;
use crate::state::AppState;
use crate::storage::{ObjectKind, WriteError};

/// A live service calling with its token.
pub struct ServiceCaller(pub ServiceRecord);

impl FromRequestParts<AppState> for ServiceCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .ok_or_else(|| {
                ApiError::new(
                    ErrorName::InvalidAuthorizationHeaderError,
                    "Send `Authorization: Bearer <service token>`.",
                )
            })?;
        let service = services::find_live_by_token_hash(&state.pool, &token_hash(token.trim()))
            .await?
            .ok_or_else(|| {
                ApiError::new(ErrorName::UnauthorizedError, "Unknown or stopped service.")
            })?;
        Ok(ServiceCaller(service))
    }
}

/// A train worker's sub-job and train job.
struct TrainContext {
    sub: SubTrainJob,
    job: TrainJobRecord,
}

async fn train_context(state: &AppState, service: &ServiceRecord) -> ApiResult<TrainContext> {
    let not_train = || ApiError::forbidden("Only train workers may do this.");
    let sub_id = services::train_worker_sub_job(&state.pool, service.id)
        .await?
        .ok_or_else(not_train)?;
    let sub = train_jobs::get_sub(&state.pool, sub_id)
        .await?
        .ok_or_else(not_train)?;
    let job = train_jobs::get(&state.pool, sub.train_job_id)
        .await?
        .ok_or_else(not_train)?;
    Ok(TrainContext { sub, job })
}

/// Marks the calling service RUNNING (from STARTED or DEPLOYING; a no-op once running).
pub(crate) async fn mark_running(state: &AppState, service: &ServiceRecord) -> ApiResult<()> {
    if service.status != ServiceStatus::Running {
        services::set_status(
            &state.pool,
            service.id,
            service.status,
            ServiceStatus::Running,
            None,
        )
        .await?;
    }
    Ok(())
}

/// A model as its workers get it (train and inference alike).
pub(crate) fn worker_model(model: &models::ModelRecord) -> WorkerModel {
    WorkerModel {
        id: model.id,
        name: model.name.clone(),
        model_class: model.model_class.clone(),
        dependencies: model.dependencies.clone().into_iter().collect(),
        dependency_pins: model.dependency_pins,
        file: blob(model.id, &model.sha256, model.size_bytes),
    }
}

pub(crate) fn blob(id: Uuid, sha256: &str, size: u64) -> BlobRef {
    BlobRef {
        id,
        sha256: sha256.to_owned(),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
    }
}

/// `GET /internal/train/job`: what this worker works on; marks it RUNNING.
pub async fn train_job(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
) -> ApiResult<Json<TrainWorkerJob>> {
    let ctx = train_context(&state, &service).await?;
    let model = models::get(&state.pool, ctx.sub.model_id)
        .await?
        .ok_or_else(|| {
            ApiError::internal(anyhow::anyhow!("model of sub-job {} is gone", ctx.sub.id))
        })?;
    let train = job_dataset(&state, ctx.job.job.train_dataset_id).await?;
    let val = job_dataset(&state, ctx.job.job.val_dataset_id).await?;
    mark_running(&state, &service).await?;
    Ok(Json(TrainWorkerJob {
        service_id: service.id,
        train_job_id: ctx.job.job.id,
        sub_train_job_id: ctx.sub.id,
        task: ctx.job.job.task.clone(),
        train_args: ctx.job.job.train_args.clone(),
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

/// `GET /internal/models/{id}/file`: the file of this worker's model (train or inference).
pub async fn model_file(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let model_id = match services::train_worker_sub_job(&state.pool, service.id).await? {
        Some(_) => train_context(&state, &service).await?.sub.model_id,
        None => {
            crate::routes::internal_inference::worker_context(&state, &service)
                .await?
                .sub
                .model_id
        }
    };
    if model_id != id {
        return Err(ApiError::new(
            ErrorName::InvalidModelError,
            "Not this worker's model.",
        ));
    }
    let model = models::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorName::InvalidModelError, "No such model."))?;
    stored_object(&state.storage, ObjectKind::ModelFile, model.storage_key).await
}

/// `GET /internal/datasets/{id}`: a dataset of this worker's job.
pub async fn dataset_file(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    let ctx = train_context(&state, &service).await?;
    if id != ctx.job.job.train_dataset_id && id != ctx.job.job.val_dataset_id {
        return Err(ApiError::new(
            ErrorName::InvalidDatasetError,
            "Not a dataset of this job.",
        ));
    }
    let dataset = datasets::get(&state.pool, id)
        .await?
        .ok_or_else(|| ApiError::new(ErrorName::InvalidDatasetError, "No such dataset."))?;
    stored_object(&state.storage, ObjectKind::Dataset, dataset.storage_key).await
}

/// `PUT /internal/train/knob_config`: the model's search space; picks its advisor. An invalid
/// config ends the model's sub-job ERRORED.
pub async fn knob_config(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    ApiJson(raw): ApiJson<serde_json::Value>,
) -> ApiResult<Json<KnobConfigAccepted>> {
    let ctx = train_context(&state, &service).await?;
    let parsed = serde_json::from_value::<KnobConfig>(raw.clone())
        .map_err(|e| e.to_string())
        .and_then(|config| {
            validate_knob_config(&config)
                .map(|()| config)
                .map_err(|e| e.to_string())
        });
    let config = match parsed {
        Ok(config) => config,
        Err(reason) => {
            let error = format!("The model's knob config is invalid: {reason}");
            train_jobs::finish_sub(&state.pool, ctx.sub.id, JobStatus::Errored, Some(&error))
                .await?;
            return Err(ApiError::new(ErrorName::InvalidModelError, error));
        }
    };
    let advisor = rafiki_advisor::advisor_type(&config);
    train_jobs::set_knob_config(&state.pool, ctx.sub.id, advisor, &raw).await?;
    Ok(Json(KnobConfigAccepted {
        advisor_type: advisor,
    }))
}

/// `POST /internal/train/trials`: the next trial, recorded RUNNING in the same transaction as
/// the advisor's decision, or `BUDGET_SPENT`.
pub async fn next_trial(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
) -> ApiResult<Json<NextTrial>> {
    let ctx = train_context(&state, &service).await?;
    let mut tx = state.pool.begin().await.map_err(ApiError::internal)?;
    let Some(sub) = train_jobs::lock_sub(&mut *tx, ctx.sub.id).await? else {
        return Ok(Json(NextTrial::BudgetSpent));
    };
    let job = train_jobs::get(&mut *tx, sub.train_job_id)
        .await?
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("train job of {} is gone", sub.id)))?;
    if !sub.status.is_live() || !job.job.status.is_live() {
        return Ok(Json(NextTrial::BudgetSpent));
    }
    // A worker runs one trial at a time. An unfinished trial it never touched is one whose
    // assignment was lost on the way (the worker retried): hand it out again. One it touched
    // and left is abandoned.
    if let Some((trial, touched)) = trials::unfinished_of_worker(&mut tx, service.id).await? {
        if !touched {
            tx.commit().await.map_err(ApiError::internal)?;
            return Ok(Json(NextTrial::Trial {
                trial: TrialAssignment {
                    id: trial.trial.id,
                    no: trial.trial.no,
                    proposal: trial.trial.proposal,
                },
            }));
        }
        trials::error_in_flight_of_worker(
            &mut *tx,
            service.id,
            "The worker asked for another trial without finishing this one.",
        )
        .await?;
    }
    let raw_config = sub.knob_config.clone().ok_or_else(|| {
        ApiError::invalid_request("Report the model's knob config before asking for trials.")
    })?;
    let config: KnobConfig = serde_json::from_value(raw_config).map_err(ApiError::internal)?;
    let history: Vec<rafiki_advisor::PastTrial> = trials::history(&mut *tx, sub.id)
        .await?
        .into_iter()
        .map(|t| match t.status {
            TrialStatus::Completed => rafiki_advisor::PastTrial {
                proposal: t.proposal,
                state: rafiki_advisor::TrialState::Completed,
                score: t.score,
            },
            TrialStatus::Errored => rafiki_advisor::PastTrial::errored(t.proposal),
            TrialStatus::Pending | TrialStatus::Running => {
                rafiki_advisor::PastTrial::running(t.proposal)
            }
        })
        .collect();
    let trial_no = u32::try_from(history.len() + 1).map_err(ApiError::internal)?;
    let seed_bytes: [u8; 8] = sub.id.as_bytes()[..8]
        .try_into()
        .map_err(ApiError::internal)?;
    let request = rafiki_advisor::Request {
        config: &config,
        budget: rafiki_advisor::Budget::from_options(
            job.job.budget.time_hours,
            job.job.budget.model_trial_count,
        ),
        history: &history,
        trial_no,
        // Installing dependencies and loading the model came before: not charged.
        started_at: sub.budget_clock_start(),
        now: Utc::now(),
        seed: u64::from_le_bytes(seed_bytes),
    };
    let decision = rafiki_advisor::propose(&request).map_err(ApiError::internal)?;
    let proposal = match decision {
        rafiki_advisor::Decision::BudgetSpent => {
            // Kept for supervision: a worker gone after this answer ended its work.
            train_jobs::mark_budget_spent(&mut *tx, sub.id).await?;
            tx.commit().await.map_err(ApiError::internal)?;
            return Ok(Json(NextTrial::BudgetSpent));
        }
        rafiki_advisor::Decision::Propose(proposal) => proposal,
    };
    let id = trials::insert_running(&mut *tx, job.job.id, sub.id, service.id, &proposal).await?;
    // The first trial moves the model and the job to RUNNING (guarded: once).
    train_jobs::mark_sub_running(&mut *tx, sub.id).await?;
    train_jobs::mark_running(&mut *tx, job.job.id).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    Ok(Json(NextTrial::Trial {
        trial: TrialAssignment {
            id,
            no: i32::try_from(proposal.trial_no).map_err(ApiError::internal)?,
            proposal,
        },
    }))
}

/// A trial of this worker's, or `InvalidTrialError`.
async fn own_trial(
    state: &AppState,
    service: &ServiceRecord,
    id: Uuid,
) -> ApiResult<trials::TrialRecord> {
    trials::get(&state.pool, id)
        .await?
        .filter(|t| t.trial.worker_id == Some(service.id))
        .ok_or_else(|| ApiError::new(ErrorName::InvalidTrialError, "Not a trial of this worker."))
}

/// `POST /internal/trials/{id}/logs`: appends log entries, in order, up to
/// `RAFIKI_MAX_TRIAL_LOG_ENTRIES` per trial (later ones are dropped behind one marker entry; the
/// trial goes on), each cut to `RAFIKI_MAX_TRIAL_LOG_ENTRY_BYTES`.
pub async fn trial_logs(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(batch): ApiJson<LogBatch>,
) -> ApiResult<Json<serde_json::Value>> {
    own_trial(&state, &service, id).await?;
    let max_bytes = state.settings.max_trial_log_entry_bytes;
    let entries: Vec<LogEntry> = batch
        .entries
        .into_iter()
        .map(|entry| fit_log_entry(entry, max_bytes))
        .collect();
    let max_entries = state.settings.max_trial_log_entries;
    let marker = log_message(format!(
        "Later log entries of this trial were dropped: a trial keeps at most {max_entries} \
         (RAFIKI_MAX_TRIAL_LOG_ENTRIES)."
    ));
    let mut tx = state.pool.begin().await.map_err(ApiError::internal)?;
    let dropped = trials::append_logs(&mut tx, id, &entries, max_entries, &marker).await?;
    tx.commit().await.map_err(ApiError::internal)?;
    if dropped > 0 {
        tracing::debug!(trial = %id, dropped, "trial log entries past the cap dropped");
    }
    Ok(Json(json!({})))
}

/// `PUT /internal/trials/{id}/parameters`: stores the trial's parameters (streamed to disk).
pub async fn trial_parameters(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    ApiPath(id): ApiPath<Uuid>,
    body: Body,
) -> ApiResult<Json<serde_json::Value>> {
    own_trial(&state, &service, id).await?;
    let max_bytes = state.settings.max_params_bytes;
    let mut upload = state
        .storage
        .create(ObjectKind::Params, max_bytes)
        .await
        .map_err(ApiError::internal)?;
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
    let stored = upload.finish().await.map_err(ApiError::internal)?;
    // Unless kept, `stored` is removed when dropped.
    match trials::set_params(&state.pool, id, service.id, stored.key(), stored.sha256()).await? {
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

/// `POST /internal/trials/{id}/finish`: the trial's result.
pub async fn finish_trial(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
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
    if !trials::finish(&state.pool, id, service.id, &outcome).await? {
        return Err(ApiError::new(
            ErrorName::InvalidTrialError,
            "Not a running trial of this worker.",
        ));
    }
    Ok(Json(json!({})))
}

/// `POST /internal/environment`: how a train or inference worker got its model's
/// dependencies; shown with its train job (`GET /train_jobs/{app}/{app_version}`).
pub async fn environment_report(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    ApiJson(report): ApiJson<EnvironmentReport>,
) -> ApiResult<Json<serde_json::Value>> {
    if !matches!(
        service.service_type,
        ServiceType::Train | ServiceType::Inference
    ) {
        return Err(ApiError::forbidden("Only workers report environments."));
    }
    if !report.seconds.is_finite() || report.seconds < 0.0 {
        return Err(ApiError::invalid_request(
            "`seconds` must be a number of seconds, at least 0.",
        ));
    }
    // Warnings come from the worker, which runs the model's pip: bounded like log entries.
    let max_bytes = state.settings.max_trial_log_entry_bytes;
    let report = EnvironmentReport {
        warnings: report
            .warnings
            .into_iter()
            .take(100)
            .map(|w| cut_text(w, max_bytes))
            .collect(),
        ..report
    };
    services::set_environment(&state.pool, service.id, &report).await?;
    Ok(Json(json!({})))
}

/// `text` cut to at most `max_bytes` bytes, on a character boundary.
fn cut_text(mut text: String, max_bytes: usize) -> String {
    if text.len() > max_bytes {
        let mut end = max_bytes;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// `POST /internal/train/fail`: this worker's model cannot be tuned; its sub-job ERRORED.
pub async fn train_failed(
    State(state): State<AppState>,
    ServiceCaller(service): ServiceCaller,
    ApiJson(failure): ApiJson<WorkerFailure>,
) -> ApiResult<Json<serde_json::Value>> {
    let ctx = train_context(&state, &service).await?;
    trials::error_in_flight_of_worker(&state.pool, service.id, &failure.error).await?;
    train_jobs::finish_sub(
        &state.pool,
        ctx.sub.id,
        JobStatus::Errored,
        Some(&failure.error),
    )
    .await?;
    Ok(Json(json!({})))
}

/// A MESSAGE entry logged now.
fn log_message(message: String) -> LogEntry {
    LogEntry {
        time: Utc::now(),
        kind: LogKind::Message,
        body: json!({ "message": message }),
    }
}

/// Keeps an entry whose JSON body is at most `max_bytes`; cuts a longer message to fit, and
/// replaces a longer plot or metrics entry with a message saying it was dropped.
fn fit_log_entry(entry: LogEntry, max_bytes: usize) -> LogEntry {
    let size_of =
        |body: &serde_json::Value| serde_json::to_vec(body).map_or(usize::MAX, |b| b.len());
    let size = size_of(&entry.body);
    if size <= max_bytes {
        return entry;
    }
    let note = format!("[cut from {size} bytes: RAFIKI_MAX_TRIAL_LOG_ENTRY_BYTES]");
    let message = match (entry.kind, entry.body.as_object()) {
        (LogKind::Message, Some(body)) if body.len() == 1 => body["message"].as_str(),
        _ => None,
    };
    let body = match message {
        Some(text) => {
            // Escapes make the JSON longer than the text: shrink until it fits.
            let mut end = text.len();
            loop {
                while !text.is_char_boundary(end) {
                    end -= 1;
                }
                let body = json!({ "message": format!("{}… {note}", &text[..end]) });
                let over = size_of(&body).saturating_sub(max_bytes);
                if over == 0 || end == 0 {
                    break body;
                }
                end = end.saturating_sub(over);
            }
        }
        None => {
            let kind = match entry.kind {
                LogKind::Message => "MESSAGE",
                LogKind::Metrics => "METRICS",
                LogKind::Plot => "PLOT",
            };
            json!({ "message": format!("A {kind} log entry was dropped {note}.") })
        }
    };
    LogEntry {
        time: entry.time,
        kind: LogKind::Message,
        body,
    }
}
