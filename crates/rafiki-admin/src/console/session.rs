//! Console sessions: the login form, the `rafiki_session` cookie, the extractor that gives a
//! page its user, and logout.
//!
//! The cookie holds the same JWT `POST /tokens` issues, made by the same code (rate limits and
//! ban checks included: `crate::routes::tokens::log_in`), and is checked as a bearer token is
//! (`AuthUser::from_token`). It is `HttpOnly` (scripts cannot read it), `SameSite=Strict` (no
//! cross-site request carries it), `Path=/console` (the API never sees it: the API takes
//! bearer tokens only, so a cookie can never authorize an API call), and lives as long as the
//! token. It is `Secure` when the request came over https: the admin itself serves plain
//! http, so that is when a TLS-terminating proxy says so with `X-Forwarded-Proto: https`
//! (trusting the header costs nothing: a client that lies gets a cookie its browser will not
//! send back over http).
//!
//! A page asked for without a session, or with one that is invalid, redirects to the login
//! form, which sends the user back where they were going (`next`, a console path only) once
//! logged in; an expired session says so.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, FromRequestParts, OriginalUri, Query, State};
use axum::http::header::{COOKIE, LOCATION, RETRY_AFTER, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Form;
use maud::{html, Markup};
use rafiki_types::user::LoginRequest;
use serde::Deserialize;

use super::csrf;
use super::page::{self, ConsoleError};
use super::PREFIX;
use crate::audit::{CallerSlot, Origin};
use crate::auth::extract::{AuthUser, TokenRefused};
use crate::auth::jwt::TOKEN_LIFETIME;
use crate::routes::tokens::{self, LoginError};
use crate::state::AppState;

/// The session cookie: the user's JWT.
const SESSION_COOKIE: &str = "rafiki_session";
/// The login form's CSRF nonce, before there is a session to bind forms to.
const LOGIN_NONCE_COOKIE: &str = "rafiki_csrf";

/// The signed-in user of a console page, and their session.
pub struct ConsoleUser {
    /// The user, checked as the API checks a bearer token's.
    pub user: AuthUser,
    /// The session's token, which the page's forms are bound to ([`csrf`]).
    session: String,
    /// Where the request came from, for the audit rows of the actions it takes.
    pub origin: Origin,
}

impl ConsoleUser {
    /// The CSRF token of this session's forms.
    pub fn csrf_token(&self, state: &AppState) -> String {
        csrf::token(state, &self.session)
    }

    /// Checks a POST of this session: its CSRF token and origin.
    pub fn check_form(
        &self,
        state: &AppState,
        headers: &HeaderMap,
        sent: Option<&str>,
    ) -> Result<(), ConsoleError> {
        csrf::check(state, headers, &self.session, sent).map_err(|_| ConsoleError::forged())
    }
}

/// A page without a valid session: to the login form.
pub struct ToLogin {
    next: String,
    expired: bool,
    /// Whether the request carried a session that can never work again, to be cleared. A
    /// request without one clears nothing: a cross-site request never carries the
    /// `SameSite=Strict` cookie, and clearing it in the answer would let any site log users out.
    forget: bool,
}

impl IntoResponse for ToLogin {
    fn into_response(self) -> Response {
        let mut query = vec![("next", self.next.as_str())];
        if self.expired {
            query.push(("expired", "1"));
        }
        let query = serde_urlencoded::to_string(query).unwrap_or_default();
        let mut response = redirect(&format!("{PREFIX}/login?{query}"));
        if self.forget {
            response
                .headers_mut()
                .insert(SET_COOKIE, clear_cookie(SESSION_COOKIE));
        }
        response
    }
}

impl FromRequestParts<AppState> for ConsoleUser {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        // The nested router sees the path without `/console`; the original has it.
        let uri = parts
            .extensions
            .get::<OriginalUri>()
            .map_or(&parts.uri, |original| &original.0);
        // A form sent with no session cannot be sent again by a redirect: back home then.
        let next = if parts.method == Method::GET {
            uri.path_and_query().map_or(PREFIX, |p| p.as_str())
        } else {
            PREFIX
        }
        .to_owned();
        let Some(session) = cookie(&parts.headers, SESSION_COOKIE) else {
            return Err(ToLogin {
                next,
                expired: false,
                forget: false,
            }
            .into_response());
        };
        match AuthUser::from_token(state, &session).await {
            Ok(user) => {
                if let Some(slot) = parts.extensions.get::<CallerSlot>() {
                    slot.fill(user);
                }
                Ok(ConsoleUser {
                    user,
                    session,
                    origin: Origin::of(&parts.extensions),
                })
            }
            Err(TokenRefused::Expired) => Err(ToLogin {
                next,
                expired: true,
                forget: true,
            }
            .into_response()),
            Err(TokenRefused::Invalid(err)) if err.status().is_server_error() => {
                Err(ConsoleError::from(err).into_response())
            }
            Err(TokenRefused::Invalid(_)) => Err(ToLogin {
                next,
                expired: false,
                forget: true,
            }
            .into_response()),
        }
    }
}

