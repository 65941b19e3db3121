//! The train jobs screens: the list of a user's jobs, the form that creates one, and a job's
//! page (its sub-jobs and trials, updating live while it runs, with Stop and Deploy buttons).
//!
//! Jobs are addressed as the API addresses them, by app and version
//! (`/console/train_jobs/{app}/{app_version}`), and found by the API's own
//! `routes::train_jobs::caller_job`: a page shows only the caller's own jobs, exactly as
//! `GET /train_jobs/{app}/{app_version}` does. Creating and stopping run
//! `routes::train_jobs::{create, stop}`, so validation, quotas and GPU checks are the API's.

use axum::extract::{Path, Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use chrono::Utc;
use maud::{html, Markup};
use rafiki_store::datasets::DatasetRecord;
use rafiki_store::models::ModelRecord;
use rafiki_store::train_jobs::{self, SubTrainJob, TrainJobRecord};
use rafiki_store::trials::{self, TrialRecord};
use rafiki_types::status::{JobStatus, TrialStatus};
use rafiki_types::train::{CreateTrainJobRequest, TrainBudget};
use serde::Deserialize;
use uuid::Uuid;

use super::listing::done_notice;
use super::page::{
    layout, optional_time, page_number, pager, refused, score, segment, task_suggestions, time,
    with_html_body, ConsoleError, Notice, Paged, Viewer,
};
use super::session::{csrf_field, redirect, ConsoleUser, CsrfForm};
use super::{plots, PREFIX};
use crate::auth::extract::AuthUser;
use crate::error::ApiError;
use crate::paging::Page;
use crate::routes::train_jobs::{self as api, ByUser};
use crate::routes::{datasets, models};
use crate::state::AppState;

/// Jobs per page of the lists (train and inference jobs).
const PAGE_SIZE: i64 = 25;
/// Trials per page of a job's trial table.
const TRIALS_PAGE_SIZE: i64 = 100;
/// Most datasets and models the create form offers (newest first).
const MAX_CHOICES: i64 = 500;
/// Longest proposal summary shown in the trial table, in characters.
const PROPOSAL_SUMMARY_CHARS: usize = 120;

/// The address of a job's page.
pub fn job_url(app: &str, app_version: i32) -> String {
    format!("{PREFIX}/train_jobs/{}/{app_version}", segment(app))
}

/// `GET /console/train_jobs` query.
#[derive(Deserialize)]
pub struct ListQuery {
    page: Option<String>,
    /// Admins: whose jobs (the API's `?user_id=`); the caller's own when absent.
    user_id: Option<String>,
}

/// The list of jobs: the caller's own, or (admins, as `GET /train_jobs?user_id=` allows)
/// another user's.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<ListQuery>,
) -> Result<Html<String>, ConsoleError> {
    let jobs = JobsPage::of(
        user.user,
        "train_jobs",
        query.page.as_deref(),
        query.user_id.as_deref(),
    )?;
    let viewer = Viewer::of(&state, &user).await?;
    let rows = jobs.page.rows();
    let mut records = train_jobs::list(&state.pool, jobs.owner, None, rows.limit, rows.offset)
        .await
        .map_err(ApiError::from)?;
    let more = jobs.page.cut(&mut records);
    let (own, owner) = (jobs.own(), jobs.owner);
    let content = html! {
        h1 { "Train jobs" }
        p { a href={ (PREFIX) "/train_jobs/new" } { "Create a train job" } }
        (jobs.filter())
        h2 { @if own { "Your train jobs" } @else { "Train jobs of user " code { (owner) } } }
        @if records.is_empty() {
            (jobs.empty("No train jobs"))
        } @else {
            table {
                caption.skip { "Train jobs, newest first" }
                thead { tr {
                    th scope="col" { "App" } th scope="col" { "Version" } th scope="col" { "Task" }
                    th scope="col" { "Status" } th scope="col" { "Budget" }
                    th scope="col" { "Started (UTC)" } th scope="col" { "Stopped (UTC)" }
                } }
                tbody {
                    @for record in &records {
                        @let job = &record.job;
                        tr {
                            td {
                                // The API shows a job's page to its owner only.
                                @if own { a href=(job_url(&job.app, job.app_version)) { (job.app) } }
                                @else { (job.app) }
                            }
                            td { (job.app_version) }
                            td { (job.task) }
                            td {
                                (job.status)
                                @if let Some(reason) = &job.waiting_reason { br; small { (reason) } }
                            }
                            td { (budget_text(&job.budget)) }
                            td { (time(&job.datetime_started)) }
                            td { (optional_time(job.datetime_stopped.as_ref())) }
                        }
                    }
                }
            }
        }
        (jobs.nav(more))
    };
    Ok(layout(&viewer, "Train jobs", content))
}

