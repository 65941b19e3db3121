//! The models screen: the models the user may use (theirs and every PUBLIC one, exactly what
//! `GET /models/available` lists), a page at a time; an upload form with a progress bar for
//! those the API lets upload (model developers and admins); a page per model with all its
//! fields and owner, a download link and a delete button. Each action runs the API's own code
//! (`crate::routes::models`), so the role check, the parsing of `dependencies`, the check of
//! the source, visibility and ownership are the API's; its messages and statuses are shown.

use axum::extract::{Path, Request, State};
use axum::http::header::CONTENT_DISPOSITION;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{Html, Response};
use axum::Form;
use maud::{html, Markup};
use rafiki_store::models::ModelRecord;
use rafiki_types::model::{Dependencies, DependencyPins, ModelAccessRight};
use rafiki_types::units::readable_size;
use strum::VariantArray;

use super::listing::{back_to_list, failed, list_path, Listing};
use super::page::{
    layout, path_id, task_suggestions, upload_progress, ConsoleError, Notice, Paged, Viewer,
};
use super::session::{csrf_field, upload_headers, ConsoleUser, CsrfForm};
use super::{csrf, PREFIX};
use crate::auth::extract::{AuthUser, Authorized, ModelDevelopers};
use crate::error::ApiError;
use crate::routes::models;
use crate::state::AppState;
use crate::upload::{read_form, FormSpec};

/// The upload form: `POST /models`' fields and the CSRF token.
const UPLOAD_FORM: FormSpec = models::FORM.adding(&[csrf::FIELD]);

/// `POST /console/models`: the upload form. The API's role check comes first (before the body
/// is read), then the form is read by the API's form reader, its CSRF token checked, and the
/// model checked and stored by the API's code.
pub async fn upload(
    State(state): State<AppState>,
    user: ConsoleUser,
    req: Request,
) -> Result<Response, ConsoleError> {
    let headers = upload_headers(&req)?;
    let caller = match Authorized::<ModelDevelopers>::check(user.user) {
        Ok(caller) => caller,
        Err(err) => return failed::<Models>(&state, &user, err).await,
    };
    let mut form = match read_form(req, &state, &UPLOAD_FORM, &models::upload_limit(&state)).await {
        Ok(form) => form,
        Err(err) => return failed::<Models>(&state, &user, err).await,
    };
    let token = form.take(csrf::FIELD);
    user.check_form(&state, &headers, token.as_deref())?;
    let result = models::create(&state, caller, &user.origin, form).await;
    back_to_list::<Models>(&state, &user, result, "uploaded").await
}

/// `GET /console/models/{id}`: one model the user may see, all its fields and its owner.
pub async fn detail(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Html<String>, ConsoleError> {
    let id = path_id(&id).await?;
    let record = models::visible_model(&state, user.user, id).await?;
    let viewer = Viewer::of(&state, &user).await?;
    let owner = if record.user_id == user.user.id {
        "you".to_owned()
    } else {
        rafiki_store::users::find_by_id(&state.pool, record.user_id)
            .await
            .map_err(ApiError::from)?
            .map_or_else(|| record.user_id.to_string(), |owner| owner.email)
    };
    let content = html! {
        p { a href={ (PREFIX) "/models" } { "All models" } }
        h1 { "Model " (record.name) }
        dl.fields {
            dt { "Id" } dd { code { (record.id) } }
            dt { "Owner" } dd { (owner) }
            dt { "Task" } dd { (record.task) }
            dt { "Model class" } dd { code { (record.model_class) } }
            dt { "Access right" } dd { (record.access_right) }
            dt { "Dependencies" } dd { (dependencies(&record.dependencies)) }
            dt { "Worker image" } dd { code { (record.docker_image.as_deref().unwrap_or("the default")) } }
            dt { "Uninstallable pins" } dd {
                @match record.dependency_pins {
                    Some(pins) => (pins),
                    None => "the deployment's setting (RAFIKI_DEPENDENCY_PINS)",
                }
            }
            dt { "File size" } dd { (readable_size(record.size_bytes)) }
            dt { "SHA-256" } dd { code { (record.sha256) } }
            dt { "Created (UTC)" } dd { (record.datetime_created.format("%Y-%m-%d %H:%M:%S")) }
        }
        // The owner and admins may download and delete (the API's rule); others are not
        // offered what the API would refuse them.
        @if user.user.may_act_for(record.user_id) {
            p { a href={ (PREFIX) "/models/" (record.id) "/file" } download { "Download the model file" } }
            form method="post" action={ (PREFIX) "/models/" (record.id) "/delete" }
                data-confirm={ "Delete the model " (record.name) "?" } {
                (csrf_field(&viewer.csrf))
                button.danger type="submit" { "Delete this model" }
            }
        }
    };
    Ok(layout(&viewer, &format!("Model {}", record.name), content))
}

/// `GET /console/models/{id}/file`: the model's file, as `GET /models/{id}/model_file` sends
/// it (owner and admins), saved under the model's name.
pub async fn download(
    State(state): State<AppState>,
    user: ConsoleUser,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let id = path_id(&id).await?;
    let caller = Authorized::<ModelDevelopers>::check(user.user)?;
    let (record, mut response) = models::model_file(&state, caller, id).await?;
    let disposition = format!("attachment; filename=\"{}.py\"", file_stem(&record.name));
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// `POST /console/models/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    let id = path_id(&id).await?;
    let deleted = match Authorized::<ModelDevelopers>::check(user.user) {
        Ok(caller) => models::delete(&state, caller, &user.origin, id).await,
        Err(err) => Err(err),
    };
    back_to_list::<Models>(&state, &user, deleted, "deleted").await
}

/// A file name of `name`: letters, digits, `-`, `_` and `.` kept, anything else (quotes, path
/// separators, control and non-ASCII characters) made `_`, so the header cannot be broken.
fn file_stem(name: &str) -> String {
    let stem: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if stem.trim_matches(['.', '_']).is_empty() {
        "model".to_owned()
    } else {
        stem
    }
}

/// The models screen: the models the user may use, 25 a page, under the upload form.
pub struct Models;

impl Listing for Models {
    const LIST: &'static str = "models";
    const PAGE_SIZE: i64 = 25;
    const NOTICES: &'static [(&'static str, &'static str)] = &[
        ("uploaded", "The model was uploaded."),
        ("deleted", "The model was deleted."),
    ];

    /// Page `page` of the models, the upload form (for those who may upload), and a notice.
    async fn render(
        state: &AppState,
        user: &ConsoleUser,
        page: Paged,
        notice: Option<Notice>,
    ) -> Result<Html<String>, ConsoleError> {
        let viewer = Viewer::of(state, user).await?;
        let mut records = models::available_models(state, user.user, None, page.rows()).await?;
        let more = page.cut(&mut records);
        let content = html! {
            h1 { "Models" }
            @if let Some(notice) = &notice { (notice) }
            @if may_upload(user.user) {
                (upload_form(&viewer.csrf))
            } @else {
                p { "Only model developers and admins upload models; you can train with the models listed here." }
            }
            h2 #list { "Your models and public models" }
            @if records.is_empty() {
                p.empty { @if page.number == 1 { "No models yet." } @else { "No models on this page." } }
            } @else {
                (table(&records, user.user))
            }
            (page.nav(&list_path::<Models>(), more))
        };
        Ok(layout(&viewer, "Models", content))
    }
}

