//! Users, their types (roles) and the DTOs of routes 1–4 (tokens and users).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

wire_enum!(
    /// A user's role. SUPERADMIN passes every role check.
    UserType {
        /// Seeded at start-up; manages admins.
        Superadmin,
        /// Manages users, sees everything.
        Admin,
        /// Uploads models and runs jobs.
        ModelDeveloper,
        /// Uploads datasets, runs jobs with available models, predicts.
        AppDeveloper,
    }
);

impl UserType {
    /// Whether a user of this type may create or ban a user of type `other`: only SUPERADMIN
    /// manages ADMIN and SUPERADMIN users; ADMIN manages developers.
    pub fn can_manage(self, other: UserType) -> bool {
        match self {
            UserType::Superadmin => true,
            UserType::Admin => matches!(other, UserType::ModelDeveloper | UserType::AppDeveloper),
            UserType::ModelDeveloper | UserType::AppDeveloper => false,
        }
    }

    /// Whether this type passes a check that admits `allowed` (SUPERADMIN passes all).
    pub fn is_one_of(self, allowed: &[UserType]) -> bool {
        self == UserType::Superadmin || allowed.contains(&self)
    }
}

/// `POST /tokens` request.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    /// The account's email (case-insensitive).
    pub email: String,
    /// The account's password.
    pub password: String,
}

/// `POST /tokens` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginResponse {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's type.
    pub user_type: UserType,
    /// A bearer token valid for one hour.
    pub token: String,
}

/// `POST /users` request. `user_type` stays a string here so an unknown one can be answered
/// with `InvalidUserTypeError` rather than a generic parse error.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreateUserRequest {
    /// The new account's email; unique, case-insensitively.
    pub email: String,
    /// The new account's password.
    pub password: String,
    /// One of SUPERADMIN, ADMIN, MODEL_DEVELOPER, APP_DEVELOPER.
    pub user_type: String,
}

/// `POST /users` response.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct CreatedUser {
    /// The new user's id.
    pub id: Uuid,
    /// Their email.
    pub email: String,
    /// Their type.
    pub user_type: UserType,
}

/// A user as listed by `GET /users` and returned by `DELETE /users`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct User {
    /// The user's id.
    pub id: Uuid,
    /// Their email.
    pub email: String,
    /// Their type.
    pub user_type: UserType,
    /// When they were banned, or `null`.
    #[serde(with = "crate::time::rfc3339_option")]
    #[cfg_attr(feature = "openapi", schema(value_type = Option<String>, format = DateTime))]
    pub banned_date: Option<DateTime<Utc>>,
}

/// `DELETE /users` request: ban the user with this email.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BanUserRequest {
    /// The email of the user to ban.
    pub email: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn user_types_read_and_write_their_contract_names() {
        for t in UserType::VARIANTS {
            let name: &'static str = t.into();
            assert_eq!(serde_json::to_value(t).unwrap(), name);
            assert_eq!(name.parse::<UserType>().unwrap(), *t);
        }
        assert_eq!(UserType::ModelDeveloper.to_string(), "MODEL_DEVELOPER");
        assert!("OWNER".parse::<UserType>().is_err());
    }

    #[test]
    fn only_superadmin_manages_admins() {
        use UserType::*;
        assert!(Superadmin.can_manage(Admin));
        assert!(Superadmin.can_manage(Superadmin));
        assert!(!Admin.can_manage(Admin));
        assert!(!Admin.can_manage(Superadmin));
        assert!(Admin.can_manage(ModelDeveloper));
        assert!(Admin.can_manage(AppDeveloper));
        assert!(!ModelDeveloper.can_manage(AppDeveloper));
    }
}
