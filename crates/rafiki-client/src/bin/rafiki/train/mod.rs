//! `rafiki train ...`: creating, following, listing, showing and stopping train jobs, and
//! [`AppVersion`], how every command names a train job.

mod watch;

use clap::{Args, Subcommand};
use rafiki_client::{Budget, BudgetOption};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::context::{Context, JobsOf};
use crate::failure::Failure;
use crate::output::tables;

/// An app and version: `APP [VERSION]`, the latest version by default.
#[derive(Debug, Args)]
pub struct AppVersion {
    /// The app
    pub app: String,
    /// Its version [default: the latest]
    #[arg(allow_negative_numbers = true, default_value_t = rafiki_client::LATEST)]
    pub app_version: i32,
}

/// `rafiki train ...`
#[derive(Debug, Subcommand)]
pub enum TrainCommand {
    /// Create and start a train job
    Create {
        /// The app (versions count per app)
        app: String,
        /// The task, e.g. TABULAR_CLASSIFICATION
        #[arg(long)]
        task: String,
        /// The training dataset's id
        #[arg(long)]
        train_dataset: Uuid,
        /// The validation dataset's id
        #[arg(long)]
        val_dataset: Uuid,
        /// A model to tune (repeatable) [default: every model available for the task]
        #[arg(long = "model")]
        models: Vec<Uuid>,
        /// Hours per model [client default: 0.1]
        #[arg(long)]
        time_hours: Option<f64>,
        /// Trials per model (-1: no limit) [server default: -1]
        #[arg(long, allow_negative_numbers = true)]
        trial_count: Option<i64>,
        /// GPUs for the whole job [client default: 0]
        #[arg(long)]
        gpus: Option<i64>,
        /// Train workers sharing the trials of each model without GPUs [server default: 1]
        #[arg(long)]
        cpu_workers: Option<i64>,
        /// Extra arguments of every model's train(), as a JSON object
        #[arg(long)]
        train_args: Option<String>,
        /// Early stopping of bad trials
        #[command(flatten)]
        pruning: Box<PruneArgs>,
        /// Then follow the job until it ends (see `rafiki train watch`)
        #[arg(long)]
        watch: bool,
        /// Seconds between two looks when watching
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
    },
    /// Follow a train job until it ends: trials done, best score, status
    Watch {
        /// Which train job
        #[command(flatten)]
        job: AppVersion,
        /// Seconds between two looks
        #[arg(long, default_value_t = 2.0)]
        interval: f64,
    },
    /// List train jobs: of an app, or all of a user's
    List {
        /// Only this app's versions
        #[arg(long, conflicts_with = "user")]
        app: Option<String>,
        /// This user's jobs (admins) [default: yours]
        #[arg(long)]
        user: Option<Uuid>,
    },
    /// Show one train job
    Show {
        /// Which train job
        #[command(flatten)]
        job: AppVersion,
    },
    /// Stop a train job (returns once it is stopped)
    Stop {
        /// Which train job
        #[command(flatten)]
        job: AppVersion,
    },
}

/// Early stopping of bad trials (docs/pruning.md): budget options, sent only when given; the
/// server checks them and fills in its defaults.
#[derive(Debug, Args)]
pub struct PruneArgs {
    /// Stop bad trials early: MEDIAN or ASHA (needs --prune-metric) [default: never]
    #[arg(long)]
    pruner: Option<String>,
    /// The logged metric that judges trials, e.g. val_acc
    #[arg(long)]
    prune_metric: Option<String>,
    /// MAX (higher is better) or MIN [server default: MAX]
    #[arg(long)]
    prune_mode: Option<String>,
    /// The logged metric that numbers the steps, e.g. epoch [default: the count of values]
    #[arg(long)]
    prune_step_metric: Option<String>,
    /// No trial is judged before this step; ASHA's first rung [server default: 1]
    #[arg(long)]
    prune_min_step: Option<f64>,
    /// ASHA's reduction factor eta [server default: 3]
    #[arg(long)]
    prune_reduction_factor: Option<u32>,
    /// Other trials the median rule waits for at a step [server default: 4]
    #[arg(long)]
    prune_warmup_trials: Option<u32>,
}

