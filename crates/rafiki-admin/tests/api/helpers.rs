//! Starts the real admin on a fresh database for each test.
//!
//! Each test gets its own database, created by [`fresh_database`] and migrated by the admin, on
//! the server of `RAFIKI_TEST_DATABASE_URL` or else in the tests' Postgres container (the
//! `rafiki_testing` crate tells how the server is chosen).
//!
//! Whatever tests of more than one feature use is here, by topic in the submodules (requests
//! and uploads, jobs and the models they run, what the machine must have, waiting), so that a
//! feature's test file imports from this module only and owns nothing another file needs.

use figment::providers::Serialized;
use rafiki_admin::config::Settings;
use rafiki_admin::startup::Application;
use reqwest::{Method, Response, StatusCode};
use secrecy::ExposeSecret;
use serde_json::{json, Value};
use sqlx::PgPool;

/// The HS256 secret of test servers, so tests can forge tokens.
pub const TEST_SECRET: &str = "test-secret-that-is-long-enough-for-hs256!";
/// The superadmin's password on test servers.
pub const SUPERADMIN_PASSWORD: &str = "superadmin-test-password";
/// The password [`TestApp::user`] gives its users.
pub const USER_PASSWORD: &str = "pw-of-a-user";
/// How often test servers re-read the ban list.
pub const BAN_REFRESH_MS: u64 = 200;

/// A running admin and a client for it.
pub struct TestApp {
    pub address: String,
    pub client: reqwest::Client,
    pub pool: PgPool,
    pub database_url: String,
    /// The server's data directory (datasets, model files).
    pub data_dir: std::path::PathBuf,
    server: Server,
}

/// Where a test server runs.
enum Server {
    /// In this process; stopped gracefully (see [`TestApp::shutdown`]).
    InProcess {
        stop: tokio::sync::oneshot::Sender<()>,
        task: tokio::task::JoinHandle<anyhow::Result<()>>,
    },
    /// The built `rafiki-admin` binary, a child process of the test, so that it can be killed
    /// for real ([`TestApp::kill`]); see [`admin_process`].
    Process(tokio::process::Child),
}

pub mod admin_process;
pub mod console_browser;
pub mod docker_cli;
pub mod forms;
pub mod jobs;
pub mod models;
pub mod poll;
pub mod prerequisites;
pub mod proxy;
pub mod requests;
pub mod servers;
pub mod storage;
pub mod swarm_nodes;

pub use rafiki_testing::fresh_database;

/// The settings every test server starts from, as (key, value) pairs; a fresh data directory.
pub fn base_settings(database_url: &str) -> Vec<(&'static str, Value)> {
    let data_dir = std::env::temp_dir().join(format!("rafiki-test-{}", uuid::Uuid::new_v4()));
    vec![
        ("database_url", json!(database_url)),
        ("admin_port", json!(0)),
        ("bind_host", json!("127.0.0.1")),
        ("db_max_connections", json!(5)),
        ("app_secret", json!(TEST_SECRET)),
        ("superadmin_password", json!(SUPERADMIN_PASSWORD)),
        ("ban_refresh_ms", json!(BAN_REFRESH_MS)),
        // No GPUs unless a test declares some, whatever `nvidia-smi` says on this machine.
        ("gpus", json!("")),
        ("data_dir", json!(data_dir)),
    ]
}

/// Settings of a test server on `database_url`, with extra overrides.
pub fn test_settings(database_url: &str, extra: &[(&str, Value)]) -> Settings {
    let mut figment = Settings::figment();
    for (key, value) in base_settings(database_url).iter().chain(extra) {
        figment = figment.merge(Serialized::default(key, value));
    }
    Settings::from_figment(figment, false).expect("valid test settings")
}

/// Starts an admin on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_on(&fresh_database().await, &[]).await
}

/// Starts an admin on an existing database, with extra settings.
pub async fn spawn_app_on(database_url: &str, extra: &[(&str, Value)]) -> TestApp {
    spawn_app_with(test_settings(database_url, extra)).await
}

/// Starts an admin with these settings.
pub async fn spawn_app_with(settings: Settings) -> TestApp {
    let database_url = settings.database_url.expose_secret().to_owned();
    let app = Application::build(settings)
        .await
        .expect("the admin builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let pool = app.state().pool.clone();
    let data_dir = app.state().settings.data_dir.clone();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(app.run_until_stopped(async move {
        // A dropped sender (the test ended) keeps serving until the runtime goes.
        if stopped.await.is_err() {
            std::future::pending::<()>().await;
        }
    }));
    TestApp {
        address,
        client: reqwest::Client::new(),
        pool,
        database_url,
        data_dir,
        server: Server::InProcess { stop, task },
    }
}

impl TestApp {
    /// Stops the server as SIGTERM would (its services keep running) and waits until its
    /// port is free.
    pub async fn shutdown(self) {
        match self.server {
            Server::InProcess { stop, task } => {
                let _ = stop.send(());
                task.await
                    .expect("the server task ends")
                    .expect("the server stops cleanly");
            }
            Server::Process(mut child) => {
                admin_process::signal(&child, nix::sys::signal::Signal::SIGTERM);
                let status = child.wait().await.expect("the admin is reaped");
                assert!(status.success(), "the admin stops cleanly: {status}");
            }
        }
    }

    /// Kills the admin with SIGKILL, as a crash or an OOM kill would (its services keep
    /// running), and waits until it is gone. Only an admin of [`admin_process::spawn`].
    pub async fn kill(self) {
        let Server::Process(mut child) = self.server else {
            panic!("only an admin process can be killed");
        };
        admin_process::signal(&child, nix::sys::signal::Signal::SIGKILL);
        child.wait().await.expect("the admin is reaped");
    }

    /// Sends a JSON request (or none with `Value::Null`) with an optional bearer token.
    pub async fn send(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Value,
    ) -> Response {
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.address));
        if let Some(token) = token {
            req = req.bearer_auth(token);
        }
        if !body.is_null() {
            req = req.json(&body);
        }
        req.send().await.expect("request sent")
    }

    /// Logs in; panics unless it works.
    pub async fn login(&self, email: &str, password: &str) -> String {
        let res = self
            .send(
                Method::POST,
                "/tokens",
                None,
                json!({"email": email, "password": password}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "login of {email}");
        res.json::<Value>().await.unwrap()["token"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// The superadmin's token.
    pub async fn superadmin(&self) -> String {
        self.login("superadmin@rafiki", SUPERADMIN_PASSWORD).await
    }

    /// Creates a user of `user_type` (as the superadmin) and returns their token.
    pub async fn user(&self, email: &str, user_type: &str) -> String {
        let sa = self.superadmin().await;
        let res = self
            .send(
                Method::POST,
                "/users",
                Some(&sa),
                json!({"email": email, "password": USER_PASSWORD, "user_type": user_type}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK, "create {email}");
        self.login(email, USER_PASSWORD).await
    }
}

/// A HS256 token of these claims signed with `secret` ([`TEST_SECRET`] for a genuine one).
pub fn forge(secret: &str, claims: Value) -> String {
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &claims,
        &jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()).unwrap(),
    )
    .unwrap()
}

/// Asserts the contract's error envelope, name and status; returns the message.
pub async fn assert_error(res: Response, status: StatusCode, name: &str) -> String {
    assert_eq!(res.status(), status, "status of a {name}");
    assert_eq!(
        res.headers()["content-type"],
        "application/json",
        "error bodies are JSON"
    );
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["error"], name, "error name in {body}");
    let message = body["message"].as_str().expect("a message").to_owned();
    assert!(!message.is_empty());
    message
}