/// A page of a list of one user's jobs (`/console/train_jobs` or `/console/inference_jobs`):
/// which page, whose jobs, and the parts of the page that say so.
pub struct JobsPage {
    /// Which page.
    pub page: Paged,
    /// Whose jobs.
    pub owner: Uuid,
    /// The caller, who may be an admin looking at another user's jobs.
    caller: AuthUser,
    /// The list: `train_jobs` or `inference_jobs`.
    what: &'static str,
}

impl JobsPage {
    /// Page `page` (the `?page=` parameter) of the list `/console/{what}` of the jobs of
    /// `user_id` as the API's `ByUser` allows it to `caller`, else of the caller's own.
    pub fn of(
        caller: AuthUser,
        what: &'static str,
        page: Option<&str>,
        user_id: Option<&str>,
    ) -> Result<JobsPage, ConsoleError> {
        Ok(JobsPage {
            page: Paged::of(page, PAGE_SIZE),
            owner: owner_to_list(caller, user_id)?,
            caller,
            what,
        })
    }

    /// Whether the jobs are the caller's own.
    pub fn own(&self) -> bool {
        self.owner == self.caller.id
    }

    /// The owner when it is another user.
    fn other(&self) -> Option<Uuid> {
        (!self.own()).then_some(self.owner)
    }

    /// For admins, the form choosing whose jobs the list shows; nothing for others.
    pub fn filter(&self) -> Markup {
        html! {
            @if self.caller.is_admin() { (user_filter(self.what, self.other())) }
        }
    }

    /// What an empty page says: `none` ("No train jobs"), and " on this page" past the first.
    pub fn empty(&self, none: &str) -> Markup {
        html! {
            p.empty { (none) @if self.page.number > 1 { " on this page" } "." }
        }
    }

    /// Previous and next links, keeping whose jobs these are.
    pub fn nav(&self, more: bool) -> Markup {
        pager(self.page.number, more, |n| {
            list_url(self.what, n, self.other())
        })
    }
}

/// Whose jobs a list shows: `user_id` as the API's `ByUser` allows it, else the caller's.
fn owner_to_list(caller: AuthUser, user_id: Option<&str>) -> Result<Uuid, ConsoleError> {
    let user_id = match user_id.map(str::trim).filter(|id| !id.is_empty()) {
        None => return Ok(caller.id),
        Some(text) => text.parse::<Uuid>().map_err(|_| {
            ApiError::invalid_request(format!("`user_id` must be a user's id, not {text:?}."))
        })?,
    };
    Ok(ByUser {
        user_id: Some(user_id),
    }
    .user_to_list(caller)?)
}

/// Page `page` of the list at `/console/{what}` of `owner`'s jobs (the caller's when `None`).
fn list_url(what: &str, page: i64, owner: Option<Uuid>) -> String {
    match owner {
        Some(owner) => format!("{PREFIX}/{what}?user_id={owner}&page={page}"),
        None => format!("{PREFIX}/{what}?page={page}"),
    }
}

/// The admins' form choosing whose jobs `/console/{what}` lists.
fn user_filter(what: &str, current: Option<Uuid>) -> Markup {
    html! {
        form.inline method="get" action={ (PREFIX) "/" (what) } {
            label for="user_id" { "Another user's jobs (their id)" }
            input #user_id type="text" name="user_id" value=[current] size="36";
            button type="submit" { "Show" }
        }
    }
}

/// `GET /console/train_jobs/new` query: the task chosen in the form's first step.
#[derive(Deserialize)]
pub struct NewQuery {
    task: Option<String>,
}

/// The create form. Without a task it asks for one first (a GET form), so that the datasets
/// and models it offers are those of the task, as `GET /datasets?task=` and
/// `GET /models/available?task=` list them.
pub async fn new_job(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<NewQuery>,
) -> Result<Html<String>, ConsoleError> {
    let task = query
        .task
        .map(|t| t.trim().to_owned())
        .filter(|t| !t.is_empty());
    let entered = CreateForm {
        task: task.clone(),
        ..CreateForm::default()
    };
    create_page(&state, &user, &entered, None).await
}

