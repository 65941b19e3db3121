//! Early stopping of bad trials: the budget options that turn it on for a train job, the
//! decision the admin answers a worker's logs with, and what a PRUNED trial shows
//! (docs/pruning.md). Beyond Rafiki, off unless the budget names a `PRUNER`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::train::BudgetError;

wire_enum!(
    /// Which rule decides (`PRUNER`).
    PrunerKind {
        /// Median stopping rule: a trial whose best value so far is worse than the median of
        /// the other trials' best values at the same step stops.
        Median,
        /// Asynchronous successive halving: at each rung a trial goes on only if it is in the
        /// top 1/eta of the values recorded at that rung.
        Asha,
    }
);

wire_enum!(
    /// Whether higher or lower values of the objective are better (`PRUNE_MODE`).
    PruneMode {
        /// Higher is better (accuracies).
        Max,
        /// Lower is better (losses).
        Min,
    }
);

impl PruneMode {
    /// Whether `a` is strictly better than `b`.
    pub fn better(self, a: f64, b: f64) -> bool {
        match self {
            PruneMode::Max => a > b,
            PruneMode::Min => a < b,
        }
    }
}

/// The pruning options of a train job's budget, with defaults filled in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Pruning {
    /// The rule.
    #[serde(rename = "PRUNER")]
    pub pruner: PrunerKind,
    /// The logged metric to judge trials by (e.g. `val_acc`).
    #[serde(rename = "PRUNE_METRIC")]
    pub metric: String,
    /// Whether it is maximised or minimised; default `MAX`.
    #[serde(rename = "PRUNE_MODE", default = "max")]
    pub mode: PruneMode,
    /// The logged metric that numbers the steps (e.g. `epoch`), logged in the same
    /// `logger.log(...)` call as the objective; without it the n-th logged value is step n.
    #[serde(
        rename = "PRUNE_STEP_METRIC",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub step_metric: Option<String>,
    /// The first step at which a trial may be stopped, and ASHA's first rung; default 1.
    #[serde(rename = "PRUNE_MIN_STEP", default = "one")]
    pub min_step: f64,
    /// ASHA's reduction factor eta (rungs at `min_step * eta^k`, top 1/eta go on); default 3.
    #[serde(rename = "PRUNE_REDUCTION_FACTOR", default = "three")]
    pub reduction_factor: u32,
    /// The median rule's warm-up: how many other trials must have reached a step before a
    /// trial is judged at it; default 4.
    #[serde(rename = "PRUNE_WARMUP_TRIALS", default = "four")]
    pub warmup_trials: u32,
}

fn max() -> PruneMode {
    PruneMode::Max
}
fn one() -> f64 {
    1.0
}
fn three() -> u32 {
    3
}
fn four() -> u32 {
    4
}

/// The budget keys of [`Pruning`].
pub const OPTIONS: [&str; 7] = [
    "PRUNER",
    "PRUNE_METRIC",
    "PRUNE_MODE",
    "PRUNE_STEP_METRIC",
    "PRUNE_MIN_STEP",
    "PRUNE_REDUCTION_FACTOR",
    "PRUNE_WARMUP_TRIALS",
];

/// The longest metric name accepted (the logger has no limit; a name this long is a mistake).
const MAX_METRIC_NAME: usize = 200;

impl Pruning {
    /// Reads the pruning options of a budget object: `None` without `PRUNER`; a `PRUNE_*`
    /// option without `PRUNER`, a missing `PRUNE_METRIC` or a bad value is refused.
    pub fn parse(raw: &BTreeMap<String, Value>) -> Result<Option<Pruning>, BudgetError> {
        let bad = |key: &str, what: &str, value: &Value| {
            BudgetError(format!("budget {key} must be {what}, got {value}"))
        };
        let Some(pruner) = raw.get("PRUNER") else {
            return match OPTIONS.iter().find(|k| raw.contains_key(**k)) {
                Some(key) => Err(BudgetError(format!(
                    "budget {key} needs PRUNER (MEDIAN or ASHA) to turn pruning on"
                ))),
                None => Ok(None),
            };
        };
        let pruner = pruner
            .as_str()
            .and_then(|s| s.parse::<PrunerKind>().ok())
            .ok_or_else(|| bad("PRUNER", "MEDIAN or ASHA", pruner))?;
        let name = |key: &str| -> Result<Option<String>, BudgetError> {
            raw.get(key)
                .map(|value| {
                    value
                        .as_str()
                        .filter(|s| !s.trim().is_empty() && s.len() <= MAX_METRIC_NAME)
                        .map(str::to_owned)
                        .ok_or_else(|| bad(key, "a logged metric's name", value))
                })
                .transpose()
        };
        let metric = name("PRUNE_METRIC")?.ok_or_else(|| {
            BudgetError(
                "budget PRUNER needs PRUNE_METRIC, the logged metric to judge trials by".into(),
            )
        })?;
        let mut pruning = Pruning {
            pruner,
            metric,
            mode: PruneMode::Max,
            step_metric: name("PRUNE_STEP_METRIC")?,
            min_step: one(),
            reduction_factor: three(),
            warmup_trials: four(),
        };
        if let Some(value) = raw.get("PRUNE_MODE") {
            pruning.mode = value
                .as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| bad("PRUNE_MODE", "MAX or MIN", value))?;
        }
        if let Some(value) = raw.get("PRUNE_MIN_STEP") {
            pruning.min_step = value
                .as_f64()
                .filter(|s| s.is_finite() && *s > 0.0 && *s <= 1e9)
                .ok_or_else(|| bad("PRUNE_MIN_STEP", "a positive number", value))?;
        }
        let integer = |key: &str, min: i64, max: i64| -> Result<Option<u32>, BudgetError> {
            raw.get(key)
                .map(|value| {
                    crate::integer::as_integer(value)
                        .filter(|n| (min..=max).contains(n))
                        .and_then(|n| u32::try_from(n).ok())
                        .ok_or_else(|| bad(key, &format!("an integer from {min} to {max}"), value))
                })
                .transpose()
        };
        if let Some(eta) = integer("PRUNE_REDUCTION_FACTOR", 2, 100)? {
            pruning.reduction_factor = eta;
        }
        if let Some(n) = integer("PRUNE_WARMUP_TRIALS", 1, 10_000)? {
            pruning.warmup_trials = n;
        }
        Ok(Some(pruning))
    }
}

