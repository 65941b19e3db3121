//! The docker backend against the real engine and the project's images: container specs
//! (labels, limits, hardening, GPU device requests, published ports), one network per job,
//! launch failures that leave nothing behind and return GPUs, reconciliation at start-up,
//! dependency-environment volumes per owner, a
//! whole job trained, deployed, queried and stopped in containers, and hostile models that try
//! to escape their container. The allow-list of images needs no engine and always runs.
//!
//! The others need a Docker engine with the images of `scripts/build-images.sh`;
//! `scripts/test.sh` builds them and sets `RAFIKI_TEST_DOCKER=1`, which makes these tests run
//! (and fail rather than skip when the engine is unusable). Each test uses its own project
//! name, so parallel tests never reconcile each other's containers or networks away.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bollard::query_parameters::{ListContainersOptionsBuilder, ListNetworksOptionsBuilder};
use rafiki_admin::backend::docker::{
    labels, remove_unused_env_volumes, DockerBackend, DockerSettings,
};
use rafiki_admin::backend::{Backend, Owners, ServiceSpec};
use rafiki_types::status::ServiceType;
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use uuid::Uuid;

use crate::helpers::forms::RafikiForm;
use crate::helpers::jobs::{
    assert_train_workers_output_kept, dataset, deploy_latest, model, one_trial_job, predict,
    start_job, two_slow_trials, wait_for_job, wait_until_ended,
};
use crate::helpers::models::{SLOW_MODEL, UNLOADABLE_MODEL};
use crate::helpers::requests::json_ok;
use crate::helpers::{
    assert_error, fresh_database, spawn_app_on, TestApp, SUPERADMIN_PASSWORD, TEST_SECRET,
};
use crate::helpers::{docker_cli, poll};

const WORKER_IMAGE: &str = "rafiki-rs/worker:latest";
const PREDICTOR_IMAGE: &str = "rafiki-rs/predictor:latest";
/// The pids limit of the tests' containers: above what a worker and its model use (the model's
/// numeric libraries start a thread per core), far below a fork bomb's appetite.
const PIDS_LIMIT: u64 = 200;

/// A project name of one test; its containers, networks and volumes are removed when the guard
/// drops, so a failing test leaves none behind.
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
                    .args(["rm", "-f", "-v"])
                    .args(&ids)
                    .output();
            }
        }
        for kind in ["network", "volume"] {
            let listed = std::process::Command::new("docker")
                .args([kind, "ls", "-q", "--filter"])
                .arg(format!("label={}={}", labels::PROJECT, self.0))
                .output();
            if let Ok(out) = listed {
                for id in String::from_utf8_lossy(&out.stdout).split_whitespace() {
                    let _ = std::process::Command::new("docker")
                        .args([kind, "rm", id])
                        .output();
                }
            }
        }
    }
}

fn docker_settings(project: &str) -> DockerSettings {
    DockerSettings {
        project: project.into(),
        predictor_image: PREDICTOR_IMAGE.into(),
        cpus: 1.5,
        memory_mb: 1024,
        pids_limit: PIDS_LIMIT,
        logs_dir: std::env::temp_dir().join(project),
    }
}

/// A backend on the engine for a project of the test's own (removed with the guard); `None`
/// when the docker tests do not run.
async fn docker_backend() -> Option<(Project, DockerBackend)> {
    if !docker_cli::wanted() {
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
        ("gpus", json!(gpus)),
        ("docker_cpus", json!(1.0)),
        ("docker_memory_mb", json!(2048)),
        ("docker_pids_limit", json!(PIDS_LIMIT)),
        ("supervise_ms", json!(200)),
    ]
}

