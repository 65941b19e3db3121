//! A browser without JavaScript for the console's HTTP tests: keeps the cookies it is given,
//! follows no redirect by itself, logs in through the form; and what those tests read from
//! its answers (CSRF tokens, `Location`, `Set-Cookie`, HTML pages).

use std::collections::HashMap;

use reqwest::header::{CONTENT_TYPE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use reqwest::{Method, Response, StatusCode};

use super::forms::RafikiForm;
use super::TestApp;

/// What a browser asks for.
pub const BROWSER_ACCEPT: &str = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// A form of the console as a browser sends it: the CSRF token first (when given), before any
/// file, so that the console reads it before the body's files.
pub fn csrf_form(csrf: Option<&str>) -> RafikiForm {
    let form = RafikiForm::new();
    match csrf {
        Some(token) => form.text("csrf", token),
        None => form,
    }
}

/// A browser without JavaScript: follows nothing by itself, keeps the cookies it is given.
pub struct Browser<'a> {
    pub app: &'a TestApp,
    client: reqwest::Client,
    pub cookies: HashMap<String, String>,
}

impl<'a> Browser<'a> {
    /// A browser with no cookies yet.
    pub fn new(app: &'a TestApp) -> Self {
        Browser {
            app,
            client: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            cookies: HashMap::new(),
        }
    }

    /// A request to `path` with the browser's `Accept` and cookies (not yet sent).
    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        let cookies: Vec<String> = self
            .cookies
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect();
        let mut req = self
            .client
            .request(method, format!("{}{path}", self.app.address))
            .header("accept", BROWSER_ACCEPT);
        if !cookies.is_empty() {
            req = req.header("cookie", cookies.join("; "));
        }
        req
    }

    /// Sends, and keeps (or drops) the cookies the answer sets.
    pub async fn send(&mut self, req: reqwest::RequestBuilder) -> Response {
        let res = req.send().await.expect("request sent");
        for set in res.headers().get_all(SET_COOKIE) {
            let set = set.to_str().unwrap();
            let (name, value) = set.split(';').next().unwrap().split_once('=').unwrap();
            if set.contains("Max-Age=0") {
                self.cookies.remove(name);
            } else {
                self.cookies.insert(name.to_owned(), value.to_owned());
            }
        }
        res
    }

    /// GETs `path`, keeping the cookies the answer sets.
    pub async fn get(&mut self, path: &str) -> Response {
        let req = self.request(Method::GET, path);
        self.send(req).await
    }

    /// The page's HTML; panics unless it is a 200 page.
    pub async fn page(&mut self, path: &str) -> String {
        let res = self.get(path).await;
        assert_eq!(res.status(), StatusCode::OK, "GET {path}");
        res.text().await.unwrap()
    }

    /// POSTs a urlencoded form, as a browser sends a form.
    pub async fn post(&mut self, path: &str, fields: &[(&str, &str)]) -> Response {
        let req = self.request(Method::POST, path).form(fields);
        self.send(req).await
    }

    /// POSTs a multipart form (an upload).
    pub async fn post_multipart(&mut self, path: &str, form: RafikiForm) -> Response {
        let (content_type, body) = form.finish();
        let req = self
            .request(Method::POST, path)
            .header(CONTENT_TYPE, content_type)
            .body(body);
        self.send(req).await
    }

    /// Logs in through the form; returns the answer (a 303 when it worked).
    pub async fn log_in(&mut self, email: &str, password: &str, next: Option<&str>) -> Response {
        let form = self.page("/console/login").await;
        let token = csrf_of(&form);
        let mut fields = vec![("email", email), ("password", password), ("csrf", &token)];
        if let Some(next) = next {
            fields.push(("next", next));
        }
        self.post("/console/login", &fields).await
    }

    /// A logged-in browser of this user.
    pub async fn logged_in(app: &'a TestApp, email: &str, password: &str) -> Browser<'a> {
        let mut browser = Browser::new(app);
        let res = browser.log_in(email, password, None).await;
        assert_eq!(res.status(), StatusCode::SEE_OTHER, "login of {email}");
        assert!(browser.cookies.contains_key("rafiki_session"));
        browser
    }
}

/// The CSRF token a page's forms carry.
pub fn csrf_of(html: &str) -> String {
    let start = html
        .find("name=\"csrf\" value=\"")
        .expect("the page has a CSRF field")
        + "name=\"csrf\" value=\"".len();
    html[start..].split('"').next().unwrap().to_owned()
}

/// The `Location` of a redirect.
pub fn location(res: &Response) -> &str {
    res.headers()[LOCATION].to_str().unwrap()
}

/// Asserts an HTML page of this status that says `text`.
pub async fn assert_page(res: Response, status: StatusCode, text: &str) {
    assert_eq!(res.status(), status);
    assert!(res.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let html = res.text().await.unwrap();
    assert!(html.contains(text), "{text:?} in {html}");
}

/// Asserts that `res` is the console's 403 page of a form it refused as forged (without its
/// CSRF token, with a wrong one, or from another origin).
pub async fn assert_forged(res: Response) {
    assert_page(
        res,
        StatusCode::FORBIDDEN,
        "not sent from a page of this console",
    )
    .await;
}

/// The `Set-Cookie` of `name`.
pub fn set_cookie(res: &Response, name: &str) -> String {
    res.headers()
        .get_all(SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .find(|v| v.starts_with(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no Set-Cookie of {name}"))
}
