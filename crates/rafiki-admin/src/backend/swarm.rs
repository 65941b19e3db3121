//! The `swarm` backend: each Rafiki service is a replicated Docker Swarm service of one replica,
//! created through a manager's engine API (the one `DOCKER_HOST` names, or the local socket).
//! It owns the services' specs, the overlay network they share with the admin, their state as
//! Swarm reports it, their removal, reconciliation at start-up, and the swarm's nodes as the
//! cluster's inventory ([`Inventory`]): each node's GPUs are the device ids of its
//! `rafiki.gpus` label ([`GPUS_LABEL`]), set by the operator.
//!
//! Services are labelled (service and containers) like the docker backend's containers, named
//! `<project>-<service id>`, and hardened as far as Swarm's service API allows: the images'
//! unprivileged user, no capabilities, a read-only root file system with one writable
//! anonymous volume (the work directory) and a small tmpfs `/tmp`, CPU, memory and process
//! limits, no init process (see [`SwarmBackend::definition`]), no database credentials.
//! Workers' dependency environments are volumes per (job owner, model owner), as with docker;
//! Swarm creates them on the service's node.
//!
//! Swarm's own restarts are off (restart policy `none`): the orchestrator relaunches crashed
//! services with its backoff and limit, as a new service of the same name. Each service is
//! pinned to the node the orchestrator placed it on (`node.id == ...`). The kernels this was built on have no IPVS,
//! so service VIPs and the ingress mesh do not work: services use DNS round-robin endpoints
//! (their name resolves to their task's address on the overlay network) and predictors publish
//! their port in host mode on their node, whose address clients are given.
//!
//! All services share one attachable overlay network with the admin (when the admin runs in a
//! container on it); unlike the docker backend's network per job, jobs are not separated from
//! each other on the network.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use bollard::errors::Error as DockerError;
use bollard::models::{
    EndpointPortConfig, EndpointPortConfigPublishModeEnum, EndpointSpec, EndpointSpecModeEnum,
    Limit, Mount, MountTmpfsOptions, MountType, MountVolumeOptions, NetworkAttachmentConfig,
    NetworkCreateRequest, Node as SwarmNode, NodeSpecAvailabilityEnum, NodeState,
    ServiceSpec as SwarmServiceSpec, ServiceSpecMode, ServiceSpecModeReplicated, Task, TaskSpec,
    TaskSpecContainerSpec, TaskSpecPlacement, TaskSpecResources, TaskSpecRestartPolicy,
    TaskSpecRestartPolicyConditionEnum, TaskState,
};
use bollard::query_parameters::{
    ListContainersOptionsBuilder, ListNetworksOptionsBuilder, ListServicesOptionsBuilder,
    ListTasksOptionsBuilder, LogsOptionsBuilder,
};
use bollard::Docker;
use rafiki_types::status::ServiceType;
use uuid::Uuid;

use super::docker::{connect_engine, labels, DockerSettings};
use super::engine::{
    self, engine_error, is_not_found, reason, CONTAINER_DATA_DIR, CONTAINER_VENV_DIR,
    CONTAINER_WORK_DIR, KEPT_LOG_LINES, SERVICE_USER,
};
use super::{Backend, BackendError, Launched, Owners, ServiceAddress, ServiceSpec, ServiceState};
use crate::cluster::{Inventory, Node};

/// The label of a service naming the node it is pinned to.
pub const NODE_LABEL: &str = "rafiki-rs.node";

/// The node label declaring a node's GPU device ids, e.g. `0,1` (`docker node update
/// --label-add rafiki.gpus=0,1 NODE`); a node without it has none.
pub const GPUS_LABEL: &str = "rafiki.gpus";

/// The size of the scratch `/tmp`, in bytes. Swarm's API before 1.46 takes no tmpfs flags, so
/// unlike the docker backend's it cannot be `noexec`.
const TMP_BYTES: i64 = 256 * 1024 * 1024;
/// Seconds a removed service's container gets after SIGTERM before SIGKILL, in nanoseconds.
const STOP_GRACE_NANOS: i64 = 5_000_000_000;
/// How long a removed service's containers may take to go (6 to 16 s measured on one node).
const REMOVAL_TIMEOUT: Duration = Duration::from_secs(60);
/// How often removal and a predictor's start are checked on.
const POLL: Duration = Duration::from_millis(250);

