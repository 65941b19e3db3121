//! What goes in and out of an advisor: the proposal a train worker receives (stored verbatim as
//! the trial's `proposal` field of the contract) and the past trials the admin reads back from
//! the database to rebuild the advisor's state.

pub use rafiki_types::proposal::{ParamsType, Proposal, ProposalType};
use serde::{Deserialize, Serialize};

/// Where a past trial stands, as far as an advisor cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum TrialState {
    /// PENDING or RUNNING: its knobs are taken, its score is not known yet.
    Running,
    /// COMPLETED: its score (if it was evaluated) is known.
    Completed,
    /// ERRORED: it will never have a score.
    Errored,
    /// PRUNED: stopped early by the job's pruner, behind trials that went on; no score.
    Pruned,
}

/// One trial of the sub-job, as read back from the database.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PastTrial {
    /// The proposal the trial was started with.
    pub proposal: Proposal,
    /// Its state.
    pub state: TrialState,
    /// What `evaluate()` returned (higher is better); `None` until completed or when not
    /// evaluated.
    pub score: Option<f64>,
    /// The worker that ran it, when known: ENAS schedules each worker's trials on its own.
    #[serde(default)]
    pub worker_id: Option<String>,
}

impl PastTrial {
    /// A trial still running with `proposal`.
    pub fn running(proposal: Proposal) -> Self {
        PastTrial {
            proposal,
            state: TrialState::Running,
            score: None,
            worker_id: None,
        }
    }

    /// A trial that completed with `score`.
    pub fn completed(proposal: Proposal, score: f64) -> Self {
        PastTrial {
            proposal,
            state: TrialState::Completed,
            score: Some(score),
            worker_id: None,
        }
    }

    /// A trial that errored.
    pub fn errored(proposal: Proposal) -> Self {
        PastTrial {
            proposal,
            state: TrialState::Errored,
            score: None,
            worker_id: None,
        }
    }

    /// A trial the job's pruner stopped.
    pub fn pruned(proposal: Proposal) -> Self {
        PastTrial {
            proposal,
            state: TrialState::Pruned,
            score: None,
            worker_id: None,
        }
    }

    /// The same trial, run by `worker_id`.
    pub fn on_worker(mut self, worker_id: impl Into<String>) -> Self {
        self.worker_id = Some(worker_id.into());
        self
    }

    /// The score, if the trial completed with a finite one.
    pub(crate) fn usable_score(&self) -> Option<f64> {
        match (self.state, self.score) {
            (TrialState::Completed, Some(s)) if s.is_finite() => Some(s),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafiki_types::knob::Knobs;
    use serde_json::json;

    #[test]
    fn proposal_serialises_to_the_contract_shape() {
        let mut knobs = Knobs::new();
        knobs.insert("lr".to_owned(), json!(0.01));
        knobs.insert("depth".to_owned(), json!(3));
        let p = Proposal::new(2, knobs).with_proposal_type(ProposalType::Search);
        let v = serde_json::to_value(&p).unwrap();
        assert_eq!(
            v,
            json!({
                "trial_no": 2,
                "knobs": {"depth": 3, "lr": 0.01},
                "params_type": "NONE",
                "to_eval": true,
                "to_cache_params": false,
                "to_save_params": true,
                "meta": {"proposal_type": "SEARCH"}
            })
        );
        let back: Proposal = serde_json::from_value(v).unwrap();
        assert_eq!(back, p);
        assert_eq!(back.proposal_type(), Some(ProposalType::Search));
    }

    #[test]
    fn proposals_with_extra_or_missing_optional_fields_read_back() {
        let p: Proposal = serde_json::from_value(json!({
            "trial_no": 1, "knobs": {}, "params_type": "GLOBAL_BEST", "trial_id": "abc"
        }))
        .unwrap();
        assert_eq!(p.params_type, ParamsType::GlobalBest);
        assert!(p.to_eval && p.to_save_params && !p.to_cache_params);
        assert_eq!(p.proposal_type(), None);
    }
}
