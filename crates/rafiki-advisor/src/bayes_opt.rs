//! Bayesian optimisation: picks the next point of the search space by expected improvement
//! under a Gaussian process fitted to the scores of the trials so far.
//!
//! Everything is recomputed from the trials on each call; nothing is kept between calls.
//! Trials that errored are "constant liars": the process is conditioned on them as if they had
//! scored as badly as the worst completed trial, so regions that crash are not revisited. So are
//! trials the job's pruner stopped: they were beaten on the way by trials that went on, so
//! "no better than the worst finished trial" is the best guess of their final score, and without
//! it a job that prunes most of its trials would learn from the few it finishes only.
//! Trials still running (on a model's other workers) are "believers": conditioned on the score
//! the process predicts there, capped at the best real score, so parallel workers are not sent
//! to the same place, nor out of the best basin.
//!
//! A run whose best score has stopped improving "escapes": its proposals leave the basins it
//! stalled in and search the rest of the space from the best point found there, so that one
//! good local optimum does not hold it for the rest of its budget.

use rafiki_types::knob::Knobs;
use rand::Rng;

use crate::gp::{fit_hyper, Gp, Hyper};
use crate::space::Space;

/// At most this many scored trials feed the process; beyond it the best half and the most
/// recent half are kept, so a long, unlimited job stays fast.
const MAX_OBSERVATIONS: usize = 200;
/// How many of the best candidates are refined by a local search.
const REFINE: usize = 5;
/// Exploration margin of expected improvement, in units of the scores' standard deviation.
const XI: f64 = 0.001;
/// A run has stalled when, over its last [`STALL_WINDOW`] scored trials, its best score rose by
/// at most this fraction of the scores' standard deviation.
const STALL_TOLERANCE: f64 = 1e-3;
/// How many scored trials a stall is judged over. Shorter windows cut Branin runs short of the
/// 1% band before they had converged (docs/benchmarks.md).
const STALL_WINDOW: usize = 20;
/// The radius of a basin that escape proposals leave, in fitted length scales.
const ESCAPE_RADIUS: f64 = 2.0;

/// What the advisor knows, already in cube coordinates, in trial order.
#[derive(Debug, Default)]
pub(crate) struct Observations {
    /// Scored points and their scores.
    pub(crate) scored: Vec<(Vec<f64>, f64)>,
    /// Points of trials that errored without a usable score.
    pub(crate) errored: Vec<Vec<f64>>,
    /// Points of trials the job's pruner stopped before their end.
    pub(crate) pruned: Vec<Vec<f64>>,
    /// Points of trials still running, on other workers of the model.
    pub(crate) running: Vec<Vec<f64>>,
    /// Tunable knob values of every trial, to avoid proposing a point twice.
    pub(crate) taken: Vec<Knobs>,
}

impl Observations {
    /// The points conditioned on as scoring the worst real score: errored and pruned ones.
    fn liars(&self) -> impl Iterator<Item = &Vec<f64>> {
        self.errored.iter().chain(&self.pruned)
    }
}

/// How many scored (or pruned) trials are drawn at random before the process is trusted.
///
/// Counted in knobs, not cube coordinates, so a categorical knob with many values does not
/// lengthen the random phase.
pub(crate) fn initial_points(space: &Space) -> usize {
    3.max(space.tunable_knobs() + 1)
}

/// The tunable knob values of the next point to try.
///
/// `design_rng` must be the same for every trial of the sub-job (seeded by the sub-job's seed
/// only): the first trials take the rows of one Latin hypercube in turn.
pub(crate) fn next_point(
    space: &Space,
    obs: &Observations,
    design_rng: &mut impl Rng,
    rng: &mut impl Rng,
) -> Knobs {
    if space.dim() == 0 {
        return space.decode(&[]);
    }
    let n_init = initial_points(space);
    let started = obs.taken.len();
    if started < n_init {
        let design = space.latin_hypercube(n_init, design_rng);
        let knobs = space.decode(&design[started]);
        if !obs.taken.contains(&knobs) {
            return knobs;
        }
    }
    // A pruned trial stands for a score here, but the process needs two real ones to scale.
    if obs.scored.len() < 2 || obs.scored.len() + obs.pruned.len() < n_init {
        return random_point(space, &obs.taken, rng);
    }
    match acquire(space, obs, rng) {
        Some(knobs) => knobs,
        None => random_point(space, &obs.taken, rng),
    }
}

