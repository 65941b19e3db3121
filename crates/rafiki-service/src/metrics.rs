//! What the admin's and the predictor's `/metrics` share (docs/observability.md, "Metrics"):
//! the answer of a scrape, the bounded label values of HTTP requests, and the buckets of
//! their latency histograms. Each server keeps its own `prometheus_client` registry and its
//! own metric names; this module holds no metric.

use std::collections::HashSet;
use std::sync::RwLock;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;

/// The content type of what `prometheus_client`'s text encoder writes: the OpenMetrics text
/// format (counters declared without their `_total` suffix, a closing `# EOF`), which
/// Prometheus asks for first (its `Accept` header) and parses as such only when the answer
/// says so.
pub const CONTENT_TYPE_OPENMETRICS: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

/// The content type of the classic Prometheus text format, for clients that do not ask for
/// OpenMetrics (`curl`, `promtool check metrics`, a Prometheus whose `scrape_protocols` names
/// only `PrometheusText0.0.4`).
pub const CONTENT_TYPE_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Request latency buckets, in seconds: Prometheus' defaults, from 5 ms to 10 s.
pub const REQUEST_SECONDS_BUCKETS: [f64; 11] = [
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// The answer to a scrape: `registry` in the OpenMetrics text format when the client's
/// `accept` names it, else in the classic text format, as Prometheus' own client libraries
/// negotiate.
pub fn scrape(registry: &Registry, accept: Option<&HeaderValue>) -> Response {
    let mut text = String::with_capacity(16 << 10);
    if let Err(err) = prometheus_client::encoding::text::encode(&mut text, registry) {
        // Writing to a String fails only if a metric's encoder does, a bug.
        tracing::error!(error = %err, "cannot encode the metrics");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let openmetrics = accept
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains("application/openmetrics-text"));
    let (content_type, text) = if openmetrics {
        (CONTENT_TYPE_OPENMETRICS, text)
    } else {
        (CONTENT_TYPE_TEXT, classic(&text))
    };
    (
        [(CONTENT_TYPE, HeaderValue::from_static(content_type))],
        text,
    )
        .into_response()
}

/// The classic text format of the OpenMetrics `text` that `prometheus_client` writes. The
/// samples are the same; only the metadata differ: a counter's `# HELP` and `# TYPE` name it
/// with its `_total` (which its samples have in both formats), and there is no `# UNIT` and
/// no `# EOF`. The metrics here are counters, gauges and histograms, written alike otherwise.
fn classic(text: &str) -> String {
    let counters: HashSet<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(text.len() + 8 * counters.len());
    for line in text.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].iter().find_map(|prefix| {
            let rest = line.strip_prefix(prefix)?;
            let (name, tail) = rest.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {tail}"))
        });
        match renamed {
            Some(line) => out.push_str(&line),
            None => out.push_str(line),
        }
        out.push('\n');
    }
    out
}

/// A request's method as a label value: the standard methods by name, anything else (hyper
/// accepts any token as a method, a client may send thousands) as `OTHER`.
pub fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::HEAD => "HEAD",
        Method::OPTIONS => "OPTIONS",
        _ => "OTHER",
    }
}

/// The label value of requests that matched no route.
pub const UNMATCHED_ROUTE: &str = "unmatched";

/// Route templates (axum's `MatchedPath`, such as `/datasets/{id}`) as `&'static str`, so
/// that counting a request allocates nothing: each template is copied and leaked once, the
/// first time a request matches it. Only the router's own templates ever come here (a path
/// that matched no route has no `MatchedPath`), so what is leaked is bounded by the router.
#[derive(Debug, Default)]
pub struct RouteNames {
    known: RwLock<HashSet<&'static str>>,
}

impl RouteNames {
    /// The interned `template`.
    pub fn intern(&self, template: &str) -> &'static str {
        let known = self.known.read().unwrap_or_else(|p| p.into_inner());
        if let Some(name) = known.get(template) {
            return name;
        }
        drop(known);
        let mut known = self.known.write().unwrap_or_else(|p| p.into_inner());
        if let Some(name) = known.get(template) {
            return name;
        }
        let name: &'static str = Box::leak(template.to_owned().into_boxed_str());
        known.insert(name);
        name
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_template_is_interned_once() {
        let names = RouteNames::default();
        let first = names.intern("/datasets/{id}");
        let again = names.intern(&String::from("/datasets/{id}"));
        assert!(std::ptr::eq(first, again));
        assert_eq!(names.known.read().unwrap().len(), 1);
    }

    #[test]
    fn the_classic_format_names_counters_with_their_total() {
        let openmetrics = "# HELP a_requests Requests.\n# TYPE a_requests counter\n\
                           a_requests_total{route=\"/x\"} 1\n# HELP b Things.\n# TYPE b gauge\n\
                           b 2\n# EOF\n";
        assert_eq!(
            classic(openmetrics),
            "# HELP a_requests_total Requests.\n# TYPE a_requests_total counter\n\
             a_requests_total{route=\"/x\"} 1\n# HELP b Things.\n# TYPE b gauge\nb 2\n"
        );
    }

    #[test]
    fn unknown_methods_share_one_label() {
        assert_eq!(method_label(&Method::GET), "GET");
        let odd = Method::from_bytes(b"BREW").unwrap();
        assert_eq!(method_label(&odd), "OTHER");
    }
}
