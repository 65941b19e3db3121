//! The `inference_jobs` table and its services: `inference_job_workers` (one inference worker
//! per deployed trial) and `inference_job_predictors` (one predictor per job).

use chrono::{DateTime, Utc};
use rafiki_types::ids::{InferenceJobId, ServiceId, TrainJobId, TrialId, UserId};
use rafiki_types::inference::{InferenceBudget, InferenceJob};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, PgExecutor};
use uuid::Uuid;

use crate::job_status::{job_moves, JobTable};
use crate::rows::{self, IntoRecord};
use crate::status_sets::LIVE_JOB;
use crate::{parse_text, StoreResult};

/// At most one STARTED or RUNNING inference job per train job.
pub const ONE_LIVE_PER_TRAIN_JOB: &str = "inference_jobs_one_live_per_train_job";

/// An inference job row with its train job's app.
#[derive(Debug, Clone, PartialEq)]
pub struct InferenceJobRecord {
    /// The job as the API shows it.
    pub job: InferenceJob,
    /// Its owner.
    pub user_id: Uuid,
    /// Its budget.
    pub budget: InferenceBudget,
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    user_id: Uuid,
    train_job_id: Uuid,
    app: String,
    app_version: i32,
    budget: Json<InferenceBudget>,
    status: String,
    error: Option<String>,
    datetime_started: DateTime<Utc>,
    datetime_stopped: Option<DateTime<Utc>>,
}

impl IntoRecord for Row {
    type Record = InferenceJobRecord;

    fn into_record(self) -> StoreResult<InferenceJobRecord> {
        Ok(InferenceJobRecord {
            user_id: self.user_id,
            budget: self.budget.0,
            job: InferenceJob {
                id: self.id,
                status: parse_text("inference_jobs.status", &self.status)?,
                train_job_id: self.train_job_id,
                app: self.app,
                app_version: self.app_version,
                datetime_started: self.datetime_started,
                datetime_stopped: self.datetime_stopped,
                error: self.error,
            },
        })
    }
}

const SELECT: &str = "select i.id, i.user_id, i.train_job_id, t.app, t.app_version, i.budget, \
    i.status, i.error, i.datetime_started, i.datetime_stopped \
    from inference_jobs i join train_jobs t on t.id = i.train_job_id";

/// Inserts a STARTED inference job with the secret its predictor and workers share; fails on
/// [`ONE_LIVE_PER_TRAIN_JOB`] when one is live.
pub async fn insert(
    db: impl PgExecutor<'_>,
    user_id: UserId,
    train_job_id: TrainJobId,
    budget: InferenceBudget,
    predict_secret: &str,
) -> StoreResult<Uuid> {
    Ok(sqlx::query_scalar(
        "insert into inference_jobs (id, user_id, train_job_id, budget, predict_secret) \
         values ($1, $2, $3, $4, $5) returning id",
    )
    .bind(Uuid::new_v4())
    .bind(user_id.0)
    .bind(train_job_id.0)
    .bind(Json(budget))
    .bind(predict_secret)
    .fetch_one(db)
    .await?)
}

/// The secret a job's predictor sends its inference workers (for relaunching one of them).
pub async fn predict_secret(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<String>> {
    Ok(
        sqlx::query_scalar("select predict_secret from inference_jobs where id = $1")
            .bind(id)
            .fetch_optional(db)
            .await?,
    )
}

/// A job by id.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<InferenceJobRecord>> {
    rows::by_id::<Row>(db, format!("{SELECT} where i.id = $1"), id).await
}

/// The live (STARTED or RUNNING) inference job of a train job.
pub async fn get_live_of_train_job(
    db: impl PgExecutor<'_>,
    train_job_id: Uuid,
) -> StoreResult<Option<InferenceJobRecord>> {
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "{SELECT} where i.train_job_id = $1 and i.status in {LIVE_JOB}"
    )))
    .bind(train_job_id)
    .fetch_optional(db)
    .await?;
    row.map(Row::into_record).transpose()
}

/// A user's inference jobs (of one app, when `app` is given), newest first: `limit` of them
/// after the first `offset`.
pub async fn list(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    app: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<InferenceJobRecord>> {
    rows::page_of_user::<Row>(
        db,
        format!(
            "{SELECT} where i.user_id = $1 and ($2::text is null or t.app = $2) \
             order by i.datetime_started desc, i.id limit $3 offset $4"
        ),
        user_id,
        app,
        limit,
        offset,
    )
    .await
}

/// Every live inference job.
pub async fn list_live(db: impl PgExecutor<'_>) -> StoreResult<Vec<InferenceJobRecord>> {
    rows::records::<Row>(
        sqlx::query_as(AssertSqlSafe(format!(
            "{SELECT} where i.status in {LIVE_JOB} order by i.datetime_started"
        )))
        .fetch_all(db)
        .await?,
    )
}

job_moves!(JobTable::Inference, "inference job", mark_running, finish);

/// Links an inference worker to its job and trial.
pub async fn insert_worker(
    db: impl PgExecutor<'_>,
    service_id: ServiceId,
    inference_job_id: InferenceJobId,
    trial_id: TrialId,
) -> StoreResult<()> {
    sqlx::query(
        "insert into inference_job_workers (service_id, inference_job_id, trial_id) \
         values ($1, $2, $3)",
    )
    .bind(service_id.0)
    .bind(inference_job_id.0)
    .bind(trial_id.0)
    .execute(db)
    .await?;
    Ok(())
}

/// Links a job's predictor.
pub async fn insert_predictor(
    db: impl PgExecutor<'_>,
    inference_job_id: InferenceJobId,
    service_id: ServiceId,
) -> StoreResult<()> {
    sqlx::query(
        "insert into inference_job_predictors (inference_job_id, service_id) values ($1, $2)",
    )
    .bind(inference_job_id.0)
    .bind(service_id.0)
    .execute(db)
    .await?;
    Ok(())
}

/// What a service of an inference job is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// An inference worker serving this trial.
    Worker {
        /// The trial.
        trial_id: Uuid,
    },
    /// The job's predictor.
    Predictor,
}

/// The inference job a service belongs to, and its role in it.
pub async fn role_of_service(
    db: impl PgExecutor<'_>,
    service_id: Uuid,
) -> StoreResult<Option<(Uuid, Role)>> {
    let row: Option<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "select inference_job_id, trial_id from inference_job_workers where service_id = $1 \
         union all \
         select inference_job_id, null from inference_job_predictors where service_id = $1",
    )
    .bind(service_id)
    .fetch_optional(db)
    .await?;
    Ok(row.map(|(job, trial)| {
        (
            job,
            match trial {
                Some(trial_id) => Role::Worker { trial_id },
                None => Role::Predictor,
            },
        )
    }))
}

/// The services of an inference job with their roles: the predictor first, then the workers.
pub async fn services_of_job(
    db: impl PgExecutor<'_>,
    inference_job_id: Uuid,
) -> StoreResult<Vec<(Uuid, Role)>> {
    let rows: Vec<(Uuid, Option<Uuid>)> = sqlx::query_as(
        "select service_id, null::uuid from inference_job_predictors where inference_job_id = $1 \
         union all \
         select service_id, trial_id from inference_job_workers where inference_job_id = $1",
    )
    .bind(inference_job_id)
    .fetch_all(db)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(service, trial)| {
            (
                service,
                match trial {
                    Some(trial_id) => Role::Worker { trial_id },
                    None => Role::Predictor,
                },
            )
        })
        .collect())
}
