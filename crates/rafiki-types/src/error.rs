//! The error envelope of every failed request: `{"error": "<ErrorName>", "message": "..."}`.
//! The names are Rafiki's exception class names, because Rafiki's clients match on them.

use serde::{Deserialize, Serialize};

/// The `error` field of a failed response.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[allow(missing_docs)] // Each name is the Rafiki exception of the same name.
pub enum ErrorName {
    UnauthorizedError,
    InvalidAuthorizationHeaderError,
    UserExistsError,
    UserAlreadyBannedError,
    InvalidUserError,
    InvalidPasswordError,
    InvalidUserTypeError,
    InvalidDatasetError,
    InvalidModelError,
    InvalidModelAccessRightError,
    DuplicateModelNameError,
    ModelUsedError,
    InvalidTrainJobError,
    NoModelsForTrainJobError,
    InvalidTrialError,
    InvalidRunningInferenceJobError,
    RunningInferenceJobExistsError,
    ServiceDeploymentError,
    /// Malformed body, unknown or missing field (the message names the field).
    InvalidRequestError,
    /// The body is over the configured limit.
    PayloadTooLargeError,
    /// Anything the server did wrong; details go to its log, never to the client. Also a
    /// user's model that failed on a prediction (inference workers and the predictor): the
    /// message is then the model's one-line error, which its owner needs.
    InternalServerError,
    /// No such route.
    NotFoundError,
    /// Too many attempts (logins): 429 with a `Retry-After` header saying when to try again.
    TooManyRequestsError,
    /// The database is unreachable (down, refusing connections, or no connection freed up within
    /// the acquire timeout): 503 with a `Retry-After` header. A name this project adds.
    ServiceUnavailableError,
}

/// The body of every non-2xx answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// Which error: a Rafiki exception class name.
    pub error: ErrorName,
    /// What went wrong, for a person.
    pub message: String,
}
