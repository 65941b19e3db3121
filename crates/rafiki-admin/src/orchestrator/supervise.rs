//! Supervision: one [`Orchestrator::run_once`] step looks at every live service of this
//! backend, records exits (a worker gone with no work left, whose exit status cannot be read,
//! counts as a normal exit), restarts crashed workers with exponential backoff (handing each
//! its interrupted trial again; ERRORED only once the restarts are used up), relaunches the
//! services of a node that is down, drained or gone on another node (ERRORED with the reason
//! when none has room; this does not count as a restart), derives the status of every live
//! train job from its services and trials, and starts waiting jobs that fit. The admin runs it
//! every `supervise_ms`; tests call it directly.

use std::time::Duration;

use rafiki_store::services::ServiceRecord;
use rafiki_store::{services, train_jobs, trials, StoreResult};
use rafiki_types::status::{JobStatus, ServiceStatus, ServiceType};
use tokio::time::Instant;
use uuid::Uuid;

use super::{new_token, Orchestrator};
use crate::backend::ServiceState;
use crate::cluster::placement;

/// Longest wait before a crashed service is restarted.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

impl Orchestrator {
    /// One supervision step.
    pub async fn run_once(&self) -> StoreResult<()> {
        let mut next_attempt = self.lock.lock().await;
        // Without the nodes (a manager that does not answer), no service is taken for lost.
        let cluster = match self.cluster().await {
            Ok(cluster) => Some(cluster),
            Err(err) => {
                tracing::warn!(error = %err, "cannot see the cluster's nodes");
                None
            }
        };
        // Ended services whose remains (a container, a Swarm service) are removed once job
        // statuses are derived: removal can take seconds, which a job's end need not wait for.
        let mut ended = Vec::new();
        for service in services::list_live(&self.pool).await? {
            if service.backend != self.backend.name() {
                continue;
            }
            let node_lost = cluster
                .as_ref()
                .zip(service.node.as_deref())
                .and_then(|(cluster, node)| cluster.why_unusable(node));
            let state = match (&node_lost, &service.backend_id) {
                (Some(why), _) => ServiceState::Failed(why.clone()),
                (None, Some(backend_id)) => self.backend.state(service.id, backend_id).await,
                // Written but never launched: the admin stopped in between.
                (None, None) => ServiceState::Missing,
            };
            let state = match state {
                // Gone without an exit status to read (a worker adopted after an admin restart
                // is not this admin's child): one with no work left ended as it should.
                ServiceState::Missing
                    if service.backend_id.is_some() && self.has_no_work_left(&service).await? =>
                {
                    ServiceState::Exited(Some(0))
                }
                other => other,
            };
            match state {
                ServiceState::Running => {}
                ServiceState::Exited(Some(0)) => {
                    self.error_trials_of_worker(
                        service.id,
                        "The worker exited without finishing this trial.",
                    )
                    .await?;
                    self.finish_service(&service, ServiceStatus::Stopped, None)
                        .await?;
                    next_attempt.remove(&service.id);
                    ended.push(service);
                }
                crashed => {
                    let why = match crashed {
                        ServiceState::Exited(Some(code)) => {
                            format!("the worker exited with code {code}")
                        }
                        ServiceState::Exited(None) => {
                            "the worker was killed by a signal".to_owned()
                        }
                        ServiceState::Failed(why) => {
                            format!("the backend could not run it ({why})")
                        }
                        _ => "the worker is gone".to_owned(),
                    };
                    let reason = format!("The trial was interrupted: {why}.");
                    // Neither a service never launched nor one whose node went away crashed
                    // by its own doing: relaunching it costs no restart.
                    let not_its_fault = service.backend_id.is_none() || node_lost.is_some();
                    if !not_its_fault && service.restarts >= self.config.max_restarts {
                        self.error_trials_of_worker(service.id, &reason).await?;
                        let error = format!(
                            "The worker crashed {} times; last: {why}. See its log.",
                            service.restarts + 1
                        );
                        self.finish_service(&service, ServiceStatus::Errored, Some(&error))
                            .await?;
                        next_attempt.remove(&service.id);
                        ended.push(service);
                        continue;
                    }
                    // The worker will be relaunched: it gets its interrupted trial again, so
                    // only the model's own failures cost trials of the budget.
                    let mut conn = self.pool.acquire().await?;
                    trials::requeue_in_flight_of_worker(&mut conn, service.id).await?;
                    drop(conn);
                    let due = *next_attempt.entry(service.id).or_insert_with(|| {
                        let backoff = if not_its_fault {
                            Duration::ZERO
                        } else {
                            Duration::from_secs(1 << service.restarts.clamp(0, 5)).min(MAX_BACKOFF)
                        };
                        tracing::warn!(service = %service.id, "{why}; restarting in {backoff:?}");
                        Instant::now() + backoff
                    });
                    if Instant::now() >= due {
                        next_attempt.remove(&service.id);
                        self.relaunch(&service, !not_its_fault, node_lost).await?;
                    }
                }
            }
        }
        drop(next_attempt);
        for job in train_jobs::list_live(&self.pool).await? {
            self.derive_train_job_status(job.job.id).await?;
        }
        self.supervise_inference_jobs().await?;
        // Ended services are never relaunched, so no launch or stop races their removal.
        for service in &ended {
            self.clean_up(service).await;
        }
        let _guard = self.lock.lock().await;
        if let Err(err) = self.admit_waiting().await {
            tracing::warn!(error = %err, "cannot start waiting jobs");
        }
        Ok(())
    }

