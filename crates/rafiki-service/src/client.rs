//! A service's side of the internal API (`docs/internal-api.md`): one method per call, each
//! retried on transient failures with a bounded backoff.
//!
//! Transient means the admin may answer differently later: a connection that could not be made
//! or broke, a timeout, a 5xx. A 401 means the admin stopped this service
//! ([`ClientError::Stopped`]); any other 4xx is the admin refusing the request
//! ([`ClientError::Rejected`]) and is never retried.

use std::path::Path;
use std::time::Duration;

use rafiki_types::internal::{
    EnvironmentReport, InferenceWorkerJob, KnobConfigAccepted, LogBatch, LogEntry, NextTrial,
    PredictorJob, SharedParametersAnswer, TrainWorkerJob, TrialOutcome, WorkerFailure,
};
use rafiki_types::proposal::ParamsType;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::de::DeserializeOwned;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::config::RetryPolicy;

/// A JSON call that takes longer than this is abandoned (and retried).
const CALL_TIMEOUT: Duration = Duration::from_secs(120);
/// A download that receives nothing for this long is abandoned (and retried).
const READ_TIMEOUT: Duration = Duration::from_secs(60);

/// Why a call to the admin did not succeed.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// 401: the token is unknown or the service was stopped. The worker exits quietly.
    #[error("the admin does not accept this service's token any more (stopped)")]
    Stopped,
    /// Another 4xx: the admin refused the request; retrying would not help.
    #[error("{call}: the admin answered {status} {name}: {message}")]
    Rejected {
        /// `METHOD path`.
        call: String,
        /// The HTTP status.
        status: u16,
        /// The envelope's `error` name, if there was an envelope.
        name: String,
        /// The envelope's `message`, or the raw body.
        message: String,
    },
    /// Transient failures until the retries ran out.
    #[error("{call}: gave up after {attempts} attempts: {last}")]
    Unavailable {
        /// `METHOD path`.
        call: String,
        /// Attempts made.
        attempts: u32,
        /// The last failure.
        last: String,
    },
    /// A 2xx whose body is not what the API promises.
    #[error("{call}: unexpected answer: {reason}")]
    BadAnswer {
        /// `METHOD path`.
        call: String,
        /// What was wrong.
        reason: String,
    },
    /// A downloaded blob does not match the checksum or size the job gave.
    #[error("{call}: downloaded {got_size} bytes with sha256 {got_sha256}, expected {size} bytes with {sha256}")]
    Checksum {
        /// `METHOD path`.
        call: String,
        /// Expected hex sha256.
        sha256: String,
        /// Expected size.
        size: i64,
        /// What arrived.
        got_sha256: String,
        /// How much arrived.
        got_size: u64,
    },
    /// Writing a download to disk failed.
    #[error("{call}: cannot write the download: {source}")]
    Io {
        /// `METHOD path`.
        call: String,
        /// The cause.
        source: std::io::Error,
    },
}

