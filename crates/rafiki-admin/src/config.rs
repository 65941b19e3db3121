//! Settings: `config/default.toml` (embedded in the binary), then an optional file named by
//! `RAFIKI_CONFIG`, then environment variables. The environment names are fixed because tools
//! outside the project rely on them. A bad value fails start-up with a message naming the key.
//!
//! The three secrets (`APP_SECRET`, `SUPERADMIN_PASSWORD`, `DATABASE_URL`) may instead be read
//! from files named by `<NAME>_FILE` (Docker's secrets convention), so they need not sit in the
//! admin's environment, where every process of the same user could read them.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};

use figment::providers::{Env, Format, Toml};
use figment::Figment;
use rafiki_types::model::DependencyPins;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

use crate::archive::ZipLimits;
use crate::dataset_url::DatasetUrlAllow;
use crate::images::AllowedImages;
use crate::quotas::Quotas;
use crate::sandbox::SandboxSetting;

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
    ("RAFIKI_PREDICTOR_REACH_HOST", "predictor_reach_host"),
    ("RAFIKI_BIND_HOST", "bind_host"),
    ("RAFIKI_DB_MAX_CONNECTIONS", "db_max_connections"),
    (
        "RAFIKI_DATABASE_ACQUIRE_TIMEOUT_MS",
        "database_acquire_timeout_ms",
    ),
    (
        "RAFIKI_DATABASE_STARTUP_WAIT_SECS",
        "database_startup_wait_secs",
    ),
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
    ("RAFIKI_SANDBOX", "sandbox"),
    ("RAFIKI_SANDBOX_NETWORK", "sandbox_network"),
    ("RAFIKI_BWRAP", "bwrap"),
    ("RAFIKI_SANDBOX_MAX_PROCS", "sandbox_max_procs"),
    ("RAFIKI_SANDBOX_MAX_FILE_MB", "sandbox_max_file_mb"),
    ("RAFIKI_DATASET_URL_ALLOW", "dataset_url_allow"),
    ("RAFIKI_MAX_LIVE_TRAIN_JOBS", "max_live_train_jobs"),
    (
        "RAFIKI_MAX_MODELS_PER_TRAIN_JOB",
        "max_models_per_train_job",
    ),
    ("RAFIKI_MAX_TIME_HOURS", "max_time_hours"),
    (
        "RAFIKI_MAX_CPU_WORKERS_PER_TRAIN_JOB",
        "max_cpu_workers_per_train_job",
    ),
    ("RAFIKI_MAX_USER_DATASET_BYTES", "max_user_dataset_bytes"),
    ("RAFIKI_MAX_PAGE_SIZE", "max_page_size"),
    ("RAFIKI_MAX_TRIAL_LOG_ENTRIES", "max_trial_log_entries"),
    (
        "RAFIKI_MAX_TRIAL_LOG_ENTRY_BYTES",
        "max_trial_log_entry_bytes",
    ),
    (
        "RAFIKI_MAX_DATASET_UNZIPPED_BYTES",
        "max_dataset_unzipped_bytes",
    ),
    ("RAFIKI_MAX_DATASET_ZIP_ENTRIES", "max_dataset_zip_entries"),
    ("RAFIKI_MAX_ZIP_RATIO", "max_zip_ratio"),
    ("APP_SECRET_FILE", "app_secret_file"),
    ("SUPERADMIN_PASSWORD_FILE", "superadmin_password_file"),
    ("DATABASE_URL_FILE", "database_url_file"),
    (
        "RAFIKI_LOGIN_ATTEMPTS_PER_ADDRESS",
        "login_attempts_per_address",
    ),
    (
        "RAFIKI_LOGIN_ATTEMPTS_PER_ACCOUNT",
        "login_attempts_per_account",
    ),
    (
        "RAFIKI_PASSWORD_HASH_CONCURRENCY",
        "password_hash_concurrency",
    ),
    (
        "RAFIKI_HEADER_READ_TIMEOUT_SECS",
        "header_read_timeout_secs",
    ),
    ("RAFIKI_BODY_IDLE_TIMEOUT_SECS", "body_idle_timeout_secs"),
    ("RAFIKI_DOCKER_PIDS_LIMIT", "docker_pids_limit"),
    ("RAFIKI_SWARM_NETWORK", "swarm_network"),
    (
        "RAFIKI_SWARM_PENDING_TIMEOUT_SECS",
        "swarm_pending_timeout_secs",
    ),
    ("RAFIKI_ALLOWED_IMAGES", "allowed_images"),
    ("RAFIKI_ENV_CACHE_MAX_GB", "env_cache_max_gb"),
    ("RAFIKI_METRICS", "metrics"),
    ("RAFIKI_METRICS_ADDR", "metrics_addr"),
    ("RAFIKI_PIP_ARGS", "pip_args"),
    ("RAFIKI_DEPENDENCY_PINS", "dependency_pins"),
];

