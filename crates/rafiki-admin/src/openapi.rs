//! The OpenAPI document served at `/openapi.json` (and rendered at `/docs` by a Swagger UI
//! bundled into the binary, so neither the build nor the server needs the network). It is
//! generated from the handlers' annotations, so it cannot drift from the code.

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{datasets, health, inference_jobs, models, tokens, train_jobs, trials, users};

#[derive(OpenApi)]
#[openapi(
    info(title = "Rafiki-rs admin", description = "Rafiki's REST API: users, datasets, models, train and inference jobs."),
    paths(
        health::root,
        health::health,
        tokens::login,
        users::create_user,
        users::list_users,
        users::ban_user,
        datasets::create_dataset,
        datasets::list_datasets,
        datasets::get_dataset,
        datasets::delete_dataset,
        models::create_model,
        models::list_available_models,
        models::get_model,
        models::download_model_file,
        models::delete_model,
        train_jobs::create_train_job,
        train_jobs::list_train_jobs,
        train_jobs::list_train_jobs_of_app,
        train_jobs::get_train_job,
        train_jobs::stop_train_job,
        train_jobs::list_trials,
        trials::get_trial,
        trials::get_trial_logs,
        trials::get_trial_parameters,
        inference_jobs::create_inference_job,
        inference_jobs::list_inference_jobs,
        inference_jobs::list_inference_jobs_of_app,
        inference_jobs::get_running_inference_job,
        inference_jobs::stop_inference_job,
        train_jobs::stop_all_jobs,
    ),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Declares the `bearer` scheme the routes' `security` refers to.
struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// The admin's OpenAPI document.
pub fn api_doc() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
