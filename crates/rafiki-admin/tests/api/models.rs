//! Routes 7–11: model uploads as Rafiki's client sends them, the parse check, visibility of
//! PUBLIC and PRIVATE models across users, downloads, deletion and the role rules.

use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::forms::RafikiForm;
use crate::helpers::requests::{json_ok, keys};
use crate::helpers::{assert_error, fresh_database, spawn_app, spawn_app_on, TestApp};

const MODEL_SOURCE: &str = "\
from rafiki.model import BaseModel, FixedKnob

class TfFeedForward(BaseModel):
    '''A model: \u{e9}t\u{e9} \u{2713}'''

    @staticmethod
    def get_knob_config():
        return {'epochs': FixedKnob(3)}
";

/// `client.create_model(...)` of Rafiki's client: `data` then `files`, `dependencies` as
/// `json.dumps(dependencies)`, `docker_image=None` left out by requests.
fn rafiki_model(name: &str, source: &[u8], access_right: &str) -> RafikiForm {
    RafikiForm::new()
        .text("name", name)
        .text("task", "IMAGE_CLASSIFICATION")
        .text(
            "dependencies",
            r#"{"tensorflow": "1.12.0", "scikit-learn": "0.20.0"}"#,
        )
        .text("model_class", "TfFeedForward")
        .text("access_right", access_right)
        .file("model_file_bytes", source)
}

/// Uploads a model; returns its id.
async fn upload(app: &TestApp, token: &str, name: &str, access_right: &str) -> String {
    let res = app
        .post_form(
            "/models",
            token,
            rafiki_model(name, MODEL_SOURCE.as_bytes(), access_right),
        )
        .await;
    json_ok(res).await["id"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn a_model_sent_as_rafikis_client_sends_it_is_stored_byte_exact() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let dev_id = app.user_id("dev@example.com").await.to_string();
    let res = app
        .post_form(
            "/models",
            &dev,
            rafiki_model("TfFeedForward", MODEL_SOURCE.as_bytes(), "PRIVATE"),
        )
        .await;
    let created = json_ok(res).await;
    assert_eq!(keys(&created), ["id", "name", "user_id"]);
    assert_eq!(created["name"], "TfFeedForward");
    assert_eq!(created["user_id"], dev_id);
    let id = created["id"].as_str().unwrap();

    let model = json_ok(app.get(&format!("/models/{id}"), &dev).await).await;
    assert_eq!(
        keys(&model),
        [
            "access_right",
            "datetime_created",
            "dependencies",
            "dependency_pins",
            "docker_image",
            "id",
            "model_class",
            "name",
            "task",
            "user_id"
        ]
    );
    assert_eq!(model["model_class"], "TfFeedForward");
    assert_eq!(model["task"], "IMAGE_CLASSIFICATION");
    assert_eq!(model["access_right"], "PRIVATE");
    assert_eq!(model["docker_image"], "rafiki-rs/worker:latest");
    assert_eq!(
        model["dependency_pins"],
        Value::Null,
        "the deployment's setting"
    );
    assert_eq!(
        model["dependencies"],
        json!({"tensorflow": "1.12.0", "scikit-learn": "0.20.0"})
    );
    assert!(model["datetime_created"].as_str().unwrap().ends_with('Z'));

    let res = app.get(&format!("/models/{id}/model_file"), &dev).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()["content-type"], "application/octet-stream");
    assert_eq!(res.bytes().await.unwrap(), MODEL_SOURCE.as_bytes());

    let files = app.stored_files();
    assert_eq!(files.len(), 1);
    assert!(files[0].starts_with(app.data_dir.join("models")));
}