/// The superadmin password allowed only with `--dev`.
pub const DEV_SUPERADMIN_PASSWORD: &str = "rafiki";
/// The signing secret used only with `--dev`; refused without it, as it is public.
pub const DEV_APP_SECRET: &str = "rafiki-dev-secret-never-use-in-production";
/// Shortest `APP_SECRET` accepted: an HS256 key much shorter than this is guessable.
const MIN_APP_SECRET_LEN: usize = 32;
/// Smallest cap of a trial log entry: room for a useful message and for the note that
/// replaces a longer entry.
const MIN_TRIAL_LOG_ENTRY_BYTES: usize = 1024;
/// Shortest superadmin password accepted outside `--dev`, in characters: the superadmin
/// account is the first one an attacker tries.
pub const MIN_SUPERADMIN_PASSWORD_CHARS: usize = 12;
/// `DATABASE_URL` when neither it nor `DATABASE_URL_FILE` is set.
const DEFAULT_DATABASE_URL: &str = "postgres://postgres@127.0.0.1:5432/rafiki";
/// The address `--dev` binds: a dev server runs with public default secrets, so it must not
/// be reachable from other machines.
const DEV_BIND_HOST: IpAddr = IpAddr::V4(Ipv4Addr::LOCALHOST);
/// The address bound outside `--dev` when `RAFIKI_BIND_HOST` is unset.
const DEFAULT_BIND_HOST: IpAddr = IpAddr::V4(Ipv4Addr::UNSPECIFIED);

// Where services run: a wire enum, since the store keeps it in `services.backend` too; its
// lowercase names are `RAFIKI_BACKEND`'s values.
pub use rafiki_types::status::BackendKind;

/// What the configuration sources hold, before secrets are resolved.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    database_url: Option<SecretString>,
    db_max_connections: u32,
    database_acquire_timeout_ms: u64,
    database_startup_wait_secs: u64,
    bind_host: Option<IpAddr>,
    admin_port: u16,
    addr: String,
    predictor_reach_host: Option<String>,
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
    dataset_url_allow: String,
    docker_pids_limit: u64,
    swarm_network: String,
    swarm_pending_timeout_secs: u64,
    allowed_images: String,
    superadmin_password: Option<SecretString>,
    app_secret: Option<SecretString>,
    sandbox: SandboxSetting,
    sandbox_network: bool,
    bwrap: String,
    sandbox_max_procs: u64,
    sandbox_max_file_mb: u64,
    max_live_train_jobs: u32,
    max_models_per_train_job: u32,
    max_time_hours: f64,
    max_cpu_workers_per_train_job: u32,
    max_user_dataset_bytes: u64,
    max_page_size: u32,
    max_trial_log_entries: u32,
    max_trial_log_entry_bytes: usize,
    max_dataset_unzipped_bytes: u64,
    max_dataset_zip_entries: u64,
    max_zip_ratio: u64,
    app_secret_file: Option<PathBuf>,
    superadmin_password_file: Option<PathBuf>,
    database_url_file: Option<PathBuf>,
    login_attempts_per_address: u32,
    login_attempts_per_account: u32,
    password_hash_concurrency: usize,
    header_read_timeout_secs: u64,
    body_idle_timeout_secs: u64,
    env_cache_max_gb: f64,
    pip_args: String,
    dependency_pins: DependencyPins,
    metrics: MetricsSwitch,
    metrics_addr: Option<String>,
}