/// A uniform point not yet taken (after a few tries, any uniform point: a small discrete
/// space may be exhausted).
pub(crate) fn random_point(space: &Space, taken: &[Knobs], rng: &mut impl Rng) -> Knobs {
    let mut knobs = space.decode(&space.sample_point(rng));
    for _ in 0..100 {
        if !taken.contains(&knobs) {
            break;
        }
        knobs = space.decode(&space.sample_point(rng));
    }
    knobs
}

/// The scored trials the process is conditioned on: all of them, or beyond
/// [`MAX_OBSERVATIONS`] the best half and the most recent others.
fn keep_for_model(scored: &[(Vec<f64>, f64)]) -> Vec<&(Vec<f64>, f64)> {
    let scores: Vec<f64> = scored.iter().map(|(_, y)| *y).collect();
    select(&scores, MAX_OBSERVATIONS, |others, count| {
        others[others.len() - count..].to_vec()
    })
    .into_iter()
    .map(|i| &scored[i])
    .collect()
}

/// How many observations fit the hyperparameters in a `d`-dimensional cube. The likelihood
/// and its gradient cost `O(n^3)` per step, so past this size the fit uses a subset; the
/// process is still conditioned on every observation kept. A length scale is pinned down by
/// a few dozen points per coordinate, so a subset loses little.
fn fit_size(d: usize) -> usize {
    (30 + 10 * d).min(120)
}

/// The indices (increasing) of at most `max` of `scores`: all of them if they fit, else the
/// best half (ties to the earlier) and `others` picks the rest from the remaining indices
/// (given in increasing order, with the count wanted).
fn select(
    scores: &[f64],
    max: usize,
    others: impl Fn(&[usize], usize) -> Vec<usize>,
) -> Vec<usize> {
    if scores.len() <= max {
        return (0..scores.len()).collect();
    }
    let half = max / 2;
    let mut by_score: Vec<usize> = (0..scores.len()).collect();
    by_score.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep = vec![false; scores.len()];
    by_score[..half].iter().for_each(|&i| keep[i] = true);
    let rest: Vec<usize> = (0..scores.len()).filter(|&i| !keep[i]).collect();
    others(&rest, max - half)
        .into_iter()
        .for_each(|i| keep[i] = true);
    (0..scores.len()).filter(|&i| keep[i]).collect()
}

/// The observations that fit the hyperparameters: all up to [`fit_size`], else the best half
/// and the others evenly spread over the trial order (so the early, space-filling trials are
/// represented as well as the later, concentrated ones).
fn fit_subset(x: &[f64], y: &[f64], d: usize) -> (Vec<f64>, Vec<f64>) {
    let picked = select(y, fit_size(d), |others, count| {
        (0..count)
            .map(|i| others[i * others.len() / count])
            .collect()
    });
    let xs = picked
        .iter()
        .flat_map(|&i| x[i * d..i * d + d].iter().copied())
        .collect();
    (xs, picked.iter().map(|&i| y[i]).collect())
}

/// A Gaussian process on normalised scores (higher is better) and the best of them.
struct Model {
    gp: Gp,
    hyper: Hyper,
    best: f64,
}

