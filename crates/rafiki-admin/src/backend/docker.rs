//! The `docker` backend: each service is a container on one Docker engine (the one `DOCKER_HOST`
//! names, or the local socket), labelled with this deployment's project, its job and its
//! service, with CPU, memory and process limits and, for GPU services, a device request for
//! exactly its allocated devices.
//!
//! Model code is hostile, so containers are hardened: they run as the images' unprivileged user
//! with no capabilities and `no-new-privileges`, on a read-only root file system with one
//! writable anonymous volume (the work directory, home) and a small tmpfs `/tmp`. Workers'
//! dependency environments are in a named volume shared by the workers of one job owner
//! running one model owner's models (the model runs in the container unsandboxed and could
//! change any environment it can write, so no volume is shared between tenants). Each job gets a network of its own, created with its first service and removed
//! with its last: a job's services reach each other and, through the engine's host, the admin;
//! never another job's services or a database on another network. (The admin does not join job
//! networks: on Docker before 28 a container's default route and published ports move to the
//! network it joined last, which cuts the admin's connections.)
//!
//! Containers are named `<project>-<service id>`: inference workers are reached by that name on
//! their job's network, and a relaunch after a crash replaces the exited container of the same
//! name. Predictors publish their port on a host port the engine picks. Containers carry no
//! database credentials: services reach the admin through the internal API with their token.
//! Before a container is removed, the end of its output is appended to
//! `<logs_dir>/<service id>/service.log`, where the process backend writes its services' logs.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;

use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerCreateBody, ContainerStateStatusEnum, DeviceRequest, HostConfig, Mount, MountType,
    NetworkCreateRequest, PortBinding, RestartPolicy, RestartPolicyNameEnum, VolumeCreateRequest,
};
use bollard::query_parameters::{
    CreateContainerOptionsBuilder, ListContainersOptionsBuilder, ListNetworksOptionsBuilder,
    ListVolumesOptionsBuilder, LogsOptionsBuilder, RemoveContainerOptionsBuilder,
    StopContainerOptionsBuilder,
};
use bollard::Docker;
use rafiki_types::status::ServiceType;
use uuid::Uuid;

use super::engine::{
    self, engine_error, is_not_found, reason, CONTAINER_DATA_DIR, CONTAINER_VENV_DIR,
    CONTAINER_WORK_DIR, KEPT_LOG_LINES, SERVICE_USER,
};
use super::{Backend, BackendError, Launched, Owners, ServiceAddress, ServiceSpec, ServiceState};

/// Labels every container of the backend carries (networks carry the project and job ones).
pub mod labels {
    /// The deployment (`docker_project`): reconciliation only touches its own containers.
    pub const PROJECT: &str = "rafiki-rs.project";
    /// The service's id.
    pub const SERVICE_ID: &str = "rafiki-rs.service-id";
    /// The service's type (`TRAIN`, `INFERENCE`, `PREDICT`).
    pub const SERVICE_TYPE: &str = "rafiki-rs.service-type";
    /// The train or inference job the service serves.
    pub const JOB_ID: &str = "rafiki-rs.job-id";
    /// On dependency-environment volumes: the job owner whose workers use it.
    pub const ENV_JOB_OWNER: &str = "rafiki-rs.env-job-owner";
    /// On dependency-environment volumes: the owner of the models run with it.
    pub const ENV_MODEL_OWNER: &str = "rafiki-rs.env-model-owner";
}

/// A small scratch `/tmp` in memory, for programs that ignore `TMPDIR`; it counts towards the
/// container's memory limit.
const TMP_OPTIONS: &str = "rw,nosuid,nodev,noexec,size=256m,mode=1777";
/// Seconds a stopped container gets after SIGTERM before SIGKILL.
const STOP_GRACE_SECS: i32 = 5;

/// How the backend runs containers.
#[derive(Debug, Clone)]
pub struct DockerSettings {
    /// This deployment's name, on every container's and network's labels and in their names.
    pub project: String,
    /// The predictor's image.
    pub predictor_image: String,
    /// CPUs per container (0: no limit).
    pub cpus: f64,
    /// Memory per container in MiB (0: no limit).
    pub memory_mb: u64,
    /// Processes (threads included) per container (0: no limit).
    pub pids_limit: u64,
    /// Where removed containers' output is kept, one directory per service.
    pub logs_dir: PathBuf,
}

