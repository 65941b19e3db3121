//! Pruners: whether a running trial should stop early, from the intermediate values of the
//! objective that it and the other trials of its model logged (docs/pruning.md).
//!
//! Pure like the advisors: the admin reads every trial's curve of the sub-job and asks
//! [`decide`] about the points a trial just logged; the answer depends on those inputs only.
//! Two rules, both judging a trial by its best value so far, which a noisy curve does not
//! undo with one bad epoch:
//! - the **median stopping rule**: at a step past `PRUNE_MIN_STEP`, a trial stops when its best
//!   value so far is worse than the median of the best values so far, at that step, of the
//!   other trials that reached it, once at least `PRUNE_WARMUP_TRIALS` of them did;
//! - **ASHA** (asynchronous successive halving): rungs at `min_step * eta^k`; when a trial
//!   reaches a rung its value there is recorded, and it goes on only if it is in the top 1/eta
//!   of the values recorded at that rung so far (itself included). With fewer than eta values
//!   at a rung there is too little to compare with and the trial goes on, so the first trials
//!   of a model are never stopped on their own evidence.

use rafiki_types::pruning::{PruneDecision, PruneMode, PrunerKind, Pruning};

/// One intermediate value of the objective.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// Its step (an epoch, or the count of values logged).
    pub step: f64,
    /// The value.
    pub value: f64,
}

/// A trial's curve: points by increasing step.
pub type Curve = [Point];

/// Whether the trial whose curve was `earlier` and now also has `new` (later steps) must stop,
/// given the curves of the model's other trials (any state). `None`: it goes on.
pub fn decide(
    pruning: &Pruning,
    earlier: &Curve,
    new: &Curve,
    others: &[&Curve],
) -> Option<PruneDecision> {
    let mode = pruning.mode;
    let mut seen: Vec<Point> = earlier.to_vec();
    for point in new {
        let previous_step = seen.last().map(|p| p.step);
        seen.push(*point);
        if point.step < pruning.min_step {
            continue;
        }
        let best = best_so_far(mode, &seen, point.step).expect("the point itself counts");
        let decision = match pruning.pruner {
            PrunerKind::Median => median_rule(pruning, best, point, others),
            PrunerKind::Asha => asha(pruning, best, previous_step, point, others),
        };
        if decision.is_some() {
            return decision;
        }
    }
    None
}

fn median_rule(
    pruning: &Pruning,
    best: f64,
    point: &Point,
    others: &[&Curve],
) -> Option<PruneDecision> {
    let mode = pruning.mode;
    // The others that got this far, each by its best value up to this step.
    let mut values: Vec<f64> = others
        .iter()
        .filter(|c| c.last().is_some_and(|p| p.step >= point.step))
        .filter_map(|c| best_so_far(mode, c, point.step))
        .collect();
    if values.len() < pruning.warmup_trials as usize {
        return None;
    }
    let median = median(&mut values);
    mode.better(median, best).then(|| PruneDecision {
        step: point.step,
        value: point.value,
        reason: format!(
            "median stopping rule: the best {} so far, {}, is worse than the median {} of {} \
             other trials at step {}",
            pruning.metric,
            best,
            median,
            values.len(),
            point.step
        ),
    })
}

fn asha(
    pruning: &Pruning,
    best: f64,
    previous_step: Option<f64>,
    point: &Point,
    others: &[&Curve],
) -> Option<PruneDecision> {
    let mode = pruning.mode;
    let eta = f64::from(pruning.reduction_factor);
    let mut rung = pruning.min_step;
    while rung <= point.step {
        // Judged only when it reaches the rung: ASHA never takes a promotion back.
        if previous_step.is_none_or(|s| s < rung) {
            let recorded: Vec<f64> = others
                .iter()
                .filter_map(|c| rung_value(mode, c, rung))
                .collect();
            let entrants = recorded.len() + 1;
            if entrants >= pruning.reduction_factor as usize {
                let promoted = entrants / pruning.reduction_factor as usize;
                let better = recorded.iter().filter(|v| mode.better(**v, best)).count();
                if better >= promoted {
                    return Some(PruneDecision {
                        step: point.step,
                        value: point.value,
                        reason: format!(
                            "ASHA: the best {} so far, {}, is not in the top 1/{} ({} of {}) of \
                             the trials that reached the rung at step {}",
                            pruning.metric,
                            best,
                            pruning.reduction_factor,
                            promoted,
                            entrants,
                            rung
                        ),
                    });
                }
            }
        }
        rung *= eta;
    }
    None
}

