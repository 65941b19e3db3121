//! The tuning plots of a train job: per model, the score of each trial with the best so far,
//! each knob against the score, a parallel-coordinates view of knobs and score, and the trials'
//! durations; for the whole job, how many trials ran at once. Scores are Rafiki's: higher is
//! better (`evaluate()`'s contract, and the API's best trials).

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use rafiki_store::train_jobs::SubTrainJob;
use rafiki_store::trials::TrialRecord;
use rafiki_types::knob::{Knob, KnobConfig};
use rafiki_types::status::TrialStatus;
use serde_json::Value;
use uuid::Uuid;

use super::svg::{
    chart, data_table, figure, number, shorten, time_unit, Axis, Frame, PathData, Tick, C,
};
use super::{key, Key, SCORE_BINS};

/// The tuning plots of a job's trials (any order); `subs` are the job's sub-jobs (for model
/// names and knob configs: log-scaled knobs, the order of categories), `now` ends the trials
/// still running.
pub fn tuning(trials: &[TrialRecord], subs: &[SubTrainJob], now: DateTime<Utc>) -> Markup {
    if trials.is_empty() {
        return html! { p.empty { "No trials yet: the tuning plots appear as trials run." } };
    }
    let groups = groups(trials, subs);
    let named = groups.len() > 1;
    html! {
        @for (index, group) in groups.iter().enumerate() {
            section.tuning aria-label={ "Tuning of " (group.model) } {
                @if named { h3 { "Model " (group.model) } }
                (model_plots(&format!("tuning-{index}"), group))
            }
        }
        (occupancy_chart("tuning-occupancy", trials, now))
    }
}

/// The trials of one model, by trial number, with its knob config if known.
struct Group<'a> {
    model: &'a str,
    config: Option<KnobConfig>,
    trials: Vec<&'a TrialRecord>,
}

/// Trials grouped by sub-job, in the sub-jobs' order (trials of a sub-job not in `subs` after).
fn groups<'a>(trials: &'a [TrialRecord], subs: &'a [SubTrainJob]) -> Vec<Group<'a>> {
    let mut ids: Vec<Uuid> = subs.iter().map(|s| s.id).collect();
    for trial in trials {
        if !ids.contains(&trial.sub_train_job_id) {
            ids.push(trial.sub_train_job_id);
        }
    }
    ids.into_iter()
        .filter_map(|id| {
            let mut members: Vec<&TrialRecord> =
                trials.iter().filter(|t| t.sub_train_job_id == id).collect();
            let first = *members.first()?;
            members.sort_by_key(|t| t.trial.no);
            let sub = subs.iter().find(|s| s.id == id);
            Some(Group {
                model: sub.map_or(&first.trial.model_name, |s| &s.model_name),
                config: sub
                    .and_then(|s| s.knob_config.clone())
                    .and_then(|c| serde_json::from_value(c).ok()),
                trials: members,
            })
        })
        .collect()
}

fn model_plots(id: &str, group: &Group<'_>) -> Markup {
    let scored: Vec<(&TrialRecord, f64)> = group
        .trials
        .iter()
        .filter_map(|t| Some((*t, t.trial.score.filter(|s| s.is_finite())?)))
        .collect();
    let columns = knob_columns(&scored, group.config.as_ref());
    let constant: Vec<&Column> = columns.iter().filter(|c| c.is_constant()).collect();
    let varying: Vec<&Column> = columns.iter().filter(|c| !c.is_constant()).collect();
    html! {
        @if scored.is_empty() {
            p.empty { "No trial of " (group.model) " has a score yet." }
        } @else {
            (score_chart(&format!("{id}-score"), group, &scored))
            @if !constant.is_empty() {
                p {
                    "Knobs with one value in every scored trial: "
                    @for (i, column) in constant.iter().enumerate() {
                        @if i > 0 { ", " }
                        code { (column.name) } " = " (column.describe(0))
                    }
                    "."
                }
            }
            @if !varying.is_empty() {
                div.small-multiples {
                    @for (i, column) in varying.iter().enumerate() {
                        (knob_chart(&format!("{id}-knob-{i}"), column, &scored))
                    }
                }
                (parallel_chart(&format!("{id}-parallel"), &varying, &scored))
            }
        }
        (durations_chart(&format!("{id}-durations"), group))
    }
}

