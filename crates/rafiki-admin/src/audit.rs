//! The admin's side of the audit trail (docs/observability.md, "Audit trail"): who made each
//! request ([`Origin`], which routes turn into a `rafiki_store::audit::Actor`), and the one
//! place that records refusals ([`record_refusals`]).
//!
//! Successes are recorded by whoever holds the change's transaction — the shared functions of
//! `crate::routes` through `rafiki_store::audit::recorded`, the orchestrator for jobs — so a
//! change that rolls back leaves no row saying it happened, and the console, which calls the
//! same functions, is covered by the same code. Refusals (an error answer of a mutating route
//! or console form) are recorded after the fact by [`record_refusals`], a layer on the API's
//! routes and the console's, so that no route can forget them. Logins record both themselves (`crate::routes::tokens::log_in`): only
//! they know the account tried.

use std::convert::Infallible;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, OnceLock};

use axum::extract::{ConnectInfo, FromRequestParts, MatchedPath, OriginalUri, Request, State};
use axum::http::request::Parts;
use axum::http::{Extensions, Method};
use axum::middleware::Next;
use axum::response::Response;
use rafiki_service::request_id::RequestId;
use rafiki_store::audit::Actor;
use rafiki_types::audit::{AuditAction, TargetKind};
use rafiki_types::error::ErrorName;

use crate::auth::extract::AuthUser;
use crate::state::AppState;

/// Where a request came from: the TCP peer (as the login limits see it) and the request's id.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Origin {
    /// The TCP peer's address; `None` only for a request not served over TCP (never in the
    /// server).
    pub client: Option<IpAddr>,
    /// The request's id (`rafiki_service::request_id`).
    pub request_id: Option<String>,
}

impl Origin {
    /// The origin of the request with these extensions (its peer's address and id, set by the
    /// server and `rafiki_service::request_id::assign`).
    pub fn of(extensions: &Extensions) -> Origin {
        Origin {
            client: extensions
                .get::<ConnectInfo<SocketAddr>>()
                .map(|ConnectInfo(peer)| peer.ip()),
            request_id: extensions
                .get::<RequestId>()
                .map(|id| id.as_str().to_owned()),
        }
    }

    /// `user` acting from here.
    pub fn actor(&self, user: AuthUser) -> Actor {
        Actor {
            id: Some(user.id),
            role: Some(user.user_type),
            ..self.anonymous()
        }
    }

