//! Knobs: the hyperparameter search space a model declares with `get_knob_config()`.
//!
//! The Python SDK serialises a knob config to JSON (never pickle) as an object mapping each knob
//! name to `{"type": <KIND>, ...arguments}`; this module is the Rust reading of that shape, used
//! by the admin (to validate and store it) and by the advisors (to propose values). The shape is
//! documented in `docs/knobs.md`.
//!
//! Both maps keep their keys in the order the model declared them (the order of the dict
//! `get_knob_config()` returned): a model sees its knobs in that order in `Model(**knobs)`.
//!
//! [`AdvisorType`], the tuner a config gets, is here too: the admin stores it and tells the
//! worker, which have no use for the advisors themselves.

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};

/// A scalar a knob can take: the JSON reading of Python's `bool`, `int`, `float` or `str`.
///
/// Untagged: `true` reads as `Bool`, `3` as `Int`, `3.0` as `Float`, `"a"` as `Str`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum KnobValue {
    /// Python `bool`.
    Bool(bool),
    /// Python `int`.
    Int(i64),
    /// Python `float`.
    Float(f64),
    /// Python `str`.
    Str(String),
}

/// A policy a model can support; the advisor decides per trial whether it is switched on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Policy {
    /// Train from parameters shared by earlier trials.
    ShareParams,
    /// Stop training early (e.g. fewer epochs) to explore quickly.
    EarlyStop,
    /// Skip training, evaluate shared parameters only.
    SkipTrain,
    /// Evaluate on a subset of the validation set.
    QuickEval,
    /// Use a scaled-down model.
    Downscale,
}

/// One knob of a search space.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE", deny_unknown_fields)]
pub enum Knob {
    /// Always the same value.
    Fixed {
        /// The value.
        value: KnobValue,
    },
    /// One of a non-empty list of values of one type.
    Categorical {
        /// The candidates.
        values: Vec<KnobValue>,
    },
    /// An integer in `[value_min, value_max]`, sampled on a log scale when `is_exp`.
    Integer {
        /// Lower bound, inclusive.
        value_min: i64,
        /// Upper bound, inclusive.
        value_max: i64,
        /// Log-scale search.
        #[serde(default)]
        is_exp: bool,
    },
    /// A float in `[value_min, value_max]`, sampled on a log scale when `is_exp`.
    Float {
        /// Lower bound, inclusive.
        value_min: f64,
        /// Upper bound, inclusive.
        value_max: f64,
        /// Log-scale search.
        #[serde(default)]
        is_exp: bool,
    },
    /// A boolean: whether the advisor switches this policy on for the trial.
    Policy {
        /// Which policy.
        policy: Policy,
    },
    /// An architecture: one value chosen per position from that position's candidates.
    Arch {
        /// Candidates per position.
        items: Vec<Vec<KnobValue>>,
    },
}

/// A model's search space: knob name to knob, in the model's declared order. (The advisors draw
/// values in name order, so proposals do not depend on that order; see `rafiki-advisor`.)
pub type KnobConfig = IndexMap<String, Knob>;

/// Concrete knob values for one trial, as passed to the model's `__init__(**knobs)`, in the
/// order of the model's knob config. Equality ignores the order.
pub type Knobs = IndexMap<String, serde_json::Value>;

wire_enum!(
    /// Which tuner serves a knob config (`rafiki_advisor::advisor_type` chooses it); stored in
    /// `sub_train_jobs.advisor_type` and told to the worker when it reports its knob config.
    AdvisorType {
        /// Only fixed and policy knobs: nothing to tune, one trial.
        Fixed,
        /// Like `BayesOpt`, for a model that declares the `SHARE_PARAMS` policy: trials also
        /// start, more and more often, from the sub-job's best saved parameters.
        BayesOptWithParamSharing,
        /// Float, integer and categorical knobs (with fixed and policy ones): Gaussian-process
        /// Bayesian optimisation.
        BayesOpt,
        /// Anything else (architecture knobs): uniform random search.
        Random,
        /// Architecture knobs with ENAS's five policies and a long enough time budget: an LSTM
        /// controller trained by policy gradient, over parameters shared between trials.
        Enas,
    }
);

/// Why a knob config is not a valid search space.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("knob `{name}`: {reason}")]
pub struct KnobError {
    /// The knob at fault.
    pub name: String,
    /// What is wrong with it.
    pub reason: String,
}

