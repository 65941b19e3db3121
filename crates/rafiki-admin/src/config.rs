//! Settings: `config/default.toml` (embedded in the binary), then an optional file named by
//! `RAFIKI_CONFIG`, then environment variables. The environment names are fixed because tools
//! outside the project rely on them. A bad value fails start-up with a message naming the key.

use std::net::IpAddr;
use std::path::PathBuf;

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::images::AllowedImages;

/// The defaults, compiled in so the binary runs from any directory.
const DEFAULTS: &str = include_str!("../../../config/default.toml");

/// Environment variable -> settings key. `RAFIKI_CONFIG` is not here: it names a file.
pub const ENV_KEYS: &[(&str, &str)] = &[
    ("DATABASE_URL", "database_url"),
    ("ADMIN_PORT", "admin_port"),
    ("SUPERADMIN_PASSWORD", "superadmin_password"),
    ("APP_SECRET", "app_secret"),
    ("RAFIKI_DATA_DIR", "data_dir"),
    ("RAFIKI_BACKEND", "backend"),
    ("RAFIKI_ADDR", "addr"),
    ("RAFIKI_BIND_HOST", "bind_host"),
    ("RAFIKI_DB_MAX_CONNECTIONS", "db_max_connections"),
    ("RAFIKI_MAX_JSON_BYTES", "max_json_bytes"),
    ("RAFIKI_BAN_REFRESH_MS", "ban_refresh_ms"),
    ("RAFIKI_MAX_DATASET_BYTES", "max_dataset_bytes"),
    ("RAFIKI_MAX_MODEL_BYTES", "max_model_bytes"),
    (
        "RAFIKI_DATASET_URL_TIMEOUT_SECS",
        "dataset_url_timeout_secs",
    ),
    ("RAFIKI_WORKER_IMAGE", "worker_image"),
    ("RAFIKI_GPUS", "gpus"),
    ("RAFIKI_WORKER_BIN", "worker_bin"),
    ("RAFIKI_PREDICTOR_BIN", "predictor_bin"),
    ("RAFIKI_PYTHON", "python"),
    ("RAFIKI_MAX_PARAMS_BYTES", "max_params_bytes"),
    ("RAFIKI_SUPERVISE_MS", "supervise_ms"),
    ("RAFIKI_MAX_SERVICE_RESTARTS", "max_service_restarts"),
    ("RAFIKI_SERVICE_ADMIN_URL", "service_admin_url"),
    ("RAFIKI_PREDICTOR_IMAGE", "predictor_image"),
    ("RAFIKI_DOCKER_PROJECT", "docker_project"),
    ("RAFIKI_DOCKER_CPUS", "docker_cpus"),
    ("RAFIKI_DOCKER_MEMORY_MB", "docker_memory_mb"),
    ("RAFIKI_DOCKER_PIDS_LIMIT", "docker_pids_limit"),
    ("RAFIKI_ALLOWED_IMAGES", "allowed_images"),
];

/// The superadmin password allowed only with `--dev`.
pub const DEV_SUPERADMIN_PASSWORD: &str = "rafiki";
/// The signing secret used only with `--dev`.
const DEV_APP_SECRET: &str = "rafiki-dev-secret-never-use-in-production";
/// Shortest `APP_SECRET` accepted: an HS256 key much shorter than this is guessable.
const MIN_APP_SECRET_LEN: usize = 32;

/// Where services (workers, predictors) run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendKind {
    /// Child processes of the admin on this host: the embedded default.
    Process,
    /// Docker containers through the engine's API.
    Docker,
}

