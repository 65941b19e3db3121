//! The job's serving workers as the predictor last heard of them, and the fan-out of a request
//! to all of them.
//!
//! [`Predictor::predict`] sends the request's queries to every worker at once over pooled
//! keep-alive connections, each with its own timeout, keeps the answers that came back whole
//! (a 2xx with one prediction per query) and combines them with the task's [`Rule`]. A worker
//! that fails, is too slow or answers with the wrong count is left out of that request. When
//! no worker answers, the request fails with a [`PredictError`] that says why: the models' own
//! errors when they raised, else how the workers failed. The worker list is swapped as a whole
//! when the admin's answer changes, so a request always sees one consistent list.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::future::join_all;
use rafiki_service::predict_secret::PredictSecret;
use rafiki_service::request_id::{self, RequestId};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::internal::{
    PredictorJob, PredictorWorker, WorkerPredictRequest, WorkerPredictResponse,
};
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use uuid::Uuid;

use crate::combine::{combine, Answer, Rule};
use crate::metrics::{PredictorMetrics, WorkerFailure};

/// A worker that keeps failing is logged at `warn` at most this often (else at `debug`).
const WARN_EVERY: Duration = Duration::from_secs(5);

/// At most this many failing models are named in one error message.
const MAX_MODELS_NAMED: usize = 5;
/// A model's error message is cut to this many characters in the predictor's answer.
const MAX_MODEL_MESSAGE_CHARS: usize = 300;

/// Why a request got no predictions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictError {
    /// No worker of the job serves (yet).
    #[error("No inference worker of this job is serving yet.")]
    NoWorkers,
    /// No worker answered, and at least one of them because its model failed on the request.
    /// The other failures are only counted: the models' errors are what the owner must fix.
    #[error("{}", describe_model_failures(.failures, *.others))]
    ModelsFailed {
        /// The models that failed, in the admin's order of their workers.
        failures: Vec<ModelFailure>,
        /// How many other workers gave no answer (timeouts, unreachable, bad answers).
        others: usize,
    },
    /// No worker answered, and no model failed: the workers timed out, could not be reached
    /// or answered something other than one prediction per query.
    #[error("None of the job's {asked} inference workers answered with one prediction per query: {}.", describe_counts(*.timed_out, *.unreachable, *.bad_answers))]
    NoneAnswered {
        /// How many workers were asked.
        asked: usize,
        /// How many gave no whole answer within the timeout.
        timed_out: usize,
        /// How many could not be connected to, or dropped the connection.
        unreachable: usize,
        /// How many answered with another status, an unreadable body or the wrong count.
        bad_answers: usize,
    },
}

/// A model that failed on a request, as its inference worker reported it.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFailure {
    /// The model's name.
    pub model_name: String,
    /// The trial its worker serves.
    pub trial_id: Uuid,
    /// The worker's message: the first line only, at most [`MAX_MODEL_MESSAGE_CHARS`]
    /// characters (e.g. `Model.predict() raised ValueError: bad query`).
    pub message: String,
}

fn describe_model_failures(failures: &[ModelFailure], others: usize) -> String {
    let mut text = failures
        .iter()
        .take(MAX_MODELS_NAMED)
        .map(|f| {
            format!(
                "Model \"{}\" (trial {}) failed on this request: {}",
                f.model_name, f.trial_id, f.message
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    if failures.len() > MAX_MODELS_NAMED {
        text.push_str(&format!(
            "; and {} more models failed",
            failures.len() - MAX_MODELS_NAMED
        ));
    }
    if others > 0 {
        text.push_str(&format!(
            " ({} other {} gave no answer)",
            others,
            plural(others, "inference worker")
        ));
    }
    text
}

fn describe_counts(timed_out: usize, unreachable: usize, bad_answers: usize) -> String {
    [
        (timed_out, "did not answer in time"),
        (unreachable, "could not be reached"),
        (
            bad_answers,
            "answered with an error or the wrong number of predictions",
        ),
    ]
    .into_iter()
    .filter(|(n, _)| *n > 0)
    .map(|(n, what)| format!("{n} {what}"))
    .collect::<Vec<_>>()
    .join(", ")
}

fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        noun.to_owned()
    } else {
        format!("{noun}s")
    }
}

/// Why one worker's answer was left out of a request.
#[derive(Debug, Clone, PartialEq)]
enum Failure {
    /// The worker answered 500 `InternalServerError`: its model failed on the batch (it raised,
    /// returned something unusable, or its Python process died). The worker's message.
    Model(String),
    /// No whole answer within the timeout.
    Timeout,
    /// No connection, or it broke; the cause, for the log.
    Unreachable(String),
    /// Another status, an unreadable body or the wrong number of predictions; what, for the
    /// log.
    BadAnswer(String),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Model(message) => write!(f, "the model failed: {message}"),
            Failure::Timeout => f.write_str("no whole answer within RAFIKI_PREDICT_TIMEOUT_MS"),
            Failure::Unreachable(cause) | Failure::BadAnswer(cause) => f.write_str(cause),
        }
    }
}

