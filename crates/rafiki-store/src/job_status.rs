//! Status moves shared by the three job tables (`train_jobs`, `sub_train_jobs`,
//! `inference_jobs`), which have the same statuses: STARTED -> RUNNING -> STOPPED | ERRORED.
//! Every move is guarded in SQL by the statuses it may come from, as [`JobStatus::can_become`]
//! says (`status_sets`).

use rafiki_types::status::JobStatus;
use sqlx::{AssertSqlSafe, PgExecutor};
use uuid::Uuid;

use crate::status_sets::StatusSet;
use crate::StoreResult;

/// A table whose rows carry a [`JobStatus`].
#[derive(Debug, Clone, Copy)]
pub(crate) enum JobTable {
    Train,
    SubTrain,
    Inference,
}

impl JobTable {
    fn name(self) -> &'static str {
        match self {
            JobTable::Train => "train_jobs",
            JobTable::SubTrain => "sub_train_jobs",
            JobTable::Inference => "inference_jobs",
        }
    }
}

/// STARTED -> RUNNING. Returns whether it moved.
pub(crate) async fn mark_running(
    table: JobTable,
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> StoreResult<bool> {
    let to = JobStatus::Running;
    let from = StatusSet::sources_of(to)?;
    let done = sqlx::query(AssertSqlSafe(format!(
        "update {} set status = $2 where id = $1 and status in {from}",
        table.name()
    )))
    .bind(id)
    .bind(<&str>::from(to))
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// A live row to a final status (STOPPED or ERRORED), keeping the first error. Returns whether
/// it was live.
pub(crate) async fn finish(
    table: JobTable,
    db: impl PgExecutor<'_>,
    id: Uuid,
    to: JobStatus,
    error: Option<&str>,
) -> StoreResult<bool> {
    let from = StatusSet::sources_of_final(to)?;
    let done = sqlx::query(AssertSqlSafe(format!(
        "update {} set status = $2, error = coalesce(error, $3), datetime_stopped = now() \
         where id = $1 and status in {from}",
        table.name()
    )))
    .bind(id)
    .bind(<&str>::from(to))
    .bind(error)
    .execute(db)
    .await?;
    Ok(done.rows_affected() == 1)
}

/// Declares the status moves of a job table's module, under the names given: `$mark_running`
/// (STARTED -> RUNNING) and `$finish` (a live row to STOPPED or ERRORED), the functions above
/// bound to `$table`, so the three tables' public moves are one definition.
macro_rules! job_moves {
    ($table:expr, $what:literal, $mark_running:ident, $finish:ident) => {
        #[doc = concat!("STARTED -> RUNNING of a ", $what, ". Returns whether it moved.")]
        pub async fn $mark_running(
            db: impl sqlx::PgExecutor<'_>,
            id: uuid::Uuid,
        ) -> $crate::StoreResult<bool> {
            $crate::job_status::mark_running($table, db, id).await
        }

        #[doc = concat!("Moves a live ", $what, " to a final status (STOPPED or ERRORED), ")]
        /// keeping the first error. Returns whether it was live; a status that is not final is
        /// a [`StoreError::RefusedMove`](crate::StoreError::RefusedMove).
        pub async fn $finish(
            db: impl sqlx::PgExecutor<'_>,
            id: uuid::Uuid,
            to: rafiki_types::status::JobStatus,
            error: Option<&str>,
        ) -> $crate::StoreResult<bool> {
            $crate::job_status::finish($table, db, id, to, error).await
        }
    };
}
pub(crate) use job_moves;
