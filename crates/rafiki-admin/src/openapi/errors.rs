//! The error statuses every operation shares with others because they come from shared
//! machinery, declared on each operation they apply to (an operation's own declaration of the
//! same status is kept, its description extended):
//!
//! - 401 `UnauthorizedError` on every operation with a security requirement (the token check);
//! - 400 `InvalidRequestError` on every operation that reads parameters or a body (the
//!   extractors: malformed JSON, a wrong type, a NUL character, an unknown query parameter);
//! - 413 `PayloadTooLargeError` on every operation with a body (`RAFIKI_MAX_JSON_BYTES`, or
//!   the upload limits);
//! - 503 `ServiceUnavailableError` with `Retry-After` on every operation that reads the
//!   database, which is all but `GET /` (`GET /health` declares its own 503).
//!
//! Every response also gets a description, which OpenAPI 3.1 requires.

use serde_json::{json, Map, Value};

/// One shared status: its code, when it applies, and what it means.
struct Shared {
    status: &'static str,
    applies: fn(path: &str, operation: &Map<String, Value>) -> bool,
    description: &'static str,
    retry_after: bool,
}

const SHARED: &[Shared] = &[
    Shared {
        status: "400",
        applies: |_, op| reads_input(op),
        description: "InvalidRequestError: a malformed request (bad JSON, a wrong type, a \
            missing or unknown parameter, text with a NUL character)",
        retry_after: false,
    },
    Shared {
        status: "401",
        applies: |_, op| op.get("security").is_some_and(|s| s != &json!([])),
        description: "UnauthorizedError: no bearer token, or one that is invalid or expired, or \
            whose user is banned or gone",
        retry_after: false,
    },
    Shared {
        status: "413",
        applies: |_, op| op.contains_key("requestBody"),
        description: "PayloadTooLargeError: the body is larger than the server accepts",
        retry_after: false,
    },
    Shared {
        status: "503",
        applies: |path, _| path != "/" && path != "/health",
        description: "ServiceUnavailableError: the database is unreachable; try again after \
            the seconds in Retry-After",
        retry_after: true,
    },
];

/// Declares the shared statuses on every operation of `doc` they apply to.
pub(super) fn declare_shared_errors(doc: &mut Value) {
    let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        let Some(item) = item.as_object_mut() else {
            continue;
        };
        for operation in item.values_mut().filter_map(Value::as_object_mut) {
            for shared in SHARED {
                if (shared.applies)(path, operation) {
                    declare(operation, shared);
                }
            }
            describe_every_response(operation);
        }
    }
}

/// Whether an operation reads anything a caller sends: parameters or a body.
fn reads_input(operation: &Map<String, Value>) -> bool {
    operation.contains_key("requestBody")
        || operation
            .get("parameters")
            .and_then(Value::as_array)
            .is_some_and(|p| !p.is_empty())
}

fn declare(operation: &mut Map<String, Value>, shared: &Shared) {
    let responses = operation
        .entry("responses")
        .or_insert_with(|| json!({}))
        .as_object_mut()
        .expect("responses is an object");
    match responses.get_mut(shared.status) {
        Some(Value::Object(own)) => {
            let description = match own.get("description").and_then(Value::as_str) {
                Some(text) if !text.is_empty() => format!("{text}; or {}", shared.description),
                _ => shared.description.to_string(),
            };
            own.insert("description".into(), description.into());
            own.entry("content").or_insert_with(error_content);
        }
        _ => {
            responses.insert(
                shared.status.into(),
                json!({"description": shared.description, "content": error_content()}),
            );
        }
    }
    if shared.retry_after {
        responses[shared.status]["headers"] = json!({"Retry-After": {
            "description": "Seconds to wait before trying again.",
            "schema": {"type": "integer", "minimum": 0},
        }});
    }
}

/// The error envelope as a response body.
fn error_content() -> Value {
    json!({"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}})
}

/// Gives a response without a description its status's reason phrase.
fn describe_every_response(operation: &mut Map<String, Value>) {
    let Some(responses) = operation
        .get_mut("responses")
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    for (status, response) in responses.iter_mut() {
        let Some(response) = response.as_object_mut() else {
            continue;
        };
        let described = response
            .get("description")
            .and_then(Value::as_str)
            .is_some_and(|d| !d.is_empty());
        if !described {
            let reason = status
                .parse::<u16>()
                .ok()
                .and_then(|code| axum::http::StatusCode::from_u16(code).ok())
                .and_then(|code| code.canonical_reason())
                .unwrap_or("Response");
            response.insert("description".into(), reason.into());
        }
    }
}
