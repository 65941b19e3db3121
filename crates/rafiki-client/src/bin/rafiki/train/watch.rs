//! `rafiki train watch` (and `train create --watch`): following a train job until it ends.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::time::Duration;

use rafiki_client::types::status::{JobStatus, TrialStatus};
use rafiki_client::Client;
use uuid::Uuid;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::progress::{self, Progress};

/// Follows a train job until it is no longer live: a spinner with its progress at a terminal
/// (a line per change otherwise, a JSON object per change with `--json`), and a line per
/// finished trial. An ERRORED job is a failure.
pub async fn watch(
    ctx: &Context,
    client: &Client,
    app: &str,
    app_version: i32,
    interval: f64,
) -> Result<(), Failure> {
    // Pin the version, so a newer job of the app does not take over the watch.
    let version = client.get_train_job(app, app_version).await?.app_version;
    let interval = Duration::from_secs_f64(interval.clamp(0.1, 3600.0));
    let live = !ctx.out.json && std::io::stderr().is_terminal();
    let spinner = progress::spinner(live);
    let mut reported: HashMap<Uuid, TrialStatus> = HashMap::new();
    let mut last: Option<Progress> = None;
    let job = loop {
        let job = client.get_train_job(app, version).await?;
        let trials = client.get_trials_of_train_job(app, version).await?;
        for t in trials.iter().rev() {
            let finished = matches!(
                t.status,
                TrialStatus::Completed | TrialStatus::Errored | TrialStatus::Pruned
            );
            if finished && reported.insert(t.id, t.status) != Some(t.status) && !ctx.out.json {
                spinner.suspend(|| println!("{}", progress::finished_trial(t)));
            }
        }
        let progress = Progress::of(&job, &trials);
        if last.as_ref() != Some(&progress) {
            if ctx.out.json {
                println!("{}", serde_json::to_string(&progress).unwrap_or_default());
            } else if live {
                spinner.set_message(progress.line(app, version));
            } else {
                println!("{}", progress.line(app, version));
            }
            last = Some(progress);
        }
        if !job.status.is_live() {
            break job;
        }
        tokio::time::sleep(interval).await;
    };
    spinner.finish_and_clear();
    let progress = last.map(|p| p.line(app, version)).unwrap_or_default();
    if job.status == JobStatus::Errored {
        return Err(Failure::new(
            "TrainJobErrored",
            format!(
                "{progress}: {}",
                job.error.as_deref().unwrap_or("no reason given")
            ),
        ));
    }
    if live {
        println!("{progress}");
    }
    Ok(())
}
