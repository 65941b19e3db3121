//! The `train_jobs` and `sub_train_jobs` tables: a train job, and one sub-job per model with
//! its advisor, knob config, GPU share and status.

use chrono::{DateTime, Utc};
use rafiki_types::ids::{ModelId, TrainJobId};
use rafiki_types::knob::AdvisorType;
use rafiki_types::status::JobStatus;
use rafiki_types::train::{TrainBudget, TrainJob};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, PgExecutor};
use uuid::Uuid;

use crate::job_status::{job_moves, JobTable};
use crate::rows::{self, IntoRecord, Table};
use crate::status_sets::LIVE_JOB;
use crate::{parse_text, JsonText, StoreResult};

/// At most one STARTED or RUNNING job per (user, app).
pub const ONE_LIVE_PER_APP: &str = "train_jobs_one_live_per_app";
/// `(user, app, app_version)` is unique.
pub const APP_VERSION_UNIQUE: &str = "train_jobs_user_app_version_key";

/// A train job row.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainJobRecord {
    /// The job as the API shows it.
    pub job: TrainJob,
    /// Its owner.
    pub user_id: Uuid,
}

#[derive(FromRow)]
struct JobRow {
    id: Uuid,
    user_id: Uuid,
    app: String,
    app_version: i32,
    task: String,
    budget: Json<TrainBudget>,
    train_dataset_id: Uuid,
    val_dataset_id: Uuid,
    train_args: Option<Json<serde_json::Value>>,
    status: String,
    error: Option<String>,
    datetime_started: DateTime<Utc>,
    datetime_stopped: Option<DateTime<Utc>>,
    waiting_reason: Option<String>,
}

impl IntoRecord for JobRow {
    type Record = TrainJobRecord;

    fn into_record(self) -> StoreResult<TrainJobRecord> {
        Ok(TrainJobRecord {
            user_id: self.user_id,
            job: TrainJob {
                id: self.id,
                status: parse_text("train_jobs.status", &self.status)?,
                app: self.app,
                app_version: self.app_version,
                task: self.task,
                train_dataset_id: self.train_dataset_id,
                val_dataset_id: self.val_dataset_id,
                train_args: self.train_args.map(|j| j.0),
                budget: self.budget.0,
                datetime_started: self.datetime_started,
                datetime_stopped: self.datetime_stopped,
                error: self.error,
                waiting_reason: self.waiting_reason,
            },
        })
    }
}

const JOB_COLUMNS: &str = "id, user_id, app, app_version, task, budget, train_dataset_id, \
    val_dataset_id, train_args, status, error, datetime_started, datetime_stopped, waiting_reason";

const TABLE: Table = Table {
    name: "train_jobs",
    columns: JOB_COLUMNS,
};

/// What a new train job is made of.
pub struct NewTrainJob<'a> {
    /// Its owner.
    pub user_id: Uuid,
    /// Its app.
    pub app: &'a str,
    /// Its task.
    pub task: &'a str,
    /// Its budget.
    pub budget: TrainBudget,
    /// Training data.
    pub train_dataset_id: Uuid,
    /// Validation data.
    pub val_dataset_id: Uuid,
    /// Extra `train()` arguments.
    pub train_args: Option<&'a serde_json::Value>,
}

/// Inserts a STARTED job with the next version of the user's app. Concurrent creations of the
/// same app fail on [`ONE_LIVE_PER_APP`] or [`APP_VERSION_UNIQUE`].
pub async fn insert(db: impl PgExecutor<'_>, new: &NewTrainJob<'_>) -> StoreResult<TrainJobRecord> {
    let row: JobRow = sqlx::query_as(AssertSqlSafe(format!(
        "insert into train_jobs (id, user_id, app, app_version, task, budget, train_dataset_id, \
             val_dataset_id, train_args) \
         select $1, $2, $3, coalesce(max(app_version), 0) + 1, $4, $5, $6, $7, $8 \
         from train_jobs where user_id = $2 and app = $3 \
         returning {JOB_COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(new.user_id)
    .bind(new.app)
    .bind(new.task)
    .bind(Json(&new.budget))
    .bind(new.train_dataset_id)
    .bind(new.val_dataset_id)
    .bind(new.train_args.map(JsonText))
    .fetch_one(db)
    .await?;
    row.into_record()
}

/// A job by id.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<TrainJobRecord>> {
    rows::by_id::<JobRow>(db, TABLE.select_by_id(), id).await
}

/// The user's job of `app` at `app_version`, or their latest one when `app_version` is -1.
pub async fn get_by_app(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    app: &str,
    app_version: i32,
) -> StoreResult<Option<TrainJobRecord>> {
    let row: Option<JobRow> = sqlx::query_as(AssertSqlSafe(format!(
        "select {JOB_COLUMNS} from train_jobs where user_id = $1 and app = $2 \
         and ($3 = -1 or app_version = $3) order by app_version desc limit 1"
    )))
    .bind(user_id)
    .bind(app)
    .bind(app_version)
    .fetch_optional(db)
    .await?;
    row.map(JobRow::into_record).transpose()
}

/// The user's jobs (of one app, when `app` is given), newest first: `limit` of them after the
/// first `offset`. A user's versions of an app are created one after the other (one live job
/// per app), so newest first is highest version first.
pub async fn list(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    app: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<TrainJobRecord>> {
    rows::page_of_user::<JobRow>(
        db,
        format!(
            "select {JOB_COLUMNS} from train_jobs where user_id = $1 \
             and ($2::text is null or app = $2) \
             order by datetime_started desc, app_version desc, id limit $3 offset $4"
        ),
        user_id,
        app,
        limit,
        offset,
    )
    .await
}

/// Whether the user has a STARTED or RUNNING job of `app`.
pub async fn has_live(db: impl PgExecutor<'_>, user_id: Uuid, app: &str) -> StoreResult<bool> {
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "select exists (select 1 from train_jobs where user_id = $1 and app = $2 \
         and status in {LIVE_JOB})"
    )))
    .bind(user_id)
    .bind(app)
    .fetch_one(db)
    .await?)
}

