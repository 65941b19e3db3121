//! The `datasets` table: one row per stored dataset file. The file itself lives in the admin's
//! data directory under `storage_key`; a row is inserted only once its file is in place.

use chrono::{DateTime, Utc};
use rafiki_types::dataset::{Dataset, DatasetDetail};
use sqlx::{AssertSqlSafe, FromRow, PgConnection, PgExecutor};
use uuid::Uuid;

use crate::rows::{self, IntoRecord, Table};
use crate::{StoreError, StoreResult};

/// The foreign keys that refuse deleting a dataset a train job trains on...
pub const USED_AS_TRAIN_DATASET: &str = "train_jobs_train_dataset_fkey";
/// ...or validates on.
pub const USED_AS_VAL_DATASET: &str = "train_jobs_val_dataset_fkey";

/// A dataset row.
#[derive(Debug, Clone, PartialEq)]
pub struct DatasetRecord {
    /// The dataset's id.
    pub id: Uuid,
    /// Its creator.
    pub owner_id: Uuid,
    /// Its name.
    pub name: String,
    /// Its task.
    pub task: String,
    /// Exact size of the file.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// Key of the file in the data directory (server-generated).
    pub storage_key: Uuid,
    /// Where it was downloaded from, if it was.
    pub source_url: Option<String>,
    /// When it was created.
    pub datetime_created: DateTime<Utc>,
}

impl DatasetRecord {
    /// The listing's view.
    pub fn summary(&self) -> Dataset {
        Dataset {
            id: self.id,
            name: self.name.clone(),
            task: self.task.clone(),
            datetime_created: self.datetime_created,
            size_bytes: self.size_bytes,
        }
    }

    /// The detailed view.
    pub fn detail(&self) -> DatasetDetail {
        DatasetDetail {
            id: self.id,
            owner_id: self.owner_id,
            name: self.name.clone(),
            task: self.task.clone(),
            datetime_created: self.datetime_created,
            size_bytes: self.size_bytes,
            sha256: self.sha256.clone(),
            source_url: self.source_url.clone(),
        }
    }
}

/// A dataset to insert; its file is already in place.
#[derive(Debug, Clone)]
pub struct NewDataset<'a> {
    /// The creator.
    pub owner_id: Uuid,
    /// Its name.
    pub name: &'a str,
    /// Its task.
    pub task: &'a str,
    /// Exact size of the file.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: &'a str,
    /// Key of the file in the data directory.
    pub storage_key: Uuid,
    /// Where it was downloaded from, if it was.
    pub source_url: Option<&'a str>,
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    owner_id: Uuid,
    name: String,
    task: String,
    size_bytes: i64,
    sha256: String,
    storage_key: String,
    source_url: Option<String>,
    datetime_created: DateTime<Utc>,
}

impl IntoRecord for Row {
    type Record = DatasetRecord;

    fn into_record(self) -> StoreResult<DatasetRecord> {
        Ok(DatasetRecord {
            id: self.id,
            owner_id: self.owner_id,
            name: self.name,
            task: self.task,
            size_bytes: u64::try_from(self.size_bytes).map_err(|_| {
                StoreError::Corrupt(format!("datasets.size_bytes = {}", self.size_bytes))
            })?,
            sha256: self.sha256,
            storage_key: parse_key("datasets.storage_key", &self.storage_key)?,
            source_url: self.source_url,
            datetime_created: self.datetime_created,
        })
    }
}

/// Storage keys are uuids; anything else in the column is refused here, so no stored string
/// ever becomes a path.
pub(crate) fn parse_key(column: &str, text: &str) -> StoreResult<Uuid> {
    Uuid::parse_str(text).map_err(|_| StoreError::Corrupt(format!("{column} = {text:?}")))
}

/// Converts a size to the `bigint` column.
pub(crate) fn size_column(column: &str, size: u64) -> StoreResult<i64> {
    i64::try_from(size).map_err(|_| StoreError::Corrupt(format!("{column} = {size}")))
}

const COLUMNS: &str =
    "id, owner_id, name, task, size_bytes, sha256, storage_key, source_url, datetime_created";

const TABLE: Table = Table {
    name: "datasets",
    columns: COLUMNS,
};

/// Inserts a dataset with a fresh id.
pub async fn insert(db: impl PgExecutor<'_>, new: &NewDataset<'_>) -> StoreResult<DatasetRecord> {
    let row: Row = sqlx::query_as(AssertSqlSafe(format!(
        "insert into datasets (id, owner_id, name, task, size_bytes, sha256, storage_key, \
         source_url) values ($1, $2, $3, $4, $5, $6, $7, $8) returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(new.owner_id)
    .bind(new.name)
    .bind(new.task)
    .bind(size_column("datasets.size_bytes", new.size_bytes)?)
    .bind(new.sha256)
    .bind(new.storage_key.to_string())
    .bind(new.source_url)
    .fetch_one(db)
    .await?;
    row.into_record()
}

/// Datasets newest first: of `owner` (every owner's with `None`), of `task` if given; `limit` of
/// them after the first `offset`.
pub async fn list(
    db: impl PgExecutor<'_>,
    owner: Option<Uuid>,
    task: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<DatasetRecord>> {
    let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "select {COLUMNS} from datasets \
         where ($1::uuid is null or owner_id = $1) and ($2::text is null or task = $2) \
         order by datetime_created desc, id desc limit $3 offset $4"
    )))
    .bind(owner)
    .bind(task)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    rows::records(rows)
}

/// The bytes of every dataset `owner` stores.
pub async fn bytes_of_owner(db: impl PgExecutor<'_>, owner: Uuid) -> StoreResult<u64> {
    let bytes: i64 = sqlx::query_scalar(
        "select coalesce(sum(size_bytes), 0)::bigint from datasets where owner_id = $1",
    )
    .bind(owner)
    .fetch_one(db)
    .await?;
    u64::try_from(bytes)
        .map_err(|_| StoreError::Corrupt(format!("sum of datasets.size_bytes = {bytes}")))
}

/// Inserts a dataset unless its owner's datasets would then hold more than `max_owner_bytes`;
/// in that case nothing is written and the answer is `Err(bytes the owner stores)`. The owner's
/// row is locked in the insert's transaction (`tx`, which the caller commits with the
/// insert's audit row), so concurrent inserts of one owner are checked one after the other and
/// cannot together pass the quota.
pub async fn insert_within_quota(
    tx: &mut PgConnection,
    new: &NewDataset<'_>,
    max_owner_bytes: u64,
) -> StoreResult<Result<DatasetRecord, u64>> {
    crate::users::lock(&mut *tx, new.owner_id).await?;
    let used = bytes_of_owner(&mut *tx, new.owner_id).await?;
    if used.saturating_add(new.size_bytes) > max_owner_bytes {
        return Ok(Err(used));
    }
    Ok(Ok(insert(&mut *tx, new).await?))
}

/// One dataset.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<DatasetRecord>> {
    rows::by_id::<Row>(db, TABLE.select_by_id(), id).await
}

/// Deletes a dataset's row and returns it (`None` if it was gone). A train job using it makes
/// this fail with [`USED_AS_TRAIN_DATASET`] or [`USED_AS_VAL_DATASET`].
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<DatasetRecord>> {
    rows::by_id::<Row>(db, TABLE.delete_by_id(), id).await
}