#[tokio::test]
async fn docker_image_and_dependencies_have_defaults_and_are_checked() {
    let allowed = [("allowed_images", json!("rafiki-rs/worker, registry.local/"))];
    let app = spawn_app_on(&fresh_database().await, &allowed).await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let base = |name: &str| {
        RafikiForm::new()
            .text("name", name)
            .text("task", "T")
            .text("model_class", "TfFeedForward")
            .file("model_file_bytes", MODEL_SOURCE.as_bytes())
    };
    for (name, form) in [
        ("absent", base("absent")),
        ("null", base("null").text("dependencies", "null")),
        ("empty", base("empty").text("dependencies", "{}")),
    ] {
        let id = json_ok(app.post_form("/models", &dev, form).await).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let model = json_ok(app.get(&format!("/models/{id}"), &dev).await).await;
        assert_eq!(model["dependencies"], json!({}), "{name}");
        assert_eq!(model["access_right"], "PRIVATE", "{name}");
    }
    let form = base("custom").text("docker_image", "registry.local/my-worker:2");
    let id = json_ok(app.post_form("/models", &dev, form).await).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let model = json_ok(app.get(&format!("/models/{id}"), &dev).await).await;
    assert_eq!(model["docker_image"], "registry.local/my-worker:2");

    for bad in [
        "{",
        "[\"tensorflow\"]",
        "\"tensorflow\"",
        "{\"tensorflow\": 1.12}",
        "{\"\": \"1\"}",
    ] {
        let res = app
            .post_form("/models", &dev, base("bad").text("dependencies", bad))
            .await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(message.contains("dependencies"), "{bad}: {message}");
    }
    let res = app
        .post_form("/models", &dev, base("bad").text("docker_image", "a b"))
        .await;
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    assert_eq!(app.count_rows("models").await, 4);
    assert_eq!(app.stored_files().len(), 4);
}

#[tokio::test]
async fn dependency_pins_is_stored_shown_and_anything_but_strict_or_nearest_is_refused() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    for pins in ["strict", "nearest"] {
        let form =
            rafiki_model(pins, MODEL_SOURCE.as_bytes(), "PRIVATE").text("dependency_pins", pins);
        let id = json_ok(app.post_form("/models", &dev, form).await).await["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let model = json_ok(app.get(&format!("/models/{id}"), &dev).await).await;
        assert_eq!(model["dependency_pins"], pins);
    }
    for bad in ["NEAREST", "closest", " "] {
        let form =
            rafiki_model("bad", MODEL_SOURCE.as_bytes(), "PRIVATE").text("dependency_pins", bad);
        let res = app.post_form("/models", &dev, form).await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(
            message.contains("dependency_pins") && message.contains("nearest"),
            "{bad}: {message}"
        );
    }
    assert_eq!(app.count_rows("models").await, 2);
    assert_eq!(app.stored_files().len(), 2, "refused uploads leave no file");
}

#[tokio::test]
async fn an_unknown_access_right_is_refused() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    for right in ["OWNER", "public"] {
        let res = app
            .post_form(
                "/models",
                &dev,
                rafiki_model("m", MODEL_SOURCE.as_bytes(), right),
            )
            .await;
        let message =
            assert_error(res, StatusCode::BAD_REQUEST, "InvalidModelAccessRightError").await;
        assert!(
            message.contains(right) && message.contains("PUBLIC"),
            "{message}"
        );
    }
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn model_files_are_parsed_and_bad_ones_refused_with_the_reason() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let syntax_error = "class TfFeedForward:\n    def f(self):\n        return = 1\n";
    let mut not_utf8 = b"class TfFeedForward:\n    name = '".to_vec();
    not_utf8.extend_from_slice(&[0xc3, 0x28, b'\'', b'\n']);
    let cases: [(&[u8], &[&str]); 6] = [
        (syntax_error.as_bytes(), &["syntax error", "line 3"]),
        (&not_utf8, &["UTF-8", "line 2"]),
        (
            b"class SomethingElse:\n    pass\ndef TfFeedForward(): pass\n",
            &["`TfFeedForward`", "class"],
        ),
        (
            b"def f():\n    class TfFeedForward: pass\n",
            &["`TfFeedForward`"],
        ),
        (b"", &["empty"]),
        // Newer than the workers' Python (3.11 here): it would only fail in every worker.
        (
            b"type Vector = list[float]\nclass TfFeedForward: pass\n",
            &["line 1", "Python 3.12", "the workers run Python 3.11"],
        ),
    ];
    for (source, words) in cases {
        let res = app
            .post_form("/models", &dev, rafiki_model("m", source, "PRIVATE"))
            .await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidModelError").await;
        for word in words {
            assert!(message.contains(word), "{word}: {message}");
        }
        app.assert_nothing_stored().await;
    }
}

