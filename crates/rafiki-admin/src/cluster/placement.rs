//! Placement: which node each service of a job runs on and which of that node's GPUs it gets,
//! decided over a model of the cluster (the usable nodes, their free devices and load), with no
//! I/O. A job is placed whole or not at all.
//!
//! Services that need GPUs are placed first, the largest request first, each on the node with
//! enough free devices that holds the fewest allocated devices (then: the most free devices,
//! the fewest services, the lowest id), taking its lowest free device ids. Services without
//! GPUs go to the node running the fewest services (then the lowest id). Spreading like this
//! keeps one node's loss from taking a whole job, and spreads CPU and memory load.

use std::fmt;

/// A usable node as placement sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeLoad {
    /// The node's id.
    pub id: String,
    /// Its free device ids, ascending.
    pub free: Vec<i32>,
    /// How many of its devices are allocated.
    pub held: usize,
    /// How many live services run on it.
    pub services: usize,
}

/// Where one service goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    /// The node's id.
    pub node: String,
    /// The devices it gets there.
    pub gpus: Vec<i32>,
}

/// Why a job cannot be placed now: a waiting job's reason.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Shortage {
    /// No node is ready and active.
    NoNode,
    /// Fewer devices are free than the job asks for.
    Devices {
        /// The job's devices.
        asked: usize,
        /// Free on usable nodes.
        free: usize,
    },
    /// Enough devices are free, but no node has enough for one of its services.
    OnOneNode {
        /// The largest request that does not fit.
        asked: usize,
        /// The most devices free on one node.
        most_on_a_node: usize,
        /// Free on usable nodes.
        free: usize,
    },
}

impl Shortage {
    /// What the job needs and what there is, e.g. `2 GPUs; 1 free`.
    pub fn needs(&self) -> String {
        match self {
            Shortage::NoNode => "a ready, active node".into(),
            Shortage::Devices { asked, free } => {
                format!("{asked} GPU{}; {free} free", plural(*asked))
            }
            Shortage::OnOneNode {
                asked,
                most_on_a_node,
                free,
            } => format!(
                "{asked} free GPUs on one node; {free} free, at most {most_on_a_node} on one node"
            ),
        }
    }
}

/// A waiting job's reason: `waiting for 2 GPUs; 1 free`.
impl fmt::Display for Shortage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "waiting for {}", self.needs())
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 {
        ""
    } else {
        "s"
    }
}

