//! The proposal a train worker receives for one trial: the contract's trial `proposal` field,
//! written by the advisors (`rafiki-advisor`), stored verbatim by the admin, and read by workers.

use serde::{Deserialize, Serialize};

use crate::knob::Knobs;

/// Which stored parameters a trial should start from, as Rafiki's `ParamsType`.
///
/// `LOCAL_*` parameters are the train worker's own (its parameter cache), `GLOBAL_*` ones the
/// sub-job's saved parameters, fetched through the admin (`docs/worker.md`).
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

impl ParamsType {
    /// The wire name, e.g. `GLOBAL_BEST`.
    pub fn as_str(self) -> &'static str {
        match self {
            ParamsType::None => "NONE",
            ParamsType::LocalRecent => "LOCAL_RECENT",
            ParamsType::LocalBest => "LOCAL_BEST",
            ParamsType::GlobalRecent => "GLOBAL_RECENT",
            ParamsType::GlobalBest => "GLOBAL_BEST",
        }
    }
}

/// The phase of a trial, written into `meta.proposal_type`.
///
/// Rafiki's Bayesian-optimisation advisor searches with the `EARLY_STOP` policy on, and in the
/// last hour of the time budget retrains the best searched knobs in full. Its ENAS advisor
/// cycles TRAIN and EVAL trials, then runs FINAL_EVAL trials and a FINAL_TRAIN.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ProposalType {
    /// Explore the search space.
    Search,
    /// Retrain the best knobs found so far without early stopping.
    FinalTrain,
    /// ENAS: train the shared parameters on one sampled architecture, without evaluating.
    Train,
    /// ENAS: evaluate a sampled architecture on the shared parameters, for the controller.
    Eval,
    /// ENAS: evaluate a sampled architecture on the shared parameters, as a final candidate.
    FinalEval,
}

impl ProposalType {
    /// The wire name, as stored in `meta.proposal_type`.
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalType::Search => "SEARCH",
            ProposalType::FinalTrain => "FINAL_TRAIN",
            ProposalType::Train => "TRAIN",
            ProposalType::Eval => "EVAL",
            ProposalType::FinalEval => "FINAL_EVAL",
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
    /// Whether the worker keeps the parameters in its parameter cache (for `LOCAL_*` trials).
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

    /// The phase recorded in `meta`, if any.
    pub fn proposal_type(&self) -> Option<ProposalType> {
        self.meta
            .get("proposal_type")
            .and_then(|v| serde_json::from_value(v.clone()).ok())
    }

    /// The same proposal with its phase recorded in `meta`.
    pub fn with_proposal_type(mut self, kind: ProposalType) -> Self {
        self.meta.insert(
            "proposal_type".to_owned(),
            serde_json::Value::String(kind.as_str().to_owned()),
        );
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn params_type_names_are_the_wire_names() {
        for t in [
            ParamsType::None,
            ParamsType::LocalRecent,
            ParamsType::LocalBest,
            ParamsType::GlobalRecent,
            ParamsType::GlobalBest,
        ] {
            assert_eq!(serde_json::to_value(t).unwrap(), t.as_str());
        }
    }
}
