//! Requests by route template, method and status, their latency, and the database errors
//! they were answered with. The middleware is on every request, so it does the least it can
//! (`docs/benchmarks.md`, "Metrics", measures what it costs `GET /users`): axum wraps each
//! route's method handler in a service of its own, which resolves its series on its first
//! request and keeps them, so a request takes no lock but the histogram's and allocates
//! nothing. Two cores answering the same route at once share no other cache line.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{ready, Context, Poll};
use std::time::Instant;

use axum::extract::MatchedPath;
use axum::http::Request;
use axum::response::Response;
use pin_project_lite::pin_project;
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use rafiki_service::metrics::{method_label, RouteNames, REQUEST_SECONDS_BUCKETS, UNMATCHED_ROUTE};
use tower::{Layer, Service};

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

/// The statuses whose counters a route keeps at hand; a request answered with another one
/// looks its counter up in the family.
const KEPT_STATUSES: [u16; 8] = [200, 201, 204, 400, 401, 403, 404, 500];

/// The series of one route template and method, resolved once.
#[derive(Debug)]
struct RouteSeries {
    route: &'static str,
    method: &'static str,
    seconds: Histogram,
    /// The counters of [`KEPT_STATUSES`], each made on first use (an unused one would show as
    /// a series at zero).
    answered: [OnceLock<Counter>; KEPT_STATUSES.len()],
}

impl RouteSeries {
    fn new(http: &HttpMetrics, route: &'static str, method: &'static str) -> Self {
        RouteSeries {
            route,
            method,
            seconds: http
                .seconds
                .get_or_create_owned(&RouteLabels { route, method }),
            answered: Default::default(),
        }
    }

    fn count(&self, http: &HttpMetrics, status: u16, seconds: f64) {
        match KEPT_STATUSES.iter().position(|&kept| kept == status) {
            Some(slot) => self.answered[slot]
                .get_or_init(|| http.requests.get_or_create_owned(&self.labels(status)))
                .inc(),
            None => http.requests.get_or_create(&self.labels(status)).inc(),
        };
        self.seconds.observe(seconds);
    }

    fn labels(&self, status: u16) -> RequestLabels {
        RequestLabels {
            route: self.route,
            method: self.method,
            status,
        }
    }
}

/// The layer that counts and times every request under its route's template (`MatchedPath`,
/// which axum sets when a route matched, before the layers of `Router::layer` run). A plain
/// tower layer rather than `axum::middleware::from_fn`, which clones the inner service and
/// boxes a future per request.
#[derive(Debug, Clone)]
pub struct TrackLayer {
    metrics: Arc<AdminMetrics>,
}

impl TrackLayer {
    /// Counting into `metrics`.
    pub fn new(metrics: Arc<AdminMetrics>) -> Self {
        TrackLayer { metrics }
    }
}

impl<S> Layer<S> for TrackLayer {
    type Service = Track<S>;

    fn layer(&self, inner: S) -> Track<S> {
        Track {
            inner,
            state: Arc::new(TrackState {
                metrics: self.metrics.clone(),
                series: OnceLock::new(),
            }),
        }
    }
}

/// The service [`TrackLayer`] wraps a route in. Clones (axum clones a route's service per
/// request) share one [`TrackState`].
#[derive(Debug, Clone)]
pub struct Track<S> {
    inner: S,
    state: Arc<TrackState>,
}

/// What the clones of one [`Track`] share: the metrics, and the series of the route and
/// method it serves, set by its first request. (A `Track` nearly always serves one route and
/// method; one that serves several, such as the fallback's, looks up the others each time.)
#[derive(Debug)]
struct TrackState {
    metrics: Arc<AdminMetrics>,
    series: OnceLock<RouteSeries>,
}

impl TrackState {
    /// Whether a request of `route` and `method` is counted in `series`, set now if unset.
    fn keeps(&self, route: &'static str, method: &'static str) -> bool {
        let series = self
            .series
            .get_or_init(|| RouteSeries::new(&self.metrics.http, route, method));
        series.route == route && series.method == method
    }
}

impl<S, B> Service<Request<B>> for Track<S>
where
    S: Service<Request<B>, Response = Response>,
{
    type Response = Response;
    type Error = S::Error;
    type Future = Tracked<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let started = Instant::now();
        let method = method_label(request.method());
        let route = match request.extensions().get::<MatchedPath>() {
            // The kept template needs no interning (and its lock).
            Some(path) => match self.state.series.get() {
                Some(kept) if kept.route == path.as_str() => kept.route,
                _ => self.state.metrics.http.routes.intern(path.as_str()),
            },
            None => UNMATCHED_ROUTE,
        };
        let series = if self.state.keeps(route, method) {
            Series::Kept
        } else {
            Series::Other { route, method }
        };
        Tracked {
            inner: self.inner.call(request),
            record: Some(Record {
                state: self.state.clone(),
                series,
                started,
            }),
        }
    }
}

pin_project! {
    /// A request's answer, counted when it is ready.
    pub struct Tracked<F> {
        #[pin]
        inner: F,
        record: Option<Record>,
    }
}

/// What is counted once the answer is known.
struct Record {
    state: Arc<TrackState>,
    series: Series,
    started: Instant,
}

/// Where a request is counted.
enum Series {
    /// In its `Track`'s kept series.
    Kept,
    /// In the series of this route and method, looked up.
    Other {
        route: &'static str,
        method: &'static str,
    },
}

impl<F, E> Future for Tracked<F>
where
    F: Future<Output = Result<Response, E>>,
{
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let output = ready!(this.inner.poll(cx));
        if let (Ok(response), Some(record)) = (&output, this.record.take()) {
            record.count(response);
        }
        Poll::Ready(output)
    }
}

impl Record {
    fn count(self, response: &Response) {
        let http = &self.state.metrics.http;
        let status = response.status().as_u16();
        let seconds = self.started.elapsed().as_secs_f64();
        match self.series {
            Series::Kept => {
                let kept = self.state.series.get().expect("set by the request's call");
                kept.count(http, status, seconds);
            }
            Series::Other { route, method } => {
                RouteSeries::new(http, route, method).count(http, status, seconds)
            }
        }
        if response.extensions().get::<DatabaseFault>().is_some() {
            http.db_errors.inc();
        }
    }
}
