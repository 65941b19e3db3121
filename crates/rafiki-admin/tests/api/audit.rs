//! The audit trail (issue 18, item 4; docs/observability.md, "Audit trail"): a row for each
//! mutating request with who, what, which, how it ended, from where and in which request;
//! refusals recorded with the error's name; logins without their password; no success row for
//! a change that rolled back; `GET /audit`'s filters, paging and role rules.

use reqwest::{Method, Response, StatusCode};
use serde_json::{json, Value};

use crate::helpers::console_browser::{csrf_of, Browser};
use crate::helpers::forms::RafikiForm;
use crate::helpers::jobs::{dataset, model, wait_for_job, wait_until_ended};
use crate::helpers::models::{SLOW_MODEL, TRIVIAL_MODEL};
use crate::helpers::prerequisites::{predictor_built, python_ready};
use crate::helpers::requests::json_ok;
use crate::helpers::{assert_error, spawn_app, TestApp, USER_PASSWORD};

/// Every row of the table, oldest first, as JSON objects of its columns.
async fn rows(app: &TestApp) -> Vec<Value> {
    let texts: Vec<String> =
        sqlx::query_scalar("select row_to_json(a)::text from audit_events a order by id")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    texts
        .iter()
        .map(|text| serde_json::from_str(text).unwrap())
        .collect()
}

/// The rows of the request with id `request_id`.
async fn rows_of(app: &TestApp, request_id: &str) -> Vec<Value> {
    rows(app)
        .await
        .into_iter()
        .filter(|row| row["request_id"] == request_id)
        .collect()
}

/// The one row of the request with id `request_id`.
async fn row_of(app: &TestApp, request_id: &str) -> Value {
    let rows = rows_of(app, request_id).await;
    assert_eq!(rows.len(), 1, "one row of request {request_id}: {rows:?}");
    rows.into_iter().next().unwrap()
}

/// Sends a JSON request (or none with `Value::Null`) with a token and an `x-request-id`.
async fn send(
    app: &TestApp,
    method: Method,
    path: &str,
    token: Option<&str>,
    body: Value,
    request_id: &str,
) -> Response {
    let mut req = app
        .client
        .request(method, format!("{}{path}", app.address))
        .header("x-request-id", request_id);
    if let Some(token) = token {
        req = req.bearer_auth(token);
    }
    if !body.is_null() {
        req = req.json(&body);
    }
    req.send().await.unwrap()
}

/// POSTs a multipart form with a token and an `x-request-id`.
async fn upload(app: &TestApp, path: &str, token: &str, form: RafikiForm, id: &str) -> Response {
    let (content_type, body) = form.finish();
    app.client
        .post(format!("{}{path}", app.address))
        .bearer_auth(token)
        .header("content-type", content_type)
        .header("x-request-id", id)
        .body(body)
        .send()
        .await
        .unwrap()
}

/// The id of the user with `email`.
async fn user_id(app: &TestApp, email: &str) -> String {
    let id: uuid::Uuid = sqlx::query_scalar("select id from users where email = $1")
        .bind(email)
        .fetch_one(&app.pool)
        .await
        .unwrap();
    id.to_string()
}

/// The id of the train job at `path`.
async fn job_id(app: &TestApp, token: &str, path: &str) -> String {
    app.get_json(path, token).await["id"]
        .as_str()
        .unwrap()
        .to_owned()
}

/// Tries to log in with an `x-request-id`.
async fn login(app: &TestApp, email: &str, password: &str, id: &str) -> Response {
    let body = json!({"email": email, "password": password});
    send(app, Method::POST, "/tokens", None, body, id).await
}

/// Asserts a row's who, what, which and outcome, and that it came from this machine.
fn assert_row(
    row: &Value,
    action: &str,
    actor: &str,
    role: &str,
    target: (&str, &str),
    outcome: &str,
) {
    assert_eq!(row["action"], action, "{row}");
    assert_eq!(row["actor_id"], actor, "{row}");
    assert_eq!(row["actor_role"], role, "{row}");
    assert_eq!(row["target_kind"], target.0, "{row}");
    assert_eq!(row["target_id"], target.1, "{row}");
    assert_eq!(row["outcome"], outcome, "{row}");
    assert_eq!(row["client_address"], "127.0.0.1", "{row}");
}

