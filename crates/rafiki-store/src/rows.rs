//! Reading rows into records: each table module's row type says how it becomes its record
//! ([`IntoRecord`]), and [`by_id`] runs the statements that read, or delete and return, one row
//! by its id (written by [`Table`] where they are the plain ones), so that a table module
//! writes only the SQL of its own.

use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, FromRow, PgExecutor};
use uuid::Uuid;

use crate::StoreResult;

/// A row as selected, which parses into its table's record.
pub(crate) trait IntoRecord: for<'r> FromRow<'r, PgRow> + Send + Unpin {
    /// What the store hands out.
    type Record;

    /// Parses the row (statuses and other checked text), or says which column is corrupt.
    fn into_record(self) -> StoreResult<Self::Record>;
}

/// A table's name and the columns its row type reads (constant fragments of its module).
pub(crate) struct Table {
    /// The table.
    pub(crate) name: &'static str,
    /// The columns, as a `select` list.
    pub(crate) columns: &'static str,
}

impl Table {
    /// Selects the row whose id is `$1`.
    pub(crate) fn select_by_id(&self) -> String {
        format!("select {} from {} where id = $1", self.columns, self.name)
    }

    /// Deletes the row whose id is `$1`, returning it.
    pub(crate) fn delete_by_id(&self) -> String {
        format!(
            "delete from {} where id = $1 returning {}",
            self.name, self.columns
        )
    }
}

/// Runs `sql`, a statement that returns at most the one row whose id is `$1`, and parses it.
/// `sql` is made of the caller's constant fragments only (see the crate's doc).
pub(crate) async fn by_id<R: IntoRecord>(
    db: impl PgExecutor<'_>,
    sql: String,
    id: Uuid,
) -> StoreResult<Option<R::Record>> {
    let row: Option<R> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(id)
        .fetch_optional(db)
        .await?;
    row.map(R::into_record).transpose()
}

/// Parses the rows of a listing, failing on the first corrupt one.
pub(crate) fn records<R: IntoRecord>(rows: Vec<R>) -> StoreResult<Vec<R::Record>> {
    rows.into_iter().map(R::into_record).collect()
}

/// Runs `sql`, a listing of a user's rows filtered by `$1` (the user) and `$2` (an app, or
/// null for all) and paged by `$3` (limit) and `$4` (offset), and parses them. `sql` is made of
/// the caller's constant fragments only (see the crate's doc).
pub(crate) async fn page_of_user<R: IntoRecord>(
    db: impl PgExecutor<'_>,
    sql: String,
    user_id: Uuid,
    app: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<R::Record>> {
    let rows: Vec<R> = sqlx::query_as(AssertSqlSafe(sql))
        .bind(user_id)
        .bind(app)
        .bind(limit)
        .bind(offset)
        .fetch_all(db)
        .await?;
    records(rows)
}
