//! Routes 7–11: `POST /models`, `GET /models/available`, `GET /models/{id}`,
//! `GET /models/{id}/model_file`, `DELETE /models/{id}`.
//!
//! A model is one Python file defining a model class. Its uploader (ADMIN or MODEL_DEVELOPER)
//! owns it; it is visible to its owner, to everyone when PUBLIC, and to admins. Only the owner
//! and admins may download its file or delete it, and only while no train job uses it. The
//! upload is checked by parsing, never running, the file (`crate::python_check`).

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use rafiki_store::audit;
use rafiki_store::models::{self, ModelRecord, NewModel};
use rafiki_types::audit::{AuditAction, TargetKind};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::model::{
    AvailableModel, Dependencies, DependencyPins, Model, ModelAccessRight, ModelRef,
};
use serde::Deserialize;
use strum::VariantArray;
use uuid::Uuid;

use crate::audit::Origin;
use crate::auth::extract::{AuthUser, Authorized, ModelDevelopers};
use crate::error::{ApiError, ApiResult};
use crate::extract::ApiPath;
use crate::images;
use crate::metrics::UploadKind;
use crate::paging::{Listing, Page, PageParams};
use crate::python_check::{check_model_source_off_thread, SourceError};
use crate::state::AppState;
use crate::storage::ObjectKind;
use crate::upload::{read_form, FileLimit, Form, FormSpec, MAX_NAME_CHARS};

/// The file field of the upload form (Rafiki's client's name for it).
pub const FILE_FIELD: &str = "model_file_bytes";

/// The `POST /models` form (the console reads it too, with its CSRF token added).
pub const FORM: FormSpec = FormSpec {
    file_field: FILE_FIELD,
    text_fields: &[
        "name",
        "task",
        "model_class",
        "dependencies",
        "access_right",
        "docker_image",
        "dependency_pins",
    ],
    kind: ObjectKind::ModelFile,
    // The whole file is parsed, so it is held in memory too (bounded by the model limit).
    keep_copy: true,
    added_fields: &[],
};

/// The `POST /models` form, for the OpenAPI document.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub struct CreateModelForm {
    /// The model's name, unique among the caller's models.
    name: String,
    /// Its task, e.g. `IMAGE_CLASSIFICATION`.
    task: String,
    /// The Python file defining the model class (UTF-8).
    #[schema(value_type = String, format = Binary)]
    model_file_bytes: Vec<u8>,
    /// The name of the model class, defined at the file's top level.
    model_class: String,
    /// JSON text of `{package: version}`; absent or `null` means none.
    dependencies: Option<String>,
    /// `PRIVATE` (the default) or `PUBLIC`.
    access_right: Option<ModelAccessRight>,
    /// The worker image to run it in (default: the configured worker image).
    docker_image: Option<String>,
    /// `strict` or `nearest`: what workers do with a pinned dependency that has no
    /// distribution installable on their Python (default: the deployment's
    /// `RAFIKI_DEPENDENCY_PINS`).
    dependency_pins: Option<DependencyPins>,
}

/// `GET /models/available` query.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ModelQuery {
    /// Only models of this task.
    pub task: Option<String>,
}

/// Uploads a model.
#[utoipa::path(post, path = "/models", security(("bearer" = [])),
    request_body(content = CreateModelForm, content_type = "multipart/form-data"),
    responses(
    (status = 200, body = ModelRef),
    (status = 400, description = "InvalidModelError (not UTF-8, syntax error, no such class, \
        a docker_image RAFIKI_ALLOWED_IMAGES does not admit), InvalidModelAccessRightError or \
        InvalidRequestError", body = ErrorBody),
    (status = 403, description = "UnauthorizedError", body = ErrorBody),
    (status = 409, description = "DuplicateModelNameError", body = ErrorBody),
    (status = 413, description = "PayloadTooLargeError", body = ErrorBody)))]
pub async fn create_model(
    State(state): State<AppState>,
    caller: Authorized<ModelDevelopers>,
    origin: Origin,
    req: Request,
) -> ApiResult<Json<ModelRef>> {
    let form = read_form(req, &state, &FORM, &upload_limit(&state)).await?;
    Ok(Json(
        create(&state, caller, &origin, form).await?.reference(),
    ))
}

