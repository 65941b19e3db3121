//! Routes 2–4: creating, listing and banning users, with the full role matrix and bad inputs.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::jobs::{live_worker_pids, start_slow_job};
use crate::helpers::prerequisites::python_ready;
use crate::helpers::{assert_error, spawn_app, TestApp};

const TYPES: [&str; 4] = ["SUPERADMIN", "ADMIN", "MODEL_DEVELOPER", "APP_DEVELOPER"];

/// A token per user type (the superadmin's is the seeded one).
async fn tokens_by_type(app: &TestApp) -> Vec<(&'static str, String)> {
    let mut tokens = vec![("SUPERADMIN", app.superadmin().await)];
    for t in &TYPES[1..] {
        tokens.push((
            t,
            app.user(&format!("{}@example.com", t.to_lowercase()), t)
                .await,
        ));
    }
    tokens
}

fn may_manage(caller: &str, target: &str) -> bool {
    caller == "SUPERADMIN"
        || (caller == "ADMIN" && matches!(target, "MODEL_DEVELOPER" | "APP_DEVELOPER"))
}

#[tokio::test]
async fn create_user_follows_the_role_matrix() {
    let app = spawn_app().await;
    for (caller, token) in tokens_by_type(&app).await {
        for target in TYPES {
            let email = format!("{}-made-by-{}@example.com", target, caller).to_lowercase();
            let res = app
                .send(
                    Method::POST,
                    "/users",
                    Some(&token),
                    json!({"email": email, "password": "pw-of-a-user", "user_type": target}),
                )
                .await;
            if may_manage(caller, target) {
                assert_eq!(res.status(), StatusCode::OK, "{caller} creates {target}");
                assert_eq!(res.headers()["content-type"], "application/json");
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["email"], email);
                assert_eq!(body["user_type"], target);
                uuid::Uuid::parse_str(body["id"].as_str().unwrap()).unwrap();
                assert_eq!(body.as_object().unwrap().len(), 3, "{body}");
                app.login(&email, "pw-of-a-user").await;
            } else {
                assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
                let res = app
                    .send(
                        Method::POST,
                        "/tokens",
                        None,
                        json!({"email": email, "password": "pw-of-a-user"}),
                    )
                    .await;
                assert_error(res, StatusCode::BAD_REQUEST, "InvalidUserError").await;
            }
        }
    }
}

#[tokio::test]
async fn only_admins_list_users() {
    let app = spawn_app().await;
    for (caller, token) in tokens_by_type(&app).await {
        let res = app
            .send(Method::GET, "/users", Some(&token), Value::Null)
            .await;
        if matches!(caller, "SUPERADMIN" | "ADMIN") {
            assert_eq!(res.status(), StatusCode::OK, "{caller}");
            let users: Vec<Value> = res.json().await.unwrap();
            assert_eq!(users.len(), 4);
            assert_eq!(users[0]["email"], "superadmin@rafiki");
            for u in &users {
                let keys: Vec<&str> = u.as_object().unwrap().keys().map(String::as_str).collect();
                assert_eq!(keys.len(), 4, "{u}");
                for key in ["id", "email", "user_type", "banned_date"] {
                    assert!(keys.contains(&key), "{key} in {u}");
                }
                assert!(u["banned_date"].is_null());
                assert!(u.get("password_hash").is_none());
            }
        } else {
            assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
        }
    }
}

#[tokio::test]
async fn ban_user_follows_the_role_matrix() {
    let app = spawn_app().await;
    let callers = tokens_by_type(&app).await;
    for (caller, token) in &callers {
        for target in TYPES {
            let email = format!("victim-{}-of-{}@example.com", target, caller).to_lowercase();
            let sa = &callers[0].1;
            let res = app
                .send(
                    Method::POST,
                    "/users",
                    Some(sa),
                    json!({"email": email, "password": "pw-of-a-user", "user_type": target}),
                )
                .await;
            assert_eq!(res.status(), StatusCode::OK);
            let res = app
                .send(
                    Method::DELETE,
                    "/users",
                    Some(token),
                    json!({"email": email}),
                )
                .await;
            if may_manage(caller, target) {
                assert_eq!(res.status(), StatusCode::OK, "{caller} bans {target}");
                let body: Value = res.json().await.unwrap();
                assert_eq!(body["email"], email);
                let banned = body["banned_date"].as_str().expect("a banned_date");
                let at = chrono::DateTime::parse_from_rfc3339(banned).unwrap();
                assert!((chrono::Utc::now() - at.to_utc()).num_seconds().abs() < 60);
                assert!(banned.ends_with('Z'), "UTC, RFC 3339: {banned}");
            } else {
                assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
                app.login(&email, "pw-of-a-user").await;
            }
        }
    }
}

