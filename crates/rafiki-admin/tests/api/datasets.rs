//! Routes 5 and 6 and the dataset additions: uploads as Rafiki's client sends them, downloads
//! from `dataset_url`, size limits, ownership, deletion, and the data directory's rules.

use std::time::Duration;

use axum::body::Body;
use axum::http::header::LOCATION;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::io::ReaderStream;

use crate::helpers::forms::{bytes_of_len, rafiki_url_request, RafikiForm};
use crate::helpers::poll;
use crate::helpers::requests::{json_ok, keys};
use crate::helpers::servers::{allow_mirror, serve, MIRROR_IP};
use crate::helpers::{assert_error, fresh_database, spawn_app, spawn_app_on, test_settings};

/// `client.create_dataset(name, task, dataset_path=...)` of Rafiki's client.
fn rafiki_upload(name: &str, task: &str, bytes: &[u8]) -> RafikiForm {
    RafikiForm::new()
        .text("name", name)
        .text("task", task)
        .file("dataset", bytes)
}

#[tokio::test]
async fn an_uploaded_dataset_is_stored_byte_exact_and_listed() {
    let app = spawn_app().await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let bytes = bytes_of_len(300_000);
    let res = app
        .post_form(
            "/datasets",
            &token,
            rafiki_upload("fashion_mnist_train", "IMAGE_CLASSIFICATION", &bytes),
        )
        .await;
    let created = json_ok(res).await;
    assert_eq!(keys(&created), ["id", "name", "size_bytes", "task"]);
    assert_eq!(created["name"], "fashion_mnist_train");
    assert_eq!(created["task"], "IMAGE_CLASSIFICATION");
    assert_eq!(created["size_bytes"], 300_000);
    let id = created["id"].as_str().unwrap();

    // On disk: exactly one file, under datasets/, named by a server key, with the bytes.
    let files = app.stored_files();
    assert_eq!(files.len(), 1, "{files:?}");
    assert!(files[0].starts_with(app.data_dir.join("datasets")));
    assert_eq!(std::fs::read(&files[0]).unwrap(), bytes);

    let listed = json_ok(app.get("/datasets", &token).await).await;
    let listed = listed.as_array().unwrap();
    assert_eq!(listed.len(), 1);
    assert_eq!(
        keys(&listed[0]),
        ["datetime_created", "id", "name", "size_bytes", "task"]
    );
    assert_eq!(listed[0]["id"], id);
    assert_eq!(listed[0]["size_bytes"], 300_000);
    let created_at = listed[0]["datetime_created"].as_str().unwrap();
    assert!(created_at.ends_with('Z'), "{created_at}");
    let at = chrono::DateTime::parse_from_rfc3339(created_at).unwrap();
    assert!((chrono::Utc::now() - at.to_utc()).num_seconds().abs() < 60);

    let detail = json_ok(app.get(&format!("/datasets/{id}"), &token).await).await;
    assert_eq!(detail["sha256"], hex::encode(Sha256::digest(&bytes)));
    assert_eq!(detail["source_url"], Value::Null);
    assert_eq!(
        detail["owner_id"],
        app.user_id("app@example.com").await.to_string()
    );
}

#[tokio::test]
async fn the_clients_filename_is_ignored() {
    let app = spawn_app().await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let form = RafikiForm::new()
        .text("name", "evil")
        .text("task", "T")
        .named_file("dataset", "../../../../etc/passwd", b"data");
    json_ok(app.post_form("/datasets", &token, form).await).await;
    let files = app.stored_files();
    assert_eq!(files.len(), 1);
    let name = files[0].file_name().unwrap().to_str().unwrap();
    uuid::Uuid::parse_str(name).expect("stored under a server-generated key");
    assert!(files[0].starts_with(app.data_dir.join("datasets")));
}

