//! Benchmark: early stopping of bad trials, simulated in epochs instead of seconds, so that
//! the advisor and the pruner can be judged over many seeds in a second (the end-to-end
//! benchmark, `scripts/bench-pruning.sh`, runs the real admin, worker and model).
//!
//! The learning curves are those of `scripts/bench_models/NoisyCurves.py` (`late` or `early`
//! crossing; two FLOAT knobs, 27 epochs, noise of sd 0.02 on every logged value). Each run
//! drives the public `propose_as` (BAYES_OPT) as the admin does for one worker, one trial at a
//! time: the trial's epochs are logged one by one and, with a pruner, each is judged by
//! `pruning::decide` against the other trials' curves, as the admin judges a worker's logs. A
//! pruned trial stops at its next log call (one more epoch) and is handed back PRUNED; the
//! others complete with the value of their last epoch as their score, as the model's
//! `evaluate` reports it (`exact`: the noiseless value instead). A run's results: the
//! noiseless final value of its best-scoring trial (what its user would deploy) and the epochs
//! its trials trained.
//!
//! ```text
//! cargo run --release -p rafiki-advisor --example bench_pruning_sim -- [late|early] [trials] [seeds] [noisy|exact]
//! ```
//!
//! Prints, per mode (no pruning with TRIALS trials; ASHA from epoch 1 and from epoch 3, eta 3,
//! with TRIALS and twice as many), the median over seeds of that final value, how many seeds
//! came within 0.001 of the optimum (0.9), the median epochs trained and how many times fewer
//! than without pruning.

use rafiki_advisor::pruning::{decide, Point};
use rafiki_advisor::{propose_as, AdvisorType, Budget, Decision, PastTrial};
use rafiki_types::knob::KnobConfig;
use rafiki_types::pruning::{PruneMode, PrunerKind, Pruning};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::json;

#[path = "support/median.rs"]
mod median;
#[path = "support/request.rs"]
mod request;
use median::median;
use request::request;

const EPOCHS: u32 = 27;
const OPTIMUM: f64 = 0.9;
/// The sd of the noise on every logged value.
const NOISE: f64 = 0.02;

/// The problem: how the curves cross, and whether scores carry the noise.
#[derive(Clone, Copy)]
struct Problem {
    late: bool,
    exact: bool,
}

impl Problem {
    /// The noiseless accuracy after `epoch` epochs, as NoisyCurves.py computes it.
    fn curve(self, log_lr: f64, width: f64, epoch: f64) -> f64 {
        let asymptote = 0.9 - 0.12 * (log_lr + 1.5).powi(2) - 0.1 * (width - 0.7).powi(2);
        let tau = if self.late {
            2.0 * 10f64.powf(-0.6 * (log_lr + 1.5)) * (1.0 + width)
        } else {
            1.5 * 10f64.powf(-0.2 * (log_lr + 1.5)) * (1.0 + 2.0 * (width - 0.7).powi(2))
        };
        asymptote * (1.0 - (-epoch / tau).exp())
    }
}

/// A standard normal draw (Box-Muller).
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let (u, v): (f64, f64) = (1.0 - rng.gen::<f64>(), rng.gen());
    (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * v).cos()
}

fn asha(min_step: f64) -> Pruning {
    Pruning {
        pruner: PrunerKind::Asha,
        metric: "val_acc".to_owned(),
        mode: PruneMode::Max,
        step_metric: Some("epoch".to_owned()),
        min_step,
        reduction_factor: 3,
        warmup_trials: 4,
    }
}

/// One run: (the noiseless final value of the best-scoring trial, epochs trained).
fn run(problem: Problem, pruning: Option<&Pruning>, trials: u32, seed: u64) -> (f64, u32) {
    let config: KnobConfig = serde_json::from_value(json!({
        "lr": {"type": "FLOAT", "value_min": 1e-3, "value_max": 1.0, "is_exp": true},
        "width": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0}
    }))
    .expect("a valid knob config");
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut history: Vec<PastTrial> = Vec::new();
    let mut curves: Vec<Vec<Point>> = Vec::new();
    // (best score, its trial's noiseless final value)
    let mut best = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    let mut epochs = 0;
    for _ in 0..trials {
        let budget = Budget::from_options(1e6, i64::from(trials));
        let proposal = match propose_as(
            AdvisorType::BayesOpt,
            &request(&config, budget, &history, seed),
        ) {
            Ok(Decision::Propose(p)) => p,
            other => panic!("no proposal: {other:?}"),
        };
        let log_lr = proposal.knobs["lr"].as_f64().unwrap().log10();
        let width = proposal.knobs["width"].as_f64().unwrap();
        let mut mine: Vec<Point> = Vec::new();
        let mut stopped_after = None;
        for epoch in 1..=EPOCHS {
            let step = f64::from(epoch);
            let point = Point {
                step,
                value: problem.curve(log_lr, width, step) + NOISE * standard_normal(&mut rng),
            };
            if let Some(options) = pruning {
                let others: Vec<&[Point]> = curves.iter().map(Vec::as_slice).collect();
                if decide(options, &mine, &[point], &others).is_some() {
                    stopped_after = Some((epoch + 1).min(EPOCHS));
                }
            }
            mine.push(point);
            if stopped_after.is_some() {
                break;
            }
        }
        match stopped_after {
            Some(trained) => {
                epochs += trained;
                history.push(PastTrial::pruned(proposal));
            }
            None => {
                epochs += EPOCHS;
                let truth = problem.curve(log_lr, width, f64::from(EPOCHS));
                let score = if problem.exact {
                    truth
                } else {
                    mine.last().expect("27 epochs").value
                };
                if score > best.0 {
                    best = (score, truth);
                }
                history.push(PastTrial::completed(proposal, score));
            }
        }
        curves.push(mine);
    }
    (best.1, epochs)
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let arg = |i: usize| args.get(i).map(String::as_str);
    let problem = Problem {
        late: arg(0) != Some("early"),
        exact: arg(3) == Some("exact"),
    };
    let trials: u32 = arg(1).map_or(20, |s| s.parse().expect("trials"));
    let seeds: u64 = arg(2).map_or(21, |s| s.parse().expect("seeds"));
    println!(
        "{} crossing, {} scores, {seeds} seeds",
        if problem.late { "late" } else { "early" },
        if problem.exact { "exact" } else { "noisy" },
    );
    println!("| mode | trials | median final value of the best | seeds within 0.001 | median epochs | fewer epochs |");
    println!("|---|---|---|---|---|---|");
    let modes: [(&str, Option<Pruning>, u32); 5] = [
        ("none", None, trials),
        ("ASHA from epoch 1", Some(asha(1.0)), trials),
        ("ASHA from epoch 3", Some(asha(3.0)), trials),
        ("ASHA from epoch 1", Some(asha(1.0)), 2 * trials),
        ("ASHA from epoch 3", Some(asha(3.0)), 2 * trials),
    ];
    let mut base = None;
    for (name, pruning, n) in &modes {
        let runs: Vec<(f64, u32)> = (0..seeds)
            .map(|seed| run(problem, pruning.as_ref(), *n, seed))
            .collect();
        let best = median(runs.iter().map(|r| r.0).collect());
        let epochs = median(runs.iter().map(|r| f64::from(r.1)).collect());
        let close = runs.iter().filter(|r| OPTIMUM - r.0 <= 0.001).count();
        let base = *base.get_or_insert(epochs);
        println!(
            "| {name} | {n} | {best:.4} | {close}/{seeds} | {epochs:.0} | {:.2}x |",
            base / epochs
        );
    }
}
