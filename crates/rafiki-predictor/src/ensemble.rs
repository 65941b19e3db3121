//! The job's serving workers as the predictor last heard of them, and the fan-out of a request
//! to all of them.
//!
//! [`Predictor::predict`] sends the request's queries to every worker at once over pooled
//! keep-alive connections, each with its own timeout, keeps the answers that came back whole
//! (a 2xx with one prediction per query) and combines them with the task's [`Rule`]. A worker
//! that fails, is too slow or answers with the wrong count is left out of that request. The
//! worker list is swapped as a whole when the admin's answer changes, so a request always sees
//! one consistent list.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use futures_util::future::join_all;
use rafiki_types::internal::{
    PredictorJob, PredictorWorker, WorkerPredictRequest, WorkerPredictResponse,
};
use rafiki_worker::predict_secret::PredictSecret;
use reqwest::header::{HeaderMap, HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use serde_json::Value;
use uuid::Uuid;

use crate::combine::{combine, Answer, Rule};

/// A worker that keeps failing is logged at `warn` at most this often (else at `debug`).
const WARN_EVERY: Duration = Duration::from_secs(5);

/// Why a request got no predictions.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PredictError {
    /// No worker of the job serves (yet).
    #[error("No inference worker of this job is serving yet.")]
    NoWorkers,
    /// Every worker failed, timed out or answered with the wrong count.
    #[error("None of the job's {asked} inference workers answered in time with one prediction per query.")]
    NoneAnswered {
        /// How many workers were asked.
        asked: usize,
    },
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
        })
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

    /// One combined prediction per query, in order.
    pub async fn predict(&self, queries: Vec<Value>) -> Result<Vec<Value>, PredictError> {
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
        let answers = join_all(
            ensemble
                .members
                .iter()
                .map(|member| self.ask(member, body.clone(), count)),
        )
        .await;
        let answers: Vec<Answer> = answers.into_iter().flatten().collect();
        combine(rule, answers, count).ok_or(PredictError::NoneAnswered {
            asked: ensemble.members.len(),
        })
    }

    async fn ask(&self, member: &Member, body: Bytes, count: usize) -> Option<Answer> {
        match self.try_ask(member, body, count).await {
            Ok(predictions) => Some(Answer {
                score: member.worker.score,
                predictions,
            }),
            Err(reason) => {
                self.report(member, &reason);
                None
            }
        }
    }

    async fn try_ask(
        &self,
        member: &Member,
        body: Bytes,
        count: usize,
    ) -> Result<Vec<Value>, String> {
        let response = self
            .http
            .post(member.predict_url.clone())
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .body(body)
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.describe(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.describe(&e))?;
        if !status.is_success() {
            return Err(format!("answered {status}: {}", preview(&bytes)));
        }
        let answer: WorkerPredictResponse = serde_json::from_slice(&bytes)
            .map_err(|e| format!("unreadable answer ({e}): {}", preview(&bytes)))?;
        if answer.predictions.len() != count {
            return Err(format!(
                "answered {} predictions for {count} queries",
                answer.predictions.len()
            ));
        }
        Ok(answer.predictions)
    }

    fn describe(&self, error: &reqwest::Error) -> String {
        if error.is_timeout() {
            return format!("no answer within {:?}", self.timeout);
        }
        let mut text = error.to_string();
        let mut source = std::error::Error::source(error);
        while let Some(cause) = source {
            text.push_str(": ");
            text.push_str(&cause.to_string());
            source = cause.source();
        }
        text
    }

    /// Logs a worker left out of a request: at `warn` once per [`WARN_EVERY`], else `debug`,
    /// so a worker that is down does not flood the log at the request rate.
    fn report(&self, member: &Member, reason: &str) {
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

/// The start of a body, for log messages.
fn preview(body: &[u8]) -> String {
    let text = String::from_utf8_lossy(body);
    let mut cut: String = text.chars().take(200).collect();
    if cut.len() < text.len() {
        cut.push('…');
    }
    cut
}