impl ClientError {
    /// The HTTP status of a refusal, if this is one.
    pub fn rejected_status(&self) -> Option<u16> {
        match self {
            ClientError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// The body of a call.
#[derive(Clone, Copy)]
enum Payload<'a> {
    Empty,
    Json(&'a serde_json::Value),
    Octets(&'a [u8]),
}

/// What one attempt ended in.
enum Attempt<T> {
    Done(T),
    /// Worth another try; the text says what happened.
    Transient(String),
    Fatal(ClientError),
}

/// A client of the admin's internal API for one service.
#[derive(Clone)]
pub struct AdminClient {
    http: reqwest::Client,
    base: String,
    token: String,
    retry: RetryPolicy,
}

impl AdminClient {
    /// A client of the admin at `base` (no trailing slash), authenticating with `token`.
    pub fn new(base: &str, token: &str, retry: RetryPolicy) -> Result<Self, ClientError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .read_timeout(READ_TIMEOUT)
            .user_agent(concat!("rafiki-worker/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ClientError::BadAnswer {
                call: "building the HTTP client".to_owned(),
                reason: e.to_string(),
            })?;
        Ok(AdminClient {
            http,
            base: base.trim_end_matches('/').to_owned(),
            token: token.to_owned(),
            retry,
        })
    }

    /// `GET /internal/train/job`.
    pub async fn train_job(&self) -> Result<TrainWorkerJob, ClientError> {
        self.call_json(Method::GET, "/internal/train/job", Payload::Empty)
            .await
    }

    /// `PUT /internal/train/knob_config`.
    pub async fn put_knob_config(
        &self,
        knob_config: &serde_json::Value,
    ) -> Result<KnobConfigAccepted, ClientError> {
        self.call_json(
            Method::PUT,
            "/internal/train/knob_config",
            Payload::Json(knob_config),
        )
        .await
    }

    /// `POST /internal/train/trials`.
    pub async fn next_trial(&self) -> Result<NextTrial, ClientError> {
        self.call_json(Method::POST, "/internal/train/trials", Payload::Empty)
            .await
    }

    /// `POST /internal/trials/{id}/logs`: with pruning on, the answer may say the trial must
    /// stop (docs/pruning.md).
    pub async fn post_logs(
        &self,
        trial: Uuid,
        entries: &[LogEntry],
    ) -> Result<rafiki_types::pruning::LogsAccepted, ClientError> {
        let body = serde_json::to_value(LogBatch {
            entries: entries.to_vec(),
        })
        .expect("log entries serialise");
        let path = format!("/internal/trials/{trial}/logs");
        self.call_json(Method::POST, &path, Payload::Json(&body))
            .await
    }

    /// `PUT /internal/trials/{id}/parameters` with the bytes of a parameters file.
    pub async fn put_parameters(&self, trial: Uuid, bytes: &[u8]) -> Result<(), ClientError> {
        let path = format!("/internal/trials/{trial}/parameters");
        self.call_acknowledged(Method::PUT, &path, Payload::Octets(bytes))
            .await
    }

    /// `GET /internal/train/parameters/{params_type}`: the saved parameters of this worker's
    /// sub-job that a `GLOBAL_BEST` / `GLOBAL_RECENT` trial starts from, if any.
    pub async fn shared_parameters(
        &self,
        params_type: ParamsType,
    ) -> Result<SharedParametersAnswer, ClientError> {
        let path = format!("/internal/train/parameters/{}", params_type.as_str());
        self.call_json(Method::GET, &path, Payload::Empty).await
    }

    /// `POST /internal/trials/{id}/finish`.
    pub async fn finish_trial(
        &self,
        trial: Uuid,
        outcome: &TrialOutcome,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_value(outcome).expect("outcomes serialise");
        let path = format!("/internal/trials/{trial}/finish");
        self.call_acknowledged(Method::POST, &path, Payload::Json(&body))
            .await
    }

    /// `POST /internal/train/fail`: this model cannot be tuned.
    pub async fn fail(&self, error: &str) -> Result<(), ClientError> {
        self.report_failure("/internal/train/fail", error).await
    }

    /// `POST /internal/environment`: how this service's dependencies were provided (train and
    /// inference workers alike).
    pub async fn report_environment(&self, report: &EnvironmentReport) -> Result<(), ClientError> {
        let body = serde_json::to_value(report).expect("reports serialise");
        self.call_acknowledged(Method::POST, "/internal/environment", Payload::Json(&body))
            .await
    }

    /// `GET /internal/inference/job`: the trial an inference worker serves.
    pub async fn inference_job(&self) -> Result<InferenceWorkerJob, ClientError> {
        self.call_json(Method::GET, "/internal/inference/job", Payload::Empty)
            .await
    }

    /// `POST /internal/inference/ready`: the model is loaded and the port serves.
    pub async fn inference_ready(&self) -> Result<(), ClientError> {
        self.call_acknowledged(Method::POST, "/internal/inference/ready", Payload::Empty)
            .await
    }

    /// `POST /internal/inference/fail`: the model cannot be served.
    pub async fn inference_fail(&self, error: &str) -> Result<(), ClientError> {
        self.report_failure("/internal/inference/fail", error).await
    }

    /// A worker's failure, `error`, to the fail call of its kind (`path`).
    async fn report_failure(&self, path: &str, error: &str) -> Result<(), ClientError> {
        let body = serde_json::to_value(WorkerFailure {
            error: error.to_owned(),
        })
        .expect("failures serialise");
        self.call_acknowledged(Method::POST, path, Payload::Json(&body))
            .await
    }

    /// `GET /internal/predictor/job`: a predictor's job and its serving workers (the admin
    /// derives the predictor's status from these calls).
    pub async fn predictor_job(&self) -> Result<PredictorJob, ClientError> {
        self.call_json(Method::GET, "/internal/predictor/job", Payload::Empty)
            .await
    }

    /// Downloads `GET {path}` into `dest` (created or truncated), checking its sha256 and size.
    /// On a mismatch `dest` may hold the wrong bytes; the caller removes it.
    pub async fn download(
        &self,
        path: &str,
        dest: &Path,
        sha256: &str,
        size: i64,
    ) -> Result<(), ClientError> {
        let call = call_name(path, "GET");
        let (got_sha256, got_size) = self
            .with_retries(&call, || async {
                let response = match self.request(Method::GET, path).send().await {
                    Ok(response) => response,
                    Err(e) => return Attempt::Transient(describe(&e)),
                };
                let mut response = match check_status(&call, response).await {
                    Ok(response) => response,
                    Err(outcome) => return outcome,
                };
                let mut file = match tokio::fs::File::create(dest).await {
                    Ok(file) => file,
                    Err(source) => {
                        return Attempt::Fatal(ClientError::Io {
                            call: call.clone(),
                            source,
                        })
                    }
                };
                let mut hasher = Sha256::new();
                let mut written = 0u64;
                loop {
                    match response.chunk().await {
                        Ok(Some(chunk)) => {
                            hasher.update(&chunk);
                            written += chunk.len() as u64;
                            if let Err(source) = file.write_all(&chunk).await {
                                return Attempt::Fatal(ClientError::Io {
                                    call: call.clone(),
                                    source,
                                });
                            }
                        }
                        Ok(None) => break,
                        Err(e) => return Attempt::Transient(describe(&e)),
                    }
                }
                if let Err(source) = file.sync_all().await {
                    return Attempt::Fatal(ClientError::Io {
                        call: call.clone(),
                        source,
                    });
                }
                Attempt::Done((hex::encode(hasher.finalize()), written))
            })
            .await?;
        if !got_sha256.eq_ignore_ascii_case(sha256) || i64::try_from(got_size) != Ok(size) {
            return Err(ClientError::Checksum {
                call,
                sha256: sha256.to_owned(),
                size,
                got_sha256,
                got_size,
            });
        }
        Ok(())
    }

    fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base))
            .bearer_auth(&self.token)
    }

