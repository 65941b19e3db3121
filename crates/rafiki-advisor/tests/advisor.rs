//! The advisors through their public API, as the admin drives them: a knob config, a budget,
//! the trials so far, the time and a seed in; a decision out.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rafiki_advisor::{
    advisor_type, propose, propose_as, AdvisorError, AdvisorType, Budget, Decision, ParamsType,
    PastTrial, Proposal, ProposalType, Request,
};
use rafiki_types::knob::KnobConfig;
use serde_json::{json, Value};

fn config(json: Value) -> KnobConfig {
    serde_json::from_value(json).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn unlimited() -> Budget {
    Budget::from_options(100.0, -1)
}

fn request<'a>(config: &'a KnobConfig, history: &'a [PastTrial], budget: Budget) -> Request<'a> {
    Request {
        config,
        budget,
        history,
        trial_no: history.len() as u32 + 1,
        started_at: t0(),
        now: t0(),
        seed: 42,
        worker_id: None,
    }
}

fn expect_proposal(decision: Result<Decision, AdvisorError>) -> Proposal {
    match decision.unwrap() {
        Decision::Propose(p) => p,
        Decision::BudgetSpent => panic!("expected a proposal, the budget was spent"),
    }
}

/// Runs `n` sequential trials with `advisor`, scoring each with `score`, and returns them.
fn drive(
    advisor: AdvisorType,
    config: &KnobConfig,
    n: usize,
    seed: u64,
    score: impl Fn(&Proposal) -> f64,
) -> Vec<PastTrial> {
    let mut history = Vec::new();
    for _ in 0..n {
        let mut req = request(config, &history, unlimited());
        req.seed = seed;
        let p = expect_proposal(propose_as(advisor, &req));
        let s = score(&p);
        history.push(PastTrial::completed(p, s));
    }
    history
}

fn mixed_config() -> KnobConfig {
    config(json!({
        "lr": {"type": "FLOAT", "value_min": 1e-5, "value_max": 0.1, "is_exp": true},
        "dropout": {"type": "FLOAT", "value_min": 0.0, "value_max": 0.5},
        "units": {"type": "INTEGER", "value_min": 1, "value_max": 10000, "is_exp": true},
        "depth": {"type": "INTEGER", "value_min": 2, "value_max": 8},
        "kernel": {"type": "CATEGORICAL", "values": ["rbf", "linear", "poly"]},
        "epochs": {"type": "FIXED", "value": 3},
        "quick": {"type": "POLICY", "policy": "EARLY_STOP"},
        "share": {"type": "POLICY", "policy": "SHARE_PARAMS"}
    }))
}

#[test]
fn proposals_have_the_contracts_shape() {
    let cfg = config(json!({
        "n": {"type": "INTEGER", "value_min": 1, "value_max": 9},
        "quick": {"type": "POLICY", "policy": "EARLY_STOP"}
    }));
    let p = expect_proposal(propose(&request(&cfg, &[], unlimited())));
    let v = serde_json::to_value(&p).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    // The contract's order (serde_json keeps the fields in the order they are written).
    assert_eq!(
        keys,
        [
            "trial_no",
            "knobs",
            "params_type",
            "to_eval",
            "to_cache_params",
            "to_save_params",
            "meta"
        ]
    );
    assert_eq!(v["trial_no"], json!(1));
    assert_eq!(v["params_type"], json!("NONE"));
    assert_eq!(v["to_eval"], json!(true));
    assert_eq!(v["to_cache_params"], json!(false));
    assert_eq!(v["to_save_params"], json!(true));
    assert_eq!(v["meta"], json!({"proposal_type": "SEARCH"}));
    assert_eq!(v["knobs"]["quick"], json!(true));
    assert!(v["knobs"]["n"].is_i64());
    let back: Proposal = serde_json::from_value(v).unwrap();
    assert_eq!(back, p);
}

#[test]
fn proposals_list_knobs_in_the_declared_order_with_the_same_values_whatever_that_order() {
    let declared = mixed_config();
    let mut reversed = declared.clone();
    reversed.reverse();
    let arch = config(json!({
        "zeta": {"type": "ARCH", "items": [[1, 2], [3, 4]]},
        "alpha": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0},
        "mid": {"type": "FIXED", "value": "m"}
    }));
    let mut arch_reversed = arch.clone();
    arch_reversed.reverse();
    for (advisor, cfg, other) in [
        (AdvisorType::BayesOpt, &declared, &reversed),
        (AdvisorType::Random, &declared, &reversed),
        (AdvisorType::Random, &arch, &arch_reversed),
    ] {
        // Summed in value order, so the score does not depend on the knobs' order either.
        let score = |p: &Proposal| {
            let mut values: Vec<f64> = p.knobs.values().filter_map(Value::as_f64).collect();
            values.sort_by(f64::total_cmp);
            values.iter().sum::<f64>()
        };
        let trials = drive(advisor, cfg, 8, 7, score);
        let other_trials = drive(advisor, other, 8, 7, score);
        for (t, o) in trials.iter().zip(&other_trials) {
            let knobs = &t.proposal.knobs;
            assert!(knobs.keys().eq(cfg.keys()), "{advisor:?}: {knobs:?}");
            assert!(o.proposal.knobs.keys().eq(other.keys()), "{advisor:?}");
            // Equality of knobs ignores their order.
            assert_eq!(knobs, &o.proposal.knobs, "{advisor:?}");
        }
    }
}

