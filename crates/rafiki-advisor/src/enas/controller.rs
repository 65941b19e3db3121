//! The ENAS controller for one ARCH knob: a two-layer LSTM that picks one candidate per
//! position, trained by REINFORCE on trial scores, with its gradient derived by hand.
//!
//! Step `t` of the LSTM reads an input vector (a learned start vector at `t = 0`, then the
//! embedding of the value chosen at `t - 1`), and a per-position fully connected layer turns
//! the top layer's output into `1.1 * tanh(.)` logits over position `t`'s candidates, so no
//! candidate's probability can run away to 1 (the bound Rafiki's controller uses). Equal values
//! share one embedding, whatever their position.
//!
//! Training is Rafiki's: batches of scored architectures; reward = score plus a small entropy
//! bonus; an exponential moving average of the rewards as baseline; loss = mean over the batch
//! of `-log p(arch) * (reward - baseline)`; one Adam step (first moment off) per batch. All
//! parameters live in one flat vector so the optimiser and the finite-difference check see
//! them alike. Everything is `f64` and sequential: replaying the same batches from the same
//! seed gives bit-identical parameters.

use rand::Rng;

/// LSTM width.
const HIDDEN: usize = 32;
/// LSTM layers.
const LAYERS: usize = 2;
/// Logits are `TANH_CONSTANT * tanh(z)`.
const TANH_CONSTANT: f64 = 1.1;
/// Added to the forget gate's pre-activation, as TensorFlow's `LSTMCell` does, so the cell
/// remembers by default.
const FORGET_BIAS: f64 = 1.0;
/// Parameters start uniform in `[-INIT_RANGE, INIT_RANGE]`.
const INIT_RANGE: f64 = 0.1;
/// Weight of the policy's entropy in the reward.
const ENTROPY_WEIGHT: f64 = 1e-4;
/// The baseline moves this fraction of the way to each batch's mean reward.
const BASELINE_RATE: f64 = 0.1;
/// Adam's step size, second-moment decay and epsilon (first-moment decay is 0, as Rafiki's).
const LEARNING_RATE: f64 = 0.05;
const ADAM_BETA2: f64 = 0.999;
const ADAM_EPSILON: f64 = 1e-3;

/// Where one position's output layer lies in the parameter vector.
#[derive(Debug, Clone)]
struct Position {
    /// Embedding row of each candidate.
    reps: Vec<usize>,
    /// `W` (`candidates x width`, row-major), then `b`.
    offset: usize,
}

/// The shapes of a controller and where each tensor lies in its parameter vector.
#[derive(Debug, Clone)]
struct Layout {
    width: usize,
    layers: usize,
    /// Start input (`width`), then the embeddings (`vocabulary x width`).
    embed: usize,
    /// Per layer: `W` (`4 width x 2 width`, gates i, f, g, o over `[input; h_prev]`), then `b`.
    lstm: Vec<usize>,
    positions: Vec<Position>,
    len: usize,
}

impl Layout {
    fn new(reps: Vec<Vec<usize>>, width: usize, layers: usize) -> Layout {
        let vocabulary = reps.iter().flatten().map(|r| r + 1).max().unwrap_or(0);
        let embed = 0;
        let mut len = width * (1 + vocabulary);
        let mut lstm = Vec::with_capacity(layers);
        for _ in 0..layers {
            lstm.push(len);
            len += 4 * width * 2 * width + 4 * width;
        }
        let positions = reps
            .into_iter()
            .map(|reps| {
                let offset = len;
                len += reps.len() * width + reps.len();
                Position { reps, offset }
            })
            .collect();
        Layout {
            width,
            layers,
            embed,
            lstm,
            positions,
            len,
        }
    }

    /// Offset of the input vector for row `rep` (`None`: the start vector).
    fn input(&self, rep: Option<usize>) -> usize {
        self.embed + self.width * rep.map_or(0, |r| r + 1)
    }
}

/// What backpropagation needs from one LSTM layer at one step.
#[derive(Debug, Clone)]
struct LayerStep {
    /// `[input; h_prev]`.
    xh: Vec<f64>,
    c_prev: Vec<f64>,
    /// Gate activations i, f, g, o, each `width` long.
    gates: Vec<f64>,
    /// `tanh(c)`.
    tanh_c: Vec<f64>,
}

/// What backpropagation needs from one step.
#[derive(Debug, Clone)]
struct Step {
    layers: Vec<LayerStep>,
    /// The top layer's output.
    out: Vec<f64>,
    /// The logits and their softmax.
    logits: Vec<f64>,
    probs: Vec<f64>,
}

