//! Gaussian-process regression on the unit cube: a Matérn 5/2 kernel with one length scale per
//! coordinate (ARD), a signal variance and a noise variance, fitted by maximising the log
//! marginal likelihood (plus weak log-normal priors that keep small-sample fits sane).
//!
//! Sizes here are small (at most a few hundred observations, tens of coordinates), so the
//! linear algebra is a plain dense Cholesky on row-major `Vec<f64>`s rather than a dependency.
//! Callers normalise the outputs (zero mean, unit variance) before fitting.

use rand::Rng;

const SQRT5: f64 = 2.236_067_977_499_79;

/// Box bounds of the hyperparameters, all in natural-log space.
const LOG_LS_BOUNDS: (f64, f64) = (-5.3, 0.7); // length scale 0.005 .. 2
const LOG_SF2_BOUNDS: (f64, f64) = (-4.6, 4.6); // signal variance 0.01 .. 100
const LOG_SN2_BOUNDS: (f64, f64) = (-20.7, 0.0); // noise variance 1e-9 .. 1

/// Weak log-normal priors (mean, standard deviation of the log): length scales around half the
/// cube, signal variance around the (normalised) data variance, noise small but free.
const LOG_LS_PRIOR: (f64, f64) = (-0.7, 1.2);
const LOG_SF2_PRIOR: (f64, f64) = (0.0, 1.5);
const LOG_SN2_PRIOR: (f64, f64) = (-6.9, 3.0);

/// Hyperparameter vector layout: `[log length scale per coordinate.., log signal variance,
/// log noise variance]`.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Hyper(pub(crate) Vec<f64>);

impl Hyper {
    fn dim(&self) -> usize {
        self.0.len() - 2
    }
    fn log_sf2(&self) -> f64 {
        self.0[self.dim()]
    }
    fn log_sn2(&self) -> f64 {
        self.0[self.dim() + 1]
    }
    fn bounds(i: usize, d: usize) -> (f64, f64) {
        match i {
            _ if i < d => LOG_LS_BOUNDS,
            _ if i == d => LOG_SF2_BOUNDS,
            _ => LOG_SN2_BOUNDS,
        }
    }
    fn prior(i: usize, d: usize) -> (f64, f64) {
        match i {
            _ if i < d => LOG_LS_PRIOR,
            _ if i == d => LOG_SF2_PRIOR,
            _ => LOG_SN2_PRIOR,
        }
    }
    fn clamp(&mut self) {
        let d = self.dim();
        for (i, v) in self.0.iter_mut().enumerate() {
            let (lo, hi) = Self::bounds(i, d);
            *v = v.clamp(lo, hi);
        }
    }
    fn log_prior_and_grad(&self) -> (f64, Vec<f64>) {
        let d = self.dim();
        let mut lp = 0.0;
        let grad = self
            .0
            .iter()
            .enumerate()
            .map(|(i, v)| {
                let (m, s) = Self::prior(i, d);
                let z = (v - m) / s;
                lp -= 0.5 * z * z;
                -z / s
            })
            .collect();
        (lp, grad)
    }
}

/// Matérn 5/2 correlation at scaled distance `r` and the factor `f` such that
/// `dk/dlog(l_j) = sf2 * f * (dx_j / l_j)^2`.
#[inline]
fn matern52(r2: f64) -> (f64, f64) {
    let r = r2.sqrt();
    let e = (-SQRT5 * r).exp();
    let k = (1.0 + SQRT5 * r + 5.0 / 3.0 * r2) * e;
    let f = 5.0 / 3.0 * (1.0 + SQRT5 * r) * e;
    (k, f)
}

/// Dot product with four independent accumulators, so that the compiler can vectorise it
/// (a plain floating-point `sum` must add in order and cannot be).
#[inline]
fn dot(a: &[f64], b: &[f64]) -> f64 {
    let n = a.len().min(b.len());
    let (a, b) = (&a[..n], &b[..n]);
    let mut acc = [0.0; 4];
    let (ca, cb) = (a.chunks_exact(4), b.chunks_exact(4));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (p, q) in ca.zip(cb) {
        for k in 0..4 {
            acc[k] += p[k] * q[k];
        }
    }
    let tail: f64 = ra.iter().zip(rb).map(|(p, q)| p * q).sum();
    (acc[0] + acc[1]) + (acc[2] + acc[3]) + tail
}

