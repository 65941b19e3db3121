//! `GET /console`: who is signed in, and where to go.

use axum::extract::State;
use axum::response::Html;
use maud::html;

use super::page::{layout, ConsoleError, Viewer};
use super::session::ConsoleUser;
use super::PREFIX;
use crate::state::AppState;

/// The home page.
pub async fn home(
    State(state): State<AppState>,
    user: ConsoleUser,
) -> Result<Html<String>, ConsoleError> {
    let viewer = Viewer::of(&state, &user).await?;
    let content = html! {
        h1 { "Rafiki console" }
        p { "Signed in as " strong { (viewer.email) } ", " (user.user.user_type) "." }
        @if user.user.is_admin() {
            p { "As an admin you see every user's resources." }
        }
        ul {
            li { a href={ (PREFIX) "/datasets" } { "Datasets" } ": upload (a file or a URL), list and delete." }
            li { a href={ (PREFIX) "/models" } { "Models" } ": list, upload, details, download and delete." }
            li { a href={ (PREFIX) "/train_jobs" } { "Train jobs" } ": create, watch live, stop, deploy." }
            li { a href={ (PREFIX) "/inference_jobs" } { "Inference jobs" } ": predict, stop." }
            @if user.user.is_admin() {
                li { a href={ (PREFIX) "/users" } { "Users" } ": create and ban users"
                    @if user.user.user_type == rafiki_types::user::UserType::Superadmin { "; stop every job" } "." }
            }
        }
        p { "The API's interactive documentation is at " a href="/docs" { "/docs" } "." }
    };
    Ok(layout(&viewer, "Home", content))
}
