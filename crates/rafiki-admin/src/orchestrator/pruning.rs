//! Early stopping of bad trials, the orchestrator's side (docs/pruning.md): when a train
//! worker posts a trial's logs and its job's budget names a `PRUNER`, the values of
//! `PRUNE_METRIC` in them become the trial's intermediate values, and the pruner
//! (`rafiki_advisor::pruning`) judges them against the other trials of the same model. The
//! decision is recorded on the trial and answered to the worker, which stops the model at its
//! next log call and finishes the trial PRUNED.

use rafiki_advisor::pruning::{self, Point};
use rafiki_store::intermediates;
use rafiki_store::trials::TrialRecord;
use rafiki_types::internal::{LogEntry, LogKind};
use rafiki_types::pruning::{PruneDecision, Pruning};
use rafiki_types::status::TrialStatus;
use serde_json::Value;

use super::callers::TrainWorker;
use super::error::OrchestratorResult;
use super::Orchestrator;

impl Orchestrator {
    /// Records the objective's values among `entries` (the log entries of `trial` just
    /// stored) and answers whether the trial must stop: the recorded decision once there is
    /// one, for every later batch too, so a worker that missed an answer hears it again.
    /// `max_points` bounds a trial's stored values like its log entries. The caller checked
    /// that `trial` is the worker's.
    pub async fn judge_logs(
        &self,
        worker: &TrainWorker,
        trial: &TrialRecord,
        entries: &[LogEntry],
        max_points: u32,
    ) -> OrchestratorResult<Option<PruneDecision>> {
        let Some(options) = &worker.job.job.budget.pruning else {
            return Ok(None);
        };
        if trial.trial.status != TrialStatus::Running {
            return Ok(None);
        }
        // First without the sub-job's lock and without the other trials' curves: a decided
        // trial hears its decision again, and a batch with no new value of the metric (messages
        // only, steps out of order, a trial at its cap) costs two indexed reads rather than a
        // read of every curve of the model while holding its lock.
        let mut conn = self.pool.acquire().await?;
        match read_batch(&mut conn, trial, options, entries, max_points).await? {
            Batch::Decided(decided) => return Ok(Some(decided)),
            Batch::New { new, .. } if new.is_empty() => return Ok(None),
            Batch::New { .. } => drop(conn),
        }
        let mut tx = self.pool.begin().await?;
        let conn = &mut *tx;
        intermediates::lock_sub_job(conn, trial.sub_train_job_id).await?;
        // Again under the lock: a retried post of the same batch may have been judged meanwhile.
        let (earlier, new) = match read_batch(conn, trial, options, entries, max_points).await? {
            Batch::Decided(decided) => return Ok(Some(decided)),
            Batch::New { new, .. } if new.is_empty() => return Ok(None),
            Batch::New { earlier, new } => (earlier, new),
        };
        let others: Vec<Vec<Point>> =
            intermediates::curves_of_sub_job(conn, trial.sub_train_job_id)
                .await?
                .iter()
                .filter(|(id, _)| *id != trial.trial.id)
                .map(|(_, points)| as_points(points))
                .collect();
        let stored: Vec<(f64, f64)> = new.iter().map(|p| (p.step, p.value)).collect();
        intermediates::append(conn, trial.trial.id, trial.sub_train_job_id, &stored).await?;
        let others: Vec<&[Point]> = others.iter().map(Vec::as_slice).collect();
        let decision = pruning::decide(options, &earlier, &new, &others);
        if let Some(decision) = &decision {
            if !intermediates::decide(conn, trial.trial.id, decision).await? {
                // It finished meanwhile: nothing to stop.
                return Ok(None);
            }
            tracing::info!(trial = %trial.trial.id, step = decision.step, "pruning the trial: {}", decision.reason);
        }
        tx.commit().await?;
        Ok(decision)
    }
}

/// What a batch of log entries brings to a trial, from the trial's own rows.
enum Batch {
    /// The trial was stopped already.
    Decided(PruneDecision),
    /// Its curve so far, and the batch's values past it (none, often).
    New {
        earlier: Vec<Point>,
        new: Vec<Point>,
    },
}