#[test]
fn advisor_is_chosen_from_the_knob_types_as_rafiki_does() {
    let fixed = config(json!({
        "epochs": {"type": "FIXED", "value": 3},
        "quick": {"type": "POLICY", "policy": "EARLY_STOP"}
    }));
    assert_eq!(advisor_type(&fixed, unlimited()), AdvisorType::Fixed);
    assert_eq!(
        advisor_type(&KnobConfig::new(), unlimited()),
        AdvisorType::Fixed
    );
    // SHARE_PARAMS alone among fixed and policy knobs is still FIXED: FIXED comes first.
    let fixed_sharing = config(json!({
        "epochs": {"type": "FIXED", "value": 3},
        "share": {"type": "POLICY", "policy": "SHARE_PARAMS"}
    }));
    assert_eq!(
        advisor_type(&fixed_sharing, unlimited()),
        AdvisorType::Fixed
    );
    assert_eq!(
        advisor_type(&mixed_config(), unlimited()),
        AdvisorType::BayesOptWithParamSharing
    );
    let mut without_sharing = mixed_config();
    without_sharing.shift_remove("share");
    assert_eq!(
        advisor_type(&without_sharing, unlimited()),
        AdvisorType::BayesOpt
    );
    let mut with_arch = mixed_config();
    with_arch.insert(
        "cells".into(),
        serde_json::from_value(json!({"type": "ARCH", "items": [[1, 2], ["a"]]})).unwrap(),
    );
    assert_eq!(advisor_type(&with_arch, unlimited()), AdvisorType::Random);
    assert_eq!(
        serde_json::to_value(AdvisorType::BayesOpt).unwrap(),
        json!("BAYES_OPT")
    );
    assert_eq!(
        serde_json::to_value(AdvisorType::BayesOptWithParamSharing).unwrap(),
        json!("BAYES_OPT_WITH_PARAM_SHARING")
    );
    // An ARCH knob rules out both Bayesian advisors, SHARE_PARAMS or not.
    assert_eq!(advisor_type(&with_arch, unlimited()), AdvisorType::Random);
}

#[test]
fn an_advisor_that_cannot_serve_a_knob_is_refused() {
    let cfg = mixed_config();
    let err = propose_as(AdvisorType::Fixed, &request(&cfg, &[], unlimited())).unwrap_err();
    assert!(matches!(
        err,
        AdvisorError::Incompatible {
            advisor: AdvisorType::Fixed,
            ..
        }
    ));
    let bad = config(json!({"n": {"type": "INTEGER", "value_min": 5, "value_max": 1}}));
    let err = propose(&request(&bad, &[], unlimited())).unwrap_err();
    assert!(matches!(err, AdvisorError::InvalidKnobConfig(_)));
}