impl PredictError {
    /// The error of a request that no worker answered, from each asked worker's failure.
    fn from_failures(failures: Vec<(&PredictorWorker, Failure)>) -> PredictError {
        let asked = failures.len();
        let mut models = Vec::new();
        let (mut timed_out, mut unreachable, mut bad_answers) = (0, 0, 0);
        for (worker, failure) in failures {
            match failure {
                Failure::Model(message) => models.push(ModelFailure {
                    model_name: worker.model_name.clone(),
                    trial_id: worker.trial_id,
                    message: one_short_line(&message),
                }),
                Failure::Timeout => timed_out += 1,
                Failure::Unreachable(_) => unreachable += 1,
                Failure::BadAnswer(_) => bad_answers += 1,
            }
        }
        if models.is_empty() {
            PredictError::NoneAnswered {
                asked,
                timed_out,
                unreachable,
                bad_answers,
            }
        } else {
            let others = asked - models.len();
            PredictError::ModelsFailed {
                failures: models,
                others,
            }
        }
    }
}

/// The first line of `message`, cut to [`MAX_MODEL_MESSAGE_CHARS`]: a worker sends one line,
/// and whatever else a message holds (a crashed runtime's stderr) stays in the worker's log.
fn one_short_line(message: &str) -> String {
    let line = message.lines().next().unwrap_or_default().trim_end();
    let mut cut: String = line.chars().take(MAX_MODEL_MESSAGE_CHARS).collect();
    if cut.len() < line.len() {
        cut.push('…');
    }
    cut
}

/// One serving worker.
#[derive(Debug)]
pub struct Member {
    /// What the admin said about it.
    pub worker: PredictorWorker,
    /// Parsed once: parsing a URL per request shows in profiles.
    predict_url: reqwest::Url,
    /// When it was last logged at `warn`, in ms since the predictor started (+1; 0 = never).
    warned_at: AtomicU64,
}

/// The job's task and serving workers.
#[derive(Debug, Default)]
pub struct Ensemble {
    /// The inference job, once known.
    pub inference_job_id: Option<Uuid>,
    /// The job's task (it picks the rule).
    pub task: String,
    /// How answers are combined.
    pub rule: Option<Rule>,
    /// The workers serving now, in the admin's order.
    pub members: Vec<Member>,
    /// The workers as the admin listed them (to notice changes).
    listed: Vec<PredictorWorker>,
}

impl Ensemble {
    /// The ensemble of `job`; a worker whose URL does not parse is left out (and logged).
    fn from_job(job: PredictorJob) -> Ensemble {
        Ensemble {
            inference_job_id: Some(job.inference_job_id),
            rule: Some(Rule::for_task(&job.task)),
            task: job.task,
            listed: job.workers.clone(),
            members: job
                .workers
                .into_iter()
                .filter_map(|worker| {
                    let url = format!("{}/predict", worker.url.trim_end_matches('/'));
                    match reqwest::Url::parse(&url) {
                        Ok(predict_url) => Some(Member {
                            predict_url,
                            worker,
                            warned_at: AtomicU64::new(0),
                        }),
                        Err(e) => {
                            tracing::error!(url = %worker.url, "leaving out a worker whose URL is invalid: {e}");
                            None
                        }
                    }
                })
                .collect(),
        }
    }

    /// Whether `job` describes this very ensemble.
    fn same_as(&self, job: &PredictorJob) -> bool {
        self.inference_job_id == Some(job.inference_job_id)
            && self.task == job.task
            && self.listed == job.workers
    }
}

/// The predictor's state, shared by its HTTP handlers and the loop that follows the job.
pub struct Predictor {
    http: reqwest::Client,
    timeout: Duration,
    ensemble: RwLock<Arc<Ensemble>>,
    started: Instant,
    metrics: PredictorMetrics,
}