#[tokio::test]
async fn model_files_are_never_run_on_the_admin() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let marker = std::env::temp_dir().join(format!("rafiki-ran-{}", uuid::Uuid::new_v4()));
    // Running this would create the marker file; importing it would fail.
    let source = format!(
        "open({:?}, 'w').write('ran')\nimport module_that_does_not_exist\n\n\
         class TfFeedForward:\n    pass\n",
        marker.display().to_string()
    );
    let res = app
        .post_form(
            "/models",
            &dev,
            rafiki_model("m", source.as_bytes(), "PRIVATE"),
        )
        .await;
    json_ok(res).await;
    assert!(!marker.exists(), "the model file was executed");
}

#[tokio::test]
async fn public_models_are_visible_to_everyone_private_ones_to_their_owner_and_admins() {
    let app = spawn_app().await;
    let alice = app.user("alice@example.com", "MODEL_DEVELOPER").await;
    let bob = app.user("bob@example.com", "MODEL_DEVELOPER").await;
    let carol = app.user("carol@example.com", "APP_DEVELOPER").await;
    let admin = app.user("admin@example.com", "ADMIN").await;
    let private = upload(&app, &alice, "alice-private", "PRIVATE").await;
    let public = upload(&app, &alice, "alice-public", "PUBLIC").await;
    let bobs = upload(&app, &bob, "bob-private", "PRIVATE").await;
    let other_task = RafikiForm::new()
        .text("name", "alice-pos")
        .text("task", "POS_TAGGING")
        .text("model_class", "TfFeedForward")
        .text("access_right", "PUBLIC")
        .file("model_file_bytes", MODEL_SOURCE.as_bytes());
    json_ok(app.post_form("/models", &alice, other_task).await).await;

    let names = |list: Value| -> Vec<String> {
        list.as_array()
            .unwrap()
            .iter()
            .map(|m| m["name"].as_str().unwrap().to_owned())
            .collect()
    };
    let path = "/models/available?task=IMAGE_CLASSIFICATION";
    assert_eq!(
        names(json_ok(app.get(path, &alice).await).await),
        ["alice-public", "alice-private"]
    );
    assert_eq!(
        names(json_ok(app.get(path, &bob).await).await),
        ["bob-private", "alice-public"]
    );
    assert_eq!(
        names(json_ok(app.get(path, &carol).await).await),
        ["alice-public"]
    );
    assert_eq!(
        names(json_ok(app.get("/models/available", &carol).await).await),
        ["alice-pos", "alice-public"]
    );
    let listed = json_ok(app.get(path, &carol).await).await;
    assert_eq!(
        keys(&listed[0]),
        [
            "access_right",
            "datetime_created",
            "dependencies",
            "id",
            "name",
            "task",
            "user_id"
        ]
    );
    assert_eq!(listed[0]["access_right"], "PUBLIC");

    // Reading one: own or PUBLIC, or any for admins; a hidden one looks missing.
    for token in [&bob, &carol] {
        json_ok(app.get(&format!("/models/{public}"), token).await).await;
        let res = app.get(&format!("/models/{private}"), token).await;
        assert_error(res, StatusCode::NOT_FOUND, "InvalidModelError").await;
    }
    json_ok(app.get(&format!("/models/{private}"), &admin).await).await;
    let res = app.get(&format!("/models/{bobs}"), &alice).await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidModelError").await;
    let res = app
        .get(&format!("/models/{}", uuid::Uuid::new_v4()), &alice)
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidModelError").await;
}