/// The project's networks, as (name, job id label).
async fn networks_of(backend: &DockerBackend, project: &str) -> Vec<(String, String)> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![format!("{}={project}", labels::PROJECT)],
    )]);
    let options = ListNetworksOptionsBuilder::default()
        .filters(&filters)
        .build();
    let mut networks: Vec<(String, String)> = backend
        .client()
        .list_networks(Some(options))
        .await
        .expect("networks listed")
        .into_iter()
        .map(|n| {
            let job = n.labels.unwrap_or_default()[labels::JOB_ID].clone();
            (n.name.unwrap(), job)
        })
        .collect();
    networks.sort();
    networks
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
    let owner = Uuid::new_v4();
    let owners = (service_type != ServiceType::Predict).then_some(Owners {
        job: owner,
        model: owner,
    });
    ServiceSpec {
        id,
        service_type,
        job_id: Uuid::new_v4(),
        node: "local".into(),
        gpus,
        image: WORKER_IMAGE.into(),
        port,
        env,
        owners,
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
    let network = backend.network_name(spec.job_id);
    assert_eq!(host.network_mode.as_deref(), Some(network.as_str()));
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
    let mut settings = admin_settings(&project, "0,1");
    settings.push(("allowed_images", json!("rafiki-rs/")));
    let app = spawn_app_on(&fresh_database().await, &settings).await;
    // A model whose image does not exist: the engine refuses to create its container.
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let form = RafikiForm::new()
        .text("name", "ghost")
        .text("task", "ANY")
        .text("model_class", "Slow")
        .text("dependencies", "{}")
        .text("docker_image", "rafiki-rs/no-such-image:1")
        .text("access_right", "PRIVATE")
        .file("model_file_bytes", SLOW_MODEL.as_bytes());
    let model = json_ok(app.post_form("/models", &dev, form).await).await;
    let data = dataset(&app, &dev, "ANY", b"x").await;
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
        // first was freed (else the job would be written waiting, and no launch would fail).
        assert!(message.contains("no-such-image"), "{message}");
        assert_eq!(app.count_rows("gpu_allocations").await, 0);
        assert!(containers_of(&backend, &project).await.is_empty());
        assert!(networks_of(&backend, &project).await.is_empty());
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
    let model = model(app, dev, "gpu", "ANY", "Slow", SLOW_MODEL, "PRIVATE").await;
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
    assert_eq!(networks_of(&backend, &project).await.len(), 1);
    let app = spawn_app_on(&database, &settings).await;
    assert!(
        containers_of(&backend, &project).await.is_empty(),
        "reconciliation removed {stray_id}"
    );
    assert!(
        networks_of(&backend, &project).await.is_empty(),
        "and its job's network"
    );

    let (dev, _) = two_slow_trials(&app, 240).await;
    // Removed by the supervision step that ended the job, just after it reads STOPPED.
    poll::until(
        "finished workers removed",
        Duration::from_secs(30),
        Duration::from_millis(100),
        async || match containers_of(&backend, &project).await {
            left if left.is_empty() => Ok(()),
            left => Err(format!("{left:?}")),
        },
    )
    .await;
    assert_train_workers_output_kept(&app).await;

    let created = deploy_latest(&app, &dev, "myapp").await;
    let host = created["predictor_host"].as_str().unwrap().to_owned();
    wait_for_job(&app, &dev, "/inference_jobs/myapp/1", 120, |j| {
        assert_ne!(j["status"], "ERRORED", "{j}");
        j["status"] == "RUNNING"
    })
    .await;
    assert_eq!(containers_of(&backend, &project).await.len(), 2);
    let job_id: String = sqlx::query_scalar("select id::text from inference_jobs")
        .fetch_one(&app.pool)
        .await
        .unwrap();
    let job_networks = networks_of(&backend, &project).await;
    assert_eq!(job_networks.len(), 1, "one network, the inference job's");
    assert_eq!(job_networks[0].1, job_id);
    let answer = predict(&host).await;

    // A restarted admin adopts the running containers and their network: still serving, then
    // stopped by it.
    app.shutdown().await;
    let app = spawn_app_on(&database, &settings).await;
    assert_eq!(containers_of(&backend, &project).await.len(), 2);
    assert_eq!(networks_of(&backend, &project).await, job_networks);
    // Several supervision steps of the new admin, which must find them running. A sleep, not
    // a poll: what is checked is that nothing happens to them (they stay RUNNING and serving)
    // while time passes.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let running = app.get_json("/inference_jobs/myapp/1", &dev).await;
    assert_eq!(running["status"], "RUNNING", "{running}");
    assert_eq!(predict(&host).await, answer);
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
    assert!(networks_of(&backend, &project).await.is_empty());
    let held: Vec<Vec<i32>> = sqlx::query_scalar(
        "select gpus from services where status in ('STARTED', 'DEPLOYING', 'RUNNING')",
    )
    .fetch_all(&app.pool)
    .await
    .unwrap();
    assert!(held.is_empty(), "no live service holds anything: {held:?}");
    app.shutdown().await;
}

