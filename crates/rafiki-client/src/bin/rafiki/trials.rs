//! `rafiki trials ...`: a train job's trials, the best ones, one trial, and its logs.

use clap::Subcommand;
use uuid::Uuid;

use crate::context::Context;
use crate::failure::Failure;
use crate::output::{logs, print_json, tables};
use crate::train::AppVersion;

/// `rafiki trials ...`
#[derive(Debug, Subcommand)]
pub enum TrialsCommand {
    /// List a train job's trials, newest first
    List {
        /// Which train job
        #[command(flatten)]
        job: AppVersion,
    },
    /// The best trials with saved parameters, by score
    Best {
        /// Which train job
        #[command(flatten)]
        job: AppVersion,
        /// How many
        #[arg(long, default_value_t = 2)]
        max_count: u32,
    },
    /// Show one trial
    Show {
        /// The trial's id
        id: Uuid,
    },
    /// A trial's messages, and its metrics drawn as charts
    Logs {
        /// The trial's id
        id: Uuid,
        /// Chart width in characters
        #[arg(long, default_value_t = 60)]
        width: usize,
        /// Chart height in lines
        #[arg(long, default_value_t = 12)]
        height: usize,
    },
}

/// `rafiki trials ...`
pub async fn run(ctx: &Context, cmd: TrialsCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        TrialsCommand::List { job } => {
            let trials = client
                .get_trials_of_train_job(&job.app, job.app_version)
                .await?;
            ctx.out.show(&trials, |t| tables::trials(t));
        }
        TrialsCommand::Best { job, max_count } => {
            let trials = client
                .get_best_trials_of_train_job(&job.app, job.app_version, max_count)
                .await?;
            ctx.out.show(&trials, |t| tables::trials(t));
        }
        TrialsCommand::Show { id } => {
            let trial = client.get_trial(id).await?;
            ctx.out.show(&trial, tables::trial);
        }
        TrialsCommand::Logs { id, width, height } => {
            let logs = client.get_trial_logs(id).await?;
            if ctx.out.json {
                print_json(&logs);
            } else {
                print!("{}", logs::render_logs(&logs, width, height));
            }
        }
    }
    Ok(())
}
