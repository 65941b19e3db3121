//! `POST /tokens`: log in with email and password, get a one-hour JWT. Attempts are
//! rate-limited per client address and per account (`crate::auth::limits`).

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::user::{LoginRequest, LoginResponse};

use crate::auth::limits::TooManyAttempts;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::state::AppState;

/// Logs a user in. Unknown emails take as long as wrong passwords.
#[utoipa::path(post, path = "/tokens", request_body = LoginRequest, responses(
    (status = 200, body = LoginResponse),
    (status = 400, description = "InvalidUserError: no such user", body = ErrorBody),
    (status = 401, description = "InvalidPasswordError", body = ErrorBody),
    (status = 403, description = "UnauthorizedError: the user is banned", body = ErrorBody),
    (status = 429, description = "TooManyRequestsError: too many attempts from this address or \
        for this account; the Retry-After header says how many seconds to wait", body = ErrorBody)))]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, LoginError> {
    log_in(&state, peer.ip(), req).await.map(Json)
}

/// Why a login failed: a rate limit is spent, or the credentials or the user were refused.
#[derive(Debug)]
pub enum LoginError {
    /// 429 with `Retry-After`.
    Limited(TooManyAttempts),
    /// The contract's error for the credentials or the user.
    Refused(ApiError),
}

impl IntoResponse for LoginError {
    fn into_response(self) -> Response {
        match self {
            LoginError::Limited(limited) => limited.into_response(),
            LoginError::Refused(err) => err.into_response(),
        }
    }
}

/// A login attempt from `client`, counted against the rate limits, then checked: what
/// `POST /tokens` and the console's login form both do.
pub async fn log_in(
    state: &AppState,
    client: IpAddr,
    req: LoginRequest,
) -> Result<LoginResponse, LoginError> {
    // Counted before the password is checked, so concurrent guesses cannot outrun the count.
    state
        .logins
        .check(client, &req.email)
        .map_err(LoginError::Limited)?;
    authenticate(state, req).await.map_err(LoginError::Refused)
}

/// Checks the credentials and issues a token.
async fn authenticate(state: &AppState, req: LoginRequest) -> ApiResult<LoginResponse> {
    let record = rafiki_store::users::find_by_email(&state.pool, &req.email).await?;
    let matches = state
        .passwords
        .verify(
            req.password.into(),
            record.as_ref().map(|r| r.password_hash.as_str()),
        )
        .await?;
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
    let token = state.tokens.issue(user.id, user.user_type)?;
    Ok(LoginResponse {
        user_id: user.id,
        user_type: user.user_type,
        token,
    })
}