#[tokio::test]
async fn containers_run_unprivileged_on_a_read_only_root_without_capabilities_under_a_pids_limit() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    for service_type in [ServiceType::Train, ServiceType::Predict] {
        let spec = service_spec(service_type, vec![], Some(8080));
        let container = backend.create(&spec).await.expect("created");
        let inspected = backend
            .client()
            .inspect_container(&container, None)
            .await
            .unwrap();
        let config = inspected.config.unwrap();
        assert_eq!(config.user.as_deref(), Some("10001:10001"));
        assert_eq!(config.working_dir.as_deref(), Some("/var/lib/rafiki/work"));
        let host = inspected.host_config.unwrap();
        assert_eq!(host.cap_drop.as_deref(), Some(&["ALL".to_owned()][..]));
        assert_eq!(host.cap_add.unwrap_or_default(), Vec::<String>::new());
        assert!(!host.privileged.unwrap_or(false));
        assert_eq!(
            host.security_opt.as_deref(),
            Some(&["no-new-privileges:true".to_owned()][..])
        );
        assert_eq!(host.readonly_rootfs, Some(true));
        assert_eq!(host.pids_limit, Some(PIDS_LIMIT as i64));
        assert_eq!(host.ipc_mode.as_deref(), Some("private"));
        assert!(
            !host.init.unwrap_or(false),
            "no init process holds the service's environment"
        );
        let tmp = &host.tmpfs.unwrap()["/tmp"];
        for option in ["noexec", "nosuid", "nodev", "size="] {
            assert!(tmp.contains(option), "{tmp}");
        }
        // One anonymous volume, removed with the container; workers also mount their owners'
        // environments volume, which outlives it.
        let mounts = host.mounts.unwrap();
        assert_eq!(mounts[0].target.as_deref(), Some("/var/lib/rafiki"));
        assert_eq!(mounts[0].typ, Some(bollard::models::MountType::VOLUME));
        assert_eq!(mounts[0].source.as_deref().unwrap_or(""), "");
        let env_volume = spec.owners.map(|owners| backend.env_volume_name(owners));
        match &env_volume {
            Some(name) => {
                assert_eq!(mounts.len(), 2, "{mounts:?}");
                assert_eq!(mounts[1].target.as_deref(), Some("/var/lib/rafiki/venvs"));
                assert_eq!(mounts[1].source.as_deref(), Some(name.as_str()));
                let env = config.env.unwrap_or_default();
                assert!(env.contains(&"RAFIKI_VENV_DIR=/var/lib/rafiki/venvs".to_owned()));
            }
            None => assert_eq!(mounts.len(), 1, "{mounts:?}"),
        }
        let anonymous: Vec<String> = inspected
            .mounts
            .unwrap()
            .into_iter()
            .filter(|m| m.destination.as_deref() == Some("/var/lib/rafiki"))
            .filter_map(|m| m.name)
            .collect();
        assert_eq!(anonymous.len(), 1);
        backend.stop(spec.id, &container).await.unwrap();
        let volume = backend.client().inspect_volume(&anonymous[0]).await;
        assert!(volume.is_err(), "the work volume goes with its container");
        if let Some(name) = env_volume {
            let volume = backend.client().inspect_volume(&name).await.unwrap();
            assert_eq!(volume.labels[labels::PROJECT], guard.0);
            let removed = remove_unused_env_volumes(backend.client(), &guard.0).await;
            assert_eq!(
                removed.unwrap(),
                [name],
                "unused once its container is gone"
            );
        }
    }
}