impl Predictor {
    /// A predictor with no workers yet, giving each worker `timeout` per request and sending
    /// each the job's `secret`, without which workers refuse to answer.
    pub fn new(timeout: Duration, secret: &PredictSecret) -> Result<Predictor, reqwest::Error> {
        let mut authorization = HeaderValue::try_from(secret.header_value())
            .expect("a predict secret has no spaces or control characters");
        authorization.set_sensitive(true);
        let http = reqwest::Client::builder()
            .default_headers(HeaderMap::from_iter([(AUTHORIZATION, authorization)]))
            // Workers are local addresses; a proxy from the environment must not apply.
            .no_proxy()
            .tcp_nodelay(true)
            .connect_timeout(timeout.min(Duration::from_secs(5)))
            .pool_idle_timeout(Duration::from_secs(60))
            .user_agent(concat!("rafiki-predictor/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Predictor {
            http,
            timeout,
            ensemble: RwLock::new(Arc::new(Ensemble::default())),
            started: Instant::now(),
            metrics: PredictorMetrics::new(),
        })
    }

    /// This predictor's metrics.
    pub fn metrics(&self) -> &PredictorMetrics {
        &self.metrics
    }

    /// The current task and workers.
    pub fn current(&self) -> Arc<Ensemble> {
        self.ensemble
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }

    /// Takes the admin's latest description of the job; whether anything changed.
    pub fn update(&self, job: PredictorJob) -> bool {
        if self.current().same_as(&job) {
            return false;
        }
        let ensemble = Ensemble::from_job(job);
        tracing::info!(
            inference_job = ?ensemble.inference_job_id,
            task = %ensemble.task,
            rule = ?ensemble.rule,
            workers = ?ensemble.members.iter().map(|m| (&m.worker.url, m.worker.score)).collect::<Vec<_>>(),
            "the job's serving workers changed"
        );
        *self
            .ensemble
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Arc::new(ensemble);
        true
    }

    /// One combined prediction per query, in order. Each worker is asked under `request_id`,
    /// so that its log lines name the request that the predictor's do.
    pub async fn predict(
        &self,
        queries: Vec<Value>,
        request_id: &RequestId,
    ) -> Result<Vec<Value>, PredictError> {
        self.metrics.batch(queries.len());
        let ensemble = self.current();
        let (Some(rule), false) = (ensemble.rule, ensemble.members.is_empty()) else {
            return Err(PredictError::NoWorkers);
        };
        let count = queries.len();
        if count == 0 {
            return Ok(Vec::new());
        }
        // Serialised once; every worker gets the same bytes.
        let body = Bytes::from(
            serde_json::to_vec(&WorkerPredictRequest { queries }).expect("JSON values serialise"),
        );
        let results =
            join_all(
                ensemble.members.iter().enumerate().map(|(index, member)| {
                    self.ask(index, member, body.clone(), count, request_id)
                }),
            )
            .await;
        let mut answers = Vec::new();
        let mut failures = Vec::new();
        for (member, result) in ensemble.members.iter().zip(results) {
            match result {
                Ok(answer) => answers.push(answer),
                Err(failure) => failures.push((&member.worker, failure)),
            }
        }
        // Every kept answer has one prediction per query, so any answer combines.
        combine(rule, answers, count).ok_or_else(|| PredictError::from_failures(failures))
    }

    /// Asks the member at `index` of the ensemble, timed and counted in the metrics.
    async fn ask(
        &self,
        index: usize,
        member: &Member,
        body: Bytes,
        count: usize,
        request_id: &RequestId,
    ) -> Result<Answer, Failure> {
        let asked = Instant::now();
        let result = self.try_ask(member, body, count, request_id).await;
        let failure = result.as_ref().err().map(|failure| match failure {
            Failure::Timeout => WorkerFailure::Timeout,
            _ => WorkerFailure::Error,
        });
        self.metrics.worker_called(index, asked.elapsed(), failure);
        match result {
            Ok(predictions) => Ok(Answer {
                score: member.worker.score,
                predictions,
            }),
            Err(failure) => {
                self.report(member, &failure);
                Err(failure)
            }
        }
    }

