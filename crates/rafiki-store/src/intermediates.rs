//! The `trial_intermediates` table and the trials' prune decision (`prune_step`,
//! `prune_value`, `prune_reason`): the objective's values that trials logged while they ran,
//! and the pruner's verdict on a running trial (docs/pruning.md).

use rafiki_types::pruning::PruneDecision;
use rafiki_types::status::TrialStatus;
use uuid::Uuid;

use crate::StoreResult;

/// A trial's intermediate values, `(step, value)` by increasing step.
pub type Points = Vec<(f64, f64)>;

/// Locks the sub-job's row for the transaction, so that the batches of a model's trials are
/// judged one after the other (ASHA's ranks depend on the order trials reach a rung).
pub async fn lock_sub_job(db: &mut sqlx::PgConnection, sub_train_job_id: Uuid) -> StoreResult<()> {
    sqlx::query("select 1 from sub_train_jobs where id = $1 for no key update")
        .bind(sub_train_job_id)
        .execute(db)
        .await?;
    Ok(())
}

/// One trial's curve.
pub async fn curve_of_trial(db: &mut sqlx::PgConnection, trial_id: Uuid) -> StoreResult<Points> {
    Ok(sqlx::query_as(
        "select step, value from trial_intermediates where trial_id = $1 order by step",
    )
    .bind(trial_id)
    .fetch_all(db)
    .await?)
}

/// Every trial's curve of a sub-job, by trial.
pub async fn curves_of_sub_job(
    db: &mut sqlx::PgConnection,
    sub_train_job_id: Uuid,
) -> StoreResult<Vec<(Uuid, Points)>> {
    let rows: Vec<(Uuid, f64, f64)> = sqlx::query_as(
        "select trial_id, step, value from trial_intermediates where sub_train_job_id = $1 \
         order by trial_id, step",
    )
    .bind(sub_train_job_id)
    .fetch_all(db)
    .await?;
    let mut curves: Vec<(Uuid, Points)> = Vec::new();
    for (trial, step, value) in rows {
        match curves.last_mut() {
            Some((id, points)) if *id == trial => points.push((step, value)),
            _ => curves.push((trial, vec![(step, value)])),
        }
    }
    Ok(curves)
}

/// Appends a trial's new points (steps past its last one, as the caller checked).
pub async fn append(
    db: &mut sqlx::PgConnection,
    trial_id: Uuid,
    sub_train_job_id: Uuid,
    points: &[(f64, f64)],
) -> StoreResult<()> {
    if points.is_empty() {
        return Ok(());
    }
    let (steps, values): (Vec<f64>, Vec<f64>) = points.iter().copied().unzip();
    sqlx::query(
        "insert into trial_intermediates (trial_id, sub_train_job_id, step, value) \
         select $1, $2, s, v from unnest($3::float8[], $4::float8[]) as x(s, v)",
    )
    .bind(trial_id)
    .bind(sub_train_job_id)
    .bind(steps)
    .bind(values)
    .execute(db)
    .await?;
    Ok(())
}

/// The decision recorded on a trial, if any.
pub async fn decision(
    db: &mut sqlx::PgConnection,
    trial_id: Uuid,
) -> StoreResult<Option<PruneDecision>> {
    let row: Option<(Option<f64>, Option<f64>, Option<String>)> =
        sqlx::query_as("select prune_step, prune_value, prune_reason from trials where id = $1")
            .bind(trial_id)
            .fetch_optional(db)
            .await?;
    Ok(match row {
        Some((Some(step), Some(value), Some(reason))) => Some(PruneDecision {
            step,
            value,
            reason,
        }),
        _ => None,
    })
}

/// Records the decision on a RUNNING trial that has none; false when it is not running.
pub async fn decide(
    db: &mut sqlx::PgConnection,
    trial_id: Uuid,
    decision: &PruneDecision,
) -> StoreResult<bool> {
    Ok(sqlx::query(
        "update trials set prune_step = $2, prune_value = $3, prune_reason = $4 \
         where id = $1 and status = $5 and prune_reason is null",
    )
    .bind(trial_id)
    .bind(decision.step)
    .bind(decision.value)
    .bind(&decision.reason)
    .bind(<&str>::from(TrialStatus::Running))
    .execute(db)
    .await?
    .rows_affected()
        == 1)
}
