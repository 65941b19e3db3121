//! The console's train and inference job screens through HTTP, as a browser without
//! JavaScript uses them (and as the live script polls), with real workers and a real predictor
//! on the process backend: create a job with the form, watch its trials appear, stop it, deploy
//! it, predict through the box, stop the deployment; what the form refuses; what another user
//! cannot do; CSRF; hostile app names.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::console_browser::{assert_forged, assert_page, csrf_of, location, Browser};
use crate::helpers::jobs::{dataset, model, predict, train_job_count};
use crate::helpers::models::SLOW_MODEL;
use crate::helpers::poll;
use crate::helpers::prerequisites::{predictor_built, python_ready};
use crate::helpers::{spawn_app, TestApp, USER_PASSWORD};

/// An app name a page must not run: it may hold anything but `/`.
const HOSTILE_APP: &str = "<img src=x onerror=alert(1)>";

/// `text` as one path segment, as the console's links write it.
fn segment(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
                char::from(b).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// How many train jobs exist.
/// A developer with a dataset and the slow model of task `ANY`: (token, dataset id, model id).
async fn developer(app: &TestApp, email: &str) -> (String, String, String) {
    let dev = app.user(email, "MODEL_DEVELOPER").await;
    let data = dataset(app, &dev, "ANY", b"x").await;
    let slow = model(app, &dev, "slow", "ANY", "Slow", SLOW_MODEL, "PRIVATE").await;
    (dev, data, slow)
}

/// The create form's fields for a job of `app_name` on `data` with `models`.
fn job_fields(
    csrf: &str,
    app_name: &str,
    data: &str,
    models: &[&str],
) -> Vec<(&'static str, String)> {
    let mut fields: Vec<(&'static str, String)> = [
        ("csrf", csrf),
        ("app", app_name),
        ("task", "ANY"),
        ("train_dataset_id", data),
        ("val_dataset_id", data),
        ("MODEL_TRIAL_COUNT", ""),
        ("TIME_HOURS", "1"),
        ("GPU_COUNT", "0"),
        ("train_args", "{\"seconds\": 0.3}"),
    ]
    .into_iter()
    .map(|(name, value)| (name, value.to_owned()))
    .collect();
    fields.extend(models.iter().map(|m| ("model_ids", (*m).to_owned())));
    fields
}

/// `fields` with `name` set to `value` instead.
fn with(
    mut fields: Vec<(&'static str, String)>,
    name: &'static str,
    value: &str,
) -> Vec<(&'static str, String)> {
    fields.retain(|(n, _)| *n != name);
    fields.push((name, value.to_owned()));
    fields
}

/// The fields as a form sends them.
fn pairs<'a>(fields: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    fields.iter().map(|(n, v)| (*n, v.as_str())).collect()
}

#[tokio::test]
async fn a_job_is_created_watched_stopped_deployed_and_queried_from_the_console() {
    if !python_ready() || !predictor_built() {
        return;
    }
    let app = spawn_app().await;
    let (dev, data, slow) = developer(&app, "dev@rafiki").await;
    let mut browser = Browser::logged_in(&app, "dev@rafiki", USER_PASSWORD).await;
    app.user("other@rafiki", "MODEL_DEVELOPER").await;
    let mut other = Browser::logged_in(&app, "other@rafiki", USER_PASSWORD).await;
    let other_csrf = csrf_of(&other.page("/console/train_jobs/new?task=ANY").await);

    // The form offers the task's datasets and models.
    let form = browser.page("/console/train_jobs/new?task=ANY").await;
    assert!(form.contains(&format!("value=\"{data}\"")), "{form}");
    assert!(form.contains(&format!("value=\"{slow}\"")), "{form}");
    assert!(
        form.contains("name=\"PRUNER\"") && form.contains("name=\"PRUNE_METRIC\""),
        "{form}"
    );
    let csrf = csrf_of(&form);

    // Without its CSRF token the form creates nothing.
    let mut forged = job_fields("", HOSTILE_APP, &data, &[&slow]);
    forged.retain(|(name, _)| *name != "csrf");
    let res = browser.post("/console/train_jobs", &pairs(&forged)).await;
    assert_forged(res).await;
    assert_eq!(train_job_count(&app).await, 0);

    // With the median rule on: the slow model's one or two trials are never judged (4
    // warm-up trials).
    let fields = job_fields(&csrf, HOSTILE_APP, &data, &[&slow]);
    let fields = with(with(fields, "PRUNER", "MEDIAN"), "PRUNE_METRIC", "val_acc");
    let res = browser
        .post(
            "/console/train_jobs",
            &pairs(&with(fields, "PRUNE_MODE", "")),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let job_path = format!("/console/train_jobs/{}/1", segment(HOSTILE_APP));
    assert_eq!(location(&res), format!("{job_path}?done=created"));
    // The API sees the job the form made.
    let api_path = format!("/train_jobs/{}/1", segment(HOSTILE_APP));
    let job = app.get_json(&api_path, &dev).await;
    assert_eq!(job["budget"]["TIME_HOURS"], 1.0);
    assert_eq!(
        (&job["budget"]["PRUNER"], &job["budget"]["PRUNE_MODE"]),
        (&json!("MEDIAN"), &json!("MAX"))
    );
    assert_eq!(job["train_args"], json!({"seconds": 0.3}));

    // The list and the page show it, the hostile name escaped.
    let list = browser.page("/console/train_jobs").await;
    assert!(
        list.contains("&lt;img src=x onerror=alert(1)&gt;"),
        "{list}"
    );
    assert!(!list.contains(HOSTILE_APP), "{list}");
    assert!(list.contains(&format!("href=\"{job_path}\"")), "{list}");
    let page = browser.page(&format!("{job_path}?done=created")).await;
    assert!(!page.contains(HOSTILE_APP), "{page}");
    assert!(page.contains("role=\"status\""), "{page}");
    assert!(page.contains("pruning: MEDIAN on val_acc (MAX)"), "{page}");
    assert!(page.contains("<section id=\"tuning-plots\">"), "{page}");
    assert!(
        page.contains(&format!("data-live=\"{job_path}/live?page=1\"")),
        "a running job's page is refreshed by the script: {page}"
    );

    // The live fragment shows trials appearing while the job runs.
    let live = format!("{job_path}/live");
    let fragment = poll::until(
        "a completed trial in the live fragment",
        Duration::from_secs(120),
        Duration::from_millis(300),
        async || {
            let html = browser.page(&live).await;
            if html.contains("COMPLETED") {
                Ok(html)
            } else {
                Err(html)
            }
        },
    )
    .await;
    assert!(
        fragment.starts_with("<div data-running=\"true\">"),
        "{fragment}"
    );
    assert!(!fragment.contains("<html"), "a fragment, not a page");
    assert!(fragment.contains("href=\"/console/trials/"), "{fragment}");
    assert!(fragment.contains("x="), "the proposal's knob: {fragment}");

    // Another user can neither see it nor stop it: the API's 404.
    for path in [job_path.clone(), live.clone()] {
        let res = other.get(&path).await;
        assert_page(res, StatusCode::NOT_FOUND, "You have no train job of app").await;
    }
    let other_list = other.page("/console/train_jobs").await;
    assert!(!other_list.contains("onerror"), "{other_list}");
    let res = other
        .post(&format!("{job_path}/stop"), &[("csrf", &other_csrf)])
        .await;
    assert_page(res, StatusCode::NOT_FOUND, "You have no train job of app").await;
    // Nor can a stop without the token.
    let res = browser.post(&format!("{job_path}/stop"), &[]).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert_eq!(app.get_json(&api_path, &dev).await["status"], "RUNNING");

    // Stop.
    let res = browser
        .post(&format!("{job_path}/stop"), &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), format!("{job_path}?done=stopped"));
    assert_eq!(app.get_json(&api_path, &dev).await["status"], "STOPPED");
    let page = browser.page(&format!("{job_path}?done=stopped")).await;
    assert!(page.contains("data-running=\"false\""), "{page}");
    assert!(!page.contains("data-live="), "no polling of a stopped job");
    assert!(page.contains("Deploy the best trials"), "{page}");

    // Deploy, through the page's button.
    let deploy = [
        ("csrf", csrf.as_str()),
        ("app", HOSTILE_APP),
        ("app_version", "1"),
    ];
    let res = other
        .post(
            "/console/inference_jobs",
            &[
                ("csrf", &other_csrf),
                ("app", HOSTILE_APP),
                ("app_version", "1"),
            ],
        )
        .await;
    assert_page(res, StatusCode::NOT_FOUND, "You have no train job of app").await;
    let res = browser.post("/console/inference_jobs", &deploy).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let inference_path = format!("/console/inference_jobs/{}/1", segment(HOSTILE_APP));
    assert_eq!(location(&res), format!("{inference_path}?done=deployed"));
    // Twice is the API's 409, shown on the list.
    let res = browser.post("/console/inference_jobs", &deploy).await;
    assert_page(res, StatusCode::CONFLICT, "already deployed").await;

    let api_inference = format!("/inference_jobs/{}/1", segment(HOSTILE_APP));
    let host = poll::until(
        "the deployment RUNNING",
        Duration::from_secs(120),
        Duration::from_millis(200),
        async || {
            let running = app.get_json(&api_inference, &dev).await;
            if running["status"] == "RUNNING" {
                Ok(running["predictor_host"].as_str().unwrap().to_owned())
            } else {
                Err(running)
            }
        },
    )
    .await;
    let page = browser.page(&inference_path).await;
    assert!(page.contains(&format!("<code>{host}</code>")), "{page}");
    assert!(
        page.contains("href=\"/console/trials/"),
        "its worker's trial: {page}"
    );
    assert!(!page.contains(HOSTILE_APP), "{page}");
    let list = browser.page("/console/inference_jobs").await;
    assert!(
        list.contains(&format!("href=\"{inference_path}\"")),
        "{list}"
    );
    assert!(!list.contains(HOSTILE_APP), "{list}");

    // The predict box: the predictor's own answer, shown on the page.
    let direct = predict(&host).await;
    let prediction = direct["prediction"].to_string();
    let predict = format!("{inference_path}/predict");
    let res = browser
        .post(
            &predict,
            &[("csrf", &csrf), ("query", "[1, 2]"), ("kind", "query")],
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let html = res.text().await.unwrap();
    assert!(
        html.contains(&format!("&quot;prediction&quot;: {prediction}")),
        "{prediction} in {html}"
    );
    let res = browser
        .post(
            &predict,
            &[
                ("csrf", &csrf),
                ("query", "[[1], [2]]"),
                ("kind", "queries"),
            ],
        )
        .await;
    let html = res.text().await.unwrap();
    assert!(html.contains("&quot;predictions&quot;: ["), "{html}");
    // A query that is not JSON is refused before anything is sent.
    let res = browser
        .post(
            &predict,
            &[("csrf", &csrf), ("query", "[1,"), ("kind", "query")],
        )
        .await;
    assert_page(res, StatusCode::BAD_REQUEST, "The query is not JSON").await;
    // Another user cannot see it nor predict through it; nor can a form without its token.
    let res = other.get(&inference_path).await;
    assert_page(res, StatusCode::NOT_FOUND, "is running").await;
    let res = other
        .post(
            &predict,
            &[
                ("csrf", &other_csrf),
                ("query", "[1, 2]"),
                ("kind", "query"),
            ],
        )
        .await;
    assert_page(res, StatusCode::NOT_FOUND, "is running").await;
    let res = browser
        .post(&predict, &[("query", "[1, 2]"), ("kind", "query")])
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    let res = other
        .post(&format!("{inference_path}/stop"), &[("csrf", &other_csrf)])
        .await;
    assert_page(res, StatusCode::NOT_FOUND, "is running").await;

    // Stop the deployment.
    let res = browser
        .post(&format!("{inference_path}/stop"), &[("csrf", &csrf)])
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/inference_jobs?done=stopped");
    let res = app
        .send(Method::GET, &api_inference, Some(&dev), Value::Null)
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = browser.get(&inference_path).await;
    assert_page(res, StatusCode::NOT_FOUND, "is running").await;
    let list = browser.page("/console/inference_jobs?done=stopped").await;
    assert!(list.contains("STOPPED"), "{list}");
}

#[tokio::test]
async fn a_refused_job_shows_the_apis_error_and_creates_nothing() {
    let app = spawn_app().await;
    let (_, data, slow) = developer(&app, "dev@rafiki").await;
    let (_, others_data, _) = developer(&app, "other@rafiki").await;
    let mut browser = Browser::logged_in(&app, "dev@rafiki", USER_PASSWORD).await;
    let csrf = csrf_of(&browser.page("/console/train_jobs/new?task=ANY").await);
    let unknown = uuid::Uuid::new_v4().to_string();

    let base = |models: &[&str], train: &str| job_fields(&csrf, "refused-app", train, models);
    let cases = [
        (
            base(&[], &data),
            StatusCode::BAD_REQUEST,
            "`model_ids` is empty",
        ),
        (
            with(base(&[&slow], &data), "train_args", "{not json"),
            StatusCode::BAD_REQUEST,
            "`train_args` is not JSON",
        ),
        (
            with(base(&[&slow], &data), "train_args", "[1, 2]"),
            StatusCode::BAD_REQUEST,
            "`train_args` must be an object",
        ),
        (
            base(&[&slow], &unknown),
            StatusCode::BAD_REQUEST,
            "No dataset has id",
        ),
        (
            base(&[&slow], &others_data),
            StatusCode::FORBIDDEN,
            "is not yours",
        ),
        (
            with(base(&[&slow], &data), "TIME_HOURS", "soon"),
            StatusCode::BAD_REQUEST,
            "budget TIME_HOURS must be a positive number",
        ),
        (
            with(base(&[&slow], &data), "CPU_WORKERS_PER_MODEL", "0"),
            StatusCode::BAD_REQUEST,
            "budget CPU_WORKERS_PER_MODEL must be an integer",
        ),
        (
            with(base(&[&slow], &data), "CPU_WORKERS_PER_MODEL", "9"),
            StatusCode::BAD_REQUEST,
            "(RAFIKI_MAX_CPU_WORKERS_PER_TRAIN_JOB)",
        ),
        (
            with(base(&[&slow], &data), "PRUNE_METRIC", "val_acc"),
            StatusCode::BAD_REQUEST,
            "budget PRUNE_METRIC needs PRUNER",
        ),
        (
            with(
                with(base(&[&slow], &data), "PRUNER", "ASHA"),
                "PRUNE_METRIC",
                "val_acc",
            )
            .into_iter()
            .chain([("PRUNE_REDUCTION_FACTOR", "1".to_owned())])
            .collect(),
            StatusCode::BAD_REQUEST,
            "budget PRUNE_REDUCTION_FACTOR must be",
        ),
        (
            with(base(&[&slow], &data), "app", "a/b"),
            StatusCode::BAD_REQUEST,
            "without `/`",
        ),
    ];
    for (fields, status, message) in cases {
        let res = browser.post("/console/train_jobs", &pairs(&fields)).await;
        assert_eq!(res.status(), status, "{message}");
        let html = res.text().await.unwrap();
        assert!(html.contains(message), "{message} in {html}");
        assert!(html.contains("role=\"alert\""), "{html}");
        // The form comes back as it was filled.
        assert!(
            html.contains("value=\"refused-app\"") || message == "without `/`",
            "{html}"
        );
    }
    assert_eq!(train_job_count(&app).await, 0);

    // A form that keeps its entries: the app name, hostile, escaped.
    let fields = with(base(&[], &data), "app", HOSTILE_APP);
    let res = browser.post("/console/train_jobs", &pairs(&fields)).await;
    let html = res.text().await.unwrap();
    assert!(
        html.contains("value=\"&lt;img src=x onerror=alert(1)&gt;\""),
        "{html}"
    );
    assert!(!html.contains(HOSTILE_APP), "{html}");

    // Pages of jobs that do not exist are the API's 404; a deploy of one, its error.
    let res = browser.get("/console/train_jobs/nope/1").await;
    assert_page(
        res,
        StatusCode::NOT_FOUND,
        "You have no train job of app `nope`",
    )
    .await;
    let res = browser.get("/console/train_jobs/nope/x").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let res = browser
        .post(
            "/console/inference_jobs",
            &[("csrf", &csrf), ("app", "nope"), ("app_version", "1")],
        )
        .await;
    assert_page(
        res,
        StatusCode::NOT_FOUND,
        "You have no train job of app `nope`",
    )
    .await;
    let page = browser.page("/console/inference_jobs").await;
    assert!(page.contains("No inference jobs"), "{page}");
}

#[tokio::test]
async fn admins_list_another_users_jobs_as_the_api_lets_them_and_others_may_not() {
    let app = spawn_app().await;
    app.user("dev@rafiki", "MODEL_DEVELOPER").await;
    let dev_id = app.user_id("dev@rafiki").await;
    let mut dev = Browser::logged_in(&app, "dev@rafiki", USER_PASSWORD).await;
    let page = dev.page("/console/train_jobs").await;
    assert!(page.contains("No train jobs"), "{page}");
    assert!(
        !page.contains("name=\"user_id\""),
        "no filter for non-admins"
    );
    let superadmin = app.user_id("superadmin@rafiki").await;
    let res = dev
        .get(&format!("/console/train_jobs?user_id={superadmin}"))
        .await;
    assert_page(
        res,
        StatusCode::FORBIDDEN,
        "Only admins list other users' jobs.",
    )
    .await;

    let mut admin = Browser::logged_in(
        &app,
        "superadmin@rafiki",
        crate::helpers::SUPERADMIN_PASSWORD,
    )
    .await;
    for what in ["train_jobs", "inference_jobs"] {
        let page = admin
            .page(&format!("/console/{what}?user_id={dev_id}"))
            .await;
        assert!(page.contains(&dev_id.to_string()), "{page}");
    }
    let res = admin.get("/console/train_jobs?user_id=nobody").await;
    assert_page(res, StatusCode::BAD_REQUEST, "must be a user's id").await;
}