#[tokio::test]
async fn datasets_are_listed_newest_first_by_task_and_only_to_their_owner_or_admins() {
    let app = spawn_app().await;
    let alice = app.user("alice@example.com", "APP_DEVELOPER").await;
    let bob = app.user("bob@example.com", "MODEL_DEVELOPER").await;
    let admin = app.user("admin@example.com", "ADMIN").await;
    let mut ids = Vec::new();
    for (token, name, task) in [
        (&alice, "a1", "IMAGE_CLASSIFICATION"),
        (&alice, "a2", "POS_TAGGING"),
        (&alice, "a3", "IMAGE_CLASSIFICATION"),
        (&bob, "b1", "IMAGE_CLASSIFICATION"),
    ] {
        let res = app
            .post_form("/datasets", token, rafiki_upload(name, task, b"x,y\n1,2\n"))
            .await;
        ids.push(json_ok(res).await["id"].as_str().unwrap().to_owned());
    }
    let names = |list: Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|d| d["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(
        names(json_ok(app.get("/datasets", &alice).await).await),
        ["a3", "a2", "a1"]
    );
    assert_eq!(
        names(json_ok(app.get("/datasets?task=IMAGE_CLASSIFICATION", &alice).await).await),
        ["a3", "a1"]
    );
    assert_eq!(
        names(json_ok(app.get("/datasets", &bob).await).await),
        ["b1"]
    );
    assert_eq!(
        names(json_ok(app.get("/datasets", &admin).await).await),
        ["b1", "a3", "a2", "a1"]
    );
    let sa = app.superadmin().await;
    assert_eq!(
        names(json_ok(app.get("/datasets?task=POS_TAGGING", &sa).await).await),
        ["a2"]
    );

    // Bob cannot see, or delete, Alice's dataset; it looks missing to him.
    let alices = &ids[0];
    let res = app.get(&format!("/datasets/{alices}"), &bob).await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidDatasetError").await;
    let res = app.delete(&format!("/datasets/{alices}"), &bob).await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidDatasetError").await;
    json_ok(app.get(&format!("/datasets/{alices}"), &admin).await).await;
    let res = app
        .get(&format!("/datasets/{}", uuid::Uuid::new_v4()), &alice)
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidDatasetError").await;
    let res = app.get("/datasets/not-a-uuid", &alice).await;
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
}

#[tokio::test]
async fn deleting_a_dataset_removes_its_row_then_its_file() {
    let app = spawn_app().await;
    let alice = app.user("alice@example.com", "APP_DEVELOPER").await;
    let admin = app.user("admin@example.com", "ADMIN").await;
    let mut ids = Vec::new();
    for name in ["one", "two"] {
        let res = app
            .post_form("/datasets", &alice, rafiki_upload(name, "T", b"bytes"))
            .await;
        ids.push(json_ok(res).await["id"].as_str().unwrap().to_owned());
    }
    assert_eq!(app.stored_files().len(), 2);
    let deleted = json_ok(app.delete(&format!("/datasets/{}", ids[0]), &alice).await).await;
    assert_eq!(deleted["id"], ids[0]);
    assert_eq!(deleted["name"], "one");
    assert_eq!(app.stored_files().len(), 1);
    // Admins may delete anyone's.
    json_ok(app.delete(&format!("/datasets/{}", ids[1]), &admin).await).await;
    app.assert_nothing_stored().await;
    let res = app.delete(&format!("/datasets/{}", ids[1]), &alice).await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidDatasetError").await;
}

#[tokio::test]
async fn a_dataset_used_by_a_train_job_cannot_be_deleted() {
    let app = spawn_app().await;
    let alice = app.user("alice@example.com", "APP_DEVELOPER").await;
    let mut ids = Vec::new();
    for name in ["train", "val"] {
        let res = app
            .post_form("/datasets", &alice, rafiki_upload(name, "T", b"bytes"))
            .await;
        ids.push(uuid::Uuid::parse_str(json_ok(res).await["id"].as_str().unwrap()).unwrap());
    }
    sqlx::query(
        "insert into train_jobs (id, user_id, app, app_version, task, budget, \
         train_dataset_id, val_dataset_id) values ($1, $2, 'app', 1, 'T', '{}', $3, $4)",
    )
    .bind(uuid::Uuid::new_v4())
    .bind(app.user_id("alice@example.com").await)
    .bind(ids[0])
    .bind(ids[1])
    .execute(&app.pool)
    .await
    .unwrap();
    for id in &ids {
        let res = app.delete(&format!("/datasets/{id}"), &alice).await;
        let message = assert_error(res, StatusCode::CONFLICT, "InvalidDatasetError").await;
        assert!(message.contains("train job"), "{message}");
    }
    assert_eq!(app.count_rows("datasets").await, 2);
    assert_eq!(app.stored_files().len(), 2, "the files stay too");
}