/// What the configuration sources hold, before secrets are resolved.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    database_url: SecretString,
    db_max_connections: u32,
    bind_host: IpAddr,
    admin_port: u16,
    addr: String,
    data_dir: PathBuf,
    backend: BackendKind,
    max_json_bytes: usize,
    ban_refresh_ms: u64,
    max_dataset_bytes: u64,
    max_model_bytes: u64,
    dataset_url_timeout_secs: u64,
    worker_image: String,
    #[serde(deserialize_with = "text_or_number")]
    gpus: String,
    worker_bin: Option<PathBuf>,
    predictor_bin: Option<PathBuf>,
    python: String,
    max_params_bytes: u64,
    supervise_ms: u64,
    max_service_restarts: i32,
    service_admin_url: Option<String>,
    predictor_image: String,
    #[serde(deserialize_with = "text_or_number")]
    docker_project: String,
    docker_cpus: f64,
    docker_memory_mb: u64,
    docker_pids_limit: u64,
    allowed_images: String,
    superadmin_password: Option<SecretString>,
    app_secret: Option<SecretString>,
}

/// Validated settings of the admin.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres URL.
    pub database_url: SecretString,
    /// Size of the database pool.
    pub db_max_connections: u32,
    /// Address the HTTP server binds to.
    pub bind_host: IpAddr,
    /// Port of the HTTP server (0 picks a free one, for tests).
    pub admin_port: u16,
    /// Host name clients use to reach this machine.
    pub addr: String,
    /// Where datasets, model files and parameters are stored.
    pub data_dir: PathBuf,
    /// Where services run.
    pub backend: BackendKind,
    /// Largest JSON request body, in bytes.
    pub max_json_bytes: usize,
    /// How often the banned-user list is re-read, in milliseconds.
    pub ban_refresh_ms: u64,
    /// Largest dataset accepted (uploaded or downloaded), in bytes.
    pub max_dataset_bytes: u64,
    /// Largest model file accepted, in bytes.
    pub max_model_bytes: u64,
    /// Longest a `dataset_url` download may take, in seconds.
    pub dataset_url_timeout_secs: u64,
    /// Worker image of models uploaded without `docker_image`.
    pub worker_image: String,
    /// GPU device ids services may be given (`RAFIKI_GPUS`; `auto`: what `nvidia-smi` lists).
    pub gpus: Vec<i32>,
    /// The `rafiki-worker` binary the process backend launches.
    pub worker_bin: PathBuf,
    /// The `rafiki-predictor` binary the process backend launches.
    pub predictor_bin: PathBuf,
    /// The Python interpreter workers run models with.
    pub python: String,
    /// Largest trial parameters accepted from a worker, in bytes.
    pub max_params_bytes: u64,
    /// How often services are supervised, in milliseconds.
    pub supervise_ms: u64,
    /// How often a crashed service is restarted before it is ERRORED.
    pub max_service_restarts: i32,
    /// The admin's URL as services reach it; by default chosen by the backend.
    pub service_admin_url: Option<String>,
    /// The predictor's image (docker backend).
    pub predictor_image: String,
    /// This deployment's name on its containers (docker backend).
    pub docker_project: String,
    /// CPUs per container, 0 for no limit (docker backend).
    pub docker_cpus: f64,
    /// Memory per container in MiB, 0 for no limit (docker backend).
    pub docker_memory_mb: u64,
    /// Processes (threads included) per container, 0 for no limit (docker backend).
    pub docker_pids_limit: u64,
    /// The images models may name as `docker_image`.
    pub allowed_images: AllowedImages,
    /// Password of `superadmin@rafiki`, seeded at start-up.
    pub superadmin_password: SecretString,
    /// HS256 signing secret of the JWTs.
    pub app_secret: SecretString,
    /// Whether the server runs in dev mode (default secrets allowed).
    pub dev: bool,
}

/// A configuration problem that stops start-up.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A source holds a bad or unknown value.
    #[error("invalid configuration: {0}")]
    Invalid(#[from] Box<figment::Error>),
    /// A rule across values is broken.
    #[error("invalid configuration: {0}")]
    Rule(String),
}