/// A controller's parameters and optimiser state.
#[derive(Debug, Clone)]
pub(crate) struct Controller {
    layout: Layout,
    params: Vec<f64>,
    /// Adam's second moments and step count.
    second: Vec<f64>,
    steps: i32,
    /// `None` until the first batch.
    baseline: Option<f64>,
}

impl Controller {
    /// A controller for positions whose candidates have the embedding rows `reps` (one `Vec`
    /// per position, one row per candidate), its parameters drawn from `rng`.
    pub(crate) fn new(reps: Vec<Vec<usize>>, rng: &mut impl Rng) -> Controller {
        Self::with_shape(reps, HIDDEN, LAYERS, rng)
    }

    fn with_shape(
        reps: Vec<Vec<usize>>,
        width: usize,
        layers: usize,
        rng: &mut impl Rng,
    ) -> Controller {
        let layout = Layout::new(reps, width, layers);
        let params = (0..layout.len)
            .map(|_| rng.gen_range(-INIT_RANGE..=INIT_RANGE))
            .collect();
        Controller {
            second: vec![0.0; layout.len],
            layout,
            params,
            steps: 0,
            baseline: None,
        }
    }

    /// Draws an architecture: one candidate index per position.
    pub(crate) fn sample(&self, rng: &mut impl Rng) -> Vec<usize> {
        let (choices, _) = self.forward(|probs| {
            let u: f64 = rng.gen();
            let mut acc = 0.0;
            for (i, p) in probs.iter().enumerate() {
                acc += p;
                if u < acc {
                    return i;
                }
            }
            probs.len() - 1
        });
        choices
    }

    /// One REINFORCE step on a batch of (architecture, score) pairs.
    pub(crate) fn train(&mut self, batch: &[(Vec<usize>, f64)]) {
        if batch.is_empty() {
            return;
        }
        let runs: Vec<Vec<Step>> = batch
            .iter()
            .map(|(arch, _)| self.forward(teacher(arch)).1)
            .collect();
        let rewards: Vec<f64> = batch
            .iter()
            .zip(&runs)
            .map(|((_, score), steps)| {
                let entropy: f64 = steps.iter().map(|s| entropy(&s.probs)).sum();
                score + ENTROPY_WEIGHT * entropy
            })
            .collect();
        let mean = rewards.iter().sum::<f64>() / rewards.len() as f64;
        // The baseline starts at the first batch's mean rather than at 0, so the first updates
        // are not all "better than expected" whatever the scores' scale.
        let baseline = match self.baseline {
            None => mean,
            Some(b) => b + BASELINE_RATE * (mean - b),
        };
        self.baseline = Some(baseline);

        let mut grad = vec![0.0; self.layout.len];
        let n = batch.len() as f64;
        for (((arch, _), steps), reward) in batch.iter().zip(&runs).zip(&rewards) {
            self.backward(arch, steps, (reward - baseline) / n, &mut grad);
        }
        self.adam(&grad);
    }

    fn adam(&mut self, grad: &[f64]) {
        self.steps += 1;
        let rate = LEARNING_RATE * (1.0 - ADAM_BETA2.powi(self.steps)).sqrt();
        for ((p, v), g) in self.params.iter_mut().zip(&mut self.second).zip(grad) {
            *v = ADAM_BETA2 * *v + (1.0 - ADAM_BETA2) * g * g;
            *p -= rate * g / (v.sqrt() + ADAM_EPSILON);
        }
    }

