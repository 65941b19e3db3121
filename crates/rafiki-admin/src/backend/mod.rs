//! Backends run services (train workers, inference workers, predictors) somewhere: `process`
//! (child processes on this host, the embedded default) and, as it lands, `docker`. The
//! orchestrator decides what should run; a backend only starts, inspects and stops.

pub mod process;

use std::collections::BTreeMap;

use rafiki_types::status::ServiceType;
use uuid::Uuid;

/// Everything a backend needs to launch one service.
#[derive(Debug, Clone)]
pub struct ServiceSpec {
    /// The service's id (also in its environment).
    pub id: Uuid,
    /// What it is.
    pub service_type: ServiceType,
    /// GPUs allocated to it (device ids).
    pub gpus: Vec<i32>,
    /// Its environment, the variables of `docs/internal-api.md`.
    pub env: BTreeMap<String, String>,
}

/// What a backend sees of a launched service.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ServiceState {
    /// Still running.
    Running,
    /// Exited with this code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// Gone without a known exit status (e.g. launched before an admin restart).
    Missing,
}

/// A launch or stop that failed, with the backend's reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Where services run.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// The backend's name as stored in `services.backend`.
    fn name(&self) -> &'static str;

    /// Launches a service; returns its handle (`services.backend_id`).
    async fn start(&self, spec: &ServiceSpec) -> Result<String, BackendError>;

    /// What became of a launched service.
    async fn state(&self, service_id: Uuid, backend_id: &str) -> ServiceState;

    /// Stops a service and waits until it is gone. Stopping one already gone succeeds.
    async fn stop(&self, service_id: Uuid, backend_id: &str) -> Result<(), BackendError>;
}
