//! Per-user quotas (docs/security.md, "Quotas and limits"): how much one user may hold at once,
//! so that no user can take the platform's workers, disk or time from the others.
//!
//! The values come from the settings (0: no limit, except for the CPU workers quota, which is
//! never 0). This module says what each quota allows and words the refusals (which quota, its
//! value, the setting that changes it); the checks run where each decision is made: the
//! orchestrator when it writes a train job, the dataset route while an upload streams and again
//! when its row is written. Checks that count what a user already holds run under a lock on the
//! user's row (`rafiki_store::users::lock`), so two concurrent requests cannot both pass a quota
//! that has room for one.

use rafiki_types::error::ErrorName;

use crate::error::ApiError;

/// The per-user quotas; 0 means no limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Quotas {
    /// Most STARTED or RUNNING train jobs per user (`RAFIKI_MAX_LIVE_TRAIN_JOBS`).
    pub live_train_jobs: u32,
    /// Most models in one train job (`RAFIKI_MAX_MODELS_PER_TRAIN_JOB`).
    pub models_per_train_job: u32,
    /// Largest `TIME_HOURS` of a train budget (`RAFIKI_MAX_TIME_HOURS`).
    pub time_hours: f64,
    /// Most train workers without GPUs one train job may ask for through its budget's
    /// `CPU_WORKERS_PER_MODEL` (`RAFIKI_MAX_CPU_WORKERS_PER_TRAIN_JOB`). Never 0 (the settings
    /// refuse it): a user's budget must not choose how many processes the host runs.
    pub cpu_workers_per_train_job: u32,
    /// Most bytes of datasets per user (`RAFIKI_MAX_USER_DATASET_BYTES`).
    pub user_dataset_bytes: u64,
}

/// What to do about a quota, at the end of each refusal.
const ASK: &str = "or ask the operator to raise the limit";

impl Quotas {
    /// Refuses a train job of `models` models with `time_hours` per model past its quotas,
    /// saying which quota (the orchestrator answers it as `InvalidTrainJobError`).
    pub fn check_train_job(&self, models: usize, time_hours: f64) -> Result<(), String> {
        let max_models = self.models_per_train_job as usize;
        if max_models > 0 && models > max_models {
            return Err(format!(
                "The train job has {models} models; a train job may have at most {max_models} \
                 (RAFIKI_MAX_MODELS_PER_TRAIN_JOB). Split it into several jobs, {ASK}."
            ));
        }
        if self.time_hours > 0.0 && time_hours > self.time_hours {
            return Err(format!(
                "The budget's TIME_HOURS is {time_hours}; it may be at most {} \
                 (RAFIKI_MAX_TIME_HOURS). Ask for less time, {ASK}.",
                self.time_hours
            ));
        }
        Ok(())
    }

    /// Refuses a train job whose `cpu_models` models without GPUs ask for `per_model` workers
    /// each past the quota on a job's CPU workers. One worker per model is Rafiki's, always
    /// allowed: `RAFIKI_MAX_MODELS_PER_TRAIN_JOB` bounds it, and a job of many models must not
    /// be refused for an option it did not use.
    pub fn check_cpu_workers(&self, cpu_models: usize, per_model: u32) -> Result<(), String> {
        let max = u64::from(self.cpu_workers_per_train_job);
        let asked = (cpu_models as u64).saturating_mul(u64::from(per_model));
        if per_model > 1 && asked > max {
            return Err(format!(
                "The budget's CPU_WORKERS_PER_MODEL of {per_model} asks for {asked} train workers \
                 without GPUs ({cpu_models} model(s)); a train job may have at most {max} \
                 (RAFIKI_MAX_CPU_WORKERS_PER_TRAIN_JOB). Ask for fewer workers, {ASK}."
            ));
        }
        Ok(())
    }

    /// Whether the live train jobs of a user need counting at all.
    pub fn limits_live_train_jobs(&self) -> bool {
        self.live_train_jobs > 0
    }

    /// Refuses one more live train job to a user who has `live`, saying why.
    pub fn check_live_train_jobs(&self, live: i64) -> Result<(), String> {
        let max = i64::from(self.live_train_jobs);
        if max > 0 && live >= max {
            return Err(format!(
                "You have {live} train job(s) STARTED or RUNNING; a user may have at most {max} \
                 at once (RAFIKI_MAX_LIVE_TRAIN_JOBS). Stop one first, {ASK}."
            ));
        }
        Ok(())
    }

