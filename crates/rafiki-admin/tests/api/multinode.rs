//! The swarm backend on a real multi-node swarm: three Docker engines in containers on this
//! machine (`helpers::swarm_nodes`, `scripts/swarm-nodes.sh`), the admin a separate process
//! on the host talking to the manager's engine. A job's services spread over the nodes, train
//! workers reach the admin from other nodes, a predictor published on its node's address
//! reaches inference workers on other nodes over the overlay network, the service of a node
//! that is stopped is relaunched on another one, and GPUs declared by node labels are placed
//! across nodes, moved off a lost node and queued for; and Rafiki's own Python client does its
//! quickstart (train, deploy, predict, stop) on the three nodes.
//!
//! They run with `RAFIKI_TEST_DOCKER=1` only. The cluster is brought up once for the test
//! process and taken down by the last test to finish; the test that stops a node holds the
//! nodes alone.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use bollard::models::{NodeState, TaskState};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use rafiki_admin::backend::swarm::GPUS_LABEL;

use crate::helpers::jobs::{
    allocations, deploy_latest, predict, start_job, wait_for_job, wait_until_ended, Submitter,
};
use crate::helpers::models::SLOW_MODEL;
use crate::helpers::poll;
use crate::helpers::prerequisites::{build_example_datasets, repo_root};
use crate::helpers::swarm_nodes::{node_addr, ServiceTask, SwarmNodes, SwarmProject, NODE_COUNT};
use crate::helpers::{fresh_database, TestApp, SUPERADMIN_PASSWORD};

/// Two models of the slow one, so that a job has two train workers (one each).
const TWO_MODELS: [(&str, &str, &str); 2] = [
    ("slow-a", "Slow", SLOW_MODEL),
    ("slow-b", "Slow", SLOW_MODEL),
];

/// The test's project on the swarm and an admin for it, on a fresh database.
async fn admin_on(cluster: &SwarmNodes) -> (SwarmProject, TestApp) {
    let project = cluster.project();
    let app = cluster
        .spawn_admin(&fresh_database().await, &project, &[])
        .await;
    (project, app)
}

/// A job of the two slow models with `trials` trials of `seconds` each; (token, path).
async fn two_model_job(app: &TestApp, trials: u32, seconds: u32) -> (String, String) {
    start_job(
        app,
        "ANY",
        (b"train", b"val"),
        &TWO_MODELS,
        json!({"MODEL_TRIAL_COUNT": trials}),
        json!({"seconds": seconds}),
    )
    .await
}

/// Stops a job through the API.
async fn stop(app: &TestApp, token: &str, path: &str) {
    let res = app.send(Method::POST, path, Some(token), Value::Null).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
}

/// Waits until the project has no Swarm service left.
async fn wait_until_no_service(cluster: &SwarmNodes, project: &SwarmProject) {
    poll::until(
        "no service of the project left",
        Duration::from_secs(60),
        Duration::from_millis(300),
        async || match cluster.tasks(project).await {
            left if left.is_empty() => Ok(()),
            left => Err(format!("{left:?}")),
        },
    )
    .await;
}

/// Adds the nodes of the project's `service_type` tasks to `placed` (by Rafiki service); `Ok`
/// once they are on at least two nodes.
fn on_two_nodes(
    placed: &mut BTreeMap<String, String>,
    tasks: &[ServiceTask],
    service_type: &str,
) -> Result<BTreeSet<String>, String> {
    for task in tasks.iter().filter(|t| t.service_type == service_type) {
        if let Some(node) = &task.node_id {
            placed.insert(task.service_id.clone(), node.clone());
        }
    }
    let nodes: BTreeSet<String> = placed.values().cloned().collect();
    if nodes.len() >= 2 {
        Ok(nodes)
    } else {
        Err(format!("{service_type} placed {placed:?}; tasks {tasks:?}"))
    }
}

