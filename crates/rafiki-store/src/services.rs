//! The `services` table and its links: every worker or predictor a backend runs, with its
//! token hash, GPUs, backend id and restarts; `train_job_workers` ties train workers to their
//! sub-job.

use chrono::{DateTime, Utc};
use rafiki_types::ids::{ServiceId, SubTrainJobId};
use rafiki_types::internal::EnvironmentReport;
use rafiki_types::status::{BackendKind, ServiceStatus, ServiceType};
use rafiki_types::train::ServiceEnvironment;
use sqlx::{AssertSqlSafe, FromRow, PgExecutor};
use uuid::Uuid;

use crate::rows::{self, IntoRecord, Table};
use crate::status_sets::{StatusSet, LIVE_SERVICE};
use crate::{parse_text, StoreResult};

/// A service row.
#[derive(Debug, Clone, PartialEq)]
pub struct ServiceRecord {
    /// The service's id.
    pub id: Uuid,
    /// What it does.
    pub service_type: ServiceType,
    /// Its status.
    pub status: ServiceStatus,
    /// The backend that runs it.
    pub backend: BackendKind,
    /// The backend's handle (pid, container id), once launched.
    pub backend_id: Option<String>,
    /// GPUs allocated to it (device ids on its node).
    pub gpus: Vec<i32>,
    /// The node it runs on (the backend's node id; `local` for one-host backends).
    pub node: Option<String>,
    /// Where it listens, if it does.
    pub host: Option<String>,
    /// Its port, if it listens.
    pub port: Option<i32>,
    /// How often it was restarted after a crash.
    pub restarts: i32,
    /// The image it runs in (container backends).
    pub image: Option<String>,
    /// The train or inference job it serves.
    pub job_id: Option<Uuid>,
    /// Why it errored.
    pub error: Option<String>,
    /// When it was created.
    pub datetime_started: DateTime<Utc>,
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    service_type: String,
    status: String,
    backend: String,
    backend_id: Option<String>,
    gpus: Vec<i32>,
    node: Option<String>,
    host: Option<String>,
    port: Option<i32>,
    restarts: i32,
    image: Option<String>,
    job_id: Option<Uuid>,
    error: Option<String>,
    datetime_started: DateTime<Utc>,
}

impl IntoRecord for Row {
    type Record = ServiceRecord;

    fn into_record(self) -> StoreResult<ServiceRecord> {
        Ok(ServiceRecord {
            id: self.id,
            service_type: parse_text("services.service_type", &self.service_type)?,
            status: parse_text("services.status", &self.status)?,
            backend: parse_text("services.backend", &self.backend)?,
            backend_id: self.backend_id,
            gpus: self.gpus,
            node: self.node,
            host: self.host,
            port: self.port,
            restarts: self.restarts,
            image: self.image,
            job_id: self.job_id,
            error: self.error,
            datetime_started: self.datetime_started,
        })
    }
}

const COLUMNS: &str = "id, service_type, status, backend, backend_id, gpus, node, host, port, \
    restarts, image, job_id, error, datetime_started";

const TABLE: Table = Table {
    name: "services",
    columns: COLUMNS,
};

/// A service to write.
#[derive(Debug, Clone, Copy)]
pub struct NewService<'a> {
    /// Its id.
    pub id: Uuid,
    /// What it does.
    pub service_type: ServiceType,
    /// The backend that runs it.
    pub backend: BackendKind,
    /// The sha256 of its token.
    pub token_hash: &'a str,
    /// The node it is placed on.
    pub node: &'a str,
    /// GPUs allocated to it on that node (their `gpu_allocations` rows are written with it).
    pub gpus: &'a [i32],
    /// The image it runs in.
    pub image: &'a str,
    /// The train or inference job it serves.
    pub job_id: Uuid,
}