/// Normalises the scores of `scored`, fits the hyperparameters on them (or a subset), then
/// conditions the process on them, on `liars` (errored and pruned points) as constant liars
/// (scored as badly as the worst real score, so that a region that crashes or falls behind is
/// not revisited), and on `running`
/// points as "kriging believers" (scored what the process so far predicts there, but no better
/// than the best real score).
///
/// A running trial only needs its uncertainty removed, so that parallel workers go elsewhere;
/// lying that it scored the worst also dragged the mean down around it, and since running
/// trials are where the process was most hopeful, that pushed a model's other workers out of
/// its best basin (on Branin with 4 workers, the median regret after 30 trials was two orders
/// of magnitude above one worker's; docs/benchmarks.md, "Parallel CPU trials"). The cap keeps a
/// prediction above the best from leaving expected improvement next to the running point, which
/// would send the next worker just beside it.
fn fit_model(
    d: usize,
    scored: &[&(Vec<f64>, f64)],
    liars: &[&Vec<f64>],
    running: &[&Vec<f64>],
    rng: &mut impl Rng,
) -> Option<Model> {
    let raw: Vec<f64> = scored.iter().map(|(_, y)| *y).collect();
    let mean = raw.iter().sum::<f64>() / raw.len() as f64;
    let var = raw.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / raw.len() as f64;
    let std = if var.sqrt() > 1e-12 { var.sqrt() } else { 1.0 };
    let y: Vec<f64> = raw.iter().map(|v| (v - mean) / std).collect();
    let x: Vec<f64> = scored.iter().flat_map(|(p, _)| p.iter().copied()).collect();

    // Hyperparameters come from real scores only; the liars join afterwards.
    let (x_fit, y_fit) = fit_subset(&x, &y, d);
    let hyper = fit_hyper(&x_fit, &y_fit, d, rng);
    let worst = y.iter().copied().fold(f64::INFINITY, f64::min);
    let best = y.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let mut x_all = x;
    let mut y_all = y;
    for p in liars {
        x_all.extend_from_slice(p);
        y_all.push(worst);
    }
    if !running.is_empty() {
        let believed = Gp::new(&x_all, &y_all, d, &hyper)?;
        let mut scratch = Vec::new();
        for p in running {
            let (mean, _) = believed.mean_and_variance_bound(p, &mut scratch);
            x_all.extend_from_slice(p);
            y_all.push(mean.min(best));
        }
    }
    let gp = Gp::new(&x_all, &y_all, d, &hyper)?;
    Some(Model { gp, hyper, best })
}

/// The region around an incumbent that an escape proposal must leave: the points within
/// [`ESCAPE_RADIUS`] length scales of it, in the metric of the fitted kernel (so a coordinate
/// the scores hardly depend on stretches the region along it).
struct Basin {
    centre: Vec<f64>,
    inv_length: Vec<f64>,
}

impl Basin {
    /// The basin around `centre` under the kernel of `hyper`.
    fn new(centre: &[f64], hyper: &Hyper) -> Basin {
        Basin {
            centre: centre.to_vec(),
            inv_length: hyper.0[..centre.len()].iter().map(|l| (-l).exp()).collect(),
        }
    }

    fn contains(&self, p: &[f64]) -> bool {
        let r2: f64 = p
            .iter()
            .zip(&self.centre)
            .zip(&self.inv_length)
            .map(|((a, c), il)| ((a - c) * il).powi(2))
            .sum();
        r2 < ESCAPE_RADIUS * ESCAPE_RADIUS
    }
}