/// Where score `score` of `min..=max` falls among the colour classes `s0` (worst) to
/// `s{SCORE_BINS - 1}` (best).
pub fn score_bin(score: f64, (min, max): (f64, f64)) -> usize {
    if max <= min {
        return SCORE_BINS - 1;
    }
    (((score - min) / (max - min)) * SCORE_BINS as f64).clamp(0.0, (SCORE_BINS - 1) as f64) as usize
}

/// The lowest and highest of `values` (`None` when there are none).
fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values.fold(None, |acc, v| match acc {
        None => Some((v, v)),
        Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
    })
}

/// The best-so-far line: for each scored trial in trial order, the best score up to it.
pub fn best_so_far(scored: &[(i32, f64)]) -> Vec<(i32, f64)> {
    let mut best = f64::NEG_INFINITY;
    scored
        .iter()
        .map(|&(no, score)| {
            best = best.max(score);
            (no, best)
        })
        .collect()
}

/// The scored trial with the highest score (the first of equals).
fn best_of<'a>(scored: &[(&'a TrialRecord, f64)]) -> Option<(&'a TrialRecord, f64)> {
    scored.iter().copied().fold(
        None,
        |best: Option<(&TrialRecord, f64)>, (t, s)| match best {
            Some((_, b)) if b >= s => best,
            _ => Some((t, s)),
        },
    )
}

fn score_axis(scored: &[(&TrialRecord, f64)], frame: &Frame) -> Axis {
    let range = extent(scored.iter().map(|(_, s)| *s)).unwrap_or((0.0, 1.0));
    Axis::numeric(range, false, frame.y_range(), "Score".to_owned(), 5)
}

fn score_chart(id: &str, group: &Group<'_>, scored: &[(&TrialRecord, f64)]) -> Markup {
    let frame = Frame::WIDE;
    let nos = extent(group.trials.iter().map(|t| f64::from(t.trial.no))).unwrap_or((1.0, 1.0));
    let x = Axis::whole(nos, frame.x_range(), "Trial number".to_owned(), 8);
    let y = score_axis(scored, &frame);
    let at = |no: i32, score: f64| (x.scale.map(f64::from(no)), y.scale.map(score));
    let unscored: Vec<&TrialRecord> = group
        .trials
        .iter()
        .copied()
        .filter(|t| !t.trial.score.is_some_and(f64::is_finite))
        .collect();
    let mut crosses = PathData::default();
    for trial in &unscored {
        crosses.cross(
            x.scale.map(f64::from(trial.trial.no)),
            frame.y_range().0 - 5.0,
            3.0,
        );
    }
    let steps = best_so_far(
        &scored
            .iter()
            .map(|(t, s)| (t.trial.no, *s))
            .collect::<Vec<_>>(),
    );
    let mut line = PathData::default();
    for (i, &(no, best)) in steps.iter().enumerate() {
        let (px, py) = at(no, best);
        if i == 0 {
            line.move_to(px, py);
        } else {
            line.horizontal_to(px);
            line.vertical_to(py);
        }
    }
    line.horizontal_to(x.scale.map(nos.1));
    let best = best_of(scored);
    let (lo, hi) = extent(scored.iter().map(|(_, s)| *s)).unwrap_or_default();
    let desc = match best {
        Some((trial, score)) => format!(
            "{} trials of {}, {} with a score; scores from {} to {}; the best is trial {} with {}.",
            group.trials.len(),
            group.model,
            scored.len(),
            number(lo),
            number(hi),
            trial.trial.no,
            number(score),
        ),
        None => String::new(),
    };
    let marks = html! {
        path.best-so-far d=(line.as_str()) {}
        g.points {
            @for (trial, score) in scored {
                @let (px, py) = at(trial.trial.no, *score);
                circle cx=(C(px)) cy=(C(py)) r="2.5" {
                    title { "Trial " (trial.trial.no) ": " (number(*score)) }
                }
            }
        }
        @if let Some((trial, score)) = best {
            @let (px, py) = at(trial.trial.no, score);
            circle.best-mark cx=(C(px)) cy=(C(py)) r="5.5" {}
        }
        @if !crosses.is_empty() { path.unscored d=(crosses.as_str()) {} }
    };
    let caption = html! {
        "Score per trial of " strong { (group.model) } " (higher is better)"
        ul.legend {
            li { (key("points", Key::Dot)) "a trial's score" }
            li { (key("best-so-far", Key::Line)) "best so far" }
            li { (key("best-mark", Key::Ring)) "best trial" }
            @if !unscored.is_empty() {
                li { (key("unscored", Key::Cross)) (unscored.len()) " trials without a score (errored or not finished), on the axis" }
            }
        }
    };
    figure(
        caption,
        chart(id, ("Score per trial", &desc), &frame, (&x, &y), marks),
        html! { p.summary { (desc) } },
    )
}

