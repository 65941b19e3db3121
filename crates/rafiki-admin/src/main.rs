//! The `rafiki-admin` binary: parse the command line, load settings, init tracing, run.

use clap::{Parser, Subcommand};
use rafiki_admin::config::Settings;
use rafiki_admin::startup::{check_workers_python, gpu_report, shutdown_signal, Application};
use secrecy::ExposeSecret;

/// Rafiki-rs admin server.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// Development mode: allows running without APP_SECRET and SUPERADMIN_PASSWORD, using
    /// insecure defaults (superadmin password `rafiki`), and listens on 127.0.0.1 only.
    #[arg(long, global = true)]
    dev: bool,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API (the default).
    Serve,
    /// Apply the database migrations and exit.
    Migrate,
    /// Print the cluster's GPU inventory by node — each node's devices (`RAFIKI_GPUS` for the
    /// process and docker backends, the `rafiki.gpus` node labels for swarm), which are free,
    /// and which service holds each — and exit. Reads the settings and database as `serve`.
    Gpus,
    /// Remove dependency environments no live service uses that are half-built, stale or over
    /// `RAFIKI_ENV_CACHE_MAX_GB` (least recently used first), and with the docker backend the
    /// environment volumes no container uses; print what went, and exit. Safe while the admin
    /// and its workers run.
    Gc,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // A bad RAFIKI_LOG_FORMAT stops the admin before it starts, with the error on stderr.
    rafiki_service::logging::init(
        "info,sqlx=warn",
        std::io::stdout,
        std::io::IsTerminal::is_terminal(&std::io::stdout()),
    )?;
    let cli = Cli::parse();
    if matches!(cli.command, Some(Command::Gc)) {
        // Nothing here needs the database or a secret.
        let collected = rafiki_admin::environments::collect(&Settings::load_gc()?).await?;
        for key in &collected.store.evicted {
            println!("removed environment {key}");
        }
        for volume in &collected.volumes {
            println!("removed volume {volume}");
        }
        println!(
            "removed {} environments ({} bytes), {} half-built or taken-out folders, {} volumes",
            collected.store.evicted.len(),
            collected.store.bytes,
            collected.store.leftovers,
            collected.volumes.len()
        );
        return Ok(());
    }
    let settings = Settings::load(cli.dev)?;
    if settings.dev {
        tracing::warn!(
            "DEV MODE: default secrets may be in use (superadmin password `rafiki`); listening on \
             loopback only, never expose this server"
        );
    }
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => {
            // Before the database: an admin whose workers cannot run models does not start.
            let python = check_workers_python(&settings).await?;
            Application::build(settings)
                .await?
                .with_workers_python(python)
                .run_until_stopped(shutdown_signal())
                .await
        }
        Command::Migrate => {
            let pool = rafiki_store::connect(
                settings.database_url.expose_secret(),
                1,
                std::time::Duration::from_millis(settings.database_acquire_timeout_ms),
            )
            .await?;
            rafiki_store::migrate(&pool).await?;
            tracing::info!("migrations applied");
            Ok(())
        }
        Command::Gpus => {
            print!("{}", gpu_report(&settings).await?);
            Ok(())
        }
        Command::Gc => unreachable!("handled before the settings are loaded"),
    }
}
