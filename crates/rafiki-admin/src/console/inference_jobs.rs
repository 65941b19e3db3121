//! The inference jobs screens: the list of a user's deployments, the deploy button's action,
//! and a running job's page (its predictor host, its workers and the trials they serve, a Stop
//! button and a predict box).
//!
//! A running job is addressed as the API addresses it, by its train job's app and version
//! (`/console/inference_jobs/{app}/{app_version}`), and found by the API's own
//! `routes::inference_jobs::running_job`, so only its owner sees it, stops it or predicts
//! through it. Deploying and stopping run `routes::inference_jobs::{create, stop}`; predicting
//! goes through [`super::predict`].

use std::collections::BTreeMap;

use axum::extract::rejection::FormRejection;
use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::{Extension, Form};
use maud::{html, Markup};
use rafiki_service::request_id::RequestId;
use rafiki_store::inference_jobs::{self, InferenceJobRecord, Role};
use rafiki_store::{services, trials};
use rafiki_types::inference::CreateInferenceJobRequest;
use serde::Deserialize;

use super::listing::done_notice;
use super::page::{
    layout, optional_time, refused, score, segment, time, with_html_body, ConsoleError, Notice,
    Viewer,
};
use super::session::{csrf_field, redirect, ConsoleUser, CsrfForm};
use super::train_jobs::{self, parse_version, JobsPage};
use super::{predict, PREFIX};
use crate::error::ApiError;
use crate::routes::inference_jobs as api;
use crate::state::AppState;

/// The address of a running job's page.
pub fn job_url(app: &str, app_version: i32) -> String {
    format!("{PREFIX}/inference_jobs/{}/{app_version}", segment(app))
}

/// `GET /console/inference_jobs` query.
#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    /// Admins: whose jobs (the API's `?user_id=`).
    user_id: Option<String>,
    /// What was just done: `stopped`.
    done: Option<String>,
}

/// The list of inference jobs, as `GET /inference_jobs?user_id=` shows them.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, ConsoleError> {
    let notice = done_notice(
        query.done.as_deref(),
        &[("stopped", "The inference job was stopped.")],
    );
    let jobs = JobsPage::of(
        user.user,
        "inference_jobs",
        query.page.as_deref(),
        query.user_id.as_deref(),
    )?;
    list_page(&state, &user, &jobs, notice).await
}

/// Page `jobs` of the list, with `notice`.
async fn list_page(
    state: &AppState,
    user: &ConsoleUser,
    jobs: &JobsPage,
    notice: Option<Notice>,
) -> Result<Html<String>, ConsoleError> {
    let viewer = Viewer::of(state, user).await?;
    let rows = jobs.page.rows();
    let mut records = inference_jobs::list(&state.pool, jobs.owner, None, rows.limit, rows.offset)
        .await
        .map_err(ApiError::from)?;
    let more = jobs.page.cut(&mut records);
    let content = html! {
        h1 { "Inference jobs" }
        @if let Some(notice) = &notice { (notice) }
        p { "Deploy a stopped train job from its page (" a href={ (PREFIX) "/train_jobs" } { "train jobs" } ")." }
        (jobs.filter())
        @if records.is_empty() {
            (jobs.empty("No inference jobs"))
        } @else {
            (table(&records, jobs.own()))
        }
        (jobs.nav(more))
    };
    Ok(layout(&viewer, "Inference jobs", content))
}

fn table(records: &[InferenceJobRecord], own: bool) -> Markup {
    html! {
        table {
            caption.skip { "Inference jobs, newest first" }
            thead { tr {
                th scope="col" { "App" } th scope="col" { "Version" } th scope="col" { "Status" }
                th scope="col" { "Started (UTC)" } th scope="col" { "Stopped (UTC)" }
                th scope="col" { "Error" }
            } }
            tbody {
                @for record in records {
                    @let job = &record.job;
                    tr {
                        td {
                            // The API shows the owner their running job (and its train job).
                            @if own && job.status.is_live() {
                                a href=(job_url(&job.app, job.app_version)) { (job.app) }
                            } @else if own {
                                a href=(train_jobs::job_url(&job.app, job.app_version)) { (job.app) }
                            } @else { (job.app) }
                        }
                        td { (job.app_version) }
                        td { (job.status) }
                        td { (time(&job.datetime_started)) }
                        td { (optional_time(job.datetime_stopped.as_ref())) }
                        td { @if let Some(error) = &job.error { (error) } }
                    }
                }
            }
        }
    }
}

