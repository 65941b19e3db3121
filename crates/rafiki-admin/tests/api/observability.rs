//! Observability (issue 18, items 2 and 3): every answer names its request's id
//! (`x-request-id`: the client's when sane, else a fresh UUID v4), the admin's log lines of a
//! request carry it, and `RAFIKI_LOG_FORMAT` chooses text or JSON lines and refuses others.

use reqwest::header::HeaderValue;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::proxy::through_proxy;
use crate::helpers::{admin_process, fresh_database, spawn_app};

/// The `x-request-id` of an answer.
fn id_of(res: &reqwest::Response) -> String {
    res.headers()
        .get("x-request-id")
        .unwrap_or_else(|| panic!("no x-request-id in the answer to {}", res.url()))
        .to_str()
        .unwrap()
        .to_owned()
}

fn assert_fresh_uuid(id: &str) {
    let uuid = uuid::Uuid::parse_str(id).unwrap_or_else(|e| panic!("{id:?}: {e}"));
    assert_eq!(uuid.get_version_num(), 4, "{id}");
}

#[tokio::test]
async fn every_answer_names_a_fresh_id_or_the_clients_sane_one() {
    let app = spawn_app().await;
    // API routes, an unknown route, a refused token and a console page alike.
    for path in ["/health", "/users", "/no/such/route", "/console/login"] {
        let res = app.send(Method::GET, path, None, Value::Null).await;
        assert_fresh_uuid(&id_of(&res));
    }
    let first = id_of(&app.send(Method::GET, "/health", None, Value::Null).await);
    let second = id_of(&app.send(Method::GET, "/health", None, Value::Null).await);
    assert_ne!(first, second, "each request gets an id of its own");

    let ask = |id: HeaderValue| {
        app.client
            .get(format!("{}/users", app.address))
            .header("x-request-id", id)
            .send()
    };
    for sane in [
        "abc-123",
        "0af7651916cd43dd8448eb211c80319c",
        "lb:1/2+3=4_5.6",
    ] {
        let res = ask(HeaderValue::from_static(sane)).await.unwrap();
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(id_of(&res), sane);
    }
    let too_long = "a".repeat(129);
    for insane in [
        too_long.as_str(),
        "has space",
        "quote\"d",
        "semi;colon",
        "{json}",
    ] {
        let res = ask(HeaderValue::from_str(insane).unwrap()).await.unwrap();
        let id = id_of(&res);
        assert_ne!(id, insane);
        assert_fresh_uuid(&id);
    }
    let res = ask(HeaderValue::from_bytes("é".as_bytes()).unwrap())
        .await
        .unwrap();
    assert_fresh_uuid(&id_of(&res));
}

/// The admin as a process logging JSON lines: a request's lines, its handler's among them
/// (the handler runs in a task of its own), name the request's id in their span.
#[tokio::test]
async fn a_requests_json_log_lines_carry_its_id() {
    let (database_url, proxy) = through_proxy(&fresh_database().await).await;
    let extra = [
        ("admin_port", json!(admin_process::free_port())),
        ("database_acquire_timeout_ms", json!(500)),
    ];
    let app =
        admin_process::spawn_with_env(&database_url, &extra, &[("RAFIKI_LOG_FORMAT", "json")])
            .await;
    // With the database away, the health handler logs a warning.
    proxy.cut();
    let res = app
        .client
        .get(format!("{}/health", app.address))
        .header("x-request-id", "obs-health-1")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(id_of(&res), "obs-health-1");
    proxy.restore();

    let log = std::fs::read_to_string(app.data_dir.join("admin.log")).unwrap();
    let lines: Vec<Value> = log
        .lines()
        .map(|line| {
            serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
        })
        .collect();
    assert!(
        lines
            .iter()
            .any(|line| line["fields"]["message"].as_str() == Some("Rafiki admin listening")),
        "{log}"
    );
    let of_request: Vec<&Value> = lines
        .iter()
        .filter(|line| line["span"]["request_id"] == "obs-health-1")
        .collect();
    let messages: Vec<&str> = of_request
        .iter()
        .filter_map(|line| line["fields"]["message"].as_str())
        .collect();
    assert!(
        messages.contains(&"health check: database unreachable"),
        "{messages:?}\n{log}"
    );
    for line in &of_request {
        assert_eq!(line["span"]["method"], "GET", "{line}");
        assert_eq!(line["span"]["path"], "/health", "{line}");
    }
    app.shutdown().await;
}

#[test]
fn a_bad_log_format_stops_the_admin_at_start_and_says_why() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_rafiki-admin"))
        .env("RAFIKI_LOG_FORMAT", "xml")
        .arg("serve")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("RAFIKI_LOG_FORMAT must be `text` or `json`, not `xml`"),
        "{stderr}"
    );
}