#[tokio::test]
async fn a_job_spreads_over_nodes_and_its_predictor_answers_on_a_node_address() {
    let Some(cluster) = SwarmNodes::shared().await else {
        return;
    };
    let (project, app) = admin_on(&cluster).await;
    let (dev, path) = two_model_job(&app, 2, 1).await;

    // The two train workers go to two nodes (the least loaded ones), where they train and
    // report to the admin on the host.
    let mut placed = BTreeMap::new();
    let train_nodes = poll::until(
        "the train workers placed on two nodes",
        Duration::from_secs(120),
        Duration::from_millis(250),
        async || on_two_nodes(&mut placed, &cluster.tasks(&project).await, "TRAIN"),
    )
    .await;
    let job = wait_until_ended(&app, &dev, &path, 300).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trials = trials.as_array().unwrap();
    assert_eq!(trials.len(), 4, "two trials of each model: {trials:?}");
    assert!(
        trials.iter().all(|t| t["status"] == "COMPLETED"),
        "workers on every node reached the admin: {trials:?}"
    );
    let manager = cluster.node(1).await.id;
    assert!(
        train_nodes.iter().any(|n| *n != manager),
        "a worker ran on a node other than the manager: {train_nodes:?}"
    );
    wait_until_no_service(&cluster, &project).await;

    // The predictor and the two inference workers spread over the nodes too; the predictor
    // is published on its node's address and reaches workers on other nodes by their names.
    deploy_latest(&app, &dev, "myapp").await;
    let job = wait_for_job(&app, &dev, "/inference_jobs/myapp/1", 180, |j| {
        assert_ne!(j["status"], "ERRORED", "{j}");
        j["status"] == "RUNNING"
    })
    .await;
    let host = job["predictor_host"].as_str().unwrap().to_owned();
    let (ip, _) = host.split_once(':').expect("host:port");
    let addrs: Vec<String> = (1..=NODE_COUNT).map(node_addr).collect();
    assert!(
        addrs.iter().any(|a| a == ip),
        "the predictor is published on a node's address: {host}"
    );
    let tasks = cluster.tasks(&project).await;
    assert_eq!(tasks.len(), 3, "a predictor and two workers: {tasks:?}");
    assert!(
        tasks.iter().all(|t| t.state == Some(TaskState::RUNNING)),
        "{tasks:?}"
    );
    let predictor = tasks.iter().find(|t| t.service_type == "PREDICT").unwrap();
    let predictor_node = cluster
        .index_of(predictor.node_id.as_deref().unwrap())
        .await;
    assert_eq!(ip, node_addr(predictor_node), "its own node's address");
    assert_eq!(
        ip,
        cluster.node(predictor_node).await.addr,
        "as Swarm has it"
    );
    assert!(
        tasks
            .iter()
            .filter(|t| t.service_type == "INFERENCE")
            .any(|t| t.node_id != predictor.node_id),
        "an inference worker on another node than the predictor: {tasks:?}"
    );
    predict(&host).await;

    stop(&app, &dev, "/inference_jobs/myapp/1/stop").await;
    wait_until_no_service(&cluster, &project).await;
    app.shutdown().await;
}

#[tokio::test]
async fn a_stopped_node_s_service_is_relaunched_on_another_node() {
    let Some(cluster) = SwarmNodes::exclusive().await else {
        return;
    };
    let (project, app) = admin_on(&cluster).await;
    // Two workers, so that one runs on a node other than the manager (the node choice spreads
    // them); trials of 2 s, enough of them to outlast the node's loss and the relaunch.
    let (dev, path) = two_model_job(&app, 12, 2).await;
    let manager = cluster.node(1).await.id;
    let victim = poll::until(
        "a train worker running on a node other than the manager",
        Duration::from_secs(120),
        Duration::from_millis(250),
        async || {
            let tasks = cluster.tasks(&project).await;
            tasks
                .iter()
                .find(|t| {
                    t.state == Some(TaskState::RUNNING)
                        && t.node_id.as_ref().is_some_and(|n| *n != manager)
                })
                .cloned()
                .ok_or_else(|| format!("{tasks:?}"))
        },
    )
    .await;
    let lost = cluster.index_of(victim.node_id.as_deref().unwrap()).await;
    let lost_id = victim.node_id.clone().unwrap();
    // A label, as an operator declares a node's GPUs: a node that comes back keeps it.
    cluster.label_node(lost, "rafiki-test.mark", "lost").await;
    // A trial of it under way: the worker is at work when its node goes.
    wait_for_job(&app, &dev, &path, 120, |j| j["status"] == "RUNNING").await;
    cluster.stop_node(lost).await;

    // The same Rafiki service, relaunched as a new Swarm service on a node that is up.
    let relaunched = poll::until(
        "the lost worker's service relaunched on another node",
        Duration::from_secs(120),
        Duration::from_millis(300),
        async || {
            let tasks = cluster.tasks(&project).await;
            tasks
                .iter()
                .find(|t| {
                    t.service_id == victim.service_id
                        && t.service != victim.service
                        && t.state == Some(TaskState::RUNNING)
                })
                .cloned()
                .ok_or_else(|| format!("node {lost_id} lost; tasks {tasks:?}"))
        },
    )
    .await;
    assert_ne!(relaunched.node_id.as_deref(), Some(lost_id.as_str()));

    // The job carries on without the lost node and ends normally: every trial of the budget
    // completed but, at most, the one under way on the lost node.
    let job = wait_until_ended(&app, &dev, &path, 300).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let completed = trials
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["status"] == "COMPLETED")
        .count();
    assert!(
        completed >= 2 * 12 - 1,
        "the budget's trials completed: {trials}"
    );
    wait_until_no_service(&cluster, &project).await;

    // The node comes back and is Ready for what comes next.
    cluster.start_node(lost).await;
    let back = cluster.node(lost).await;
    assert_eq!(back.state, Some(NodeState::READY));
    assert_eq!(back.id, lost_id, "the same node, not a new one");
    assert_eq!(back.labels["rafiki-test.mark"], "lost", "its labels kept");
    app.shutdown().await;
}