/// In-place Cholesky of a symmetric positive-definite row-major `n x n` matrix; the lower
/// triangle becomes `L` (the upper triangle is left as it was). `false` if not positive definite.
fn cholesky(a: &mut [f64], n: usize) -> bool {
    // Row by row (Cholesky-Banachiewicz): both rows read are contiguous.
    for i in 0..n {
        let (done, rest) = a.split_at_mut(i * n);
        let row_i = &mut rest[..n];
        for j in 0..i {
            let row_j = &done[j * n..j * n + j + 1];
            let s = dot(&row_i[..j], &row_j[..j]);
            row_i[j] = (row_i[j] - s) / row_j[j];
        }
        let s = row_i[i] - dot(&row_i[..i], &row_i[..i]);
        if s <= 0.0 || !s.is_finite() {
            return false;
        }
        row_i[i] = s.sqrt();
    }
    true
}

/// Solves `L x = b` in place (forward substitution).
fn solve_lower(l: &[f64], n: usize, b: &mut [f64]) {
    for i in 0..n {
        let s = dot(&l[i * n..i * n + i], &b[..i]);
        b[i] = (b[i] - s) / l[i * n + i];
    }
}

/// Solves `L^T x = b` in place (back substitution), reading `L` by rows.
fn solve_upper_t(l: &[f64], n: usize, b: &mut [f64]) {
    for i in (0..n).rev() {
        b[i] /= l[i * n + i];
        let xi = b[i];
        for (bk, lik) in b[..i].iter_mut().zip(&l[i * n..i * n + i]) {
            *bk -= lik * xi;
        }
    }
}

/// `K^-1` from its Cholesky factor, full symmetric row-major.
fn inverse_from_cholesky(l: &[f64], n: usize) -> Vec<f64> {
    // Invert L column by column (L^-1 is lower triangular), storing column j of L^-1 as row j
    // of `m`, so that every inner product below reads two contiguous rows ...
    let mut m = vec![0.0; n * n];
    for j in 0..n {
        let row = &mut m[j * n..j * n + n];
        row[j] = 1.0 / l[j * n + j];
        for i in j + 1..n {
            let s = dot(&l[i * n + j..i * n + i], &row[j..i]);
            row[i] = -s / l[i * n + i];
        }
    }
    // ... then K^-1 = L^-T L^-1: entry (a, b) is the product of rows a and b of `m` from
    // max(a, b) on.
    let mut inv = vec![0.0; n * n];
    for a in 0..n {
        for b in a..n {
            let s = dot(&m[a * n + b..a * n + n], &m[b * n + b..b * n + n]);
            inv[a * n + b] = s;
            inv[b * n + a] = s;
        }
    }
    inv
}

/// Squared coordinate differences of every pair, per coordinate: `sq[j][a * n + b]`. They do
/// not depend on the hyperparameters, so a fit computes them once.
fn pairwise_sq(x: &[f64], n: usize, d: usize) -> Vec<Vec<f64>> {
    let mut sq = vec![vec![0.0; n * n]; d];
    for (j, sqj) in sq.iter_mut().enumerate() {
        for a in 0..n {
            for b in a + 1..n {
                let diff = x[a * d + j] - x[b * d + j];
                sqj[a * n + b] = diff * diff;
                sqj[b * n + a] = diff * diff;
            }
        }
    }
    sq
}

/// Noise-free kernel matrix and, optionally, the length-scale derivative factors.
fn kernel_matrix(
    sq: &[Vec<f64>],
    n: usize,
    hyper: &Hyper,
    with_factor: bool,
) -> (Vec<f64>, Vec<f64>) {
    let d = hyper.dim();
    let sf2 = hyper.log_sf2().exp();
    let inv_l2: Vec<f64> = hyper.0[..d].iter().map(|l| (-2.0 * l).exp()).collect();
    let mut kf = vec![0.0; n * n];
    let mut fac = if with_factor {
        vec![0.0; n * n]
    } else {
        Vec::new()
    };
    for a in 0..n {
        kf[a * n + a] = sf2;
        for b in a + 1..n {
            let idx = a * n + b;
            let r2: f64 = (0..d).map(|j| sq[j][idx] * inv_l2[j]).sum();
            let (k, f) = matern52(r2);
            kf[idx] = sf2 * k;
            kf[b * n + a] = sf2 * k;
            if with_factor {
                fac[idx] = sf2 * f;
                fac[b * n + a] = sf2 * f;
            }
        }
    }
    (kf, fac)
}

