//! What the metrics middleware (`rafiki_admin::metrics::http::TrackLayer`) adds to a request,
//! on its own: the same router, one route `/users/{id}` whose handler answers a static string,
//! with and without the layer, each request sent in-process (`tower::ServiceExt::oneshot`, no
//! socket) many times; prints the mean time per request of both and the difference, first with
//! one task on one thread, then with two tasks on two threads (as the admin's two cores serve
//! `GET /users` at once: both update the same series). An
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
use rafiki_admin::metrics::{http::TrackLayer, AdminMetrics};
use tower::ServiceExt;

fn router(metrics: Option<Arc<AdminMetrics>>) -> Router {
    let router = Router::new().route("/users/{id}", get(|| async { "ok" }));
    match metrics {
        Some(metrics) => router.layer(TrackLayer::new(metrics)),
        None => router,
    }
}

/// The mean time of `requests` requests through `router`, one at a time.
async fn time(router: &Router, requests: u32) -> Duration {
    let started = Instant::now();
    send(router, requests).await;
    started.elapsed() / requests
}

async fn send(router: &Router, requests: u32) {
    for i in 0..requests {
        let request = Request::get(format!("/users/{}", i % 100))
            .body(Body::empty())
            .unwrap();
        let response = router.clone().oneshot(request).await.unwrap();
        assert!(response.status().is_success());
    }
}

/// The machine time per request (wall time x `tasks`) of `requests` requests sent by `tasks`
/// tasks at once, each on its own thread.
async fn time_parallel(router: &Router, requests: u32, tasks: u32) -> Duration {
    let started = Instant::now();
    let senders: Vec<_> = (0..tasks)
        .map(|_| {
            let router = router.clone();
            tokio::spawn(async move { send(&router, requests / tasks).await })
        })
        .collect();
    for sender in senders {
        sender.await.unwrap();
    }
    started.elapsed() * tasks / requests
}

fn report(title: &str, without: Duration, with: Duration) {
    println!("{title}");
    println!(
        "  without the middleware: {:>6} ns/request",
        without.as_nanos()
    );
    println!(
        "  with the middleware:    {:>6} ns/request",
        with.as_nanos()
    );
    println!(
        "  the middleware adds:    {:>6} ns/request",
        with.as_nanos().saturating_sub(without.as_nanos())
    );
}

fn main() {
    let requests: u32 = std::env::args()
        .skip(1)
        .find_map(|arg| arg.parse().ok())
        .unwrap_or(200_000);
    let bare = router(None);
    let counted = router(Some(Arc::new(AdminMetrics::new())));
    println!("requests per run: {requests} (best of 5 runs each, alternating)");

    let one = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    one.block_on(async {
        time(&bare, requests / 10).await;
        time(&counted, requests / 10).await;
        let (mut without, mut with) = (Duration::MAX, Duration::MAX);
        for _ in 0..5 {
            without = without.min(time(&bare, requests).await);
            with = with.min(time(&counted, requests).await);
        }
        report("one task, one thread:", without, with);
    });

    let two = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .unwrap();
    two.block_on(async {
        time_parallel(&bare, requests / 10, 2).await;
        time_parallel(&counted, requests / 10, 2).await;
        let (mut without, mut with) = (Duration::MAX, Duration::MAX);
        for _ in 0..5 {
            without = without.min(time_parallel(&bare, requests, 2).await);
            with = with.min(time_parallel(&counted, requests, 2).await);
        }
        report("two tasks, two threads (machine time):", without, with);
    });
}
