//! The gauges read when Prometheus scrapes (every 15 s or so, so a few queries are cheap):
//! jobs, sub-jobs, inference jobs, services and trials by status (one statement,
//! `rafiki_store::tallies`), the train jobs waiting for GPUs, each node's GPUs and those held
//! (the cluster inventory and `gpu_allocations`), and the database pool's connections.
//!
//! Every status of the enums is shown, at 0 when no row has it, so that a series does not
//! vanish when its last row moves on. When the database cannot be read, the gauges read from
//! it are left out of that scrape (absent, rather than stale numbers), and the rest is served.

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use rafiki_types::status::{ServiceStatus, ServiceType};
use strum::VariantArray;

use super::{status_label, StatusLabel};
use crate::state::AppState;

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ServiceLabels {
    service_type: &'static str,
    status: &'static str,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct NodeLabel {
    node: String,
}

#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ConnectionState {
    state: &'static str,
}

/// The gauges set at scrape time.
#[derive(Debug, Default)]
pub(super) struct Scraped {
    train_jobs: Family<StatusLabel, Gauge>,
    sub_train_jobs: Family<StatusLabel, Gauge>,
    inference_jobs: Family<StatusLabel, Gauge>,
    services: Family<ServiceLabels, Gauge>,
    trials: Family<StatusLabel, Gauge>,
    /// A family of one series without labels (rather than a bare gauge), so that it can be
    /// left out of a scrape when the database cannot be read.
    queue: Family<Vec<(String, String)>, Gauge>,
    gpus: Family<NodeLabel, Gauge>,
    gpus_allocated: Family<NodeLabel, Gauge>,
    connections: Family<ConnectionState, Gauge>,
}

impl Scraped {
    pub(super) fn register(registry: &mut Registry) -> Self {
        let scraped = Scraped::default();
        let gauges = [
            (
                "rafiki_train_jobs",
                "Train jobs by status",
                &scraped.train_jobs,
            ),
            (
                "rafiki_sub_train_jobs",
                "Sub-jobs (one model of a train job each) by status",
                &scraped.sub_train_jobs,
            ),
            (
                "rafiki_inference_jobs",
                "Inference jobs by status",
                &scraped.inference_jobs,
            ),
            ("rafiki_trials", "Trials by status", &scraped.trials),
        ];
        for (name, help, family) in gauges {
            registry.register(name, help, family.clone());
        }
        registry.register(
            "rafiki_services",
            "Services (workers and predictors) by type and status",
            scraped.services.clone(),
        );
        registry.register(
            "rafiki_train_job_queue_length",
            "Train jobs waiting for GPUs",
            scraped.queue.clone(),
        );
        registry.register(
            "rafiki_gpus",
            "GPU devices of each node of the cluster",
            scraped.gpus.clone(),
        );
        registry.register(
            "rafiki_gpus_allocated",
            "GPU devices held by live services, by node",
            scraped.gpus_allocated.clone(),
        );
        registry.register(
            "rafiki_db_connections",
            "Connections of the admin's database pool, in use or idle",
            scraped.connections.clone(),
        );
        scraped
    }

    /// Reads the gauges now.
    pub(super) async fn refresh(&self, state: &AppState) {
        let size = i64::from(state.pool.size());
        let idle = i64::try_from(state.pool.num_idle()).unwrap_or(i64::MAX);
        for (name, value) in [("in_use", size - idle), ("idle", idle)] {
            self.connections
                .get_or_create(&ConnectionState { state: name })
                .set(value);
        }
        match rafiki_store::tallies::tallies(&state.pool).await {
            Ok(tallies) => {
                set_by_status(&self.train_jobs, &tallies.train_jobs);
                set_by_status(&self.sub_train_jobs, &tallies.sub_train_jobs);
                set_by_status(&self.inference_jobs, &tallies.inference_jobs);
                set_by_status(&self.trials, &tallies.trials);
                for service_type in ServiceType::VARIANTS {
                    for status in ServiceStatus::VARIANTS {
                        let count = tallies
                            .services
                            .iter()
                            .find(|(t, s, _)| t == service_type && s == status)
                            .map_or(0, |(_, _, count)| *count);
                        self.services
                            .get_or_create(&ServiceLabels {
                                service_type: service_type.into(),
                                status: status.into(),
                            })
                            .set(count);
                    }
                }
                self.queue
                    .get_or_create(&Vec::new())
                    .set(tallies.waiting_train_jobs);
            }
            Err(err) => {
                tracing::warn!(error = %err, "metrics: cannot count the rows by status");
                for family in [
                    &self.train_jobs,
                    &self.sub_train_jobs,
                    &self.inference_jobs,
                    &self.trials,
                ] {
                    family.clear();
                }
                self.services.clear();
                self.queue.clear();
            }
        }
        // Nodes come and go (a swarm's), so the node series are rebuilt every time.
        self.gpus.clear();
        self.gpus_allocated.clear();
        match state.orchestrator.cluster().await {
            Ok(cluster) => {
                for node in &cluster.nodes {
                    let label = NodeLabel {
                        node: node.name.clone(),
                    };
                    let held = cluster.held.get(&node.id).map_or(0, Vec::len);
                    self.gpus
                        .get_or_create(&label)
                        .set(i64::try_from(node.gpus.len()).unwrap_or(i64::MAX));
                    self.gpus_allocated
                        .get_or_create(&label)
                        .set(i64::try_from(held).unwrap_or(i64::MAX));
                }
            }
            Err(err) => tracing::warn!(error = %err, "metrics: cannot read the cluster's GPUs"),
        }
    }
}

/// Sets `family` to `counts`, every status of the enum included (0 when absent).
fn set_by_status<S>(family: &Family<StatusLabel, Gauge>, counts: &[(S, i64)])
where
    S: VariantArray + Into<&'static str> + PartialEq + Copy,
{
    for status in S::VARIANTS {
        let count = counts
            .iter()
            .find(|(s, _)| s == status)
            .map_or(0, |(_, count)| *count);
        family.get_or_create(&status_label(*status)).set(count);
    }
}
