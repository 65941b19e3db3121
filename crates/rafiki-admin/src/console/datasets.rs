//! The datasets screen: the datasets the user may see (theirs; everyone's for admins), a page
//! at a time, two upload forms (a file, with a progress bar when scripts run; or a URL the
//! admin downloads from) and a delete button per dataset. Each action runs the API's own code
//! (`crate::routes::datasets`), so limits, quotas, ownership and the defences of `dataset_url`
//! are the API's; the API's error messages are shown on the page, with the API's status.

use axum::extract::{Path, Request, State};
use axum::http::HeaderMap;
use axum::response::{Html, Response};
use axum::Form;
use maud::{html, Markup};
use rafiki_store::datasets::DatasetRecord;
use rafiki_types::units::readable_size;

use super::listing::{back_to_list, failed, list_path, Listing};
use super::page::{
    layout, path_id, task_suggestions, upload_progress, ConsoleError, Notice, Paged, Viewer,
};
use super::session::{csrf_field, upload_headers, ConsoleUser, CsrfForm};
use super::{csrf, PREFIX};
use crate::error::ApiError;
use crate::routes::datasets;
use crate::state::AppState;
use crate::upload::{read_form, FormSpec};

/// The upload forms: `POST /datasets`' fields (a file or a `dataset_url`) and the CSRF token.
const UPLOAD_FORM: FormSpec = datasets::FORM.adding(&[csrf::FIELD]);

/// `POST /console/datasets`: either upload form (a file or a `dataset_url`), read by the API's
/// form reader and stored by the API's dataset code, which downloads a URL as
/// `POST /datasets` does. The CSRF token is checked before anything is stored (a refused upload's
/// temporary file is removed).
pub async fn upload(
    State(state): State<AppState>,
    user: ConsoleUser,
    req: Request,
) -> Result<Response, ConsoleError> {
    let headers = upload_headers(&req)?;
    let read = async {
        let limit = datasets::upload_limit(&state, user.user.id).await?;
        let mut form = read_form(req, &state, &UPLOAD_FORM, &limit).await?;
        let token = form.take(csrf::FIELD);
        Ok::<_, ApiError>((form, token, limit))
    };
    let (form, token, limit) = match read.await {
        Ok(read) => read,
        Err(err) => return failed::<Datasets>(&state, &user, err).await,
    };
    user.check_form(&state, &headers, token.as_deref())?;
    let result = datasets::create(&state, user.user, &user.origin, form, &limit).await;
    back_to_list::<Datasets>(&state, &user, result, "uploaded").await
}

/// `POST /console/datasets/{id}/delete`.
pub async fn delete(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Path(id): Path<String>,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    let id = path_id(&id).await?;
    let result = datasets::delete(&state, user.user, &user.origin, id).await;
    back_to_list::<Datasets>(&state, &user, result, "deleted").await
}

/// The datasets screen: the datasets the user may see, 25 a page, under the upload forms.
pub struct Datasets;

impl Listing for Datasets {
    const LIST: &'static str = "datasets";
    const PAGE_SIZE: i64 = 25;
    const NOTICES: &'static [(&'static str, &'static str)] = &[
        ("uploaded", "The dataset was uploaded."),
        ("deleted", "The dataset was deleted."),
    ];

    /// Page `page` (from 1) of the datasets, the upload forms, and a notice.
    async fn render(
        state: &AppState,
        user: &ConsoleUser,
        page: Paged,
        notice: Option<Notice>,
    ) -> Result<Html<String>, ConsoleError> {
        let viewer = Viewer::of(state, user).await?;
        let mut records = datasets::visible_datasets(state, user.user, None, page.rows()).await?;
        let more = page.cut(&mut records);
        let content = html! {
            h1 { "Datasets" }
            @if let Some(notice) = &notice { (notice) }
            (upload_form(&viewer.csrf))
            (url_form(&viewer.csrf))
            (task_suggestions())
            h2 #list { @if user.user.is_admin() { "Every user's datasets" } @else { "Your datasets" } }
            @if records.is_empty() {
                p.empty { @if page.number == 1 { "No datasets yet. Upload one with the form above." } @else { "No datasets on this page." } }
            } @else {
                (table(&records, &viewer.csrf))
            }
            (page.nav(&list_path::<Datasets>(), more))
        };
        Ok(layout(&viewer, "Datasets", content))
    }
}

/// The upload form of a file. Its fields are `POST /datasets`' own.
fn upload_form(csrf_token: &str) -> Markup {
    html! {
        h2 { "Upload a dataset" }
        form.stacked #dataset-upload method="post" action={ (PREFIX) "/datasets" }
            enctype="multipart/form-data" data-progress {
            // First, so the token is read before the file.
            (csrf_field(csrf_token))
            label for="name" { "Name" }
            input #name type="text" name="name" required maxlength="255";
            label for="task" { "Task" }
            input #task type="text" name="task" required maxlength="255"
                list="tasks" placeholder="e.g. TABULAR_CLASSIFICATION";
            label for="dataset" { "File (CSV or zip)" }
            input #dataset type="file" name="dataset" required;
            button type="submit" { "Upload" }
            (upload_progress("dataset-upload"))
        }
    }
}

/// The form of a dataset the admin downloads: `POST /datasets`' `dataset_url`, checked and
/// fetched by the API's code (public addresses only, unless the operator allows a host).
fn url_form(csrf_token: &str) -> Markup {
    html! {
        h2 { "Or download a dataset from a URL" }
        form.stacked #dataset-url-upload method="post" action={ (PREFIX) "/datasets" } {
            (csrf_field(csrf_token))
            label for="url-name" { "Name" }
            input #url-name type="text" name="name" required maxlength="255";
            label for="url-task" { "Task" }
            input #url-task type="text" name="task" required maxlength="255"
                list="tasks" placeholder="e.g. TABULAR_CLASSIFICATION";
            label for="dataset_url" { "URL (http or https, a public address)" }
            input #dataset_url type="url" name="dataset_url" required
                placeholder="https://example.com/data.csv";
            button type="submit" { "Download" }
        }
    }
}

fn table(records: &[DatasetRecord], csrf_token: &str) -> Markup {
    html! {
        table {
            caption.skip { "Datasets, newest first" }
            thead { tr {
                th scope="col" { "Name" } th scope="col" { "Task" } th scope="col" { "Size" }
                th scope="col" { "Created (UTC)" } th scope="col" { "Id" }
                th scope="col" { span.skip { "Actions" } }
            } }
            tbody {
                @for record in records {
                    tr {
                        td { (record.name) }
                        td { (record.task) }
                        td { (readable_size(record.size_bytes)) }
                        td { (record.datetime_created.format("%Y-%m-%d %H:%M")) }
                        td { code { (record.id) } }
                        td {
                            form method="post" action={ (PREFIX) "/datasets/" (record.id) "/delete" }
                                data-confirm={ "Delete the dataset " (record.name) "?" } {
                                (csrf_field(csrf_token))
                                button.danger type="submit" aria-label={ "Delete " (record.name) } { "Delete" }
                            }
                        }
                    }
                }
            }
        }
    }
}
