//! Counts of rows by status, for the admin's `/metrics` (read at every scrape, every 15 s or
//! so): jobs, sub-jobs, inference jobs, services (by type too) and trials, and the train jobs
//! waiting for GPUs. One statement, so a scrape costs one round trip.

use rafiki_types::status::{JobStatus, ServiceStatus, ServiceType, TrialStatus};
use sqlx::{AssertSqlSafe, PgExecutor};

use crate::status_sets::LIVE_JOB;
use crate::{parse_text, StoreResult};

/// The rows of each table by status; statuses without rows are absent.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Tallies {
    /// Train jobs.
    pub train_jobs: Vec<(JobStatus, i64)>,
    /// Sub-jobs (one model of a train job each).
    pub sub_train_jobs: Vec<(JobStatus, i64)>,
    /// Inference jobs.
    pub inference_jobs: Vec<(JobStatus, i64)>,
    /// Services by type and status.
    pub services: Vec<(ServiceType, ServiceStatus, i64)>,
    /// Trials.
    pub trials: Vec<(TrialStatus, i64)>,
    /// Live train jobs waiting for GPUs (the queue of `orchestrator::queue`).
    pub waiting_train_jobs: i64,
}

/// Counts every table's rows by status.
pub async fn tallies(db: impl PgExecutor<'_>) -> StoreResult<Tallies> {
    let rows: Vec<(String, String, String, i64)> = sqlx::query_as(AssertSqlSafe(format!(
        "select 'train_jobs', '', status, count(*) from train_jobs group by status \
         union all select 'sub_train_jobs', '', status, count(*) from sub_train_jobs \
             group by status \
         union all select 'inference_jobs', '', status, count(*) from inference_jobs \
             group by status \
         union all select 'services', service_type, status, count(*) from services \
             group by service_type, status \
         union all select 'trials', '', status, count(*) from trials group by status \
         union all select 'waiting', '', '', count(*) from train_jobs \
             where waiting_reason is not null and status in {LIVE_JOB}"
    )))
    .fetch_all(db)
    .await?;
    let mut tallies = Tallies::default();
    for (table, kind, status, count) in rows {
        match table.as_str() {
            "train_jobs" => tallies
                .train_jobs
                .push((parse_text("train_jobs.status", &status)?, count)),
            "sub_train_jobs" => tallies
                .sub_train_jobs
                .push((parse_text("sub_train_jobs.status", &status)?, count)),
            "inference_jobs" => tallies
                .inference_jobs
                .push((parse_text("inference_jobs.status", &status)?, count)),
            "services" => tallies.services.push((
                parse_text("services.service_type", &kind)?,
                parse_text("services.status", &status)?,
                count,
            )),
            "trials" => tallies
                .trials
                .push((parse_text("trials.status", &status)?, count)),
            _ => tallies.waiting_train_jobs = count,
        }
    }
    Ok(tallies)
}
