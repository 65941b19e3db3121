//! Prometheus metrics (issue 18, item 1), read back through HTTP with an OpenMetrics parser
//! (`rafiki_testing::metrics`): requests counted under their route's template (never a raw
//! path), no token needed, `RAFIKI_METRICS_ADDR` moving them off the API port, a finished
//! trial in the trial counters, GPUs allocated and freed, the queue, database errors, the service discovery
//! document of the predictors and the predictor's own metrics, and `promtool check metrics`.

use std::time::Duration;

use rafiki_testing::metrics::Metrics;
use rafiki_types::status::TrialStatus;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use strum::VariantArray;

use crate::helpers::admin_process::free_port;
use crate::helpers::jobs::{one_trial_job, stop_deployment, Submitter};
use crate::helpers::models::SLOW_MODEL;
use crate::helpers::prerequisites::{predictor_built, python_ready};
use crate::helpers::proxy::through_proxy;
use crate::helpers::requests::json_ok;
use crate::helpers::{assert_error, fresh_database, poll, spawn_app, spawn_app_on, TestApp};

/// The content type of the OpenMetrics text format that the encoder writes.
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// The content type of the classic text format.
const CLASSIC: &str = "text/plain; version=0.0.4; charset=utf-8";
/// The `Accept` header of Prometheus' scrapes (2.x, default scrape protocols).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,\
    application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `GET {base}/metrics` without a token, accepting what `accept` says: checks the answer's
/// status and content type (`content_type`) and returns its text.
async fn scrape_text(base: &str, accept: &str, content_type: &str) -> String {
    let res = reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .header("accept", accept)
        .send()
        .await
        .expect("the metrics answer");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], content_type);
    res.text().await.unwrap()
}

/// The metrics at `base` as Prometheus scrapes them (its `Accept` header asks for OpenMetrics
/// first), parsed.
async fn scrape(base: &str) -> Metrics {
    Metrics::parse(&scrape_text(base, PROMETHEUS_ACCEPT, OPENMETRICS).await)
}

#[tokio::test]
async fn requests_are_counted_under_their_route_template_without_a_token() {
    let app = spawn_app().await;
    let token = app.superadmin().await;
    let dataset = uuid::Uuid::new_v4();
    let junk = uuid::Uuid::new_v4().simple().to_string();
    for _ in 0..2 {
        assert_eq!(app.get("/users", &token).await.status(), StatusCode::OK);
    }
    assert_error(
        app.get(&format!("/datasets/{dataset}"), &token).await,
        StatusCode::NOT_FOUND,
        "InvalidDatasetError",
    )
    .await;
    let res = app.get(&format!("/nope/{junk}"), &token).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = app
        .client
        .request(
            Method::from_bytes(b"BREW").unwrap(),
            format!("{}/users", app.address),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::METHOD_NOT_ALLOWED);
    let res = app
        .send(Method::GET, "/console/login", None, Value::Null)
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let metrics = scrape(&app.address).await;
    let requests = "rafiki_http_requests";
    let users = [("route", "/users"), ("method", "GET"), ("status", "200")];
    assert_eq!(metrics.value(requests, &users), 2.0);
    assert_eq!(
        metrics.observations(
            "rafiki_http_request_duration_seconds",
            &[("route", "/users"), ("method", "GET")]
        ),
        2
    );
    let by_id = [
        ("route", "/datasets/{id}"),
        ("method", "GET"),
        ("status", "404"),
    ];
    assert_eq!(metrics.value(requests, &by_id), 1.0);
    let unmatched = [("route", "unmatched"), ("status", "404")];
    assert_eq!(metrics.value(requests, &unmatched), 1.0);
    let odd = [("route", "/users"), ("method", "OTHER"), ("status", "405")];
    assert_eq!(metrics.value(requests, &odd), 1.0);
    let console = [("route", "/console/login"), ("status", "200")];
    assert_eq!(metrics.value(requests, &console), 1.0);
    // What a client put in a path or a method is never a label value.
    let routes = metrics.label_values("route");
    for hostile in [dataset.to_string(), junk, "nope".into(), "BREW".into()] {
        assert!(
            routes.iter().all(|route| !route.contains(hostile.as_str())),
            "{hostile} in {routes:?}"
        );
    }
    assert!(!metrics.label_values("method").contains(&"BREW".to_owned()));

    // The scrape-time gauges: every status at 0 on a fresh database, the pool, the node.
    for status in ["STARTED", "RUNNING", "STOPPED", "ERRORED"] {
        assert_eq!(
            metrics.value("rafiki_train_jobs", &[("status", status)]),
            0.0
        );
        assert_eq!(
            metrics.value("rafiki_inference_jobs", &[("status", status)]),
            0.0
        );
    }
    for status in ["PENDING", "RUNNING", "COMPLETED", "ERRORED", "PRUNED"] {
        assert_eq!(metrics.value("rafiki_trials", &[("status", status)]), 0.0);
    }
    assert_eq!(
        metrics.value(
            "rafiki_services",
            &[("service_type", "PREDICT"), ("status", "RUNNING")]
        ),
        0.0
    );
    assert_eq!(metrics.value("rafiki_train_job_queue_length", &[]), 0.0);
    assert_eq!(metrics.value("rafiki_gpus", &[("node", "local")]), 0.0);
    let in_use = metrics.value("rafiki_db_connections", &[("state", "in_use")]);
    let idle = metrics.value("rafiki_db_connections", &[("state", "idle")]);
    // The pool is open (the requests above used it), and has 5 connections at most.
    assert!(in_use >= 0.0 && idle >= 0.0, "{in_use} {idle}");
    assert!((1.0..=5.0).contains(&(in_use + idle)), "{in_use} + {idle}");
    assert_eq!(metrics.value("rafiki_db_errors", &[]), 0.0);
    assert_eq!(
        metrics.value("rafiki_trials_finished", &[("status", "COMPLETED")]),
        0.0
    );

    // A later scrape counts the earlier one under `/metrics`.
    let again = scrape(&app.address).await;
    assert!(again.value(requests, &[("route", "/metrics"), ("status", "200")]) >= 1.0);
    // No inference job runs: no predictor to discover.
    let targets: Value = json_ok(
        app.send(Method::GET, "/metrics/targets", None, Value::Null)
            .await,
    )
    .await;
    assert_eq!(targets, json!([]));
    app.shutdown().await;
}