/// The bound on a model file (`RAFIKI_MAX_MODEL_BYTES`).
pub fn upload_limit(state: &AppState) -> FileLimit {
    FileLimit::setting(state.settings.max_model_bytes, "RAFIKI_MAX_MODEL_BYTES")
}

/// Creates a model of `caller` from a read form (`POST /models`' fields, its file bounded by
/// [`upload_limit`]): checks every field and the source, then stores the file and its row. What
/// `POST /models` and the console's upload form both do. The row and its audit row are
/// written together.
pub async fn create(
    state: &AppState,
    caller: Authorized<ModelDevelopers>,
    origin: &Origin,
    mut form: Form,
) -> ApiResult<ModelRecord> {
    let Authorized(caller, _) = caller;
    let name = form.require_short("name")?;
    let task = form.require_short("task")?;
    let model_class = form.require_short("model_class")?;
    let access_right = parse_access_right(form.take("access_right"))?;
    let dependencies = parse_dependencies(form.take("dependencies"))?;
    let dependency_pins = parse_dependency_pins(form.take("dependency_pins"))?;
    let docker_image = match form.take("docker_image") {
        Some(image) => check_image(image)?,
        None => state.settings.worker_image.clone(),
    };
    if !state.settings.allowed_images.admits(&docker_image) {
        return Err(invalid_model(images::refusal(
            &docker_image,
            &state.settings.allowed_images,
        )));
    }
    let file = form.file.take().ok_or_else(|| {
        ApiError::invalid_request(format!(
            "The form has no file field `{FILE_FIELD}`: upload the model's Python file in it."
        ))
    })?;
    if file.upload.size() == 0 {
        return Err(invalid_model("The model file is empty (0 bytes)."));
    }
    check_model_source_off_thread(
        Arc::from(file.copy),
        model_class.clone(),
        state.models_python(),
    )
    .await?
    .map_err(|err: SourceError| invalid_model(format!("{}.", capitalised(&err.to_string()))))?;
    let stored = file.upload.finish().await?;
    let new = NewModel {
        user_id: caller.id,
        name: &name,
        task: &task,
        model_class: &model_class,
        docker_image: &docker_image,
        dependencies: &dependencies,
        access_right,
        dependency_pins,
        size_bytes: stored.size_bytes(),
        sha256: stored.sha256(),
        storage_key: stored.key(),
    };
    let actor = origin.actor(caller);
    let record = audit::recorded(
        &state.pool,
        async |tx| models::insert(tx, &new).await,
        |record| Some(actor.did(AuditAction::ModelCreate, TargetKind::Model, record.id)),
    )
    .await
    .map_err(|err| {
        if err.is_constraint(models::USER_NAME_UNIQUE) {
            ApiError::new(
                ErrorName::DuplicateModelNameError,
                format!("You already have a model named `{name}`."),
            )
        } else {
            err.into()
        }
    })?;
    // Dropping `stored` on an error above removed the file; now the row refers to it.
    stored.keep();
    state.metrics.uploaded(UploadKind::Model, record.size_bytes);
    Ok(record)
}

/// Lists the models the caller may use: their own and every PUBLIC one, newest first, a page
/// at a time.
#[utoipa::path(get, path = "/models/available", params(ModelQuery, PageParams),
    security(("bearer" = [])), responses((status = 200, body = Vec<AvailableModel>),
    (status = 400, description = "InvalidRequestError: a bad `limit` or `offset`", body = ErrorBody)))]
pub async fn list_available_models(
    State(state): State<AppState>,
    caller: AuthUser,
    Listing { filters, page }: Listing<ModelQuery>,
) -> ApiResult<Json<Vec<AvailableModel>>> {
    let records = available_models(&state, caller, filters.task.as_deref(), page).await?;
    Ok(Json(records.iter().map(ModelRecord::available).collect()))
}

/// A page of the models `caller` may use (their own and every PUBLIC one, admins included),
/// newest first, optionally of one task: what `GET /models/available` and the console's models
/// page list.
pub async fn available_models(
    state: &AppState,
    caller: AuthUser,
    task: Option<&str>,
    page: Page,
) -> ApiResult<Vec<ModelRecord>> {
    Ok(models::list_available(&state.pool, caller.id, task, page.limit, page.offset).await?)
}

