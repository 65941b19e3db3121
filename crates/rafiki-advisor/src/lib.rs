//! Advisors: the hyperparameter tuners the admin consults when a train worker asks for its
//! next trial.
//!
//! The crate is pure: no I/O, no clock, no global random generator. [`propose`] takes the
//! model's knob config, its budget, every trial of the sub-job read back from the database,
//! the current time and a seed, and answers with the next [`Proposal`] or
//! [`Decision::BudgetSpent`]. Because the answer is a function of those inputs only, the admin
//! keeps no advisor state of its own: after a restart it reads the trials again and gets the
//! same answers. See `docs/advisors.md` for the algorithms.
//!
//! Five advisors, chosen from the knob config and budget as Rafiki does ([`advisor_type`]):
//! - **Fixed** for configs of only fixed and policy knobs: exactly one trial.
//! - **Bayesian optimisation with parameter sharing** (`param_sharing`) for the same search
//!   spaces as the next one, when the model declares the `SHARE_PARAMS` policy.
//! - **Bayesian optimisation** for float, integer and categorical search spaces: a Gaussian
//!   process with expected improvement, which leaves a local optimum it has stalled in.
//! - **ENAS** for architecture, fixed and policy knobs when the model declares ENAS's five
//!   policies and the time budget covers its final phase: an LSTM controller trained by policy
//!   gradient proposes architectures, trained and evaluated on parameters shared between trials.
//! - **Random** for everything else (architecture knobs): uniform sampling.

mod bayes_opt;
mod budget;
mod enas;
mod gp;
mod param_sharing;
mod proposal;
pub mod pruning;
mod space;

use chrono::{DateTime, Utc};
use rafiki_types::knob::{validate_knob_config, Knob, KnobConfig, KnobError, Knobs, Policy};
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

pub use budget::{Budget, DEFAULT_TIME_HOURS};
// The advisors' names live in rafiki-types, where the store and the worker read them too.
pub use proposal::{ParamsType, PastTrial, Proposal, ProposalType, TrialState};
pub use rafiki_types::knob::AdvisorType;

/// Rafiki's Bayesian-optimisation advisor retrains the best searched knobs, with early
/// stopping off, once this many hours or fewer of the time budget are left.
pub const FINAL_TRAIN_HOURS: f64 = 1.0;

/// Chooses the advisor the way Rafiki does, in its order of preference: FIXED when every knob
/// is fixed or a policy (an empty config included); BAYES_OPT_WITH_PARAM_SHARING when every
/// knob is fixed, policy, float, integer or categorical and one is the `SHARE_PARAMS` policy;
/// BAYES_OPT for those knobs without it; ENAS when every knob is fixed, policy or
/// architecture, the five ENAS policies are all declared and `budget` has at least
/// [`ENAS_FINAL_HOURS`] (and the architecture is within ENAS's size bounds, see
/// `docs/advisors.md`); RANDOM otherwise.
pub fn advisor_type(config: &KnobConfig, budget: Budget) -> AdvisorType {
    [
        AdvisorType::Fixed,
        AdvisorType::BayesOptWithParamSharing,
        AdvisorType::BayesOpt,
        AdvisorType::Enas,
    ]
    .into_iter()
    .find(|&a| {
        config.values().all(|k| serves(a, k))
            && (a != AdvisorType::BayesOptWithParamSharing
                || has_policy(config, Policy::ShareParams))
            && (a != AdvisorType::Enas || enas::eligible(config, budget))
    })
    .unwrap_or(AdvisorType::Random)
}

/// ENAS holds its final evaluations and final train in this many last hours of the time
/// budget, and is chosen only for budgets at least this long.
pub const ENAS_FINAL_HOURS: f64 = enas::FINAL_HOURS;

/// Whether `advisor` can propose values for `knob`.
fn serves(advisor: AdvisorType, knob: &Knob) -> bool {
    match advisor {
        AdvisorType::Fixed => matches!(knob, Knob::Fixed { .. } | Knob::Policy { .. }),
        AdvisorType::BayesOpt | AdvisorType::BayesOptWithParamSharing => {
            !matches!(knob, Knob::Arch { .. })
        }
        AdvisorType::Enas => match knob {
            Knob::Fixed { .. } | Knob::Policy { .. } => true,
            Knob::Arch { items } => enas::takes(items),
            _ => false,
        },
        AdvisorType::Random => true,
    }
}

