//! The OpenAPI document served at `/openapi.json` (and rendered at `/docs` by a Swagger UI
//! bundled into the binary, so neither the build nor the server needs the network). It is
//! generated from the handlers' annotations, so it cannot drift from the code; two passes then
//! add what the handlers share rather than declare one by one:
//!
//! - [`errors`]: the statuses that come from shared machinery (the token check, the
//!   extractors, body limits, the database pool) on every operation they apply to;
//! - [`constraints`]: the limits the checks enforce (lengths, enums, ranges, patterns), read
//!   from the same constants and settings the checks use.
//!
//! The CI fuzz run (`scripts/fuzz-api.sh`) holds the server to this document both ways: no
//! schema-valid request may be refused as malformed, no schema-invalid one accepted.

mod constraints;
mod errors;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::config::Settings;
use crate::routes::{
    audit, datasets, health, inference_jobs, models, tokens, train_jobs, trials, users,
};

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
        audit::list_audit_events,
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

/// The admin's OpenAPI document, with the limits of these `settings`.
pub fn api_doc(settings: &Settings) -> utoipa::openapi::OpenApi {
    serde_json::from_value(document(settings)).expect("the passes keep it an OpenAPI document")
}

/// The document as JSON, after the passes. utoipa's types drop what they do not model, so the
/// passes must write only what they keep (a test compares).
fn document(settings: &Settings) -> serde_json::Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).expect("the document is JSON");
    errors::declare_shared_errors(&mut doc);
    constraints::declare_limits(&mut doc, settings);
    doc
}

#[cfg(test)]
mod tests {
    use super::*;

    fn doc() -> serde_json::Value {
        document(&Settings::dev_defaults())
    }

    #[test]
    fn nothing_the_passes_write_is_lost_on_the_way_to_the_served_document() {
        let served = serde_json::to_value(api_doc(&Settings::dev_defaults())).unwrap();
        assert_eq!(first_difference(&served, &doc(), String::new()), None);
    }

    /// Where two JSON values first differ, as a JSON pointer.
    fn first_difference(
        a: &serde_json::Value,
        b: &serde_json::Value,
        at: String,
    ) -> Option<String> {
        use serde_json::Value;
        match (a, b) {
            (Value::Object(a), Value::Object(b)) => {
                let keys = a.keys().chain(b.keys());
                keys.filter_map(|k| match (a.get(k), b.get(k)) {
                    (Some(x), Some(y)) => first_difference(x, y, format!("{at}/{k}")),
                    _ => Some(format!("{at}/{k} (only on one side)")),
                })
                .next()
            }
            (Value::Array(a), Value::Array(b)) if a.len() == b.len() => a
                .iter()
                .zip(b)
                .enumerate()
                .find_map(|(i, (x, y))| first_difference(x, y, format!("{at}/{i}"))),
            (Value::Number(x), Value::Number(y)) if x.as_f64() == y.as_f64() => None,
            _ => (a != b).then(|| format!("{at}: {a} != {b}")),
        }
    }

    #[test]
    fn parameters_are_where_the_path_says() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap();
                    let in_path = path.contains(&format!("{{{name}}}"));
                    let expected = if in_path { "path" } else { "query" };
                    assert_eq!(p["in"], expected, "{method} {path} {name}");
                }
            }
        }
    }

    #[test]
    fn every_operation_documents_the_shared_errors_with_the_envelope() {
        let doc = doc();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                let responses = op["responses"].as_object().unwrap();
                let secured = op.get("security").is_some();
                let reads = op.get("requestBody").is_some() || op.get("parameters").is_some();
                for (status, applies) in [
                    ("401", secured),
                    ("400", reads),
                    ("413", op.get("requestBody").is_some()),
                    ("503", path != "/"),
                ] {
                    // POST /tokens has a 401 of its own (a wrong password).
                    if applies || status != "401" {
                        assert_eq!(
                            responses.contains_key(status),
                            applies,
                            "{method} {path} {status}"
                        );
                    }
                }
                for (status, response) in responses {
                    assert!(response["description"]
                        .as_str()
                        .is_some_and(|d| !d.is_empty()));
                    if status.starts_with('4') || (status == "503" && path != "/health") {
                        assert_eq!(
                            response["content"]["application/json"]["schema"]["$ref"],
                            "#/components/schemas/ErrorBody",
                            "{method} {path} {status}"
                        );
                    }
                }
                if path != "/health" && responses.contains_key("503") {
                    assert!(responses["503"]["headers"].get("Retry-After").is_some());
                }
            }
        }
    }

    #[test]
    fn the_checks_limits_are_schema_constraints() {
        let doc = doc();
        let user = &doc["components"]["schemas"]["CreateUserRequest"]["properties"];
        assert_eq!(user["password"]["minLength"], 8);
        assert_eq!(
            user["user_type"]["enum"],
            serde_json::json!(["SUPERADMIN", "ADMIN", "MODEL_DEVELOPER", "APP_DEVELOPER"])
        );
        let job = &doc["components"]["schemas"]["CreateTrainJobRequest"]["properties"];
        assert_eq!(job["app"]["maxLength"], 128);
        assert_eq!(job["model_ids"]["minItems"], 1);
        let trials = &doc["components"]["schemas"]["CreateTrainJobRequest"]["properties"]["budget"]
            ["oneOf"][0]["properties"]["MODEL_TRIAL_COUNT"]["oneOf"];
        assert_eq!(trials[0]["enum"], serde_json::json!([-1]));
        let form = &doc["components"]["schemas"]["CreateModelForm"]["properties"];
        assert_eq!(form["name"]["maxLength"], 255);
        let users = &doc["paths"]["/users"]["get"]["parameters"];
        let limit = users
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "limit")
            .unwrap();
        assert_eq!(limit["schema"]["maximum"], 1000);
        // Every text field refuses NUL, as the extractors do.
        let login = &doc["components"]["schemas"]["LoginRequest"]["properties"];
        assert_eq!(login["email"]["pattern"], "^[^\\u0000]*$");
        // The pruning options only together with PRUNER (docs/pruning.md).
        let budget = &doc["components"]["schemas"]["CreateTrainJobRequest"]["properties"]["budget"];
        assert!(budget["oneOf"][0]["properties"].get("PRUNER").is_none());
        let pruning = &budget["oneOf"][1];
        assert_eq!(
            pruning["properties"]["PRUNER"]["enum"],
            serde_json::json!(["MEDIAN", "ASHA"])
        );
        assert_eq!(
            pruning["required"],
            serde_json::json!(["PRUNER", "PRUNE_METRIC"])
        );
    }

    #[test]
    fn every_schema_reference_resolves() {
        fn refs(value: &serde_json::Value, found: &mut Vec<String>) {
            match value {
                serde_json::Value::Object(map) => {
                    if let Some(serde_json::Value::String(r)) = map.get("$ref") {
                        found.push(r.clone());
                    }
                    map.values().for_each(|v| refs(v, found));
                }
                serde_json::Value::Array(items) => items.iter().for_each(|v| refs(v, found)),
                _ => {}
            }
        }
        let doc = doc();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").expect("a schema");
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} dangles"
            );
        }
    }
}
