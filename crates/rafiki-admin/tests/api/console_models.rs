//! The console's models and users screens, the superadmin's stop-everything and the datasets
//! screen's URL form, through HTTP as a browser without JavaScript uses them: each acts through
//! the API's code, so its refusals (roles, ownership, bad input, the defences of `dataset_url`)
//! are the API's messages and statuses, and change nothing.

use axum::routing::get;
use axum::Router;
use reqwest::header::CONTENT_DISPOSITION;
use reqwest::StatusCode;
use serde_json::{json, Value};

use crate::helpers::console_browser::{
    assert_forged, assert_page, csrf_form, csrf_of, location, Browser,
};
use crate::helpers::forms::RafikiForm;
use crate::helpers::jobs::{model, start_slow_job, wait_until_ended};
use crate::helpers::models::TRIVIAL_MODEL;
use crate::helpers::prerequisites::python_ready;
use crate::helpers::servers::{allow_mirror, serve, MIRROR_IP};
use crate::helpers::{
    fresh_database, spawn_app, spawn_app_on, TestApp, SUPERADMIN_PASSWORD, USER_PASSWORD,
};

/// The console's model upload form, as a browser sends it (the token first).
fn model_form(csrf: Option<&str>, name: &str, dependencies: &str) -> RafikiForm {
    csrf_form(csrf)
        .text("name", name)
        .text("task", "TABULAR_CLASSIFICATION")
        .named_file("model_file_bytes", "trivial.py", TRIVIAL_MODEL.as_bytes())
        .text("model_class", "Trivial")
        .text("dependencies", dependencies)
        .text("access_right", "PRIVATE")
        .text("docker_image", "")
        .text("dependency_pins", "")
}

/// The models the API lists for this token.
async fn available(app: &TestApp, token: &str) -> Vec<Value> {
    app.get_json("/models/available", token)
        .await
        .as_array()
        .unwrap()
        .clone()
}

/// A user of `user_type` and a logged-in browser of theirs: (token, browser).
async fn user_with_browser<'a>(
    app: &'a TestApp,
    email: &str,
    user_type: &str,
) -> (String, Browser<'a>) {
    let token = app.user(email, user_type).await;
    (token, Browser::logged_in(app, email, USER_PASSWORD).await)
}

#[tokio::test]
async fn a_model_is_uploaded_listed_shown_downloaded_and_deleted_through_the_console() {
    let app = spawn_app().await;
    let (token, mut browser) = user_with_browser(&app, "dev@rafiki", "MODEL_DEVELOPER").await;
    let html = browser.page("/console/models").await;
    for markup in [
        "id=\"model-upload\"",
        "data-progress",
        "class=\"upload-progress\"",
        "No models yet.",
        "href=\"/console/models\"",
    ] {
        assert!(html.contains(markup), "{markup} in {html}");
    }
    assert!(
        !html.contains("href=\"/console/users\""),
        "no users link for a developer"
    );

    let res = browser
        .post_multipart(
            "/console/models",
            model_form(Some(&csrf_of(&html)), "trivial", r#"{"numpy": "1.26"}"#),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/models?done=uploaded");
    let html = browser.page(location(&res)).await;
    assert!(html.contains("The model was uploaded."), "{html}");
    for cell in ["trivial", "TABULAR_CLASSIFICATION", "PRIVATE", "numpy 1.26"] {
        assert!(html.contains(cell), "{cell} in {html}");
    }
    // Exactly what the API lists.
    let listed = available(&app, &token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["dependencies"], json!({"numpy": "1.26"}));
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert!(html.contains(&format!("href=\"/console/models/{id}\"")));

    let detail = browser.page(&format!("/console/models/{id}")).await;
    let api = app.get_json(&format!("/models/{id}"), &token).await;
    for field in [
        "Trivial",
        "you",
        "PRIVATE",
        "numpy 1.26",
        "Download the model file",
    ] {
        assert!(detail.contains(field), "{field} in {detail}");
    }
    assert_eq!(api["model_class"], "Trivial");

    let res = browser.get(&format!("/console/models/{id}/file")).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        res.headers()[CONTENT_DISPOSITION],
        "attachment; filename=\"trivial.py\""
    );
    assert_eq!(res.bytes().await.unwrap(), TRIVIAL_MODEL.as_bytes());

    // Without the token nothing is deleted.
    let res = browser
        .post(&format!("/console/models/{id}/delete"), &[])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.count_rows("models").await, 1);

    let res = browser
        .post(
            &format!("/console/models/{id}/delete"),
            &[("csrf", &csrf_of(&detail))],
        )
        .await;
    assert_eq!(location(&res), "/console/models?done=deleted");
    assert!(browser
        .page(location(&res))
        .await
        .contains("The model was deleted."));
    app.assert_nothing_stored().await;
    let res = browser.get(&format!("/console/models/{id}")).await;
    assert_page(res, StatusCode::NOT_FOUND, "No model with id").await;
}

