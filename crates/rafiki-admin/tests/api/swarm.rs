//! The swarm backend against the real engine and the project's images, on a single-node
//! swarm: service specs (labels, limits, node constraint, environment, endpoints, restart
//! policy), a task no node takes failing with Swarm's reason, a whole job trained, deployed,
//! queried and stopped in Swarm services, an admin restart adopting them, and a killed task's
//! service relaunched by the orchestrator.
//!
//! They run with `RAFIKI_TEST_DOCKER=1` only, as the docker tests do. When the engine is in no
//! swarm, the first of them makes one (`docker swarm init --advertise-addr 127.0.0.1`) and the
//! last one to finish leaves it; a swarm the tests did not make is never left. Each test uses
//! its own project and network, whose services, containers, networks and volumes it removes.

use std::collections::{BTreeMap, HashMap};
use std::process::Command;
use std::sync::Mutex;
use std::time::Duration;

use bollard::models::{
    EndpointPortConfigPublishModeEnum, EndpointSpecModeEnum, TaskSpecRestartPolicyConditionEnum,
};
use bollard::query_parameters::ListContainersOptionsBuilder;
use rafiki_admin::backend::docker::labels;
use rafiki_admin::backend::docker::DockerSettings;
use rafiki_admin::backend::swarm::{SwarmBackend, SwarmSettings, GPUS_LABEL, NODE_LABEL};
use rafiki_admin::backend::{Backend, Owners, ServiceSpec, ServiceState};
use rafiki_types::status::ServiceType;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::jobs::{
    assert_train_workers_output_kept, deploy_latest, predict, start_job, two_slow_trials,
    wait_for_job, wait_until_ended, Submitter,
};
use crate::helpers::models::SLOW_MODEL;
use crate::helpers::{docker_cli, poll};
use crate::helpers::{fresh_database, spawn_app_on, TestApp};

const WORKER_IMAGE: &str = "rafiki-rs/worker:latest";
const PREDICTOR_IMAGE: &str = "rafiki-rs/predictor:latest";
/// The docker tests' pids limit, for the same reasons.
const PIDS_LIMIT: u64 = 200;

/// The tests holding the swarm, and whether they made it (then the last one leaves it).
static SWARM: Mutex<(usize, bool)> = Mutex::new((0, false));

/// A test's hold on the engine's swarm, made when there is none.
struct SwarmLease;

impl SwarmLease {
    fn take() -> Self {
        let mut held = SWARM.lock().unwrap_or_else(|e| e.into_inner());
        if held.0 == 0 {
            let state = docker_cli::run(&["info", "--format", "{{.Swarm.LocalNodeState}}"]);
            if state.trim() == "inactive" {
                docker_cli::run(&["swarm", "init", "--advertise-addr", "127.0.0.1"]);
                held.1 = true;
            } else {
                assert_eq!(state.trim(), "active", "the engine's swarm is usable");
            }
        }
        held.0 += 1;
        SwarmLease
    }
}

impl Drop for SwarmLease {
    fn drop(&mut self) {
        let mut held = SWARM.lock().unwrap_or_else(|e| e.into_inner());
        held.0 -= 1;
        if held.0 == 0 && held.1 {
            let _ = Command::new("docker")
                .args(["swarm", "leave", "--force"])
                .output();
            held.1 = false;
        }
    }
}

/// A test's project on the swarm; its services, containers, network and volumes are removed
/// when it drops, before its lease on the swarm goes.
struct Project {
    name: String,
    _lease: SwarmLease,
}

impl Project {
    fn new() -> Self {
        let lease = SwarmLease::take();
        Project {
            name: format!("rafiki-test-{}", &Uuid::new_v4().simple().to_string()[..12]),
            _lease: lease,
        }
    }

    fn network(&self) -> String {
        format!("{}-net", self.name)
    }