    /// A call whose answer only acknowledges it: done once the admin accepted it.
    async fn call_acknowledged(
        &self,
        method: Method,
        path: &str,
        payload: Payload<'_>,
    ) -> Result<(), ClientError> {
        self.call_json::<serde_json::Value>(method, path, payload)
            .await
            .map(drop)
    }

    async fn call_json<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        payload: Payload<'_>,
    ) -> Result<T, ClientError> {
        let call = call_name(path, method.as_str());
        let cleaned;
        let payload = match payload {
            Payload::Json(body) if has_nul(body) => {
                cleaned = without_nul(body);
                Payload::Json(&cleaned)
            }
            other => other,
        };
        self.with_retries(&call, || {
            let request = self.request(method.clone(), path).timeout(CALL_TIMEOUT);
            let request = match payload {
                Payload::Empty => request,
                Payload::Json(body) => request.json(body),
                Payload::Octets(bytes) => request
                    .header(reqwest::header::CONTENT_TYPE, "application/octet-stream")
                    .body(bytes.to_vec()),
            };
            let call = &call;
            async move {
                let response = match request.send().await {
                    Ok(response) => response,
                    Err(e) => return Attempt::Transient(describe(&e)),
                };
                let response = match check_status(call, response).await {
                    Ok(response) => response,
                    Err(outcome) => return outcome,
                };
                match response.bytes().await {
                    Err(e) => Attempt::Transient(describe(&e)),
                    Ok(bytes) => match serde_json::from_slice(&bytes) {
                        Ok(value) => Attempt::Done(value),
                        Err(e) => Attempt::Fatal(ClientError::BadAnswer {
                            call: call.clone(),
                            reason: format!("{e}: {}", preview(&bytes)),
                        }),
                    },
                }
            }
        })
        .await
    }

    async fn with_retries<T, F, Fut>(&self, call: &str, mut attempt: F) -> Result<T, ClientError>
    where
        F: FnMut() -> Fut,
        Fut: std::future::Future<Output = Attempt<T>>,
    {
        let attempts = self.retry.attempts.max(1);
        let mut number = 1;
        loop {
            match attempt().await {
                Attempt::Done(value) => return Ok(value),
                Attempt::Fatal(error) => return Err(error),
                Attempt::Transient(last) if number >= attempts => {
                    return Err(ClientError::Unavailable {
                        call: call.to_owned(),
                        attempts,
                        last,
                    })
                }
                Attempt::Transient(last) => {
                    let wait = self.retry.backoff(number);
                    tracing::warn!(
                        call,
                        attempt = number,
                        ?wait,
                        "transient failure, retrying: {last}"
                    );
                    tokio::time::sleep(wait).await;
                    number += 1;
                }
            }
        }
    }
}

