//! Text Postgres cannot store — a NUL character — is refused at the boundary: 400
//! `InvalidRequestError` on every route that takes text (JSON bodies, paths, query strings,
//! form fields, JSON inside a form field), before a query sees it, and nothing is stored. What
//! a model itself reports with NULs (log lines, errors) is kept, each NUL replaced by U+FFFD
//! by the worker.

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::forms::RafikiForm;
use crate::helpers::jobs::{dataset, start_job, wait_until_ended};
use crate::helpers::prerequisites::python_ready;
use crate::helpers::{assert_error, spawn_app};

const MODEL: &[u8] = b"class M:\n    pass\n";

async fn assert_refused(res: reqwest::Response, what: &str) {
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    assert!(message.contains("NUL"), "{what}: {message}");
}

#[tokio::test]
async fn a_nul_anywhere_in_a_requests_text_is_a_400_and_stores_nothing() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let data = dataset(&app, &dev, "ANY", b"x").await;
    let datasets_before = app.count_rows("datasets").await;
    let some = Uuid::new_v4();
    let job = |app_name: &str, train_args: Value| {
        json!({"app": app_name, "task": "ANY", "train_dataset_id": data,
               "val_dataset_id": data, "budget": {}, "model_ids": [some],
               "train_args": train_args})
    };

    let bodies: Vec<(Method, &str, Option<&str>, Value)> = vec![
        (
            Method::POST,
            "/tokens",
            None,
            json!({"email": "a\u{0}b", "password": "whatever"}),
        ),
        (
            Method::POST,
            "/users",
            Some(&sa),
            json!({"email": "n\u{0}@example.com", "password": "long-enough",
                   "user_type": "ADMIN"}),
        ),
        (
            Method::DELETE,
            "/users",
            Some(&sa),
            json!({"email": "a\u{0}b"}),
        ),
        (
            Method::POST,
            "/train_jobs",
            Some(&dev),
            job("a\u{0}", Value::Null),
        ),
        (
            Method::POST,
            "/train_jobs",
            Some(&dev),
            job("app", json!({"k": ["v", "w\u{0}"]})),
        ),
        (
            Method::POST,
            "/train_jobs",
            Some(&dev),
            job("app", json!({"k\u{0}": 1})),
        ),
        (
            Method::POST,
            "/inference_jobs",
            Some(&dev),
            json!({"app": "a\u{0}", "app_version": -1, "budget": {}}),
        ),
    ];
    for (method, path, token, body) in bodies {
        let what = format!("{method} {path} {body}");
        assert_refused(app.send(method, path, token, body).await, &what).await;
    }

    let urls = [
        (Method::GET, "/datasets?task=%00"),
        (Method::GET, "/models/available?task=%00"),
        (Method::GET, "/train_jobs?user_id=%00"),
        (Method::GET, "/inference_jobs?user_id=%00"),
        (Method::GET, "/train_jobs/a%00"),
        (Method::GET, "/train_jobs/a%00/1"),
        (Method::GET, "/train_jobs/a%00/1/trials"),
        (Method::GET, "/train_jobs/app/1/trials?type=%00"),
        (Method::POST, "/train_jobs/a%00/1/stop"),
        (Method::GET, "/inference_jobs/a%00"),
        (Method::GET, "/inference_jobs/a%00/1"),
        (Method::POST, "/inference_jobs/a%00/1/stop"),
    ];
    for (method, path) in urls {
        let what = format!("{method} {path}");
        assert_refused(app.send(method, path, Some(&dev), Value::Null).await, &what).await;
    }

    let dataset_form = RafikiForm::new()
        .text("name", "d\u{0}")
        .text("task", "ANY")
        .file("dataset", b"x");
    assert_refused(
        app.post_form("/datasets", &dev, dataset_form).await,
        "dataset name",
    )
    .await;
    let model_forms = [
        ("name", "m\u{0}", "M", "{}"),
        ("model_class", "m", "M\u{0}", "{}"),
        ("dependencies (a NUL byte)", "m", "M", "{\"a\": \"1\u{0}\"}"),
        (
            "dependencies (an escape)",
            "m",
            "M",
            r#"{"numpy\u0000": "1.0"}"#,
        ),
    ];
    for (what, name, class, dependencies) in model_forms {
        let form = RafikiForm::new()
            .text("name", name)
            .text("task", "ANY")
            .text("model_class", class)
            .text("dependencies", dependencies)
            .file("model_file_bytes", MODEL);
        assert_refused(app.post_form("/models", &dev, form).await, what).await;
    }

    assert_eq!(app.count_rows("datasets").await, datasets_before);
    for table in ["models", "train_jobs", "inference_jobs"] {
        assert_eq!(app.count_rows(table).await, 0, "{table}");
    }
    assert_eq!(
        app.count_rows("users").await,
        2,
        "the superadmin and dev only"
    );
}

#[tokio::test]
async fn an_escaped_backslash_before_u0000_is_text_not_a_nul() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let form = RafikiForm::new()
        .text("name", "m")
        .text("task", "ANY")
        .text("model_class", "M")
        .text("dependencies", r#"{"numpy": "\\u0000"}"#)
        .file("model_file_bytes", MODEL);
    let res = app.post_form("/models", &dev, form).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "{}",
        res.text().await.unwrap()
    );
    let listed = app
        .send(Method::GET, "/models/available", Some(&dev), Value::Null)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(listed[0]["dependencies"], json!({"numpy": "\\u0000"}));
}

/// A model whose log line and error hold NUL characters.
const NUL_MODEL: &str = r#"
from rafiki.model import BaseModel, FixedKnob, logger


class NulModel(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"k\x00": FixedKnob(1)}

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        logger.log("log\x00line")

    def evaluate(self, dataset_path):
        raise ValueError("bad\x00value")

    def predict(self, queries):
        return queries

    def dump_parameters(self):
        return {}

    def load_parameters(self, params):
        pass
"#;

#[tokio::test]
async fn a_models_own_nuls_reach_its_trial_as_replacement_characters() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"a", b"b"),
        &[("nul", "NulModel", NUL_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 1}),
        Value::Null,
    )
    .await;
    wait_until_ended(&app, &dev, &path, 120).await;
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trial = &trials[0];
    assert_eq!(trial["status"], "ERRORED", "{trial}");
    assert!(
        trial["error"]
            .as_str()
            .unwrap()
            .contains("bad\u{fffd}value"),
        "{trial}"
    );
    assert_eq!(trial["proposal"]["knobs"], json!({"k\u{fffd}": 1}));
    let logs = app
        .get_json(
            &format!("/trials/{}/logs", trial["id"].as_str().unwrap()),
            &dev,
        )
        .await;
    let messages: Vec<&str> = logs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    assert!(messages.contains(&"log\u{fffd}line"), "{messages:?}");
}