impl Settings {
    /// The layered sources: defaults, `RAFIKI_CONFIG` file, environment.
    pub fn figment() -> Figment {
        let mut figment = Figment::from(Toml::string(DEFAULTS));
        if let Ok(path) = std::env::var("RAFIKI_CONFIG") {
            figment = figment.merge(Toml::file_exact(path));
        }
        figment.merge(Env::raw().filter_map(|key| {
            ENV_KEYS
                .iter()
                .find(|(env, _)| key.as_str().eq_ignore_ascii_case(env))
                .map(|(_, name)| (*name).into())
        }))
    }

    /// Loads the settings from [`Settings::figment`].
    pub fn load(dev: bool) -> Result<Settings, ConfigError> {
        Self::from_figment(Self::figment(), dev)
    }

    /// Extracts and validates settings from `figment`. Without `APP_SECRET` or
    /// `SUPERADMIN_PASSWORD` this refuses unless `dev` is set.
    pub fn from_figment(figment: Figment, dev: bool) -> Result<Settings, ConfigError> {
        let raw: RawSettings = figment.extract().map_err(Box::new)?;
        let app_secret = match (raw.app_secret, dev) {
            (Some(secret), _) if secret.expose_secret().len() < MIN_APP_SECRET_LEN => {
                return Err(ConfigError::Rule(format!(
                    "APP_SECRET must be at least {MIN_APP_SECRET_LEN} characters long"
                )))
            }
            (Some(secret), _) => secret,
            (None, true) => SecretString::from(DEV_APP_SECRET),
            (None, false) => {
                return Err(ConfigError::Rule(
                    "APP_SECRET is not set: set it to a long random string, or run with --dev \
                     to use an insecure default"
                        .into(),
                ))
            }
        };
        let superadmin_password = match (raw.superadmin_password, dev) {
            (Some(password), _) if password.expose_secret().is_empty() => {
                return Err(ConfigError::Rule(
                    "SUPERADMIN_PASSWORD must not be empty".into(),
                ))
            }
            (Some(password), _) => password,
            (None, true) => SecretString::from(DEV_SUPERADMIN_PASSWORD),
            (None, false) => {
                return Err(ConfigError::Rule(
                    "SUPERADMIN_PASSWORD is not set: set it, or run with --dev to use the \
                     default password"
                        .into(),
                ))
            }
        };
        if raw.addr.trim().is_empty() {
            return Err(ConfigError::Rule("RAFIKI_ADDR must not be empty".into()));
        }
        if raw.ban_refresh_ms == 0 || raw.ban_refresh_ms > 5000 {
            return Err(ConfigError::Rule(
                "RAFIKI_BAN_REFRESH_MS must be between 1 and 5000 (bans take effect within 5 s)"
                    .into(),
            ));
        }
        if raw.db_max_connections == 0 {
            return Err(ConfigError::Rule(
                "RAFIKI_DB_MAX_CONNECTIONS must be at least 1".into(),
            ));
        }
        if raw.max_dataset_bytes == 0 || raw.max_model_bytes == 0 {
            return Err(ConfigError::Rule(
                "RAFIKI_MAX_DATASET_BYTES and RAFIKI_MAX_MODEL_BYTES must be at least 1".into(),
            ));
        }
        if raw.dataset_url_timeout_secs == 0 {
            return Err(ConfigError::Rule(
                "RAFIKI_DATASET_URL_TIMEOUT_SECS must be at least 1".into(),
            ));
        }
        if raw.worker_image.trim().is_empty() {
            return Err(ConfigError::Rule(
                "RAFIKI_WORKER_IMAGE must not be empty".into(),
            ));
        }
        let gpus = if raw.gpus.trim() == "auto" {
            crate::gpus::discover()
        } else {
            crate::gpus::parse_gpu_list(&raw.gpus).map_err(ConfigError::Rule)?
        };
        if !raw.docker_cpus.is_finite() || raw.docker_cpus < 0.0 {
            return Err(ConfigError::Rule(
                "RAFIKI_DOCKER_CPUS must be a number of CPUs, 0 for no limit".into(),
            ));
        }
        let names = [
            ("RAFIKI_PREDICTOR_IMAGE", &raw.predictor_image),
            ("RAFIKI_DOCKER_PROJECT", &raw.docker_project),
        ];
        if let Some((key, _)) = names.iter().find(|(_, v)| v.trim().is_empty()) {
            return Err(ConfigError::Rule(format!("{key} must not be empty")));
        }
        let allowed_images = AllowedImages::parse(&raw.allowed_images, &raw.worker_image)
            .map_err(ConfigError::Rule)?;
        if !allowed_images.admits(&raw.worker_image) {
            return Err(ConfigError::Rule(format!(
                "RAFIKI_ALLOWED_IMAGES ({allowed_images}) must admit RAFIKI_WORKER_IMAGE ({}), \
                 the image of models uploaded without one",
                raw.worker_image
            )));
        }
        let service_admin_url = raw.service_admin_url.filter(|u| !u.trim().is_empty());
        let worker_bin = match raw.worker_bin {
            Some(path) => path,
            None => sibling_binary("rafiki-worker")?,
        };
        let predictor_bin = match raw.predictor_bin {
            Some(path) => path,
            None => sibling_binary("rafiki-predictor")?,
        };
        if raw.python.trim().is_empty() {
            return Err(ConfigError::Rule("RAFIKI_PYTHON must not be empty".into()));
        }
        if raw.supervise_ms == 0 || raw.max_params_bytes == 0 || raw.max_service_restarts < 0 {
            return Err(ConfigError::Rule(
                "RAFIKI_SUPERVISE_MS and RAFIKI_MAX_PARAMS_BYTES must be at least 1, \
                 RAFIKI_MAX_SERVICE_RESTARTS at least 0"
                    .into(),
            ));
        }
        Ok(Settings {
            database_url: raw.database_url,
            db_max_connections: raw.db_max_connections,
            bind_host: raw.bind_host,
            admin_port: raw.admin_port,
            addr: raw.addr,
            data_dir: raw.data_dir,
            backend: raw.backend,
            max_json_bytes: raw.max_json_bytes,
            ban_refresh_ms: raw.ban_refresh_ms,
            max_dataset_bytes: raw.max_dataset_bytes,
            max_model_bytes: raw.max_model_bytes,
            dataset_url_timeout_secs: raw.dataset_url_timeout_secs,
            worker_image: raw.worker_image,
            gpus,
            worker_bin,
            predictor_bin,
            python: raw.python,
            max_params_bytes: raw.max_params_bytes,
            supervise_ms: raw.supervise_ms,
            max_service_restarts: raw.max_service_restarts,
            service_admin_url,
            predictor_image: raw.predictor_image,
            docker_project: raw.docker_project,
            docker_cpus: raw.docker_cpus,
            docker_memory_mb: raw.docker_memory_mb,
            docker_pids_limit: raw.docker_pids_limit,
            allowed_images,
            superadmin_password,
            app_secret,
            dev,
        })
    }
}

