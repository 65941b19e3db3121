//! Logging in and the rules on tokens: expiry, forgery, `alg: none`, bad headers, bans.

use std::time::{Duration, Instant};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::{
    assert_error, spawn_app, spawn_app_on, BAN_REFRESH_MS, SUPERADMIN_PASSWORD, TEST_SECRET,
};

#[tokio::test]
async fn superadmin_logs_in_and_gets_a_one_hour_token() {
    let app = spawn_app().await;
    let res = app
        .send(
            Method::POST,
            "/tokens",
            None,
            json!({"email": "superadmin@rafiki", "password": SUPERADMIN_PASSWORD}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/json");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["user_type"], "SUPERADMIN");
    let user_id = body["user_id"].as_str().unwrap();
    uuid::Uuid::parse_str(user_id).unwrap();
    let claims = jsonwebtoken::decode::<Value>(
        body["token"].as_str().unwrap(),
        &jsonwebtoken::DecodingKey::from_secret(TEST_SECRET.as_bytes()).unwrap(),
        &jsonwebtoken::Validation::new(Algorithm::HS256),
    )
    .unwrap()
    .claims;
    assert_eq!(claims["user_id"], user_id);
    assert_eq!(claims["user_type"], "SUPERADMIN");
    let lifetime = claims["exp"].as_i64().unwrap() - chrono::Utc::now().timestamp();
    assert!(
        (3590..=3600).contains(&lifetime),
        "exp is now + 1 h, got {lifetime} s"
    );
}

#[tokio::test]
async fn login_is_case_insensitive_on_email() {
    let app = spawn_app().await;
    app.login("SuperAdmin@Rafiki", SUPERADMIN_PASSWORD).await;
}

#[tokio::test]
async fn wrong_password_and_unknown_user_are_refused_by_name() {
    let app = spawn_app().await;
    let res = app
        .send(
            Method::POST,
            "/tokens",
            None,
            json!({"email": "superadmin@rafiki", "password": "nope"}),
        )
        .await;
    assert_error(res, StatusCode::UNAUTHORIZED, "InvalidPasswordError").await;
    let res = app
        .send(
            Method::POST,
            "/tokens",
            None,
            json!({"email": "ghost@rafiki", "password": "nope"}),
        )
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidUserError").await;
}

fn forge(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

async fn superadmin_id(app: &crate::helpers::TestApp) -> String {
    let res = app
        .send(
            Method::POST,
            "/tokens",
            None,
            json!({"email": "superadmin@rafiki", "password": SUPERADMIN_PASSWORD}),
        )
        .await;
    res.json::<Value>().await.unwrap()["user_id"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn expired_tokens_are_rejected() {
    let app = spawn_app().await;
    let id = superadmin_id(&app).await;
    let past = chrono::Utc::now().timestamp() - 5;
    let token = forge(
        TEST_SECRET,
        json!({"user_id": id, "user_type": "SUPERADMIN", "exp": past}),
    );
    let res = app
        .send(Method::GET, "/users", Some(&token), Value::Null)
        .await;
    let message = assert_error(res, StatusCode::UNAUTHORIZED, "UnauthorizedError").await;
    assert!(message.contains("expired"), "{message}");
    // The same claims, unexpired, are accepted: the expiry is what was refused.
    let future = chrono::Utc::now().timestamp() + 60;
    let token = forge(
        TEST_SECRET,
        json!({"user_id": id, "user_type": "SUPERADMIN", "exp": future}),
    );
    let res = app
        .send(Method::GET, "/users", Some(&token), Value::Null)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn forged_and_unsigned_tokens_are_rejected() {
    let app = spawn_app().await;
    let id = superadmin_id(&app).await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let claims = json!({"user_id": id, "user_type": "SUPERADMIN", "exp": exp});
    let forged = forge("some-other-secret-of-sufficient-length!!", claims.clone());
    let res = app
        .send(Method::GET, "/users", Some(&forged), Value::Null)
        .await;
    assert_error(res, StatusCode::UNAUTHORIZED, "UnauthorizedError").await;

    let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = base64_url(claims.to_string().as_bytes());
    for unsigned in [
        format!("{header}.{payload}."),
        format!("{header}.{payload}"),
    ] {
        let res = app
            .send(Method::GET, "/users", Some(&unsigned), Value::Null)
            .await;
        assert_error(res, StatusCode::UNAUTHORIZED, "UnauthorizedError").await;
    }
    let res = app
        .send(Method::GET, "/users", Some("not.a.jwt"), Value::Null)
        .await;
    assert_error(res, StatusCode::UNAUTHORIZED, "UnauthorizedError").await;
}

/// Unpadded URL-safe base64, enough to build an `alg: none` token by hand.
fn base64_url(bytes: &[u8]) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n =
            chunk.iter().fold(0u32, |acc, b| (acc << 8) | u32::from(*b)) << (8 * (3 - chunk.len()));
        for i in 0..=chunk.len() {
            out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

#[tokio::test]
async fn missing_or_malformed_authorization_headers_are_named() {
    let app = spawn_app().await;
    let res = app.send(Method::GET, "/users", None, Value::Null).await;
    assert_error(
        res,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthorizationHeaderError",
    )
    .await;
    let token = app.superadmin().await;
    for header in [
        format!("Token {token}"),
        "Bearer ".to_owned(),
        token.clone(),
    ] {
        let res = app
            .client
            .get(format!("{}/users", app.address))
            .header("authorization", header)
            .send()
            .await
            .unwrap();
        assert_error(
            res,
            StatusCode::UNAUTHORIZED,
            "InvalidAuthorizationHeaderError",
        )
        .await;
    }
}

#[tokio::test]
async fn a_banned_users_token_stops_working_at_once() {
    let app = spawn_app().await;
    let dev_token = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let admin = app.user("admin@example.com", "ADMIN").await;
    // The developer's token works for routes open to them (the role check, not auth, refuses).
    let res = app
        .send(Method::GET, "/users", Some(&dev_token), Value::Null)
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    let res = app
        .send(
            Method::DELETE,
            "/users",
            Some(&admin),
            json!({"email": "dev@example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = app
        .send(Method::GET, "/users", Some(&dev_token), Value::Null)
        .await;
    let message = assert_error(res, StatusCode::UNAUTHORIZED, "UnauthorizedError").await;
    assert!(message.contains("banned"), "{message}");
    // And they can no longer log in.
    let res = app
        .send(
            Method::POST,
            "/tokens",
            None,
            json!({"email": "dev@example.com", "password": "pw-of-a-user"}),
        )
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
}

#[tokio::test]
async fn a_ban_made_through_another_admin_instance_takes_effect_within_five_seconds() {
    let app = spawn_app().await;
    let other = spawn_app_on(&app.database_url, &[]).await;
    let admin_token = app.user("admin@example.com", "ADMIN").await;
    let res = app
        .send(Method::GET, "/users", Some(&admin_token), Value::Null)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let sa = other.superadmin().await;
    let res = other
        .send(
            Method::DELETE,
            "/users",
            Some(&sa),
            json!({"email": "admin@example.com"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let banned_at = Instant::now();
    loop {
        let res = app
            .send(Method::GET, "/users", Some(&admin_token), Value::Null)
            .await;
        if res.status() == StatusCode::UNAUTHORIZED {
            break;
        }
        assert!(
            banned_at.elapsed() < Duration::from_secs(5),
            "the first instance still accepts a banned user's token after 5 s"
        );
        tokio::time::sleep(Duration::from_millis(BAN_REFRESH_MS / 2)).await;
    }
}