/// How the backend runs services.
#[derive(Debug, Clone)]
pub struct SwarmSettings {
    /// What every container of the project gets, as with the docker backend: the project's
    /// name, the predictor's image, the limits, where removed services' output is kept.
    pub container: DockerSettings,
    /// The attachable overlay network of the admin and its services.
    pub network: String,
    /// How long a task may stay `pending` (no node can take it) before it counts as failed.
    pub pending_timeout: Duration,
}

/// Runs services as Swarm services.
pub struct SwarmBackend {
    docker: Docker,
    settings: SwarmSettings,
    /// By Swarm service: its pending task and when this admin first saw it pending (Swarm's
    /// task timestamps change with every status message, so the wait is measured here).
    /// Dropped when the task runs or ends, and when the service is removed.
    pending_since: Mutex<HashMap<String, (String, Instant)>>,
}

/// A swarm node as the cluster's inventory sees it: usable when ready and active; its GPUs from
/// its [`GPUS_LABEL`].
pub fn inventory_node(node: SwarmNode) -> Option<Node> {
    let id = node.id?;
    let status = node.status.unwrap_or_default();
    let spec = node.spec.unwrap_or_default();
    let state = status.state.unwrap_or(NodeState::UNKNOWN);
    let availability = spec
        .availability
        .unwrap_or(NodeSpecAvailabilityEnum::ACTIVE);
    let unusable = if state != NodeState::READY {
        Some(state.to_string())
    } else {
        match availability {
            NodeSpecAvailabilityEnum::DRAIN => Some("drained".to_owned()),
            NodeSpecAvailabilityEnum::PAUSE => Some("paused".to_owned()),
            _ => None,
        }
    };
    let (gpus, gpus_error) = match spec.labels.unwrap_or_default().get(GPUS_LABEL) {
        None => (Vec::new(), None),
        Some(text) => match crate::gpus::parse_gpu_list(text) {
            Ok(gpus) => (gpus, None),
            Err(err) => (
                Vec::new(),
                Some(format!("label {GPUS_LABEL}={text:?}: {err}")),
            ),
        },
    };
    Some(Node {
        name: node
            .description
            .and_then(|d| d.hostname)
            .unwrap_or_else(|| id.clone()),
        addr: status.addr.unwrap_or_default(),
        id,
        unusable,
        gpus,
        gpus_error,
    })
}

/// A task's state as the orchestrator sees it, or `None` while it waits for a node.
fn task_state(task: &Task) -> Option<ServiceState> {
    let status = task.status.clone().unwrap_or_default();
    let exit_code = status
        .container_status
        .and_then(|c| c.exit_code)
        .and_then(|c| i32::try_from(c).ok());
    match status.state {
        Some(TaskState::COMPLETE) => Some(ServiceState::Exited(Some(0))),
        Some(TaskState::FAILED | TaskState::SHUTDOWN) => Some(ServiceState::Exited(exit_code)),
        Some(TaskState::REJECTED | TaskState::ORPHANED | TaskState::REMOVE) => {
            let why = status.err.or(status.message).unwrap_or_default();
            Some(ServiceState::Failed(format!(
                "Swarm gave up on its task ({}): {why}",
                status.state.map(|s| s.to_string()).unwrap_or_default()
            )))
        }
        Some(TaskState::PENDING) => None,
        // New, allocated, assigned, accepted, preparing, ready, starting, running: under way.
        _ => Some(ServiceState::Running),
    }
}