/// Everything an advisor decides from.
#[derive(Debug, Clone, Copy)]
pub struct Request<'a> {
    /// The model's search space.
    pub config: &'a KnobConfig,
    /// The model's budget.
    pub budget: Budget,
    /// Every trial of this model's sub-job so far, in any state and any order.
    pub history: &'a [PastTrial],
    /// The number the new trial gets (the admin allocates it; normally `history.len() + 1`).
    pub trial_no: u32,
    /// When the sub-job started: the time budget runs from here.
    pub started_at: DateTime<Utc>,
    /// The current time.
    pub now: DateTime<Utc>,
    /// A seed fixed for the sub-job (e.g. derived from its id). Each proposal draws from a
    /// generator seeded by `(seed, trial_no)`, so asking again gives the same answer.
    pub seed: u64,
    /// The worker asking, as in [`PastTrial::worker_id`]: ENAS follows each worker's own
    /// cycle of TRAIN and EVAL trials.
    pub worker_id: Option<&'a str>,
}

/// The answer to "next trial?".
#[derive(Debug, Clone, PartialEq)]
pub enum Decision {
    /// Start a trial with this proposal.
    Propose(Proposal),
    /// No more trials for this model: its trial count or time is used up (or, for a fixed
    /// config, its one trial has been started). Trials still running may finish.
    BudgetSpent,
}

/// Why no decision could be made.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AdvisorError {
    /// The knob config breaks the knob rules.
    #[error(transparent)]
    InvalidKnobConfig(#[from] KnobError),
    /// [`propose_as`] was asked for an advisor that cannot serve one of the knobs.
    #[error("the {advisor:?} advisor cannot tune knob `{knob}`")]
    Incompatible {
        /// The advisor asked for.
        advisor: AdvisorType,
        /// The first knob it cannot serve.
        knob: String,
    },
}

/// Decides the next trial of a model with the advisor [`advisor_type`] chooses for its config.
///
/// Fails only if the knob config is invalid. Deterministic: the same request gives the same
/// decision, whatever the order of `history`.
pub fn propose(req: &Request<'_>) -> Result<Decision, AdvisorError> {
    propose_as(advisor_type(req.config, req.budget), req)
}

/// Like [`propose`], with the advisor chosen by the caller (e.g. random search on a space
/// Bayesian optimisation could serve, to compare the two). A FIXED advisor serves only fixed
/// and policy knobs, the two BAYES_OPT ones no architecture knobs, an ENAS one only fixed,
/// policy and architecture knobs (of bounded size); RANDOM serves any config.
pub fn propose_as(advisor: AdvisorType, req: &Request<'_>) -> Result<Decision, AdvisorError> {
    validate_knob_config(req.config)?;
    if let Some((name, _)) = req.config.iter().find(|(_, k)| !serves(advisor, k)) {
        return Err(AdvisorError::Incompatible {
            advisor,
            knob: name.clone(),
        });
    }
    if !req
        .budget
        .allows_new_trial(req.history.len(), req.started_at, req.now)
    {
        return Ok(Decision::BudgetSpent);
    }
    // Trial order, not database order, so that the answer does not depend on how rows come back.
    let mut history: Vec<&PastTrial> = req.history.iter().collect();
    history.sort_by_key(|t| t.proposal.trial_no);
    let mut rng = ChaCha8Rng::seed_from_u64(mix(req.seed, u64::from(req.trial_no)));

    let proposal = match advisor {
        AdvisorType::Fixed => {
            // Rafiki's fixed advisor runs one trial; one that errored is not retried, since the
            // same knobs would fail the same way.
            if !history.is_empty() {
                return Ok(Decision::BudgetSpent);
            }
            Proposal::new(
                req.trial_no,
                with_fixed_and_policies(req.config, Knobs::new(), &[]),
            )
        }
        AdvisorType::Random => {
            let taken: Vec<&Knobs> = history.iter().map(|t| &t.proposal.knobs).collect();
            let mut knobs = random_knobs(req.config, &mut rng);
            for _ in 0..100 {
                if !taken.contains(&&knobs) {
                    break;
                }
                knobs = random_knobs(req.config, &mut rng);
            }
            Proposal::new(req.trial_no, knobs)
        }
        AdvisorType::BayesOpt => bayes_opt_proposal(req, &history, &mut rng),
        AdvisorType::BayesOptWithParamSharing => param_sharing::proposal(req, &history, &mut rng),
        AdvisorType::Enas => match enas::proposal(req, &history, &mut rng) {
            Some(p) => p,
            None => return Ok(Decision::BudgetSpent),
        },
    };
    Ok(Decision::Propose(proposal))
}

fn random_knobs(config: &KnobConfig, rng: &mut ChaCha8Rng) -> Knobs {
    let drawn = space::by_name(config)
        .map(|(name, knob)| (name.clone(), space::sample_knob(knob, rng)))
        .collect();
    with_fixed_and_policies(config, drawn, &[])
}

