//! Train mode: tune one model of a train job until the admin says the budget is spent.
//!
//! job -> downloads (cached) -> dependencies -> Python runtime -> load the class -> knob config
//! -> loop { next trial -> train -> evaluate -> dump and upload parameters -> destroy -> logs ->
//! finish }. What ends the model rather than the worker (a class that does not load, an invalid
//! knob config, dependencies that do not install, too many failed trials in a row, an
//! interpreter that cannot run the runtime at all) is reported with `POST /internal/train/fail`,
//! after which the worker exits 0 like after `BUDGET_SPENT`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rafiki_types::internal::{
    EnvironmentReport, LogEntry, LogKind, NextTrial, TrialAssignment, TrialOutcome, WorkerModel,
};
use rafiki_types::proposal::ParamsType;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use uuid::Uuid;

use crate::cache::{BlobCache, CacheError};
use crate::config::WorkerConfig;
use crate::deps::{DepsError, Installer};
use crate::envs::{EnvStore, Lease};
use crate::runtime::{EventSource, Runtime, RuntimeConfig, RuntimeError, RuntimeEvent};
use rafiki_service::client::{AdminClient, ClientError};

/// Most entries in one `POST /internal/trials/{id}/logs`.
const MAX_BATCH: usize = 500;
/// How long the forwarder waits for more entries before it posts a batch.
const BATCH_WINDOW: Duration = Duration::from_millis(250);
/// How long the runtime may take to shut down politely at the end.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// How a train worker ended on purpose (exit code 0).
#[derive(Debug, Clone, PartialEq)]
pub enum TrainExit {
    /// The admin answered `BUDGET_SPENT` after `trials` trials of this worker.
    BudgetSpent {
        /// Trials this worker ran.
        trials: u32,
    },
    /// The worker gave the model up with `POST /internal/train/fail`.
    Failed {
        /// What it reported.
        error: String,
    },
    /// The admin stopped the service (a 401).
    Stopped,
}

