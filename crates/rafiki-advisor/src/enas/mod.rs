//! ENAS (Efficient Neural Architecture Search via parameter sharing), as Rafiki runs it: the
//! schedule of TRAIN, EVAL, FINAL_EVAL and FINAL_TRAIN trials with their policies and
//! parameter flags, and one policy-gradient controller per ARCH knob ([`controller`]) that
//! chooses the architectures.
//!
//! The controllers are not stored anywhere: each proposal rebuilds them from the sub-job's seed
//! and replays their training on the scored trials in trial order, ten at a time, exactly as
//! they would have been trained had every score arrived in that order. Replaying costs a
//! forward and backward pass per scored trial, so a proposal's cost grows with the number of
//! trials (see docs/benchmarks.md, "ENAS").

mod controller;

use rafiki_types::knob::{Knob, KnobConfig, KnobValue, Knobs, Policy};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde_json::Value;

use crate::proposal::{ParamsType, PastTrial, Proposal, ProposalType};
use crate::{space, with_fixed_and_policies, Budget, Request};
use controller::Controller;

/// EVAL trials per worker between two of its TRAIN trials.
const EVALS_PER_CYCLE: usize = 300;
/// Scored trials per controller update.
const BATCH_SIZE: usize = 10;
/// Scored FINAL_EVAL trials before the FINAL_TRAIN.
const FINAL_EVALS: usize = 10;
/// The last hours of the time budget hold the final evaluations and trains; a budget shorter
/// than this does not get ENAS.
pub(crate) const FINAL_HOURS: f64 = 12.0;
/// Scored FINAL_TRAIN trials after which the model is done.
const FINAL_TRAINS: usize = 1;

/// The policies a model must declare to get ENAS: its trials train one epoch of a scaled-down
/// model on shared parameters, or skip training and evaluate quickly.
const POLICIES: [Policy; 5] = [
    Policy::ShareParams,
    Policy::Downscale,
    Policy::EarlyStop,
    Policy::QuickEval,
    Policy::SkipTrain,
];

/// At most this many ARCH positions in a config, all ARCH knobs together, and this many
/// candidates per position. A knob config is the model's, so untrusted, and every proposal
/// runs the controller over every position once per scored trial, inside the admin: these
/// bounds keep that cost a model can cause in line with what ENAS cells need (Rafiki's example
/// has 40 positions of at most 7 candidates). Bigger configs get RANDOM.
pub(crate) const MAX_POSITIONS: usize = 256;
const MAX_CANDIDATES: usize = 64;

/// Whether ENAS can take this ARCH knob's `items`.
pub(crate) fn takes(items: &[Vec<KnobValue>]) -> bool {
    items.len() <= MAX_POSITIONS && items.iter().all(|c| c.len() <= MAX_CANDIDATES)
}

/// Rafiki's rule, beyond the knob types: every ENAS policy declared, and time for the final
/// phase; and ours: at most [`MAX_POSITIONS`] positions in all.
pub(crate) fn eligible(config: &KnobConfig, budget: Budget) -> bool {
    let positions: usize = config
        .values()
        .map(|k| match k {
            Knob::Arch { items } => items.len(),
            _ => 0,
        })
        .sum();
    POLICIES.iter().all(|&p| crate::has_policy(config, p))
        && budget.time_hours >= FINAL_HOURS
        && positions <= MAX_POSITIONS
}

