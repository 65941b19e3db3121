//! `OrchestratorError`: why the orchestrator refused or failed a decision, in its own terms.
//! Routes turn it into the contract's envelope with `From` (in `crate::error`), so which error
//! name and status a refusal answers is decided in one place, not at each call.

use rafiki_store::StoreError;

/// Result of an orchestrator decision.
pub type OrchestratorResult<T> = Result<T, OrchestratorError>;

/// Why the orchestrator refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum OrchestratorError {
    /// The train job breaks a quota, or its app already has a live train job.
    #[error("{0}")]
    TrainJobRefused(String),
    /// The budget asks for more GPUs than can be counted.
    #[error("budget GPU_COUNT is too large")]
    GpuCountTooLarge,
    /// The GPUs cannot be had: a train job that could never fit the cluster, or a deployment
    /// whose GPUs are not free now; `what` is the job's kind ("job", "deployment").
    #[error("Not enough GPUs for this {what}: {why}.")]
    GpusShort {
        /// The kind of job asked for.
        what: &'static str,
        /// What was asked and what there is.
        why: String,
    },
    /// A model cannot be run: it is gone, its image is no longer allowed, or its knob config is
    /// invalid.
    #[error("{0}")]
    ModelRefused(String),
    /// The train job already has a live inference job.
    #[error("This train job is already deployed.")]
    AlreadyDeployed,
    /// The backend could not launch or stop a service.
    #[error("{0}")]
    Backend(String),
    /// A worker called out of order (asked for trials before reporting its knob config).
    #[error("{0}")]
    OutOfOrder(String),
    /// The store refused a status move its transition table does not allow: a bug, kept apart
    /// from other store faults so that the log says so.
    #[error("refused status move: {0}")]
    RefusedMove(StoreError),
    /// The store failed (the database unreachable among the causes).
    #[error(transparent)]
    Store(StoreError),
    /// Anything else: a server fault.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl From<StoreError> for OrchestratorError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::RefusedMove { .. } => OrchestratorError::RefusedMove(err),
            err => OrchestratorError::Store(err),
        }
    }
}

/// `pool.begin()`, `tx.commit()` and the like: store faults.
impl From<sqlx::Error> for OrchestratorError {
    fn from(err: sqlx::Error) -> Self {
        OrchestratorError::Store(StoreError::from(err))
    }
}