#[tokio::test]
async fn workers_share_environment_volumes_per_owner_and_gc_removes_only_unused_ones() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    let alice = service_spec(ServiceType::Train, vec![], None);
    let mut alice_again = service_spec(ServiceType::Inference, vec![], Some(8080));
    alice_again.owners = alice.owners;
    let mut bob_runs_alices = service_spec(ServiceType::Train, vec![], None);
    bob_runs_alices.owners = Some(Owners {
        job: Uuid::new_v4(),
        model: alice.owners.unwrap().model,
    });
    let mut containers = Vec::new();
    for spec in [&alice, &alice_again, &bob_runs_alices] {
        containers.push(backend.create(spec).await.expect("created"));
    }
    let volume_of = |spec: &ServiceSpec| backend.env_volume_name(spec.owners.unwrap());
    assert_eq!(volume_of(&alice), volume_of(&alice_again));
    assert_ne!(volume_of(&alice), volume_of(&bob_runs_alices));
    // Alice's containers are gone, Bob's is not: only Alice's volume is unused.
    for (spec, container) in [&alice, &alice_again].iter().zip(&containers) {
        backend.stop(spec.id, container).await.unwrap();
    }
    let removed = remove_unused_env_volumes(backend.client(), &guard.0)
        .await
        .unwrap();
    assert_eq!(removed, [volume_of(&alice)]);
    assert!(backend
        .client()
        .inspect_volume(&volume_of(&bob_runs_alices))
        .await
        .is_ok());
    backend
        .stop(bob_runs_alices.id, &containers[2])
        .await
        .unwrap();
}

#[tokio::test]
async fn each_job_gets_a_network_of_its_own_that_goes_with_its_last_container() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    let project = guard.0.clone();
    let first = service_spec(ServiceType::Inference, vec![], Some(8080));
    let mut second = service_spec(ServiceType::Predict, vec![], Some(8081));
    second.job_id = first.job_id;
    let other = service_spec(ServiceType::Train, vec![], None);
    let mut containers = Vec::new();
    for spec in [&first, &second, &other] {
        containers.push(backend.create(spec).await.expect("created"));
    }
    let job_network = backend.network_name(first.job_id);
    let other_network = backend.network_name(other.job_id);
    let mut expected = vec![
        (job_network.clone(), first.job_id.to_string()),
        (other_network.clone(), other.job_id.to_string()),
    ];
    expected.sort();
    assert_eq!(networks_of(&backend, &project).await, expected);
    for (container, network) in containers
        .iter()
        .zip([&job_network, &job_network, &other_network])
    {
        let inspected = backend
            .client()
            .inspect_container(container, None)
            .await
            .unwrap();
        let host = inspected.host_config.unwrap();
        assert_eq!(host.network_mode.as_ref(), Some(network));
    }

    backend.stop(first.id, &containers[0]).await.unwrap();
    assert_eq!(
        networks_of(&backend, &project).await.len(),
        2,
        "the job's predictor still uses its network"
    );
    backend.stop(second.id, &containers[1]).await.unwrap();
    assert_eq!(
        networks_of(&backend, &project).await,
        vec![(other_network, other.job_id.to_string())]
    );
    backend.stop(other.id, &containers[2]).await.unwrap();
    assert!(networks_of(&backend, &project).await.is_empty());
}

