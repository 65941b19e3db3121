//! `rafiki trials logs` for people: a trial's messages, then its metrics as charts.

use std::collections::BTreeSet;

use chrono::{DateTime, Utc};
use rafiki_client::types::train::TrialLogs;
use serde_json::Value;

use super::chart::{self, Series};
use super::{table, when};

fn parse_time(value: Option<&Value>) -> Option<DateTime<Utc>> {
    let text = value?.as_str()?;
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The points of `metric` against `x_axis` (or seconds since `t0`).
fn points(
    logs: &TrialLogs,
    metric: &str,
    x_axis: Option<&str>,
    t0: Option<DateTime<Utc>>,
) -> Vec<(f64, f64)> {
    logs.metrics
        .iter()
        .filter_map(|entry| {
            let y = entry.get(metric)?.as_f64()?;
            let x = match x_axis {
                Some(axis) => entry.get(axis)?.as_f64()?,
                None => {
                    let elapsed = parse_time(entry.get("time"))? - t0?;
                    elapsed.num_milliseconds() as f64 / 1000.0
                }
            };
            Some((x, y))
        })
        .collect()
}

/// A trial's logs for people: its messages, then a chart per declared plot, then a chart per
/// metric no plot shows (against time).
pub fn render_logs(logs: &TrialLogs, width: usize, height: usize) -> String {
    let mut out = String::new();
    if logs.messages.is_empty() && logs.metrics.is_empty() && logs.plots.is_empty() {
        return "No logs.\n".to_owned();
    }
    if !logs.messages.is_empty() {
        let mut t = table(&["time", "message"]);
        for m in &logs.messages {
            t.add_row(vec![when(&m.time), m.message.clone()]);
        }
        out.push_str(&format!("{}\n\n", t.trim_fmt()));
    }
    let t0 = logs
        .metrics
        .iter()
        .filter_map(|e| parse_time(e.get("time")))
        .min();
    let mut plotted = BTreeSet::new();
    for plot in &logs.plots {
        let series: Vec<Series> = plot
            .metrics
            .iter()
            .map(|metric| Series {
                name: metric.clone(),
                points: points(logs, metric, plot.x_axis.as_deref(), t0),
            })
            .collect();
        plotted.extend(plot.metrics.iter().cloned());
        plotted.extend(plot.x_axis.iter().cloned());
        let x_label = plot.x_axis.as_deref().unwrap_or("seconds");
        out.push_str(&chart::render(&plot.title, x_label, &series, width, height));
        out.push('\n');
    }
    let others: BTreeSet<&String> = logs
        .metrics
        .iter()
        .flat_map(|entry| entry.keys())
        .filter(|name| *name != "time" && !plotted.contains(*name))
        .collect();
    for name in others {
        let series = [Series {
            name: name.clone(),
            points: points(logs, name, None, t0),
        }];
        out.push_str(&chart::render(name, "seconds", &series, width, height));
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn logs_show_messages_and_a_chart_per_plot_and_unplotted_metric() {
        let logs: TrialLogs = serde_json::from_value(json!({
            "plots": [{"title": "Loss", "metrics": ["loss"], "x_axis": "epoch",
                       "time": "2026-11-26T17:00:00Z"}],
            "metrics": [
                {"time": "2026-11-26T17:00:01Z", "loss": 2.0, "epoch": 1, "lr": 0.1},
                {"time": "2026-11-26T17:00:02Z", "loss": 1.0, "epoch": 2, "lr": 0.05},
                {"time": "2026-11-26T17:00:03Z", "loss": 0.5, "epoch": 3},
            ],
            "messages": [{"time": "2026-11-26T17:00:00Z", "message": "starting"}],
        }))
        .unwrap();
        let text = render_logs(&logs, 20, 4);
        assert!(text.contains("starting"), "{text}");
        assert!(text.contains("Loss\n"), "{text}");
        assert!(text.contains("x: epoch"), "{text}");
        assert!(
            text.contains("lr\n") && text.contains("x: seconds"),
            "{text}"
        );
        assert!(
            !text.contains("\nepoch\n"),
            "the x axis gets no chart of its own: {text}"
        );
        assert_eq!(render_logs(&TrialLogs::default(), 20, 4), "No logs.\n");
        assert_eq!(
            points(
                &logs,
                "lr",
                None,
                parse_time(Some(&json!("2026-11-26T17:00:01Z")))
            ),
            vec![(0.0, 0.1), (1.0, 0.05)]
        );
    }
}
