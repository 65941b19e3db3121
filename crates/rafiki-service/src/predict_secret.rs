//! The inference job's predict secret (`RAFIKI_PREDICT_SECRET`): the orchestrator gives the same
//! random secret to a job's predictor and inference workers; the predictor sends it as
//! `Authorization: Bearer <secret>` and workers answer nobody else, so a service that can reach
//! a worker's port (another job's worker on a shared network, a model on the same host) cannot
//! query it. Workers check requests with this type; the predictor builds its header with it.

use std::fmt;

use rafiki_types::internal::env;
use subtle::ConstantTimeEq;

use crate::config::ConfigError;

/// The shortest secret accepted: the orchestrator makes 64 hex digits (32 random bytes).
pub const MIN_LEN: usize = 32;

/// What a request presented, against the secret.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Presented {
    /// `Authorization: Bearer <the secret>`.
    Valid,
    /// No `Authorization: Bearer ...` header.
    Missing,
    /// A bearer value that is not the secret.
    Wrong,
}

/// The secret; never shown by `Debug`.
#[derive(Clone)]
pub struct PredictSecret(String);

impl fmt::Debug for PredictSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PredictSecret(..)")
    }
}

impl PredictSecret {
    /// A secret of at least [`MIN_LEN`] characters, without spaces.
    pub fn new(secret: impl Into<String>) -> Result<PredictSecret, ConfigError> {
        let secret = secret.into();
        if secret.len() < MIN_LEN || secret.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(ConfigError(format!(
                "{} must be at least {MIN_LEN} characters without spaces",
                env::PREDICT_SECRET
            )));
        }
        Ok(PredictSecret(secret))
    }

    /// The secret of `RAFIKI_PREDICT_SECRET`.
    pub fn from_env() -> Result<PredictSecret, ConfigError> {
        match std::env::var(env::PREDICT_SECRET) {
            Ok(secret) => Self::new(secret),
            Err(_) => Err(ConfigError(format!(
                "{} is not set (the inference job's predictor sends it)",
                env::PREDICT_SECRET
            ))),
        }
    }

    /// The `Authorization` header's value the predictor sends.
    pub fn header_value(&self) -> String {
        format!("Bearer {}", self.0)
    }

    /// Checks an `Authorization` header's value in constant time (for a given length).
    pub fn check(&self, authorization: Option<&[u8]>) -> Presented {
        let Some(token) = authorization.and_then(|v| v.strip_prefix(b"Bearer ")) else {
            return Presented::Missing;
        };
        if bool::from(token.ct_eq(self.0.as_bytes())) {
            Presented::Valid
        } else {
            Presented::Wrong
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_exact_bearer_secret_is_valid() {
        let secret = PredictSecret::new("s".repeat(40)).unwrap();
        let header = secret.header_value();
        assert_eq!(secret.check(Some(header.as_bytes())), Presented::Valid);
        assert_eq!(secret.check(None), Presented::Missing);
        assert_eq!(secret.check(Some(b"Basic abc")), Presented::Missing);
        let longer = format!("{header}s");
        assert_eq!(secret.check(Some(longer.as_bytes())), Presented::Wrong);
        assert_eq!(
            secret.check(Some(&header.as_bytes()[..20])),
            Presented::Wrong
        );
        assert_eq!(secret.check(Some(b"Bearer ")), Presented::Wrong);
        assert!(!format!("{secret:?}").contains('s'.to_string().repeat(5).as_str()));
    }

    #[test]
    fn short_or_spaced_secrets_are_refused() {
        assert!(PredictSecret::new("short").is_err());
        assert!(PredictSecret::new(format!("{} x", "a".repeat(40))).is_err());
    }
}