#[tokio::test]
async fn a_docker_image_outside_the_allow_list_is_refused_at_upload_and_at_launch() {
    let database = fresh_database().await;
    let wide = [(
        "allowed_images",
        json!("rafiki-rs/worker, registry.local/models/"),
    )];
    let app = spawn_app_on(&database, &wide).await;
    let dev = app.user("dev@example.com", "MODEL_DEVELOPER").await;
    let form = |name: &str, image: &str| {
        RafikiForm::new()
            .text("name", name)
            .text("task", "ANY")
            .text("model_class", "Slow")
            .text("docker_image", image)
            .file("model_file_bytes", SLOW_MODEL.as_bytes())
    };
    for image in [
        "evil/miner:1",
        "rafiki-rs/worker-evil:1",
        "registry.local/other/x:1",
    ] {
        let res = app.post_form("/models", &dev, form("refused", image)).await;
        let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidModelError").await;
        assert!(message.contains("RAFIKI_ALLOWED_IMAGES"), "{message}");
        assert!(message.contains(image), "{message}");
    }
    let count = |app: &TestApp, table: &'static str| {
        let pool = app.pool.clone();
        async move {
            sqlx::query_scalar::<_, i64>(sqlx::AssertSqlSafe(format!(
                "select count(*) from {table}"
            )))
            .fetch_one(&pool)
            .await
            .unwrap()
        }
    };
    assert_eq!(count(&app, "models").await, 0);
    let allowed = json_ok(
        app.post_form(
            "/models",
            &dev,
            form("mirror", "registry.local/models/torch:2"),
        )
        .await,
    )
    .await;
    // The default list admits the worker image's repository with any tag.
    let admitted = json_ok(
        app.post_form("/models", &dev, form("plain", "rafiki-rs/worker:7"))
            .await,
    )
    .await;
    let data = dataset(&app, &dev, "ANY", b"x").await;
    app.shutdown().await;

    // The operator narrows the list to its default (the worker image's repository): the model
    // uploaded before cannot be launched any more; nothing is written or allocated for it.
    let app = spawn_app_on(&database, &[("gpus", json!("0"))]).await;
    let dev = app.login("dev@example.com", "pw-of-a-user").await;
    let job = |model: &Value, gpus: i64| {
        json!({"app": "narrowed", "task": "ANY", "train_dataset_id": data,
               "val_dataset_id": data, "budget": {"GPU_COUNT": gpus, "MODEL_TRIAL_COUNT": 1},
               "model_ids": [model["id"]]})
    };
    let res = app
        .send(Method::POST, "/train_jobs", Some(&dev), job(&allowed, 1))
        .await;
    let message = assert_error(res, StatusCode::BAD_REQUEST, "InvalidModelError").await;
    assert!(message.contains("RAFIKI_ALLOWED_IMAGES"), "{message}");
    assert!(
        message.contains("registry.local/models/torch:2"),
        "{message}"
    );
    assert_eq!(count(&app, "train_jobs").await, 0);
    assert_eq!(count(&app, "services").await, 0);
    assert_eq!(
        count(&app, "gpu_allocations").await,
        0,
        "the GPU was not taken"
    );
    // More GPUs than the host has: refused at once, never queued.
    let res = app
        .send(Method::POST, "/train_jobs", Some(&dev), job(&admitted, 2))
        .await;
    let message = assert_error(
        res,
        StatusCode::SERVICE_UNAVAILABLE,
        "ServiceDeploymentError",
    )
    .await;
    assert!(message.contains("the cluster has 1 in all"), "{message}");
    assert_eq!(count(&app, "train_jobs").await, 0);
    app.shutdown().await;
}

/// A model whose `train()` tries to escape its container and logs, as one JSON message, what
/// each attempt got: its user and capabilities, the processes it sees and their environments,
/// writes outside its work directory, connections to `train_args["targets"]` (`"gateway"` as a
/// host is its network's gateway), and as many processes as it can fork.
const HOSTILE_MODEL: &str = r#"
import json
import os
import socket
import time
from rafiki.model import BaseModel, FixedKnob, logger


def gateway():
    with open("/proc/net/route") as f:
        for line in f.read().splitlines()[1:]:
            fields = line.split()
            if fields[1] == "00000000":
                return socket.inet_ntoa(int(fields[2], 16).to_bytes(4, "little"))
    return "none"


def connect(host, port):
    try:
        if host == "gateway":
            host = gateway()
        with socket.create_connection((host, port), timeout=3):
            return "connected"
    except OSError as e:
        return f"failed: {type(e).__name__}: {e}"


def attempt(action):
    try:
        action()
        return "done"
    except OSError as e:
        return f"failed: {type(e).__name__}: {e.strerror}"


def write(path):
    with open(path, "a") as f:
        f.write("owned\n")


class Hostile(BaseModel):
    @staticmethod
    def get_knob_config():
        return {"k": FixedKnob(1)}

    def __init__(self, **knobs):
        super().__init__(**knobs)

    def train(self, dataset_path, shared_params=None, **train_args):
        found = {"ids": [os.getuid(), os.geteuid(), os.getgid(), os.getegid()]}
        with open("/proc/self/status") as f:
            status = dict(l.split(":\t", 1) for l in f.read().splitlines() if ":\t" in l)
        found["caps"] = [status[k].strip() for k in ("CapInh", "CapPrm", "CapEff", "CapBnd", "CapAmb")]
        found["no_new_privs"] = status["NoNewPrivs"].strip()
        found["setuid"] = attempt(lambda: os.setuid(0))
        processes = {}
        for pid in filter(str.isdigit, os.listdir("/proc")):
            seen = {}
            for name in ("cmdline", "environ"):
                try:
                    with open(f"/proc/{pid}/{name}", "rb") as f:
                        seen[name] = f.read().replace(b"\0", b" ").decode(errors="replace")
                except OSError as e:
                    seen[name] = f"unreadable: {type(e).__name__}"
            processes[pid] = seen
        found["processes"] = processes
        found["self"] = str(os.getpid())
        found["writes"] = {
            path: attempt(lambda path=path: write(path))
            for path in (
                "/etc/passwd",
                "/usr/local/bin/rafiki-worker",
                "/usr/local/lib/python3.11/dist-packages/owned.pth",
                "/root/owned",
                "/var/lib/owned",
                "/tmp/scratch",
                os.path.join(os.getcwd(), "scratch"),
            )
        }
        found["connections"] = {
            name: connect(host, port) for name, (host, port) in train_args["targets"].items()
        }
        children = []
        found["fork_error"] = "none"
        try:
            while len(children) < 100000:
                pid = os.fork()
                if pid == 0:
                    time.sleep(300)
                    os._exit(0)
                children.append(pid)
        except OSError as e:
            found["fork_error"] = f"{type(e).__name__}: {e.strerror}"
        found["forks"] = len(children)
        for pid in children:
            os.kill(pid, 9)
            os.waitpid(pid, 0)
        logger.log(json.dumps(found))

    def evaluate(self, dataset_path):
        return 0.5

    def predict(self, queries):
        return [0 for _ in queries]

    def dump_parameters(self):
        return {}

    def load_parameters(self, params):
        pass
