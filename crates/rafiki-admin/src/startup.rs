//! Building and running the admin: connect, migrate, seed the superadmin, bind, serve until a
//! shutdown signal. Tests start the real thing through [`Application::build`].

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rafiki_types::user::UserType;
use secrecy::ExposeSecret;
use tokio::net::TcpListener;

use crate::auth::directory::UserDirectory;
use crate::auth::jwt::TokenKeys;
use crate::auth::password::{self, Passwords};
use crate::backend::docker::{DockerBackend, DockerSettings};
use crate::backend::process::ProcessBackend;
use crate::backend::Backend;
use crate::config::BackendKind;
use crate::config::Settings;
use crate::gpus::GpuPool;
use crate::orchestrator::{Orchestrator, OrchestratorConfig};
use crate::routes;
use crate::state::AppState;
use crate::storage::Storage;

/// The seeded superadmin's email.
pub const SUPERADMIN_EMAIL: &str = "superadmin@rafiki";

/// A built admin, bound to its port, not yet serving.
pub struct Application {
    listener: TcpListener,
    state: AppState,
}

impl Application {
    /// Connects to the database, applies migrations, seeds the superadmin and binds the port.
    pub async fn build(settings: Settings) -> anyhow::Result<Application> {
        let pool = rafiki_store::connect(
            settings.database_url.expose_secret(),
            settings.db_max_connections,
        )
        .await
        .context("cannot connect to the database (DATABASE_URL)")?;
        rafiki_store::migrate(&pool)
            .await
            .context("cannot apply the database migrations")?;
        seed_superadmin(&pool, &settings).await?;
        let storage = Arc::new(Storage::open(&settings.data_dir)?);
        let swept = storage
            .sweep_temporaries()
            .context("cannot sweep the data directory's temporaries")?;
        if swept > 0 {
            tracing::info!(swept, "removed temporaries left by an interrupted run");
        }
        let http = download_client(&settings)?;
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
        let port = listener.local_addr().context("no local address")?.port();
        let orchestrator = Arc::new(build_orchestrator(&settings, &pool, port).await?);
        orchestrator.reconcile().await?;
        let state = AppState {
            orchestrator,
            pool,
            tokens: Arc::new(TokenKeys::new(&settings.app_secret)),
            passwords: Arc::new(Passwords::new().await?),
            users,
            storage,
            http,
            settings: Arc::new(settings),
        };
        Ok(Application { listener, state })
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
        tracing::info!(port = ?self.listener.local_addr().ok(), "Rafiki admin listening");
        // Services keep running when the admin stops: a restarted admin adopts them.
        let served = axum::serve(self.listener, routes::router(state))
            .with_graceful_shutdown(shutdown)
            .await;
        refresher.abort();
        supervisor.abort();
        served.context("the HTTP server failed")
    }
}

/// The orchestrator over the configured backend. Unless configured, services reach the admin
/// on loopback (the process backend runs them on this host) or, in containers, through the
/// engine's host.
async fn build_orchestrator(
    settings: &Settings,
    pool: &sqlx::PgPool,
    port: u16,
) -> anyhow::Result<Orchestrator> {
    let (backend, default_admin_url): (Arc<dyn Backend>, String) = match settings.backend {
        BackendKind::Process => (
            Arc::new(ProcessBackend::new(
                settings.worker_bin.clone(),
                settings.predictor_bin.clone(),
                settings.python.clone(),
                settings.data_dir.join("services"),
            )?),
            format!("http://127.0.0.1:{port}"),
        ),
        BackendKind::Docker => (
            Arc::new(
                DockerBackend::connect(DockerSettings {
                    project: settings.docker_project.clone(),
                    predictor_image: settings.predictor_image.clone(),
                    cpus: settings.docker_cpus,
                    memory_mb: settings.docker_memory_mb,
                    pids_limit: settings.docker_pids_limit,
                    logs_dir: settings.data_dir.join("services"),
                })
                .await
                .context("RAFIKI_BACKEND=docker")?,
            ),
            format!("http://host.docker.internal:{port}"),
        ),
    };
    Ok(Orchestrator::new(
        pool.clone(),
        backend,
        GpuPool::new(settings.gpus.iter().copied()),
        OrchestratorConfig {
            admin_url: settings
                .service_admin_url
                .clone()
                .unwrap_or(default_admin_url),
            worker_image: settings.worker_image.clone(),
            max_restarts: settings.max_service_restarts,
            allowed_images: settings.allowed_images.clone(),
        },
    ))
}

/// The client of `dataset_url` downloads: rustls with the bundled web roots (no system
/// certificates needed), bounded connect and total times, and a few redirects at most.
fn download_client(settings: &Settings) -> anyhow::Result<reqwest::Client> {
    reqwest::Client::builder()
        .user_agent(concat!("rafiki-admin/", env!("CARGO_PKG_VERSION")))
        .connect_timeout(Duration::from_secs(10))
        .timeout(Duration::from_secs(settings.dataset_url_timeout_secs))
        .redirect(reqwest::redirect::Policy::limited(5))
        .build()
        .context("cannot build the HTTP client")
}

/// Creates `superadmin@rafiki` unless it exists (an existing account keeps its password).
async fn seed_superadmin(pool: &sqlx::PgPool, settings: &Settings) -> anyhow::Result<()> {
    let hash = password::hash(settings.superadmin_password.clone()).await?;
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
