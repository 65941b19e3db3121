//! The limits the server's checks enforce, stated as schema constraints. Each is read from the
//! constant or setting the check itself uses, so the document and the server cannot disagree
//! on a number; `scripts/fuzz-api.sh` checks them against the server both ways.
//!
//! Lengths are in characters (JSON Schema's `maxLength` counts code points), as the checks
//! count them. Patterns use only what both ECMAScript and Python regular expressions read the
//! same way.

use serde_json::{json, Map, Value};
use strum::VariantArray;

use rafiki_types::user::UserType;

use crate::config::Settings;
use crate::routes::train_jobs::{MAX_APP_CHARS, MAX_TRIALS_PAGE};
use crate::routes::users::{MAX_EMAIL_CHARS, MAX_PASSWORD_CHARS, MIN_PASSWORD_CHARS};
use crate::upload::MAX_NAME_CHARS;

/// Any text: the extractors refuse NUL, which Postgres cannot store (docs/security.md).
const NO_NUL: &str = "^[^\\u0000]*$";
/// Text with a character that is not white space (the checks trim before testing emptiness).
const NOT_BLANK: &str = "^[^\\u0000]*[^\\s\\u0000][^\\u0000]*$";
/// A form's name-like field: not blank, no control characters (`Form::require_short`).
const PRINTABLE_NOT_BLANK: &str = "^[^\\u0000-\\u001f\\u007f-\\u009f]*\
    [^\\s\\u0000-\\u001f\\u007f-\\u009f][^\\u0000-\\u001f\\u007f-\\u009f]*$";
/// A worker image reference: no white space, no control characters.
const IMAGE: &str = "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]+$";
/// A plausible email: one `@` between non-empty parts, no white space or control characters.
const EMAIL: &str =
    "^[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+@[^@\\s\\u0000-\\u001f\\u007f-\\u009f]+$";
/// An app name: not blank, no `/`.
const APP: &str = "^[^/\\u0000]*[^/\\s\\u0000][^/\\u0000]*$";

/// States the checks' limits in `doc`. Panics if the document lacks a schema or parameter
/// named here: the document is built from this crate's code, and a unit test builds it.
pub(super) fn declare_limits(doc: &mut Value, settings: &Settings) {
    refuse_nul_in_every_text(doc);

    let schemas = &mut doc["components"]["schemas"];
    let name = json!({"minLength": 1, "maxLength": MAX_NAME_CHARS, "pattern": PRINTABLE_NOT_BLANK});
    for (form, fields) in [
        ("CreateDatasetForm", &["name", "task"][..]),
        ("CreateModelForm", &["name", "task", "model_class"][..]),
    ] {
        for field in fields {
            constrain(property(schemas, form, field), &name);
        }
    }
    constrain(
        property(schemas, "CreateModelForm", "docker_image"),
        &json!({"maxLength": MAX_NAME_CHARS, "pattern": IMAGE}),
    );

    constrain(
        property(schemas, "CreateUserRequest", "email"),
        &json!({"maxLength": MAX_EMAIL_CHARS, "pattern": EMAIL}),
    );
    constrain(
        property(schemas, "CreateUserRequest", "password"),
        &json!({"minLength": MIN_PASSWORD_CHARS, "maxLength": MAX_PASSWORD_CHARS}),
    );
    let user_types: Vec<&'static str> = UserType::VARIANTS.iter().map(|t| t.into()).collect();
    constrain(
        property(schemas, "CreateUserRequest", "user_type"),
        &json!({"enum": user_types}),
    );

    let quotas = &settings.quotas;
    constrain(
        property(schemas, "CreateTrainJobRequest", "app"),
        &json!({"maxLength": MAX_APP_CHARS, "pattern": APP}),
    );
    constrain(
        property(schemas, "CreateTrainJobRequest", "task"),
        &json!({"pattern": NOT_BLANK}),
    );
    let mut time_hours = json!({"type": "number", "exclusiveMinimum": 0});
    if quotas.time_hours > 0.0 {
        time_hours["maximum"] = json!(quotas.time_hours);
    }
    let gpu_count = json!({"type": "integer", "minimum": 0});
    // A metric name as the budget takes it: not blank, at most 200 bytes (so 50 characters
    // of any script fit).
    let metric_name =
        json!({"type": "string", "minLength": 1, "maxLength": 50, "pattern": NOT_BLANK});
    let base = json!({
        "TIME_HOURS": time_hours,
        "MODEL_TRIAL_COUNT": {"oneOf": [
            {"type": "integer", "enum": [-1]},
            {"type": "integer", "minimum": 1},
        ]},
        "GPU_COUNT": gpu_count,
        "CPU_WORKERS_PER_MODEL": {"type": "integer", "minimum": 1, "maximum": u32::MAX},
    });
    let mut pruning = base.clone();
    pruning.as_object_mut().expect("an object").extend(
        json!({
            "PRUNER": {"type": "string", "enum": ["MEDIAN", "ASHA"]},
            "PRUNE_METRIC": metric_name,
            "PRUNE_MODE": {"type": "string", "enum": ["MAX", "MIN"]},
            "PRUNE_STEP_METRIC": metric_name,
            "PRUNE_MIN_STEP": {"type": "number", "exclusiveMinimum": 0, "maximum": 1e9},
            "PRUNE_REDUCTION_FACTOR": {"type": "integer", "minimum": 2, "maximum": 100},
            "PRUNE_WARMUP_TRIALS": {"type": "integer", "minimum": 1, "maximum": 10_000},
        })
        .as_object()
        .expect("an object")
        .clone(),
    );
    // Two shapes, so that the PRUNE_* options come only with PRUNER and PRUNER only with its
    // metric (utoipa's model keeps `oneOf`, not `dependentRequired`).
    *property(schemas, "CreateTrainJobRequest", "budget") = json!({
        "description": "Each optional: TIME_HOURS per model, MODEL_TRIAL_COUNT per model \
            (-1 for no limit), GPU_COUNT for the whole job, CPU_WORKERS_PER_MODEL train workers \
            sharing the trials of each model without GPUs (default 1); or all that with PRUNER \
            and PRUNE_METRIC, and optionally the other PRUNE_* options, for early stopping of \
            bad trials (docs/pruning.md).",
        "oneOf": [
            {"type": "object", "properties": base, "additionalProperties": false},
            {
                "type": "object",
                "properties": pruning,
                "required": ["PRUNER", "PRUNE_METRIC"],
                "additionalProperties": false,
            },
        ],
    });
    let mut model_ids = json!({"minItems": 1});
    if quotas.models_per_train_job > 0 {
        model_ids["maxItems"] = json!(quotas.models_per_train_job);
    }
    constrain(
        property(schemas, "CreateTrainJobRequest", "model_ids"),
        &model_ids,
    );
    *property(schemas, "CreateTrainJobRequest", "train_args") = json!({
        "type": ["object", "null"],
        "description": "Keyword arguments of the model's train(), or null.",
    });

    *property(schemas, "CreateInferenceJobRequest", "budget") = json!({
        "type": "object",
        "description": "GPU_COUNT, optional: GPUs for the whole job.",
        "properties": {"GPU_COUNT": gpu_count},
        "additionalProperties": false,
    });

    let max_page = settings.max_page_size;
    for (path, operation) in operations(doc) {
        let trials = path.ends_with("/trials");
        for parameter in operation
            .get_mut("parameters")
            .and_then(Value::as_array_mut)
            .into_iter()
            .flatten()
        {
            let limits = match parameter["name"].as_str() {
                Some("limit") if trials => json!({"minimum": 1, "maximum": MAX_TRIALS_PAGE}),
                Some("limit") => json!({"minimum": 1, "maximum": max_page}),
                Some("offset") => json!({"minimum": 0}),
                Some("max_count") => json!({"minimum": 1}),
                Some("type") => json!({"enum": ["best"]}),
                Some("user_id") => {
                    parameter["required"] = json!(true);
                    continue;
                }
                _ => continue,
            };
            constrain(&mut parameter["schema"], &limits);
        }
    }
}

