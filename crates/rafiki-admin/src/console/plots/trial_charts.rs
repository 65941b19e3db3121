//! The charts of one trial: one per plot its model declared with `logger.define_plot(title,
//! metrics, x_axis)`, with Rafiki's semantics. Each metrics entry the model logged adds a point
//! to the line of metric `m` when it has `m` and, for a plot with an `x_axis`, that key too,
//! whose value is the point's x; a plot without an `x_axis` (or with `x_axis` `time`, the
//! entries' own time) puts each point at the entry's time, counted from the trial's start.
//! Points join in logging order.

use chrono::{DateTime, Utc};
use maud::{html, Markup};
use rafiki_types::train::{LogPlot, TrialLogs};
use serde_json::{Map, Value};

use super::svg::{chart, data_table, figure, number, time_unit, Axis, Frame, PathData};
use super::{key, Key, LINE_STYLES};

/// Lines with at most this many points also get a marker at each point.
const MARKED_POINTS: usize = 40;

/// One metric's line of a plot.
#[derive(Debug, Clone, PartialEq)]
pub struct Series<'a> {
    /// The metric.
    pub metric: &'a str,
    /// Its points, in logging order.
    pub points: Vec<(f64, f64)>,
}

/// The x of a metrics entry for a plot: the `x_axis` key's number, or the entry's time in
/// seconds since `origin` when the plot has no x axis (or names the entries' `time`).
pub fn x_of(plot: &LogPlot, entry: &Map<String, Value>, origin: DateTime<Utc>) -> Option<f64> {
    match plot.x_axis.as_deref() {
        Some(x) if x != "time" => entry.get(x)?.as_f64(),
        _ => {
            let time = DateTime::parse_from_rfc3339(entry.get("time")?.as_str()?).ok()?;
            Some((time.with_timezone(&Utc) - origin).num_milliseconds() as f64 / 1000.0)
        }
    }
}

/// The lines of `plot`: one per metric it declares, from the entries that have that metric
/// (a number) and the plot's x.
pub fn series<'a>(
    plot: &'a LogPlot,
    metrics: &[Map<String, Value>],
    origin: DateTime<Utc>,
) -> Vec<Series<'a>> {
    let mut lines: Vec<Series<'a>> = plot
        .metrics
        .iter()
        .map(|metric| Series {
            metric,
            points: Vec::new(),
        })
        .collect();
    for entry in metrics {
        // Only an entry with one of the plot's metrics needs its x (parsing times costs).
        if !plot.metrics.iter().any(|m| entry.contains_key(m)) {
            continue;
        }
        let Some(x) = x_of(plot, entry, origin) else {
            continue;
        };
        for line in &mut lines {
            if let Some(y) = entry.get(line.metric).and_then(Value::as_f64) {
                line.points.push((x, y));
            }
        }
    }
    lines
}

/// A chart per plot of `logs`, times counted from `origin` (the trial's start).
pub fn trial_charts(logs: &TrialLogs, origin: DateTime<Utc>) -> Markup {
    html! {
        @if logs.plots.is_empty() {
            p.empty { "The model declared no plot." }
        }
        @for (index, plot) in logs.plots.iter().enumerate() {
            (plot_chart(&format!("plot-{index}"), plot, &logs.metrics, origin))
        }
    }
}

fn extent(values: impl Iterator<Item = f64>) -> Option<(f64, f64)> {
    values
        .filter(|v| v.is_finite())
        .fold(None, |acc, v| match acc {
            None => Some((v, v)),
            Some((lo, hi)) => Some((lo.min(v), hi.max(v))),
        })
}

fn plot_chart(
    id: &str,
    plot: &LogPlot,
    metrics: &[Map<String, Value>],
    origin: DateTime<Utc>,
) -> Markup {
    let lines = series(plot, metrics, origin);
    let on_time = plot.x_axis.as_deref().is_none_or(|x| x == "time");
    let caption = html! {
        strong { (plot.title) }
        ul.legend {
            @for (i, line) in lines.iter().enumerate() {
                li { (key(&format!("line m{}", i % LINE_STYLES), Key::Line)) (line.metric) }
            }
        }
    };
    let (Some(xs), Some(ys)) = (
        extent(lines.iter().flat_map(|l| l.points.iter().map(|p| p.0))),
        extent(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1))),
    ) else {
        return figure(
            caption,
            html! {},
            html! { p.empty { "No metrics logged for this plot yet." } },
        );
    };
    let frame = Frame::WIDE;
    let (unit, x_label) = if on_time {
        let (unit, name) = time_unit(xs.1.max(0.0));
        (unit, format!("Time since the trial started ({name})"))
    } else {
        (1.0, plot.x_axis.clone().unwrap_or_default())
    };
    let x = Axis::numeric(
        (xs.0 / unit, xs.1 / unit),
        false,
        frame.x_range(),
        x_label,
        8,
    );
    let y_label = match plot.metrics.as_slice() {
        [only] => only.clone(),
        _ => "Value".to_owned(),
    };
    let y = Axis::numeric(ys, false, frame.y_range(), y_label, 5);
    let paths: Vec<(PathData, PathData)> = lines
        .iter()
        .map(|line| {
            let mut path = PathData::default();
            let mut marks = PathData::default();
            let marked = line.points.len() <= MARKED_POINTS;
            for (i, &(px, py)) in line.points.iter().enumerate() {
                let (px, py) = (x.scale.map(px / unit), y.scale.map(py));
                if i == 0 {
                    path.move_to(px, py);
                } else {
                    path.line_to(px, py);
                }
                if marked {
                    marks.dot(px, py);
                }
            }
            (path, marks)
        })
        .collect();
    let desc = describe(plot, &lines);
    let marks = html! {
        @for (i, (path, dots)) in paths.iter().enumerate() {
            path class={ "line m" (i % LINE_STYLES) } d=(path.as_str()) {}
            @if !dots.is_empty() {
                path class={ "dots m" (i % LINE_STYLES) } d=(dots.as_str()) {}
            }
        }
    };
    let mut columns: Vec<&str> = vec![if on_time {
        "Time since the trial started (s)"
    } else {
        plot.x_axis.as_deref().unwrap_or_default()
    }];
    columns.extend(plot.metrics.iter().map(String::as_str));
    let rows = metrics.iter().filter_map(|entry| {
        if !plot.metrics.iter().any(|m| entry.contains_key(m)) {
            return None;
        }
        let x = x_of(plot, entry, origin)?;
        let mut row = vec![number(x)];
        row.extend(plot.metrics.iter().map(|m| {
            entry
                .get(m)
                .and_then(Value::as_f64)
                .map(number)
                .unwrap_or_default()
        }));
        Some(row)
    });
    let total = metrics
        .iter()
        .filter(|e| plot.metrics.iter().any(|m| e.contains_key(m)))
        .count();
    figure(
        caption,
        chart(id, (&plot.title, &desc), &frame, (&x, &y), marks),
        html! {
            p.summary { (desc) }
            (data_table(&plot.title, &columns, rows, total))
        },
    )
}

