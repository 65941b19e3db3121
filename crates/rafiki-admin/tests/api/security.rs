//! Tenant isolation on the process backend: a model uploaded by one MODEL_DEVELOPER, trained
//! through the API like any other, tries every way out of its sandbox
//! (`tests/security/Escapes.py`) — the admin's and other processes' environment, another
//! user's stored dataset, the data directory, writes outside its work directory, Postgres, the
//! admin's API, the outside world, a fork bomb — and must get nothing; `GET /health` says the
//! sandbox is on.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::helpers::jobs::{dataset, start_job, wait_until_ended};
use crate::helpers::prerequisites::python_ready;
use crate::helpers::{fresh_database, spawn_app_on};

#[path = "../../../../tests/security/probes.rs"]
mod probes;

const ESCAPES: &str = include_str!("../../../../tests/security/Escapes.py");

/// Every file under `dir` whose bytes are `content`.
fn files_holding(dir: &Path, content: &[u8]) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_owned()];
    while let Some(folder) = pending.pop() {
        for entry in std::fs::read_dir(&folder).unwrap().flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if std::fs::read(&path).is_ok_and(|bytes| bytes == content) {
                found.push(path);
            }
        }
    }
    found
}

#[tokio::test]
async fn a_hostile_model_gets_nothing_beyond_its_own_service() {
    if !python_ready() {
        return;
    }
    let data_dir = probes::outside_tmp_dir();
    let database_url = fresh_database().await;
    let app = spawn_app_on(
        &database_url,
        &[
            ("data_dir", json!(data_dir.path())),
            ("sandbox", json!("bwrap")),
            ("sandbox_max_procs", json!(64)),
            ("sandbox_max_file_mb", json!(4)),
        ],
    )
    .await;
    let health = app.get_json("/health", "").await;
    assert_eq!(health["sandbox"], "bwrap", "{health}");

    // Another tenant's dataset, stored by the admin.
    let other = app.user("other@example.com", "MODEL_DEVELOPER").await;
    let secret = b"other-tenant-secret,rows\n";
    dataset(&app, &other, "ANY", secret).await;
    let secret_files = files_holding(data_dir.path(), secret);
    assert_eq!(secret_files.len(), 1, "the stored dataset is found");
    let hidden_names: Vec<String> = std::fs::read_dir(data_dir.path())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name != "services")
        .collect();
    assert!(!hidden_names.is_empty());

    let admin_port: u16 = app.address.rsplit(':').next().unwrap().parse().unwrap();
    let postgres_port = url_port(&database_url);
    let train_args = json!({
        "secret_files": [secret_files[0], "/etc/shadow"],
        "secret_dirs": [data_dir.path()],
        "hidden_names": hidden_names,
        "outside_dirs": [data_dir.path()],
        "tcp_ports": [admin_port, postgres_port],
        "tcp_targets": [["1.1.1.1", 53]],
        "max_procs": 64,
        "big_file_mb": 8,
    });
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("escapes", "Escapes", ESCAPES)],
        json!({"MODEL_TRIAL_COUNT": 1}),
        train_args,
    )
    .await;
    let job = wait_until_ended(&app, &dev, &path, 120).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trial = &trials.as_array().unwrap()[0];
    assert_eq!(trial["status"], "COMPLETED", "{trial}");
    let logs = app
        .get_json(
            &format!("/trials/{}/logs", trial["id"].as_str().unwrap()),
            &dev,
        )
        .await;
    let messages: Vec<&str> = logs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["message"].as_str())
        .collect();
    probes::assert_all_blocked(&messages);
    assert!(!data_dir.path().join("rafiki-escape-probe").exists());
}

/// The port of a `postgres://` URL (5432 when it names none).
fn url_port(url: &str) -> u16 {
    let parsed = reqwest::Url::parse(url).unwrap();
    parsed.port().unwrap_or(5432)
}

#[tokio::test]
async fn health_says_when_models_are_not_sandboxed() {
    let app = spawn_app_on(&fresh_database().await, &[("sandbox", json!("off"))]).await;
    let health: Value = app.get_json("/health", "").await;
    assert_eq!(health["sandbox"], "off", "{health}");
}
