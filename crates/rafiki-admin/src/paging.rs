//! Paginated listings (docs/security.md, "Quotas and limits"): every listing route takes
//! `?limit=&offset=`, so no request makes the server read and send a table whole.
//!
//! A request without `limit` gets the largest page, `RAFIKI_MAX_PAGE_SIZE` rows, so clients that
//! never page (Rafiki's Python client sends no such parameters) get every row up to that cap.
//! A bad value is refused with `InvalidRequestError` naming the parameter. The trial listing
//! (route 17) keeps the contract's own `limit` (default 1000) and `offset`.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde::Deserialize;

use crate::error::ApiError;
use crate::state::AppState;

/// A page of a listing: at most `limit` rows after the first `offset`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    /// Most rows, at least 1.
    pub limit: i64,
    /// Rows skipped, at least 0.
    pub offset: i64,
}

impl Page {
    /// The rows of `all` on this page, for listings served from memory.
    pub fn slice<'a, T>(&self, all: &'a [T]) -> &'a [T] {
        let start = usize::try_from(self.offset)
            .unwrap_or(usize::MAX)
            .min(all.len());
        let end = start
            .saturating_add(usize::try_from(self.limit).unwrap_or(usize::MAX))
            .min(all.len());
        &all[start..end]
    }

    /// Reads `limit` and `offset`; absent, they are the largest page and 0.
    fn parse(params: PageParams, max_page_size: u32) -> Result<Page, ApiError> {
        let max = i64::from(max_page_size);
        let limit = match params.limit {
            None => max,
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| (1..=max).contains(n))
                .ok_or_else(|| {
                    ApiError::invalid_request(format!(
                        "Query parameter `limit` must be an integer from 1 to {max} \
                         (RAFIKI_MAX_PAGE_SIZE)."
                    ))
                })?,
        };
        let offset = match params.offset {
            None => 0,
            Some(text) => text
                .trim()
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    ApiError::invalid_request(
                        "Query parameter `offset` must be an integer of at least 0.",
                    )
                })?,
        };
        Ok(Page { limit, offset })
    }
}

/// `limit` and `offset` as sent: text, so that a bad value is refused by name.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageParams {
    /// Most rows to return, from 1 to the server's largest page (`RAFIKI_MAX_PAGE_SIZE`,
    /// 1000 by default), which is also what a request without `limit` gets.
    #[param(value_type = Option<i64>, minimum = 1)]
    limit: Option<String>,
    /// How many rows to skip (default 0).
    #[param(value_type = Option<i64>, minimum = 0)]
    offset: Option<String>,
}

/// The query of a listing without filters: only the page.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoFilters {}

/// A listing's query: its own parameters `Q` (which may refuse unknown ones) and its page.
#[derive(Debug)]
pub struct Listing<Q = NoFilters> {
    /// The listing's own parameters.
    pub filters: Q,
    /// Which rows.
    pub page: Page,
}

impl<Q: DeserializeOwned> FromRequestParts<AppState> for Listing<Q> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let malformed = |err: &dyn std::fmt::Display| {
            ApiError::invalid_request(format!("Failed to deserialize query string: {err}"))
        };
        let query = parts.uri.query().unwrap_or("");
        crate::extract::refuse_encoded_nul(query, "the query string")?;
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_str(query).map_err(|e| malformed(&e))?;
        let (paging, filters): (Vec<_>, Vec<_>) = pairs
            .into_iter()
            .partition(|(key, _)| key == "limit" || key == "offset");
        // Each half is decoded on its own, so `Q` keeps refusing parameters it does not know.
        let reencoded = |pairs: &[(String, String)]| {
            serde_urlencoded::to_string(pairs).map_err(|e| malformed(&e))
        };
        let params: PageParams =
            serde_urlencoded::from_str(&reencoded(&paging)?).map_err(|e| malformed(&e))?;
        let filters: Q =
            serde_urlencoded::from_str(&reencoded(&filters)?).map_err(|e| malformed(&e))?;
        Ok(Listing {
            filters,
            page: Page::parse(params, state.settings.max_page_size)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rafiki_types::error::ErrorName;

    fn params(limit: Option<&str>, offset: Option<&str>) -> PageParams {
        PageParams {
            limit: limit.map(str::to_owned),
            offset: offset.map(str::to_owned),
        }
    }

    #[test]
    fn defaults_are_the_largest_page_from_the_start() {
        let page = Page::parse(params(None, None), 50).unwrap();
        assert_eq!(
            page,
            Page {
                limit: 50,
                offset: 0
            }
        );
        let page = Page::parse(params(Some("7"), Some("3")), 50).unwrap();
        assert_eq!(
            page,
            Page {
                limit: 7,
                offset: 3
            }
        );
    }

    #[test]
    fn bad_values_are_refused_by_name() {
        for (limit, offset) in [
            (Some("0"), None),
            (Some("51"), None),
            (Some("ten"), None),
            (None, Some("-1")),
            (None, Some("1.5")),
        ] {
            let err = Page::parse(params(limit, offset), 50).unwrap_err();
            assert_eq!(err.name(), ErrorName::InvalidRequestError);
        }
    }

    #[test]
    fn a_page_slices_rows_in_memory() {
        let rows = [1, 2, 3, 4, 5];
        let page = |limit, offset| Page { limit, offset };
        assert_eq!(page(2, 1).slice(&rows), &[2, 3]);
        assert_eq!(page(10, 3).slice(&rows), &[4, 5]);
        assert!(page(10, 9).slice(&rows).is_empty());
        assert!(page(i64::MAX, i64::MAX).slice(&rows).is_empty());
    }
}
