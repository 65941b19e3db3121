//! Train mode: tune one model of a train job until the admin says the budget is spent.
//!
//! job -> downloads (cached) -> dependencies -> Python runtime -> load the class -> knob config
//! -> loop { next trial -> shared parameters -> train -> evaluate -> dump, upload and cache
//! parameters -> destroy -> logs -> finish }. A trial's proposal says what it starts from
//! (`params_type`: the worker's own cache for `LOCAL_*`, the admin for `GLOBAL_*`) and which of
//! the evaluate / upload / cache steps run. What ends the model rather than the worker (a class that does not load, an invalid
//! knob config, dependencies that do not install, too many failed trials in a row, an
//! interpreter that cannot run the runtime at all) is reported with `POST /internal/train/fail`,
//! after which the worker exits 0 like after `BUDGET_SPENT`.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rafiki_service::client::{AdminClient, ClientError};
use rafiki_types::internal::{
    LogEntry, LogKind, NextTrial, SharedParameters, TrialAssignment, TrialOutcome,
};
use rafiki_types::proposal::ParamsType;
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use uuid::Uuid;

use crate::cache::{BlobCache, CacheError};
use crate::config::WorkerConfig;
use crate::deps::DepsError;
use crate::host::{
    fetch_model, log_model_event, report_failure, start_model, HostedModel, ModelHost,
    SHUTDOWN_GRACE,
};
use crate::param_cache::{ParamCache, Pick, Stored};
use crate::runtime::{EventSource, Runtime, RuntimeError, RuntimeEvent};

/// Most entries in one `POST /internal/trials/{id}/logs`.
const MAX_BATCH: usize = 500;
/// How long the forwarder waits for more entries before it posts a batch.
const BATCH_WINDOW: Duration = Duration::from_millis(250);

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
    pub(crate) fn is_stopped(&self) -> bool {
        matches!(
            self,
            TrainError::Client(ClientError::Stopped)
                | TrainError::Cache(CacheError::Client(ClientError::Stopped))
        )
    }
}

/// Maps an I/O error on `path` to [`TrainError::Io`].
pub(crate) fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_owned();
    move |source| TrainError::Io { path, source }
}