/// What a plot shows, in words: each metric's number of points, range and last value.
fn describe(plot: &LogPlot, lines: &[Series<'_>]) -> String {
    let against = plot
        .x_axis
        .as_deref()
        .filter(|x| *x != "time")
        .unwrap_or("time");
    let parts: Vec<String> = lines
        .iter()
        .map(
            |line| match (extent(line.points.iter().map(|p| p.1)), line.points.last()) {
                (Some((lo, hi)), Some(last)) => format!(
                    "{}: {} points from {} to {}, last {}",
                    line.metric,
                    line.points.len(),
                    number(lo),
                    number(hi),
                    number(last.1)
                ),
                _ => format!("{}: no points", line.metric),
            },
        )
        .collect();
    format!("Against {against}. {}.", parts.join("; "))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use serde_json::json;

    fn origin() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
    }

    fn plot(metrics: &[&str], x_axis: Option<&str>) -> LogPlot {
        LogPlot {
            title: "<i>Loss</i>".to_owned(),
            metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
            x_axis: x_axis.map(str::to_owned),
            time: origin(),
        }
    }

    fn entries(values: Value) -> Vec<Map<String, Value>> {
        serde_json::from_value(values).unwrap()
    }

    #[test]
    fn an_entry_counts_when_it_has_the_metric_and_the_x_axis() {
        let metrics = entries(json!([
            {"time": "2026-01-01T00:00:01.000Z", "loss": 3.0, "epoch": 0},
            {"time": "2026-01-01T00:00:02.000Z", "loss": 2.0},
            {"time": "2026-01-01T00:00:03.000Z", "acc": 0.5, "epoch": 1},
            {"time": "2026-01-01T00:00:04.500Z", "loss": 1.0, "acc": 0.7, "epoch": 2},
            {"time": "2026-01-01T00:00:05.000Z", "loss": null, "epoch": 3},
        ]));
        let by_epoch = plot(&["loss", "acc"], Some("epoch"));
        let lines = series(&by_epoch, &metrics, origin());
        assert_eq!(
            lines[0].points,
            vec![(0.0, 3.0), (2.0, 1.0)],
            "no epoch, no point; null skipped"
        );
        assert_eq!(lines[1].points, vec![(1.0, 0.5), (2.0, 0.7)]);
        let by_time = plot(&["loss"], None);
        let lines = series(&by_time, &metrics, origin());
        assert_eq!(lines[0].points, vec![(1.0, 3.0), (2.0, 2.0), (4.5, 1.0)]);
        let named_time = plot(&["loss"], Some("time"));
        assert_eq!(series(&named_time, &metrics, origin())[0].points.len(), 3);
        let missing = plot(&["nothing"], Some("epoch"));
        assert!(series(&missing, &metrics, origin())[0].points.is_empty());
    }

    #[test]
    fn a_chart_per_plot_with_a_line_per_metric_escaped() {
        let metrics = entries(json!([
            {"time": "2026-01-01T00:00:01Z", "<m>": 1.0, "b": 2.0, "epoch": 1},
            {"time": "2026-01-01T00:00:02Z", "<m>": 0.5, "b": 2.5, "epoch": 2},
        ]));
        let logs = TrialLogs {
            plots: vec![plot(&["<m>", "b"], Some("epoch")), plot(&["none"], None)],
            metrics,
            messages: Vec::new(),
        };
        let html = trial_charts(&logs, origin()).into_string();
        assert_eq!(html.matches("<figure").count(), 2);
        assert_eq!(
            html.matches("class=\"line m0\"").count(),
            3,
            "the legends' keys and the line"
        );
        assert_eq!(html.matches("class=\"line m1\"").count(), 2);
        assert!(html.contains("&lt;m&gt;") && !html.contains("<m>"));
        assert!(html.contains("&lt;i&gt;Loss") && !html.contains("<i>"));
        assert!(html.contains("No metrics logged for this plot yet."));
        assert!(!html.contains("style="));
        let empty = trial_charts(&TrialLogs::default(), origin()).into_string();
        assert!(empty.contains("declared no plot"));
    }
}
