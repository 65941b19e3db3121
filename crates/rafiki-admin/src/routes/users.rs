//! `POST /users`, `GET /users`, `DELETE /users`: creating, listing and banning users.
//!
//! Only SUPERADMIN creates or bans ADMIN and SUPERADMIN users; nobody bans themselves; a ban is
//! permanent, ends the user's unexpired tokens at once on this admin (within the ban-list
//! refresh period on others) and stops their live train and inference jobs. New passwords
//! have at least [`MIN_PASSWORD_CHARS`] characters.

use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use axum::Json;
use rafiki_store::audit::{self, Actor};
use rafiki_types::audit::{AuditAction, TargetKind};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::user::{BanUserRequest, CreateUserRequest, CreatedUser, User, UserType};
use strum::VariantArray;

use crate::audit::Origin;
use crate::auth::extract::{Admins, Authorized};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiJson;
use crate::paging::{Listing, Page, PageParams};
use crate::state::AppState;

/// Shortest password accepted for a new user, in characters.
pub const MIN_PASSWORD_CHARS: usize = 8;
/// Longest password accepted: argon2 hashes anything, but unbounded input is a cheap DoS.
pub const MAX_PASSWORD_CHARS: usize = 1024;
/// Longest email accepted (the SMTP limit).
pub const MAX_EMAIL_CHARS: usize = 254;

/// Creates a user.
#[utoipa::path(post, path = "/users", request_body = CreateUserRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = CreatedUser),
    (status = 400, description = "InvalidUserTypeError, or InvalidRequestError (a bad email, a \
        password shorter than 8 characters or longer than 1024)", body = ErrorBody),
    (status = 403, description = "UnauthorizedError", body = ErrorBody),
    (status = 409, description = "UserExistsError", body = ErrorBody)))]
pub async fn create_user(
    State(state): State<AppState>,
    caller: Authorized<Admins>,
    origin: Origin,
    ApiJson(req): ApiJson<CreateUserRequest>,
) -> ApiResult<Json<CreatedUser>> {
    Ok(Json(create(&state, caller, &origin, req).await?))
}

/// Creates a user as `caller` may (only the superadmin creates admins): what `POST /users` and
/// the console's users page both do. The new user and its audit row are written together.
pub async fn create(
    state: &AppState,
    caller: Authorized<Admins>,
    origin: &Origin,
    req: CreateUserRequest,
) -> ApiResult<CreatedUser> {
    let Authorized(caller, _) = caller;
    let user_type: UserType = req.user_type.parse().map_err(|_| {
        let known: Vec<&str> = UserType::VARIANTS.iter().map(|t| t.into()).collect();
        ApiError::new(
            ErrorName::InvalidUserTypeError,
            format!(
                "Unknown user type `{}`; expected one of {}.",
                req.user_type,
                known.join(", ")
            ),
        )
    })?;
    if !caller.user_type.can_manage(user_type) {
        return Err(ApiError::forbidden(format!(
            "Only the superadmin may create {user_type} users."
        )));
    }
    check_email(&req.email)?;
    if req.password.chars().count() < MIN_PASSWORD_CHARS
        || req.password.chars().count() > MAX_PASSWORD_CHARS
    {
        return Err(ApiError::invalid_request(format!(
            "`password` must be at least {MIN_PASSWORD_CHARS} characters and at most \
             {MAX_PASSWORD_CHARS} characters long."
        )));
    }
    let hash = state.passwords.hash(req.password.into()).await?;
    let actor = origin.actor(caller);
    let user = audit::recorded(
        &state.pool,
        async |tx| rafiki_store::users::insert(tx, &req.email, &hash, user_type).await,
        |user| Some(actor.did(AuditAction::UserCreate, TargetKind::User, user.id)),
    )
    .await
    .map_err(|err| {
        if err.is_constraint(rafiki_store::users::EMAIL_UNIQUE) {
            ApiError::new(
                ErrorName::UserExistsError,
                format!("A user with email `{}` already exists.", req.email),
            )
        } else {
            err.into()
        }
    })?;
    state.users.run_once(&state.pool).await?;
    Ok(CreatedUser {
        id: user.id,
        email: user.email,
        user_type: user.user_type,
    })
}

/// Lists every user, oldest first, a page at a time.
#[utoipa::path(get, path = "/users", params(PageParams), security(("bearer" = [])), responses(
    (status = 200, body = Vec<User>),
    (status = 400, description = "InvalidRequestError: a bad `limit` or `offset`", body = ErrorBody),
    (status = 403, description = "UnauthorizedError", body = ErrorBody)))]