/// The basins a run has stalled in, or `None` if it is not stalled now. A prefix of the scored
/// trials (in trial order) is stalled when, over its last [`STALL_WINDOW`] trials, its best
/// score rose by at most [`STALL_TOLERANCE`] times the standard deviation of its scores; the
/// basins are the best points of the stalled prefixes (indices into `scored`, each once, in
/// the order they were found). Replaying every prefix makes them a function of the history
/// alone, like everything else here.
fn stalls(space: &Space, scored: &[(Vec<f64>, f64)]) -> Option<Vec<usize>> {
    // `prefix_best[m]`: the index of the best of the first `m + 1` scores (the earliest on ties).
    let mut prefix_best: Vec<usize> = Vec::with_capacity(scored.len());
    let mut basins: Vec<usize> = Vec::new();
    let mut stalled = false;
    // Running mean and sum of squared deviations (Welford), for the prefix's standard deviation.
    let (mut mean, mut m2) = (0.0, 0.0);
    for (m, (_, y)) in scored.iter().enumerate() {
        let len = m + 1;
        let delta = y - mean;
        mean += delta / len as f64;
        m2 += delta * (y - mean);
        let best = match prefix_best.last() {
            Some(&b) if scored[b].1 >= *y => b,
            _ => m,
        };
        prefix_best.push(best);
        stalled = len >= initial_points(space) + STALL_WINDOW && {
            let (now, before) = (
                scored[best].1,
                scored[prefix_best[len - 1 - STALL_WINDOW]].1,
            );
            now - before <= STALL_TOLERANCE * (m2 / len as f64).sqrt()
        };
        if stalled && !basins.contains(&best) {
            basins.push(best);
        }
    }
    stalled.then_some(basins)
}

fn acquire(space: &Space, obs: &Observations, rng: &mut impl Rng) -> Option<Knobs> {
    let d = space.dim();
    let kept = keep_for_model(&obs.scored);
    let liars: Vec<&Vec<f64>> = obs.liars().collect();
    let running: Vec<&Vec<f64>> = obs.running.iter().collect();
    let model = fit_model(d, &kept, &liars, &running, rng)?;
    // Every trial of a stalled run escapes: the basins it stalled in are cut out, and the
    // process is refitted on what lies outside them, so expected improvement works from the best
    // point elsewhere instead of from an optimum it cannot beat nearby. Once an escape beats the
    // incumbent the run is no longer stalled, and the plain search refines the new best.
    if let Some(stalled_at) = stalls(space, &obs.scored) {
        let basins: Vec<Basin> = stalled_at
            .iter()
            .map(|&i| Basin::new(&obs.scored[i].0, &model.hyper))
            .collect();
        if let Some(knobs) = escape(space, obs, &kept, &basins, rng) {
            return Some(knobs);
        }
    }
    maximise(space, &model, &kept, &obs.taken, &|_| true, rng)
}

/// An escape proposal: the point outside every basin that maximises expected improvement over
/// the best score outside them, under a process fitted to the points outside them. `None` if
/// too few points lie outside to fit one, or no candidate does.
fn escape(
    space: &Space,
    obs: &Observations,
    kept: &[&(Vec<f64>, f64)],
    basins: &[Basin],
    rng: &mut impl Rng,
) -> Option<Knobs> {
    let outside = |p: &[f64]| basins.iter().all(|b| !b.contains(p));
    let scored: Vec<&(Vec<f64>, f64)> = kept.iter().copied().filter(|(x, _)| outside(x)).collect();
    if scored.len() < initial_points(space) {
        return None;
    }
    let liars: Vec<&Vec<f64>> = obs.liars().filter(|p| outside(p)).collect();
    let running: Vec<&Vec<f64>> = obs.running.iter().filter(|p| outside(p)).collect();
    let model = fit_model(space.dim(), &scored, &liars, &running, rng)?;
    maximise(space, &model, &scored, &obs.taken, &outside, rng)
}