#[tokio::test]
async fn only_the_owner_or_an_admin_downloads_or_deletes_a_model() {
    let app = spawn_app().await;
    let alice = app.user("alice@example.com", "MODEL_DEVELOPER").await;
    let bob = app.user("bob@example.com", "MODEL_DEVELOPER").await;
    let carol = app.user("carol@example.com", "APP_DEVELOPER").await;
    let admin = app.user("admin@example.com", "ADMIN").await;
    let private = upload(&app, &alice, "alice-private", "PRIVATE").await;
    let public = upload(&app, &alice, "alice-public", "PUBLIC").await;

    // Bob sees the public model but may neither download nor delete it.
    let res = app.get(&format!("/models/{public}/model_file"), &bob).await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    let res = app.delete(&format!("/models/{public}"), &bob).await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    let res = app
        .get(&format!("/models/{private}/model_file"), &bob)
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidModelError").await;
    let res = app.delete(&format!("/models/{private}"), &bob).await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidModelError").await;
    // App developers may do neither, by role.
    let res = app
        .get(&format!("/models/{public}/model_file"), &carol)
        .await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    let res = app.delete(&format!("/models/{public}"), &carol).await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    // Admins may.
    let res = app
        .get(&format!("/models/{private}/model_file"), &admin)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.bytes().await.unwrap(), MODEL_SOURCE.as_bytes());
    let deleted = json_ok(app.delete(&format!("/models/{public}"), &admin).await).await;
    assert_eq!(deleted["id"], public);
    assert_eq!(keys(&deleted), ["id", "name", "user_id"]);
    // And the owner.
    let deleted = json_ok(app.delete(&format!("/models/{private}"), &alice).await).await;
    assert_eq!(deleted["name"], "alice-private");
    let res = app.get(&format!("/models/{private}"), &alice).await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidModelError").await;
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn only_admins_and_model_developers_create_models() {
    let app = spawn_app().await;
    let mut tokens = vec![("SUPERADMIN", app.superadmin().await)];
    for t in ["ADMIN", "MODEL_DEVELOPER", "APP_DEVELOPER"] {
        tokens.push((
            t,
            app.user(&format!("{t}@example.com").to_lowercase(), t)
                .await,
        ));
    }
    for (user_type, token) in &tokens {
        let res = app
            .post_form(
                "/models",
                token,
                rafiki_model(user_type, MODEL_SOURCE.as_bytes(), "PUBLIC"),
            )
            .await;
        if *user_type == "APP_DEVELOPER" {
            assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
        } else {
            json_ok(res).await;
        }
    }
    assert_eq!(app.count_rows("models").await, 3);
    assert_eq!(app.stored_files().len(), 3);
    // Everyone signed in may list the available ones.
    for (_, token) in &tokens {
        let listed = json_ok(app.get("/models/available", token).await).await;
        assert_eq!(listed.as_array().unwrap().len(), 3);
    }
}

#[tokio::test]
async fn model_names_are_unique_per_user() {
    let app = spawn_app().await;
    let alice = app.user("alice@example.com", "MODEL_DEVELOPER").await;
    let bob = app.user("bob@example.com", "MODEL_DEVELOPER").await;
    upload(&app, &alice, "same", "PRIVATE").await;
    let res = app
        .post_form(
            "/models",
            &alice,
            rafiki_model("same", MODEL_SOURCE.as_bytes(), "PUBLIC"),
        )
        .await;
    let message = assert_error(res, StatusCode::CONFLICT, "DuplicateModelNameError").await;
    assert!(message.contains("same"), "{message}");
    assert_eq!(app.count_rows("models").await, 1);
    assert_eq!(
        app.stored_files().len(),
        1,
        "the refused upload's file is gone"
    );
    upload(&app, &bob, "same", "PRIVATE").await;
}

