//! `rafiki-predictor`: the public endpoint of one inference job.
//!
//! It listens on `RAFIKI_BIND_HOST:RAFIKI_PORT`, learns the job's task and serving inference
//! workers from the admin (`GET /internal/predictor/job`, at start and then every second, each
//! answer applied before the next call, which is how the admin knows when it serves), and answers `POST /predict` (CONTRACT §4, [`http`]) by sending the
//! queries to every worker at once and combining their answers ([`ensemble`], [`combine`]).
//! It serves its Prometheus metrics at `GET /metrics` ([`metrics`]).
//! `docs/predictor.md` describes the service; the binary's `main` only reads the settings and
//! calls [`serve`].

pub mod combine;
pub mod config;
pub mod ensemble;
pub mod http;
pub mod metrics;

use std::future::IntoFuture;
use std::sync::Arc;

use axum::serve::ListenerExt;
use rafiki_service::client::{AdminClient, ClientError};
use rafiki_service::config::{RetryPolicy, ServiceSettings};
use tokio::net::TcpListener;
use tokio::signal::unix::{signal, SignalKind};

pub use config::PredictorConfig;
pub use ensemble::Predictor;

/// How the predictor ended on purpose (the process exits 0).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    /// The admin stopped the service (a 401).
    Stopped,
    /// SIGTERM or SIGINT arrived.
    Signal(&'static str),
}

/// Why the predictor crashed (non-zero exit: the admin restarts it).
#[derive(Debug, thiserror::Error)]
pub enum PredictorError {
    /// The first call to the admin failed.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The socket or the HTTP client could not be set up, or the server failed.
    #[error("{what}: {source}")]
    Io {
        /// What failed.
        what: String,
        /// The cause.
        source: std::io::Error,
    },
}

/// Runs the predictor until the admin stops it or SIGTERM/SIGINT arrives. An `Err` is a crash.
pub async fn serve(config: PredictorConfig) -> Result<Finished, PredictorError> {
    let handler = |kind: SignalKind, name: &str| {
        signal(kind).map_err(|source| PredictorError::Io {
            what: format!("{name} handler"),
            source,
        })
    };
    let mut terminate = handler(SignalKind::terminate(), "SIGTERM")?;
    let mut interrupt = handler(SignalKind::interrupt(), "SIGINT")?;
    tracing::info!(?config, "rafiki-predictor starting");
    let finished = tokio::select! {
        result = run(&config) => result?,
        _ = terminate.recv() => Finished::Signal("SIGTERM"),
        _ = interrupt.recv() => Finished::Signal("SIGINT"),
    };
    tracing::info!(?finished, "rafiki-predictor done");
    Ok(finished)
}

/// Listens on `RAFIKI_BIND_HOST:RAFIKI_PORT`, then runs as [`run_on`] does.
pub async fn run(config: &PredictorConfig) -> Result<Finished, PredictorError> {
    let address = format!("{}:{}", config.service.bind_host, config.port);
    let listener = TcpListener::bind(&address)
        .await
        .map_err(|source| PredictorError::Io {
            what: format!("listening on {address}"),
            source,
        })?;
    run_on(config, listener).await
}

/// Serves on `listener` while following the job; returns when the admin stops the service, or
/// on a crash.
pub async fn run_on(
    config: &PredictorConfig,
    listener: TcpListener,
) -> Result<Finished, PredictorError> {
    let predictor = Arc::new(
        Predictor::new(config.worker_timeout, &config.predict_secret).map_err(|e| {
            PredictorError::Io {
                what: "building the HTTP client".to_owned(),
                source: std::io::Error::other(e),
            }
        })?,
    );
    let admin = config.service.admin_client()?;
    let poller = ServiceSettings {
        retry: RetryPolicy {
            attempts: 1,
            ..config.service.retry
        },
        ..config.service.clone()
    }
    .admin_client()?;
    let address = listener.local_addr().map_err(|source| PredictorError::Io {
        what: "the listening socket".to_owned(),
        source,
    })?;
    let listener = listener.tap_io(|tcp| {
        // Small answers must not wait for Nagle's algorithm.
        let _ = tcp.set_nodelay(true);
    });
    let server = axum::serve(listener, http::router(predictor.clone())).into_future();
    tracing::info!(%address, "listening");
    tokio::select! {
        result = server => Err(PredictorError::Io {
            what: format!("HTTP server on {address}"),
            source: result.err().unwrap_or_else(|| std::io::Error::other("ended")),
        }),
        finished = follow_job(&admin, &poller, &predictor, config.poll_interval) => finished,
    }
}

/// Asks for the job once (with retries; a failure is a crash), then every `interval` (a
/// failure keeps the last known workers). A 401 ends the predictor.
async fn follow_job(
    admin: &AdminClient,
    poller: &AdminClient,
    predictor: &Predictor,
    interval: std::time::Duration,
) -> Result<Finished, PredictorError> {
    match admin.predictor_job().await {
        Ok(job) => {
            predictor.update(job);
        }
        Err(ClientError::Stopped) => return Ok(stopped()),
        Err(e) => return Err(e.into()),
    }
    loop {
        tokio::time::sleep(interval).await;
        match poller.predictor_job().await {
            Ok(job) => {
                predictor.update(job);
            }
            Err(ClientError::Stopped) => return Ok(stopped()),
            Err(e) => {
                tracing::warn!("cannot refresh the job's workers; keeping the last known: {e}")
            }
        }
    }
}

fn stopped() -> Finished {
    tracing::info!("the admin stopped this service; exiting");
    Finished::Stopped
}
