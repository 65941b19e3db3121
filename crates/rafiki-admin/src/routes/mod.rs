//! The HTTP routes of the admin, one module per resource, assembled into one router.

pub mod audit;
pub mod datasets;
pub mod download;
pub mod health;
pub mod inference_jobs;
pub mod internal;
pub mod models;
mod orchestrator_errors;
pub mod tokens;
pub mod train_jobs;
pub mod trials;
pub mod users;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use rafiki_service::request_id;
use rafiki_types::error::ErrorName;
use tower::ServiceBuilder;
use tower_http::trace::TraceLayer;
use tracing::Instrument;
use utoipa_swagger_ui::SwaggerUi;

use axum::extract::Request;
use axum::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use axum::http::Method;

use crate::config::MetricsSwitch;
use crate::error::{ApiError, ConnectionBroke};
use crate::state::AppState;

/// The admin's router with its middleware, serving `doc` (`crate::openapi::api_doc`, which
/// reads the handlers here: passed in so that this module does not depend on it) at
/// `/openapi.json` and `/docs`.
///
/// With metrics on (`RAFIKI_METRICS`), every request is counted under its route's template
/// (`crate::metrics::http`), and `/metrics` and `/metrics/targets` are served here unless
/// `RAFIKI_METRICS_ADDR` moves them to a listener of their own.
pub fn router(state: AppState, doc: utoipa::openapi::OpenApi) -> Router {
    let max_json_bytes = state.settings.max_json_bytes;
    let metrics_on = state.settings.metrics == MetricsSwitch::On;
    let mut router = Router::new()
        .route("/", get(health::root))
        .route("/health", get(health::health))
        .route("/tokens", post(tokens::login))
        .route(
            "/users",
            post(users::create_user)
                .get(users::list_users)
                .delete(users::ban_user),
        )
        // Uploads stream to disk under their own limits (`crate::upload`), so axum's
        // in-memory body limit is off for them.
        .route(
            "/datasets",
            post(datasets::create_dataset.layer(DefaultBodyLimit::disable()))
                .get(datasets::list_datasets),
        )
        .route(
            "/datasets/{id}",
            get(datasets::get_dataset).delete(datasets::delete_dataset),
        )
        .route(
            "/models",
            post(models::create_model.layer(DefaultBodyLimit::disable())),
        )
        .route("/models/available", get(models::list_available_models))
        .route(
            "/models/{id}",
            get(models::get_model).delete(models::delete_model),
        )
        .route("/models/{id}/model_file", get(models::download_model_file))
        .route(
            "/train_jobs",
            post(train_jobs::create_train_job).get(train_jobs::list_train_jobs),
        )
        .route("/train_jobs/{app}", get(train_jobs::list_train_jobs_of_app))
        .route(
            "/train_jobs/{app}/{app_version}",
            get(train_jobs::get_train_job),
        )
        .route(
            "/train_jobs/{app}/{app_version}/stop",
            post(train_jobs::stop_train_job),
        )
        .route(
            "/train_jobs/{app}/{app_version}/trials",
            get(train_jobs::list_trials),
        )
        .route("/trials/{id}", get(trials::get_trial))
        .route("/trials/{id}/logs", get(trials::get_trial_logs))
        .route("/trials/{id}/parameters", get(trials::get_trial_parameters))
        .route(
            "/inference_jobs",
            post(inference_jobs::create_inference_job).get(inference_jobs::list_inference_jobs),
        )
        .route(
            "/inference_jobs/{app}",
            get(inference_jobs::list_inference_jobs_of_app),
        )
        .route(
            "/inference_jobs/{app}/{app_version}",
            get(inference_jobs::get_running_inference_job),
        )
        .route(
            "/inference_jobs/{app}/{app_version}/stop",
            post(inference_jobs::stop_inference_job),
        )
        .route("/actions/stop_all_jobs", post(train_jobs::stop_all_jobs))
        .route("/audit", get(audit::list_audit_events))
        // The API's routes above and the console's (not the services' internal ones) record
        // their refusals in the audit trail.
        .route_layer(axum::middleware::from_fn_with_state(
            state.clone(),
            crate::audit::record_refusals,
        ))
        .merge(internal::router())
        .nest(
            crate::console::PREFIX,
            crate::console::router().route_layer(axum::middleware::from_fn_with_state(
                state.clone(),
                crate::audit::record_refusals,
            )),
        )
        .merge(SwaggerUi::new("/docs").url("/openapi.json", doc))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed);
    if metrics_on && state.settings.metrics_addr.is_none() {
        router = router.merge(crate::metrics::endpoint::routes());
    }
    let metrics = metrics_on.then(|| crate::metrics::http::TrackLayer::new(state.metrics.clone()));
    // One `Router::layer` for the whole stack: axum boxes what each call wraps, and a boxed
    // route is cloned (an allocation) for every request, so a call per layer would cost one
    // per layer and request (docs/benchmarks.md, "Metrics"). The first layer is the outermost.
    router = router.layer(
        ServiceBuilder::new()
            // Metrics outermost, so that the time counted is the whole answer's.
            // `Router::layer` wraps each route after routing, so the route's template
            // (`MatchedPath`) is known there.
            .option_layer(metrics)
            // Outside the trace layer, so that the span reads the id this sets.
            .layer(axum::middleware::from_fn(request_id::assign))
            .layer(TraceLayer::new_for_http().make_span_with(request_id::span))
            .layer(axum::middleware::from_fn(run_to_completion))
            .layer(DefaultBodyLimit::max(max_json_bytes)),
    );
    router.with_state(state)
}

