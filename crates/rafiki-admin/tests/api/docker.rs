//! The docker backend against the real engine and the project's images: container specs
//! (labels, limits, GPU device requests, published ports), launch failures that leave nothing
//! behind and return GPUs, reconciliation at start-up, and a whole job trained, deployed,
//! queried and stopped in containers.
//!
//! They need a Docker engine with the images of `scripts/build-images.sh`; `scripts/test.sh`
//! builds them and sets `RAFIKI_TEST_DOCKER=1`, which makes these tests run (and fail rather
//! than skip when the engine is unusable). Each test uses its own project name, so parallel
//! tests never reconcile each other's containers away.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::query_parameters::ListContainersOptionsBuilder;
use rafiki_admin::backend::docker::{labels, DockerBackend, DockerSettings};
use rafiki_admin::backend::{Backend, ServiceSpec};
use rafiki_types::status::ServiceType;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::{assert_error, fresh_database, spawn_app_on, TestApp};
use crate::train_jobs::{start_job, wait_for_job, wait_until_ended, SLOW_MODEL};
use crate::uploads::json_ok;

/// The network the tests' containers join.
const NETWORK: &str = "rafiki-test";
const WORKER_IMAGE: &str = "rafiki-rs/worker:latest";
const PREDICTOR_IMAGE: &str = "rafiki-rs/predictor:latest";

/// Whether the docker tests run: only with `RAFIKI_TEST_DOCKER=1`.
fn docker_wanted() -> bool {
    let wanted = std::env::var("RAFIKI_TEST_DOCKER").is_ok_and(|v| v == "1");
    if !wanted {
        eprintln!(
            "skipped: RAFIKI_TEST_DOCKER is not 1 (scripts/test.sh sets it where Docker serves)"
        );
    }
    wanted
}

/// A project name of one test; its containers are removed when the guard drops, so a failing
/// test leaves none behind.
struct Project(String);

impl Project {
    fn new() -> Self {
        Project(format!(
            "rafiki-test-{}",
            &Uuid::new_v4().simple().to_string()[..12]
        ))
    }
}

impl Drop for Project {
    fn drop(&mut self) {
        let listed = std::process::Command::new("docker")
            .args(["ps", "-aq", "--filter"])
            .arg(format!("label={}={}", labels::PROJECT, self.0))
            .output();
        if let Ok(out) = listed {
            let ids: Vec<String> = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(str::to_owned)
                .collect();
            if !ids.is_empty() {
                let _ = std::process::Command::new("docker")
                    .args(["rm", "-f"])
                    .args(&ids)
                    .output();
            }
        }
    }
}

fn docker_settings(project: &str) -> DockerSettings {
    DockerSettings {
        network: NETWORK.into(),
        project: project.into(),
        predictor_image: PREDICTOR_IMAGE.into(),
        cpus: 1.5,
        memory_mb: 1024,
        logs_dir: std::env::temp_dir().join(project),
    }
}

/// A backend on the engine for a project of the test's own (removed with the guard); `None`
/// when the docker tests do not run.
async fn docker_backend() -> Option<(Project, DockerBackend)> {
    if !docker_wanted() {
        return None;
    }
    let project = Project::new();
    let backend = DockerBackend::connect(docker_settings(&project.0))
        .await
        .expect("the engine answers");
    Some((project, backend))
}

/// Admin settings for the docker backend: it must listen where containers reach it.
fn admin_settings(project: &str, gpus: &str) -> Vec<(&'static str, Value)> {
    vec![
        ("backend", json!("docker")),
        ("bind_host", json!("0.0.0.0")),
        ("docker_project", json!(project)),
        ("docker_network", json!(NETWORK)),
        ("gpus", json!(gpus)),
        ("docker_cpus", json!(1.0)),
        ("docker_memory_mb", json!(2048)),
        ("supervise_ms", json!(200)),
    ]
}

/// The ids of the project's containers, running or not.
async fn containers_of(backend: &DockerBackend, project: &str) -> Vec<String> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{}={project}", labels::PROJECT)],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    backend
        .client()
        .list_containers(Some(options))
        .await
        .expect("containers listed")
        .into_iter()
        .filter_map(|c| c.id)
        .collect()
}

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
    ServiceSpec {
        id,
        service_type,
        job_id: Uuid::new_v4(),
        gpus,
        image: WORKER_IMAGE.into(),
        port,
        env,
    }
}

