//! What the metrics middleware (`rafiki_admin::metrics::http::track`) adds to a request, on
//! its own: the same router, one route `/users/{id}` whose handler answers a static string,
//! with and without the layer, each request sent in-process (`tower::ServiceExt::oneshot`, no
//! socket) many times; prints the mean time per request of both and the difference. An
//! end-to-end `GET /users` measurement (scripts/bench-users.sh with `RAFIKI_METRICS=on` and
//! `off`) is the target's; on a shared machine its noise hides a difference this small, which
//! this measures directly (docs/benchmarks.md, "Metrics").
//!
//! `cargo bench -p rafiki-admin --bench metrics_middleware [-- REQUESTS]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::http::Request;
use axum::routing::get;
use axum::Router;
use rafiki_admin::metrics::{http::track, AdminMetrics};
use tower::ServiceExt;

fn router(metrics: Option<Arc<AdminMetrics>>) -> Router {
    let router = Router::new().route("/users/{id}", get(|| async { "ok" }));
    match metrics {
        Some(metrics) => router.layer(axum::middleware::from_fn_with_state(metrics, track)),
        None => router,
    }
}

/// The mean time of `requests` requests through `router`, one at a time.
async fn time(router: &Router, requests: u32) -> Duration {
    let started = Instant::now();
    for i in 0..requests {
        let request = Request::get(format!("/users/{}", i % 100))
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success());
    }
    started.elapsed() / requests
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let requests: u32 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(200_000);
    let bare = router(None);
    let counted = router(Some(Arc::new(AdminMetrics::new())));
    // Warm up both, then alternate, keeping each variant's best of five.
    time(&bare, requests / 10).await;
    time(&counted, requests / 10).await;
    let (mut without, mut with) = (Duration::MAX, Duration::MAX);
    for _ in 0..5 {
        without = without.min(time(&bare, requests).await);
        with = with.min(time(&counted, requests).await);
    }
    println!("requests per run: {requests} (best of 5 runs each)");
    println!(
        "without the middleware: {:>6} ns/request",
        without.as_nanos()
    );
    println!("with the middleware:    {:>6} ns/request", with.as_nanos());
    println!(
        "the middleware adds:    {:>6} ns/request",
        with.as_nanos().saturating_sub(without.as_nanos())
    );
}
