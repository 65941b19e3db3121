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
use std::path::Path;
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
use rafiki_service::client::AdminClient;
use rafiki_service::predict_secret::{PredictSecret, Presented};
use rafiki_service::request_id;
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::internal::{self, WorkerPredictRequest, WorkerPredictResponse};
use serde_json::{json, Value};
use tokio::net::TcpListener;
use tower_http::trace::TraceLayer;
use uuid::Uuid;

use crate::batcher::{self, BatchError, BatchQueue, Batcher};
use crate::cache::BlobCache;
use crate::config::WorkerConfig;
use crate::host::{
    fetch_model, report_failure, start_model, HostedModel, ModelHost, TrialParameters,
};
use crate::train::{io_error, TrainError};

/// The largest `POST /predict` body accepted.
pub const MAX_BODY_BYTES: usize = 64 << 20;

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
    let address = format!("{}:{port}", config.service.bind_host);
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
    let client = config.service.admin_client()?;
    match serve_model(config, secret, &client, listener).await {
        Err(e) if e.is_stopped() => {
            tracing::info!("the admin stopped this service; exiting");
            Ok(InferenceExit::Stopped)
        }
        other => other,
    }
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
    let model_path = fetch_model(&cache, client, &job.model).await?;
    let params_path = cache
        .fetch(
            client,
            "params",
            &job.parameters,
            ".params",
            &format!("/internal/trials/{}/parameters", job.parameters.id),
        )
        .await?;

    let parameters = TrialParameters {
        path: params_path,
        knobs: serde_json::to_value(&job.knobs).expect("knobs serialise"),
    };
    let started = start_model(
        config,
        client,
        &work_dir,
        &job.model,
        model_path,
        Some(parameters),
    )
    .await?;
    // The lease is held while the worker serves.
    let HostedModel {
        mut host,
        lease: _lease,
        ..
    } = match started {
        Ok(hosted) => hosted,
        Err(reason) => return give_up(client, None, reason).await,
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
    host: Option<ModelHost>,
    error: String,
) -> Result<InferenceExit, TrainError> {
    tracing::error!("cannot serve the model: {error}");
    report_failure(client.inference_fail(&error), host).await?;
    Ok(InferenceExit::Failed { error })
}

/// Says ready, then predicts batches one at a time for as long as the server runs.
async fn serve_batches(
    client: &AdminClient,
    host: &mut ModelHost,
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
                    if let Err(e) = host.restart().await {
                        return give_up(client, None, e.into_failure()?).await;
                    }
                }
            }
        }
    }
    // The server holds a batcher for as long as it runs, so this is not reached while serving.
    Ok(InferenceExit::Stopped)
}

#[derive(Clone)]
struct Serving {
    batcher: Batcher,
    trial_id: Uuid,
}

/// The worker's own HTTP API, for its job's predictor only: every route, unknown ones
/// included, needs the job's secret. Requests keep the predictor's `x-request-id` in their
/// log spans and answers (`rafiki_service::request_id`); a batch of many requests' queries is
/// the batcher's, and its log lines name none.
fn router(batcher: Batcher, trial_id: Uuid, secret: PredictSecret) -> Router {
    Router::new()
        .route("/health", get(health))
        .route("/predict", post(predict))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(secret, require_secret))
        .layer(TraceLayer::new_for_http().make_span_with(request_id::span))
        // Outermost, so that the span reads the id and refusals name it too.
        .layer(middleware::from_fn(request_id::assign))
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