#[tokio::test]
async fn containers_carry_labels_limits_and_a_device_request_for_their_gpus() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    let project = guard.0.clone();
    let spec = service_spec(ServiceType::Train, vec![1, 3], None);
    let container = backend.create(&spec).await.expect("created");
    let inspected = backend
        .client()
        .inspect_container(&container, None)
        .await
        .unwrap();
    assert_eq!(
        inspected.name.as_deref(),
        Some(format!("/{project}-{}", spec.id).as_str())
    );
    let config = inspected.config.unwrap();
    assert_eq!(config.image.as_deref(), Some(WORKER_IMAGE));
    assert_eq!(
        config.cmd.unwrap(),
        vec!["rafiki-worker".to_owned(), "train".to_owned()]
    );
    let labels_of = config.labels.unwrap();
    assert_eq!(labels_of[labels::PROJECT], project);
    assert_eq!(labels_of[labels::SERVICE_ID], spec.id.to_string());
    assert_eq!(labels_of[labels::JOB_ID], spec.job_id.to_string());
    assert_eq!(labels_of[labels::SERVICE_TYPE], "TRAIN");
    let env = config.env.unwrap();
    assert!(
        env.contains(&format!("RAFIKI_SERVICE_ID={}", spec.id)),
        "{env:?}"
    );
    // Inside the container the two devices are the only ones, numbered from 0.
    assert!(
        env.contains(&"CUDA_VISIBLE_DEVICES=0,1".to_owned()),
        "{env:?}"
    );
    assert!(
        !env.iter()
            .any(|v| v.starts_with("RAFIKI_PYTHON=") && v != "RAFIKI_PYTHON=python3"),
        "the admin's interpreter path does not leak into the image: {env:?}"
    );
    assert!(
        !env.iter().any(|v| v.starts_with("DATABASE_URL")),
        "no database credentials: {env:?}"
    );
    let host = inspected.host_config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some(NETWORK));
    assert_eq!(host.nano_cpus, Some(1_500_000_000));
    assert_eq!(host.memory, Some(1024 * 1024 * 1024));
    let requests = host.device_requests.expect("a device request");
    assert_eq!(requests.len(), 1);
    assert_eq!(requests[0].driver.as_deref(), Some("nvidia"));
    assert_eq!(
        requests[0].device_ids.as_deref(),
        Some(&["1".to_owned(), "3".to_owned()][..])
    );
    assert_eq!(
        requests[0].capabilities.as_deref(),
        Some(&[vec!["gpu".to_owned()]][..])
    );

    backend.stop(spec.id, &container).await.expect("stopped");
    assert!(containers_of(&backend, &project).await.is_empty());
    // Stopping what is gone is fine.
    backend
        .stop(spec.id, &container)
        .await
        .expect("stopped twice");

    // A CPU service gets no device request and no devices.
    let cpu = service_spec(ServiceType::Inference, vec![], Some(8080));
    let container = backend.create(&cpu).await.expect("created");
    let inspected = backend
        .client()
        .inspect_container(&container, None)
        .await
        .unwrap();
    let host = inspected.host_config.unwrap();
    assert!(host.device_requests.unwrap_or_default().is_empty());
    assert!(
        host.port_bindings.unwrap_or_default().is_empty(),
        "workers publish nothing"
    );
    let env = inspected.config.unwrap().env.unwrap();
    assert!(env.contains(&"CUDA_VISIBLE_DEVICES=".to_owned()), "{env:?}");
    backend.stop(cpu.id, &container).await.unwrap();
}