/// A setting written as text that may look like a number (`RAFIKI_GPUS=3`,
/// `RAFIKI_DOCKER_PROJECT=2026`: the environment provider parses them as numbers).
fn text_or_number<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum TextOrNumber {
        Text(String),
        Number(i64),
    }
    Ok(match TextOrNumber::deserialize(deserializer)? {
        TextOrNumber::Text(text) => text,
        TextOrNumber::Number(n) => n.to_string(),
    })
}

/// A binary next to the running executable: where cargo and the images put them.
fn sibling_binary(name: &str) -> Result<PathBuf, ConfigError> {
    let exe = std::env::current_exe()
        .map_err(|e| ConfigError::Rule(format!("cannot locate this executable: {e}")))?;
    let mut dir = exe.parent().map(PathBuf::from).unwrap_or_default();
    // Test binaries live one level down, in `target/<profile>/deps`.
    if dir.ends_with("deps") {
        dir.pop();
    }
    Ok(dir.join(name))
}

#[cfg(test)]
mod tests {
    use super::*;
    use figment::providers::Serialized;

    fn with(pairs: &[(&str, &str)]) -> Figment {
        pairs
            .iter()
            .fold(Figment::from(Toml::string(DEFAULTS)), |f, (k, v)| {
                f.merge(Serialized::default(k, v))
            })
    }