#[tokio::test]
async fn an_upload_counts_its_bytes() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    crate::helpers::jobs::dataset(&app, &dev, "ANY", b"twelve bytes").await;
    let metrics = scrape(&app.address).await;
    assert_eq!(
        metrics.value("rafiki_upload_bytes", &[("kind", "dataset")]),
        12.0
    );
    assert_eq!(
        metrics.value("rafiki_upload_bytes", &[("kind", "model")]),
        0.0
    );
    app.shutdown().await;
}

#[tokio::test]
async fn database_errors_are_counted_and_unreadable_gauges_left_out() {
    let (database_url, proxy) = through_proxy(&fresh_database().await).await;
    let settings = [("database_acquire_timeout_ms", json!(500))];
    let app = spawn_app_on(&database_url, &settings).await;
    let token = app.superadmin().await;
    // A series per trial status, each at zero.
    let trial_statuses = TrialStatus::VARIANTS.len();
    assert_eq!(
        scrape(&app.address).await.series("rafiki_trials"),
        trial_statuses
    );

    proxy.cut();
    assert_error(
        app.get("/datasets", &token).await,
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableError",
    )
    .await;
    let metrics = scrape(&app.address).await;
    assert_eq!(metrics.value("rafiki_db_errors", &[]), 1.0);
    // Counts the database could not give are absent, not stale; the requests are there.
    for family in ["rafiki_trials", "rafiki_train_jobs", "rafiki_services"] {
        assert_eq!(metrics.series(family), 0, "{family}");
    }
    let unavailable = [("route", "/datasets"), ("status", "503")];
    assert_eq!(metrics.value("rafiki_http_requests", &unavailable), 1.0);

    proxy.restore();
    let metrics = scrape(&app.address).await;
    assert_eq!(metrics.series("rafiki_trials"), trial_statuses);
    app.shutdown().await;
}

