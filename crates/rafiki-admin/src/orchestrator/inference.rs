//! Inference jobs: one predictor and one inference worker per deployed trial, launched,
//! stopped and supervised like train workers. A job is RUNNING once its predictor and at least
//! one worker serve; ERRORED when a worker cannot serve its model, when every worker has
//! failed, or when the predictor has; its remaining services are then stopped.

use rafiki_store::audit::{self, Actor, NewAuditEvent};
use rafiki_store::inference_jobs::{self, Role};
use rafiki_store::services::{self, ServiceRecord};
use rafiki_store::trials::TrialRecord;
use rafiki_store::{train_jobs, StoreResult};
use rafiki_types::audit::{AuditAction, TargetKind};
use rafiki_types::ids::{InferenceJobId, ServiceId, TrainJobId, TrialId, UserId};
use rafiki_types::inference::InferenceBudget;
use rafiki_types::status::{JobStatus, ServiceStatus, ServiceType};
use rafiki_types::train::split_gpus;
use uuid::Uuid;

use super::callers::InferenceWorker;
use super::error::{OrchestratorError, OrchestratorResult};
use super::{ModelLaunch, Orchestrator, Planned};
use crate::backend::Owners;
use crate::cluster::placement::{self, Placement};

/// A port that is free now on `host` (the service binds it a moment later).
fn free_port(host: &str) -> std::io::Result<u16> {
    let listener = std::net::TcpListener::bind((host, 0))?;
    Ok(listener.local_addr()?.port())
}

/// A new inference job's launch result.
pub struct LaunchedInferenceJob {
    /// The job's id.
    pub id: Uuid,
    /// The predictor's port.
    pub predictor_port: u16,
    /// The host the predictor's port is on when the backend published it on a host of its own
    /// (a swarm node); `None`: this machine.
    pub predictor_host: Option<String>,
}

impl Orchestrator {
    /// Writes an inference job serving `trials` (one per model), its predictor and workers, and
    /// launches them. GPUs of the budget are split over the workers, each worker's on one node;
    /// a deployment whose GPUs are not free now is refused (it does not wait). The job's
    /// `inference_job.create` audit row, by `actor`, is written in the job's transaction.
    pub async fn create_inference_job(
        &self,
        user_id: UserId,
        train_job_id: TrainJobId,
        trials: &[TrialRecord],
        budget: InferenceBudget,
        actor: &Actor,
    ) -> OrchestratorResult<LaunchedInferenceJob> {
        let total =
            u32::try_from(budget.gpu_count).map_err(|_| OrchestratorError::GpuCountTooLarge)?;
        let mut models = Vec::with_capacity(trials.len());
        for trial in trials {
            let sub = train_jobs::get_sub(&self.pool, trial.sub_train_job_id)
                .await?
                .ok_or_else(|| anyhow::anyhow!("a trial without its sub-job"))?;
            models.push(self.model_launch(sub.model_id).await?);
        }
        // The predictor, then one worker per trial.
        let mut requests = vec![0];
        requests.extend(split_gpus(total, trials.len()).iter().map(|n| *n as usize));
        let _guard = self.lock.lock().await;
        let placements =
            placement::place(&self.cluster().await?.loads(), &requests).map_err(|shortage| {
                OrchestratorError::GpusShort {
                    what: "deployment",
                    why: format!("it needs {}", shortage.needs()),
                }
            })?;
        let (id, launches) = self
            .write_inference_job(
                user_id,
                train_job_id,
                &trials.iter().zip(&models).collect::<Vec<_>>(),
                placements,
                budget,
                actor,
            )
            .await?;
        let mut predictor_port = None;
        let mut predictor_host = None;
        for planned in &launches {
            match self.launch(planned).await? {
                Ok(launched) => {
                    if planned.service_type == ServiceType::Predict {
                        predictor_port = launched.published_port.or(planned.port);
                        predictor_host = launched.published_host;
                    }
                }
                Err(err) => {
                    let reason = format!("Cannot launch a service of the deployment: {err}");
                    self.end_inference_job(id, JobStatus::Errored, Some(&reason), None)
                        .await?;
                    return Err(OrchestratorError::Backend(reason));
                }
            }
        }
        Ok(LaunchedInferenceJob {
            id,
            predictor_port: predictor_port.unwrap_or_default(),
            predictor_host,
        })
    }