/// Runs each request's handler in a task of its own. hyper drops a request's future when its
/// caller hangs up, which would cut a handler off between two steps: a stop that stopped some
/// services and not the rest, a launch not recorded. A service stopped by its own call (an
/// inference worker reporting its model failed ends its job, itself included) always hangs up
/// that way. As a task, the handler finishes whatever the caller does.
///
/// A read (GET or HEAD without a body) whose database connection broke while in use
/// ([`ConnectionBroke`]) is run once more: the pool hands out another connection, so a
/// restarted server or a dropped connection costs the caller nothing. Writes are not repeated,
/// since one may have been committed before its answer was lost; they answer 503.
async fn run_to_completion(req: Request, next: axum::middleware::Next) -> Response {
    let again = is_bodiless_read(&req).then(|| copy_of_read(&req));
    let response = in_own_task(next.clone(), req).await;
    match again {
        Some(again) if response.extensions().get::<ConnectionBroke>().is_some() => {
            tracing::warn!(uri = %again.uri(), "a database connection broke; reading once more");
            in_own_task(next, again).await
        }
        _ => response,
    }
}

async fn in_own_task(next: axum::middleware::Next, req: Request) -> Response {
    // A task does not inherit its spawner's span: the request's span (its id) goes along, so
    // that the handler's log lines name the request.
    tokio::spawn(next.run(req).instrument(tracing::Span::current()))
        .await
        .unwrap_or_else(|err| {
            ApiError::internal(anyhow::anyhow!("a request handler failed: {err}")).into_response()
        })
}

/// A GET or HEAD whose headers announce no body (the body is not kept for a second run).
fn is_bodiless_read(req: &Request) -> bool {
    let headers = req.headers();
    let no_body = !headers.contains_key(TRANSFER_ENCODING)
        && headers
            .get(CONTENT_LENGTH)
            .is_none_or(|length| length.as_bytes() == b"0");
    matches!(*req.method(), Method::GET | Method::HEAD) && no_body
}

/// The same read again: method, URI, headers and extensions (the peer's address among them).
fn copy_of_read(req: &Request) -> Request {
    let mut copy = Request::new(axum::body::Body::empty());
    *copy.method_mut() = req.method().clone();
    *copy.uri_mut() = req.uri().clone();
    *copy.version_mut() = req.version();
    *copy.headers_mut() = req.headers().clone();
    *copy.extensions_mut() = req.extensions().clone();
    copy
}

/// The 404 of a path no route serves.
pub(crate) async fn not_found() -> ApiError {
    ApiError::new(ErrorName::NotFoundError, "No such route.")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorName::InvalidRequestError,
        "This route does not take that method.",
    )
    .with_status(axum::http::StatusCode::METHOD_NOT_ALLOWED)
}
