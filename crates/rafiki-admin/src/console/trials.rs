//! The trial page, `GET /console/trials/{id}`: a trial's model, number, status, score, times,
//! worker, proposal and error, a link to its train job, one chart per plot its model declared
//! ([`super::plots::trial_charts`]) and its messages a page at a time; and
//! `GET /console/trials/{id}/parameters`, the download of its parameters. Who may see a trial
//! is the API's rule (`crate::routes::trials::visible_trial`: its job's owner and admins), its
//! logs and parameters are read by the API's own functions.

use axum::extract::{Path, Query, State};
use axum::http::header::CONTENT_DISPOSITION;
use axum::http::HeaderValue;
use axum::response::{Html, Response};
use maud::{html, Markup};
use rafiki_store::train_jobs;
use rafiki_store::trials::TrialRecord;
use rafiki_types::train::{LogMessage, TrialLogs};
use serde::Deserialize;
use uuid::Uuid;

use super::page::{layout, path_id, ConsoleError, Viewer};
use super::plots::svg::number;
use super::plots::trial_charts;
use super::session::ConsoleUser;
use super::PREFIX;
use crate::error::ApiError;
use crate::routes::trials::{logs_of, parameters_of, visible_trial};
use crate::state::AppState;

/// Messages per page.
const PAGE_SIZE: usize = 100;

/// `GET /console/trials/{id}` query.
#[derive(Deserialize)]
pub struct TrialQuery {
    /// The page of messages, from 1; anything else is the first.
    page: Option<String>,
}

/// The trial a page is about, if the user may see it (the API's 404 for a malformed id too).
async fn trial_of(
    state: &AppState,
    user: &ConsoleUser,
    id: &str,
) -> Result<TrialRecord, ConsoleError> {
    let id = path_id(id).await?;
    Ok(visible_trial(state, user.user, id).await?)
}

/// The trial page.
pub async fn show(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
    Query(query): Query<TrialQuery>,
) -> Result<Html<String>, ConsoleError> {
    let record = trial_of(&state, &user, &id).await?;
    let viewer = Viewer::of(&state, &user).await?;
    let logs = logs_of(&state, &record).await?;
    let job = train_jobs::get(&state.pool, record.train_job_id)
        .await
        .map_err(ApiError::from)?;
    let page = query
        .page
        .and_then(|p| p.parse::<usize>().ok())
        .filter(|p| (1..=usize::MAX / PAGE_SIZE).contains(p))
        .unwrap_or(1);
    let trial = &record.trial;
    let title = format!("Trial {} of {}", trial.no, trial.model_name);
    let job_link = format!("{PREFIX}/train_jobs/{}", record.train_job_id);
    let content = html! {
        h1 { (title) }
        dl.facts {
            dt { "Status" } dd { (trial.status) }
            dt { "Score" } dd { @match trial.score { Some(s) => (number(s)), None => "none" } }
            dt { "Model" } dd { (trial.model_name) }
            dt { "Train job" }
            dd {
                a href=(job_link) {
                    @match &job {
                        Some(job) => { (job.job.app) " version " (job.job.app_version) },
                        None => code { (record.train_job_id) },
                    }
                }
            }
            dt { "Started (UTC)" } dd { (trial.datetime_started.format("%Y-%m-%d %H:%M:%S")) }
            dt { "Stopped (UTC)" }
            dd {
                @match trial.datetime_stopped {
                    Some(stopped) => {
                        (stopped.format("%Y-%m-%d %H:%M:%S")) " (after "
                        (number((stopped - trial.datetime_started).num_milliseconds() as f64 / 1000.0))
                        " s)"
                    },
                    None => "not yet",
                }
            }
            dt { "Worker" } dd { @match trial.worker_id { Some(w) => code { (w) }, None => "none" } }
            dt { "Parameters" }
            dd {
                @if trial.is_params_saved {
                    a href={ (PREFIX) "/trials/" (trial.id) "/parameters" } download { "Download" }
                    " (the codec of docs/parameters.md; Rafiki's client reads it back)"
                } @else { "not saved" }
            }
            dt { "Id" } dd { code { (trial.id) } }
        }
        @if let Some(error) = &trial.error {
            h2 { "Error" }
            pre.error { (error) }
        }
        @if let Some(pruned) = &trial.pruned {
            h2 { "Pruned" }
            p.pruned {
                "Stopped early at step " (pruned.step) ", its last value " (pruned.value) ": "
                (pruned.reason)
            }
        }
        h2 { "Proposal" }
        (proposal(&record))
        h2 { "Plots" }
        (trial_charts(&logs, trial.datetime_started))
        (unplotted(&logs))
        h2 #messages { "Messages" }
        (messages(&logs.messages, trial.id, page))
    };
    Ok(layout(&viewer, &title, content))
}

