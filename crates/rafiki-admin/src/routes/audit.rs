//! `GET /audit`: the audit trail (docs/observability.md, "Audit trail"), for admins: who did
//! what, newest first, filtered by actor, action and time, a page at a time.

use axum::extract::State;
use axum::Json;
use chrono::{DateTime, Utc};
use rafiki_store::audit::Filter;
use rafiki_types::audit::{AuditAction, AuditEvent};
use rafiki_types::error::ErrorBody;
use serde::Deserialize;

use crate::auth::extract::{Admins, Authorized};
use crate::error::{ApiError, ApiResult};
use crate::paging::{Listing, PageParams};
use crate::state::AppState;

/// `GET /audit`'s filters, as sent: text, so that a bad value is refused by name.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AuditQuery {
    /// Only events of this user (their id).
    #[param(value_type = Option<uuid::Uuid>)]
    pub actor: Option<String>,
    /// Only events of this action (`user.ban`, `train_job.stop`, ...).
    #[param(value_type = Option<AuditAction>)]
    pub action: Option<String>,
    /// Only events at or after this time (RFC 3339, e.g. `2026-11-30T12:00:00Z`).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    #[param(value_type = Option<DateTime<Utc>>)]
    pub until: Option<String>,
}

impl AuditQuery {
    /// The filter these parameters ask for; a value that does not parse is refused with
    /// `InvalidRequestError` naming its parameter (the value itself is not echoed: it may be
    /// anything).
    pub fn filter(&self) -> ApiResult<Filter> {
        Ok(Filter {
            actor: parse(
                self.actor.as_deref(),
                "actor",
                "a user id (a UUID)",
                |text| text.parse().ok(),
            )?,
            action: parse(
                self.action.as_deref(),
                "action",
                "an action such as `train_job.stop` (docs/observability.md)",
                |text| text.parse().ok(),
            )?,
            since: parse(self.since.as_deref(), "since", "an RFC 3339 time", time)?,
            until: parse(self.until.as_deref(), "until", "an RFC 3339 time", time)?,
        })
    }
}

/// `text` read by `read`, if given; else the refusal naming `name` and what it must be.
fn parse<T>(
    text: Option<&str>,
    name: &str,
    must_be: &str,
    read: impl Fn(&str) -> Option<T>,
) -> ApiResult<Option<T>> {
    text.map(|text| {
        read(text.trim()).ok_or_else(|| {
            ApiError::invalid_request(format!("Query parameter `{name}` must be {must_be}."))
        })
    })
    .transpose()
}

fn time(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(text)
        .ok()
        .map(|time| time.with_timezone(&Utc))
}

/// Lists audit events, newest first, a page at a time (admins only).
#[utoipa::path(get, path = "/audit", params(AuditQuery, PageParams), security(("bearer" = [])),
    responses(
    (status = 200, body = Vec<AuditEvent>),
    (status = 400, description = "InvalidRequestError: a bad `actor`, `action`, `since`, \
        `until`, `limit` or `offset`", body = ErrorBody),
    (status = 403, description = "UnauthorizedError", body = ErrorBody)))]
pub async fn list_audit_events(
    State(state): State<AppState>,
    _caller: Authorized<Admins>,
    Listing { filters, page }: Listing<AuditQuery>,
) -> ApiResult<Json<Vec<AuditEvent>>> {
    let filter = filters.filter()?;
    Ok(Json(
        rafiki_store::audit::list(&state.pool, &filter, page.limit, page.offset).await?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafiki_types::error::ErrorName;

    fn query(actor: Option<&str>, action: Option<&str>, since: Option<&str>) -> AuditQuery {
        AuditQuery {
            actor: actor.map(str::to_owned),
            action: action.map(str::to_owned),
            since: since.map(str::to_owned),
            until: None,
        }
    }

    /// The fuzz run generates filters from the document: it must name the actions and formats
    /// the checks accept.
    #[test]
    fn the_document_declares_the_filters_formats_and_the_action_names() {
        let doc = crate::openapi::api_doc(&crate::config::Settings::dev_defaults());
        let doc = serde_json::to_value(doc).unwrap();
        let text = doc["paths"]["/audit"]["get"].to_string()
            + &doc["components"]["schemas"]["AuditAction"].to_string();
        for expected in [
            "train_job.stop",
            "jobs.stop_all",
            "login",
            "\"uuid\"",
            "date-time",
        ] {
            assert!(text.contains(expected), "{expected} in {text}");
        }
    }

    #[test]
    fn filters_parse_or_are_refused_by_name() {
        let filter = query(
            Some("7b0c5a56-1d4e-4a4b-9a53-1c2f3e4d5a6b"),
            Some("train_job.stop"),
            Some("2026-11-30T12:00:00+01:00"),
        )
        .filter()
        .unwrap();
        assert_eq!(filter.action, Some(AuditAction::TrainJobStop));
        assert_eq!(
            filter.since.unwrap().to_rfc3339(),
            "2026-11-30T11:00:00+00:00"
        );
        for (q, name) in [
            (query(Some("1 or 1=1"), None, None), "actor"),
            (query(None, Some("train_job.stop'--"), None), "action"),
            (query(None, None, Some("yesterday")), "since"),
        ] {
            let err = q.filter().unwrap_err();
            assert_eq!(err.name(), ErrorName::InvalidRequestError);
            assert!(
                err.message().contains(&format!("`{name}`")),
                "{}",
                err.message()
            );
        }
    }
}
