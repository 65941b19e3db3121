//! The model host, as train and inference mode both run it: the model's file
//! ([`fetch_model`]), its dependency environment and the Python runtime started in it
//! ([`model_runtime`]), then the runtime with the model loaded ([`ModelHost`]: the class, and
//! in inference mode the trial's parameters), started again the same way when its child dies.
//! [`start_model`] is that start, from the environment to the loaded model, for either mode.
//!
//! What goes wrong is sorted once for both modes ([`HostError`]): the model's fault, which the
//! worker reports to the admin before it ends ([`report_failure`]), or the worker's, which is
//! a crash.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rafiki_service::client::{AdminClient, ClientError};
use rafiki_types::internal::{EnvironmentReport, WorkerModel};
use serde_json::{json, Value};

use crate::cache::{BlobCache, CacheError};
use crate::config::WorkerConfig;
use crate::deps::{DepsError, Installer};
use crate::envs::{EnvStore, Lease};
use crate::runtime::{EventSource, Runtime, RuntimeConfig, RuntimeError, RuntimeEvent};
use crate::train::{io_error, TrainError};

/// How long the runtime may take to shut down politely.
pub(crate) const SHUTDOWN_GRACE: Duration = Duration::from_secs(10);

/// Downloads the model's file into `cache`, unless it is there already.
pub(crate) async fn fetch_model(
    cache: &BlobCache,
    client: &AdminClient,
    model: &WorkerModel,
) -> Result<PathBuf, CacheError> {
    let url = format!("/internal/models/{}/file", model.id);
    cache
        .fetch(client, "models", &model.file, ".py", &url)
        .await
}

/// Reports the model as given up with `report` (the mode's `.../fail` call), then stops the
/// runtime. The admin may have ended the job already (e.g. on an invalid knob config) and
/// refuse the report; a restart would end the same way, so that still ends on purpose.
pub(crate) async fn report_failure(
    report: impl Future<Output = Result<(), ClientError>>,
    host: Option<ModelHost>,
) -> Result<(), TrainError> {
    match report.await {
        Ok(()) => {}
        Err(e @ ClientError::Rejected { .. }) => tracing::warn!("reporting the failure: {e}"),
        Err(e) => return Err(e.into()),
    }
    if let Some(host) = host {
        host.runtime.shutdown(SHUTDOWN_GRACE).await;
    }
    Ok(())
}

