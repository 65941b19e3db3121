//! The web console through HTTP, as a browser uses it: the session cookie, redirects to the
//! login form, CSRF tokens, the datasets screen, `/` for browsers, logout.

use reqwest::header::{CACHE_CONTROL, CONTENT_TYPE, SET_COOKIE};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::console_browser::{
    assert_forged, assert_page, csrf_form, csrf_of, location, set_cookie, Browser,
};
use crate::helpers::forms::RafikiForm;
use crate::helpers::jobs::dataset;
use crate::helpers::{
    forge, fresh_database, spawn_app, spawn_app_on, TestApp, SUPERADMIN_PASSWORD, TEST_SECRET,
    USER_PASSWORD,
};

/// The datasets the API shows this token.
async fn api_datasets(app: &TestApp, token: &str) -> Vec<Value> {
    let res = app
        .send(Method::GET, "/datasets", Some(token), Value::Null)
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    res.json().await.unwrap()
}

fn upload_form(csrf: Option<&str>, name: &str, bytes: &[u8]) -> RafikiForm {
    csrf_form(csrf)
        .text("name", name)
        .text("task", "TABULAR_CLASSIFICATION")
        .named_file("dataset", "wine.csv", bytes)
}

#[tokio::test]
async fn login_sets_an_http_only_same_site_strict_session_cookie() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let res = browser
        .log_in(
            "superadmin@rafiki",
            SUPERADMIN_PASSWORD,
            Some("/console/datasets"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res),
        "/console/datasets",
        "back where the user was going"
    );
    let cookie = set_cookie(&res, "rafiki_session");
    for attribute in [
        "HttpOnly",
        "SameSite=Strict",
        "Path=/console",
        "Max-Age=3600",
    ] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain http: {cookie}");
    // The cookie is the API's own token.
    let token = browser.cookies["rafiki_session"].clone();
    let res = app
        .send(Method::GET, "/users", Some(&token), Value::Null)
        .await;
    assert_eq!(res.status(), StatusCode::OK);

    let home = browser.page("/console").await;
    assert!(home.contains("superadmin@rafiki"), "{home}");
    assert!(home.contains("SUPERADMIN"), "{home}");

    // Over https (a TLS proxy in front) the cookie is Secure too.
    let mut browser = Browser::new(&app);
    let form = browser.page("/console/login").await;
    let req = browser
        .request(Method::POST, "/console/login")
        .header("x-forwarded-proto", "https")
        .form(&[
            ("email", "superadmin@rafiki"),
            ("password", SUPERADMIN_PASSWORD),
            ("csrf", &csrf_of(&form)),
        ]);
    let res = browser.send(req).await;
    assert!(set_cookie(&res, "rafiki_session").contains("; Secure"));

    // A redirect elsewhere than the console is not followed.
    let mut browser = Browser::new(&app);
    let res = browser
        .log_in(
            "superadmin@rafiki",
            SUPERADMIN_PASSWORD,
            Some("//evil.example/"),
        )
        .await;
    assert_eq!(location(&res), "/console");
}

#[tokio::test]
async fn a_wrong_password_shows_the_form_again_with_the_reason() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let res = browser
        .log_in("superadmin@rafiki", "wrong-password", None)
        .await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert!(res
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .all(|c| !c.to_str().unwrap().starts_with("rafiki_session")));
    let html = res.text().await.unwrap();
    assert!(html.contains("The password is wrong."), "{html}");
    assert!(
        html.contains("value=\"superadmin@rafiki\""),
        "the email is kept"
    );
}

