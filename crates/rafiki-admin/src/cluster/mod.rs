//! The cluster services run on: its nodes and their GPUs (an [`Inventory`], from the backend's
//! knowledge of its machines), the devices live services hold (`gpu_allocations` in Postgres),
//! and [`placement`], which decides where a job's services go. One host (the process and
//! docker backends) is a cluster of one node, `local`, whose GPUs are `RAFIKI_GPUS`; a swarm's
//! nodes declare theirs in a node label (`backend::swarm`).

pub mod placement;

use std::collections::BTreeMap;

use rafiki_store::gpu_allocations::Allocation;
use rafiki_store::services::ServiceRecord;

use self::placement::NodeLoad;
use crate::backend::BackendError;

/// The node id of one-host backends.
pub const LOCAL_NODE: &str = "local";

/// A machine services can run on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Node {
    /// The backend's id of it (Swarm's node id; `local`).
    pub id: String,
    /// Its name for people (its hostname).
    pub name: String,
    /// The address other machines reach it at (where predictors publish their port).
    pub addr: String,
    /// `None` when new services may go there; else why not (`down`, `drain`, ...).
    pub unusable: Option<String>,
    /// Its GPU device ids.
    pub gpus: Vec<i32>,
    /// Why its declared GPUs could not be read, when they could not (it then has none).
    pub gpus_error: Option<String>,
}

/// Where the nodes and their GPUs come from.
#[async_trait::async_trait]
pub trait Inventory: Send + Sync {
    /// The cluster's nodes now, usable or not.
    async fn nodes(&self) -> Result<Vec<Node>, BackendError>;
}

/// One host with a fixed list of devices (`RAFIKI_GPUS`).
pub struct LocalInventory {
    gpus: Vec<i32>,
}

impl LocalInventory {
    /// The host with these device ids.
    pub fn new(gpus: Vec<i32>) -> Self {
        LocalInventory { gpus }
    }
}

#[async_trait::async_trait]
impl Inventory for LocalInventory {
    async fn nodes(&self) -> Result<Vec<Node>, BackendError> {
        Ok(vec![Node {
            id: LOCAL_NODE.into(),
            name: LOCAL_NODE.into(),
            addr: "127.0.0.1".into(),
            unusable: None,
            gpus: self.gpus.clone(),
            gpus_error: None,
        }])
    }
}

/// The cluster at one moment: nodes, what is held on each, how many services each runs.
#[derive(Debug, Clone)]
pub struct Cluster {
    /// Every node.
    pub nodes: Vec<Node>,
    /// Held devices by node id.
    pub held: BTreeMap<String, Vec<Allocation>>,
    /// Live services by node id.
    pub services: BTreeMap<String, usize>,
}

impl Cluster {
    /// The cluster of `nodes` where `allocations` are held and `live` services run.
    pub fn new(nodes: Vec<Node>, allocations: Vec<Allocation>, live: &[ServiceRecord]) -> Self {
        let mut held: BTreeMap<String, Vec<Allocation>> = BTreeMap::new();
        for allocation in allocations {
            held.entry(allocation.node.clone())
                .or_default()
                .push(allocation);
        }
        let mut services = BTreeMap::new();
        for node in live.iter().filter_map(|s| s.node.clone()) {
            *services.entry(node).or_insert(0) += 1;
        }
        Cluster {
            nodes,
            held,
            services,
        }
    }