/// Every operation of `doc`, with its path.
fn operations(doc: &mut Value) -> impl Iterator<Item = (String, &mut Map<String, Value>)> {
    doc["paths"]
        .as_object_mut()
        .into_iter()
        .flat_map(|paths| paths.iter_mut())
        .flat_map(|(path, item)| {
            item.as_object_mut()
                .into_iter()
                .flat_map(|item| item.values_mut())
                .filter_map(Value::as_object_mut)
                .map(move |operation| (path.clone(), operation))
        })
}

/// The schema of `field` in the component schema `schema`.
fn property<'a>(schemas: &'a mut Value, schema: &str, field: &str) -> &'a mut Value {
    let found = schemas
        .get_mut(schema)
        .and_then(|s| s.get_mut("properties"))
        .and_then(|p| p.get_mut(field));
    found.unwrap_or_else(|| panic!("the OpenAPI document has no property {schema}.{field}"))
}

/// Adds `limits` to a schema, or to the non-null branch of an optional one.
fn constrain(schema: &mut Value, limits: &Value) {
    let target = match schema.get_mut("oneOf").and_then(Value::as_array_mut) {
        Some(branches) => branches
            .iter_mut()
            .find(|b| b.get("type") != Some(&json!("null")))
            .expect("an optional schema has a non-null branch"),
        None => schema,
    };
    for (key, value) in limits.as_object().expect("limits are an object") {
        target[key] = value.clone();
    }
}

/// Gives every text schema of the document that has no pattern, format or enum of its own the
/// pattern [`NO_NUL`]: the extractors refuse NUL in any text, one rule for every field.
fn refuse_nul_in_every_text(value: &mut Value) {
    match value {
        Value::Object(object) => {
            let is_text = match object.get("type") {
                Some(Value::String(t)) => t == "string",
                Some(Value::Array(types)) => types.iter().any(|t| t == "string"),
                _ => false,
            };
            let free = !["pattern", "format", "enum", "const", "contentMediaType"]
                .iter()
                .any(|k| object.contains_key(*k));
            if is_text && free {
                object.insert("pattern".into(), NO_NUL.into());
            }
            object.values_mut().for_each(refuse_nul_in_every_text);
        }
        Value::Array(items) => items.iter_mut().for_each(refuse_nul_in_every_text),
        _ => {}
    }
}