impl PruneArgs {
    /// Puts the options given into `budget`.
    fn add_to(self, budget: &mut Budget) {
        let options = [
            (BudgetOption::PRUNER, self.pruner.map(Value::from)),
            (
                BudgetOption::PRUNE_METRIC,
                self.prune_metric.map(Value::from),
            ),
            (BudgetOption::PRUNE_MODE, self.prune_mode.map(Value::from)),
            (
                BudgetOption::PRUNE_STEP_METRIC,
                self.prune_step_metric.map(Value::from),
            ),
            (
                BudgetOption::PRUNE_MIN_STEP,
                self.prune_min_step.map(Value::from),
            ),
            (
                BudgetOption::PRUNE_REDUCTION_FACTOR,
                self.prune_reduction_factor.map(Value::from),
            ),
            (
                BudgetOption::PRUNE_WARMUP_TRIALS,
                self.prune_warmup_trials.map(Value::from),
            ),
        ];
        for (key, value) in options {
            if let Some(value) = value {
                budget.insert(key.to_owned(), value);
            }
        }
    }
}

fn parse_json_object(flag: &str, text: &str) -> Result<Value, Failure> {
    match serde_json::from_str::<Value>(text) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(_) => Err(Failure::usage(format!("{flag} must be a JSON object"))),
        Err(e) => Err(Failure::usage(format!("{flag} is not JSON: {e}"))),
    }
}

/// `rafiki train ...`
pub async fn run(ctx: &Context, cmd: TrainCommand) -> Result<(), Failure> {
    let client = ctx.client()?;
    match cmd {
        TrainCommand::Create {
            app,
            task,
            train_dataset,
            val_dataset,
            models,
            time_hours,
            trial_count,
            gpus,
            cpu_workers,
            train_args,
            pruning,
            watch,
            interval,
        } => {
            let train_args = train_args
                .map(|text| parse_json_object("--train-args", &text))
                .transpose()?;
            let mut budget = Budget::new();
            if let Some(hours) = time_hours {
                budget.insert(BudgetOption::TIME_HOURS.to_owned(), json!(hours));
            }
            if let Some(count) = trial_count {
                budget.insert(BudgetOption::MODEL_TRIAL_COUNT.to_owned(), json!(count));
            }
            if let Some(gpus) = gpus {
                budget.insert(BudgetOption::GPU_COUNT.to_owned(), json!(gpus));
            }
            if let Some(workers) = cpu_workers {
                budget.insert(
                    BudgetOption::CPU_WORKERS_PER_MODEL.to_owned(),
                    json!(workers),
                );
            }
            pruning.add_to(&mut budget);
            let models = (!models.is_empty()).then_some(models);
            let job = client
                .create_train_job(
                    &app,
                    &task,
                    train_dataset,
                    val_dataset,
                    budget,
                    models,
                    train_args,
                )
                .await?;
            if watch {
                if !ctx.out.json {
                    println!(
                        "Created train job {} version {}, id {}.",
                        job.app, job.app_version, job.id
                    );
                }
                watch::watch(ctx, &client, &job.app, job.app_version, interval).await?;
            } else {
                ctx.out.say(&job, |j| {
                    format!(
                        "Created train job {} version {}, id {}. Follow it with `rafiki train watch {} {}`.",
                        j.app, j.app_version, j.id, j.app, j.app_version
                    )
                });
            }
        }
        TrainCommand::Watch { job, interval } => {
            watch::watch(ctx, &client, &job.app, job.app_version, interval).await?;
        }
        TrainCommand::List { app, user } => {
            let jobs = match JobsOf::new(app, user, &client)? {
                JobsOf::App(app) => client.get_train_jobs_of_app(&app).await?,
                JobsOf::User(user) => client.get_train_jobs_by_user(user).await?,
            };
            ctx.out.show(&jobs, |jobs| tables::train_jobs(jobs));
        }
        TrainCommand::Show { job } => {
            let job = client.get_train_job(&job.app, job.app_version).await?;
            ctx.out.show(&job, tables::train_job);
        }
        TrainCommand::Stop { job } => {
            let stopped = client.stop_train_job(&job.app, job.app_version).await?;
            ctx.out.say(&stopped, |j| {
                format!("Stopped train job {} version {}.", j.app, j.app_version)
            });
        }
    }
    Ok(())
}
