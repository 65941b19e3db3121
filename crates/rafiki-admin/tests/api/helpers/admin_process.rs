//! An admin run as the built `rafiki-admin` binary, a child process of the test, for tests that
//! need to kill it for real: an admin in the test's own process can only stop gracefully.
//!
//! It gets the settings of an in-process test server ([`super::base_settings`]) through the
//! environment variables the binary reads (`rafiki_admin::config::ENV_KEYS`), and a port
//! chosen here so that a second admin can take the first one's place.

use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use rafiki_admin::config::ENV_KEYS;
use serde_json::Value;
use sqlx::postgres::PgPoolOptions;

use super::{base_settings, poll, Server, TestApp};

/// A free port of 127.0.0.1, for an admin that a later one replaces on the same port.
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

/// Starts `rafiki-admin` on `database_url` with the test settings and `extra` (which must
/// name a non-zero `admin_port`), and waits until it answers `GET /health`. Its log goes to
/// `admin.log` in its data directory, appended to by every admin started on that directory.
pub async fn spawn(database_url: &str, extra: &[(&str, Value)]) -> TestApp {
    spawn_with_env(database_url, extra, &[]).await
}

/// [`spawn`], with environment variables of the admin's own that are not settings (e.g.
/// `DOCKER_HOST`: the test process itself must not have them).
pub async fn spawn_with_env(
    database_url: &str,
    extra: &[(&str, Value)],
    env: &[(&str, &str)],
) -> TestApp {
    let mut settings = base_settings(database_url);
    settings.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
    // Later pairs override earlier ones, as in `test_settings`.
    let setting = |key: &str| {
        settings
            .iter()
            .rev()
            .find(|(k, _)| *k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_else(|| panic!("no setting `{key}`"))
    };
    let port = setting("admin_port").as_u64().unwrap_or(0);
    assert!(port > 0, "an admin process needs its port chosen: {port}");
    let data_dir = std::path::PathBuf::from(setting("data_dir").as_str().unwrap());
    std::fs::create_dir_all(&data_dir).unwrap();
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(data_dir.join("admin.log"))
        .unwrap();
    // The rest of its settings comes from the test's environment, as an in-process server's
    // does (`RAFIKI_PYTHON` among them).
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_rafiki-admin"));
    for (key, value) in &settings {
        let variable = ENV_KEYS
            .iter()
            .find(|(_, k)| k == key)
            .map(|(variable, _)| *variable)
            .unwrap_or_else(|| panic!("setting `{key}` has no environment variable"));
        let text = match value {
            Value::String(text) => text.clone(),
            other => other.to_string(),
        };
        command.env(variable, text);
    }
    let mut child = command
        .envs(env.iter().copied())
        .arg("serve")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .kill_on_drop(true)
        .spawn()
        .expect("rafiki-admin starts");
    let address = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    poll::until(
        "rafiki-admin answering GET /health",
        Duration::from_secs(60),
        Duration::from_millis(100),
        async || {
            if let Some(status) = child.try_wait().unwrap() {
                let log = std::fs::read_to_string(data_dir.join("admin.log")).unwrap_or_default();
                panic!("rafiki-admin exited at start ({status}):\n{log}");
            }
            match client.get(format!("{address}/health")).send().await {
                Ok(res) if res.status().is_success() => Ok(()),
                Ok(res) => Err(res.status().to_string()),
                Err(error) => Err(error.to_string()),
            }
        },
    )
    .await;
    let pool = PgPoolOptions::new()
        .max_connections(2)
        .connect(database_url)
        .await
        .expect("the test reaches the admin's database");
    TestApp {
        address,
        client,
        pool,
        database_url: database_url.to_owned(),
        data_dir,
        server: Server::Process(child),
    }
}

/// Sends `signal` to an admin process that has not been reaped.
pub(super) fn signal(child: &tokio::process::Child, signal: Signal) {
    let pid = child.id().expect("the admin has not been reaped");
    kill(Pid::from_raw(i32::try_from(pid).unwrap()), signal).expect("the admin can be signalled");
}
