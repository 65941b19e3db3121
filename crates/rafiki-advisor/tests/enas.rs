//! The ENAS advisor through the public API: when it is chosen, the schedule and flags of its
//! proposals per worker, its final phase, and its controller rebuilt from the trials.

use chrono::{DateTime, Duration, TimeZone, Utc};
use rafiki_advisor::{
    advisor_type, propose, propose_as, AdvisorType, Budget, Decision, ParamsType, PastTrial,
    Proposal, ProposalType, Request, ENAS_FINAL_HOURS,
};
use rafiki_types::knob::KnobConfig;
use serde_json::{json, Value};

const POLICIES: [(&str, &str); 5] = [
    ("share_params", "SHARE_PARAMS"),
    ("downscale", "DOWNSCALE"),
    ("early_stop", "EARLY_STOP"),
    ("skip_train", "SKIP_TRAIN"),
    ("quick_eval", "QUICK_EVAL"),
];

/// An ENAS model's config: one ARCH knob with `positions` positions of `choices` candidates,
/// a fixed knob and every ENAS policy.
fn enas_config(positions: usize, choices: usize) -> KnobConfig {
    let items: Vec<Vec<Value>> = (0..positions)
        .map(|_| (0..choices).map(|c| json!(c)).collect())
        .collect();
    let mut cfg = json!({
        "cells": {"type": "ARCH", "items": items},
        "epochs": {"type": "FIXED", "value": 3},
    });
    for (name, policy) in POLICIES {
        cfg[name] = json!({"type": "POLICY", "policy": policy});
    }
    serde_json::from_value(cfg).unwrap()
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 3, 1, 9, 0, 0).unwrap()
}

fn day() -> Budget {
    Budget::from_options(24.0, -1)
}

fn ask<'a>(
    cfg: &'a KnobConfig,
    history: &'a [PastTrial],
    worker: Option<&'a str>,
    now: DateTime<Utc>,
) -> Decision {
    propose(&Request {
        config: cfg,
        budget: day(),
        history,
        trial_no: history.len() as u32 + 1,
        started_at: t0(),
        now,
        seed: 7,
        worker_id: worker,
    })
    .unwrap()
}

fn proposal(d: Decision) -> Proposal {
    match d {
        Decision::Propose(p) => p,
        Decision::BudgetSpent => panic!("expected a proposal"),
    }
}

/// The policies a proposal switches on.
fn on(p: &Proposal) -> Vec<&str> {
    let mut v: Vec<&str> = POLICIES
        .iter()
        .filter(|(name, _)| p.knobs[*name] == json!(true))
        .map(|(_, policy)| *policy)
        .collect();
    v.sort_unstable();
    v
}

fn arch(p: &Proposal) -> Vec<usize> {
    p.knobs["cells"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_u64().unwrap() as usize)
        .collect()
}

#[test]
fn enas_is_chosen_by_rafikis_rule() {
    let cfg = enas_config(3, 2);
    assert_eq!(advisor_type(&cfg, day()), AdvisorType::Enas);
    assert_eq!(
        advisor_type(&cfg, Budget::from_options(ENAS_FINAL_HOURS, 10)),
        AdvisorType::Enas
    );
    // Too short a budget for the final phase.
    assert_eq!(
        advisor_type(&cfg, Budget::from_options(11.9, -1)),
        AdvisorType::Random
    );
    // Every one of the five policies is needed.
    for (name, _) in POLICIES {
        let mut missing = cfg.clone();
        missing.shift_remove(name);
        assert_eq!(advisor_type(&missing, day()), AdvisorType::Random, "{name}");
    }
    // Only fixed, policy and architecture knobs.
    let mut with_float = cfg.clone();
    with_float.insert(
        "lr".into(),
        serde_json::from_value(json!({"type": "FLOAT", "value_min": 0.1, "value_max": 1.0}))
            .unwrap(),
    );
    assert_eq!(advisor_type(&with_float, day()), AdvisorType::Random);
    // Without an architecture knob the earlier advisors win.
    let mut no_arch = cfg.clone();
    no_arch.shift_remove("cells");
    assert_eq!(advisor_type(&no_arch, day()), AdvisorType::Fixed);
    assert_eq!(
        serde_json::to_value(AdvisorType::Enas).unwrap(),
        json!("ENAS")
    );
    assert!(propose_as(AdvisorType::Enas, &request_for(&with_float)).is_err());
}

fn request_for(cfg: &KnobConfig) -> Request<'_> {
    Request {
        config: cfg,
        budget: day(),
        history: &[],
        trial_no: 1,
        started_at: t0(),
        now: t0(),
        seed: 7,
        worker_id: None,
    }
}

