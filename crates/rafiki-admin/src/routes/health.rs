//! Liveness: `GET /` (Rafiki's greeting) and `GET /health` (checks the database).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Serialize;

use crate::sandbox::Isolation;
use crate::state::AppState;
use crate::workers_python::WorkersPython;

/// `GET /health` answer.
#[derive(Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `ok` or `unavailable`.
    pub status: &'static str,
    /// Whether the database answered.
    pub database: &'static str,
    /// How model code is isolated: `bwrap`, `container`, or `off` (not sandboxed).
    pub sandbox: Isolation,
    /// The process backend: the interpreter workers run models with, as checked at start-up.
    /// Absent with the docker backend (the worker image's interpreter).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub python: Option<WorkersPython>,
}

/// Rafiki's greeting, as its clients expect.
#[utoipa::path(get, path = "/", responses((status = 200, body = String, content_type = "text/plain")))]
pub async fn root() -> &'static str {
    "Rafiki Admin is up."
}

/// Whether the server and its database work.
#[utoipa::path(get, path = "/health", responses(
    (status = 200, body = Health), (status = 503, body = Health)))]
pub async fn health(State(state): State<AppState>) -> (StatusCode, Json<Health>) {
    let sandbox = state.orchestrator.isolation();
    let python = state.workers_python.as_deref().cloned();
    match sqlx::query("select 1").execute(&state.pool).await {
        Ok(_) => (
            StatusCode::OK,
            Json(Health {
                status: "ok",
                database: "ok",
                sandbox,
                python,
            }),
        ),
        Err(err) => {
            tracing::warn!(error = %err, "health check: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(Health {
                    status: "unavailable",
                    database: "unavailable",
                    sandbox,
                    python,
                }),
            )
        }
    }
}