/// The next trial's proposal, or `None` once the final trains are done.
pub(crate) fn proposal(
    req: &Request<'_>,
    history: &[&PastTrial],
    rng: &mut ChaCha8Rng,
) -> Option<Proposal> {
    let archs = ArchKnobs::new(req.config);
    let kind = phase(req, history)?;
    let (tuned, policies, params_type) = match kind {
        Phase::Train => (
            archs.sample(req.seed, history, rng),
            &[Policy::Downscale, Policy::EarlyStop][..],
            ParamsType::LocalRecent,
        ),
        Phase::Eval => (
            archs.sample(req.seed, history, rng),
            &[Policy::Downscale, Policy::QuickEval, Policy::SkipTrain][..],
            ParamsType::LocalRecent,
        ),
        Phase::FinalEval => (
            archs.sample(req.seed, history, rng),
            &[Policy::Downscale, Policy::SkipTrain][..],
            ParamsType::LocalRecent,
        ),
        // A full train from scratch of the best final candidate, every policy off.
        Phase::FinalTrain => (
            archs
                .best_final_candidate(history)
                .unwrap_or_else(|| archs.sample(req.seed, history, rng)),
            &[][..],
            ParamsType::None,
        ),
    };
    let mut p = Proposal::new(
        req.trial_no,
        with_fixed_and_policies(req.config, tuned, policies),
    )
    .with_proposal_type(kind.proposal_type());
    p.params_type = params_type;
    match kind {
        // Trains the shared parameters and keeps them for the worker's next trials; nothing to
        // score, nothing worth saving.
        Phase::Train => {
            p.to_eval = false;
            p.to_cache_params = true;
            p.to_save_params = false;
        }
        Phase::Eval => p.to_save_params = false,
        _ => {}
    }
    Some(p)
}

/// The kinds of ENAS trial, each recorded as its [`ProposalType`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    Train,
    Eval,
    FinalEval,
    FinalTrain,
}

impl Phase {
    fn proposal_type(self) -> ProposalType {
        match self {
            Phase::Train => ProposalType::Train,
            Phase::Eval => ProposalType::Eval,
            Phase::FinalEval => ProposalType::FinalEval,
            Phase::FinalTrain => ProposalType::FinalTrain,
        }
    }
}

/// Rafiki's schedule. Per worker, until the final phase: a TRAIN trial, then
/// [`EVALS_PER_CYCLE`] EVAL trials, and again (each worker trains its own copy of the shared
/// parameters, which its EVAL trials read). In the last [`FINAL_HOURS`]: FINAL_EVAL trials until
/// [`FINAL_EVALS`] have scores, then FINAL_TRAIN until [`FINAL_TRAINS`] have.
fn phase(req: &Request<'_>, history: &[&PastTrial]) -> Option<Phase> {
    let scored = |kind| {
        history
            .iter()
            .filter(|t| t.proposal.proposal_type() == Some(kind) && t.usable_score().is_some())
            .count()
    };
    if scored(ProposalType::FinalTrain) >= FINAL_TRAINS {
        return None;
    }
    if req.budget.hours_left(req.started_at, req.now) <= FINAL_HOURS {
        return Some(if scored(ProposalType::FinalEval) >= FINAL_EVALS {
            Phase::FinalTrain
        } else {
            Phase::FinalEval
        });
    }
    let worker = req.worker_id;
    let done_here = history
        .iter()
        .filter(|t| t.worker_id.as_deref() == worker)
        .count();
    Some(if done_here % (EVALS_PER_CYCLE + 1) == 0 {
        Phase::Train
    } else {
        Phase::Eval
    })
}

/// One ARCH knob, as its controller sees it.
struct ArchKnob<'a> {
    name: &'a String,
    /// Each position's candidates.
    candidates: Vec<&'a [KnobValue]>,
    /// Each candidate's embedding row.
    reps: Vec<Vec<usize>>,
}

/// The config's ARCH knobs, in name order.
struct ArchKnobs<'a> {
    knobs: Vec<ArchKnob<'a>>,
}

