//! Building and running the admin: check the workers' interpreter, connect, migrate, seed the
//! superadmin, bind, serve until a shutdown signal. Tests start the real thing through
//! [`Application::build`]; the binary checks the interpreter first ([`check_workers_python`]).
//!
//! The server is hyper's HTTP/1.1 connection builder in an accept loop rather than
//! `axum::serve`, which does not expose hyper's header-read timeout: a client that has not sent
//! a request's headers within `header_read_timeout_secs` is cut off (idle keep-alive
//! connections included), and a request body that pauses longer than `body_idle_timeout_secs`
//! fails. Handlers see the TCP peer's address as `ConnectInfo<SocketAddr>`. Each connection's
//! stream is wrapped so that hyper's own answers to requests it cannot parse carry the error
//! envelope too ([`crate::unparsable`]). With `RAFIKI_METRICS_ADDR` set, a second server of
//! the same kind serves the metrics there (`crate::metrics::endpoint`), and stops with the first.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use rafiki_types::user::UserType;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;
use tower::Service;
use tower_http::timeout::RequestBodyTimeoutLayer;

use crate::auth::directory::UserDirectory;
use crate::auth::jwt::TokenKeys;
use crate::auth::limits::LoginLimits;
use crate::auth::password::Passwords;
use crate::backend::docker::{DockerBackend, DockerSettings};
use crate::backend::process::{ProcessBackend, ProcessSandbox};
use crate::backend::swarm::{SwarmBackend, SwarmSettings};
use crate::backend::Backend;
use crate::cluster::{Inventory, LocalInventory};
use crate::config::BackendKind;
use crate::config::{MetricsSwitch, Settings};
use crate::dataset_url::DatasetUrlFetcher;
use crate::environments;
use crate::metrics::AdminMetrics;
use crate::orchestrator::{Orchestrator, OrchestratorConfig};
use crate::routes;
use crate::sandbox;
use crate::state::AppState;
use crate::storage::Storage;
use crate::unparsable::Enveloped;
use crate::workers_python::{self, WorkersPython};

/// The seeded superadmin's email.
pub const SUPERADMIN_EMAIL: &str = "superadmin@rafiki";

/// Connects to the database, trying again while it is unreachable or starting up, for up to
/// `database_startup_wait_secs`: where the admin and Postgres start together (a swarm stack),
/// nothing orders them. A refusal (a wrong password, no such database) fails at once.
async fn connect_patiently(settings: &Settings) -> rafiki_store::StoreResult<sqlx::PgPool> {
    let deadline = Instant::now() + Duration::from_secs(settings.database_startup_wait_secs);
    let mut pause = Duration::from_millis(250);
    loop {
        let attempt = rafiki_store::connect(
            settings.database_url.expose_secret(),
            settings.db_max_connections,
            Duration::from_millis(settings.database_acquire_timeout_ms),
        )
        .await;
        match attempt {
            Err(err) if database_not_ready(&err) && Instant::now() + pause < deadline => {
                tracing::warn!(error = %err, "the database is not reachable yet; trying again");
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(5));
            }
            done => return done,
        }
    }
}

/// Whether a failed connection may work later: the database unreachable, or Postgres still
/// starting (SQLSTATE 57P03, `cannot_connect_now`).
fn database_not_ready(err: &rafiki_store::StoreError) -> bool {
    match err {
        rafiki_store::StoreError::Database(sqlx::Error::Database(db)) => {
            db.code().as_deref() == Some("57P03")
        }
        err => err.is_unavailable(),
    }
}

/// A built admin, bound to its port (and to `RAFIKI_METRICS_ADDR` when set), not yet serving.
pub struct Application {
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    state: AppState,
}