/// Log marginal likelihood plus log prior, and its gradient when asked.
fn objective(
    sq: &[Vec<f64>],
    y: &[f64],
    hyper: &Hyper,
    with_grad: bool,
) -> Option<(f64, Vec<f64>)> {
    let n = y.len();
    let d = hyper.dim();
    let sn2 = hyper.log_sn2().exp();
    let (kf, fac) = kernel_matrix(sq, n, hyper, with_grad);
    let mut l = kf.clone();
    for i in 0..n {
        l[i * n + i] += sn2 + 1e-9;
    }
    if !cholesky(&mut l, n) {
        return None;
    }
    let mut alpha = y.to_vec();
    solve_lower(&l, n, &mut alpha);
    let data_fit: f64 = alpha.iter().map(|v| v * v).sum();
    solve_upper_t(&l, n, &mut alpha);
    let log_det: f64 = (0..n).map(|i| l[i * n + i].ln()).sum();
    let (lp, lp_grad) = hyper.log_prior_and_grad();
    let value = -0.5 * data_fit - log_det - 0.5 * n as f64 * (2.0 * std::f64::consts::PI).ln() + lp;
    if !value.is_finite() {
        return None;
    }
    if !with_grad {
        return Some((value, Vec::new()));
    }
    // d LML / d theta = 1/2 tr((alpha alpha^T - K^-1) dK/dtheta).
    let kinv = inverse_from_cholesky(&l, n);
    let inv_l2: Vec<f64> = hyper.0[..d].iter().map(|v| (-2.0 * v).exp()).collect();
    let mut grad = lp_grad;
    let mut g_ls = vec![0.0; d];
    let mut g_sf2 = 0.0;
    let mut g_sn2 = 0.0;
    for a in 0..n {
        let waa = alpha[a] * alpha[a] - kinv[a * n + a];
        g_sf2 += 0.5 * waa * kf[a * n + a];
        g_sn2 += 0.5 * waa * sn2;
        for b in a + 1..n {
            let idx = a * n + b;
            // Both (a, b) and (b, a): the factor 1/2 cancels.
            let w = alpha[a] * alpha[b] - kinv[idx];
            g_sf2 += w * kf[idx];
            let wf = w * fac[idx];
            for (j, g) in g_ls.iter_mut().enumerate() {
                *g += wf * sq[j][idx] * inv_l2[j];
            }
        }
    }
    for j in 0..d {
        grad[j] += g_ls[j];
    }
    grad[d] += g_sf2;
    grad[d + 1] += g_sn2;
    Some((value, grad))
}

/// Fits the hyperparameters to `(x, y)` (`x` row-major `n x d`, `y` normalised): screens a few
/// fixed and random starting points by the objective, then runs projected Adam in log space
/// from the best two, keeping the best value seen.
pub(crate) fn fit_hyper(x: &[f64], y: &[f64], d: usize, rng: &mut impl Rng) -> Hyper {
    let n = y.len();
    let sq = pairwise_sq(x, n, d);
    let mut starts: Vec<Hyper> = Vec::new();
    for ls in [0.2f64, 0.5, 1.5] {
        let mut h = vec![ls.ln(); d];
        h.extend([0.0, (1e-3f64).ln()]);
        starts.push(Hyper(h));
    }
    for _ in 0..12 {
        let mut h: Vec<f64> = (0..d)
            .map(|_| rng.gen_range((0.05f64).ln()..(2.0f64).ln()))
            .collect();
        h.push(rng.gen_range((0.3f64).ln()..(3.0f64).ln()));
        h.push(rng.gen_range((1e-5f64).ln()..(0.1f64).ln()));
        starts.push(Hyper(h));
    }
    let mut scored: Vec<(f64, Hyper)> = starts
        .into_iter()
        .filter_map(|h| objective(&sq, y, &h, false).map(|(v, _)| (v, h)))
        .collect();
    scored.sort_by(|a, b| b.0.total_cmp(&a.0));
    let fallback = {
        let mut h = vec![(0.5f64).ln(); d];
        h.extend([0.0, (1e-2f64).ln()]);
        Hyper(h)
    };
    let Some((mut best_value, mut best)) = scored.first().cloned() else {
        return fallback;
    };
    let iterations = if n > 120 { 25 } else { 40 };
    for (_, start) in scored.into_iter().take(2) {
        let (value, hyper) = adam(&sq, y, start, iterations);
        if value > best_value {
            best_value = value;
            best = hyper;
        }
    }
    best
}

