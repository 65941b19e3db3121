//! Where the orchestrator's errors meet the API: each refusal answers its contract name and
//! status; its faults are server faults (503 when the database is unreachable). Kept at the
//! route boundary so that the orchestrator knows nothing of HTTP.

use rafiki_types::error::ErrorName;

use crate::error::ApiError;
use crate::orchestrator::error::OrchestratorError;

/// The orchestrator's refusals, each answered with its contract name; its faults are server
/// faults (503 when the database is unreachable).
impl From<OrchestratorError> for ApiError {
    fn from(err: OrchestratorError) -> Self {
        use OrchestratorError::*;
        let message = err.to_string();
        match err {
            TrainJobRefused(_) => ApiError::new(ErrorName::InvalidTrainJobError, message),
            GpuCountTooLarge | OutOfOrder(_) => ApiError::invalid_request(message),
            GpusShort { .. } | Backend(_) => {
                ApiError::new(ErrorName::ServiceDeploymentError, message)
            }
            ModelRefused(_) => ApiError::new(ErrorName::InvalidModelError, message),
            AlreadyDeployed => ApiError::new(ErrorName::RunningInferenceJobExistsError, message),
            RefusedMove(source) | Store(source) => ApiError::internal(source),
            Internal(source) => ApiError::internal(source),
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::StatusCode;
    use axum::response::IntoResponse;
    use rafiki_store::StoreError;

    use super::*;

    #[test]
    fn each_orchestrator_refusal_answers_its_contract_name() {
        for (err, name, status) in [
            (
                OrchestratorError::TrainJobRefused("quota".into()),
                ErrorName::InvalidTrainJobError,
                StatusCode::BAD_REQUEST,
            ),
            (
                OrchestratorError::GpuCountTooLarge,
                ErrorName::InvalidRequestError,
                StatusCode::BAD_REQUEST,
            ),
            (
                OrchestratorError::GpusShort {
                    what: "job",
                    why: "3 GPU(s) asked for; the cluster has 2 in all".into(),
                },
                ErrorName::ServiceDeploymentError,
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                OrchestratorError::ModelRefused("gone".into()),
                ErrorName::InvalidModelError,
                StatusCode::BAD_REQUEST,
            ),
            (
                OrchestratorError::AlreadyDeployed,
                ErrorName::RunningInferenceJobExistsError,
                StatusCode::CONFLICT,
            ),
            (
                OrchestratorError::Backend("no engine".into()),
                ErrorName::ServiceDeploymentError,
                StatusCode::SERVICE_UNAVAILABLE,
            ),
            (
                OrchestratorError::OutOfOrder("config first".into()),
                ErrorName::InvalidRequestError,
                StatusCode::BAD_REQUEST,
            ),
            (
                OrchestratorError::from(sqlx::Error::RowNotFound),
                ErrorName::InternalServerError,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                OrchestratorError::from(StoreError::RefusedMove {
                    from: Some("STOPPED"),
                    to: "RUNNING",
                }),
                ErrorName::InternalServerError,
                StatusCode::INTERNAL_SERVER_ERROR,
            ),
            (
                OrchestratorError::from(sqlx::Error::PoolTimedOut),
                ErrorName::ServiceUnavailableError,
                StatusCode::SERVICE_UNAVAILABLE,
            ),
        ] {
            let text = err.to_string();
            let api = ApiError::from(err);
            assert_eq!(api.name(), name, "{text}");
            assert_eq!(api.into_response().status(), status, "{text}");
        }
        let refused = OrchestratorError::from(StoreError::RefusedMove {
            from: None,
            to: "RUNNING",
        });
        assert!(matches!(refused, OrchestratorError::RefusedMove(_)));
        let short = OrchestratorError::GpusShort {
            what: "deployment",
            why: "waiting for 2 GPUs; 0 free".into(),
        };
        assert_eq!(
            ApiError::from(short).message(),
            "Not enough GPUs for this deployment: waiting for 2 GPUs; 0 free."
        );
    }
}