    /// Runs the LSTM over every position, choosing each position's candidate with `choose`
    /// (given that position's probabilities); returns the choices and the steps.
    fn forward(&self, mut choose: impl FnMut(&[f64]) -> usize) -> (Vec<usize>, Vec<Step>) {
        let l = &self.layout;
        let w = l.width;
        let p = &self.params;
        let mut h = vec![vec![0.0; w]; l.layers];
        let mut c = vec![vec![0.0; w]; l.layers];
        let mut input = p[l.input(None)..l.input(None) + w].to_vec();
        let mut choices = Vec::with_capacity(l.positions.len());
        let mut steps = Vec::with_capacity(l.positions.len());
        for pos in &l.positions {
            let mut layers = Vec::with_capacity(l.layers);
            for (layer, &off) in l.lstm.iter().enumerate() {
                let mut xh = input;
                xh.extend_from_slice(&h[layer]);
                let (weights, bias) = p[off..].split_at(4 * w * 2 * w);
                let mut gates = vec![0.0; 4 * w];
                for (r, gate) in gates.iter_mut().enumerate() {
                    let row = &weights[r * 2 * w..(r + 1) * 2 * w];
                    let mut a = bias[r] + dot(row, &xh);
                    if (w..2 * w).contains(&r) {
                        a += FORGET_BIAS;
                    }
                    *gate = if (2 * w..3 * w).contains(&r) {
                        a.tanh()
                    } else {
                        sigmoid(a)
                    };
                }
                let c_prev = std::mem::take(&mut c[layer]);
                let mut tanh_c = vec![0.0; w];
                let mut c_new = vec![0.0; w];
                let mut h_new = vec![0.0; w];
                for j in 0..w {
                    let (i, f, g, o) = (gates[j], gates[w + j], gates[2 * w + j], gates[3 * w + j]);
                    c_new[j] = f * c_prev[j] + i * g;
                    tanh_c[j] = c_new[j].tanh();
                    h_new[j] = o * tanh_c[j];
                }
                c[layer] = c_new;
                h[layer] = h_new.clone();
                input = h_new;
                layers.push(LayerStep {
                    xh,
                    c_prev,
                    gates,
                    tanh_c,
                });
            }
            let out = input;
            let k = pos.reps.len();
            let (weights, bias) = p[pos.offset..].split_at(k * w);
            let logits: Vec<f64> = (0..k)
                .map(|r| TANH_CONSTANT * (bias[r] + dot(&weights[r * w..(r + 1) * w], &out)).tanh())
                .collect();
            let probs = softmax(&logits);
            let choice = choose(&probs).min(k - 1);
            choices.push(choice);
            let next = l.input(Some(pos.reps[choice]));
            input = p[next..next + w].to_vec();
            steps.push(Step {
                layers,
                out,
                logits,
                probs,
            });
        }
        (choices, steps)
    }

    /// Adds to `grad` the gradient of `coef * -log p(arch)`, given the forward `steps` that
    /// chose `arch`.
    fn backward(&self, arch: &[usize], steps: &[Step], coef: f64, grad: &mut [f64]) {
        let l = &self.layout;
        let w = l.width;
        let p = &self.params;
        let mut dh_next = vec![vec![0.0; w]; l.layers];
        let mut dc_next = vec![vec![0.0; w]; l.layers];
        for t in (0..steps.len()).rev() {
            let step = &steps[t];
            let pos = &l.positions[t];
            let k = pos.reps.len();
            // d(-log softmax(logits)[arch[t]]) / d logits = probs - onehot.
            let mut dh = vec![0.0; w];
            for r in 0..k {
                let dlogit = coef * (step.probs[r] - f64::from(u8::from(r == arch[t])));
                let squashed = step.logits[r] / TANH_CONSTANT;
                let dz = dlogit * TANH_CONSTANT * (1.0 - squashed * squashed);
                let row = pos.offset + r * w;
                for j in 0..w {
                    grad[row + j] += dz * step.out[j];
                    dh[j] += dz * p[row + j];
                }
                grad[pos.offset + k * w + r] += dz;
            }
            for (layer, &off) in l.lstm.iter().enumerate().rev() {
                let ls = &step.layers[layer];
                let mut da = vec![0.0; 4 * w];
                let mut dc_prev = vec![0.0; w];
                for j in 0..w {
                    let (i, f, g, o) = (
                        ls.gates[j],
                        ls.gates[w + j],
                        ls.gates[2 * w + j],
                        ls.gates[3 * w + j],
                    );
                    let dh_j = dh[j] + dh_next[layer][j];
                    let dc = dc_next[layer][j] + dh_j * o * (1.0 - ls.tanh_c[j] * ls.tanh_c[j]);
                    da[j] = dc * g * i * (1.0 - i);
                    da[w + j] = dc * ls.c_prev[j] * f * (1.0 - f);
                    da[2 * w + j] = dc * i * (1.0 - g * g);
                    da[3 * w + j] = dh_j * ls.tanh_c[j] * o * (1.0 - o);
                    dc_prev[j] = dc * f;
                }
                let mut dxh = vec![0.0; 2 * w];
                for (r, &d) in da.iter().enumerate() {
                    let row = off + r * 2 * w;
                    for (c, x) in ls.xh.iter().enumerate() {
                        grad[row + c] += d * x;
                        dxh[c] += d * p[row + c];
                    }
                    grad[off + 4 * w * 2 * w + r] += d;
                }
                dh_next[layer] = dxh.split_off(w);
                dc_next[layer] = dc_prev;
                dh = dxh;
            }
            // `dh` is now the gradient of this step's input vector.
            let input = l.input(t.checked_sub(1).map(|s| l.positions[s].reps[arch[s]]));
            for (j, d) in dh.iter().enumerate() {
                grad[input + j] += d;
            }
        }
    }
}

/// Replays a known architecture through [`Controller::forward`].
fn teacher(arch: &[usize]) -> impl FnMut(&[f64]) -> usize + '_ {
    let mut t = 0;
    move |_| {
        t += 1;
        arch[t - 1]
    }
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn sigmoid(x: f64) -> f64 {
    1.0 / (1.0 + (-x).exp())
}