#[tokio::test]
async fn pages_without_a_valid_session_redirect_to_the_login_form() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let res = browser.get("/console/datasets?page=2").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(
        location(&res),
        "/console/login?next=%2Fconsole%2Fdatasets%3Fpage%3D2"
    );
    let form = browser.page(location(&res)).await;
    assert!(!form.contains("expired"), "{form}");
    // A form sent without a session cannot be replayed by a redirect: the login leads home.
    let res = browser.post("/console/logout", &[]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/login?next=%2Fconsole");
    // A request without the cookie (as every cross-site one is: SameSite=Strict) clears none:
    // another site cannot log users out by sending them here.
    assert!(
        res.headers().get_all(SET_COOKIE).iter().next().is_none(),
        "{:?}",
        res.headers()
    );
    assert!(
        form.contains("name=\"next\" value=\"/console/datasets?page=2\""),
        "{form}"
    );

    // A forged or mangled session is no session.
    for session in [
        "garbage",
        &forge(
            "another-secret-of-at-least-32-characters",
            json!({
        "user_id": uuid::Uuid::new_v4(), "user_type": "SUPERADMIN",
        "exp": chrono::Utc::now().timestamp() + 600}),
        ),
    ] {
        browser
            .cookies
            .insert("rafiki_session".into(), session.to_owned());
        let res = browser.get("/console").await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "{session}");
        assert!(location(&res).starts_with("/console/login"));
        assert!(!location(&res).contains("expired"));
        // A session that can never work is forgotten.
        assert!(set_cookie(&res, "rafiki_session").contains("Max-Age=0"));
    }
}

#[tokio::test]
async fn an_expired_session_asks_to_log_in_again() {
    let app = spawn_app().await;
    let id = app.user_id("superadmin@rafiki").await;
    let expired = forge(
        TEST_SECRET,
        json!({"user_id": id, "user_type": "SUPERADMIN",
               "exp": chrono::Utc::now().timestamp() - 5}),
    );
    let mut browser = Browser::new(&app);
    browser.cookies.insert("rafiki_session".into(), expired);
    let res = browser.get("/console/datasets").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(
        set_cookie(&res, "rafiki_session").contains("Max-Age=0"),
        "the dead session is cleared"
    );
    let to = location(&res).to_owned();
    assert!(to.contains("expired=1"), "{to}");
    let form = browser.page(&to).await;
    assert!(
        form.contains("Your session has expired; please log in again."),
        "{form}"
    );
    // Logging in from there goes back to the page.
    let res = browser
        .post(
            "/console/login",
            &[
                ("email", "superadmin@rafiki"),
                ("password", SUPERADMIN_PASSWORD),
                ("csrf", &csrf_of(&form)),
                ("next", "/console/datasets"),
            ],
        )
        .await;
    assert_eq!(location(&res), "/console/datasets");
    browser.page("/console/datasets").await;
}