/// Why a train worker crashed (non-zero exit: the admin restarts it).
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// A call to the admin failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// A download could not be cached.
    #[error(transparent)]
    Cache(#[from] CacheError),
    /// The worker's Python environment is broken.
    #[error("dependencies: {0}")]
    Deps(DepsError),
    /// The Python runtime could not be started.
    #[error(transparent)]
    Runtime(#[from] RuntimeError),
    /// A local file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or folder.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

impl TrainError {
    /// Whether this is the admin saying the service was stopped.
    fn is_stopped(&self) -> bool {
        matches!(
            self,
            TrainError::Client(ClientError::Stopped)
                | TrainError::Cache(CacheError::Client(ClientError::Stopped))
        )
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_owned();
    move |source| TrainError::Io { path, source }
}

/// Runs train mode to its end.
pub async fn run(config: &WorkerConfig) -> Result<TrainExit, TrainError> {
    let client = AdminClient::new(&config.admin_url, &config.service_token, config.retry)?;
    match run_with(config, &client).await {
        Err(e) if e.is_stopped() => {
            tracing::info!("the admin stopped this service; exiting");
            Ok(TrainExit::Stopped)
        }
        other => other,
    }
}

async fn run_with(config: &WorkerConfig, client: &AdminClient) -> Result<TrainExit, TrainError> {
    // The child runs in another folder, so every path it is given must be absolute.
    let work_dir = std::path::absolute(&config.work_dir).map_err(io_error(&config.work_dir))?;
    let job = client.train_job().await?;
    tracing::info!(
        train_job = %job.train_job_id,
        sub_train_job = %job.sub_train_job_id,
        model = %job.model.name,
        task = %job.task,
        "got the train job"
    );

    let cache = BlobCache::new(work_dir.join("cache"));
    let model_path = cache
        .fetch(
            client,
            "models",
            &job.model.file,
            ".py",
            &format!("/internal/models/{}/file", job.model.id),
        )
        .await?;
    let mut datasets = Vec::new();
    for blob in [&job.train_dataset, &job.val_dataset] {
        let url = format!("/internal/datasets/{}", blob.id);
        datasets.push(cache.fetch(client, "datasets", blob, "", &url).await?);
    }
    let [train_path, val_path]: [PathBuf; 2] = datasets.try_into().expect("two datasets");

    let environment = match model_runtime(config, &work_dir, &job.model).await {
        Ok(environment) => environment,
        Err(ModelRuntimeError::Install(reason)) => {
            let error = format!("cannot install the model's dependencies: {reason}");
            return give_up(client, None, error).await;
        }
        Err(ModelRuntimeError::Worker(e)) => return Err(e),
    };
    report_environment(client, &environment.report).await?;
    // Held until the worker ends: an environment in use is never evicted.
    let _lease = environment.lease;
    let env_warnings = environment.report.warnings;
    let runtime_config = environment.runtime;
    let scratch = runtime_config.cwd.clone();
    let host = ModelHost::start(runtime_config, model_path, job.model.model_class.clone()).await;
    let mut host = match host {
        Ok(host) => host,
        Err(HostError::Load(e)) => {
            let error = format!(
                "cannot load model class `{}`: {}",
                job.model.model_class,
                e.report()
            );
            return give_up(client, None, error).await;
        }
        Err(HostError::Start(e @ RuntimeError::Unusable { .. })) => {
            return give_up(client, None, e.to_string()).await;
        }
        Err(HostError::Start(e)) => return Err(e.into()),
    };

    let knob_config = match host.runtime.get_knob_config(&mut log_outside_trials).await {
        Ok(config) => config,
        Err(e) => {
            let error = format!("get_knob_config() failed: {}", e.report());
            return give_up(client, Some(host), error).await;
        }
    };
    match client.put_knob_config(&knob_config).await {
        Ok(accepted) => {
            tracing::info!(advisor = %accepted.advisor_type, "knob config accepted")
        }
        Err(ClientError::Rejected {
            status: 400,
            message,
            ..
        }) => {
            let error = format!("the knob config is invalid: {message}");
            return give_up(client, Some(host), error).await;
        }
        Err(e) => return Err(e.into()),
    }

    let trainer = Trainer {
        client,
        env_warnings,
        scratch,
        train_path,
        val_path,
        train_args: job.train_args.clone(),
    };
    let mut trials = 0u32;
    let mut failures_in_a_row = 0u32;
    loop {
        let trial = match client.next_trial().await? {
            NextTrial::BudgetSpent => {
                tracing::info!(trials, "budget spent; exiting");
                host.runtime.shutdown(SHUTDOWN_GRACE).await;
                return Ok(TrainExit::BudgetSpent { trials });
            }
            NextTrial::Trial { trial } => trial,
        };
        trials += 1;
        let (outcome, restart) = trainer.run_trial(&mut host.runtime, &trial).await?;
        client.finish_trial(trial.id, &outcome).await?;
        match outcome {
            TrialOutcome::Completed { .. } => failures_in_a_row = 0,
            TrialOutcome::Errored { error } => {
                failures_in_a_row += 1;
                if failures_in_a_row >= config.max_consecutive_failures {
                    let error = format!(
                        "{failures_in_a_row} trials in a row failed; the last one: {error}"
                    );
                    return give_up(client, Some(host), error).await;
                }
            }
        }
        if restart {
            match host.restart().await {
                Ok(()) => {}
                Err(HostError::Load(e)) => {
                    let error = format!(
                        "cannot load model class `{}` again after the runtime died: {}",
                        job.model.model_class,
                        e.report()
                    );
                    return give_up(client, Some(host), error).await;
                }
                Err(HostError::Start(e @ RuntimeError::Unusable { .. })) => {
                    return give_up(client, Some(host), e.to_string()).await;
                }
                Err(HostError::Start(e)) => return Err(e.into()),
            }
        }
    }
}

/// Reports the model as failed and ends.
async fn give_up(
    client: &AdminClient,
    host: Option<ModelHost>,
    error: String,
) -> Result<TrainExit, TrainError> {
    tracing::error!("giving the model up: {error}");
    match client.fail(&error).await {
        Ok(()) => {}
        // The admin may have ended the sub-job already (e.g. on an invalid knob config); a
        // restart would end the same way, so this still ends on purpose.
        Err(e @ ClientError::Rejected { .. }) => tracing::warn!("reporting the failure: {e}"),
        Err(e) => return Err(e.into()),
    }
    if let Some(host) = host {
        host.runtime.shutdown(SHUTDOWN_GRACE).await;
    }
    Ok(TrainExit::Failed { error })
}

/// Sends the environment report; a refusal is only logged (the report is for the user).
pub(crate) async fn report_environment(
    client: &AdminClient,
    report: &EnvironmentReport,
) -> Result<(), ClientError> {
    for warning in &report.warnings {
        tracing::warn!("dependencies: {warning}");
    }
    match client.report_environment(report).await {
        Err(e @ ClientError::Rejected { .. }) => {
            tracing::warn!("reporting the dependency environment: {e}");
            Ok(())
        }
        other => other,
    }
}

/// Why [`model_runtime`] failed.
pub(crate) enum ModelRuntimeError {
    /// The model's dependencies cannot be installed: the model's fault.
    Install(String),
    /// The worker's own environment failed.
    Worker(TrainError),
}

/// The model's runtime and the dependency environment it runs with.
pub(crate) struct ModelEnvironment {
    /// How to start the runtime.
    pub runtime: RuntimeConfig,
    /// The environment in use, to hold while the worker lives.
    pub lease: Option<Lease>,
    /// How the dependencies were provided.
    pub report: EnvironmentReport,
}

/// How to start the model's runtime (train and inference mode alike): an interpreter with the
/// model's dependencies, run in the sandbox in `<work dir>/scratch`, the one folder it may
/// write, reading the downloads in `<work dir>/cache` and its dependency environment.
pub(crate) async fn model_runtime(
    config: &WorkerConfig,
    work_dir: &Path,
    model: &WorkerModel,
) -> Result<ModelEnvironment, ModelRuntimeError> {
    let base_python = absolute_program(&config.python);
    let store = EnvStore::new(&config.venv_dir);
    let installer = Installer {
        sandbox: &config.sandbox,
        base: &base_python,
        store: &store,
        pip_args: &config.pip_args,
        max_bytes: config.env_cache_max_bytes,
        // The model's own choice wins over the deployment's.
        pins: model.dependency_pins.unwrap_or(config.dependency_pins),
    };
    let prepared = installer
        .prepare(&model.dependencies)
        .await
        .map_err(|e| match e {
            DepsError::Install(reason) => ModelRuntimeError::Install(reason),
            e => ModelRuntimeError::Worker(TrainError::Deps(e)),
        })?;
    let scratch = work_dir.join("scratch");
    tokio::fs::create_dir_all(&scratch)
        .await
        .map_err(|e| ModelRuntimeError::Worker(io_error(&scratch)(e)))?;
    let mut read_only = vec![work_dir.join("cache")];
    read_only.extend(prepared.lease.as_ref().map(|lease| lease.dir().to_owned()));
    Ok(ModelEnvironment {
        runtime: RuntimeConfig {
            base_python,
            read_only,
            sandbox: config.sandbox.clone(),
            ..RuntimeConfig::new(prepared.python, scratch)
        },
        lease: prepared.lease,
        report: prepared.report,
    })
}

/// A program given as a relative path with a folder (`.venv/bin/python`) is resolved against
/// the worker's folder, not the child's.
fn absolute_program(program: &Path) -> PathBuf {
    if program.is_relative() && program.components().count() > 1 {
        std::path::absolute(program).unwrap_or_else(|_| program.to_owned())
    } else {
        program.to_owned()
    }
}

/// Events of requests outside a trial (loading the class, the knob config) go to the worker's
/// own log.
fn log_outside_trials(event: RuntimeEvent) {
    if event.source == EventSource::Stderr {
        return; // the runtime module logs every stderr line already
    }
    match event.message() {
        Some(message) => tracing::info!(target: "rafiki_worker::model", "{message}"),
        None => {
            tracing::info!(target: "rafiki_worker::model", body = %event.entry.body, "model log")
        }
    }
}

/// The runtime with the model class loaded, and what it takes to start it again.
struct ModelHost {
    config: RuntimeConfig,
    model_path: PathBuf,
    model_class: String,
    runtime: Runtime,
}

enum HostError {
    /// The runtime did not start: the worker's environment is at fault.
    Start(RuntimeError),
    /// The class did not load: the model is at fault.
    Load(RuntimeError),
}

impl ModelHost {
    async fn start(
        config: RuntimeConfig,
        model_path: PathBuf,
        model_class: String,
    ) -> Result<ModelHost, HostError> {
        let runtime = Self::load(&config, &model_path, &model_class).await?;
        Ok(ModelHost {
            config,
            model_path,
            model_class,
            runtime,
        })
    }

    async fn load(
        config: &RuntimeConfig,
        model_path: &Path,
        model_class: &str,
    ) -> Result<Runtime, HostError> {
        let mut runtime = Runtime::start(config).await.map_err(HostError::Start)?;
        runtime
            .load_model_class(model_path, model_class, &mut log_outside_trials)
            .await
            .map_err(HostError::Load)?;
        tracing::info!(model_class, pid = runtime.pid(), "model class loaded");
        Ok(runtime)
    }

    /// A fresh child with the class loaded again, after the old one died.
    async fn restart(&mut self) -> Result<(), HostError> {
        tracing::warn!("restarting the model runtime");
        self.runtime.kill().await;
        self.runtime = Self::load(&self.config, &self.model_path, &self.model_class).await?;
        Ok(())
    }
}

/// What a trial needs besides the runtime.
struct Trainer<'a> {
    client: &'a AdminClient,
    /// What the user must know about the model's dependencies: the first entries of every
    /// trial's log, so a replaced pin is seen where the results are.
    env_warnings: Vec<String>,
    scratch: PathBuf,
    train_path: PathBuf,
    val_path: PathBuf,
    train_args: Option<Value>,
}

/// Why the steps of a trial stopped early.
enum StepError {
    /// The model (or its child) failed: the trial is ERRORED.
    Trial(String),
    /// The worker cannot go on.
    Worker(TrainError),
}

impl From<RuntimeError> for StepError {
    fn from(e: RuntimeError) -> Self {
        StepError::Trial(e.report())
    }
}

impl Trainer<'_> {
    /// Runs one trial and forwards its logs; returns its outcome and whether the runtime must
    /// be restarted. Does not call `finish`.
    async fn run_trial(
        &self,
        runtime: &mut Runtime,
        trial: &TrialAssignment,
    ) -> Result<(TrialOutcome, bool), TrainError> {
        let started = Instant::now();
        let knobs = serde_json::to_string(&trial.proposal.knobs).unwrap_or_default();
        tracing::info!(trial = %trial.id, no = trial.no, %knobs, "trial started");
        if trial.proposal.params_type != ParamsType::None {
            tracing::warn!(
                params_type = ?trial.proposal.params_type,
                "parameter sharing is not supported; training from scratch"
            );
        }
        // Lines from before this trial are in the worker's log; they are not this trial's.
        runtime.take_stderr();
        let forwarder = LogForwarder::start(self.client.clone(), trial.id);
        for warning in &self.env_warnings {
            forwarder.push(LogEntry {
                time: chrono::Utc::now(),
                kind: LogKind::Message,
                body: json!({"message": format!("Dependencies: {warning}")}),
            });
        }
        let mut sink = |event: RuntimeEvent| forwarder.push(event.entry);

        let steps = self.steps(runtime, trial, &mut sink).await;
        let mut restart = matches!(&steps, Err((_, true)));
        if !restart {
            // The instance goes whatever happened; a failing destroy() does not undo a result.
            match runtime.destroy(&mut sink).await {
                Ok(_) => {}
                Err(e) if e.needs_restart() => restart = true,
                Err(e) => sink(RuntimeEvent {
                    source: EventSource::Stderr,
                    entry: LogEntry {
                        time: chrono::Utc::now(),
                        kind: LogKind::Message,
                        body: json!({"message": format!("destroy() failed: {}", e.report())}),
                    },
                }),
            }
        }
        for event in runtime.take_stderr() {
            sink(event);
        }
        forwarder.finish().await;

        let outcome = match steps {
            Ok(score) => TrialOutcome::Completed { score },
            Err((StepError::Trial(error), _)) => TrialOutcome::Errored { error },
            Err((StepError::Worker(e), _)) => return Err(e),
        };
        match &outcome {
            TrialOutcome::Completed { score } => {
                tracing::info!(trial = %trial.id, ?score, elapsed = ?started.elapsed(), "trial completed")
            }
            TrialOutcome::Errored { error } => {
                tracing::warn!(trial = %trial.id, elapsed = ?started.elapsed(), "trial errored: {error}")
            }
        }
        Ok((outcome, restart))
    }

    /// train, evaluate, dump and upload. On failure: why, and whether the child is gone.
    async fn steps(
        &self,
        runtime: &mut Runtime,
        trial: &TrialAssignment,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<Option<f64>, (StepError, bool)> {
        let failed = |e: RuntimeError| {
            let restart = e.needs_restart();
            (StepError::from(e), restart)
        };
        let knobs = serde_json::to_value(&trial.proposal.knobs).expect("knobs serialise");
        runtime
            .train(
                &knobs,
                &self.train_path,
                self.train_args.as_ref(),
                None,
                sink,
            )
            .await
            .map_err(failed)?;
        let score = if trial.proposal.to_eval {
            Some(
                runtime
                    .evaluate(&self.val_path, sink)
                    .await
                    .map_err(failed)?,
            )
        } else {
            None
        };
        if trial.proposal.to_save_params {
            let path = self.scratch.join(format!("trial-{}.params", trial.id));
            runtime.dump_parameters(&path, sink).await.map_err(failed)?;
            let bytes = tokio::fs::read(&path).await;
            let _ = tokio::fs::remove_file(&path).await;
            let bytes = bytes.map_err(|e| (StepError::Worker(io_error(&path)(e)), false))?;
            match self.client.put_parameters(trial.id, &bytes).await {
                Ok(()) => {}
                Err(e @ ClientError::Rejected { .. }) => {
                    let error = format!("the admin refused the trial's parameters: {e}");
                    return Err((StepError::Trial(error), false));
                }
                Err(e) => return Err((StepError::Worker(e.into()), false)),
            }
        }
        Ok(score)
    }
}

/// Posts a trial's log entries in order, in batches, while the trial runs.
struct LogForwarder {
    tx: mpsc::UnboundedSender<LogEntry>,
    task: tokio::task::JoinHandle<()>,
}

impl LogForwarder {
    fn start(client: AdminClient, trial: Uuid) -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(forward_logs(client, trial, rx));
        LogForwarder { tx, task }
    }

    fn push(&self, entry: LogEntry) {
        // The task only ends after the sender is dropped (finish), so this cannot fail.
        let _ = self.tx.send(entry);
    }

    /// Posts what is left and waits until it is posted.
    async fn finish(self) {
        drop(self.tx);
        if let Err(e) = self.task.await {
            tracing::error!("the log forwarder failed: {e}");
        }
    }
}

async fn forward_logs(client: AdminClient, trial: Uuid, mut rx: mpsc::UnboundedReceiver<LogEntry>) {
    let mut give_up = false;
    while let Some(first) = rx.recv().await {
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while batch.len() < MAX_BATCH {
            match tokio::time::timeout_at(deadline, rx.recv()).await {
                Ok(Some(entry)) => batch.push(entry),
                Ok(None) | Err(_) => break,
            }
        }
        if give_up {
            continue;
        }
        // Logs are worth less than the trial: a failure drops this batch, and the loop's next
        // call to the admin decides whether the worker goes on.
        if let Err(e) = client.post_logs(trial, &batch).await {
            tracing::warn!(%trial, entries = batch.len(), "dropping trial log entries: {e}");
            give_up = matches!(e, ClientError::Stopped);
        }
    }
}