/// Runs services as containers.
pub struct DockerBackend {
    docker: Docker,
    settings: DockerSettings,
}

fn is_conflict(err: &DockerError) -> bool {
    matches!(
        err,
        DockerError::DockerResponseServerError {
            status_code: 409,
            ..
        }
    )
}

impl DockerBackend {
    /// Connects to the engine (`DOCKER_HOST` or the local socket) and agrees on an API version.
    pub async fn connect(settings: DockerSettings) -> Result<Self, BackendError> {
        let docker = connect_engine().await?;
        Ok(DockerBackend { docker, settings })
    }

    /// The engine client (tests inspect containers with it).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The container name of a service.
    pub fn container_name(&self, service_id: Uuid) -> String {
        format!("{}-{service_id}", self.settings.project)
    }

    /// The name of a job's network.
    pub fn network_name(&self, job_id: Uuid) -> String {
        format!("{}-job-{job_id}", self.settings.project)
    }

    /// The volume of the dependency environments of `owners`' workers.
    pub fn env_volume_name(&self, owners: Owners) -> String {
        format!(
            "{}-envs-{}-{}",
            self.settings.project, owners.job, owners.model
        )
    }

    /// Creates the environments volume of `owners` unless it exists (the engine answers a
    /// creation of an existing volume with that volume), labelled so gc finds it.
    async fn ensure_env_volume(&self, owners: Owners) -> Result<(), BackendError> {
        let name = self.env_volume_name(owners);
        let request = VolumeCreateRequest {
            name: Some(name.clone()),
            labels: Some(HashMap::from([
                (labels::PROJECT.to_owned(), self.settings.project.clone()),
                (labels::ENV_JOB_OWNER.to_owned(), owners.job.to_string()),
                (labels::ENV_MODEL_OWNER.to_owned(), owners.model.to_string()),
            ])),
            ..Default::default()
        };
        self.docker
            .create_volume(request)
            .await
            .map_err(|e| engine_error(&format!("cannot create volume {name}"), e))?;
        Ok(())
    }

    /// Makes sure the job's network exists and returns its name. Launches are serialised by the
    /// orchestrator; should two admins of one project still create it at once, each keeps only
    /// the network with the lowest id, so they agree.
    async fn ensure_job_network(&self, job_id: Uuid) -> Result<String, BackendError> {
        let name = self.network_name(job_id);
        if self.networks_named(&name).await?.is_empty() {
            let request = NetworkCreateRequest {
                name: name.clone(),
                driver: Some("bridge".into()),
                labels: Some(HashMap::from([
                    (labels::PROJECT.to_owned(), self.settings.project.clone()),
                    (labels::JOB_ID.to_owned(), job_id.to_string()),
                ])),
                ..Default::default()
            };
            self.docker
                .create_network(request)
                .await
                .map_err(|e| engine_error(&format!("cannot create network {name}"), e))?;
        }
        let mut ids = self.networks_named(&name).await?;
        ids.sort();
        for extra in ids.iter().skip(1) {
            self.remove_network(extra).await?;
        }
        Ok(name)
    }

    /// Removes a job's network once none of the job's containers is left. Failures are logged;
    /// reconciliation retries them.
    async fn release_job_network(&self, job_id: Uuid) {
        let released = async {
            if !self.containers_of_job(job_id).await?.is_empty() {
                return Ok(());
            }
            for network in self.networks_named(&self.network_name(job_id)).await? {
                self.remove_network(&network).await?;
            }
            Ok::<(), BackendError>(())
        };
        if let Err(err) = released.await {
            tracing::warn!(job = %job_id, error = %err, "cannot remove the job's network");
        }
    }

