//! The defence of `dataset_url` against server-side request forgery: downloads reach public
//! addresses only, on the first URL and on every redirect, whether the host is an IP literal
//! (in any spelling) or a name; the operator's allow-list admits internal mirrors; refusals
//! all read alike; credentials in URLs are sent but never stored or repeated.

use axum::http::header::{AUTHORIZATION, LOCATION};
use axum::http::HeaderMap;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::forms::{bytes_of_len, rafiki_url_request};
use crate::helpers::requests::json_ok;
use crate::helpers::servers::{allow_mirror, serve, MIRROR_IP};
use crate::helpers::{assert_error, fresh_database, spawn_app, spawn_app_on, TestApp};

/// The one message of every refused address.
const REFUSED: &str = "`dataset_url` and its redirects must resolve to public addresses; \
                       operators can allow internal hosts with RAFIKI_DATASET_URL_ALLOW.";

/// The admin's port, which the refused URLs aim at.
fn admin_port(app: &TestApp) -> u16 {
    app.address.rsplit(':').next().unwrap().parse().unwrap()
}

/// A port nobody listens on at `ip`: bound, then freed.
fn closed_port(ip: &str) -> u16 {
    let listener = std::net::TcpListener::bind((ip, 0)).unwrap();
    listener.local_addr().unwrap().port()
}

/// Asks for a dataset from `url`, which must fail and store nothing; returns the
/// `InvalidDatasetError`'s message.
async fn refusal_of(app: &TestApp, token: &str, url: &str) -> String {
    let (rows, files) = (app.count_rows("datasets").await, app.stored_files());
    let res = rafiki_url_request(
        app,
        token,
        &[("name", "d"), ("task", "T"), ("dataset_url", url)],
    )
    .await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidDatasetError").await;
    assert_eq!(app.count_rows("datasets").await, rows, "{url}");
    assert_eq!(app.stored_files(), files, "{url}");
    message
}