/// Checks every knob of `mixed_config()` for type and range.
fn check_mixed_knobs(p: &Proposal) {
    let k = &p.knobs;
    let lr = k["lr"].as_f64().unwrap();
    assert!(k["lr"].is_f64() && (1e-5..=0.1).contains(&lr), "lr {lr}");
    let dropout = k["dropout"].as_f64().unwrap();
    assert!(k["dropout"].is_f64() && (0.0..=0.5).contains(&dropout));
    assert!(
        k["units"].is_i64(),
        "integers stay JSON integers: {}",
        k["units"]
    );
    assert!((1..=10000).contains(&k["units"].as_i64().unwrap()));
    assert!((2..=8).contains(&k["depth"].as_i64().unwrap()));
    assert!(["rbf", "linear", "poly"].contains(&k["kernel"].as_str().unwrap()));
    assert_eq!(k["epochs"], json!(3));
    assert!(k["quick"].is_boolean() && k["share"].is_boolean());
    assert_eq!(k.len(), 8);
}

#[test]
fn random_search_samples_every_knob_type_within_its_range() {
    let cfg = mixed_config();
    let history = drive(AdvisorType::Random, &cfg, 400, 9, |_| 0.0);
    let mut lr_decades = [0usize; 4];
    let mut units_below_100 = 0;
    let mut depths = std::collections::BTreeSet::new();
    let mut kernels = std::collections::BTreeSet::new();
    for t in &history {
        let p = &t.proposal;
        check_mixed_knobs(p);
        // Rafiki's plain search switches no policy on.
        assert_eq!(p.knobs["quick"], json!(false));
        assert_eq!(p.knobs["share"], json!(false));
        let lr = p.knobs["lr"].as_f64().unwrap();
        lr_decades[((lr.log10() + 5.0).floor() as usize).min(3)] += 1;
        units_below_100 += usize::from(p.knobs["units"].as_i64().unwrap() < 100);
        depths.insert(p.knobs["depth"].as_i64().unwrap());
        kernels.insert(p.knobs["kernel"].as_str().unwrap().to_owned());
    }
    // Log-uniform: each of the four decades of lr gets about a quarter (uniform would put 90%
    // in the top one), and half the integer units fall below 100 (uniform: 1%).
    for count in lr_decades {
        assert!((60..=140).contains(&count), "decades {lr_decades:?}");
    }
    assert!((140..=260).contains(&units_below_100), "{units_below_100}");
    assert_eq!(depths.len(), 7, "every integer 2..=8 is reachable");
    assert_eq!(kernels.len(), 3);
}

#[test]
fn arch_knobs_are_sampled_position_by_position() {
    let cfg = config(json!({
        "cells": {"type": "ARCH", "items": [[1, 2, 3], ["conv", "pool"], [true]]},
        "lr": {"type": "FLOAT", "value_min": 0.1, "value_max": 0.2}
    }));
    assert_eq!(advisor_type(&cfg, unlimited()), AdvisorType::Random);
    let history = drive(AdvisorType::Random, &cfg, 60, 1, |_| 0.0);
    let mut firsts = std::collections::BTreeSet::new();
    for t in &history {
        let cells = t.proposal.knobs["cells"].as_array().unwrap();
        assert_eq!(cells.len(), 3);
        assert!([json!(1), json!(2), json!(3)].contains(&cells[0]));
        assert!([json!("conv"), json!("pool")].contains(&cells[1]));
        assert_eq!(cells[2], json!(true));
        firsts.insert(cells[0].as_i64().unwrap());
    }
    assert_eq!(firsts.len(), 3);
}

#[test]
fn bayes_opt_keeps_types_and_ranges_and_searches_with_early_stop() {
    let cfg = mixed_config();
    let history = drive(AdvisorType::BayesOpt, &cfg, 14, 5, |p| {
        -(p.knobs["lr"].as_f64().unwrap().log10() + 3.0).powi(2)
            - (p.knobs["depth"].as_i64().unwrap() - 5).pow(2) as f64
    });
    for t in &history {
        check_mixed_knobs(&t.proposal);
        assert_eq!(
            t.proposal.knobs["quick"],
            json!(true),
            "EARLY_STOP on while searching"
        );
        assert_eq!(t.proposal.knobs["share"], json!(false));
        assert_eq!(t.proposal.proposal_type(), Some(ProposalType::Search));
    }
}