/// Places services needing `requests[i]` GPUs each; the placements come in the order of
/// `requests`. `nodes` is not changed: a refused job takes nothing.
pub fn place(nodes: &[NodeLoad], requests: &[usize]) -> Result<Vec<Placement>, Shortage> {
    if nodes.is_empty() && !requests.is_empty() {
        return Err(Shortage::NoNode);
    }
    let free: usize = nodes.iter().map(|n| n.free.len()).sum();
    let asked: usize = requests.iter().sum();
    if asked > free {
        return Err(Shortage::Devices { asked, free });
    }
    let mut model = nodes.to_vec();
    let mut order: Vec<usize> = (0..requests.len()).collect();
    // Largest first; the sort is stable, so equal requests keep their order.
    order.sort_by_key(|&i| std::cmp::Reverse(requests[i]));
    let mut placed: Vec<Option<Placement>> = vec![None; requests.len()];
    for i in order {
        let want = requests[i];
        let chosen = if want == 0 {
            model
                .iter_mut()
                .min_by(|a, b| (a.services, &a.id).cmp(&(b.services, &b.id)))
        } else {
            model
                .iter_mut()
                .filter(|n| n.free.len() >= want)
                .min_by(|a, b| {
                    (a.held, std::cmp::Reverse(a.free.len()), a.services, &a.id).cmp(&(
                        b.held,
                        std::cmp::Reverse(b.free.len()),
                        b.services,
                        &b.id,
                    ))
                })
        };
        let Some(node) = chosen else {
            return Err(Shortage::OnOneNode {
                asked: want,
                most_on_a_node: nodes.iter().map(|n| n.free.len()).max().unwrap_or(0),
                free,
            });
        };
        let gpus: Vec<i32> = node.free.drain(..want).collect();
        node.held += want;
        node.services += 1;
        placed[i] = Some(Placement {
            node: node.id.clone(),
            gpus,
        });
    }
    Ok(placed.into_iter().flatten().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(id: &str, free: &[i32], held: usize, services: usize) -> NodeLoad {
        NodeLoad {
            id: id.into(),
            free: free.to_vec(),
            held,
            services,
        }
    }

    fn at(node: &str, gpus: &[i32]) -> Placement {
        Placement {
            node: node.into(),
            gpus: gpus.to_vec(),
        }
    }

    #[test]
    fn gpu_services_spread_over_the_least_loaded_nodes() {
        let nodes = [
            node("a", &[0, 1], 0, 0),
            node("b", &[0, 1], 0, 0),
            node("c", &[], 0, 0),
        ];
        assert_eq!(
            place(&nodes, &[1, 1, 1]).unwrap(),
            vec![at("a", &[0]), at("b", &[0]), at("a", &[1])]
        );
        // A node holding devices already comes after an idle one.
        let nodes = [node("a", &[1], 1, 1), node("b", &[0, 1], 0, 0)];
        assert_eq!(place(&nodes, &[1]).unwrap(), vec![at("b", &[0])]);
    }

    #[test]
    fn cpu_services_go_where_fewest_services_run() {
        let nodes = [
            node("a", &[0], 0, 3),
            node("b", &[], 0, 1),
            node("c", &[], 0, 1),
        ];
        assert_eq!(
            place(&nodes, &[0, 0, 0]).unwrap(),
            vec![at("b", &[]), at("c", &[]), at("b", &[])]
        );
    }

    #[test]
    fn the_largest_request_is_placed_first_and_on_one_node() {
        // Placing the 1 first on the emptier node would leave no node with 2 free.
        let nodes = [node("a", &[0, 1], 0, 0), node("b", &[3], 0, 0)];
        assert_eq!(
            place(&nodes, &[1, 2]).unwrap(),
            vec![at("b", &[3]), at("a", &[0, 1])]
        );
    }

    #[test]
    fn a_job_that_does_not_fit_takes_nothing_and_says_why() {
        let nodes = [node("a", &[0], 1, 1), node("b", &[2], 1, 1)];
        assert_eq!(
            place(&nodes, &[1, 1, 1]),
            Err(Shortage::Devices { asked: 3, free: 2 })
        );
        assert_eq!(
            Shortage::Devices { asked: 3, free: 2 }.to_string(),
            "waiting for 3 GPUs; 2 free"
        );
        let split = place(&nodes, &[2]).unwrap_err();
        assert_eq!(
            split,
            Shortage::OnOneNode {
                asked: 2,
                most_on_a_node: 1,
                free: 2
            }
        );
        assert_eq!(
            split.to_string(),
            "waiting for 2 free GPUs on one node; 2 free, at most 1 on one node"
        );
        assert_eq!(place(&[], &[0]), Err(Shortage::NoNode));
        assert_eq!(place(&[], &[]), Ok(vec![]));
    }

    /// A modelled cluster of many nodes with mixed GPUs: placing jobs one after the other
    /// never hands a device twice, never uses more than a node has, and refuses exactly when
    /// the free devices cannot cover the job.
    #[test]
    fn a_modelled_cluster_never_double_books() {
        let mut nodes: Vec<NodeLoad> = (0..12)
            .map(|i| {
                node(
                    &format!("n{i:02}"),
                    &(0..(i % 5)).collect::<Vec<i32>>(),
                    0,
                    0,
                )
            })
            .collect();
        let total: usize = nodes.iter().map(|n| n.free.len()).sum();
        let jobs: Vec<Vec<usize>> = (0..40)
            .map(|j| (0..(1 + j % 3)).map(|k| (j + k) % 3).collect())
            .collect();
        let mut used = std::collections::BTreeSet::new();
        for job in &jobs {
            let free: usize = nodes.iter().map(|n| n.free.len()).sum();
            match place(&nodes, job) {
                Ok(placements) => {
                    assert_eq!(placements.len(), job.len());
                    for (p, want) in placements.iter().zip(job) {
                        assert_eq!(p.gpus.len(), *want);
                        let n = nodes.iter_mut().find(|n| n.id == p.node).unwrap();
                        for g in &p.gpus {
                            assert!(used.insert((p.node.clone(), *g)), "{g} on {} twice", p.node);
                            assert!(n.free.contains(g));
                        }
                        n.free.retain(|g| !p.gpus.contains(g));
                        n.held += p.gpus.len();
                        n.services += 1;
                    }
                }
                Err(Shortage::Devices { asked, free: f }) => {
                    assert_eq!(f, free);
                    assert!(asked > free);
                }
                Err(other) => {
                    // Only a request larger than any node's free devices is refused so.
                    let most = nodes.iter().map(|n| n.free.len()).max().unwrap();
                    assert!(job.iter().any(|w| *w > most), "{other} for {job:?}");
                }
            }
        }
        // Single devices then fill what is left, to the last one.
        while let Ok(placed) = place(&nodes, &[1]) {
            let p = &placed[0];
            assert!(
                used.insert((p.node.clone(), p.gpus[0])),
                "a device given twice"
            );
            let n = nodes.iter_mut().find(|n| n.id == p.node).unwrap();
            n.free.retain(|g| !p.gpus.contains(g));
        }
        assert_eq!(used.len(), total, "the cluster fills up completely");
        // A drained node is simply not in the model: nothing lands on it.
        let without_first: Vec<NodeLoad> = nodes[1..].to_vec();
        for p in place(&without_first, &[0, 0, 0]).unwrap() {
            assert_ne!(p.node, "n00");
        }
    }
}
