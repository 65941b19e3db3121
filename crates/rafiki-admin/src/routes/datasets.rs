//! `POST /datasets`, `GET /datasets` (routes 5 and 6) and the additions `GET /datasets/{id}`
//! and `DELETE /datasets/{id}`.
//!
//! A dataset is owned by its creator; only the owner and admins see it. It is either uploaded
//! (the multipart file field `dataset`; the filename the client sends is ignored) or
//! downloaded by the admin from `dataset_url` (http or https, public addresses only: the
//! `dataset_url` module fetches it). Either way the bytes stream to
//! the data directory under the size limit and what is left of the owner's dataset quota, a zip
//! archive is checked against the zip limits (`crate::archive`), and the row appears only once
//! the file is in place, written under a lock that keeps concurrent uploads within the quota.

use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::Json;
use rafiki_store::audit;
use rafiki_store::datasets::{self, DatasetRecord, NewDataset};
use rafiki_types::audit::{AuditAction, TargetKind};
use rafiki_types::dataset::{CreatedDataset, Dataset, DatasetDetail};
use rafiki_types::error::{ErrorBody, ErrorName};
use serde::Deserialize;
use uuid::Uuid;

use crate::archive::check_zip_file;
use crate::audit::Origin;
use crate::auth::extract::AuthUser;
use crate::dataset_url::DatasetUrl;
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::metrics::UploadKind;
use crate::paging::{Listing, Page, PageParams};
use crate::state::AppState;
use crate::storage::ObjectKind;
use crate::upload::{read_form, FileLimit, Form, FormSpec};

/// The `POST /datasets` form (the console reads it too, with its CSRF token added).
pub const FORM: FormSpec = FormSpec {
    file_field: "dataset",
    text_fields: &["name", "task", "dataset_url"],
    kind: ObjectKind::Dataset,
    keep_copy: false,
    added_fields: &[],
};

/// The `POST /datasets` form, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CreateDatasetForm {
    /// The dataset's name (need not be unique).
    name: String,
    /// Its task, e.g. `IMAGE_CLASSIFICATION`.
    task: String,
    /// A http(s) URL the admin downloads the dataset from, instead of the file.
    dataset_url: Option<String>,
    /// The dataset file, instead of `dataset_url`.
    #[schema(value_type = Option<String>, format = Binary)]
    dataset: Option<Vec<u8>>,
}

/// `GET /datasets` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DatasetQuery {
    /// Only datasets of this task.
    pub task: Option<String>,
}

/// Creates a dataset from an uploaded file or a URL.
#[utoipa::path(post, path = "/datasets", security(("bearer" = [])),
    request_body(content = CreateDatasetForm, content_type = "multipart/form-data"),
    responses(
    (status = 200, body = CreatedDataset),
    (status = 400, description = "InvalidDatasetError (no file and no URL, both, empty, bad \
        URL, not a public address, download failed, a zip archive past the zip limits) or \
        InvalidRequestError",
        body = ErrorBody),
    (status = 413, description = "PayloadTooLargeError: larger than RAFIKI_MAX_DATASET_BYTES \
        or than what is left of the caller's dataset quota", body = ErrorBody)))]
pub async fn create_dataset(
    State(state): State<AppState>,
    caller: AuthUser,
    origin: Origin,
    req: Request,
) -> ApiResult<Json<CreatedDataset>> {
    let limit = upload_limit(&state, caller.id).await?;
    let form = read_form(req, &state, &FORM, &limit).await?;
    let record = create(&state, caller, &origin, form, &limit).await?;
    Ok(Json(CreatedDataset {
        id: record.id,
        name: record.name,
        task: record.task,
        size_bytes: record.size_bytes,
    }))
}

