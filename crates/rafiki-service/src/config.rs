//! The settings every service reads alike from the environment the backend sets
//! (`docs/internal-api.md`): where the admin is, the service's token and id, where it listens,
//! and how its admin client retries ([`ServiceSettings`]). Each service adds its own variables
//! on top (`docs/worker.md`, `docs/predictor.md`).

use std::fmt;
use std::time::Duration;

use rafiki_types::internal::env;

use crate::client::{AdminClient, ClientError};

/// A setting is missing or malformed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("configuration: {0}")]
pub struct ConfigError(pub String);

/// How the admin client retries transient failures (connect errors, timeouts, 5xx).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RetryPolicy {
    /// Attempts in all, the first included.
    pub attempts: u32,
    /// Wait before the second attempt; doubled after each failure.
    pub initial_backoff: Duration,
    /// The longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Default for RetryPolicy {
    /// About a minute of retries: 0.25 s, 0.5 s, 1 s, ... capped at 10 s, 10 attempts.
    fn default() -> Self {
        RetryPolicy {
            attempts: 10,
            initial_backoff: Duration::from_millis(250),
            max_backoff: Duration::from_secs(10),
        }
    }
}

impl RetryPolicy {
    /// The wait after failed attempt number `attempt` (1-based).
    pub fn backoff(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.saturating_sub(1).min(16));
        self.initial_backoff
            .saturating_mul(factor)
            .min(self.max_backoff)
    }
}

/// What every service is told alike: how to reach the admin, and where to listen. Its `Debug`
/// does not show the token ([`ServiceToken`] hides it), so it may be logged.
#[derive(Clone, Debug)]
pub struct ServiceSettings {
    /// Base URL of the admin, without a trailing slash (`RAFIKI_ADMIN_URL`).
    pub admin_url: String,
    /// This service's id, for the logs (`RAFIKI_SERVICE_ID`).
    pub service_id: Option<String>,
    /// Bearer token of the internal API (`RAFIKI_SERVICE_TOKEN`).
    pub service_token: ServiceToken,
    /// The address to listen on (`RAFIKI_BIND_HOST`, default `127.0.0.1`).
    pub bind_host: String,
    /// Retries of the admin client.
    pub retry: RetryPolicy,
}

/// A service's bearer token of the internal API; never shown by `Debug`.
#[derive(Clone)]
pub struct ServiceToken(String);

impl ServiceToken {
    /// The token itself, for the `Authorization` header.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl From<String> for ServiceToken {
    fn from(token: String) -> Self {
        ServiceToken(token)
    }
}

impl fmt::Debug for ServiceToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ServiceToken(..)")
    }
}

impl ServiceSettings {
    /// Reads the settings through `vars`; the default retry policy.
    pub fn from_vars(vars: &Vars<'_>) -> Result<Self, ConfigError> {
        Ok(ServiceSettings {
            admin_url: vars.admin_url()?,
            service_id: vars.service_id(),
            service_token: vars.service_token()?.into(),
            bind_host: vars.bind_host(),
            retry: RetryPolicy::default(),
        })
    }

    /// A client of the admin's internal API as this service, retrying as [`Self::retry`] says.
    pub fn admin_client(&self) -> Result<AdminClient, ClientError> {
        AdminClient::new(&self.admin_url, self.service_token.expose(), self.retry)
    }
}

/// Settings read through a lookup (variable name to value), so tests need not touch the
/// process environment. A blank value counts as unset.
pub struct Vars<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl<'a> Vars<'a> {
    /// Reads through `lookup`.
    pub fn new(lookup: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Vars { lookup }
    }

    /// The value of `name`, unless unset or blank.
    pub fn get(&self, name: &str) -> Option<String> {
        (self.lookup)(name).filter(|v| !v.trim().is_empty())
    }

    /// The value of `name`, which must be set.
    pub fn required(&self, name: &str) -> Result<String, ConfigError> {
        self.get(name)
            .ok_or_else(|| ConfigError(format!("{name} is not set")))
    }

    /// `RAFIKI_ADMIN_URL`, an http(s) URL, without a trailing slash.
    pub fn admin_url(&self) -> Result<String, ConfigError> {
        let admin_url = self
            .required(env::ADMIN_URL)?
            .trim_end_matches('/')
            .to_owned();
        if !(admin_url.starts_with("http://") || admin_url.starts_with("https://")) {
            return Err(ConfigError(format!(
                "{} must be an http(s) URL, got `{admin_url}`",
                env::ADMIN_URL
            )));
        }
        Ok(admin_url)
    }

    /// `RAFIKI_SERVICE_ID`, for the logs.
    pub fn service_id(&self) -> Option<String> {
        self.get(env::SERVICE_ID)
    }

    /// `RAFIKI_SERVICE_TOKEN`, the bearer token of the internal API.
    pub fn service_token(&self) -> Result<String, ConfigError> {
        self.required(env::SERVICE_TOKEN)
    }

    /// `RAFIKI_BIND_HOST`, the address to listen on (default `127.0.0.1`).
    pub fn bind_host(&self) -> String {
        self.get(env::BIND_HOST)
            .unwrap_or_else(|| "127.0.0.1".to_owned())
    }

    /// `RAFIKI_PORT`, the port to listen on, if set.
    pub fn port(&self) -> Result<Option<u16>, ConfigError> {
        self.get(env::PORT)
            .map(|text| {
                text.trim().parse::<u16>().map_err(|_| {
                    ConfigError(format!("{} must be a port number, got `{text}`", env::PORT))
                })
            })
            .transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_the_cap() {
        let retry = RetryPolicy::default();
        assert_eq!(retry.backoff(1), Duration::from_millis(250));
        assert_eq!(retry.backoff(2), Duration::from_millis(500));
        assert_eq!(retry.backoff(30), Duration::from_secs(10));
    }
}
