//! Render benchmark of the console's charts (issue 17: a job page with 1,000 trials renders in
//! under 20 ms server-side): the tuning plots of a synthetic job of 1,000 trials with 4 knobs,
//! and the charts of a trial with 1,000 metrics entries, each rendered to an HTML string many
//! times; prints the median, p99 and slowest time and the size of the markup.
//!
//! `cargo bench -p rafiki-admin --bench console_render [-- RUNS] [--html DIR]`; `--html`
//! writes both renders as pages (with the console's stylesheet) to look at.

use std::time::{Duration, Instant};

use chrono::{DateTime, TimeZone, Utc};
use rafiki_admin::console::plots::{trial_charts, tuning};
use rafiki_store::train_jobs::SubTrainJob;
use rafiki_store::trials::TrialRecord;
use rafiki_types::proposal::Proposal;
use rafiki_types::status::{JobStatus, TrialStatus};
use rafiki_types::train::{LogMessage, LogPlot, Trial, TrialLogs};
use serde_json::json;
use uuid::Uuid;

/// A small deterministic generator (xorshift), so every run draws the same job.
struct Draw(u64);

impl Draw {
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

/// A job of one model tuned over 1,000 trials by 4 workers: a log-scaled float, an integer, a
/// categorical and a float knob; about 3% of the trials errored.
fn job(trials: usize) -> (Vec<TrialRecord>, Vec<SubTrainJob>) {
    let sub = SubTrainJob {
        id: Uuid::new_v4(),
        train_job_id: Uuid::new_v4(),
        model_id: Uuid::new_v4(),
        model_name: "SkMlpClf".to_owned(),
        gpu_count: 0,
        advisor_type: None,
        knob_config: Some(json!({
            "learning_rate": {"type": "FLOAT", "value_min": 1e-5, "value_max": 0.1, "is_exp": true},
            "hidden_layer_size": {"type": "INTEGER", "value_min": 8, "value_max": 256},
            "activation": {"type": "CATEGORICAL", "values": ["relu", "tanh", "logistic", "identity"]},
            "dropout": {"type": "FLOAT", "value_min": 0.0, "value_max": 0.6},
        })),
        status: JobStatus::Running,
        error: None,
        datetime_started: start(),
        budget_started_at: Some(start()),
        budget_spent_at: None,
    };
    let mut draw = Draw(0x9e37_79b9_7f4a_7c15);
    let mut free_at = [0.0f64; 4];
    let records = (1..=trials)
        .map(|no| {
            let lr = 10f64.powf(-5.0 + 4.0 * draw.unit());
            let units = 8 + (draw.unit() * 248.0) as i64;
            let activation = ["relu", "tanh", "logistic", "identity"][(draw.unit() * 4.0) as usize];
            let dropout = 0.6 * draw.unit();
            let worker = (0..4)
                .min_by(|a, b| free_at[*a].total_cmp(&free_at[*b]))
                .unwrap_or(0);
            let began = free_at[worker];
            let took = 30.0 + 270.0 * draw.unit();
            free_at[worker] = began + took;
            let errored = draw.unit() < 0.03;
            let score = (!errored).then(|| {
                let fit = 1.0 - (lr.log10() + 2.5).abs() / 3.0 - (dropout - 0.2).abs();
                (0.5 + 0.4 * fit + 0.05 * draw.unit()).clamp(0.0, 1.0)
            });
            let knobs = serde_json::from_value(json!({
                "learning_rate": lr, "hidden_layer_size": units,
                "activation": activation, "dropout": dropout,
            }))
            .unwrap();
            let at = |secs: f64| start() + Duration::from_secs_f64(secs);
            TrialRecord {
                trial: Trial {
                    id: Uuid::new_v4(),
                    no: no as i32,
                    worker_id: Some(Uuid::new_v4()),
                    proposal: Proposal::new(no as u32, knobs),
                    datetime_started: at(began),
                    datetime_stopped: Some(at(began + took)),
                    status: if errored {
                        TrialStatus::Errored
                    } else {
                        TrialStatus::Completed
                    },
                    model_name: sub.model_name.clone(),
                    score,
                    is_params_saved: !errored,
                    error: None,
                    pruned: None,
                },
                train_job_id: sub.train_job_id,
                sub_train_job_id: sub.id,
                params_key: None,
                params_sha256: None,
            }
        })
        .collect();
    (records, vec![sub])
}

/// A trial's logs: a loss plot by epoch, an accuracy plot by time, `entries` metrics entries
/// and a message every tenth entry.
fn logs(entries: usize) -> TrialLogs {
    let mut draw = Draw(42);
    let plot = |title: &str, metrics: &[&str], x_axis: Option<&str>| LogPlot {
        title: title.to_owned(),
        metrics: metrics.iter().map(|m| (*m).to_owned()).collect(),
        x_axis: x_axis.map(str::to_owned),
        time: start(),
    };
    let metrics = (0..entries)
        .map(|i| {
            let epoch = i as f64;
            let time = start() + Duration::from_millis(500 * i as u64);
            let entry = json!({
                "time": rafiki_types::time::to_wire(&time),
                "epoch": i,
                "loss": 2.0 / (1.0 + epoch / 50.0) + 0.05 * draw.unit(),
                "val_loss": 2.2 / (1.0 + epoch / 60.0) + 0.08 * draw.unit(),
                "accuracy": 1.0 - 0.9 / (1.0 + epoch / 80.0),
            });
            serde_json::from_value(entry).unwrap()
        })
        .collect();
    let messages = (0..entries / 10)
        .map(|i| LogMessage {
            time: start() + Duration::from_secs(5 * i as u64),
            message: format!("epoch {} done", i * 10),
        })
        .collect();
    TrialLogs {
        plots: vec![
            plot("Loss over epochs", &["loss", "val_loss"], Some("epoch")),
            plot("Accuracy", &["accuracy"], None),
        ],
        metrics,
        messages,
    }
}

/// Runs `render` `runs` times after a warm-up; prints the median, p99 and slowest time.
fn measure(what: &str, runs: usize, render: impl Fn() -> String) -> String {
    let html = render();
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let began = Instant::now();
            std::hint::black_box(render());
            began.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
    println!(
        "{what}: median {:.2} ms, p99 {:.2} ms, max {:.2} ms over {runs} runs; {} KiB of HTML",
        at(0.5).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        times[times.len() - 1].as_secs_f64() * 1e3,
        html.len() / 1024,
    );
    html
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs = args
        .iter()
        .find_map(|a| a.parse::<usize>().ok())
        .unwrap_or(200);
    let html_dir = args
        .iter()
        .position(|a| a == "--html")
        .and_then(|i| args.get(i + 1));

    let (trials, subs) = job(1000);
    let now = trials
        .iter()
        .filter_map(|t| t.trial.datetime_stopped)
        .max()
        .unwrap_or_else(start);
    let job_html = measure("job tuning plots, 1,000 trials, 4 knobs", runs, || {
        tuning(&trials, &subs, now).into_string()
    });
    let logs = logs(1000);
    let trial_html = measure("trial charts, 2 plots, 1,000 metrics entries", runs, || {
        trial_charts(&logs, start()).into_string()
    });
    if let Some(dir) = html_dir {
        let css = include_str!("../src/console/assets/console.css");
        for (name, body) in [("job", job_html), ("trial", trial_html)] {
            let page = format!(
                "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
                 <style>{css}</style></head><body><main>{body}</main></body></html>"
            );
            let path = std::path::Path::new(dir).join(format!("{name}.html"));
            std::fs::write(&path, page).expect("write the page");
            println!("wrote {}", path.display());
        }
    }
}