"#;

#[tokio::test]
async fn hostile_models_in_containers_reach_nothing_beyond_their_own_service() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    let project = guard.0.clone();
    let app = spawn_app_on(&fresh_database().await, &admin_settings(&project, "")).await;

    // The victim: a normal model, trained and deployed in the same hardened containers.
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"train", b"val"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 1}),
        json!({"seconds": 0.1}),
    )
    .await;
    let job = wait_until_ended(&app, &dev, &path, 240).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let created = deploy_latest(&app, &dev, "myapp").await;
    wait_for_job(&app, &dev, "/inference_jobs/myapp/1", 120, |j| {
        assert_ne!(j["status"], "ERRORED", "{j}");
        j["status"] == "RUNNING"
    })
    .await;
    let predicted = reqwest::Client::new()
        .post(format!(
            "http://{}/predict",
            created["predictor_host"].as_str().unwrap()
        ))
        .json(&json!({"query": 1}))
        .send()
        .await
        .unwrap();
    assert_eq!(predicted.status(), StatusCode::OK);

    // The victim's inference worker answers only its predictor: from here, which reaches its
    // address like any container of its network would, it needs the job's secret.
    let (job_id, host, port, container): (Uuid, String, i32, String) = sqlx::query_as(
        "select job_id, host, port, backend_id from services \
         where service_type = 'INFERENCE' and status = 'RUNNING'",
    )
    .fetch_one(&app.pool)
    .await
    .unwrap();
    let secret: String =
        sqlx::query_scalar("select predict_secret from inference_jobs where id = $1")
            .bind(job_id)
            .fetch_one(&app.pool)
            .await
            .unwrap();
    let listing = app.get_json("/inference_jobs/myapp/1", &dev).await;
    assert!(!listing.to_string().contains(&secret), "{listing}");
    let inspected = backend
        .client()
        .inspect_container(&container, None)
        .await
        .unwrap();
    let address = inspected.network_settings.unwrap().networks.unwrap()
        [&backend.network_name(job_id)]
        .ip_address
        .clone()
        .unwrap();
    let worker_url = format!("http://{address}:{port}/predict");
    let ask = |authorization: Option<String>| {
        let mut request = reqwest::Client::new()
            .post(&worker_url)
            .json(&json!({"queries": [1]}));
        if let Some(value) = authorization {
            request = request.header("authorization", value);
        }
        async move { request.send().await.unwrap().status() }
    };
    assert_eq!(ask(None).await, StatusCode::UNAUTHORIZED);
    let wrong = format!("Bearer {}", "0".repeat(secret.len()));
    assert_eq!(ask(Some(wrong)).await, StatusCode::FORBIDDEN);
    assert_eq!(ask(Some(format!("Bearer {secret}"))).await, StatusCode::OK);

    // The attacker: another developer's model, trained in a job of its own.
    let mallory = app.user("mallory@example.com", "MODEL_DEVELOPER").await;
    let data = dataset(&app, &mallory, "ANY", b"x").await;
    let model = model(
        &app,
        &mallory,
        "hostile",
        "ANY",
        "Hostile",
        HOSTILE_MODEL,
        "PRIVATE",
    )
    .await;
    let url_port = |url: &str| reqwest::Url::parse(url).unwrap().port().unwrap();
    let (admin_port, postgres_port) = (url_port(&app.address), url_port(&app.database_url));
    let targets = json!({
        "admin": ["host.docker.internal", admin_port],
        "postgres through the host's name": ["host.docker.internal", postgres_port],
        "postgres through the gateway": ["gateway", postgres_port],
        "postgres on loopback": ["127.0.0.1", postgres_port],
        "the other job's worker by name": [host, port],
        "the other job's worker by address": [address, port],
    });
    let res = app
        .send(
            Method::POST,
            "/train_jobs",
            Some(&mallory),
            json!({"app": "hostile", "task": "ANY", "train_dataset_id": data,
                   "val_dataset_id": data, "budget": {"MODEL_TRIAL_COUNT": 1},
                   "model_ids": [model], "train_args": {"targets": targets}}),
        )
        .await;
    json_ok(res).await;
    let job = wait_until_ended(&app, &mallory, "/train_jobs/hostile/1", 240).await;
    assert_eq!(job["status"], "STOPPED", "{job}");
    let trials = app.get_json("/train_jobs/hostile/1/trials", &mallory).await;
    let trial = &trials.as_array().unwrap()[0];
    assert_eq!(trial["status"], "COMPLETED", "{trial}");
    let logs = app
        .get_json(
            &format!("/trials/{}/logs", trial["id"].as_str().unwrap()),
            &mallory,
        )
        .await;
    let found: Value =
        serde_json::from_str(logs["messages"][0]["message"].as_str().unwrap()).unwrap();

    // Not root, no capabilities, no way to gain any.
    assert_eq!(found["ids"], json!([10001, 10001, 10001, 10001]), "{found}");
    assert_eq!(found["caps"], json!(vec!["0000000000000000"; 5]), "{found}");
    assert_eq!(found["no_new_privs"], "1");
    assert!(
        found["setuid"]
            .as_str()
            .unwrap()
            .starts_with("failed: PermissionError"),
        "{found}"
    );
    // Only its own container's processes, and no environment with a secret: the worker (PID 1)
    // is not dumpable, and the model's own environment has no token.
    let processes = found["processes"].as_object().unwrap();
    for (pid, seen) in processes {
        let cmdline = seen["cmdline"].as_str().unwrap();
        assert!(
            cmdline.starts_with("rafiki-worker") || cmdline.contains("python"),
            "{pid}: {cmdline}"
        );
        let environ = seen["environ"].as_str().unwrap();
        for leak in [
            "RAFIKI_SERVICE_TOKEN",
            "RAFIKI_PREDICT_SECRET",
            "DATABASE_URL",
            "APP_SECRET",
            TEST_SECRET,
            SUPERADMIN_PASSWORD,
            &secret,
        ] {
            assert!(!environ.contains(leak), "{pid} {cmdline}: {environ}");
        }
    }
    assert_eq!(
        processes["1"]["environ"], "unreadable: PermissionError",
        "the worker's environment is closed to its model: {found}"
    );
    assert!(
        processes[found["self"].as_str().unwrap()]["environ"]
            .as_str()
            .unwrap()
            .contains("RAFIKI_SERVICE_ID"),
        "its own environment is readable, so the check above means something"
    );
    // Writes land only in its work directory and /tmp.
    let writes = found["writes"].as_object().unwrap();
    for (path, outcome) in writes {
        let outcome = outcome.as_str().unwrap();
        if path == "/tmp/scratch" || path.starts_with("/var/lib/rafiki/work/") {
            assert_eq!(outcome, "done", "{path}");
        } else {
            assert!(
                outcome.contains("Read-only file system") || outcome.contains("Permission denied"),
                "{path}: {outcome}"
            );
        }
    }
    assert_eq!(writes.len(), 7, "{writes:?}");
    // Its network reaches the admin and nothing else of this test: not the database on the
    // host, not the other job's worker by name (another network's DNS) or by address.
    let connections = found["connections"].as_object().unwrap();
    assert_eq!(connections["admin"], "connected", "{connections:?}");
    for (target, outcome) in connections.iter().filter(|(t, _)| *t != "admin") {
        assert!(
            outcome.as_str().unwrap().starts_with("failed"),
            "{target}: {outcome}"
        );
    }
    // The fork bomb stopped at the pids limit.
    let forks = found["forks"].as_u64().unwrap();
    assert!(forks > 0 && forks < PIDS_LIMIT, "{forks} forks");
    assert!(
        found["fork_error"]
            .as_str()
            .unwrap()
            .contains("Resource temporarily unavailable"),
        "{found}"
    );

    // The victim still serves, and goes with its network when stopped.
    let predicted = reqwest::Client::new()
        .post(format!(
            "http://{}/predict",
            created["predictor_host"].as_str().unwrap()
        ))
        .json(&json!({"query": 2}))
        .send()
        .await
        .unwrap();
    assert_eq!(predicted.status(), StatusCode::OK);
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
    assert!(networks_of(&backend, &project).await.is_empty());
    app.shutdown().await;
}

