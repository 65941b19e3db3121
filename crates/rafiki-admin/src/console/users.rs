//! The users screen (admins only) and the superadmin's stop-everything: every user, a page at a
//! time, oldest first; a form to create a user; a ban button per user the viewer may ban; and,
//! for the superadmin, a button that stops every live job. Each action runs the API's own code
//! (`crate::routes::users`, `crate::routes::train_jobs::stop_all`) behind the API's own role
//! check (`Authorized`), so who may create, ban or stop what is the API's rule; others get the
//! API's 403 as a page.

use axum::extract::{Query, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use rafiki_types::user::{BanUserRequest, CreateUserRequest, User, UserType};
use serde::Deserialize;
use strum::VariantArray;

use super::listing::{back_to_list, done_notice, failed, list_path, Listing};
use super::page::{layout, ConsoleError, Notice, Paged, Viewer};
use super::session::{csrf_field, redirect, ConsoleUser, CsrfForm};
use super::PREFIX;
use crate::auth::extract::{Admins, Authorized, Superadmins};
use crate::routes::{train_jobs, users};
use crate::state::AppState;

/// `GET /console/users` query.
#[derive(Deserialize)]
pub struct ListQuery {
    /// The page, from 1; anything else is the first.
    page: Option<String>,
    /// What was just done, for its notice: `created`, `banned` or `stopped`.
    done: Option<String>,
    /// With `done=stopped`: how many train jobs were stopped.
    train: Option<u64>,
    /// With `done=stopped`: how many inference jobs were stopped.
    inference: Option<u64>,
}

/// The users page: admins only (the API's check), others get its 403 as a page.
pub async fn list(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let page = Paged::of(query.page.as_deref(), Users::PAGE_SIZE);
    let notice = match query.done.as_deref() {
        Some("stopped") => Some(Notice::Done(format!(
            "Every live job was stopped: {} train jobs and {} inference jobs.",
            query.train.unwrap_or(0),
            query.inference.unwrap_or(0)
        ))),
        done => done_notice(done, Users::NOTICES),
    };
    Ok(Users::render(&state, &user, page, notice)
        .await?
        .into_response())
}

/// `POST /console/users` form: `POST /users`' fields and the CSRF token. Missing fields are
/// empty, so the API's own checks name them.
#[derive(Deserialize)]
pub struct CreateForm {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    user_type: String,
}

/// `POST /console/users`: creates a user through the API's code (only the superadmin creates
/// admins).
pub async fn create(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Form(form): Form<CreateForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    let admin = Authorized::<Admins>::check(user.user)?;
    let request = CreateUserRequest {
        email: form.email,
        password: form.password,
        user_type: form.user_type,
    };
    let result = users::create(&state, admin, &user.origin, request).await;
    back_to_list::<Users>(&state, &user, result, "created").await
}

/// `POST /console/users/ban` form: `DELETE /users`' body and the CSRF token.
#[derive(Deserialize)]
pub struct BanForm {
    csrf: Option<String>,
    #[serde(default)]
    email: String,
}

/// `POST /console/users/ban`: bans a user through the API's code (not oneself; admins only
/// the users they manage) and stops their live jobs.
pub async fn ban(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Form(form): Form<BanForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    let admin = Authorized::<Admins>::check(user.user)?;
    let request = BanUserRequest { email: form.email };
    let result = users::ban(&state, admin, &user.origin, request).await;
    back_to_list::<Users>(&state, &user, result, "banned").await
}

/// `POST /console/stop_all`: the superadmin's stop-everything, the code of
/// `POST /actions/stop_all_jobs`; others get its 403 as a page.
pub async fn stop_all(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    let superadmin = Authorized::<Superadmins>::check(user.user)?;
    match train_jobs::stop_all(&state, superadmin, &user.origin).await {
        Ok(stopped) => Ok(redirect(&format!(
            "{}?done=stopped&train={}&inference={}",
            list_path::<Users>(),
            stopped.train_jobs.len(),
            stopped.inference_jobs.len()
        ))),
        Err(err) => failed::<Users>(&state, &user, err).await,
    }
}

/// The users screen: every user, 25 a page, under the create form.
pub struct Users;

impl Listing for Users {
    const LIST: &'static str = "users";
    const PAGE_SIZE: i64 = 25;
    /// With `stopped` too, whose text ([`list`]) counts the jobs stopped.
    const NOTICES: &'static [(&'static str, &'static str)] = &[
        ("created", "The user was created."),
        (
            "banned",
            "The user was banned, and their live jobs stopped.",
        ),
    ];

    /// Page `page` of the users, the create form, the stop-everything button for the
    /// superadmin, and a notice; admins only (the API's check), others get its 403.
    async fn render(
        state: &AppState,
        user: &ConsoleUser,
        page: Paged,
        notice: Option<Notice>,
    ) -> Result<Html<String>, ConsoleError> {
        let admin = Authorized::<Admins>::check(user.user)?;
        let viewer = Viewer::of(state, user).await?;
        let mut rows = users::users_page(state, &admin, page.rows());
        let more = page.cut(&mut rows);
        let me = user.user;
        let content = html! {
            h1 { "Users" }
            @if let Some(notice) = &notice { (notice) }
            (create_form(me.user_type, &viewer.csrf))
            h2 #list { "Every user" }
            @if rows.is_empty() {
                p.empty { "No users on this page." }
            } @else {
                (table(&rows, &viewer, &viewer.csrf))
            }
            (page.nav(&list_path::<Users>(), more))
            @if Authorized::<Superadmins>::check(me).is_ok() {
                (stop_all_form(&viewer.csrf))
            }
        };
        Ok(layout(&viewer, "Users", content))
    }
}

