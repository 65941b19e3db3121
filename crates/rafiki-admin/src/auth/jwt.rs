//! JWTs per the contract: HS256, claims `user_id` (string UUID), `user_type`, `exp` (now + 1
//! hour). Only HS256 is accepted, so `alg: none` and algorithm-confusion tokens are refused.

use chrono::{Duration, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use rafiki_types::user::UserType;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// How long a token lives.
pub const TOKEN_LIFETIME: Duration = Duration::hours(1);

/// The claims of a Rafiki token.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    /// The user's id.
    pub user_id: Uuid,
    /// The user's type when the token was issued, for clients: the admin acts with the type
    /// it has stored, so a stale claim grants nothing.
    pub user_type: UserType,
    /// Expiry, seconds since the epoch.
    pub exp: i64,
}

/// Signs and checks tokens with the configured secret.
pub struct TokenKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    validation: Validation,
}

impl TokenKeys {
    /// Keys from the HS256 secret (refused when empty; settings require 32 characters).
    pub fn new(secret: &SecretString) -> jsonwebtoken::errors::Result<Self> {
        let bytes = secret.expose_secret().as_bytes();
        let mut validation = Validation::new(Algorithm::HS256);
        // The same server issues and checks tokens, so no clock skew needs forgiving.
        validation.leeway = 0;
        validation.set_required_spec_claims(&["exp"]);
        Ok(TokenKeys {
            encoding: EncodingKey::from_secret(bytes)?,
            decoding: DecodingKey::from_secret(bytes)?,
            validation,
        })
    }

    /// A token for this user, valid for [`TOKEN_LIFETIME`].
    pub fn issue(&self, user_id: Uuid, user_type: UserType) -> anyhow::Result<String> {
        let claims = Claims {
            user_id,
            user_type,
            exp: (Utc::now() + TOKEN_LIFETIME).timestamp(),
        };
        Ok(jsonwebtoken::encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &self.encoding,
        )?)
    }

    /// The claims of a valid, unexpired token signed with our secret.
    pub fn verify(&self, token: &str) -> jsonwebtoken::errors::Result<Claims> {
        jsonwebtoken::decode::<Claims>(token, &self.decoding, &self.validation).map(|d| d.claims)
    }
}