    /// The ids of the project's objects of one kind on the engine.
    fn listed(&self, kind: &str) -> Vec<String> {
        docker_cli::listed(None, kind, &self.name)
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        for service in self.listed("service") {
            let _ = Command::new("docker")
                .args(["service", "rm", &service])
                .output();
        }
        // Swarm removes the containers of removed services in the background.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !self.listed("container").is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(500));
        }
        for container in self.listed("container") {
            let _ = Command::new("docker")
                .args(["rm", "-f", "-v", &container])
                .output();
        }
        for kind in ["network", "volume"] {
            for id in self.listed(kind) {
                let _ = Command::new("docker").args([kind, "rm", &id]).output();
            }
        }
    }
}

fn swarm_settings(project: &Project, pending_timeout: Duration) -> SwarmSettings {
    SwarmSettings {
        container: DockerSettings {
            project: project.name.clone(),
            predictor_image: PREDICTOR_IMAGE.into(),
            cpus: 1.5,
            memory_mb: 1024,
            pids_limit: PIDS_LIMIT,
            logs_dir: std::env::temp_dir().join(&project.name),
        },
        network: project.network(),
        pending_timeout,
    }
}

/// A backend for a project of the test's own; `None` when the swarm tests do not run.
async fn swarm_backend(pending_timeout: Duration) -> Option<(Project, SwarmBackend)> {
    if !docker_cli::wanted() {
        return None;
    }
    let project = Project::new();
    let backend = SwarmBackend::connect(swarm_settings(&project, pending_timeout))
        .await
        .expect("the manager answers");
    Some((project, backend))
}

/// Admin settings for the swarm backend: it must listen where services reach it.
fn admin_settings(project: &Project) -> Vec<(&'static str, Value)> {
    vec![
        ("backend", json!("swarm")),
        ("bind_host", json!("0.0.0.0")),
        ("docker_project", json!(project.name)),
        ("swarm_network", json!(project.network())),
        ("docker_cpus", json!(1.0)),
        ("docker_memory_mb", json!(2048)),
        ("docker_pids_limit", json!(PIDS_LIMIT)),
        ("supervise_ms", json!(200)),
    ]
}

/// The project's Swarm services, as (Swarm id, Rafiki service id label).
async fn services_of(backend: &SwarmBackend, project: &Project) -> Vec<(String, String)> {
    let mut services: Vec<(String, String)> =
        docker_cli::swarm_services(backend.client(), &project.name)
            .await
            .into_iter()
            .map(|s| {
                let labels_of = s.spec.and_then(|s| s.labels).unwrap_or_default();
                (s.id.unwrap(), labels_of[labels::SERVICE_ID].clone())
            })
            .collect();
    services.sort();
    services
}

/// Waits until the project's services satisfy `expected`; returns them.
async fn wait_for_services(
    backend: &SwarmBackend,
    project: &Project,
    seconds: u64,
    what: &str,
    mut expected: impl FnMut(&[(String, String)]) -> bool,
) -> Vec<(String, String)> {
    poll::until(
        what,
        Duration::from_secs(seconds),
        Duration::from_millis(300),
        async || match services_of(backend, project).await {
            now if expected(&now) => Ok(now),
            now => Err(format!("{now:?}")),
        },
    )
    .await
}

/// The engine's own node id in its swarm (the only node).
fn this_node() -> String {
    docker_cli::run(&["info", "--format", "{{.Swarm.NodeID}}"])
        .trim()
        .to_owned()
}

/// A service placed on this node.
fn service_spec(service_type: ServiceType, gpus: Vec<i32>, port: Option<u16>) -> ServiceSpec {
    let id = Uuid::new_v4();
    let mut env = BTreeMap::from([
        ("RAFIKI_SERVICE_ID".to_owned(), id.to_string()),
        (
            "RAFIKI_ADMIN_URL".to_owned(),
            "http://127.0.0.1:9".to_owned(),
        ),
    ]);
    if let Some(port) = port {
        env.insert("RAFIKI_PORT".to_owned(), port.to_string());
        env.insert("RAFIKI_BIND_HOST".to_owned(), "0.0.0.0".to_owned());
    }
    let owner = Uuid::new_v4();
    ServiceSpec {
        id,
        service_type,
        job_id: Uuid::new_v4(),
        node: this_node(),
        gpus,
        image: WORKER_IMAGE.into(),
        port,
        env,
        owners: (service_type != ServiceType::Predict).then_some(Owners {
            job: owner,
            model: owner,
        }),
    }
}