#[test]
fn the_trial_count_budget_is_a_hard_limit() {
    let cfg = mixed_config();
    let budget = Budget::from_options(100.0, 3);
    let history = drive(AdvisorType::BayesOpt, &cfg, 2, 1, |_| 0.5);
    expect_proposal(propose(&request(&cfg, &history, budget)));
    let mut full = history.clone();
    full.push(PastTrial::running(history[0].proposal.clone()));
    assert_eq!(
        propose(&request(&cfg, &full, budget)).unwrap(),
        Decision::BudgetSpent
    );
}

#[test]
fn no_trial_starts_once_the_time_budget_is_spent() {
    let cfg = mixed_config();
    let budget = Budget::from_options(0.25, -1);
    let mut req = request(&cfg, &[], budget);
    req.now = t0() + Duration::minutes(14);
    expect_proposal(propose(&req));
    req.now = t0() + Duration::minutes(15);
    assert_eq!(propose(&req).unwrap(), Decision::BudgetSpent);
}

#[test]
fn an_unlimited_trial_count_keeps_proposing() {
    let cfg = config(json!({"cells": {"type": "ARCH", "items": [[1, 2], [3, 4]]}}));
    let history = drive(AdvisorType::Random, &cfg, 300, 3, |_| 0.0);
    expect_proposal(propose(&request(&cfg, &history, unlimited())));
}

#[test]
fn a_fixed_config_gets_exactly_one_trial() {
    let cfg = config(json!({
        "epochs": {"type": "FIXED", "value": 3},
        "rate": {"type": "FIXED", "value": 0.5},
        "quick": {"type": "POLICY", "policy": "EARLY_STOP"}
    }));
    let p = expect_proposal(propose(&request(&cfg, &[], unlimited())));
    assert_eq!(p.trial_no, 1);
    assert_eq!(
        serde_json::to_value(&p.knobs).unwrap(),
        json!({"epochs": 3, "rate": 0.5, "quick": false})
    );
    for second in [
        PastTrial::running(p.clone()),
        PastTrial::completed(p.clone(), 0.9),
        PastTrial::errored(p.clone()),
    ] {
        let history = [second];
        assert_eq!(
            propose(&request(&cfg, &history, unlimited())).unwrap(),
            Decision::BudgetSpent
        );
    }
}

#[test]
fn the_same_history_gives_the_same_proposal_whatever_its_order() {
    let cfg = mixed_config();
    let history = drive(AdvisorType::BayesOpt, &cfg, 12, 7, |p| {
        p.knobs["dropout"].as_f64().unwrap() - p.knobs["lr"].as_f64().unwrap()
    });
    let a = expect_proposal(propose(&request(&cfg, &history, unlimited())));
    let b = expect_proposal(propose(&request(&cfg, &history, unlimited())));
    assert_eq!(a, b);
    let mut reversed = history.clone();
    reversed.reverse();
    let c = expect_proposal(propose(&request(&cfg, &reversed, unlimited())));
    assert_eq!(a, c);
    // Another seed is another search.
    let mut req = request(&cfg, &history, unlimited());
    req.seed = 43;
    assert_ne!(expect_proposal(propose(&req)).knobs, a.knobs);
}

#[test]
fn a_stalled_search_escapes_within_the_knob_rules_and_deterministically() {
    // Scores are 0.5 over most of the space, with one peak (RBF kernel, `lr` near 1e-3, no
    // dropout): the run gains too little on its best to count from its 26th scored trial on
    // (initial design plus the twenty-trial window), so the proposals after that escape, in a
    // space of every knob type. They must still be valid, distinct and reproducible.
    let cfg = mixed_config();
    let history = drive(AdvisorType::BayesOpt, &cfg, 45, 11, |p| {
        let lr = p.knobs["lr"].as_f64().unwrap().log10() + 3.0;
        let rbf = f64::from(u8::from(p.knobs["kernel"] == json!("rbf")));
        (rbf - 4.0 * lr * lr - p.knobs["dropout"].as_f64().unwrap()).max(0.5)
    });
    for (i, t) in history.iter().enumerate() {
        check_mixed_knobs(&t.proposal);
        assert!(
            history[..i]
                .iter()
                .all(|u| u.proposal.knobs != t.proposal.knobs),
            "{:?} proposed twice",
            t.proposal.knobs
        );
    }
    let a = expect_proposal(propose(&request(&cfg, &history, unlimited())));
    let mut reversed = history.clone();
    reversed.reverse();
    assert_eq!(
        expect_proposal(propose(&request(&cfg, &reversed, unlimited()))),
        a
    );
}

