//! Requests to a test admin beyond [`TestApp::send`] (GET and DELETE with a token, raw bytes on
//! a connection of their own) and checks of its answers.

use std::time::Duration;

use reqwest::{Response, StatusCode};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::TestApp;

impl TestApp {
    /// GETs raw bytes with a bearer token.
    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.client
            .get(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }

    /// GETs with a bearer token and returns the 200 answer's JSON.
    pub async fn get_json(&self, path: &str, token: &str) -> Value {
        json_ok(self.get(path, token).await).await
    }

    /// DELETEs with a bearer token.
    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.client
            .delete(format!("{}{path}", self.address))
            .bearer_auth(token)
            .send()
            .await
            .expect("request sent")
    }
}

/// A 200 JSON answer with `Content-Type: application/json` exactly.
pub async fn json_ok(res: Response) -> Value {
    let status = res.status();
    let content_type = res.headers().get("content-type").cloned();
    let text = res.text().await.unwrap();
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(content_type.unwrap(), "application/json");
    serde_json::from_str(&text).unwrap()
}

/// The keys of a JSON object, sorted.
pub fn keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_object()
        .unwrap_or_else(|| panic!("an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort();
    keys
}

/// Sends `bytes` on a new connection, then waits for the server to close it; returns what it
/// answered. Fails if the connection is still open after 30 s (the server did not cut it off).
pub async fn send_and_wait_for_close(app: &TestApp, bytes: &[u8]) -> String {
    let address = app.address.trim_start_matches("http://");
    let mut stream = TcpStream::connect(address).await.unwrap();
    stream.write_all(bytes).await.unwrap();
    let mut answer = Vec::new();
    tokio::time::timeout(Duration::from_secs(30), stream.read_to_end(&mut answer))
        .await
        .expect("the server closes the connection")
        .expect("the connection ends cleanly");
    String::from_utf8_lossy(&answer).into_owned()
}
