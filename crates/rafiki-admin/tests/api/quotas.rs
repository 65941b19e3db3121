//! Quotas and limits (docs/security.md, "Quotas and limits"): per-user quotas with errors that
//! name them, concurrent creations that cannot pass a quota together, paginated listings, the
//! cap on a trial's log entries, and zip bombs refused at upload.

use std::io::Write;

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::forms::{bytes_of_len, RafikiForm};
use crate::helpers::jobs::{ask_for_trial, dataset, model};
use crate::helpers::models::TRIVIAL_MODEL;
use crate::helpers::requests::json_ok;
use crate::helpers::{assert_error, fresh_database, spawn_app_on, TestApp};

/// Settings of an admin on which no worker runs (the process backend launches a program that
/// exits at once) and supervision steps in only at start-up: jobs stay as a test leaves them,
/// and a test that needs a worker plays it through the internal API.
fn without_workers(extra: &[(&'static str, Value)]) -> Vec<(&'static str, Value)> {
    let mut settings = vec![
        ("worker_bin", json!("/bin/true")),
        ("supervise_ms", json!(3_600_000)),
    ];
    settings.extend_from_slice(extra);
    settings
}

async fn spawn_with(settings: &[(&'static str, Value)]) -> TestApp {
    spawn_app_on(&fresh_database().await, settings).await
}

/// A model developer with a train and a validation dataset of task `T` and some models.
struct Developer {
    token: String,
    train: String,
    val: String,
    models: Vec<String>,
}

impl Developer {
    async fn new(app: &TestApp, email: &str, models: usize) -> Developer {
        let token = app.user(email, "MODEL_DEVELOPER").await;
        let train = dataset(app, &token, "T", b"x,y\n1,2\n").await;
        let val = dataset(app, &token, "T", b"x,y\n1,2\n").await;
        let mut ids = Vec::new();
        for i in 0..models {
            let name = format!("m{i}");
            ids.push(model(app, &token, &name, "T", "Trivial", TRIVIAL_MODEL, "PRIVATE").await);
        }
        Developer {
            token,
            train,
            val,
            models: ids,
        }
    }

    /// `POST /train_jobs` of `app` with the first `models` models and this budget.
    async fn create_job(
        &self,
        app: &TestApp,
        name: &str,
        models: usize,
        budget: Value,
    ) -> Response {
        app.send(
            Method::POST,
            "/train_jobs",
            Some(&self.token),
            json!({"app": name, "task": "T", "train_dataset_id": self.train,
                   "val_dataset_id": self.val, "budget": budget,
                   "model_ids": self.models[..models], "train_args": null}),
        )
        .await
    }
}

#[tokio::test]
async fn train_jobs_past_the_model_and_time_quotas_are_refused_naming_the_quota() {
    let app = spawn_with(&without_workers(&[
        ("max_models_per_train_job", json!(2)),
        ("max_time_hours", json!(1.5)),
    ]))
    .await;
    let dev = Developer::new(&app, "dev@example.com", 3).await;
    let res = dev.create_job(&app, "a", 3, json!({})).await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidTrainJobError").await;
    assert!(
        message.contains("3 models")
            && message.contains("at most 2")
            && message.contains("RAFIKI_MAX_MODELS_PER_TRAIN_JOB"),
        "{message}"
    );
    let res = dev.create_job(&app, "a", 1, json!({"TIME_HOURS": 2})).await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidTrainJobError").await;
    assert!(
        message.contains("at most 1.5") && message.contains("RAFIKI_MAX_TIME_HOURS"),
        "{message}"
    );
    assert_eq!(app.count_rows("train_jobs").await, 0, "nothing was written");
    assert_eq!(app.count_rows("services").await, 0, "nothing was launched");
    let res = dev
        .create_job(&app, "a", 2, json!({"TIME_HOURS": 1.5}))
        .await;
    json_ok(res).await;
}

#[tokio::test]
async fn a_user_at_the_live_train_job_quota_cannot_start_another_until_one_stops() {
    let app = spawn_with(&without_workers(&[("max_live_train_jobs", json!(2))])).await;
    let dev = Developer::new(&app, "dev@example.com", 1).await;
    for name in ["a", "b"] {
        json_ok(dev.create_job(&app, name, 1, json!({})).await).await;
    }
    let res = dev.create_job(&app, "c", 1, json!({})).await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidTrainJobError").await;
    assert!(
        message.contains("2 train job(s)")
            && message.contains("at most 2")
            && message.contains("RAFIKI_MAX_LIVE_TRAIN_JOBS"),
        "{message}"
    );
    // The quota is per user.
    let other = Developer::new(&app, "other@example.com", 1).await;
    json_ok(other.create_job(&app, "c", 1, json!({})).await).await;
    // A stopped job no longer counts.
    let res = app
        .send(
            Method::POST,
            "/train_jobs/a/1/stop",
            Some(&dev.token),
            Value::Null,
        )
        .await;
    json_ok(res).await;
    json_ok(dev.create_job(&app, "c", 1, json!({})).await).await;
    assert_eq!(app.count_rows("train_jobs").await, 4);
}

#[tokio::test]
async fn concurrent_creations_on_two_admins_do_not_pass_a_live_train_job_quota_of_one() {
    // Two admin instances on one database: only the database lock can keep them in step.
    let database = fresh_database().await;
    let settings = without_workers(&[("max_live_train_jobs", json!(1))]);
    let first = spawn_app_on(&database, &settings).await;
    let dev = Developer::new(&first, "dev@example.com", 1).await;
    let second = spawn_app_on(&database, &settings).await;
    for round in 0..6 {
        let (name_a, name_b) = (format!("first{round}"), format!("second{round}"));
        let (a, b) = tokio::join!(
            dev.create_job(&first, &name_a, 1, json!({})),
            dev.create_job(&second, &name_b, 1, json!({})),
        );
        let (won, lost) = match (a.status(), b.status()) {
            (StatusCode::OK, StatusCode::BAD_REQUEST) => (a, b),
            (StatusCode::BAD_REQUEST, StatusCode::OK) => (b, a),
            other => panic!("round {round}: exactly one creation may pass, got {other:?}"),
        };
        let message = assert_error(lost, StatusCode::BAD_REQUEST, "InvalidTrainJobError").await;
        assert!(message.contains("RAFIKI_MAX_LIVE_TRAIN_JOBS"), "{message}");
        let job = json_ok(won).await;
        let live: i64 = sqlx::query_scalar(
            "select count(*) from train_jobs where status in ('STARTED', 'RUNNING')",
        )
        .fetch_one(&first.pool)
        .await
        .unwrap();
        assert_eq!(live, 1, "round {round}");
        let stop = format!("/train_jobs/{}/1/stop", job["app"].as_str().unwrap());
        json_ok(
            first
                .send(Method::POST, &stop, Some(&dev.token), Value::Null)
                .await,
        )
        .await;
    }
    assert_eq!(first.count_rows("train_jobs").await, 6);
}

/// Uploads `bytes` as a dataset.
async fn upload(app: &TestApp, token: &str, bytes: &[u8]) -> Response {
    let form = RafikiForm::new()
        .text("name", "data")
        .text("task", "T")
        .file("dataset", bytes);
    app.post_form("/datasets", token, form).await
}

/// Files of finished datasets and of uploads in progress.
fn dataset_files(app: &TestApp) -> usize {
    app.stored_files()
        .iter()
        .filter(|path| {
            let text = path.to_string_lossy();
            text.contains("/datasets/") || text.contains("/tmp/")
        })
        .count()
}

#[tokio::test]
async fn an_upload_past_the_users_dataset_quota_is_refused_naming_the_quota_and_keeps_nothing() {
    let app = spawn_with(&[("max_user_dataset_bytes", json!(1000))]).await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let first = json_ok(upload(&app, &dev, &bytes_of_len(600)).await).await;
    let res = upload(&app, &dev, &bytes_of_len(600)).await;
    let message = assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError").await;
    assert!(
        message.contains("400 bytes")
            && message.contains("600 of 1000")
            && message.contains("RAFIKI_MAX_USER_DATASET_BYTES"),
        "{message}"
    );
    assert_eq!(app.count_rows("datasets").await, 1);
    assert_eq!(dataset_files(&app), 1, "no half-written file");
    // Exactly what is left fits; the quota is per user.
    json_ok(upload(&app, &dev, &bytes_of_len(400)).await).await;
    let other = app.user("other@example.com", "MODEL_DEVELOPER").await;
    json_ok(upload(&app, &other, &bytes_of_len(1000)).await).await;
    // Deleting a dataset gives its room back.
    let res = app
        .delete(
            &format!("/datasets/{}", first["id"].as_str().unwrap()),
            &dev,
        )
        .await;
    json_ok(res).await;
    json_ok(upload(&app, &dev, &bytes_of_len(600)).await).await;
}

#[tokio::test]
async fn concurrent_uploads_do_not_pass_the_dataset_quota_together() {
    let app = spawn_with(&[("max_user_dataset_bytes", json!(100_000))]).await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let data = bytes_of_len(60_000);
    let (a, b) = tokio::join!(upload(&app, &dev, &data), upload(&app, &dev, &data));
    let mut statuses = [a.status(), b.status()];
    statuses.sort();
    assert_eq!(
        statuses,
        [StatusCode::OK, StatusCode::PAYLOAD_TOO_LARGE],
        "one upload fits, not two"
    );
    let lost = if a.status() == StatusCode::OK { b } else { a };
    let message = assert_error(lost, StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError").await;
    assert!(
        message.contains("RAFIKI_MAX_USER_DATASET_BYTES"),
        "{message}"
    );
    assert_eq!(app.count_rows("datasets").await, 1);
    assert_eq!(dataset_files(&app), 1);
}

/// `GET path` answering an `InvalidRequestError` that names `parameter`.
async fn assert_bad_parameter(app: &TestApp, token: &str, path: &str, parameter: &str) {
    let message = assert_error(
        app.get(path, token).await,
        StatusCode::BAD_REQUEST,
        "InvalidRequestError",
    )
    .await;
    assert!(
        message.contains(&format!("`{parameter}`")),
        "{path}: {message}"
    );
}

/// The `id`s of a listing.
fn ids(listing: &Value) -> Vec<&str> {
    listing
        .as_array()
        .unwrap_or_else(|| panic!("a list: {listing}"))
        .iter()
        .map(|item| item["id"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn listings_are_paginated_with_the_largest_page_by_default_and_bad_values_refused() {
    let app = spawn_with(&without_workers(&[("max_page_size", json!(3))])).await;
    let dev = Developer::new(&app, "dev@example.com", 4).await;
    for _ in 0..3 {
        dataset(&app, &dev.token, "T", b"x,y\n1,2\n").await;
    }
    let every = ids(&app.get_json("/datasets?limit=3&offset=0", &dev.token).await)
        .into_iter()
        .chain(ids(&app
            .get_json("/datasets?limit=3&offset=3", &dev.token)
            .await))
        .map(str::to_owned)
        .collect::<Vec<_>>();
    assert_eq!(every.len(), 5, "two pages hold the 5 datasets");
    // Without paging parameters (as Rafiki's client asks), the largest page.
    let default = app.get_json("/datasets", &dev.token).await;
    assert_eq!(ids(&default), every[..3]);
    let page = app.get_json("/datasets?limit=2&offset=1", &dev.token).await;
    assert_eq!(ids(&page), every[1..3]);
    let filtered = app
        .get_json("/datasets?task=T&limit=1&offset=4", &dev.token)
        .await;
    assert_eq!(ids(&filtered), every[4..]);
    assert_eq!(
        app.get_json("/datasets?offset=99", &dev.token).await,
        json!([])
    );

    let models = app.get_json("/models/available?limit=2", &dev.token).await;
    let rest = app.get_json("/models/available?offset=2", &dev.token).await;
    assert_eq!((ids(&models).len(), ids(&rest).len()), (2, 2));
    assert!(ids(&rest).iter().all(|id| !ids(&models).contains(id)));

    for (i, name) in ["a", "a", "b"].iter().enumerate() {
        json_ok(dev.create_job(&app, name, 1, json!({})).await).await;
        if i == 0 {
            let res = app
                .send(
                    Method::POST,
                    "/train_jobs/a/1/stop",
                    Some(&dev.token),
                    Value::Null,
                )
                .await;
            json_ok(res).await;
        }
    }
    let dev_id = app.user_id("dev@example.com").await;
    let jobs = app
        .get_json(&format!("/train_jobs?user_id={dev_id}&limit=2"), &dev.token)
        .await;
    let more = app
        .get_json(
            &format!("/train_jobs?user_id={dev_id}&offset=2"),
            &dev.token,
        )
        .await;
    assert_eq!((ids(&jobs).len(), ids(&more).len()), (2, 1));
    let versions = app
        .get_json("/train_jobs/a?limit=1&offset=1", &dev.token)
        .await;
    assert_eq!(
        versions[0]["app_version"], 1,
        "highest version first: {versions}"
    );
    let path = format!("/inference_jobs?user_id={dev_id}&limit=1");
    assert_eq!(app.get_json(&path, &dev.token).await, json!([]));
    assert_eq!(
        app.get_json("/inference_jobs/a?limit=1&offset=0", &dev.token)
            .await,
        json!([])
    );

    let sa = app.superadmin().await;
    let users = app.get_json("/users", &sa).await;
    assert_eq!(users.as_array().unwrap().len(), 2, "superadmin and dev");
    app.user("third@example.com", "APP_DEVELOPER").await;
    app.user("fourth@example.com", "APP_DEVELOPER").await;
    let first_page = app.get_json("/users", &sa).await;
    let second_page = app.get_json("/users?offset=3", &sa).await;
    assert_eq!(ids(&first_page).len(), 3, "the largest page");
    assert_eq!(
        second_page[0]["email"], "fourth@example.com",
        "oldest first"
    );
    assert_eq!(
        ids(&app.get_json("/users?limit=1&offset=1", &sa).await),
        ids(&first_page)[1..2]
    );

    let user_query = format!("user_id={dev_id}&");
    for (base, query) in [
        ("/datasets", ""),
        ("/models/available", ""),
        ("/train_jobs", user_query.as_str()),
        ("/train_jobs/a", ""),
        ("/inference_jobs", user_query.as_str()),
        ("/inference_jobs/a", ""),
        ("/users", ""),
    ] {
        let token = if base == "/users" { &sa } else { &dev.token };
        for bad in ["limit=0", "limit=4", "limit=ten", "limit=1.5"] {
            assert_bad_parameter(&app, token, &format!("{base}?{query}{bad}"), "limit").await;
        }
        for bad in ["offset=-1", "offset=x"] {
            assert_bad_parameter(&app, token, &format!("{base}?{query}{bad}"), "offset").await;
        }
        let res = app
            .get(&format!("{base}?{query}limit=1&color=red"), token)
            .await;
        assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    }
}

#[tokio::test]
async fn the_openapi_document_declares_limit_and_offset_on_every_listing() {
    let app = spawn_with(&[]).await;
    let res = app
        .send(Method::GET, "/openapi.json", None, Value::Null)
        .await;
    let doc: Value = res.json().await.unwrap();
    for path in [
        "/datasets",
        "/models/available",
        "/train_jobs",
        "/train_jobs/{app}",
        "/inference_jobs",
        "/inference_jobs/{app}",
        "/users",
    ] {
        let params = doc["paths"][path]["get"]["parameters"]
            .as_array()
            .unwrap_or_else(|| panic!("{path} has parameters"));
        for name in ["limit", "offset"] {
            let param = params
                .iter()
                .find(|p| p["name"] == name)
                .unwrap_or_else(|| panic!("{path} declares {name}"));
            assert_eq!(param["in"], "query", "{path} {name}");
            assert_eq!(param["schema"]["type"], "integer", "{path} {name}: {param}");
        }
    }
}

#[tokio::test]
async fn a_trials_log_entries_past_the_cap_are_dropped_behind_one_marker_and_the_trial_goes_on() {
    let app = spawn_with(&without_workers(&[
        ("max_trial_log_entries", json!(5)),
        ("max_trial_log_entry_bytes", json!(1024)),
    ]))
    .await;
    let dev = Developer::new(&app, "dev@example.com", 1).await;
    let job = json_ok(dev.create_job(&app, "logs", 1, json!({})).await).await;
    // The test plays the job's worker: the service the admin planned, with a token it knows.
    let token = "a-hand-made-service-token";
    sqlx::query("update services set token_hash = $1")
        .bind(rafiki_admin::orchestrator::token_hash(token))
        .execute(&app.pool)
        .await
        .unwrap();
    let internal = |method: Method, path: &str, body: Value| {
        let app = &app;
        let path = path.to_owned();
        async move { json_ok(app.send(method, &path, Some(token), body).await).await }
    };
    internal(
        Method::PUT,
        "/internal/train/knob_config",
        json!({"x": {"type": "FLOAT", "value_min": 0.0, "value_max": 1.0, "is_exp": false}}),
    )
    .await;
    let next = internal(Method::POST, "/internal/train/trials", Value::Null).await;
    let trial = next["trial"]["id"].as_str().unwrap().to_owned();
    let message = |text: String| json!({"time": "2026-11-27T00:00:00Z", "kind": "MESSAGE", "body": {"message": text}});
    let logs_path = format!("/internal/trials/{trial}/logs");
    let batch = |from: usize, to: usize| json!({"entries": (from..to).map(|i| message(format!("entry {i}"))).collect::<Vec<_>>()});
    internal(Method::POST, &logs_path, batch(0, 3)).await;
    internal(Method::POST, &logs_path, batch(3, 7)).await;
    internal(Method::POST, &logs_path, batch(7, 9)).await;
    let logs = app
        .get_json(&format!("/trials/{trial}/logs"), &dev.token)
        .await;
    let messages: Vec<&str> = logs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages.len(), 6, "5 entries and one marker: {messages:?}");
    assert_eq!(
        messages[..5],
        ["entry 0", "entry 1", "entry 2", "entry 3", "entry 4"]
    );
    assert!(
        messages[5].contains("dropped") && messages[5].contains("RAFIKI_MAX_TRIAL_LOG_ENTRIES"),
        "{}",
        messages[5]
    );
    // The trial was not failed for it.
    internal(
        Method::POST,
        &format!("/internal/trials/{trial}/finish"),
        json!({"status": "COMPLETED", "score": 0.5}),
    )
    .await;
    let path = format!("/train_jobs/logs/{}/trials", job["app_version"]);
    let trials = app.get_json(&path, &dev.token).await;
    assert_eq!(trials[0]["status"], "COMPLETED", "{trials}");
}

#[tokio::test]
async fn a_log_entry_over_the_size_cap_is_cut_or_replaced() {
    let app = spawn_with(&without_workers(&[(
        "max_trial_log_entry_bytes",
        json!(1024),
    )]))
    .await;
    let dev = Developer::new(&app, "dev@example.com", 1).await;
    json_ok(dev.create_job(&app, "logs", 1, json!({})).await).await;
    let token = "a-hand-made-service-token";
    sqlx::query("update services set token_hash = $1")
        .bind(rafiki_admin::orchestrator::token_hash(token))
        .execute(&app.pool)
        .await
        .unwrap();
    let knobs = json!({"x": {"type": "FIXED", "value": 1}});
    let res = app
        .send(
            Method::PUT,
            "/internal/train/knob_config",
            Some(token),
            knobs,
        )
        .await;
    json_ok(res).await;
    let next = ask_for_trial(&app, token).await;
    let trial = next["trial"]["id"].as_str().unwrap();
    let metrics: serde_json::Map<String, Value> = (0..200)
        .map(|i| (format!("metric_{i}"), json!(i)))
        .collect();
    let entries = json!({"entries": [
        {"time": "2026-11-27T00:00:00Z", "kind": "MESSAGE",
         "body": {"message": format!("\"{}", "é".repeat(3000))}},
        {"time": "2026-11-27T00:00:01Z", "kind": "METRICS", "body": metrics},
        {"time": "2026-11-27T00:00:02Z", "kind": "METRICS", "body": {"loss": 0.5}},
    ]});
    let res = app
        .send(
            Method::POST,
            &format!("/internal/trials/{trial}/logs"),
            Some(token),
            entries,
        )
        .await;
    json_ok(res).await;
    let logs = app
        .get_json(&format!("/trials/{trial}/logs"), &dev.token)
        .await;
    let messages = logs["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{logs}");
    let cut = messages[0]["message"].as_str().unwrap();
    assert!(cut.starts_with("\"éé") && cut.contains("RAFIKI_MAX_TRIAL_LOG_ENTRY_BYTES"));
    assert!(
        json!({"message": cut}).to_string().len() <= 1024,
        "{}",
        cut.len()
    );
    let replaced = messages[1]["message"].as_str().unwrap();
    assert!(
        replaced.contains("METRICS log entry was dropped"),
        "{replaced}"
    );
    assert_eq!(
        logs["metrics"].as_array().unwrap().len(),
        1,
        "the small one stays"
    );
    assert_eq!(logs["metrics"][0]["loss"], 0.5);
}

/// A zip of `(name, bytes)` entries, deflated.
fn zip_of(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let options = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, bytes) in entries {
        writer.start_file(*name, options).unwrap();
        writer.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

#[tokio::test]
async fn zip_bombs_are_refused_at_upload_with_nothing_stored_and_normal_zips_accepted() {
    let app = spawn_with(&[
        ("max_dataset_unzipped_bytes", json!(4 << 20)),
        ("max_dataset_zip_entries", json!(10)),
        ("max_zip_ratio", json!(0)),
    ])
    .await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    // 8 MiB of zeros in a few KiB.
    let bomb = zip_of(&[("a", vec![0; 4 << 20]), ("b", vec![0; 4 << 20])]);
    assert!(bomb.len() < 64 * 1024, "{}", bomb.len());
    let message = assert_error(
        upload(&app, &dev, &bomb).await,
        StatusCode::BAD_REQUEST,
        "InvalidDatasetError",
    )
    .await;
    assert!(
        message.contains("4194304") && message.contains("RAFIKI_MAX_DATASET_UNZIPPED_BYTES"),
        "{message}"
    );
    let names: Vec<String> = (0..11).map(|i| format!("{i}.png")).collect();
    let many: Vec<(&str, Vec<u8>)> = names.iter().map(|n| (n.as_str(), vec![1])).collect();
    let message = assert_error(
        upload(&app, &dev, &zip_of(&many)).await,
        StatusCode::BAD_REQUEST,
        "InvalidDatasetError",
    )
    .await;
    assert!(
        message.contains("11 entries") && message.contains("RAFIKI_MAX_DATASET_ZIP_ENTRIES"),
        "{message}"
    );
    app.assert_nothing_stored().await;

    let normal = zip_of(&[
        ("images.csv", b"path,class\na.png,0\n".to_vec()),
        ("a.png", bytes_of_len(4096)),
    ]);
    let created = json_ok(upload(&app, &dev, &normal).await).await;
    assert_eq!(created["size_bytes"], normal.len());
    assert_eq!(app.count_rows("datasets").await, 1);
}

#[tokio::test]
async fn a_zip_entry_of_an_absurd_compression_ratio_is_refused() {
    let app = spawn_with(&[("max_zip_ratio", json!(100))]).await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let bomb = zip_of(&[("zeros.csv", vec![b'0'; 2 << 20])]);
    let message = assert_error(
        upload(&app, &dev, &bomb).await,
        StatusCode::BAD_REQUEST,
        "InvalidDatasetError",
    )
    .await;
    assert!(
        message.contains("`zeros.csv`") && message.contains("RAFIKI_MAX_ZIP_RATIO"),
        "{message}"
    );
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn cpu_workers_per_model_are_checked_and_bounded_by_the_jobs_quota() {
    let app = spawn_with(&without_workers(&[(
        "max_cpu_workers_per_train_job",
        json!(4),
    )]))
    .await;
    let dev = Developer::new(&app, "dev@example.com", 3).await;
    for bad in [json!(0), json!(-1), json!(1.5), json!("2"), json!(1e12)] {
        let res = dev
            .create_job(&app, "a", 1, json!({"CPU_WORKERS_PER_MODEL": bad}))
            .await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(message.contains("CPU_WORKERS_PER_MODEL"), "{message}");
    }
    let res = dev
        .create_job(&app, "a", 3, json!({"CPU_WORKERS_PER_MODEL": 2}))
        .await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidTrainJobError").await;
    assert!(
        message.contains("asks for 6 train workers")
            && message.contains("at most 4")
            && message.contains("RAFIKI_MAX_CPU_WORKERS_PER_TRAIN_JOB"),
        "{message}"
    );
    let res = dev
        .create_job(&app, "a", 1, json!({"CPU_WORKERS_PER_MODEL": 1000}))
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidTrainJobError").await;
    assert_eq!(app.count_rows("train_jobs").await, 0, "nothing was written");
    assert_eq!(app.count_rows("services").await, 0, "nothing was launched");

    // Within the quota: each model's workers, all of its one sub-job.
    json_ok(
        dev.create_job(&app, "a", 2, json!({"CPU_WORKERS_PER_MODEL": 2}))
            .await,
    )
    .await;
    assert_eq!(app.count_rows("services").await, 4);
    // One worker a model is Rafiki's, allowed past the quota on parallel workers.
    json_ok(dev.create_job(&app, "b", 3, json!({})).await).await;
    assert_eq!(app.count_rows("services").await, 7);
    let per_sub: Vec<i64> = sqlx::query_scalar(
        "select count(*) from train_job_workers group by sub_train_job_id order by 1",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert_eq!(per_sub, vec![1, 1, 1, 2, 2]);
}
