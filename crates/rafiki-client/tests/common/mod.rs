//! Starts the real admin on a fresh database for each test, as the admin's own API tests do
//! (`crates/rafiki-admin/tests/api/helpers.rs`), and a few helpers shared by the client and
//! CLI tests.
//!
//! Each test's database is created by [`fresh_database`] on the server of
//! `RAFIKI_TEST_DATABASE_URL` or else in the tests' Postgres container (the `rafiki_testing`
//! crate tells how the server is chosen). Tests that run real models need `RAFIKI_PYTHON` (an
//! interpreter with the `rafiki` package) and the `rafiki-worker` and `rafiki-predictor`
//! binaries built next to the test binaries.

#![allow(dead_code)] // Each test crate uses its own subset.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use figment::providers::Serialized;
use rafiki_admin::config::Settings;
use rafiki_admin::startup::Application;
use rafiki_client::types::user::UserType;
use rafiki_client::Client;
use serde_json::Value;

/// The superadmin's password on test servers.
pub const SUPERADMIN_PASSWORD: &str = "superadmin-test-password";
/// The password of every user the tests create.
pub const USER_PASSWORD: &str = "pw-of-a-user";

/// A running admin.
pub struct TestApp {
    /// Its port on 127.0.0.1.
    pub port: u16,
    /// Its data directory.
    pub data_dir: PathBuf,
}

pub use rafiki_testing::fresh_database;

/// Starts an admin on a fresh database.
pub async fn spawn_app() -> TestApp {
    spawn_app_with(&[]).await
}

/// Starts an admin on a fresh database with extra settings.
pub async fn spawn_app_with(extra: &[(&str, Value)]) -> TestApp {
    let database_url = fresh_database().await;
    let data_dir =
        std::env::temp_dir().join(format!("rafiki-client-test-{}", uuid::Uuid::new_v4()));
    let mut figment = Settings::figment()
        .merge(Serialized::default("database_url", &database_url))
        .merge(Serialized::default("admin_port", 0))
        .merge(Serialized::default("bind_host", "127.0.0.1"))
        .merge(Serialized::default("db_max_connections", 5))
        .merge(Serialized::default(
            "app_secret",
            "test-secret-that-is-long-enough-for-hs256!",
        ))
        .merge(Serialized::default(
            "superadmin_password",
            SUPERADMIN_PASSWORD,
        ))
        .merge(Serialized::default("ban_refresh_ms", 200))
        .merge(Serialized::default("supervise_ms", 100))
        .merge(Serialized::default("data_dir", &data_dir));
    for (key, value) in extra {
        figment = figment.merge(Serialized::default(key, value));
    }
    let settings = Settings::from_figment(figment, false).expect("valid test settings");
    let app = Application::build(settings)
        .await
        .expect("the admin builds");
    let port = app.port();
    tokio::spawn(app.run_until_stopped(std::future::pending()));
    TestApp { port, data_dir }
}

impl TestApp {
    /// A client of this admin, not logged in.
    pub fn client(&self) -> Client {
        Client::new("127.0.0.1", self.port)
    }

    /// A client logged in as the superadmin.
    pub async fn superadmin(&self) -> Client {
        let mut client = self.client();
        client
            .login("superadmin@rafiki", SUPERADMIN_PASSWORD)
            .await
            .expect("the superadmin logs in");
        client
    }

    /// Creates a user of `user_type` (as the superadmin) and returns a client logged in as
    /// them.
    pub async fn user(&self, email: &str, user_type: UserType) -> Client {
        self.superadmin()
            .await
            .create_user(email, USER_PASSWORD, user_type)
            .await
            .expect("the user is created");
        let mut client = self.client();
        client
            .login(email, USER_PASSWORD)
            .await
            .expect("the user logs in");
        client
    }
}

/// A stand-in worker that starts and then does nothing until it is killed, so train jobs
/// stay live (STARTED) without Python until they are stopped.
pub fn idle_worker() -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let path = std::env::temp_dir().join(format!("rafiki-idle-worker-{}", uuid::Uuid::new_v4()));
    std::fs::write(&path, "#!/bin/sh\nexec sleep 600\n").expect("the idle worker is written");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("the idle worker is executable");
    path
}

/// Starts an admin whose workers are [`idle_worker`]s.
pub async fn spawn_app_with_idle_workers() -> TestApp {
    spawn_app_with(&[("worker_bin", serde_json::json!(idle_worker()))]).await
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// Whether models can run: `RAFIKI_PYTHON` is set and imports the `rafiki` package (with
/// numpy). When it can, the worker and predictor binaries must have been built, or the test
/// fails saying so. Tests skip without it on a developer's machine, but never in CI (`CI`
/// set), where a skip would hide that they did not run.
pub fn python_ready() -> bool {
    let missing = match std::env::var("RAFIKI_PYTHON") {
        Err(_) => "RAFIKI_PYTHON is not set (scripts/test.sh sets it)".to_owned(),
        Ok(python) => {
            let imports = std::process::Command::new(&python)
                .args(["-c", "import rafiki.model, numpy"])
                .status()
                .is_ok_and(|s| s.success());
            if imports {
                for name in ["rafiki-worker", "rafiki-predictor"] {
                    let binary = built_binary(name);
                    assert!(
                        binary.exists(),
                        "RAFIKI_PYTHON is set but {} is missing: build it first (`cargo build \
                         --workspace --bins` with the same target directory)",
                        binary.display()
                    );
                }
                return true;
            }
            format!("{python} cannot import the rafiki package")
        }
    };
    assert!(
        std::env::var_os("CI").is_none(),
        "models must run in CI: {missing}"
    );
    eprintln!("skipped: {missing}");
    false
}

/// A binary of the workspace built next to this test binary (`target/<profile>/<name>`).
pub fn built_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let mut dir = exe.parent().expect("a directory").to_path_buf();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir.join(name)
}

/// A small model: one float knob that is also its score and its prediction; it declares a
/// plot, logs three epochs of a loss and a message, and saves a float, an array, an int and
/// a string.
pub const TINY_MODEL: &str = r#"
import numpy as np
from rafiki.model import BaseModel, FloatKnob, logger


class Tiny(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"x": FloatKnob(0.0, 1.0)}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.x = knobs["x"]

    def train(self, dataset_path, shared_params=None, **train_args):
        logger.define_plot("Loss", ["loss"], x_axis="epoch")
        for epoch in range(1, 4):
            logger.log(loss=1.0 / epoch, epoch=epoch)
        logger.log("trained tiny")

    def evaluate(self, dataset_path):
        return self.x

    def predict(self, queries):
        return [self.x for _ in queries]

    def dump_parameters(self):
        weights = np.array([[1.0, 2.0]], dtype="<f4")
        return {"x": self.x, "weights": weights, "epochs": 3, "name": "tiny"}

    def load_parameters(self, params):
        self.x = params["x"]
"#;

/// Waits for `check` to return `Some`, polling every 200 ms, for at most `secs` seconds.
pub async fn wait_for<T, F, Fut>(what: &str, secs: u64, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
