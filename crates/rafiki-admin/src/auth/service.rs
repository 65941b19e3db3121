//! Extractors of the internal API's callers: a service's bearer token is resolved once, here,
//! into who calls — a train worker with its sub-job and job, an inference worker with its job,
//! trial and sub-job, or a predictor with its job — so a handler's signature says which
//! services may call it, as `Authorized<R>` does for users.
//!
//! The callers' types are the orchestrator's (`crate::orchestrator::callers`), which decides
//! what their calls change; this module only resolves and checks them. Tokens are stored only as
//! their sha256 (`crate::orchestrator::token_hash`); a stopped or errored service's token stops
//! working at once, since only live services are looked up.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use rafiki_store::inference_jobs::{self, Role};
use rafiki_store::services::{self, ServiceRecord};
use rafiki_store::train_jobs;
use rafiki_store::trials::{self, TrialRecord};
use rafiki_types::error::ErrorName;

use crate::error::{ApiError, ApiResult};
use crate::orchestrator::callers::{InferenceWorker, ModelWorker, Predictor, TrainWorker};
use crate::orchestrator::token_hash;
use crate::state::AppState;

/// Any live service, resolved into its role.
#[derive(Debug, Clone)]
enum ServiceCaller {
    Train(Box<TrainWorker>),
    Inference(Box<InferenceWorker>),
    Predictor(Box<Predictor>),
}

/// The live service whose token the request bears, or 401.
async fn live_service(parts: &Parts, state: &AppState) -> ApiResult<ServiceRecord> {
    let token = parts
        .headers
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or_else(|| {
            ApiError::new(
                ErrorName::InvalidAuthorizationHeaderError,
                "Send `Authorization: Bearer <service token>`.",
            )
        })?;
    services::find_live_by_token_hash(&state.pool, &token_hash(token.trim()))
        .await?
        .ok_or_else(|| ApiError::new(ErrorName::UnauthorizedError, "Unknown or stopped service."))
}

/// Resolves the caller's role once. A service whose job rows are gone (deleted under it) has
/// no role: it is refused like a service of the wrong kind.
async fn resolve(parts: &Parts, state: &AppState) -> ApiResult<Option<ServiceCaller>> {
    let service = live_service(parts, state).await?;
    let pool = &state.pool;
    if let Some(sub_id) = services::train_worker_sub_job(pool, service.id).await? {
        let Some(sub) = train_jobs::get_sub(pool, sub_id).await? else {
            return Ok(None);
        };
        let Some(job) = train_jobs::get(pool, sub.train_job_id).await? else {
            return Ok(None);
        };
        return Ok(Some(ServiceCaller::Train(Box::new(TrainWorker {
            service,
            sub,
            job,
        }))));
    }
    let Some((job_id, role)) = inference_jobs::role_of_service(pool, service.id).await? else {
        return Ok(None);
    };
    let Some(job) = inference_jobs::get(pool, job_id).await? else {
        return Ok(None);
    };
    Ok(match role {
        Role::Predictor => Some(ServiceCaller::Predictor(Box::new(Predictor {
            service,
            job,
        }))),
        Role::Worker { trial_id } => {
            let Some(trial) = trials::get(pool, trial_id).await? else {
                return Ok(None);
            };
            let Some(sub) = train_jobs::get_sub(pool, trial.sub_train_job_id).await? else {
                return Ok(None);
            };
            Some(ServiceCaller::Inference(Box::new(InferenceWorker {
                service,
                job,
                trial,
                sub,
            })))
        }
    })
}

/// Implements `FromRequestParts` for a caller type that `$pick` selects from the resolved
/// role, refusing any other service with 403 and `$refusal`.
macro_rules! service_extractor {
    ($ty:ty, $refusal:literal, $pick:expr) => {
        impl FromRequestParts<AppState> for $ty {
            type Rejection = ApiError;

            async fn from_request_parts(
                parts: &mut Parts,
                state: &AppState,
            ) -> Result<Self, ApiError> {
                let pick: fn(ServiceCaller) -> Option<$ty> = $pick;
                resolve(parts, state)
                    .await?
                    .and_then(pick)
                    .ok_or_else(|| ApiError::forbidden($refusal))
            }
        }
    };
}

service_extractor!(
    TrainWorker,
    "Only train workers may do this.",
    |caller| match caller {
        ServiceCaller::Train(worker) => Some(*worker),
        _ => None,
    }
);

service_extractor!(
    InferenceWorker,
    "Only inference workers may do this.",
    |caller| match caller {
        ServiceCaller::Inference(worker) => Some(*worker),
        _ => None,
    }
);

service_extractor!(
    Predictor,
    "Only predictors may do this.",
    |caller| match caller {
        ServiceCaller::Predictor(predictor) => Some(*predictor),
        _ => None,
    }
);

service_extractor!(
    ModelWorker,
    "Only workers may do this.",
    |caller| match caller {
        ServiceCaller::Train(worker) => Some(ModelWorker::Train(worker)),
        ServiceCaller::Inference(worker) => Some(ModelWorker::Inference(worker)),
        ServiceCaller::Predictor(_) => None,
    }
);

impl TrainWorker {
    /// A trial this worker runs or ran, or `InvalidTrialError`: workers touch only their own.
    pub async fn own_trial(&self, state: &AppState, id: uuid::Uuid) -> ApiResult<TrialRecord> {
        trials::get(&state.pool, id)
            .await?
            .filter(|t| t.trial.worker_id == Some(self.service.id))
            .ok_or_else(|| {
                ApiError::new(ErrorName::InvalidTrialError, "Not a trial of this worker.")
            })
    }
}
