//! The reports workers send: a train worker's trial logs, and how a worker got its model's
//! dependencies. Both are text a model or its pip wrote, so both are bounded here before they
//! are stored (`RAFIKI_MAX_TRIAL_LOG_ENTRIES`, `RAFIKI_MAX_TRIAL_LOG_ENTRY_BYTES`).

use axum::extract::State;
use axum::Json;
use chrono::Utc;
use rafiki_store::{services, trials};
use rafiki_types::internal::{EnvironmentReport, LogBatch, LogEntry, LogKind};
use rafiki_types::pruning::LogsAccepted;
use serde_json::json;
use uuid::Uuid;

use crate::error::{ApiError, ApiResult};
use crate::extract::{ApiJson, ApiPath};
use crate::orchestrator::callers::{ModelWorker, TrainWorker};
use crate::state::AppState;

/// `POST /internal/trials/{id}/logs`: appends log entries, in order, up to
/// `RAFIKI_MAX_TRIAL_LOG_ENTRIES` per trial (later ones are dropped behind one marker entry; the
/// trial goes on), each cut to `RAFIKI_MAX_TRIAL_LOG_ENTRY_BYTES`. With pruning on, the stored
/// entries' objective values are judged and the answer says when the trial must stop.
pub async fn trial_logs(
    State(state): State<AppState>,
    worker: TrainWorker,
    ApiPath(id): ApiPath<Uuid>,
    ApiJson(batch): ApiJson<LogBatch>,
) -> ApiResult<Json<LogsAccepted>> {
    let trial = worker.own_trial(&state, id).await?;
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
    let dropped = trials::append_logs(&state.pool, id, &entries, max_entries, &marker).await?;
    if dropped > 0 {
        tracing::debug!(trial = %id, dropped, "trial log entries past the cap dropped");
    }
    let stored = &entries[..entries.len() - dropped];
    let prune = state
        .orchestrator
        .judge_logs(&worker, &trial, stored, max_entries)
        .await?;
    Ok(Json(LogsAccepted { prune }))
}

/// `POST /internal/environment`: how a train or inference worker got its model's
/// dependencies; shown with its train job (`GET /train_jobs/{app}/{app_version}`).
pub async fn environment_report(
    State(state): State<AppState>,
    worker: ModelWorker,
    ApiJson(report): ApiJson<EnvironmentReport>,
) -> ApiResult<Json<serde_json::Value>> {
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
    services::set_environment(&state.pool, worker.service().id, &report).await?;
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
