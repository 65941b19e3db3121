//! GPUs as a queue (issue 16, item 3), through the API on the process backend with declared
//! device ids (`RAFIKI_GPUS`; the workers run on CPU, the devices are only handed out): a train
//! job whose GPUs are busy waits, STARTED, with its reason; later GPU jobs wait behind it, CPU
//! jobs do not; a waiting job stops at once; a job larger than the cluster is refused; freed
//! devices start the first waiting job; the queue survives an admin restart.

use serde_json::{json, Value};

use crate::helpers::admin_process::free_port;
use crate::helpers::jobs::{allocations, Submitter};
use crate::helpers::prerequisites::python_ready;
use crate::helpers::{fresh_database, spawn_app_on, TestApp};

/// Live services of the job at `path`'s app.
async fn live_services_of(app: &TestApp, app_name: &str) -> i64 {
    sqlx::query_scalar(
        "select count(*) from services s join train_jobs j on j.id = s.job_id \
         where j.app = $1 and s.status in ('STARTED', 'DEPLOYING', 'RUNNING')",
    )
    .bind(app_name)
    .fetch_one(&app.pool)
    .await
    .unwrap()
}

fn settings(gpus: &str) -> Vec<(&'static str, Value)> {
    vec![("gpus", json!(gpus)), ("supervise_ms", json!(200))]
}

#[tokio::test]
async fn jobs_wait_for_busy_gpus_in_submission_order_and_start_when_they_free_up() {
    if !python_ready() {
        return;
    }
    let app = spawn_app_on(&fresh_database().await, &settings("0,1")).await;
    let s = Submitter::new(&app).await;

    let first = s.submit(&app, "first", 2).await;
    s.running(&app, &first).await;
    assert_eq!(
        allocations(&app).await,
        vec![
            ("local".to_owned(), 0, "first".to_owned()),
            ("local".to_owned(), 1, "first".to_owned())
        ]
    );

    // Both devices are held: the next GPU job waits, STARTED on the wire, with its reason,
    // and no worker.
    let second = s.submit(&app, "second", 1).await;
    let job = s.get(&app, &second).await;
    assert_eq!(job["status"], "STARTED");
    assert_eq!(job["waiting_reason"], "waiting for 1 GPU; 0 free");
    assert_eq!(live_services_of(&app, "second").await, 0);
    let third = s.submit(&app, "third", 1).await;
    assert_eq!(
        s.get(&app, &third).await["waiting_reason"],
        "waiting for 1 GPU; 1 earlier job waiting first"
    );
    // The listing says so too.
    let listed = app.get_json("/train_jobs/third", &s.dev).await;
    assert_eq!(
        listed[0]["waiting_reason"],
        "waiting for 1 GPU; 1 earlier job waiting first"
    );

    // A job needing no GPU does not wait behind them.
    let cpu = s.submit(&app, "cpu", 0).await;
    assert!(s.get(&app, &cpu).await.get("waiting_reason").is_none());
    s.running(&app, &cpu).await;
    s.stop(&app, &cpu).await;

    // More than the cluster has: refused at once, nothing written.
    let message = s.refused(&app, "huge", 3).await;
    assert!(
        message.contains("3 GPU(s) asked for; the cluster has 2 in all"),
        "{message}"
    );
    assert_eq!(app.get_json("/train_jobs/huge", &s.dev).await, json!([]));

    // Stopping a waiting job is immediate: it reads STOPPED when the call returns.
    s.stop(&app, &third).await;
    let job = s.get(&app, &third).await;
    assert_eq!(job["status"], "STOPPED");
    assert!(job.get("waiting_reason").is_none(), "{job}");
    assert_eq!(live_services_of(&app, "third").await, 0);

    // Freed devices go to the first waiting job.
    s.stop(&app, &first).await;
    s.running(&app, &second).await;
    assert_eq!(
        allocations(&app).await,
        vec![("local".to_owned(), 0, "second".to_owned())]
    );
    s.stop(&app, &second).await;
    assert_eq!(allocations(&app).await, vec![], "every device is back");
    app.shutdown().await;
}

#[tokio::test]
async fn waiting_jobs_survive_an_admin_restart() {
    if !python_ready() {
        return;
    }
    let database = fresh_database().await;
    let data_dir = std::env::temp_dir().join(format!("rafiki-queue-{}", uuid::Uuid::new_v4()));
    let mut extra = settings("0");
    extra.push(("admin_port", json!(free_port())));
    extra.push(("data_dir", json!(data_dir)));
    let before = spawn_app_on(&database, &extra).await;
    let s = Submitter::new(&before).await;
    let holder = s.submit(&before, "holder", 1).await;
    s.running(&before, &holder).await;
    let waiter = s.submit(&before, "waiter", 1).await;
    assert_eq!(
        s.get(&before, &waiter).await["waiting_reason"],
        "waiting for 1 GPU; 0 free"
    );
    before.shutdown().await;

    let after = spawn_app_on(&database, &extra).await;
    // The holder's worker was adopted and keeps its device; the waiter still waits.
    let job = s.get(&after, &waiter).await;
    assert_eq!(job["status"], "STARTED");
    assert_eq!(job["waiting_reason"], "waiting for 1 GPU; 0 free");
    assert_eq!(
        allocations(&after).await,
        vec![("local".to_owned(), 0, "holder".to_owned())]
    );
    s.stop(&after, &holder).await;
    s.running(&after, &waiter).await;
    s.stop(&after, &waiter).await;
    after.shutdown().await;
}