/// `GET /console/trials/{id}/parameters`: the API's parameters answer, as a download.
pub async fn parameters(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let record = trial_of(&state, &user, &id).await?;
    let mut response = parameters_of(&state, &record).await?;
    let name = format!("attachment; filename=\"trial-{}.params\"", record.trial.id);
    if let Ok(value) = HeaderValue::from_str(&name) {
        response.headers_mut().insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// The knobs as a table, and the whole proposal as JSON.
fn proposal(record: &TrialRecord) -> Markup {
    let proposal = &record.trial.proposal;
    html! {
        @if proposal.knobs.is_empty() {
            p.empty { "No knobs." }
        } @else {
            table {
                caption.skip { "Knobs of this trial" }
                thead { tr { th scope="col" { "Knob" } th scope="col" { "Value" } } }
                tbody {
                    @for (name, value) in &proposal.knobs {
                        tr { th scope="row" { code { (name) } } td { code { (value) } } }
                    }
                }
            }
        }
        details {
            summary { "The whole proposal (JSON)" }
            pre { (serde_json::to_string_pretty(proposal).unwrap_or_default()) }
        }
    }
}

/// The metrics no declared plot shows, named (their values are in `GET /trials/{id}/logs`).
fn unplotted(logs: &TrialLogs) -> Markup {
    let mut names: Vec<&str> = Vec::new();
    for entry in &logs.metrics {
        for name in entry.keys() {
            let plotted = name == "time"
                || logs.plots.iter().any(|p| {
                    p.metrics.contains(name) || p.x_axis.as_deref() == Some(name.as_str())
                });
            if !plotted && !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    html! {
        @if !names.is_empty() {
            p {
                "Metrics in no plot: "
                @for (i, name) in names.iter().enumerate() {
                    @if i > 0 { ", " }
                    code { (name) }
                }
                " (" (logs.metrics.len()) " metrics entries in all; the API's "
                code { "GET /trials/{id}/logs" } " has their values)."
            }
        }
    }
}

/// Page `page` of the messages, in logging order.
fn messages(all: &[LogMessage], id: Uuid, page: usize) -> Markup {
    let shown: Vec<&LogMessage> = all
        .iter()
        .skip((page - 1) * PAGE_SIZE)
        .take(PAGE_SIZE)
        .collect();
    let more = all.len() > page * PAGE_SIZE;
    html! {
        @if shown.is_empty() {
            p.empty { @if page == 1 { "The model logged no message." } @else { "No messages on this page." } }
        } @else {
            table {
                caption.skip { "Messages, in logging order" }
                thead { tr { th scope="col" { "Time (UTC)" } th scope="col" { "Message" } } }
                tbody {
                    @for message in shown {
                        tr {
                            td.nowrap { (message.time.format("%H:%M:%S%.3f")) }
                            td { pre.message { (message.message) } }
                        }
                    }
                }
            }
        }
        @if page > 1 || more {
            nav.pager aria-label="Pages of messages" {
                @if page > 1 {
                    a href={ (PREFIX) "/trials/" (id) "?page=" (page - 1) "#messages" } rel="prev" { "Previous messages" }
                }
                span { "Page " (page) " of " (all.len().div_ceil(PAGE_SIZE).max(1)) }
                @if more {
                    a href={ (PREFIX) "/trials/" (id) "?page=" (page + 1) "#messages" } rel="next" { "Next messages" }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    #[test]
    fn messages_come_a_page_at_a_time_and_escaped() {
        let all: Vec<LogMessage> = (0..250)
            .map(|i| LogMessage {
                time: Utc::now(),
                message: format!("<b>message {i}</b>"),
            })
            .collect();
        let id = Uuid::nil();
        let first = messages(&all, id, 1).into_string();
        assert_eq!(first.matches("<tr>").count(), 1 + PAGE_SIZE);
        assert!(first.contains("&lt;b&gt;message 0&lt;/b&gt;") && !first.contains("<b>"));
        assert!(first.contains("rel=\"next\"") && !first.contains("rel=\"prev\""));
        let last = messages(&all, id, 3).into_string();
        assert_eq!(last.matches("<tr>").count(), 1 + 50);
        assert!(last.contains("Page 3 of 3"));
        assert!(last.contains("rel=\"prev\"") && !last.contains("rel=\"next\""));
        let beyond = messages(&all, id, 4).into_string();
        assert!(beyond.contains("No messages on this page."));
        assert!(messages(&[], id, 1)
            .into_string()
            .contains("logged no message"));
    }
}
