//! The console's trial page through HTTP: a real trial of a model that declares plots and logs
//! metrics (trained by a real worker), its charts with Rafiki's point semantics, its messages
//! and parameters; the API's rule on who may see a trial; hostile names escaped.

use reqwest::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use reqwest::StatusCode;
use serde_json::json;

use crate::helpers::console_browser::{assert_page, location, Browser};
use crate::helpers::jobs::one_trial_job;
use crate::helpers::prerequisites::python_ready;
use crate::helpers::{spawn_app, SUPERADMIN_PASSWORD, USER_PASSWORD};

/// A model that declares two plots and logs metrics and messages, with names that are HTML.
const PLOTTING_MODEL: &str = r#"
from rafiki.model import BaseModel, FloatKnob, logger

class Plotting(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"x": FloatKnob(0.0, 1.0)}

    def __init__(self, **knobs):
        super().__init__(**knobs)
        self.x = knobs["x"]

    def train(self, dataset_path, shared_params=None, **train_args):
        logger.define_plot("<script>alert(1)</script> by epoch", ["loss", "<b>acc</b>"], x_axis="epoch")
        logger.define_plot("Loss by time", ["loss"])
        for epoch in range(5):
            logger.log(loss=1.0 / (epoch + 1), epoch=epoch)
        logger.log(**{"<b>acc</b>": 0.5, "epoch": 5})
        logger.log(loss=0.1)
        logger.log("<script>alert(2)</script> trained")

    def evaluate(self, dataset_path):
        return self.x

    def predict(self, queries):
        return [self.x for _ in queries]

    def dump_parameters(self):
        return {"x": self.x}

    def load_parameters(self, params):
        self.x = params["x"]
"#;

/// The number of points of each line with point markers, in page order: the `h0` dots of each
/// `class="dots m…"` path.
fn marked_points(html: &str) -> Vec<usize> {
    html.split("class=\"dots m")
        .skip(1)
        .map(|rest| {
            let d = rest
                .split("d=\"")
                .nth(1)
                .unwrap()
                .split('"')
                .next()
                .unwrap();
            d.matches("h0").count()
        })
        .collect()
}

#[tokio::test]
async fn the_trial_page_charts_each_declared_plot_for_the_jobs_owner_only() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let (dev, path) =
        one_trial_job(&app, ("plotting", "Plotting", PLOTTING_MODEL), json!({})).await;
    let job_id = app.get_json(&path, &dev).await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trial = &trials[0];
    let id = trial["id"].as_str().unwrap();
    let page_path = format!("/console/trials/{id}");

    // Without a session: to the login form, and back here after it.
    let mut anonymous = Browser::new(&app);
    let res = anonymous.get(&page_path).await;
    assert_eq!(res.status(), StatusCode::SEE_OTHER);
    assert!(location(&res).starts_with("/console/login?next="));

    let mut owner = Browser::logged_in(&app, "dev@example.com", USER_PASSWORD).await;
    let html = owner.page(&page_path).await;
    assert!(html.contains("Trial 1 of plotting"), "{html}");
    assert!(html.contains("COMPLETED"));
    assert!(html.contains(&format!("href=\"/console/train_jobs/{job_id}\"")));
    assert!(html.contains("myapp version 1"));
    let knob = trial["proposal"]["knobs"]["x"].as_f64().unwrap();
    assert!(
        html.contains(&format!("<code>{knob}</code>")),
        "the knob's value"
    );
    // One chart per declared plot. By epoch: loss at epochs 0-4 (the entry without an epoch
    // is not on it), acc at epoch 5; by time: every loss, 6 points.
    assert_eq!(html.matches("<figure").count(), 2);
    assert_eq!(html.matches("<svg class=\"chart\"").count(), 2);
    assert_eq!(marked_points(&html), vec![5, 1, 6]);
    assert!(html.contains("Time since the trial started (s)"));
    // Hostile plot titles, metric names and messages are text.
    assert!(!html.contains("<script>alert"), "{html}");
    assert!(!html.contains("<b>acc"));
    assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt; by epoch"));
    assert!(html.contains("&lt;b&gt;acc&lt;/b&gt;"));
    assert!(html.contains("&lt;script&gt;alert(2)&lt;/script&gt; trained"));
    assert!(!html.contains("style="), "no inline style (CSP)");

    // The parameters, as the API serves them, as a download.
    let parameters = format!("/console/trials/{id}/parameters");
    assert!(html.contains(&format!("href=\"{parameters}\"")));
    let res = owner.get(&parameters).await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(res.headers()[CONTENT_TYPE], "application/octet-stream");
    assert!(res.headers()[CONTENT_DISPOSITION]
        .to_str()
        .unwrap()
        .starts_with("attachment"));
    assert!(res.bytes().await.unwrap().starts_with(b"RAFKPRMS"));

    // Another user gets the API's 403, for the page and the parameters.
    app.user("other@example.com", "MODEL_DEVELOPER").await;
    let mut other = Browser::logged_in(&app, "other@example.com", USER_PASSWORD).await;
    let res = other.get(&page_path).await;
    assert_page(res, StatusCode::FORBIDDEN, "belongs to another user").await;
    let res = other.get(&parameters).await;
    assert_page(res, StatusCode::FORBIDDEN, "belongs to another user").await;
    // No such trial, and no trial id at all: 404.
    let missing = uuid::Uuid::new_v4();
    let res = owner.get(&format!("/console/trials/{missing}")).await;
    assert_page(
        res,
        StatusCode::NOT_FOUND,
        &format!("No trial has id {missing}"),
    )
    .await;
    let res = owner.get("/console/trials/not-an-id").await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    // Admins see every trial.
    let mut admin = Browser::logged_in(&app, "superadmin@rafiki", SUPERADMIN_PASSWORD).await;
    let html = admin.page(&page_path).await;
    assert!(html.contains("Trial 1 of plotting"));
}
