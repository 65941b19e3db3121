//! Helpers of the dataset and model tests: multipart bodies built byte for byte as Rafiki's
//! Python client (`requests`) builds them, a local HTTP server for `dataset_url` downloads,
//! and checks that failed uploads leave nothing behind.

use std::path::{Path, PathBuf};

use axum::Router;
use reqwest::{Response, StatusCode};
use serde_json::Value;

use crate::helpers::TestApp;

/// A `multipart/form-data` body exactly as `requests.post(url, data=..., files=...)` encodes
/// it: text fields first (no filename, no Content-Type), then files given as raw bytes, whose
/// filename is the field name; a 32-hex-digit boundary.
pub struct RafikiForm {
    boundary: String,
    body: Vec<u8>,
}

impl RafikiForm {
    /// An empty form.
    pub fn new() -> Self {
        RafikiForm {
            boundary: uuid::Uuid::new_v4().simple().to_string(),
            body: Vec::new(),
        }
    }

    /// A text field (`data={name: value}`).
    pub fn text(mut self, name: &str, value: &str) -> Self {
        self.part(&format!("form-data; name=\"{name}\""), value.as_bytes());
        self
    }

    /// A file given as bytes (`files={name: bytes}`): requests names the file after the field.
    pub fn file(self, name: &str, bytes: &[u8]) -> Self {
        self.named_file(name, name, bytes)
    }

    /// A file with an explicit filename (`files={name: (filename, bytes)}`).
    pub fn named_file(mut self, name: &str, filename: &str, bytes: &[u8]) -> Self {
        self.part(
            &format!("form-data; name=\"{name}\"; filename=\"{filename}\""),
            bytes,
        );
        self
    }

    fn part(&mut self, disposition: &str, data: &[u8]) {
        self.body
            .extend_from_slice(format!("--{}\r\n", self.boundary).as_bytes());
        self.body
            .extend_from_slice(format!("Content-Disposition: {disposition}\r\n\r\n").as_bytes());
        self.body.extend_from_slice(data);
        self.body.extend_from_slice(b"\r\n");
    }

    /// The Content-Type header and the body.
    pub fn finish(mut self) -> (String, Vec<u8>) {
        self.body
            .extend_from_slice(format!("--{}--\r\n", self.boundary).as_bytes());
        (
            format!("multipart/form-data; boundary={}", self.boundary),
            self.body,
        )
    }
}

impl TestApp {
    /// POSTs a form with a bearer token.
    pub async fn post_form(&self, path: &str, token: &str, form: RafikiForm) -> Response {
        let (content_type, body) = form.finish();
        self.client
            .post(format!("{}{path}", self.address))
            .bearer_auth(token)
            .header("content-type", content_type)
            .body(body)
            .send()
            .await
            .expect("request sent")
    }

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

    /// Every file under the data directory (its lock file aside), temporaries included.
    pub fn stored_files(&self) -> Vec<PathBuf> {
        files_under(&self.data_dir)
    }

    /// Rows in `table`.
    pub async fn count_rows(&self, table: &str) -> i64 {
        sqlx::query_scalar(sqlx::AssertSqlSafe(format!("select count(*) from {table}")))
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }

    /// Asserts that there are no datasets, no models and no stored files at all.
    pub async fn assert_nothing_stored(&self) {
        assert_eq!(self.count_rows("datasets").await, 0, "no dataset rows");
        assert_eq!(self.count_rows("models").await, 0, "no model rows");
        assert_eq!(self.stored_files(), Vec::<PathBuf>::new(), "no files");
    }

    /// The id of the user with this email.
    pub async fn user_id(&self, email: &str) -> uuid::Uuid {
        sqlx::query_scalar("select id from users where email = $1")
            .bind(email)
            .fetch_one(&self.pool)
            .await
            .unwrap()
    }
}

fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            out.extend(files_under(&path));
        } else if path.file_name().unwrap() != ".lock" {
            out.push(path);
        }
    }
    out.sort();
    out
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

/// Serves `router` on a free port of `ip`; returns its base URL.
pub async fn serve(ip: &str, router: Router) -> String {
    let listener = tokio::net::TcpListener::bind((ip, 0)).await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, router).await });
    format!("http://{address}")
}

/// Deterministic, non-repeating-looking test bytes.
pub fn bytes_of_len(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}
