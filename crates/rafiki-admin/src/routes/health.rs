//! Liveness: `GET /` (Rafiki's greeting, or browsers sent to the console) and `GET /health` (checks the database).
//!
//! The database probe has its own deadline, the pool's acquire timeout capped at
//! [`HEALTH_PROBE_MAX`], so that with the database down (or a connection hanging on a dead
//! network) `/health` says so at once, within docker compose's 5 s health-check timeout.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::Json;
use serde::Serialize;

use crate::sandbox::Isolation;
use crate::state::AppState;
use crate::workers_python::WorkersPython;

/// The longest the health check waits for the database.
pub const HEALTH_PROBE_MAX: Duration = Duration::from_secs(4);

/// `GET /health` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// `ok`, or `unreachable` when the database did not answer in time.
    pub database: &'static str,
    /// How model code is isolated: `bwrap`, `container`, or `off` (not sandboxed).
    pub sandbox: Isolation,
    /// The process backend: the interpreter workers run models with, as checked at start-up.
    /// Absent with the docker backend (the worker image's interpreter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<WorkersPython>,
}

/// Rafiki's greeting, as its clients expect; browsers (whose `Accept` prefers HTML) are sent
/// to the web console instead.
#[utoipa::path(get, path = "/", responses(
    (status = 200, body = String, content_type = "text/plain"),
    (status = 303, description = "A request whose Accept header prefers text/html: to the web \
        console, /console")))]
pub async fn root(headers: HeaderMap) -> Response {
    if crate::console::prefers_html(&headers) {
        return Redirect::to(crate::console::PREFIX).into_response();
    }
    "Rafiki Admin is up.".into_response()
}

/// Whether the server and its database work.
#[utoipa::path(get, path = "/health", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let sandbox = state.orchestrator.isolation();
    let python = state.workers_python.as_deref().cloned();
    let deadline =
        Duration::from_millis(state.settings.database_acquire_timeout_ms).min(HEALTH_PROBE_MAX);
    let probe = tokio::time::timeout(deadline, rafiki_store::ping(&state.pool)).await;
    match probe {
        Ok(Ok(_)) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                database: "ok",
                sandbox,
                python,
            }),
        ),
        Ok(Err(err)) => unreachable_database(&err, sandbox, python),
        Err(elapsed) => unreachable_database(&elapsed, sandbox, python),
    }
}

/// 503: the database did not answer.
fn unreachable_database(
    err: &dyn std::fmt::Display,
    sandbox: Isolation,
    python: Option<WorkersPython>,
) -> (StatusCode, Json<Health>) {
    tracing::warn!(error = %err, "health check: database unreachable");
    (
        StatusCode::SERVICE_UNAVAILABLE,
        Json(Health {
            status: "unavailable",
            database: "unreachable",
            sandbox,
            python,
        }),
    )
}