fn call_name(path: &str, method: &str) -> String {
    format!("{method} {path}")
}

/// Sorts an answer by status: 2xx goes on, 401 is [`ClientError::Stopped`], other 4xx a
/// refusal, anything else transient.
async fn check_status<T>(
    call: &str,
    response: reqwest::Response,
) -> Result<reqwest::Response, Attempt<T>> {
    let status = response.status();
    if status.is_success() {
        return Ok(response);
    }
    if status == StatusCode::UNAUTHORIZED {
        return Err(Attempt::Fatal(ClientError::Stopped));
    }
    let body = response.bytes().await.unwrap_or_default();
    if status.is_client_error() {
        let envelope: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let field = |name: &str| {
            envelope
                .as_ref()
                .and_then(|v| v.get(name))
                .and_then(|v| v.as_str())
                .map(str::to_owned)
        };
        return Err(Attempt::Fatal(ClientError::Rejected {
            call: call.to_owned(),
            status: status.as_u16(),
            name: field("error").unwrap_or_default(),
            message: field("message").unwrap_or_else(|| preview(&body)),
        }));
    }
    Err(Attempt::Transient(format!("{status}: {}", preview(&body))))
}

/// The start of a body, for error messages.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(300).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

/// A reqwest error with its causes (the top level alone often just says "error sending request").
pub fn describe(error: &reqwest::Error) -> String {
    let mut text = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether a JSON value holds a NUL character in a string or a key.
fn has_nul(value: &serde_json::Value) -> bool {
    use serde_json::Value;
    match value {
        Value::String(text) => text.contains('\0'),
        Value::Array(items) => items.iter().any(has_nul),
        Value::Object(map) => map
            .iter()
            .any(|(key, item)| key.contains('\0') || has_nul(item)),
        _ => false,
    }
}

/// `value` with every NUL character replaced by U+FFFD. The admin refuses text with NULs, which
/// Postgres cannot store; what a model reports (log lines, errors, knob names) may hold them,
/// and losing one character is better than losing the whole call.
fn without_nul(value: &serde_json::Value) -> serde_json::Value {
    use serde_json::Value;
    let clean = |text: &str| text.replace('\0', "\u{fffd}");
    match value {
        Value::String(text) => Value::String(clean(text)),
        Value::Array(items) => Value::Array(items.iter().map(without_nul).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(key, item)| (clean(key), without_nul(item)))
                .collect(),
        ),
        other => other.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nul_characters_are_replaced_in_strings_and_keys_only() {
        let body = serde_json::json!({"a\u{0}": ["x\u{0}y", 1, null], "b": {"c": "\u{0}"}});
        assert!(has_nul(&body));
        let clean = without_nul(&body);
        assert!(!has_nul(&clean));
        assert_eq!(
            clean,
            serde_json::json!({"a\u{fffd}": ["x\u{fffd}y", 1, null], "b": {"c": "\u{fffd}"}})
        );
        assert!(!has_nul(&serde_json::json!({"a": "\\u0000"})));
    }
}
