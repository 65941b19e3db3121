//! The `trials` and `trial_logs` tables: every trial of every model, with its proposal,
//! status, score, stored parameters and what the model logged.

use chrono::{DateTime, Utc};
use rafiki_types::ids::{ServiceId, SubTrainJobId, TrainJobId, TrialId};
use rafiki_types::internal::{LogEntry, LogKind, TrialOutcome};
use rafiki_types::proposal::Proposal;
use rafiki_types::pruning::PruneDecision;
use rafiki_types::status::TrialStatus;
use rafiki_types::train::Trial;
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, PgExecutor, PgPool};
use uuid::Uuid;

use crate::rows::{self, IntoRecord};
use crate::status_sets::{StatusSet, UNFINISHED_TRIAL};
use crate::{parse_text, JsonText, StoreResult};

/// A trial row.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialRecord {
    /// The trial as the API shows it.
    pub trial: Trial,
    /// Its train job.
    pub train_job_id: Uuid,
    /// Its sub-job.
    pub sub_train_job_id: Uuid,
    /// Key of its parameters in the data directory.
    pub params_key: Option<Uuid>,
    /// Hex sha256 of its parameters.
    pub params_sha256: Option<String>,
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    no: i32,
    worker_id: Option<Uuid>,
    proposal: Json<Proposal>,
    datetime_started: DateTime<Utc>,
    datetime_stopped: Option<DateTime<Utc>>,
    status: String,
    model_name: String,
    score: Option<f64>,
    params_key: Option<String>,
    params_sha256: Option<String>,
    error: Option<String>,
    train_job_id: Uuid,
    sub_train_job_id: Uuid,
    prune_step: Option<f64>,
    prune_value: Option<f64>,
    prune_reason: Option<String>,
}

impl IntoRecord for Row {
    type Record = TrialRecord;

    fn into_record(self) -> StoreResult<TrialRecord> {
        let params_key = self
            .params_key
            .map(|k| {
                Uuid::parse_str(&k)
                    .map_err(|_| crate::StoreError::Corrupt(format!("trials.params_key = {k:?}")))
            })
            .transpose()?;
        let status = parse_text("trials.status", &self.status)?;
        // A decision is shown once the trial stopped on it, not while its worker stops it.
        let pruned = match (status, self.prune_step, self.prune_value, self.prune_reason) {
            (TrialStatus::Pruned, Some(step), Some(value), Some(reason)) => Some(PruneDecision {
                step,
                value,
                reason,
            }),
            _ => None,
        };
        Ok(TrialRecord {
            trial: Trial {
                id: self.id,
                no: self.no,
                worker_id: self.worker_id,
                proposal: self.proposal.0,
                datetime_started: self.datetime_started,
                datetime_stopped: self.datetime_stopped,
                status,
                model_name: self.model_name,
                score: self.score,
                is_params_saved: params_key.is_some(),
                error: self.error,
                pruned,
            },
            train_job_id: self.train_job_id,
            sub_train_job_id: self.sub_train_job_id,
            params_key,
            params_sha256: self.params_sha256,
        })
    }
}

const SELECT: &str = "select t.id, t.no, t.worker_id, t.proposal, t.datetime_started, \
    t.datetime_stopped, t.status, m.name as model_name, t.score, t.params_key, t.params_sha256, t.error, \
    t.train_job_id, t.sub_train_job_id, t.prune_step, t.prune_value, t.prune_reason \
    from trials t join sub_train_jobs s on s.id = t.sub_train_job_id \
    join models m on m.id = s.model_id";

/// What an advisor needs of a past trial.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialHistoryItem {
    /// Its proposal.
    pub proposal: Proposal,
    /// Its status.
    pub status: TrialStatus,
    /// Its score.
    pub score: Option<f64>,
    /// The worker that ran it (`None` once its service record is gone).
    pub worker_id: Option<Uuid>,
}

