//! The worker's settings: those every service reads ([`rafiki_service::config`]) plus the
//! worker-only variables (`docs/worker.md`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use rafiki_service::config::{ConfigError, ServiceSettings, Vars};
use rafiki_types::internal::env;
use rafiki_types::model::DependencyPins;

use crate::envs::bound_of_gigabytes;
use crate::sandbox::Sandbox;

/// The store of dependency environments the host's workers share (default:
/// `$RAFIKI_WORK_DIR/../venvs`; the process backend sets `<data_dir>/envs`).
pub const VENV_DIR: &str = env::VENV_DIR;
/// The most gigabytes (10^9 bytes) the store's environments may take; unused ones are evicted,
/// least recently used first, past it (0: no bound; default 50).
pub const ENV_CACHE_MAX_GB: &str = env::ENV_CACHE_MAX_GB;
/// The bound when `RAFIKI_ENV_CACHE_MAX_GB` is unset.
pub const DEFAULT_ENV_CACHE_MAX_GB: f64 = 50.0;
/// Extra arguments for `pip install`, split on whitespace (e.g. `--no-index --find-links /wheels`).
pub const PIP_ARGS: &str = env::PIP_ARGS;
/// `strict` or `nearest`: what to do with a pinned dependency that has no distribution for
/// this Python, for models that do not choose (default `strict`).
pub const DEPENDENCY_PINS: &str = env::DEPENDENCY_PINS;
/// How many trials in a row may fail before the worker gives the model up (default 3).
pub const MAX_CONSECUTIVE_FAILURES: &str = "RAFIKI_MAX_CONSECUTIVE_FAILURES";
/// Train mode: the most megabytes (10^6 bytes) of parameters the worker keeps for
/// `LOCAL_RECENT` / `LOCAL_BEST` trials (default 1000; see [`ParamCacheBounds`]).
pub const PARAM_CACHE_MAX_MB: &str = "RAFIKI_PARAM_CACHE_MAX_MB";
/// Train mode: the most parameter files the worker keeps for `LOCAL_*` trials (default 4,
/// the size of Rafiki's in-memory parameter cache).
pub const PARAM_CACHE_MAX_ENTRIES: &str = "RAFIKI_PARAM_CACHE_MAX_ENTRIES";
/// Inference mode: the most queries in one `predict` call of the model (default 256).
pub const MAX_BATCH_SIZE: &str = "RAFIKI_MAX_BATCH_SIZE";
/// Inference mode: how long the oldest request of a batch may wait for others, in
/// milliseconds (default 0: a batch takes what queued while the model was busy, and an idle
/// model starts at once; see docs/benchmarks.md, "Predictor").
pub const MAX_BATCH_WAIT_MS: &str = "RAFIKI_MAX_BATCH_WAIT_MS";

/// What the worker does: the service type it was started as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Tune one model of a train job.
    Train,
    /// Serve one trained trial's model over HTTP for a predictor.
    Inference,
}

impl FromStr for Mode {
    type Err = ConfigError;

    /// Reads `train` / `TRAIN` and `inference` / `INFERENCE`.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_uppercase().as_str() {
            "TRAIN" => Ok(Mode::Train),
            "INFERENCE" => Ok(Mode::Inference),
            _ => Err(ConfigError(format!(
                "unsupported mode `{s}` (this worker runs `train` or `inference`)"
            ))),
        }
    }
}

impl Mode {
    /// The mode from the first command-line argument, else from `RAFIKI_SERVICE_TYPE`.
    pub fn choose(arg: Option<&str>, service_type: Option<&str>) -> Result<Mode, ConfigError> {
        match (arg, service_type) {
            (Some(arg), _) => arg.parse(),
            (None, Some(kind)) => kind.parse(),
            (None, None) => Err(ConfigError(format!(
                "no mode: run `rafiki-worker train`, `rafiki-worker inference` or set {}",
                env::SERVICE_TYPE
            ))),
        }
    }
}

