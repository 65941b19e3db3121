//! The web console (`docs/console.md`): HTML pages under `/console`, served by the admin on the
//! same origin as the API, for people with a browser rather than a client library.
//!
//! Pages are rendered on the server with maud templates (checked at compile time) and work
//! without JavaScript; one small script adds confirmations. Every asset is compiled into the
//! binary ([`assets`]), so the console works offline. A page acts through the same functions
//! as the API's routes (`crate::routes::datasets::create`, `AuthUser::may_act_for`, ...), so
//! its role and ownership rules are the API's, not a second set.
//!
//! Modules: [`session`] (the login cookie, the extractor of a page's user, log in and out),
//! [`csrf`] (the tokens every form carries, and the `Origin` check), [`page`] (the layout,
//! error pages and the headers every console response gets), [`listing`] (what the screens
//! listing rows above their forms share), [`home`], [`datasets`],
//! [`models`], [`train_jobs`], [`trials`], [`inference_jobs`] and [`users`] (the screens; the
//! superadmin's stop-everything is on the users page), [`plots`] (the charts, drawn as SVG on
//! the server), [`predict`] (the predict box's way to a predictor), [`assets`] (the
//! stylesheet and the script).

mod assets;
mod csrf;
mod datasets;
mod home;
mod inference_jobs;
mod listing;
mod models;
mod page;
pub mod plots;
mod predict;
mod session;
mod train_jobs;
mod trials;
mod users;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::http::header::ACCEPT;
use axum::http::HeaderMap;
use axum::routing::{get, post};
use axum::Router;

use crate::state::AppState;

/// Where the console is mounted.
pub const PREFIX: &str = "/console";

/// The console's routes, to be nested under [`PREFIX`].
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(home::home))
        .route("/login", get(session::login_page).post(session::log_in))
        .route("/logout", post(session::log_out))
        .route(
            "/datasets",
            // The upload streams to disk under the dataset limits (`crate::upload`).
            get(listing::list::<datasets::Datasets>)
                .post(datasets::upload.layer(DefaultBodyLimit::disable())),
        )
        .route("/datasets/{id}/delete", post(datasets::delete))
        .route(
            "/models",
            // The upload streams to disk under the model limit (`crate::upload`).
            get(listing::list::<models::Models>)
                .post(models::upload.layer(DefaultBodyLimit::disable())),
        )
        .route("/models/{id}", get(models::detail))
        .route("/models/{id}/file", get(models::download))
        .route("/models/{id}/delete", post(models::delete))
        .route("/users", get(users::list).post(users::create))
        .route("/users/ban", post(users::ban))
        .route("/stop_all", post(users::stop_all))
        .route(
            "/train_jobs",
            get(train_jobs::list).post(train_jobs::create),
        )
        .route("/train_jobs/new", get(train_jobs::new_job))
        .route("/train_jobs/{app}/{app_version}", get(train_jobs::job))
        .route(
            "/train_jobs/{app}/{app_version}/live",
            get(train_jobs::live),
        )
        .route(
            "/train_jobs/{app}/{app_version}/plots",
            get(train_jobs::plots),
        )
        .route(
            "/train_jobs/{app}/{app_version}/stop",
            post(train_jobs::stop),
        )
        .route(
            "/inference_jobs",
            get(inference_jobs::list).post(inference_jobs::deploy),
        )
        .route(
            "/inference_jobs/{app}/{app_version}",
            get(inference_jobs::job),
        )
        .route(
            "/inference_jobs/{app}/{app_version}/stop",
            post(inference_jobs::stop),
        )
        .route(
            "/inference_jobs/{app}/{app_version}/predict",
            post(inference_jobs::predict),
        )
        .route("/trials/{id}", get(trials::show))
        .route("/trials/{id}/parameters", get(trials::parameters))
        .route("/assets/{file}", get(assets::serve))
        .fallback(page::not_found)
        .method_not_allowed_fallback(page::method_not_allowed)
        .layer(axum::middleware::map_response(page::console_headers))
}

/// Whether a request's `Accept` header prefers HTML to plain text, as a browser's does
/// (`text/html,...,*/*;q=0.8`); clients that send none or `*/*` (Rafiki's Python client, curl)
/// do not.
pub fn prefers_html(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(ACCEPT).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    // Named outright: `*/*` alone accepts HTML but prefers nothing.
    let Some((EXACT, html)) = quality(accept, "text/html") else {
        return false;
    };
    let plain = quality(accept, "text/plain").map_or(0.0, |(_, q)| q);
    html > 0.0 && html >= plain
}

/// The specificity of a media range naming a type outright.
const EXACT: u8 = 2;

/// The most specific range of an `Accept` header that matches `media` (`type/subtype`): its
/// specificity ([`EXACT`], 1 for `type/*`, 0 for `*/*`) and quality; `None` when none does.
fn quality(accept: &str, media: &str) -> Option<(u8, f32)> {
    let kind = media.split('/').next().unwrap_or(media);
    let mut best: Option<(u8, f32)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';').map(str::trim);
        let name = parts.next().unwrap_or("").to_ascii_lowercase();
        let specificity = if name == media {
            EXACT
        } else if name == format!("{kind}/*") {
            1
        } else if name == "*/*" {
            0
        } else {
            continue;
        };
        let q = parts
            .filter_map(|param| param.strip_prefix("q="))
            .find_map(|q| q.parse::<f32>().ok())
            .unwrap_or(1.0);
        if best.is_none_or(|(s, _)| specificity > s) {
            best = Some((specificity, q));
        }
    }
    best
}

#[cfg(test)]
mod tests {
    use super::*;

    fn accept(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(ACCEPT, value.parse().unwrap());
        headers
    }

    #[test]
    fn browsers_prefer_html_and_api_clients_do_not() {
        let firefox = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";
        assert!(prefers_html(&accept(firefox)));
        assert!(!prefers_html(&HeaderMap::new()));
        assert!(!prefers_html(&accept("*/*")));
        assert!(!prefers_html(&accept("application/json")));
        assert!(!prefers_html(&accept("text/plain, text/html;q=0.5")));
        assert!(!prefers_html(&accept("text/html;q=0")));
        assert!(prefers_html(&accept("TEXT/HTML")));
    }
}
