//! `POST /tokens`: log in with email and password, get a one-hour JWT.

use axum::extract::State;
use axum::Json;
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::user::{LoginRequest, LoginResponse};

use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Logs a user in. Unknown emails take as long as wrong passwords.
#[utoipa::path(post, path = "/tokens", request_body = LoginRequest, responses(
    (status = 200, body = LoginResponse),
    (status = 400, description = "InvalidUserError: no such user", body = ErrorBody),
    (status = 401, description = "InvalidPasswordError", body = ErrorBody),
    (status = 403, description = "UnauthorizedError: the user is banned", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Json<LoginResponse>> {
    let record = rafiki_store::users::find_by_email(&state.pool, &req.email).await?;
    let matches = state
        .passwords
        .verify(
            req.password.into(),
            record.as_ref().map(|r| r.password_hash.as_str()),
        )
        .await
        .map_err(ApiError::internal)?;
    let Some(record) = record else {
        return Err(
            ApiError::new(ErrorName::InvalidUserError, "No user has this email.")
                .with_status(axum::http::StatusCode::BAD_REQUEST),
        );
    };
    if !matches {
        return Err(ApiError::new(
            ErrorName::InvalidPasswordError,
            "The password is wrong.",
        ));
    }
    let user = record.user;
    if user.banned_date.is_some() {
        return Err(ApiError::forbidden("This user is banned."));
    }
    let token = state
        .tokens
        .issue(user.id, user.user_type)
        .map_err(ApiError::internal)?;
    Ok(Json(LoginResponse {
        user_id: user.id,
        user_type: user.user_type,
        token,
    }))
}
