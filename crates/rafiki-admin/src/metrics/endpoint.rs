//! `GET /metrics` (the admin's metrics, in the OpenMetrics or the classic text format, as the
//! client asks) and `GET /metrics/targets`
//! (a Prometheus HTTP service discovery document of the running inference jobs' predictors).
//! Neither takes a token: they are for Prometheus, and carry counts, route templates, statuses,
//! node names and (the targets) predictors' addresses with their apps' names and versions,
//! nothing a user could not see of their own jobs but the deployment's totals. An operator who
//! would not show those with the API sets `RAFIKI_METRICS_ADDR`: they are then served there
//! only, by a listener of their own ([`router`] on `crate::startup`'s second server), and the
//! API port answers them 404.

use axum::extract::State;
use axum::http::header::ACCEPT;
use axum::http::HeaderMap;
use axum::response::Response;
use axum::routing::get;
use axum::{Json, Router};
use serde::Serialize;

use crate::error::ApiResult;
use crate::routes::inference_jobs::predictor_address_for_admin;
use crate::state::AppState;

/// The two routes, to merge into a router over `AppState`.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/metrics/targets", get(targets))
}

/// The metrics server of `RAFIKI_METRICS_ADDR`: [`routes`] and nothing else (unknown paths
/// answer the API's 404 envelope).
pub fn router(state: AppState) -> Router {
    routes()
        .fallback(crate::routes::not_found)
        .with_state(state)
}

/// `GET /metrics`: the gauges are read from the database now, then everything is encoded.
/// Scrapes are serialised, so that two at once do not interleave their reads of the gauges.
async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let metrics = &state.metrics;
    let _one_at_a_time = metrics.scraping.lock().await;
    metrics.scraped.refresh(&state).await;
    rafiki_service::metrics::scrape(&metrics.registry, headers.get(ACCEPT))
}

/// One group of targets of Prometheus' `http_sd_configs`.
#[derive(Debug, Serialize)]
struct TargetGroup {
    targets: Vec<String>,
    labels: TargetLabels,
}

/// The labels Prometheus gives a predictor's series: its app and version. These are target
/// labels, set by the operator's Prometheus on what it scrapes from the predictor; the
/// predictor's own metrics carry no names or ids.
#[derive(Debug, Serialize)]
struct TargetLabels {
    rafiki_app: String,
    rafiki_app_version: String,
}

/// `GET /metrics/targets`: every running inference job's predictor, as the admin reaches it
/// (`RAFIKI_PREDICTOR_REACH_HOST`), one group each.
async fn targets(State(state): State<AppState>) -> ApiResult<Json<Vec<TargetGroup>>> {
    let mut groups = Vec::new();
    for job in rafiki_store::inference_jobs::list_live(&state.pool).await? {
        let address = predictor_address_for_admin(&state, job.job.id).await?;
        groups.push(TargetGroup {
            targets: vec![address],
            labels: TargetLabels {
                rafiki_app: job.job.app,
                rafiki_app_version: job.job.app_version.to_string(),
            },
        });
    }
    Ok(Json(groups))
}
