//! Inference jobs and predictions: the DTOs of routes 21–25 (`POST /inference_jobs`, the
//! listings, the running job with its `predictor_host`, stop) and the bodies of the predictor's
//! `POST /predict` (CONTRACT §4).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::status::JobStatus;

/// `POST /inference_jobs` request, as Rafiki's client sends it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateInferenceJobRequest {
    /// The train job's app.
    pub app: String,
    /// The train job's version; -1 for the latest.
    #[serde(deserialize_with = "crate::integer::deserialize_i32")]
    pub app_version: i32,
    /// `{GPU_COUNT}`, optional; a missing budget is `{}`.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub budget: BTreeMap<String, serde_json::Value>,
}

/// An inference job's budget with defaults filled in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceBudget {
    /// GPUs for the whole job, split over its deployed trials like a train budget (default 0).
    pub gpu_count: i64,
}

impl InferenceBudget {
    /// Reads a budget object: `GPU_COUNT` (an integer >= 0) is the only key; missing means 0.
    pub fn parse(
        raw: &BTreeMap<String, serde_json::Value>,
    ) -> Result<Self, crate::train::BudgetError> {
        let mut budget = InferenceBudget::default();
        for (key, value) in raw {
            match key.as_str() {
                "GPU_COUNT" => {
                    budget.gpu_count = crate::integer::as_integer(value)
                        .filter(|n| *n >= 0)
                        .ok_or_else(|| {
                            crate::train::BudgetError(format!(
                                "budget GPU_COUNT must be an integer >= 0, got {value}"
                            ))
                        })?;
                }
                other => {
                    return Err(crate::train::BudgetError(format!(
                        "unknown inference budget option `{other}`; the only one is GPU_COUNT"
                    )))
                }
            }
        }
        Ok(budget)
    }
}

/// `POST /inference_jobs` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedInferenceJob {
    /// The inference job's id.
    pub id: Uuid,
    /// The train job whose best trials it deploys.
    pub train_job_id: Uuid,
    /// The train job's app.
    pub app: String,
    /// The train job's version.
    pub app_version: i32,
    /// `host:port` of the job's predictor.
    pub predictor_host: String,
}

/// An inference job as listed by `GET /inference_jobs?user_id=` and `GET /inference_jobs/{app}`
/// (the contract's shape I; `error` is an addition).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceJob {
    /// The inference job's id.
    pub id: Uuid,
    /// Its status.
    pub status: JobStatus,
    /// The train job whose best trials it deploys.
    pub train_job_id: Uuid,
    /// The train job's app.
    pub app: String,
    /// The train job's version.
    pub app_version: i32,
    /// When it was created.
    #[serde(with = "crate::time::rfc3339")]
    #[cfg_attr(feature = "openapi", schema(value_type = String, format = DateTime))]
    pub datetime_started: DateTime<Utc>,
    /// When it stopped or errored.
    #[serde(with = "crate::time::rfc3339_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub datetime_stopped: Option<DateTime<Utc>>,
    /// Why it errored, if it did.
    #[serde(default)]
    pub error: Option<String>,
}

/// `GET /inference_jobs/{app}/{v}` answer: the running (STARTED or RUNNING) job of that train
/// job, shape I + `predictor_host` (and `error`, `null` while it runs, as in listings).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RunningInferenceJob {
    /// The job as listed.
    #[serde(flatten)]
    pub job: InferenceJob,
    /// `host:port` of the job's predictor, reachable from the user's network.
    pub predictor_host: String,
}

/// `POST /inference_jobs/{app}/{v}/stop` answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct InferenceJobRef {
    /// The inference job's id.
    pub id: Uuid,
    /// The train job whose best trials it deployed.
    pub train_job_id: Uuid,
    /// The train job's app.
    pub app: String,
    /// The train job's version.
    pub app_version: i32,
}