/// One knob's values over the scored trials.
struct Column {
    name: String,
    scale: ColumnScale,
    /// Per scored trial (same order): the value, or the band's index; `None` when the trial's
    /// proposal lacks the knob.
    values: Vec<Option<f64>>,
}

enum ColumnScale {
    Numeric { min: f64, max: f64, log: bool },
    Bands(Vec<String>),
}

impl Column {
    fn is_constant(&self) -> bool {
        match &self.scale {
            ColumnScale::Numeric { min, max, .. } => min == max,
            ColumnScale::Bands(names) => names.len() <= 1,
        }
    }

    /// A value of this column as text.
    fn describe(&self, index: usize) -> String {
        match &self.scale {
            ColumnScale::Numeric { min, .. } => match self.values.iter().flatten().nth(index) {
                Some(v) => number(*v),
                None => number(*min),
            },
            ColumnScale::Bands(names) => names.get(index).cloned().unwrap_or_default(),
        }
    }

    fn axis(&self, range: (f64, f64), max_labels: usize) -> Axis {
        match &self.scale {
            ColumnScale::Numeric { min, max, log } => {
                Axis::numeric((*min, *max), *log, range, self.name.clone(), max_labels)
            }
            ColumnScale::Bands(names) => {
                Axis::bands(names, range, self.name.clone(), max_labels, 10)
            }
        }
    }

    fn value_text(&self, value: f64) -> String {
        match &self.scale {
            ColumnScale::Numeric { .. } => number(value),
            ColumnScale::Bands(names) => names.get(value as usize).cloned().unwrap_or_default(),
        }
    }
}