#[tokio::test]
async fn a_predictor_publishes_its_port_on_a_host_port_the_engine_picks() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    let project = guard.0.clone();
    // An "admin" that accepts connections and never answers keeps the predictor waiting, and
    // so running (a predictor that cannot reach its admin exits, and exited containers have no
    // published ports).
    let silent = std::net::TcpListener::bind("0.0.0.0:0").unwrap();
    let mut predictor = service_spec(ServiceType::Predict, vec![], Some(3001));
    predictor.image = String::new();
    predictor.env.insert(
        "RAFIKI_ADMIN_URL".to_owned(),
        format!(
            "http://host.docker.internal:{}",
            silent.local_addr().unwrap().port()
        ),
    );
    let launched = backend.start(&predictor).await.expect("started");
    let host_port = launched.published_port.expect("a published port");
    assert_ne!(host_port, 0);
    let inspected = backend
        .client()
        .inspect_container(&launched.backend_id, None)
        .await
        .unwrap();
    assert_eq!(
        inspected.config.unwrap().image.as_deref(),
        Some(PREDICTOR_IMAGE)
    );
    backend
        .stop(predictor.id, &launched.backend_id)
        .await
        .unwrap();
    assert!(containers_of(&backend, &project).await.is_empty());
}

#[tokio::test]
async fn a_failed_launch_is_a_deployment_error_that_leaves_nothing_and_returns_the_gpus() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    let project = guard.0.clone();
    let app = spawn_app_on(&fresh_database().await, &admin_settings(&project, "0,1")).await;
    // A model whose image does not exist: the engine refuses to create its container.
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let form = crate::uploads::RafikiForm::new()
        .text("name", "ghost")
        .text("task", "ANY")
        .text("model_class", "Slow")
        .text("dependencies", "{}")
        .text("docker_image", "rafiki-rs/no-such-image:1")
        .text("access_right", "PRIVATE")
        .file("model_file_bytes", SLOW_MODEL.as_bytes());
    let model = json_ok(app.post_form("/models", &dev, form).await).await;
    let data = crate::train_jobs::dataset(&app, &dev, "ANY", b"x").await;
    let body = |gpus: i64| {
        json!({"app": "ghost", "task": "ANY", "train_dataset_id": data,
               "val_dataset_id": data, "budget": {"GPU_COUNT": gpus, "MODEL_TRIAL_COUNT": 1},
               "model_ids": [model["id"]]})
    };
    for gpus in [1, 2] {
        let res = app
            .send(Method::POST, "/train_jobs", Some(&dev), body(gpus))
            .await;
        let message = assert_error(
            res,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceDeploymentError",
        )
        .await;
        // Docker's own reason; and asking for both GPUs after a failure with one shows the
        // first was returned to the pool (a shortage would say "GPU(s) asked for").
        assert!(message.contains("no-such-image"), "{message}");
        assert!(!message.contains("asked for"), "{message}");
        assert!(containers_of(&backend, &project).await.is_empty());
    }
    let live: i64 = sqlx::query_scalar(
        "select count(*) from services where status in ('STARTED', 'DEPLOYING', 'RUNNING')",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    assert_eq!(live, 0, "no live service is left");
    let jobs = app.get_json("/train_jobs/ghost", &dev).await;
    assert!(
        jobs.as_array()
            .unwrap()
            .iter()
            .all(|j| j["status"] == "ERRORED"),
        "{jobs}"
    );

    // GPU jobs with a real image: where the engine has no NVIDIA runtime (as here) starting
    // fails with the engine's reason; where it has one, the container runs with its device.
    match start_gpu_job(&app, &dev, &data).await {
        Err(message) => {
            assert!(
                message.contains("nvidia") || message.contains("gpu"),
                "{message}"
            );
            assert!(containers_of(&backend, &project).await.is_empty());
        }
        Ok(path) => {
            assert_eq!(containers_of(&backend, &project).await.len(), 1);
            let res = app
                .send(
                    Method::POST,
                    &format!("{path}/stop"),
                    Some(&dev),
                    Value::Null,
                )
                .await;
            assert_eq!(res.status(), StatusCode::OK);
            assert!(containers_of(&backend, &project).await.is_empty());
        }
    }
    app.shutdown().await;
}

