//! Cross-site request forgery defences of the console's forms.
//!
//! Every POST form carries a hidden field `csrf` whose value is an HMAC-SHA256, keyed with
//! `APP_SECRET`, of what the request is bound to: the session (the token in the
//! `rafiki_session` cookie) once logged in, and before that a random nonce the login page puts
//! in the `rafiki_csrf` cookie. A POST whose field does not match its cookie is refused with a
//! 403 page before it changes anything.
//!
//! Why an HMAC of the session rather than a plain double-submit cookie (the same random value
//! in a cookie and in the form): a plain one is beaten by anyone who can plant a cookie for
//! this host (a sibling subdomain, or plain http to it), since they choose both halves. Here
//! the token cannot be made without the secret, and is worthless with any other session; it
//! also needs no server-side storage, so any admin instance checks any token. The message is
//! prefixed with a label containing `:` (never in a JWT's base64url signing input), so a CSRF
//! token can never be a JWT signature nor the reverse, though both use `APP_SECRET`.
//!
//! The cookies are `SameSite=Strict` as well, so browsers do not send them on cross-site
//! requests at all; and a request with an `Origin` header must come from this host.

use axum::http::header::{HOST, ORIGIN};
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use secrecy::ExposeSecret;
use sha2::Sha256;

use crate::state::AppState;

/// The name of the forms' hidden field.
pub const FIELD: &str = "csrf";

/// Keeps the MAC of one purpose apart from any other use of the secret.
const LABEL: &[u8] = b"rafiki-console-csrf:";

/// A refused POST: its token or its origin is wrong.
#[derive(Debug)]
pub struct Forged;

fn mac(state: &AppState, binding: &str) -> Hmac<Sha256> {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac =
        Hmac::<Sha256>::new_from_slice(state.settings.app_secret.expose_secret().as_bytes())
            .expect("HMAC takes any key");
    mac.update(LABEL);
    mac.update(binding.as_bytes());
    mac
}

/// The token of forms bound to `binding` (a session token, or the login page's nonce).
pub fn token(state: &AppState, binding: &str) -> String {
    hex::encode(mac(state, binding).finalize().into_bytes())
}

/// Checks a POST: its `Origin`, when sent, is this host, and `sent` is the token of
/// `binding`. The comparison takes the same time whatever the token sent.
pub fn check(
    state: &AppState,
    headers: &HeaderMap,
    binding: &str,
    sent: Option<&str>,
) -> Result<(), Forged> {
    if !same_origin(headers) {
        return Err(Forged);
    }
    let sent = sent
        .and_then(|hex_text| hex::decode(hex_text).ok())
        .ok_or(Forged)?;
    mac(state, binding).verify_slice(&sent).map_err(|_| Forged)
}

/// Whether the request's `Origin` (when it has one) names the host it was sent to. Only the
/// host and port are compared: behind a TLS-terminating proxy the admin sees plain http while
/// the browser's origin says https.
pub fn same_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN) else {
        return true;
    };
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let origin_host = origin
        .to_str()
        .ok()
        .and_then(|origin| origin.split_once("://"))
        .map(|(_, authority)| authority);
    match (origin_host, host) {
        (Some(origin_host), Some(host)) => origin_host.eq_ignore_ascii_case(host),
        // `Origin: null` (a sandboxed frame, a redirect across origins) or no Host.
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(axum::http::HeaderName, &str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(name, value)| (name.clone(), value.parse().unwrap()))
            .collect()
    }

    #[test]
    fn only_this_hosts_origin_passes() {
        assert!(same_origin(&headers(&[(HOST, "127.0.0.1:3000")])));
        assert!(same_origin(&headers(&[
            (HOST, "rafiki.example:3000"),
            (ORIGIN, "https://Rafiki.example:3000")
        ])));
        assert!(!same_origin(&headers(&[
            (HOST, "rafiki.example"),
            (ORIGIN, "https://evil.example")
        ])));
        assert!(!same_origin(&headers(&[
            (HOST, "rafiki.example"),
            (ORIGIN, "null")
        ])));
        assert!(!same_origin(&headers(&[(
            ORIGIN,
            "https://rafiki.example"
        )])));
    }
}
