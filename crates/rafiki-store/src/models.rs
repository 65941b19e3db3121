//! The `models` table: uploaded model classes. The file lives in the admin's data directory
//! under `storage_key`; a row is inserted only once its file is in place.

use chrono::{DateTime, Utc};
use rafiki_types::model::{
    AvailableModel, Dependencies, DependencyPins, Model, ModelAccessRight, ModelRef,
};
use sqlx::types::Json;
use sqlx::{AssertSqlSafe, FromRow, PgExecutor};
use uuid::Uuid;

use crate::datasets::{parse_key, size_column};
use crate::rows::{self, IntoRecord, Table};
use crate::{parse_text, StoreError, StoreResult};

/// The unique constraint on `(user_id, name)`: `DuplicateModelNameError`.
pub const USER_NAME_UNIQUE: &str = "models_user_name_key";
/// The foreign key that refuses deleting a model a train job uses: `ModelUsedError`.
pub const USED_BY_SUB_TRAIN_JOB: &str = "sub_train_jobs_model_fkey";

/// A model row.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelRecord {
    /// The model's id.
    pub id: Uuid,
    /// Its owner.
    pub user_id: Uuid,
    /// Its name, unique per owner.
    pub name: String,
    /// Its task.
    pub task: String,
    /// The class implementing it.
    pub model_class: String,
    /// The worker image it runs in.
    pub docker_image: Option<String>,
    /// `{package: version}`.
    pub dependencies: Dependencies,
    /// Who may use it.
    pub access_right: ModelAccessRight,
    /// Its choice for pins that cannot be installed (`None`: the deployment's).
    pub dependency_pins: Option<DependencyPins>,
    /// Exact size of the file.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: String,
    /// Key of the file in the data directory (server-generated).
    pub storage_key: Uuid,
    /// When it was uploaded.
    pub datetime_created: DateTime<Utc>,
}

impl ModelRecord {
    /// Whether `user_id` may see and use it: its owner, or anyone when it is public (admins
    /// are the caller's business).
    pub fn is_available_to(&self, user_id: Uuid) -> bool {
        self.user_id == user_id || self.access_right == ModelAccessRight::Public
    }

    /// `{id, user_id, name}`.
    pub fn reference(&self) -> ModelRef {
        ModelRef {
            id: self.id,
            user_id: self.user_id,
            name: self.name.clone(),
        }
    }

    /// The listing's view.
    pub fn available(&self) -> AvailableModel {
        AvailableModel {
            id: self.id,
            user_id: self.user_id,
            name: self.name.clone(),
            task: self.task.clone(),
            datetime_created: self.datetime_created,
            dependencies: self.dependencies.clone(),
            access_right: self.access_right,
        }
    }

    /// The detailed view.
    pub fn detail(&self) -> Model {
        Model {
            id: self.id,
            user_id: self.user_id,
            name: self.name.clone(),
            task: self.task.clone(),
            model_class: self.model_class.clone(),
            datetime_created: self.datetime_created,
            docker_image: self.docker_image.clone(),
            dependencies: self.dependencies.clone(),
            access_right: self.access_right,
            dependency_pins: self.dependency_pins,
        }
    }
}

/// A model to insert; its file is already in place.
#[derive(Debug, Clone)]
pub struct NewModel<'a> {
    /// The owner.
    pub user_id: Uuid,
    /// Its name.
    pub name: &'a str,
    /// Its task.
    pub task: &'a str,
    /// The class implementing it.
    pub model_class: &'a str,
    /// The worker image it runs in.
    pub docker_image: &'a str,
    /// `{package: version}`.
    pub dependencies: &'a Dependencies,
    /// Who may use it.
    pub access_right: ModelAccessRight,
    /// Its choice for pins that cannot be installed.
    pub dependency_pins: Option<DependencyPins>,
    /// Exact size of the file.
    pub size_bytes: u64,
    /// Lowercase hex SHA-256 of the file.
    pub sha256: &'a str,
    /// Key of the file in the data directory.
    pub storage_key: Uuid,
}