/// Creates a dataset of `caller` from a read form (`name`, `task`, and the file or a
/// `dataset_url`) whose file was bounded by `limit` ([`upload_limit`]): what `POST /datasets`
/// and the console's upload form both do. The row and its audit row are written together.
pub async fn create(
    state: &AppState,
    caller: AuthUser,
    origin: &Origin,
    mut form: Form,
    limit: &FileLimit,
) -> ApiResult<DatasetRecord> {
    let name = form.require_short("name")?;
    let task = form.require_short("task")?;
    let (upload, url) = match (form.file.take(), form.take("dataset_url")) {
        (Some(_), Some(_)) => {
            return Err(invalid_dataset(
                "Give either a `dataset` file or a `dataset_url`, not both.",
            ))
        }
        (None, None) => {
            return Err(invalid_dataset(
                "Give the dataset as a file in the field `dataset` or as a `dataset_url`.",
            ))
        }
        (Some(file), None) => (file.upload, None),
        (None, Some(text)) => {
            let url = DatasetUrl::parse(&text)?;
            let mut upload = state
                .storage
                .create(ObjectKind::Dataset, limit.max_bytes())
                .await?;
            state
                .dataset_urls
                .download(&url, &mut upload, limit)
                .await?;
            (upload, Some(url))
        }
    };
    if upload.size() == 0 {
        return Err(invalid_dataset("The dataset is empty (0 bytes)."));
    }
    let stored = upload.finish().await?;
    check_zip_file(stored.path().to_path_buf(), state.settings.zip_limits)
        .await?
        .map_err(invalid_dataset)?;
    let new = NewDataset {
        owner_id: caller.id,
        name: &name,
        task: &task,
        size_bytes: stored.size_bytes(),
        sha256: stored.sha256(),
        storage_key: stored.key(),
        source_url: url.as_ref().map(DatasetUrl::source),
    };
    let quotas = state.settings.quotas;
    let actor = origin.actor(caller);
    let event = |record: &DatasetRecord| {
        actor.did(AuditAction::DatasetCreate, TargetKind::Dataset, record.id)
    };
    let record = if !quotas.limits_dataset_bytes() {
        audit::recorded(
            &state.pool,
            async |tx| datasets::insert(tx, &new).await,
            |record| Some(event(record)),
        )
        .await?
    } else {
        // Another upload of the same user may have used the room since this one began.
        audit::recorded(
            &state.pool,
            async |tx| datasets::insert_within_quota(tx, &new, quotas.user_dataset_bytes).await,
            |inserted| inserted.as_ref().ok().map(event),
        )
        .await?
        .map_err(|used| quotas.dataset_error(used, new.size_bytes))?
    };
    // Dropping `stored` on an error above removed the file; now the row refers to it.
    stored.keep();
    state
        .metrics
        .uploaded(UploadKind::Dataset, record.size_bytes);
    Ok(record)
}

/// Lists the caller's datasets (every user's for admins), newest first, a page at a time.
#[utoipa::path(get, path = "/datasets", params(DatasetQuery, PageParams),
    security(("bearer" = [])), responses((status = 200, body = Vec<Dataset>),
    (status = 400, description = "InvalidRequestError: a bad `limit` or `offset`", body = ErrorBody)))]
pub async fn list_datasets(
    State(state): State<AppState>,
    caller: AuthUser,
    Listing { filters, page }: Listing<DatasetQuery>,
) -> ApiResult<Json<Vec<Dataset>>> {
    let records = visible_datasets(&state, caller, filters.task.as_deref(), page).await?;
    Ok(Json(records.iter().map(DatasetRecord::summary).collect()))
}

/// A page of the datasets `caller` may see (theirs; every user's for admins), newest first,
/// optionally of one task.
pub async fn visible_datasets(
    state: &AppState,
    caller: AuthUser,
    task: Option<&str>,
    page: Page,
) -> ApiResult<Vec<DatasetRecord>> {
    let owner = (!caller.is_admin()).then_some(caller.id);
    Ok(datasets::list(&state.pool, owner, task, page.limit, page.offset).await?)
}

