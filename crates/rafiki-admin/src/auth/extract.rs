//! Extractors that authenticate the caller and check their role, so a handler's signature says
//! who may call it: `AuthUser` (any signed-in user: "A, MD, AD" in the contract, since
//! SUPERADMIN passes every check), `Authorized<Admins>`, `Authorized<ModelDevelopers>`,
//! `Authorized<Superadmins>`.

use std::marker::PhantomData;

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use rafiki_types::error::ErrorName;
use rafiki_types::user::UserType;
use uuid::Uuid;

use crate::audit::CallerSlot;
use crate::auth::directory::Account;
use crate::error::ApiError;
use crate::state::AppState;

/// A caller with a valid token of a user who exists and is not banned.
#[derive(Debug, Clone, Copy)]
pub struct AuthUser {
    /// The user's id.
    pub id: Uuid,
    /// The user's stored type (a token's `user_type` claim is never trusted: a user's type may
    /// have changed since the token was issued).
    pub user_type: UserType,
}

impl AuthUser {
    /// Whether the caller is ADMIN or SUPERADMIN: they see every user's resources.
    pub fn is_admin(&self) -> bool {
        self.user_type.is_one_of(&[UserType::Admin])
    }

    /// Whether the caller may see and act on what `owner` owns: their own, or anyone's for
    /// admins. The one ownership rule of the API.
    pub fn may_act_for(&self, owner: uuid::Uuid) -> bool {
        owner == self.id || self.is_admin()
    }

    /// Whether the caller may see and train with `model`: their own, a PUBLIC one, or any for
    /// admins.
    pub fn may_use_model(&self, model: &rafiki_store::models::ModelRecord) -> bool {
        model.is_available_to(self.id) || self.is_admin()
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header = parts.headers.get(AUTHORIZATION).ok_or_else(|| {
            ApiError::new(
                ErrorName::InvalidAuthorizationHeaderError,
                "The Authorization header is missing; send `Authorization: Bearer <token>`.",
            )
        })?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| value.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|token| !token.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    ErrorName::InvalidAuthorizationHeaderError,
                    "The Authorization header must be `Bearer <token>`.",
                )
            })?;
        let user = AuthUser::from_token(state, token)
            .await
            .map_err(ApiError::from)?;
        if let Some(slot) = parts.extensions.get::<CallerSlot>() {
            slot.fill(user);
        }
        Ok(user)
    }
}

/// Why a token was refused.
#[derive(Debug)]
pub enum TokenRefused {
    /// A valid token past its expiry: the user should log in again.
    Expired,
    /// Anything else: forged, malformed, of a user that no longer exists or is banned, or the
    /// database failed while checking.
    Invalid(ApiError),
}

impl From<TokenRefused> for ApiError {
    fn from(refused: TokenRefused) -> Self {
        match refused {
            TokenRefused::Expired => {
                ApiError::new(ErrorName::UnauthorizedError, "The token has expired.")
            }
            TokenRefused::Invalid(err) => err,
        }
    }
}

impl AuthUser {
    /// The user of a token, checked as every request's is (signature, expiry, the subject's
    /// existence and ban), however the token came: a bearer header, or the console's cookie.
    pub async fn from_token(state: &AppState, token: &str) -> Result<AuthUser, TokenRefused> {
        let claims = state.tokens.verify(token).map_err(|err| match err.kind() {
            jsonwebtoken::errors::ErrorKind::ExpiredSignature => TokenRefused::Expired,
            _ => TokenRefused::Invalid(ApiError::new(
                ErrorName::UnauthorizedError,
                "The token is not valid.",
            )),
        })?;
        let account = match state.users.account(claims.user_id) {
            Some(account) => Some(account),
            // Not in the last reading: perhaps created through another admin instance since.
            // Only such tokens cost a query; a known subject never does.
            None => rafiki_store::users::find_by_id(&state.pool, claims.user_id)
                .await
                .map_err(|err| TokenRefused::Invalid(err.into()))?
                .map(|user| Account::from(&user)),
        };
        let account = account.ok_or_else(|| {
            TokenRefused::Invalid(ApiError::new(
                ErrorName::UnauthorizedError,
                "The token's user does not exist.",
            ))
        })?;
        if account.banned {
            return Err(TokenRefused::Invalid(ApiError::new(
                ErrorName::UnauthorizedError,
                "This user is banned.",
            )));
        }
        Ok(AuthUser {
            id: claims.user_id,
            user_type: account.user_type,
        })
    }
}

/// A set of user types allowed on a route (SUPERADMIN is always allowed).
pub trait Role: Send + Sync {
    /// The allowed types besides SUPERADMIN.
    const ALLOWED: &'static [UserType];
    /// Who is allowed, for the error message.
    const WHO: &'static str;
}

/// ADMIN (and SUPERADMIN).
pub struct Admins;
impl Role for Admins {
    const ALLOWED: &'static [UserType] = &[UserType::Admin];
    const WHO: &'static str = "admins";
}

/// ADMIN and MODEL_DEVELOPER (and SUPERADMIN).
pub struct ModelDevelopers;
impl Role for ModelDevelopers {
    const ALLOWED: &'static [UserType] = &[UserType::Admin, UserType::ModelDeveloper];
    const WHO: &'static str = "admins and model developers";
}

/// SUPERADMIN only.
pub struct Superadmins;
impl Role for Superadmins {
    const ALLOWED: &'static [UserType] = &[];
    const WHO: &'static str = "the superadmin";
}

/// An authenticated caller whose type is allowed by `R`.
pub struct Authorized<R: Role>(pub AuthUser, pub PhantomData<R>);

impl<R: Role> FromRequestParts<AppState> for Authorized<R> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let user = AuthUser::from_request_parts(parts, state).await?;
        Authorized::check(user)
    }
}

impl<R: Role> Authorized<R> {
    /// `user`, if their type is allowed by `R`; else `UnauthorizedError` (403). The role check
    /// of the extractor, for callers that have the user already (the console's pages).
    pub fn check(user: AuthUser) -> Result<Self, ApiError> {
        if !user.user_type.is_one_of(R::ALLOWED) {
            return Err(ApiError::forbidden(format!(
                "Only {} may do this; you are {}.",
                R::WHO,
                user.user_type
            )));
        }
        Ok(Authorized(user, PhantomData))
    }
}