/// Validated settings of the admin.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Postgres URL.
    pub database_url: SecretString,
    /// Size of the database pool.
    pub db_max_connections: u32,
    /// Longest a request waits for a database connection, in milliseconds; past it the request
    /// answers 503 `ServiceUnavailableError` (the database is unreachable or saturated).
    pub database_acquire_timeout_ms: u64,
    /// How long start-up keeps trying to reach an unreachable database, in seconds (0: one
    /// try), for deployments that start the admin and Postgres together (a swarm stack, where
    /// nothing orders them).
    pub database_startup_wait_secs: u64,
    /// Address the HTTP server binds to.
    pub bind_host: IpAddr,
    /// Port of the HTTP server (0 picks a free one, for tests).
    pub admin_port: u16,
    /// Host name clients use to reach this machine.
    pub addr: String,
    /// The host the admin itself dials to reach predictors published on this machine
    /// (`RAFIKI_PREDICTOR_REACH_HOST`; unset: `addr`). An admin in a container is not where
    /// clients' `addr` leads (their `127.0.0.1` is the container itself there), but the engine's
    /// host, where predictors publish their ports, has a name of its own for it.
    pub predictor_reach_host: String,
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
    /// Internal hosts and networks `dataset_url` downloads may reach besides public addresses.
    pub dataset_url_allow: DatasetUrlAllow,
    /// Processes (threads included) per container, 0 for no limit (docker backend).
    pub docker_pids_limit: u64,
    /// The attachable overlay network the admin and its services share (swarm backend).
    pub swarm_network: String,
    /// How long a service's task may wait for a node before it counts as failed, in seconds
    /// (swarm backend).
    pub swarm_pending_timeout_secs: u64,
    /// The images models may name as `docker_image`.
    pub allowed_images: AllowedImages,
    /// Password of `superadmin@rafiki`, seeded at start-up.
    pub superadmin_password: SecretString,
    /// HS256 signing secret of the JWTs.
    pub app_secret: SecretString,
    /// Whether the server runs in dev mode (default secrets allowed, loopback only).
    pub dev: bool,
    /// Whether the process backend sandboxes model code (`RAFIKI_SANDBOX`).
    pub sandbox: SandboxSetting,
    /// Whether sandboxed model code may open network connections.
    pub sandbox_network: bool,
    /// The bubblewrap program.
    pub bwrap: String,
    /// The most processes and threads one sandbox may hold.
    pub sandbox_max_procs: u64,
    /// The largest file sandboxed model code may write, in MiB.
    pub sandbox_max_file_mb: u64,
    /// Per-user quotas: live train jobs, models per job, `TIME_HOURS`, dataset bytes.
    pub quotas: Quotas,
    /// Largest page of a listing, and its size when the request names none.
    pub max_page_size: u32,
    /// Most log entries stored per trial; later ones are dropped behind one marker entry.
    pub max_trial_log_entries: u32,
    /// Largest trial log entry (its JSON body), in bytes.
    pub max_trial_log_entry_bytes: usize,
    /// What a zip dataset may expand to.
    pub zip_limits: ZipLimits,
    /// Login attempts (`POST /tokens`) per client address per minute, 0 for no limit.
    pub login_attempts_per_address: u32,
    /// Login attempts per account (email) per minute, 0 for no limit.
    pub login_attempts_per_account: u32,
    /// Password hashings and verifications that may run at once (each takes 19 MiB).
    pub password_hash_concurrency: usize,
    /// Longest a client may take to send a request's headers, in seconds.
    pub header_read_timeout_secs: u64,
    /// Longest a request body may pause between two pieces, in seconds.
    pub body_idle_timeout_secs: u64,
    /// The most gigabytes dependency environments may take on this host (process backend) or
    /// in one owner's volume (docker backend); 0 for no bound.
    pub env_cache_max_gb: f64,
    /// Extra `pip install` arguments for workers (`RAFIKI_PIP_ARGS`), e.g. a local mirror.
    pub pip_args: String,
    /// What workers do with pins that cannot be installed, for models that do not say
    /// (`RAFIKI_DEPENDENCY_PINS`).
    pub dependency_pins: DependencyPins,
    /// Whether the admin serves `/metrics` and counts its HTTP requests (`RAFIKI_METRICS`).
    pub metrics: MetricsSwitch,
    /// Where `/metrics` and `/metrics/targets` are served instead of the API port
    /// (`RAFIKI_METRICS_ADDR`, e.g. `0.0.0.0:9100`); `None`: on the API port.
    pub metrics_addr: Option<ListenAddr>,
}

/// An address to listen on: an IP address and port, or a host name and port, resolved when the
/// admin binds. A name lets a deployment bind to the admin's address on one network only
/// (docker-stack.monitoring.yml: `admin-metrics:9100`, an alias that network alone has).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenAddr {
    /// An IP address (IPv6 without brackets) or a host name.
    pub host: String,
    /// The port.
    pub port: u16,
}

impl std::str::FromStr for ListenAddr {
    type Err = ();

    fn from_str(text: &str) -> Result<ListenAddr, ()> {
        if let Ok(address) = text.parse::<SocketAddr>() {
            return Ok(ListenAddr {
                host: address.ip().to_string(),
                port: address.port(),
            });
        }
        let (host, port) = text.rsplit_once(':').ok_or(())?;
        let is_name = !host.is_empty()
            && host.len() <= 253
            && host.split('.').all(|label| {
                !label.is_empty()
                    && label.len() <= 63
                    && !label.starts_with('-')
                    && !label.ends_with('-')
                    && label
                        .bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
            });
        if !is_name {
            return Err(());
        }
        Ok(ListenAddr {
            host: host.to_owned(),
            port: port.parse().map_err(|_| ())?,
        })
    }
}

impl std::fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