impl<'a> ArchKnobs<'a> {
    fn new(config: &'a KnobConfig) -> Self {
        let knobs = space::by_name(config)
            .filter_map(|(name, knob)| match knob {
                Knob::Arch { items } => {
                    // Equal values share a row, numbered in order of first appearance.
                    let mut seen = Vec::new();
                    let reps = items
                        .iter()
                        .map(|candidates| {
                            candidates
                                .iter()
                                .map(|v| {
                                    seen.iter().position(|s| *s == v).unwrap_or_else(|| {
                                        seen.push(v);
                                        seen.len() - 1
                                    })
                                })
                                .collect()
                        })
                        .collect();
                    let candidates = items.iter().map(Vec::as_slice).collect();
                    Some(ArchKnob {
                        name,
                        candidates,
                        reps,
                    })
                }
                _ => None,
            })
            .collect();
        ArchKnobs { knobs }
    }

    /// Knob `k`'s value in `knobs` as candidate indices; `None` if it is missing or is not
    /// one of the candidates (e.g. a trial of an older config).
    fn indices(&self, k: usize, knobs: &Knobs) -> Option<Vec<usize>> {
        let ArchKnob {
            name, candidates, ..
        } = &self.knobs[k];
        let values = knobs.get(*name)?.as_array()?;
        if values.len() != candidates.len() {
            return None;
        }
        values
            .iter()
            .zip(candidates)
            .map(|(v, cands)| cands.iter().position(|c| space::knob_value_json(c) == *v))
            .collect()
    }

    /// The controllers, trained by replaying every full batch of scored trials.
    fn controllers(&self, seed: u64, history: &[&PastTrial]) -> Vec<Controller> {
        self.knobs
            .iter()
            .enumerate()
            .map(|(k, knob)| {
                let mut init = ChaCha8Rng::seed_from_u64(crate::mix(seed, 0));
                init.set_stream(1 + k as u64);
                let mut controller = Controller::new(knob.reps.clone(), &mut init);
                let scored: Vec<(Vec<usize>, f64)> = history
                    .iter()
                    .filter_map(|t| Some((self.indices(k, &t.proposal.knobs)?, t.usable_score()?)))
                    .collect();
                for batch in scored.chunks_exact(BATCH_SIZE) {
                    controller.train(batch);
                }
                controller
            })
            .collect()
    }

    /// Architectures drawn from the trained controllers.
    fn sample(&self, seed: u64, history: &[&PastTrial], rng: &mut ChaCha8Rng) -> Knobs {
        self.controllers(seed, history)
            .iter()
            .zip(&self.knobs)
            .map(|(controller, knob)| {
                let chosen = controller
                    .sample(rng)
                    .into_iter()
                    .zip(&knob.candidates)
                    .map(|(i, cands)| space::knob_value_json(&cands[i]))
                    .collect();
                (knob.name.clone(), Value::Array(chosen))
            })
            .collect()
    }

    /// The ARCH values of the best-scored FINAL_EVAL trial that no FINAL_TRAIN trial has
    /// taken yet (equal scores: the earlier trial).
    fn best_final_candidate(&self, history: &[&PastTrial]) -> Option<Knobs> {
        let archs = |t: &PastTrial| -> Knobs {
            self.knobs
                .iter()
                .filter_map(|knob| {
                    Some((knob.name.clone(), t.proposal.knobs.get(knob.name)?.clone()))
                })
                .collect()
        };
        let taken: Vec<Knobs> = history
            .iter()
            .filter(|t| t.proposal.proposal_type() == Some(ProposalType::FinalTrain))
            .map(|t| archs(t))
            .collect();
        let mut candidates: Vec<(f64, Knobs)> = history
            .iter()
            .filter(|t| t.proposal.proposal_type() == Some(ProposalType::FinalEval))
            .filter(|t| (0..self.knobs.len()).all(|k| self.indices(k, &t.proposal.knobs).is_some()))
            .filter_map(|t| Some((t.usable_score()?, archs(t))))
            .collect();
        candidates.sort_by(|a, b| b.0.total_cmp(&a.0));
        candidates
            .into_iter()
            .map(|(_, knobs)| knobs)
            .find(|knobs| !taken.contains(knobs))
    }
}