#[tokio::test]
async fn nobody_bans_themselves_and_bans_are_permanent() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    let res = app
        .send(
            Method::DELETE,
            "/users",
            Some(&sa),
            json!({"email": "superadmin@rafiki"}),
        )
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    let admin = app.user("admin@example.com", "ADMIN").await;
    let res = app
        .send(
            Method::DELETE,
            "/users",
            Some(&admin),
            json!({"email": "admin@example.com"}),
        )
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;

    app.user("dev@example.com", "APP_DEVELOPER").await;
    let res = app
        .send(
            Method::DELETE,
            "/users",
            Some(&sa),
            json!({"email": "dev@example.com"}),
        )
        .await;
    let first: Value = res.json().await.unwrap();
    let res = app
        .send(
            Method::DELETE,
            "/users",
            Some(&sa),
            json!({"email": "dev@example.com"}),
        )
        .await;
    assert_error(res, StatusCode::CONFLICT, "UserAlreadyBannedError").await;
    let res = app
        .send(Method::GET, "/users", Some(&sa), Value::Null)
        .await;
    let users: Vec<Value> = res.json().await.unwrap();
    let dev = users
        .iter()
        .find(|u| u["email"] == "dev@example.com")
        .unwrap();
    assert_eq!(
        dev["banned_date"], first["banned_date"],
        "the first ban's date is kept"
    );
}

#[tokio::test]
async fn banning_an_unknown_email_is_invalid_user() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    let res = app
        .send(
            Method::DELETE,
            "/users",
            Some(&sa),
            json!({"email": "ghost@example.com"}),
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidUserError").await;
}

#[tokio::test]
async fn duplicate_emails_are_refused_case_insensitively() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    app.user("dup@example.com", "MODEL_DEVELOPER").await;
    for email in ["dup@example.com", "DUP@Example.com"] {
        let res = app
            .send(
                Method::POST,
                "/users",
                Some(&sa),
                json!({"email": email, "password": "pw-of-a-user", "user_type": "APP_DEVELOPER"}),
            )
            .await;
        assert_error(res, StatusCode::CONFLICT, "UserExistsError").await;
    }
}

#[tokio::test]
async fn bad_user_bodies_get_named_errors_and_create_nothing() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    let res = app
        .send(
            Method::POST,
            "/users",
            Some(&sa),
            json!({"email": "x@example.com", "password": "pw-of-a-user", "user_type": "OWNER"}),
        )
        .await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidUserTypeError").await;
    assert!(message.contains("OWNER"), "{message}");

    let cases = [
        (
            json!({"password": "pw-of-a-user", "user_type": "ADMIN"}),
            "email",
        ),
        (
            json!({"email": 5, "password": "pw-of-a-user", "user_type": "ADMIN"}),
            "email",
        ),
        (
            json!({"email": "x@example.com", "password": "pw-of-a-user", "user_type": "ADMIN", "role": 1}),
            "role",
        ),
        (
            json!({"email": "not-an-email", "password": "pw-of-a-user", "user_type": "ADMIN"}),
            "email",
        ),
        (
            json!({"email": "x@example.com", "password": "", "user_type": "ADMIN"}),
            "password",
        ),
        (json!("just a string"), "expected struct"),
    ];
    for (body, field) in cases {
        let res = app
            .send(Method::POST, "/users", Some(&sa), body.clone())
            .await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(message.contains(field), "{body} -> {message}");
    }

    let res = app
        .client
        .post(format!("{}/users", app.address))
        .bearer_auth(&sa)
        .header("content-type", "application/json")
        .body("{\"email\": ")
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;

    let res = app
        .client
        .post(format!("{}/users", app.address))
        .bearer_auth(&sa)
        .body(r#"{"email": "x@example.com", "password": "pw-of-a-user", "user_type": "ADMIN"}"#)
        .send()
        .await
        .unwrap();
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    assert!(message.to_lowercase().contains("content-type"), "{message}");

    let huge = "x".repeat(2 * 1024 * 1024);
    let res = app
        .send(
            Method::POST,
            "/users",
            Some(&sa),
            json!({"email": "x@example.com", "password": huge, "user_type": "ADMIN"}),
        )
        .await;
    assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError").await;

    let res = app
        .send(Method::GET, "/users", Some(&sa), Value::Null)
        .await;
    let users: Vec<Value> = res.json().await.unwrap();
    assert_eq!(users.len(), 1, "nothing was created: {users:?}");
}

#[tokio::test]
async fn new_users_need_passwords_of_at_least_eight_characters() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    // Seven characters, fourteen bytes: characters are what count.
    for short in ["seven77", "ééééééé"] {
        let res = app
            .send(
                Method::POST,
                "/users",
                Some(&sa),
                json!({"email": "short@example.com", "password": short, "user_type": "ADMIN"}),
            )
            .await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(
            message.contains("`password` must be at least 8 characters"),
            "{message}"
        );
    }
    let res = app
        .send(
            Method::POST,
            "/users",
            Some(&sa),
            json!({"email": "short@example.com", "password": "éight888", "user_type": "ADMIN"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK, "eight characters are enough");
    app.login("short@example.com", "éight888").await;
}

#[tokio::test]
async fn banning_a_user_stops_their_live_train_job() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    start_slow_job(&app).await;
    assert!(!live_worker_pids(&app).await.is_empty());
    let sa = app.superadmin().await;
    let res = app
        .send(
            Method::DELETE,
            "/users",
            Some(&sa),
            json!({"email": "dev@example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    // The ban answers once the job is stopped: its owner can no longer look, so read the table.
    let jobs: Vec<(String, Option<String>)> =
        sqlx::query_as("select status, error from train_jobs")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    assert_eq!(jobs, [("STOPPED".to_owned(), None)]);
    assert!(
        live_worker_pids(&app).await.is_empty(),
        "the banned user's workers are gone when the ban answers"
    );
}