#[tokio::test]
async fn users_datasets_and_models_changes_are_recorded_with_who_what_and_where() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    let sa_id = user_id(&app, "superadmin@rafiki").await;

    let res = send(
        &app,
        Method::POST,
        "/users",
        Some(&sa),
        json!({"email": "dev@rafiki", "password": USER_PASSWORD, "user_type": "MODEL_DEVELOPER"}),
        "audit-user-create",
    )
    .await;
    let dev_id = json_ok(res).await["id"].as_str().unwrap().to_owned();
    let row = row_of(&app, "audit-user-create").await;
    assert_row(
        &row,
        "user.create",
        &sa_id,
        "SUPERADMIN",
        ("user", &dev_id),
        "OK",
    );

    let dev = app.login("dev@rafiki", USER_PASSWORD).await;
    let form = RafikiForm::new()
        .text("name", "data")
        .text("task", "ANY")
        .file("dataset", b"a,b\n1,2\n");
    let res = upload(&app, "/datasets", &dev, form, "audit-dataset-create").await;
    let dataset_id = json_ok(res).await["id"].as_str().unwrap().to_owned();
    let row = row_of(&app, "audit-dataset-create").await;
    assert_row(
        &row,
        "dataset.create",
        &dev_id,
        "MODEL_DEVELOPER",
        ("dataset", &dataset_id),
        "OK",
    );

    let path = format!("/datasets/{dataset_id}");
    let res = send(
        &app,
        Method::DELETE,
        &path,
        Some(&dev),
        Value::Null,
        "audit-dataset-del",
    )
    .await;
    json_ok(res).await;
    let row = row_of(&app, "audit-dataset-del").await;
    assert_row(
        &row,
        "dataset.delete",
        &dev_id,
        "MODEL_DEVELOPER",
        ("dataset", &dataset_id),
        "OK",
    );

    let form = RafikiForm::new()
        .text("name", "trivial")
        .text("task", "ANY")
        .text("model_class", "Trivial")
        .text("dependencies", "{}")
        .text("access_right", "PRIVATE")
        .file("model_file_bytes", TRIVIAL_MODEL.as_bytes());
    let res = upload(&app, "/models", &dev, form, "audit-model-create").await;
    let model_id = json_ok(res).await["id"].as_str().unwrap().to_owned();
    let row = row_of(&app, "audit-model-create").await;
    assert_row(
        &row,
        "model.create",
        &dev_id,
        "MODEL_DEVELOPER",
        ("model", &model_id),
        "OK",
    );

    let path = format!("/models/{model_id}");
    let res = send(
        &app,
        Method::DELETE,
        &path,
        Some(&dev),
        Value::Null,
        "audit-model-del",
    )
    .await;
    json_ok(res).await;
    let row = row_of(&app, "audit-model-del").await;
    assert_row(
        &row,
        "model.delete",
        &dev_id,
        "MODEL_DEVELOPER",
        ("model", &model_id),
        "OK",
    );

    let res = send(
        &app,
        Method::DELETE,
        "/users",
        Some(&sa),
        json!({"email": "dev@rafiki"}),
        "audit-user-ban",
    )
    .await;
    json_ok(res).await;
    let row = row_of(&app, "audit-user-ban").await;
    assert_row(
        &row,
        "user.ban",
        &sa_id,
        "SUPERADMIN",
        ("user", &dev_id),
        "OK",
    );
}

