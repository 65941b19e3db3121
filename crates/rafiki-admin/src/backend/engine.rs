//! What the two container backends (`docker` and `swarm`) share over a Docker engine's API:
//! the layout of a service's container (its user, its writable directories, its command and
//! environment), the engine's errors, and the output a removed service leaves in its log.

use std::path::{Path, PathBuf};

use bollard::container::LogOutput;
use bollard::errors::Error as DockerError;
use futures_util::{Stream, StreamExt};
use rafiki_types::internal::env;
use rafiki_types::status::ServiceType;
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use super::{BackendError, ServiceSpec};

/// The user services run as: the unprivileged user of the worker and predictor images, forced
/// here too so that an allowed image that ends as root still runs unprivileged.
pub(super) const SERVICE_USER: &str = "10001:10001";
/// The one writable directory of a container besides its environments, an anonymous volume
/// removed with it: the work directory, the user's home and `TMPDIR` are below it.
/// The engine fills a new volume with what the image has there (its directories, owned by the
/// service user), so images must derive from `rafiki-rs/worker` or make the same directories.
pub(super) const CONTAINER_DATA_DIR: &str = "/var/lib/rafiki";
/// Where a service's working files live inside its container.
pub(super) const CONTAINER_WORK_DIR: &str = "/var/lib/rafiki/work";
/// Where a worker's dependency environments live inside its container: its owners' volume,
/// mounted over the image's (empty, service-user-owned) directory, whose owner and mode a new
/// volume copies.
pub(super) const CONTAINER_VENV_DIR: &str = "/var/lib/rafiki/venvs";
/// How many of its last output lines a removed service leaves in its log.
pub(super) const KEPT_LOG_LINES: &str = "10000";

/// A failed engine call, with the engine's reason.
pub(super) fn engine_error(what: &str, err: DockerError) -> BackendError {
    BackendError(format!("{what}: {}", reason(&err)))
}

/// Docker's own message where it sent one.
pub(super) fn reason(err: &DockerError) -> String {
    match err {
        DockerError::DockerResponseServerError { message, .. } => message.clone(),
        other => other.to_string(),
    }
}

/// Whether the engine said 404 (no such container, service, network...).
pub(super) fn is_not_found(err: &DockerError) -> bool {
    matches!(
        err,
        DockerError::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// The image and command of a service: the predictor's image for predictors, the model's
/// image (`spec.image`) for workers.
pub(super) fn image_and_command(
    spec: &ServiceSpec,
    predictor_image: &str,
) -> (String, Vec<&'static str>) {
    match spec.service_type {
        ServiceType::Predict => (predictor_image.to_owned(), vec!["rafiki-predictor"]),
        ServiceType::Inference => (spec.image.clone(), vec!["rafiki-worker", "inference"]),
        ServiceType::Train | ServiceType::Advisor => {
            (spec.image.clone(), vec!["rafiki-worker", "train"])
        }
    }
}

/// A service's environment inside its container: the spec's, the passed-through tuning
/// variables, the work directory, and, for workers, the environments directory.
pub(super) fn container_env(spec: &ServiceSpec) -> Vec<String> {
    let mut vars: Vec<String> = spec
        .env
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .chain(super::passed_through_env().map(|(k, v)| format!("{k}={v}")))
        .collect();
    vars.push(format!("{}={CONTAINER_WORK_DIR}", env::WORK_DIR));
    if spec.owners.is_some() {
        vars.push(format!("{}={CONTAINER_VENV_DIR}", env::VENV_DIR));
    }
    vars
}

/// The log a service's removed containers leave behind, under `logs_dir`.
pub fn log_path(logs_dir: &Path, service_id: Uuid) -> PathBuf {
    logs_dir.join(service_id.to_string()).join("service.log")
}

/// Appends the end of a service's output, read from `output` (the engine's logs of its
/// container or Swarm service, `source` in warnings), to `path`; a service that does not exist
/// has none. Failures are logged, never fatal: the output is a diagnostic.
pub(super) async fn keep_output(
    mut output: impl Stream<Item = Result<LogOutput, DockerError>> + Unpin,
    source: &str,
    path: &Path,
) {
    let mut kept = Vec::new();
    while let Some(item) = output.next().await {
        match item {
            Ok(chunk) => kept.extend_from_slice(&chunk.into_bytes()),
            Err(err) if is_not_found(&err) => return,
            Err(err) => {
                tracing::warn!(source, error = %reason(&err), "cannot read its output");
                break;
            }
        }
    }
    if kept.is_empty() {
        return;
    }
    let written = async {
        if let Some(dir) = path.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        let mut file = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await?;
        file.write_all(&kept).await?;
        file.flush().await
    };
    if let Err(err) = written.await {
        tracing::warn!(path = %path.display(), error = %err, "cannot keep a service's output");
    }
}