#[tokio::test]
async fn posts_without_the_right_csrf_token_are_refused_and_change_nothing() {
    let app = spawn_app().await;
    let token = app.user("dev@rafiki", "MODEL_DEVELOPER").await;
    // Uploaded through the API: the one file and row there should be.
    let kept = dataset(&app, &token, "TABULAR_CLASSIFICATION", b"a,b\n1,2\n").await;
    let mut browser = Browser::logged_in(&app, "dev@rafiki", USER_PASSWORD).await;
    let html = browser.page("/console/datasets").await;
    let good = csrf_of(&html);
    let wrong = "00".repeat(32);

    for csrf in [None, Some(wrong.as_str()), Some("not hex")] {
        let res = browser
            .post_multipart(
                "/console/datasets",
                upload_form(csrf, "sneaky", b"x,y\n1,2\n"),
            )
            .await;
        assert_forged(res).await;

        let mut fields = vec![];
        if let Some(csrf) = csrf {
            fields.push(("csrf", csrf));
        }
        let path = format!("/console/datasets/{kept}/delete");
        let res = browser.post(&path, &fields).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "delete with {csrf:?}");
        let res = browser.post("/console/logout", &fields).await;
        assert_eq!(res.status(), StatusCode::FORBIDDEN, "logout with {csrf:?}");
    }
    // The right token from another site's page is refused too.
    let req = browser
        .request(Method::POST, &format!("/console/datasets/{kept}/delete"))
        .header("origin", "https://evil.example")
        .form(&[("csrf", good.as_str())]);
    let res = browser.send(req).await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    // Another session's token does not fit this one.
    let mut other = Browser::logged_in(&app, "superadmin@rafiki", SUPERADMIN_PASSWORD).await;
    let other_token = csrf_of(&other.page("/console/datasets").await);
    assert_ne!(other_token, good);
    let res = browser
        .post(
            &format!("/console/datasets/{kept}/delete"),
            &[("csrf", &other_token)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);

    let left = api_datasets(&app, &token).await;
    assert_eq!(left.len(), 1, "nothing uploaded, nothing deleted: {left:?}");
    assert_eq!(
        app.stored_files().len(),
        1,
        "the refused uploads left no file"
    );
    assert_eq!(left[0]["id"], kept.as_str());
    browser.page("/console").await; // still logged in

    // The login form wants its token as well.
    let mut fresh = Browser::new(&app);
    let res = fresh
        .post(
            "/console/login",
            &[("email", "dev@rafiki"), ("password", USER_PASSWORD)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::FORBIDDEN);
    assert!(!fresh.cookies.contains_key("rafiki_session"));
}

#[tokio::test]
async fn datasets_are_uploaded_listed_and_deleted_through_the_console() {
    let app = spawn_app().await;
    let token = app.user("dev@rafiki", "MODEL_DEVELOPER").await;
    let mut browser = Browser::logged_in(&app, "dev@rafiki", USER_PASSWORD).await;
    let html = browser.page("/console/datasets").await;
    assert!(html.contains("No datasets yet"), "empty state: {html}");
    let csrf = csrf_of(&html);

    let res = browser
        .post_multipart(
            "/console/datasets",
            upload_form(Some(&csrf), "wine-train", b"a,b\n1,2\n"),
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/datasets?done=uploaded");

    let listed = api_datasets(&app, &token).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["name"], "wine-train");
    assert_eq!(listed[0]["size_bytes"], 8);
    let id = listed[0]["id"].as_str().unwrap().to_owned();

    let html = browser.page("/console/datasets?done=uploaded").await;
    assert!(html.contains("The dataset was uploaded."));
    assert!(html.contains("wine-train") && html.contains(&id), "{html}");
    assert!(!html.contains("No datasets yet"));

    // The API's refusals are shown on the page, with the API's status.
    let res = browser
        .post_multipart("/console/datasets", upload_form(Some(&csrf), "empty", b""))
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let html = res.text().await.unwrap();
    assert!(html.contains("The dataset is empty (0 bytes)."), "{html}");

    let res = browser
        .post(
            &format!("/console/datasets/{id}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/datasets?done=deleted");
    assert!(api_datasets(&app, &token).await.is_empty());
    let html = browser.page("/console/datasets?done=deleted").await;
    assert!(html.contains("The dataset was deleted.") && html.contains("No datasets yet"));
}

#[tokio::test]
async fn the_datasets_table_is_paginated() {
    let app = spawn_app().await;
    let token = app.user("dev@rafiki", "MODEL_DEVELOPER").await;
    for _ in 0..26 {
        dataset(&app, &token, "TABULAR_CLASSIFICATION", b"a\n1\n").await;
    }
    let mut browser = Browser::logged_in(&app, "dev@rafiki", USER_PASSWORD).await;
    let first = browser.page("/console/datasets").await;
    assert_eq!(
        first.matches("<tr>").count(),
        1 + 25,
        "a header row and 25 datasets"
    );
    assert!(first.contains("?page=2") && !first.contains("Previous page"));
    let second = browser.page("/console/datasets?page=2").await;
    assert_eq!(second.matches("<tr>").count(), 1 + 1);
    assert!(second.contains("Previous page") && !second.contains("Next page"));
    let beyond = browser.page("/console/datasets?page=9").await;
    assert!(beyond.contains("No datasets on this page."));
}

#[tokio::test]
async fn users_see_and_delete_only_what_the_api_lets_them() {
    let app = spawn_app().await;
    let owner = app.user("owner@rafiki", "MODEL_DEVELOPER").await;
    let theirs = dataset(&app, &owner, "TABULAR_CLASSIFICATION", b"a,b\n1,2\n").await;
    app.user("other@rafiki", "MODEL_DEVELOPER").await;

    let mut other = Browser::logged_in(&app, "other@rafiki", USER_PASSWORD).await;
    let html = other.page("/console/datasets").await;
    assert!(
        !html.contains(&theirs),
        "another user's dataset is not listed"
    );
    assert!(html.contains("No datasets yet"));
    let csrf = csrf_of(&html);
    let res = other
        .post(
            &format!("/console/datasets/{theirs}/delete"),
            &[("csrf", &csrf)],
        )
        .await;
    // As `DELETE /datasets/{id}` answers: another user's dataset does not exist for them.
    assert_page(res, StatusCode::NOT_FOUND, "You have no dataset with id").await;
    assert_eq!(api_datasets(&app, &owner).await.len(), 1, "still there");

    // Admins see it, as in the API.
    let mut admin = Browser::logged_in(&app, "superadmin@rafiki", SUPERADMIN_PASSWORD).await;
    let html = admin.page("/console/datasets").await;
    assert!(html.contains(&theirs) && html.contains("Every user's datasets"));
}

#[tokio::test]
async fn root_sends_browsers_to_the_console_and_answers_clients_as_before() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let res = browser.get("/").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console");

    for accept in [None, Some("*/*"), Some("application/json")] {
        let mut req = app.client.get(format!("{}/", app.address));
        if let Some(accept) = accept {
            req = req.header("accept", accept);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), StatusCode::OK, "{accept:?}");
        assert_eq!(res.text().await.unwrap(), "Rafiki Admin is up.");
    }
}