#[tokio::test]
async fn refusals_are_recorded_with_the_errors_name_and_anonymous_ones_are_not() {
    let app = spawn_app().await;
    let dev = app.user("dev@rafiki", "APP_DEVELOPER").await;
    let dev_id = user_id(&app, "dev@rafiki").await;

    // A role refusal: the caller is known, the change did not happen.
    let body = json!({"email": "x@rafiki", "password": USER_PASSWORD, "user_type": "ADMIN"});
    let res = send(
        &app,
        Method::POST,
        "/users",
        Some(&dev),
        body.clone(),
        "audit-403",
    )
    .await;
    assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    let row = row_of(&app, "audit-403").await;
    assert_eq!(row["action"], "user.create");
    assert_eq!(row["actor_id"], dev_id.as_str());
    assert_eq!(row["actor_role"], "APP_DEVELOPER");
    assert_eq!(row["outcome"], "UnauthorizedError");
    assert_eq!(row["target_id"], Value::Null);

    // A lookup refusal names what the path named.
    let missing = uuid::Uuid::new_v4();
    let path = format!("/datasets/{missing}");
    let res = send(
        &app,
        Method::DELETE,
        &path,
        Some(&dev),
        Value::Null,
        "audit-404",
    )
    .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidDatasetError").await;
    let row = row_of(&app, "audit-404").await;
    assert_row(
        &row,
        "dataset.delete",
        &dev_id,
        "APP_DEVELOPER",
        ("dataset", &missing.to_string()),
        "InvalidDatasetError",
    );

    // A hostile path is kept as sent (percent-encoded), cut to the bound.
    let long = "a".repeat(5000);
    let path = format!("/train_jobs/{long}'%3B%20drop%20table%20users/1/stop");
    let res = send(
        &app,
        Method::POST,
        &path,
        Some(&dev),
        Value::Null,
        "audit-long",
    )
    .await;
    assert!(res.status().is_client_error());
    let row = row_of(&app, "audit-long").await;
    assert_eq!(row["action"], "train_job.stop");
    assert_eq!(row["target_kind"], "train_job");
    assert_eq!(row["target_id"], "a".repeat(256).as_str());
    assert_eq!(row["outcome"], "InvalidTrainJobError");

    // Without a valid token: refused, and not recorded.
    let before = rows(&app).await.len();
    let res = send(
        &app,
        Method::POST,
        "/users",
        None,
        body.clone(),
        "audit-anon",
    )
    .await;
    assert_error(
        res,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthorizationHeaderError",
    )
    .await;
    let res = send(
        &app,
        Method::POST,
        "/users",
        Some("forged"),
        body,
        "audit-forged",
    )
    .await;
    assert_error(res, StatusCode::UNAUTHORIZED, "UnauthorizedError").await;
    assert_eq!(rows(&app).await.len(), before);
    // Nor are reads.
    app.get_json("/datasets", &dev).await;
    assert_eq!(rows(&app).await.len(), before);
}

#[tokio::test]
async fn logins_are_recorded_without_their_password() {
    let app = spawn_app().await;
    app.user("dev@rafiki", "APP_DEVELOPER").await;
    let dev_id = user_id(&app, "dev@rafiki").await;
    let guess = "my-secret-guess-7f3a";

    let res = login(&app, "dev@rafiki", guess, "audit-login-wrong").await;
    assert_error(res, StatusCode::UNAUTHORIZED, "InvalidPasswordError").await;
    let row = row_of(&app, "audit-login-wrong").await;
    assert_row(
        &row,
        "login",
        &dev_id,
        "APP_DEVELOPER",
        ("user", "dev@rafiki"),
        "InvalidPasswordError",
    );

    let res = login(&app, "nobody@rafiki", guess, "audit-login-unknown").await;
    assert_error(res, StatusCode::BAD_REQUEST, "InvalidUserError").await;
    let row = row_of(&app, "audit-login-unknown").await;
    assert_eq!(row["actor_id"], Value::Null);
    assert_eq!(row["actor_role"], Value::Null);
    assert_eq!(row["target_id"], "nobody@rafiki");
    assert_eq!(row["outcome"], "InvalidUserError");

    let long = format!("{}@rafiki", "e".repeat(10_000));
    let res = login(&app, &long, guess, "audit-login-long").await;
    assert!(res.status().is_client_error());
    let row = row_of(&app, "audit-login-long").await;
    assert_eq!(row["target_id"].as_str().unwrap().chars().count(), 256);

    let res = login(&app, "dev@rafiki", USER_PASSWORD, "audit-login-ok").await;
    json_ok(res).await;
    let row = row_of(&app, "audit-login-ok").await;
    assert_row(
        &row,
        "login",
        &dev_id,
        "APP_DEVELOPER",
        ("user", "dev@rafiki"),
        "OK",
    );

    // No password anywhere in any row.
    for row in rows(&app).await {
        let text = row.to_string();
        assert!(
            !text.contains(guess) && !text.contains(USER_PASSWORD),
            "{text}"
        );
    }
}