/// Whether the API lets `user` upload models: its own role check, asked.
fn may_upload(user: AuthUser) -> bool {
    Authorized::<ModelDevelopers>::check(user).is_ok()
}

/// The upload form. Its fields are `POST /models`' own.
fn upload_form(csrf_token: &str) -> Markup {
    html! {
        h2 { "Upload a model" }
        form.stacked #model-upload method="post" action={ (PREFIX) "/models" }
            enctype="multipart/form-data" data-progress {
            // First, so the token is read before the file.
            (csrf_field(csrf_token))
            label for="model-name" { "Name" }
            input #model-name type="text" name="name" required maxlength="255";
            label for="model-task" { "Task" }
            input #model-task type="text" name="task" required maxlength="255"
                list="tasks" placeholder="e.g. TABULAR_CLASSIFICATION";
            (task_suggestions())
            label for="model-file" { "Python file (.py)" }
            input #model-file type="file" name=(models::FILE_FIELD) accept=".py,text/x-python" required;
            label for="model-class" { "Model class (defined in the file)" }
            input #model-class type="text" name="model_class" required maxlength="255";
            label for="model-dependencies" { "Dependencies (JSON object of package: version)" }
            textarea #model-dependencies name="dependencies" rows="3"
                placeholder="{\"numpy\": \"1.26\"}" aria-describedby="model-dependencies-help" {}
            span #model-dependencies-help.help { "Leave empty for none." }
            label for="model-access" { "Access right" }
            select #model-access name="access_right" {
                @for right in ModelAccessRight::VARIANTS {
                    option value=(right) selected[*right == ModelAccessRight::default()] { (right) }
                }
            }
            label for="model-image" { "Worker image (optional)" }
            input #model-image type="text" name="docker_image" maxlength="255"
                placeholder="the configured worker image";
            label for="model-pins" { "Pinned dependencies that cannot be installed" }
            select #model-pins name="dependency_pins" {
                option value="" selected { "the deployment's setting" }
                @for pins in DependencyPins::VARIANTS { option value=(pins) { (pins) } }
            }
            button type="submit" { "Upload" }
            (upload_progress("model-upload"))
        }
    }
}

fn table(records: &[ModelRecord], user: AuthUser) -> Markup {
    html! {
        table {
            caption.skip { "Models, newest first" }
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Task" } th scope="col" { "Access" }
                th scope="col" { "Dependencies" } th scope="col" { "Owner" }
                th scope="col" { "Created (UTC)" }
            } }
            tbody {
                @for record in records {
                    tr {
                        td { a href={ (PREFIX) "/models/" (record.id) } { (record.name) } }
                        td { (record.task) }
                        td { (record.access_right) }
                        td { (dependencies(&record.dependencies)) }
                        td { @if record.user_id == user.id { "you" } @else { "another user" } }
                        td { (record.datetime_created.format("%Y-%m-%d %H:%M")) }
                    }
                }
            }
        }
    }
}

/// `package version, ...`, or "none".
fn dependencies(dependencies: &Dependencies) -> Markup {
    html! {
        @if dependencies.is_empty() {
            "none"
        } @else {
            @for (i, (package, version)) in dependencies.iter().enumerate() {
                @if i > 0 { ", " }
                code { (package) " " (version) }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_stem("my-model_v1.2"), "my-model_v1.2");
        assert_eq!(file_stem("a\"b\r\nc/d"), "a_b__c_d");
        assert_eq!(file_stem("<script>"), "_script_");
        assert_eq!(file_stem(".."), "model");
        assert_eq!(file_stem("ünï"), "_n_");
    }
}