#[derive(FromRow)]
struct Row {
    id: Uuid,
    user_id: Uuid,
    name: String,
    task: String,
    model_class: String,
    docker_image: Option<String>,
    dependencies: serde_json::Value,
    access_right: String,
    dependency_pins: Option<String>,
    size_bytes: i64,
    sha256: String,
    storage_key: String,
    datetime_created: DateTime<Utc>,
}

impl IntoRecord for Row {
    type Record = ModelRecord;

    fn into_record(self) -> StoreResult<ModelRecord> {
        Ok(ModelRecord {
            id: self.id,
            user_id: self.user_id,
            name: self.name,
            task: self.task,
            model_class: self.model_class,
            docker_image: self.docker_image,
            dependencies: serde_json::from_value(self.dependencies).map_err(|err| {
                StoreError::Corrupt(format!("models.dependencies of {}: {err}", self.id))
            })?,
            access_right: parse_text("models.access_right", &self.access_right)?,
            dependency_pins: self
                .dependency_pins
                .map(|pins| parse_text("models.dependency_pins", &pins))
                .transpose()?,
            size_bytes: u64::try_from(self.size_bytes).map_err(|_| {
                StoreError::Corrupt(format!("models.size_bytes = {}", self.size_bytes))
            })?,
            sha256: self.sha256,
            storage_key: parse_key("models.storage_key", &self.storage_key)?,
            datetime_created: self.datetime_created,
        })
    }
}

const COLUMNS: &str = "id, user_id, name, task, model_class, docker_image, dependencies, \
                       access_right, dependency_pins, size_bytes, sha256, storage_key, \
                       datetime_created";

const TABLE: Table = Table {
    name: "models",
    columns: COLUMNS,
};

/// Inserts a model with a fresh id; fails with [`USER_NAME_UNIQUE`] when the owner already has
/// a model of that name.
pub async fn insert(db: impl PgExecutor<'_>, new: &NewModel<'_>) -> StoreResult<ModelRecord> {
    let row: Row = sqlx::query_as(AssertSqlSafe(format!(
        "insert into models (id, user_id, name, task, model_class, docker_image, dependencies, \
         access_right, size_bytes, sha256, storage_key, dependency_pins) \
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) returning {COLUMNS}"
    )))
    .bind(Uuid::new_v4())
    .bind(new.user_id)
    .bind(new.name)
    .bind(new.task)
    .bind(new.model_class)
    .bind(new.docker_image)
    .bind(Json(new.dependencies))
    .bind(<&str>::from(new.access_right))
    .bind(size_column("models.size_bytes", new.size_bytes)?)
    .bind(new.sha256)
    .bind(new.storage_key.to_string())
    .bind(new.dependency_pins.map(<&str>::from))
    .fetch_one(db)
    .await?;
    row.into_record()
}

/// The models `user_id` may use (own or public), of `task` if given, newest first: `limit` of
/// them after the first `offset`.
pub async fn list_available(
    db: impl PgExecutor<'_>,
    user_id: Uuid,
    task: Option<&str>,
    limit: i64,
    offset: i64,
) -> StoreResult<Vec<ModelRecord>> {
    let rows: Vec<Row> = sqlx::query_as(AssertSqlSafe(format!(
        "select {COLUMNS} from models \
         where (user_id = $1 or access_right = 'PUBLIC') and ($2::text is null or task = $2) \
         order by datetime_created desc, id desc limit $3 offset $4"
    )))
    .bind(user_id)
    .bind(task)
    .bind(limit)
    .bind(offset)
    .fetch_all(db)
    .await?;
    rows::records(rows)
}

/// One model.
pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<ModelRecord>> {
    rows::by_id::<Row>(db, TABLE.select_by_id(), id).await
}

/// Deletes a model's row and returns it (`None` if it was gone). A train job using it makes
/// this fail with [`USED_BY_SUB_TRAIN_JOB`].
pub async fn delete(db: impl PgExecutor<'_>, id: Uuid) -> StoreResult<Option<ModelRecord>> {
    rows::by_id::<Row>(db, TABLE.delete_by_id(), id).await
}
