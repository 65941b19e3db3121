//! Backends run services (train workers, inference workers, predictors) somewhere: `process`
//! (child processes on this host, the embedded default), `docker` (containers through the
//! engine's API) and `swarm` (Docker Swarm services through a manager's API). The orchestrator decides what should run; a backend only starts, inspects,
//! stops, and at start-up reconciles what it finds with the live services.

pub mod docker;
mod engine;
pub mod process;
pub mod swarm;

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
    /// The train or inference job it serves.
    pub job_id: Uuid,
    /// The node it was placed on (`cluster`: `local` for one-host backends, a swarm node id).
    pub node: String,
    /// GPUs allocated to it (device ids on its node).
    pub gpus: Vec<i32>,
    /// The image it runs in (workers: the model's `docker_image`); container backends only.
    pub image: String,
    /// The port it listens on, if it does (`RAFIKI_PORT` is in `env` too).
    pub port: Option<u16>,
    /// Its environment, the variables of `docs/internal-api.md` that do not depend on where it
    /// runs; each backend adds its own (the interpreter, the work directory, the visible GPUs).
    pub env: BTreeMap<String, String>,
    /// Workers: whose job it is and whose model it runs, which decides which dependency
    /// environments it may share (`docs/security.md`, "Dependency environments").
    pub owners: Option<Owners>,
}

/// The users a worker works for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Owners {
    /// The owner of the train or inference job.
    pub job: Uuid,
    /// The owner of the model it hosts.
    pub model: Uuid,
}

/// A launched service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Launched {
    /// The backend's handle (`services.backend_id`).
    pub backend_id: String,
    /// The port on the backend's host where the service's port is reachable from outside, when
    /// the backend maps it (a container's published port); `None` when it is the service's own.
    pub published_port: Option<u16>,
    /// The host `published_port` is on, when it is not this machine (`addr`): a swarm node's
    /// address.
    pub published_host: Option<String>,
}

/// How a listening service binds and how its peers (the predictor) reach it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceAddress {
    /// The address it binds (`RAFIKI_BIND_HOST`).
    pub bind_host: String,
    /// The host its peers connect to.
    pub reach_host: String,
}

/// The services' own tuning variables (docs/internal-api.md): set on the admin, passed to every
/// service it launches. `RAFIKI_LOG_FORMAT` among them, so that one setting gives the admin
/// and its services the same log format.
pub const PASSED_THROUGH_ENV: &[&str] = &[
    "RUST_LOG",
    "RAFIKI_LOG_FORMAT",
    "RUST_BACKTRACE",
    "RAFIKI_MAX_BATCH_SIZE",
    "RAFIKI_MAX_BATCH_WAIT_MS",
    "RAFIKI_PREDICT_TIMEOUT_MS",
    "RAFIKI_PREDICTOR_POLL_MS",
    "RAFIKI_MAX_CONSECUTIVE_FAILURES",
    "RAFIKI_SANDBOX_PIP_NETWORK",
    "RAFIKI_SANDBOX_TMP_MB",
];

/// The passed-through variables that are set here, as (name, value).
pub fn passed_through_env() -> impl Iterator<Item = (String, String)> {
    PASSED_THROUGH_ENV
        .iter()
        .filter_map(|k| std::env::var(k).ok().map(|v| ((*k).to_owned(), v)))
}

/// What a backend sees of a launched service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServiceState {
    /// Still running.
    Running,
    /// Exited with this code (`None`: killed by a signal).
    Exited(Option<i32>),
    /// Gone without a known exit status (e.g. launched before an admin restart).
    Missing,
    /// The backend could not run it, for this reason (a swarm task no node took in time, or
    /// that Swarm rejected).
    Failed(String),
}

/// A launch or stop that failed, with the backend's reason.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct BackendError(pub String);

/// Where services run.
#[async_trait::async_trait]
pub trait Backend: Send + Sync {
    /// The backend's kind, as stored in `services.backend`.
    fn name(&self) -> rafiki_types::status::BackendKind;

    /// How the services it runs isolate model code.
    fn isolation(&self) -> crate::sandbox::Isolation;

    /// How a listening service of this backend binds and is reached by its peers.
    fn address(&self, service_id: Uuid, service_type: ServiceType) -> ServiceAddress;

    /// Launches a service. On failure nothing of it is left running.
    async fn start(&self, spec: &ServiceSpec) -> Result<Launched, BackendError>;

    /// What became of a launched service.
    async fn state(&self, service_id: Uuid, backend_id: &str) -> ServiceState;

    /// Stops a service and waits until it is gone. Stopping one already gone succeeds.
    async fn stop(&self, service_id: Uuid, backend_id: &str) -> Result<(), BackendError>;

    /// At admin start-up, given this backend's live services as (service id, backend id):
    /// removes what the backend runs for this deployment that is not among them, and returns
    /// how many it removed. Live services it still runs are adopted as they are.
    async fn reconcile(&self, live: &[(Uuid, String)]) -> Result<usize, BackendError>;
}