#[tokio::test]
async fn a_dataset_needs_exactly_one_of_a_file_and_a_url() {
    let app = spawn_app().await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    // Neither, as Rafiki's client sends it (url-encoded) and as multipart.
    let res = rafiki_url_request(&app, &token, &[("name", "d"), ("task", "T")]).await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidDatasetError").await;
    assert!(
        message.contains("dataset_url") && message.contains("`dataset`"),
        "{message}"
    );
    let form = RafikiForm::new().text("name", "d").text("task", "T");
    let res = app.post_form("/datasets", &token, form).await;
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidDatasetError").await;
    // Both.
    let form = rafiki_upload("d", "T", b"data").text("dataset_url", "http://127.0.0.1:9/x");
    let res = app.post_form("/datasets", &token, form).await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidDatasetError").await;
    assert!(message.contains("not both"), "{message}");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn empty_datasets_are_refused() {
    let app = spawn_app().await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let res = app
        .post_form("/datasets", &token, rafiki_upload("d", "T", b""))
        .await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidDatasetError").await;
    assert!(message.contains("empty"), "{message}");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn missing_unknown_and_repeated_fields_are_named() {
    let app = spawn_app().await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let cases = [
        (
            RafikiForm::new().text("task", "T").file("dataset", b"x"),
            "`name`",
        ),
        (
            RafikiForm::new().text("name", "d").file("dataset", b"x"),
            "`task`",
        ),
        (
            RafikiForm::new()
                .text("name", " ")
                .text("task", "T")
                .file("dataset", b"x"),
            "`name`",
        ),
        (
            rafiki_upload("d", "T", b"x").text("owner_id", "me"),
            "`owner_id`",
        ),
        (
            rafiki_upload("d", "T", b"x").text("name", "again"),
            "`name`",
        ),
        (
            rafiki_upload("d", "T", b"x").file("dataset", b"y"),
            "`dataset`",
        ),
        (rafiki_upload(&"n".repeat(300), "T", b"x"), "`name`"),
    ];
    for (form, field) in cases {
        let res = app.post_form("/datasets", &token, form).await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(message.contains(field), "{field}: {message}");
    }
    let res = app
        .send(
            Method::POST,
            "/datasets",
            Some(&token),
            json!({"name": "d"}),
        )
        .await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    assert!(message.contains("multipart/form-data"), "{message}");
    let res = rafiki_url_request(&app, &token, &[("name", "d"), ("task", "T"), ("x", "1")]).await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    assert!(message.contains("`x`"), "{message}");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn dataset_routes_need_a_signed_in_user() {
    let app = spawn_app().await;
    let res = app.send(Method::GET, "/datasets", None, Value::Null).await;
    assert_error(
        res,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthorizationHeaderError",
    )
    .await;
    let (content_type, body) = rafiki_upload("d", "T", b"data").finish();
    let res = app
        .client
        .post(format!("{}/datasets", app.address))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_error(
        res,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthorizationHeaderError",
    )
    .await;
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn oversized_uploads_are_refused_and_leave_nothing_behind() {
    let app = spawn_app_on(
        &fresh_database().await,
        &[("max_dataset_bytes", json!(1000))],
    )
    .await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    // One byte over, caught while streaming.
    let res = app
        .post_form(
            "/datasets",
            &token,
            rafiki_upload("d", "T", &bytes_of_len(1001)),
        )
        .await;
    let message = assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError").await;
    assert!(message.contains("1000 bytes"), "{message}");
    app.assert_nothing_stored().await;
    // Far over: refused from Content-Length alone, before a byte of the body is sent.
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /datasets HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 10000000000\r\n\
         Connection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let mut answer = String::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_string(&mut answer))
        .await
        .expect("answered without waiting for the body")
        .unwrap();
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("PayloadTooLargeError"), "{answer}");
    app.assert_nothing_stored().await;
    // A chunked body (no Content-Length) is cut off while streaming too.
    let part = reqwest::multipart::Part::stream(reqwest::Body::wrap_stream(chunked(
        bytes_of_len(1200),
        600,
    )))
    .file_name("d.csv");
    let form = reqwest::multipart::Form::new()
        .text("name", "d")
        .text("task", "T")
        .part("dataset", part);
    let res = app
        .client
        .post(format!("{}/datasets", app.address))
        .bearer_auth(&token)
        .multipart(form)
        .send()
        .await
        .unwrap();
    assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError").await;
    app.assert_nothing_stored().await;
    // Exactly at the limit is fine.
    let res = app
        .post_form(
            "/datasets",
            &token,
            rafiki_upload("d", "T", &bytes_of_len(1000)),
        )
        .await;
    assert_eq!(json_ok(res).await["size_bytes"], 1000);
}

/// A body stream of `bytes` in chunks of `chunk` bytes, with no length known up front.
fn chunked(bytes: Vec<u8>, chunk: usize) -> ReaderStream<std::io::Cursor<Vec<u8>>> {
    ReaderStream::with_capacity(std::io::Cursor::new(bytes), chunk)
}

/// A server of test datasets on [`MIRROR_IP`]: a file, a large one (with and without
/// Content-Length), a missing one, a slow one and redirects.
async fn dataset_server() -> String {
    let router = Router::new()
        .route("/data.csv", get(|| async { bytes_of_len(5000) }))
        .route(
            "/chunked",
            get(|| async { Body::from_stream(chunked(bytes_of_len(5000), 500)) }),
        )
        .route(
            "/missing",
            get(|| async { (StatusCode::NOT_FOUND, "no such file") }),
        )
        .route(
            "/slow",
            get(|| async {
                // Not a wait for something: this server never answers in a test's time, so
                // that the admin's download timeout has to cut it off.
                tokio::time::sleep(Duration::from_secs(3600)).await;
                "never"
            }),
        )
        .route(
            "/redirect",
            get(|| async { (StatusCode::FOUND, [(LOCATION, "/data.csv")]).into_response() }),
        )
        .route(
            "/loop",
            get(|| async { (StatusCode::FOUND, [(LOCATION, "/loop")]).into_response() }),
        );
    serve(MIRROR_IP, router).await
}

#[tokio::test]
async fn a_dataset_url_is_downloaded_as_rafikis_client_asks() {
    // The test server is on a loopback address: only the allow-list admits it.
    let app = spawn_app_on(&fresh_database().await, &[allow_mirror()]).await;
    let token = app.user("app@example.com", "MODEL_DEVELOPER").await;
    let server = dataset_server().await;
    for path in ["/data.csv", "/redirect", "/chunked"] {
        let url = format!("{server}{path}");
        let res = rafiki_url_request(
            &app,
            &token,
            &[("name", "remote"), ("task", "T"), ("dataset_url", &url)],
        )
        .await;
        let created = json_ok(res).await;
        assert_eq!(created["size_bytes"], 5000, "{path}");
        let detail = json_ok(
            app.get(
                &format!("/datasets/{}", created["id"].as_str().unwrap()),
                &token,
            )
            .await,
        )
        .await;
        assert_eq!(detail["source_url"], url);
    }
    // Multipart works as well.
    let form = RafikiForm::new()
        .text("name", "remote")
        .text("task", "T")
        .text("dataset_url", &format!("{server}/data.csv"));
    json_ok(app.post_form("/datasets", &token, form).await).await;
    let files = app.stored_files();
    assert_eq!(files.len(), 4);
    for file in files {
        assert_eq!(std::fs::read(file).unwrap(), bytes_of_len(5000));
    }
}

#[tokio::test]
async fn bad_and_failing_dataset_urls_are_named() {
    let app = spawn_app_on(
        &fresh_database().await,
        &[("dataset_url_timeout_secs", json!(1)), allow_mirror()],
    )
    .await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let server = dataset_server().await;
    // A port nobody listens on, of an allowed address: bind one, then free it.
    let closed = {
        let listener = std::net::TcpListener::bind((MIRROR_IP, 0)).unwrap();
        listener.local_addr().unwrap()
    };
    let cases = [
        (format!("http://{closed}/data.csv"), "cannot be reached"),
        (format!("{server}/missing"), "HTTP 404"),
        (format!("{server}/slow"), "timed out"),
        (format!("{server}/loop"), "redirects"),
        ("ftp://127.0.0.1/data.csv".to_owned(), "http or https"),
        ("file:///etc/passwd".to_owned(), "http or https"),
        ("not a url".to_owned(), "not a valid URL"),
    ];
    for (url, reason) in cases {
        let res = rafiki_url_request(
            &app,
            &token,
            &[("name", "remote"), ("task", "T"), ("dataset_url", &url)],
        )
        .await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidDatasetError").await;
        assert!(message.contains(reason), "{url}: {message}");
        // What the server answered is its own: the 404's body is not repeated.
        assert!(!message.contains("no such file"), "{url}: {message}");
        app.assert_nothing_stored().await;
    }
}

#[tokio::test]
async fn too_large_dataset_urls_are_refused_with_413() {
    let app = spawn_app_on(
        &fresh_database().await,
        &[("max_dataset_bytes", json!(1000)), allow_mirror()],
    )
    .await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let server = dataset_server().await;
    // Declared too large, and found too large while streaming (no Content-Length).
    for path in ["/data.csv", "/chunked"] {
        let url = format!("{server}{path}");
        let res = rafiki_url_request(
            &app,
            &token,
            &[("name", "remote"), ("task", "T"), ("dataset_url", &url)],
        )
        .await;
        let message =
            assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError").await;
        assert!(message.contains("RAFIKI_MAX_DATASET_BYTES"), "{message}");
        app.assert_nothing_stored().await;
    }
}

#[tokio::test]
async fn startup_sweeps_leftover_temporaries_and_locks_the_data_directory() {
    let database_url = fresh_database().await;
    let data_dir = std::env::temp_dir().join(format!("rafiki-test-{}", uuid::Uuid::new_v4()));
    std::fs::create_dir_all(data_dir.join("tmp")).unwrap();
    let leftover = data_dir.join("tmp").join("datasets-crashed.part");
    std::fs::write(&leftover, b"half a dataset").unwrap();
    let settings = [("data_dir", json!(data_dir))];
    let app = spawn_app_on(&database_url, &settings).await;
    assert!(!leftover.exists(), "the sweep removed the temporary");
    assert_eq!(app.data_dir, data_dir);
    // A second admin on the same directory refuses to start.
    let err = rafiki_admin::startup::Application::build(test_settings(&database_url, &settings))
        .await
        .err()
        .expect("a second admin on the same data directory fails");
    assert!(format!("{err:#}").contains("in use"), "{err:#}");
}

#[tokio::test]
async fn an_interrupted_upload_streams_to_a_temporary_that_is_then_removed() {
    let app = spawn_app().await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let address = app.address.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(address).await.unwrap();
    let head = format!(
        "POST /datasets HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: multipart/form-data; boundary=b\r\nContent-Length: 100000000\r\n\r\n\
         --b\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nd\r\n\
         --b\r\nContent-Disposition: form-data; name=\"task\"\r\n\r\nT\r\n\
         --b\r\nContent-Disposition: form-data; name=\"dataset\"; filename=\"d\"\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // Part of the file: more than the server's write buffer, far less than declared.
    stream.write_all(&bytes_of_len(3 << 20)).await.unwrap();
    let temporaries = || -> Vec<std::path::PathBuf> {
        app.stored_files()
            .into_iter()
            .filter(|f| f.starts_with(app.data_dir.join("tmp")))
            .collect()
    };
    // The bytes reach the disk while the upload is still going: it streams.
    poll::until(
        "a temporary of 1 MiB",
        Duration::from_secs(10),
        Duration::from_millis(20),
        async || {
            let on_disk: u64 = temporaries()
                .iter()
                .map(|f| std::fs::metadata(f).map(|m| m.len()).unwrap_or(0))
                .sum();
            if on_disk >= 1 << 20 {
                Ok(())
            } else {
                Err(format!("{on_disk} bytes in temporaries"))
            }
        },
    )
    .await;
    assert_eq!(
        app.count_rows("datasets").await,
        0,
        "no row while uploading"
    );
    // The client goes away: the temporary is removed.
    drop(stream);
    poll::until(
        "the temporary removed",
        Duration::from_secs(10),
        Duration::from_millis(20),
        async || match app.stored_files() {
            files if files.is_empty() => Ok(()),
            files => Err(format!("{files:?}")),
        },
    )
    .await;
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn form_names_are_1_to_255_printable_characters_as_the_openapi_document_says() {
    let app = spawn_app().await;
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    // 255 characters of four bytes each: characters count, not bytes.
    let longest = "\u{1F600}".repeat(255);
    for (name, accepted) in [
        (longest.as_str(), true),
        (&*format!("{longest}x"), false),
        ("   ", false),
        ("tab\there", false),
        ("a\u{85}b", false),
    ] {
        let res = app
            .post_form("/datasets", &token, rafiki_upload(name, "ANY", b"data"))
            .await;
        if accepted {
            assert_eq!(json_ok(res).await["name"], name);
        } else {
            assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        }
    }
    assert_eq!(app.count_rows("datasets").await, 1);
}
