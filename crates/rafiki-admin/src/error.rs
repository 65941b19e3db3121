//! `ApiError`: the one error type of every handler, rendered as the contract's envelope
//! `{"error": "<ErrorName>", "message": "..."}`. Server faults answer a bare 500 whose details
//! go to the log, once, never to the client.
//!
//! Database outages are told apart here, in one place: a server fault whose cause is the
//! database being unreachable ([`rafiki_store::is_unavailable`]: no connection within the acquire
//! timeout, connection refused or cut) answers 503 `ServiceUnavailableError` with a
//! `Retry-After` header instead of 500, whichever handler met it (`?` on a `StoreError`, a
//! `sqlx::Error`, or an `OrchestratorError`, converted in `crate::routes::orchestrator_errors`). When the
//! cause is a connection that broke while in use, the response also carries [`ConnectionBroke`],
//! and the router tries a read once more (`routes::run_to_completion`).

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::http::header::RETRY_AFTER;
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

    /// A server fault: logged with its cause, answered with a bare 500, or with 503
    /// `ServiceUnavailableError` when the cause is the database being unreachable.
    pub fn internal(source: impl Into<anyhow::Error>) -> Self {
        let source = source.into();
        if database_unavailable(&source) {
            return ApiError {
                name: ErrorName::ServiceUnavailableError,
                status: StatusCode::SERVICE_UNAVAILABLE,
                message: DATABASE_UNREACHABLE.into(),
                source: Some(source),
            };
        }
        ApiError {
            name: ErrorName::InternalServerError,
            status: StatusCode::INTERNAL_SERVER_ERROR,
            message: "The server failed to handle this request; the details are in its log.".into(),
            source: Some(source),
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

    /// The HTTP status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }

    /// The message the client gets.
    pub fn message(&self) -> &str {
        &self.message
    }
}

/// The message of a request that failed because the database is unreachable.
pub const DATABASE_UNREACHABLE: &str = "The database is unreachable; try again shortly.";

/// The `Retry-After` of a 503 `ServiceUnavailableError`, in seconds.
pub const DATABASE_RETRY_AFTER_SECS: u64 = 5;

/// Marks the response of a request that failed because its database connection broke while in
/// use: the statement may not have run, and a read can be tried again at once.
#[derive(Debug, Clone, Copy)]
pub struct ConnectionBroke;

/// Marks the response of a server fault (5xx) caused by a database error, reachable or not:
/// the metrics middleware counts these (`rafiki_db_errors_total`, `crate::metrics::http`).
#[derive(Debug, Clone, Copy)]
pub struct DatabaseFault;

/// Whether any error in `source`'s chain is a `sqlx::Error` (bare or in a `StoreError`) that
/// means the database could not be reached.
fn database_unavailable(source: &anyhow::Error) -> bool {
    any_database_error(source, rafiki_store::is_unavailable)
}

/// Whether any error in `source`'s chain is a `sqlx::Error` (bare or in a `StoreError`) for
/// which `test` holds.
fn any_database_error(source: &anyhow::Error, test: fn(&sqlx::Error) -> bool) -> bool {
    source.chain().any(|cause| {
        if let Some(err) = cause.downcast_ref::<sqlx::Error>() {
            return test(err);
        }
        if let Some(StoreError::Database(err)) = cause.downcast_ref::<StoreError>() {
            return test(err);
        }
        false
    })
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
        ServiceDeploymentError | ServiceUnavailableError => StatusCode::SERVICE_UNAVAILABLE,
        InternalServerError => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let unavailable = self.name == ErrorName::ServiceUnavailableError;
        let broke = unavailable
            && self
                .source
                .as_ref()
                .is_some_and(|s| any_database_error(s, rafiki_store::is_broken_connection));
        if let Some(source) = &self.source {
            if unavailable {
                // An outage fails every request: one line each, without a backtrace.
                tracing::warn!(error = %source, "request failed: the database is unreachable");
            } else {
                tracing::error!(error = ?source, "request failed");
            }
        }
        let name = self.name;
        let body = ErrorBody {
            error: self.name,
            message: self.message,
        };
        let status = self.status;
        let mut response = (status, Json(body)).into_response();
        if unavailable {
            response
                .headers_mut()
                .insert(RETRY_AFTER, DATABASE_RETRY_AFTER_SECS.into());
        }
        if broke {
            response.extensions_mut().insert(ConnectionBroke);
        }
        // For the layers that look at how a request ended (the audit trail's refusals).
        response.extensions_mut().insert(name);
        if status.is_server_error()
            && self
                .source
                .as_ref()
                .is_some_and(|s| any_database_error(s, |_| true))
        {
            response.extensions_mut().insert(DatabaseFault);
        }
        response
    }
}

/// Store errors reaching a handler are server faults, or 503 when the database is unreachable
/// (decided in [`ApiError::internal`]).
impl From<StoreError> for ApiError {
    fn from(err: StoreError) -> Self {
        ApiError::internal(err)
    }
}

/// The same for a bare `sqlx::Error` (`pool.begin()`, `tx.commit()` and the like).
impl From<sqlx::Error> for ApiError {
    fn from(err: sqlx::Error) -> Self {
        ApiError::internal(err)
    }
}

/// The data directory's I/O errors (and those of files being uploaded) are server faults.
impl From<std::io::Error> for ApiError {
    fn from(err: std::io::Error) -> Self {
        ApiError::internal(err)
    }
}

/// The admin's own faults (hashing, signing, re-reading the users table): server faults, or
/// 503 when their cause is the database being unreachable.
impl From<anyhow::Error> for ApiError {
    fn from(err: anyhow::Error) -> Self {
        ApiError::internal(err)
    }
}

/// A blocking task that panicked or was cancelled is a server fault.
impl From<tokio::task::JoinError> for ApiError {
    fn from(err: tokio::task::JoinError) -> Self {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unreachable_database_is_503_with_retry_after_and_other_database_errors_500() {
        let refused = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        for err in [
            sqlx::Error::PoolTimedOut,
            sqlx::Error::PoolClosed,
            sqlx::Error::Io(refused),
            sqlx::Error::Protocol("connection closed".into()),
        ] {
            let text = err.to_string();
            // Through the store (`?` in handlers) and bare (`pool.begin()`), and wrapped.
            let via_store = ApiError::from(StoreError::from(err));
            assert_eq!(
                via_store.name(),
                ErrorName::ServiceUnavailableError,
                "{text}"
            );
            let response = via_store.into_response();
            assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
            assert_eq!(response.headers()[RETRY_AFTER], "5");
        }
        let wrapped = anyhow::Error::from(sqlx::Error::PoolTimedOut).context("listing datasets");
        assert_eq!(
            ApiError::internal(wrapped).name(),
            ErrorName::ServiceUnavailableError
        );
        for err in [
            sqlx::Error::RowNotFound,
            sqlx::Error::ColumnNotFound("x".into()),
        ] {
            let api = ApiError::from(err);
            assert_eq!(api.name(), ErrorName::InternalServerError);
            let response = api.into_response();
            assert_eq!(response.status(), StatusCode::INTERNAL_SERVER_ERROR);
            assert!(response.headers().get(RETRY_AFTER).is_none());
        }
        let disk = std::io::Error::from(std::io::ErrorKind::StorageFull);
        assert_eq!(
            ApiError::internal(disk).name(),
            ErrorName::InternalServerError
        );
    }
}