    /// Whether a train worker has no work left: its sub-job has ended, or the advisor has
    /// said that no trial may start any more and the worker holds none. Relaunching such a
    /// worker would only have it told that the budget is spent.
    async fn has_no_work_left(&self, service: &ServiceRecord) -> StoreResult<bool> {
        if service.service_type != ServiceType::Train {
            return Ok(false);
        }
        let Some(sub_id) = services::train_worker_sub_job(&self.pool, service.id).await? else {
            return Ok(false);
        };
        let Some(sub) = train_jobs::get_sub(&self.pool, sub_id).await? else {
            return Ok(false);
        };
        if !sub.status.is_live() {
            return Ok(true);
        }
        if sub.budget_spent_at.is_none() {
            return Ok(false);
        }
        let mut conn = self.pool.acquire().await?;
        Ok(trials::unfinished_of_worker(&mut conn, service.id)
            .await?
            .is_none())
    }

    /// Ends a live service (STOPPED or ERRORED), which frees its GPUs; one already ended is
    /// left as it is.
    pub(super) async fn finish_service(
        &self,
        service: &ServiceRecord,
        to: ServiceStatus,
        error: Option<&str>,
    ) -> StoreResult<()> {
        services::finish(&self.pool, service.id, to, error).await?;
        Ok(())
    }

    /// Removes what the backend keeps of an ended service (an exited container).
    async fn clean_up(&self, service: &ServiceRecord) {
        if let Some(backend_id) = &service.backend_id {
            if let Err(err) = self.backend.stop(service.id, backend_id).await {
                tracing::warn!(service = %service.id, error = %err, "cannot clean up");
            }
        }
    }

