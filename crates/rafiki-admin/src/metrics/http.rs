//! Requests by route template, method and status, their latency, and the database errors
//! they were answered with. The middleware is on every request, so it does the least it can:
//! an interned route name (no allocation), a lookup of each family's series and two atomic
//! updates (`docs/benchmarks.md` measures what it costs `GET /users`).

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rafiki_service::metrics::{method_label, RouteNames, REQUEST_SECONDS_BUCKETS, UNMATCHED_ROUTE};

use super::AdminMetrics;
use crate::error::DatabaseFault;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    method: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: &'static str,
    method: &'static str,
}

fn request_seconds() -> Histogram {
    Histogram::new(REQUEST_SECONDS_BUCKETS)
}

/// The request metrics.
#[derive(Debug)]
pub struct HttpMetrics {
    routes: RouteNames,
    requests: Family<RequestLabels, Counter>,
    seconds: Family<RouteLabels, Histogram, fn() -> Histogram>,
    db_errors: Counter,
}

impl HttpMetrics {
    /// The request metrics, registered in `registry`.
    pub(super) fn register(registry: &mut Registry) -> Self {
        let metrics = HttpMetrics {
            routes: RouteNames::default(),
            requests: Family::default(),
            seconds: Family::new_with_constructor(request_seconds as fn() -> Histogram),
            db_errors: Counter::default(),
        };
        registry.register(
            "rafiki_http_requests",
            "HTTP requests answered, by route template (`unmatched`: no route), method and status",
            metrics.requests.clone(),
        );
        registry.register(
            "rafiki_http_request_duration_seconds",
            "Time to answer HTTP requests, by route template and method",
            metrics.seconds.clone(),
        );
        registry.register(
            "rafiki_db_errors",
            "Requests answered 5xx (503 when it was unreachable) because of a database error",
            metrics.db_errors.clone(),
        );
        metrics
    }
}

/// The middleware: counts and times the request under its route's template (`MatchedPath`,
/// which axum sets when a route matched, before the layers of `Router::layer` run).
pub async fn track(
    State(metrics): State<Arc<AdminMetrics>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let http = &metrics.http;
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, |path| http.routes.intern(path.as_str()));
    let method = method_label(request.method());
    let response = next.run(request).await;
    http.requests
        .get_or_create(&RequestLabels {
            route,
            method,
            status: response.status().as_u16(),
        })
        .inc();
    http.seconds
        .get_or_create(&RouteLabels { route, method })
        .observe(started.elapsed().as_secs_f64());
    if response.extensions().get::<DatabaseFault>().is_some() {
        http.db_errors.inc();
    }
    response
}