/// Makes every transaction that inserts into `table` fail at commit, after everything else
/// in it (its audit row included) was written, as a deferred constraint would.
async fn refuse_at_commit(app: &TestApp, table: &str) {
    let sql = format!(
        "create function refuse_{table}() returns trigger language plpgsql as \
         $$ begin raise exception 'refused at commit'; end $$; \
         create constraint trigger refuse_{table} after insert on {table} \
         deferrable initially deferred for each row execute function refuse_{table}();"
    );
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql))
        .execute(&app.pool)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_change_that_rolls_back_leaves_no_success_row() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    refuse_at_commit(&app, "users").await;
    let body = json!({"email": "x@rafiki", "password": USER_PASSWORD, "user_type": "ADMIN"});
    let res = send(
        &app,
        Method::POST,
        "/users",
        Some(&sa),
        body,
        "audit-rollback",
    )
    .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let created: i64 = sqlx::query_scalar("select count(*) from users where email = 'x@rafiki'")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(created, 0);
    // Only the refusal, recorded after the fact.
    let row = row_of(&app, "audit-rollback").await;
    assert_eq!(row["action"], "user.create");
    assert_eq!(row["outcome"], "InternalServerError");
}

#[tokio::test]
async fn job_creation_and_stops_are_recorded_by_whoever_did_them() {
    if !python_ready() || !predictor_built() {
        return;
    }
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    let sa_id = user_id(&app, "superadmin@rafiki").await;
    let dev = app.user("dev@rafiki", "MODEL_DEVELOPER").await;
    let dev_id = user_id(&app, "dev@rafiki").await;
    let train = dataset(&app, &dev, "ANY", b"a").await;
    let val = dataset(&app, &dev, "ANY", b"b").await;
    let slow = model(&app, &dev, "slow", "ANY", "Slow", SLOW_MODEL, "PRIVATE").await;
    let job = |name: &str, budget: Value, seconds: f64| {
        json!({"app": name, "task": "ANY", "train_dataset_id": train, "val_dataset_id": val,
               "budget": budget, "model_ids": [slow], "train_args": {"seconds": seconds}})
    };

    // Created, trained to its budget, deployed, and the deployment stopped.
    let body = job("one", json!({"MODEL_TRIAL_COUNT": 1}), 0.1);
    json_ok(
        send(
            &app,
            Method::POST,
            "/train_jobs",
            Some(&dev),
            body,
            "audit-tj-create",
        )
        .await,
    )
    .await;
    let one = job_id(&app, &dev, "/train_jobs/one/1").await;
    let row = row_of(&app, "audit-tj-create").await;
    assert_row(
        &row,
        "train_job.create",
        &dev_id,
        "MODEL_DEVELOPER",
        ("train_job", &one),
        "OK",
    );
    let ended = wait_until_ended(&app, &dev, "/train_jobs/one/1", 120).await;
    assert_eq!(ended["status"], "STOPPED");
    let body = json!({"app": "one", "app_version": 1, "budget": {"GPU_COUNT": 0}});
    let res = send(
        &app,
        Method::POST,
        "/inference_jobs",
        Some(&dev),
        body,
        "audit-ij-create",
    )
    .await;
    let deployment = json_ok(res).await["id"].as_str().unwrap().to_owned();
    let row = row_of(&app, "audit-ij-create").await;
    assert_row(
        &row,
        "inference_job.create",
        &dev_id,
        "MODEL_DEVELOPER",
        ("inference_job", &deployment),
        "OK",
    );
    let res = send(
        &app,
        Method::POST,
        "/inference_jobs/one/1/stop",
        Some(&dev),
        Value::Null,
        "audit-ij-stop",
    )
    .await;
    json_ok(res).await;
    let row = row_of(&app, "audit-ij-stop").await;
    assert_row(
        &row,
        "inference_job.stop",
        &dev_id,
        "MODEL_DEVELOPER",
        ("inference_job", &deployment),
        "OK",
    );

    // Stopped by its owner.
    let body = job("two", json!({"TIME_HOURS": 1}), 30.0);
    json_ok(
        app.send(Method::POST, "/train_jobs", Some(&dev), body)
            .await,
    )
    .await;
    wait_for_job(&app, &dev, "/train_jobs/two/1", 60, |j| {
        j["status"] == "RUNNING"
    })
    .await;
    let two = job_id(&app, &dev, "/train_jobs/two/1").await;
    let res = send(
        &app,
        Method::POST,
        "/train_jobs/two/1/stop",
        Some(&dev),
        Value::Null,
        "audit-tj-stop",
    )
    .await;
    json_ok(res).await;
    let row = row_of(&app, "audit-tj-stop").await;
    assert_row(
        &row,
        "train_job.stop",
        &dev_id,
        "MODEL_DEVELOPER",
        ("train_job", &two),
        "OK",
    );

    // Stopped by the superadmin's stop-everything: "who stopped this job" names them.
    let body = job("three", json!({"TIME_HOURS": 1}), 30.0);
    json_ok(
        app.send(Method::POST, "/train_jobs", Some(&dev), body)
            .await,
    )
    .await;
    let three = job_id(&app, &dev, "/train_jobs/three/1").await;
    let res = send(
        &app,
        Method::POST,
        "/actions/stop_all_jobs",
        Some(&sa),
        Value::Null,
        "audit-stop-all",
    )
    .await;
    json_ok(res).await;
    let row = row_of(&app, "audit-stop-all").await;
    assert_row(
        &row,
        "jobs.stop_all",
        &sa_id,
        "SUPERADMIN",
        ("train_job", &three),
        "OK",
    );
    let stops = app
        .get_json(&format!("/audit?action=jobs.stop_all&actor={sa_id}"), &sa)
        .await;
    assert_eq!(stops.as_array().unwrap().len(), 1, "{stops}");
    assert_eq!(stops[0]["target_id"], three.as_str());

    // A job whose transaction fails at commit, after its audit row: neither is kept.
    refuse_at_commit(&app, "train_jobs").await;
    let body = job("four", json!({"TIME_HOURS": 1}), 30.0);
    let res = send(
        &app,
        Method::POST,
        "/train_jobs",
        Some(&dev),
        body,
        "audit-tj-rollback",
    )
    .await;
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let row = row_of(&app, "audit-tj-rollback").await;
    assert_eq!(row["action"], "train_job.create");
    assert_eq!(row["outcome"], "InternalServerError");
    let res = app.get("/train_jobs/four", &dev).await;
    assert_eq!(json_ok(res).await, json!([]));
}