/// Why and where a trial was stopped: the admin's answer to the logs that decided it, and the
/// `pruned` field of a PRUNED trial.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PruneDecision {
    /// The step of the value that decided.
    pub step: f64,
    /// The trial's last value of the objective at that step.
    pub value: f64,
    /// For a person: the rule and the comparison.
    pub reason: String,
}

/// `POST /internal/trials/{id}/logs` answer: `{}`, or `{"prune": {...}}` once the trial must
/// stop (repeated for every later batch of the trial).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct LogsAccepted {
    /// Set when the trial must stop at its next log call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prune: Option<PruneDecision>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: Value) -> Result<Option<Pruning>, BudgetError> {
        Pruning::parse(&serde_json::from_value(v).unwrap())
    }

    #[test]
    fn off_without_pruner_and_defaults_with_it() {
        assert_eq!(parse(json!({"TIME_HOURS": 1})).unwrap(), None);
        let p = parse(json!({"PRUNER": "ASHA", "PRUNE_METRIC": "val_acc"}))
            .unwrap()
            .unwrap();
        assert_eq!(p.pruner, PrunerKind::Asha);
        assert_eq!(
            (p.mode, p.min_step, p.reduction_factor, p.warmup_trials),
            (PruneMode::Max, 1.0, 3, 4)
        );
        let p = parse(
            json!({"PRUNER": "MEDIAN", "PRUNE_METRIC": "loss", "PRUNE_MODE": "MIN",
            "PRUNE_STEP_METRIC": "epoch", "PRUNE_MIN_STEP": 2, "PRUNE_REDUCTION_FACTOR": 4.0,
            "PRUNE_WARMUP_TRIALS": 2}),
        )
        .unwrap()
        .unwrap();
        assert_eq!(p.step_metric.as_deref(), Some("epoch"));
        assert_eq!(
            (p.mode, p.min_step, p.reduction_factor, p.warmup_trials),
            (PruneMode::Min, 2.0, 4, 2)
        );
    }

    #[test]
    fn bad_values_are_refused_naming_the_option() {
        for (bad, key) in [
            (json!({"PRUNE_METRIC": "acc"}), "PRUNE_METRIC needs PRUNER"),
            (json!({"PRUNER": "ASHA"}), "PRUNE_METRIC"),
            (json!({"PRUNER": "asha", "PRUNE_METRIC": "a"}), "PRUNER"),
            (json!({"PRUNER": 1, "PRUNE_METRIC": "a"}), "PRUNER"),
            (
                json!({"PRUNER": "ASHA", "PRUNE_METRIC": ""}),
                "PRUNE_METRIC",
            ),
            (json!({"PRUNER": "ASHA", "PRUNE_METRIC": 3}), "PRUNE_METRIC"),
            (
                json!({"PRUNER": "ASHA", "PRUNE_METRIC": "a", "PRUNE_MODE": "UP"}),
                "PRUNE_MODE",
            ),
            (
                json!({"PRUNER": "ASHA", "PRUNE_METRIC": "a", "PRUNE_MIN_STEP": 0}),
                "PRUNE_MIN_STEP",
            ),
            (
                json!({"PRUNER": "ASHA", "PRUNE_METRIC": "a", "PRUNE_REDUCTION_FACTOR": 1}),
                "PRUNE_REDUCTION_FACTOR",
            ),
            (
                json!({"PRUNER": "ASHA", "PRUNE_METRIC": "a", "PRUNE_REDUCTION_FACTOR": 2.5}),
                "PRUNE_REDUCTION_FACTOR",
            ),
            (
                json!({"PRUNER": "MEDIAN", "PRUNE_METRIC": "a", "PRUNE_WARMUP_TRIALS": 0}),
                "PRUNE_WARMUP_TRIALS",
            ),
        ] {
            let e = parse(bad.clone()).unwrap_err().0;
            assert!(e.contains(key), "{bad}: {e}");
        }
    }
}