    async fn try_ask(
        &self,
        member: &Member,
        body: Bytes,
        count: usize,
        request_id: &RequestId,
    ) -> Result<Vec<Value>, Failure> {
        let response = self
            .http
            .post(member.predict_url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(&request_id::HEADER, request_id.header_value())
            .body(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| failure_of(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| failure_of(&e))?;
        if !status.is_success() {
            // A model error is the worker's 500 with the contract's envelope; a 500 without
            // it (a proxy, a crash of the worker itself) is not the model's.
            return Err(match serde_json::from_slice::<ErrorBody>(&bytes) {
                Ok(ErrorBody {
                    error: ErrorName::InternalServerError,
                    message,
                }) if status == reqwest::StatusCode::INTERNAL_SERVER_ERROR => {
                    Failure::Model(message)
                }
                _ => Failure::BadAnswer(format!("answered {status}: {}", preview(&bytes))),
            });
        }
        let answer: WorkerPredictResponse = serde_json::from_slice(&bytes).map_err(|e| {
            Failure::BadAnswer(format!("unreadable answer ({e}): {}", preview(&bytes)))
        })?;
        if answer.predictions.len() != count {
            return Err(Failure::BadAnswer(format!(
                "answered {} predictions for {count} queries",
                answer.predictions.len()
            )));
        }
        Ok(answer.predictions)
    }

    /// Logs a worker left out of a request: at `warn` once per [`WARN_EVERY`], else `debug`,
    /// so a worker that is down does not flood the log at the request rate.
    fn report(&self, member: &Member, reason: &Failure) {
        let now = self.started.elapsed().as_millis() as u64 + 1;
        let last = member.warned_at.load(Ordering::Relaxed);
        let due = last == 0 || now.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && member
                .warned_at
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                worker = %member.worker.url,
                service = %member.worker.service_id,
                "worker left out of a prediction: {reason} (repeats are logged at debug level for {WARN_EVERY:?})"
            );
        } else {
            tracing::debug!(worker = %member.worker.url, "worker left out of a prediction: {reason}");
        }
    }
}

/// A failed call to a worker: a timeout, or a connection that could not be made or broke.
fn failure_of(error: &reqwest::Error) -> Failure {
    if error.is_timeout() {
        return Failure::Timeout;
    }
    Failure::Unreachable(rafiki_service::client::describe(error))
}

/// The start of a body, for log messages.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}

#[cfg(test)]
mod tests {
    use super::*;

    fn worker(model_name: &str) -> PredictorWorker {
        PredictorWorker {
            service_id: Uuid::new_v4(),
            trial_id: Uuid::new_v4(),
            model_name: model_name.to_owned(),
            score: None,
            url: "http://127.0.0.1:1".to_owned(),
        }
    }

    #[test]
    fn any_model_error_makes_the_request_a_model_failure() {
        let (a, b, c) = (worker("a"), worker("b"), worker("c"));
        let error = PredictError::from_failures(vec![
            (&a, Failure::Timeout),
            (
                &b,
                Failure::Model("Model.predict() raised ValueError: no".into()),
            ),
            (&c, Failure::Unreachable("connection refused".into())),
        ]);
        assert_eq!(
            error,
            PredictError::ModelsFailed {
                failures: vec![ModelFailure {
                    model_name: "b".into(),
                    trial_id: b.trial_id,
                    message: "Model.predict() raised ValueError: no".into(),
                }],
                others: 2,
            }
        );
        assert!(error
            .to_string()
            .ends_with("ValueError: no (2 other inference workers gave no answer)"));

        let error = PredictError::from_failures(vec![
            (&a, Failure::Timeout),
            (&c, Failure::BadAnswer("answered 503".into())),
        ]);
        assert_eq!(
            error.to_string(),
            "None of the job's 2 inference workers answered with one prediction per query: \
             1 did not answer in time, 1 answered with an error or the wrong number of predictions."
        );
    }

    #[test]
    fn many_failing_models_give_a_bounded_message() {
        let workers: Vec<PredictorWorker> = (0..8).map(|i| worker(&format!("m{i}"))).collect();
        let error = PredictError::from_failures(
            workers
                .iter()
                .map(|w| {
                    (
                        w,
                        Failure::Model(format!("{}\nTraceback...", "e".repeat(2000))),
                    )
                })
                .collect(),
        );
        let text = error.to_string();
        assert!(
            text.contains("\"m4\"") && !text.contains("\"m5\""),
            "{text}"
        );
        assert!(text.ends_with("; and 3 more models failed"), "{text}");
        assert!(!text.contains("Traceback"), "{text}");
        assert!(text.chars().count() < 5 * (MAX_MODEL_MESSAGE_CHARS + 100));
    }
}