    /// Removes a network; one already gone is fine.
    async fn remove_network(&self, network: &str) -> Result<(), BackendError> {
        match self.docker.remove_network(network).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            Err(err) => Err(engine_error(
                &format!("cannot remove network {network}"),
                err,
            )),
        }
    }

    /// The networks the engine lists for one filter (`name`, `label`, ...).
    async fn list_networks(
        &self,
        filter: &str,
        value: String,
    ) -> Result<Vec<bollard::models::Network>, BackendError> {
        let filters = HashMap::from([(filter.to_owned(), vec![value])]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        self.docker
            .list_networks(Some(options))
            .await
            .map_err(|e| engine_error("cannot list networks", e))
    }

    /// The ids of the networks called exactly `name` (the engine's filter matches parts).
    async fn networks_named(&self, name: &str) -> Result<Vec<String>, BackendError> {
        Ok(self
            .list_networks("name", name.to_owned())
            .await?
            .into_iter()
            .filter(|n| n.name.as_deref() == Some(name))
            .filter_map(|n| n.id)
            .collect())
    }

    /// This project's job networks, as (network id, job id).
    async fn job_networks(&self) -> Result<Vec<(String, Uuid)>, BackendError> {
        let project = format!("{}={}", labels::PROJECT, self.settings.project);
        Ok(self
            .list_networks("label", project)
            .await?
            .into_iter()
            .filter_map(|n| {
                let job = n.labels.as_ref()?.get(labels::JOB_ID)?.parse().ok()?;
                Some((n.id?, job))
            })
            .collect())
    }

    /// The container's definition: image, command, environment, labels, user, limits,
    /// hardening, file systems, network, GPUs, port.
    fn definition(&self, spec: &ServiceSpec, network: &str) -> ContainerCreateBody {
        let (image, cmd) = engine::image_and_command(spec, &self.settings.predictor_image);
        let mut vars = engine::container_env(spec);
        let mut mounts = vec![Mount {
            target: Some(CONTAINER_DATA_DIR.into()),
            typ: Some(MountType::VOLUME),
            ..Default::default()
        }];
        if let Some(owners) = spec.owners {
            mounts.push(Mount {
                target: Some(CONTAINER_VENV_DIR.into()),
                source: Some(self.env_volume_name(owners)),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            });
        }
        // The engine shows a container only the devices of its request, numbered from 0.
        let visible: Vec<String> = (0..spec.gpus.len()).map(|i| i.to_string()).collect();
        vars.push(format!("CUDA_VISIBLE_DEVICES={}", visible.join(",")));
        let device_requests = (!spec.gpus.is_empty()).then(|| {
            vec![DeviceRequest {
                driver: Some("nvidia".into()),
                device_ids: Some(spec.gpus.iter().map(i32::to_string).collect()),
                capabilities: Some(vec![vec!["gpu".into()]]),
                ..Default::default()
            }]
        });
        let published = spec
            .port
            .filter(|_| spec.service_type == ServiceType::Predict)
            .map(|port| format!("{port}/tcp"));
        let port_bindings = published.as_ref().map(|key| {
            HashMap::from([(
                key.clone(),
                Some(vec![PortBinding {
                    host_ip: Some("0.0.0.0".into()),
                    // Empty: the engine picks a free host port.
                    host_port: Some(String::new()),
                }]),
            )])
        });
        let cpus = self.settings.cpus;
        let memory = self.settings.memory_mb;
        let pids = self.settings.pids_limit;
        ContainerCreateBody {
            image: Some(image),
            cmd: Some(cmd.into_iter().map(String::from).collect()),
            env: Some(vars),
            user: Some(SERVICE_USER.into()),
            working_dir: Some(CONTAINER_WORK_DIR.into()),
            labels: Some(HashMap::from([
                (labels::PROJECT.to_owned(), self.settings.project.clone()),
                (labels::SERVICE_ID.to_owned(), spec.id.to_string()),
                (
                    labels::SERVICE_TYPE.to_owned(),
                    spec.service_type.to_string(),
                ),
                (labels::JOB_ID.to_owned(), spec.job_id.to_string()),
            ])),
            exposed_ports: published.map(|key| vec![key]),
            stop_timeout: Some(i64::from(STOP_GRACE_SECS)),
            host_config: Some(HostConfig {
                network_mode: Some(network.to_owned()),
                nano_cpus: (cpus > 0.0).then_some((cpus * 1e9) as i64),
                memory: (memory > 0).then_some((memory * 1024 * 1024) as i64),
                pids_limit: i64::try_from(pids).ok().filter(|p| *p > 0),
                cap_drop: Some(vec!["ALL".into()]),
                security_opt: Some(vec!["no-new-privileges:true".into()]),
                readonly_rootfs: Some(true),
                mounts: Some(mounts),
                tmpfs: Some(HashMap::from([("/tmp".to_owned(), TMP_OPTIONS.to_owned())])),
                ipc_mode: Some("private".into()),
                // No init process: it would run as the service user, readable by the model,
                // with the service's token in its environment. The service is PID 1 itself and
                // not dumpable (`rafiki-worker`), so its environment and memory stay private.
                device_requests,
                port_bindings,
                // The admin on the engine's host is reachable under this name (Docker 20.10+).
                extra_hosts: Some(vec!["host.docker.internal:host-gateway".into()]),
                // The orchestrator restarts crashed services itself, with backoff and a limit.
                restart_policy: Some(RestartPolicy {
                    name: Some(RestartPolicyNameEnum::NO),
                    maximum_retry_count: None,
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Creates a service's container without starting it, on its job's network (made when
    /// missing), replacing an earlier container of the same service (a relaunch after a
    /// crash). Returns the container id.
    pub async fn create(&self, spec: &ServiceSpec) -> Result<String, BackendError> {
        let name = self.container_name(spec.id);
        self.keep_logs(&name, spec.id).await;
        self.remove(&name).await?;
        if let Some(owners) = spec.owners {
            self.ensure_env_volume(owners).await?;
        }
        let network = self.ensure_job_network(spec.job_id).await?;
        let options = CreateContainerOptionsBuilder::default().name(&name).build();
        match self
            .docker
            .create_container(Some(options), self.definition(spec, &network))
            .await
        {
            Ok(created) => Ok(created.id),
            Err(err) => {
                self.release_job_network(spec.job_id).await;
                Err(engine_error(
                    &format!("cannot create container {name}"),
                    err,
                ))
            }
        }
    }

    /// The log a service's removed containers leave behind.
    pub fn log_path(&self, service_id: Uuid) -> PathBuf {
        engine::log_path(&self.settings.logs_dir, service_id)
    }

    /// Appends the end of a container's output to its service's log; a container that does not
    /// exist has none. Failures are logged, never fatal: the output is a diagnostic.
    async fn keep_logs(&self, container: &str, service_id: Uuid) {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(KEPT_LOG_LINES)
            .build();
        let output = self.docker.logs(container, Some(options));
        engine::keep_output(output, container, &self.log_path(service_id)).await;
    }

    /// Removes a container, running or not, with its anonymous volume (the work directory);
    /// one already gone is fine.
    async fn remove(&self, container: &str) -> Result<(), BackendError> {
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        match self.docker.remove_container(container, Some(options)).await {
            Ok(()) => Ok(()),
            Err(err) if is_not_found(&err) => Ok(()),
            // A removal already in progress finishes on its own.
            Err(err) if is_conflict(&err) => Ok(()),
            Err(err) => Err(engine_error(
                &format!("cannot remove container {container}"),
                err,
            )),
        }
    }

    /// The host port a started container's `port` is published on.
    async fn published_port(&self, id: &str, port: u16) -> Result<u16, BackendError> {
        let inspected = self
            .docker
            .inspect_container(id, None)
            .await
            .map_err(|e| engine_error("cannot inspect the predictor's container", e))?;
        inspected
            .network_settings
            .and_then(|n| n.ports)
            .and_then(|ports| ports.get(&format!("{port}/tcp")).cloned().flatten())
            .and_then(|bindings| {
                bindings
                    .iter()
                    .find_map(|b| b.host_port.as_deref().and_then(|p| p.parse().ok()))
            })
            .ok_or_else(|| BackendError(format!("the engine published no host port for {port}")))
    }

    /// The containers of this project (of one job when `job` is set), running or not, as
    /// (container id, service id label, job id label).
    async fn project_containers(
        &self,
        job: Option<Uuid>,
    ) -> Result<Vec<(String, Option<Uuid>, Option<Uuid>)>, BackendError> {
        let mut wanted = vec![format!("{}={}", labels::PROJECT, self.settings.project)];
        if let Some(job) = job {
            wanted.push(format!("{}={job}", labels::JOB_ID));
        }
        let filters = HashMap::from([("label".to_owned(), wanted)]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let containers = self
            .docker
            .list_containers(Some(options))
            .await
            .map_err(|e| engine_error("cannot list containers", e))?;
        Ok(containers
            .into_iter()
            .filter_map(|c| {
                let label = |key: &str| {
                    c.labels
                        .as_ref()
                        .and_then(|l| l.get(key))
                        .and_then(|id| id.parse().ok())
                };
                let (service, job) = (label(labels::SERVICE_ID), label(labels::JOB_ID));
                c.id.map(|id| (id, service, job))
            })
            .collect())
    }

    /// The ids of a job's containers, running or not.
    async fn containers_of_job(&self, job_id: Uuid) -> Result<Vec<String>, BackendError> {
        let containers = self.project_containers(Some(job_id)).await?;
        Ok(containers.into_iter().map(|(id, _, _)| id).collect())
    }

    /// Whether a container exists, and the job it serves (its label) when it does.
    async fn job_of(&self, container: &str) -> Result<Option<Option<Uuid>>, BackendError> {
        match self.docker.inspect_container(container, None).await {
            Ok(inspected) => {
                Ok(Some(inspected.config.and_then(|c| c.labels).and_then(
                    |l| l.get(labels::JOB_ID).and_then(|j| j.parse().ok()),
                )))
            }
            Err(err) if is_not_found(&err) => Ok(None),
            Err(err) => Err(engine_error(&format!("cannot inspect {container}"), err)),
        }
    }
}

/// Connects to the engine (`DOCKER_HOST` or the local socket) and agrees on an API version.
pub async fn connect_engine() -> Result<Docker, BackendError> {
    Docker::connect_with_defaults()
        .map_err(|e| engine_error("cannot reach the Docker engine", e))?
        .negotiate_version()
        .await
        .map_err(|e| engine_error("cannot reach the Docker engine", e))
}

/// Removes `project`'s dependency-environment volumes that no container uses (the engine
/// refuses to remove one in use; those stay). Returns the names removed.
pub async fn remove_unused_env_volumes(
    docker: &Docker,
    project: &str,
) -> Result<Vec<String>, BackendError> {
    let filters = HashMap::from([(
        "label".to_owned(),
        vec![
            format!("{}={project}", labels::PROJECT),
            labels::ENV_JOB_OWNER.to_owned(),
        ],
    )]);
    let options = ListVolumesOptionsBuilder::default()
        .filters(&filters)
        .build();
    let listed = docker
        .list_volumes(Some(options))
        .await
        .map_err(|e| engine_error("cannot list volumes", e))?;
    let mut removed = Vec::new();
    for volume in listed.volumes.unwrap_or_default() {
        match docker
            .remove_volume(
                &volume.name,
                None::<bollard::query_parameters::RemoveVolumeOptions>,
            )
            .await
        {
            Ok(()) => removed.push(volume.name),
            Err(err) if is_conflict(&err) || is_not_found(&err) => {}
            Err(err) => {
                return Err(engine_error(
                    &format!("cannot remove volume {}", volume.name),
                    err,
                ))
            }
        }
    }
    Ok(removed)
}

#[async_trait::async_trait]
impl Backend for DockerBackend {
    fn name(&self) -> rafiki_types::status::BackendKind {
        rafiki_types::status::BackendKind::Docker
    }

    fn isolation(&self) -> crate::sandbox::Isolation {
        crate::sandbox::Isolation::Container
    }

    fn address(&self, service_id: Uuid, _service_type: ServiceType) -> ServiceAddress {
        // Each container has its own network stack: bind everything, be found by name.
        ServiceAddress {
            bind_host: "0.0.0.0".into(),
            reach_host: self.container_name(service_id),
        }
    }

    async fn start(&self, spec: &ServiceSpec) -> Result<Launched, BackendError> {
        let id = self.create(spec).await?;
        if let Err(err) = self.docker.start_container(&id, None).await {
            let failure = engine_error(
                &format!("cannot start container {}", self.container_name(spec.id)),
                err,
            );
            if let Err(e) = self.remove(&id).await {
                tracing::error!(container = %id, error = %e, "cannot remove a failed container");
            }
            self.release_job_network(spec.job_id).await;
            return Err(failure);
        }
        let published_port = match spec
            .port
            .filter(|_| spec.service_type == ServiceType::Predict)
        {
            Some(port) => match self.published_port(&id, port).await {
                Ok(host_port) => Some(host_port),
                Err(err) => {
                    if let Err(e) = self.remove(&id).await {
                        tracing::error!(container = %id, error = %e, "cannot remove a container");
                    }
                    self.release_job_network(spec.job_id).await;
                    return Err(err);
                }
            },
            None => None,
        };
        Ok(Launched {
            backend_id: id,
            published_port,
            published_host: None,
        })
    }

    async fn state(&self, service_id: Uuid, backend_id: &str) -> ServiceState {
        match self.docker.inspect_container(backend_id, None).await {
            Ok(inspected) => {
                let state = inspected.state.unwrap_or_default();
                match state.status {
                    Some(ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD) => {
                        ServiceState::Exited(state.exit_code.and_then(|c| i32::try_from(c).ok()))
                    }
                    // Created, running, restarting, paused, being removed: not ended.
                    _ => ServiceState::Running,
                }
            }
            Err(err) if is_not_found(&err) => ServiceState::Missing,
            Err(err) => {
                // An unreachable engine says nothing about the service: keep it as it is
                // rather than restart work that may be running fine.
                tracing::warn!(service = %service_id, error = %reason(&err), "cannot inspect");
                ServiceState::Running
            }
        }
    }

    async fn stop(&self, service_id: Uuid, backend_id: &str) -> Result<(), BackendError> {
        let Some(job) = self.job_of(backend_id).await? else {
            // Gone already (its job's network, if left, goes at the next reconciliation).
            return Ok(());
        };
        let options = StopContainerOptionsBuilder::default()
            .t(STOP_GRACE_SECS)
            .build();
        match self.docker.stop_container(backend_id, Some(options)).await {
            Ok(()) => {}
            Err(err) if is_not_found(&err) => return Ok(()),
            // 304: already stopped; anything else, the forced removal below settles.
            Err(err) => tracing::debug!(container = %backend_id, error = %reason(&err), "stop"),
        }
        self.keep_logs(backend_id, service_id).await;
        self.remove(backend_id).await?;
        if let Some(job) = job {
            self.release_job_network(job).await;
        }
        Ok(())
    }

    async fn reconcile(&self, live: &[(Uuid, String)]) -> Result<usize, BackendError> {
        let keep: HashSet<(Uuid, &str)> = live.iter().map(|(s, b)| (*s, b.as_str())).collect();
        let mut removed = 0;
        let mut busy_jobs = HashSet::new();
        for (container, service, job) in self.project_containers(None).await? {
            let adopted = service.is_some_and(|s| keep.contains(&(s, container.as_str())));
            if adopted {
                busy_jobs.extend(job);
            } else {
                if let Some(service) = service {
                    self.keep_logs(&container, service).await;
                }
                self.remove(&container).await?;
                removed += 1;
            }
        }
        // Networks of jobs with no container left go with them. One that cannot go (something
        // else joined it) is left, logged: it holds nothing of Rafiki's.
        for (network, job) in self.job_networks().await? {
            if !busy_jobs.contains(&job) {
                if let Err(err) = self.remove_network(&network).await {
                    tracing::warn!(job = %job, error = %err, "cannot remove a job's network");
                }
            }
        }
        Ok(removed)
    }
}