    #[test]
    fn refuses_to_start_without_a_secret_unless_dev() {
        let err = Settings::from_figment(with(&[]), false).unwrap_err();
        assert!(err.to_string().contains("APP_SECRET"), "{err}");
        let dev = Settings::from_figment(with(&[]), true).unwrap();
        assert_eq!(dev.allowed_images.to_string(), "rafiki-rs/worker");
        assert_eq!(dev.docker_pids_limit, 1024);
        assert_eq!(
            dev.superadmin_password.expose_secret(),
            DEV_SUPERADMIN_PASSWORD
        );
    }

    #[test]
    fn refuses_a_missing_superadmin_password_unless_dev() {
        let secret = "x".repeat(40);
        let err = Settings::from_figment(with(&[("app_secret", &secret)]), false).unwrap_err();
        assert!(err.to_string().contains("SUPERADMIN_PASSWORD"), "{err}");
        let ok = Settings::from_figment(
            with(&[("app_secret", &secret), ("superadmin_password", "s3cret")]),
            false,
        )
        .unwrap();
        assert!(!ok.dev);
    }

    #[test]
    fn rejects_short_secrets_and_bad_values_naming_the_key() {
        let err = Settings::from_figment(with(&[("app_secret", "short")]), true).unwrap_err();
        assert!(err.to_string().contains("at least"), "{err}");
        let err = Settings::from_figment(with(&[("backend", "kubernetes")]), true).unwrap_err();
        assert!(err.to_string().contains("backend"), "{err}");
        let err = Settings::from_figment(with(&[("admin_port", "99999")]), true).unwrap_err();
        assert!(err.to_string().contains("admin_port"), "{err}");
        for bad in ["bad image", "registry.local/"] {
            let err = Settings::from_figment(with(&[("allowed_images", bad)]), true).unwrap_err();
            assert!(err.to_string().contains("RAFIKI_ALLOWED_IMAGES"), "{err}");
        }
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn environment_names_map_to_settings() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("ADMIN_PORT", "3100");
            jail.set_env("RAFIKI_BACKEND", "docker");
            jail.set_env("RAFIKI_DATA_DIR", "/srv/rafiki");
            jail.set_env("RAFIKI_MAX_DATASET_BYTES", "1024");
            jail.set_env("RAFIKI_MAX_MODEL_BYTES", "512");
            jail.set_env("RAFIKI_WORKER_IMAGE", "registry.local/worker:1");
            // One device id reads as a number to the environment provider.
            jail.set_env("RAFIKI_GPUS", "3");
            jail.set_env("RAFIKI_DOCKER_PIDS_LIMIT", "256");
            jail.set_env("RAFIKI_ALLOWED_IMAGES", "registry.local/, team/worker");
            let s = Settings::from_figment(Settings::figment(), true).unwrap();
            assert_eq!(s.docker_pids_limit, 256);
            assert_eq!(s.allowed_images.to_string(), "registry.local/,team/worker");
            assert!(s.allowed_images.admits("team/worker:1"));
            assert!(!s.allowed_images.admits("registry.other/worker:1"));
            assert_eq!(s.max_dataset_bytes, 1024);
            assert_eq!(s.max_model_bytes, 512);
            assert_eq!(s.worker_image, "registry.local/worker:1");
            assert_eq!(s.admin_port, 3100);
            assert_eq!(s.gpus, vec![3]);
            assert_eq!(s.backend, BackendKind::Docker);
            assert_eq!(s.data_dir, PathBuf::from("/srv/rafiki"));
            Ok(())
        });
    }
}