#[tokio::test]
async fn get_audit_is_for_admins_and_filters_and_pages() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    let sa_id = user_id(&app, "superadmin@rafiki").await;
    let admin = app.user("admin@rafiki", "ADMIN").await;
    let md = app.user("md@rafiki", "MODEL_DEVELOPER").await;
    let ad = app.user("ad@rafiki", "APP_DEVELOPER").await;
    let admin_id = user_id(&app, "admin@rafiki").await;

    for token in [&md, &ad] {
        let res = app.get("/audit", token).await;
        assert_error(res, StatusCode::FORBIDDEN, "UnauthorizedError").await;
    }
    let res = app.send(Method::GET, "/audit", None, Value::Null).await;
    assert_error(
        res,
        StatusCode::UNAUTHORIZED,
        "InvalidAuthorizationHeaderError",
    )
    .await;

    // Seven logins (the superadmin's before each creation) and three creations, newest first.
    let all = app.get_json("/audit", &admin).await;
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 10, "{all:?}");
    assert_eq!(all, app.get_json("/audit", &sa).await.as_array().unwrap());
    let ids: Vec<i64> = all.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] > w[1]), "newest first: {ids:?}");
    for key in [
        "time",
        "actor_id",
        "actor_role",
        "action",
        "target_kind",
        "target_id",
        "outcome",
        "client_address",
        "request_id",
    ] {
        assert!(all[0].get(key).is_some(), "{key} in {}", all[0]);
    }

    let created = app.get_json("/audit?action=user.create", &sa).await;
    assert_eq!(created.as_array().unwrap().len(), 3);
    assert!(created
        .as_array()
        .unwrap()
        .iter()
        .all(|e| e["actor_id"] == sa_id.as_str()));
    let admins = app.get_json(&format!("/audit?actor={admin_id}"), &sa).await;
    assert_eq!(admins.as_array().unwrap().len(), 1, "the admin's login");
    assert_eq!(admins[0]["action"], "login");

    let page = app.get_json("/audit?limit=2&offset=1", &sa).await;
    assert_eq!(page.as_array().unwrap(), &all[1..3]);

    // Time range: `since` includes its instant, `until` excludes it.
    let oldest = all.last().unwrap();
    let time = oldest["time"].as_str().unwrap();
    let encoded = time.replace('+', "%2B");
    let since = app.get_json(&format!("/audit?since={encoded}"), &sa).await;
    assert!(since.as_array().unwrap().contains(oldest));
    let until = app.get_json(&format!("/audit?until={encoded}"), &sa).await;
    assert!(!until.as_array().unwrap().contains(oldest));
    let far = app.get_json("/audit?since=2999-01-01T00:00:00Z", &sa).await;
    assert_eq!(far, json!([]));

    // Hostile or malformed filters are refused by name, and change nothing.
    for (query, name) in [
        ("actor=1%27%20or%20%271%27%3D%271", "actor"),
        ("action=login%27--", "action"),
        ("action=", "action"),
        ("since=yesterday", "since"),
        ("until=2026-13-40T99:00:00Z", "until"),
        ("limit=0", "limit"),
        ("offset=-1", "offset"),
    ] {
        let res = app.get(&format!("/audit?{query}"), &sa).await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
        assert!(message.contains(&format!("`{name}`")), "{query}: {message}");
    }
    for query in ["actor=%00", "target=x"] {
        let res = app.get(&format!("/audit?{query}"), &sa).await;
        assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    }
    // Reads and their refusals are not recorded.
    assert_eq!(
        app.get_json("/audit", &sa).await.as_array().unwrap().len(),
        10
    );
}