#[tokio::test]
async fn logout_clears_the_session_cookie() {
    let app = spawn_app().await;
    let mut browser = Browser::logged_in(&app, "superadmin@rafiki", SUPERADMIN_PASSWORD).await;
    let csrf = csrf_of(&browser.page("/console").await);
    let res = browser.post("/console/logout", &[("csrf", &csrf)]).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&res), "/console/login");
    let cleared = set_cookie(&res, "rafiki_session");
    assert!(
        cleared.starts_with("rafiki_session=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    let res = browser.get("/console").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "logged out");
}

#[tokio::test]
async fn assets_are_embedded_and_cacheable_and_unknown_pages_are_html() {
    let app = spawn_app().await;
    let mut browser = Browser::new(&app);
    let form = browser.page("/console/login").await;
    let urls: Vec<&str> = form
        .match_indices("/console/assets/")
        .map(|(at, _)| form[at..].split('"').next().unwrap())
        .collect();
    for (ext, content_type) in [(".css", "text/css"), (".js", "text/javascript")] {
        let url = urls.iter().find(|url| url.ends_with(ext)).expect("linked");
        let res = browser.get(url).await;
        assert_eq!(res.status(), StatusCode::OK, "{url}");
        assert!(res.headers()[CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with(content_type));
        assert!(res.headers()[CACHE_CONTROL]
            .to_str()
            .unwrap()
            .contains("immutable"));
    }
    let res = browser.get("/console/no-such-page").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    assert!(res.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert_eq!(res.headers()[CACHE_CONTROL], "no-store");
    let res = browser
        .get("/console/assets/console.0000000000000000.css")
        .await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    // A form's address typed into the address bar.
    let res = browser.get("/console/logout").await;
    assert_page(
        res,
        StatusCode::METHOD_NOT_ALLOWED,
        "does not take that method",
    )
    .await;
}

#[tokio::test]
async fn console_logins_share_the_apis_rate_limits() {
    let database = fresh_database().await;
    let app = spawn_app_on(&database, &[("login_attempts_per_account", json!(2))]).await;
    // One attempt through the API, one through the console: the account's two.
    let res = app
        .send(
            Method::POST,
            "/tokens",
            None,
            json!({"email": "nobody@rafiki", "password": "wrong-password"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let mut browser = Browser::new(&app);
    let res = browser
        .log_in("nobody@rafiki", "wrong-password", None)
        .await;
    assert_page(res, StatusCode::BAD_REQUEST, "No user has this email.").await;
    let res = browser
        .log_in("nobody@rafiki", "wrong-password", None)
        .await;
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(res.headers().contains_key("retry-after"));
    assert!(res
        .text()
        .await
        .unwrap()
        .contains("Too many login attempts for this account"));
}

#[tokio::test]
async fn banned_users_cannot_log_in_and_their_sessions_end() {
    let app = spawn_app().await;
    let sa = app.superadmin().await;
    app.user("banned@rafiki", "MODEL_DEVELOPER").await;
    let mut session = Browser::logged_in(&app, "banned@rafiki", USER_PASSWORD).await;
    let res = app
        .send(
            Method::DELETE,
            "/users",
            Some(&sa),
            json!({"email": "banned@rafiki"}),
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    let res = session.get("/console").await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER, "the session ended");
    let res = Browser::new(&app)
        .log_in("banned@rafiki", USER_PASSWORD, None)
        .await;
    assert_page(res, StatusCode::FORBIDDEN, "This user is banned.").await;
}