/// What the create form sent (and what it shows again after a refusal).
#[derive(Default)]
pub struct CreateForm {
    csrf: Option<String>,
    app: String,
    task: Option<String>,
    train_dataset_id: String,
    val_dataset_id: String,
    model_ids: Vec<String>,
    /// The budget's fields as typed, by key ([`BUDGET_FIELDS`]).
    budget: std::collections::BTreeMap<&'static str, String>,
    train_args: String,
}

/// The budget options the form has a field for, and whether each is text (else a number).
const BUDGET_FIELDS: [(&str, bool); 11] = [
    ("MODEL_TRIAL_COUNT", false),
    ("TIME_HOURS", false),
    ("GPU_COUNT", false),
    ("CPU_WORKERS_PER_MODEL", false),
    ("PRUNER", true),
    ("PRUNE_METRIC", true),
    ("PRUNE_MODE", true),
    ("PRUNE_STEP_METRIC", true),
    ("PRUNE_MIN_STEP", false),
    ("PRUNE_REDUCTION_FACTOR", false),
    ("PRUNE_WARMUP_TRIALS", false),
];

impl CreateForm {
    /// The form's fields; `model_ids` (checkboxes) may repeat.
    fn read(fields: Vec<(String, String)>) -> CreateForm {
        let mut form = CreateForm::default();
        for (name, value) in fields {
            match name.as_str() {
                "csrf" => form.csrf = Some(value),
                "app" => form.app = value,
                "task" => form.task = Some(value),
                "train_dataset_id" => form.train_dataset_id = value,
                "val_dataset_id" => form.val_dataset_id = value,
                "model_ids" => form.model_ids.push(value),
                "train_args" => form.train_args = value,
                other => {
                    if let Some(&(key, _)) = BUDGET_FIELDS.iter().find(|(key, _)| *key == other) {
                        form.budget.insert(key, value);
                    }
                }
            }
        }
        form
    }

    /// What was typed into the budget field `key` (empty if nothing).
    fn entered(&self, key: &str) -> &str {
        self.budget.get(key).map_or("", String::as_str)
    }

    /// The API's request body. Budget fields left empty are left out (the API's defaults);
    /// one that is not a number is passed as text, for the API's own message about it.
    fn request(&self) -> Result<CreateTrainJobRequest, ApiError> {
        let id = |field: &str, text: &str| {
            text.trim()
                .parse::<Uuid>()
                .map_err(|_| ApiError::invalid_request(format!("Choose a dataset for `{field}`.")))
        };
        let mut model_ids = Vec::new();
        for text in &self.model_ids {
            model_ids.push(text.trim().parse::<Uuid>().map_err(|_| {
                ApiError::invalid_request(format!("{text:?} is not a model's id."))
            })?);
        }
        let mut budget = std::collections::BTreeMap::new();
        for (key, is_text) in BUDGET_FIELDS {
            let text = self.entered(key).trim();
            if !text.is_empty() {
                let value = serde_json::from_str::<serde_json::Value>(text)
                    .ok()
                    .filter(|v| v.is_number() && !is_text)
                    .unwrap_or_else(|| text.into());
                budget.insert(key.to_owned(), value);
            }
        }
        let train_args = match self.train_args.trim() {
            "" => None,
            text => Some(serde_json::from_str(text).map_err(|e| {
                ApiError::invalid_request(format!("`train_args` is not JSON: {e}."))
            })?),
        };
        Ok(CreateTrainJobRequest {
            app: self.app.clone(),
            task: self.task.clone().unwrap_or_default(),
            train_dataset_id: id("train_dataset_id", &self.train_dataset_id)?,
            val_dataset_id: id("val_dataset_id", &self.val_dataset_id)?,
            budget,
            model_ids,
            train_args,
        })
    }
}

