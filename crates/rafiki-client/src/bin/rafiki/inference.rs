//! `rafiki inference ...`: deploying a train job's best trials behind a predictor, its status,
//! listings and stopping it.

use clap::Subcommand;
use rafiki_client::{Budget, InferenceBudgetOption};
use serde_json::json;
use uuid::Uuid;

use crate::context::{Context, JobsOf};
use crate::failure::Failure;
use crate::output::tables;
use crate::train::AppVersion;

/// `rafiki inference ...`
#[derive(Debug, Subcommand)]
pub enum InferenceCommand {
    /// Deploy the best trials of a stopped train job
    Create {
        /// Which train job
        #[command(flatten)]
        job: AppVersion,
        /// GPUs for the whole deployment [client default: 0]
        #[arg(long)]
        gpus: Option<i64>,
    },
    /// The running inference job of a train job, with its predictor host
    Status {
        /// Which train job
        #[command(flatten)]
        job: AppVersion,
    },
    /// List inference jobs: of an app, or all of a user's
    List {
        /// Only this app's jobs
        #[arg(long, conflicts_with = "user")]
        app: Option<String>,
        /// This user's jobs (admins) [default: yours]
        #[arg(long)]
        user: Option<Uuid>,
    },
    /// Stop the running inference job of a train job
    Stop {
        /// Which train job
        #[command(flatten)]
        job: AppVersion,
    },
}

/// `rafiki inference ...`
pub async fn run(ctx: &Context, cmd: InferenceCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        InferenceCommand::Create { job, gpus } => {
            let mut budget = Budget::new();
            if let Some(gpus) = gpus {
                budget.insert(InferenceBudgetOption::GPU_COUNT.to_owned(), json!(gpus));
            }
            let created = client
                .create_inference_job(&job.app, job.app_version, budget)
                .await?;
            ctx.out.say(&created, |j| {
                format!(
                    "Deploying {} version {}: inference job {}, predictor at {}.",
                    j.app, j.app_version, j.id, j.predictor_host
                )
            });
        }
        InferenceCommand::Status { job } => {
            let job = client
                .get_running_inference_job(&job.app, job.app_version)
                .await?;
            ctx.out.show(&job, tables::inference_job);
        }
        InferenceCommand::List { app, user } => {
            let jobs = match JobsOf::new(app, user, &client)? {
                JobsOf::App(app) => client.get_inference_jobs_of_app(&app).await?,
                JobsOf::User(user) => client.get_inference_jobs_by_user(user).await?,
            };
            ctx.out.show(&jobs, |jobs| tables::inference_jobs(jobs));
        }
        InferenceCommand::Stop { job } => {
            let stopped = client.stop_inference_job(&job.app, job.app_version).await?;
            ctx.out.say(&stopped, |j| {
                format!(
                    "Stopped the inference job of {} version {}.",
                    j.app, j.app_version
                )
            });
        }
    }
    Ok(())
}