async fn read_batch(
    conn: &mut sqlx::PgConnection,
    trial: &TrialRecord,
    options: &Pruning,
    entries: &[LogEntry],
    max_points: u32,
) -> OrchestratorResult<Batch> {
    if let Some(decided) = intermediates::decision(conn, trial.trial.id).await? {
        return Ok(Batch::Decided(decided));
    }
    let earlier = as_points(&intermediates::curve_of_trial(conn, trial.trial.id).await?);
    let new = new_points(options, &earlier, entries, max_points);
    Ok(Batch::New { earlier, new })
}

fn as_points(points: &intermediates::Points) -> Vec<Point> {
    points
        .iter()
        .map(|&(step, value)| Point { step, value })
        .collect()
}

/// The objective's values among `entries`, as points past the trial's last step, as many as
/// fit under `max_points` with `earlier`'s: each
/// `METRICS` entry with a finite `PRUNE_METRIC` is one, at the step its `PRUNE_STEP_METRIC`
/// says (an entry without a finite one is skipped), or else at the next whole step. A step
/// that does not increase is skipped: a model that logs its epochs out of order cannot rewrite
/// a curve already judged.
fn new_points(
    options: &Pruning,
    earlier: &[Point],
    entries: &[LogEntry],
    max_points: u32,
) -> Vec<Point> {
    let finite = |body: &Value, name: &str| {
        body.get(name)
            .and_then(Value::as_f64)
            .filter(|v| v.is_finite())
    };
    let mut last = earlier.last().map(|p| p.step);
    let mut points = Vec::new();
    for entry in entries.iter().filter(|e| e.kind == LogKind::Metrics) {
        let Some(value) = finite(&entry.body, &options.metric) else {
            continue;
        };
        let step = match &options.step_metric {
            Some(name) => match finite(&entry.body, name) {
                Some(step) => step,
                None => continue,
            },
            None => last.map_or(1.0, |s| s.floor() + 1.0),
        };
        if last.is_some_and(|l| step <= l) {
            continue;
        }
        last = Some(step);
        points.push(Point { step, value });
    }
    points.truncate((max_points as usize).saturating_sub(earlier.len()));
    points
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafiki_types::pruning::{PruneMode, PrunerKind};
    use serde_json::json;

    fn options(step_metric: Option<&str>) -> Pruning {
        Pruning {
            pruner: PrunerKind::Asha,
            metric: "acc".into(),
            mode: PruneMode::Max,
            step_metric: step_metric.map(str::to_owned),
            min_step: 1.0,
            reduction_factor: 3,
            warmup_trials: 4,
        }
    }

    fn entry(kind: LogKind, body: Value) -> LogEntry {
        LogEntry {
            time: chrono::Utc::now(),
            kind,
            body,
        }
    }

    fn steps(points: &[Point]) -> Vec<(f64, f64)> {
        points.iter().map(|p| (p.step, p.value)).collect()
    }

    #[test]
    fn the_objective_counts_steps_itself_without_a_step_metric() {
        let entries = [
            entry(LogKind::Metrics, json!({"acc": 0.5})),
            entry(LogKind::Message, json!({"message": "acc"})),
            entry(LogKind::Metrics, json!({"loss": 0.5})),
            entry(LogKind::Metrics, json!({"acc": null})),
            entry(LogKind::Metrics, json!({"acc": 0.6, "epoch": 7})),
        ];
        let earlier = [Point {
            step: 2.0,
            value: 0.1,
        }];
        assert_eq!(
            steps(&new_points(&options(None), &earlier, &entries, 100)),
            vec![(3.0, 0.5), (4.0, 0.6)]
        );
        // A trial keeps at most `max_points` values, the earlier ones included.
        assert_eq!(
            steps(&new_points(&options(None), &earlier, &entries, 2)),
            vec![(3.0, 0.5)]
        );
        assert!(new_points(&options(None), &earlier, &entries, 1).is_empty());
    }

    #[test]
    fn a_step_metric_numbers_the_points_and_steps_must_increase() {
        let entries = [
            entry(LogKind::Metrics, json!({"acc": 0.5, "epoch": 2})),
            entry(LogKind::Metrics, json!({"acc": 0.9, "epoch": 1})),
            entry(LogKind::Metrics, json!({"acc": 0.9})),
            entry(LogKind::Metrics, json!({"acc": 0.6, "epoch": "3"})),
            entry(LogKind::Metrics, json!({"acc": 0.7, "epoch": 4.5})),
        ];
        assert_eq!(
            steps(&new_points(&options(Some("epoch")), &[], &entries, 100)),
            vec![(2.0, 0.5), (4.5, 0.7)]
        );
    }
}
