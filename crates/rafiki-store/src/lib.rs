//! Postgres access for rafiki-admin, the only process that holds database credentials.
//!
//! SQL lives here, one module per table, as plain functions that take an executor so the caller
//! owns the transaction. Rows come back as domain types from `rafiki-types`; statuses are stored
//! as checked text and parsed at this edge. Migrations (`migrations/` at the repository root)
//! are embedded in the binary.
//!
//! Some statements are put together with `format!` (a shared column list or `select`, a table
//! name) and handed to sqlx wrapped in `sqlx::AssertSqlSafe`, which sqlx requires of any query
//! text that is not a `&'static str`. They are safe: they are made only of constant fragments
//! of this crate (`const` strings, `&'static str` table names), never of input, and every value
//! is bound as a parameter (`$1`, ...).

pub mod datasets;
pub mod inference_jobs;
mod job_status;
mod json_text;
pub mod models;
pub mod services;
pub mod train_jobs;
pub mod trials;
pub mod users;

pub use json_text::JsonText;
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

/// The embedded migrations of `migrations/`.
pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../../migrations");

/// Errors of the store. Constraint violations are surfaced by name so callers can map them to
/// the contract's errors (`UserExistsError`, `ModelUsedError`, ...).
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// A unique, foreign-key or check constraint refused the write.
    #[error("constraint `{0}` violated")]
    Constraint(String),
    /// A stored value does not parse into its domain type (a bug or a hand-edited row).
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// Anything else from the database.
    #[error(transparent)]
    Database(sqlx::Error),
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        if let sqlx::Error::Database(db) = &err {
            if let Some(name) = db.constraint() {
                return StoreError::Constraint(name.to_owned());
            }
        }
        StoreError::Database(err)
    }
}

impl StoreError {
    /// Whether the database could not be reached: see [`is_unavailable`].
    pub fn is_unavailable(&self) -> bool {
        matches!(self, StoreError::Database(err) if is_unavailable(err))
    }

    /// Whether this is a violation of the named constraint.
    pub fn is_constraint(&self, name: &str) -> bool {
        matches!(self, StoreError::Constraint(n) if n == name)
    }
}

/// Whether `err` means the database could not be reached, rather than that it refused or failed
/// a statement: no connection within the acquire timeout (`PoolTimedOut`), a pool being shut
/// down (`PoolClosed`), a socket error (connection refused, reset, closed: `Io`), a TLS failure,
/// a connection cut in mid-conversation (`Protocol`), or a worker thread gone (`WorkerCrashed`).
/// Everything else (SQL errors, decoding, constraints) is a fault of the request or the server.
pub fn is_unavailable(err: &sqlx::Error) -> bool {
    matches!(
        err,
        sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::Protocol(_)
            | sqlx::Error::WorkerCrashed
    )
}

/// Whether `err` means a connection broke while in use (a socket error, or the conversation cut
/// off): a fresh connection may well work at once, so a read may be tried again. Failures to
/// connect at all end as `PoolTimedOut` within the acquire timeout instead, unless the server
/// cut the connection while it was being made, which is as quick to try again.
pub fn is_broken_connection(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Io(_) | sqlx::Error::Protocol(_))
}

impl StoreError {
    /// Whether a connection broke while in use: see [`is_broken_connection`].
    pub fn is_broken_connection(&self) -> bool {
        matches!(self, StoreError::Database(err) if is_broken_connection(err))
    }
}

/// Result of a store call.
pub type StoreResult<T> = Result<T, StoreError>;

/// Opens a pool to `url` with at most `max_connections` connections. A request waits at most
/// `acquire_timeout` for a connection (sqlx's default is 30 s, far too long to learn that the
/// database is down); past it the call fails with `sqlx::Error::PoolTimedOut`, which
/// [`StoreError::is_unavailable`] recognises.
///
/// Reads that meet a broken connection: the pool pings every idle connection before handing it
/// out (sqlx's `test_before_acquire`, on by default, kept on here), so a connection that the
/// server or the network closed while it sat in the pool is dropped and replaced rather than
/// used; a request fails only when no working connection can be made within the timeout.
pub async fn connect(
    url: &str,
    max_connections: u32,
    acquire_timeout: std::time::Duration,
) -> StoreResult<PgPool> {
    let options: PgConnectOptions = url.parse()?;
    Ok(PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(acquire_timeout)
        .test_before_acquire(true)
        .connect_with(options)
        .await?)
}

/// Applies every pending migration.
pub async fn migrate(pool: &PgPool) -> Result<(), sqlx::migrate::MigrateError> {
    MIGRATOR.run(pool).await
}

/// Parses a stored status or type string into its enum.
pub(crate) fn parse_text<T: std::str::FromStr>(column: &str, text: &str) -> StoreResult<T> {
    text.parse()
        .map_err(|_| StoreError::Corrupt(format!("{column} = {text:?}")))
}