#[tokio::test]
async fn a_console_action_is_recorded_once() {
    let app = spawn_app().await;
    app.user("dev@rafiki", "MODEL_DEVELOPER").await;
    let dev_id = user_id(&app, "dev@rafiki").await;
    let mut browser = Browser::logged_in(&app, "dev@rafiki", USER_PASSWORD).await;
    let csrf = csrf_of(&browser.page("/console/datasets").await);
    let form = RafikiForm::new()
        .text("csrf", &csrf)
        .text("name", "data")
        .text("task", "ANY")
        .file("dataset", b"a,b\n1,2\n");
    let res = browser.post_multipart("/console/datasets", form).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    let request_id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let row = row_of(&app, &request_id).await;
    let dataset_id: uuid::Uuid = sqlx::query_scalar("select id from datasets")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_row(
        &row,
        "dataset.create",
        &dev_id,
        "MODEL_DEVELOPER",
        ("dataset", &dataset_id.to_string()),
        "OK",
    );
    // A refused form is recorded as the API's refusal is, once.
    let missing = uuid::Uuid::new_v4();
    let path = format!("/console/datasets/{missing}/delete");
    let req = browser
        .request(Method::POST, &path)
        .header("x-request-id", "audit-console-404")
        .form(&[("csrf", csrf.as_str())]);
    let res = browser.send(req).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let row = row_of(&app, "audit-console-404").await;
    assert_row(
        &row,
        "dataset.delete",
        &dev_id,
        "MODEL_DEVELOPER",
        ("dataset", &missing.to_string()),
        "InvalidDatasetError",
    );
    // The console's login is recorded as the API's is.
    let logins = rows(&app).await;
    let console_login = logins
        .iter()
        .filter(|r| r["action"] == "login" && r["actor_id"] == dev_id.as_str());
    assert_eq!(
        console_login.count(),
        2,
        "the API's login and the console's"
    );
}