/// A proposal's knobs, in the config's order (the model's declared order, which is the order
/// the model gets them in): the fixed knobs' values, the policy knobs switched on for
/// `policies` only, and the other knobs' values taken from `tuned`.
fn with_fixed_and_policies(config: &KnobConfig, mut tuned: Knobs, policies: &[Policy]) -> Knobs {
    config
        .iter()
        .filter_map(|(name, knob)| {
            let value = match knob {
                Knob::Fixed { value } => space::knob_value_json(value),
                Knob::Policy { policy } => serde_json::Value::Bool(policies.contains(policy)),
                _ => tuned.swap_remove(name)?,
            };
            Some((name.clone(), value))
        })
        .collect()
}

fn has_policy(config: &KnobConfig, policy: Policy) -> bool {
    config
        .values()
        .any(|k| matches!(k, Knob::Policy { policy: p } if *p == policy))
}

/// Rafiki's plain Bayesian-optimisation schedule: search trials run with `EARLY_STOP` on; if
/// the model supports `EARLY_STOP`, the last [`FINAL_TRAIN_HOURS`] of the time budget retrain
/// the best searched knobs (best first, each once) with every policy off, and propose new
/// points with policies off when none are left.
fn bayes_opt_proposal(req: &Request<'_>, history: &[&PastTrial], rng: &mut ChaCha8Rng) -> Proposal {
    let space = space::Space::new(req.config);
    let final_train = has_policy(req.config, Policy::EarlyStop)
        && req.budget.hours_left(req.started_at, req.now) <= FINAL_TRAIN_HOURS;

    if final_train {
        let retrained: Vec<Knobs> = history
            .iter()
            .filter(|t| t.proposal.proposal_type() == Some(ProposalType::FinalTrain))
            .map(|t| space.project(&t.proposal.knobs))
            .collect();
        let mut searched: Vec<(f64, Knobs)> = history
            .iter()
            .filter(|t| t.proposal.proposal_type() == Some(ProposalType::Search))
            .filter_map(|t| {
                t.usable_score()
                    .map(|s| (s, space.project(&t.proposal.knobs)))
            })
            .collect();
        // Stable sort: equal scores keep trial order.
        searched.sort_by(|a, b| b.0.total_cmp(&a.0));
        if let Some((_, knobs)) = searched.into_iter().find(|(_, k)| !retrained.contains(k)) {
            let knobs = with_fixed_and_policies(req.config, knobs, &[]);
            return Proposal::new(req.trial_no, knobs).with_proposal_type(ProposalType::FinalTrain);
        }
    }

    let (policies, kind): (&[Policy], _) = if final_train {
        (&[], ProposalType::FinalTrain)
    } else {
        (&[Policy::EarlyStop], ProposalType::Search)
    };
    let tunable = bayes_opt_point(req, &space, history, rng);
    Proposal::new(
        req.trial_no,
        with_fixed_and_policies(req.config, tunable, policies),
    )
    .with_proposal_type(kind)
}

/// The Gaussian process's next point (tunable knobs only), learnt from every trial so far.
fn bayes_opt_point(
    req: &Request<'_>,
    space: &space::Space,
    history: &[&PastTrial],
    rng: &mut ChaCha8Rng,
) -> Knobs {
    let mut obs = bayes_opt::Observations::default();
    for t in history {
        let tunable = space.project(&t.proposal.knobs);
        if let Some(x) = space.encode(&t.proposal.knobs) {
            match (t.state, t.usable_score()) {
                (_, Some(score)) => obs.scored.push((x, score)),
                (TrialState::Running, None) => obs.running.push(x),
                (TrialState::Errored, None) => obs.errored.push(x),
                // Its last intermediate value is no final score (nor, with another metric, on
                // the score's scale), but it fell behind trials that went on.
                (TrialState::Pruned, None) => obs.pruned.push(x),
                // Completed without a score (not evaluated): nothing to learn, but taken.
                (TrialState::Completed, None) => {}
            }
        }
        obs.taken.push(tunable);
    }
    let mut design_rng = ChaCha8Rng::seed_from_u64(mix(req.seed, 0));
    bayes_opt::next_point(space, &obs, &mut design_rng, rng)
}

/// SplitMix64 of the seed and trial number: nearby inputs give unrelated generator seeds.
fn mix(seed: u64, trial_no: u64) -> u64 {
    let mut z = seed ^ trial_no.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2 {
        z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^= z >> 31;
    }
    z
}