/// Every trial of a sub-job, for its advisor.
pub async fn history(
    db: impl PgExecutor<'_>,
    sub_train_job_id: Uuid,
) -> StoreResult<Vec<TrialHistoryItem>> {
    type Row = (Json<Proposal>, String, Option<f64>, Option<Uuid>);
    let rows: Vec<Row> = sqlx::query_as(
        "select proposal, status, score, worker_id from trials where sub_train_job_id = $1 \
         order by no",
    )
    .bind(sub_train_job_id)
    .fetch_all(db)
    .await?;
    rows.into_iter()
        .map(|(proposal, status, score, worker_id)| {
            Ok(TrialHistoryItem {
                proposal: proposal.0,
                status: parse_text("trials.status", &status)?,
                score,
                worker_id,
            })
        })
        .collect()
}

/// Inserts a RUNNING trial run by `worker_id`. Call with the sub-job locked.
pub async fn insert_running(
    db: impl PgExecutor<'_>,
    train_job_id: TrainJobId,
    sub_train_job_id: SubTrainJobId,
    worker_id: ServiceId,
    proposal: &Proposal,
) -> StoreResult<Uuid> {
    let no = i32::try_from(proposal.trial_no)
        .map_err(|_| crate::StoreError::Corrupt("trial number overflow".into()))?;
    Ok(sqlx::query_scalar(
        "insert into trials (id, train_job_id, sub_train_job_id, no, worker_id, proposal, status) \
         values ($1, $2, $3, $4, $5, $6, $7) returning id",
    )
    .bind(Uuid::new_v4())
    .bind(train_job_id.0)
    .bind(sub_train_job_id.0)
    .bind(no)
    .bind(worker_id.0)
    .bind(JsonText(proposal))
    .bind(<&str>::from(TrialStatus::Running))
    .fetch_one(db)
    .await?)
}

/// A trial by id.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<TrialRecord>> {
    rows::by_id::<Row>(db, format!("{SELECT} where t.id = $1"), id).await
}

/// The trial a worker was given and has not finished, if any, and whether the worker has
/// touched it (posted logs or parameters). A worker runs one trial at a time, so an untouched
/// one is a trial whose assignment never reached it.
pub async fn unfinished_of_worker(
    db: &mut sqlx::PgConnection,
    worker_id: Uuid,
) -> StoreResult<Option<(TrialRecord, bool)>> {
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "{SELECT} where t.worker_id = $1 and t.status in {UNFINISHED_TRIAL} \
         order by t.no desc limit 1"
    )))
    .bind(worker_id)
    .fetch_optional(&mut *db)
    .await?;
    let Some(trial) = row.map(Row::into_record).transpose()? else {
        return Ok(None);
    };
    let touched: bool = sqlx::query_scalar(
        "select exists (select 1 from trial_logs where trial_id = $1) \
         or exists (select 1 from trials where id = $1 and params_key is not null)",
    )
    .bind(trial.trial.id)
    .fetch_one(&mut *db)
    .await?;
    Ok(Some((trial, touched)))
}

/// A train job's trials, newest first.
pub async fn list_for_job(
    db: impl PgExecutor<'_>,
    train_job_id: Uuid,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<TrialRecord>> {
    rows::records::<Row>(
        sqlx::query_as(AssertSqlSafe(format!(
            "{SELECT} where t.train_job_id = $1 \
             order by t.datetime_started desc, t.no desc, t.id limit $2 offset $3"
        )))
        .bind(train_job_id)
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await?,
    )
}

/// A train job's best trials: COMPLETED with saved parameters, by score, descending.
pub async fn best_for_job(
    db: impl PgExecutor<'_>,
    train_job_id: Uuid,
    max_count: i64,
) -> StoreResult<Vec<TrialRecord>> {
    rows::records::<Row>(
        sqlx::query_as(AssertSqlSafe(format!(
            "{SELECT} where t.train_job_id = $1 and t.status = 'COMPLETED' \
             and t.params_key is not null and t.score is not null \
             order by t.score desc, t.datetime_started limit $2"
        )))
        .bind(train_job_id)
        .bind(max_count)
        .fetch_all(db)
        .await?,
    )
}

/// Which saved parameters of a sub-job a trial starts from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SharedChoice {
    /// The highest score (unscored trials last); ties go to the most recent.
    Best,
    /// The trial that completed last.
    Recent,
}

