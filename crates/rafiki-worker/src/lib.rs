//! `rafiki-worker`: the service that runs a user's model for the admin.
//!
//! In train mode ([`train`]) it tunes one model of a train job: it asks the admin for trials
//! over the internal API (`docs/internal-api.md`, [`rafiki_service::client`]), runs each in a
//! long-lived Python child (`docs/runtime-protocol.md`, [`runtime`]) and reports scores,
//! parameters and logs back; trials may start from parameters shared by earlier ones, its own
//! ([`param_cache`]) or its sub-job's (through the admin).
//! In inference mode ([`inference`]) it loads one trained trial's model and serves predictions
//! over HTTP to the inference job's predictor, batching concurrent requests ([`batcher`]).
//! Both modes host the model the same way (module `host`: its dependency environment, the
//! runtime with the model loaded, restarts, and whose fault a failure is).
//! `docs/worker.md` describes the whole service. The binary's `main` only reads the settings
//! and calls [`serve`].

pub mod batcher;
pub mod cache;
pub mod config;
pub mod deps;
pub mod envs;
mod host;
pub mod inference;
pub mod param_cache;
pub mod runtime;
pub mod sandbox;
pub mod train;

pub use config::{Mode, WorkerConfig};
pub use inference::InferenceExit;
pub use train::{TrainError, TrainExit};

use tokio::signal::unix::{signal, SignalKind};

/// How [`serve`] ended on purpose (the process exits 0).
#[derive(Debug, Clone, PartialEq)]
pub enum Finished {
    /// Train mode ran to its end.
    Train(TrainExit),
    /// Inference mode ended without a signal (the model cannot be served, or the admin
    /// stopped the service).
    Inference(InferenceExit),
    /// SIGTERM or SIGINT arrived; the Python child's process group was killed.
    Signal(&'static str),
}

/// Runs the worker in `mode` until it is done or SIGTERM/SIGINT arrives. An `Err` is a crash:
/// the process should exit non-zero so the admin restarts it. Both modes report crashes as a
/// [`TrainError`].
pub async fn serve(mode: Mode, config: WorkerConfig) -> Result<Finished, TrainError> {
    let mut terminate = signal(SignalKind::terminate()).map_err(|source| TrainError::Io {
        path: "SIGTERM handler".into(),
        source,
    })?;
    let mut interrupt = signal(SignalKind::interrupt()).map_err(|source| TrainError::Io {
        path: "SIGINT handler".into(),
        source,
    })?;
    tracing::info!(?mode, ?config, "rafiki-worker starting");
    // Dropping the work on a signal drops the Python runtime, which kills its process group.
    let finished = tokio::select! {
        result = run(mode, &config) => result?,
        _ = terminate.recv() => Finished::Signal("SIGTERM"),
        _ = interrupt.recv() => Finished::Signal("SIGINT"),
    };
    tracing::info!(?finished, "rafiki-worker done");
    Ok(finished)
}

async fn run(mode: Mode, config: &WorkerConfig) -> Result<Finished, TrainError> {
    match mode {
        Mode::Train => train::run(config).await.map(Finished::Train),
        Mode::Inference => inference::run(config).await.map(Finished::Inference),
    }
}