/// The deploy button's form: the train job, and optionally GPUs.
#[derive(Deserialize)]
pub struct DeployForm {
    csrf: Option<String>,
    app: String,
    app_version: String,
    /// The budget's `GPU_COUNT`; empty: the API's default.
    #[serde(default)]
    gpu_count: String,
}

/// `POST /console/inference_jobs`: deploys through the API's `create`, then shows the running
/// job; a refusal is shown on the list with the API's message and status.
pub async fn deploy(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Form(form): Form<DeployForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    let mut budget = BTreeMap::new();
    let gpus = form.gpu_count.trim();
    if !gpus.is_empty() {
        let value = serde_json::from_str::<serde_json::Value>(gpus)
            .ok()
            .filter(serde_json::Value::is_number)
            .unwrap_or_else(|| gpus.into());
        budget.insert("GPU_COUNT".to_owned(), value);
    }
    let deployed = match form.app_version.trim().parse::<i32>() {
        Ok(app_version) => {
            let request = CreateInferenceJobRequest {
                app: form.app.clone(),
                app_version,
                budget,
            };
            api::create(&state, user.user, &user.origin, request).await
        }
        Err(_) => Err(ApiError::invalid_request(
            "`app_version` must be an integer.",
        )),
    };
    match deployed {
        Ok(created) => Ok(redirect(&format!(
            "{}?done=deployed",
            job_url(&created.app, created.app_version)
        ))),
        Err(err) => {
            let jobs = JobsPage::of(user.user, "inference_jobs", None, None)?;
            refused(err, |notice| list_page(&state, &user, &jobs, Some(notice))).await
        }
    }
}

/// `GET /console/inference_jobs/{app}/{app_version}` query.
#[derive(Deserialize)]
pub struct JobQuery {
    /// What was just done: `deployed`.
    done: Option<String>,
}

/// A running job's page.
pub async fn job(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((app, version)): Path<(String, String)>,
    Query(query): Query<JobQuery>,
) -> Result<Html<String>, ConsoleError> {
    let notice = done_notice(
        query.done.as_deref(),
        &[("deployed", "The train job was deployed.")],
    );
    let running = Running::of(&state, &user, &app, &version).await?;
    running.page(&state, &user, notice, &Asked::default()).await
}

