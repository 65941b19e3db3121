//! Parallel workers of one model, without the admin: `W` workers tune Branin (FLOAT knobs
//! `x0 in [-5, 10]`, `x1 in [0, 15]`, score `-f`) for 30 trials, proposing exactly as the admin
//! does when a model has several workers: each proposal sees the other workers' trials as
//! running. Every trial takes the same time, so the oldest running trial is the next to finish,
//! and a worker asks again as soon as its trial ends. Prints, per worker count, the median and
//! mean regret (best `f` found minus `f* = 0.397887`) over the seeds, and each seed's.
//!
//! `cargo run --release -p rafiki-advisor --example bench_parallel -- [seeds=20] [workers=1,2,4]`
//!
//! scripts/bench-parallel.sh measures the same through the admin and real workers, wall-clock
//! time included (docs/benchmarks.md, "Parallel CPU trials").

use std::collections::VecDeque;
use std::f64::consts::PI;

use rafiki_advisor::{propose_as, AdvisorType, Budget, Decision, PastTrial};
use rafiki_types::knob::{Knob, KnobConfig};

#[path = "support/request.rs"]
mod request;
use request::request;

const TRIALS: u32 = 30;
const BRANIN_MIN: f64 = 0.397887;

fn branin(x0: f64, x1: f64) -> f64 {
    let b = 5.1 / (4.0 * PI * PI);
    let c = 5.0 / PI;
    let t = 1.0 / (8.0 * PI);
    (x1 - b * x0 * x0 + c * x0 - 6.0).powi(2) + 10.0 * (1.0 - t) * x0.cos() + 10.0
}

/// The regret of one run of `workers` workers from `seed`.
fn run(config: &KnobConfig, workers: usize, seed: u64) -> f64 {
    let mut history: Vec<PastTrial> = Vec::new();
    let mut running: VecDeque<usize> = VecDeque::new();
    let mut best = f64::INFINITY;
    loop {
        while running.len() < workers && history.len() < TRIALS as usize {
            let budget = Budget::from_options(1e6, i64::from(TRIALS));
            let Decision::Propose(proposal) = propose_as(
                AdvisorType::BayesOpt,
                &request(config, budget, &history, seed),
            )
            .expect("a valid config") else {
                unreachable!("the budget has room");
            };
            history.push(PastTrial::running(proposal));
            running.push_back(history.len() - 1);
        }
        let Some(done) = running.pop_front() else {
            return best - BRANIN_MIN;
        };
        let proposal = history[done].proposal.clone();
        let knob = |name: &str| proposal.knobs[name].as_f64().expect("a float knob");
        let value = branin(knob("x0"), knob("x1"));
        best = best.min(value);
        history[done] = PastTrial::completed(proposal, -value);
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let seeds: u64 = args.first().map_or(20, |s| s.parse().expect("seeds"));
    let counts: Vec<usize> = args.get(1).map_or(vec![1, 2, 4], |s| {
        s.split(',').map(|n| n.parse().expect("workers")).collect()
    });
    let config: KnobConfig = [("x0", -5.0, 10.0), ("x1", 0.0, 15.0)]
        .into_iter()
        .map(|(name, value_min, value_max)| {
            let knob = Knob::Float {
                value_min,
                value_max,
                is_exp: false,
            };
            (name.to_owned(), knob)
        })
        .collect();
    for workers in counts {
        let regrets: Vec<f64> = (1000..1000 + seeds)
            .map(|seed| run(&config, workers, seed))
            .collect();
        let mut sorted = regrets.clone();
        sorted.sort_by(f64::total_cmp);
        let median = if sorted.len() % 2 == 1 {
            sorted[sorted.len() / 2]
        } else {
            (sorted[sorted.len() / 2 - 1] + sorted[sorted.len() / 2]) / 2.0
        };
        let mean = regrets.iter().sum::<f64>() / regrets.len() as f64;
        let each: Vec<String> = regrets.iter().map(|r| format!("{r:.4}")).collect();
        println!(
            "{workers} worker(s): median regret {median:.4}, mean {mean:.4}; by seed: {}",
            each.join(" ")
        );
    }
}