#[test]
fn each_worker_trains_then_evaluates_on_its_own_shared_parameters() {
    let cfg = enas_config(3, 4);
    let mut history: Vec<PastTrial> = Vec::new();

    let train = proposal(ask(&cfg, &history, Some("a"), t0()));
    assert_eq!(train.proposal_type(), Some(ProposalType::Train));
    assert_eq!(train.params_type, ParamsType::LocalRecent);
    assert!(!train.to_eval && train.to_cache_params && !train.to_save_params);
    assert_eq!(on(&train), ["DOWNSCALE", "EARLY_STOP"]);
    assert_eq!(train.knobs["epochs"], json!(3));
    assert_eq!(arch(&train).len(), 3);
    assert_eq!(
        serde_json::to_value(&train).unwrap()["meta"],
        json!({"proposal_type": "TRAIN"})
    );
    // A TRAIN trial is not evaluated: it completes without a score.
    history.push(PastTrial {
        score: None,
        ..PastTrial::completed(train, 0.0).on_worker("a")
    });

    let eval = proposal(ask(&cfg, &history, Some("a"), t0()));
    assert_eq!(eval.proposal_type(), Some(ProposalType::Eval));
    assert_eq!(eval.params_type, ParamsType::LocalRecent);
    assert!(eval.to_eval && !eval.to_cache_params && !eval.to_save_params);
    assert_eq!(on(&eval), ["DOWNSCALE", "QUICK_EVAL", "SKIP_TRAIN"]);
    history.push(PastTrial::running(eval).on_worker("a"));

    // Worker b has trained nothing yet: its first trial trains its own copy.
    let b = proposal(ask(&cfg, &history, Some("b"), t0()));
    assert_eq!(b.proposal_type(), Some(ProposalType::Train));
    history.push(PastTrial::running(b).on_worker("b"));

    // A's cycle: 300 EVAL trials after its TRAIN one, then TRAIN again.
    for n in 3..=301 {
        let p = proposal(ask(&cfg, &history, Some("a"), t0()));
        assert_eq!(p.proposal_type(), Some(ProposalType::Eval), "a's trial {n}");
        history.push(PastTrial::running(p).on_worker("a"));
    }
    let again = proposal(ask(&cfg, &history, Some("a"), t0()));
    assert_eq!(again.proposal_type(), Some(ProposalType::Train));
    let b2 = proposal(ask(&cfg, &history, Some("b"), t0()));
    assert_eq!(b2.proposal_type(), Some(ProposalType::Eval));
}

#[test]
fn the_final_hours_evaluate_candidates_then_retrain_the_best_from_scratch() {
    let cfg = enas_config(3, 4);
    let late = t0() + Duration::hours(13); // 11 of 24 hours left
    let mut history: Vec<PastTrial> = Vec::new();
    let mut scores = Vec::new();
    for i in 0..10 {
        let p = proposal(ask(&cfg, &history, Some("a"), late));
        assert_eq!(p.proposal_type(), Some(ProposalType::FinalEval), "{i}");
        assert_eq!(p.params_type, ParamsType::LocalRecent);
        assert!(p.to_eval && !p.to_cache_params && p.to_save_params);
        assert_eq!(on(&p), ["DOWNSCALE", "SKIP_TRAIN"]);
        // Distinct scores, the best at i = 6 and the second best at i = 2.
        let score = [0.1, 0.2, 0.8, 0.3, 0.4, 0.5, 0.9, 0.6, 0.65, 0.7][i];
        scores.push((score, p.knobs["cells"].clone()));
        if i == 9 {
            // Still running: the tenth evaluation has no score yet, so another is asked for.
            history.push(PastTrial::running(p.clone()).on_worker("a"));
            let p2 = proposal(ask(&cfg, &history, Some("b"), late));
            assert_eq!(p2.proposal_type(), Some(ProposalType::FinalEval));
            history.pop();
        }
        history.push(PastTrial::completed(p, score).on_worker("a"));
    }
    let final_train = proposal(ask(&cfg, &history, Some("a"), late));
    assert_eq!(final_train.proposal_type(), Some(ProposalType::FinalTrain));
    assert_eq!(final_train.params_type, ParamsType::None);
    assert!(final_train.to_eval && !final_train.to_cache_params && final_train.to_save_params);
    assert!(on(&final_train).is_empty());
    assert_eq!(final_train.knobs["cells"], scores[6].1);
    assert_eq!(final_train.knobs["epochs"], json!(3));
    history.push(PastTrial::running(final_train.clone()).on_worker("a"));

    // Another worker asking meanwhile retrains the next best candidate not yet taken.
    let other = proposal(ask(&cfg, &history, Some("b"), late));
    assert_eq!(other.proposal_type(), Some(ProposalType::FinalTrain));
    let second_best = &scores[2].1;
    if *second_best != scores[6].1 {
        assert_eq!(&other.knobs["cells"], second_best);
    }
    history.push(PastTrial::errored(other).on_worker("b"));

    // Once a final train has a score, the model is done.
    let done = PastTrial::completed(final_train.clone(), 0.95).on_worker("a");
    *history
        .iter_mut()
        .find(|t| t.proposal == final_train)
        .unwrap() = done;
    assert_eq!(ask(&cfg, &history, Some("b"), late), Decision::BudgetSpent);
}

