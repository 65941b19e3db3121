//! The datasets screen: the datasets the user may see (theirs; everyone's for admins), a page
//! at a time, an upload form and a delete button per dataset. Each action runs the API's own
//! code (`crate::routes::datasets`), so limits, quotas and ownership are the API's; the API's
//! error messages are shown on the page, with the API's status.

use axum::extract::{Path, Query, Request, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use rafiki_store::datasets::DatasetRecord;
use rafiki_types::units::readable_size;
use serde::Deserialize;
use uuid::Uuid;

use super::page::{layout, page_number, pager, with_html_body, ConsoleError, Notice, Viewer};
use super::session::{csrf_field, redirect, ConsoleUser, CsrfForm};
use super::{csrf, PREFIX};
use crate::error::ApiError;
use crate::paging::Page;
use crate::routes::datasets;
use crate::state::AppState;
use crate::storage::ObjectKind;
use crate::upload::{read_form, FormSpec};

/// Datasets per page.
const PAGE_SIZE: i64 = 25;

/// The upload form: `POST /datasets`' fields (but no `dataset_url`) and the CSRF token.
const UPLOAD_FORM: FormSpec = FormSpec {
    file_field: "dataset",
    text_fields: &[csrf::FIELD, "name", "task"],
    kind: ObjectKind::Dataset,
    keep_copy: false,
};

/// `GET /console/datasets` query.
#[derive(Deserialize)]
pub struct ListQuery {
    /// The page, from 1; anything else is the first.
    page: Option<String>,
    /// What was just done, for its notice: `uploaded` or `deleted`.
    done: Option<String>,
}

/// The datasets page.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let page = page_number(query.page.as_deref(), PAGE_SIZE);
    let notice = match query.done.as_deref() {
        Some("uploaded") => Some("The dataset was uploaded."),
        Some("deleted") => Some("The dataset was deleted."),
        _ => None,
    };
    Ok(render(&state, &user, page, notice.map(Notice::Done))
        .await?
        .into_response())
}

/// `POST /console/datasets`: the upload form, read by the API's form reader and stored by the
/// API's dataset code. The CSRF token is checked before anything is stored (a refused upload's
/// temporary file is removed).
pub async fn upload(
    State(state): State<AppState>,
    user: ConsoleUser,
    req: Request,
) -> Result<Response, ConsoleError> {
    let headers = req.headers().clone();
    // A cross-origin upload is refused before its body is read.
    if !csrf::same_origin(&headers) {
        return Err(ConsoleError::forged());
    }
    let read = async {
        let limit = datasets::upload_limit(&state, user.user.id).await?;
        let mut form = read_form(req, &state, &UPLOAD_FORM, &limit).await?;
        let token = form.take(csrf::FIELD);
        Ok::<_, ApiError>((form, token, limit))
    };
    let (form, token, limit) = match read.await {
        Ok(read) => read,
        Err(err) => return failed(&state, &user, err).await,
    };
    user.check_form(&state, &headers, token.as_deref())?;
    match datasets::create(&state, user.user, form, &limit).await {
        Ok(_) => Ok(redirect(&format!("{PREFIX}/datasets?done=uploaded"))),
        Err(err) => failed(&state, &user, err).await,
    }
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
    let Ok(id) = id.parse::<Uuid>() else {
        return Err(super::page::not_found().await);
    };
    match datasets::delete(&state, user.user, id).await {
        Ok(_) => Ok(redirect(&format!("{PREFIX}/datasets?done=deleted"))),
        Err(err) => failed(&state, &user, err).await,
    }
}

/// The first page again, showing why an action failed, with the API's status; server faults
/// get the error page.
async fn failed(
    state: &AppState,
    user: &ConsoleUser,
    err: ApiError,
) -> Result<Response, ConsoleError> {
    if err.status().is_server_error() {
        return Err(err.into());
    }
    let notice = Notice::Failed(err.message().to_owned());
    let page = render(state, user, 1, Some(notice)).await?;
    Ok(with_html_body(err.into_response(), page))
}

/// Page `page` (from 1) of the datasets, the upload form, and a notice.
async fn render(
    state: &AppState,
    user: &ConsoleUser,
    page: i64,
    notice: Option<Notice>,
) -> Result<Html<String>, ConsoleError> {
    let viewer = Viewer::of(state, user).await?;
    // One row more than a page, to know whether there is a next page.
    let rows = Page {
        limit: PAGE_SIZE + 1,
        offset: (page - 1) * PAGE_SIZE,
    };
    let mut records = datasets::visible_datasets(state, user.user, None, rows).await?;
    let more = records.len() > usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX);
    records.truncate(usize::try_from(PAGE_SIZE).unwrap_or(usize::MAX));
    let content = html! {
        h1 { "Datasets" }
        @if let Some(notice) = &notice { (notice.markup()) }
        (upload_form(&viewer.csrf))
        h2 #list { @if user.user.is_admin() { "Every user's datasets" } @else { "Your datasets" } }
        @if records.is_empty() {
            p.empty { @if page == 1 { "No datasets yet. Upload one with the form above." } @else { "No datasets on this page." } }
        } @else {
            (table(&records, &viewer.csrf))
        }
        (pager(page, more, |n| format!("{PREFIX}/datasets?page={n}")))
    };
    Ok(layout(&viewer, "Datasets", content))
}

/// The upload form. Its fields are `POST /datasets`' own.
fn upload_form(csrf_token: &str) -> Markup {
    html! {
        h2 { "Upload a dataset" }
        form.stacked method="post" action={ (PREFIX) "/datasets" } enctype="multipart/form-data" {
            // First, so the token is read before the file.
            (csrf_field(csrf_token))
            label for="name" { "Name" }
            input #name type="text" name="name" required maxlength="255";
            label for="task" { "Task" }
            input #task type="text" name="task" required maxlength="255"
                list="tasks" placeholder="e.g. TABULAR_CLASSIFICATION";
            datalist #tasks {
                @for task in TASKS { option value=(task) {} }
            }
            label for="dataset" { "File (CSV or zip)" }
            input #dataset type="file" name="dataset" required;
            button type="submit" { "Upload" }
        }
    }
}

/// Rafiki's tasks, offered as suggestions (any task name is accepted, as by the API).
pub const TASKS: &[&str] = &[
    "IMAGE_CLASSIFICATION",
    "TABULAR_CLASSIFICATION",
    "TABULAR_REGRESSION",
    "POS_TAGGING",
    "SPEECH_RECOGNITION",
];

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
