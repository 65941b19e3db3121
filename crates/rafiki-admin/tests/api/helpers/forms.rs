//! Uploads as Rafiki's Python client (`requests`) sends them: multipart bodies built byte for
//! byte ([`RafikiForm`], posted with [`TestApp::post_form`]), the url-encoded body of a
//! `dataset_url` upload ([`rafiki_url_request`]), and the bytes the tests upload.

use reqwest::Response;

use super::TestApp;

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
}

/// `client.create_dataset(name, task, dataset_url=...)` of Rafiki's client: with no file,
/// requests sends the fields url-encoded.
pub async fn rafiki_url_request(app: &TestApp, token: &str, fields: &[(&str, &str)]) -> Response {
    app.client
        .post(format!("{}/datasets", app.address))
        .bearer_auth(token)
        .form(fields)
        .send()
        .await
        .unwrap()
}

/// Deterministic, non-repeating-looking test bytes.
pub fn bytes_of_len(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8)
        .collect()
}