/// A knob value as a category's name: strings as they are, anything else as JSON.
fn category(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The knobs of the scored trials, in the knob config's order (else first seen), each numeric
/// (every value a number; on a log scale when the config says `is_exp`) or categorical (bands
/// in the config's order of candidates, else first seen).
fn knob_columns(scored: &[(&TrialRecord, f64)], config: Option<&KnobConfig>) -> Vec<Column> {
    let mut names: Vec<&str> = config
        .map(|c| c.keys().map(String::as_str).collect())
        .unwrap_or_default();
    for (trial, _) in scored {
        for name in trial.trial.proposal.knobs.keys() {
            if !names.contains(&name.as_str()) {
                names.push(name);
            }
        }
    }
    names
        .into_iter()
        .filter_map(|name| {
            let raw: Vec<Option<&Value>> = scored
                .iter()
                .map(|(t, _)| t.trial.proposal.knobs.get(name))
                .collect();
            let knob = config.and_then(|c| c.get(name));
            let numeric = raw.iter().flatten().all(|v| v.is_number());
            if numeric {
                let values: Vec<Option<f64>> =
                    raw.iter().map(|v| v.and_then(Value::as_f64)).collect();
                let (min, max) = extent(values.iter().flatten().copied())?;
                let log = matches!(
                    knob,
                    Some(Knob::Float { is_exp: true, .. } | Knob::Integer { is_exp: true, .. })
                );
                return Some(Column {
                    name: name.to_owned(),
                    scale: ColumnScale::Numeric { min, max, log },
                    values,
                });
            }
            let mut bands: Vec<String> = match knob {
                Some(Knob::Categorical { values }) => values
                    .iter()
                    .filter_map(|v| serde_json::to_value(v).ok())
                    .map(|v| category(&v))
                    .collect(),
                _ => Vec::new(),
            };
            let values = raw
                .iter()
                .map(|v| {
                    let key = category(v.as_ref()?);
                    let index = bands.iter().position(|b| *b == key).unwrap_or_else(|| {
                        bands.push(key);
                        bands.len() - 1
                    });
                    Some(index as f64)
                })
                .collect::<Vec<_>>();
            // Only the candidates some trial took.
            let used: Vec<bool> = (0..bands.len())
                .map(|i| values.contains(&Some(i as f64)))
                .collect();
            let renumber: Vec<usize> = used
                .iter()
                .scan(0, |next, &u| {
                    let index = *next;
                    *next += usize::from(u);
                    Some(index)
                })
                .collect();
            let values = values
                .into_iter()
                .map(|v| v.map(|i| renumber[i as usize] as f64))
                .collect();
            let bands = bands
                .into_iter()
                .zip(used)
                .filter_map(|(b, u)| u.then_some(b))
                .collect();
            Some(Column {
                name: name.to_owned(),
                scale: ColumnScale::Bands(bands),
                values,
            })
        })
        .collect()
}

/// Where a point of trial `no` goes within band `index`: spread over half the band by the
/// golden ratio, so trials of one category do not hide each other (the same place on every
/// render).
pub fn jitter(no: i32, band_width: f64) -> f64 {
    let spread = (f64::from(no) * 0.618_033_988_75).fract() - 0.5;
    spread * band_width * 0.5
}

fn knob_chart(id: &str, column: &Column, scored: &[(&TrialRecord, f64)]) -> Markup {
    let frame = Frame::SMALL;
    let x = column.axis(frame.x_range(), 5);
    let y = score_axis(scored, &frame);
    let band = x.scale.band_width();
    let mut dots = PathData::default();
    let mut best: Option<(f64, f64, f64, &TrialRecord)> = None;
    for ((trial, score), value) in scored.iter().zip(&column.values) {
        let Some(value) = value else { continue };
        let px = x.scale.map(*value) + jitter(trial.trial.no, band);
        dots.dot(px, y.scale.map(*score));
        if best.is_none_or(|(b, ..)| *score > b) {
            best = Some((*score, *value, px, trial));
        }
    }
    let desc = match best {
        Some((score, value, _, trial)) => format!(
            "Score against the knob {}: {} trials; the best, trial {} with {}, had {} = {}.",
            column.name,
            column.values.iter().flatten().count(),
            trial.trial.no,
            number(score),
            column.name,
            column.value_text(value),
        ),
        None => format!("No scored trial has the knob {}.", column.name),
    };
    let marks = html! {
        path.dots d=(dots.as_str()) {}
        @if let Some((score, _, px, _)) = best {
            circle.best-mark cx=(C(px)) cy=(C(y.scale.map(score))) r="5" {}
        }
    };
    figure(
        html! { "Score against " code { (column.name) }
        @if matches!(column.scale, ColumnScale::Numeric { log: true, .. }) { " (log scale)" } },
        chart(
            id,
            (&format!("Score against {}", column.name), &desc),
            &frame,
            (&x, &y),
            marks,
        ),
        html! { p.summary { (desc) } },
    )
}

fn parallel_chart(id: &str, columns: &[&Column], scored: &[(&TrialRecord, f64)]) -> Markup {
    let frame = Frame {
        top: 30.0,
        bottom: 20.0,
        left: 56.0,
        right: 56.0,
        ..Frame::WIDE
    };
    let (left, right) = frame.x_range();
    let (bottom, top) = frame.y_range();
    let score_column = Column {
        name: "score".to_owned(),
        scale: {
            let (min, max) = extent(scored.iter().map(|(_, s)| *s)).unwrap_or((0.0, 1.0));
            ColumnScale::Numeric {
                min,
                max,
                log: false,
            }
        },
        values: scored.iter().map(|(_, s)| Some(*s)).collect(),
    };
    let all: Vec<&Column> = columns.iter().copied().chain([&score_column]).collect();
    let gap = (right - left) / (all.len() - 1).max(1) as f64;
    let axes: Vec<(f64, Axis)> = all
        .iter()
        .enumerate()
        .map(|(i, c)| (left + gap * i as f64, c.axis((bottom, top), 4)))
        .collect();
    let range = match score_column.scale {
        ColumnScale::Numeric { min, max, .. } => (min, max),
        ColumnScale::Bands(_) => (0.0, 1.0),
    };
    let mut bins: Vec<PathData> = (0..SCORE_BINS).map(|_| PathData::default()).collect();
    let mut best_line = PathData::default();
    let best = best_of(scored).map(|(t, _)| t.trial.id);
    let mut drawn = 0;
    for (row, (trial, score)) in scored.iter().enumerate() {
        let Some(points) = all
            .iter()
            .zip(&axes)
            .map(|(c, (px, axis))| Some((*px, axis.scale.map(c.values[row]?))))
            .collect::<Option<Vec<_>>>()
        else {
            continue;
        };
        drawn += 1;
        let path = if Some(trial.trial.id) == best {
            &mut best_line
        } else {
            &mut bins[score_bin(*score, range)]
        };
        for (i, (px, py)) in points.into_iter().enumerate() {
            if i == 0 {
                path.move_to(px, py);
            } else {
                path.line_to(px, py);
            }
        }
    }
    let mut axis_lines = PathData::default();
    for (px, _) in &axes {
        axis_lines.move_to(*px, top);
        axis_lines.vertical_to(bottom);
    }
    let desc =
        format!(
        "Parallel coordinates of {} scored trials over the knobs {} and the score, one line per \
         trial, darker and bluer for higher scores, the best trial in black.",
        drawn,
        columns.iter().map(|c| c.name.as_str()).collect::<Vec<_>>().join(", "),
    );
    let svg = html! {
        svg.chart.parallel viewBox={ "0 0 " (frame.width) " " (frame.height) } role="img"
            aria-labelledby={ (id) "-t" } aria-describedby={ (id) "-d" } {
            title #{ (id) "-t" } { "Knobs and score of every trial" }
            desc #{ (id) "-d" } { (desc) }
            @for (bin, path) in bins.iter().enumerate() {
                @if !path.is_empty() {
                    path class={ "trial-lines s" (bin) } d=(path.as_str()) {}
                }
            }
            @if !best_line.is_empty() { path.best-line d=(best_line.as_str()) {} }
            path.axis d=(axis_lines.as_str()) {}
            @for (column, (px, axis)) in all.iter().zip(&axes) {
                text.axis-label x=(C(*px)) y="14" text-anchor="middle" { (shorten(&column.name, 16)) }
                g.ticks text-anchor="end" {
                    @for Tick { at, text } in &axis.ticks {
                        text x=(C(px - 4.0)) y=(C(at + 4.0)) { (text) }
                    }
                }
            }
        }
    };
    let caption = html! {
        "Knobs and score of every scored trial (parallel coordinates)"
        p.scale {
            "Line colour by score: "
            span { (number(range.0)) }
            @for bin in 0..SCORE_BINS { span class={ "swatch s" (bin) } {} }
            span { (number(range.1)) }
            "; " (key("best-line", Key::Line)) " the best trial."
        }
    };
    figure(caption, svg, html! { p.summary { (desc) } })
}

fn durations_chart(id: &str, group: &Group<'_>) -> Markup {
    let finished: Vec<(&TrialRecord, f64)> = group
        .trials
        .iter()
        .filter_map(|t| {
            let stopped = t.trial.datetime_stopped?;
            let secs = (stopped - t.trial.datetime_started).num_milliseconds() as f64 / 1000.0;
            Some((*t, secs.max(0.0)))
        })
        .collect();
    let Some((shortest, longest)) = extent(finished.iter().map(|(_, d)| *d)) else {
        return html! { p.empty { "No trial of " (group.model) " has finished yet." } };
    };
    let (unit, unit_name) = time_unit(longest);
    let frame = Frame::WIDE;
    let nos = extent(group.trials.iter().map(|t| f64::from(t.trial.no))).unwrap_or((1.0, 1.0));
    let x = Axis::whole(nos, frame.x_range(), "Trial number".to_owned(), 8);
    let y = Axis::numeric(
        (0.0, longest / unit),
        false,
        frame.y_range(),
        format!("Duration ({unit_name})"),
        5,
    );
    let (x_from, x_to) = frame.x_range();
    let width = ((x_to - x_from) / (nos.1 - nos.0 + 1.0) * 0.7).clamp(0.5, 8.0);
    let mut completed = PathData::default();
    let mut errored = PathData::default();
    for (trial, secs) in &finished {
        let bars = if trial.trial.status == TrialStatus::Errored {
            &mut errored
        } else {
            &mut completed
        };
        bars.move_to(x.scale.map(f64::from(trial.trial.no)), y.scale.map(0.0));
        bars.vertical_to(y.scale.map(secs / unit));
    }
    let mut sorted: Vec<f64> = finished.iter().map(|(_, d)| *d).collect();
    sorted.sort_by(f64::total_cmp);
    let median = sorted[sorted.len() / 2];
    let desc = format!(
        "Durations of {} finished trials of {}: from {} s to {} s, median {} s.",
        finished.len(),
        group.model,
        number(shortest),
        number(longest),
        number(median),
    );
    let marks = html! {
        path.bars d=(completed.as_str()) stroke-width=(C(width)) {}
        @if !errored.is_empty() {
            path.bars.errored d=(errored.as_str()) stroke-width=(C(width)) {}
        }
    };
    let running = group.trials.len() - finished.len();
    let caption = html! {
        "How long each trial of " strong { (group.model) } " took"
        ul.legend {
            li { (key("bars", Key::Bar)) "completed" }
            li { (key("bars errored", Key::Bar)) "errored" }
            @if running > 0 { li { (running) " trials not finished are not shown" } }
        }
    };
    figure(
        caption,
        chart(id, ("Trial durations", &desc), &frame, (&x, &y), marks),
        html! { p.summary { (desc) } },
    )
}

/// How many trials ran at each moment: (seconds since the first start, count) at every change.
pub fn occupancy(trials: &[TrialRecord], now: DateTime<Utc>) -> Vec<(f64, i64)> {
    let Some(origin) = trials.iter().map(|t| t.trial.datetime_started).min() else {
        return Vec::new();
    };
    let secs = |at: DateTime<Utc>| (at - origin).num_milliseconds() as f64 / 1000.0;
    let mut events: Vec<(f64, i64)> = trials
        .iter()
        .flat_map(|t| {
            let start = secs(t.trial.datetime_started);
            let stop = secs(t.trial.datetime_stopped.unwrap_or(now)).max(start);
            [(start, 1), (stop, -1)]
        })
        .collect();
    // Ends before starts at the same moment: back-to-back trials do not count as overlapping.
    events.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
    let mut running = 0;
    let mut steps: Vec<(f64, i64)> = Vec::new();
    for (at, change) in events {
        running += change;
        match steps.last_mut() {
            Some(last) if last.0 == at => last.1 = running,
            _ => steps.push((at, running)),
        }
    }
    steps
}

fn occupancy_chart(id: &str, trials: &[TrialRecord], now: DateTime<Utc>) -> Markup {
    let steps = occupancy(trials, now);
    let Some(&(end, _)) = steps.last() else {
        return html! {};
    };
    let peak = steps.iter().map(|s| s.1).max().unwrap_or(0);
    let (unit, unit_name) = time_unit(end);
    let frame = Frame::WIDE;
    let x = Axis::numeric(
        (0.0, end / unit),
        false,
        frame.x_range(),
        format!("Time since the first trial started ({unit_name})"),
        8,
    );
    let y = Axis::whole(
        (0.0, peak.max(1) as f64),
        frame.y_range(),
        "Trials running".to_owned(),
        4,
    );
    let mut line = PathData::default();
    line.move_to(x.scale.map(0.0), y.scale.map(0.0));
    for (at, count) in &steps {
        line.horizontal_to(x.scale.map(at / unit));
        line.vertical_to(y.scale.map(*count as f64));
    }
    let desc = format!(
        "Trials running at once over {} {}: at most {}.",
        number(end / unit),
        unit_name,
        peak
    );
    figure(
        html! { "Trials running at once, over the job" },
        chart(
            id,
            ("Trials running at once", &desc),
            &frame,
            (&x, &y),
            html! {
                path.occupancy d=(line.as_str()) {}
            },
        ),
        data_table(
            "Trials running, from each change",
            &["Time since the first start (s)", "Trials running"],
            steps.iter().map(|(at, n)| vec![number(*at), n.to_string()]),
            steps.len(),
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use rafiki_types::proposal::Proposal;
    use rafiki_types::train::Trial;
    use serde_json::json;

    fn at(secs: i64) -> DateTime<Utc> {
        Utc.timestamp_opt(1_700_000_000 + secs, 0).unwrap()
    }

    fn trial(no: i32, score: Option<f64>, knobs: Value, span: (i64, Option<i64>)) -> TrialRecord {
        let knobs = serde_json::from_value(knobs).unwrap();
        TrialRecord {
            trial: Trial {
                id: Uuid::new_v4(),
                no,
                worker_id: None,
                proposal: Proposal::new(no as u32, knobs),
                datetime_started: at(span.0),
                datetime_stopped: span.1.map(at),
                status: match (score, span.1) {
                    (_, None) => TrialStatus::Running,
                    (Some(_), _) => TrialStatus::Completed,
                    (None, _) => TrialStatus::Errored,
                },
                model_name: "m<b>".to_owned(),
                score,
                is_params_saved: false,
                error: None,
                pruned: None,
            },
            train_job_id: Uuid::nil(),
            sub_train_job_id: Uuid::nil(),
            params_key: None,
            params_sha256: None,
        }
    }

    #[test]
    fn best_so_far_never_goes_down() {
        let line = best_so_far(&[(1, 0.5), (2, 0.3), (3, 0.7), (5, 0.6)]);
        assert_eq!(line, vec![(1, 0.5), (2, 0.5), (3, 0.7), (5, 0.7)]);
        assert!(best_so_far(&[]).is_empty());
    }

    #[test]
    fn score_bins_run_from_worst_to_best() {
        assert_eq!(score_bin(0.0, (0.0, 1.0)), 0);
        assert_eq!(score_bin(1.0, (0.0, 1.0)), SCORE_BINS - 1);
        assert_eq!(score_bin(0.5, (0.0, 1.0)), SCORE_BINS / 2);
        assert_eq!(
            score_bin(3.0, (3.0, 3.0)),
            SCORE_BINS - 1,
            "all equal: all best"
        );
    }

    #[test]
    fn jitter_stays_inside_the_band() {
        for no in 1..1000 {
            assert!(jitter(no, 40.0).abs() <= 10.0);
        }
        assert_ne!(jitter(1, 40.0), jitter(2, 40.0));
    }

    #[test]
    fn knobs_are_numeric_log_or_bands_in_the_config_order() {
        let config: KnobConfig = serde_json::from_value(json!({
            "lr": {"type": "FLOAT", "value_min": 0.0001, "value_max": 0.1, "is_exp": true},
            "opt": {"type": "CATEGORICAL", "values": ["sgd", "adam", "rms"]},
            "units": {"type": "INTEGER", "value_min": 8, "value_max": 64},
            "fixed": {"type": "FIXED", "value": 3},
        }))
        .unwrap();
        let trials = [
            trial(
                1,
                Some(0.5),
                json!({"lr": 0.001, "opt": "adam", "units": 8, "fixed": 3}),
                (0, Some(1)),
            ),
            trial(
                2,
                Some(0.6),
                json!({"lr": 0.01, "opt": "rms", "units": 32, "fixed": 3}),
                (1, Some(2)),
            ),
        ];
        let scored: Vec<(&TrialRecord, f64)> =
            trials.iter().map(|t| (t, t.trial.score.unwrap())).collect();
        let columns = knob_columns(&scored, Some(&config));
        let names: Vec<&str> = columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["lr", "opt", "units", "fixed"]);
        assert!(matches!(
            columns[0].scale,
            ColumnScale::Numeric { log: true, .. }
        ));
        match &columns[1].scale {
            ColumnScale::Bands(bands) => {
                assert_eq!(bands, &["adam", "rms"], "config order, used only")
            }
            ColumnScale::Numeric { .. } => panic!("categorical"),
        }
        assert_eq!(columns[1].values, vec![Some(0.0), Some(1.0)]);
        match columns[2].scale {
            ColumnScale::Numeric { min, max, log } => {
                assert_eq!((min, max, log), (8.0, 32.0, false))
            }
            ColumnScale::Bands(_) => panic!("numeric"),
        }
        assert!(columns[3].is_constant());
        // Without a config: first seen, linear.
        let columns = knob_columns(&scored, None);
        assert!(matches!(
            columns[0].scale,
            ColumnScale::Numeric { log: false, .. }
        ));
    }

    #[test]
    fn occupancy_counts_overlapping_trials() {
        let trials = [
            trial(1, Some(0.1), json!({}), (0, Some(10))),
            trial(2, Some(0.2), json!({}), (5, Some(15))),
            trial(3, Some(0.3), json!({}), (15, Some(20))),
            trial(4, None, json!({}), (18, None)),
        ];
        let steps = occupancy(&trials, at(30));
        assert_eq!(
            steps,
            vec![
                (0.0, 1),
                (5.0, 2),
                (10.0, 1),
                (15.0, 1),
                (18.0, 2),
                (20.0, 1),
                (30.0, 0)
            ]
        );
        assert!(occupancy(&[], at(0)).is_empty());
    }

    #[test]
    fn plots_draw_every_trial_and_escape_names() {
        let trials: Vec<TrialRecord> = (1..=30)
            .map(|no| {
                let score = (no % 7 != 0).then(|| f64::from(no % 10) / 10.0);
                let opt = ["a", "<b>"][no as usize % 2];
                let knobs = json!({"<lr>": 0.001 * f64::from(no), "opt": opt});
                trial(no, score, knobs, (i64::from(no), Some(i64::from(no) + 3)))
            })
            .collect();
        let html = tuning(&trials, &[], at(100)).into_string();
        assert_eq!(
            html.matches("r=\"2.5\"").count(),
            26,
            "a dot per scored trial"
        );
        assert_eq!(
            html.matches("r=\"5").count(),
            3,
            "the best trial marked in the score chart and both knob charts"
        );
        assert!(html.contains("4 trials without a score"));
        assert!(html.contains("&lt;lr&gt;") && !html.contains("<lr>"));
        assert!(html.contains("m&lt;b&gt;") && !html.contains("m<b>"));
        assert!(!html.contains("style="));
        assert!(html.contains("Trial 9: 0.9"));
        assert_eq!(html.matches("<figure").count(), 1 + 2 + 1 + 1 + 1);
    }

    #[test]
    fn empty_states() {
        let html = tuning(&[], &[], at(0)).into_string();
        assert!(html.contains("No trials yet"));
        let html = tuning(&[trial(1, None, json!({}), (0, None))], &[], at(5)).into_string();
        assert!(html.contains("has a score yet"));
        assert!(html.contains("has finished yet"));
    }
}