#[test]
fn running_trials_are_not_proposed_again() {
    // 4 x 2 = 8 points; with every trial still running, the first 8 proposals are all distinct,
    // both during the initial design and once the process is in use.
    let cfg = config(json!({
        "n": {"type": "INTEGER", "value_min": 1, "value_max": 4},
        "k": {"type": "CATEGORICAL", "values": ["a", "b"]}
    }));
    for scored in [0usize, 5] {
        let mut history = drive(AdvisorType::BayesOpt, &cfg, scored, 2, |p| {
            p.knobs["n"].as_i64().unwrap() as f64
        });
        while history.len() < 8 {
            let p = expect_proposal(propose(&request(&cfg, &history, unlimited())));
            assert!(
                history.iter().all(|t| t.proposal.knobs != p.knobs),
                "{:?} proposed twice",
                p.knobs
            );
            history.push(PastTrial::running(p));
        }
    }
}

#[test]
fn errored_and_unscored_trials_do_not_stop_the_search() {
    let cfg = config(json!({
        "x": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0},
        "y": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0}
    }));
    let mut history = drive(AdvisorType::BayesOpt, &cfg, 6, 4, |p| {
        p.knobs["x"].as_f64().unwrap()
    });
    let extra = expect_proposal(propose(&request(&cfg, &history, unlimited())));
    history.push(PastTrial::errored(extra.clone()));
    let mut unscored = PastTrial::completed(extra.clone(), 0.0);
    unscored.score = None;
    unscored.proposal.trial_no += 1;
    history.push(unscored);
    let p = expect_proposal(propose(&request(&cfg, &history, unlimited())));
    assert_ne!(p.knobs, extra.knobs);
}

#[test]
fn the_last_hour_retrains_the_best_searched_knobs_without_early_stop() {
    let cfg = config(json!({
        "x": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0},
        "quick": {"type": "POLICY", "policy": "EARLY_STOP"}
    }));
    let budget = Budget::from_options(3.0, -1);
    let history = drive(AdvisorType::BayesOpt, &cfg, 5, 8, |p| {
        p.knobs["x"].as_f64().unwrap()
    });
    let mut by_score: Vec<&PastTrial> = history.iter().collect();
    by_score.sort_by(|a, b| b.score.unwrap().total_cmp(&a.score.unwrap()));

    let mut history = history.clone();
    let mut req = request(&cfg, &history, budget);
    req.now = t0() + Duration::minutes(90);
    // 1.5 hours left: still searching.
    let p = expect_proposal(propose(&req));
    assert_eq!(p.proposal_type(), Some(ProposalType::Search));

    for best in &by_score[..2] {
        let mut req = request(&cfg, &history, budget);
        req.now = t0() + Duration::minutes(150);
        let p = expect_proposal(propose(&req));
        assert_eq!(p.proposal_type(), Some(ProposalType::FinalTrain));
        assert_eq!(p.knobs["x"], best.proposal.knobs["x"]);
        assert_eq!(p.knobs["quick"], json!(false));
        history.push(PastTrial::running(p));
    }
    // Once every searched point is retrained, new points come with policies off.
    let mut all_retrained = history.clone();
    for t in &by_score[2..] {
        let mut p = t.proposal.clone();
        p.trial_no = all_retrained.len() as u32 + 1;
        p.meta.insert("proposal_type".into(), json!("FINAL_TRAIN"));
        all_retrained.push(PastTrial::running(p));
    }
    let mut req = request(&cfg, &all_retrained, budget);
    req.now = t0() + Duration::minutes(150);
    let p = expect_proposal(propose(&req));
    assert_eq!(p.proposal_type(), Some(ProposalType::FinalTrain));
    assert_eq!(p.knobs["quick"], json!(false));
    assert!(history
        .iter()
        .all(|t| t.proposal.knobs["x"] != p.knobs["x"]));
}

fn branin(p: &Proposal) -> f64 {
    use std::f64::consts::PI;
    let x1 = p.knobs["x1"].as_f64().unwrap();
    let x2 = p.knobs["x2"].as_f64().unwrap();
    let b = 5.1 / (4.0 * PI * PI);
    (x2 - b * x1 * x1 + 5.0 / PI * x1 - 6.0).powi(2)
        + 10.0 * (1.0 - 1.0 / (8.0 * PI)) * x1.cos()
        + 10.0
}