/// Asks for a dataset from `url`; returns the created dataset's id.
async fn download(app: &TestApp, token: &str, url: &str) -> String {
    let res = rafiki_url_request(
        app,
        token,
        &[("name", "d"), ("task", "T"), ("dataset_url", url)],
    )
    .await;
    json_ok(res).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn loopback_private_and_metadata_addresses_are_refused_in_every_spelling() {
    let app = spawn_app().await;
    let token = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let port = admin_port(&app);
    let cases = [
        // The admin's own API, as the issue found it stored as a dataset.
        format!("http://127.0.0.1:{port}/openapi.json"),
        // Spellings the URL parser turns into 127.0.0.1 or 0.0.0.0 (which reaches this host).
        format!("http://2130706433:{port}/openapi.json"),
        format!("http://127.1:{port}/openapi.json"),
        format!("http://0x7f.1:{port}/openapi.json"),
        format!("http://0177.0.0.1:{port}/openapi.json"),
        format!("http://0:{port}/openapi.json"),
        format!("http://0.0.0.0:{port}/openapi.json"),
        format!("http://127.0.0.2:{port}/openapi.json"),
        // IPv6 loopback, unspecified, and IPv4 embedded in IPv6.
        format!("http://[::1]:{port}/openapi.json"),
        format!("http://[::]:{port}/openapi.json"),
        format!("http://[::ffff:127.0.0.1]:{port}/openapi.json"),
        format!("http://[::ffff:7f00:1]:{port}/openapi.json"),
        format!("http://[64:ff9b::7f00:1]:{port}/openapi.json"),
        format!("http://[2002:7f00:1::]:{port}/openapi.json"),
        // A name that resolves to loopback: refused where it is resolved.
        format!("http://localhost:{port}/openapi.json"),
        format!("https://localhost:{port}/openapi.json"),
        // Private, shared, link-local and the cloud metadata service.
        "http://10.0.0.1/data.csv".to_owned(),
        "http://172.16.0.1/data.csv".to_owned(),
        "http://192.168.1.1/data.csv".to_owned(),
        "http://100.64.0.1/data.csv".to_owned(),
        "http://169.254.169.254/latest/meta-data/".to_owned(),
        "http://[::ffff:169.254.169.254]/latest/meta-data/".to_owned(),
        "http://[fd00::1]/data.csv".to_owned(),
        "http://[fe80::1]/data.csv".to_owned(),
        // Multicast, broadcast, documentation.
        "http://224.0.0.1/data.csv".to_owned(),
        "http://255.255.255.255/data.csv".to_owned(),
        "http://[ff02::1]/data.csv".to_owned(),
        "http://192.0.2.1/data.csv".to_owned(),
        "http://[2001:db8::1]/data.csv".to_owned(),
    ];
    for url in cases {
        assert_eq!(refusal_of(&app, &token, &url).await, REFUSED, "{url}");
    }
}

#[tokio::test]
async fn a_refused_address_answers_the_same_whether_its_port_is_open_or_closed() {
    let app = spawn_app().await;
    let token = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let open = admin_port(&app);
    let closed = closed_port("127.0.0.1");
    for host in ["127.0.0.1", "localhost", "[::ffff:127.0.0.1]"] {
        let to_open = refusal_of(&app, &token, &format!("http://{host}:{open}/")).await;
        let to_closed = refusal_of(&app, &token, &format!("http://{host}:{closed}/")).await;
        assert_eq!(to_open, to_closed, "{host}");
        assert_eq!(to_open, REFUSED, "{host}");
    }
}

#[tokio::test]
async fn a_redirect_from_an_allowed_server_to_a_refused_address_is_refused() {
    let app = spawn_app_on(&fresh_database().await, &[allow_mirror()]).await;
    let token = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let port = admin_port(&app);
    let redirect = |to: String| get(move || async move { (StatusCode::FOUND, [(LOCATION, to)]) });
    let router = Router::new()
        .route("/data.csv", get(|| async { bytes_of_len(100) }))
        .route("/to-mirror", redirect("/data.csv".to_owned()))
        .route(
            "/to-admin",
            redirect(format!("http://127.0.0.1:{port}/openapi.json")),
        )
        .route(
            "/to-decimal",
            redirect(format!("http://2130706433:{port}/openapi.json")),
        )
        .route(
            "/to-mapped",
            redirect(format!("http://[::ffff:127.0.0.1]:{port}/openapi.json")),
        )
        .route(
            "/to-localhost",
            redirect(format!("http://localhost:{port}/openapi.json")),
        )
        .route(
            "/to-metadata",
            redirect("http://169.254.169.254/latest/meta-data/".to_owned()),
        )
        .route("/to-ftp", redirect("ftp://8.8.8.8/data.csv".to_owned()))
        .route("/to-file", redirect("file:///etc/passwd".to_owned()));
    let mirror = serve(MIRROR_IP, router).await;
    // The allowed server itself, and a redirect within it, are downloaded.
    download(&app, &token, &format!("{mirror}/data.csv")).await;
    download(&app, &token, &format!("{mirror}/to-mirror")).await;
    assert_eq!(app.stored_files().len(), 2);
    for path in [
        "/to-admin",
        "/to-decimal",
        "/to-mapped",
        "/to-localhost",
        "/to-metadata",
    ] {
        let url = format!("{mirror}{path}");
        assert_eq!(refusal_of(&app, &token, &url).await, REFUSED, "{path}");
    }
    let message = refusal_of(&app, &token, &format!("{mirror}/to-ftp")).await;
    assert!(message.contains("http or https"), "{message}");
    // A URL without a host is no redirect the client can follow: the 302 is the answer.
    let message = refusal_of(&app, &token, &format!("{mirror}/to-file")).await;
    assert!(message.contains("HTTP 302"), "{message}");
    // The allow-list admits 127.0.0.2 alone, not its neighbours.
    let next = format!("http://127.0.0.3:{port}/openapi.json");
    assert_eq!(refusal_of(&app, &token, &next).await, REFUSED);
}

#[tokio::test]
async fn a_host_name_on_the_allow_list_is_admitted_whatever_it_resolves_to() {
    let app = spawn_app_on(
        &fresh_database().await,
        &[("dataset_url_allow", json!("localhost"))],
    )
    .await;
    let token = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let port = admin_port(&app);
    let router = Router::new()
        .route("/data.csv", get(|| async { bytes_of_len(100) }))
        .route(
            "/to-admin",
            get(move || async move {
                let to = format!("http://127.0.0.1:{port}/openapi.json");
                (StatusCode::FOUND, [(LOCATION, to)])
            }),
        );
    let server = serve("127.0.0.1", router).await;
    let server_port = server.rsplit(':').next().unwrap();
    let id = download(
        &app,
        &token,
        &format!("http://localhost:{server_port}/data.csv"),
    )
    .await;
    let detail = json_ok(app.get(&format!("/datasets/{id}"), &token).await).await;
    assert_eq!(detail["size_bytes"], 100);
    // The name is allowed, not the address it resolves to, nor where it redirects.
    let by_address = format!("http://127.0.0.1:{server_port}/data.csv");
    assert_eq!(refusal_of(&app, &token, &by_address).await, REFUSED);
    let redirected = format!("http://localhost:{server_port}/to-admin");
    assert_eq!(refusal_of(&app, &token, &redirected).await, REFUSED);
}

#[tokio::test]
async fn credentials_in_a_dataset_url_are_sent_but_never_stored_or_echoed() {
    let app = spawn_app_on(&fresh_database().await, &[allow_mirror()]).await;
    let token = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    // `user:s3cret-pw` in basic auth.
    let router = Router::new().route(
        "/private.csv",
        get(|headers: HeaderMap| async move {
            if headers
                .get(AUTHORIZATION)
                .is_some_and(|v| v == "Basic dXNlcjpzM2NyZXQtcHc=")
            {
                bytes_of_len(100).into_response()
            } else {
                (StatusCode::UNAUTHORIZED, "who are you").into_response()
            }
        }),
    );
    let mirror = serve(MIRROR_IP, router).await;
    let host = mirror.trim_start_matches("http://");
    let id = download(
        &app,
        &token,
        &format!("http://user:s3cret-pw@{host}/private.csv"),
    )
    .await;
    let public = format!("http://{host}/private.csv");
    let detail = json_ok(app.get(&format!("/datasets/{id}"), &token).await).await;
    assert_eq!(detail["size_bytes"], 100);
    assert_eq!(detail["source_url"], public.as_str());
    let stored: Option<String> = sqlx::query_scalar("select source_url from datasets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(stored.as_deref(), Some(public.as_str()));

    // Failures name the URL without its credentials: refused, unreachable, HTTP errors.
    let port = admin_port(&app);
    let closed = closed_port(MIRROR_IP);
    for (url, reason) in [
        (format!("http://user:s3cret-pw@127.0.0.1:{port}/"), REFUSED),
        (
            format!("http://user:s3cret-pw@{MIRROR_IP}:{closed}/"),
            "cannot be reached",
        ),
        (
            format!("http://user:wrong-pw@{host}/private.csv"),
            "HTTP 401",
        ),
        (format!("http://user:s3cret-pw@{host}/missing"), "HTTP 404"),
    ] {
        let message = refusal_of(&app, &token, &url).await;
        assert!(message.contains(reason), "{url}: {message}");
        for secret in ["s3cret", "wrong-pw", "user:", "user@"] {
            assert!(!message.contains(secret), "{url}: {message}");
        }
    }
}