impl Knob {
    /// Checks the arguments the way the Python SDK does at definition time, so a config that
    /// reached the server through another path is held to the same rules.
    pub fn validate(&self, name: &str) -> Result<(), KnobError> {
        let fail = |reason: &str| {
            Err(KnobError {
                name: name.to_owned(),
                reason: reason.to_owned(),
            })
        };
        match self {
            Knob::Fixed { .. } | Knob::Policy { .. } => Ok(()),
            Knob::Categorical { values } => {
                if values.is_empty() {
                    return fail("a categorical knob needs at least one value");
                }
                let first = std::mem::discriminant(&values[0]);
                if values.iter().any(|v| std::mem::discriminant(v) != first) {
                    return fail("a categorical knob's values must all be of one type");
                }
                Ok(())
            }
            Knob::Integer {
                value_min,
                value_max,
                is_exp,
            } => {
                if value_min > value_max {
                    return fail("value_min must not exceed value_max");
                }
                if *is_exp && *value_min <= 0 {
                    return fail("an exponential integer knob needs value_min > 0");
                }
                Ok(())
            }
            Knob::Float {
                value_min,
                value_max,
                is_exp,
            } => {
                if !value_min.is_finite() || !value_max.is_finite() {
                    return fail("bounds must be finite numbers");
                }
                if value_min > value_max {
                    return fail("value_min must not exceed value_max");
                }
                if *is_exp && *value_min <= 0.0 {
                    return fail("an exponential float knob needs value_min > 0");
                }
                Ok(())
            }
            Knob::Arch { items } => {
                if items.is_empty() || items.iter().any(Vec::is_empty) {
                    return fail("an arch knob needs at least one position, each with candidates");
                }
                Ok(())
            }
        }
    }
}

/// Validates every knob of a config.
pub fn validate_knob_config(config: &KnobConfig) -> Result<(), KnobError> {
    config
        .iter()
        .try_for_each(|(name, knob)| knob.validate(name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_documented_json_shape() {
        let json = r#"{
            "max_depth": {"type": "INTEGER", "value_min": 2, "value_max": 8},
            "lr": {"type": "FLOAT", "value_min": 0.0001, "value_max": 0.1, "is_exp": true},
            "kernel": {"type": "CATEGORICAL", "values": ["rbf", "linear"]},
            "epochs": {"type": "FIXED", "value": 3},
            "early": {"type": "POLICY", "policy": "EARLY_STOP"},
            "cells": {"type": "ARCH", "items": [[1, 2], [3]]}
        }"#;
        let config: KnobConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config.len(), 6);
        assert_eq!(
            config["lr"],
            Knob::Float {
                value_min: 0.0001,
                value_max: 0.1,
                is_exp: true
            }
        );
        assert_eq!(
            config["epochs"],
            Knob::Fixed {
                value: KnobValue::Int(3)
            }
        );
        validate_knob_config(&config).unwrap();
    }

    #[test]
    fn rejects_bad_arguments_with_the_knob_named() {
        let config: KnobConfig =
            serde_json::from_str(r#"{"n": {"type": "INTEGER", "value_min": 5, "value_max": 1}}"#)
                .unwrap();
        let err = validate_knob_config(&config).unwrap_err();
        assert_eq!(err.name, "n");
        let mixed: KnobConfig =
            serde_json::from_str(r#"{"c": {"type": "CATEGORICAL", "values": [1, "a"]}}"#).unwrap();
        assert!(validate_knob_config(&mixed).is_err());
    }

    #[test]
    fn configs_keep_the_declared_order_through_json() {
        let json = r#"{"zeta":{"type":"FIXED","value":1},"alpha":{"type":"FIXED","value":2},"mid":{"type":"POLICY","policy":"EARLY_STOP"}}"#;
        let config: KnobConfig = serde_json::from_str(json).unwrap();
        assert_eq!(
            config.keys().collect::<Vec<_>>(),
            ["zeta", "alpha", "mid"],
            "read in declared order"
        );
        assert_eq!(serde_json::to_string(&config).unwrap(), json);
        let knobs: Knobs = serde_json::from_str(r#"{"b":1,"a":2.5,"c":"x"}"#).unwrap();
        assert_eq!(
            serde_json::to_string(&knobs).unwrap(),
            r#"{"b":1,"a":2.5,"c":"x"}"#
        );
    }

    #[test]
    fn unknown_knob_types_do_not_parse() {
        let res: Result<KnobConfig, _> =
            serde_json::from_str(r#"{"x": {"type": "WEIRD", "value": 1}}"#);
        assert!(res.is_err());
    }
}