/// The candidate with the highest expected improvement among those `allowed`, whose knobs no
/// trial has taken (if every allowed candidate is taken, the best of them); `None` if no
/// candidate is allowed. `kept` are the scored points the model was fitted to: the best few
/// seed local candidates.
fn maximise(
    space: &Space,
    model: &Model,
    kept: &[&(Vec<f64>, f64)],
    taken: &[Knobs],
    allowed: &dyn Fn(&[f64]) -> bool,
    rng: &mut impl Rng,
) -> Option<Knobs> {
    let d = space.dim();
    let (gp, best) = (&model.gp, model.best);
    let mut k = Vec::new();
    // Log-EI at `p`, exact when it can exceed `floor`; otherwise an upper bound at most
    // `floor`, from the posterior mean and a variance bound, without the `O(n^2)` solve (EI
    // grows with the standard deviation).
    let mut score = |p: &[f64], floor: f64| {
        let (m, var_bound) = gp.mean_and_variance_bound(p, &mut k);
        let bound = log_expected_improvement(m, var_bound.sqrt(), best + XI);
        if bound <= floor {
            return bound;
        }
        log_expected_improvement(m, gp.variance(&mut k).sqrt(), best + XI)
    };
    let numeric = space.numeric_coords();
    let blocks = space.categorical_blocks();
    let perturb = |p: &[f64], scale: f64, rng: &mut dyn rand::RngCore| {
        let mut q = p.to_vec();
        for &i in &numeric {
            q[i] += scale * standard_normal(rng);
        }
        let flip = 1.0 / (blocks.len() as f64 + 1.0);
        for &(start, width) in &blocks {
            if rng.gen::<f64>() < flip {
                q[start..start + width].iter_mut().for_each(|v| *v = 0.0);
                q[start + rng.gen_range(0..width)] = 1.0;
            }
        }
        space.snap(&mut q);
        q
    };

    // Candidates: uniform over the cube, plus clouds around the best scored points.
    let mut candidates: Vec<Vec<f64>> = Vec::new();
    let n_uniform = (1000 + 100 * d).min(3000);
    for _ in 0..n_uniform {
        candidates.push(space.sample_point(rng));
    }
    let mut order: Vec<usize> = (0..kept.len()).collect();
    order.sort_by(|&a, &b| kept[b].1.total_cmp(&kept[a].1).then(a.cmp(&b)));
    for &i in order.iter().take(5) {
        for scale in [0.02, 0.1] {
            for _ in 0..50 {
                candidates.push(perturb(&kept[i].0, scale, rng));
            }
        }
    }
    candidates.retain(|c| allowed(c));
    if candidates.is_empty() {
        return None;
    }
    // Exact values for the candidates that can be among the best `REFINE`, in decreasing
    // order of their bounds; the others keep their bounds, which are lower (`false`: a bound).
    let mut bounded: Vec<(f64, Vec<f64>)> = candidates
        .into_iter()
        .map(|c| (score(&c, f64::INFINITY), c))
        .collect();
    bounded.sort_by(|a, b| b.0.total_cmp(&a.0));
    let mut top: Vec<f64> = Vec::new();
    let mut scored: Vec<(f64, bool, Vec<f64>)> = Vec::with_capacity(bounded.len());
    for (bound, c) in bounded {
        if top.len() == REFINE && bound <= top[REFINE - 1] {
            scored.push((bound, false, c));
            continue;
        }
        let v = score(&c, f64::NEG_INFINITY);
        top.push(v);
        top.sort_by(|a, b| b.total_cmp(a));
        top.truncate(REFINE);
        scored.push((v, true, c));
    }
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));

    // Local refinement of the best few: a shrinking random walk that keeps improvements.
    let mut refined = Vec::new();
    for (start_value, _, start) in scored.iter().take(REFINE) {
        let (mut value, mut point) = (*start_value, start.clone());
        let mut step = 0.05;
        for _ in 0..40 {
            let q = perturb(&point, step, rng);
            if !allowed(&q) {
                step = (step * 0.85).max(1e-4);
                continue;
            }
            let v = score(&q, value);
            if v > value {
                value = v;
                point = q;
            } else {
                step = (step * 0.85).max(1e-4);
            }
        }
        refined.push((value, true, point));
    }
    scored.extend(refined);
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));

    // The best candidate not taken yet, by exact value: a bound is replaced by the exact value
    // when it could still beat the best found, and no later entry can once its value (exact or
    // bound) is not above that.
    let first = space.decode(&scored.first()?.2);
    let mut best_free: Option<(f64, Knobs)> = None;
    for (value, exact, p) in &scored {
        if best_free.as_ref().is_some_and(|(b, _)| *value <= *b) {
            break;
        }
        let knobs = space.decode(p);
        if taken.contains(&knobs) {
            continue;
        }
        let v = if *exact {
            *value
        } else {
            score(p, f64::NEG_INFINITY)
        };
        if best_free.as_ref().is_none_or(|(b, _)| v > *b) {
            best_free = Some((v, knobs));
        }
    }
    Some(best_free.map_or(first, |(_, knobs)| knobs))
}

