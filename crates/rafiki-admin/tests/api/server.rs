//! The server's own surface: greeting, health, OpenAPI, docs, unknown routes, seeding.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

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