impl Application {
    /// Connects to the database, applies migrations, seeds the superadmin and binds the port.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = connect_patiently(&settings)
            .await
            .context("cannot connect to the database (DATABASE_URL)")?;
        rafiki_store::migrate(&pool)
            .await
            .context("cannot apply the database migrations")?;
        let passwords = Arc::new(Passwords::new(settings.password_hash_concurrency).await?);
        seed_superadmin(&pool, &settings, &passwords).await?;
        let storage = Arc::new(Storage::open(&settings.data_dir)?);
        let swept = storage
            .sweep_temporaries()
            .context("cannot sweep the data directory's temporaries")?;
        if swept > 0 {
            tracing::info!(swept, "removed temporaries left by an interrupted run");
        }
        let dataset_urls = DatasetUrlFetcher::new(
            settings.dataset_url_allow.clone(),
            Duration::from_secs(settings.dataset_url_timeout_secs),
        )?;
        let users = Arc::new(UserDirectory::default());
        users.run_once(&pool).await?;
        let listener = TcpListener::bind((settings.bind_host, settings.admin_port))
            .await
            .with_context(|| {
                format!(
                    "cannot listen on {}:{} (ADMIN_PORT)",
                    settings.bind_host, settings.admin_port
                )
            })?;
        let metrics_listener = match &settings.metrics_addr {
            Some(address) if settings.metrics == MetricsSwitch::On => Some(
                TcpListener::bind((address.host.as_str(), address.port))
                    .await
                    .with_context(|| format!("cannot listen on {address} (RAFIKI_METRICS_ADDR)"))?,
            ),
            _ => None,
        };
        let port = listener.local_addr().context("no local address")?.port();
        let metrics = Arc::new(AdminMetrics::new());
        let orchestrator =
            Arc::new(build_orchestrator(&settings, &pool, port, metrics.clone()).await?);
        orchestrator.reconcile().await?;
        if settings.backend == BackendKind::Process {
            // After reconciliation: environments of adopted services stay (they hold them).
            let live = rafiki_store::services::list_live(&pool)
                .await?
                .into_iter()
                .map(|s| s.id)
                .collect();
            environments::clean_at_start_up(&settings.data_dir, settings.env_cache_max_gb, live)
                .await;
        }
        let state = AppState {
            orchestrator,
            pool,
            tokens: Arc::new(
                TokenKeys::new(&settings.app_secret).context("cannot use APP_SECRET")?,
            ),
            passwords,
            users,
            storage,
            dataset_urls,
            logins: Arc::new(LoginLimits::new(
                settings.login_attempts_per_address,
                settings.login_attempts_per_account,
            )),
            workers_python: None,
            metrics,
            settings: Arc::new(settings),
        };
        Ok(Application {
            listener,
            metrics_listener,
            state,
        })
    }

    /// Reports `python`, what [`check_workers_python`] found, in `GET /health`.
    pub fn with_workers_python(mut self, python: Option<WorkersPython>) -> Self {
        self.state.workers_python = python.map(Arc::new);
        self
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.listener
            .local_addr()
            .map(|a| a.port())
            .unwrap_or_default()
    }

    /// The shared state (tests use its pool).
    pub fn state(&self) -> &AppState {
        &self.state
    }

    /// Serves until `shutdown` resolves, then finishes the requests in flight.
    pub async fn run_until_stopped(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let state = self.state;
        let refresher = {
            let users = state.users.clone();
            let pool = state.pool.clone();
            let period = Duration::from_millis(state.settings.ban_refresh_ms);
            tokio::spawn(async move { users.refresh_forever(pool, period).await })
        };
        let supervisor = {
            let orchestrator = state.orchestrator.clone();
            let period = Duration::from_millis(state.settings.supervise_ms);
            tokio::spawn(async move { orchestrator.supervise_forever(period).await })
        };
        let forgetter = {
            let logins = state.logins.clone();
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(LOGIN_LIMITS_SWEEP);
                loop {
                    tick.tick().await;
                    logins.forget_idle();
                }
            })
        };
        tracing::info!(port = ?self.listener.local_addr().ok(), "Rafiki admin listening");
        let timeouts = Timeouts {
            header_read: Duration::from_secs(state.settings.header_read_timeout_secs),
            body_idle: Duration::from_secs(state.settings.body_idle_timeout_secs),
        };
        // Services keep running when the admin stops: a restarted admin adopts them.
        let doc = crate::openapi::api_doc(&state.settings);
        // Both servers stop on `shutdown`: it closes `stop`, which each server watches.
        let (stop, stopped) = tokio::sync::watch::channel(());
        let on_stop = move || {
            let mut stopped = stopped.clone();
            async move {
                // Resolves when the sender is dropped.
                while stopped.changed().await.is_ok() {}
            }
        };
        let metrics_server = self.metrics_listener.map(|listener| {
            tracing::info!(address = ?listener.local_addr().ok(), "metrics listening");
            tokio::spawn(serve(
                listener,
                crate::metrics::endpoint::router(state.clone()),
                timeouts,
                on_stop(),
            ))
        });
        let api = serve(
            self.listener,
            routes::router(state, doc),
            timeouts,
            on_stop(),
        );
        tokio::join!(api, async move {
            shutdown.await;
            drop(stop);
        });
        if let Some(server) = metrics_server {
            if let Err(err) = server.await {
                tracing::error!(error = %err, "the metrics server failed");
            }
        }
        refresher.abort();
        supervisor.abort();
        forgetter.abort();
        Ok(())
    }
}

