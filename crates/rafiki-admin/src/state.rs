//! The state every handler shares: the pool, settings, the auth machinery, the data directory,
//! the `dataset_url` fetcher and the metrics.

use std::sync::Arc;

use sqlx::PgPool;

use crate::auth::directory::UserDirectory;
use crate::auth::jwt::TokenKeys;
use crate::auth::limits::LoginLimits;
use crate::auth::password::Passwords;
use crate::config::Settings;
use crate::dataset_url::DatasetUrlFetcher;
use crate::metrics::AdminMetrics;
use crate::orchestrator::Orchestrator;
use crate::storage::Storage;
use crate::workers_python::WorkersPython;

/// Shared, cheaply cloned state of the admin.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub pool: PgPool,
    /// Validated settings.
    pub settings: Arc<Settings>,
    /// JWT signing and checking.
    pub tokens: Arc<TokenKeys>,
    /// The users table in memory: bans and `GET /users`.
    pub users: Arc<UserDirectory>,
    /// Password hashing.
    pub passwords: Arc<Passwords>,
    /// The data directory: datasets, model files, parameters.
    pub storage: Arc<Storage>,
    /// Launches, stops and supervises services.
    pub orchestrator: Arc<Orchestrator>,
    /// Downloads of `dataset_url`s, to public addresses and allowed hosts only.
    pub dataset_urls: DatasetUrlFetcher,
    /// Login attempts per client address and per account.
    pub logins: Arc<LoginLimits>,
    /// The process backend's workers' interpreter, as checked at start-up
    /// ([`crate::startup::check_workers_python`]); `None` when nothing was checked.
    pub workers_python: Option<Arc<WorkersPython>>,
    /// This admin's Prometheus metrics (the orchestrator holds them too).
    pub metrics: Arc<AdminMetrics>,
}

impl AppState {
    /// The Python version model files must parse as: the process backend's interpreter, as
    /// checked at start-up, else 3.11, the Python of the project's worker image (Debian
    /// bookworm) that the docker backend runs.
    pub fn models_python(&self) -> ruff_python_ast::PythonVersion {
        self.workers_python
            .as_deref()
            .and_then(|python| minor_version(&python.version))
            .unwrap_or(ruff_python_ast::PythonVersion::PY311)
    }
}

/// `3.11` of a version such as `3.11.7`.
fn minor_version(version: &str) -> Option<ruff_python_ast::PythonVersion> {
    let mut parts = version.split('.');
    let major = parts.next()?.parse().ok()?;
    let minor = parts.next()?.parse().ok()?;
    Some((major, minor).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_minor_version_is_read_from_the_interpreters_version() {
        assert_eq!(
            minor_version("3.12.1"),
            Some(ruff_python_ast::PythonVersion::PY312)
        );
        assert_eq!(minor_version("3"), None);
        assert_eq!(minor_version("x.y"), None);
    }
}