#[test]
fn the_controller_is_rebuilt_from_the_trials_whatever_their_order() {
    let cfg = enas_config(4, 3);
    let mut history: Vec<PastTrial> = Vec::new();
    for _ in 0..25 {
        let p = proposal(ask(&cfg, &history, None, t0()));
        let score = arch(&p).iter().filter(|&&k| k == 2).count() as f64;
        history.push(match p.to_eval {
            true => PastTrial::completed(p, score),
            false => PastTrial {
                score: None,
                ..PastTrial::completed(p, 0.0)
            },
        });
    }
    let next = proposal(ask(&cfg, &history, None, t0()));
    let mut shuffled = history.clone();
    shuffled.reverse();
    shuffled.swap(3, 17);
    assert_eq!(proposal(ask(&cfg, &shuffled, None, t0())), next);

    // A trial of an older config (a value no candidate has) is left out, not a failure.
    let mut odd = history.clone();
    let mut stale = odd[5].clone();
    stale.proposal.knobs["cells"] = json!([0, 9, 1, 1]);
    stale.proposal.trial_no = 26;
    odd.push(stale);
    assert!(matches!(
        propose(&Request {
            history: &odd,
            trial_no: 27,
            ..request_for(&cfg)
        }),
        Ok(Decision::Propose(_))
    ));
}

#[test]
fn the_controller_learns_where_the_scores_are() {
    // 3 positions of 3 candidates; the score counts positions holding candidate 2. Uniform
    // sampling gives the best architecture (2, 2, 2) one trial in 27.
    let cfg = enas_config(3, 3);
    let mut history: Vec<PastTrial> = Vec::new();
    for _ in 0..120 {
        let p = proposal(ask(&cfg, &history, None, t0()));
        let score = arch(&p).iter().filter(|&&k| k == 2).count() as f64;
        history.push(match p.to_eval {
            true => PastTrial::completed(p, score),
            false => PastTrial {
                score: None,
                ..PastTrial::completed(p, 0.0)
            },
        });
    }
    let late: Vec<f64> = history[80..].iter().filter_map(|t| t.score).collect();
    let mean = late.iter().sum::<f64>() / late.len() as f64;
    // Uniform sampling averages 1.0.
    assert!(mean > 1.5, "mean score of the last 40 trials: {mean}");
}

#[test]
fn an_architecture_too_big_for_the_controller_gets_random_search() {
    // A model's config is untrusted: ENAS would run its controller over every position of it
    // inside the admin, once per scored trial.
    let wide = enas_config(257, 2);
    assert_eq!(advisor_type(&wide, day()), AdvisorType::Random);
    assert!(propose_as(AdvisorType::Enas, &request_for(&wide)).is_err());
    let many = enas_config(4, 65);
    assert_eq!(advisor_type(&many, day()), AdvisorType::Random);
    // Two knobs within the bound each, over it together.
    let mut two = enas_config(200, 2);
    two.insert("more".into(), two["cells"].clone());
    assert_eq!(advisor_type(&two, day()), AdvisorType::Random);
    assert!(matches!(
        propose(&request_for(&two)),
        Ok(Decision::Propose(p)) if p.params_type == ParamsType::None
    ));
    assert_eq!(
        advisor_type(&enas_config(256, 64), day()),
        AdvisorType::Enas
    );
}

#[test]
fn extreme_scores_from_a_model_do_not_break_its_proposals() {
    // A model's `evaluate()` is untrusted: huge, tiny and non-finite scores must leave the
    // advisor answering with valid architectures.
    let cfg = enas_config(3, 3);
    let extremes = [
        1e308,
        -1e308,
        f64::MAX,
        f64::MIN_POSITIVE,
        f64::NAN,
        f64::INFINITY,
    ];
    let mut history: Vec<PastTrial> = Vec::new();
    for i in 0..45 {
        let p = proposal(ask(&cfg, &history, None, t0()));
        assert!(arch(&p).iter().all(|&k| k < 3), "{p:?}");
        history.push(PastTrial::completed(p, extremes[i % extremes.len()]));
    }
}
