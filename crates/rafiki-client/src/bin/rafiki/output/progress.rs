//! How long-running commands show progress on stderr: the upload bar of `datasets upload`,
//! and the spinner and lines of `train watch`.

use std::io::IsTerminal;
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use rafiki_client::types::status::{JobStatus, TrialStatus};
use rafiki_client::types::train::{TrainJob, Trial};

use super::{score, Output};

/// A progress bar of `total` bytes on stderr, drawn only when a person is watching it.
pub fn upload_bar(out: Output, total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    if out.json || !std::io::stderr().is_terminal() {
        bar.set_draw_target(ProgressDrawTarget::hidden());
    }
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40.cyan/blue} {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
    ) {
        bar.set_style(style);
    }
    bar
}

/// A spinner on stderr when `live`, else one that draws nothing.
pub fn spinner(live: bool) -> ProgressBar {
    if live {
        let spinner = ProgressBar::new_spinner();
        spinner.enable_steady_tick(Duration::from_millis(120));
        spinner
    } else {
        ProgressBar::hidden()
    }
}

/// Where a train job stands, as `rafiki train watch` shows it.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Progress {
    status: JobStatus,
    #[serde(skip_serializing_if = "Option::is_none")]
    waiting_reason: Option<String>,
    trials_done: usize,
    trials_errored: usize,
    trials_running: usize,
    best_score: Option<f64>,
}

impl Progress {
    /// Where `job` stands, with these trials.
    pub fn of(job: &TrainJob, trials: &[Trial]) -> Self {
        let count = |s: TrialStatus| trials.iter().filter(|t| t.status == s).count();
        Progress {
            status: job.status,
            waiting_reason: job.waiting_reason.clone(),
            trials_done: count(TrialStatus::Completed),
            trials_errored: count(TrialStatus::Errored),
            trials_running: count(TrialStatus::Running) + count(TrialStatus::Pending),
            best_score: trials
                .iter()
                .filter(|t| t.status == TrialStatus::Completed)
                .filter_map(|t| t.score)
                .reduce(f64::max),
        }
    }

    /// The status line.
    pub fn line(&self, app: &str, version: i32) -> String {
        let status = match &self.waiting_reason {
            Some(why) => format!("{}, {why}", self.status),
            None => self.status.to_string(),
        };
        format!(
            "{app} v{version}: {status} | trials done {} (errored {}, running {}) | best score {}",
            self.trials_done,
            self.trials_errored,
            self.trials_running,
            score(self.best_score)
        )
    }
}

/// The line of a finished trial: its score, why it was pruned, or the last line of its error.
pub fn finished_trial(t: &Trial) -> String {
    let outcome = match t.status {
        TrialStatus::Completed => format!("score {}", score(t.score)),
        TrialStatus::Pruned => match &t.pruned {
            Some(p) => format!("pruned at step {} ({}): {}", p.step, p.value, p.reason),
            None => "pruned".to_owned(),
        },
        _ => t
            .error
            .as_deref()
            .and_then(|e| e.lines().rev().find(|l| !l.trim().is_empty()))
            .unwrap_or("no reason given")
            .to_owned(),
    };
    format!(
        "trial {} of {}: {} ({outcome})",
        t.no, t.model_name, t.status
    )
}
