//! The predictor's settings: those every service reads ([`rafiki_service::config`]) plus the
//! predictor-only variables (`docs/predictor.md`).

use std::time::Duration;

use rafiki_service::config::{ConfigError, ServiceSettings, Vars};
use rafiki_service::predict_secret::PredictSecret;
use rafiki_types::internal::env;

/// How long one worker may take to answer one request, in milliseconds (default 10000).
pub const WORKER_TIMEOUT_MS: &str = "RAFIKI_PREDICT_TIMEOUT_MS";
/// How often the predictor asks the admin for the job's workers, in milliseconds (default 1000).
pub const POLL_INTERVAL_MS: &str = "RAFIKI_PREDICTOR_POLL_MS";

/// Everything the predictor needs to run. Its `Debug` shows neither the token nor the secret
/// (their types hide them), so it may be logged.
#[derive(Clone, Debug)]
pub struct PredictorConfig {
    /// How to reach the admin and where to listen, as every service is told. Its retries are
    /// those of the first call to the admin (later polls are not retried: the next poll comes
    /// soon anyway).
    pub service: ServiceSettings,
    /// The inference job's secret, sent to its workers (`RAFIKI_PREDICT_SECRET`).
    pub predict_secret: PredictSecret,
    /// The port to listen on (`RAFIKI_PORT`).
    pub port: u16,
    /// How long one worker may take to answer one request.
    pub worker_timeout: Duration,
    /// How often the job's workers are asked for.
    pub poll_interval: Duration,
}

impl PredictorConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (variable name to value).
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(&lookup);
        let service = ServiceSettings::from_vars(&vars)?;
        let port = vars
            .port()?
            .ok_or_else(|| ConfigError(format!("{} is not set", env::PORT)))?;
        let millis = |name: &str, default: u64| -> Result<Duration, ConfigError> {
            match vars.get(name) {
                None => Ok(Duration::from_millis(default)),
                Some(text) => match text.trim().parse::<u64>() {
                    Ok(ms) if ms >= 1 => Ok(Duration::from_millis(ms)),
                    _ => Err(ConfigError(format!(
                        "{name} must be a positive number of milliseconds, got `{text}`"
                    ))),
                },
            }
        };
        Ok(PredictorConfig {
            service,
            predict_secret: PredictSecret::new(vars.required(env::PREDICT_SECRET)?)?,
            port,
            worker_timeout: millis(WORKER_TIMEOUT_MS, 10_000)?,
            poll_interval: millis(POLL_INTERVAL_MS, 1_000)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn lookup(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |name| map.get(name).cloned()
    }

    const BASE: [(&str, &str); 4] = [
        ("RAFIKI_ADMIN_URL", "http://127.0.0.1:3000/"),
        ("RAFIKI_SERVICE_TOKEN", "token-token"),
        ("RAFIKI_PORT", "40001"),
        (
            "RAFIKI_PREDICT_SECRET",
            "predict-secret-predict-secret-predict-secret",
        ),
    ];

    #[test]
    fn defaults_fill_in_everything_optional() {
        let config = PredictorConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(config.service.admin_url, "http://127.0.0.1:3000");
        assert_eq!(config.service.bind_host, "127.0.0.1");
        assert_eq!(config.port, 40001);
        assert_eq!(config.worker_timeout, Duration::from_secs(10));
        assert_eq!(config.poll_interval, Duration::from_secs(1));
        let shown = format!("{config:?}");
        assert!(!shown.contains("token-token"), "{shown}");
        assert!(!shown.contains("predict-secret"), "{shown}");
        assert_eq!(
            config.predict_secret.header_value(),
            "Bearer predict-secret-predict-secret-predict-secret"
        );
    }

    #[test]
    fn predictor_variables_override_the_defaults() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("RAFIKI_BIND_HOST", "0.0.0.0"),
            ("RAFIKI_PREDICT_TIMEOUT_MS", "250"),
            ("RAFIKI_PREDICTOR_POLL_MS", "100"),
        ]);
        let config = PredictorConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(config.service.bind_host, "0.0.0.0");
        assert_eq!(config.worker_timeout, Duration::from_millis(250));
        assert_eq!(config.poll_interval, Duration::from_millis(100));
    }

    #[test]
    fn missing_or_bad_settings_are_named() {
        let err = PredictorConfig::from_lookup(lookup(&BASE[..2])).unwrap_err();
        assert!(err.0.contains("RAFIKI_PORT"), "{err}");
        let err = PredictorConfig::from_lookup(lookup(&BASE[..3])).unwrap_err();
        assert!(err.0.contains("RAFIKI_PREDICT_SECRET"), "{err}");
        for (name, bad) in [
            ("RAFIKI_PREDICT_SECRET", "too-short"),
            ("RAFIKI_PORT", "http"),
            ("RAFIKI_PREDICT_TIMEOUT_MS", "0"),
            ("RAFIKI_PREDICTOR_POLL_MS", "soon"),
            ("RAFIKI_ADMIN_URL", "127.0.0.1:3000"),
        ] {
            let mut vars = BASE.to_vec();
            vars.retain(|(k, _)| *k != name);
            vars.push((name, bad));
            let err = PredictorConfig::from_lookup(lookup(&vars)).unwrap_err();
            assert!(err.0.contains(name), "{err}");
        }
    }
}