#[tokio::test]
async fn swarm_services_carry_labels_limits_a_node_constraint_and_dnsrr_endpoints() {
    let Some((project, backend)) = swarm_backend(Duration::from_secs(2)).await else {
        return;
    };
    let spec = service_spec(ServiceType::Train, vec![1, 3], None);
    let launched = backend.start(&spec).await.expect("started");
    assert_eq!(launched.published_port, None);
    let inspected = backend
        .client()
        .inspect_service(&launched.backend_id, None)
        .await
        .unwrap();
    let service = inspected.spec.unwrap();
    assert_eq!(
        service.name.as_deref(),
        Some(format!("{}-{}", project.name, spec.id).as_str())
    );
    let labels_of = service.labels.unwrap();
    assert_eq!(labels_of[labels::PROJECT], project.name);
    assert_eq!(labels_of[labels::SERVICE_ID], spec.id.to_string());
    assert_eq!(labels_of[labels::JOB_ID], spec.job_id.to_string());
    assert_eq!(labels_of[labels::SERVICE_TYPE], "TRAIN");
    assert_eq!(labels_of[NODE_LABEL], this_node());
    assert_eq!(
        service.mode.unwrap().replicated.unwrap().replicas,
        Some(1),
        "one replica"
    );
    let endpoint = service.endpoint_spec.unwrap();
    assert_eq!(endpoint.mode, Some(EndpointSpecModeEnum::DNSRR));
    assert!(
        endpoint.ports.unwrap_or_default().is_empty(),
        "workers publish nothing"
    );

    let task = service.task_template.unwrap();
    let container = task.container_spec.unwrap();
    assert_eq!(container.image.as_deref(), Some(WORKER_IMAGE));
    assert_eq!(
        container.command.unwrap(),
        vec!["rafiki-worker".to_owned(), "train".to_owned()]
    );
    assert_eq!(container.user.as_deref(), Some("10001:10001"));
    assert_eq!(container.read_only, Some(true));
    assert_eq!(container.capability_drop, Some(vec!["ALL".to_owned()]));
    assert_eq!(
        container.labels.unwrap()[labels::SERVICE_ID],
        spec.id.to_string()
    );
    let env = container.env.unwrap();
    assert!(
        env.contains(&format!("RAFIKI_SERVICE_ID={}", spec.id)),
        "{env:?}"
    );
    assert!(
        env.contains(&"NVIDIA_VISIBLE_DEVICES=1,3".to_owned()),
        "{env:?}"
    );
    assert!(
        env.contains(&"CUDA_VISIBLE_DEVICES=0,1".to_owned()),
        "{env:?}"
    );
    assert!(
        !env.iter().any(|v| v.starts_with("DATABASE_URL")),
        "no database credentials: {env:?}"
    );
    let limits = task.resources.unwrap().limits.unwrap();
    assert_eq!(limits.nano_cpus, Some(1_500_000_000));
    assert_eq!(limits.memory_bytes, Some(1024 * 1024 * 1024));
    assert_eq!(limits.pids, Some(PIDS_LIMIT as i64));
    assert_eq!(
        task.restart_policy.unwrap().condition,
        Some(TaskSpecRestartPolicyConditionEnum::NONE)
    );
    assert_eq!(
        task.placement.unwrap().constraints.unwrap(),
        vec![format!("node.id == {}", this_node())]
    );
    let networks = task.networks.unwrap();
    assert_eq!(networks.len(), 1);
    let network = docker_cli::run(&[
        "network",
        "inspect",
        "--format",
        "{{.Id}}",
        &project.network(),
    ]);
    assert_eq!(networks[0].target.as_deref(), Some(network.trim()));

    backend
        .stop(spec.id, &launched.backend_id)
        .await
        .expect("stopped");
    assert!(services_of(&backend, &project).await.is_empty());
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{}={}", labels::SERVICE_ID, spec.id)],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let left = backend
        .client()
        .list_containers(Some(options))
        .await
        .unwrap();
    assert!(left.is_empty(), "stop waits for the containers: {left:?}");
    assert_eq!(
        backend.state(spec.id, &launched.backend_id).await,
        ServiceState::Missing
    );
    backend
        .stop(spec.id, &launched.backend_id)
        .await
        .expect("stopping what is gone is fine");

    // A task that no node can take waits, then fails with Swarm's reason.
    let mut stranded = service_spec(ServiceType::Inference, vec![], Some(8080));
    stranded.node = "no-such-node".into();
    let created = backend
        .client()
        .create_service(backend.definition(&stranded), None)
        .await
        .unwrap();
    let id = created.id.unwrap();
    let failed = poll::until(
        "the stranded service failed",
        Duration::from_secs(60),
        Duration::from_millis(300),
        async || match backend.state(stranded.id, &id).await {
            ServiceState::Failed(why) => Ok(why),
            other => Err(format!("{other:?}")),
        },
    )
    .await;
    assert!(failed.contains("no suitable node"), "{failed}");
    backend.stop(stranded.id, &id).await.expect("stopped");
}

