//! Slow clients: one that sends half its headers and waits, and one whose body stalls, are cut
//! off after the configured timeouts instead of holding a connection forever.

use serde_json::json;

use crate::helpers::requests::send_and_wait_for_close;
use crate::helpers::{fresh_database, spawn_app_on, TestApp};

/// A server whose slow-client timeouts are one second.
async fn impatient_app() -> TestApp {
    spawn_app_on(
        &fresh_database().await,
        &[
            ("header_read_timeout_secs", json!(1)),
            ("body_idle_timeout_secs", json!(1)),
        ],
    )
    .await
}

#[tokio::test]
async fn a_client_that_sends_half_its_headers_and_waits_is_cut_off() {
    let app = impatient_app().await;
    let answer = send_and_wait_for_close(
        &app,
        b"POST /tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Ty",
    )
    .await;
    assert!(!answer.contains(" 200 "), "{answer}");
    // The server itself is fine: a whole request on a new connection is answered.
    let res = app.client.get(format!("{}/", app.address)).send().await;
    assert_eq!(res.unwrap().status(), reqwest::StatusCode::OK);
}

#[tokio::test]
async fn a_request_body_that_stalls_is_cut_off() {
    let app = impatient_app().await;
    let answer = send_and_wait_for_close(
        &app,
        b"POST /tokens HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n\
          Content-Length: 100\r\n\r\n{\"email\": \"superadmin@rafiki\"",
    )
    .await;
    assert!(answer.starts_with("HTTP/1.1 400 "), "{answer}");
    assert!(answer.contains("InvalidRequestError"), "{answer}");
}