/// How often the login limits forget clients whose allowance is full again.
const LOGIN_LIMITS_SWEEP: Duration = Duration::from_secs(60);

/// The slow-client timeouts of [`serve`].
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    /// Longest wait for a request's headers.
    header_read: Duration,
    /// Longest pause inside a request body.
    body_idle: Duration,
}

/// Serves `router` over HTTP/1.1 until `shutdown` resolves, then stops accepting and waits for
/// the connections' requests in flight to finish, as `axum::serve`'s graceful shutdown does.
async fn serve(
    listener: TcpListener,
    router: Router,
    timeouts: Timeouts,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let mut make_service = router
        .layer(RequestBodyTimeoutLayer::new(timeouts.body_idle))
        .into_make_service_with_connect_info::<SocketAddr>();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(timeouts.header_read);
    let graceful = GracefulShutdown::new();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(connection) => connection,
                Err(err) => {
                    // Out of file descriptors, or a connection reset before it was accepted:
                    // pause rather than spin, and keep serving.
                    tracing::warn!(error = %err, "cannot accept a connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let service = match make_service.call(peer).await {
            Ok(service) => TowerToHyperService::new(service),
            Err(never) => match never {},
        };
        let connection =
            graceful.watch(builder.serve_connection(TokioIo::new(Enveloped::new(stream)), service));
        tokio::spawn(async move {
            // A client that went away or was cut off by a timeout: nothing to answer.
            if let Err(err) = connection.await {
                tracing::debug!(%peer, error = %err, "connection ended with an error");
            }
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// With the process backend, checks that the workers' interpreter (`RAFIKI_PYTHON`) can run
/// models, and refuses with how to fix it when it cannot ([`crate::workers_python`]). The
/// binary checks before [`Application::build`]; tests that run no model build without it.
/// `None` with the container backends, whose workers' interpreter is the worker image's.
pub async fn check_workers_python(settings: &Settings) -> anyhow::Result<Option<WorkersPython>> {
    if settings.backend != BackendKind::Process {
        return Ok(None);
    }
    let python = workers_python::check(&settings.python)
        .await
        .map_err(anyhow::Error::msg)?;
    tracing::info!(
        interpreter = %python.interpreter,
        executable = %python.executable,
        version = %python.version,
        rafiki = %python.rafiki,
        "workers run models with this Python"
    );
    Ok(Some(python))
}

/// What the container backends (docker and swarm) give every container, from the settings.
fn container_settings(settings: &Settings) -> DockerSettings {
    DockerSettings {
        project: settings.docker_project.clone(),
        predictor_image: settings.predictor_image.clone(),
        cpus: settings.docker_cpus,
        memory_mb: settings.docker_memory_mb,
        pids_limit: settings.docker_pids_limit,
        logs_dir: settings.data_dir.join("services"),
    }
}

/// The orchestrator over the configured backend. Unless configured, services reach the admin
/// on loopback (the process backend runs them on this host) or, in containers (docker and
/// swarm), through their engine's host.
async fn build_orchestrator(
    settings: &Settings,
    pool: &sqlx::PgPool,
    port: u16,
    metrics: Arc<AdminMetrics>,
) -> anyhow::Result<Orchestrator> {
    let local = || -> Arc<dyn Inventory> { Arc::new(LocalInventory::new(settings.gpus.clone())) };
    let (backend, inventory, default_admin_url): (Arc<dyn Backend>, Arc<dyn Inventory>, String) =
        match settings.backend {
            BackendKind::Process => (
                Arc::new(ProcessBackend::new(
                    settings.worker_bin.clone(),
                    settings.predictor_bin.clone(),
                    settings.python.clone(),
                    settings.data_dir.join("services"),
                    environments::store_dir(&settings.data_dir),
                    ProcessSandbox {
                        isolation: sandbox::resolve(
                            settings.sandbox,
                            settings.dev,
                            &settings.bwrap,
                        )
                        .map_err(anyhow::Error::msg)?,
                        network: settings.sandbox_network,
                        bwrap: settings.bwrap.clone(),
                        max_procs: settings.sandbox_max_procs,
                        max_file_mb: settings.sandbox_max_file_mb,
                    },
                )?),
                local(),
                format!("http://127.0.0.1:{port}"),
            ),
            BackendKind::Docker => (
                Arc::new(
                    DockerBackend::connect(container_settings(settings))
                        .await
                        .context("RAFIKI_BACKEND=docker")?,
                ),
                local(),
                format!("http://host.docker.internal:{port}"),
            ),
            BackendKind::Swarm => {
                if !settings.gpus.is_empty() {
                    tracing::warn!(
                        "RAFIKI_GPUS is ignored by the swarm backend: each node declares its \
                         GPUs in its rafiki.gpus label (docs/swarm.md)"
                    );
                }
                let swarm = SwarmBackend::connect(SwarmSettings {
                    container: container_settings(settings),
                    network: settings.swarm_network.clone(),
                    pending_timeout: Duration::from_secs(settings.swarm_pending_timeout_secs),
                })
                .await
                .context("RAFIKI_BACKEND=swarm")?;
                let nodes = swarm.nodes();
                (
                    Arc::new(swarm),
                    Arc::new(nodes),
                    // The admin on the host of the services' node; an admin on the overlay network
                    // (several nodes) is named by RAFIKI_SERVICE_ADMIN_URL.
                    format!("http://host.docker.internal:{port}"),
                )
            }
        };
    Ok(Orchestrator::new(
        pool.clone(),
        backend,
        inventory,
        metrics,
        OrchestratorConfig {
            admin_url: settings
                .service_admin_url
                .clone()
                .unwrap_or(default_admin_url),
            worker_image: settings.worker_image.clone(),
            max_restarts: settings.max_service_restarts,
            quotas: settings.quotas,
            zip_limits: settings.zip_limits,
            allowed_images: settings.allowed_images.clone(),
            env_cache_max_gb: settings.env_cache_max_gb,
            pip_args: settings.pip_args.clone(),
            dependency_pins: settings.dependency_pins,
        },
    ))
}

/// `rafiki-admin gpus`: the cluster's nodes, their GPUs, and which services hold them, from
/// the backend's inventory and the database's allocations.
pub async fn gpu_report(settings: &Settings) -> anyhow::Result<String> {
    let inventory: Box<dyn Inventory> = match settings.backend {
        BackendKind::Swarm => Box::new(
            crate::backend::swarm::SwarmNodes::connect()
                .await
                .context("RAFIKI_BACKEND=swarm")?,
        ),
        BackendKind::Process | BackendKind::Docker => {
            Box::new(LocalInventory::new(settings.gpus.clone()))
        }
    };
    let pool = connect_patiently(settings)
        .await
        .context("cannot connect to the database (DATABASE_URL)")?;
    let cluster = crate::cluster::Cluster::new(
        inventory.nodes().await?,
        rafiki_store::gpu_allocations::list(&pool).await?,
        &rafiki_store::services::list_live(&pool).await?,
    );
    Ok(cluster.describe())
}

/// Creates `superadmin@rafiki` unless it exists (an existing account keeps its password).
async fn seed_superadmin(
    pool: &sqlx::PgPool,
    settings: &Settings,
    passwords: &Passwords,
) -> anyhow::Result<()> {
    let hash = passwords.hash(settings.superadmin_password.clone()).await?;
    let created =
        rafiki_store::users::insert_if_absent(pool, SUPERADMIN_EMAIL, &hash, UserType::Superadmin)
            .await?;
    if created {
        tracing::info!("seeded {SUPERADMIN_EMAIL}");
    }
    Ok(())
}

/// Resolves on SIGTERM or Ctrl-C.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(err) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %err, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(err) => {
                tracing::error!(error = %err, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down: finishing requests in flight");
}