#[tokio::test]
async fn an_inference_worker_that_reports_its_model_failed_leaves_no_container() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    let project = guard.0.clone();
    let database = fresh_database().await;
    let app = spawn_app_on(&database, &admin_settings(&project, "")).await;
    let (dev, _) = one_trial_job(
        &app,
        ("unloadable", "Unloadable", UNLOADABLE_MODEL),
        Value::Null,
    )
    .await;
    json_ok(
        app.send(
            Method::POST,
            "/inference_jobs",
            Some(&dev),
            json!({"app": "myapp", "app_version": -1, "budget": {}}),
        )
        .await,
    )
    .await;
    // The worker cannot load its parameters, says so through the internal API and exits: the
    // job is ERRORED, and no container of it stays on the engine, exited or not.
    wait_for_job(&app, &dev, "/inference_jobs/myapp", 120, |jobs| {
        assert_ne!(jobs[0]["status"], "RUNNING", "{jobs}");
        jobs[0]["status"] == "ERRORED"
    })
    .await;
    poll::until(
        "no container left after the deployment ended",
        Duration::from_secs(60),
        Duration::from_millis(500),
        async || match containers_of(&backend, &project).await {
            left if left.is_empty() => Ok(()),
            left => Err(format!("{left:?}")),
        },
    )
    .await;
}