#[tokio::test]
async fn a_refused_upload_shows_the_apis_message_and_stores_nothing() {
    let app = spawn_app().await;
    let (_, mut browser) = user_with_browser(&app, "dev@rafiki", "MODEL_DEVELOPER").await;
    let csrf = csrf_of(&browser.page("/console/models").await);
    for dependencies in ["{numpy", r#"{"numpy": 1.26}"#, "[1]"] {
        let res = browser
            .post_multipart(
                "/console/models",
                model_form(Some(&csrf), "m", dependencies),
            )
            .await;
        assert_page(
            res,
            StatusCode::BAD_REQUEST,
            "The form field `dependencies` must be JSON text of",
        )
        .await;
    }
    // The API's form reader: fields it does not know are refused by name.
    let form = model_form(Some(&csrf), "m", "").text("unexpected", "x");
    let res = browser.post_multipart("/console/models", form).await;
    assert_page(
        res,
        StatusCode::BAD_REQUEST,
        "Unknown form field `unexpected`",
    )
    .await;
    // Without the token: refused before anything is stored.
    let res = browser
        .post_multipart("/console/models", model_form(None, "m", "{}"))
        .await;
    assert_forged(res).await;
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn another_user_cannot_see_download_or_delete_a_private_model() {
    let app = spawn_app().await;
    let owner = app.user("owner@rafiki", "MODEL_DEVELOPER").await;
    let private = model(
        &app,
        &owner,
        "mine",
        "T",
        "Trivial",
        TRIVIAL_MODEL,
        "PRIVATE",
    )
    .await;
    let public = model(
        &app,
        &owner,
        "shared",
        "T",
        "Trivial",
        TRIVIAL_MODEL,
        "PUBLIC",
    )
    .await;
    let (_, mut other) = user_with_browser(&app, "other@rafiki", "MODEL_DEVELOPER").await;

    let html = other.page("/console/models").await;
    assert!(html.contains("shared") && !html.contains("mine"), "{html}");
    let csrf = csrf_of(&html);
    let res = other.get(&format!("/console/models/{private}")).await;
    assert_page(res, StatusCode::NOT_FOUND, "No model with id").await;
    let res = other.get(&format!("/console/models/{private}/file")).await;
    assert_page(res, StatusCode::NOT_FOUND, "No model with id").await;
    let res = other
        .post(
            &format!("/console/models/{private}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_page(res, StatusCode::NOT_FOUND, "No model with id").await;

    // A public model can be seen, not downloaded nor deleted: the API's 403.
    let detail = other.page(&format!("/console/models/{public}")).await;
    assert!(detail.contains("owner@rafiki"), "{detail}");
    assert!(!detail.contains("Download the model file"), "{detail}");
    let res = other.get(&format!("/console/models/{public}/file")).await;
    assert_page(
        res,
        StatusCode::FORBIDDEN,
        "Only the model's owner or an admin may download its file.",
    )
    .await;
    let res = other
        .post(
            &format!("/console/models/{public}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_page(
        res,
        StatusCode::FORBIDDEN,
        "Only the model's owner or an admin may delete it.",
    )
    .await;
    assert_eq!(app.count_rows("models").await, 2);

    // Admins see and may act on any model, as through the API.
    let mut admin = Browser::logged_in(&app, "superadmin@rafiki", SUPERADMIN_PASSWORD).await;
    let detail = admin.page(&format!("/console/models/{private}")).await;
    assert!(detail.contains("owner@rafiki"), "{detail}");
    let res = admin.get(&format!("/console/models/{private}/file")).await;
    assert_eq!(res.status(), StatusCode::OK);
}

#[tokio::test]
async fn app_developers_get_no_upload_form_and_a_forged_upload_is_refused_by_the_apis_role_check() {
    let app = spawn_app().await;
    let (_, mut browser) = user_with_browser(&app, "app@rafiki", "APP_DEVELOPER").await;
    let html = browser.page("/console/models").await;
    assert!(!html.contains("model-upload"), "{html}");
    assert!(html.contains("Only model developers and admins upload models"));
    let res = browser
        .post_multipart(
            "/console/models",
            model_form(Some(&csrf_of(&html)), "m", "{}"),
        )
        .await;
    assert_page(
        res,
        StatusCode::FORBIDDEN,
        "Only admins and model developers may do this; you are APP_DEVELOPER.",
    )
    .await;
    app.assert_nothing_stored().await;
}

#[tokio::test]
async fn a_hostile_model_name_is_shown_as_text() {
    let app = spawn_app().await;
    let (token, mut browser) = user_with_browser(&app, "dev@rafiki", "MODEL_DEVELOPER").await;
    let hostile = "<script>alert(1)</script>\"'";
    let id = model(
        &app,
        &token,
        hostile,
        hostile,
        "Trivial",
        TRIVIAL_MODEL,
        "PUBLIC",
    )
    .await;
    for path in [
        "/console/models".to_owned(),
        format!("/console/models/{id}"),
    ] {
        let html = browser.page(&path).await;
        assert!(!html.contains("<script>alert(1)"), "{path}: {html}");
        assert!(
            html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
            "{path}: {html}"
        );
    }
    let res = browser.get(&format!("/console/models/{id}/file")).await;
    assert_eq!(
        res.headers()[CONTENT_DISPOSITION],
        "attachment; filename=\"_script_alert_1___script___.py\""
    );
}

/// The users the API lists, by email: (type, banned).
async fn api_users(app: &TestApp, token: &str) -> Vec<(String, String, bool)> {
    let users = app.get_json("/users", token).await;
    users
        .as_array()
        .unwrap()
        .iter()
        .map(|u| {
            (
                u["email"].as_str().unwrap().to_owned(),
                u["user_type"].as_str().unwrap().to_owned(),
                !u["banned_date"].is_null(),
            )
        })
        .collect()
}

#[tokio::test]
async fn admins_create_and_ban_users_under_the_apis_rules() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    let (_, mut admin) = user_with_browser(&app, "admin@rafiki", "ADMIN").await;
    let html = admin.page("/console/users").await;
    assert!(
        html.contains("href=\"/console/users\""),
        "nav link for admins"
    );
    assert!(html.contains("superadmin@rafiki") && html.contains("admin@rafiki (you)"));
    // An admin is offered the types they may create, and no stop-everything.
    assert!(html.contains("<option value=\"APP_DEVELOPER\""), "{html}");
    assert!(!html.contains("<option value=\"ADMIN\""), "{html}");
    assert!(!html.contains("stop-all"), "{html}");
    let csrf = csrf_of(&html);

    let create = |email: &'static str, user_type: &'static str, password: &'static str| {
        [
            ("csrf", csrf.clone()),
            ("email", email.to_owned()),
            ("password", password.to_owned()),
            ("user_type", user_type.to_owned()),
        ]
    };
    let post = async |browser: &mut Browser<'_>, path: &str, fields: &[(&str, String)]| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        browser.post(path, &fields).await
    };

    let res = post(
        &mut admin,
        "/console/users",
        &create("new@rafiki", "MODEL_DEVELOPER", "a-good-password"),
    )
    .await;
    assert_eq!(location(&res), "/console/users?done=created");
    let html = admin.page(location(&res)).await;
    assert!(html.contains("The user was created.") && html.contains("new@rafiki"));

    // Refusals: the API's messages and statuses, and nobody is created.
    let before = api_users(&app, &sa).await;
    for (fields, status, message) in [
        (
            create("boss@rafiki", "ADMIN", "a-good-password"),
            StatusCode::FORBIDDEN,
            "Only the superadmin may create ADMIN users.",
        ),
        (
            create("short@rafiki", "APP_DEVELOPER", "short"),
            StatusCode::BAD_REQUEST,
            "`password` must be at least 8 characters",
        ),
        (
            create("new@rafiki", "APP_DEVELOPER", "a-good-password"),
            StatusCode::CONFLICT,
            "A user with email `new@rafiki` already exists.",
        ),
        (
            create("odd@rafiki", "WIZARD", "a-good-password"),
            StatusCode::BAD_REQUEST,
            "Unknown user type `WIZARD`",
        ),
    ] {
        let res = post(&mut admin, "/console/users", &fields).await;
        assert_page(res, status, message).await;
    }
    let without_token = create("sneaky@rafiki", "APP_DEVELOPER", "a-good-password");
    let res = post(&mut admin, "/console/users", &without_token[1..]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(api_users(&app, &sa).await, before);

    // Bans: not oneself, not a superadmin; a developer is banned for good.
    let ban = |email: &str| [("csrf", csrf.clone()), ("email", email.to_owned())];
    for (email, message) in [
        ("admin@rafiki", "You cannot ban yourself."),
        (
            "superadmin@rafiki",
            "Only the superadmin may ban SUPERADMIN users.",
        ),
        ("nobody@rafiki", "No user has email `nobody@rafiki`."),
    ] {
        let res = post(&mut admin, "/console/users/ban", &ban(email)).await;
        let status = if email == "nobody@rafiki" {
            StatusCode::NOT_FOUND
        } else {
            StatusCode::FORBIDDEN
        };
        assert_page(res, status, message).await;
    }
    let html = admin.page("/console/users").await;
    assert!(html.contains("aria-label=\"Ban new@rafiki\""), "{html}");
    assert!(!html.contains("aria-label=\"Ban superadmin@rafiki\""));
    let res = post(&mut admin, "/console/users/ban", &ban("new@rafiki")).await;
    assert_eq!(location(&res), "/console/users?done=banned");
    let html = admin.page(location(&res)).await;
    assert!(html.contains("Banned "), "{html}");
    assert!(api_users(&app, &sa).await.contains(&(
        "new@rafiki".to_owned(),
        "MODEL_DEVELOPER".to_owned(),
        true
    )));
    let res = post(&mut admin, "/console/users/ban", &ban("new@rafiki")).await;
    assert_page(res, StatusCode::CONFLICT, "is already banned.").await;

    // The superadmin may create an admin.
    let mut superadmin = Browser::logged_in(&app, "superadmin@rafiki", SUPERADMIN_PASSWORD).await;
    let html = superadmin.page("/console/users").await;
    assert!(html.contains("<option value=\"ADMIN\""), "{html}");
    let fields = [
        ("csrf", csrf_of(&html)),
        ("email", "boss@rafiki".to_owned()),
        ("password", "a-good-password".to_owned()),
        ("user_type", "ADMIN".to_owned()),
    ];
    let res = post(&mut superadmin, "/console/users", &fields).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(api_users(&app, &sa).await.contains(&(
        "boss@rafiki".to_owned(),
        "ADMIN".to_owned(),
        false
    )));
}

#[tokio::test]
async fn users_pages_are_refused_to_non_admins_with_the_apis_403() {
    let app = spawn_app().await;
    app.user("victim@rafiki", "APP_DEVELOPER").await;
    let (_, mut dev) = user_with_browser(&app, "dev@rafiki", "MODEL_DEVELOPER").await;
    let csrf = csrf_of(&dev.page("/console").await);
    let res = dev.get("/console/users").await;
    assert_page(
        res,
        StatusCode::FORBIDDEN,
        "Only admins may do this; you are MODEL_DEVELOPER.",
    )
    .await;
    let res = dev
        .post(
            "/console/users",
            &[
                ("csrf", &csrf),
                ("email", "x@rafiki"),
                ("password", "a-good-password"),
                ("user_type", "APP_DEVELOPER"),
            ],
        )
        .await;
    assert_page(res, StatusCode::FORBIDDEN, "Only admins may do this").await;
    let res = dev
        .post(
            "/console/users/ban",
            &[("csrf", &csrf), ("email", "victim@rafiki")],
        )
        .await;
    assert_page(res, StatusCode::FORBIDDEN, "Only admins may do this").await;
    let res = dev.post("/console/stop_all", &[("csrf", &csrf)]).await;
    assert_page(
        res,
        StatusCode::FORBIDDEN,
        "Only the superadmin may do this; you are MODEL_DEVELOPER.",
    )
    .await;
    let sa = app.superadmin().await;
    assert_eq!(api_users(&app, &sa).await.len(), 3);
    assert!(api_users(&app, &sa)
        .await
        .iter()
        .all(|(_, _, banned)| !banned));
}

/// Also: a model a live job uses cannot be deleted (the API's 409).
#[tokio::test]
async fn the_superadmin_stops_every_job_and_nobody_else_may() {
    let app = spawn_app().await;
    // A live job when the machine can run one (a Python with rafiki, as the job tests need).
    let job = if python_ready() {
        Some(start_slow_job(&app).await)
    } else {
        None
    };
    let (_, mut admin) = user_with_browser(&app, "admin@rafiki", "ADMIN").await;
    let csrf = csrf_of(&admin.page("/console/users").await);
    let res = admin.post("/console/stop_all", &[("csrf", &csrf)]).await;
    assert_page(
        res,
        StatusCode::FORBIDDEN,
        "Only the superadmin may do this; you are ADMIN.",
    )
    .await;

    let mut sa = Browser::logged_in(&app, "superadmin@rafiki", SUPERADMIN_PASSWORD).await;
    let html = sa.page("/console/users").await;
    assert!(
        html.contains(
            "data-confirm=\"Stop every live train job and inference job of every user?\""
        ),
        "{html}"
    );
    let csrf = csrf_of(&html);
    // Without the token nothing is stopped.
    let res = sa.post("/console/stop_all", &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    if let Some((dev, path)) = &job {
        assert_eq!(app.get_json(path, dev).await["status"], "RUNNING");
    }

    if let Some((dev, _)) = &job {
        // The job's model is in use: the API's 409, and it stays.
        let id = available(&app, dev).await[0]["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let mut owner = Browser::logged_in(&app, "dev@example.com", USER_PASSWORD).await;
        let csrf = csrf_of(&owner.page(&format!("/console/models/{id}")).await);
        let res = owner
            .post(&format!("/console/models/{id}/delete"), &[("csrf", &csrf)])
            .await;
        assert_page(
            res,
            StatusCode::CONFLICT,
            "is used by a train job and cannot be deleted.",
        )
        .await;
        assert_eq!(app.count_rows("models").await, 1);
    }

    let res = sa.post("/console/stop_all", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let stopped = if job.is_some() { 1 } else { 0 };
    assert_eq!(
        location(&res),
        format!("/console/users?done=stopped&train={stopped}&inference=0")
    );
    let html = sa.page(location(&res)).await;
    assert!(
        html.contains(&format!(
            "Every live job was stopped: {stopped} train jobs and 0 inference jobs."
        )),
        "{html}"
    );
    if let Some((dev, path)) = &job {
        let ended = wait_until_ended(&app, dev, path, 60).await;
        assert_eq!(ended["status"], "STOPPED");
    }
}

/// The one message of every refused `dataset_url` (tests/api/dataset_urls.rs).
const REFUSED: &str = "`dataset_url` and its redirects must resolve to public addresses; \
                       operators can allow internal hosts with RAFIKI_DATASET_URL_ALLOW.";

#[tokio::test]
async fn datasets_are_downloaded_from_a_url_through_the_apis_defences() {
    let app = spawn_app_on(&fresh_database().await, &[allow_mirror()]).await;
    let (token, mut browser) = user_with_browser(&app, "dev@rafiki", "MODEL_DEVELOPER").await;
    let html = browser.page("/console/datasets").await;
    for markup in [
        "id=\"dataset-upload\"",
        "id=\"dataset-url-upload\"",
        "data-progress",
        "class=\"upload-progress\"",
        "name=\"dataset_url\"",
    ] {
        assert!(html.contains(markup), "{markup} in {html}");
    }
    let csrf = csrf_of(&html);
    let url_form = |url: &str| {
        [
            ("csrf", csrf.clone()),
            ("name", "remote".to_owned()),
            ("task", "TABULAR_CLASSIFICATION".to_owned()),
            ("dataset_url", url.to_owned()),
        ]
    };
    let send = async |browser: &mut Browser<'_>, fields: &[(&str, String)]| {
        let fields: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        browser.post("/console/datasets", &fields).await
    };

    // The admin's own address, and a private one: the API's refusal.
    let port = app.address.rsplit(':').next().unwrap();
    for url in [
        format!("http://127.0.0.1:{port}/openapi.json"),
        "http://10.0.0.1/data.csv".to_owned(),
    ] {
        let res = send(&mut browser, &url_form(&url)).await;
        assert_page(res, StatusCode::BAD_REQUEST, &html_escaped(REFUSED)).await;
    }
    let res = send(&mut browser, &url_form("ftp://example.com/x")).await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    app.assert_nothing_stored().await;

    // A mirror the operator allows: downloaded and stored.
    let mirror = serve(
        MIRROR_IP,
        Router::new().route("/data.csv", get(|| async { "a,b\n1,2\n" })),
    )
    .await;
    let res = send(&mut browser, &url_form(&format!("{mirror}/data.csv"))).await;
    assert_eq!(location(&res), "/console/datasets?done=uploaded");
    let listed = app.get_json("/datasets", &token).await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["name"], "remote");
    assert_eq!(listed[0]["size_bytes"], 8);
}

/// `text` as maud writes it in an HTML text node.
fn html_escaped(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[tokio::test]
async fn a_dataset_form_with_both_a_file_and_a_url_is_refused() {
    let app = spawn_app().await;
    let (_, mut browser) = user_with_browser(&app, "dev@rafiki", "MODEL_DEVELOPER").await;
    let csrf = csrf_of(&browser.page("/console/datasets").await);
    let form = RafikiForm::new()
        .text("csrf", &csrf)
        .text("name", "both")
        .text("task", "T")
        .text("dataset_url", "https://example.com/data.csv")
        .named_file("dataset", "d.csv", b"a\n1\n");
    let res = browser.post_multipart("/console/datasets", form).await;
    assert_page(
        res,
        StatusCode::BAD_REQUEST,
        "Give either a `dataset` file or a `dataset_url`, not both.",
    )
    .await;
    app.assert_nothing_stored().await;
}
