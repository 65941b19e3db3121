//! `rafiki`: the command-line client of a Rafiki-rs admin, built on `rafiki-client`.
//!
//! `rafiki login EMAIL` saves a session (see `credentials`); later commands run as that user.
//! Results print as tables, or as JSON with `--json`. A failure prints `ErrorName: message` on
//! stderr and exits with status 1 (2 for a malformed command line).
//!
//! Each command group is a module with its own clap enum and what its commands do (`users`,
//! `datasets`, `models`, `train`, `trials`, `params`, `inference`, `predict`, `stop_all`, `audit`, and
//! `session` for login, logout and whoami); this file holds the top-level command line and the
//! dispatch. What they print is made in `output`, the local files they read and write are
//! handled in `files` (and the saved session in `credentials`), and `context` gives each one
//! the admin's address, its session and the output settings.

mod audit;
mod context;
mod credentials;
mod datasets;
mod failure;
mod files;
mod inference;
mod models;
mod output;
mod params;
mod predict;
mod session;
mod stop_all;
mod train;
mod trials;
mod users;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::audit::AuditArgs;
use crate::context::Context;
use crate::datasets::DatasetsCommand;
use crate::failure::Failure;
use crate::inference::InferenceCommand;
use crate::models::ModelsCommand;
use crate::params::ParamsCommand;
use crate::predict::PredictArgs;
use crate::train::TrainCommand;
use crate::trials::TrialsCommand;
use crate::users::UsersCommand;

/// Command-line client of a Rafiki-rs admin.
#[derive(Debug, Parser)]
#[command(name = "rafiki", version, propagate_version = true)]
pub struct Cli {
    /// The admin's host [default: the one you logged in to, else 127.0.0.1]
    #[arg(long, env = "RAFIKI_HOST", global = true)]
    host: Option<String>,
    /// The admin's port [default: the one you logged in to, else 3000]
    #[arg(long, env = "RAFIKI_PORT", global = true)]
    port: Option<u16>,
    /// Print JSON (the server's answers) instead of tables
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Log in and save the session for later commands
    Login {
        /// Your email
        email: String,
        /// Your password [default: prompted, or read from stdin when it is not a terminal]
        #[arg(long, env = "RAFIKI_PASSWORD", hide_env_values = true)]
        password: Option<String>,
    },
    /// Forget the saved session
    Logout,
    /// Show who is logged in (from the saved session)
    Whoami,
    /// Manage users (admins)
    #[command(subcommand)]
    Users(UsersCommand),
    /// Upload and list datasets
    #[command(subcommand)]
    Datasets(DatasetsCommand),
    /// Upload, list, show, download and delete models
    #[command(subcommand)]
    Models(ModelsCommand),
    /// Create, watch, list and stop train jobs
    #[command(subcommand)]
    Train(TrainCommand),
    /// Look at trials: listings, the best ones, one trial, its logs with charts
    #[command(subcommand)]
    Trials(TrialsCommand),
    /// Download and inspect a trial's saved parameters
    #[command(subcommand)]
    Params(ParamsCommand),
    /// Deploy train jobs behind a predictor; status and stop
    #[command(subcommand)]
    Inference(InferenceCommand),
    /// Send queries to a predictor
    Predict(PredictArgs),
    /// Stop every train and inference job of every user (superadmin)
    StopAll,
    /// Show the audit trail: who did what, newest first (admins)
    Audit(AuditArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("RuntimeError: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("{failure}");
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let ctx = Context::new(&cli)?;
    match cli.command {
        Command::Login { email, password } => session::login(&ctx, &email, password).await,
        Command::Logout => session::logout(&ctx),
        Command::Whoami => session::whoami(&ctx),
        Command::Users(cmd) => users::run(&ctx, cmd).await,
        Command::Datasets(cmd) => datasets::run(&ctx, cmd).await,
        Command::Models(cmd) => models::run(&ctx, cmd).await,
        Command::Train(cmd) => train::run(&ctx, cmd).await,
        Command::Trials(cmd) => trials::run(&ctx, cmd).await,
        Command::Params(cmd) => params::run(&ctx, cmd).await,
        Command::Inference(cmd) => inference::run(&ctx, cmd).await,
        Command::Predict(args) => predict::run(&ctx, args).await,
        Command::StopAll => stop_all::run(&ctx).await,
        Command::Audit(args) => audit::run(&ctx, args).await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn versions_default_to_the_latest_and_take_negative_numbers() {
        let cli = Cli::try_parse_from(["rafiki", "train", "show", "wine"]).unwrap();
        let Command::Train(TrainCommand::Show { job }) = cli.command else {
            panic!("parsed as {cli:?}");
        };
        assert_eq!((job.app.as_str(), job.app_version), ("wine", -1));
        let cli = Cli::try_parse_from(["rafiki", "trials", "best", "wine", "3", "--json"]).unwrap();
        assert!(cli.json);
        let Command::Trials(TrialsCommand::Best { job, max_count }) = cli.command else {
            panic!("parsed as {cli:?}");
        };
        assert_eq!((job.app_version, max_count), (3, 2));
    }

    #[test]
    fn a_dataset_is_a_file_or_a_url() {
        let parse = |args: &[&str]| {
            Cli::try_parse_from(
                ["rafiki", "datasets", "upload", "d", "--task", "T"]
                    .iter()
                    .chain(args),
            )
        };
        assert!(parse(&["f.csv"]).is_ok());
        assert!(parse(&["--url", "http://x/y"]).is_ok());
        assert!(parse(&[]).is_err());
        assert!(parse(&["f.csv", "--url", "http://x/y"]).is_err());
    }
}
