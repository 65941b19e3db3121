//! Logging in and the rules on tokens: expiry, forgery, `alg: none`, bad headers, bans, the
//! token's subject checked against the users table, login rate limits, and secrets read from
//! files.

use std::time::Duration;

use jsonwebtoken::Algorithm;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::poll;
use crate::helpers::{
    assert_error, forge, fresh_database, spawn_app, spawn_app_on, spawn_app_with, TestApp,
    BAN_REFRESH_MS, SUPERADMIN_PASSWORD, TEST_SECRET,
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

async fn superadmin_id(app: &TestApp) -> String {
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
    users_answer_within_5_s(
        &app,
        &admin_token,
        StatusCode::UNAUTHORIZED,
        "the first instance refusing a banned user's token",
    )
    .await;
}

/// Polls `GET /users` with `token` until the answer is `status`, which it must be within 5 s
/// (many of the instance's re-reads of the users table, every [`BAN_REFRESH_MS`]).
async fn users_answer_within_5_s(app: &TestApp, token: &str, status: StatusCode, what: &str) {
    poll::until(
        what,
        Duration::from_secs(5),
        Duration::from_millis(BAN_REFRESH_MS / 2),
        async || {
            let res = app
                .send(Method::GET, "/users", Some(token), Value::Null)
                .await;
            if res.status() == status {
                Ok(())
            } else {
                Err(res.status())
            }
        },
    )
    .await
}

#[tokio::test]
async fn a_validly_signed_token_of_a_user_who_does_not_exist_is_refused() {
    let app = spawn_app().await;
    let exp = chrono::Utc::now().timestamp() + 600;
    let token = forge(
        TEST_SECRET,
        json!({"user_id": uuid::Uuid::new_v4(), "user_type": "SUPERADMIN", "exp": exp}),
    );
    let res = app
        .send(Method::GET, "/users", Some(&token), Value::Null)
        .await;
    let message = assert_error(res, StatusCode::UNAUTHORIZED, "UnauthorizedError").await;
    assert!(message.contains("does not exist"), "{message}");
}

#[tokio::test]
async fn requests_act_with_the_stored_user_type_not_the_tokens_claim() {
    let app = spawn_app().await;
    let token = app.user("dev@example.com", "APP_DEVELOPER").await;
    let id: uuid::Uuid = sqlx::query_scalar("select id from users where email = $1")
        .bind("dev@example.com")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    // A token claiming more than the user is grants nothing more.
    let exp = chrono::Utc::now().timestamp() + 600;
    let inflated = forge(
        TEST_SECRET,
        json!({"user_id": id, "user_type": "SUPERADMIN", "exp": exp}),
    );
    let res = app
        .send(Method::GET, "/users", Some(&inflated), Value::Null)
        .await;
    let message = assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    assert!(message.contains("APP_DEVELOPER"), "{message}");
    // A user whose type changed in the table acts with the new type, even with an older token.
    sqlx::query("update users set user_type = 'ADMIN' where id = $1")
        .bind(id)
        .execute(&app.pool)
        .await
        .unwrap();
    users_answer_within_5_s(
        &app,
        &token,
        StatusCode::OK,
        "the stored type used after it changed",
    )
    .await;
}

#[tokio::test]
async fn a_user_created_through_another_admin_instance_is_recognised_at_once() {
    // This instance re-reads the users table rarely, so only its look-up of an unknown
    // subject can recognise the new user.
    let app = spawn_app_on(&fresh_database().await, &[("ban_refresh_ms", json!(5000))]).await;
    let other = spawn_app_on(&app.database_url, &[]).await;
    let token = other.user("dev@example.com", "APP_DEVELOPER").await;
    let res = app
        .send(Method::GET, "/datasets", Some(&token), Value::Null)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}

/// Attempts a login from `client`; returns the answer.
async fn attempt(
    client: &reqwest::Client,
    app: &TestApp,
    email: &str,
    password: &str,
) -> reqwest::Response {
    client
        .post(format!("{}/tokens", app.address))
        .json(&json!({"email": email, "password": password}))
        .send()
        .await
        .expect("request sent")
}

/// Checks a 429 answer: the error name, and a `Retry-After` of whole seconds; returns the
/// message.
async fn assert_too_many(res: reqwest::Response) -> String {
    let retry_after: u64 = res.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After is a number of seconds");
    assert!(retry_after >= 1, "Retry-After: {retry_after}");
    assert_error(res, StatusCode::TOO_MANY_REQUESTS, "TooManyRequestsError").await
}

#[tokio::test]
async fn logins_past_the_per_account_limit_get_429_while_other_accounts_still_log_in() {
    let db = fresh_database().await;
    let app = spawn_app_on(
        &db,
        &[
            ("login_attempts_per_account", json!(3)),
            ("login_attempts_per_address", json!(1000)),
        ],
    )
    .await;
    app.user("dev@example.com", "MODEL_DEVELOPER").await;
    for _ in 0..2 {
        let res = attempt(&app.client, &app, "dev@example.com", "a-wrong-guess").await;
        assert_error(res, StatusCode::UNAUTHORIZED, "InvalidPasswordError").await;
    }
    // Every attempt counts, so even the right password is refused now; the email's case does
    // not make it another account.
    let res = attempt(&app.client, &app, "DEV@example.com", "pw-of-a-user").await;
    let message = assert_too_many(res).await;
    assert!(message.contains("for this account"), "{message}");
    // Another account, from the same address, is not affected.
    app.superadmin().await;
}

#[tokio::test]
async fn logins_past_the_per_address_limit_get_429_while_other_addresses_still_log_in() {
    let db = fresh_database().await;
    let app = spawn_app_on(
        &db,
        &[
            ("login_attempts_per_address", json!(3)),
            ("login_attempts_per_account", json!(1000)),
        ],
    )
    .await;
    // Unknown emails count too: one address cannot spray guesses across accounts.
    for i in 0..3 {
        let res = attempt(&app.client, &app, &format!("ghost{i}@example.com"), "guess").await;
        assert_error(res, StatusCode::BAD_REQUEST, "InvalidUserError").await;
    }
    let res = attempt(&app.client, &app, "superadmin@rafiki", SUPERADMIN_PASSWORD).await;
    let message = assert_too_many(res).await;
    assert!(message.contains("from this address"), "{message}");
    // The same account from another address (all of 127.0.0.0/8 is this machine) logs in.
    let elsewhere = reqwest::Client::builder()
        .local_address(Some("127.0.0.2".parse().unwrap()))
        .build()
        .unwrap();
    let res = attempt(&elsewhere, &app, "superadmin@rafiki", SUPERADMIN_PASSWORD).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn the_secrets_may_come_from_files() {
    use figment::providers::Serialized;
    let dir = std::env::temp_dir().join(format!("rafiki-secrets-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(&dir).unwrap();
    let secret = "a-secret-from-a-file-long-enough-for-hs256";
    let password = "a-password-from-a-file";
    let database_url = fresh_database().await;
    // Written as `echo` would: the trailing line break is not part of the secret.
    for (name, value) in [
        ("app_secret", secret),
        ("password", password),
        ("database_url", &database_url),
    ] {
        std::fs::write(dir.join(name), format!("{value}\n")).unwrap();
    }
    let figment = rafiki_admin::config::Settings::figment()
        .merge(Serialized::default(
            "database_url_file",
            dir.join("database_url"),
        ))
        .merge(Serialized::default(
            "app_secret_file",
            dir.join("app_secret"),
        ))
        .merge(Serialized::default(
            "superadmin_password_file",
            dir.join("password"),
        ))
        .merge(Serialized::default("admin_port", 0))
        .merge(Serialized::default("bind_host", "127.0.0.1"))
        .merge(Serialized::default("gpus", ""))
        .merge(Serialized::default("data_dir", dir.join("data")));
    let settings = rafiki_admin::config::Settings::from_figment(figment, false).unwrap();
    let app = spawn_app_with(settings).await;
    let res = app
        .send(
            Method::POST,
            "/tokens",
            None,
            json!({"email": "superadmin@rafiki", "password": password}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_owned();
    jsonwebtoken::decode::<Value>(
        &token,
        &jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()).unwrap(),
        &jsonwebtoken::Validation::new(Algorithm::HS256),
    )
    .expect("the token is signed with the file's secret");
}
