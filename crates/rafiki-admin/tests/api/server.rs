//! The server's own surface: greeting, health, OpenAPI, docs, unknown routes, seeding.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::admin_process::free_port;
use crate::helpers::poll;
use crate::helpers::prerequisites::python_ready;
use crate::helpers::requests::send_and_wait_for_close;
use crate::helpers::{assert_error, spawn_app, spawn_app_on};

#[tokio::test]
async fn root_greets_in_plain_text() {
    let app = spawn_app().await;
    let res = app.send(Method::GET, "/", None, Value::Null).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    assert_eq!(res.text().await.unwrap(), "Rafiki Admin is up.");
}

#[tokio::test]
async fn health_checks_the_database() {
    let app = spawn_app().await;
    let res = app.send(Method::GET, "/health", None, Value::Null).await;
    assert_eq!(res.status(), StatusCode::OK);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body,
        json!({"status": "ok", "database": "ok", "sandbox": "bwrap"})
    );
    app.pool.close().await;
    let res = app.send(Method::GET, "/health", None, Value::Null).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn openapi_document_lists_the_routes_and_docs_are_served() {
    let app = spawn_app().await;
    let res = app
        .send(Method::GET, "/openapi.json", None, Value::Null)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    for path in ["/tokens", "/users", "/health"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["paths"]["/users"]["delete"].is_object());
    assert!(doc["components"]["schemas"]["LoginResponse"].is_object());
    let res = app.send(Method::GET, "/docs/", None, Value::Null).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(res.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_with_the_error_envelope() {
    let app = spawn_app().await;
    let res = app.send(Method::GET, "/nowhere", None, Value::Null).await;
    assert_error(res, StatusCode::NOT_FOUND, "NotFoundError").await;
    let res = app.send(Method::PUT, "/tokens", None, Value::Null).await;
    assert_error(res, StatusCode::METHOD_NOT_ALLOWED, "InvalidRequestError").await;
}

#[tokio::test]
async fn superadmin_seeding_is_idempotent() {
    let first = spawn_app().await;
    let second = spawn_app_on(&first.database_url, &[]).await;
    let token = second.superadmin().await;
    let res = second
        .send(Method::GET, "/users", Some(&token), Value::Null)
        .await;
    let users: Vec<Value> = res.json().await.unwrap();
    let superadmins = users
        .iter()
        .filter(|u| u["email"] == "superadmin@rafiki")
        .count();
    assert_eq!(superadmins, 1);
}

/// The admin binary, with none of this process's Rafiki settings.
fn admin_binary(data_dir: &std::path::Path) -> tokio::process::Command {
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rafiki-admin"));
    for (name, _) in std::env::vars() {
        if name.starts_with("RAFIKI_") || name.starts_with("DATABASE_URL") {
            command.env_remove(name);
        }
    }
    command
        .arg("--dev")
        .env("RAFIKI_DATA_DIR", data_dir)
        .env("RAFIKI_GPUS", "")
        .kill_on_drop(true);
    command
}

#[tokio::test]
async fn the_binary_refuses_to_start_when_its_workers_python_cannot_run_models() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    // A real Python that sees no installed package, rafiki included.
    let python = dir.path().join("python3");
    std::fs::write(&python, "#!/bin/sh\nexec python3 -I -S \"$@\"\n").unwrap();
    std::fs::set_permissions(&python, std::fs::Permissions::from_mode(0o755)).unwrap();
    let output = admin_binary(&dir.path().join("data"))
        .env("RAFIKI_PYTHON", &python)
        // Nothing listens there: the admin must refuse before it connects.
        .env("DATABASE_URL", "postgres://rafiki@127.0.0.1:1/rafiki")
        .output()
        .await
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "{stderr}");
    for said in [
        "No module named 'rafiki'",
        "RAFIKI_PYTHON=/path/to/",
        "scripts/run.sh",
        "pip install -e './python[examples]'",
    ] {
        assert!(stderr.contains(said), "no `{said}` in: {stderr}");
    }
    assert!(!stderr.contains("database"), "{stderr}");
}

#[tokio::test]
async fn the_binary_reports_its_workers_python_in_health() {
    if !python_ready() {
        return;
    }
    let python = std::env::var("RAFIKI_PYTHON").unwrap();
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let mut admin = admin_binary(&dir.path().join("data"))
        .env("RAFIKI_PYTHON", &python)
        .env("DATABASE_URL", crate::helpers::fresh_database().await)
        .env("ADMIN_PORT", port.to_string())
        .stdout(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let health: Value = poll::until(
        "the admin answering GET /health",
        Duration::from_secs(60),
        Duration::from_millis(100),
        async || {
            if let Some(status) = admin.try_wait().unwrap() {
                panic!("the admin exited with {status}");
            }
            match reqwest::get(format!("http://127.0.0.1:{port}/health")).await {
                Ok(res) => Ok(res.json().await.unwrap()),
                Err(error) => Err(error),
            }
        },
    )
    .await;
    let found = &health["python"];
    assert_eq!(found["interpreter"], json!(python), "{health}");
    assert!(
        found["version"].as_str().unwrap().starts_with("3."),
        "{health}"
    );
    assert_eq!(found["rafiki"], "0.1.0", "{health}");
    admin.kill().await.unwrap();
}

#[tokio::test]
async fn requests_hyper_cannot_parse_are_answered_with_the_error_envelope() {
    let app = spawn_app().await;
    let long_uri = format!(
        "GET /datasets?task={} HTTP/1.1\r\nhost: x\r\n\r\n",
        "a".repeat(70_000)
    );
    let big_headers = format!(
        "GET / HTTP/1.1\r\nhost: x\r\n{}\r\n",
        (0..200)
            .map(|i| format!("x-h{i}: {}\r\n", "v".repeat(4_000)))
            .collect::<String>()
    );
    // A well-formed request first: the answer to an unparsable one later on the same
    // connection is enveloped too.
    let after_a_good_one = format!("GET / HTTP/1.1\r\nhost: x\r\n\r\n{long_uri}");
    for (request, status) in [
        (long_uri.as_str(), "414"),
        (big_headers.as_str(), "431"),
        ("NOT HTTP AT ALL\r\n\r\n", "400"),
        (after_a_good_one.as_str(), "414"),
    ] {
        let answer = send_and_wait_for_close(&app, request.as_bytes()).await;
        let last = answer
            .rfind("HTTP/1.1 4")
            .unwrap_or_else(|| panic!("{status}: {answer:?}"));
        let (head, body) = answer[last..]
            .split_once("\r\n\r\n")
            .unwrap_or_else(|| panic!("{status}: {answer:?}"));
        assert!(head.starts_with(&format!("HTTP/1.1 {status} ")), "{head}");
        assert!(head.contains("content-type: application/json"), "{head}");
        assert!(
            head.contains(&format!("content-length: {}", body.len())),
            "{head}"
        );
        let body: Value = serde_json::from_str(body).unwrap();
        assert_eq!(body["error"], "InvalidRequestError", "{body}");
        assert!(!body["message"].as_str().unwrap().is_empty());
    }
}
