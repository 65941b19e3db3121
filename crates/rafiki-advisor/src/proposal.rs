//! What goes in and out of an advisor: the proposal a train worker receives (stored verbatim as
//! the trial's `proposal` field of the contract) and the past trials the admin reads back from
//! the database to rebuild the advisor's state.

use rafiki_types::knob::Knobs;
use serde::{Deserialize, Serialize};

/// Which stored parameters a trial should start from, as Rafiki's `ParamsType`.
///
/// The advisors of this crate always answer [`ParamsType::None`]; the other values exist so a
/// proposal written by a parameter-sharing advisor reads back.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ParamsType {
    /// Train from scratch.
    #[default]
    None,
    /// The most recent parameters of this worker.
    LocalRecent,
    /// The best parameters of this worker.
    LocalBest,
    /// The most recent parameters of any worker of the sub-job.
    GlobalRecent,
    /// The best parameters of any worker of the sub-job.
    GlobalBest,
}

/// The phase of a Bayesian-optimisation trial, written into `meta.proposal_type`.
///
/// Rafiki's Bayesian-optimisation advisor searches with the `EARLY_STOP` policy on, and in the
/// last hour of the time budget retrains the best searched knobs in full.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProposalType {
    /// Explore the search space.
    Search,
    /// Retrain the best knobs found so far without early stopping.
    FinalTrain,
}

impl ProposalType {
    /// The wire name, as stored in `meta.proposal_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalType::Search => "SEARCH",
            ProposalType::FinalTrain => "FINAL_TRAIN",
        }
    }
}

/// What a train worker is told to do for one trial: the contract's trial `proposal` field.
///
/// Serialises to exactly `{trial_no, knobs, params_type, to_eval, to_cache_params,
/// to_save_params, meta}`. Reading is lenient about extra fields (Rafiki also wrote
/// `trial_id`), so proposals stored by other tools still read back.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Proposal {
    /// The trial's number, counting from 1 per model.
    pub trial_no: u32,
    /// Knob name to value, passed to the model as `Model(**knobs)`.
    pub knobs: Knobs,
    /// Parameters to load before training.
    #[serde(default)]
    pub params_type: ParamsType,
    /// Whether the worker evaluates the trained model.
    #[serde(default = "yes")]
    pub to_eval: bool,
    /// Whether the worker keeps the parameters in its in-memory cache.
    #[serde(default)]
    pub to_cache_params: bool,
    /// Whether the worker uploads the parameters.
    #[serde(default = "yes")]
    pub to_save_params: bool,
    /// Advisor-specific notes, e.g. `{"proposal_type": "SEARCH"}`.
    #[serde(default)]
    pub meta: serde_json::Map<String, serde_json::Value>,
}

fn yes() -> bool {
    true
}

impl Proposal {
    /// A proposal with Rafiki's defaults: no shared parameters, evaluate, save, empty meta.
    pub fn new(trial_no: u32, knobs: Knobs) -> Self {
        Proposal {
            trial_no,
            knobs,
            params_type: ParamsType::None,
            to_eval: true,
            to_cache_params: false,
            to_save_params: true,
            meta: serde_json::Map::new(),
        }
    }

    /// The Bayesian-optimisation phase recorded in `meta`, if any.
    pub fn proposal_type(&self) -> Option<ProposalType> {
        self.meta
            .get("proposal_type")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    pub(crate) fn with_proposal_type(mut self, kind: ProposalType) -> Self {
        self.meta.insert(
            "proposal_type".to_owned(),
            serde_json::Value::String(kind.as_str().to_owned()),
        );
        self
    }
}

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
}

impl PastTrial {
    /// A trial still running with `proposal`.
    pub fn running(proposal: Proposal) -> Self {
        PastTrial {
            proposal,
            state: TrialState::Running,
            score: None,
        }
    }

    /// A trial that completed with `score`.
    pub fn completed(proposal: Proposal, score: f64) -> Self {
        PastTrial {
            proposal,
            state: TrialState::Completed,
            score: Some(score),
        }
    }

    /// A trial that errored.
    pub fn errored(proposal: Proposal) -> Self {
        PastTrial {
            proposal,
            state: TrialState::Errored,
            score: None,
        }
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