#[test]
fn bayes_opt_beats_random_search_on_branin() {
    let cfg = config(json!({
        "x1": {"type": "FLOAT", "value_min": -5.0, "value_max": 10.0},
        "x2": {"type": "FLOAT", "value_min": 0.0, "value_max": 15.0}
    }));
    const OPTIMUM: f64 = 0.397_887;
    let regret = |advisor, seed| {
        let history = drive(advisor, &cfg, 25, seed, |p| -branin(p));
        let best = history
            .iter()
            .map(|t| -t.score.unwrap())
            .fold(f64::INFINITY, f64::min);
        best - OPTIMUM
    };
    let seeds = 0..5;
    let bo: f64 = seeds
        .clone()
        .map(|s| regret(AdvisorType::BayesOpt, s))
        .sum::<f64>()
        / 5.0;
    let random: f64 = seeds.map(|s| regret(AdvisorType::Random, s)).sum::<f64>() / 5.0;
    // After 25 trials random search is typically ~1 above the optimum, BO within ~0.05.
    assert!(
        bo < 0.1 * random && bo < 0.2,
        "mean regret after 25 trials: BO {bo:.4}, random {random:.4}"
    );
}

#[test]
fn a_running_trial_sends_another_worker_elsewhere_in_the_best_basin() {
    // A smooth bowl with its top at (0.3, 0.7): once the process has found it, a worker that
    // asks while another's trial runs gets another point, still near the top. (Lying that a running
    // trial scored the worst, as errored ones do, sent them away from it.)
    let cfg = config(json!({
        "x": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0},
        "y": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0}
    }));
    let at = |p: &Proposal| {
        (
            p.knobs["x"].as_f64().unwrap(),
            p.knobs["y"].as_f64().unwrap(),
        )
    };
    let bowl = |p: &Proposal| {
        let (x, y) = at(p);
        -((x - 0.3).powi(2) + (y - 0.7).powi(2))
    };
    for seed in 0..5 {
        let mut history = drive(AdvisorType::BayesOpt, &cfg, 15, seed, bowl);
        let mut parallel: Vec<(f64, f64)> = Vec::new();
        // Two workers: the second asks while the first's trial runs.
        for _ in 0..2 {
            let mut req = request(&cfg, &history, unlimited());
            req.seed = seed;
            let p = expect_proposal(propose(&req));
            let (x, y) = at(&p);
            assert!(
                !parallel.contains(&(x, y)),
                "seed {seed}: ({x}, {y}) proposed again while it runs"
            );
            assert!(
                (x - 0.3).hypot(y - 0.7) < 0.2,
                "seed {seed}: ({x}, {y}) left the top while {parallel:?} run"
            );
            parallel.push((x, y));
            history.push(PastTrial::running(p));
        }
    }
}

#[test]
fn pruned_trials_steer_the_search_like_scores_do() {
    // A bowl with its top at (0.3, 0.7), and a pruner that stops every trial worse than the
    // median of the finished ones once three finished: most trials end pruned, without a
    // score. Learning only from the few finished, the search stayed close to random (about one
    // seed in three gets within 0.1 of the top in 15 trials); conditioned on the pruned ones as
    // no better than the worst finished, it climbs.
    let cfg = config(json!({
        "x": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0},
        "y": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0}
    }));
    let distance = |p: &Proposal| {
        let (x, y) = (
            p.knobs["x"].as_f64().unwrap(),
            p.knobs["y"].as_f64().unwrap(),
        );
        (x - 0.3).hypot(y - 0.7)
    };
    for seed in 0..5 {
        let mut history: Vec<PastTrial> = Vec::new();
        let mut finished: Vec<f64> = Vec::new();
        for _ in 0..15 {
            let mut req = request(&cfg, &history, unlimited());
            req.seed = seed;
            let p = expect_proposal(propose_as(AdvisorType::BayesOpt, &req));
            let score = -distance(&p);
            let mut sorted = finished.clone();
            sorted.sort_by(f64::total_cmp);
            if finished.len() >= 3 && score < sorted[sorted.len() / 2] {
                history.push(PastTrial::pruned(p));
            } else {
                finished.push(score);
                history.push(PastTrial::completed(p, score));
            }
        }
        let pruned = history.iter().filter(|t| t.score.is_none()).count();
        let best = finished.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        assert!(
            -best < 0.1,
            "seed {seed}: the best finished trial is {:.3} from the top ({pruned} of 15 pruned)",
            -best
        );
    }
}

