//! The admin's Prometheus metrics (docs/observability.md, "Metrics"): one [`AdminMetrics`]
//! per admin, held in `AppState` and by the orchestrator, with its own registry (tests start
//! many admins in one process, whose counts must not mix).
//!
//! - [`http`]: the middleware counting and timing every request by route template.
//! - [`scrape`]: the gauges read at scrape time (rows by status, GPUs, the queue, the pool).
//! - [`endpoint`]: `GET /metrics` and the Prometheus service discovery document of the
//!   predictors, `GET /metrics/targets`, on the API port or on `RAFIKI_METRICS_ADDR`.
//!
//! The events counted where they happen are methods here: a trial's end
//! ([`AdminMetrics::trial_finished`], [`AdminMetrics::trials_errored`]), an advisor's
//! proposal ([`AdminMetrics::advisor_proposed`]), an upload ([`AdminMetrics::uploaded`]).
//!
//! Every label value is bounded: route templates (never raw paths), the status and type enums'
//! names, the operator's node names; never an id, a name or anything else a user chose.

pub mod endpoint;
pub mod http;
pub mod scrape;

use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;
use rafiki_types::knob::AdvisorType;
use rafiki_types::status::TrialStatus;

/// A `status` label (jobs, trials): a status enum's wire name.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct StatusLabel {
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct AdvisorLabel {
    advisor: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct UploadLabel {
    kind: &'static str,
}

/// What an upload stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadKind {
    /// A dataset (a file, or a `dataset_url` fetched).
    Dataset,
    /// A model file.
    Model,
}

impl UploadKind {
    fn label(self) -> &'static str {
        match self {
            UploadKind::Dataset => "dataset",
            UploadKind::Model => "model",
        }
    }
}

/// A histogram family whose histograms share one set of buckets.
type Histograms<S> = Family<S, Histogram, fn() -> Histogram>;

/// Trials' durations: 1 s to 9 h, doubling.
fn trial_seconds() -> Histogram {
    Histogram::new(exponential_buckets(1.0, 2.0, 16))
}

/// Advisors' proposal times: 0.1 ms to 6.5 s, by fours (Bayesian optimisation over a long
/// history is the slow end).
fn proposal_seconds() -> Histogram {
    Histogram::new(exponential_buckets(0.0001, 4.0, 9))
}

/// The admin's metrics and their registry.
#[derive(Debug)]
pub struct AdminMetrics {
    registry: Registry,
    /// Requests (the middleware's).
    http: http::HttpMetrics,
    /// The gauges set at scrape time.
    scraped: scrape::Scraped,
    trials_finished: Family<StatusLabel, Counter>,
    trial_seconds: Histograms<StatusLabel>,
    proposal_seconds: Histograms<AdvisorLabel>,
    upload_bytes: Family<UploadLabel, Counter>,
    /// Held by a scrape while it reads the gauges and encodes them.
    scraping: tokio::sync::Mutex<()>,
}

impl Default for AdminMetrics {
    fn default() -> Self {
        Self::new()
    }
}

impl AdminMetrics {
    /// Every metric at zero, registered.
    pub fn new() -> Self {
        let mut registry = Registry::default();
        let http = http::HttpMetrics::register(&mut registry);
        let scraped = scrape::Scraped::register(&mut registry);
        let trials_finished = Family::<StatusLabel, Counter>::default();
        // `_total` is added by the encoder to counters' names.
        registry.register(
            "rafiki_trials_finished",
            "Trials ended, COMPLETED or ERRORED (by their worker, or by the admin when the \
             worker died or the job was stopped)",
            trials_finished.clone(),
        );
        let trial_seconds = Histograms::new_with_constructor(trial_seconds as fn() -> Histogram);
        registry.register(
            "rafiki_trial_duration_seconds",
            "Durations of the trials whose worker reported their end, from the trial's start",
            trial_seconds.clone(),
        );
        let proposal_seconds =
            Histograms::new_with_constructor(proposal_seconds as fn() -> Histogram);
        registry.register(
            "rafiki_advisor_proposal_duration_seconds",
            "Time the advisor took to propose a trial's knobs, by advisor type",
            proposal_seconds.clone(),
        );
        let upload_bytes = Family::<UploadLabel, Counter>::default();
        registry.register(
            "rafiki_upload_bytes",
            "Bytes stored by uploads of datasets and model files",
            upload_bytes.clone(),
        );
        // Both outcomes show from the start, at 0, so that rates over them exist.
        for status in [TrialStatus::Completed, TrialStatus::Errored] {
            trials_finished
                .get_or_create(&status_label(status))
                .inc_by(0);
        }
        for kind in [UploadKind::Dataset, UploadKind::Model] {
            upload_bytes
                .get_or_create(&UploadLabel { kind: kind.label() })
                .inc_by(0);
        }
        AdminMetrics {
            registry,
            http,
            scraped,
            trials_finished,
            trial_seconds,
            proposal_seconds,
            upload_bytes,
            scraping: tokio::sync::Mutex::new(()),
        }
    }

    /// A worker reported the end of its trial, which ran `seconds`.
    pub fn trial_finished(&self, status: TrialStatus, seconds: f64) {
        let label = status_label(status);
        self.trials_finished.get_or_create(&label).inc();
        self.trial_seconds.get_or_create(&label).observe(seconds);
    }

    /// The admin ended `count` trials ERRORED (their worker died, asked for another trial, or
    /// its model failed; their job was stopped). No duration: the worker did not report one.
    pub fn trials_errored(&self, count: u64) {
        if count > 0 {
            self.trials_finished
                .get_or_create(&status_label(TrialStatus::Errored))
                .inc_by(count);
        }
    }

    /// An advisor of type `advisor` took `took` to decide.
    pub fn advisor_proposed(&self, advisor: AdvisorType, took: Duration) {
        self.proposal_seconds
            .get_or_create(&AdvisorLabel {
                advisor: advisor.into(),
            })
            .observe(took.as_secs_f64());
    }

    /// An upload stored `bytes`.
    pub fn uploaded(&self, kind: UploadKind, bytes: u64) {
        self.upload_bytes
            .get_or_create(&UploadLabel { kind: kind.label() })
            .inc_by(bytes);
    }
}

/// The `status` label of a status enum's value.
fn status_label(status: impl Into<&'static str>) -> StatusLabel {
    StatusLabel {
        status: status.into(),
    }
}