#[tokio::test]
async fn a_predictor_is_published_in_host_mode_on_its_nodes_address() {
    let Some((project, backend)) = swarm_backend(Duration::from_secs(60)).await else {
        return;
    };
    // An "admin" that accepts connections and never answers keeps the predictor waiting, and
    // so running (with the settings a predictor needs: without them it exits at once).
    let silent = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let mut predictor = service_spec(ServiceType::Predict, vec![], Some(3001));
    for secret in ["RAFIKI_SERVICE_TOKEN", "RAFIKI_PREDICT_SECRET"] {
        predictor.env.insert(
            secret.to_owned(),
            format!("{}{}", Uuid::new_v4().simple(), Uuid::new_v4().simple()),
        );
    }
    predictor.env.insert(
        "RAFIKI_ADMIN_URL".to_owned(),
        format!(
            "http://host.docker.internal:{}",
            silent.local_addr().unwrap().port()
        ),
    );
    let launched = backend.start(&predictor).await.expect("started");
    let port = launched.published_port.expect("a published port");
    let addr = docker_cli::run(&["info", "--format", "{{.Swarm.NodeAddr}}"]);
    assert_eq!(launched.published_host.as_deref(), Some(addr.trim()));
    let endpoint = backend
        .client()
        .inspect_service(&launched.backend_id, None)
        .await
        .unwrap()
        .spec
        .unwrap()
        .endpoint_spec
        .unwrap();
    let ports = endpoint.ports.unwrap();
    assert_eq!(ports.len(), 1);
    assert_eq!(ports[0].target_port, Some(3001));
    assert_eq!(
        ports[0].publish_mode,
        Some(EndpointPortConfigPublishModeEnum::HOST)
    );
    assert_ne!(port, 0);
    // (That the port serves on the node's address is checked with a predictor that has its
    // admin and listens, in the whole job's test: this one waits for its admin, unlistening.)
    backend
        .stop(predictor.id, &launched.backend_id)
        .await
        .unwrap();
    assert!(services_of(&backend, &project).await.is_empty());
}