/// `POST /console/train_jobs`: creates the job through the API's `create`, then shows its
/// page; a refusal shows the form again, as filled, with the API's message and status.
pub async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Form(fields): Form<Vec<(String, String)>>,
) -> Result<Response, ConsoleError> {
    let form = CreateForm::read(fields);
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    let created = match form.request() {
        Ok(request) => api::create(&state, user.user, &user.origin, &request).await,
        Err(err) => Err(err),
    };
    match created {
        Ok(record) => Ok(redirect(&format!(
            "{}?done=created",
            job_url(&record.job.app, record.job.app_version)
        ))),
        Err(err) if err.status().is_server_error() => Err(err.into()),
        Err(err) => {
            let page = create_page(&state, &user, &form, Some(err.message())).await?;
            Ok(with_html_body(err.into_response(), page))
        }
    }
}

/// The create form, filled with `entered`, with a refusal's message.
async fn create_page(
    state: &AppState,
    user: &ConsoleUser,
    entered: &CreateForm,
    refused: Option<&str>,
) -> Result<Html<String>, ConsoleError> {
    let viewer = Viewer::of(state, user).await?;
    let choices = Page {
        limit: MAX_CHOICES,
        offset: 0,
    };
    let (data, available) = match entered.task.as_deref() {
        Some(task) => (
            datasets::visible_datasets(state, user.user, Some(task), choices).await?,
            models::available_models(state, user.user, Some(task), choices).await?,
        ),
        None => (Vec::new(), Vec::new()),
    };
    let content = html! {
        h1 { "Create a train job" }
        @if let Some(message) = refused { p.alert role="alert" { (message) } }
        form.stacked method="get" action={ (PREFIX) "/train_jobs/new" } {
            label for="pick-task" { "Task" }
            input #pick-task type="text" name="task" required maxlength="255" list="tasks"
                value=[entered.task.as_deref()] placeholder="e.g. TABULAR_CLASSIFICATION";
            (task_suggestions())
            button type="submit" { @if entered.task.is_some() { "Change task" } @else { "Choose" } }
        }
        @if let Some(task) = &entered.task {
            (job_form(&viewer.csrf, task, entered, &data, &available))
        }
    };
    Ok(layout(&viewer, "Create a train job", content))
}

/// The form's second step: everything `POST /train_jobs` takes, for the task chosen.
fn job_form(
    csrf_token: &str,
    task: &str,
    entered: &CreateForm,
    data: &[DatasetRecord],
    available: &[ModelRecord],
) -> Markup {
    html! {
        h2 { "A job of task " code { (task) } }
        form.stacked method="post" action={ (PREFIX) "/train_jobs" } {
            (csrf_field(csrf_token))
            input type="hidden" name="task" value=(task);
            label for="app" { "App name" }
            input #app type="text" name="app" required maxlength=(api::MAX_APP_CHARS)
                value=(entered.app);
            @if data.is_empty() {
                p.empty { "You have no dataset of this task: "
                    a href={ (PREFIX) "/datasets" } { "upload one" } " first." }
            }
            @for (field, label) in [("train_dataset_id", "Training dataset"), ("val_dataset_id", "Validation dataset")] {
                @let chosen = if field == "train_dataset_id" { &entered.train_dataset_id } else { &entered.val_dataset_id };
                label for=(field) { (label) }
                select #(field) name=(field) required {
                    option value="" { "Choose a dataset" }
                    @for dataset in data {
                        @let id = dataset.id.to_string();
                        option value=(id) selected[*chosen == id] {
                            (dataset.name) " (" (dataset.datetime_created.format("%Y-%m-%d %H:%M")) ")"
                        }
                    }
                }
            }
            fieldset {
                legend { "Models" }
                @if available.is_empty() {
                    p.empty { "No model of this task is available to you." }
                }
                @for model in available {
                    @let id = model.id.to_string();
                    @let input_id = format!("model-{id}");
                    div.check {
                        input #(input_id) type="checkbox" name="model_ids" value=(id)
                            checked[entered.model_ids.contains(&id)];
                        label for=(input_id) { (model.name) }
                    }
                }
            }
            fieldset {
                legend { "Budget (empty: the API's default)" }
                (budget_input(entered, "MODEL_TRIAL_COUNT", "numeric", "Trials per model (MODEL_TRIAL_COUNT; -1: no limit)"))
                (budget_input(entered, "TIME_HOURS", "decimal", "Hours per model (TIME_HOURS)"))
                (budget_input(entered, "GPU_COUNT", "numeric", "GPUs for the job (GPU_COUNT)"))
                (budget_input(entered, "CPU_WORKERS_PER_MODEL", "numeric",
                    "Workers sharing the trials of each model without GPUs (CPU_WORKERS_PER_MODEL)"))
            }
            fieldset {
                legend { "Early stopping of bad trials (optional; see docs/pruning.md)" }
                (budget_select(entered, "PRUNER", &[("", "Off"), ("MEDIAN", "Median stopping rule"), ("ASHA", "Asynchronous successive halving")],
                    "Pruner (PRUNER)"))
                (budget_input(entered, "PRUNE_METRIC", "text", "Logged metric that judges trials, e.g. val_acc (PRUNE_METRIC)"))
                (budget_select(entered, "PRUNE_MODE", &[("", "Default (MAX)"), ("MAX", "Higher is better"), ("MIN", "Lower is better")],
                    "Better values (PRUNE_MODE)"))
                (budget_input(entered, "PRUNE_STEP_METRIC", "text", "Logged metric that numbers steps, e.g. epoch (PRUNE_STEP_METRIC)"))
                (budget_input(entered, "PRUNE_MIN_STEP", "decimal", "First step judged; ASHA's first rung (PRUNE_MIN_STEP)"))
                (budget_input(entered, "PRUNE_REDUCTION_FACTOR", "numeric", "ASHA's reduction factor (PRUNE_REDUCTION_FACTOR)"))
                (budget_input(entered, "PRUNE_WARMUP_TRIALS", "numeric", "Trials the median rule waits for (PRUNE_WARMUP_TRIALS)"))
            }
            label for="train_args" { "Train arguments (a JSON object for train(), optional)" }
            textarea #train_args name="train_args" rows="3" { (entered.train_args) }
            button type="submit" { "Create the job" }
        }
    }
}