impl SwarmBackend {
    /// Connects to the engine, which must be a swarm manager's, and makes sure the overlay
    /// network exists.
    pub async fn connect(settings: SwarmSettings) -> Result<Self, BackendError> {
        let docker = connect_engine().await?;
        let info = docker
            .info()
            .await
            .map_err(|e| engine_error("cannot read the engine's information", e))?;
        let manager = info
            .swarm
            .and_then(|s| s.control_available)
            .unwrap_or(false);
        if !manager {
            return Err(BackendError(
                "the Docker engine is not a swarm manager (`docker swarm init`, or point \
                 DOCKER_HOST at a manager)"
                    .into(),
            ));
        }
        let backend = SwarmBackend {
            docker,
            settings,
            pending_since: Mutex::new(HashMap::new()),
        };
        backend.ensure_network().await?;
        Ok(backend)
    }

    /// The swarm's nodes, as the cluster's inventory.
    pub fn nodes(&self) -> SwarmNodes {
        SwarmNodes(self.docker.clone())
    }

    /// The engine client (tests inspect services with it).
    pub fn client(&self) -> &Docker {
        &self.docker
    }

    /// The Swarm service name of a Rafiki service (also its DNS name on the network).
    pub fn service_name(&self, service_id: Uuid) -> String {
        format!("{}-{service_id}", self.settings.container.project)
    }

    /// The volume of the dependency environments of `owners`' workers (on each node).
    fn env_volume_name(&self, owners: Owners) -> String {
        format!(
            "{}-envs-{}-{}",
            self.settings.container.project, owners.job, owners.model
        )
    }

    /// Creates the overlay network unless it exists; one of that name must be an attachable
    /// overlay, or the admin could not join it.
    async fn ensure_network(&self) -> Result<(), BackendError> {
        let name = &self.settings.network;
        let filters = HashMap::from([("name".to_owned(), vec![name.clone()])]);
        let options = ListNetworksOptionsBuilder::default()
            .filters(&filters)
            .build();
        let existing = self
            .docker
            .list_networks(Some(options))
            .await
            .map_err(|e| engine_error("cannot list networks", e))?
            .into_iter()
            .find(|n| n.name.as_deref() == Some(name));
        if let Some(network) = existing {
            if network.driver.as_deref() != Some("overlay") || network.attachable != Some(true) {
                return Err(BackendError(format!(
                    "network {name} exists but is not an attachable overlay network"
                )));
            }
            return Ok(());
        }
        let request = NetworkCreateRequest {
            name: name.clone(),
            driver: Some("overlay".into()),
            attachable: Some(true),
            labels: Some(HashMap::from([(
                labels::PROJECT.to_owned(),
                self.settings.container.project.clone(),
            )])),
            ..Default::default()
        };
        self.docker
            .create_network(request)
            .await
            .map_err(|e| engine_error(&format!("cannot create network {name}"), e))?;
        Ok(())
    }

