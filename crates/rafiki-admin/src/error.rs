//! `ApiError`: the one error type of every handler, rendered as the contract's envelope
//! `{"error": "<ErrorName>", "message": "..."}`. Server faults answer a bare 500 whose details
//! go to the log, once, never to the client.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rafiki_store::StoreError;
use rafiki_types::error::{ErrorBody, ErrorName};

/// A failed request.
#[derive(Debug)]
pub struct ApiError {
    name: ErrorName,
    status: StatusCode,
    message: String,
    /// The cause of a server fault, for the log only.
    source: Option<anyhow::Error>,
}

/// Result of a handler.
pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    /// An error with the usual status of its name.
    pub fn new(name: ErrorName, message: impl Into<String>) -> Self {
        ApiError {
            name,
            status: default_status(name),
            message: message.into(),
            source: None,
        }
    }

    /// The same error with another status (e.g. 403 rather than 401 for `UnauthorizedError`).
    pub fn with_status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// A server fault: logged with its cause, answered with a bare 500.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        ApiError {
            name: ErrorName::InternalServerError,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The server failed to handle this request; the details are in its log.".into(),
            source: Some(source.into()),
        }
    }

    /// `InvalidRequestError` (400).
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorName::InvalidRequestError, message)
    }

    /// `UnauthorizedError` with 403: authenticated, but not allowed.
    pub fn forbidden(message: impl Into<String>) -> Self {
        Self::new(ErrorName::UnauthorizedError, message).with_status(StatusCode::FORBIDDEN)
    }

    /// The error's name.
    pub fn name(&self) -> ErrorName {
        self.name
    }
}

/// The usual HTTP status of each error name; call sites override where the contract allows two.
fn default_status(name: ErrorName) -> StatusCode {
    use ErrorName::*;
    match name {
        UnauthorizedError | InvalidAuthorizationHeaderError | InvalidPasswordError => {
            StatusCode::UNAUTHORIZED
        }
        UserExistsError
        | UserAlreadyBannedError
        | DuplicateModelNameError
        | ModelUsedError
        | RunningInferenceJobExistsError => StatusCode::CONFLICT,
        InvalidUserError | InvalidTrialError | InvalidRunningInferenceJobError | NotFoundError => {
            StatusCode::NOT_FOUND
        }
        InvalidUserTypeError
        | InvalidDatasetError
        | InvalidModelError
        | InvalidModelAccessRightError
        | InvalidTrainJobError
        | NoModelsForTrainJobError
        | InvalidRequestError => StatusCode::BAD_REQUEST,
        PayloadTooLargeError => StatusCode::PAYLOAD_TOO_LARGE,
        TooManyRequestsError => StatusCode::TOO_MANY_REQUESTS,
        ServiceDeploymentError => StatusCode::SERVICE_UNAVAILABLE,
        InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let Some(source) = &self.source {
            tracing::error!(error = ?source, "request failed");
        }
        let body = ErrorBody {
            error: self.name,
            message: self.message,
        };
        (self.status, Json(body)).into_response()
    }
}

impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(err)
    }
}

/// Body rejections become `InvalidRequestError` naming what is wrong (serde's message names
/// the field), or `PayloadTooLargeError` when the body is over the limit.
impl From<JsonRejection> for ApiError {
    fn from(rejection: JsonRejection) -> Self {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            return ApiError::new(
                ErrorName::PayloadTooLargeError,
                "The request body is larger than the server accepts.",
            );
        }
        ApiError::invalid_request(rejection.body_text())
    }
}

impl From<QueryRejection> for ApiError {
    fn from(rejection: QueryRejection) -> Self {
        ApiError::invalid_request(rejection.body_text())
    }
}

impl From<PathRejection> for ApiError {
    fn from(rejection: PathRejection) -> Self {
        ApiError::invalid_request(rejection.body_text())
    }
}