fn adam(sq: &[Vec<f64>], y: &[f64], start: Hyper, iterations: usize) -> (f64, Hyper) {
    const LR: f64 = 0.1;
    const B1: f64 = 0.9;
    const B2: f64 = 0.999;
    let p = start.0.len();
    let mut h = start;
    let mut m = vec![0.0; p];
    let mut v = vec![0.0; p];
    let mut best = (f64::NEG_INFINITY, h.clone());
    for t in 1..=iterations {
        let Some((value, grad)) = objective(sq, y, &h, true) else {
            break;
        };
        if value > best.0 {
            best = (value, h.clone());
        }
        let t = t as i32;
        for i in 0..p {
            m[i] = B1 * m[i] + (1.0 - B1) * grad[i];
            v[i] = B2 * v[i] + (1.0 - B2) * grad[i] * grad[i];
            let mh = m[i] / (1.0 - B1.powi(t));
            let vh = v[i] / (1.0 - B2.powi(t));
            // Ascent: we maximise the objective.
            h.0[i] += LR * mh / (vh.sqrt() + 1e-8);
        }
        h.clamp();
    }
    if let Some((value, _)) = objective(sq, y, &h, false) {
        if value > best.0 {
            best = (value, h);
        }
    }
    best
}

/// A Gaussian process conditioned on data with fixed hyperparameters.
#[derive(Debug, Clone)]
pub(crate) struct Gp {
    x: Vec<f64>,
    n: usize,
    d: usize,
    inv_l2: Vec<f64>,
    sf2: f64,
    l: Vec<f64>,
    alpha: Vec<f64>,
    /// A diagonal entry of the factored matrix: signal plus noise plus jitter variance.
    diag: f64,
}

impl Gp {
    /// Conditions on `(x, y)`; adds jitter if the kernel matrix is numerically singular.
    pub(crate) fn new(x: &[f64], y: &[f64], d: usize, hyper: &Hyper) -> Option<Gp> {
        let n = y.len();
        let sq = pairwise_sq(x, n, d);
        let (kf, _) = kernel_matrix(&sq, n, hyper, false);
        let sn2 = hyper.log_sn2().exp();
        let mut jitter = 1e-9;
        for _ in 0..6 {
            let mut l = kf.clone();
            for i in 0..n {
                l[i * n + i] += sn2 + jitter;
            }
            if cholesky(&mut l, n) {
                let mut alpha = y.to_vec();
                solve_lower(&l, n, &mut alpha);
                solve_upper_t(&l, n, &mut alpha);
                return Some(Gp {
                    x: x.to_vec(),
                    n,
                    d,
                    inv_l2: hyper.0[..d].iter().map(|v| (-2.0 * v).exp()).collect(),
                    sf2: hyper.log_sf2().exp(),
                    l,
                    alpha,
                    diag: hyper.log_sf2().exp() + sn2 + jitter,
                });
            }
            jitter *= 100.0;
        }
        None
    }

    /// Posterior mean and variance of the latent function at `x`.
    #[cfg(test)]
    pub(crate) fn predict(&self, x: &[f64], scratch: &mut Vec<f64>) -> (f64, f64) {
        let (mean, _) = self.mean_and_variance_bound(x, scratch);
        (mean, self.variance(scratch))
    }

