//! Postgres outages (issue 14, item 4): with the database unreachable, `GET /health` answers 503
//! `"database": "unreachable"` and API routes 503 `ServiceUnavailableError` with `Retry-After`,
//! within the acquire timeout rather than after sqlx's 30 s; once the database is back, the same
//! requests succeed and nothing is lost.
//!
//! The admin reaches its database through a TCP proxy of the test's own, which can be cut:
//! while cut, it closes every open connection and every new one at once.

use std::net::SocketAddr;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::helpers::{assert_error, fresh_database, spawn_app_on};
use crate::uploads::{json_ok, RafikiForm};

/// A TCP proxy to the test database's server that can be cut and restored.
struct Proxy {
    address: SocketAddr,
    cut: watch::Sender<bool>,
}

impl Proxy {
    /// Forwards a fresh port of 127.0.0.1 to `target` (`host:port`).
    async fn start(target: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (cut, cut_state) = watch::channel(false);
        tokio::spawn(async move {
            loop {
                let Ok((mut client, _)) = listener.accept().await else {
                    continue;
                };
                if *cut_state.borrow() {
                    drop(client);
                    continue;
                }
                let target = target.clone();
                let mut cut_state = cut_state.clone();
                tokio::spawn(async move {
                    let Ok(mut server) = TcpStream::connect(&target).await else {
                        return;
                    };
                    // Ends (closing both sides) when either side closes, or at the cut.
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut client, &mut server) => {}
                        _ = cut_state.wait_for(|cut| *cut) => {}
                    }
                });
            }
        });
        Proxy { address, cut }
    }

    /// Closes every connection, and refuses new ones until [`Proxy::restore`].
    fn cut(&self) {
        self.cut.send_replace(true);
    }

    /// Forwards again.
    fn restore(&self) {
        self.cut.send_replace(false);
    }
}

/// `database_url` with its host and port replaced by the proxy's, and the proxy.
async fn through_proxy(database_url: &str) -> (String, Proxy) {
    let mut url = reqwest::Url::parse(database_url).expect("a database URL");
    let target = format!(
        "{}:{}",
        url.host_str().expect("a host in the database URL"),
        url.port().unwrap_or(5432)
    );
    let proxy = Proxy::start(target).await;
    url.set_host(Some("127.0.0.1")).unwrap();
    url.set_port(Some(proxy.address.port())).unwrap();
    (url.to_string(), proxy)
}

#[tokio::test]
async fn an_unreachable_database_answers_503_at_once_and_requests_work_again_when_it_is_back() {
    let (database_url, proxy) = through_proxy(&fresh_database().await).await;
    let app = spawn_app_on(
        &database_url,
        &[("database_acquire_timeout_ms", json!(500))],
    )
    .await;
    // Logging in needs the database: before the cut.
    let token = app.user("app@example.com", "APP_DEVELOPER").await;
    let form = RafikiForm::new()
        .text("name", "kept")
        .text("task", "IMAGE_CLASSIFICATION")
        .file("dataset", b"some bytes");
    let created = json_ok(app.post_form("/datasets", &token, form).await).await;
    let id = created["id"].as_str().unwrap().to_owned();

    proxy.cut();

    let res = app.send(Method::GET, "/health", None, Value::Null).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    let health: Value = res.json().await.unwrap();
    assert_eq!(health["status"], "unavailable", "{health}");
    assert_eq!(health["database"], "unreachable", "{health}");

    for path in ["/datasets".to_owned(), format!("/datasets/{id}")] {
        let res = app.get(&path, &token).await;
        let retry_after = res.headers().get("retry-after").cloned();
        let message = assert_error(
            res,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceUnavailableError",
        )
        .await;
        assert_eq!(
            retry_after.as_ref().map(|v| v.to_str().unwrap()),
            Some("5"),
            "GET {path}: Retry-After"
        );
        assert_eq!(message, "The database is unreachable; try again shortly.");
    }
    // A write fails the same way, and leaves nothing half-done behind.
    let res = app.delete(&format!("/datasets/{id}"), &token).await;
    assert_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceUnavailableError",
    )
    .await;

    proxy.restore();

    // Connections the cut broke are dropped by the pool's check before use: the very next
    // requests succeed, and nothing was lost.
    let res = app.send(Method::GET, "/health", None, Value::Null).await;
    assert_eq!(res.status(), StatusCode::OK);
    let health: Value = res.json().await.unwrap();
    assert_eq!(health["database"], "ok", "{health}");
    let listed = json_ok(app.get("/datasets", &token).await).await;
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["id"], id.as_str());
    let detail = json_ok(app.get(&format!("/datasets/{id}"), &token).await).await;
    assert_eq!(detail["name"], "kept");
    app.shutdown().await;
}
