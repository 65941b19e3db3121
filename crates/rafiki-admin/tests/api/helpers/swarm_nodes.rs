//! A real multi-node Docker Swarm for the multi-node tests: three Docker engines in containers
//! on one machine (`scripts/swarm-nodes.sh`; docs/swarm.md, "Multi-node tests"). This module
//! owns the cluster's lifetime in a test process (brought up, with the worker and predictor
//! images loaded, by the first test that needs it; torn down by the last one to finish), the
//! split between tests that share the nodes and those that stop them, each test's project on
//! the swarm and its clean-up, an admin process pointed at the manager, and what tests ask of
//! the nodes and of the tasks of a project's services.
//!
//! It runs with `RAFIKI_TEST_DOCKER=1` only, as the docker and swarm tests do; the host
//! engine's own swarm is never touched (the nodes are containers on it, nothing more). The
//! admin under test gets `DOCKER_HOST` (the manager's TCP API) in its own environment only:
//! other tests of the process use the host's engine.

use std::collections::HashMap;
use std::process::{Command, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use bollard::models::{NodeState, TaskState};
use bollard::query_parameters::ListTasksOptionsBuilder;
use bollard::Docker;
use rafiki_admin::backend::docker::labels;
use serde_json::{json, Value};
use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use uuid::Uuid;

use super::admin_process::{free_port, spawn_with_env};
use super::prerequisites::repo_root;
use super::{poll, TestApp};

/// The manager's engine API, on its address on the nodes' private network.
pub const MANAGER_URL: &str = "tcp://172.31.250.11:2375";
/// The host as the nodes (and the services on them) see it: the gateway of their network.
pub const HOST_ADDR: &str = "172.31.250.1";
/// Nodes in the swarm; node 1 is the manager.
pub const NODE_COUNT: usize = 3;
/// The images loaded into every node.
const IMAGES: [&str; 2] = ["rafiki-rs/worker:latest", "rafiki-rs/predictor:latest"];
/// The node image (`scripts/build-images.sh swarm-node`).
const NODE_IMAGE: &str = "rafiki-rs/swarm-node:latest";
/// The pids limit of the tests' services, as in the other container tests.
const PIDS_LIMIT: u64 = 200;

/// The node container of node `i` (1-based), also its host name and its name in the swarm.
pub fn node_name(i: usize) -> String {
    format!("rafiki-swarm-node{i}")
}

/// The address of node `i` on the nodes' network (where predictors publish their port).
pub fn node_addr(i: usize) -> String {
    format!("172.31.250.1{i}")
}

/// Runs `scripts/swarm-nodes.sh` with these arguments; its standard output, or what it said
/// when it failed.
fn swarm_nodes_script(args: &[&str]) -> Result<String, String> {
    let out = Command::new(repo_root().join("scripts/swarm-nodes.sh"))
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("scripts/swarm-nodes.sh does not run: {e}"))?;
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).into_owned())
    } else {
        Err(format!(
            "scripts/swarm-nodes.sh {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        ))
    }
}

/// Runs `docker` on the manager's engine (inside node 1); its output, `None` on failure.
fn on_manager(args: &[&str]) -> Option<String> {
    let manager = node_name(1);
    let out = Command::new("docker")
        .args(["exec", manager.as_str(), "docker"])
        .args(args)
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The tests holding the cluster; the first brings it up, the last takes it down.
static HOLDERS: Mutex<usize> = Mutex::new(0);
/// Tests that share the nodes read; a test that stops nodes writes, alone on them.
static NODES_IN_USE: RwLock<()> = RwLock::const_new(());

/// A test's hold on the cluster (brought up when nobody held it).
struct ClusterLease;

impl ClusterLease {
    fn take() -> Self {
        let mut holders = HOLDERS.lock().unwrap_or_else(|e| e.into_inner());
        if *holders == 0 {
            for image in IMAGES.iter().chain([&NODE_IMAGE]) {
                let known = Command::new("docker")
                    .args(["image", "inspect", image])
                    .output()
                    .is_ok_and(|o| o.status.success());
                assert!(
                    known,
                    "no image {image}: RAFIKI_IMAGE_PROFILE=debug scripts/build-images.sh \
                     --no-cargo worker predictor swarm-node"
                );
            }
            let started = std::time::Instant::now();
            let up = swarm_nodes_script(&["up"]).map(|url| (url, started.elapsed()));
            let mut load = vec!["load"];
            load.extend(IMAGES);
            let (url, up) = match up.and_then(|up| swarm_nodes_script(&load).map(|_| up)) {
                Ok(done) => done,
                Err(why) => {
                    // Half a cluster is no use to the next test: take it down.
                    let _ = swarm_nodes_script(&["down"]);
                    panic!("the multi-node swarm did not come up: {why}");
                }
            };
            assert_eq!(url.trim(), MANAGER_URL, "the manager's URL");
            eprintln!(
                "swarm nodes: up in {up:.1?}, images loaded in {:.1?}",
                started.elapsed() - up
            );
        }
        *holders += 1;
        ClusterLease
    }
}

impl Drop for ClusterLease {
    fn drop(&mut self) {
        let mut holders = HOLDERS.lock().unwrap_or_else(|e| e.into_inner());
        *holders -= 1;
        if *holders == 0 {
            if let Err(why) = swarm_nodes_script(&["down"]) {
                eprintln!("the multi-node swarm was not taken down: {why}");
            }
        }
    }
}

/// How a test holds the nodes.
enum Use {
    Shared {
        _guard: RwLockReadGuard<'static, ()>,
    },
    Exclusive {
        _guard: RwLockWriteGuard<'static, ()>,
    },
}

/// The multi-node swarm as a test holds it, and a client of its manager's engine.
pub struct SwarmNodes {
    docker: Docker,
    // Dropped in this order: the nodes first (an exclusive holder restarts any it stopped),
    // then the lease (the last one takes the cluster down).
    nodes: Use,
    _lease: ClusterLease,
}

/// A node as the manager lists it.
#[derive(Debug, Clone)]
pub struct NodeInfo {
    /// Its index, 1 to [`NODE_COUNT`].
    pub index: usize,
    /// Swarm's node id.
    pub id: String,
    /// Its address (`Status.Addr`).
    pub addr: String,
    /// `ready`, `down`, ...
    pub state: Option<NodeState>,
    /// Its labels (`docker node update --label-add`).
    pub labels: HashMap<String, String>,
}

/// The task of one of a project's Swarm services.
#[derive(Debug, Clone)]
pub struct ServiceTask {
    /// The Swarm service's id.
    pub service: String,
    /// The Rafiki service it runs (label `rafiki-rs.service-id`).
    pub service_id: String,
    /// `TRAIN`, `INFERENCE` or `PREDICT` (label `rafiki-rs.service-type`).
    pub service_type: String,
    /// The node the task was given, once the scheduler gave it one.
    pub node_id: Option<String>,
    /// Its state as last reported.
    pub state: Option<TaskState>,
}

impl SwarmNodes {
    /// The cluster, shared with the other tests that do not stop nodes; `None` when the
    /// multi-node tests do not run.
    pub async fn shared() -> Option<Self> {
        if !super::docker_cli::wanted() {
            return None;
        }
        let lease = ClusterLease::take();
        let guard = NODES_IN_USE.read().await;
        Some(Self::connect(Use::Shared { _guard: guard }, lease).await)
    }

    /// The cluster, alone on it: for tests that stop nodes. Nodes it leaves stopped are
    /// started again (and awaited Ready) when it drops.
    pub async fn exclusive() -> Option<Self> {
        if !super::docker_cli::wanted() {
            return None;
        }
        let lease = ClusterLease::take();
        let guard = NODES_IN_USE.write().await;
        Some(Self::connect(Use::Exclusive { _guard: guard }, lease).await)
    }

    async fn connect(nodes: Use, lease: ClusterLease) -> Self {
        let docker = Docker::connect_with_http(MANAGER_URL, 60, bollard::API_DEFAULT_VERSION)
            .expect("a client of the manager")
            .negotiate_version()
            .await
            .expect("the manager's engine answers");
        SwarmNodes {
            docker,
            nodes,
            _lease: lease,
        }
    }

    /// The nodes as the manager lists them, by index.
    pub async fn nodes(&self) -> Vec<NodeInfo> {
        let mut nodes: Vec<NodeInfo> = self
            .docker
            .list_nodes(None)
            .await
            .expect("the manager lists its nodes")
            .into_iter()
            .filter_map(|n| {
                let hostname = n.description.as_ref()?.hostname.clone()?;
                let index = (1..=NODE_COUNT).find(|i| node_name(*i) == hostname)?;
                let status = n.status.unwrap_or_default();
                Some(NodeInfo {
                    index,
                    id: n.id?,
                    addr: status.addr.unwrap_or_default(),
                    state: status.state,
                    labels: n.spec.and_then(|s| s.labels).unwrap_or_default(),
                })
            })
            .collect();
        // A node that joined again after losing its state is listed twice; the newest (a
        // ready one) counts.
        nodes.sort_by_key(|n| (n.index, n.state != Some(NodeState::READY)));
        nodes.dedup_by_key(|n| n.index);
        nodes
    }

    /// Node `i` as the manager lists it.
    pub async fn node(&self, i: usize) -> NodeInfo {
        self.nodes()
            .await
            .into_iter()
            .find(|n| n.index == i)
            .unwrap_or_else(|| panic!("the manager lists {}", node_name(i)))
    }

    /// The index of the node with Swarm id `id`.
    pub async fn index_of(&self, id: &str) -> usize {
        self.nodes()
            .await
            .into_iter()
            .find(|n| n.id == id)
            .unwrap_or_else(|| panic!("no node {id}"))
            .index
    }

    /// Waits until the manager lists node `i` in `state`.
    async fn wait_for_node(&self, i: usize, state: NodeState, seconds: u64) {
        poll::until(
            &format!("{} {state}", node_name(i)),
            Duration::from_secs(seconds),
            Duration::from_millis(300),
            async || match self.node(i).await.state {
                Some(now) if now == state => Ok(()),
                now => Err(format!("{now:?}")),
            },
        )
        .await;
    }

    /// Stops node `i`'s container (its engine and everything on it) and waits until the
    /// manager lists it down. Only for tests that hold the nodes [`exclusive`](Self::exclusive)ly.
    pub async fn stop_node(&self, i: usize) {
        assert!(
            matches!(self.nodes, Use::Exclusive { .. }),
            "stopping nodes is exclusive"
        );
        assert!(i != 1, "node 1 is the manager; stopping it ends the swarm");
        super::docker_cli::run(&["stop", "-t", "2", &node_name(i)]);
        self.wait_for_node(i, NodeState::DOWN, 60).await;
    }

    /// Starts node `i`'s container again and waits until the manager lists it ready.
    pub async fn start_node(&self, i: usize) {
        super::docker_cli::run(&["start", &node_name(i)]);
        self.wait_for_node(i, NodeState::READY, 90).await;
    }

    /// Sets a label of node `i` (`docker node update --label-add`).
    pub async fn label_node(&self, i: usize, key: &str, value: &str) {
        let label = format!("{key}={value}");
        on_manager(&["node", "update", "--label-add", &label, &node_name(i)])
            .unwrap_or_else(|| panic!("{} labelled {label}", node_name(i)));
    }

    /// Removes a label of node `i` (`docker node update --label-rm`).
    pub async fn unlabel_node(&self, i: usize, key: &str) {
        on_manager(&["node", "update", "--label-rm", key, &node_name(i)])
            .unwrap_or_else(|| panic!("{} unlabelled {key}", node_name(i)));
    }

    /// A project of the test's own on the swarm (its services, network and volumes are
    /// removed when it drops).
    pub fn project(&self) -> SwarmProject {
        SwarmProject {
            name: format!("rafiki-test-{}", &Uuid::new_v4().simple().to_string()[..12]),
        }
    }

    /// The newest task of each of `project`'s Swarm services.
    pub async fn tasks(&self, project: &SwarmProject) -> Vec<ServiceTask> {
        let services = super::docker_cli::swarm_services(&self.docker, &project.name).await;
        let mut tasks = Vec::new();
        for service in services {
            let id = service.id.unwrap_or_default();
            let labels_of = service.spec.and_then(|s| s.labels).unwrap_or_default();
            let filters = HashMap::from([("service".to_owned(), vec![id.clone()])]);
            let options = ListTasksOptionsBuilder::default().filters(&filters).build();
            // A service removed meanwhile has no tasks.
            let newest = self
                .docker
                .list_tasks(Some(options))
                .await
                .unwrap_or_default()
                .into_iter()
                .max_by_key(|t| t.version.as_ref().and_then(|v| v.index));
            tasks.push(ServiceTask {
                service: id,
                service_id: labels_of
                    .get(labels::SERVICE_ID)
                    .cloned()
                    .unwrap_or_default(),
                service_type: labels_of
                    .get(labels::SERVICE_TYPE)
                    .cloned()
                    .unwrap_or_default(),
                node_id: newest.as_ref().and_then(|t| t.node_id.clone()),
                state: newest.and_then(|t| t.status).and_then(|s| s.state),
            });
        }
        tasks.sort_by(|a, b| a.service_id.cmp(&b.service_id));
        tasks
    }

    /// Starts `rafiki-admin` (the built binary, a child process) with the swarm backend on the
    /// manager, for `project`, on `database_url`, with the test settings and `extra`; waits
    /// until it answers `GET /health`. It listens on every address, so that services reach
    /// it through the host's address on the nodes' network; its log is `admin.log` in its
    /// data directory.
    pub async fn spawn_admin(
        &self,
        database_url: &str,
        project: &SwarmProject,
        extra: &[(&str, Value)],
    ) -> TestApp {
        let port = free_port();
        let mut settings = vec![
            ("admin_port", json!(port)),
            ("backend", json!("swarm")),
            ("bind_host", json!("0.0.0.0")),
            (
                "service_admin_url",
                json!(format!("http://{HOST_ADDR}:{port}")),
            ),
            ("docker_project", json!(project.name)),
            ("swarm_network", json!(project.network())),
            ("swarm_pending_timeout_secs", json!(5)),
            ("docker_cpus", json!(1.0)),
            ("docker_memory_mb", json!(1024)),
            ("docker_pids_limit", json!(PIDS_LIMIT)),
            ("supervise_ms", json!(200)),
        ];
        settings.extend(extra.iter().map(|(k, v)| (*k, v.clone())));
        // The manager's engine, for this admin only.
        spawn_with_env(database_url, &settings, &[("DOCKER_HOST", MANAGER_URL)]).await
    }
}

impl Drop for SwarmNodes {
    fn drop(&mut self) {
        if matches!(self.nodes, Use::Exclusive { .. }) {
            // Every node running and Ready again, for the tests after this one (a no-op when
            // they are).
            if let Err(why) = swarm_nodes_script(&["up"]) {
                eprintln!("the nodes were not all brought back: {why}");
            }
        }
    }
}

/// A test's project on the multi-node swarm: the admin's `RAFIKI_DOCKER_PROJECT`, whose
/// services, overlay network and volumes are removed from the nodes when it drops (declare
/// it after the [`SwarmNodes`], so that it drops first).
pub struct SwarmProject {
    pub name: String,
}

impl SwarmProject {
    /// The project's overlay network (`RAFIKI_SWARM_NETWORK`).
    pub fn network(&self) -> String {
        format!("{}-net", self.name)
    }

    /// What `docker <kind> ls` on node `i` lists of the project, by label.
    fn listed(&self, i: usize, kind: &str) -> Vec<String> {
        super::docker_cli::listed(Some(&node_name(i)), kind, &self.name)
    }
}

impl Drop for SwarmProject {
    fn drop(&mut self) {
        for service in self.listed(1, "service") {
            let _ = on_manager(&["service", "rm", &service]);
        }
        // Swarm removes the containers of removed services in the background, on each node.
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        for i in 1..=NODE_COUNT {
            while !self.listed(i, "container").is_empty() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(500));
            }
            for volume in self.listed(i, "volume") {
                let node = node_name(i);
                let _ = Command::new("docker")
                    .args(["exec", &node, "docker", "volume", "rm", &volume])
                    .output();
            }
        }
        let _ = on_manager(&["network", "rm", &self.network()]);
    }
}