/// One model the caller may see (own, PUBLIC, or any for admins).
#[utoipa::path(get, path = "/models/{id}", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The model's id")),
    responses(
    (status = 200, body = Model),
    (status = 404, description = "InvalidModelError: no such model visible to you", body = ErrorBody)))]
pub async fn get_model(
    State(state): State<AppState>,
    caller: AuthUser,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<Model>> {
    Ok(Json(visible_model(&state, caller, id).await?.detail()))
}

/// The model's file, byte for byte (owner or admins).
#[utoipa::path(get, path = "/models/{id}/model_file", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The model's id")),
    responses(
    (status = 200, body = Vec<u8>, content_type = "application/octet-stream"),
    (status = 403, description = "UnauthorizedError: not the owner", body = ErrorBody),
    (status = 404, description = "InvalidModelError: no such model visible to you", body = ErrorBody)))]
pub async fn download_model_file(
    State(state): State<AppState>,
    caller: Authorized<ModelDevelopers>,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Response> {
    Ok(model_file(&state, caller, id).await?.1)
}

/// A model of `caller`'s (any, for admins) and the answer that streams its file: what
/// `GET /models/{id}/model_file` and the console's download link both send.
pub async fn model_file(
    state: &AppState,
    caller: Authorized<ModelDevelopers>,
    id: Uuid,
) -> ApiResult<(ModelRecord, Response)> {
    let record = owned_model(state, caller.0, id, "download its file").await?;
    let (file, size) = state
        .storage
        .open_object(ObjectKind::ModelFile, record.storage_key)
        .await?;
    let response = (
        [
            (CONTENT_TYPE, "application/octet-stream".to_owned()),
            (CONTENT_LENGTH, size.to_string()),
        ],
        Body::from_stream(tokio_util::io::ReaderStream::new(file)),
    )
        .into_response();
    Ok((record, response))
}

/// Deletes a model that no train job uses (owner or admins); its file goes after its row.
#[utoipa::path(delete, path = "/models/{id}", security(("bearer" = [])),
    params(("id" = Uuid, Path, description = "The model's id")),
    responses(
    (status = 200, body = ModelRef),
    (status = 403, description = "UnauthorizedError: not the owner", body = ErrorBody),
    (status = 404, description = "InvalidModelError: no such model visible to you", body = ErrorBody),
    (status = 409, description = "ModelUsedError: a train job uses it", body = ErrorBody)))]
pub async fn delete_model(
    State(state): State<AppState>,
    caller: Authorized<ModelDevelopers>,
    origin: Origin,
    ApiPath(id): ApiPath<Uuid>,
) -> ApiResult<Json<ModelRef>> {
    Ok(Json(delete(&state, caller, &origin, id).await?.reference()))
}

/// Deletes a model of `caller`'s (any, for admins) that no train job uses, then its file: what
/// `DELETE /models/{id}` and the console's delete button both do. The row goes with its audit
/// row written.
pub async fn delete(
    state: &AppState,
    caller: Authorized<ModelDevelopers>,
    origin: &Origin,
    id: Uuid,
) -> ApiResult<ModelRecord> {
    owned_model(state, caller.0, id, "delete it").await?;
    let actor = origin.actor(caller.0);
    let record = audit::recorded(
        &state.pool,
        async |tx| models::delete(tx, id).await,
        |deleted| {
            deleted
                .as_ref()
                .map(|_| actor.did(AuditAction::ModelDelete, TargetKind::Model, id))
        },
    )
    .await
    .map_err(|err| {
        if err.is_constraint(models::USED_BY_SUB_TRAIN_JOB) {
            ApiError::new(
                ErrorName::ModelUsedError,
                format!("Model {id} is used by a train job and cannot be deleted."),
            )
        } else {
            err.into()
        }
    })?
    .ok_or_else(|| not_found(id))?;
    if let Err(err) = state
        .storage
        .remove(ObjectKind::ModelFile, record.storage_key)
        .await
    {
        // The row is gone, so nothing refers to the file any more; it only wastes space.
        tracing::warn!(model = %id, error = %err, "cannot remove a deleted model's file");
    }
    Ok(record)
}

