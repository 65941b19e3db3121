//! `rafiki`: the command-line client of a Rafiki-rs admin, built on `rafiki-client`.
//!
//! `rafiki login EMAIL` saves a session (see `credentials`); later commands run as that user.
//! Results print as tables, or as JSON with `--json`. A failure prints `ErrorName: message` on
//! stderr and exits with status 1 (2 for a malformed command line).

mod chart;
mod commands;
mod credentials;
mod output;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use rafiki_client::types::user::UserType;
use rafiki_client::{Client, ClientError};
use uuid::Uuid;

use crate::credentials::Credentials;
use crate::output::Output;

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
}

/// `rafiki users ...`
#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user
    Create {
        /// The new user's email
        email: String,
        /// SUPERADMIN, ADMIN, MODEL_DEVELOPER or APP_DEVELOPER
        #[arg(long = "type", value_parser = parse_user_type)]
        user_type: UserType,
        /// Their password [default: prompted, or read from stdin]
        #[arg(long)]
        password: Option<String>,
    },
    /// List every user
    List,
    /// Ban a user for good
    Ban {
        /// The user's email
        email: String,
    },
}

/// `rafiki datasets ...`
#[derive(Debug, Subcommand)]
pub enum DatasetsCommand {
    /// Upload a dataset file (with a progress bar), or have the server download a URL
    Upload {
        /// The dataset's name
        name: String,
        /// The file to upload
        #[arg(required_unless_present = "url")]
        file: Option<PathBuf>,
        /// Its task, e.g. IMAGE_CLASSIFICATION
        #[arg(long)]
        task: String,
        /// A http(s) URL the server downloads instead of a file
        #[arg(long, conflicts_with = "file")]
        url: Option<String>,
    },
    /// List your datasets
    List {
        /// Only datasets of this task
        #[arg(long)]
        task: Option<String>,
    },
}

/// `rafiki models ...`
#[derive(Debug, Subcommand)]
pub enum ModelsCommand {
    /// Upload a model: a Python file defining a model class
    Upload {
        /// The model's name (unique among yours)
        name: String,
        /// The Python file
        file: PathBuf,
        /// Its task, e.g. TABULAR_CLASSIFICATION
        #[arg(long)]
        task: String,
        /// The model class defined in the file
        #[arg(long = "class")]
        model_class: String,
        /// Its Python dependencies as JSON, e.g. '{"scikit-learn": "1.5.2"}'
        #[arg(long)]
        dependencies: Option<String>,
        /// Let every user train with it (default: private)
        #[arg(long)]
        public: bool,
        /// The worker image to run it in [default: the server's]
        #[arg(long)]
        docker_image: Option<String>,
        /// Pins with no distribution for the workers' Python: `strict` fails the model,
        /// `nearest` installs the nearest release instead [default: the server's]
        #[arg(long)]
        dependency_pins: Option<String>,
    },
    /// List the models you may use (yours and public ones)
    List {
        /// Only models of this task
        #[arg(long)]
        task: Option<String>,
    },
    /// Show one model
    Show {
        /// The model's id
        id: Uuid,
    },
    /// Download a model's file
    Download {
        /// The model's id
        id: Uuid,
        /// Where to save it [default: <model name>.py]
        out: Option<PathBuf>,
    },
    /// Delete a model no train job uses
    Delete {
        /// The model's id
        id: Uuid,
    },
}

/// An app and version: `APP [VERSION]`, the latest version by default.
#[derive(Debug, Args)]
pub struct AppVersion {
    /// The app
    app: String,
    /// Its version [default: the latest]
    #[arg(allow_negative_numbers = true, default_value_t = rafiki_client::LATEST)]
    app_version: i32,
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
        /// Extra arguments of every model's train(), as a JSON object
        #[arg(long)]
        train_args: Option<String>,
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

/// `rafiki params ...`
#[derive(Debug, Subcommand)]
pub enum ParamsCommand {
    /// Save a trial's parameters file and list what it holds
    Download {
        /// The trial's id
        trial_id: Uuid,
        /// Where to save it [default: <trial id>.params]
        out: Option<PathBuf>,
    },
    /// List what a trial's parameters hold, without saving them
    Show {
        /// The trial's id
        trial_id: Uuid,
    },
}

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

/// `rafiki predict ...`
#[derive(Debug, Args)]
pub struct PredictArgs {
    /// JSON queries: a list of queries, or {"query": q} / {"queries": [...]}; `-` or nothing
    /// for stdin
    file: Option<PathBuf>,
    /// The predictor's host:port
    #[arg(long, required_unless_present = "app")]
    predictor: Option<String>,
    /// Find the predictor of this app's running inference job instead
    #[arg(long, conflicts_with = "predictor")]
    app: Option<String>,
    /// The app's version with --app [default: the latest]
    #[arg(long, allow_negative_numbers = true, default_value_t = rafiki_client::LATEST)]
    app_version: i32,
    /// The input is one query (e.g. one image as nested lists), not a list of them
    #[arg(long)]
    one: bool,
}

fn parse_user_type(text: &str) -> Result<UserType, String> {
    text.trim()
        .to_ascii_uppercase()
        .replace('-', "_")
        .parse()
        .map_err(|_| "expected SUPERADMIN, ADMIN, MODEL_DEVELOPER or APP_DEVELOPER".to_owned())
}

/// A failed command, shown as `name: message`.
#[derive(Debug)]
pub struct Failure {
    name: String,
    message: String,
    /// What to do about it, on a line of its own.
    hint: Option<String>,
}

impl Failure {
    /// A failure with this name and message.
    pub fn new(name: &str, message: impl Into<String>) -> Self {
        Failure {
            name: name.to_owned(),
            message: message.into(),
            hint: None,
        }
    }

