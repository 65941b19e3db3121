//! What the screens that list rows a page at a time above their forms ([`super::datasets`],
//! [`super::models`], [`super::users`]) share: the list's page and the notice of what was just
//! done, the way back to the list after an action, and how a refused form is shown on the
//! list's first page.

use std::future::Future;

use axum::extract::{Query, State};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;

use super::page::{refused, ConsoleError, Notice, Paged};
use super::session::{redirect, ConsoleUser};
use super::PREFIX;
use crate::error::ApiError;
use crate::state::AppState;

/// A screen that lists rows a page at a time, with its forms and a notice above them.
pub trait Listing {
    /// The list's address under the console: `models` is `/console/models`.
    const LIST: &'static str;

    /// Rows per page.
    const PAGE_SIZE: i64;

    /// The notices of what was just done: each `?done=` the screen's actions redirect with,
    /// and its text.
    const NOTICES: &'static [(&'static str, &'static str)];

    /// Page `page` of the rows, the screen's forms, and `notice`.
    fn render(
        state: &AppState,
        user: &ConsoleUser,
        page: Paged,
        notice: Option<Notice>,
    ) -> impl Future<Output = Result<Html<String>, ConsoleError>> + Send;
}

/// `GET` query of a [`Listing`].
#[derive(Deserialize)]
pub struct ListQuery {
    /// The page, from 1; anything else is the first.
    page: Option<String>,
    /// What was just done, for its notice (the listing's own words: `uploaded`, `deleted`, ...).
    done: Option<String>,
}

/// The notice of what was just done (a page's `?done=`): the text `notices` pairs with `done`;
/// none for anything else, or nothing.
pub fn done_notice(done: Option<&str>, notices: &[(&str, &str)]) -> Option<Notice> {
    let done = done?;
    notices
        .iter()
        .find(|(key, _)| *key == done)
        .map(|(_, text)| Notice::Done((*text).to_owned()))
}

/// `GET` of a [`Listing`]: the page that the query asks for, with the notice of its `done`
/// ([`Listing::NOTICES`]).
pub async fn list<L: Listing>(
    State(state): State<AppState>,
    user: ConsoleUser,
    Query(query): Query<ListQuery>,
) -> Result<Response, ConsoleError> {
    let page = Paged::of(query.page.as_deref(), L::PAGE_SIZE);
    let notice = done_notice(query.done.as_deref(), L::NOTICES);
    Ok(L::render(&state, &user, page, notice)
        .await?
        .into_response())
}

/// The address of `L`'s list.
pub fn list_path<L: Listing>() -> String {
    format!("{PREFIX}/{}", L::LIST)
}

/// Where an action of `L` leads: back to its list with the notice of `done` when `result` is a
/// success, else to its refusal on the list ([`failed`]).
pub async fn back_to_list<L: Listing>(
    state: &AppState,
    user: &ConsoleUser,
    result: Result<impl Send, ApiError>,
    done: &str,
) -> Result<Response, ConsoleError> {
    match result {
        Ok(_) => Ok(redirect(&format!("{}?done={done}", list_path::<L>()))),
        Err(err) => failed::<L>(state, user, err).await,
    }
}

/// The first page of `L` again, showing why an action failed, with the API's status; server
/// faults get the error page.
pub async fn failed<L: Listing>(
    state: &AppState,
    user: &ConsoleUser,
    err: ApiError,
) -> Result<Response, ConsoleError> {
    refused(err, |notice| {
        L::render(state, user, Paged::first(L::PAGE_SIZE), Some(notice))
    })
    .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn done_notices_are_those_of_the_table() {
        let notices = [("uploaded", "Uploaded."), ("deleted", "Deleted.")];
        let text = |done| match done_notice(done, &notices) {
            Some(Notice::Done(text)) => Some(text),
            _ => None,
        };
        assert_eq!(text(Some("deleted")).as_deref(), Some("Deleted."));
        assert_eq!(text(Some("uploaded")).as_deref(), Some("Uploaded."));
        assert_eq!(text(Some("stopped")), None);
        assert_eq!(text(None), None);
    }
}