    /// Posterior mean at `x` and an upper bound on the posterior variance, in `O(n d)`: the
    /// variance given only the two observations that covary most with `x` (conditioning on
    /// more data never increases the variance). Leaves the covariances with the data in `k`
    /// for [`Gp::variance`].
    pub(crate) fn mean_and_variance_bound(&self, x: &[f64], k: &mut Vec<f64>) -> (f64, f64) {
        k.clear();
        k.extend((0..self.n).map(|a| self.covariance(&self.x[a * self.d..(a + 1) * self.d], x)));
        let mean = dot(k, &self.alpha);
        // The two largest covariances (all are positive).
        let (mut i1, mut i2) = (0, usize::MAX);
        for (a, &v) in k.iter().enumerate().skip(1) {
            if v > k[i1] {
                (i1, i2) = (a, i1);
            } else if i2 == usize::MAX || v > k[i2] {
                i2 = a;
            }
        }
        let (k1, diag) = (k[i1], self.diag);
        let mut bound = self.sf2 - k1 * k1 / diag;
        if i2 != usize::MAX {
            // Given both: k^T A^-1 k with A = [[diag, c], [c, diag]].
            let (k2, d) = (k[i2], self.d);
            let c = self.covariance(&self.x[i1 * d..(i1 + 1) * d], &self.x[i2 * d..(i2 + 1) * d]);
            let det = diag * diag - c * c;
            // Nearly coincident points: the 2 x 2 solve would be ill-conditioned.
            if det > 1e-6 * diag * diag {
                let two = self.sf2 - (diag * (k1 * k1 + k2 * k2) - 2.0 * c * k1 * k2) / det;
                bound = bound.min(two);
            }
        }
        (mean, bound.max(1e-12))
    }

    /// The prior covariance of the latent function at `p` and `q`.
    #[inline]
    fn covariance(&self, p: &[f64], q: &[f64]) -> f64 {
        let r2: f64 = p
            .iter()
            .zip(q)
            .zip(&self.inv_l2)
            .map(|((a, b), il)| (a - b) * (a - b) * il)
            .sum();
        self.sf2 * matern52(r2).0
    }

