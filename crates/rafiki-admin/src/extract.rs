//! Request-body and query extractors whose rejections use the contract's error envelope
//! (`InvalidRequestError` naming the field, `PayloadTooLargeError`) instead of axum's text.
//!
//! They also hold the one rule about text Postgres cannot store: a NUL character (`\u0000` in
//! JSON, `%00` in a URL, a NUL byte in a form field) is refused here with
//! `InvalidRequestError`, before any handler or query sees it. Every extractor of request text
//! (these three, [`crate::paging::Listing`] and the upload forms) calls [`refuse_encoded_nul`]
//! or [`refuse_nul`]; JSON carried in a form field (a model's `dependencies`) is scanned with
//! [`json_has_nul`].

use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;
use serde_json::value::RawValue;
use serde_json::Value;

use crate::error::{ApiError, ApiResult};

/// `axum::Json` with contract errors, refusing NUL characters.
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        // The raw text first (content type, size and syntax checked as axum checks them), so
        // a NUL is found by scanning the text once; then the same decoding and error messages
        // as `axum::Json<T>`.
        let axum::Json(raw) = axum::Json::<Box<RawValue>>::from_request(req, state).await?;
        if json_has_nul(raw.get()) {
            let field = serde_json::from_str::<Value>(raw.get())
                .ok()
                .and_then(|value| path_to_nul(&value, "body"))
                .unwrap_or_else(|| "body".to_owned());
            return Err(nul_error(&format!("`{field}`")));
        }
        let axum::Json(value) = axum::Json::<T>::from_bytes(raw.get().as_bytes())?;
        Ok(ApiJson(value))
    }
}

/// `axum::extract::Query` with contract errors, refusing `%00`.
pub struct ApiQuery<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        refuse_encoded_nul(parts.uri.query().unwrap_or(""), "the query string")?;
        let axum::extract::Query(value) =
            axum::extract::Query::<T>::from_request_parts(parts, state).await?;
        Ok(ApiQuery(value))
    }
}

/// `axum::extract::Path` with contract errors, refusing `%00`.
pub struct ApiPath<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for ApiPath<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        refuse_encoded_nul(parts.uri.path(), "the path")?;
        let axum::extract::Path(value) =
            axum::extract::Path::<T>::from_request_parts(parts, state).await?;
        Ok(ApiPath(value))
    }
}

/// Refuses URL text (a path or a query string) that decodes to a NUL: a URI cannot hold a raw
/// NUL byte, so `%00` is the only way one arrives.
pub fn refuse_encoded_nul(url_part: &str, what: &str) -> ApiResult<()> {
    if url_part.contains("%00") {
        return Err(nul_error(what));
    }
    Ok(())
}

/// Refuses decoded text (a form field's value) that holds a NUL.
pub fn refuse_nul(text: &str, what: &str) -> ApiResult<()> {
    if text.contains('\0') {
        return Err(nul_error(what));
    }
    Ok(())
}

/// The one error for text with a NUL; `what` names where it was.
pub fn nul_error(what: &str) -> ApiError {
    ApiError::invalid_request(format!(
        "{what} contains a NUL character (\\u0000 or %00), which Rafiki does not store."
    ))
}

/// Whether JSON text holds the escape `\u0000`: a backslash that is not itself escaped (an odd
/// run of backslashes) followed by `u0000`. JSON cannot carry a raw NUL byte in a string, and
/// serde rejects one anywhere else.
pub fn json_has_nul(text: &str) -> bool {
    let bytes = text.as_bytes();
    let mut backslashes = 0usize;
    for (i, &byte) in bytes.iter().enumerate() {
        if byte == b'\\' {
            backslashes += 1;
            continue;
        }
        if backslashes % 2 == 1 && bytes[i..].starts_with(b"u0000") {
            return true;
        }
        backslashes = 0;
    }
    false
}

/// Where in `value` the first NUL is, as `body.field[2].key`; `None` if there is none.
fn path_to_nul(value: &Value, at: &str) -> Option<String> {
    match value {
        Value::String(text) => text.contains('\0').then(|| at.to_owned()),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .find_map(|(i, item)| path_to_nul(item, &format!("{at}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(key, item)| {
            if key.contains('\0') {
                Some(format!("{at} (a key)"))
            } else {
                path_to_nul(item, &format!("{at}.{key}"))
            }
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_an_unescaped_backslash_starts_a_nul_escape() {
        assert!(json_has_nul(r#"{"a": "x\u0000"}"#));
        assert!(json_has_nul(r#"{"a\u0000": 1}"#));
        assert!(json_has_nul(r#"["\\\u0000"]"#));
        assert!(!json_has_nul(r#"{"a": "\\u0000"}"#));
        assert!(!json_has_nul(r#"{"a": "u0000", "b": "\u0001"}"#));
    }

    #[test]
    fn the_error_names_where_the_nul_is() {
        let value = serde_json::json!({"app": "ok", "train_args": {"k": ["a", "b\u{0}"]}});
        assert_eq!(
            path_to_nul(&value, "body").as_deref(),
            Some("body.train_args.k[1]")
        );
        assert_eq!(path_to_nul(&serde_json::json!({"a": 1}), "body"), None);
    }

    #[test]
    fn url_text_with_percent_00_is_refused() {
        assert!(refuse_encoded_nul("task=%00", "the query string").is_err());
        assert!(refuse_encoded_nul("/train_jobs/a%2500", "the path").is_ok());
        assert!(refuse_nul("a\0b", "`name`").is_err());
    }
}
