//! The status sets queries test, as SQL text made from the status enums, so that a status and
//! its moves are written once, in `rafiki_types::status`: the sets reads filter on are the
//! enums' own sets ([`JobStatus::LIVE`], [`ServiceStatus::LIVE`], [`TrialStatus::UNFINISHED`]),
//! and the guard of every status move (the statuses its `update` may come from) is derived from
//! the enum's transition table ([`Status::can_become`]), which also refuses a move it does not
//! allow ([`StoreError::RefusedMove`]) before any SQL runs.
//!
//! The sets are spliced into the SQL rather than bound as `status = any($1)`: the partial
//! indexes of the migrations (`where status in ('STARTED', 'RUNNING')`) serve only queries whose
//! predicate the planner can see implies theirs, which a bound array hides from generic plans.
//! Unit tests hold the text to the migrations' predicates and to the guards the moves had when
//! they were written out by hand.

use std::borrow::Cow;
use std::fmt;

use rafiki_types::status::{JobStatus, ServiceStatus, TrialStatus};
use strum::VariantArray;

use crate::{StoreError, StoreResult};

/// A status enum with a transition table.
pub(crate) trait Status: Copy + Into<&'static str> + VariantArray + 'static {
    /// The enum's transition table.
    fn can_become(self, next: Self) -> bool;

    /// Whether the table lets nothing follow this status.
    fn is_final(self) -> bool {
        !Self::VARIANTS.iter().any(|&next| self.can_become(next))
    }
}

impl Status for JobStatus {
    fn can_become(self, next: Self) -> bool {
        JobStatus::can_become(self, next)
    }
}

impl Status for TrialStatus {
    fn can_become(self, next: Self) -> bool {
        TrialStatus::can_become(self, next)
    }
}

impl Status for ServiceStatus {
    fn can_become(self, next: Self) -> bool {
        ServiceStatus::can_become(self, next)
    }
}

/// A set of statuses, written as SQL: `('A', 'B')` of their wire names (upper-case letters and
/// `_` only, so no quoting can go wrong), in the enum's order.
#[derive(Debug)]
pub(crate) struct StatusSet<S: Clone + 'static>(Cow<'static, [S]>);

impl<S: Status> StatusSet<S> {
    /// The guard of a move to `to` from whatever status the row has: every status the table
    /// lets become `to`. Refused when there is none.
    pub(crate) fn sources_of(to: S) -> StoreResult<Self> {
        let sources: Vec<S> = S::VARIANTS
            .iter()
            .copied()
            .filter(|s| s.can_become(to))
            .collect();
        if sources.is_empty() {
            return Err(refused(None, to));
        }
        Ok(StatusSet(Cow::Owned(sources)))
    }

    /// The guard of a move to a final status (an end, whatever live status the row had):
    /// refused when `to` is not final.
    pub(crate) fn sources_of_final(to: S) -> StoreResult<Self> {
        if !to.is_final() {
            return Err(refused(None, to));
        }
        Self::sources_of(to)
    }

    /// The guard of a move that may only start from `from`, when the table allows `from ->
    /// to`: narrower than [`StatusSet::sources_of`] where the caller knows more (a worker
    /// finishes only the trial it runs).
    pub(crate) fn only(from: S, to: S) -> StoreResult<Self> {
        if !from.can_become(to) {
            return Err(refused(Some(from), to));
        }
        Ok(StatusSet(Cow::Owned(vec![from])))
    }
}

fn refused<S: Status>(from: Option<S>, to: S) -> StoreError {
    StoreError::RefusedMove {
        from: from.map(Into::into),
        to: to.into(),
    }
}

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
pub(crate) const LIVE_JOB: StatusSet<JobStatus> = StatusSet(Cow::Borrowed(&JobStatus::LIVE));

/// `('STARTED', 'DEPLOYING', 'RUNNING')`: a service that may be running.
pub(crate) const LIVE_SERVICE: StatusSet<ServiceStatus> =
    StatusSet(Cow::Borrowed(&ServiceStatus::LIVE));

/// `('PENDING', 'RUNNING')`: a trial its worker holds and has not finished.
pub(crate) const UNFINISHED_TRIAL: StatusSet<TrialStatus> =
    StatusSet(Cow::Borrowed(&TrialStatus::UNFINISHED));

#[cfg(test)]
mod tests {
    use super::*;

    fn sql<S: Status>(set: StoreResult<StatusSet<S>>) -> String {
        set.unwrap().to_string()
    }

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
        assert!(migrations.contains(&format!("where status in {LIVE_SERVICE}")));
        assert!(migrations.contains(&format!("where status in {UNFINISHED_TRIAL}")));
    }

    /// The derived guards are the ones the moves were written with by hand, and the sets reads
    /// use (so the partial indexes serve where they did).
    #[test]
    fn derived_guards_are_the_hand_written_ones() {
        use JobStatus as J;
        use ServiceStatus as S;
        use TrialStatus as T;
        // Jobs: `mark_running` took `status = 'STARTED'`, `finish` the live set.
        assert_eq!(sql(StatusSet::sources_of(J::Running)), "('STARTED')");
        for end in [J::Stopped, J::Errored] {
            assert_eq!(sql(StatusSet::sources_of_final(end)), LIVE_JOB.to_string());
        }
        // Trials: a worker finishes its RUNNING trial; a dead worker's unfinished ones error.
        for end in [T::Completed, T::Errored] {
            assert_eq!(sql(StatusSet::only(T::Running, end)), "('RUNNING')");
        }
        assert_eq!(
            sql(StatusSet::sources_of_final(T::Errored)),
            UNFINISHED_TRIAL.to_string()
        );
        // Services: `finish` took the live set; `set_status` its one `from`.
        for end in [S::Stopped, S::Errored] {
            assert_eq!(
                sql(StatusSet::sources_of_final(end)),
                LIVE_SERVICE.to_string()
            );
        }
        assert_eq!(
            sql(StatusSet::only(S::Started, S::Deploying)),
            "('STARTED')"
        );
    }

    #[test]
    fn moves_the_tables_refuse_are_errors() {
        let refused = |err: StoreError| match err {
            StoreError::RefusedMove { from, to } => (from, to),
            other => panic!("not a refused move: {other:?}"),
        };
        // Finishing to a live status.
        assert_eq!(
            refused(StatusSet::sources_of_final(JobStatus::Running).unwrap_err()),
            (None, "RUNNING")
        );
        assert_eq!(
            refused(StatusSet::sources_of_final(ServiceStatus::Deploying).unwrap_err()),
            (None, "DEPLOYING")
        );
        // A status nothing moves to.
        assert_eq!(
            refused(StatusSet::sources_of(JobStatus::Started).unwrap_err()),
            (None, "STARTED")
        );
        // Backwards, or out of a final status.
        assert_eq!(
            refused(StatusSet::only(ServiceStatus::Running, ServiceStatus::Deploying).unwrap_err()),
            (Some("RUNNING"), "DEPLOYING")
        );
        assert_eq!(
            refused(StatusSet::only(TrialStatus::Completed, TrialStatus::Errored).unwrap_err()),
            (Some("COMPLETED"), "ERRORED")
        );
    }
}
