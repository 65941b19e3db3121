//! The predictor's Prometheus metrics, served at `GET /metrics` on its one port
//! (docs/observability.md, "Metrics"): requests by route template and status with their
//! latency, the number of queries per predict request, and each ensemble member's calls, their
//! latency and failures.
//!
//! The metrics are as public as `POST /predict` (the predictor is published with one port,
//! and anyone who may predict may read them), so they carry no ids, names or query content: an
//! ensemble member is its position in the admin's list of the job's serving workers (`worker`
//! `0`, `1`, ...), which the admin orders by the workers' trials, and which is bounded by the
//! job's ensemble size. A member's position is that of the latest list; a worker relaunched
//! in another position counts under its new one.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rafiki_service::metrics::{RouteNames, REQUEST_SECONDS_BUCKETS, UNMATCHED_ROUTE};

use crate::ensemble::Predictor;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    route: &'static str,
    status: u16,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabel {
    route: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabel {
    worker: usize,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FailureLabels {
    worker: usize,
    kind: &'static str,
}

/// How a call to an ensemble member failed, as counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkerFailure {
    /// No whole answer within `RAFIKI_PREDICT_TIMEOUT_MS`.
    Timeout,
    /// Anything else: the model failed, the worker could not be reached, a bad answer.
    Error,
}

fn request_seconds() -> Histogram {
    Histogram::new(REQUEST_SECONDS_BUCKETS)
}

/// The predictor's metrics and their registry.
#[derive(Debug)]
pub struct PredictorMetrics {
    registry: Registry,
    routes: RouteNames,
    requests: Family<RequestLabels, Counter>,
    seconds: Family<RouteLabel, Histogram, fn() -> Histogram>,
    batch_size: Histogram,
    worker_seconds: Family<WorkerLabel, Histogram, fn() -> Histogram>,
    worker_failures: Family<FailureLabels, Counter>,
}

impl Default for PredictorMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl PredictorMetrics {
    /// Every metric, registered.
    pub fn new() -> Self {
        let mut metrics = PredictorMetrics {
            registry: Registry::default(),
            routes: RouteNames::default(),
            requests: Family::default(),
            seconds: Family::new_with_constructor(request_seconds as fn() -> Histogram),
            // 1 to 1024 queries, doubling.
            batch_size: Histogram::new(exponential_buckets(1.0, 2.0, 11)),
            worker_seconds: Family::new_with_constructor(request_seconds as fn() -> Histogram),
            worker_failures: Family::default(),
        };
        let registry = &mut metrics.registry;
        // `_total` is added by the encoder to counters' names.
        registry.register(
            "rafiki_predictor_requests",
            "HTTP requests answered, by route template (`unmatched`: no route) and status",
            metrics.requests.clone(),
        );
        registry.register(
            "rafiki_predictor_request_duration_seconds",
            "Time to answer HTTP requests, by route template",
            metrics.seconds.clone(),
        );
        registry.register(
            "rafiki_predictor_batch_size",
            "Queries per predict request",
            metrics.batch_size.clone(),
        );
        registry.register(
            "rafiki_predictor_worker_duration_seconds",
            "Time each ensemble member (`worker`: its position in the job's list) took to \
             answer or fail",
            metrics.worker_seconds.clone(),
        );
        registry.register(
            "rafiki_predictor_worker_failures",
            "Calls to ensemble members left out of a prediction, by member and kind (`timeout`, \
             `error`)",
            metrics.worker_failures.clone(),
        );
        metrics
    }

    /// A predict request of `queries` queries.
    pub fn batch(&self, queries: usize) {
        self.batch_size.observe(queries as f64);
    }

    /// Ensemble member `worker` was called, took `took`, and failed as `failure` if it did.
    pub fn worker_called(&self, worker: usize, took: Duration, failure: Option<WorkerFailure>) {
        self.worker_seconds
            .get_or_create(&WorkerLabel { worker })
            .observe(took.as_secs_f64());
        if let Some(failure) = failure {
            let kind = match failure {
                WorkerFailure::Timeout => "timeout",
                WorkerFailure::Error => "error",
            };
            self.worker_failures
                .get_or_create(&FailureLabels { worker, kind })
                .inc();
        }
    }

    /// The answer to a scrape, in the format `accept` asks for.
    pub fn scrape(&self, accept: Option<&HeaderValue>) -> Response {
        rafiki_service::metrics::scrape(&self.registry, accept)
    }
}

/// The middleware counting and timing every request under its route's template.
pub async fn track(
    State(predictor): State<Arc<Predictor>>,
    request: Request,
    next: Next,
) -> Response {
    let started = Instant::now();
    let metrics = predictor.metrics();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or(UNMATCHED_ROUTE, |path| metrics.routes.intern(path.as_str()));
    let response = next.run(request).await;
    metrics
        .requests
        .get_or_create(&RequestLabels {
            route,
            status: response.status().as_u16(),
        })
        .inc();
    metrics
        .seconds
        .get_or_create(&RouteLabel { route })
        .observe(started.elapsed().as_secs_f64());
    response
}