    /// Nobody known acting from here (a login with an email nobody has).
    pub fn anonymous(&self) -> Actor {
        Actor {
            id: None,
            role: None,
            client: self.client,
            request_id: self.request_id.clone(),
        }
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Origin {
    type Rejection = Infallible;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Infallible> {
        Ok(Origin::of(&parts.extensions))
    }
}

/// The caller a request's user extractor authenticated, for [`record_refusals`] to read after
/// the handler answered (a request extension: the extractor fills it, the layer reads it).
#[derive(Debug, Clone, Default)]
pub struct CallerSlot(Arc<OnceLock<AuthUser>>);

impl CallerSlot {
    /// Keeps the request's authenticated caller (the first one, if a request had two
    /// extractors).
    pub fn fill(&self, user: AuthUser) {
        let _ = self.0.set(user);
    }
}

/// The action of a mutating route of the API or of the console's forms, by method and route
/// template; `None` for reads, for the services' internal routes and for the logins (which
/// record themselves).
pub fn action_of(method: &Method, template: &str) -> Option<(AuditAction, Option<TargetKind>)> {
    use AuditAction::*;
    if let Some(form) = template.strip_prefix(crate::console::PREFIX) {
        return console_action_of(method, form);
    }
    let action = match (method.as_str(), template) {
        ("POST", "/users") => (UserCreate, None),
        ("DELETE", "/users") => (UserBan, None),
        ("POST", "/datasets") => (DatasetCreate, None),
        ("DELETE", "/datasets/{id}") => (DatasetDelete, Some(TargetKind::Dataset)),
        ("POST", "/models") => (ModelCreate, None),
        ("DELETE", "/models/{id}") => (ModelDelete, Some(TargetKind::Model)),
        ("POST", "/train_jobs") => (TrainJobCreate, None),
        ("POST", "/train_jobs/{app}/{app_version}/stop") => {
            (TrainJobStop, Some(TargetKind::TrainJob))
        }
        ("POST", "/inference_jobs") => (InferenceJobCreate, None),
        ("POST", "/inference_jobs/{app}/{app_version}/stop") => {
            (InferenceJobStop, Some(TargetKind::InferenceJob))
        }
        ("POST", "/actions/stop_all_jobs") => (JobsStopAll, None),
        _ => return None,
    };
    Some(action)
}

/// The action of a console form, by method and route template under the console's prefix.
fn console_action_of(method: &Method, template: &str) -> Option<(AuditAction, Option<TargetKind>)> {
    use AuditAction::*;
    if method != Method::POST {
        return None;
    }
    let action = match template {
        "/users" => (UserCreate, None),
        "/users/ban" => (UserBan, None),
        "/datasets" => (DatasetCreate, None),
        "/datasets/{id}/delete" => (DatasetDelete, Some(TargetKind::Dataset)),
        "/models" => (ModelCreate, None),
        "/models/{id}/delete" => (ModelDelete, Some(TargetKind::Model)),
        "/train_jobs" => (TrainJobCreate, None),
        "/train_jobs/{app}/{app_version}/stop" => (TrainJobStop, Some(TargetKind::TrainJob)),
        "/inference_jobs" => (InferenceJobCreate, None),
        "/inference_jobs/{app}/{app_version}/stop" => {
            (InferenceJobStop, Some(TargetKind::InferenceJob))
        }
        "/stop_all" => (JobsStopAll, None),
        _ => return None,
    };
    Some(action)
}

/// What the path names where `template` has parameters (`{id}`, `{app}/{app_version}`), as
/// sent (percent-encoded), joined by `/`; cut to the column's bound when recorded.
fn path_target(template: &str, path: &str) -> String {
    template
        .split('/')
        .zip(path.split('/'))
        .filter(|(part, _)| part.starts_with('{'))
        .map(|(_, value)| value)
        .collect::<Vec<_>>()
        .join("/")
}

/// Middleware on the API's routes and the console's: records a refusal row (outcome: the
/// contract's error name) for every error answer (4xx, 5xx) of a mutating route
/// ([`action_of`]) to an authenticated caller. Requests without a valid token or session are
/// not recorded: anyone can send them, so recording them would let anyone fill the table, and
/// they change nothing. Successes (an API's 200, a console form's redirect) are not recorded
/// here but in their change's transaction.
pub async fn record_refusals(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Response {
    let Some(template) = req.extensions().get::<MatchedPath>().cloned() else {
        return next.run(req).await;
    };
    let Some((action, kind)) = action_of(req.method(), template.as_str()) else {
        return next.run(req).await;
    };
    let origin = Origin::of(req.extensions());
    // The whole path, as the template is whole (a nested router's request has its prefix cut).
    let path = req
        .extensions()
        .get::<OriginalUri>()
        .map_or(req.uri().path(), |original| original.0.path());
    let target = kind.map(|kind| (kind, path_target(template.as_str(), path)));
    let slot = CallerSlot::default();
    req.extensions_mut().insert(slot.clone());
    let response = next.run(req).await;
    let status = response.status();
    if !status.is_client_error() && !status.is_server_error() {
        return response;
    }
    let Some(caller) = slot.0.get().copied() else {
        return response;
    };
    let outcome = response
        .extensions()
        .get::<ErrorName>()
        .map_or_else(|| status.to_string(), |name| name.to_string());
    let event = origin.actor(caller).event(
        action,
        target.as_ref().map(|(kind, id)| (*kind, id.as_str())),
        &outcome,
    );
    if let Err(err) = rafiki_store::audit::insert(&state.pool, &event).await {
        // The answer stands: a refusal that could not be recorded is still a refusal.
        tracing::error!(error = %err, action = %action, "cannot record a refused request");
    }
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn path_targets_are_the_templates_parameters() {
        assert_eq!(path_target("/datasets/{id}", "/datasets/abc"), "abc");
        assert_eq!(
            path_target(
                "/train_jobs/{app}/{app_version}/stop",
                "/train_jobs/my%20app/3/stop"
            ),
            "my%20app/3"
        );
        assert_eq!(path_target("/users", "/users"), "");
    }

    /// A mutating route added to the API without an action would have its refusals go
    /// unrecorded: every POST and DELETE of the OpenAPI document has one (logins record
    /// themselves).
    #[test]
    fn every_mutating_route_of_the_api_has_an_action() {
        let doc = crate::openapi::api_doc(&crate::config::Settings::dev_defaults());
        let doc = serde_json::to_value(doc).unwrap();
        let mut seen = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for method in ["post", "delete", "put", "patch"] {
                if item.get(method).is_none() || path == "/tokens" {
                    continue;
                }
                let method: Method = method.to_uppercase().parse().unwrap();
                assert!(action_of(&method, path).is_some(), "{method} {path}");
                seen += 1;
            }
        }
        assert_eq!(seen, 11);
    }
}
