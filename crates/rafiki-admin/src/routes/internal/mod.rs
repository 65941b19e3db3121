//! The internal API for services (`docs/internal-api.md`), split by caller: what train workers
//! call ([`train`]), what inference workers and predictors call ([`inference`]), the file
//! transfers of both ([`files`]) and the reports workers send ([`reports`]). Each handler's
//! signature names its callers with the service extractors of `crate::auth::service`; the
//! decisions are the orchestrator's (`crate::orchestrator::workers`).

pub mod files;
pub mod inference;
pub mod reports;
pub mod shared_params;
pub mod train;

use axum::extract::DefaultBodyLimit;
use axum::handler::Handler;
use axum::routing::{get, post, put};
use axum::Router;

use crate::state::AppState;

/// The internal API's routes.
pub fn router() -> Router<AppState> {
    Router::new()
        .route("/internal/train/job", get(train::train_job))
        .route("/internal/train/knob_config", put(train::knob_config))
        .route("/internal/train/trials", post(train::next_trial))
        .route("/internal/train/fail", post(train::train_failed))
        .route("/internal/trials/{id}/finish", post(train::finish_trial))
        .route(
            "/internal/train/parameters/{params_type}",
            get(shared_params::shared_parameters),
        )
        .route("/internal/models/{id}/file", get(files::model_file))
        .route("/internal/datasets/{id}", get(files::dataset_file))
        .route(
            "/internal/trials/{id}/parameters",
            // Parameters stream to disk under RAFIKI_MAX_PARAMS_BYTES.
            put(files::put_trial_parameters.layer(DefaultBodyLimit::disable()))
                .get(files::get_trial_parameters),
        )
        .route("/internal/trials/{id}/logs", post(reports::trial_logs))
        .route("/internal/environment", post(reports::environment_report))
        .route("/internal/inference/job", get(inference::inference_job))
        .route("/internal/inference/ready", post(inference::worker_ready))
        .route("/internal/inference/fail", post(inference::worker_failed))
        .route("/internal/predictor/job", get(inference::predictor_job))
}