#[tokio::test]
async fn a_job_trains_deploys_and_serves_on_swarm_services_and_a_restart_adopts_them() {
    let Some((project, backend)) = swarm_backend(Duration::from_secs(60)).await else {
        return;
    };
    // A service of this project that no live service owns, left by an earlier run.
    let stray = service_spec(ServiceType::Train, vec![], None);
    backend.start(&stray).await.unwrap();

    let database = fresh_database().await;
    let settings = admin_settings(&project);
    let app = spawn_app_on(&database, &settings).await;
    assert!(
        services_of(&backend, &project).await.is_empty(),
        "reconciliation removed the stray service"
    );

    let (dev, _) = two_slow_trials(&app, 300).await;
    wait_for_services(&backend, &project, 60, "finished workers removed", |s| {
        s.is_empty()
    })
    .await;
    assert_train_workers_output_kept(&app).await;

    let created = deploy_latest(&app, &dev, "myapp").await;
    let host = created["predictor_host"].as_str().unwrap().to_owned();
    let addr = docker_cli::run(&["info", "--format", "{{.Swarm.NodeAddr}}"]);
    assert!(
        host.starts_with(&format!("{}:", addr.trim())),
        "published on the node's address: {host}"
    );
    wait_for_job(&app, &dev, "/inference_jobs/myapp/1", 180, |j| {
        assert_ne!(j["status"], "ERRORED", "{j}");
        j["status"] == "RUNNING"
    })
    .await;
    let running = services_of(&backend, &project).await;
    assert_eq!(running.len(), 2, "a predictor and a worker: {running:?}");
    let answer = predict(&host).await;

    // A restarted admin adopts the running services: still serving, then stopped by it.
    app.shutdown().await;
    let app = spawn_app_on(&database, &settings).await;
    assert_eq!(services_of(&backend, &project).await, running);
    // Several supervision steps of the new admin, which must find them running. A sleep, not
    // a poll: what is checked is that nothing happens to them while time passes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let job = app.get_json("/inference_jobs/myapp/1", &dev).await;
    assert_eq!(job["status"], "RUNNING", "{job}");
    assert_eq!(job["predictor_host"], host.as_str());
    assert_eq!(predict(&host).await, answer);
    stop(&app, &dev, "/inference_jobs/myapp/1/stop").await;
    assert!(services_of(&backend, &project).await.is_empty());
    app.shutdown().await;
}

/// Stops a job through the API.
async fn stop(app: &TestApp, token: &str, path: &str) {
    let res = app.send(Method::POST, path, Some(token), Value::Null).await;
    assert_eq!(res.status(), StatusCode::OK, "{path}");
}

#[tokio::test]
async fn a_killed_tasks_service_is_relaunched_by_the_orchestrator() {
    let Some((project, backend)) = swarm_backend(Duration::from_secs(60)).await else {
        return;
    };
    let database = fresh_database().await;
    let app = spawn_app_on(&database, &admin_settings(&project)).await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"train", b"val"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 100}),
        json!({"seconds": 1}),
    )
    .await;
    wait_for_job(&app, &dev, &path, 300, |j| j["status"] == "RUNNING").await;
    let first = wait_for_services(&backend, &project, 60, "one worker", |s| s.len() == 1).await;
    let container = docker_cli::run(&[
        "ps",
        "-q",
        "--filter",
        &format!("label={}={}", labels::SERVICE_ID, first[0].1),
    ]);
    assert!(!container.trim().is_empty(), "the worker's container runs");
    docker_cli::run(&["kill", container.trim()]);

    // The same Rafiki service, relaunched as a new Swarm service.
    wait_for_services(&backend, &project, 120, "the relaunch", |s| {
        s.len() == 1 && s[0].0 != first[0].0 && s[0].1 == first[0].1
    })
    .await;
    let restarts: i32 = sqlx::query_scalar("select restarts from services where id = $1")
        .bind(first[0].1.parse::<Uuid>().unwrap())
        .fetch_one(&app.pool)
        .await
        .unwrap();
    assert_eq!(restarts, 1);
    stop(&app, &dev, &format!("{path}/stop")).await;
    let job = wait_until_ended(&app, &dev, &path, 60).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    assert!(services_of(&backend, &project).await.is_empty());
    app.shutdown().await;
}

/// The `rafiki.gpus` label of this engine's node, set for a test and put back as it was.
struct GpuLabel {
    node: String,
    before: Option<String>,
}