/// The predictor's `POST /predict` body: `{"query": q}` for one query, `{"queries": [q, ...]}`
/// for several. A query is whatever the task's models take (e.g. an image as nested lists).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase", deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum PredictRequest {
    /// One query; the answer's `prediction` holds its prediction.
    Query(serde_json::Value),
    /// Several queries; the answer's `predictions` holds theirs, in order.
    Queries(Vec<serde_json::Value>),
}

/// The predictor's `POST /predict` answer: `{"prediction": p, "predictions": []}` for one
/// query, `{"prediction": null, "predictions": [p, ...]}` for several.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PredictResponse {
    /// The prediction of a single `query`, else `null`.
    #[cfg_attr(feature = "openapi", schema(value_type = Option<Object>))]
    pub prediction: Option<serde_json::Value>,
    /// The predictions of `queries`, in order, else empty.
    #[serde(default)]
    #[cfg_attr(feature = "openapi", schema(value_type = Vec<Object>))]
    pub predictions: Vec<serde_json::Value>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn predict_bodies_are_the_contracts() {
        assert_eq!(
            serde_json::to_value(PredictRequest::Query(json!([1, 2]))).unwrap(),
            json!({"query": [1, 2]})
        );
        assert_eq!(
            serde_json::to_value(PredictRequest::Queries(vec![json!(1), json!("a")])).unwrap(),
            json!({"queries": [1, "a"]})
        );
        let read: PredictRequest = serde_json::from_value(json!({"queries": [[0.5]]})).unwrap();
        assert_eq!(read, PredictRequest::Queries(vec![json!([0.5])]));
        assert!(serde_json::from_value::<PredictRequest>(json!({"q": 1})).is_err());
        assert!(
            serde_json::from_value::<PredictRequest>(json!({"query": 1, "queries": []})).is_err()
        );

        let one = PredictResponse {
            prediction: Some(json!([0.1, 0.9])),
            predictions: vec![],
        };
        assert_eq!(
            serde_json::to_value(&one).unwrap(),
            json!({"prediction": [0.1, 0.9], "predictions": []})
        );
        let many: PredictResponse =
            serde_json::from_value(json!({"prediction": null, "predictions": [1, 2]})).unwrap();
        assert_eq!(many.prediction, None);
        assert_eq!(many.predictions, vec![json!(1), json!(2)]);
    }

    #[test]
    fn inference_budgets_know_only_gpu_count() {
        let parse =
            |v: serde_json::Value| InferenceBudget::parse(&serde_json::from_value(v).unwrap());
        assert_eq!(parse(json!({})).unwrap(), InferenceBudget { gpu_count: 0 });
        assert_eq!(
            parse(json!({"GPU_COUNT": 2})).unwrap(),
            InferenceBudget { gpu_count: 2 }
        );
        for bad in [
            json!({"GPU_COUNT": -1}),
            json!({"GPU_COUNT": 1.5}),
            json!({"TIME_HOURS": 1}),
        ] {
            assert!(parse(bad.clone()).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_running_job_carries_its_predictor_host() {
        let job: RunningInferenceJob = serde_json::from_value(json!({
            "id": Uuid::nil(), "status": "RUNNING", "train_job_id": Uuid::nil(),
            "app": "wine", "app_version": 1, "datetime_started": "2026-11-26T17:02:03Z",
            "datetime_stopped": null, "predictor_host": "127.0.0.1:40001",
        }))
        .unwrap();
        assert_eq!(job.job.status, JobStatus::Running);
        assert_eq!(job.predictor_host, "127.0.0.1:40001");
        let listed: InferenceJob = serde_json::from_value(json!({
            "id": Uuid::nil(), "status": "STOPPED", "train_job_id": Uuid::nil(),
            "app": "wine", "app_version": 1, "datetime_started": "2026-11-26T17:02:03Z",
            "datetime_stopped": "2026-11-26T18:00:00Z",
        }))
        .unwrap();
        assert_eq!(listed.error, None);
        assert!(listed.datetime_stopped.is_some());
    }
}