/// Polls until `check` passes (it says what it saw when not).
async fn eventually<T>(what: &str, check: impl AsyncFnMut() -> Result<T, String>) -> T {
    poll::until(
        what,
        Duration::from_secs(120),
        Duration::from_millis(300),
        check,
    )
    .await
}

#[tokio::test]
async fn gpus_labelled_on_two_nodes_are_placed_across_them_and_move_when_a_node_is_lost() {
    let Some(cluster) = SwarmNodes::exclusive().await else {
        return;
    };
    // Node 1 (the manager) has no GPU, node 2 one, node 3 two.
    cluster.label_node(2, GPUS_LABEL, "0").await;
    cluster.label_node(3, GPUS_LABEL, "0,1").await;
    let (node2, node3) = (cluster.node(2).await.id, cluster.node(3).await.id);
    let (project, app) = admin_on(&cluster).await;
    let s = Submitter::new(&app).await;
    let held = |node: &str, device: i32, job: &str| (node.to_owned(), device, job.to_owned());

    // Two workers of one GPU each: one per GPU node, the least loaded first.
    let first = s.submit(&app, "first", 2).await;
    s.running(&app, &first).await;
    let mut expected = vec![held(&node2, 0, "first"), held(&node3, 0, "first")];
    expected.sort();
    assert_eq!(allocations(&app).await, expected);
    let tasks = cluster.tasks(&project).await;
    let nodes: BTreeSet<Option<String>> = tasks.iter().map(|t| t.node_id.clone()).collect();
    assert_eq!(
        nodes,
        BTreeSet::from([Some(node2.clone()), Some(node3.clone())]),
        "{tasks:?}"
    );

    // The cluster's third device is not enough for a job of two: it waits.
    let second = s.submit(&app, "second", 2).await;
    assert_eq!(
        s.get(&app, &second).await["waiting_reason"],
        "waiting for 2 GPUs; 1 free"
    );

    // Node 2 is lost: its worker moves to node 3's free device, node 2's device is given
    // back (with node 2 gone, the waiting job now sees none free).
    cluster.stop_node(2).await;
    let both_on_3 = vec![held(&node3, 0, "first"), held(&node3, 1, "first")];
    eventually(
        "the lost worker's device moved to node 3",
        async || match allocations(&app).await {
            now if now == both_on_3 => Ok(()),
            now => Err(format!("{now:?}")),
        },
    )
    .await;
    eventually("both workers running on node 3", async || {
        let tasks = cluster.tasks(&project).await;
        let on_3 = tasks
            .iter()
            .filter(|t| t.node_id.as_deref() == Some(node3.as_str()))
            .filter(|t| t.state == Some(TaskState::RUNNING))
            .count();
        if on_3 == 2 {
            Ok(())
        } else {
            Err(format!("{tasks:?}"))
        }
    })
    .await;
    let waiting = |reason: &'static str| {
        let (app, s, second) = (&app, &s, &second);
        async move || {
            let job = s.get(app, second).await;
            if job["waiting_reason"] == reason {
                Ok(())
            } else {
                Err(job.to_string())
            }
        }
    };
    eventually("no device free", waiting("waiting for 2 GPUs; 0 free")).await;

    // Node 2 back: its device is free again, still one short.
    cluster.start_node(2).await;
    eventually(
        "node 2's device free",
        waiting("waiting for 2 GPUs; 1 free"),
    )
    .await;

    // The first job stops: the waiting one gets two devices.
    s.stop(&app, &first).await;
    s.running(&app, &second).await;
    let now = allocations(&app).await;
    assert_eq!(now.len(), 2, "{now:?}");
    assert!(now.iter().all(|(_, _, job)| job == "second"), "{now:?}");
    s.stop(&app, &second).await;
    assert_eq!(allocations(&app).await, vec![], "every device given back");
    wait_until_no_service(&cluster, &project).await;
    app.shutdown().await;
    cluster.unlabel_node(2, GPUS_LABEL).await;
    cluster.unlabel_node(3, GPUS_LABEL).await;
}

#[tokio::test]
async fn rafiki_s_own_client_trains_deploys_predicts_and_stops_on_three_nodes() {
    let Some(cluster) = SwarmNodes::shared().await else {
        return;
    };
    let (project, app) = admin_on(&cluster).await;
    let port = app.address.rsplit(':').next().unwrap().to_owned();
    let data = build_example_datasets();
    // The end-to-end script of the compose and stack deployments, through Rafiki's Python
    // client: an example model trained (2 trials), deployed, queried on the predictor's node
    // address, stopped.
    let script = repo_root().join("scripts/e2e_compose.py");
    let out = tokio::process::Command::new(std::env::var("RAFIKI_PYTHON").unwrap())
        .arg(&script)
        .arg(&data)
        .env("E2E_ADMIN_PORT", &port)
        .env("E2E_BACKEND", "swarm")
        .env("SUPERADMIN_PASSWORD", SUPERADMIN_PASSWORD)
        .output()
        .await
        .expect("the script runs");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{said}");
    assert!(said.contains("== predicted through 172.31.250.1"), "{said}");
    wait_until_no_service(&cluster, &project).await;
    app.shutdown().await;
}