/// A labelled text field of the budget option `key`, holding what was typed.
fn budget_input(entered: &CreateForm, key: &str, inputmode: &str, label: &str) -> Markup {
    html! {
        label for=(key) { (label) }
        input #(key) type="text" inputmode=(inputmode) name=(key) value=(entered.entered(key));
    }
}

/// A labelled choice of the budget option `key` among `(value, label)` options.
fn budget_select(entered: &CreateForm, key: &str, options: &[(&str, &str)], label: &str) -> Markup {
    html! {
        label for=(key) { (label) }
        select #(key) name=(key) {
            @for (value, text) in options {
                option value=(value) selected[entered.entered(key) == *value] { (text) }
            }
        }
    }
}

/// `GET /console/train_jobs/{app}/{app_version}` query.
#[derive(Deserialize)]
pub struct JobQuery {
    /// The trial table's page.
    page: Option<String>,
    /// What was just done: `created` or `stopped`.
    done: Option<String>,
}

/// A job's page.
pub async fn job(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((app, version)): Path<(String, String)>,
    Query(query): Query<JobQuery>,
) -> Result<Response, ConsoleError> {
    let notices = [
        ("created", "The train job was created."),
        ("stopped", "The train job was stopped."),
    ];
    let notice = done_notice(query.done.as_deref(), &notices);
    let page = page_number(query.page.as_deref(), TRIALS_PAGE_SIZE);
    Ok(job_page(&state, &user, &app, &version, page, notice)
        .await?
        .into_response())
}

/// `GET /console/train_jobs/{app}/{app_version}/live`: the part of the job's page that changes
/// while it runs (what the page's script swaps in every 2 s).
pub async fn live(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((app, version)): Path<(String, String)>,
    Query(query): Query<JobQuery>,
) -> Result<Html<String>, ConsoleError> {
    let page = page_number(query.page.as_deref(), TRIALS_PAGE_SIZE);
    let loaded = Loaded::of(&state, &user, &app, &version).await?;
    let csrf_token = user.csrf_token(&state);
    Ok(Html(loaded.live(&csrf_token, page).into_string()))
}

/// `GET /console/train_jobs/{app}/{app_version}/plots`: the job's tuning plots, which the
/// page's script refreshes less often than the rest (at 1,000 trials they weigh ~240 KiB).
pub async fn plots(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path((app, version)): Path<(String, String)>,
) -> Result<Html<String>, ConsoleError> {
    let loaded = Loaded::of(&state, &user, &app, &version).await?;
    Ok(Html(loaded.plots().into_string()))
}