/// The COMPLETED trial of `sub_train_job_id` with saved parameters that `choice` picks, if any.
/// Only that sub-job's trials are considered: its workers share nothing with other models,
/// jobs or users.
pub async fn shared_params_of_sub_job(
    db: impl PgExecutor<'_>,
    sub_train_job_id: Uuid,
    choice: SharedChoice,
) -> StoreResult<Option<TrialRecord>> {
    let order = match choice {
        SharedChoice::Best => "t.score desc nulls last, t.datetime_stopped desc, t.no desc",
        SharedChoice::Recent => "t.datetime_stopped desc, t.no desc",
    };
    let row: Option<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "{SELECT} where t.sub_train_job_id = $1 and t.status = 'COMPLETED' \
         and t.params_key is not null order by {order} limit 1"
    )))
    .bind(sub_train_job_id)
    .fetch_optional(db)
    .await?;
    row.map(IntoRecord::into_record).transpose()
}

/// What [`finish`] did.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Finished {
    /// The running trial now holds the outcome; it ran this many seconds (from its start to
    /// now, as the database's clock tells).
    Now {
        /// Seconds from the trial's start to its end.
        seconds: f64,
    },
    /// It already held this very outcome: a retry of a call whose answer was lost, as when the
    /// admin died between its commit and its answer.
    Already,
    /// It is not a running trial of this worker.
    Refused,
}

/// Finishes a RUNNING trial of `worker_id` with `outcome`.
pub async fn finish(
    db: impl PgExecutor<'_>,
    id: TrialId,
    worker_id: ServiceId,
    outcome: &TrialOutcome,
) -> StoreResult<Finished> {
    let (status, score, error) = match outcome {
        TrialOutcome::Completed { score } => (TrialStatus::Completed, *score, None),
        TrialOutcome::Errored { error } => (TrialStatus::Errored, None, Some(error.as_str())),
        TrialOutcome::Pruned => (TrialStatus::Pruned, None, None),
    };
    // Only the trial the worker runs: a PENDING one it was never given does not end this way,
    // and only one the pruner decided to stop ends PRUNED.
    let from = StatusSet::only(TrialStatus::Running, status)?;
    let (seconds, already): (Option<f64>, bool) = sqlx::query_as(AssertSqlSafe(format!(
        "with done as (update trials set status = $3, score = $4, error = $5, \
                datetime_stopped = now() \
             where id = $1 and worker_id = $2 and status in {from} \
                 and ($3 <> 'PRUNED' or prune_reason is not null) \
             returning extract(epoch from datetime_stopped - datetime_started)::float8 as seconds) \
         select (select seconds from done), exists (select 1 from trials \
             where id = $1 and worker_id = $2 and status = $3 \
             and score is not distinct from $4 and error is not distinct from $5)"
    )))
    .bind(id.0)
    .bind(worker_id.0)
    .bind(<&str>::from(status))
    .bind(score)
    .bind(error)
    .fetch_one(db)
    .await?;
    Ok(match (seconds, already) {
        (Some(seconds), _) => Finished::Now { seconds },
        (None, true) => Finished::Already,
        (None, false) => Finished::Refused,
    })
}

/// What [`set_params`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamsStored {
    /// The trial now refers to the new parameters.
    Stored,
    /// The trial already had these very parameters (same sha256) of this worker: a retry of
    /// an upload whose answer was lost. The new copy is not needed.
    AlreadyStored,
    /// The trial is not a running trial of this worker, or has other parameters.
    Refused,
}

/// Records a RUNNING trial's stored parameters.
pub async fn set_params(
    db: impl PgExecutor<'_>,
    id: TrialId,
    worker_id: ServiceId,
    key: Uuid,
    sha256: &str,
) -> StoreResult<ParamsStored> {
    let (stored, already): (bool, bool) = sqlx::query_as(
        "with done as (update trials set params_key = $3, params_sha256 = $4 \
             where id = $1 and worker_id = $2 and status = $5 and params_key is null \
             returning id) \
         select exists (select 1 from done), exists (select 1 from trials \
             where id = $1 and worker_id = $2 and params_sha256 = $4)",
    )
    .bind(id.0)
    .bind(worker_id.0)
    .bind(key.to_string())
    .bind(sha256)
    .bind(<&str>::from(TrialStatus::Running))
    .fetch_one(db)
    .await?;
    Ok(match (stored, already) {
        (true, _) => ParamsStored::Stored,
        (false, true) => ParamsStored::AlreadyStored,
        (false, false) => ParamsStored::Refused,
    })
}

