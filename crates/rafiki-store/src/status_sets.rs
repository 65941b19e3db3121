//! The status sets queries test, as SQL text made from the status enums' own sets
//! ([`JobStatus::LIVE`], [`ServiceStatus::LIVE`], [`TrialStatus::UNFINISHED`]), so that "live" is
//! written once. They are spliced into the SQL rather than bound as `status = any($1)`: the
//! partial indexes of the migrations (`where status in ('STARTED', 'RUNNING')`) serve only
//! queries whose predicate the planner can see implies theirs, which a bound array hides from
//! generic plans. A unit test holds the text to the migrations' predicates.

use std::fmt;

use rafiki_types::status::{JobStatus, ServiceStatus, TrialStatus};

/// A set of statuses, written as SQL: `('A', 'B')` of their wire names (upper-case letters and
/// `_` only, so no quoting can go wrong).
pub(crate) struct StatusSet<S: 'static>(&'static [S]);

impl<S: Copy + Into<&'static str>> fmt::Display for StatusSet<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("(")?;
        for (i, status) in self.0.iter().enumerate() {
            let name: &'static str = (*status).into();
            write!(f, "{}'{name}'", if i == 0 { "" } else { ", " })?;
        }
        f.write_str(")")
    }
}

/// `('STARTED', 'RUNNING')`: a live train job, sub-job or inference job.
pub(crate) const LIVE_JOB: StatusSet<JobStatus> = StatusSet(&JobStatus::LIVE);

/// `('STARTED', 'DEPLOYING', 'RUNNING')`: a service that may be running.
pub(crate) const LIVE_SERVICE: StatusSet<ServiceStatus> = StatusSet(&ServiceStatus::LIVE);

/// `('PENDING', 'RUNNING')`: a trial its worker holds and has not finished.
pub(crate) const UNFINISHED_TRIAL: StatusSet<TrialStatus> = StatusSet(&TrialStatus::UNFINISHED);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sets_are_the_migrations_partial_index_predicates() {
        assert_eq!(LIVE_JOB.to_string(), "('STARTED', 'RUNNING')");
        assert_eq!(
            LIVE_SERVICE.to_string(),
            "('STARTED', 'DEPLOYING', 'RUNNING')"
        );
        assert_eq!(UNFINISHED_TRIAL.to_string(), "('PENDING', 'RUNNING')");
        let migrations = include_str!("../../../migrations/20261126000001_initial_schema.sql");
        assert!(migrations.contains(&format!("where status in {LIVE_JOB}")));
    }
}
