//! Benchmark: ENAS against random search on a synthetic architecture-scoring problem whose
//! optimum is known.
//!
//! The architecture is one ARCH knob of `POSITIONS` positions with `CHOICES` candidates each.
//! Its score is a chain of unary and pairwise terms drawn once per seed,
//! `sum_t u[t][k_t] + sum_t v[t][k_t][k_t+1]`, plus Gaussian noise on every evaluation; the
//! best architecture is found exactly by dynamic programming over the chain. The config also
//! declares ENAS's five policies, so the same config is served by both advisors.
//!
//! Each run drives the public `propose_as` as the admin does for one worker: one trial at a
//! time, the whole history passed back in. A trial the advisor does not want evaluated
//! (ENAS's TRAIN trials, `to_eval: false`) completes without a score, as the worker reports it;
//! every other trial gets a noisy score. Both advisors get the same number of trials. A run's
//! result is its best observed score, the noise-free score of that architecture, and its regret
//! (optimum minus that noise-free score).
//!
//! ```text
//! cargo run --release -p rafiki-advisor --example bench_enas_vs_random -- [seeds] [trials] [first_seed]
//! cargo run --release -p rafiki-advisor --example bench_enas_vs_random -- time
//! ```
//!
//! `time` times single ENAS proposals after histories of 300, 1,000 and 3,000 scored trials
//! instead (the controller is replayed on every call).

use std::time::Instant;

use rafiki_advisor::{propose_as, AdvisorType, Budget, Decision, PastTrial, Proposal, Request};
use rafiki_types::knob::KnobConfig;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde_json::{json, Value};

#[path = "support/median.rs"]
mod median;
#[path = "support/request.rs"]
mod request;
use median::median;
use request::request;

const POSITIONS: usize = 8;
const CHOICES: usize = 5;
/// Standard deviation of the evaluation noise (the unary terms have 1, the pairwise 0.5).
const NOISE: f64 = 0.3;

/// One seed's scoring function.
struct Problem {
    unary: Vec<Vec<f64>>,
    pair: Vec<Vec<Vec<f64>>>,
}

impl Problem {
    fn new(seed: u64) -> Problem {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let mut normal = move |sd: f64| sd * gaussian(&mut rng);
        let unary = (0..POSITIONS)
            .map(|_| (0..CHOICES).map(|_| normal(1.0)).collect())
            .collect();
        let pair = (0..POSITIONS - 1)
            .map(|_| {
                (0..CHOICES)
                    .map(|_| (0..CHOICES).map(|_| normal(0.5)).collect())
                    .collect()
            })
            .collect();
        Problem { unary, pair }
    }

    fn score(&self, arch: &[usize]) -> f64 {
        let unary: f64 = arch
            .iter()
            .enumerate()
            .map(|(t, &k)| self.unary[t][k])
            .sum();
        let pair: f64 = arch
            .windows(2)
            .enumerate()
            .map(|(t, w)| self.pair[t][w[0]][w[1]])
            .sum();
        unary + pair
    }

    /// The best score, by dynamic programming along the chain.
    fn optimum(&self) -> f64 {
        let mut best: Vec<f64> = self.unary[0].clone();
        for t in 1..POSITIONS {
            best = (0..CHOICES)
                .map(|k| {
                    let from = (0..CHOICES)
                        .map(|j| best[j] + self.pair[t - 1][j][k])
                        .fold(f64::NEG_INFINITY, f64::max);
                    from + self.unary[t][k]
                })
                .collect();
        }
        best.into_iter().fold(f64::NEG_INFINITY, f64::max)
    }
}

/// A standard normal draw (Box-Muller).
fn gaussian(rng: &mut impl Rng) -> f64 {
    let u: f64 = 1.0 - rng.gen::<f64>();
    let v: f64 = rng.gen();
    (-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()
}

fn config() -> KnobConfig {
    let items: Vec<Vec<Value>> = (0..POSITIONS)
        .map(|_| (0..CHOICES).map(|c| json!(format!("op{c}"))).collect())
        .collect();
    serde_json::from_value(json!({
        "arch": {"type": "ARCH", "items": items},
        "share_params": {"type": "POLICY", "policy": "SHARE_PARAMS"},
        "downscale": {"type": "POLICY", "policy": "DOWNSCALE"},
        "early_stop": {"type": "POLICY", "policy": "EARLY_STOP"},
        "skip_train": {"type": "POLICY", "policy": "SKIP_TRAIN"},
        "quick_eval": {"type": "POLICY", "policy": "QUICK_EVAL"},
    }))
    .expect("a valid config")
}

fn arch_of(p: &Proposal) -> Vec<usize> {
    p.knobs["arch"]
        .as_array()
        .expect("an arch value")
        .iter()
        .map(|v| {
            let s = v.as_str().expect("a candidate");
            s[2..].parse().expect("op<number>")
        })
        .collect()
}

/// A request of a run capped at `cap` trials, with a long time budget: the whole run is
/// ENAS's search phase.
fn capped<'a>(
    config: &'a KnobConfig,
    history: &'a [PastTrial],
    seed: u64,
    cap: usize,
) -> Request<'a> {
    request(config, Budget::from_options(1e6, cap as i64), history, seed)
}