/// Marks the PENDING or RUNNING trials of a worker ERRORED (its process died or was stopped).
pub async fn error_in_flight_of_worker(
    db: impl PgExecutor<'_>,
    worker_id: Uuid,
    reason: &str,
) -> StoreResult<u64> {
    error_in_flight(db, "worker_id", worker_id, reason).await
}

/// Prepares the unfinished trial of a crashed worker that is about to be relaunched: the
/// interrupted attempt's logs, intermediate values and prune decision are deleted and its parameters, if it had stored them before
/// dying, are let go, so the trial counts as untouched and [`unfinished_of_worker`] hands it
/// (same number, same proposal) to the relaunched worker; a crash then costs no trial of the
/// budget. A let-go parameters file stays on disk with nothing referring to it, like the
/// orphans of docs/storage.md. Returns how many trials will be re-run.
pub async fn requeue_in_flight_of_worker(
    db: &mut sqlx::PgConnection,
    worker_id: Uuid,
) -> StoreResult<u64> {
    sqlx::query(AssertSqlSafe(format!(
        "update trials set params_key = null, params_sha256 = null \
         where worker_id = $1 and status in {UNFINISHED_TRIAL} and params_key is not null"
    )))
    .bind(worker_id)
    .execute(&mut *db)
    .await?;
    sqlx::query(AssertSqlSafe(format!(
        "update trials set prune_step = null, prune_value = null, prune_reason = null \
         where worker_id = $1 and status in {UNFINISHED_TRIAL} and prune_reason is not null"
    )))
    .bind(worker_id)
    .execute(&mut *db)
    .await?;
    for table in ["trial_logs", "trial_intermediates"] {
        sqlx::query(AssertSqlSafe(format!(
            "delete from {table} where trial_id in (select id from trials \
             where worker_id = $1 and status in {UNFINISHED_TRIAL})"
        )))
        .bind(worker_id)
        .execute(&mut *db)
        .await?;
    }
    Ok(sqlx::query_scalar::<_, i64>(AssertSqlSafe(format!(
        "select count(*) from trials where worker_id = $1 and status in {UNFINISHED_TRIAL}"
    )))
    .bind(worker_id)
    .fetch_one(&mut *db)
    .await?
    .unsigned_abs())
}

/// Marks the PENDING or RUNNING trials of a train job ERRORED.
pub async fn error_in_flight_of_job(
    db: impl PgExecutor<'_>,
    train_job_id: Uuid,
    reason: &str,
) -> StoreResult<u64> {
    error_in_flight(db, "train_job_id", train_job_id, reason).await
}

/// Marks ERRORED the trials whose `owner` column (`worker_id` or `train_job_id`, a constant of
/// this module) is `id` and that can still error: the unfinished ones, which the worker-id
/// partial index covers.
async fn error_in_flight(
    db: impl PgExecutor<'_>,
    owner: &'static str,
    id: Uuid,
    reason: &str,
) -> StoreResult<u64> {
    let to = TrialStatus::Errored;
    let from = StatusSet::sources_of_final(to)?;
    Ok(sqlx::query(AssertSqlSafe(format!(
        "update trials set status = $3, error = $2, datetime_stopped = now() \
         where {owner} = $1 and status in {from}"
    )))
    .bind(id)
    .bind(reason)
    .bind(<&str>::from(to))
    .execute(db)
    .await?
    .rows_affected())
}

/// Counts of a sub-job's trials by status: (running or pending, completed or pruned,
/// errored). A pruned trial ran as it should: it is no failure of the model.
pub async fn counts(
    db: impl PgExecutor<'_>,
    sub_train_job_id: Uuid,
) -> StoreResult<(i64, i64, i64)> {
    Ok(sqlx::query_as(AssertSqlSafe(format!(
        "select count(*) filter (where status in {UNFINISHED_TRIAL}), \
                count(*) filter (where status in ('COMPLETED', 'PRUNED')), \
                count(*) filter (where status = 'ERRORED') \
         from trials where sub_train_job_id = $1"
    )))
    .bind(sub_train_job_id)
    .fetch_one(db)
    .await?)
}