/// Everything the worker needs to run. Its `Debug` does not show the token (its type,
/// [`ServiceToken`](rafiki_service::config::ServiceToken), hides it), so it may be logged.
#[derive(Clone, Debug)]
pub struct WorkerConfig {
    /// How to reach the admin, and where to listen in inference mode, as every service is told.
    pub service: ServiceSettings,
    /// Caches and scratch files.
    pub work_dir: PathBuf,
    /// The interpreter that has the `rafiki` package.
    pub python: PathBuf,
    /// The shared store of dependency environments.
    pub venv_dir: PathBuf,
    /// The most bytes the store may hold (`None`: no bound).
    pub env_cache_max_bytes: Option<u64>,
    /// Extra `pip install` arguments.
    pub pip_args: Vec<String>,
    /// The pin policy of models that do not choose one.
    pub dependency_pins: DependencyPins,
    /// Failed trials in a row before `POST /internal/train/fail`.
    pub max_consecutive_failures: u32,
    /// Inference mode: the port to listen on (`RAFIKI_PORT`); [`WorkerConfig::check_for`]
    /// requires it in that mode.
    pub port: Option<u16>,
    /// Inference mode: how queries are gathered into `predict` calls.
    pub batching: BatchSettings,
    /// Where model code runs (`RAFIKI_SANDBOX` and friends).
    pub sandbox: Sandbox,
    /// Train mode: how much the parameter cache of `to_cache_params` trials may hold.
    pub param_cache: ParamCacheBounds,
}

/// The bounds of a train worker's parameter cache (`crate::param_cache`). Past either, the
/// oldest parameters go first, except the best-scoring ones and the newest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ParamCacheBounds {
    /// The most bytes of parameter files; a single file larger than this is not cached.
    pub max_bytes: u64,
    /// The most parameter files (at least 1).
    pub max_entries: usize,
}

impl Default for ParamCacheBounds {
    /// 1000 MB and 4 files: Rafiki kept 4 parameter sets in memory per worker; on disk the
    /// byte bound is what protects the host.
    fn default() -> Self {
        ParamCacheBounds {
            max_bytes: 1_000_000_000,
            max_entries: 4,
        }
    }
}

/// How an inference worker gathers the queries of concurrent requests into one `predict` call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchSettings {
    /// The most queries in one call; a single request with more is still one call.
    pub max_batch_size: usize,
    /// How long the oldest waiting request may wait for others before the call is made.
    pub max_wait: Duration,
}

impl Default for BatchSettings {
    /// 256 queries, no wait. Requests that arrive while the model predicts queue up and make
    /// the next batch, so batches grow with the load by themselves; a wait would only delay
    /// the first request after an idle spell (measured: +2.4 ms at p50, no more throughput).
    fn default() -> Self {
        BatchSettings {
            max_batch_size: 256,
            max_wait: Duration::ZERO,
        }
    }
}

impl WorkerConfig {
    /// Reads the process environment.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Reads settings through `lookup` (variable name to value), so tests need not touch the
    /// process environment.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, ConfigError> {
        let vars = Vars::new(&lookup);
        let service = ServiceSettings::from_vars(&vars)?;
        let work_dir = PathBuf::from(vars.required(env::WORK_DIR)?);
        let venv_dir = vars
            .get(VENV_DIR)
            .map(PathBuf::from)
            .unwrap_or_else(|| default_venv_dir(&work_dir));
        let env_cache_max_bytes = match vars.get(ENV_CACHE_MAX_GB) {
            None => bound_of_gigabytes(DEFAULT_ENV_CACHE_MAX_GB),
            Some(text) => match text.trim().parse::<f64>() {
                Ok(gb) if gb.is_finite() && gb >= 0.0 => bound_of_gigabytes(gb),
                _ => {
                    return Err(ConfigError(format!(
                        "{ENV_CACHE_MAX_GB} must be a number of gigabytes, 0 for no bound, got `{text}`"
                    )))
                }
            },
        };
        let dependency_pins = match vars.get(DEPENDENCY_PINS) {
            None => DependencyPins::default(),
            Some(text) => text.trim().parse().map_err(|_| {
                ConfigError(format!(
                    "{DEPENDENCY_PINS} must be `strict` or `nearest`, got `{text}`"
                ))
            })?,
        };
        let max_consecutive_failures = match vars.get(MAX_CONSECUTIVE_FAILURES) {
            None => 3,
            Some(text) => match text.trim().parse::<u32>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(ConfigError(format!(
                        "{MAX_CONSECUTIVE_FAILURES} must be a positive integer, got `{text}`"
                    )))
                }
            },
        };
        let port = vars.port()?;
        let mut batching = BatchSettings::default();
        if let Some(text) = vars.get(MAX_BATCH_SIZE) {
            batching.max_batch_size = match text.trim().parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(ConfigError(format!(
                        "{MAX_BATCH_SIZE} must be a positive integer, got `{text}`"
                    )))
                }
            };
        }
        if let Some(text) = vars.get(MAX_BATCH_WAIT_MS) {
            batching.max_wait = match text.trim().parse::<f64>() {
                Ok(ms) if ms.is_finite() && (0.0..=60_000.0).contains(&ms) => {
                    Duration::from_secs_f64(ms / 1000.0)
                }
                _ => {
                    return Err(ConfigError(format!(
                        "{MAX_BATCH_WAIT_MS} must be milliseconds between 0 and 60000, got `{text}`"
                    )))
                }
            };
        }
        let mut param_cache = ParamCacheBounds::default();
        if let Some(text) = vars.get(PARAM_CACHE_MAX_MB) {
            param_cache.max_bytes = match text.trim().parse::<f64>() {
                Ok(mb) if mb.is_finite() && mb > 0.0 && mb <= 1e9 => (mb * 1e6) as u64,
                _ => {
                    return Err(ConfigError(format!(
                        "{PARAM_CACHE_MAX_MB} must be a positive number of megabytes, got `{text}`"
                    )))
                }
            };
        }
        if let Some(text) = vars.get(PARAM_CACHE_MAX_ENTRIES) {
            param_cache.max_entries = match text.trim().parse::<usize>() {
                Ok(n) if n >= 1 => n,
                _ => {
                    return Err(ConfigError(format!(
                        "{PARAM_CACHE_MAX_ENTRIES} must be a positive integer, got `{text}`"
                    )))
                }
            };
        }
        Ok(WorkerConfig {
            service,
            work_dir,
            python: PathBuf::from(
                vars.get(env::PYTHON)
                    .unwrap_or_else(|| "python3".to_owned()),
            ),
            venv_dir,
            env_cache_max_bytes,
            pip_args: vars
                .get(PIP_ARGS)
                .map(|v| v.split_whitespace().map(str::to_owned).collect())
                .unwrap_or_default(),
            dependency_pins,
            max_consecutive_failures,
            port,
            batching,
            sandbox: Sandbox::from_lookup(&lookup)?,
            param_cache,
        })
    }

    /// Checks the settings that only `mode` needs (inference mode listens on `RAFIKI_PORT`).
    pub fn check_for(&self, mode: Mode) -> Result<(), ConfigError> {
        if mode == Mode::Inference && self.port.is_none() {
            return Err(ConfigError(format!(
                "{} is not set (inference mode listens on it)",
                env::PORT
            )));
        }
        Ok(())
    }
}