    /// A local file that could not be read or written.
    pub fn io(path: &Path, err: std::io::Error) -> Self {
        Failure::new("IoError", format!("{}: {err}", path.display()))
    }

    /// A command line that cannot be carried out as given.
    pub fn usage(message: impl Into<String>) -> Self {
        Failure::new("UsageError", message)
    }
}

impl From<ClientError> for Failure {
    fn from(err: ClientError) -> Self {
        let name = err.name().to_owned();
        let text = err.to_string();
        let message = text
            .strip_prefix(&format!("{name}: "))
            .unwrap_or(&text)
            .to_owned();
        let hint = (err.status() == Some(401))
            .then(|| "Your session may have expired: run `rafiki login EMAIL` again.".to_owned());
        Failure {
            name,
            message,
            hint,
        }
    }
}

/// What every command needs: where the admin is, the saved session and how to print.
pub struct Context {
    host: String,
    port: u16,
    saved: Option<Credentials>,
    out: Output,
}

impl Context {
    fn new(cli: &Cli) -> Result<Self, Failure> {
        let saved = credentials::load()?;
        let host = cli
            .host
            .clone()
            .or_else(|| saved.as_ref().map(|c| c.host.clone()))
            .unwrap_or_else(|| "127.0.0.1".to_owned());
        let port = cli
            .port
            .or_else(|| saved.as_ref().map(|c| c.port))
            .unwrap_or(3000);
        Ok(Context {
            host,
            port,
            saved,
            out: Output { json: cli.json },
        })
    }

    /// A client without a session.
    fn anonymous(&self) -> Client {
        Client::new(self.host.clone(), self.port)
    }

    /// A client with the saved session. A session saved for another admin is not sent here.
    fn client(&self) -> Result<Client, Failure> {
        let not_logged_in = |detail: String| {
            let mut failure = Failure::new(
                "NotLoggedInError",
                format!("not logged in to {}:{}{detail}", self.host, self.port),
            );
            failure.hint = Some("Run `rafiki login EMAIL` first.".to_owned());
            failure
        };
        match &self.saved {
            Some(c) if c.host == self.host && c.port == self.port => {
                let mut client = self.anonymous();
                client.set_session(c.session.clone());
                Ok(client)
            }
            Some(c) => Err(not_logged_in(format!(
                " (the saved session is for {}:{})",
                c.host, c.port
            ))),
            None => Err(not_logged_in(String::new())),
        }
    }
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
            eprintln!("{}: {}", failure.name, failure.message);
            if let Some(hint) = failure.hint {
                eprintln!("{hint}");
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(cli: Cli) -> Result<(), Failure> {
    let ctx = Context::new(&cli)?;
    match cli.command {
        Command::Login { email, password } => commands::login(&ctx, &email, password).await,
        Command::Logout => commands::logout(&ctx),
        Command::Whoami => commands::whoami(&ctx),
        Command::Users(cmd) => commands::users(&ctx, cmd).await,
        Command::Datasets(cmd) => commands::datasets(&ctx, cmd).await,
        Command::Models(cmd) => commands::models(&ctx, cmd).await,
        Command::Train(cmd) => commands::train(&ctx, cmd).await,
        Command::Trials(cmd) => commands::trials(&ctx, cmd).await,
        Command::Params(cmd) => commands::params(&ctx, cmd).await,
        Command::Inference(cmd) => commands::inference(&ctx, cmd).await,
        Command::Predict(args) => commands::predict(&ctx, args).await,
        Command::StopAll => commands::stop_all(&ctx).await,
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
    fn user_types_are_read_leniently() {
        assert_eq!(
            parse_user_type("model-developer").unwrap(),
            UserType::ModelDeveloper
        );
        assert_eq!(parse_user_type("ADMIN").unwrap(), UserType::Admin);
        assert!(parse_user_type("owner").is_err());
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