pub async fn list_users(
    State(state): State<AppState>,
    _caller: Authorized<Admins>,
    Listing { page, .. }: Listing,
) -> ApiResult<impl IntoResponse> {
    // Served from the in-memory directory, serialised once per reading.
    Ok((
        [(CONTENT_TYPE, "application/json")],
        state.users.users_json(page)?,
    ))
}

/// Bans a user, permanently, and stops their live jobs.
#[utoipa::path(delete, path = "/users", request_body = BanUserRequest,
    security(("bearer" = [])), responses(
    (status = 200, body = User),
    (status = 403, description = "UnauthorizedError", body = ErrorBody),
    (status = 404, description = "InvalidUserError", body = ErrorBody),
    (status = 409, description = "UserAlreadyBannedError", body = ErrorBody),
    (status = 503, description = "ServiceDeploymentError: banned, but a job's services could \
        not be stopped", body = ErrorBody)))]
pub async fn ban_user(
    State(state): State<AppState>,
    caller: Authorized<Admins>,
    origin: Origin,
    ApiJson(req): ApiJson<BanUserRequest>,
) -> ApiResult<Json<User>> {
    Ok(Json(ban(&state, caller, &origin, req).await?))
}

/// Bans the user with `req.email` as `caller` may (not themselves; admins only the users they
/// manage), then stops their live jobs: what `DELETE /users` and the console's ban button both
/// do. The ban and its audit row are written together; each job stopped is recorded as a stop
/// by the caller.
pub async fn ban(
    state: &AppState,
    caller: Authorized<Admins>,
    origin: &Origin,
    req: BanUserRequest,
) -> ApiResult<User> {
    let Authorized(caller, _) = caller;
    let target = rafiki_store::users::find_by_email(&state.pool, &req.email)
        .await?
        .ok_or_else(|| {
            ApiError::new(
                ErrorName::InvalidUserError,
                format!("No user has email `{}`.", req.email),
            )
        })?
        .user;
    if target.id == caller.id {
        return Err(ApiError::forbidden("You cannot ban yourself."));
    }
    if !caller.user_type.can_manage(target.user_type) {
        return Err(ApiError::forbidden(format!(
            "Only the superadmin may ban {} users.",
            target.user_type
        )));
    }
    let actor = origin.actor(caller);
    let banned = audit::recorded(
        &state.pool,
        async |tx| rafiki_store::users::ban(tx, target.id).await,
        |banned| {
            banned
                .as_ref()
                .map(|user| actor.did(AuditAction::UserBan, TargetKind::User, user.id))
        },
    )
    .await?
    .ok_or_else(|| {
        ApiError::new(
            ErrorName::UserAlreadyBannedError,
            format!("User `{}` is already banned.", target.email),
        )
    })?;
    state.users.run_once(&state.pool).await?;
    stop_live_jobs(state, &actor, target.id).await?;
    Ok(banned)
}

/// A page of every user, oldest first: the rows `GET /users` lists, for the console's users
/// page. Only for admins: the caller's [`Authorized`] is the proof.
pub fn users_page(state: &AppState, _caller: &Authorized<Admins>, page: Page) -> Vec<User> {
    state.users.users(page)
}

/// Stops the user's live inference jobs, then their live train jobs, as their owner would;
/// each stop is recorded as `actor`'s. Their tokens are refused already, so they cannot start
/// another one through this admin.
async fn stop_live_jobs(state: &AppState, actor: &Actor, user_id: uuid::Uuid) -> ApiResult<()> {
    for job in rafiki_store::inference_jobs::list_live(&state.pool).await? {
        if job.user_id == user_id {
            let event = actor.did(
                AuditAction::InferenceJobStop,
                TargetKind::InferenceJob,
                job.job.id,
            );
            state
                .orchestrator
                .stop_inference_job(job.job.id, &event)
                .await?;
        }
    }
    for job in rafiki_store::train_jobs::list_live(&state.pool).await? {
        if job.user_id == user_id {
            let event = actor.did(AuditAction::TrainJobStop, TargetKind::TrainJob, job.job.id);
            state
                .orchestrator
                .stop_train_job(job.job.id, &event)
                .await?;
        }
    }
    Ok(())
}

/// A plausible address: one `@` between non-empty parts, no spaces, not too long. Delivery is
/// never attempted, so anything stricter would only refuse real addresses.
fn check_email(email: &str) -> ApiResult<()> {
    let valid = email.chars().count() <= MAX_EMAIL_CHARS
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
        && matches!(email.split_once('@'), Some((local, domain))
            if !local.is_empty() && !domain.is_empty() && !domain.contains('@'));
    if valid {
        Ok(())
    } else {
        Err(ApiError::invalid_request(format!(
            "`email` must be an address like name@example.com, got `{email}`."
        )))
    }
}