    /// The exact posterior variance, in `O(n^2)`, from the covariances `k` that
    /// [`Gp::mean_and_variance_bound`] left (they are overwritten).
    pub(crate) fn variance(&self, k: &mut [f64]) -> f64 {
        solve_lower(&self.l, self.n, k);
        let explained = dot(k, k);
        (self.sf2 - explained).max(1e-12)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    /// `n` uniform points of the `d`-cube, `f` at them, and the generator that drew them.
    fn random_data(
        seed: u64,
        n: usize,
        d: usize,
        f: impl Fn(&[f64]) -> f64,
    ) -> (ChaCha8Rng, Vec<f64>, Vec<f64>) {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        let x: Vec<f64> = (0..n * d).map(|_| rng.gen::<f64>()).collect();
        let y = x.chunks(d).map(f).collect();
        (rng, x, y)
    }

    #[test]
    fn cholesky_solves_a_small_system() {
        let mut a = vec![4.0, 2.0, 0.4, 2.0, 5.0, 1.0, 0.4, 1.0, 3.0];
        let orig = a.clone();
        assert!(cholesky(&mut a, 3));
        let mut x = vec![1.0, 2.0, 3.0];
        solve_lower(&a, 3, &mut x);
        solve_upper_t(&a, 3, &mut x);
        for i in 0..3 {
            let bi: f64 = (0..3).map(|k| orig[i * 3 + k] * x[k]).sum();
            assert!((bi - (i + 1) as f64).abs() < 1e-12);
        }
        let inv = inverse_from_cholesky(&a, 3);
        for i in 0..3 {
            for j in 0..3 {
                let e: f64 = (0..3).map(|k| orig[i * 3 + k] * inv[k * 3 + j]).sum();
                assert!((e - f64::from(u8::from(i == j))).abs() < 1e-12);
            }
        }
        let mut not_pd = vec![1.0, 2.0, 2.0, 1.0];
        assert!(!cholesky(&mut not_pd, 2));
    }

    #[test]
    fn inverse_of_a_larger_matrix_is_the_inverse() {
        // Larger than the dot product's blocks of four, with a remainder, so both paths run.
        let mut rng = ChaCha8Rng::seed_from_u64(11);
        let n = 23;
        let b: Vec<f64> = (0..n * n).map(|_| rng.gen::<f64>() - 0.5).collect();
        let mut a: Vec<f64> = (0..n * n)
            .map(|idx| {
                let (i, j) = (idx / n, idx % n);
                (0..n).map(|k| b[i * n + k] * b[j * n + k]).sum::<f64>()
                    + f64::from(u8::from(i == j))
            })
            .collect();
        let orig = a.clone();
        assert!(cholesky(&mut a, n));
        let inv = inverse_from_cholesky(&a, n);
        let rhs: Vec<f64> = (0..n).map(|i| i as f64 - 7.0).collect();
        let mut x = rhs.clone();
        solve_lower(&a, n, &mut x);
        solve_upper_t(&a, n, &mut x);
        for i in 0..n {
            let bi: f64 = (0..n).map(|k| orig[i * n + k] * x[k]).sum();
            assert!((bi - rhs[i]).abs() < 1e-10, "row {i}: {bi} vs {}", rhs[i]);
            for j in 0..n {
                let e: f64 = (0..n).map(|k| orig[i * n + k] * inv[k * n + j]).sum();
                assert!((e - f64::from(u8::from(i == j))).abs() < 1e-10);
            }
        }
    }

    #[test]
    fn variance_bound_is_above_the_variance_and_tight_at_the_data() {
        let d = 2;
        let (mut rng, x, y) = random_data(5, 40, d, |p| (4.0 * p[0]).sin() - p[1]);
        for h in [vec![-1.5, -1.0, 0.0, -9.0], vec![-3.0, -3.0, 0.5, -2.0]] {
            let gp = Gp::new(&x, &y, d, &Hyper(h)).unwrap();
            let mut k = Vec::new();
            let mut probes: Vec<Vec<f64>> = (0..200).map(|_| vec![rng.gen(), rng.gen()]).collect();
            probes.push(x[..d].to_vec());
            for p in &probes {
                let (mean, bound) = gp.mean_and_variance_bound(p, &mut k);
                let (m, v) = gp.predict(p, &mut Vec::new());
                assert_eq!(mean, m);
                assert!(
                    bound >= v * (1.0 - 1e-9),
                    "bound {bound} below variance {v}"
                );
                assert!(bound <= gp.sf2 + 1e-12);
            }
            // At an observed point the bound is at most the variance given that point alone.
            let (_, at_data) = gp.mean_and_variance_bound(&x[..d], &mut k);
            assert!(at_data <= gp.sf2 * (1.0 - gp.sf2 / gp.diag) + 1e-12);
        }
    }

    #[test]
    fn analytic_gradient_matches_finite_differences() {
        let (n, d) = (12, 3);
        let (_, x, y) = random_data(7, n, d, |p| (3.0 * p[0]).sin() + p[1] * p[2]);
        let sq = pairwise_sq(&x, n, d);
        let h = Hyper(vec![-0.5, 0.1, -1.0, 0.3, -4.0]);
        let (_, grad) = objective(&sq, &y, &h, true).unwrap();
        for (i, analytic) in grad.iter().enumerate() {
            let eps = 1e-5;
            let mut up = h.clone();
            up.0[i] += eps;
            let mut down = h.clone();
            down.0[i] -= eps;
            let fd = (objective(&sq, &y, &up, false).unwrap().0
                - objective(&sq, &y, &down, false).unwrap().0)
                / (2.0 * eps);
            assert!(
                (fd - analytic).abs() < 1e-4 * (1.0 + fd.abs()),
                "coordinate {i}: analytic {analytic} vs numeric {fd}"
            );
        }
    }

    #[test]
    fn fitted_process_interpolates_a_smooth_function() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        let d = 1;
        let x: Vec<f64> = (0..15).map(|i| i as f64 / 14.0).collect();
        let y: Vec<f64> = x.iter().map(|v| (6.0 * v).sin()).collect();
        let h = fit_hyper(&x, &y, d, &mut rng);
        let gp = Gp::new(&x, &y, d, &h).unwrap();
        let mut scratch = Vec::new();
        for t in [0.13, 0.47, 0.81] {
            let (m, v) = gp.predict(&[t], &mut scratch);
            assert!((m - (6.0 * t).sin()).abs() < 0.05, "at {t}: {m}");
            assert!(v < 0.05);
        }
        // Far from the data the variance is larger than next to it.
        let (_, v_near) = gp.predict(&[0.5], &mut scratch);
        let gp_sparse = Gp::new(&x[..3], &y[..3], d, &h).unwrap();
        let (_, v_far) = gp_sparse.predict(&[0.9], &mut scratch);
        assert!(v_far > 10.0 * v_near);
    }
}