/// `GET /console/login` query.
#[derive(Deserialize)]
pub struct LoginQuery {
    /// Where to go once logged in.
    next: Option<String>,
    /// Set when the session expired.
    expired: Option<String>,
}

/// The login form.
pub async fn login_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(query): Query<LoginQuery>,
) -> Response {
    let notice = query
        .expired
        .is_some()
        .then_some("Your session has expired; please log in again.");
    login_form(
        &state,
        &headers,
        StatusCode::OK,
        query.next.as_deref(),
        notice,
        "",
    )
}

/// The login form, with a message (`notice`) and the email typed so far. A nonce for its CSRF
/// token is made when the browser has none yet.
fn login_form(
    state: &AppState,
    headers: &HeaderMap,
    status: StatusCode,
    next: Option<&str>,
    notice: Option<&str>,
    email: &str,
) -> Response {
    let existing = cookie(headers, LOGIN_NONCE_COOKIE);
    let nonce = existing
        .clone()
        .unwrap_or_else(|| hex::encode(rand::random::<[u8; 32]>()));
    let next = safe_next(next);
    let body = html! {
        h1 { "Log in to Rafiki" }
        @if let Some(notice) = notice {
            p.notice role="alert" { (notice) }
        }
        form.stacked method="post" action={ (PREFIX) "/login" } {
            input type="hidden" name=(csrf::FIELD) value=(csrf::token(state, &nonce));
            input type="hidden" name="next" value=(next);
            label for="email" { "Email" }
            input #email type="email" name="email" value=(email) autocomplete="username" required autofocus;
            label for="password" { "Password" }
            input #password type="password" name="password" autocomplete="current-password" required;
            button type="submit" { "Log in" }
        }
    };
    let mut response = (status, page::bare("Log in", body)).into_response();
    if existing.is_none() {
        let cookie = session_cookie(headers, LOGIN_NONCE_COOKIE, &nonce, None);
        response.headers_mut().append(SET_COOKIE, cookie);
    }
    response
}

/// `POST /console/login` form.
#[derive(Deserialize)]
pub struct LoginForm {
    email: String,
    password: String,
    next: Option<String>,
    csrf: Option<String>,
}

/// Logs in through the API's login code; on success sets the session cookie and goes to
/// `next`, else shows the form again with the API's reason.
pub async fn log_in(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    origin: Origin,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let nonce = cookie(&headers, LOGIN_NONCE_COOKIE).unwrap_or_default();
    if nonce.is_empty() || csrf::check(&state, &headers, &nonce, form.csrf.as_deref()).is_err() {
        return ConsoleError::forged().into_response();
    }
    let request = LoginRequest {
        email: form.email.clone(),
        password: form.password,
    };
    let next = form.next.as_deref();
    match tokens::log_in(&state, peer.ip(), &origin, request).await {
        Ok(login) => {
            let mut response = redirect(safe_next(next));
            let max_age = TOKEN_LIFETIME.num_seconds();
            let cookie = session_cookie(&headers, SESSION_COOKIE, &login.token, Some(max_age));
            response.headers_mut().append(SET_COOKIE, cookie);
            response
                .headers_mut()
                .append(SET_COOKIE, clear_cookie(LOGIN_NONCE_COOKIE));
            response
        }
        Err(LoginError::Limited(limited)) => {
            let mut response = login_form(
                &state,
                &headers,
                StatusCode::TOO_MANY_REQUESTS,
                next,
                Some(&limited.message()),
                &form.email,
            );
            response
                .headers_mut()
                .insert(RETRY_AFTER, limited.retry_after_secs().into());
            response
        }
        Err(LoginError::Refused(err)) if err.status().is_server_error() => {
            ConsoleError::from(err).into_response()
        }
        Err(LoginError::Refused(err)) => login_form(
            &state,
            &headers,
            err.status(),
            next,
            Some(err.message()),
            &form.email,
        ),
    }
}