/// The model if the caller may see it: own, PUBLIC, or any for admins. Others are reported as
/// missing, so ids reveal nothing.
pub async fn visible_model(state: &AppState, caller: AuthUser, id: Uuid) -> ApiResult<ModelRecord> {
    models::get(&state.pool, id)
        .await?
        .filter(|record| caller.may_use_model(record))
        .ok_or_else(|| not_found(id))
}

/// The model if the caller owns it or is an admin; a PUBLIC model of someone else's is
/// `UnauthorizedError` (403), since the caller can see it exists.
async fn owned_model(
    state: &AppState,
    caller: AuthUser,
    id: Uuid,
    action: &str,
) -> ApiResult<ModelRecord> {
    let record = visible_model(state, caller, id).await?;
    if !caller.may_act_for(record.user_id) {
        return Err(ApiError::forbidden(format!(
            "Only the model's owner or an admin may {action}."
        )));
    }
    Ok(record)
}

fn parse_access_right(text: Option<String>) -> ApiResult<ModelAccessRight> {
    let Some(text) = text else {
        return Ok(ModelAccessRight::default());
    };
    text.parse().map_err(|_| {
        let known: Vec<&str> = ModelAccessRight::VARIANTS
            .iter()
            .map(|r| r.into())
            .collect();
        ApiError::new(
            ErrorName::InvalidModelAccessRightError,
            format!(
                "Unknown access right `{text}`; expected one of {}.",
                known.join(", ")
            ),
        )
    })
}

/// `dependency_pins`: `strict` or `nearest`; absent means the deployment's setting.
fn parse_dependency_pins(text: Option<String>) -> ApiResult<Option<DependencyPins>> {
    let Some(text) = text else {
        return Ok(None);
    };
    text.trim().parse().map(Some).map_err(|_| {
        let known: Vec<&str> = DependencyPins::VARIANTS.iter().map(|p| p.into()).collect();
        ApiError::invalid_request(format!(
            "The form field `dependency_pins` must be one of {}, got `{text}`.",
            known.join(", ")
        ))
    })
}

/// `dependencies` as Rafiki's client sends it: JSON text of `{package: version}`, where
/// `null` (or no field) means none.
fn parse_dependencies(text: Option<String>) -> ApiResult<Dependencies> {
    let Some(text) = text else {
        return Ok(Dependencies::new());
    };
    // JSON inside a form field: its `\u0000` escapes decode to NULs only here.
    if crate::extract::json_has_nul(&text) {
        return Err(crate::extract::nul_error("The form field `dependencies`"));
    }
    let bad = |detail: String| {
        ApiError::invalid_request(format!(
            "The form field `dependencies` must be JSON text of {{\"package\": \"version\"}}: \
             {detail}."
        ))
    };
    match serde_json::from_str::<serde_json::Value>(&text).map_err(|err| bad(err.to_string()))? {
        serde_json::Value::Null => Ok(Dependencies::new()),
        serde_json::Value::Object(map) => map
            .into_iter()
            .map(|(package, version)| {
                if package.trim().is_empty() {
                    return Err(bad("a package name is empty".into()));
                }
                match version {
                    serde_json::Value::String(version) => Ok((package, version)),
                    other => Err(bad(format!(
                        "the version of `{package}` is {other}, not a string such as \"1.2.0\""
                    ))),
                }
            })
            .collect(),
        other => Err(bad(format!("got {other}"))),
    }
}

fn check_image(image: String) -> ApiResult<String> {
    if image.chars().count() > MAX_NAME_CHARS
        || image.chars().any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(ApiError::invalid_request(format!(
            "The form field `docker_image` must be an image reference such as \
             `rafiki-rs/worker:latest` (at most {MAX_NAME_CHARS} characters, no spaces)."
        )));
    }
    Ok(image)
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    chars
        .next()
        .map(|first| first.to_uppercase().chain(chars).collect())
        .unwrap_or_default()
}

fn invalid_model(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorName::InvalidModelError, message)
}

fn not_found(id: Uuid) -> ApiError {
    invalid_model(format!("No model with id {id} is visible to you."))
        .with_status(StatusCode::NOT_FOUND)
}
