//! Request ids (`x-request-id`): every answer of the admin, the predictor and the inference
//! workers names one, every log line of the request carries it in its span, and the calls made
//! for the request send it on, so one id follows a prediction from the console to each worker.
//!
//! A client's own id is kept when it is sane ([`is_sane`]); otherwise (or when there is none)
//! a UUID v4 is made. The id is never trusted further than a log field and a header: it is
//! bounded so that a client cannot bloat or forge log lines with it.

use axum::extract::Request;
use axum::http::{HeaderName, HeaderValue};
use axum::middleware::Next;
use axum::response::Response;

/// The header, in requests and answers.
pub static HEADER: HeaderName = HeaderName::from_static("x-request-id");

/// The longest client id kept, in bytes: room for a UUID, a W3C trace id or a load balancer's
/// composite id, not for a payload.
pub const MAX_LEN: usize = 128;

/// The id of the request being served, an extension of the request (set by [`assign`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestId(HeaderValue);

impl RequestId {
    /// A fresh id, a UUID v4.
    pub fn generate() -> RequestId {
        let id = uuid::Uuid::new_v4().to_string();
        RequestId(HeaderValue::from_str(&id).expect("a UUID is a header value"))
    }

    /// The client's id in `value` if it is sane, else a fresh one.
    pub fn from_client(value: Option<&HeaderValue>) -> RequestId {
        match value {
            Some(value) if is_sane(value.as_bytes()) => RequestId(value.clone()),
            _ => RequestId::generate(),
        }
    }

    /// The id as text (always ASCII).
    pub fn as_str(&self) -> &str {
        self.0.to_str().expect("ids are checked or generated ASCII")
    }

    /// The id as a header value, to send on.
    pub fn header_value(&self) -> &HeaderValue {
        &self.0
    }
}

/// Whether a client's id is kept: 1 to [`MAX_LEN`] bytes of ASCII letters, digits and
/// `-_.:+=/`. Spaces, quotes and control characters are refused, so the id cannot break a text
/// log line apart or pass for another field.
pub fn is_sane(id: &[u8]) -> bool {
    (1..=MAX_LEN).contains(&id.len())
        && id
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"-_.:+=/".contains(&b))
}

/// Middleware: gives the request its id (the client's if sane, else a fresh one), as the
/// request's `x-request-id` header (where the trace span reads it, see [`span`]) and as a
/// [`RequestId`] extension (for handlers that send it on), and names it in the answer.
///
/// It must wrap the trace layer, so that the span is made after the header is set.
pub async fn assign(mut req: Request, next: Next) -> Response {
    let id = RequestId::from_client(req.headers().get(&HEADER));
    req.headers_mut()
        .insert(HEADER.clone(), id.header_value().clone());
    req.extensions_mut().insert(id.clone());
    let mut response = next.run(req).await;
    response
        .headers_mut()
        .insert(HEADER.clone(), id.header_value().clone());
    response
}

/// The span of one request (`make_span_with` of a `tower_http` trace layer): its method, path
/// and id, so that every log line made while serving it names the id. The query string is left
/// out, as it may carry what a log should not.
pub fn span<B>(req: &axum::http::Request<B>) -> tracing::Span {
    let id = req
        .headers()
        .get(&HEADER)
        .and_then(|id| id.to_str().ok())
        .unwrap_or_default();
    tracing::info_span!(
        "request",
        method = %req.method(),
        path = %req.uri().path(),
        request_id = %id,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sane_ids_are_kept() {
        for id in [
            "abc",
            "0af7651916cd43dd8448eb211c80319c",
            "Root=1-5e1b:x/y+z_w.v",
        ] {
            let value = HeaderValue::from_static(id);
            assert_eq!(RequestId::from_client(Some(&value)).as_str(), id);
        }
        let longest = "a".repeat(MAX_LEN);
        assert!(is_sane(longest.as_bytes()));
    }

    #[test]
    fn insane_ids_are_replaced_by_a_fresh_uuid() {
        let long = "a".repeat(MAX_LEN + 1);
        for id in ["", "a b", "a\"b", "a;b", "ü", long.as_str()] {
            assert!(!is_sane(id.as_bytes()), "{id:?}");
            let value = HeaderValue::from_bytes(id.as_bytes()).unwrap();
            let kept = RequestId::from_client(Some(&value));
            assert!(uuid::Uuid::parse_str(kept.as_str()).is_ok(), "{id:?}");
        }
        let fresh = RequestId::from_client(None);
        assert_eq!(
            uuid::Uuid::parse_str(fresh.as_str())
                .unwrap()
                .get_version_num(),
            4
        );
    }
}