/// Inserts a STARTED service placed on `new.node`, and allocates its GPUs there (one
/// statement: a device already held fails it on `gpu_allocations_pkey`).
pub async fn insert(db: impl PgExecutor<'_>, new: &NewService<'_>) -> StoreResult<()> {
    sqlx::query(
        "with service as ( \
             insert into services (id, service_type, backend, token_hash, node, gpus, image, \
                 job_id) \
             values ($1, $2, $3, $4, $5, $6, $7, $8) returning id) \
         insert into gpu_allocations (node, device, service_id) \
             select $5, device, service.id from service, unnest($6::integer[]) as device",
    )
    .bind(new.id)
    .bind(<&str>::from(new.service_type))
    .bind(<&str>::from(new.backend))
    .bind(new.token_hash)
    .bind(new.node)
    .bind(new.gpus)
    .bind(new.image)
    .bind(new.job_id)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves a live service's placement to `node` and `gpus` (before a relaunch elsewhere): its
/// old devices are freed and the new ones allocated in one statement.
pub async fn move_to_node(
    db: impl PgExecutor<'_>,
    id: Uuid,
    node: &str,
    gpus: &[i32],
) -> StoreResult<()> {
    sqlx::query(
        "with freed as (delete from gpu_allocations where service_id = $1), \
         moved as (update services set node = $2, gpus = $3 where id = $1 returning id) \
         insert into gpu_allocations (node, device, service_id) \
             select $2, device, moved.id from moved, unnest($3::integer[]) as device",
    )
    .bind(id)
    .bind(node)
    .bind(gpus)
    .execute(db)
    .await?;
    Ok(())
}

/// Links a train worker to its sub-job.
pub async fn insert_train_worker(
    db: impl PgExecutor<'_>,
    service_id: ServiceId,
    sub_train_job_id: SubTrainJobId,
) -> StoreResult<()> {
    sqlx::query("insert into train_job_workers (service_id, sub_train_job_id) values ($1, $2)")
        .bind(service_id.0)
        .bind(sub_train_job_id.0)
        .execute(db)
        .await?;
    Ok(())
}

/// A live service by the sha256 of its token.
pub async fn find_live_by_token_hash(
    db: impl PgExecutor<'_>,
    token_hash: &str,
) -> StoreResult<Option<ServiceRecord>> {
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "select {COLUMNS} from services where token_hash = $1 \
         and status in {LIVE_SERVICE}"
    )))
    .bind(token_hash)
    .fetch_optional(db)
    .await?;
    row.map(Row::into_record).transpose()
}

/// A service by id.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<ServiceRecord>> {
    rows::by_id::<Row>(db, TABLE.select_by_id(), id).await
}

/// Every live service (for supervision and reconciliation).
pub async fn list_live(db: impl PgExecutor<'_>) -> StoreResult<Vec<ServiceRecord>> {
    rows::records::<Row>(
        sqlx::query_as(AssertSqlSafe(format!(
            "select {COLUMNS} from services where status in {LIVE_SERVICE} \
             order by datetime_started"
        )))
        .fetch_all(db)
        .await?,
    )
}

/// The train workers of a train job, with their sub-job ids.
pub async fn list_train_workers(
    db: impl PgExecutor<'_>,
    train_job_id: Uuid,
) -> StoreResult<Vec<(Uuid, ServiceRecord)>> {
    #[derive(FromRow)]
    struct Linked {
        sub_train_job_id: Uuid,
        #[sqlx(flatten)]
        row: Row,
    }
    let cols = COLUMNS
        .split(", ")
        .map(|c| format!("s.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let rows: Vec<Linked> = sqlx::query_as(AssertSqlSafe(format!(
        "select w.sub_train_job_id, {cols} from services s \
         join train_job_workers w on w.service_id = s.id \
         join sub_train_jobs j on j.id = w.sub_train_job_id \
         where j.train_job_id = $1 order by s.datetime_started, s.id"
    )))
    .bind(train_job_id)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|l| Ok((l.sub_train_job_id, l.row.into_record()?)))
        .collect()
}

/// The sub-job a train worker serves.
pub async fn train_worker_sub_job(
    db: impl PgExecutor<'_>,
    service_id: Uuid,
) -> StoreResult<Option<Uuid>> {
    Ok(
        sqlx::query_scalar("select sub_train_job_id from train_job_workers where service_id = $1")
            .bind(service_id)
            .fetch_optional(db)
            .await?,
    )
}

/// Records the backend's handle of a launched service.
pub async fn set_backend_id(
    db: impl PgExecutor<'_>,
    id: Uuid,
    backend_id: &str,
) -> StoreResult<()> {
    sqlx::query("update services set backend_id = $2 where id = $1")
        .bind(id)
        .bind(backend_id)
        .execute(db)
        .await?;
    Ok(())
}

/// Gives a service a new token before it is launched again (the old one dies with the old
/// process); `restarted` counts a restart after a crash.
pub async fn renew_token(
    db: impl PgExecutor<'_>,
    id: Uuid,
    token_hash: &str,
    restarted: bool,
) -> StoreResult<()> {
    sqlx::query(
        "update services set token_hash = $2, backend_id = null, \
         restarts = restarts + case when $3 then 1 else 0 end where id = $1",
    )
    .bind(id)
    .bind(token_hash)
    .bind(restarted)
    .execute(db)
    .await?;
    Ok(())
}