#[tokio::test]
async fn with_a_metrics_address_the_api_port_does_not_serve_them() {
    let port = free_port();
    let settings = [("metrics_addr", json!(format!("127.0.0.1:{port}")))];
    let app = spawn_app_on(&fresh_database().await, &settings).await;
    let res = app.send(Method::GET, "/metrics", None, Value::Null).await;
    assert_error(res, StatusCode::NOT_FOUND, "NotFoundError").await;
    let res = app
        .send(Method::GET, "/metrics/targets", None, Value::Null)
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "NotFoundError").await;

    let base = format!("http://127.0.0.1:{port}");
    let metrics = scrape(&base).await;
    // The API's requests are counted, the 404s of /metrics among them.
    let hidden = [("route", "unmatched"), ("method", "GET"), ("status", "404")];
    assert_eq!(metrics.value("rafiki_http_requests", &hidden), 2.0);
    let targets: Value = reqwest::get(format!("{base}/metrics/targets"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(targets, json!([]));
    // Nothing else is served there.
    let res = reqwest::get(format!("{base}/users")).await.unwrap();
    assert_error(res, StatusCode::NOT_FOUND, "NotFoundError").await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_metrics_host_name_is_bound_once_it_resolves_without_holding_the_api_up() {
    // A name that does not resolve (yet): the API serves meanwhile, the metrics nowhere.
    let port = free_port();
    let settings = [(
        "metrics_addr",
        json!(format!("rafiki-metrics.invalid:{port}")),
    )];
    let app = spawn_app_on(&fresh_database().await, &settings).await;
    let res = app.send(Method::GET, "/health", None, Value::Null).await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app.send(Method::GET, "/metrics", None, Value::Null).await;
    assert_error(res, StatusCode::NOT_FOUND, "NotFoundError").await;
    assert!(reqwest::get(format!("http://127.0.0.1:{port}/metrics"))
        .await
        .is_err());
    app.shutdown().await;

    // A name that resolves: served there.
    let port = free_port();
    let settings = [("metrics_addr", json!(format!("localhost:{port}")))];
    let app = spawn_app_on(&fresh_database().await, &settings).await;
    let base = format!("http://localhost:{port}");
    let mut served = None;
    for _ in 0..100 {
        if let Ok(res) = reqwest::get(format!("{base}/metrics")).await {
            served = Some(res.status());
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert_eq!(served, Some(StatusCode::OK));
    app.shutdown().await;
}

#[tokio::test]
async fn with_metrics_off_nothing_is_served_or_counted() {
    let settings = [("metrics", json!("off"))];
    let app = spawn_app_on(&fresh_database().await, &settings).await;
    let res = app.send(Method::GET, "/metrics", None, Value::Null).await;
    assert_error(res, StatusCode::NOT_FOUND, "NotFoundError").await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_finished_trial_moves_the_trial_counters_and_a_deployment_is_discovered() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, _path) =
        one_trial_job(&app, ("slow", "Slow", SLOW_MODEL), json!({"seconds": 0})).await;
    let metrics = scrape(&app.address).await;
    let completed = [("status", "COMPLETED")];
    assert_eq!(metrics.value("rafiki_trials_finished", &completed), 1.0);
    assert_eq!(
        metrics.observations("rafiki_trial_duration_seconds", &completed),
        1
    );
    assert_eq!(
        metrics.value("rafiki_trials_finished", &[("status", "ERRORED")]),
        0.0
    );
    assert_eq!(metrics.value("rafiki_trials", &completed), 1.0);
    let stopped = [("status", "STOPPED")];
    assert_eq!(metrics.value("rafiki_train_jobs", &stopped), 1.0);
    assert_eq!(metrics.value("rafiki_sub_train_jobs", &stopped), 1.0);
    assert_eq!(
        metrics.value(
            "rafiki_services",
            &[("service_type", "TRAIN"), ("status", "STOPPED")]
        ),
        1.0
    );
    // The slow model's one float knob is tuned by Bayesian optimisation: its proposal, and
    // the budget's end, were timed.
    assert!(
        metrics.observations(
            "rafiki_advisor_proposal_duration_seconds",
            &[("advisor", "BAYES_OPT")]
        ) >= 1
    );

    if !predictor_built() {
        app.shutdown().await;
        return;
    }
    // A deployment: its predictor is a target of the service discovery document, whose
    // address serves the predictor's own metrics.
    json_ok(
        app.send(
            Method::POST,
            "/inference_jobs",
            Some(&dev),
            json!({"app": "myapp", "app_version": -1, "budget": {}}),
        )
        .await,
    )
    .await;
    poll::until(
        "the deployment RUNNING",
        Duration::from_secs(120),
        Duration::from_millis(200),
        async || {
            let running = app.get_json("/inference_jobs/myapp/1", &dev).await;
            if running["status"] == "RUNNING" {
                Ok(())
            } else {
                Err(running)
            }
        },
    )
    .await;
    let targets: Value = json_ok(
        app.send(Method::GET, "/metrics/targets", None, Value::Null)
            .await,
    )
    .await;
    let groups = targets.as_array().unwrap();
    assert_eq!(groups.len(), 1, "{targets}");
    assert_eq!(
        groups[0]["labels"],
        json!({"rafiki_app": "myapp", "rafiki_app_version": "1"})
    );
    let target = groups[0]["targets"][0].as_str().unwrap().to_owned();
    let predictor = format!("http://{target}");
    let res = reqwest::Client::new()
        .post(format!("{predictor}/predict"))
        .json(&json!({"queries": [[1], [2], [3]]}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    let served = scrape(&predictor).await;
    assert_eq!(
        served.value(
            "rafiki_predictor_requests",
            &[("route", "/predict"), ("status", "200")]
        ),
        1.0
    );
    assert_eq!(served.observations("rafiki_predictor_batch_size", &[]), 1);
    assert_eq!(
        served.observations(
            "rafiki_predictor_worker_duration_seconds",
            &[("worker", "0")]
        ),
        1
    );
    let running = scrape(&app.address).await;
    assert_eq!(
        running.value("rafiki_inference_jobs", &[("status", "RUNNING")]),
        1.0
    );
    stop_deployment(&app, &dev, "myapp").await;
    let targets: Value = json_ok(
        app.send(Method::GET, "/metrics/targets", None, Value::Null)
            .await,
    )
    .await;
    assert_eq!(targets, json!([]));
    app.shutdown().await;
}

/// The GPUs of node `local`: (devices, allocated).
fn gpus(metrics: &Metrics) -> (f64, f64) {
    let local = [("node", "local")];
    (
        metrics.value("rafiki_gpus", &local),
        metrics.value("rafiki_gpus_allocated", &local),
    )
}

#[tokio::test]
async fn allocated_gpus_and_the_queue_go_up_and_down() {
    if !python_ready() {
        return;
    }
    let settings = [("gpus", json!("0,1")), ("supervise_ms", json!(200))];
    let app = spawn_app_on(&fresh_database().await, &settings).await;
    let s = Submitter::new(&app).await;
    assert_eq!(gpus(&scrape(&app.address).await), (2.0, 0.0));

    let first = s.submit(&app, "first", 1).await;
    s.running(&app, &first).await;
    let metrics = scrape(&app.address).await;
    assert_eq!(gpus(&metrics), (2.0, 1.0));
    assert_eq!(metrics.value("rafiki_train_job_queue_length", &[]), 0.0);

    // Two more devices than are free: the job waits, in the queue.
    let second = s.submit(&app, "second", 2).await;
    let metrics = scrape(&app.address).await;
    assert_eq!(metrics.value("rafiki_train_job_queue_length", &[]), 1.0);
    assert_eq!(gpus(&metrics), (2.0, 1.0));

    // The first job's device frees up and goes to the waiting job.
    s.stop(&app, &first).await;
    s.running(&app, &second).await;
    let metrics = scrape(&app.address).await;
    assert_eq!(gpus(&metrics), (2.0, 2.0));
    assert_eq!(metrics.value("rafiki_train_job_queue_length", &[]), 0.0);

    s.stop(&app, &second).await;
    assert_eq!(gpus(&scrape(&app.address).await), (2.0, 0.0));
    app.shutdown().await;
}

/// `promtool check metrics` (Prometheus' own linter, Debian's `prometheus` package) reads the
/// admin's metrics in the classic text format (the only one it reads, what a client that does
/// not ask for OpenMetrics gets) without a complaint. Run where `RAFIKI_TEST_PROMTOOL=1`
/// (scripts/test.sh sets it and installs promtool), and then it fails if promtool is missing.
#[tokio::test]
async fn promtool_accepts_the_metrics() {
    if std::env::var("RAFIKI_TEST_PROMTOOL").as_deref() != Ok("1") {
        eprintln!("skipped: RAFIKI_TEST_PROMTOOL is not 1 (scripts/test.sh sets it)");
        return;
    }
    let app: TestApp = spawn_app().await;
    let token = app.superadmin().await;
    app.get("/users", &token).await;
    app.get(&format!("/datasets/{}", uuid::Uuid::new_v4()), &token)
        .await;
    let text = scrape_text(&app.address, "*/*", CLASSIC).await;
    let mut promtool = tokio::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool runs (RAFIKI_TEST_PROMTOOL=1 needs Debian's prometheus package)");
    use tokio::io::AsyncWriteExt;
    let mut stdin = promtool.stdin.take().unwrap();
    stdin.write_all(text.as_bytes()).await.unwrap();
    drop(stdin);
    let output = promtool.wait_with_output().await.unwrap();
    assert!(
        output.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    app.shutdown().await;
}