/// Waits until the project's containers satisfy `expected`, or fails naming what is there after
/// `seconds`; returns their ids.
async fn wait_for_containers(
    backend: &DockerBackend,
    project: &str,
    seconds: u64,
    what: &str,
    mut expected: impl FnMut(&[String]) -> bool,
) -> Vec<String> {
    poll::until(
        what,
        Duration::from_secs(seconds),
        Duration::from_millis(300),
        async || match containers_of(backend, project).await {
            now if expected(&now) => Ok(now),
            now => Err(format!("{now:?}")),
        },
    )
    .await
}

#[tokio::test]
async fn a_crashed_workers_container_is_removed_whether_it_is_relaunched_or_not() {
    let Some((guard, backend)) = docker_backend().await else {
        return;
    };
    let project = guard.0.clone();
    let database = fresh_database().await;
    let mut settings = admin_settings(&project, "");
    settings.push(("max_service_restarts", json!(1)));
    let app = spawn_app_on(&database, &settings).await;
    let (dev, path) = start_job(
        &app,
        "ANY",
        (b"train", b"val"),
        &[("slow", "Slow", SLOW_MODEL)],
        json!({"MODEL_TRIAL_COUNT": 100}),
        json!({"seconds": 1}),
    )
    .await;
    wait_for_job(&app, &dev, &path, 240, |j| j["status"] == "RUNNING").await;
    let first = wait_for_containers(&backend, &project, 60, "one worker", |c| c.len() == 1).await;

    // Crash 1: the worker is relaunched in a new container, and the dead one goes.
    backend
        .client()
        .kill_container(&first[0], None)
        .await
        .unwrap();
    let second = wait_for_containers(&backend, &project, 120, "the relaunch alone", |c| {
        c.len() == 1 && c[0] != first[0]
    })
    .await;

    // Crash 2: restarts used up, the worker is ERRORED, and its container goes too.
    backend
        .client()
        .kill_container(&second[0], None)
        .await
        .unwrap();
    wait_for_containers(&backend, &project, 120, "no container", |c| c.is_empty()).await;
    let job = wait_until_ended(&app, &dev, &path, 120).await;
    assert_eq!(job["status"], "ERRORED", "{job}");
}