/// Moves a service from `from` to `to` (checked against the transition table); sets
/// `datetime_stopped` on final statuses. Returns whether it moved.
pub async fn set_status(
    db: impl PgExecutor<'_>,
    id: Uuid,
    from: ServiceStatus,
    to: ServiceStatus,
    error: Option<&str>,
) -> StoreResult<bool> {
    let from = StatusSet::only(from, to)?;
    let done = sqlx::query(AssertSqlSafe(format!(
        "update services set status = $2, error = coalesce(error, $3), \
         datetime_stopped = case when $4 then now() else datetime_stopped end \
         where id = $1 and status in {from}"
    )))
    .bind(id)
    .bind(<&str>::from(to))
    .bind(error)
    .bind(!to.is_live())
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Moves a live service to a final status (STOPPED or ERRORED), whatever live status it had,
/// and frees its GPUs in the same statement. Returns whether it was live.
pub async fn finish(
    db: impl PgExecutor<'_>,
    id: Uuid,
    to: ServiceStatus,
    error: Option<&str>,
) -> StoreResult<bool> {
    let from = StatusSet::sources_of_final(to)?;
    let moved: i64 = sqlx::query_scalar(AssertSqlSafe(format!(
        "with moved as ( \
             update services set status = $2, error = coalesce(error, $3), \
                 datetime_stopped = now() \
             where id = $1 and status in {from} returning id), \
         freed as (delete from gpu_allocations where service_id in (select id from moved)) \
         select count(*) from moved"
    )))
    .bind(id)
    .bind(<&str>::from(to))
    .bind(error)
    .fetch_one(db)
    .await?;
    Ok(moved == 1)
}

/// Records where a service listens.
pub async fn set_address(
    db: impl PgExecutor<'_>,
    id: Uuid,
    host: &str,
    port: u16,
) -> StoreResult<()> {
    sqlx::query("update services set host = $2, port = $3 where id = $1")
        .bind(id)
        .bind(host)
        .bind(i32::from(port))
        .execute(db)
        .await?;
    Ok(())
}

/// Records how a service got its model's dependencies (a relaunch reports again and replaces
/// it).
pub async fn set_environment(
    db: impl PgExecutor<'_>,
    id: Uuid,
    report: &EnvironmentReport,
) -> StoreResult<()> {
    sqlx::query(
        "update services set env_seconds = $2, env_reused = $3, env_size_bytes = $4, \
         env_warnings = $5 where id = $1",
    )
    .bind(id)
    .bind(report.seconds)
    .bind(report.reused)
    .bind(i64::try_from(report.size_bytes).unwrap_or(i64::MAX))
    .bind(&report.warnings)
    .execute(db)
    .await?;
    Ok(())
}

/// What the workers of a train job, and those of its deployments, reported about their
/// dependencies: train workers first, each kind oldest first.
pub async fn environments_of_train_job(
    db: impl PgExecutor<'_>,
    train_job_id: Uuid,
) -> StoreResult<Vec<ServiceEnvironment>> {
    #[derive(FromRow)]
    struct EnvRow {
        id: Uuid,
        service_type: String,
        model_name: String,
        env_seconds: f64,
        env_reused: bool,
        env_size_bytes: i64,
        env_warnings: Vec<String>,
    }
    const REPORTED: &str = "s.id, s.service_type, m.name as model_name, s.env_seconds, \
        s.env_reused, s.env_size_bytes, s.env_warnings, s.datetime_started";
    let rows: Vec<EnvRow> = sqlx::query_as(AssertSqlSafe(format!(
        "select * from ( \
           select 0 as kind, {REPORTED} from services s \
             join train_job_workers w on w.service_id = s.id \
             join sub_train_jobs j on j.id = w.sub_train_job_id \
             join models m on m.id = j.model_id \
             where j.train_job_id = $1 and s.env_seconds is not null \
           union all \
           select 1 as kind, {REPORTED} from services s \
             join inference_job_workers w on w.service_id = s.id \
             join inference_jobs i on i.id = w.inference_job_id \
             join trials t on t.id = w.trial_id \
             join sub_train_jobs j on j.id = t.sub_train_job_id \
             join models m on m.id = j.model_id \
             where i.train_job_id = $1 and s.env_seconds is not null \
         ) reported order by kind, datetime_started, id"
    )))
    .bind(train_job_id)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|row| {
            Ok(ServiceEnvironment {
                service_id: row.id,
                service_type: parse_text("services.service_type", &row.service_type)?,
                model_name: row.model_name,
                seconds: row.env_seconds,
                reused: row.env_reused,
                size_bytes: u64::try_from(row.env_size_bytes).unwrap_or_default(),
                warnings: row.env_warnings,
            })
        })
        .collect()
}

/// The owner of a worker's job and the owner of the model it hosts (`None` for predictors).
pub async fn owners(
    db: impl PgExecutor<'_>,
    service_id: Uuid,
) -> StoreResult<Option<(Uuid, Uuid)>> {
    Ok(sqlx::query_as(
        "select t.user_id, m.user_id from train_job_workers w \
           join sub_train_jobs j on j.id = w.sub_train_job_id \
           join train_jobs t on t.id = j.train_job_id \
           join models m on m.id = j.model_id \
           where w.service_id = $1 \
         union all \
         select i.user_id, m.user_id from inference_job_workers w \
           join inference_jobs i on i.id = w.inference_job_id \
           join trials r on r.id = w.trial_id \
           join sub_train_jobs j on j.id = r.sub_train_job_id \
           join models m on m.id = j.model_id \
           where w.service_id = $1",
    )
    .bind(service_id)
    .fetch_optional(db)
    .await?)
}