/// `$RAFIKI_WORK_DIR/../venvs`: next to the work dir, so environments outlive one service's
/// folder and are shared by the services of a host.
fn default_venv_dir(work_dir: &Path) -> PathBuf {
    match work_dir.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.join("venvs"),
        _ => work_dir.join("venvs"),
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

    const BASE: [(&str, &str); 3] = [
        ("RAFIKI_ADMIN_URL", "http://127.0.0.1:3000/"),
        ("RAFIKI_SERVICE_TOKEN", "secret"),
        ("RAFIKI_WORK_DIR", "/srv/rafiki/work/svc-1"),
    ];

    #[test]
    fn defaults_fill_in_everything_optional() {
        let config = WorkerConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(config.service.admin_url, "http://127.0.0.1:3000");
        assert_eq!(config.python, PathBuf::from("python3"));
        assert_eq!(config.venv_dir, PathBuf::from("/srv/rafiki/work/venvs"));
        assert_eq!(config.max_consecutive_failures, 3);
        assert_eq!(config.env_cache_max_bytes, Some(50_000_000_000));
        assert_eq!(config.dependency_pins, DependencyPins::Strict);
        assert!(config.pip_args.is_empty());
        assert_eq!(config.param_cache, ParamCacheBounds::default());
        assert!(!format!("{config:?}").contains("secret"));
    }

    #[test]
    fn worker_variables_override_the_defaults() {
        let mut vars = BASE.to_vec();
        vars.extend([
            ("RAFIKI_VENV_DIR", "/opt/venvs"),
            ("RAFIKI_PIP_ARGS", " --no-index  --find-links /wheels "),
            ("RAFIKI_MAX_CONSECUTIVE_FAILURES", "5"),
            ("RAFIKI_PYTHON", "/usr/bin/python3.11"),
            ("RAFIKI_ENV_CACHE_MAX_GB", "0.5"),
            ("RAFIKI_DEPENDENCY_PINS", "nearest"),
            ("RAFIKI_PARAM_CACHE_MAX_MB", "2.5"),
            ("RAFIKI_PARAM_CACHE_MAX_ENTRIES", "7"),
        ]);
        let config = WorkerConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(
            config.param_cache,
            ParamCacheBounds {
                max_bytes: 2_500_000,
                max_entries: 7
            }
        );
        assert_eq!(config.venv_dir, PathBuf::from("/opt/venvs"));
        assert_eq!(config.env_cache_max_bytes, Some(500_000_000));
        assert_eq!(config.dependency_pins, DependencyPins::Nearest);
        assert_eq!(
            config.pip_args,
            ["--no-index", "--find-links", "/wheels"].map(String::from)
        );
        assert_eq!(config.max_consecutive_failures, 5);
        assert_eq!(config.python, PathBuf::from("/usr/bin/python3.11"));
    }

    #[test]
    fn missing_or_bad_settings_are_named() {
        let err = WorkerConfig::from_lookup(lookup(&BASE[..2])).unwrap_err();
        assert!(err.0.contains("RAFIKI_WORK_DIR"), "{err}");
        let mut vars = BASE.to_vec();
        vars.push(("RAFIKI_MAX_CONSECUTIVE_FAILURES", "0"));
        let err = WorkerConfig::from_lookup(lookup(&vars)).unwrap_err();
        assert!(err.0.contains("RAFIKI_MAX_CONSECUTIVE_FAILURES"), "{err}");
        let mut vars = BASE.to_vec();
        vars[0] = ("RAFIKI_ADMIN_URL", "127.0.0.1:3000");
        assert!(WorkerConfig::from_lookup(lookup(&vars)).is_err());
        let mut vars = BASE.to_vec();
        vars.push(("RAFIKI_DEPENDENCY_PINS", "closest"));
        let err = WorkerConfig::from_lookup(lookup(&vars)).unwrap_err();
        assert!(err.0.contains("RAFIKI_DEPENDENCY_PINS"), "{err}");
        for bad in ["-1", "lots", "inf"] {
            let mut vars = BASE.to_vec();
            vars.push(("RAFIKI_ENV_CACHE_MAX_GB", bad));
            let err = WorkerConfig::from_lookup(lookup(&vars)).unwrap_err();
            assert!(err.0.contains("RAFIKI_ENV_CACHE_MAX_GB"), "{err}");
        }
        let mut vars = BASE.to_vec();
        vars.push(("RAFIKI_ENV_CACHE_MAX_GB", "0"));
        let config = WorkerConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(config.env_cache_max_bytes, None, "0: no bound");
    }

    #[test]
    fn the_argument_wins_over_the_service_type() {
        assert_eq!(Mode::choose(Some("train"), None).unwrap(), Mode::Train);
        assert_eq!(Mode::choose(None, Some("TRAIN")).unwrap(), Mode::Train);
        assert_eq!(
            Mode::choose(Some("inference"), Some("TRAIN")).unwrap(),
            Mode::Inference
        );
        assert_eq!(
            Mode::choose(None, Some("INFERENCE")).unwrap(),
            Mode::Inference
        );
        assert!(Mode::choose(Some("predict"), None).is_err());
        assert!(Mode::choose(None, None).is_err());
    }

    #[test]
    fn inference_settings_are_read_and_checked() {
        let config = WorkerConfig::from_lookup(lookup(&BASE)).unwrap();
        assert_eq!(config.service.bind_host, "127.0.0.1");
        assert_eq!(config.port, None);
        assert_eq!(config.batching, BatchSettings::default());
        assert!(config.check_for(Mode::Train).is_ok());
        let err = config.check_for(Mode::Inference).unwrap_err();
        assert!(err.0.contains("RAFIKI_PORT"), "{err}");

        let mut vars = BASE.to_vec();
        vars.extend([
            ("RAFIKI_BIND_HOST", "0.0.0.0"),
            ("RAFIKI_PORT", "41234"),
            ("RAFIKI_MAX_BATCH_SIZE", "32"),
            ("RAFIKI_MAX_BATCH_WAIT_MS", "0.5"),
        ]);
        let config = WorkerConfig::from_lookup(lookup(&vars)).unwrap();
        assert_eq!(config.service.bind_host, "0.0.0.0");
        assert_eq!(config.port, Some(41234));
        assert!(config.check_for(Mode::Inference).is_ok());
        assert_eq!(
            config.batching,
            BatchSettings {
                max_batch_size: 32,
                max_wait: Duration::from_micros(500)
            }
        );
        for (name, bad) in [
            ("RAFIKI_PARAM_CACHE_MAX_MB", "0"),
            ("RAFIKI_PARAM_CACHE_MAX_MB", "lots"),
            ("RAFIKI_PARAM_CACHE_MAX_ENTRIES", "0"),
            ("RAFIKI_PORT", "70000"),
            ("RAFIKI_MAX_BATCH_SIZE", "0"),
            ("RAFIKI_MAX_BATCH_WAIT_MS", "-1"),
        ] {
            let mut vars = BASE.to_vec();
            vars.push((name, bad));
            let err = WorkerConfig::from_lookup(lookup(&vars)).unwrap_err();
            assert!(err.0.contains(name), "{err}");
        }
    }
}