impl GpuLabel {
    fn set(devices: &str) -> Self {
        let node = this_node();
        let before = docker_cli::run(&[
            "node",
            "inspect",
            &node,
            "--format",
            &format!("{{{{index .Spec.Labels \"{GPUS_LABEL}\"}}}}"),
        ]);
        let before = Some(before.trim().to_owned()).filter(|b| !b.is_empty() && b != "<no value>");
        let label = GpuLabel { node, before };
        label.put(Some(devices));
        label
    }

    /// Sets the label to `devices`, or removes it.
    fn put(&self, devices: Option<&str>) {
        let added;
        let change = match devices {
            Some(devices) => {
                added = format!("{GPUS_LABEL}={devices}");
                ["--label-add", added.as_str()]
            }
            None => ["--label-rm", GPUS_LABEL],
        };
        docker_cli::run(&["node", "update", change[0], change[1], &self.node]);
    }
}

impl Drop for GpuLabel {
    fn drop(&mut self) {
        let before = self.before.clone();
        // Not `put`: a panic while unwinding would abort the test run.
        let args: Vec<String> = match before {
            Some(before) => vec!["--label-add".into(), format!("{GPUS_LABEL}={before}")],
            None => vec!["--label-rm".into(), GPUS_LABEL.into()],
        };
        let _ = Command::new("docker")
            .args(["node", "update"])
            .args(&args)
            .arg(&self.node)
            .output();
    }
}

#[tokio::test]
async fn gpus_declared_by_a_node_label_are_placed_queued_and_given_back() {
    let Some((project, backend)) = swarm_backend(Duration::from_secs(60)).await else {
        return;
    };
    let label = GpuLabel::set("0");
    let app = spawn_app_on(&fresh_database().await, &admin_settings(&project)).await;
    let s = Submitter::new(&app).await;
    let first = s.submit(&app, "first", 1).await;
    s.running(&app, &first).await;
    let node = this_node();
    let held: Vec<(String, i32)> = sqlx::query_as("select node, device from gpu_allocations")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(held, vec![(node.clone(), 0)]);
    // The worker's service is pinned to the node and given the labelled device.
    let services = services_of(&backend, &project).await;
    assert_eq!(services.len(), 1, "{services:?}");
    let spec = backend
        .client()
        .inspect_service(&services[0].0, None)
        .await
        .unwrap()
        .spec
        .unwrap();
    assert_eq!(spec.labels.unwrap()[NODE_LABEL], node);
    let env = spec
        .task_template
        .unwrap()
        .container_spec
        .unwrap()
        .env
        .unwrap();
    for var in ["NVIDIA_VISIBLE_DEVICES=0", "CUDA_VISIBLE_DEVICES=0"] {
        assert!(env.contains(&var.to_owned()), "{var} in {env:?}");
    }

    let second = s.submit(&app, "second", 1).await;
    let reason = "waiting for 1 GPU; 0 free";
    assert_eq!(s.get(&app, &second).await["waiting_reason"], reason);
    // The operator takes the label away while the job waits: it goes on waiting, and the
    // device the first job holds is given back when it stops, to nobody.
    label.put(None);
    s.stop(&app, &first).await;
    // A few supervision steps, which must not start it (a sleep: nothing is to happen).
    tokio::time::sleep(Duration::from_secs(1)).await;
    let job = s.get(&app, &second).await;
    assert_eq!(
        (&job["status"], &job["waiting_reason"]),
        (&json!("STARTED"), &json!(reason))
    );
    assert_eq!(app.count_rows("gpu_allocations").await, 0);
    // With no GPU left in the cluster, a new GPU job is refused rather than queued.
    let message = s.refused(&app, "third", 1).await;
    assert!(message.contains("the cluster has 0 in all"), "{message}");
    // The label comes back: the waiting job starts on the device.
    label.put(Some("0"));
    s.running(&app, &second).await;
    let held: Vec<(String, i32)> = sqlx::query_as("select node, device from gpu_allocations")
        .fetch_all(&app.pool)
        .await
        .unwrap();
    assert_eq!(held, vec![(node, 0)]);
    s.stop(&app, &second).await;
    assert!(services_of(&backend, &project).await.is_empty());
    app.shutdown().await;
}
