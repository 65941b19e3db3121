//! `POST /tokens`: log in with email and password, get a one-hour JWT. Attempts are
//! rate-limited per client address and per account (`crate::auth::limits`), and each is
//! recorded in the audit trail (`crate::audit`), successful or not, without the password.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, State};
use axum::response::{IntoResponse, Response};
use axum::Json;
use rafiki_store::users::UserRecord;
use rafiki_types::audit::{AuditAction, TargetKind, OUTCOME_OK};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::user::{LoginRequest, LoginResponse};

use crate::audit::Origin;
use crate::auth::extract::AuthUser;
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
    origin: Origin,
    ApiJson(req): ApiJson<LoginRequest>,
) -> Result<Json<LoginResponse>, LoginError> {
    log_in(&state, peer.ip(), &origin, req).await.map(Json)
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

/// A login attempt from `client`, counted against the rate limits, then checked, then
/// recorded (`login`, the email tried as its target, the account as its actor when the email
/// is known; never the password): what `POST /tokens` and the console's login form both do.
/// A successful login whose row cannot be written gets no token: no login goes unrecorded.
pub async fn log_in(
    state: &AppState,
    client: IpAddr,
    origin: &Origin,
    req: LoginRequest,
) -> Result<LoginResponse, LoginError> {
    let email = req.email.clone();
    // Counted before the password is checked, so concurrent guesses cannot outrun the count.
    // A refused attempt is not looked up: the refusal stays as cheap as the limit needs.
    let (account, result) = match state.logins.check(client, &req.email) {
        Err(limited) => (None, Err(LoginError::Limited(limited))),
        Ok(()) => {
            let (account, result) = authenticate(state, req).await;
            (account, result.map_err(LoginError::Refused))
        }
    };
    let actor = account.map_or_else(|| origin.anonymous(), |user| origin.actor(user));
    let outcome = match &result {
        Ok(_) => OUTCOME_OK.to_owned(),
        Err(LoginError::Limited(_)) => ErrorName::TooManyRequestsError.to_string(),
        Err(LoginError::Refused(err)) => err.name().to_string(),
    };
    let event = actor.event(
        AuditAction::Login,
        Some((TargetKind::User, &email)),
        &outcome,
    );
    let recorded = rafiki_store::audit::insert(&state.pool, &event).await;
    match (result, recorded) {
        (Ok(_), Err(err)) => Err(LoginError::Refused(err.into())),
        (result, Err(err)) => {
            tracing::error!(error = %err, "cannot record a refused login");
            result
        }
        (result, Ok(())) => result,
    }
}

/// Checks the credentials and issues a token; also says whose account the email is, if
/// anyone's (the actor of the attempt's audit row).
async fn authenticate(
    state: &AppState,
    req: LoginRequest,
) -> (Option<AuthUser>, ApiResult<LoginResponse>) {
    let record = match rafiki_store::users::find_by_email(&state.pool, &req.email).await {
        Ok(record) => record,
        Err(err) => return (None, Err(err.into())),
    };
    let account = record.as_ref().map(|r| AuthUser {
        id: r.user.id,
        user_type: r.user.user_type,
    });
    (account, check(state, req, record).await)
}

/// Checks the password against the account of `record` (as long for an unknown email as for
/// a wrong password) and issues a token.
async fn check(
    state: &AppState,
    req: LoginRequest,
    record: Option<UserRecord>,
) -> ApiResult<LoginResponse> {
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
