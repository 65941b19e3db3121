//! BAYES_OPT_WITH_PARAM_SHARING: Rafiki's advisor for a model that declares the `SHARE_PARAMS`
//! policy. Its knobs are the Gaussian process's, as for BAYES_OPT, but every trial is a search
//! trial (there is no final-train phase) with `SHARE_PARAMS` and `EARLY_STOP` switched on, and
//! each trial starts from the sub-job's best saved parameters (`GLOBAL_BEST`) or from scratch
//! (`NONE`), greedily: the chance of starting from scratch is `exp(-4 t / T)` at `t` hours into
//! a time budget of `T` hours, so early trials explore and later ones mostly refine the best.

use rafiki_types::knob::{AdvisorType, Policy};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::{
    bayes_opt_point, mix, space, with_fixed_and_policies, ParamsType, PastTrial, Proposal,
    ProposalType, Request,
};

/// The rate of the decay: at the end of the budget the chance of starting from scratch is
/// `exp(-4)`, about 2%.
const DECAY_RATE: f64 = 4.0;

/// Mixed into the seed for the parameters draw, so that it is independent of the knobs' draws.
const PARAMS_STREAM: u64 = 0x5348_4152_455F_5052; // "SHARE_PR"

/// The chance that a trial starting `hours_spent` into a budget of `total_hours` trains from
/// scratch rather than from the best saved parameters.
pub(crate) fn chance_of_no_params(hours_spent: f64, total_hours: f64) -> f64 {
    if total_hours <= 0.0 {
        return 0.0;
    }
    (-DECAY_RATE * hours_spent.max(0.0) / total_hours).exp()
}

/// The next search trial: the Gaussian process's point, policies `SHARE_PARAMS` and
/// `EARLY_STOP` on, and `GLOBAL_BEST` or `NONE` drawn with [`chance_of_no_params`]. Its meta
/// names the phase (`SEARCH`, as Rafiki's) and the advisor, so a trial tells which advisor
/// chose its parameters.
pub(crate) fn proposal(
    req: &Request<'_>,
    history: &[&PastTrial],
    rng: &mut ChaCha8Rng,
) -> Proposal {
    let space = space::Space::new(req.config);
    let tunable = bayes_opt_point(req, &space, history, rng);
    let knobs = with_fixed_and_policies(
        req.config,
        tunable,
        &[Policy::ShareParams, Policy::EarlyStop],
    );
    let total = req.budget.time_hours;
    let spent = total - req.budget.hours_left(req.started_at, req.now);
    let mut params_rng =
        ChaCha8Rng::seed_from_u64(mix(req.seed ^ PARAMS_STREAM, u64::from(req.trial_no)));
    let params_type = if params_rng.gen::<f64>() < chance_of_no_params(spent, total) {
        ParamsType::None
    } else {
        ParamsType::GlobalBest
    };
    let mut proposal = Proposal::new(req.trial_no, knobs).with_proposal_type(ProposalType::Search);
    proposal.params_type = params_type;
    proposal.meta.insert(
        "advisor_type".to_owned(),
        serde_json::Value::String(<&str>::from(AdvisorType::BayesOptWithParamSharing).to_owned()),
    );
    proposal
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_chance_of_training_from_scratch_decays_exponentially_over_the_budget() {
        assert_eq!(chance_of_no_params(0.0, 2.0), 1.0);
        assert!((chance_of_no_params(1.0, 2.0) - (-2.0f64).exp()).abs() < 1e-12);
        assert!((chance_of_no_params(2.0, 2.0) - (-4.0f64).exp()).abs() < 1e-12);
        let mut last = 1.0;
        for i in 1..=20 {
            let p = chance_of_no_params(f64::from(i) * 0.1, 2.0);
            assert!(p < last, "decreasing");
            last = p;
        }
        // A clock before the start counts as the start; an empty budget shares at once.
        assert_eq!(chance_of_no_params(-1.0, 2.0), 1.0);
        assert_eq!(chance_of_no_params(0.5, 0.0), 0.0);
    }
}
