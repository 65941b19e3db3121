//! Inference mode: serve one trained trial's model over HTTP for the inference job's predictor.
//!
//! job -> downloads (model file, the trial's parameters; cached) -> dependencies -> Python
//! runtime -> load the class -> `load_parameters` with the trial's knobs -> listen ->
//! `POST /internal/inference/ready` -> serve `GET /health` and `POST /predict` until stopped.
//! Both answer only requests that carry the job's predict secret
//! ([`rafiki_service::predict_secret`]): 401 without it, 403 with another.
//! Whatever keeps the model from being served (dependencies that do not install, a class that
//! does not load, parameters that `load_parameters` refuses, an interpreter that cannot run the
//! runtime at all) is reported with `POST /internal/inference/fail`, after which the worker
//! exits 0.
//!
//! Requests are batched ([`crate::batcher`]): one loop owns the runtime and predicts one batch
//! at a time. A model error fails that batch's requests (500) and the worker goes on; a child
//! that dies is started again, with the class and parameters loaded again.

use std::future::IntoFuture;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::header::AUTHORIZATION;
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::serve::ListenerExt;
use axum::{Json, Router};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::internal::{self, WorkerPredictRequest, WorkerPredictResponse};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use uuid::Uuid;

use crate::batcher::{self, BatchError, BatchQueue, Batcher};
use crate::cache::{BlobCache, CacheError};
use crate::config::WorkerConfig;
use crate::runtime::{EventSource, Runtime, RuntimeConfig, RuntimeError, RuntimeEvent};
use crate::train::{model_runtime, report_environment, ModelRuntimeError, TrainError};
use rafiki_service::client::{AdminClient, ClientError};
use rafiki_service::predict_secret::{PredictSecret, Presented};

/// The largest `POST /predict` body accepted.
pub const MAX_BODY_BYTES: usize = 64 << 20;
/// How long the runtime may take to shut down politely after a failure.
const SHUTDOWN_GRACE: std::time::Duration = std::time::Duration::from_secs(10);

/// How an inference worker ended on purpose (exit code 0). Serving itself only ends with a
/// signal.
#[derive(Debug, Clone, PartialEq)]
pub enum InferenceExit {
    /// The worker reported the model as unservable with `POST /internal/inference/fail`.
    Failed {
        /// What it reported.
        error: String,
    },
    /// The admin stopped the service (a 401).
    Stopped,
}

/// Listens on `RAFIKI_BIND_HOST:RAFIKI_PORT`, then serves as [`run_on`] does, to requests with
/// the secret of `RAFIKI_PREDICT_SECRET`.
pub async fn run(config: &WorkerConfig) -> Result<InferenceExit, TrainError> {
    let port = config.port.ok_or_else(|| TrainError::Io {
        path: internal::env::PORT.into(),
        source: std::io::Error::other("not set"),
    })?;
    let secret = PredictSecret::from_env().map_err(|e| TrainError::Io {
        path: internal::env::PREDICT_SECRET.into(),
        source: std::io::Error::other(e.0),
    })?;
    let address = format!("{}:{port}", config.bind_host);
    // Bound before the model is loaded: a port that cannot be had fails fast. Connections that
    // come early wait in the backlog until the model serves.
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|source| TrainError::Io {
            path: address.into(),
            source,
        })?;
    run_on(config, &secret, listener).await
}