/// The headers of an upload form's request, which is refused (403) before its body is read
/// when it comes from another origin; its CSRF token, in the body, is checked once read.
pub fn upload_headers(req: &axum::extract::Request) -> Result<HeaderMap, ConsoleError> {
    let headers = req.headers().clone();
    if !csrf::same_origin(&headers) {
        return Err(ConsoleError::forged());
    }
    Ok(headers)
}

/// A form with nothing but its CSRF token: logout, delete buttons.
#[derive(Deserialize)]
pub struct CsrfForm {
    /// The token ([`csrf`]).
    pub csrf: Option<String>,
}

/// Ends the session: the cookie is cleared (the token itself stays valid until it expires, as
/// an API token does, since tokens are not stored).
pub async fn log_out(
    State(state): State<AppState>,
    user: ConsoleUser,
    headers: HeaderMap,
    Form(form): Form<CsrfForm>,
) -> Result<Response, ConsoleError> {
    user.check_form(&state, &headers, form.csrf.as_deref())?;
    let mut response = redirect(&format!("{PREFIX}/login"));
    response
        .headers_mut()
        .insert(SET_COOKIE, clear_cookie(SESSION_COOKIE));
    Ok(response)
}

/// The hidden field that carries a session's CSRF token in a form.
pub fn csrf_field(token: &str) -> Markup {
    html! { input type="hidden" name=(csrf::FIELD) value=(token); }
}

/// A 303 to `location` (a path of this server).
pub fn redirect(location: &str) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(LOCATION, value);
    }
    response
}

/// `next` if it is a path of the console, else the console's home: never another site
/// (`//evil.example`, `/\evil.example`), nor the API.
fn safe_next(next: Option<&str>) -> &str {
    next.filter(|next| {
        (*next == PREFIX || next.starts_with("/console/") || next.starts_with("/console?"))
            && !next.contains('\\')
            && !next.chars().any(char::is_control)
    })
    .unwrap_or(PREFIX)
}

/// A cookie of the console's: `HttpOnly; SameSite=Strict; Path=/console`, `Secure` over https,
/// for `max_age` seconds or the browser's session.
fn session_cookie(
    headers: &HeaderMap,
    name: &str,
    value: &str,
    max_age: Option<i64>,
) -> HeaderValue {
    let mut cookie = format!("{name}={value}; HttpOnly; SameSite=Strict; Path={PREFIX}");
    if let Some(max_age) = max_age {
        cookie.push_str(&format!("; Max-Age={max_age}"));
    }
    let https = headers
        .get("x-forwarded-proto")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|proto| proto.trim().eq_ignore_ascii_case("https"));
    if https {
        cookie.push_str("; Secure");
    }
    // JWTs and hex nonces are cookie-safe.
    HeaderValue::from_str(&cookie).expect("a cookie of token characters")
}

/// A `Set-Cookie` that removes a console cookie.
fn clear_cookie(name: &str) -> HeaderValue {
    HeaderValue::from_str(&format!(
        "{name}=; HttpOnly; SameSite=Strict; Path={PREFIX}; Max-Age=0"
    ))
    .expect("a cookie of token characters")
}

/// The value of cookie `name` from the request's `Cookie` headers.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value.to_owned())
        .filter(|value| !value.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_stays_in_the_console() {
        assert_eq!(
            safe_next(Some("/console/datasets?page=2")),
            "/console/datasets?page=2"
        );
        assert_eq!(safe_next(Some("/console")), "/console");
        for bad in [
            "//evil.example",
            "https://evil.example",
            "/users",
            "/console\\x",
            "/consolex",
        ] {
            assert_eq!(safe_next(Some(bad)), "/console", "{bad}");
        }
        assert_eq!(safe_next(None), "/console");
    }
}