fn softmax(logits: &[f64]) -> Vec<f64> {
    let max = logits.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let exps: Vec<f64> = logits.iter().map(|l| (l - max).exp()).collect();
    let sum: f64 = exps.iter().sum();
    exps.into_iter().map(|e| e / sum).collect()
}

fn entropy(probs: &[f64]) -> f64 {
    -probs
        .iter()
        .filter(|p| **p > 0.0)
        .map(|p| p * p.ln())
        .sum::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn small(seed: u64) -> Controller {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        // Three positions; the last two share values 0 and 1, so they share embeddings.
        let mut c = Controller::with_shape(
            vec![vec![0, 1, 2], vec![0, 1], vec![1, 0, 3]],
            4,
            2,
            &mut rng,
        );
        // Larger weights than the initial range, so every term of the gradient matters.
        for v in &mut c.params {
            *v *= 8.0;
        }
        c
    }

    /// `sum_i coef_i * -log p(arch_i)` at the controller's parameters.
    fn loss(c: &Controller, batch: &[(Vec<usize>, f64)]) -> f64 {
        batch
            .iter()
            .map(|(arch, coef)| {
                let (_, steps) = c.forward(teacher(arch));
                -coef
                    * steps
                        .iter()
                        .zip(arch)
                        .map(|(s, &k)| s.probs[k].ln())
                        .sum::<f64>()
            })
            .sum()
    }

    #[test]
    fn gradient_matches_finite_differences() {
        let c = small(3);
        let batch = vec![
            (vec![2, 1, 0], 0.7),
            (vec![0, 0, 2], -1.3),
            (vec![1, 1, 1], 0.4),
        ];
        let mut grad = vec![0.0; c.layout.len];
        for (arch, coef) in &batch {
            let (_, steps) = c.forward(teacher(arch));
            c.backward(arch, &steps, *coef, &mut grad);
        }
        let eps = 1e-6;
        let mut worst: f64 = 0.0;
        for (i, analytic) in grad.iter().enumerate() {
            let mut plus = c.clone();
            plus.params[i] += eps;
            let mut minus = c.clone();
            minus.params[i] -= eps;
            let numeric = (loss(&plus, &batch) - loss(&minus, &batch)) / (2.0 * eps);
            let err = (numeric - analytic).abs() / (1e-4 + numeric.abs().max(analytic.abs()));
            worst = worst.max(err);
            assert!(
                err < 1e-5,
                "parameter {i}: analytic {analytic} numeric {numeric}"
            );
        }
        // Every tensor gets some gradient: a sign that no term was dropped.
        let touched = grad.iter().filter(|g| g.abs() > 1e-12).count();
        assert!(
            touched > c.layout.len * 9 / 10,
            "{touched} of {}",
            c.layout.len
        );
        assert!(worst < 1e-5);
    }

    #[test]
    fn probabilities_are_distributions_and_bounded() {
        let c = small(5);
        let (choices, steps) = c.forward(|probs| probs.len() - 1);
        assert_eq!(choices, vec![2, 1, 2]);
        for s in &steps {
            assert!((s.probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
            assert!(s.logits.iter().all(|l| l.abs() <= TANH_CONSTANT));
        }
    }

    #[test]
    fn training_moves_probability_to_the_rewarded_architecture() {
        let mut rng = ChaCha8Rng::seed_from_u64(9);
        let mut c = Controller::new(vec![vec![0, 1, 2], vec![0, 1, 2], vec![0, 1, 2]], &mut rng);
        let target = vec![2, 0, 1];
        let p = |c: &Controller| {
            let (_, steps) = c.forward(teacher(&target));
            steps
                .iter()
                .zip(&target)
                .map(|(s, &k)| s.probs[k])
                .product::<f64>()
        };
        let before = p(&c);
        for _ in 0..40 {
            let batch: Vec<(Vec<usize>, f64)> = (0..10)
                .map(|_| {
                    let arch = c.sample(&mut rng);
                    let score = arch.iter().zip(&target).filter(|(a, b)| a == b).count() as f64;
                    (arch, score)
                })
                .collect();
            c.train(&batch);
        }
        let after = p(&c);
        assert!(after > 4.0 * before, "p(target) {before} -> {after}");
    }

    #[test]
    fn same_seed_and_batches_give_the_same_controller() {
        let build = || {
            let mut rng = ChaCha8Rng::seed_from_u64(1);
            let mut c = Controller::new(vec![vec![0, 1], vec![1, 2]], &mut rng);
            c.train(&[(vec![0, 1], 0.5), (vec![1, 0], 0.2)]);
            c.params
        };
        assert_eq!(build(), build());
    }
}