/// Runs train mode to its end.
pub async fn run(config: &WorkerConfig) -> Result<TrainExit, TrainError> {
    let client = config.service.admin_client()?;
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
    let model_path = fetch_model(&cache, client, &job.model).await?;
    let mut datasets = Vec::new();
    for blob in [&job.train_dataset, &job.val_dataset] {
        let url = format!("/internal/datasets/{}", blob.id);
        datasets.push(cache.fetch(client, "datasets", blob, "", &url).await?);
    }
    let [train_path, val_path]: [PathBuf; 2] = datasets.try_into().expect("two datasets");

    let started = start_model(config, client, &work_dir, &job.model, model_path, None).await?;
    // The lease is held until the worker ends.
    let HostedModel {
        mut host,
        lease: _lease,
        env_warnings,
        scratch,
    } = match started {
        Ok(hosted) => hosted,
        Err(reason) => return give_up(client, None, reason).await,
    };

    let knob_config = match host.runtime.get_knob_config(&mut log_model_event).await {
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

    let params_dir = work_dir.join("cache").join("local_params");
    let params = ParamCache::open(&params_dir, config.param_cache)
        .await
        .map_err(io_error(&params_dir))?;
    let mut trainer = Trainer {
        client,
        env_warnings,
        scratch,
        train_path,
        val_path,
        train_args: job.train_args.clone(),
        prune_metric: job.prune_metric.clone(),
        downloads: cache,
        params,
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
            // A pruned trial ran as it should: the model works.
            TrialOutcome::Completed { .. } | TrialOutcome::Pruned => failures_in_a_row = 0,
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
            if let Err(e) = host.restart().await {
                return give_up(client, Some(host), e.into_failure()?).await;
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
    report_failure(client.fail(&error), host).await?;
    Ok(TrainExit::Failed { error })
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
    /// The metric the job's pruner judges by: entries that log it are posted at once.
    prune_metric: Option<String>,
    /// The download cache, where `GLOBAL_*` parameters land.
    downloads: BlobCache,
    /// This worker's `to_cache_params` parameters, for `LOCAL_*` trials.
    params: ParamCache,
}

/// Why the steps of a trial stopped early.
enum StepError {
    /// The model (or its child) failed: the trial is ERRORED.
    Trial(String),
    /// The admin's pruner stopped it during `train`: the trial is PRUNED, not evaluated, its
    /// parameters not saved.
    Pruned,
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
        &mut self,
        runtime: &mut Runtime,
        trial: &TrialAssignment,
    ) -> Result<(TrialOutcome, bool), TrainError> {
        let started = Instant::now();
        let knobs = serde_json::to_string(&trial.proposal.knobs).unwrap_or_default();
        tracing::info!(trial = %trial.id, no = trial.no, %knobs, "trial started");
        // Lines from before this trial are in the worker's log; they are not this trial's.
        runtime.take_stderr();
        let (forwarder, mut stop) =
            LogForwarder::start(self.client.clone(), trial.id, self.prune_metric.clone());
        for warning in &self.env_warnings {
            forwarder.push(LogEntry {
                time: chrono::Utc::now(),
                kind: LogKind::Message,
                body: json!({"message": format!("Dependencies: {warning}")}),
            });
        }
        let mut sink = |event: RuntimeEvent| forwarder.push(event.entry);

        let steps = self.steps(runtime, trial, &mut stop, &mut sink).await;
        let mut restart = matches!(&steps, Err((_, true)));
        if !restart {
            // The instance goes whatever happened; a failing destroy() does not undo a result.
            match runtime.destroy(&mut sink).await {
                Ok(_) => {}
                Err(e) if e.needs_restart() => restart = true,
                Err(e) => note(&mut sink, format!("destroy() failed: {}", e.report())),
            }
        }
        for event in runtime.take_stderr() {
            sink(event);
        }
        forwarder.finish().await;

        let outcome = match steps {
            Ok(score) => TrialOutcome::Completed { score },
            Err((StepError::Trial(error), _)) => TrialOutcome::Errored { error },
            Err((StepError::Pruned, _)) => TrialOutcome::Pruned,
            Err((StepError::Worker(e), _)) => return Err(e),
        };
        match &outcome {
            TrialOutcome::Completed { score } => {
                tracing::info!(trial = %trial.id, ?score, elapsed = ?started.elapsed(), "trial completed")
            }
            TrialOutcome::Errored { error } => {
                tracing::warn!(trial = %trial.id, elapsed = ?started.elapsed(), "trial errored: {error}")
            }
            TrialOutcome::Pruned => {
                tracing::info!(trial = %trial.id, elapsed = ?started.elapsed(), "trial pruned")
            }
        }
        Ok((outcome, restart))
    }

    /// shared parameters, train (until the admin's pruner says `stop`), evaluate, dump, upload
    /// and cache. On failure: why, and whether the child is gone.
    async fn steps(
        &mut self,
        runtime: &mut Runtime,
        trial: &TrialAssignment,
        stop: &mut watch::Receiver<bool>,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<Option<f64>, (StepError, bool)> {
        let failed = |e: RuntimeError| {
            let restart = e.needs_restart();
            (StepError::from(e), restart)
        };
        let knobs = serde_json::to_value(&trial.proposal.knobs).expect("knobs serialise");
        let shared = self
            .shared_params(trial.proposal.params_type, sink)
            .await
            .map_err(|e| (e, false))?;
        let stopped = runtime
            .train_stoppable(
                &knobs,
                &self.train_path,
                self.train_args.as_ref(),
                shared.as_deref(),
                Some(stop),
                sink,
            )
            .await
            .map_err(failed)?;
        if stopped {
            return Err((StepError::Pruned, false));
        }
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
        if trial.proposal.to_save_params || trial.proposal.to_cache_params {
            let path = self.scratch.join(format!("trial-{}.params", trial.id));
            runtime.dump_parameters(&path, sink).await.map_err(failed)?;
            let kept = self.keep_params(trial, &path, score, sink).await;
            let _ = tokio::fs::remove_file(&path).await;
            kept.map_err(|e| (e, false))?;
        }
        Ok(score)
    }

    /// The file the trial's `shared_params` are read from, as its `params_type` says; `None`
    /// (said in the trial's log) when there are none yet: the trial then trains from scratch.
    async fn shared_params(
        &mut self,
        params_type: ParamsType,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<Option<PathBuf>, StepError> {
        let name = params_type.as_str();
        let found = match params_type {
            ParamsType::None => return Ok(None),
            ParamsType::LocalRecent | ParamsType::LocalBest => {
                let pick = if params_type == ParamsType::LocalBest {
                    Pick::Best
                } else {
                    Pick::Recent
                };
                let picked = self.params.pick(pick).await.map_err(|e| {
                    StepError::Worker(TrainError::Io {
                        path: "the parameter cache".into(),
                        source: e,
                    })
                })?;
                picked.map(|(path, entry)| (path, entry.trial_id))
            }
            ParamsType::GlobalRecent | ParamsType::GlobalBest => {
                let answer = match self.client.shared_parameters(params_type).await {
                    Ok(answer) => answer,
                    Err(e @ ClientError::Rejected { .. }) => {
                        let error = format!("the admin refused {name} parameters: {e}");
                        return Err(StepError::Trial(error));
                    }
                    Err(e) => return Err(StepError::Worker(e.into())),
                };
                match answer.shared {
                    None => None,
                    Some(shared) => {
                        let path = self.fetch_shared(&shared).await?;
                        Some((path, shared.trial_id))
                    }
                }
            }
        };
        let message = match &found {
            Some((_, from)) => format!("Training from the {name} parameters of trial {from}"),
            None => format!("No {name} parameters yet: training from scratch"),
        };
        tracing::info!("{message}");
        note(sink, message);
        Ok(found.map(|(path, _)| path))
    }

    /// Downloads the sub-job's shared parameters into the download cache, keeping no other
    /// shared file there: the best or latest moves on, and an older one is rarely asked again.
    async fn fetch_shared(&self, shared: &SharedParameters) -> Result<PathBuf, StepError> {
        let url = format!("/internal/trials/{}/parameters", shared.trial_id);
        let keep = self
            .downloads
            .path_for("params", &shared.parameters, ".params");
        if let Some(folder) = keep.parent() {
            if let Ok(mut entries) = tokio::fs::read_dir(folder).await {
                while let Ok(Some(entry)) = entries.next_entry().await {
                    if entry.path() != keep {
                        let _ = tokio::fs::remove_file(entry.path()).await;
                    }
                }
            }
        }
        self.downloads
            .fetch(self.client, "params", &shared.parameters, ".params", &url)
            .await
            .map_err(|e| StepError::Worker(e.into()))
    }

    /// Uploads (`to_save_params`) and caches (`to_cache_params`) the dumped parameters at
    /// `path`. The cache is a help, not a result: what it cannot keep is only logged.
    async fn keep_params(
        &mut self,
        trial: &TrialAssignment,
        path: &Path,
        score: Option<f64>,
        sink: &mut dyn FnMut(RuntimeEvent),
    ) -> Result<(), StepError> {
        if trial.proposal.to_save_params {
            let bytes = tokio::fs::read(path)
                .await
                .map_err(|e| StepError::Worker(io_error(path)(e)))?;
            match self.client.put_parameters(trial.id, &bytes).await {
                Ok(()) => {}
                Err(e @ ClientError::Rejected { .. }) => {
                    let error = format!("the admin refused the trial's parameters: {e}");
                    return Err(StepError::Trial(error));
                }
                Err(e) => return Err(StepError::Worker(e.into())),
            }
        }
        if trial.proposal.to_cache_params {
            let problem = match self.params.store(path, trial.id, score).await {
                Ok(Stored::Kept(_)) => None,
                Ok(Stored::Refused(why)) => Some(why),
                Err(e) => Some(e.to_string()),
            };
            if let Some(why) = problem {
                tracing::warn!(trial = %trial.id, "parameters not cached: {why}");
                note(sink, format!("The parameters were not cached: {why}"));
            }
        }
        Ok(())
    }
}

/// A message of the worker's own in the trial's log.
fn note(sink: &mut dyn FnMut(RuntimeEvent), message: String) {
    sink(RuntimeEvent {
        source: EventSource::Stderr,
        entry: LogEntry {
            time: chrono::Utc::now(),
            kind: LogKind::Message,
            body: json!({ "message": message }),
        },
    });
}

/// Posts a trial's log entries in order, in batches, while the trial runs, and turns its stop
/// signal on when the admin answers that the trial must stop.
struct LogForwarder {
    tx: mpsc::UnboundedSender<LogEntry>,
    task: tokio::task::JoinHandle<()>,
}

impl LogForwarder {
    fn start(
        client: AdminClient,
        trial: Uuid,
        prune_metric: Option<String>,
    ) -> (Self, watch::Receiver<bool>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let (stop_tx, stop_rx) = watch::channel(false);
        let batches = Batches { rx, prune_metric };
        let task = tokio::spawn(forward_logs(client, trial, batches, stop_tx));
        (LogForwarder { tx, task }, stop_rx)
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

/// A trial's log entries, gathered into batches.
struct Batches {
    rx: mpsc::UnboundedReceiver<LogEntry>,
    /// Entries that log this metric end their batch: the pruner waits for them.
    prune_metric: Option<String>,
}

impl Batches {
    /// The next batch: the next entry and those that follow it within [`BATCH_WINDOW`], at
    /// most [`MAX_BATCH`]; a batch with an entry of the pruner's metric goes at once, with only
    /// the entries already waiting behind it. `None` once every entry was handed out.
    async fn next(&mut self) -> Option<Vec<LogEntry>> {
        let first = self.rx.recv().await?;
        let mut urgent = self.judged(&first);
        let mut batch = vec![first];
        let deadline = tokio::time::Instant::now() + BATCH_WINDOW;
        while batch.len() < MAX_BATCH {
            let entry = if urgent {
                self.rx.try_recv().ok()
            } else {
                tokio::time::timeout_at(deadline, self.rx.recv())
                    .await
                    .ok()
                    .flatten()
            };
            let Some(entry) = entry else { break };
            urgent |= self.judged(&entry);
            batch.push(entry);
        }
        Some(batch)
    }

    /// Whether `entry` logs the metric the pruner judges by.
    fn judged(&self, entry: &LogEntry) -> bool {
        matches!(
            (&self.prune_metric, entry.kind, &entry.body),
            (Some(metric), LogKind::Metrics, Value::Object(fields)) if fields.contains_key(metric)
        )
    }
}

async fn forward_logs(
    client: AdminClient,
    trial: Uuid,
    mut batches: Batches,
    stop: watch::Sender<bool>,
) {
    let mut give_up = false;
    while let Some(batch) = batches.next().await {
        if give_up {
            continue;
        }
        // Logs are worth less than the trial: a failure drops this batch, and the loop's next
        // call to the admin decides whether the worker goes on.
        match client.post_logs(trial, &batch).await {
            Ok(accepted) => {
                if let Some(prune) = accepted.prune {
                    if !*stop.borrow() {
                        tracing::info!(%trial, step = prune.step, "the admin stops the trial: {}", prune.reason);
                    }
                    stop.send_replace(true);
                }
            }
            Err(e) => {
                tracing::warn!(%trial, entries = batch.len(), "dropping trial log entries: {e}");
                give_up = matches!(e, ClientError::Stopped);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::time::Instant;

    fn entry(kind: LogKind, body: Value) -> LogEntry {
        LogEntry {
            time: chrono::Utc::now(),
            kind,
            body,
        }
    }

    fn batches(prune_metric: Option<&str>) -> (mpsc::UnboundedSender<LogEntry>, Batches) {
        let (tx, rx) = mpsc::unbounded_channel();
        let prune_metric = prune_metric.map(str::to_owned);
        (tx, Batches { rx, prune_metric })
    }

    // The clock is paused: time moves only when every task waits on it, so these measure the
    // batching window exactly.

    #[tokio::test(start_paused = true)]
    async fn entries_are_gathered_for_the_window() {
        let (tx, mut batches) = batches(None);
        tx.send(entry(LogKind::Message, json!({"message": "a"})))
            .unwrap();
        tx.send(entry(LogKind::Metrics, json!({"val_acc": 0.5})))
            .unwrap();
        let start = Instant::now();
        let batch = batches.next().await.unwrap();
        assert_eq!(batch.len(), 2);
        assert_eq!(start.elapsed(), BATCH_WINDOW);
        drop(tx);
        assert!(batches.next().await.is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn an_entry_of_the_pruners_metric_goes_at_once_with_those_before_it() {
        let (tx, mut batches) = batches(Some("val_acc"));
        tx.send(entry(LogKind::Message, json!({"message": "epoch 1"})))
            .unwrap();
        tx.send(entry(LogKind::Metrics, json!({"val_acc": 0.5, "epoch": 1})))
            .unwrap();
        let start = Instant::now();
        let batch = batches.next().await.unwrap();
        assert_eq!(start.elapsed(), Duration::ZERO);
        assert_eq!(batch.len(), 2);
        assert_eq!(batch[1].body["val_acc"], 0.5);

        // An entry after it opens the next batch, which waits as usual; so do other metrics,
        // and messages that merely name the metric.
        let later = tokio::spawn(async move {
            let start = Instant::now();
            let batch = batches.next().await.unwrap();
            (start.elapsed(), batch.len())
        });
        tx.send(entry(LogKind::Metrics, json!({"loss": 0.1})))
            .unwrap();
        tx.send(entry(LogKind::Message, json!({"message": "val_acc"})))
            .unwrap();
        assert_eq!(later.await.unwrap(), (BATCH_WINDOW, 2));
    }

    #[tokio::test(start_paused = true)]
    async fn an_urgent_batch_is_still_bounded() {
        let (tx, mut batches) = batches(Some("val_acc"));
        for i in 0..MAX_BATCH + 3 {
            tx.send(entry(LogKind::Metrics, json!({"val_acc": i})))
                .unwrap();
        }
        assert_eq!(batches.next().await.unwrap().len(), MAX_BATCH);
        assert_eq!(batches.next().await.unwrap().len(), 3);
    }
}