/// `n` sequential trials of the param-sharing advisor, the i-th asked for `i * step` hours
/// into the budget.
fn drive_sharing(cfg: &KnobConfig, budget: Budget, n: u32, step: Duration) -> Vec<PastTrial> {
    let mut history = Vec::new();
    for i in 0..n {
        let mut req = request(cfg, &history, budget);
        req.now = t0() + step * i as i32;
        let p = expect_proposal(propose(&req));
        let s = -(p.knobs["depth"].as_i64().unwrap() - 5).pow(2) as f64;
        history.push(PastTrial::completed(p, s));
    }
    history
}

#[test]
fn param_sharing_searches_with_share_params_and_early_stop_and_names_itself() {
    let cfg = mixed_config();
    let history = drive_sharing(
        &cfg,
        Budget::from_options(10.0, -1),
        12,
        Duration::minutes(1),
    );
    for t in &history {
        let p = &t.proposal;
        check_mixed_knobs(p);
        assert_eq!(p.knobs["share"], json!(true), "SHARE_PARAMS on");
        assert_eq!(p.knobs["quick"], json!(true), "EARLY_STOP on");
        assert_eq!(p.proposal_type(), Some(ProposalType::Search));
        assert_eq!(
            p.meta["advisor_type"],
            json!("BAYES_OPT_WITH_PARAM_SHARING")
        );
        assert!(p.to_eval && p.to_save_params && !p.to_cache_params);
        assert!(matches!(
            p.params_type,
            ParamsType::None | ParamsType::GlobalBest
        ));
    }
    // Its knobs are the Gaussian process's: the same as BAYES_OPT's on the same history.
    let mut req = request(&cfg, &history, Budget::from_options(10.0, -1));
    req.now = t0() + Duration::minutes(12);
    let shared = expect_proposal(propose(&req));
    let plain = expect_proposal(propose_as(AdvisorType::BayesOpt, &req));
    for name in ["lr", "dropout", "units", "depth", "kernel"] {
        assert_eq!(shared.knobs[name], plain.knobs[name], "{name}");
    }
}

#[test]
fn param_sharing_starts_from_the_best_parameters_more_often_as_the_budget_runs_out() {
    // One hour of budget; many independent sub-jobs (seeds) asked at the same moments.
    let cfg = mixed_config();
    let budget = Budget::from_options(1.0, -1);
    let share_of_global_best = |minutes: i64| {
        let seeds = 400;
        let hits = (0..seeds)
            .filter(|&seed| {
                let mut req = request(&cfg, &[], budget);
                req.seed = seed;
                req.now = t0() + Duration::minutes(minutes);
                expect_proposal(propose(&req)).params_type == ParamsType::GlobalBest
            })
            .count();
        hits as f64 / seeds as f64
    };
    let (start, middle, end) = (
        share_of_global_best(0),
        share_of_global_best(30),
        share_of_global_best(59),
    );
    // Rafiki's rule: P(NONE) = exp(-4 t / T), so P(GLOBAL_BEST) is 0, 1 - e^-2, ~1 - e^-4.
    assert_eq!(start, 0.0, "at the start every trial trains from scratch");
    assert!((middle - (1.0 - (-2.0f64).exp())).abs() < 0.07, "{middle}");
    assert!(
        (end - (1.0 - (-4.0f64 * 59.0 / 60.0).exp())).abs() < 0.04,
        "{end}"
    );
    assert!(start < middle && middle < end);
}

#[test]
fn param_sharing_is_deterministic_given_the_request() {
    let cfg = mixed_config();
    let budget = Budget::from_options(1.0, -1);
    let a = drive_sharing(&cfg, budget, 8, Duration::minutes(5));
    let b = drive_sharing(&cfg, budget, 8, Duration::minutes(5));
    assert_eq!(a, b);
    assert!(
        a.iter()
            .any(|t| t.proposal.params_type == ParamsType::GlobalBest),
        "40 minutes into an hour most trials share"
    );
}