/// Sends the environment report; a refusal is only logged (the report is for the user).
async fn report_environment(
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
enum ModelRuntimeError {
    /// The model's dependencies cannot be installed: the model's fault.
    Install(String),
    /// The worker's own environment failed.
    Worker(TrainError),
}

/// The model's runtime and the dependency environment it runs with.
struct ModelEnvironment {
    /// How to start the runtime.
    pub runtime: RuntimeConfig,
    /// The environment in use, to hold while the worker lives.
    pub lease: Option<Lease>,
    /// How the dependencies were provided.
    pub report: EnvironmentReport,
}

/// How to start the model's runtime: an interpreter with the model's dependencies, run in the
/// sandbox in `<work dir>/scratch`, the one folder it may write, reading the downloads in
/// `<work dir>/cache` and its dependency environment.
async fn model_runtime(
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

/// A model host started for a mode, and what it runs with.
pub(crate) struct HostedModel {
    /// The runtime with the model loaded.
    pub host: ModelHost,
    /// The dependency environment in use, to hold while the worker lives: an environment in
    /// use is never evicted.
    pub lease: Option<Lease>,
    /// What providing the dependencies warned about.
    pub env_warnings: Vec<String>,
    /// The one folder the model may write.
    pub scratch: PathBuf,
}

/// Starts the model as both modes do: its dependency environment (reported to the admin),
/// then its runtime with the class in `model_path` loaded, and `parameters` in inference mode.
/// `Ok(Err(reason))` when that is the model's fault: the mode gives it up with `reason`.
pub(crate) async fn start_model(
    config: &WorkerConfig,
    client: &AdminClient,
    work_dir: &Path,
    model: &WorkerModel,
    model_path: PathBuf,
    parameters: Option<TrialParameters>,
) -> Result<Result<HostedModel, String>, TrainError> {
    let environment = match model_runtime(config, work_dir, model).await {
        Ok(environment) => environment,
        Err(ModelRuntimeError::Install(reason)) => {
            return Ok(Err(format!(
                "cannot install the model's dependencies: {reason}"
            )))
        }
        Err(ModelRuntimeError::Worker(e)) => return Err(e),
    };
    report_environment(client, &environment.report).await?;
    let scratch = environment.runtime.cwd.clone();
    let spec = ModelSpec {
        config: environment.runtime,
        model_path,
        model_class: model.model_class.clone(),
        parameters,
    };
    Ok(match ModelHost::start(spec).await {
        Ok(host) => Ok(HostedModel {
            host,
            lease: environment.lease,
            env_warnings: environment.report.warnings,
            scratch,
        }),
        Err(e) => Err(e.into_failure()?),
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

/// What the model prints or logs outside a trial (loading, the knob config, predictions) goes
/// to the worker's own log.
pub(crate) fn log_model_event(event: RuntimeEvent) {
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

/// What it takes to (re)start the runtime with the model in it.
pub(crate) struct ModelSpec {
    /// How to start the runtime.
    pub config: RuntimeConfig,
    /// The model's file.
    pub model_path: PathBuf,
    /// The class to load from it.
    pub model_class: String,
    /// Inference mode: the trained trial's parameters, loaded into an instance of the class.
    pub parameters: Option<TrialParameters>,
}

/// A trained trial's parameters and the knobs it was trained with.
pub(crate) struct TrialParameters {
    /// The parameters file.
    pub path: PathBuf,
    /// The trial's knobs.
    pub knobs: Value,
}

/// The runtime with the model loaded.
pub(crate) struct ModelHost {
    spec: ModelSpec,
    /// The child the model runs in.
    pub runtime: Runtime,
}

/// Why the model could not be (re)loaded.
pub(crate) enum HostError {
    /// The runtime did not start: the worker's environment is at fault.
    Start(RuntimeError),
    /// The class or the parameters did not load: the model is at fault. The text is for the
    /// user.
    Load(String),
}

impl HostError {
    /// What to report when giving the model up, or, when the worker is at fault, the crash.
    /// An interpreter that cannot run the runtime at all would fail again after a restart, so
    /// it is reported too.
    pub(crate) fn into_failure(self) -> Result<String, TrainError> {
        match self {
            HostError::Load(error) => Ok(error),
            HostError::Start(e @ RuntimeError::Unusable { .. }) => Ok(e.to_string()),
            HostError::Start(e) => Err(e.into()),
        }
    }
}

impl ModelHost {
    /// Starts the runtime and loads the model.
    pub(crate) async fn start(spec: ModelSpec) -> Result<ModelHost, HostError> {
        let runtime = Self::load(&spec).await?;
        Ok(ModelHost { spec, runtime })
    }

    async fn load(spec: &ModelSpec) -> Result<Runtime, HostError> {
        let mut runtime = Runtime::start(&spec.config)
            .await
            .map_err(HostError::Start)?;
        match Self::load_model(&mut runtime, spec).await {
            Ok(()) => Ok(runtime),
            Err(error) => {
                runtime.shutdown(SHUTDOWN_GRACE).await;
                Err(HostError::Load(error))
            }
        }
    }

    /// Loads the class, and the parameters if there are any, into a fresh runtime; an error is
    /// the text for the user.
    async fn load_model(runtime: &mut Runtime, spec: &ModelSpec) -> Result<(), String> {
        let class = &spec.model_class;
        runtime
            .load_model_class(&spec.model_path, class, &mut log_model_event)
            .await
            .map_err(|e| format!("cannot load model class `{class}`: {}", e.report()))?;
        let Some(parameters) = &spec.parameters else {
            tracing::info!(model_class = %class, pid = runtime.pid(), "model class loaded");
            return Ok(());
        };
        let args = json!({"path": parameters.path, "knobs": parameters.knobs});
        runtime
            .request("load_parameters", args, &mut log_model_event)
            .await
            .map_err(|e| {
                let report = e.report();
                format!("cannot load the trial's parameters into `{class}`: {report}")
            })?;
        tracing::info!(
            model_class = %class,
            pid = runtime.pid(),
            "model loaded with the trial's parameters"
        );
        Ok(())
    }

    /// A fresh child with the model loaded again, after the old one died.
    pub(crate) async fn restart(&mut self) -> Result<(), HostError> {
        tracing::warn!("restarting the model runtime");
        self.runtime.kill().await;
        self.runtime = Self::load(&self.spec).await.map_err(|e| match e {
            HostError::Load(error) => {
                HostError::Load(format!("after the model's runtime died: {error}"))
            }
            start => start,
        })?;
        Ok(())
    }

    /// Inference mode: `predict`, one prediction per query, in order.
    pub(crate) async fn predict(
        &mut self,
        queries: Vec<Value>,
    ) -> Result<Vec<Value>, RuntimeError> {
        let mut args = serde_json::Map::with_capacity(1);
        args.insert("queries".to_owned(), Value::Array(queries));
        let result = self
            .runtime
            .request("predict", Value::Object(args), &mut log_model_event)
            .await?;
        match result {
            Value::Object(mut result) => match result.remove("predictions") {
                Some(Value::Array(predictions)) => Ok(predictions),
                _ => Err(RuntimeError::Protocol(
                    "`predict` answered without a `predictions` list".to_owned(),
                )),
            },
            other => Err(RuntimeError::Protocol(format!(
                "`predict` answered {other} instead of an object"
            ))),
        }
    }
}