    /// The service's spec: image, command, environment, labels, user, limits, hardening, file
    /// systems, network, endpoint, node, restart policy.
    pub fn definition(&self, spec: &ServiceSpec) -> SwarmServiceSpec {
        let (image, cmd) =
            engine::image_and_command(spec, &self.settings.container.predictor_image);
        let mut vars = engine::container_env(spec);
        let mut mounts = vec![
            Mount {
                target: Some(CONTAINER_DATA_DIR.into()),
                typ: Some(MountType::VOLUME),
                ..Default::default()
            },
            Mount {
                target: Some("/tmp".into()),
                typ: Some(MountType::TMPFS),
                tmpfs_options: Some(MountTmpfsOptions {
                    size_bytes: Some(TMP_BYTES),
                    mode: Some(0o1777),
                    ..Default::default()
                }),
                ..Default::default()
            },
        ];
        if let Some(owners) = spec.owners {
            mounts.push(Mount {
                target: Some(CONTAINER_VENV_DIR.into()),
                source: Some(self.env_volume_name(owners)),
                typ: Some(MountType::VOLUME),
                // Swarm creates the volume on the node; the labels let gc find it.
                volume_options: Some(MountVolumeOptions {
                    labels: Some(HashMap::from([
                        (
                            labels::PROJECT.to_owned(),
                            self.settings.container.project.clone(),
                        ),
                        (labels::ENV_JOB_OWNER.to_owned(), owners.job.to_string()),
                        (labels::ENV_MODEL_OWNER.to_owned(), owners.model.to_string()),
                    ])),
                    ..Default::default()
                }),
                ..Default::default()
            });
        }
        // GPUs: the docker backend gives a container a device request for exactly its
        // devices, but a Swarm service has no device requests (only generic resources, which
        // the scheduler counts and does not bind to devices). The NVIDIA runtime, which must
        // be the nodes' default, reads the devices from NVIDIA_VISIBLE_DEVICES instead ("void":
        // none, even for an image that asks for all); inside, they are numbered from 0.
        let devices: Vec<String> = spec.gpus.iter().map(i32::to_string).collect();
        let nvidia = if devices.is_empty() {
            "void".to_owned()
        } else {
            devices.join(",")
        };
        vars.push(format!("NVIDIA_VISIBLE_DEVICES={nvidia}"));
        let visible: Vec<String> = (0..spec.gpus.len()).map(|i| i.to_string()).collect();
        vars.push(format!("CUDA_VISIBLE_DEVICES={}", visible.join(",")));
        let ports = spec
            .port
            .filter(|_| spec.service_type == ServiceType::Predict)
            .map(|port| {
                vec![EndpointPortConfig {
                    target_port: Some(i64::from(port)),
                    // Host mode: ingress publishing needs IPVS. No published port: the node's
                    // engine picks a free one, read back from the task's port status.
                    publish_mode: Some(EndpointPortConfigPublishModeEnum::HOST),
                    ..Default::default()
                }]
            });
        let service_labels = HashMap::from([
            (
                labels::PROJECT.to_owned(),
                self.settings.container.project.clone(),
            ),
            (labels::SERVICE_ID.to_owned(), spec.id.to_string()),
            (
                labels::SERVICE_TYPE.to_owned(),
                spec.service_type.to_string(),
            ),
            (labels::JOB_ID.to_owned(), spec.job_id.to_string()),
        ]);
        let mut labelled = service_labels.clone();
        labelled.insert(NODE_LABEL.to_owned(), spec.node.clone());
        let cpus = self.settings.container.cpus;
        let memory = self.settings.container.memory_mb;
        let pids = self.settings.container.pids_limit;
        SwarmServiceSpec {
            name: Some(self.service_name(spec.id)),
            labels: Some(labelled),
            mode: Some(ServiceSpecMode {
                replicated: Some(ServiceSpecModeReplicated { replicas: Some(1) }),
                ..Default::default()
            }),
            task_template: Some(TaskSpec {
                container_spec: Some(TaskSpecContainerSpec {
                    image: Some(image),
                    command: Some(cmd.into_iter().map(String::from).collect()),
                    env: Some(vars),
                    // The containers carry the labels too: stop waits for them to be gone.
                    labels: Some(service_labels),
                    user: Some(SERVICE_USER.into()),
                    dir: Some(CONTAINER_WORK_DIR.into()),
                    read_only: Some(true),
                    mounts: Some(mounts),
                    capability_drop: Some(vec!["ALL".into()]),
                    stop_grace_period: Some(STOP_GRACE_NANOS),
                    // No init process, as with docker: it would run as the service user,
                    // readable by the model, with the service's token in its environment.
                    // Swarm's API has no `no-new-privileges`; with every capability dropped a
                    // set-uid program still gains none.
                    init: Some(false),
                    // The admin on the node's host (when it is not on the overlay network).
                    hosts: Some(vec!["host-gateway host.docker.internal".into()]),
                    ..Default::default()
                }),
                resources: Some(TaskSpecResources {
                    limits: Some(Limit {
                        nano_cpus: (cpus > 0.0).then_some((cpus * 1e9) as i64),
                        memory_bytes: (memory > 0).then_some((memory * 1024 * 1024) as i64),
                        pids: i64::try_from(pids).ok().filter(|p| *p > 0),
                    }),
                    ..Default::default()
                }),
                // The orchestrator restarts crashed services itself, with backoff and a limit.
                restart_policy: Some(TaskSpecRestartPolicy {
                    condition: Some(TaskSpecRestartPolicyConditionEnum::NONE),
                    ..Default::default()
                }),
                placement: Some(TaskSpecPlacement {
                    constraints: Some(vec![format!("node.id == {}", spec.node)]),
                    ..Default::default()
                }),
                networks: Some(vec![NetworkAttachmentConfig {
                    target: Some(self.settings.network.clone()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            // DNS round-robin: a VIP needs IPVS.
            endpoint_spec: Some(EndpointSpec {
                mode: Some(EndpointSpecModeEnum::DNSRR),
                ports,
            }),
            ..Default::default()
        }
    }

    /// The log a service's removed containers leave behind.
    pub fn log_path(&self, service_id: Uuid) -> PathBuf {
        engine::log_path(&self.settings.container.logs_dir, service_id)
    }

    /// Appends the end of a service's output to its log; a service that does not exist has
    /// none. Failures are logged, never fatal: the output is a diagnostic.
    async fn keep_logs(&self, swarm_service: &str, service_id: Uuid) {
        let options = LogsOptionsBuilder::default()
            .stdout(true)
            .stderr(true)
            .tail(KEPT_LOG_LINES)
            .build();
        let output = self.docker.service_logs(swarm_service, Some(options));
        engine::keep_output(output, swarm_service, &self.log_path(service_id)).await;
    }

    /// Keeps a service's output, removes it and waits until its containers are gone; one
    /// already gone is fine.
    /// Forgets a service's pending task, if it had one.
    fn forget_pending(&self, swarm_service: &str) {
        self.pending_since
            .lock()
            .expect("pending_since is never poisoned")
            .remove(swarm_service);
    }

    async fn remove(&self, swarm_service: &str, service_id: Uuid) -> Result<(), BackendError> {
        self.forget_pending(swarm_service);
        self.keep_logs(swarm_service, service_id).await;
        match self.docker.delete_service(swarm_service).await {
            Ok(()) => {}
            Err(err) if is_not_found(&err) => {}
            Err(err) => {
                return Err(engine_error(
                    &format!("cannot remove service {swarm_service}"),
                    err,
                ))
            }
        }
        self.wait_until_gone(service_id).await
    }

    /// Waits until no container of the service is left on the engine. Swarm removes a
    /// removed service's containers in the background (seconds), and a relaunch or a new job
    /// must not count them. Containers on other nodes are not visible from here.
    async fn wait_until_gone(&self, service_id: Uuid) -> Result<(), BackendError> {
        let deadline = Instant::now() + REMOVAL_TIMEOUT;
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![
                format!("{}={}", labels::PROJECT, self.settings.container.project),
                format!("{}={service_id}", labels::SERVICE_ID),
            ],
        )]);
        loop {
            let options = ListContainersOptionsBuilder::default()
                .all(true)
                .filters(&filters)
                .build();
            let left = self
                .docker
                .list_containers(Some(options))
                .await
                .map_err(|e| engine_error("cannot list containers", e))?;
            if left.is_empty() {
                return Ok(());
            }
            if Instant::now() >= deadline {
                return Err(BackendError(format!(
                    "the containers of service {service_id} were not removed within {:?}",
                    REMOVAL_TIMEOUT
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The newest task of a Swarm service, `None` when it has none (or is gone). A service
    /// has one task at a time here (one replica, Swarm's restarts off, never updated); should
    /// there be several, the most recently changed one counts.
    async fn newest_task(&self, swarm_service: &str) -> Result<Option<Task>, DockerError> {
        let filters = HashMap::from([("service".to_owned(), vec![swarm_service.to_owned()])]);
        let options = ListTasksOptionsBuilder::default().filters(&filters).build();
        let tasks = match self.docker.list_tasks(Some(options)).await {
            Ok(tasks) => tasks,
            Err(err) if is_not_found(&err) => return Ok(None),
            Err(err) => return Err(err),
        };
        Ok(tasks
            .into_iter()
            .max_by_key(|t| t.version.as_ref().and_then(|v| v.index)))
    }

    /// What a task waiting for a node means: still waiting, or, past the timeout, failed with
    /// Swarm's reason.
    fn pending(&self, swarm_service: &str, task: &Task) -> ServiceState {
        let id = task.id.clone().unwrap_or_default();
        let since = {
            let mut pending = self
                .pending_since
                .lock()
                .expect("pending_since is never poisoned");
            let entry = pending
                .entry(swarm_service.to_owned())
                .or_insert_with(|| (id.clone(), Instant::now()));
            // Another task of the service waits now: its wait starts now.
            if entry.0 != id {
                *entry = (id, Instant::now());
            }
            entry.1
        };
        if since.elapsed() < self.settings.pending_timeout {
            return ServiceState::Running;
        }
        let status = task.status.clone().unwrap_or_default();
        let why = status.err.or(status.message).unwrap_or_default();
        ServiceState::Failed(format!(
            "no node took its task within {:?}: {why}",
            self.settings.pending_timeout
        ))
    }

    /// Waits until a predictor's task runs on `node` and returns where it is published: the
    /// node's address and the host port.
    async fn published_at(
        &self,
        swarm_service: &str,
        port: u16,
        node: &str,
    ) -> Result<(String, u16), BackendError> {
        let published = self.published_port(swarm_service, port).await?;
        let addr = self
            .docker
            .inspect_node(node)
            .await
            .map_err(|e| engine_error(&format!("cannot inspect node {node}"), e))?
            .status
            .and_then(|s| s.addr)
            .ok_or_else(|| BackendError(format!("node {node} has no address")))?;
        Ok((addr, published))
    }

    /// Waits until a predictor's task runs and returns the host port it is published on.
    async fn published_port(&self, swarm_service: &str, port: u16) -> Result<u16, BackendError> {
        let deadline = Instant::now() + self.settings.pending_timeout;
        loop {
            let task = self
                .newest_task(swarm_service)
                .await
                .map_err(|e| engine_error("cannot list the predictor's tasks", e))?;
            let status = task.as_ref().and_then(|t| t.status.clone());
            let state = status.as_ref().and_then(|s| s.state);
            if state == Some(TaskState::RUNNING) {
                let published = status
                    .and_then(|s| s.port_status)
                    .and_then(|p| p.ports)
                    .unwrap_or_default()
                    .into_iter()
                    .find(|p| p.target_port == Some(i64::from(port)))
                    .and_then(|p| p.published_port)
                    .and_then(|p| u16::try_from(p).ok());
                return published.ok_or_else(|| {
                    BackendError(format!("Swarm published no host port for {port}"))
                });
            }
            if let Some(ServiceState::Exited(_) | ServiceState::Failed(_)) =
                task.as_ref().and_then(task_state)
            {
                let why = status.and_then(|s| s.err.or(s.message)).unwrap_or_default();
                return Err(BackendError(format!(
                    "the predictor's task ended before it ran: {why}"
                )));
            }
            if Instant::now() >= deadline {
                let why = status.and_then(|s| s.err.or(s.message)).unwrap_or_default();
                return Err(BackendError(format!(
                    "the predictor's task did not run within {:?}: {why}",
                    self.settings.pending_timeout
                )));
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// This project's Swarm services.
    async fn project_services(&self) -> Result<Vec<ProjectService>, BackendError> {
        let filters = HashMap::from([(
            "label".to_owned(),
            vec![format!(
                "{}={}",
                labels::PROJECT,
                self.settings.container.project
            )],
        )]);
        let options = ListServicesOptionsBuilder::default()
            .filters(&filters)
            .build();
        let services = self
            .docker
            .list_services(Some(options))
            .await
            .map_err(|e| engine_error("cannot list services", e))?;
        Ok(services
            .into_iter()
            .filter_map(|s| {
                let labels_of = s.spec.and_then(|spec| spec.labels).unwrap_or_default();
                Some(ProjectService {
                    id: s.id?,
                    service: labels_of
                        .get(labels::SERVICE_ID)
                        .and_then(|id| id.parse().ok()),
                })
            })
            .collect())
    }
}

/// One of the project's Swarm services.
struct ProjectService {
    /// Swarm's id (the backend id).
    id: String,
    /// The Rafiki service it runs (its label).
    service: Option<Uuid>,
}

/// The swarm's nodes as the cluster's inventory, read from a manager.
pub struct SwarmNodes(Docker);

impl SwarmNodes {
    /// The nodes of the swarm whose manager the engine (`DOCKER_HOST` or the local socket) is.
    pub async fn connect() -> Result<Self, BackendError> {
        Ok(SwarmNodes(connect_engine().await?))
    }
}

#[async_trait::async_trait]
impl Inventory for SwarmNodes {
    async fn nodes(&self) -> Result<Vec<Node>, BackendError> {
        let nodes = self
            .0
            .list_nodes(None)
            .await
            .map_err(|e| engine_error("cannot list the swarm's nodes", e))?;
        Ok(nodes.into_iter().filter_map(inventory_node).collect())
    }
}

#[async_trait::async_trait]
impl Backend for SwarmBackend {
    fn name(&self) -> rafiki_types::status::BackendKind {
        rafiki_types::status::BackendKind::Swarm
    }

    fn isolation(&self) -> crate::sandbox::Isolation {
        crate::sandbox::Isolation::Container
    }

    fn address(&self, service_id: Uuid, _service_type: ServiceType) -> ServiceAddress {
        // Each task has its own network stack: bind everything, be found by the service's
        // name (DNS round-robin on the overlay network).
        ServiceAddress {
            bind_host: "0.0.0.0".into(),
            reach_host: self.service_name(service_id),
        }
    }

    async fn start(&self, spec: &ServiceSpec) -> Result<Launched, BackendError> {
        let name = self.service_name(spec.id);
        // A relaunch after a crash: the crashed service goes first (its name is taken).
        self.remove(&name, spec.id).await?;
        let created = self
            .docker
            .create_service(self.definition(spec), None)
            .await
            .map_err(|e| engine_error(&format!("cannot create service {name}"), e))?;
        let Some(id) = created.id else {
            // Nothing to remove by id: remove by name.
            self.remove(&name, spec.id).await?;
            return Err(BackendError(format!("Swarm gave service {name} no id")));
        };
        let published = match spec
            .port
            .filter(|_| spec.service_type == ServiceType::Predict)
        {
            Some(port) => match self.published_at(&id, port, &spec.node).await {
                Ok(at) => Some(at),
                Err(err) => {
                    if let Err(e) = self.remove(&id, spec.id).await {
                        tracing::error!(service = %name, error = %e, "cannot remove a service");
                    }
                    return Err(err);
                }
            },
            None => None,
        };
        Ok(Launched {
            backend_id: id,
            published_port: published.as_ref().map(|(_, port)| *port),
            published_host: published.map(|(host, _)| host),
        })
    }

    async fn state(&self, service_id: Uuid, backend_id: &str) -> ServiceState {
        match self.docker.inspect_service(backend_id, None).await {
            Ok(_) => {}
            Err(err) if is_not_found(&err) => return ServiceState::Missing,
            Err(err) => {
                // An unreachable manager says nothing about the service: keep it as it is.
                tracing::warn!(service = %service_id, error = %reason(&err), "cannot inspect");
                return ServiceState::Running;
            }
        }
        match self.newest_task(backend_id).await {
            // Created, its task not yet made.
            Ok(None) => ServiceState::Running,
            Ok(Some(task)) => match task_state(&task) {
                Some(state) => {
                    // No longer waiting (or never was): forget when it started to.
                    self.forget_pending(backend_id);
                    state
                }
                None => self.pending(backend_id, &task),
            },
            Err(err) => {
                tracing::warn!(service = %service_id, error = %reason(&err), "cannot list tasks");
                ServiceState::Running
            }
        }
    }

    async fn stop(&self, service_id: Uuid, backend_id: &str) -> Result<(), BackendError> {
        self.remove(backend_id, service_id).await
    }

    async fn reconcile(&self, live: &[(Uuid, String)]) -> Result<usize, BackendError> {
        let keep: HashSet<(Uuid, &str)> = live.iter().map(|(s, b)| (*s, b.as_str())).collect();
        let mut removed = 0;
        for service in self.project_services().await? {
            let adopted = service
                .service
                .is_some_and(|s| keep.contains(&(s, service.id.as_str())));
            if adopted {
                continue;
            }
            match service.service {
                Some(rafiki_service) => self.remove(&service.id, rafiki_service).await?,
                None => match self.docker.delete_service(&service.id).await {
                    Ok(()) => {}
                    Err(err) if is_not_found(&err) => {}
                    Err(err) => return Err(engine_error("cannot remove a service", err)),
                },
            }
            removed += 1;
        }
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn swarm_node(
        state: NodeState,
        availability: NodeSpecAvailabilityEnum,
        gpus: Option<&str>,
    ) -> SwarmNode {
        SwarmNode {
            id: Some("n1".into()),
            description: Some(bollard::models::NodeDescription {
                hostname: Some("gpu-box".into()),
                ..Default::default()
            }),
            status: Some(bollard::models::NodeStatus {
                state: Some(state),
                addr: Some("10.0.0.7".into()),
                ..Default::default()
            }),
            spec: Some(bollard::models::NodeSpec {
                availability: Some(availability),
                labels: gpus.map(|g| HashMap::from([(GPUS_LABEL.to_owned(), g.to_owned())])),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn nodes_declare_gpus_in_a_label_and_are_usable_when_ready_and_active() {
        let ready = inventory_node(swarm_node(
            NodeState::READY,
            NodeSpecAvailabilityEnum::ACTIVE,
            Some("0, 2"),
        ))
        .unwrap();
        assert_eq!(
            ready,
            Node {
                id: "n1".into(),
                name: "gpu-box".into(),
                addr: "10.0.0.7".into(),
                unusable: None,
                gpus: vec![0, 2],
                gpus_error: None,
            }
        );
        let cpu_only = inventory_node(swarm_node(
            NodeState::READY,
            NodeSpecAvailabilityEnum::ACTIVE,
            None,
        ))
        .unwrap();
        assert_eq!((cpu_only.gpus, cpu_only.gpus_error), (vec![], None));
        for (state, availability, why) in [
            (NodeState::DOWN, NodeSpecAvailabilityEnum::ACTIVE, "down"),
            (NodeState::READY, NodeSpecAvailabilityEnum::DRAIN, "drained"),
            (NodeState::READY, NodeSpecAvailabilityEnum::PAUSE, "paused"),
        ] {
            let node = inventory_node(swarm_node(state, availability, None)).unwrap();
            assert_eq!(node.unusable.as_deref(), Some(why));
        }
        let bad = inventory_node(swarm_node(
            NodeState::READY,
            NodeSpecAvailabilityEnum::ACTIVE,
            Some("0,x"),
        ))
        .unwrap();
        assert!(bad.gpus.is_empty());
        assert!(bad.gpus_error.unwrap().contains("`x` is not a device id"));
    }

    #[test]
    fn task_states_map_to_service_states() {
        let task = |state, exit_code, err: Option<&str>| Task {
            status: Some(bollard::models::TaskStatus {
                state: Some(state),
                err: err.map(str::to_owned),
                container_status: Some(bollard::models::ContainerStatus {
                    exit_code,
                    ..Default::default()
                }),
                ..Default::default()
            }),
            ..Default::default()
        };
        assert_eq!(
            task_state(&task(TaskState::RUNNING, None, None)),
            Some(ServiceState::Running)
        );
        assert_eq!(
            task_state(&task(TaskState::COMPLETE, Some(0), None)),
            Some(ServiceState::Exited(Some(0)))
        );
        assert_eq!(
            task_state(&task(TaskState::FAILED, Some(137), None)),
            Some(ServiceState::Exited(Some(137)))
        );
        assert_eq!(task_state(&task(TaskState::PENDING, None, None)), None);
        let Some(ServiceState::Failed(why)) =
            task_state(&task(TaskState::REJECTED, None, Some("No such image: x")))
        else {
            panic!("a rejected task failed");
        };
        assert!(why.contains("No such image: x"), "{why}");
    }
}