    /// The job's rows and its audit row in one transaction, serving each trial with its model;
    /// returns its id and its services to launch, the predictor first. The job's predict secret
    /// is made here: its predictor sends it to its workers, which answer nobody else.
    async fn write_inference_job(
        &self,
        user_id: UserId,
        train_job_id: TrainJobId,
        served: &[(&TrialRecord, &ModelLaunch)],
        placements: Vec<Placement>,
        budget: InferenceBudget,
        actor: &Actor,
    ) -> OrchestratorResult<(Uuid, Vec<Planned>)> {
        let mut placements = placements.into_iter();
        let mut next_placement = move || {
            placements
                .next()
                .ok_or_else(|| anyhow::anyhow!("a service without its placement"))
        };
        let predict_secret = super::random_secret();
        let mut tx = self.pool.begin().await?;
        let id = inference_jobs::insert(&mut *tx, user_id, train_job_id, budget, &predict_secret)
            .await
            .map_err(|err| {
                if err.is_constraint(inference_jobs::ONE_LIVE_PER_TRAIN_JOB) {
                    OrchestratorError::AlreadyDeployed
                } else {
                    err.into()
                }
            })?;
        let created = actor.did(
            AuditAction::InferenceJobCreate,
            TargetKind::InferenceJob,
            id,
        );
        audit::insert(&mut *tx, &created).await?;
        let mut launches = Vec::new();
        let mut predictor = self
            .plan(
                &mut tx,
                ServiceType::Predict,
                id,
                next_placement()?,
                String::new(),
                None,
            )
            .await?;
        predictor.predict_secret = Some(predict_secret.clone());
        self.give_port(&mut tx, &mut predictor).await?;
        inference_jobs::insert_predictor(&mut *tx, InferenceJobId(id), ServiceId(predictor.id))
            .await?;
        launches.push(predictor);
        for (trial, model) in served {
            let owners = Owners {
                job: user_id.0,
                model: model.owner,
            };
            let mut worker = self
                .plan(
                    &mut tx,
                    ServiceType::Inference,
                    id,
                    next_placement()?,
                    model.image.clone(),
                    Some(owners),
                )
                .await?;
            worker.predict_secret = Some(predict_secret.clone());
            self.give_port(&mut tx, &mut worker).await?;
            inference_jobs::insert_worker(
                &mut *tx,
                ServiceId(worker.id),
                InferenceJobId(id),
                TrialId(trial.trial.id),
            )
            .await?;
            launches.push(worker);
        }
        tx.commit().await?;
        Ok((id, launches))
    }

    /// Gives a planned service that listens its port — one free now on this host (where the
    /// backend runs services here; a container's port is its own anyway) — and its address.
    async fn give_port(
        &self,
        tx: &mut sqlx::PgConnection,
        planned: &mut Planned,
    ) -> OrchestratorResult<()> {
        let address = self.backend.address(planned.id, planned.service_type);
        let port = free_port(&address.bind_host).map_err(anyhow::Error::from)?;
        services::set_address(&mut *tx, planned.id, &address.reach_host, port).await?;
        planned.port = Some(port);
        Ok(())
    }

    /// Stops an inference job synchronously: when this returns its services are gone and it
    /// reads STOPPED, written with `event`, the stop's audit row.
    pub async fn stop_inference_job(
        &self,
        id: Uuid,
        event: &NewAuditEvent,
    ) -> OrchestratorResult<()> {
        let _guard = self.lock.lock().await;
        self.end_inference_job(id, JobStatus::Stopped, None, Some(event))
            .await?;
        Ok(())
    }

    /// Ends a job (STOPPED or ERRORED), with `event`'s audit row in the same transaction when
    /// a user ended it, and stops its services. Call with the lock held.
    async fn end_inference_job(
        &self,
        id: Uuid,
        to: JobStatus,
        error: Option<&str>,
        event: Option<&NewAuditEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        inference_jobs::finish(&mut *tx, id, to, error).await?;
        if let Some(event) = event {
            audit::insert(&mut *tx, event).await?;
        }
        tx.commit().await?;
        for (service_id, _) in inference_jobs::services_of_job(&self.pool, id).await? {
            if let Some(service) = services::get(&self.pool, service_id).await? {
                if let Err(err) = self
                    .stop_service(service.id, service.backend_id.as_deref())
                    .await
                {
                    tracing::error!(service = %service.id, error = ?err, "cannot stop a service");
                }
            }
        }
        Ok(())
    }

    /// Derives the status of every live inference job, and stops the services of jobs that
    /// ended. Called by [`Orchestrator::run_once`] with the lock released.
    pub(super) async fn supervise_inference_jobs(&self) -> StoreResult<()> {
        let _guard = self.lock.lock().await;
        for job in inference_jobs::list_live(&self.pool).await? {
            let mut predictor: Option<ServiceRecord> = None;
            let mut workers: Vec<ServiceRecord> = Vec::new();
            for (service_id, role) in
                inference_jobs::services_of_job(&self.pool, job.job.id).await?
            {
                let Some(service) = services::get(&self.pool, service_id).await? else {
                    continue;
                };
                match role {
                    Role::Predictor => predictor = Some(service),
                    Role::Worker { .. } => workers.push(service),
                }
            }
            let failed = |s: &ServiceRecord| !s.status.is_live();
            if let Some(p) = predictor.as_ref().filter(|p| failed(p)) {
                let why = p
                    .error
                    .clone()
                    .unwrap_or_else(|| "the predictor stopped".into());
                self.end_inference_job(job.job.id, JobStatus::Errored, Some(&why), None)
                    .await?;
            } else if !workers.is_empty() && workers.iter().all(failed) {
                let why = workers
                    .iter()
                    .find_map(|w| w.error.clone())
                    .unwrap_or_else(|| "every inference worker stopped".into());
                self.end_inference_job(job.job.id, JobStatus::Errored, Some(&why), None)
                    .await?;
            } else if predictor.is_some_and(|p| p.status == ServiceStatus::Running)
                && workers.iter().any(|w| w.status == ServiceStatus::Running)
            {
                inference_jobs::mark_running(&self.pool, job.job.id).await?;
            }
        }
        Ok(())
    }

    /// A worker cannot serve its model: the service and its job are ERRORED and the job's
    /// services stopped (the caller exits by itself).
    pub async fn inference_worker_failed(
        &self,
        worker: &InferenceWorker,
        error: &str,
    ) -> StoreResult<()> {
        let _guard = self.lock.lock().await;
        // Read again under the lock: supervision may have moved it since the call came in.
        if let Some(service) = services::get(&self.pool, worker.service.id).await? {
            self.finish_service(&service, ServiceStatus::Errored, Some(error))
                .await?;
        }
        self.end_inference_job(worker.job.job.id, JobStatus::Errored, Some(error), None)
            .await
    }
}