/// Starts a one-GPU train job of a model in the worker image: the job path, or the error.
async fn start_gpu_job(app: &TestApp, dev: &str, data: &str) -> Result<String, String> {
    let model =
        crate::train_jobs::model(app, dev, "gpu", "ANY", "Slow", SLOW_MODEL, "PRIVATE").await;
    let res = app
        .send(
            Method::POST,
            "/train_jobs",
            Some(dev),
            json!({"app": "gpu", "task": "ANY", "train_dataset_id": data,
                   "val_dataset_id": data, "budget": {"GPU_COUNT": 1, "MODEL_TRIAL_COUNT": 1},
                   "model_ids": [model]}),
        )
        .await;
    if res.status().is_success() {
        let job = json_ok(res).await;
        Ok(format!("/train_jobs/gpu/{}", job["app_version"]))
    } else {
        let message = assert_error(
            res,
            StatusCode::SERVICE_UNAVAILABLE,
            "ServiceDeploymentError",
        )
        .await;
        Err(message)
    }
}

#[tokio::test]
async fn a_job_trains_deploys_and_serves_in_containers_and_a_restart_adopts_them() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    let project = guard.0.clone();
    // A container of this project that no live service owns, left by an earlier run.
    let stray = service_spec(ServiceType::Train, vec![], None);
    let stray_id = backend.create(&stray).await.unwrap();

    let database = fresh_database().await;
    let settings = admin_settings(&project, "");
    let app = spawn_app_on(&database, &settings).await;
    assert!(
        containers_of(&backend, &project).await.is_empty(),
        "reconciliation removed {stray_id}"
    );

    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"train", b"val"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 2}),
        json!({"seconds": 0.2}),
    )
    .await;
    let job = wait_until_ended(&app, &dev, &path, 240).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let trials = app.get_json(&format!("{path}/trials"), &dev).await;
    let trials = trials.as_array().unwrap();
    assert_eq!(trials.len(), 2, "{trials:?}");
    assert!(
        trials.iter().all(|t| t["status"] == "COMPLETED"),
        "{trials:?}"
    );
    assert!(
        containers_of(&backend, &project).await.is_empty(),
        "finished workers are removed"
    );
    let workers: Vec<Uuid> =
        sqlx::query_scalar("select id from services where service_type = 'TRAIN'")
            .fetch_all(&app.pool)
            .await
            .unwrap();
    for worker in workers {
        let log = app.data_dir.join(format!("services/{worker}/service.log"));
        let kept = std::fs::read_to_string(&log).unwrap_or_default();
        assert!(
            !kept.is_empty(),
            "the removed worker's output is kept in {log:?}"
        );
    }

    let created = json_ok(
        app.send(
            Method::POST,
            "/inference_jobs",
            Some(&dev),
            json!({"app": "myapp", "app_version": -1, "budget": {"GPU_COUNT": 0}}),
        )
        .await,
    )
    .await;
    let host = created["predictor_host"].as_str().unwrap().to_owned();
    wait_for_job(&app, &dev, "/inference_jobs/myapp/1", 120, |j| {
        assert_ne!(j["status"], "ERRORED", "{j}");
        j["status"] == "RUNNING"
    })
    .await;
    assert_eq!(containers_of(&backend, &project).await.len(), 2);
    let predict = |host: String| async move {
        let res = reqwest::Client::new()
            .post(format!("http://{host}/predict"))
            .json(&json!({"query": [1, 2]}))
            .send()
            .await
            .expect("the predictor answers");
        assert_eq!(res.status(), StatusCode::OK);
        res.json::<Value>().await.unwrap()
    };
    let answer = predict(host.clone()).await;
    assert!(answer["prediction"].is_number(), "{answer}");

    // A restarted admin adopts the running containers: still serving, then stopped by it.
    app.shutdown().await;
    let app = spawn_app_on(&database, &settings).await;
    assert_eq!(containers_of(&backend, &project).await.len(), 2);
    // Several supervision steps of the new admin, which must find them running.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = app.get_json("/inference_jobs/myapp/1", &dev).await;
    assert_eq!(running["status"], "RUNNING", "{running}");
    assert_eq!(predict(host).await, answer);
    let res = app
        .send(
            Method::POST,
            "/inference_jobs/myapp/1/stop",
            Some(&dev),
            Value::Null,
        )
        .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert!(containers_of(&backend, &project).await.is_empty());
    let held: Vec<Vec<i32>> = sqlx::query_scalar(
        "select gpus from services where status in ('STARTED', 'DEPLOYING', 'RUNNING')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(held.is_empty(), "no live service holds anything: {held:?}");
    app.shutdown().await;
}