/// The create form: `POST /users`' fields, offering the types the viewer may create (the API
/// decides anyway).
fn create_form(viewer_type: UserType, csrf_token: &str) -> Markup {
    html! {
        h2 { "Create a user" }
        form.stacked #user-create method="post" action={ (PREFIX) "/users" } {
            (csrf_field(csrf_token))
            label for="user-email" { "Email" }
            input #user-email type="email" name="email" required maxlength="254" autocomplete="off";
            label for="user-password" { "Password (at least " (users::MIN_PASSWORD_CHARS) " characters)" }
            input #user-password type="password" name="password" required
                minlength=(users::MIN_PASSWORD_CHARS) maxlength=(users::MAX_PASSWORD_CHARS)
                autocomplete="new-password";
            label for="user-type" { "Type" }
            select #user-type name="user_type" {
                @for kind in UserType::VARIANTS.iter().filter(|kind| viewer_type.can_manage(**kind)) {
                    option value=(kind) selected[*kind == UserType::ModelDeveloper] { (kind) }
                }
            }
            button type="submit" { "Create" }
        }
    }
}

fn table(rows: &[User], viewer: &Viewer<'_>, csrf_token: &str) -> Markup {
    let me = viewer.user.user;
    html! {
        table {
            caption.skip { "Users, oldest first" }
            thead { tr {
                th scope="col" { "Email" } th scope="col" { "Type" } th scope="col" { "Status" }
                th scope="col" { span.skip { "Actions" } }
            } }
            tbody {
                @for row in rows {
                    tr {
                        td { (row.email) @if row.id == me.id { " (you)" } }
                        td { (row.user_type) }
                        td {
                            @match row.banned_date {
                                Some(date) => { "Banned " (date.format("%Y-%m-%d %H:%M")) " UTC" },
                                None => "Active",
                            }
                        }
                        td {
                            // Offered where the API would ban: not oneself, not twice, only
                            // the types the viewer manages.
                            @if row.id != me.id && row.banned_date.is_none()
                                && me.user_type.can_manage(row.user_type) {
                                form method="post" action={ (PREFIX) "/users/ban" }
                                    data-confirm={ "Ban " (row.email) " for good and stop their jobs?" } {
                                    (csrf_field(csrf_token))
                                    input type="hidden" name="email" value=(row.email);
                                    button.danger type="submit" aria-label={ "Ban " (row.email) } { "Ban" }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The superadmin's stop-everything.
fn stop_all_form(csrf_token: &str) -> Markup {
    html! {
        h2 { "Stop every job" }
        p { "Stops every live train job and inference job of every user." }
        form #stop-all method="post" action={ (PREFIX) "/stop_all" }
            data-confirm="Stop every live train job and inference job of every user?" {
            (csrf_field(csrf_token))
            button.danger type="submit" { "Stop all jobs" }
        }
    }
}