/// `POST /console/inference_jobs/{app}/{app_version}/stop`: the API's stop.
pub async fn stop(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path((app, version)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    api::stop(
        &state,
        user.user,
        &user.origin,
        &app,
        parse_version(&version)?,
    )
    .await?;
    Ok(redirect(&format!("{PREFIX}/inference_jobs?done=stopped")))
}

/// The predict box's form.
#[derive(Deserialize)]
pub struct PredictForm {
    csrf: Option<String>,
    /// The query, as JSON.
    #[serde(default)]
    query: String,
    /// `queries` when the text is a list of queries; else one query.
    #[serde(default)]
    kind: String,
}

/// What the predict box was asked, and what came of it.
#[derive(Default)]
struct Asked {
    query: String,
    many: bool,
    answer: Option<serde_json::Value>,
}

/// `POST /console/inference_jobs/{app}/{app_version}/predict`: sends the box's query to the
/// job's predictor and shows the job's page with the answer; a refused query or a predictor
/// that fails shows the page with why, with that status.
pub async fn predict(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Extension(request_id): Extension<RequestId>,
    Path((app, version)): Path<(String, String)>,
    form: Result<Form<PredictForm>, FormRejection>,
) -> Result<Response, ConsoleError> {
    // A query over the admin's body limit (`RAFIKI_MAX_JSON_BYTES`) gets a page, not text.
    let Form(form) = form.map_err(|rejection| {
        ApiError::invalid_request(rejection.body_text()).with_status(rejection.status())
    })?;
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    // Who may predict is who may see the job: the API's rule, before anything is sent.
    let running = Running::of(&state, &user, &app, &version).await?;
    let mut asked = Asked {
        many: form.kind == "queries",
        query: form.query,
        answer: None,
    };
    let answer = match predict::request(&asked.query, asked.many) {
        Ok(request) => {
            let address = api::predictor_address_for_admin(&state, running.record.job.id).await?;
            predict::send(&address, &request, &request_id).await
        }
        Err(err) => Err(err),
    };
    match answer {
        Ok(answer) => {
            asked.answer = Some(answer);
            Ok(running
                .page(&state, &user, None, &asked)
                .await?
                .into_response())
        }
        Err(err) => {
            let notice = Notice::Failed(err.message().to_owned());
            let page = running.page(&state, &user, Some(notice), &asked).await?;
            Ok(with_html_body(err.into_response(), page))
        }
    }
}

/// A running job with its predictor's address.
struct Running {
    record: InferenceJobRecord,
    predictor_host: String,
}

impl Running {
    /// The caller's running job of `app` at `version`, by the API's rule (`running_job`).
    async fn of(
        state: &AppState,
        user: &ConsoleUser,
        app: &str,
        version: &str,
    ) -> Result<Running, ConsoleError> {
        let record = api::running_job(state, user.user, app, parse_version(version)?).await?;
        let predictor_host = api::predictor_host(state, record.job.id).await?;
        Ok(Running {
            record,
            predictor_host,
        })
    }

    /// The job's page: its fields, its workers, Stop, and the predict box.
    async fn page(
        &self,
        state: &AppState,
        user: &ConsoleUser,
        notice: Option<Notice>,
        asked: &Asked,
    ) -> Result<Html<String>, ConsoleError> {
        let viewer = Viewer::of(state, user).await?;
        let job = &self.record.job;
        let url = job_url(&job.app, job.app_version);
        let workers = workers(state, job.id).await?;
        let title = format!("Inference job {} v{}", job.app, job.app_version);
        let content = html! {
            h1 { "Inference job " (job.app) " " small { "version " (job.app_version) } }
            @if let Some(notice) = &notice { (notice) }
            dl.fields {
                dt { "Status" } dd { (job.status) }
                dt { "Predictor" } dd { code { (self.predictor_host) } }
                dt { "Train job" } dd { a href=(train_jobs::job_url(&job.app, job.app_version)) { (job.app) " version " (job.app_version) } }
                dt { "GPUs" } dd { (self.record.budget.gpu_count) }
                dt { "Started (UTC)" } dd { (time(&job.datetime_started)) }
            }
            form method="post" action={ (url) "/stop" }
                data-confirm={ "Stop the inference job of " (job.app) "?" } {
                (csrf_field(&viewer.csrf))
                button.danger type="submit" { "Stop" }
            }
            h2 { "Workers" }
            @if workers.is_empty() {
                p.empty { "No workers." }
            } @else {
                table {
                    caption.skip { "The job's workers and the trials they serve" }
                    thead { tr {
                        th scope="col" { "Model" } th scope="col" { "Trial" }
                        th scope="col" { "Score" } th scope="col" { "Worker status" }
                    } }
                    tbody {
                        @for worker in &workers {
                            tr {
                                td { (worker.model) }
                                td { a href={ (PREFIX) "/trials/" (worker.trial_id) } { "No. " (worker.trial_no) } }
                                td { (score(worker.score)) }
                                td { (worker.status) }
                            }
                        }
                    }
                }
            }
            h2 #predict { "Predict" }
            form.stacked method="post" action={ (url) "/predict#predict" } {
                (csrf_field(&viewer.csrf))
                label for="query" { "Query (JSON)" }
                textarea #query name="query" rows="6" required
                    placeholder="[[0.1, 0.2, 0.3]]" { (asked.query) }
                fieldset {
                    legend { "The query is" }
                    div.check {
                        input #kind-query type="radio" name="kind" value="query" checked[!asked.many];
                        label for="kind-query" { "one query (sent as {\"query\": ...})" }
                    }
                    div.check {
                        input #kind-queries type="radio" name="kind" value="queries" checked[asked.many];
                        label for="kind-queries" { "a JSON array of queries (sent as {\"queries\": [...]})" }
                    }
                }
                button type="submit" { "Predict" }
            }
            @if let Some(answer) = &asked.answer {
                h3 { "Answer" }
                pre.answer role="status" { (serde_json::to_string_pretty(answer).unwrap_or_default()) }
            }
        };
        Ok(layout(&viewer, &title, content))
    }
}

/// An inference worker of a job and the trial it serves.
struct Worker {
    model: String,
    trial_id: uuid::Uuid,
    trial_no: i32,
    score: Option<f64>,
    status: String,
}

/// The job's workers, in the store's order.
async fn workers(state: &AppState, job_id: uuid::Uuid) -> Result<Vec<Worker>, ApiError> {
    let mut found = Vec::new();
    for (service_id, role) in inference_jobs::services_of_job(&state.pool, job_id).await? {
        let Role::Worker { trial_id } = role else {
            continue;
        };
        let Some(trial) = trials::get(&state.pool, trial_id).await? else {
            continue;
        };
        let status = services::get(&state.pool, service_id)
            .await?
            .map_or_else(|| "—".to_owned(), |s| s.status.to_string());
        found.push(Worker {
            model: trial.trial.model_name,
            trial_id,
            trial_no: trial.trial.no,
            score: trial.trial.score,
            status,
        });
    }
    Ok(found)
}