struct Outcome {
    /// Best observed (noisy) score.
    best_seen: f64,
    /// Noise-free score of that architecture.
    chosen: f64,
    /// Optimum minus `chosen`.
    regret: f64,
    /// Evaluated trials.
    evaluated: usize,
    secs: f64,
}

fn run(advisor: AdvisorType, seed: u64, trials: usize) -> Outcome {
    let config = config();
    let problem = Problem::new(seed);
    let mut noise = ChaCha8Rng::seed_from_u64(seed ^ 0x5eed);
    let mut history: Vec<PastTrial> = Vec::new();
    let mut best: Option<(f64, f64)> = None;
    let mut evaluated = 0;
    let started = Instant::now();
    loop {
        let decision = propose_as(advisor, &capped(&config, &history, seed, trials))
            .expect("a config both advisors serve");
        let Decision::Propose(p) = decision else {
            break;
        };
        if !p.to_eval {
            history.push(PastTrial {
                score: None,
                ..PastTrial::completed(p, 0.0)
            });
            continue;
        }
        let truth = problem.score(&arch_of(&p));
        let seen = truth + NOISE * gaussian(&mut noise);
        evaluated += 1;
        if best.is_none_or(|(b, _)| seen > b) {
            best = Some((seen, truth));
        }
        history.push(PastTrial::completed(p, seen));
    }
    let (best_seen, chosen) = best.expect("some trial was evaluated");
    Outcome {
        best_seen,
        chosen,
        regret: problem.optimum() - chosen,
        evaluated,
        secs: started.elapsed().as_secs_f64(),
    }
}

fn time_proposals() {
    let config = config();
    println!("| scored trials | ENAS proposal (ms) |");
    println!("|---|---|");
    for n in [300usize, 1000, 3000] {
        let mut rng = ChaCha8Rng::seed_from_u64(n as u64);
        let mut history = Vec::with_capacity(n + 1);
        // One TRAIN trial first, as the schedule has it; then evaluated random architectures.
        let first = match propose_as(AdvisorType::Enas, &capped(&config, &[], 1, n + 2)) {
            Ok(Decision::Propose(p)) => p,
            other => panic!("no first proposal: {other:?}"),
        };
        history.push(PastTrial {
            score: None,
            ..PastTrial::completed(first, 0.0)
        });
        for _ in 0..n {
            let p = match propose_as(AdvisorType::Random, &capped(&config, &history, 1, n + 2)) {
                Ok(Decision::Propose(p)) => p,
                other => panic!("no random proposal: {other:?}"),
            };
            history.push(PastTrial::completed(p, rng.gen()));
        }
        let t = Instant::now();
        let decision = propose_as(AdvisorType::Enas, &capped(&config, &history, 1, n + 2));
        let ms = t.elapsed().as_secs_f64() * 1e3;
        assert!(matches!(decision, Ok(Decision::Propose(_))));
        println!("| {n} | {ms:.0} |");
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.first().map(String::as_str) == Some("time") {
        time_proposals();
        return;
    }
    let arg = |i: usize, default: u64| {
        args.get(i)
            .map_or(default, |a| a.parse().expect("a number"))
    };
    let seeds = arg(0, 10);
    let trials = arg(1, 300) as usize;
    let first_seed = arg(2, 1);

    println!(
        "{POSITIONS} positions x {CHOICES} candidates, noise sd {NOISE}, {trials} trials, {seeds} seeds from {first_seed}"
    );
    println!("| seed | optimum | RANDOM best seen | RANDOM regret | ENAS best seen | ENAS regret | ENAS evaluated | ENAS s |");
    println!("|---|---|---|---|---|---|---|---|");
    let mut results = Vec::new();
    for seed in first_seed..first_seed + seeds {
        let random = run(AdvisorType::Random, seed, trials);
        let enas = run(AdvisorType::Enas, seed, trials);
        let optimum = Problem::new(seed).optimum();
        println!(
            "| {seed} | {optimum:.3} | {:.3} | {:.3} | {:.3} | {:.3} | {} | {:.1} |",
            random.best_seen, random.regret, enas.best_seen, enas.regret, enas.evaluated, enas.secs
        );
        results.push((random, enas));
    }
    let col = |f: &dyn Fn(&(Outcome, Outcome)) -> f64| median(results.iter().map(f).collect());
    let wins = results.iter().filter(|(r, e)| e.chosen > r.chosen).count();
    println!();
    println!(
        "| advisor | median best seen | median noise-free score of the best | median regret |"
    );
    println!("|---|---|---|---|");
    println!(
        "| RANDOM | {:.3} | {:.3} | {:.3} |",
        col(&|(r, _)| r.best_seen),
        col(&|(r, _)| r.chosen),
        col(&|(r, _)| r.regret)
    );
    println!(
        "| ENAS | {:.3} | {:.3} | {:.3} |",
        col(&|(_, e)| e.best_seen),
        col(&|(_, e)| e.chosen),
        col(&|(_, e)| e.regret)
    );
    println!(
        "ENAS's best architecture scores higher (noise-free) than RANDOM's on {wins} of {} seeds",
        results.len()
    );
}