/// `POST /console/train_jobs/{app}/{app_version}/stop`: the API's stop; returns once the
/// workers are gone.
pub async fn stop(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path((app, version)): Path<(String, String)>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    let app_version = parse_version(&version)?;
    match api::stop(&state, user.user, &user.origin, &app, app_version).await {
        Ok(record) => Ok(redirect(&format!(
            "{}?done=stopped",
            job_url(&record.job.app, record.job.app_version)
        ))),
        Err(err) => {
            refused(err, |notice| {
                job_page(&state, &user, &app, &version, 1, Some(notice))
            })
            .await
        }
    }
}

/// A version in a path: an integer (-1: the latest), else the console's 404.
pub fn parse_version(text: &str) -> Result<i32, ConsoleError> {
    text.parse::<i32>().map_err(|_| {
        ApiError::new(
            rafiki_types::error::ErrorName::NotFoundError,
            "The console has no such page.",
        )
        .into()
    })
}

/// A job with everything its page shows: its sub-jobs, ALL its trials (newest first, read
/// once: the table pages through them and the tuning plots need them all), and whether it is
/// deployed now.
struct Loaded {
    record: TrainJobRecord,
    subs: Vec<SubTrainJob>,
    trials: Vec<TrialRecord>,
    deployed: bool,
}

impl Loaded {
    /// The caller's job of `app` at `version`, by the API's rule (`caller_job`).
    async fn of(
        state: &AppState,
        user: &ConsoleUser,
        app: &str,
        version: &str,
    ) -> Result<Loaded, ConsoleError> {
        let record = api::caller_job(state, user.user, app, parse_version(version)?).await?;
        let id = record.job.id;
        // Three reads on three of the pool's connections at once: the page waits for the
        // slowest (the trials, all of them for the plots), not for their sum.
        let (subs, trials, deployed) = tokio::try_join!(
            train_jobs::list_subs(&state.pool, id),
            trials::list_for_job(&state.pool, id, i64::MAX, 0),
            rafiki_store::inference_jobs::get_live_of_train_job(&state.pool, id),
        )
        .map_err(ApiError::from)?;
        Ok(Loaded {
            record,
            subs,
            trials,
            deployed: deployed.is_some(),
        })
    }

    /// The tuning plots of every trial (`console::plots::tuning`), saying whether the job
    /// still runs (`data-running`), as the live part does.
    fn plots(&self) -> Markup {
        html! {
            div data-running=(self.record.job.status.is_live()) {
                (plots::tuning(&self.trials, &self.subs, Utc::now()))
            }
        }
    }

    /// Whether a deployment would find a trial to serve: a COMPLETED trial with a score and
    /// saved parameters (what the API's deploy looks for).
    fn has_scored_trial(&self) -> bool {
        self.trials.iter().any(|t| {
            t.trial.status == TrialStatus::Completed
                && t.trial.score.is_some()
                && t.trial.is_params_saved
        })
    }

    /// The changing part: status, actions, sub-jobs and page `page` of the trials. Its root
    /// says whether the job still runs (`data-running`), which ends the script's polling.
    fn live(&self, csrf_token: &str, page: i64) -> Markup {
        let job = &self.record.job;
        let url = job_url(&job.app, job.app_version);
        let rows = Page {
            limit: TRIALS_PAGE_SIZE,
            offset: (page - 1) * TRIALS_PAGE_SIZE,
        };
        let shown = rows.slice(&self.trials);
        let more = rows.offset.saturating_add(rows.limit) < self.trials.len() as i64;
        html! {
            div data-running=(job.status.is_live()) {
                dl.fields {
                    dt { "Status" } dd { (job.status) }
                    @if let Some(reason) = &job.waiting_reason { dt { "Waiting" } dd { (reason) } }
                    dt { "Stopped (UTC)" } dd { (optional_time(job.datetime_stopped.as_ref())) }
                    @if let Some(error) = &job.error { dt { "Error" } dd { pre { (error) } } }
                }
                div.actions {
                    @if job.status.is_live() {
                        form method="post" action={ (url) "/stop" }
                            data-confirm={ "Stop the train job " (job.app) "?" } {
                            (csrf_field(csrf_token))
                            button.danger type="submit" { "Stop" }
                        }
                    }
                    @if self.deployed {
                        a href=(super::inference_jobs::job_url(&job.app, job.app_version)) { "Its inference job" }
                    } @else if job.status == JobStatus::Stopped && self.has_scored_trial() {
                        form method="post" action={ (PREFIX) "/inference_jobs" } {
                            (csrf_field(csrf_token))
                            input type="hidden" name="app" value=(job.app);
                            input type="hidden" name="app_version" value=(job.app_version);
                            button type="submit" { "Deploy the best trials" }
                        }
                    }
                }
                h2 { "Models" }
                (self.sub_jobs())
                h2 #trials { "Trials (" (self.trials.len()) ")" }
                @if self.trials.is_empty() {
                    p.empty { @if job.status.is_live() { "No trial yet." } @else { "No trials." } }
                } @else {
                    (trial_table(shown))
                    (pager(page, more, |n| format!("{url}?page={n}#trials")))
                }
            }
        }
    }