/// Appends log entries to a trial, keeping their order, while it holds fewer than
/// `max_entries`. The entries past that are dropped, and the first time any is, `marker` is
/// stored in their place, once. Returns how many were dropped. The trial's row is locked in the
/// append's transaction, so concurrent batches of one trial are counted one after the other.
pub async fn append_logs(
    pool: &PgPool,
    trial_id: Uuid,
    entries: &[LogEntry],
    max_entries: u32,
    marker: &LogEntry,
) -> StoreResult<usize> {
    if entries.is_empty() {
        return Ok(0);
    }
    let mut tx = pool.begin().await?;
    let conn = &mut *tx;
    sqlx::query("select 1 from trials where id = $1 for no key update")
        .bind(trial_id)
        .execute(&mut *conn)
        .await?;
    let stored: i64 = sqlx::query_scalar("select count(*) from trial_logs where trial_id = $1")
        .bind(trial_id)
        .fetch_one(&mut *conn)
        .await?;
    let max = i64::from(max_entries);
    let room = usize::try_from(max - stored).unwrap_or(0);
    let kept = entries.len().min(room);
    let mut batch: Vec<&LogEntry> = entries[..kept].iter().collect();
    let dropped = entries.len() - kept;
    // Past the cap the marker is the one extra entry; once it is there, stored > max.
    if dropped > 0 && stored <= max {
        batch.push(marker);
    }
    if batch.is_empty() {
        return Ok(dropped);
    }
    let times: Vec<DateTime<Utc>> = batch.iter().map(|e| e.time).collect();
    let kinds: Vec<&str> = batch.iter().map(|e| log_kind_name(e.kind)).collect();
    let bodies: Vec<JsonText<&serde_json::Value>> =
        batch.iter().map(|e| JsonText(&e.body)).collect();
    // `with ordinality` keeps the batch's order in the bigserial ids.
    sqlx::query(
        "insert into trial_logs (trial_id, time, kind, body) \
         select $1, t, k, b from unnest($2::timestamptz[], $3::text[], $4::json[]) \
         with ordinality as x(t, k, b, n) order by n",
    )
    .bind(trial_id)
    .bind(times)
    .bind(kinds)
    .bind(bodies)
    .execute(&mut *conn)
    .await?;
    tx.commit().await?;
    Ok(dropped)
}

fn log_kind_name(kind: LogKind) -> &'static str {
    match kind {
        LogKind::Message => "MESSAGE",
        LogKind::Metrics => "METRICS",
        LogKind::Plot => "PLOT",
    }
}

/// A trial's log entries in logging order.
pub async fn logs(db: impl PgExecutor<'_>, trial_id: Uuid) -> StoreResult<Vec<LogEntry>> {
    let rows: Vec<(DateTime<Utc>, String, Json<serde_json::Value>)> =
        sqlx::query_as("select time, kind, body from trial_logs where trial_id = $1 order by id")
            .bind(trial_id)
            .fetch_all(db)
            .await?;
    rows.into_iter()
        .map(|(time, kind, body)| {
            let kind = match kind.as_str() {
                "MESSAGE" => LogKind::Message,
                "METRICS" => LogKind::Metrics,
                "PLOT" => LogKind::Plot,
                other => {
                    return Err(crate::StoreError::Corrupt(format!(
                        "trial_logs.kind = {other:?}"
                    )))
                }
            };
            Ok(LogEntry {
                time,
                kind,
                body: body.0,
            })
        })
        .collect()
}

/// The best trial of each model of a train job: COMPLETED, parameters saved, highest score.
pub async fn best_per_model(
    db: impl PgExecutor<'_>,
    train_job_id: Uuid,
) -> StoreResult<Vec<TrialRecord>> {
    rows::records::<Row>(
        sqlx::query_as(AssertSqlSafe(format!(
            "select * from ({SELECT} where t.train_job_id = $1 and t.status = 'COMPLETED' \
             and t.params_key is not null and t.score is not null) best \
             where best.id in (select distinct on (sub_train_job_id) id from trials \
               where train_job_id = $1 and status = 'COMPLETED' and params_key is not null \
               and score is not null order by sub_train_job_id, score desc, datetime_started) \
             order by best.score desc"
        )))
        .bind(train_job_id)
        .fetch_all(db)
        .await?,
    )
}