    /// Launches a service again with a new token, unless its image is no longer allowed;
    /// when its node is lost (`node_lost` says why), on another node with room for its GPUs,
    /// or ERRORED with the reason when there is none.
    async fn relaunch(
        &self,
        service: &ServiceRecord,
        restarted: bool,
        node_lost: Option<String>,
    ) -> StoreResult<()> {
        if let Some(lost) = node_lost {
            // The cluster as it is now: an earlier relaunch of this step may have taken room.
            let loads = match self.cluster().await {
                Ok(cluster) => cluster.loads(),
                Err(err) => {
                    tracing::warn!(service = %service.id, error = %err, "cannot relaunch yet");
                    return Ok(());
                }
            };
            match placement::place(&loads, &[service.gpus.len()]) {
                Ok(mut placed) => {
                    let to = placed.remove(0);
                    tracing::warn!(service = %service.id, node = %to.node, "{lost}; moving");
                    services::move_to_node(&self.pool, service.id, &to.node, &to.gpus).await?;
                }
                Err(shortage) => {
                    let error = format!(
                        "Cannot relaunch the service: {lost}, and no other node has room \
                         (it needs {}).",
                        shortage.needs()
                    );
                    self.error_trials_of_worker(service.id, &error).await?;
                    self.finish_service(service, ServiceStatus::Errored, Some(&error))
                        .await?;
                    self.clean_up(service).await;
                    return Ok(());
                }
            }
        }
        let service = &services::get(&self.pool, service.id)
            .await?
            .unwrap_or_else(|| service.clone());
        let (token, hash) = new_token();
        services::renew_token(&self.pool, service.id, &hash, restarted).await?;
        let planned = self.replan(service, token).await?;
        let allowed = match planned.service_type {
            // The predictor's image is the operator's own setting, not a model's.
            ServiceType::Predict => Ok(()),
            _ => self.check_image(&planned.image),
        };
        let failure = match allowed {
            Ok(()) => self.launch(&planned).await?.err().map(|e| e.to_string()),
            Err(refusal) => Some(refusal),
        };
        if let Some(err) = failure {
            let error = format!("Cannot relaunch the worker: {err}");
            self.finish_service(service, ServiceStatus::Errored, Some(&error))
                .await?;
        }
        Ok(())
    }

    /// Derives a train job's status, the one place that ends jobs and sub-jobs on their own:
    /// a sub-job ends when all its workers have ended and no trial is in flight — ERRORED when
    /// every worker errored or every trial failed, STOPPED otherwise; the job ends when every
    /// sub-job has — ERRORED when any did, STOPPED otherwise.
    pub async fn derive_train_job_status(&self, train_job_id: Uuid) -> StoreResult<()> {
        let workers = services::list_train_workers(&self.pool, train_job_id).await?;
        let subs = train_jobs::list_subs(&self.pool, train_job_id).await?;
        if subs.is_empty() {
            return Ok(());
        }
        for sub in subs.iter().filter(|s| s.status.is_live()) {
            let mine: Vec<&ServiceRecord> = workers
                .iter()
                .filter(|(sub_id, _)| *sub_id == sub.id)
                .map(|(_, s)| s)
                .collect();
            // No workers yet means not started, never "all ended".
            if mine.is_empty() || mine.iter().any(|s| s.status.is_live()) {
                continue;
            }
            let (in_flight, completed, errored) = trials::counts(&self.pool, sub.id).await?;
            if in_flight > 0 {
                continue;
            }
            let (status, error) = if mine.iter().all(|s| s.status == ServiceStatus::Errored) {
                let why = mine
                    .iter()
                    .find_map(|s| s.error.clone())
                    .unwrap_or_default();
                (JobStatus::Errored, Some(why))
            } else if completed == 0 && errored > 0 {
                (
                    JobStatus::Errored,
                    Some("Every trial of this model failed; see the trials' errors.".to_owned()),
                )
            } else {
                (JobStatus::Stopped, None)
            };
            train_jobs::finish_sub(&self.pool, sub.id, status, error.as_deref()).await?;
        }
        let subs = train_jobs::list_subs(&self.pool, train_job_id).await?;
        if subs.iter().any(|s| s.status.is_live()) {
            return Ok(());
        }
        let errors: Vec<String> = subs
            .iter()
            .filter(|s| s.status == JobStatus::Errored)
            .map(|s| {
                format!(
                    "{}: {}",
                    s.model_name,
                    s.error.as_deref().unwrap_or("errored")
                )
            })
            .collect();
        if errors.is_empty() {
            train_jobs::finish(&self.pool, train_job_id, JobStatus::Stopped, None).await?;
        } else {
            train_jobs::finish(
                &self.pool,
                train_job_id,
                JobStatus::Errored,
                Some(&errors.join("\n")),
            )
            .await?;
        }
        Ok(())
    }

    /// Runs [`Orchestrator::run_once`] every `period`, for the life of the task.
    pub async fn supervise_forever(&self, period: Duration) {
        let mut tick = tokio::time::interval(period);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if let Err(err) = self.run_once().await {
                tracing::warn!(error = %err, "supervision step failed");
            }
        }
    }
}
