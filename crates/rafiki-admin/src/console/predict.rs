//! The predict box's way to a predictor: the admin sends the query to the inference job's
//! predictor itself (a browser page cannot call another origin under the console's CSP), at the
//! address the admin reaches it by (`routes::inference_jobs::predictor_address_for_admin`: the
//! job's `predictor_host` with `RAFIKI_PREDICTOR_REACH_HOST` for this machine's name), never an
//! address the form names. Queries and answers are bounded, and a predictor that does
//! not answer in time, or at all, is a 502 or 504 page that says so.

use std::sync::LazyLock;
use std::time::Duration;

use axum::http::StatusCode;
use rafiki_service::request_id::{self, RequestId};
use rafiki_types::error::{ErrorBody, ErrorName};
use rafiki_types::inference::PredictRequest;

use crate::error::ApiError;

/// Largest query the box sends, in bytes of JSON.
pub const MAX_QUERY_BYTES: usize = 1 << 20;
/// Largest answer read back, in bytes; a longer one is refused, not cut.
pub const MAX_ANSWER_BYTES: usize = 4 << 20;
/// How long a prediction may take (the predictor's own wait for its workers is 10 s by
/// default).
const TIMEOUT: Duration = Duration::from_secs(60);

/// One client for every prediction: no proxy (predictors are on this machine or its cluster,
/// never behind the proxy the environment may name for the internet) and no redirects (the
/// target is the predictor, not wherever it points).
static CLIENT: LazyLock<reqwest::Client> = LazyLock::new(|| {
    reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5))
        .timeout(TIMEOUT)
        .build()
        .expect("a client of default TLS settings")
});

/// The query of the box: its JSON text, sent as one query (`{"query": q}`) or, when `many`,
/// as a list of queries (`{"queries": [q, ...]}`, the text then being a JSON array).
pub fn request(text: &str, many: bool) -> Result<PredictRequest, ApiError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(ApiError::new(
            ErrorName::PayloadTooLargeError,
            format!("The query is over {MAX_QUERY_BYTES} bytes."),
        ));
    }
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| ApiError::invalid_request(format!("The query is not JSON: {e}.")))?;
    if !many {
        return Ok(PredictRequest::Query(value));
    }
    match value {
        serde_json::Value::Array(queries) if !queries.is_empty() => {
            Ok(PredictRequest::Queries(queries))
        }
        _ => Err(ApiError::invalid_request(
            "A list of queries must be a non-empty JSON array, one query per element.",
        )),
    }
}

/// Sends `request` to the predictor at `host` (`host:port`) under the console request's id
/// (so that the predictor's log lines, and its workers', name it); its answer, or why there is
/// none: the predictor's own refusal (its status and message), 502 when it cannot be reached
/// or answers nonsense, 504 when it is too slow.
pub async fn send(
    host: &str,
    request: &PredictRequest,
    request_id: &RequestId,
) -> Result<serde_json::Value, ApiError> {
    let unreachable = |why: String| {
        ApiError::new(
            ErrorName::ServiceDeploymentError,
            format!("The predictor at {host} did not answer: {why}"),
        )
        .with_status(StatusCode::BAD_GATEWAY)
    };
    let mut response = CLIENT
        .post(format!("http://{host}/predict"))
        .header(&request_id::HEADER, request_id.header_value())
        .json(request)
        .send()
        .await
        .map_err(|err| {
            if err.is_timeout() {
                timed_out(host)
            } else {
                unreachable(detail(err))
            }
        })?;
    let status = response.status();
    let mut body = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_ANSWER_BYTES {
                    return Err(unreachable(format!(
                        "its answer is over {MAX_ANSWER_BYTES} bytes."
                    )));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(err) if err.is_timeout() => return Err(timed_out(host)),
            Err(err) => return Err(unreachable(detail(err))),
        }
    }
    if status.is_success() {
        return serde_json::from_slice(&body)
            .map_err(|e| unreachable(format!("its answer is not JSON ({e}).")));
    }
    // The predictor's error envelope: its message, and its status for a refused query; its own
    // failures (5xx: a model that raised, no worker answering) are the gateway's 502.
    let message = serde_json::from_slice::<ErrorBody>(&body)
        .map(|e| e.message)
        .unwrap_or_else(|_| format!("it answered {status}."));
    Err(if status.is_client_error() {
        ApiError::invalid_request(format!("The predictor refused the query: {message}"))
            .with_status(status)
    } else {
        ApiError::new(
            ErrorName::ServiceDeploymentError,
            format!("The predictor failed: {message}"),
        )
        .with_status(StatusCode::BAD_GATEWAY)
    })
}

fn timed_out(host: &str) -> ApiError {
    ApiError::new(
        ErrorName::ServiceDeploymentError,
        format!(
            "The predictor at {host} did not answer within {} s.",
            TIMEOUT.as_secs()
        ),
    )
    .with_status(StatusCode::GATEWAY_TIMEOUT)
}

/// A client error's text with its causes (connection refused, ...), without the URL, which
/// the message names already.
fn detail(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text = format!("{text}: {cause}");
        source = cause.source();
    }
    format!("{text}.")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_box_sends_one_query_or_a_list() {
        assert_eq!(
            request("[1, 2]", false).unwrap(),
            PredictRequest::Query(json!([1, 2]))
        );
        assert_eq!(
            request("[[1], [2]]", true).unwrap(),
            PredictRequest::Queries(vec![json!([1]), json!([2])])
        );
        for (text, many) in [("{", false), ("[]", true), ("3", true)] {
            assert_eq!(
                request(text, many).unwrap_err().status(),
                StatusCode::BAD_REQUEST,
                "{text}"
            );
        }
        let huge = format!("\"{}\"", "x".repeat(MAX_QUERY_BYTES));
        assert_eq!(
            request(&huge, false).unwrap_err().status(),
            StatusCode::PAYLOAD_TOO_LARGE
        );
    }

    /// The box's request reaches the predictor under the console request's id.
    #[tokio::test]
    async fn the_request_id_goes_to_the_predictor() {
        use axum::http::HeaderMap;
        // A predictor that answers with the id it was sent.
        let app = axum::Router::new().route(
            "/predict",
            axum::routing::post(|headers: HeaderMap| async move {
                let id = headers
                    .get(&request_id::HEADER)
                    .map(|id| id.to_str().unwrap().to_owned());
                axum::Json(json!({ "prediction": id }))
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let host = listener.local_addr().unwrap().to_string();
        let server = tokio::spawn(async move { axum::serve(listener, app).await });
        let id = RequestId::generate();
        let answer = send(&host, &PredictRequest::Query(json!(1)), &id)
            .await
            .unwrap();
        assert_eq!(answer, json!({ "prediction": id.as_str() }));
        server.abort();
    }

    #[tokio::test]
    async fn a_predictor_that_is_down_is_a_bad_gateway() {
        // A port nothing listens on: bound, then let go.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let host = format!("127.0.0.1:{port}");
        let err = send(
            &host,
            &PredictRequest::Query(json!(1)),
            &RequestId::generate(),
        )
        .await
        .unwrap_err();
        assert_eq!(err.status(), StatusCode::BAD_GATEWAY);
        assert!(err.message().contains(&host), "{}", err.message());
    }
}