/// Serves the job's model on `listener`, to requests that carry `secret`, until the process is
/// stopped; returns only when the model cannot be served, the admin stopped the service, or on
/// a crash (`Err`).
pub async fn run_on(
    config: &WorkerConfig,
    secret: &PredictSecret,
    listener: TcpListener,
) -> Result<InferenceExit, TrainError> {
    let client = AdminClient::new(&config.admin_url, &config.service_token, config.retry)?;
    match serve_model(config, secret, &client, listener).await {
        Err(TrainError::Client(ClientError::Stopped))
        | Err(TrainError::Cache(CacheError::Client(ClientError::Stopped))) => {
            tracing::info!("the admin stopped this service; exiting");
            Ok(InferenceExit::Stopped)
        }
        other => other,
    }
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TrainError {
    let path = path.to_owned();
    move |source| TrainError::Io { path, source }
}

async fn serve_model(
    config: &WorkerConfig,
    secret: &PredictSecret,
    client: &AdminClient,
    listener: TcpListener,
) -> Result<InferenceExit, TrainError> {
    // The child runs in another folder, so every path it is given must be absolute.
    let work_dir = std::path::absolute(&config.work_dir).map_err(io_error(&config.work_dir))?;
    let job = client.inference_job().await?;
    tracing::info!(
        inference_job = %job.inference_job_id,
        trial = %job.trial_id,
        model = %job.model.name,
        task = %job.task,
        "got the inference job"
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
    let params_path = cache
        .fetch(
            client,
            "params",
            &job.parameters,
            ".params",
            &format!("/internal/trials/{}/parameters", job.parameters.id),
        )
        .await?;

    let environment = match model_runtime(config, &work_dir, &job.model).await {
        Ok(environment) => environment,
        Err(ModelRuntimeError::Install(reason)) => {
            let error = format!("cannot install the model's dependencies: {reason}");
            return give_up(client, None, error).await;
        }
        Err(ModelRuntimeError::Worker(e)) => return Err(e),
    };
    report_environment(client, &environment.report).await?;
    // Held while the worker serves: an environment in use is never evicted.
    let _lease = environment.lease;
    let spec = HostSpec {
        config: environment.runtime,
        model_path,
        model_class: job.model.model_class.clone(),
        params_path,
        knobs: serde_json::to_value(&job.knobs).expect("knobs serialise"),
    };
    let mut host = match Host::start(spec).await {
        Ok(host) => host,
        Err(HostError::Load(error)) => return give_up(client, None, error).await,
        Err(HostError::Start(e @ RuntimeError::Unusable { .. })) => {
            return give_up(client, None, e.to_string()).await;
        }
        Err(HostError::Start(e)) => return Err(e.into()),
    };

    let (batcher, queue) = batcher::channel(config.batching);
    let app = router(batcher, job.trial_id, secret.clone());
    let address = listener
        .local_addr()
        .map_err(io_error(Path::new("the listening socket")))?;
    let listener = listener.tap_io(|tcp| {
        // Small answers must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, app).into_future();
    tracing::info!(%address, batching = ?config.batching, "listening");
    tokio::select! {
        result = server => {
            let source = result.err().unwrap_or_else(|| std::io::Error::other("ended"));
            Err(TrainError::Io { path: format!("HTTP server on {address}").into(), source })
        }
        exit = serve_batches(client, &mut host, queue) => exit,
    }
}

/// Reports the model as unservable and ends.
async fn give_up(
    client: &AdminClient,
    host: Option<Host>,
    error: String,
) -> Result<InferenceExit, TrainError> {
    tracing::error!("cannot serve the model: {error}");
    match client.inference_fail(&error).await {
        Ok(()) => {}
        // The admin may have ended the job already; a restart would end the same way.
        Err(e @ ClientError::Rejected { .. }) => tracing::warn!("reporting the failure: {e}"),
        Err(e) => return Err(e.into()),
    }
    if let Some(host) = host {
        host.runtime.shutdown(SHUTDOWN_GRACE).await;
    }
    Ok(InferenceExit::Failed { error })
}

/// Says ready, then predicts batches one at a time for as long as the server runs.
async fn serve_batches(
    client: &AdminClient,
    host: &mut Host,
    mut queue: BatchQueue,
) -> Result<InferenceExit, TrainError> {
    client.inference_ready().await?;
    tracing::info!("serving predictions");
    while let Some(mut batch) = queue.next().await {
        let (size, requests) = (batch.len(), batch.requests());
        let started = Instant::now();
        match host.predict(batch.take_queries()).await {
            Ok(predictions) => {
                tracing::debug!(size, requests, elapsed = ?started.elapsed(), "predicted a batch");
                batch.answer(Ok(predictions));
            }
            Err(e) => {
                tracing::warn!(size, requests, "predict failed: {}", e.report());
                batch.answer(Err(Arc::from(e.to_string())));
                if e.needs_restart() {
                    match host.restart().await {
                        Ok(()) => {}
                        Err(HostError::Load(error)) => {
                            let error = format!("after the model's runtime died: {error}");
                            return give_up(client, None, error).await;
                        }
                        Err(HostError::Start(e @ RuntimeError::Unusable { .. })) => {
                            return give_up(client, None, e.to_string()).await;
                        }
                        Err(HostError::Start(e)) => return Err(e.into()),
                    }
                }
            }
        }
    }
    // The server holds a batcher for as long as it runs, so this is not reached while serving.
    Ok(InferenceExit::Stopped)
}

/// What the model prints or logs while it loads or predicts goes to the worker's log.
fn log_model_event(event: RuntimeEvent) {
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

/// What it takes to (re)start the runtime with the trained model in it.
struct HostSpec {
    config: RuntimeConfig,
    model_path: PathBuf,
    model_class: String,
    params_path: PathBuf,
    knobs: Value,
}

/// The runtime holding the model instance with the trial's parameters.
struct Host {
    spec: HostSpec,
    runtime: Runtime,
}

enum HostError {
    /// The runtime did not start: the worker's environment is at fault.
    Start(RuntimeError),
    /// The class or the parameters did not load: the model is at fault. The text is for the
    /// user.
    Load(String),
}

impl Host {
    async fn start(spec: HostSpec) -> Result<Host, HostError> {
        let runtime = Self::load(&spec).await?;
        Ok(Host { spec, runtime })
    }

    async fn load(spec: &HostSpec) -> Result<Runtime, HostError> {
        let mut runtime = Runtime::start(&spec.config)
            .await
            .map_err(HostError::Start)?;
        if let Err(e) = runtime
            .load_model_class(&spec.model_path, &spec.model_class, &mut log_model_event)
            .await
        {
            let error = format!(
                "cannot load model class `{}`: {}",
                spec.model_class,
                e.report()
            );
            runtime.shutdown(SHUTDOWN_GRACE).await;
            return Err(HostError::Load(error));
        }
        let args = json!({"path": spec.params_path, "knobs": spec.knobs});
        if let Err(e) = runtime
            .request("load_parameters", args, &mut log_model_event)
            .await
        {
            let error = format!(
                "cannot load the trial's parameters into `{}`: {}",
                spec.model_class,
                e.report()
            );
            runtime.shutdown(SHUTDOWN_GRACE).await;
            return Err(HostError::Load(error));
        }
        tracing::info!(
            model_class = %spec.model_class,
            pid = runtime.pid(),
            "model loaded with the trial's parameters"
        );
        Ok(runtime)
    }

    /// A fresh child with the model loaded again, after the old one died.
    async fn restart(&mut self) -> Result<(), HostError> {
        tracing::warn!("restarting the model runtime");
        self.runtime.kill().await;
        self.runtime = Self::load(&self.spec).await?;
        Ok(())
    }

    /// `predict`: one prediction per query, in order.
    async fn predict(&mut self, queries: Vec<Value>) -> Result<Vec<Value>, RuntimeError> {
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

#[derive(Clone)]
struct Serving {
    batcher: Batcher,
    trial_id: Uuid,
}

/// The worker's own HTTP API, for its job's predictor only: every route, unknown ones
/// included, needs the job's secret.
fn router(batcher: Batcher, trial_id: Uuid, secret: PredictSecret) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/predict", post(predict))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(secret, require_secret))
        .with_state(Serving { batcher, trial_id })
}

/// Lets through only requests with `Authorization: Bearer <the job's secret>`.
async fn require_secret(
    State(secret): State<PredictSecret>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request.headers().get(AUTHORIZATION).map(|v| v.as_bytes());
    match secret.check(presented) {
        Presented::Valid => next.run(request).await,
        Presented::Missing => envelope(
            StatusCode::UNAUTHORIZED,
            ErrorName::InvalidAuthorizationHeaderError,
            "this worker answers only its inference job's predictor: \
             send `Authorization: Bearer <the job's predict secret>`"
                .to_owned(),
        ),
        Presented::Wrong => envelope(
            StatusCode::FORBIDDEN,
            ErrorName::UnauthorizedError,
            "this is not the inference job's predict secret".to_owned(),
        ),
    }
}

async fn health(State(serving): State<Serving>) -> Json<Value> {
    Json(json!({"status": "ok", "trial_id": serving.trial_id}))
}

async fn predict(State(serving): State<Serving>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => return body_rejection(rejection),
    };
    let request: WorkerPredictRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return envelope(
                StatusCode::BAD_REQUEST,
                ErrorName::InvalidRequestError,
                format!("the body must be {{\"queries\": [...]}}: {e}"),
            )
        }
    };
    if request.queries.is_empty() {
        return Json(WorkerPredictResponse {
            predictions: Vec::new(),
        })
        .into_response();
    }
    match serving.batcher.predict(request.queries).await {
        Ok(predictions) => Json(WorkerPredictResponse { predictions }).into_response(),
        Err(BatchError::Model(message)) => envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorName::InternalServerError,
            message.to_string(),
        ),
        Err(BatchError::Closed) => envelope(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorName::ServiceDeploymentError,
            "the worker is not serving any more".to_owned(),
        ),
    }
}

async fn not_found() -> Response {
    envelope(
        StatusCode::NOT_FOUND,
        ErrorName::NotFoundError,
        "no such route: the worker serves GET /health and POST /predict".to_owned(),
    )
}

fn body_rejection(rejection: BytesRejection) -> Response {
    if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
        envelope(
            StatusCode::PAYLOAD_TOO_LARGE,
            ErrorName::PayloadTooLargeError,
            format!("the body is over {MAX_BODY_BYTES} bytes"),
        )
    } else {
        envelope(
            StatusCode::BAD_REQUEST,
            ErrorName::InvalidRequestError,
            rejection.body_text(),
        )
    }
}

/// An answer in the contract's error envelope.
fn envelope(status: StatusCode, error: ErrorName, message: String) -> Response {
    (status, Json(ErrorBody { error, message })).into_response()
}