/// `RAFIKI_METRICS`: `on` (the default) or `off`. Off, the admin neither serves `/metrics`
/// (nor `/metrics/targets`) nor puts the request-counting middleware on its routes: for a
/// deployment that does not run Prometheus (and to measure what the middleware costs, in
/// docs/benchmarks.md).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MetricsSwitch {
    /// Metrics are served.
    On,
    /// No metrics endpoint, no request middleware.
    Off,
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
        let app_secret =
            match (
                secret_or_file("APP_SECRET", raw.app_secret, raw.app_secret_file)?,
                dev,
            ) {
                (Some(secret), _) if secret.expose_secret().len() < MIN_APP_SECRET_LEN => {
                    return Err(ConfigError::Rule(format!(
                        "APP_SECRET must be at least {MIN_APP_SECRET_LEN} characters long"
                    )))
                }
                (Some(secret), false) if secret.expose_secret() == DEV_APP_SECRET => {
                    return Err(ConfigError::Rule(
                        "APP_SECRET is the published development secret: set your own long random \
                     string (e.g. `openssl rand -hex 32`), or run with --dev"
                            .into(),
                    ))
                }
                (Some(secret), _) => secret,
                (None, true) => SecretString::from(DEV_APP_SECRET),
                (None, false) => return Err(ConfigError::Rule(
                    "APP_SECRET is not set: set it (or APP_SECRET_FILE) to a long random string, \
                     or run with --dev to use an insecure default"
                        .into(),
                )),
            };
        let superadmin_password = match (
            secret_or_file(
                "SUPERADMIN_PASSWORD",
                raw.superadmin_password,
                raw.superadmin_password_file,
            )?,
            dev,
        ) {
            (Some(password), _) if password.expose_secret().is_empty() => {
                return Err(ConfigError::Rule(
                    "SUPERADMIN_PASSWORD must not be empty".into(),
                ))
            }
            (Some(password), false)
                if password.expose_secret().chars().count() < MIN_SUPERADMIN_PASSWORD_CHARS =>
            {
                return Err(ConfigError::Rule(format!(
                    "SUPERADMIN_PASSWORD must be at least {MIN_SUPERADMIN_PASSWORD_CHARS} \
                     characters long (shorter ones are allowed only with --dev)"
                )))
            }
            (Some(password), _) => password,
            (None, true) => SecretString::from(DEV_SUPERADMIN_PASSWORD),
            (None, false) => {
                return Err(ConfigError::Rule(
                    "SUPERADMIN_PASSWORD is not set: set it (or SUPERADMIN_PASSWORD_FILE), or \
                     run with --dev to use the default password"
                        .into(),
                ))
            }
        };
        let database_url = secret_or_file("DATABASE_URL", raw.database_url, raw.database_url_file)?
            .unwrap_or_else(|| SecretString::from(DEFAULT_DATABASE_URL));
        let bind_host = match (raw.bind_host, dev) {
            (None, false) => DEFAULT_BIND_HOST,
            (None, true) => DEV_BIND_HOST,
            (Some(host), true) if !host.is_loopback() => {
                return Err(ConfigError::Rule(format!(
                    "RAFIKI_BIND_HOST={host} is refused with --dev: a dev server uses public \
                     default secrets, so it listens on {DEV_BIND_HOST} only; unset \
                     RAFIKI_BIND_HOST, or run without --dev with your own secrets"
                )))
            }
            (Some(host), _) => host,
        };
        if raw.addr.trim().is_empty() {
            return Err(ConfigError::Rule("RAFIKI_ADDR must not be empty".into()));
        }
        let predictor_reach_host = match raw.predictor_reach_host {
            Some(host) if !host.trim().is_empty() => host.trim().to_owned(),
            _ => raw.addr.clone(),
        };
        if raw.ban_refresh_ms == 0 || raw.ban_refresh_ms > 5000 {
            return Err(ConfigError::Rule(
                "RAFIKI_BAN_REFRESH_MS must be between 1 and 5000 (bans take effect within 5 s)"
                    .into(),
            ));
        }
        if raw.database_acquire_timeout_ms == 0 {
            return Err(ConfigError::Rule(
                "RAFIKI_DATABASE_ACQUIRE_TIMEOUT_MS must be at least 1".into(),
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
        if raw.swarm_pending_timeout_secs == 0 {
            return Err(ConfigError::Rule(
                "RAFIKI_SWARM_PENDING_TIMEOUT_SECS must be at least 1".into(),
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
        let gpus = gpu_inventory(&raw.gpus)?;
        if !raw.docker_cpus.is_finite() || raw.docker_cpus < 0.0 {
            return Err(ConfigError::Rule(
                "RAFIKI_DOCKER_CPUS must be a number of CPUs, 0 for no limit".into(),
            ));
        }
        let names = [
            ("RAFIKI_PREDICTOR_IMAGE", &raw.predictor_image),
            ("RAFIKI_DOCKER_PROJECT", &raw.docker_project),
            ("RAFIKI_SWARM_NETWORK", &raw.swarm_network),
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
        if raw.sandbox_max_procs == 0 || raw.sandbox_max_file_mb == 0 {
            return Err(ConfigError::Rule(
                "RAFIKI_SANDBOX_MAX_PROCS and RAFIKI_SANDBOX_MAX_FILE_MB must be at least 1".into(),
            ));
        }
        let dataset_url_allow =
            DatasetUrlAllow::parse(&raw.dataset_url_allow).map_err(ConfigError::Rule)?;
        if !raw.max_time_hours.is_finite() || raw.max_time_hours < 0.0 {
            return Err(ConfigError::Rule(
                "RAFIKI_MAX_TIME_HOURS must be a number of hours, 0 for no limit".into(),
            ));
        }
        if raw.max_cpu_workers_per_train_job == 0 {
            // Unlike the other quotas, no "0: no limit": the count comes from a user's budget,
            // and each worker is a process, so there must be a bound.
            return Err(ConfigError::Rule(
                "RAFIKI_MAX_CPU_WORKERS_PER_TRAIN_JOB must be at least 1".into(),
            ));
        }
        if raw.max_page_size == 0 || raw.max_trial_log_entries == 0 {
            return Err(ConfigError::Rule(
                "RAFIKI_MAX_PAGE_SIZE and RAFIKI_MAX_TRIAL_LOG_ENTRIES must be at least 1".into(),
            ));
        }
        if raw.max_trial_log_entry_bytes < MIN_TRIAL_LOG_ENTRY_BYTES {
            return Err(ConfigError::Rule(format!(
                "RAFIKI_MAX_TRIAL_LOG_ENTRY_BYTES must be at least {MIN_TRIAL_LOG_ENTRY_BYTES}"
            )));
        }
        if raw.header_read_timeout_secs == 0 || raw.body_idle_timeout_secs == 0 {
            return Err(ConfigError::Rule(
                "RAFIKI_HEADER_READ_TIMEOUT_SECS and RAFIKI_BODY_IDLE_TIMEOUT_SECS must be at \
                 least 1"
                    .into(),
            ));
        }
        check_env_cache_max_gb(raw.env_cache_max_gb)?;
        let metrics_addr = match raw.metrics_addr.as_deref().map(str::trim) {
            None | Some("") => None,
            Some(text) => Some(text.parse::<ListenAddr>().map_err(|_| {
                ConfigError::Rule(format!(
                    "RAFIKI_METRICS_ADDR must be an address or host name and a port, such as \
                     0.0.0.0:9100, not {text:?}"
                ))
            })?),
        };
        let password_hash_concurrency = match raw.password_hash_concurrency {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        Ok(Settings {
            database_url,
            db_max_connections: raw.db_max_connections,
            database_acquire_timeout_ms: raw.database_acquire_timeout_ms,
            database_startup_wait_secs: raw.database_startup_wait_secs,
            bind_host,
            admin_port: raw.admin_port,
            addr: raw.addr,
            predictor_reach_host,
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
            dataset_url_allow,
            docker_pids_limit: raw.docker_pids_limit,
            swarm_network: raw.swarm_network,
            swarm_pending_timeout_secs: raw.swarm_pending_timeout_secs,
            allowed_images,
            superadmin_password,
            app_secret,
            dev,
            sandbox: raw.sandbox,
            sandbox_network: raw.sandbox_network,
            bwrap: raw.bwrap,
            sandbox_max_procs: raw.sandbox_max_procs,
            sandbox_max_file_mb: raw.sandbox_max_file_mb,
            quotas: Quotas {
                live_train_jobs: raw.max_live_train_jobs,
                models_per_train_job: raw.max_models_per_train_job,
                time_hours: raw.max_time_hours,
                cpu_workers_per_train_job: raw.max_cpu_workers_per_train_job,
                user_dataset_bytes: raw.max_user_dataset_bytes,
            },
            max_page_size: raw.max_page_size,
            max_trial_log_entries: raw.max_trial_log_entries,
            max_trial_log_entry_bytes: raw.max_trial_log_entry_bytes,
            zip_limits: ZipLimits {
                unzipped_bytes: raw.max_dataset_unzipped_bytes,
                entries: raw.max_dataset_zip_entries,
                ratio: raw.max_zip_ratio,
            },
            login_attempts_per_address: raw.login_attempts_per_address,
            login_attempts_per_account: raw.login_attempts_per_account,
            password_hash_concurrency,
            header_read_timeout_secs: raw.header_read_timeout_secs,
            body_idle_timeout_secs: raw.body_idle_timeout_secs,
            env_cache_max_gb: raw.env_cache_max_gb,
            pip_args: raw.pip_args.trim().to_owned(),
            dependency_pins: raw.dependency_pins,
            metrics: raw.metrics,
            metrics_addr,
        })
    }

    /// The defaults in `--dev` mode, with no environment: what unit tests build on.
    #[cfg(test)]
    pub fn dev_defaults() -> Settings {
        Settings::from_figment(Figment::from(Toml::string(DEFAULTS)), true)
            .expect("the defaults are valid in dev mode")
    }

    /// What `rafiki-admin gc` needs: no secret is read or checked.
    pub fn load_gc() -> Result<GcSettings, ConfigError> {
        #[derive(Deserialize)]
        struct GcOnly {
            data_dir: PathBuf,
            backend: BackendKind,
            env_cache_max_gb: f64,
            #[serde(deserialize_with = "text_or_number")]
            docker_project: String,
        }
        let only: GcOnly = Self::figment().extract().map_err(Box::new)?;
        check_env_cache_max_gb(only.env_cache_max_gb)?;
        Ok(GcSettings {
            data_dir: only.data_dir,
            backend: only.backend,
            env_cache_max_gb: only.env_cache_max_gb,
            docker_project: only.docker_project,
        })
    }
}

/// The settings `rafiki-admin gc` reads.
#[derive(Debug, Clone)]
pub struct GcSettings {
    /// The data directory (the process backend's environments are in `envs/`).
    pub data_dir: PathBuf,
    /// Where services run.
    pub backend: BackendKind,
    /// The bound of the environments, 0 for none.
    pub env_cache_max_gb: f64,
    /// The docker backend's project (its environment volumes carry it).
    pub docker_project: String,
}

/// `RAFIKI_ENV_CACHE_MAX_GB`: a number of gigabytes, 0 for no bound.
fn check_env_cache_max_gb(gb: f64) -> Result<(), ConfigError> {
    if gb.is_finite() && gb >= 0.0 {
        Ok(())
    } else {
        Err(ConfigError::Rule(
            "RAFIKI_ENV_CACHE_MAX_GB must be a number of gigabytes, 0 for no bound".into(),
        ))
    }
}

/// The GPU ids of `RAFIKI_GPUS`: a list, or with `auto` those `nvidia-smi` lists.
fn gpu_inventory(gpus: &str) -> Result<Vec<i32>, ConfigError> {
    if gpus.trim() == "auto" {
        Ok(crate::gpus::discover())
    } else {
        crate::gpus::parse_gpu_list(gpus).map_err(ConfigError::Rule)
    }
}

/// A secret given directly (`NAME`) or as the content of a file (`NAME_FILE`), not both. The
/// file's trailing line break is not part of the secret (editors and `echo` add one). Errors
/// name the variable and the path, never the content.
fn secret_or_file(
    name: &str,
    value: Option<SecretString>,
    file: Option<PathBuf>,
) -> Result<Option<SecretString>, ConfigError> {
    match (value, file) {
        (Some(_), Some(_)) => Err(ConfigError::Rule(format!(
            "both {name} and {name}_FILE are set: set only one of them"
        ))),
        (value, None) => Ok(value),
        (None, Some(path)) => read_secret_file(name, &path).map(Some),
    }
}

fn read_secret_file(name: &str, path: &Path) -> Result<SecretString, ConfigError> {
    let bytes = std::fs::read(path).map_err(|err| {
        ConfigError::Rule(format!(
            "cannot read {name}_FILE ({}): {err}",
            path.display()
        ))
    })?;
    let mut text = String::from_utf8(bytes).map_err(|_| {
        ConfigError::Rule(format!(
            "{name}_FILE ({}) is not UTF-8 text",
            path.display()
        ))
    })?;
    if text.ends_with('\n') {
        text.pop();
        if text.ends_with('\r') {
            text.pop();
        }
    }
    Ok(SecretString::from(text))
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
    fn the_metrics_address_is_an_address_or_a_host_name_with_a_port() {
        let parsed = |text: &str| text.parse::<ListenAddr>().map(|a| a.to_string());
        assert_eq!(parsed("0.0.0.0:9100"), Ok("0.0.0.0:9100".into()));
        assert_eq!(parsed("[::1]:9100"), Ok("[::1]:9100".into()));
        assert_eq!(
            parsed("admin-metrics:9100"),
            Ok("admin-metrics:9100".into())
        );
        assert_eq!(
            parsed("metrics.rafiki.internal:1"),
            Ok("metrics.rafiki.internal:1".into())
        );
        for bad in [
            "9100",
            "admin",
            ":9100",
            "admin:",
            "admin:70000",
            "-admin:1",
            "a b:1",
            "a..b:1",
        ] {
            assert_eq!(parsed(bad), Err(()), "{bad}");
        }
        let settings =
            Settings::from_figment(with(&[("metrics_addr", "admin-metrics:9100")]), true).unwrap();
        assert_eq!(settings.metrics_addr.unwrap().host, "admin-metrics");
        let err = Settings::from_figment(with(&[("metrics_addr", "nope")]), true).unwrap_err();
        assert!(err.to_string().contains("RAFIKI_METRICS_ADDR"), "{err}");
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
            with(&[
                ("app_secret", &secret),
                ("superadmin_password", "a-long-s3cret"),
            ]),
            false,
        )
        .unwrap();
        assert!(!ok.dev);
    }

    #[test]
    fn outside_dev_the_dev_secret_and_short_superadmin_passwords_are_refused() {
        let secret = "x".repeat(40);
        let err = Settings::from_figment(
            with(&[
                ("app_secret", DEV_APP_SECRET),
                ("superadmin_password", "a-long-s3cret"),
            ]),
            false,
        )
        .unwrap_err();
        assert!(err.to_string().contains("development secret"), "{err}");
        let err = Settings::from_figment(
            with(&[
                ("app_secret", &secret),
                ("superadmin_password", "elevenchars"),
            ]),
            false,
        )
        .unwrap_err();
        assert!(
            err.to_string()
                .contains("SUPERADMIN_PASSWORD must be at least 12"),
            "{err}"
        );
        // Twelve characters, counted as characters rather than bytes.
        let ok = with(&[
            ("app_secret", &secret),
            ("superadmin_password", "ééééééééééé1"),
        ]);
        Settings::from_figment(ok, false).unwrap();
        // With --dev both are allowed: a dev server is a person's own, on loopback.
        let dev = with(&[
            ("app_secret", DEV_APP_SECRET),
            ("superadmin_password", "short"),
        ]);
        Settings::from_figment(dev, true).unwrap();
    }

    #[test]
    fn dev_listens_on_loopback_only() {
        let secrets = [
            ("app_secret", "x".repeat(40)),
            ("superadmin_password", "a-long-s3cret".to_owned()),
        ];
        let secrets: Vec<(&str, &str)> = secrets.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let host = |dev, extra: &[(&str, &str)]| {
            let pairs: Vec<(&str, &str)> = secrets.iter().chain(extra).copied().collect();
            Settings::from_figment(with(&pairs), dev).map(|s| s.bind_host)
        };
        assert_eq!(host(false, &[]).unwrap(), DEFAULT_BIND_HOST);
        assert_eq!(host(true, &[]).unwrap(), DEV_BIND_HOST);
        assert_eq!(
            host(true, &[("bind_host", "::1")]).unwrap(),
            "::1".parse::<IpAddr>().unwrap()
        );
        let err = host(true, &[("bind_host", "0.0.0.0")]).unwrap_err();
        assert!(
            err.to_string()
                .contains("RAFIKI_BIND_HOST=0.0.0.0 is refused with --dev"),
            "{err}"
        );
        assert_eq!(
            host(false, &[("bind_host", "0.0.0.0")]).unwrap(),
            DEFAULT_BIND_HOST
        );
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn secrets_are_read_from_their_files_without_the_trailing_line_break() {
        figment::Jail::expect_with(|jail| {
            let secret = "s".repeat(40);
            jail.create_file("app_secret", &format!("{secret}\n"))?;
            jail.create_file("password", "a long password\r\n")?;
            jail.create_file("url", "postgres://rafiki:pw@db:5432/rafiki")?;
            jail.set_env("APP_SECRET_FILE", "app_secret");
            jail.set_env("SUPERADMIN_PASSWORD_FILE", "password");
            jail.set_env("DATABASE_URL_FILE", "url");
            let s = Settings::from_figment(Settings::figment(), false).unwrap();
            assert_eq!(s.app_secret.expose_secret(), secret);
            assert_eq!(s.superadmin_password.expose_secret(), "a long password");
            assert_eq!(
                s.database_url.expose_secret(),
                "postgres://rafiki:pw@db:5432/rafiki"
            );
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn a_secret_set_twice_or_in_an_unreadable_file_stops_start_up_naming_it() {
        figment::Jail::expect_with(|jail| {
            jail.create_file("url", "postgres://rafiki:hunter2-in-the-file@db/rafiki")?;
            jail.set_env("DATABASE_URL", "postgres://postgres@127.0.0.1/rafiki");
            jail.set_env("DATABASE_URL_FILE", "url");
            let err = Settings::from_figment(Settings::figment(), true).unwrap_err();
            assert_eq!(
                err.to_string(),
                "invalid configuration: both DATABASE_URL and DATABASE_URL_FILE are set: set \
                 only one of them"
            );
            jail.clear_env();
            jail.set_env("SUPERADMIN_PASSWORD_FILE", "missing");
            let err = Settings::from_figment(Settings::figment(), true).unwrap_err();
            let message = err.to_string();
            assert!(
                message.contains("cannot read SUPERADMIN_PASSWORD_FILE (missing)"),
                "{message}"
            );
            // A file that is not text: named, its bytes never shown.
            jail.create_binary("garbled", b"\xffhunter2\xfe")?;
            jail.set_env("SUPERADMIN_PASSWORD_FILE", "garbled");
            let message = Settings::from_figment(Settings::figment(), true)
                .unwrap_err()
                .to_string();
            assert!(
                message.contains("SUPERADMIN_PASSWORD_FILE (garbled)"),
                "{message}"
            );
            assert!(!message.contains("hunter2"), "{message}");
            Ok(())
        });
    }

    #[test]
    fn rejects_short_secrets_and_bad_values_naming_the_key() {
        let err = Settings::from_figment(with(&[("app_secret", "short")]), true).unwrap_err();
        assert!(err.to_string().contains("at least"), "{err}");
        let err = Settings::from_figment(with(&[("backend", "kubernetes")]), true).unwrap_err();
        assert!(err.to_string().contains("backend"), "{err}");
        let err = Settings::from_figment(with(&[("admin_port", "99999")]), true).unwrap_err();
        assert!(err.to_string().contains("admin_port"), "{err}");
        let err =
            Settings::from_figment(with(&[("dependency_pins", "closest")]), true).unwrap_err();
        assert!(err.to_string().contains("dependency_pins"), "{err}");
        let bad_bound = with(&[]).merge(Serialized::default("env_cache_max_gb", -1.0));
        let err = Settings::from_figment(bad_bound, true).unwrap_err();
        assert!(err.to_string().contains("RAFIKI_ENV_CACHE_MAX_GB"), "{err}");
        let dev = Settings::from_figment(with(&[]), true).unwrap();
        assert_eq!(dev.dependency_pins, DependencyPins::Strict);
        assert_eq!(dev.env_cache_max_gb, 50.0);
        for bad in ["bad image", "registry.local/"] {
            let err = Settings::from_figment(with(&[("allowed_images", bad)]), true).unwrap_err();
            assert!(err.to_string().contains("RAFIKI_ALLOWED_IMAGES"), "{err}");
        }
    }

    #[test]
    fn a_bad_dataset_url_allow_entry_stops_start_up_naming_it() {
        let err = Settings::from_figment(
            with(&[(
                "dataset_url_allow",
                "10.0.0.0/8, mirror.internal, not a host",
            )]),
            true,
        )
        .unwrap_err();
        let message = err.to_string();
        assert!(message.contains("RAFIKI_DATASET_URL_ALLOW"), "{message}");
        assert!(message.contains("`not a host`"), "{message}");
        let ok = with(&[("dataset_url_allow", "10.0.0.0/8, mirror.internal")]);
        assert_eq!(
            Settings::from_figment(ok, true).unwrap().dataset_url_allow,
            DatasetUrlAllow::parse("10.0.0.0/8, mirror.internal").unwrap()
        );
    }

    #[test]
    fn quota_and_limit_settings_are_checked_naming_the_key() {
        let numbers = [
            (
                "max_time_hours",
                serde_json::json!(-1.0),
                "RAFIKI_MAX_TIME_HOURS",
            ),
            (
                "max_cpu_workers_per_train_job",
                serde_json::json!(0),
                "RAFIKI_MAX_CPU_WORKERS_PER_TRAIN_JOB",
            ),
            (
                "max_page_size",
                serde_json::json!(0),
                "RAFIKI_MAX_PAGE_SIZE",
            ),
            (
                "max_trial_log_entries",
                serde_json::json!(0),
                "RAFIKI_MAX_TRIAL_LOG_ENTRIES",
            ),
            (
                "max_trial_log_entry_bytes",
                serde_json::json!(100),
                "RAFIKI_MAX_TRIAL_LOG_ENTRY_BYTES",
            ),
        ];
        for (key, value, named) in numbers {
            let figment = with(&[]).merge(Serialized::default(key, value));
            let err = Settings::from_figment(figment, true).unwrap_err();
            assert!(err.to_string().contains(named), "{key}: {err}");
        }
        let figment = with(&[]).merge(Serialized::default("max_live_train_jobs", 0));
        let s = Settings::from_figment(figment, true).unwrap();
        assert_eq!(s.quotas.live_train_jobs, 0, "0: no limit");
        assert_eq!(s.quotas.models_per_train_job, 20);
        assert_eq!(s.quotas.cpu_workers_per_train_job, 8);
        assert_eq!(s.max_page_size, 1000);
        assert_eq!(s.zip_limits.entries, 200_000);
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
            jail.set_env("RAFIKI_MAX_USER_DATASET_BYTES", "2048");
            jail.set_env("RAFIKI_MAX_DATASET_ZIP_ENTRIES", "7");
            jail.set_env("RAFIKI_DOCKER_PIDS_LIMIT", "256");
            jail.set_env("RAFIKI_ALLOWED_IMAGES", "registry.local/, team/worker");
            jail.set_env("RAFIKI_ENV_CACHE_MAX_GB", "2.5");
            jail.set_env("RAFIKI_PIP_ARGS", " --no-index --find-links /wheels ");
            jail.set_env("RAFIKI_DEPENDENCY_PINS", "nearest");
            let s = Settings::from_figment(Settings::figment(), true).unwrap();
            assert_eq!(s.env_cache_max_gb, 2.5);
            assert_eq!(s.pip_args, "--no-index --find-links /wheels");
            assert_eq!(s.dependency_pins, DependencyPins::Nearest);
            assert_eq!(s.docker_pids_limit, 256);
            assert_eq!(s.allowed_images.to_string(), "registry.local/,team/worker");
            assert!(s.allowed_images.admits("team/worker:1"));
            assert!(!s.allowed_images.admits("registry.other/worker:1"));
            assert_eq!(s.max_dataset_bytes, 1024);
            assert_eq!(s.max_model_bytes, 512);
            assert_eq!(s.quotas.user_dataset_bytes, 2048);
            assert_eq!(s.zip_limits.entries, 7);
            assert_eq!(s.worker_image, "registry.local/worker:1");
            assert_eq!(s.admin_port, 3100);
            assert_eq!(s.gpus, vec![3]);
            assert_eq!(s.backend, BackendKind::Docker);
            assert_eq!(s.data_dir, PathBuf::from("/srv/rafiki"));
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn the_predictor_reach_host_defaults_to_the_clients_address() {
        let defaults = Settings::from_figment(with(&[("addr", "rafiki.example")]), true).unwrap();
        assert_eq!(defaults.predictor_reach_host, "rafiki.example");
        let blank = with(&[("addr", "rafiki.example"), ("predictor_reach_host", " ")]);
        let blank = Settings::from_figment(blank, true).unwrap();
        assert_eq!(blank.predictor_reach_host, "rafiki.example");
        figment::Jail::expect_with(|jail| {
            jail.set_env("RAFIKI_ADDR", "rafiki.example");
            jail.set_env("RAFIKI_PREDICTOR_REACH_HOST", " host.docker.internal ");
            let s = Settings::from_figment(Settings::figment(), true).unwrap();
            assert_eq!(
                s.addr, "rafiki.example",
                "what clients are told is unchanged"
            );
            assert_eq!(s.predictor_reach_host, "host.docker.internal");
            Ok(())
        });
    }

    #[test]
    #[allow(clippy::result_large_err)] // figment::Jail fixes the closure's error type.
    fn the_swarm_backends_settings_are_read_and_checked() {
        figment::Jail::expect_with(|jail| {
            jail.set_env("RAFIKI_BACKEND", "swarm");
            jail.set_env("RAFIKI_SWARM_NETWORK", "rafiki-net");
            jail.set_env("RAFIKI_SWARM_PENDING_TIMEOUT_SECS", "30");
            let s = Settings::from_figment(Settings::figment(), true).unwrap();
            assert_eq!(s.backend, BackendKind::Swarm);
            assert_eq!(s.swarm_network, "rafiki-net");
            assert_eq!(s.swarm_pending_timeout_secs, 30);
            Ok(())
        });
        let defaults = Settings::from_figment(with(&[]), true).unwrap();
        assert_eq!(defaults.swarm_network, "rafiki-overlay");
        assert_eq!(defaults.swarm_pending_timeout_secs, 120);
        let no_wait = with(&[]).merge(Serialized::default("swarm_pending_timeout_secs", 0));
        let err = Settings::from_figment(no_wait, true).unwrap_err();
        assert!(
            err.to_string()
                .contains("RAFIKI_SWARM_PENDING_TIMEOUT_SECS"),
            "{err}"
        );
        let err = Settings::from_figment(with(&[("swarm_network", " ")]), true).unwrap_err();
        assert!(err.to_string().contains("RAFIKI_SWARM_NETWORK"), "{err}");
    }
}