#[tokio::test]
async fn missing_and_unknown_model_fields_are_named() {
    let app = spawn_app().await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let full = || {
        vec![
            ("name", "m"),
            ("task", "T"),
            ("model_class", "TfFeedForward"),
        ]
    };
    for missing in ["name", "task", "model_class"] {
        let mut form = RafikiForm::new();
        for (k, v) in full().into_iter().filter(|(k, _)| *k != missing) {
            form = form.text(k, v);
        }
        let form = form.file("model_file_bytes", MODEL_SOURCE.as_bytes());
        let res = app.post_form("/models", &dev, form).await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(message.contains(&format!("`{missing}`")), "{message}");
    }
    let mut form = RafikiForm::new();
    for (k, v) in full() {
        form = form.text(k, v);
    }
    let res = app.post_form("/models", &dev, form).await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    assert!(message.contains("`model_file_bytes`"), "{message}");
    let form = rafiki_model("m", MODEL_SOURCE.as_bytes(), "PRIVATE").text("model_file", "x");
    let res = app.post_form("/models", &dev, form).await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    assert!(message.contains("`model_file`"), "{message}");
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn oversized_model_files_are_refused() {
    let app = spawn_app_on(&fresh_database().await, &[("max_model_bytes", json!(1000))]).await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let big = format!("{MODEL_SOURCE}\n{}", "# padding\n".repeat(100));
    assert!(big.len() > 1000);
    let res = app
        .post_form(
            "/models",
            &dev,
            rafiki_model("m", big.as_bytes(), "PRIVATE"),
        )
        .await;
    let message = assert_error(res, StatusCode::PAYLOAD_TOO_LARGE, "PayloadTooLargeError").await;
    assert!(message.contains("RAFIKI_MAX_MODEL_BYTES"), "{message}");
    app.assert_nothing_stored().await;
    upload(&app, &dev, "small", "PRIVATE").await;
}

#[tokio::test]
async fn a_model_used_by_a_train_job_cannot_be_deleted() {
    let app = spawn_app().await;
    let alice = app.user("alice@example.com", "MODEL_DEVELOPER").await;
    let alice_id = app.user_id("alice@example.com").await;
    let model = uuid::Uuid::parse_str(&upload(&app, &alice, "used", "PRIVATE").await).unwrap();
    let form = RafikiForm::new()
        .text("name", "d")
        .text("task", "IMAGE_CLASSIFICATION")
        .file("dataset", b"data");
    let dataset = json_ok(app.post_form("/datasets", &alice, form).await).await["id"]
        .as_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .unwrap();
    let train_job = uuid::Uuid::new_v4();
    sqlx::query(
        "insert into train_jobs (id, user_id, app, app_version, task, budget, \
         train_dataset_id, val_dataset_id) values ($1, $2, 'app', 1, 'IMAGE_CLASSIFICATION', \
         '{}', $3, $3)",
    )
    .bind(train_job)
    .bind(alice_id)
    .bind(dataset)
    .execute(&app.pool)
    .await
    .unwrap();
    sqlx::query("insert into sub_train_jobs (id, train_job_id, model_id) values ($1, $2, $3)")
        .bind(uuid::Uuid::new_v4())
        .bind(train_job)
        .bind(model)
        .execute(&app.pool)
        .await
        .unwrap();
    let res = app.delete(&format!("/models/{model}"), &alice).await;
    let message = assert_error(res, StatusCode::CONFLICT, "ModelUsedError").await;
    assert!(message.contains("train job"), "{message}");
    json_ok(app.get(&format!("/models/{model}"), &alice).await).await;
    let res = app
        .get(&format!("/models/{model}/model_file"), &alice)
        .await;
    assert_eq!(res.bytes().await.unwrap(), MODEL_SOURCE.as_bytes());
}

#[tokio::test]
async fn the_openapi_document_lists_the_dataset_and_model_routes() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    let res = app.get("/openapi.json", &sa).await;
    assert_eq!(res.status(), StatusCode::OK);
    let doc: Value = res.json().await.unwrap();
    for (path, method) in [
        ("/datasets", "post"),
        ("/datasets", "get"),
        ("/datasets/{id}", "get"),
        ("/datasets/{id}", "delete"),
        ("/models", "post"),
        ("/models/available", "get"),
        ("/models/{id}", "get"),
        ("/models/{id}", "delete"),
        ("/models/{id}/model_file", "get"),
    ] {
        assert!(doc["paths"][path][method].is_object(), "{method} {path}");
    }
    assert!(
        doc["paths"]["/models"]["post"]["requestBody"]["content"]["multipart/form-data"]
            .is_object()
    );
    for schema in [
        "CreatedDataset",
        "Dataset",
        "ModelRef",
        "Model",
        "AvailableModel",
    ] {
        assert!(doc["components"]["schemas"][schema].is_object(), "{schema}");
    }
}