    /// One row per model: its status, its share of the budget, its trials by status.
    fn sub_jobs(&self) -> Markup {
        let budget = &self.record.job.budget;
        html! {
            table {
                caption.skip { "The job's models" }
                thead { tr {
                    th scope="col" { "Model" } th scope="col" { "Status" } th scope="col" { "Budget" }
                    @if budget.pruning.is_some() {
                        th scope="col" { "Trials (completed / pruned / errored / unfinished)" }
                    } @else {
                        th scope="col" { "Trials (completed / errored / unfinished)" }
                    }
                } }
                tbody {
                    @for sub in &self.subs {
                        @let of_sub = || self.trials.iter().filter(|t| t.sub_train_job_id == sub.id);
                        @let count = |status: TrialStatus| of_sub().filter(|t| t.trial.status == status).count();
                        tr {
                            td { (sub.model_name) }
                            td {
                                (sub.status)
                                @if let Some(error) = &sub.error { br; small { (error) } }
                            }
                            td { (per_model_budget(budget)) ", " (sub.gpu_count) " GPU" @if sub.gpu_count != 1 { "s" } }
                            td {
                                (count(TrialStatus::Completed)) " / "
                                @if budget.pruning.is_some() { (count(TrialStatus::Pruned)) " / " }
                                (count(TrialStatus::Errored)) " / "
                                (count(TrialStatus::Running) + count(TrialStatus::Pending))
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The job's page: its fixed fields, the live part, and the tuning plots' place.
async fn job_page(
    state: &AppState,
    user: &ConsoleUser,
    app: &str,
    version: &str,
    page: i64,
    notice: Option<Notice>,
) -> Result<Html<String>, ConsoleError> {
    let (loaded, viewer) = tokio::try_join!(
        Loaded::of(state, user, app, version),
        Viewer::of(state, user)
    )?;
    let job = &loaded.record.job;
    let live_url = format!("{}/live?page={page}", job_url(&job.app, job.app_version));
    let plots_url = format!("{}/plots", job_url(&job.app, job.app_version));
    let title = format!("Train job {} v{}", job.app, job.app_version);
    let content = html! {
        h1 { "Train job " (job.app) " " small { "version " (job.app_version) } }
        @if let Some(notice) = &notice { (notice) }
        dl.fields {
            dt { "Task" } dd { (job.task) }
            dt { "Budget" } dd { (budget_text(&job.budget)) }
            dt { "Training dataset" } dd { code { (job.train_dataset_id) } }
            dt { "Validation dataset" } dd { code { (job.val_dataset_id) } }
            dt { "Train arguments" } dd {
                @match &job.train_args {
                    Some(args) => pre { (serde_json::to_string_pretty(args).unwrap_or_default()) },
                    None => "none",
                }
            }
            dt { "Started (UTC)" } dd { (time(&job.datetime_started)) }
        }
        // The script refreshes this section while the job runs; without it, reloading does.
        // Not `aria-live`: a screen reader would read the whole table out every 2 s.
        section #live data-live=[job.status.is_live().then_some(&live_url)] {
            (loaded.live(&viewer.csrf, page))
        }
        section #tuning-plots {
            h2 { "Tuning plots" }
            div data-live=[job.status.is_live().then_some(&plots_url)] data-live-every="10000" {
                (loaded.plots())
            }
        }
    };
    Ok(layout(&viewer, &title, content))
}

/// A page of trials: number (linking to the trial's page), model, score, status, proposal,
/// times.
fn trial_table(trials: &[TrialRecord]) -> Markup {
    html! {
        table {
            caption.skip { "Trials, newest first" }
            thead { tr {
                th scope="col" { "No." } th scope="col" { "Model" } th scope="col" { "Score" }
                th scope="col" { "Status" } th scope="col" { "Proposal" }
                th scope="col" { "Started (UTC)" } th scope="col" { "Stopped (UTC)" }
                th scope="col" { "Duration" }
            } }
            tbody {
                @for record in trials {
                    @let trial = &record.trial;
                    tr {
                        td { a href={ (PREFIX) "/trials/" (trial.id) } { (trial.no) } }
                        td { (trial.model_name) }
                        td { (score(trial.score)) }
                        td { (trial.status) }
                        td { code { (proposal_summary(&trial.proposal.knobs)) } }
                        td { (time(&trial.datetime_started)) }
                        td { (optional_time(trial.datetime_stopped.as_ref())) }
                        td {
                            @if let Some(stopped) = trial.datetime_stopped {
                                (duration(stopped - trial.datetime_started))
                            } @else { "—" }
                        }
                    }
                }
            }
        }
    }
}

/// `knob=value, ...`, cut to [`PROPOSAL_SUMMARY_CHARS`].
fn proposal_summary(knobs: &rafiki_types::knob::Knobs) -> String {
    let full = knobs
        .iter()
        .map(|(name, value)| format!("{name}={value}"))
        .collect::<Vec<_>>()
        .join(", ");
    if full.chars().count() <= PROPOSAL_SUMMARY_CHARS {
        full
    } else {
        let cut: String = full.chars().take(PROPOSAL_SUMMARY_CHARS - 1).collect();
        format!("{cut}…")
    }
}

/// A duration as people read it: `4.2 s`, `3 min 5 s`, `2 h 4 min`.
fn duration(span: chrono::TimeDelta) -> String {
    let millis = span.num_milliseconds().max(0);
    let secs = millis / 1000;
    match secs {
        0..60 => format!("{:.1} s", millis as f64 / 1000.0),
        60..3600 => format!("{} min {} s", secs / 60, secs % 60),
        _ => format!("{} h {} min", secs / 3600, secs % 3600 / 60),
    }
}

/// A job's budget in words; parallel CPU workers only when asked for (Rafiki has none).
fn budget_text(budget: &TrainBudget) -> String {
    let mut text = format!(
        "{}, {} GPU{}",
        per_model_budget(budget),
        budget.gpu_count,
        if budget.gpu_count == 1 { "" } else { "s" }
    );
    if budget.cpu_workers_per_model > 1 {
        text.push_str(&format!(
            ", {} workers per model without GPUs",
            budget.cpu_workers_per_model
        ));
    }
    if let Some(pruning) = &budget.pruning {
        text.push_str(&format!(
            ", pruning: {} on {} ({})",
            pruning.pruner, pruning.metric, pruning.mode
        ));
    }
    text
}

/// The part of a budget each model gets: trials and hours.
fn per_model_budget(budget: &TrainBudget) -> String {
    let trials = match budget.model_trial_count {
        -1 => "unlimited trials".to_owned(),
        1 => "1 trial".to_owned(),
        n => format!("{n} trials"),
    };
    format!("{trials} and {} h per model", budget.time_hours)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_naturally() {
        assert_eq!(duration(chrono::TimeDelta::milliseconds(4200)), "4.2 s");
        assert_eq!(duration(chrono::TimeDelta::seconds(185)), "3 min 5 s");
        assert_eq!(duration(chrono::TimeDelta::seconds(7440)), "2 h 4 min");
    }

    #[test]
    fn budgets_read_naturally() {
        let mut budget = TrainBudget {
            model_trial_count: 30,
            ..TrainBudget::default()
        };
        assert_eq!(
            budget_text(&budget),
            "30 trials and 0.1 h per model, 0 GPUs"
        );
        budget.cpu_workers_per_model = 4;
        assert_eq!(
            budget_text(&budget),
            "30 trials and 0.1 h per model, 0 GPUs, 4 workers per model without GPUs"
        );
    }

    #[test]
    fn long_proposals_are_cut() {
        let mut knobs = rafiki_types::knob::Knobs::new();
        knobs.insert("lr".into(), serde_json::json!(0.1));
        assert_eq!(proposal_summary(&knobs), "lr=0.1");
        knobs.insert("name".into(), serde_json::json!("x".repeat(500)));
        assert_eq!(
            proposal_summary(&knobs).chars().count(),
            PROPOSAL_SUMMARY_CHARS
        );
    }
}
