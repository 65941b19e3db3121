//! The search space: how knob values are drawn at random and how the numeric and categorical
//! knobs map to and from the unit cube the Gaussian process works in.
//!
//! Encoding: a float or integer knob is one coordinate in `[0, 1]` (on a log scale when
//! `is_exp`); a categorical knob with `k > 1` values is `k` one-hot coordinates. Knobs that can
//! take only one value (`value_min == value_max`, a one-value categorical) take no coordinate.
//! An integer `v` is encoded at the middle of its cell `[v, v + 1)`, so every integer gets an
//! equal share of the cube (of the log cube when `is_exp`) and decoding floors.

use rafiki_types::knob::{Knob, KnobConfig, KnobValue, Knobs};
use rand::Rng;
use serde_json::Value;

/// The JSON value of a knob value (Python `int` stays an integer, `float` a float).
pub(crate) fn knob_value_json(v: &KnobValue) -> Value {
    match v {
        KnobValue::Bool(b) => Value::Bool(*b),
        KnobValue::Int(i) => Value::from(*i),
        KnobValue::Float(f) => serde_json::Number::from_f64(*f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        KnobValue::Str(s) => Value::String(s.clone()),
    }
}

/// One tunable knob's reading of the unit interval.
#[derive(Debug, Clone)]
enum Coord {
    Float { min: f64, max: f64, log: bool },
    Int { min: i64, max: i64, log: bool },
    Cat { values: Vec<Value> },
}

impl Coord {
    fn from_knob(knob: &Knob) -> Option<Coord> {
        match knob {
            Knob::Float {
                value_min,
                value_max,
                is_exp,
            } => Some(Coord::Float {
                min: *value_min,
                max: *value_max,
                log: *is_exp && *value_min > 0.0,
            }),
            Knob::Integer {
                value_min,
                value_max,
                is_exp,
            } => Some(Coord::Int {
                min: *value_min,
                max: *value_max,
                log: *is_exp && *value_min > 0,
            }),
            Knob::Categorical { values } => Some(Coord::Cat {
                values: values.iter().map(knob_value_json).collect(),
            }),
            _ => None,
        }
    }

    /// How many cube coordinates the knob takes.
    fn width(&self) -> usize {
        match self {
            Coord::Float { min, max, .. } => usize::from(min < max),
            Coord::Int { min, max, .. } => usize::from(min < max),
            Coord::Cat { values } if values.len() > 1 => values.len(),
            Coord::Cat { .. } => 0,
        }
    }

    /// Where `x` lies in `[0, 1]` along an integer knob's (log) axis, `x` in `[min, max + 1]`.
    fn int_axis(min: i64, max: i64, log: bool, x: f64) -> f64 {
        let (lo, hi) = (min as f64, max as f64 + 1.0);
        if log {
            (x.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (x - lo) / (hi - lo)
        }
    }

    fn decode_float(min: f64, max: f64, log: bool, u: f64) -> f64 {
        let u = u.clamp(0.0, 1.0);
        let v = if log {
            (min.ln() + u * (max.ln() - min.ln())).exp()
        } else {
            min + u * (max - min)
        };
        v.clamp(min, max)
    }

    fn decode_int(min: i64, max: i64, log: bool, u: f64) -> i64 {
        let u = u.clamp(0.0, 1.0);
        let (lo, hi) = (min as f64, max as f64 + 1.0);
        let x = if log {
            (lo.ln() + u * (hi.ln() - lo.ln())).exp()
        } else {
            lo + u * (hi - lo)
        };
        (x.floor() as i64).clamp(min, max)
    }

    fn encode_int(min: i64, max: i64, log: bool, v: i64) -> f64 {
        let v = v.clamp(min, max) as f64;
        let mid = 0.5 * (Self::int_axis(min, max, log, v) + Self::int_axis(min, max, log, v + 1.0));
        mid.clamp(0.0, 1.0)
    }

    /// A value drawn uniformly along the knob's axis (log-uniformly when `is_exp`).
    fn sample(&self, rng: &mut impl Rng) -> Value {
        match self {
            Coord::Float { min, max, log } => {
                float_json(Self::decode_float(*min, *max, *log, rng.gen::<f64>()))
            }
            Coord::Int { min, max, log } => {
                Value::from(Self::decode_int(*min, *max, *log, rng.gen::<f64>()))
            }
            Coord::Cat { values } => values[rng.gen_range(0..values.len())].clone(),
        }
    }
}

fn float_json(f: f64) -> Value {
    serde_json::Number::from_f64(f)
        .map(Value::Number)
        .unwrap_or(Value::Null)
}

/// The knobs of `config` in name order. The advisors draw values and lay out the cube in this
/// order, not in the model's declared one, so a model that declares the same knobs in another
/// order gets the same proposals.
pub(crate) fn by_name(config: &KnobConfig) -> impl Iterator<Item = (&String, &Knob)> {
    let mut knobs: Vec<_> = config.iter().collect();
    knobs.sort_unstable_by_key(|(name, _)| *name);
    knobs.into_iter()
}

/// Draws a value for any knob the way the random advisor does: uniform along numeric axes
/// (log-uniform for `is_exp`), uniform over categoricals, one uniform choice per arch position,
/// the fixed value for fixed knobs, and `false` for policies (Rafiki's plain search switches
/// no policy on).
pub(crate) fn sample_knob(knob: &Knob, rng: &mut impl Rng) -> Value {
    match knob {
        Knob::Fixed { value } => knob_value_json(value),
        Knob::Policy { .. } => Value::Bool(false),
        Knob::Arch { items } => Value::Array(
            items
                .iter()
                .map(|choices| knob_value_json(&choices[rng.gen_range(0..choices.len())]))
                .collect(),
        ),
        other => Coord::from_knob(other)
            .map(|c| c.sample(rng))
            .unwrap_or(Value::Null),
    }
}

#[derive(Debug, Clone)]
struct Param {
    name: String,
    coord: Coord,
    offset: usize,
    width: usize,
}

/// The float, integer and categorical knobs of a config, laid out in the unit cube.
#[derive(Debug, Clone)]
pub(crate) struct Space {
    params: Vec<Param>,
    dim: usize,
}

impl Space {
    /// The tunable part of `config`; other knob types are ignored.
    pub(crate) fn new(config: &KnobConfig) -> Space {
        let mut params = Vec::new();
        let mut offset = 0;
        for (name, knob) in by_name(config) {
            if let Some(coord) = Coord::from_knob(knob) {
                let width = coord.width();
                params.push(Param {
                    name: name.clone(),
                    coord,
                    offset,
                    width,
                });
                offset += width;
            }
        }
        Space {
            params,
            dim: offset,
        }
    }

    /// Number of cube coordinates.
    pub(crate) fn dim(&self) -> usize {
        self.dim
    }

    /// How many knobs take at least one coordinate.
    pub(crate) fn tunable_knobs(&self) -> usize {
        self.params.iter().filter(|p| p.width > 0).count()
    }

    /// The names of the tunable knobs.
    pub(crate) fn names(&self) -> impl Iterator<Item = &str> {
        self.params.iter().map(|p| p.name.as_str())
    }

    /// Which coordinate ranges are one-hot blocks (start, width).
    pub(crate) fn categorical_blocks(&self) -> Vec<(usize, usize)> {
        self.params
            .iter()
            .filter(|p| matches!(p.coord, Coord::Cat { .. }) && p.width > 0)
            .map(|p| (p.offset, p.width))
            .collect()
    }

    /// Whether coordinate `i` is numeric (not part of a one-hot block).
    pub(crate) fn numeric_coords(&self) -> Vec<usize> {
        self.params
            .iter()
            .filter(|p| !matches!(p.coord, Coord::Cat { .. }) && p.width > 0)
            .map(|p| p.offset)
            .collect()
    }

    /// A uniformly drawn, feasible point of the cube.
    pub(crate) fn sample_point(&self, rng: &mut impl Rng) -> Vec<f64> {
        let mut x = vec![0.0; self.dim];
        for p in &self.params {
            match &p.coord {
                _ if p.width == 0 => {}
                Coord::Cat { values } => x[p.offset + rng.gen_range(0..values.len())] = 1.0,
                _ => x[p.offset] = rng.gen::<f64>(),
            }
        }
        self.snap(&mut x);
        x
    }

    /// `n` points of a Latin hypercube: along every numeric coordinate each of `n` equal slices
    /// holds one point, and each categorical knob cycles through its values in a shuffled
    /// order, so a small initial design spreads over the whole space.
    pub(crate) fn latin_hypercube(&self, n: usize, rng: &mut impl Rng) -> Vec<Vec<f64>> {
        let mut points = vec![vec![0.0; self.dim]; n];
        for p in &self.params {
            if p.width == 0 {
                continue;
            }
            let perm = permutation(n, rng);
            match &p.coord {
                Coord::Cat { values } => {
                    let order = permutation(values.len(), rng);
                    for (k, point) in points.iter_mut().enumerate() {
                        point[p.offset + order[perm[k] % values.len()]] = 1.0;
                    }
                }
                _ => {
                    for (k, point) in points.iter_mut().enumerate() {
                        point[p.offset] = (perm[k] as f64 + rng.gen::<f64>()) / n as f64;
                    }
                }
            }
        }
        for point in &mut points {
            self.snap(point);
        }
        points
    }

    /// Moves `x` to the encoding of the knob values it decodes to: clamps numeric coordinates,
    /// centres integers in their cell, and makes each one-hot block exactly one-hot.
    pub(crate) fn snap(&self, x: &mut [f64]) {
        for p in &self.params {
            if p.width == 0 {
                continue;
            }
            match &p.coord {
                Coord::Float { .. } => x[p.offset] = x[p.offset].clamp(0.0, 1.0),
                Coord::Int { min, max, log } => {
                    let v = Coord::decode_int(*min, *max, *log, x[p.offset]);
                    x[p.offset] = Coord::encode_int(*min, *max, *log, v);
                }
                Coord::Cat { .. } => {
                    let block = &mut x[p.offset..p.offset + p.width];
                    let best = argmax(block);
                    block.iter_mut().for_each(|v| *v = 0.0);
                    block[best] = 1.0;
                }
            }
        }
    }

    /// The knob values of a cube point (tunable knobs only).
    pub(crate) fn decode(&self, x: &[f64]) -> Knobs {
        let mut knobs = Knobs::new();
        for p in &self.params {
            let value = match &p.coord {
                Coord::Float { min, max, log } => float_json(if p.width == 0 {
                    *min
                } else {
                    Coord::decode_float(*min, *max, *log, x[p.offset])
                }),
                Coord::Int { min, max, log } => Value::from(if p.width == 0 {
                    *min
                } else {
                    Coord::decode_int(*min, *max, *log, x[p.offset])
                }),
                Coord::Cat { values } => {
                    if p.width == 0 {
                        values[0].clone()
                    } else {
                        values[argmax(&x[p.offset..p.offset + p.width])].clone()
                    }
                }
            };
            knobs.insert(p.name.clone(), value);
        }
        knobs
    }

    /// The cube point of stored knob values; `None` if a tunable knob is missing or has a value
    /// the knob cannot take (e.g. a trial of an older config), so it is left out of the model.
    pub(crate) fn encode(&self, knobs: &Knobs) -> Option<Vec<f64>> {
        let mut x = vec![0.0; self.dim];
        for p in &self.params {
            let value = knobs.get(&p.name)?;
            match &p.coord {
                Coord::Float { min, max, log } => {
                    let v = value.as_f64()?;
                    if p.width > 0 {
                        let u = if *log {
                            (v.max(*min).ln() - min.ln()) / (max.ln() - min.ln())
                        } else {
                            (v - min) / (max - min)
                        };
                        x[p.offset] = u.clamp(0.0, 1.0);
                    }
                }
                Coord::Int { min, max, log } => {
                    let v = value
                        .as_i64()
                        .or_else(|| value.as_f64().map(|f| f.round() as i64))?;
                    if p.width > 0 {
                        x[p.offset] = Coord::encode_int(*min, *max, *log, v);
                    }
                }
                Coord::Cat { values } => {
                    let i = values.iter().position(|c| c == value)?;
                    if p.width > 0 {
                        x[p.offset + i] = 1.0;
                    }
                }
            }
        }
        Some(x)
    }

    /// The tunable knobs' values out of a full knob map, for duplicate checks.
    pub(crate) fn project(&self, knobs: &Knobs) -> Knobs {
        self.names()
            .filter_map(|n| knobs.get(n).map(|v| (n.to_owned(), v.clone())))
            .collect()
    }
}

/// A uniformly shuffled `0..n` (Fisher-Yates).
fn permutation(n: usize, rng: &mut impl Rng) -> Vec<usize> {
    let mut perm: Vec<usize> = (0..n).collect();
    for i in (1..n).rev() {
        perm.swap(i, rng.gen_range(0..=i));
    }
    perm
}

fn argmax(xs: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in xs.iter().enumerate() {
        if *v > xs[best] {
            best = i;
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha8Rng;

    fn config(json: &str) -> KnobConfig {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn integer_encoding_round_trips_every_value() {
        for log in [false, true] {
            let c = config(&format!(
                r#"{{"n": {{"type": "INTEGER", "value_min": 1, "value_max": 300, "is_exp": {log}}}}}"#
            ));
            let space = Space::new(&c);
            for v in 1..=300 {
                let mut knobs = Knobs::new();
                knobs.insert("n".into(), Value::from(v));
                let x = space.encode(&knobs).unwrap();
                assert_eq!(space.decode(&x)["n"], Value::from(v), "log={log}");
            }
        }
    }

    #[test]
    fn one_hot_blocks_snap_to_one_category() {
        let c = config(r#"{"k": {"type": "CATEGORICAL", "values": ["a", "b", "c"]}}"#);
        let space = Space::new(&c);
        assert_eq!(space.dim(), 3);
        let mut x = vec![0.2, 0.7, 0.4];
        space.snap(&mut x);
        assert_eq!(x, vec![0.0, 1.0, 0.0]);
        assert_eq!(space.decode(&x)["k"], Value::from("b"));
    }

    #[test]
    fn degenerate_knobs_take_no_coordinate_and_decode_to_their_value() {
        let c = config(
            r#"{"a": {"type": "INTEGER", "value_min": 4, "value_max": 4},
                "b": {"type": "CATEGORICAL", "values": [true]},
                "c": {"type": "FLOAT", "value_min": 0.5, "value_max": 0.5}}"#,
        );
        let space = Space::new(&c);
        assert_eq!(space.dim(), 0);
        let knobs = space.decode(&[]);
        assert_eq!(knobs["a"], Value::from(4));
        assert_eq!(knobs["b"], Value::from(true));
        assert_eq!(knobs["c"], Value::from(0.5));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        assert_eq!(space.sample_point(&mut rng).len(), 0);
    }

    #[test]
    fn values_a_knob_cannot_take_are_not_encoded() {
        let c = config(r#"{"k": {"type": "CATEGORICAL", "values": ["a", "b"]}}"#);
        let space = Space::new(&c);
        let mut knobs = Knobs::new();
        knobs.insert("k".into(), Value::from("zzz"));
        assert!(space.encode(&knobs).is_none());
        assert!(space.encode(&Knobs::new()).is_none());
    }
}
