//! What every console page shares: the layout (a skip link, the navigation, the user and a
//! logout button), error pages, and the headers every console response gets.

use axum::body::Body;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderName, HeaderValue};
use axum::response::{Html, IntoResponse, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup, DOCTYPE};
use rafiki_types::error::ErrorName;
use uuid::Uuid;

use super::session::{csrf_field, ConsoleUser};
use super::{assets, PREFIX};
use crate::error::ApiError;
use crate::state::AppState;

/// Who a page is for: their email, and their session's CSRF token for the page's forms.
pub struct Viewer<'a> {
    /// The user.
    pub user: &'a ConsoleUser,
    /// Their email, as shown in the header.
    pub email: String,
    /// The CSRF token of their forms.
    pub csrf: String,
}

impl<'a> Viewer<'a> {
    /// The viewer of `user`'s pages (their email is read from the store).
    pub async fn of(state: &AppState, user: &'a ConsoleUser) -> Result<Viewer<'a>, ConsoleError> {
        let email = rafiki_store::users::find_by_id(&state.pool, user.user.id)
            .await
            .map_err(ApiError::from)?
            .map(|u| u.email)
            .unwrap_or_default();
        Ok(Viewer {
            user,
            email,
            csrf: user.csrf_token(state),
        })
    }
}

/// A page of a signed-in user: navigation, who they are, logout.
pub fn layout(viewer: &Viewer<'_>, title: &str, content: Markup) -> Html<String> {
    document(
        title,
        html! {
            header.top {
                nav aria-label="Console" {
                    a href=(PREFIX) { "Rafiki" }
                    a href={ (PREFIX) "/datasets" } { "Datasets" }
                    a href={ (PREFIX) "/models" } { "Models" }
                    a href={ (PREFIX) "/train_jobs" } { "Train jobs" }
                    a href={ (PREFIX) "/inference_jobs" } { "Inference jobs" }
                    @if viewer.user.user.is_admin() {
                        a href={ (PREFIX) "/users" } { "Users" }
                    }
                }
                div.who {
                    span { (viewer.email) " (" (viewer.user.user.user_type) ")" }
                    form method="post" action={ (PREFIX) "/logout" } {
                        (csrf_field(&viewer.csrf))
                        button.link type="submit" { "Log out" }
                    }
                }
            }
            main #main { (content) }
        },
    )
}

/// The page number of a listing's `?page=` (from 1): anything else is the first, and no page
/// lies so far that its offset (`(page - 1) * page_size`) overflows.
pub fn page_number(page: Option<&str>, page_size: i64) -> i64 {
    page.and_then(|p| p.parse::<i64>().ok())
        .filter(|p| (1..=i64::MAX / page_size).contains(p))
        .unwrap_or(1)
}

/// Previous/next links of a listing shown a page at a time; `href(n)` is page `n`'s address.
/// Nothing when everything fits on the first page.
pub fn pager(page: i64, more: bool, href: impl Fn(i64) -> String) -> Markup {
    html! {
        @if page > 1 || more {
            nav.pager aria-label="Pages" {
                @if page > 1 {
                    a href=(href(page - 1)) rel="prev" { "Previous page" }
                }
                span { "Page " (page) }
                @if more {
                    a href=(href(page + 1)) rel="next" { "Next page" }
                }
            }
        }
    }
}

/// `text` as one segment of a URL path: every byte but the unreserved characters of RFC 3986
/// percent-encoded, so that any app name (`/`, `?`, `#`, `%`, spaces) makes a path that the
/// router decodes back to it.
pub fn segment(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A trial's score as tables show it: four decimals, the exact value kept in the `data`
/// element's `value` (and its tooltip); a dash when there is none.
pub fn score(score: Option<f64>) -> Markup {
    html! {
        @if let Some(score) = score {
            data value=(score) title=(score) { (format!("{score:.4}")) }
        } @else {
            "—"
        }
    }
}

/// A time as the console shows them: UTC, to the second.
pub fn time(at: &DateTime<Utc>) -> String {
    at.format("%Y-%m-%d %H:%M:%S").to_string()
}

/// [`time`], or a dash when there is none (yet).
pub fn optional_time(at: Option<&DateTime<Utc>>) -> String {
    at.map_or_else(|| "—".to_owned(), time)
}

/// A page without the signed-in chrome: login, errors.
pub fn bare(title: &str, content: Markup) -> Html<String> {
    document(title, html! { main #main.narrow { (content) } })
}

fn document(title: &str, body: Markup) -> Html<String> {
    Html(
        html! {
            (DOCTYPE)
            html lang="en" {
                head {
                    meta charset="utf-8";
                    meta name="viewport" content="width=device-width, initial-scale=1";
                    title { (title) " · Rafiki" }
                    link rel="stylesheet" href=(assets::stylesheet_url());
                    script src=(assets::script_url()) defer {}
                }
                body {
                    a.skip href="#main" { "Skip to content" }
                    (body)
                }
            }
        }
        .into_string(),
    )
}

/// A request the console refuses or fails: an HTML page with the API's status and message
/// (server faults logged, and 503 with `Retry-After`, exactly as the API's `ApiError`).
#[derive(Debug)]
pub struct ConsoleError(ApiError);

impl ConsoleError {
    /// 403: a form without its CSRF token, or from another origin.
    pub fn forged() -> Self {
        ConsoleError(ApiError::forbidden(
            "This form was not sent from a page of this console (or its page is too old); \
             go back, reload the page and send it again.",
        ))
    }
}

impl From<ApiError> for ConsoleError {
    fn from(err: ApiError) -> Self {
        ConsoleError(err)
    }
}

impl IntoResponse for ConsoleError {
    fn into_response(self) -> Response {
        let message = self.0.message().to_owned();
        let status = self.0.status();
        let reason = status.canonical_reason().unwrap_or("Error");
        let body = html! {
            h1 { (reason) }
            p role="alert" { (message) }
            p { a href=(PREFIX) { "Back to the console" } }
        };
        with_html_body(self.0.into_response(), bare(reason, body))
    }
}

/// `response` (its status and headers) with an HTML body instead of its own. How an API error
/// becomes a page that keeps everything else it would have told a client.
pub fn with_html_body(response: Response, page: Html<String>) -> Response {
    let (mut parts, _) = response.into_parts();
    parts.headers.remove(axum::http::header::CONTENT_LENGTH);
    parts.headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/html; charset=utf-8"),
    );
    Response::from_parts(parts, Body::from(page.0))
}

/// The console's 404 page.
pub async fn not_found() -> ConsoleError {
    ConsoleError(ApiError::new(
        ErrorName::NotFoundError,
        "The console has no such page.",
    ))
}

/// The id that a page's path names, or the console's 404 page when it is not one.
pub async fn path_id(text: &str) -> Result<Uuid, ConsoleError> {
    match text.parse::<Uuid>() {
        Ok(id) => Ok(id),
        Err(_) => Err(not_found().await),
    }
}

/// The console's 405 page: a page asked for with a method it does not take (a form's address
/// typed into the address bar).
pub async fn method_not_allowed() -> ConsoleError {
    ConsoleError(
        ApiError::invalid_request("This page does not take that method.")
            .with_status(axum::http::StatusCode::METHOD_NOT_ALLOWED),
    )
}

/// Headers of every console response: pages are never cached (they show one user's data),
/// nothing but this origin's own stylesheet and script may load, and no other site may frame
/// them.
pub async fn console_headers(mut response: Response) -> Response {
    let headers = response.headers_mut();
    if !headers.contains_key(CACHE_CONTROL) {
        headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let fixed: [(HeaderName, &str); 3] = [
        (
            HeaderName::from_static("content-security-policy"),
            "default-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ),
        (HeaderName::from_static("x-content-type-options"), "nosniff"),
        (HeaderName::from_static("referrer-policy"), "same-origin"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

/// What a page says above its content: what was just done, or why an action failed.
pub enum Notice {
    /// A notice (`role="status"`).
    Done(String),
    /// An alert (`role="alert"`): the API's message.
    Failed(String),
}

impl maud::Render for Notice {
    fn render(&self) -> Markup {
        match self {
            Notice::Done(text) => html! { p.notice role="status" { (text) } },
            Notice::Failed(text) => html! { p.alert role="alert" { (text) } },
        }
    }
}

/// An action's refusal as a page: `render(notice)` of the API's message, with the API's
/// status and headers; server faults get the error page instead.
pub async fn refused<F, Fut>(err: ApiError, render: F) -> Result<Response, ConsoleError>
where
    F: FnOnce(Notice) -> Fut,
    Fut: std::future::Future<Output = Result<Html<String>, ConsoleError>>,
{
    if err.status().is_server_error() {
        return Err(err.into());
    }
    let page = render(Notice::Failed(err.message().to_owned())).await?;
    Ok(with_html_body(err.into_response(), page))
}

/// One page of a paginated table: which page (from 1) of `size` rows.
#[derive(Clone, Copy)]
pub struct Paged {
    /// The page, from 1.
    pub number: i64,
    size: i64,
}

impl Paged {
    /// Page `query` (the `page` parameter; anything but a page number is the first) of `size`
    /// rows.
    pub fn of(query: Option<&str>, size: i64) -> Paged {
        Paged {
            number: page_number(query, size),
            size,
        }
    }

    /// The first page.
    pub fn first(size: i64) -> Paged {
        Paged { number: 1, size }
    }

    /// The rows to ask for: this page and one more row, to know whether a next page exists.
    pub fn rows(self) -> crate::paging::Page {
        crate::paging::Page {
            limit: self.size + 1,
            offset: (self.number - 1) * self.size,
        }
    }

    /// Drops the extra row of [`Paged::rows`]; whether there was one (a next page).
    pub fn cut<T>(self, rows: &mut Vec<T>) -> bool {
        let size = usize::try_from(self.size).unwrap_or(usize::MAX);
        let more = rows.len() > size;
        rows.truncate(size);
        more
    }

    /// Previous and next links to the pages of `path` (a console page without a query).
    pub fn nav(self, path: &str, more: bool) -> Markup {
        pager(self.number, more, |n| format!("{path}?page={n}"))
    }
}

/// Rafiki's tasks, offered as suggestions by task inputs (`list="tasks"`; any task name is
/// accepted, as by the API).
pub fn task_suggestions() -> Markup {
    const TASKS: &[&str] = &[
        "IMAGE_CLASSIFICATION",
        "TABULAR_CLASSIFICATION",
        "TABULAR_REGRESSION",
        "POS_TAGGING",
        "SPEECH_RECOGNITION",
    ];
    html! {
        datalist #tasks {
            @for task in TASKS { option value=(task) {} }
        }
    }
}

/// The progress bar of the upload form `form_id` (which has `data-progress`): hidden until
/// the script sends the form and reports its bytes here; without the script it stays hidden
/// and the form posts as usual.
pub fn upload_progress(form_id: &str) -> Markup {
    let id = format!("{form_id}-progress");
    html! {
        div.progress hidden {
            label for=(id) { "Upload progress" }
            progress.upload-progress #(id) max="100" value="0" { "0%" }
            span.progress-text role="status" aria-live="polite" {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_keep_any_app_name_in_one_path_segment() {
        assert_eq!(segment("wine-v2_a.b~"), "wine-v2_a.b~");
        assert_eq!(segment("a/b?c#d%e f"), "a%2Fb%3Fc%23d%25e%20f");
        assert_eq!(segment("é"), "%C3%A9");
    }

    #[test]
    fn pages_ask_for_one_row_more_and_link_their_neighbours() {
        assert_eq!(Paged::of(Some("3"), 25).number, 3);
        for bad in [
            None,
            Some("0"),
            Some("-1"),
            Some("x"),
            Some("9223372036854775807"),
        ] {
            assert_eq!(Paged::of(bad, 25).number, 1, "{bad:?}");
        }
        let page = Paged::of(Some("2"), 3);
        assert_eq!(
            page.rows(),
            crate::paging::Page {
                limit: 4,
                offset: 3
            }
        );
        let mut rows = vec![1, 2, 3, 4];
        assert!(page.cut(&mut rows));
        assert_eq!(rows, [1, 2, 3]);
        assert!(!page.cut(&mut rows));
        let nav = page.nav("/console/models", true).into_string();
        assert!(
            nav.contains("href=\"/console/models?page=1\" rel=\"prev\""),
            "{nav}"
        );
        assert!(
            nav.contains("href=\"/console/models?page=3\" rel=\"next\""),
            "{nav}"
        );
        assert!(Paged::first(3).nav("/x", false).into_string().is_empty());
    }
}
