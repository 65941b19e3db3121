//! The predictor's public API (CONTRACT §4): `GET /` and `POST /predict`; and its metrics,
//! `GET /metrics` ([`crate::metrics`]), on the same port.

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::header::ACCEPT;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use rafiki_service::request_id::{self, RequestId};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::inference::{PredictRequest, PredictResponse};
use tower_http::trace::TraceLayer;

use crate::ensemble::{PredictError, Predictor};

/// The largest `POST /predict` body accepted.
pub const MAX_BODY_BYTES: usize = 64 << 20;

/// The routes, over `predictor`.
pub fn router(predictor: Arc<Predictor>) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/predict", post(predict))
        .route("/metrics", get(metrics))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(TraceLayer::new_for_http().make_span_with(request_id::span))
        // Outside the trace layer, so that the span reads the id this sets.
        .layer(axum::middleware::from_fn(request_id::assign))
        // Outermost, after routing (`Router::layer`): the whole answer is timed, under the
        // route's template.
        .layer(axum::middleware::from_fn_with_state(
            predictor.clone(),
            crate::metrics::track,
        ))
        .with_state(predictor)
}

async fn index() -> &'static str {
    "Rafiki predictor. POST /predict with {\"query\": q} or {\"queries\": [q, ...]}.\n"
}

async fn predict(
    State(predictor): State<Arc<Predictor>>,
    Extension(request_id): Extension<RequestId>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            return envelope(
                StatusCode::PAYLOAD_TOO_LARGE,
                ErrorName::PayloadTooLargeError,
                format!("The body is over {MAX_BODY_BYTES} bytes."),
            )
        }
        Err(rejection) => {
            return envelope(
                StatusCode::BAD_REQUEST,
                ErrorName::InvalidRequestError,
                rejection.body_text(),
            )
        }
    };
    let request: PredictRequest = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => {
            return envelope(
                StatusCode::BAD_REQUEST,
                ErrorName::InvalidRequestError,
                format!(
                "The body must be a JSON object {{\"query\": q}} or {{\"queries\": [q, ...]}}: {e}"
            ),
            )
        }
    };
    let (single, queries) = match request {
        PredictRequest::Query(query) => (true, vec![query]),
        PredictRequest::Queries(queries) => (false, queries),
    };
    match predictor.predict(queries, &request_id).await {
        Ok(mut predictions) => {
            let response = if single {
                PredictResponse {
                    prediction: predictions.pop(),
                    predictions: Vec::new(),
                }
            } else {
                PredictResponse {
                    prediction: None,
                    predictions,
                }
            };
            Json(response).into_response()
        }
        // The contract names no error for a model that fails; its 5xx name is the one the
        // inference worker itself answers with. The message is the owner's own model's (one
        // line, no traceback), which they need to fix it.
        Err(e @ PredictError::ModelsFailed { .. }) => envelope(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorName::InternalServerError,
            e.to_string(),
        ),
        Err(e @ (PredictError::NoWorkers | PredictError::NoneAnswered { .. })) => envelope(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorName::ServiceDeploymentError,
            e.to_string(),
        ),
    }
}

/// `GET /metrics`: no token, like `POST /predict`; nothing in it names a job, a model or a
/// query.
async fn metrics(State(predictor): State<Arc<Predictor>>, headers: HeaderMap) -> Response {
    predictor.metrics().scrape(headers.get(ACCEPT))
}

async fn not_found() -> Response {
    envelope(
        StatusCode::NOT_FOUND,
        ErrorName::NotFoundError,
        "No such route: the predictor serves GET /, POST /predict and GET /metrics.".to_owned(),
    )
}

/// An answer in the contract's error envelope (`Content-Type: application/json`).
fn envelope(status: StatusCode, error: ErrorName, message: String) -> Response {
    (status, Json(ErrorBody { error, message })).into_response()
}
