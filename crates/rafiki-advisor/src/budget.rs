//! A model's train budget as far as the advisor enforces it: how many trials may start
//! (`MODEL_TRIAL_COUNT`) and until when (`TIME_HOURS`). `GPU_COUNT` is the orchestrator's.
//!
//! Decisions take the current time as an argument so that the answer depends only on what the
//! caller passes in.

use chrono::{DateTime, Utc};

/// Rafiki's default `TIME_HOURS`.
pub const DEFAULT_TIME_HOURS: f64 = 0.1;

/// The per-model limits an advisor enforces.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Budget {
    /// `TIME_HOURS`: no trial starts once this many hours have passed since the sub-job
    /// started. A trial already running may finish (the budget is soft).
    pub time_hours: f64,
    /// `MODEL_TRIAL_COUNT`: at most this many trials start; `None` is unlimited (`-1`).
    pub model_trial_count: Option<u64>,
}

impl Default for Budget {
    fn default() -> Self {
        Budget {
            time_hours: DEFAULT_TIME_HOURS,
            model_trial_count: None,
        }
    }
}

impl Budget {
    /// Reads the wire values: `model_trial_count` below zero (the contract's `-1`) is unlimited.
    pub fn from_options(time_hours: f64, model_trial_count: i64) -> Self {
        Budget {
            time_hours,
            model_trial_count: u64::try_from(model_trial_count).ok(),
        }
    }

    /// Hours left at `now` for a sub-job started at `started_at`; negative once spent.
    pub fn hours_left(&self, started_at: DateTime<Utc>, now: DateTime<Utc>) -> f64 {
        let elapsed_ms = (now - started_at).num_milliseconds() as f64;
        self.time_hours - elapsed_ms / 3_600_000.0
    }

    /// Whether one more trial may start, given how many have started (any state).
    pub fn allows_new_trial(
        &self,
        trials_started: usize,
        started_at: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> bool {
        let count_ok = self
            .model_trial_count
            .is_none_or(|max| (trials_started as u64) < max);
        count_ok && self.hours_left(started_at, now) > 0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Duration, TimeZone};

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 12, 0, 0).unwrap()
    }

    #[test]
    fn trial_count_is_a_hard_limit() {
        let b = Budget::from_options(10.0, 3);
        assert!(b.allows_new_trial(2, t0(), t0()));
        assert!(!b.allows_new_trial(3, t0(), t0()));
        assert!(!b.allows_new_trial(4, t0(), t0()));
        let zero = Budget::from_options(10.0, 0);
        assert!(!zero.allows_new_trial(0, t0(), t0()));
    }

    #[test]
    fn minus_one_means_unlimited_trials() {
        let b = Budget::from_options(10.0, -1);
        assert_eq!(b.model_trial_count, None);
        assert!(b.allows_new_trial(1_000_000, t0(), t0()));
    }

    #[test]
    fn no_trial_starts_after_the_time_budget() {
        let b = Budget::from_options(0.5, -1);
        assert!(b.allows_new_trial(0, t0(), t0() + Duration::minutes(29)));
        assert!(!b.allows_new_trial(0, t0(), t0() + Duration::minutes(30)));
        assert!(!b.allows_new_trial(0, t0(), t0() + Duration::hours(5)));
        assert!((b.hours_left(t0(), t0() + Duration::minutes(15)) - 0.25).abs() < 1e-9);
    }

    #[test]
    fn default_budget_is_rafikis() {
        let b = Budget::default();
        assert_eq!(b.time_hours, 0.1);
        assert_eq!(b.model_trial_count, None);
    }
}
