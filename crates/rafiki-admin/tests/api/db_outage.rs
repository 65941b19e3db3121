//! Postgres outages (issue 14, item 4): with the database unreachable, `GET /health` answers 503
//! `"database": "unreachable"` and API routes 503 `ServiceUnavailableError` with `Retry-After`,
//! within the acquire timeout rather than after sqlx's 30 s; once the database is back, the same
//! requests succeed and nothing is lost.
//!
//! The admin reaches its database through a TCP proxy of the test's own
//! ([`crate::helpers::proxy`]), which can be cut.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::forms::RafikiForm;
use crate::helpers::proxy::through_proxy;
use crate::helpers::requests::json_ok;
use crate::helpers::{admin_process, assert_error, fresh_database, spawn_app_on};

#[tokio::test]
async fn an_unreachable_database_answers_503_at_once_and_requests_work_again_when_it_is_back() {
    let (database_url, proxy) = through_proxy(&fresh_database().await).await;
    let app = spawn_app_on(
        &database_url,
        &[("database_acquire_timeout_ms", json!(500))],
    )
    .await;
    // Logging in needs the database: before the cut.
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let form = RafikiForm::new()
        .text("name", "kept")
        .text("task", "IMAGE_CLASSIFICATION")
        .file("dataset", b"some bytes");
    let created = json_ok(app.post_form("/datasets", &token, form).await).await;
    let id = created["id"].as_str().unwrap().to_owned();

    proxy.cut();

    let res = app.send(Method::GET, "/health", None, Value::Null).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = res.json().await.unwrap();
    assert_eq!(health["status"], "unavailable", "{health}");
    assert_eq!(health["database"], "unreachable", "{health}");

    for path in ["/datasets".to_owned(), format!("/datasets/{id}")] {
        let res = app.get(&path, &token).await;
        let retry_after = res.headers().get("retry-after").cloned();
        let message = assert_error(
            res,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
        )
        .await;
        assert_eq!(
            retry_after.as_ref().map(|v| v.to_str().unwrap()),
            Some("5"),
            "GET {path}: Retry-After"
        );
        assert_eq!(message, "The database is unreachable; try again shortly.");
    }
    // A write fails the same way, and leaves nothing half-done behind.
    let res = app.delete(&format!("/datasets/{id}"), &token).await;
    assert_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableError",
    )
    .await;

    proxy.restore();

    // Connections the cut broke are dropped by the pool's check before use: the very next
    // requests succeed, and nothing was lost.
    let res = app.send(Method::GET, "/health", None, Value::Null).await;
    assert_eq!(res.status(), StatusCode::OK);
    let health: Value = res.json().await.unwrap();
    assert_eq!(health["database"], "ok", "{health}");
    let listed = json_ok(app.get("/datasets", &token).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    let detail = json_ok(app.get(&format!("/datasets/{id}"), &token).await).await;
    assert_eq!(detail["name"], "kept");
    app.shutdown().await;
}

#[tokio::test]
async fn a_read_whose_connection_breaks_mid_statement_is_tried_once_more_and_succeeds() {
    let (database_url, proxy) = through_proxy(&fresh_database().await).await;
    // Nothing else of the admin's uses the database meanwhile: the break lands on the request.
    let quiet = [
        ("supervise_ms", json!(3_600_000)),
        ("ban_refresh_ms", json!(5_000)),
    ];
    let app = spawn_app_on(&database_url, &quiet).await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let form = RafikiForm::new()
        .text("name", "kept")
        .text("task", "IMAGE_CLASSIFICATION")
        .file("dataset", b"some bytes");
    json_ok(app.post_form("/datasets", &token, form).await).await;

    proxy.break_next_statement();
    let listed = json_ok(app.get("/datasets", &token).await).await;
    assert_eq!(proxy.broken(), 1, "the listing's statement met the break");
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");

    // A write is not tried again: it answers 503 and the caller decides.
    proxy.break_next_statement();
    let form = RafikiForm::new()
        .text("name", "second")
        .text("task", "IMAGE_CLASSIFICATION")
        .file("dataset", b"more bytes");
    let res = app.post_form("/datasets", &token, form).await;
    assert_eq!(proxy.broken(), 2);
    assert_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableError",
    )
    .await;
    app.shutdown().await;
}

/// Where the admin and Postgres start together with nothing ordering them (a swarm stack), the
/// admin keeps trying an unreachable database at start-up instead of exiting.
#[tokio::test]
async fn the_admin_waits_at_start_up_for_a_database_that_is_not_up_yet() {
    let (database_url, proxy) = through_proxy(&fresh_database().await).await;
    proxy.cut();
    let extra = [
        ("admin_port", json!(admin_process::free_port())),
        ("database_startup_wait_secs", json!(60)),
    ];
    let starting = admin_process::spawn(&database_url, &extra);
    tokio::pin!(starting);
    // Time must pass with the database away: the admin has to keep trying, not give up (an
    // admin that exits makes `spawn` fail with its log).
    let early = tokio::time::timeout(std::time::Duration::from_secs(3), &mut starting).await;
    assert!(early.is_err(), "the admin came up without its database");
    proxy.restore();
    let app = starting.await;
    let log = std::fs::read_to_string(app.data_dir.join("admin.log")).unwrap();
    assert!(log.contains("the database is not reachable yet"), "{log}");
    // It serves: the superadmin it seeded logs in.
    app.user("late@example.com", "APP_DEVELOPER").await;
}