/// One dataset of the caller's (any, for admins).
#[utoipa::path(get, path = "/datasets/{id}", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The dataset's id")),
    responses(
    (status = 200, body = DatasetDetail),
    (status = 404, description = "InvalidDatasetError: no such dataset of yours", body = ErrorBody)))]
pub async fn get_dataset(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<DatasetDetail>> {
    Ok(Json(visible_dataset(&state, caller, id).await?.detail()))
}

/// Deletes a dataset of the caller's (any, for admins) that no train job uses; its file goes
/// after its row.
#[utoipa::path(delete, path = "/datasets/{id}", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The dataset's id")),
    responses(
    (status = 200, body = Dataset),
    (status = 404, description = "InvalidDatasetError: no such dataset of yours", body = ErrorBody),
    (status = 409, description = "InvalidDatasetError: a train job uses it", body = ErrorBody)))]
pub async fn delete_dataset(
    State(state): State<AppState>,
    caller: AuthUser,
    origin: Origin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Dataset>> {
    Ok(Json(delete(&state, caller, &origin, id).await?.summary()))
}

/// Deletes a dataset `caller` may see that no train job uses, then its file: what
/// `DELETE /datasets/{id}` and the console's delete button both do. The row goes with its
/// audit row written.
pub async fn delete(
    state: &AppState,
    caller: AuthUser,
    origin: &Origin,
    id: Uuid,
) -> ApiResult<DatasetRecord> {
    visible_dataset(state, caller, id).await?;
    let actor = origin.actor(caller);
    let record = audit::recorded(
        &state.pool,
        async |tx| datasets::delete(tx, id).await,
        |deleted| {
            deleted
                .as_ref()
                .map(|_| actor.did(AuditAction::DatasetDelete, TargetKind::Dataset, id))
        },
    )
    .await
    .map_err(|err| {
        if err.is_constraint(datasets::USED_AS_TRAIN_DATASET)
            || err.is_constraint(datasets::USED_AS_VAL_DATASET)
        {
            invalid_dataset(format!(
                "Dataset {id} is used by a train job and cannot be deleted."
            ))
            .with_status(StatusCode::CONFLICT)
        } else {
            err.into()
        }
    })?
    .ok_or_else(|| not_found(id))?;
    if let Err(err) = state
        .storage
        .remove(ObjectKind::Dataset, record.storage_key)
        .await
    {
        // The row is gone, so nothing refers to the file any more; it only wastes space.
        tracing::warn!(dataset = %id, error = %err, "cannot remove a deleted dataset's file");
    }
    Ok(record)
}

/// The dataset if the caller may see it: theirs, or any for admins. Others' are reported as
/// missing, so ids reveal nothing.
async fn visible_dataset(state: &AppState, caller: AuthUser, id: Uuid) -> ApiResult<DatasetRecord> {
    datasets::get(&state.pool, id)
        .await?
        .filter(|record| caller.may_act_for(record.owner_id))
        .ok_or_else(|| not_found(id))
}

/// The bound on a new dataset of `owner`: the size limit of one dataset, or what is left of the
/// owner's dataset quota when that is less.
pub async fn upload_limit(state: &AppState, owner: Uuid) -> ApiResult<FileLimit> {
    let max_bytes = state.settings.max_dataset_bytes;
    let quotas = state.settings.quotas;
    if quotas.limits_dataset_bytes() {
        let used = datasets::bytes_of_owner(&state.pool, owner).await?;
        if let Some(left) = quotas
            .dataset_allowance(used)
            .filter(|left| *left < max_bytes)
        {
            return Ok(FileLimit::new(left, quotas.dataset_allowance_text(used)));
        }
    }
    Ok(FileLimit::setting(max_bytes, "RAFIKI_MAX_DATASET_BYTES"))
}

fn invalid_dataset(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorName::InvalidDatasetError, message)
}

fn not_found(id: Uuid) -> ApiError {
    invalid_dataset(format!("You have no dataset with id {id}.")).with_status(StatusCode::NOT_FOUND)
}