/// How many STARTED or RUNNING jobs the user has.
pub async fn count_live_of_user(db: impl PgExecutor<'_>, user_id: Uuid) -> StoreResult<i64> {
    Ok(sqlx::query_scalar(AssertSqlSafe(format!(
        "select count(*) from train_jobs where user_id = $1 and status in {LIVE_JOB}"
    )))
    .bind(user_id)
    .fetch_one(db)
    .await?)
}

/// Every STARTED or RUNNING job.
pub async fn list_live(db: impl PgExecutor<'_>) -> StoreResult<Vec<TrainJobRecord>> {
    rows::records::<JobRow>(
        sqlx::query_as(AssertSqlSafe(format!(
            "select {JOB_COLUMNS} from train_jobs where status in {LIVE_JOB} \
             order by datetime_started"
        )))
        .fetch_all(db)
        .await?,
    )
}

/// Records that no trial of the sub-job may start any more (the advisor said its budget is
/// spent); the first time counts.
pub async fn mark_budget_spent(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<()> {
    sqlx::query(
        "update sub_train_jobs set budget_spent_at = coalesce(budget_spent_at, now()) \
         where id = $1",
    )
    .bind(id)
    .execute(db)
    .await?;
    Ok(())
}

/// Says why a live job waits for GPUs, or (`None`) that it no longer waits. Returns whether the
/// job was live.
pub async fn set_waiting(
    db: impl PgExecutor<'_>,
    id: Uuid,
    reason: Option<&str>,
) -> StoreResult<bool> {
    let done = sqlx::query(AssertSqlSafe(format!(
        "update train_jobs set waiting_reason = $2 where id = $1 and status in {LIVE_JOB}"
    )))
    .bind(id)
    .bind(reason)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// The live jobs waiting for GPUs, in the order they were submitted.
pub async fn list_waiting(db: impl PgExecutor<'_>) -> StoreResult<Vec<TrainJobRecord>> {
    rows::records::<JobRow>(
        sqlx::query_as(AssertSqlSafe(format!(
            "select {JOB_COLUMNS} from train_jobs \
             where waiting_reason is not null and status in {LIVE_JOB} \
             order by datetime_started, id"
        )))
        .fetch_all(db)
        .await?,
    )
}

// A train job and a sub-job run once their first trial starts.
job_moves!(JobTable::Train, "train job", mark_running, finish);
job_moves!(JobTable::SubTrain, "sub-job", mark_sub_running, finish_sub);

/// A sub-job: one model of a train job.
#[derive(Debug, Clone, PartialEq)]
pub struct SubTrainJob {
    /// The sub-job's id.
    pub id: Uuid,
    /// Its train job.
    pub train_job_id: Uuid,
    /// The model it tunes.
    pub model_id: Uuid,
    /// The model's name.
    pub model_name: String,
    /// GPUs given to it.
    pub gpu_count: i32,
    /// The advisor tuning it, once its knob config is known.
    pub advisor_type: Option<AdvisorType>,
    /// The model's knob config (JSON of `docs/knobs.md`), once a worker reported it.
    pub knob_config: Option<serde_json::Value>,
    /// Its status.
    pub status: JobStatus,
    /// Why it errored.
    pub error: Option<String>,
    /// When it was created.
    pub datetime_started: DateTime<Utc>,
    /// When its `TIME_HOURS` budget started: its model first loaded and reported its knob
    /// config (`None` before that).
    pub budget_started_at: Option<DateTime<Utc>>,
    /// When the advisor first answered that its budget is spent (`None` while trials may
    /// still start).
    pub budget_spent_at: Option<DateTime<Utc>>,
}

impl SubTrainJob {
    /// Where its `TIME_HOURS` clock starts: when the model was first ready, or for sub-jobs
    /// from before that was recorded, their creation.
    pub fn budget_clock_start(&self) -> DateTime<Utc> {
        self.budget_started_at.unwrap_or(self.datetime_started)
    }
}

#[derive(FromRow)]
struct SubRow {
    id: Uuid,
    train_job_id: Uuid,
    model_id: Uuid,
    model_name: String,
    gpu_count: i32,
    advisor_type: Option<String>,
    knob_config: Option<Json<serde_json::Value>>,
    status: String,
    error: Option<String>,
    datetime_started: DateTime<Utc>,
    budget_started_at: Option<DateTime<Utc>>,
    budget_spent_at: Option<DateTime<Utc>>,
}

impl SubRow {
    fn into_sub(self) -> StoreResult<SubTrainJob> {
        Ok(SubTrainJob {
            id: self.id,
            train_job_id: self.train_job_id,
            model_id: self.model_id,
            model_name: self.model_name,
            gpu_count: self.gpu_count,
            advisor_type: self
                .advisor_type
                .map(|name| parse_text("sub_train_jobs.advisor_type", &name))
                .transpose()?,
            knob_config: self.knob_config.map(|j| j.0),
            status: parse_text("sub_train_jobs.status", &self.status)?,
            error: self.error,
            datetime_started: self.datetime_started,
            budget_started_at: self.budget_started_at,
            budget_spent_at: self.budget_spent_at,
        })
    }
}

const SUB_SELECT: &str = "select s.id, s.train_job_id, s.model_id, m.name as model_name, \
    s.gpu_count, s.advisor_type, s.knob_config, s.status, s.error, s.datetime_started, \
    s.budget_started_at, s.budget_spent_at from sub_train_jobs s join models m on m.id = s.model_id";

/// Inserts a STARTED sub-job.
pub async fn insert_sub(
    db: impl PgExecutor<'_>,
    train_job_id: TrainJobId,
    model_id: ModelId,
    gpu_count: i32,
) -> StoreResult<Uuid> {
    Ok(sqlx::query_scalar(
        "insert into sub_train_jobs (id, train_job_id, model_id, gpu_count) \
         values ($1, $2, $3, $4) returning id",
    )
    .bind(Uuid::new_v4())
    .bind(train_job_id.0)
    .bind(model_id.0)
    .bind(gpu_count)
    .fetch_one(db)
    .await?)
}

/// A sub-job, locked for the rest of the transaction: proposals of one model are serialised so
/// two workers never get the same trial number or a stale history.
pub async fn lock_sub(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<SubTrainJob>> {
    let row: Option<SubRow> = sqlx::query_as(AssertSqlSafe(format!(
        "{SUB_SELECT} where s.id = $1 for update of s"
    )))
    .bind(id)
    .fetch_optional(db)
    .await?;
    row.map(SubRow::into_sub).transpose()
}

/// The sub-jobs of a train job, in creation order.
pub async fn list_subs(
    db: impl PgExecutor<'_>,
    train_job_id: Uuid,
) -> StoreResult<Vec<SubTrainJob>> {
    let rows: Vec<SubRow> = sqlx::query_as(AssertSqlSafe(format!(
        "{SUB_SELECT} where s.train_job_id = $1 order by s.datetime_started, s.id"
    )))
    .bind(train_job_id)
    .fetch_all(db)
    .await?;
    rows.into_iter().map(SubRow::into_sub).collect()
}

/// Records the model's knob config and the advisor chosen for it; the first time, its
/// `TIME_HOURS` clock starts now (the model is installed and loaded).
pub async fn set_knob_config(
    db: impl PgExecutor<'_>,
    id: Uuid,
    advisor_type: AdvisorType,
    knob_config: &serde_json::Value,
) -> StoreResult<()> {
    sqlx::query(
        "update sub_train_jobs set advisor_type = $2, knob_config = $3, \
         budget_started_at = coalesce(budget_started_at, now()) where id = $1",
    )
    .bind(id)
    .bind(<&str>::from(advisor_type))
    .bind(JsonText(knob_config))
    .execute(db)
    .await?;
    Ok(())
}

/// A sub-job by id.
pub async fn get_sub(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<SubTrainJob>> {
    let row: Option<SubRow> =
        sqlx::query_as(AssertSqlSafe(format!("{SUB_SELECT} where s.id = $1")))
            .bind(id)
            .fetch_optional(db)
            .await?;
    row.map(SubRow::into_sub).transpose()
}