    /// The node of this id, if the cluster has it.
    pub fn node(&self, id: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    /// Why no new service may go to node `id` (gone, down, drained), or `None` when one may.
    pub fn why_unusable(&self, id: &str) -> Option<String> {
        match self.node(id) {
            None => Some(format!("node {id} has left the cluster")),
            Some(node) => node
                .unusable
                .as_ref()
                .map(|why| format!("node {} is {why}", node.name)),
        }
    }

    /// The usable nodes, with their free devices and load, as placement models them.
    pub fn loads(&self) -> Vec<NodeLoad> {
        self.nodes
            .iter()
            .filter(|n| n.unusable.is_none())
            .map(|n| {
                let held: Vec<i32> = self
                    .held
                    .get(&n.id)
                    .map(|a| a.iter().map(|a| a.device).collect())
                    .unwrap_or_default();
                NodeLoad {
                    id: n.id.clone(),
                    free: n
                        .gpus
                        .iter()
                        .copied()
                        .filter(|g| !held.contains(g))
                        .collect(),
                    held: held.len(),
                    services: self.services.get(&n.id).copied().unwrap_or(0),
                }
            })
            .collect()
    }

    /// The inventory by node, as `rafiki-admin gpus` prints it: one line per node (name, id,
    /// address, state; its devices, which are free, which service holds each).
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for node in &self.nodes {
            let held = self.held.get(&node.id).map(Vec::as_slice).unwrap_or(&[]);
            let state = node.unusable.as_deref().unwrap_or("ready");
            let list = |ids: &mut dyn Iterator<Item = i32>| {
                let ids: Vec<String> = ids.map(|g| g.to_string()).collect();
                if ids.is_empty() {
                    "none".to_owned()
                } else {
                    ids.join(",")
                }
            };
            let free = list(
                &mut node
                    .gpus
                    .iter()
                    .copied()
                    .filter(|g| !held.iter().any(|a| a.device == *g)),
            );
            let holders: Vec<String> = held
                .iter()
                .map(|a| format!("{} by service {}", a.device, a.service_id))
                .collect();
            out.push_str(&format!(
                "{} ({}) {} {state}: GPUs {}; free {free}; held {}",
                node.name,
                node.id,
                node.addr,
                list(&mut node.gpus.iter().copied()),
                if holders.is_empty() {
                    "none".to_owned()
                } else {
                    holders.join(", ")
                }
            ));
            if let Some(err) = &node.gpus_error {
                out.push_str(&format!(" ({err})"));
            }
            out.push('\n');
        }
        out
    }

    /// Whether a job of these requests could ever be placed: on the whole cluster, every node
    /// back and every device free. `Err` says why not.
    pub fn could_ever_place(&self, requests: &[usize]) -> Result<(), String> {
        let empty: Vec<NodeLoad> = self
            .nodes
            .iter()
            .map(|n| NodeLoad {
                id: n.id.clone(),
                free: n.gpus.clone(),
                held: 0,
                services: 0,
            })
            .collect();
        let total: usize = empty.iter().map(|n| n.free.len()).sum();
        match placement::place(&empty, requests) {
            Ok(_) => Ok(()),
            Err(placement::Shortage::NoNode) => Err("the cluster has no node".into()),
            Err(placement::Shortage::Devices { asked, .. }) => Err(format!(
                "{asked} GPU(s) asked for; the cluster has {total} in all"
            )),
            Err(placement::Shortage::OnOneNode {
                asked,
                most_on_a_node,
                ..
            }) => Err(format!(
                "a service needs {asked} GPUs on one node; the largest node has {most_on_a_node}"
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;

    fn node(id: &str, gpus: &[i32], unusable: Option<&str>) -> Node {
        Node {
            id: id.into(),
            name: format!("host-{id}"),
            addr: format!("10.0.0.{}", id.len()),
            unusable: unusable.map(str::to_owned),
            gpus: gpus.to_vec(),
            gpus_error: None,
        }
    }

    #[test]
    fn loads_leave_out_unusable_nodes_and_held_devices() {
        let holder = Uuid::nil();
        let cluster = Cluster::new(
            vec![
                node("a", &[0, 1, 2], None),
                node("b", &[0], Some("drained")),
                node("c", &[], None),
            ],
            vec![Allocation {
                node: "a".into(),
                device: 1,
                service_id: holder,
            }],
            &[],
        );
        let loads = cluster.loads();
        assert_eq!(loads.len(), 2);
        assert_eq!(loads[0].free, vec![0, 2]);
        assert_eq!(loads[0].held, 1);
        assert_eq!(cluster.why_unusable("a"), None);
        assert_eq!(
            cluster.why_unusable("b").as_deref(),
            Some("node host-b is drained")
        );
        assert_eq!(
            cluster.why_unusable("zz").as_deref(),
            Some("node zz has left the cluster")
        );
        // A drained node's devices still count for "could ever fit".
        assert_eq!(cluster.could_ever_place(&[1, 1, 1, 1]), Ok(()));
        assert_eq!(
            cluster.could_ever_place(&[1, 1, 1, 1, 1]),
            Err("5 GPU(s) asked for; the cluster has 4 in all".into())
        );
        assert_eq!(
            cluster.could_ever_place(&[4]),
            Err("a service needs 4 GPUs on one node; the largest node has 3".into())
        );
        let text = cluster.describe();
        assert!(
            text.contains(&format!(
                "host-a (a) 10.0.0.1 ready: GPUs 0,1,2; free 0,2; held 1 by service {holder}"
            )),
            "{text}"
        );
        assert!(
            text.contains("host-b (b) 10.0.0.1 drained: GPUs 0; free 0; held none"),
            "{text}"
        );
        assert!(
            text.contains("host-c (c) 10.0.0.1 ready: GPUs none; free none"),
            "{text}"
        );
    }
}
