//! Test support of Rafiki-rs's suites: the Postgres server the integration tests create their
//! databases in, and [`metrics`], a reader of the servers' `/metrics`.
//!
//! The integration tests (rafiki-admin's API tests, rafiki-client's client and CLI tests) run the
//! real admin, each test on a fresh database of its own that [`fresh_database`] creates. The
//! server it is created on is chosen once per test process, by [`server_url`]:
//!
//! 1. `RAFIKI_TEST_DATABASE_URL`, when it is set: the URL of a server in which the tests may
//!    create databases, used as it is (`scripts/postgres.sh` starts Debian's Postgres and prints
//!    one).
//! 2. Otherwise a container of the project's image `rafiki-rs/postgres:15` (built by
//!    `scripts/build-images.sh`), started with testcontainers or reused: one container per
//!    machine, named `rafiki-rs-test-postgres`, with its data in the volume of the same name,
//!    shared by every test binary and every run and never removed by them (`docker rm -f
//!    rafiki-rs-test-postgres && docker volume rm rafiki-rs-test-postgres` removes both; a
//!    container made from an older image is reused as it is until then). Its port 5432 is
//!    published on a free port of 127.0.0.1, it trusts every connection (no password) and it
//!    trades durability for speed (`fsync=off`), for disposable data only. The tests' databases
//!    left there for more than [`STALE_AFTER_HOURS`] hours are dropped when a test process first
//!    uses the container, so a reused container does not fill the disk.
//! 3. Neither (no variable, and Docker or the image missing): the tests panic, saying how to get
//!    a server.
//!
//! The binary `rafiki-test-postgres` of this crate starts or reuses the same container and
//! prints its URL, for scripts (`scripts/postgres.sh --docker`) and the Python tests.
//!
//! Test suites take it as a dev-dependency and create their databases with it:
//!
//! ```no_run
//! # async fn test() {
//! let database_url = rafiki_testing::fresh_database().await;
//! // ... start the admin on `database_url`
//! # }
//! ```

pub mod metrics;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use sqlx::{AssertSqlSafe, Connection, Executor, PgConnection};
use testcontainers::bollard::models::PortBinding;
use testcontainers::core::{IntoContainerPort, Mount, WaitFor};
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt, ReuseDirective, TestcontainersError};
use tokio::sync::OnceCell;

/// The variable naming a Postgres server for the tests, which then start no container.
pub const DATABASE_URL_VAR: &str = "RAFIKI_TEST_DATABASE_URL";
/// The image of the tests' Postgres container (`scripts/build-images.sh postgres` builds it).
pub const IMAGE: &str = "rafiki-rs/postgres:15";
/// The name of the tests' Postgres container, the one per machine that every test process
/// reuses, and of the volume that holds its data (named, so that no container leaves an
/// anonymous volume behind).
pub const CONTAINER_NAME: &str = "rafiki-rs-test-postgres";
/// The label (with the value `postgres`) that marks the container as the tests'.
pub const CONTAINER_LABEL: &str = "rafiki-rs.test";
/// The prefix of the databases [`fresh_database`] creates.
pub const DATABASE_PREFIX: &str = "rafiki_test_";
/// How old a test database in the container must be to be dropped: older than any test run.
pub const STALE_AFTER_HOURS: i32 = 2;

/// The image's repository and tag, as testcontainers takes them.
const IMAGE_NAME: &str = "rafiki-rs/postgres";
const IMAGE_TAG: &str = "15";
/// The image's data directory.
const PGDATA: &str = "/var/lib/postgresql/data";
/// The line the image's server logs once, when it accepts connections (docker/postgres).
const READY_LINE: &str = "database system is ready to accept connections";
/// How long the container may take to start and accept connections.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Server settings for disposable test data, and room for many tests' connection pools.
const SERVER_ARGS: [&str; 8] = [
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
    "-c",
    "max_connections=500",
];
/// How to get a server when there is none.
pub const HOW_TO: &str = "set RAFIKI_TEST_DATABASE_URL to a server's URL (`scripts/postgres.sh` \
                      starts Debian's Postgres and prints one), or make Docker serve with the \
                      image rafiki-rs/postgres:15 (`scripts/build-images.sh postgres` builds it)";

/// Why the tests' container could not be had.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The Docker engine does not answer.
    #[error("Docker does not serve ({0})")]
    Docker(String),
    /// The image is not there (no registry has it: it is built here).
    #[error("the image {IMAGE} is missing")]
    MissingImage,
    /// Docker would not create or start the container.
    #[error("the container {CONTAINER_NAME} did not start: {0}")]
    Start(#[from] TestcontainersError),
    /// The server in the container did not accept connections in time.
    #[error(
        "Postgres in the container {CONTAINER_NAME} did not accept connections within {secs} s: {0}",
        secs = READY_TIMEOUT.as_secs()
    )]
    NotReady(sqlx::Error),
}

/// The URL of the Postgres server the tests create their databases in:
/// `RAFIKI_TEST_DATABASE_URL`, or the tests' container (see the crate's documentation).
///
/// Chosen once per process; every caller waits for the first one's choice.
///
/// # Panics
///
/// When there is no server: the variable is not set and the container cannot be had. The
/// message says why and how to get one.
pub async fn server_url() -> &'static str {
    static SERVER: OnceCell<Result<String, String>> = OnceCell::const_new();
    let server = SERVER
        .get_or_init(|| async {
            match std::env::var(DATABASE_URL_VAR) {
                Ok(url) if !url.trim().is_empty() => Ok(url),
                _ => container_server_url().await.map_err(|e| e.to_string()),
            }
        })
        .await;
    match server {
        Ok(url) => url,
        Err(why) => panic!(
            "no Postgres server for the tests: {DATABASE_URL_VAR} is not set and {why}; {HOW_TO}"
        ),
    }
}