/// A curve's value at a rung: its best so far at its first step at or past the rung.
fn rung_value(mode: PruneMode, curve: &Curve, rung: f64) -> Option<f64> {
    let reached = curve.iter().find(|p| p.step >= rung)?;
    best_so_far(mode, curve, reached.step)
}

/// The best value of `curve` up to `step` (included).
fn best_so_far(mode: PruneMode, curve: &Curve, step: f64) -> Option<f64> {
    curve
        .iter()
        .take_while(|p| p.step <= step)
        .map(|p| p.value)
        .reduce(|a, b| if mode.better(b, a) { b } else { a })
}

fn median(values: &mut [f64]) -> f64 {
    values.sort_by(f64::total_cmp);
    let n = values.len();
    if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn options(pruner: PrunerKind, mode: PruneMode) -> Pruning {
        Pruning {
            pruner,
            metric: "acc".into(),
            mode,
            step_metric: None,
            min_step: 1.0,
            reduction_factor: 3,
            warmup_trials: 3,
        }
    }

    fn curve(values: &[f64]) -> Vec<Point> {
        values
            .iter()
            .enumerate()
            .map(|(i, v)| Point {
                step: (i + 1) as f64,
                value: *v,
            })
            .collect()
    }

    fn refs(curves: &[Vec<Point>]) -> Vec<&Curve> {
        curves.iter().map(Vec::as_slice).collect()
    }

    #[test]
    fn median_rule_stops_a_curve_below_the_median_only_after_the_warm_up() {
        let median = options(PrunerKind::Median, PruneMode::Max);
        let others = vec![
            curve(&[0.5, 0.6, 0.7, 0.8]),
            curve(&[0.4, 0.55, 0.65, 0.75]),
            curve(&[0.3, 0.5, 0.6, 0.7]),
        ];
        // Below every other trial at step 2: the median there is 0.55.
        let bad = curve(&[0.2, 0.3]);
        let d = decide(&median, &bad[..1], &bad[1..], &refs(&others)).unwrap();
        assert_eq!((d.step, d.value), (2.0, 0.3));
        assert!(d.reason.contains("median 0.55 of 3"), "{}", d.reason);
        // Two others are fewer than the warm-up of 3: it goes on.
        assert_eq!(decide(&median, &[], &bad, &refs(&others[..2])), None);
        // Above the median: it goes on.
        let good = curve(&[0.45, 0.58, 0.66]);
        assert_eq!(decide(&median, &[], &good, &refs(&others)), None);
    }

    #[test]
    fn median_rule_judges_the_best_value_so_far_so_one_noisy_dip_does_not_stop_a_trial() {
        let median = options(PrunerKind::Median, PruneMode::Max);
        let others = vec![
            curve(&[0.5, 0.55, 0.6]),
            curve(&[0.4, 0.5, 0.55]),
            curve(&[0.3, 0.45, 0.5]),
        ];
        // A dip to 0.1 at step 3, but its best (0.6 at step 2) beats the median (0.55).
        let dipping = curve(&[0.45, 0.6, 0.1]);
        assert_eq!(
            decide(&median, &dipping[..2], &dipping[2..], &refs(&others)),
            None
        );
    }

    #[test]
    fn min_mode_prunes_the_higher_losses_and_min_step_delays_judging() {
        let mut median = options(PrunerKind::Median, PruneMode::Min);
        let others = vec![
            curve(&[1.0, 0.8, 0.6]),
            curve(&[1.1, 0.9, 0.7]),
            curve(&[0.9, 0.7, 0.5]),
        ];
        let high = curve(&[2.0, 1.9, 1.8]);
        assert_eq!(
            decide(&median, &[], &high, &refs(&others)).unwrap().step,
            1.0
        );
        median.min_step = 3.0;
        assert_eq!(
            decide(&median, &[], &high, &refs(&others)).unwrap().step,
            3.0
        );
        let low = curve(&[0.5, 0.4, 0.3]);
        assert_eq!(decide(&median, &[], &low, &refs(&others)), None);
    }

    #[test]
    fn asha_keeps_the_top_third_at_each_rung() {
        let asha = options(PrunerKind::Asha, PruneMode::Max);
        // Rungs at steps 1, 3, 9.
        let others = vec![
            curve(&[0.5, 0.6, 0.7]),
            curve(&[0.4, 0.5, 0.6]),
            curve(&[0.3, 0.4, 0.5]),
            curve(&[0.2, 0.3, 0.4]),
            curve(&[0.1, 0.2, 0.3]),
        ];
        // Six entrants at rung 1, two go on: it must beat all but one of the others.
        let second = curve(&[0.45]);
        assert_eq!(decide(&asha, &[], &second, &refs(&others)), None);
        let third = curve(&[0.35]);
        let d = decide(&asha, &[], &third, &refs(&others)).unwrap();
        assert_eq!((d.step, d.value), (1.0, 0.35));
        assert!(d.reason.contains("top 1/3 (2 of 6)"), "{}", d.reason);
        // Promoted at rung 1; at rung 3 three of the six entrants beat it: stopped at step 3
        // (not at step 2, which is no rung).
        let fading = curve(&[0.45, 0.46, 0.47]);
        let d = decide(&asha, &fading[..1], &fading[1..], &refs(&others)).unwrap();
        assert_eq!(d.step, 3.0);
    }

    #[test]
    fn asha_never_stops_a_trial_with_fewer_than_eta_entrants_at_a_rung() {
        let asha = options(PrunerKind::Asha, PruneMode::Max);
        let others = vec![curve(&[0.9, 0.9, 0.9])];
        let worse = curve(&[0.1, 0.1, 0.1]);
        assert_eq!(decide(&asha, &[], &worse, &refs(&others)), None);
    }

    #[test]
    fn asha_judges_a_rung_once_even_when_later_trials_would_rank_it_lower() {
        let asha = options(PrunerKind::Asha, PruneMode::Max);
        let others = vec![curve(&[0.9, 0.9]), curve(&[0.8, 0.8]), curve(&[0.7, 0.7])];
        // Its rung-1 point was judged before; step 2 crosses no rung.
        let promoted = curve(&[0.1, 0.1]);
        assert_eq!(
            decide(&asha, &promoted[..1], &promoted[1..], &refs(&others)),
            None
        );
    }

    #[test]
    fn asha_judges_every_rung_a_late_first_point_jumps_over() {
        let asha = options(PrunerKind::Asha, PruneMode::Max);
        let others = vec![
            curve(&[0.1, 0.1, 0.9, 0.9]),
            curve(&[0.1, 0.1, 0.8, 0.8]),
            curve(&[0.1, 0.1, 0.7, 0.7]),
        ];
        // First logged at step 4: rung 1 (tied: not beaten, goes on), then rung 3 (beaten by
        // all three: stopped).
        let jumped = [Point {
            step: 4.0,
            value: 0.1,
        }];
        let d = decide(&asha, &[], &jumped, &refs(&others)).unwrap();
        assert!(d.reason.contains("rung at step 3"), "{}", d.reason);
    }
}