/// Log of expected improvement over `target` of a normal `N(mean, sd^2)`, computed so that it
/// stays finite and ordered far below the target (where plain EI underflows to zero).
pub(crate) fn log_expected_improvement(mean: f64, sd: f64, target: f64) -> f64 {
    let sd = sd.max(1e-9);
    let z = (mean - target) / sd;
    sd.ln() + log_h(z)
}

/// `ln(z * Phi(z) + phi(z))`.
fn log_h(z: f64) -> f64 {
    const LN_SQRT_2PI: f64 = 0.918_938_533_204_672_8;
    if z > -10.0 {
        let h = z * normal_cdf(z) + normal_pdf(z);
        h.max(1e-300).ln()
    } else {
        // Asymptotic series of the Mills ratio: h(z) ~ phi(z) / z^2 * (1 - 3/z^2 + 15/z^4 - ...),
        // accurate to about 1e-6 here, where the direct form would lose digits to cancellation.
        let w = 1.0 / (z * z);
        let series = 1.0 + w * (-3.0 + w * (15.0 + w * (-105.0 + w * 945.0)));
        -0.5 * z * z - LN_SQRT_2PI + w.ln() + series.ln()
    }
}

fn normal_pdf(z: f64) -> f64 {
    (-0.5 * z * z).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

fn normal_cdf(z: f64) -> f64 {
    0.5 * erfc(-z / std::f64::consts::SQRT_2)
}

/// Complementary error function, Chebyshev-fitted (fractional error below 1.2e-7 everywhere).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98
                                + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// A standard normal draw (Box-Muller), from any seeded generator.
fn standard_normal(rng: &mut dyn rand::RngCore) -> f64 {
    let u1: f64 = rng.gen::<f64>().max(1e-300);
    let u2: f64 = rng.gen::<f64>();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn select_keeps_the_best_half_and_lets_the_caller_pick_the_rest() {
        let scores = [0.5, 3.0, 1.0, 2.0, 0.0, 4.0, 0.2, 0.1];
        let last = |others: &[usize], count: usize| others[others.len() - count..].to_vec();
        assert_eq!(select(&scores, 8, last), (0..8).collect::<Vec<_>>());
        // Best two: 5 and 1; the two most recent others: 6 and 7.
        assert_eq!(select(&scores, 4, last), vec![1, 5, 6, 7]);
        // 100 points in 1-D, the earlier the better: the best 20, then every fourth other.
        let x: Vec<f64> = (0..100).map(f64::from).collect();
        let y: Vec<f64> = x.iter().map(|v| -v).collect();
        let (xs, ys) = fit_subset(&x, &y, 1);
        assert_eq!(fit_size(1), 40);
        let want: Vec<f64> = (0..20).chain((20..100).step_by(4)).map(f64::from).collect();
        assert_eq!(xs, want);
        assert_eq!(ys, want.iter().map(|v| -v).collect::<Vec<_>>());
    }

    #[test]
    fn hyperparameters_fitted_on_the_subset_predict_as_well() {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(9);
        let d = 2;
        let f = |p: &[f64]| (5.0 * p[0]).sin() * (3.0 * p[1]).cos() + p[0] * p[1];
        // Half uniform, half around one point, as a history of Bayesian optimisation is.
        let n = 140;
        let x: Vec<f64> = (0..n * d)
            .map(|i| {
                let u = rng.gen::<f64>();
                if i < n * d / 2 {
                    u
                } else {
                    (0.3 + 0.2 * (u - 0.5)).clamp(0.0, 1.0)
                }
            })
            .collect();
        let y: Vec<f64> = x.chunks(d).map(f).collect();
        let test: Vec<Vec<f64>> = (0..300).map(|_| vec![rng.gen(), rng.gen()]).collect();
        let rmse = |h: &crate::gp::Hyper| {
            let gp = Gp::new(&x, &y, d, h).unwrap();
            let mut k = Vec::new();
            let se: f64 = test
                .iter()
                .map(|p| (gp.mean_and_variance_bound(p, &mut k).0 - f(p)).powi(2))
                .sum();
            (se / test.len() as f64).sqrt()
        };
        let full = rmse(&fit_hyper(&x, &y, d, &mut rng));
        let (xs, ys) = fit_subset(&x, &y, d);
        assert!(xs.len() < x.len());
        let subset = rmse(&fit_hyper(&xs, &ys, d, &mut rng));
        assert!(subset < 1.5 * full + 1e-3, "subset {subset} vs full {full}");
    }

    fn two_floats() -> Space {
        let config = serde_json::from_str(
            r#"{"a": {"type": "FLOAT", "value_min": 0, "value_max": 1},
                "b": {"type": "FLOAT", "value_min": 0, "value_max": 1}}"#,
        )
        .unwrap();
        Space::new(&config)
    }

    /// Scored points at `(i / n, 0.5)` with the given scores, in that order.
    fn line(scores: &[f64]) -> Vec<(Vec<f64>, f64)> {
        let n = scores.len() as f64;
        scores
            .iter()
            .enumerate()
            .map(|(i, &y)| (vec![i as f64 / n, 0.5], y))
            .collect()
    }

    #[test]
    fn stalls_replays_the_history_and_names_each_basin_once() {
        let space = two_floats();
        assert_eq!(initial_points(&space), 3);
        // Three initial points, then ten improvements: never stalled.
        let mut scores: Vec<f64> = (0..13).map(f64::from).collect();
        assert_eq!(stalls(&space, &line(&scores)), None);
        // Twenty trials below the best (index 12): stalled there, once the window is full.
        scores.extend([5.0; STALL_WINDOW - 1]);
        assert_eq!(stalls(&space, &line(&scores)), None);
        scores.push(5.0);
        assert_eq!(stalls(&space, &line(&scores)), Some(vec![12]));
        // Gains far below the scores' spread (about 4) do not end a stall, and move its basin.
        scores.push(12.0 + 1e-6);
        let last = scores.len() - 1;
        assert_eq!(stalls(&space, &line(&scores)), Some(vec![12, last]));
        // A real gain ends it; twenty more flat trials start another, with both basins kept.
        scores.push(20.0);
        let better = scores.len() - 1;
        assert_eq!(stalls(&space, &line(&scores)), None);
        scores.extend([5.0; STALL_WINDOW]);
        assert_eq!(stalls(&space, &line(&scores)), Some(vec![12, last, better]));
    }

    /// A history stuck at a local optimum at `(0.8, 0.8)`: a spread design, then trials
    /// crowding the optimum without beating the best one. With `best_last` the best trial is
    /// moved to the end, so the same points make a run that has just improved.
    fn stuck_history(best_last: bool) -> Observations {
        use rand::SeedableRng;
        let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(4);
        let f = |p: &[f64]| {
            let local = (-((p[0] - 0.8).powi(2) + (p[1] - 0.8).powi(2)) / 0.01).exp();
            let global = 1.5 * (-((p[0] - 0.2).powi(2) + (p[1] - 0.25).powi(2)) / 0.002).exp();
            local + global
        };
        // A 5 x 5 grid, then the best trial near the optimum, then thirty worse ones around it.
        let mut points: Vec<Vec<f64>> = (0..25)
            .map(|i| vec![f64::from(i % 5) / 4.0, f64::from(i / 5) / 4.0])
            .collect();
        points.push(vec![0.79, 0.81]);
        for _ in 0..30 {
            let angle = std::f64::consts::TAU * rng.gen::<f64>();
            let radius = 0.02 + 0.03 * rng.gen::<f64>();
            points.push(vec![0.8 + radius * angle.cos(), 0.8 + radius * angle.sin()]);
        }
        if best_last {
            let best = points.remove(25);
            points.push(best);
        }
        let space = two_floats();
        let mut obs = Observations::default();
        for p in points {
            obs.taken.push(space.decode(&p));
            let y = f(&p);
            obs.scored.push((p, y));
        }
        obs
    }

    #[test]
    fn a_stalled_run_proposes_outside_the_basin_it_stalled_in() {
        use rand::SeedableRng;
        let space = two_floats();
        let propose = |obs: &Observations| {
            let mut design = rand_chacha::ChaCha8Rng::seed_from_u64(1);
            let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(2);
            // The same generator state `acquire` starts from: its first draws fit this model.
            let kept = keep_for_model(&obs.scored);
            let model = fit_model(space.dim(), &kept, &[], &[], &mut rng.clone()).unwrap();
            let knobs = next_point(&space, obs, &mut design, &mut rng);
            (space.encode(&knobs).unwrap(), model)
        };

        let stuck = stuck_history(false);
        let basins = stalls(&space, &stuck.scored).expect("stalled");
        assert_eq!(basins, vec![25]);
        let (p, model) = propose(&stuck);
        let basin = Basin::new(&stuck.scored[25].0, &model.hyper);
        assert!(!basin.contains(&p), "{p:?} is in the basin");
        // Not just the basin's rim: the process fitted to the points outside it sends the
        // search to the unexplored part of the square.
        let dist = ((p[0] - 0.8).powi(2) + (p[1] - 0.8).powi(2)).sqrt();
        assert!(dist > 0.15, "{p:?} is {dist} from the stalled optimum");

        // The same points, the best last: not stalled, and the search stays at the optimum.
        let improving = stuck_history(true);
        assert_eq!(stalls(&space, &improving.scored), None);
        let (q, model) = propose(&improving);
        let best = &improving.scored.last().unwrap().0;
        assert!(
            Basin::new(best, &model.hyper).contains(&q),
            "{q:?} left the basin"
        );

        // Deterministic: the same history and seeds give the same point.
        assert_eq!(propose(&stuck).0, p);
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        assert!((normal_cdf(0.0) - 0.5).abs() < 1e-7);
        assert!((normal_cdf(1.96) - 0.975_002_1).abs() < 1e-6);
        assert!((normal_cdf(-1.0) - 0.158_655_25).abs() < 1e-6);
    }

    #[test]
    fn log_ei_is_monotone_and_continuous_across_the_asymptotic_switch() {
        let mut last = f64::NEG_INFINITY;
        let mut z = -14.0;
        while z < 4.0 {
            let v = log_h(z);
            assert!(v.is_finite());
            assert!(v > last, "not increasing at z={z}");
            last = v;
            z += 0.01;
        }
        assert!((log_h(-9.999_999) - log_h(-10.000_001)).abs() < 1e-4);
        // ln EI of N(0, 1) over 0 is ln(phi(0)).
        assert!((log_h(0.0) - (-0.918_938_533)).abs() < 1e-6);
        // Far below the target EI is tiny but still ordered, never -inf.
        assert!(
            log_expected_improvement(-40.0, 1.0, 0.0) < log_expected_improvement(-30.0, 1.0, 0.0)
        );
    }
}