/// The URL of a fresh, empty database on [`server_url`]'s server.
///
/// # Panics
///
/// When there is no server, or it refuses the database.
pub async fn fresh_database() -> String {
    let server = server_url().await;
    let name = format!("{DATABASE_PREFIX}{}", uuid::Uuid::new_v4().simple());
    let mut conn = PgConnection::connect(server)
        .await
        .unwrap_or_else(|e| panic!("cannot connect to the tests' Postgres server {server}: {e}"));
    // A database name cannot be bound; this one is the prefix and a UUID made here.
    conn.execute(AssertSqlSafe(format!(r#"create database "{name}""#)))
        .await
        .expect("cannot create a test database");
    let (base, _) = server.rsplit_once('/').expect("a database URL");
    format!("{base}/{name}")
}

/// Starts the tests' Postgres container, or reuses the one there is, and returns its server's
/// URL (`postgres://postgres@127.0.0.1:<port>/postgres`) once it accepts connections. Test
/// databases older than [`STALE_AFTER_HOURS`] hours are dropped from it.
pub async fn container_server_url() -> Result<String, Error> {
    check_image().await?;
    let container = start_or_reuse().await?;
    let port = container.get_host_port_ipv4(5432.tcp()).await?;
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    wait_until_ready(&url).await?;
    drop_stale_databases(&url).await;
    Ok(url)
}

/// Fails early and clearly where testcontainers would try to pull the image from a registry.
async fn check_image() -> Result<(), Error> {
    use testcontainers::bollard::errors::Error as DockerError;
    let docker = testcontainers::core::client::docker_client_instance()
        .await
        .map_err(|e| Error::Docker(e.to_string()))?;
    match docker.inspect_image(IMAGE).await {
        Ok(_) => Ok(()),
        Err(DockerError::DockerResponseServerError {
            status_code: 404, ..
        }) => Err(Error::MissingImage),
        Err(e) => Err(Error::Docker(e.to_string())),
    }
}

/// The container, created and started, or found (and started when stopped). Test processes
/// that race to create it see a name conflict, or a start already done: they try again and
/// find it.
async fn start_or_reuse() -> Result<ContainerAsync<GenericImage>, Error> {
    let mut tries = 0;
    loop {
        let request = GenericImage::new(IMAGE_NAME, IMAGE_TAG)
            .with_exposed_port(5432.tcp())
            .with_wait_for(WaitFor::message_on_stderr(READY_LINE))
            .with_cmd(SERVER_ARGS)
            // initdb need not sync its files to disk for throwaway data (about 1.5 s less).
            .with_env_var("POSTGRES_INITDB_ARGS", "--no-sync")
            .with_container_name(CONTAINER_NAME)
            .with_mount(Mount::volume_mount(CONTAINER_NAME, PGDATA))
            .with_label(CONTAINER_LABEL, "postgres")
            .with_shm_size(256 << 20)
            .with_startup_timeout(READY_TIMEOUT)
            // Published on 127.0.0.1 only: the server trusts every connection.
            .with_host_config_modifier(|host| {
                host.publish_all_ports = Some(false);
                host.port_bindings = Some(HashMap::from([(
                    "5432/tcp".to_owned(),
                    Some(vec![PortBinding {
                        host_ip: Some("127.0.0.1".to_owned()),
                        host_port: Some(String::new()),
                    }]),
                )]));
            })
            .with_reuse(ReuseDirective::Always);
        match request.start().await {
            Ok(container) => return Ok(container),
            Err(_) if tries < 3 => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Waits until the server answers a query: a reused container may have just been started,
/// and the engine's port accepts connections before the server does.
async fn wait_until_ready(url: &str) -> Result<(), Error> {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        let attempt = tokio::time::timeout(Duration::from_secs(5), async {
            let mut conn = PgConnection::connect(url).await?;
            conn.execute("select 1").await?;
            conn.close().await
        })
        .await
        .unwrap_or_else(|_| Err(sqlx::Error::PoolTimedOut));
        match attempt {
            Ok(()) => return Ok(()),
            Err(e) if Instant::now() >= deadline => return Err(Error::NotReady(e)),
            Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
        }
    }
}

/// Drops the container's test databases created more than [`STALE_AFTER_HOURS`] hours ago
/// (when their `PG_VERSION` file was written), left by earlier runs. Best effort: a failure
/// leaves them.
async fn drop_stale_databases(url: &str) {
    let Ok(mut conn) = PgConnection::connect(url).await else {
        return;
    };
    let stale: Vec<String> = sqlx::query_scalar(
        "select datname from pg_database \
         where starts_with(datname, $1) \
           and (pg_stat_file('base/' || oid || '/PG_VERSION', true)).modification \
               < now() - make_interval(hours => $2)",
    )
    .bind(DATABASE_PREFIX)
    .bind(STALE_AFTER_HOURS)
    .fetch_all(&mut conn)
    .await
    .unwrap_or_default();
    for name in &stale {
        // The names are [`fresh_database`]'s (the prefix and a UUID), read back from the server.
        let _ = conn
            .execute(AssertSqlSafe(format!(
                r#"drop database if exists "{name}" with (force)"#
            )))
            .await;
    }
    if !stale.is_empty() {
        eprintln!(
            "rafiki-testing: dropped {} stale test databases (over {STALE_AFTER_HOURS} h old) \
             from {CONTAINER_NAME}",
            stale.len()
        );
    }
}