    /// Whether the datasets a user stores need counting at all.
    pub fn limits_dataset_bytes(&self) -> bool {
        self.user_dataset_bytes > 0
    }

    /// How many more bytes of datasets a user who stores `used` may add; `None` without a
    /// dataset quota.
    pub fn dataset_allowance(&self, used: u64) -> Option<u64> {
        (self.user_dataset_bytes > 0).then(|| self.user_dataset_bytes.saturating_sub(used))
    }

    /// The end of "The dataset is larger than ..." when the dataset quota, not the size limit
    /// of one dataset, is what bounds an upload.
    pub fn dataset_allowance_text(&self, used: u64) -> String {
        format!(
            "what is left of your dataset quota: {} bytes (you store {used} of {} bytes, \
             RAFIKI_MAX_USER_DATASET_BYTES; delete datasets you no longer need, {ASK})",
            self.user_dataset_bytes.saturating_sub(used),
            self.user_dataset_bytes
        )
    }

    /// Refuses a dataset of `size` bytes to a user who stores `used` (`PayloadTooLargeError`):
    /// what a concurrent upload finds once another has used the room.
    pub fn dataset_error(&self, used: u64, size: u64) -> ApiError {
        ApiError::new(
            ErrorName::PayloadTooLargeError,
            format!(
                "The dataset ({size} bytes) is larger than {}.",
                self.dataset_allowance_text(used)
            ),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// No limits, as far as the settings allow.
    const NONE: Quotas = Quotas {
        live_train_jobs: 0,
        models_per_train_job: 0,
        time_hours: 0.0,
        cpu_workers_per_train_job: u32::MAX,
        user_dataset_bytes: 0,
    };

    #[test]
    fn zero_means_no_limit() {
        assert!(NONE.check_train_job(10_000, 1e9).is_ok());
        assert!(NONE.check_live_train_jobs(10_000).is_ok());
        assert!(!NONE.limits_live_train_jobs());
        assert!(!NONE.limits_dataset_bytes());
        assert_eq!(NONE.dataset_allowance(u64::MAX), None);
    }

    #[test]
    fn each_refusal_names_its_quota_and_value() {
        let quotas = Quotas {
            live_train_jobs: 2,
            models_per_train_job: 3,
            time_hours: 1.5,
            cpu_workers_per_train_job: 8,
            user_dataset_bytes: 100,
        };
        assert!(quotas.check_train_job(3, 1.5).is_ok());
        let err = quotas.check_train_job(4, 1.0).unwrap_err();
        assert!(
            err.contains("at most 3 (RAFIKI_MAX_MODELS_PER_TRAIN_JOB)"),
            "{err}"
        );
        let err = quotas.check_train_job(1, 2.0).unwrap_err();
        assert!(err.contains("at most 1.5 (RAFIKI_MAX_TIME_HOURS)"), "{err}");
        assert!(quotas.check_cpu_workers(2, 4).is_ok());
        assert!(
            quotas.check_cpu_workers(20, 1).is_ok(),
            "one worker a model is Rafiki's"
        );
        let err = quotas.check_cpu_workers(3, 3).unwrap_err();
        assert!(
            err.contains("asks for 9 train workers")
                && err.contains("at most 8 (RAFIKI_MAX_CPU_WORKERS_PER_TRAIN_JOB)"),
            "{err}"
        );
        let err = quotas.check_cpu_workers(usize::MAX, u32::MAX).unwrap_err();
        assert!(err.contains("at most 8"), "{err}");
        assert!(quotas.check_live_train_jobs(1).is_ok());
        let err = quotas.check_live_train_jobs(2).unwrap_err();
        assert!(
            err.contains("at most 2 at once (RAFIKI_MAX_LIVE_TRAIN_JOBS)"),
            "{err}"
        );
        assert_eq!(quotas.dataset_allowance(30), Some(70));
        assert_eq!(quotas.dataset_allowance(130), Some(0));
        let text = quotas.dataset_allowance_text(30);
        assert!(
            text.contains("70 bytes") && text.contains("RAFIKI_MAX_USER_DATASET_BYTES"),
            "{text}"
        );
    }
}
