//! Parameter sharing through the real admin and real train workers: a model that declares
//! `SHARE_PARAMS` gets BAYES_OPT_WITH_PARAM_SHARING, whose `GLOBAL_BEST` trials start from the
//! best saved parameters of their own sub-job (the model, `tests/models/SharedCounter.py`,
//! logs what it received); and a worker can never get another sub-job's parameters.

use rafiki_types::status::ServiceType;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::helpers::jobs::{ask_for_trial, start_job_as, wait_for_job, wait_until_ended};
use crate::helpers::models::SLOW_MODEL;
use crate::helpers::prerequisites::python_ready;
use crate::helpers::{assert_error, spawn_app, TestApp};
use crate::train_jobs::hand_made_service;

const SHARED_COUNTER: &str = include_str!("../../../../tests/models/SharedCounter.py");

/// The messages a trial's model logged.
async fn messages(app: &TestApp, token: &str, trial_id: &str) -> Vec<String> {
    let logs = app
        .get_json(&format!("/trials/{trial_id}/logs"), token)
        .await;
    logs["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap().to_owned())
        .collect()
}

/// What the model logged after `prefix`.
fn logged(messages: &[String], prefix: &str) -> String {
    messages
        .iter()
        .find_map(|m| m.strip_prefix(prefix))
        .unwrap_or_else(|| panic!("no `{prefix}` line in {messages:?}"))
        .to_owned()
}

/// A COMPLETED trial as the test follows it.
struct Done {
    no: i64,
    score: f64,
    origin: String,
    generation: i64,
}

#[tokio::test]
async fn share_params_models_get_param_sharing_and_start_from_their_best_saved_parameters() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    let dev = app.user("sharer@example.com", "MODEL_DEVELOPER").await;
    // 18 s of budget: early trials mostly train from scratch, later ones mostly share.
    let path = start_job_as(
        &app,
        &dev,
        "ANY",
        (b"a", b"b"),
        &[("counter", "SharedCounter", SHARED_COUNTER)],
        json!({"TIME_HOURS": 0.005, "MODEL_TRIAL_COUNT": 40}),
        json!({}),
    )
    .await;
    let job = wait_until_ended(&app, &dev, &path, 180).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let (advisor,): (String,) = sqlx::query_as("select advisor_type from sub_train_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(advisor, "BAYES_OPT_WITH_PARAM_SHARING");

    let mut trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trials = trials.as_array_mut().unwrap();
    trials.sort_by_key(|t| t["no"].as_i64().unwrap());
    let mut done: Vec<Done> = Vec::new();
    let mut shared_from_a_trial = 0;
    for trial in trials.iter() {
        assert_eq!(trial["status"], "COMPLETED", "{trial}");
        let proposal = &trial["proposal"];
        assert_eq!(proposal["knobs"]["share"], true, "{proposal}");
        assert_eq!(proposal["knobs"]["quick"], true, "{proposal}");
        assert_eq!(
            proposal["meta"]["advisor_type"],
            "BAYES_OPT_WITH_PARAM_SHARING"
        );
        assert_eq!(proposal["meta"]["proposal_type"], "SEARCH");
        let id = trial["id"].as_str().unwrap();
        let logs = messages(&app, &dev, id).await;
        let received: Value = serde_json::from_str(&logged(&logs, "shared: ")).unwrap();
        // One worker: every earlier trial finished before this one started. The best of them
        // (ties to the most recent) is what GLOBAL_BEST must have given.
        let best = done
            .iter()
            .max_by(|a, b| a.score.total_cmp(&b.score).then(a.no.cmp(&b.no)));
        match (proposal["params_type"].as_str().unwrap(), best) {
            ("NONE", _) => assert_eq!(received, Value::Null, "trial {}", trial["no"]),
            ("GLOBAL_BEST", None) => {
                assert_eq!(received, Value::Null);
                assert!(
                    logs.contains(&"No GLOBAL_BEST parameters yet: training from scratch".into())
                );
            }
            ("GLOBAL_BEST", Some(best)) => {
                assert_eq!(
                    received["origin"],
                    best.origin.as_str(),
                    "trial {}",
                    trial["no"]
                );
                assert_eq!(received["generation"], best.generation);
                assert_eq!(received["score"], best.score);
                shared_from_a_trial += 1;
            }
            (other, _) => panic!("params_type {other}"),
        }
        done.push(Done {
            no: trial["no"].as_i64().unwrap(),
            score: trial["score"].as_f64().unwrap(),
            origin: logged(&logs, "origin: "),
            generation: received["generation"].as_i64().unwrap_or(0) + 1,
        });
    }
    assert!(
        shared_from_a_trial > 0,
        "{} trials and none started from shared parameters",
        done.len()
    );
}

#[tokio::test]
async fn a_worker_gets_no_parameters_of_another_sub_job() {
    if !python_ready() {
        return;
    }
    let app = spawn_app().await;
    // Alice's job saved parameters.
    let alice = app.user("alice@example.com", "MODEL_DEVELOPER").await;
    let alice_path = start_job_as(
        &app,
        &alice,
        "ANY",
        (b"a", b"b"),
        &[("counter", "SharedCounter", SHARED_COUNTER)],
        json!({"MODEL_TRIAL_COUNT": 2}),
        json!({}),
    )
    .await;
    let job = wait_until_ended(&app, &alice, &alice_path, 120).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let alice_trials = app.get_json(&format!("{alice_path}/trials"), &alice).await;
    let alice_trial = alice_trials[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(alice_trials[0]["is_params_saved"], true);

    // Bob's job runs a slow first trial; a worker of his sub-job calls as `token`.
    let bob = app.user("bob@example.com", "MODEL_DEVELOPER").await;
    let bob_path = start_job_as(
        &app,
        &bob,
        "ANY",
        (b"a", b"b"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 100}),
        json!({"seconds": 60}),
    )
    .await;
    let bob_job = wait_for_job(&app, &bob, &bob_path, 60, |j| j["status"] == "RUNNING").await;
    let bob_job_id = uuid::Uuid::parse_str(bob_job["id"].as_str().unwrap()).unwrap();
    let (bob_sub,): (uuid::Uuid,) =
        sqlx::query_as("select id from sub_train_jobs where train_job_id = $1")
            .bind(bob_job_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let token = "bobs-hand-made-worker";
    let worker = hand_made_service(&app, ServiceType::Train, bob_job_id, token).await;
    rafiki_store::services::insert_train_worker(
        &app.pool,
        rafiki_types::ids::ServiceId(worker),
        rafiki_types::ids::SubTrainJobId(bob_sub),
    )
    .await
    .unwrap();

    // Nothing of Bob's sub-job is saved yet: "none", never Alice's.
    for kind in ["GLOBAL_BEST", "GLOBAL_RECENT"] {
        let res = app
            .send(
                Method::GET,
                &format!("/internal/train/parameters/{kind}"),
                Some(token),
                Value::Null,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        let answer: Value = res.json().await.unwrap();
        assert_eq!(answer, json!({"shared": null}), "{kind}");
    }
    // Asking for Alice's trial by id is refused, as is anything but GLOBAL_*.
    let res = app
        .send(
            Method::GET,
            &format!("/internal/trials/{alice_trial}/parameters"),
            Some(token),
            Value::Null,
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidTrialError").await;
    for kind in ["LOCAL_BEST", "NONE", "..%2F..%2Fetc", "GLOBAL_WORST"] {
        let res = app
            .send(
                Method::GET,
                &format!("/internal/train/parameters/{kind}"),
                Some(token),
                Value::Null,
            )
            .await;
        assert_error(res, StatusCode::BAD_REQUEST, "InvalidRequestError").await;
    }

    // Bob's worker runs three trials by hand; then the best and the latest are its own.
    let mut bob_trials = Vec::new();
    for (score, bytes) in [(0.9, "first"), (0.2, "second"), (0.5, "third")] {
        let trial = ask_for_trial(&app, token).await;
        let id = trial["trial"]["id"].as_str().unwrap().to_owned();
        let res = app
            .client
            .put(format!("{}/internal/trials/{id}/parameters", app.address))
            .bearer_auth(token)
            .body(bytes)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), StatusCode::OK);
        let res = app
            .send(
                Method::POST,
                &format!("/internal/trials/{id}/finish"),
                Some(token),
                json!({"status": "COMPLETED", "score": score}),
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        bob_trials.push(id);
    }
    for (kind, expected, bytes) in [
        ("GLOBAL_BEST", &bob_trials[0], "first"),
        ("GLOBAL_RECENT", &bob_trials[2], "third"),
    ] {
        let res = app
            .send(
                Method::GET,
                &format!("/internal/train/parameters/{kind}"),
                Some(token),
                Value::Null,
            )
            .await;
        let answer: Value = res.json().await.unwrap();
        let shared = &answer["shared"];
        assert_eq!(shared["trial_id"], expected.as_str(), "{kind}: {answer}");
        assert_eq!(shared["parameters"]["id"], expected.as_str());
        assert_eq!(shared["parameters"]["size_bytes"], bytes.len());
        let res = app
            .send(
                Method::GET,
                &format!("/internal/trials/{expected}/parameters"),
                Some(token),
                Value::Null,
            )
            .await;
        assert_eq!(res.status(), StatusCode::OK);
        assert_eq!(res.bytes().await.unwrap().as_ref(), bytes.as_bytes());
    }
    // Bob's real worker's trial, still running, has no parameters to give.
    let running: (uuid::Uuid,) =
        sqlx::query_as("select id from trials where sub_train_job_id = $1 and status = 'RUNNING'")
            .bind(bob_sub)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let res = app
        .send(
            Method::GET,
            &format!("/internal/trials/{}/parameters", running.0),
            Some(token),
            Value::Null,
        )
        .await;
    assert_error(res, StatusCode::NOT_FOUND, "InvalidTrialError").await;

    let res = app
        .send(
            Method::POST,
            &format!("{bob_path}/stop"),
            Some(&bob),
            Value::Null,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
}
