//! The orchestrator turns jobs into services: it places them on the cluster's nodes (their
//! GPUs allocated in the same transaction as the job's rows), queues train jobs whose GPUs are
//! not free ([`queue`]), launches services through the backend, stops them synchronously, and
//! (in [`supervise`]) watches them: restarts crashed workers with backoff (elsewhere when their
//! node is gone), and derives job status from services and trials in one place.
//!
//! Launches, stops and supervision steps are serialised by one lock, so a stop never races a
//! restart of the same service. This assumes one admin instance orchestrates at a time.

pub mod callers;
pub mod error;
pub mod inference;
mod pruning;
pub mod queue;
pub mod supervise;
pub mod workers;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use rafiki_store::audit::{self, Actor, NewAuditEvent};
use rafiki_store::services::{NewService, ServiceRecord};
use rafiki_store::train_jobs::{self, NewTrainJob, TrainJobRecord};
use rafiki_store::{inference_jobs, models, services, trials, users, StoreResult};
use rafiki_types::audit::{AuditAction, TargetKind};
use rafiki_types::ids::{ModelId, ServiceId, SubTrainJobId, TrainJobId};
use rafiki_types::internal::env;
use rafiki_types::status::{JobStatus, ServiceStatus, ServiceType};
use rafiki_types::train::split_gpus;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use tokio::sync::Mutex;
use uuid::Uuid;

use self::error::{OrchestratorError, OrchestratorResult};
use crate::archive::ZipLimits;
use crate::backend::{Backend, BackendError, Launched, Owners, ServiceSpec};
use crate::cluster::placement::{self, Placement};
use crate::cluster::{Cluster, Inventory};
use crate::images::{self, AllowedImages};
use crate::metrics::AdminMetrics;
use crate::quotas::Quotas;

/// What the orchestrator needs to know to launch services.
pub struct OrchestratorConfig {
    /// The admin's URL as services reach it.
    pub admin_url: String,
    /// The worker image of models stored without one.
    pub worker_image: String,
    /// How often a crashed service is restarted before it is ERRORED.
    pub max_restarts: i32,
    /// The per-user quotas a new train job must fit.
    pub quotas: Quotas,
    /// The zip limits, passed to every service so that the dataset loading of the models they
    /// run enforces them on what it really extracts.
    pub zip_limits: ZipLimits,
    /// The images workers may run in, checked again at every launch.
    pub allowed_images: AllowedImages,
    /// Workers' bound on dependency environments, in gigabytes (0: none).
    pub env_cache_max_gb: f64,
    /// Workers' extra `pip install` arguments.
    pub pip_args: String,
    /// Workers' policy for pins that cannot be installed, for models that set none.
    pub dependency_pins: rafiki_types::model::DependencyPins,
}

/// Launches, stops and supervises services.
pub struct Orchestrator {
    pool: PgPool,
    backend: Arc<dyn Backend>,
    inventory: Arc<dyn Inventory>,
    /// The admin's metrics: trials' ends, advisors' proposal times.
    metrics: Arc<AdminMetrics>,
    config: OrchestratorConfig,
    /// Serialises launches, stops and supervision; holds when each crashed service may next be
    /// restarted.
    lock: Mutex<HashMap<Uuid, tokio::time::Instant>>,
}

/// A service written to the database and about to be launched (or launched again).
struct Planned {
    id: Uuid,
    service_type: ServiceType,
    job_id: Uuid,
    placement: Placement,
    image: String,
    port: Option<u16>,
    token: String,
    /// The inference job's secret, for its predictor and inference workers.
    predict_secret: Option<String>,
    /// Workers: whose job and whose model.
    owners: Option<Owners>,
}

/// What launching a model's workers needs to know about the model.
struct ModelLaunch {
    /// The image its workers run in.
    image: String,
    /// Its owner.
    owner: Uuid,
}

/// 32 random bytes in hex: service tokens and inference jobs' predict secrets.
fn random_secret() -> String {
    use rand::RngCore;
    let mut bytes = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// The stored form of a service token.
pub fn token_hash(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A fresh service token and its sha256 (the only form stored).
fn new_token() -> (String, String) {
    let token = random_secret();
    let hash = token_hash(&token);
    (token, hash)
}

impl Orchestrator {
    /// An orchestrator launching services through `backend` on the nodes of `inventory`.
    pub fn new(
        pool: PgPool,
        backend: Arc<dyn Backend>,
        inventory: Arc<dyn Inventory>,
        metrics: Arc<AdminMetrics>,
        config: OrchestratorConfig,
    ) -> Self {
        Orchestrator {
            pool,
            backend,
            inventory,
            metrics,
            config,
            lock: Mutex::new(HashMap::new()),
        }
    }

    /// The cluster now: its nodes, the devices held on each, the services each runs.
    pub async fn cluster(&self) -> OrchestratorResult<Cluster> {
        let nodes =
            self.inventory.nodes().await.map_err(|err| {
                OrchestratorError::Backend(format!("Cannot list the nodes: {err}"))
            })?;
        let allocations = rafiki_store::gpu_allocations::list(&self.pool).await?;
        let live = services::list_live(&self.pool).await?;
        Ok(Cluster::new(nodes, allocations, &live))
    }

    /// How the backend isolates model code.
    pub fn isolation(&self) -> crate::sandbox::Isolation {
        self.backend.isolation()
    }

    /// At start-up: the backend matches what it runs with the live services (adopting those,
    /// removing the rest). GPUs held by live services stay held (they are in the database);
    /// services that died while the admin was away are found by the next supervision step,
    /// and waiting jobs are admitted by it.
    pub async fn reconcile(&self) -> anyhow::Result<()> {
        let live = services::list_live(&self.pool).await?;
        let mine: Vec<(Uuid, String)> = live
            .iter()
            .filter(|s| s.backend == self.backend.name())
            .filter_map(|s| s.backend_id.clone().map(|b| (s.id, b)))
            .collect();
        let removed = self.backend.reconcile(&mine).await?;
        if removed > 0 {
            tracing::info!(removed, "removed services left over from an earlier run");
        }
        Ok(())
    }

    /// The image a model's workers run in, and its owner: refused when the allow-list no
    /// longer admits the image (the model was uploaded before the list changed).
    async fn model_launch(&self, model_id: Uuid) -> OrchestratorResult<ModelLaunch> {
        let model = models::get(&self.pool, model_id)
            .await?
            .ok_or_else(|| OrchestratorError::ModelRefused(format!("Model {model_id} is gone.")))?;
        let image = model
            .docker_image
            .unwrap_or_else(|| self.config.worker_image.clone());
        self.check_image(&image).map_err(|refusal| {
            OrchestratorError::ModelRefused(format!("Model {model_id} cannot run here: {refusal}"))
        })?;
        Ok(ModelLaunch {
            image,
            owner: model.user_id,
        })
    }

    /// Whether the allow-list admits `image`; the refusal's text when not.
    fn check_image(&self, image: &str) -> Result<(), String> {
        if self.config.allowed_images.admits(image) {
            Ok(())
        } else {
            Err(images::refusal(image, &self.config.allowed_images))
        }
    }

    /// Writes a service's row and its GPU allocation (in the job's transaction) and returns it
    /// planned for launch.
    async fn plan(
        &self,
        tx: &mut sqlx::PgConnection,
        service_type: ServiceType,
        job_id: Uuid,
        placement: Placement,
        image: String,
        owners: Option<Owners>,
    ) -> StoreResult<Planned> {
        let id = Uuid::new_v4();
        let (token, hash) = new_token();
        services::insert(
            &mut *tx,
            &NewService {
                id,
                service_type,
                backend: self.backend.name(),
                token_hash: &hash,
                node: &placement.node,
                gpus: &placement.gpus,
                image: &image,
                job_id,
            },
        )
        .await?;
        Ok(Planned {
            id,
            service_type,
            job_id,
            placement,
            image,
            port: None,
            token,
            predict_secret: None,
            owners,
        })
    }

    /// The launch spec of a planned service.
    fn spec(&self, planned: &Planned) -> ServiceSpec {
        let mut env = BTreeMap::from([
            (env::ADMIN_URL.to_owned(), self.config.admin_url.clone()),
            (env::SERVICE_ID.to_owned(), planned.id.to_string()),
            (env::SERVICE_TOKEN.to_owned(), planned.token.clone()),
            (
                env::SERVICE_TYPE.to_owned(),
                planned.service_type.to_string(),
            ),
            (
                env::MAX_DATASET_UNZIPPED_BYTES.to_owned(),
                self.config.zip_limits.unzipped_bytes.to_string(),
            ),
            (
                env::MAX_DATASET_ZIP_ENTRIES.to_owned(),
                self.config.zip_limits.entries.to_string(),
            ),
        ]);
        if let Some(port) = planned.port {
            let address = self.backend.address(planned.id, planned.service_type);
            env.insert(env::PORT.to_owned(), port.to_string());
            env.insert(env::BIND_HOST.to_owned(), address.bind_host);
        }
        if let Some(secret) = &planned.predict_secret {
            env.insert(env::PREDICT_SECRET.to_owned(), secret.clone());
        }
        if planned.owners.is_some() {
            env.insert(
                env::ENV_CACHE_MAX_GB.to_owned(),
                self.config.env_cache_max_gb.to_string(),
            );
            if !self.config.pip_args.is_empty() {
                env.insert(env::PIP_ARGS.to_owned(), self.config.pip_args.clone());
            }
            env.insert(
                env::DEPENDENCY_PINS.to_owned(),
                self.config.dependency_pins.to_string(),
            );
        }
        ServiceSpec {
            id: planned.id,
            service_type: planned.service_type,
            job_id: planned.job_id,
            node: planned.placement.node.clone(),
            gpus: planned.placement.gpus.clone(),
            image: planned.image.clone(),
            port: planned.port,
            env,
            owners: planned.owners,
        }
    }

    /// Launches a planned service and records its backend id and, where the backend published
    /// its port elsewhere, that port.
    async fn launch(&self, planned: &Planned) -> StoreResult<Result<Launched, BackendError>> {
        let launched = match self.backend.start(&self.spec(planned)).await {
            Ok(launched) => launched,
            Err(err) => return Ok(Err(err)),
        };
        services::set_backend_id(&self.pool, planned.id, &launched.backend_id).await?;
        if let Some(port) = launched.published_port {
            // A predictor published on a host of the backend's (a swarm node) is reached there;
            // routes give clients `addr` otherwise.
            let host = match &launched.published_host {
                Some(host) => host.clone(),
                None => {
                    self.backend
                        .address(planned.id, planned.service_type)
                        .reach_host
                }
            };
            services::set_address(&self.pool, planned.id, &host, port).await?;
        }
        Ok(Ok(launched))
    }

    /// A live service planned again for a relaunch, with a new token (and its inference job's
    /// secret, which the job's running services share).
    async fn replan(&self, service: &ServiceRecord, token: String) -> StoreResult<Planned> {
        let job_id = service.job_id.unwrap_or_default();
        let predict_secret = match service.service_type {
            ServiceType::Predict | ServiceType::Inference => {
                inference_jobs::predict_secret(&self.pool, job_id).await?
            }
            ServiceType::Train | ServiceType::Advisor => None,
        };
        let owners = services::owners(&self.pool, service.id)
            .await?
            .map(|(job, model)| Owners { job, model });
        Ok(Planned {
            id: service.id,
            service_type: service.service_type,
            job_id,
            placement: Placement {
                node: service
                    .node
                    .clone()
                    .unwrap_or_else(|| crate::cluster::LOCAL_NODE.to_owned()),
                gpus: service.gpus.clone(),
            },
            image: service
                .image
                .clone()
                .unwrap_or_else(|| self.config.worker_image.clone()),
            port: service.port.and_then(|p| u16::try_from(p).ok()),
            token,
            predict_secret,
            owners,
        })
    }

    /// Writes a train job, one sub-job per model and its workers (one per GPU, or the budget's
    /// `CPU_WORKERS_PER_MODEL` without GPUs, sharing the sub-job's trials), placed on the cluster, then launches them. Answers once launched, without
    /// waiting for training. A job whose GPUs are not free now (or that earlier waiting jobs
    /// come before) is written waiting, with the reason, and started by [`queue`] later.
    /// Nothing is written when the job does not fit the owner's quotas or could never fit the
    /// cluster; nothing is left running when a launch fails. The job's `train_job.create`
    /// audit row, by `actor`, is written in the job's transaction.
    pub async fn create_train_job(
        &self,
        new: &NewTrainJob<'_>,
        model_ids: &[Uuid],
        actor: &Actor,
    ) -> OrchestratorResult<TrainJobRecord> {
        self.config
            .quotas
            .check_train_job(model_ids.len(), new.budget.time_hours)
            .map_err(OrchestratorError::TrainJobRefused)?;
        let total =
            u32::try_from(new.budget.gpu_count).map_err(|_| OrchestratorError::GpuCountTooLarge)?;
        let shares = split_gpus(total, model_ids.len());
        let cpu_workers = new.budget.cpu_workers_per_model;
        let cpu_models = shares.iter().filter(|share| **share == 0).count();
        self.config
            .quotas
            .check_cpu_workers(cpu_models, cpu_workers)
            .map_err(OrchestratorError::TrainJobRefused)?;
        let requests = queue::worker_requests(&shares, cpu_workers);
        let mut launches = Vec::with_capacity(model_ids.len());
        for model_id in model_ids {
            launches.push(self.model_launch(*model_id).await?);
        }
        let _guard = self.lock.lock().await;
        let cluster = self.cluster().await?;
        cluster
            .could_ever_place(&requests)
            .map_err(|why| OrchestratorError::GpusShort { what: "job", why })?;
        let ahead = train_jobs::list_waiting(&self.pool)
            .await?
            .iter()
            .filter(|j| j.job.budget.gpu_count > 0)
            .count();
        let placed = if total > 0 && ahead > 0 {
            // Submission order: GPU jobs that wait get the devices first.
            Err(queue::behind(&requests, ahead))
        } else {
            placement::place(&cluster.loads(), &requests).map_err(|s| s.to_string())
        };
        let (job, workers) = self
            .write_train_job(new, model_ids, &launches, &shares, placed, actor)
            .await?;
        self.launch_train_workers(job.job.id, &workers).await?;
        Ok(job)
    }

    /// The job's rows and its audit row, in one transaction: with its workers when they are
    /// placed, else waiting with the reason. Returns the workers to launch.
    async fn write_train_job(
        &self,
        new: &NewTrainJob<'_>,
        model_ids: &[Uuid],
        launches: &[ModelLaunch],
        shares: &[u32],
        placed: Result<Vec<Placement>, String>,
        actor: &Actor,
    ) -> OrchestratorResult<(TrainJobRecord, Vec<Planned>)> {
        let mut tx = self.pool.begin().await?;
        let quotas = &self.config.quotas;
        if quotas.limits_live_train_jobs() {
            // Held until the job is written: another admin instance creating a job for the
            // same user waits here, then counts this one.
            users::lock(&mut *tx, new.user_id).await?;
            let live = train_jobs::count_live_of_user(&mut *tx, new.user_id).await?;
            quotas
                .check_live_train_jobs(live)
                .map_err(OrchestratorError::TrainJobRefused)?;
        }
        let mut job = train_jobs::insert(&mut *tx, new).await.map_err(|err| {
            if err.is_constraint(train_jobs::ONE_LIVE_PER_APP)
                || err.is_constraint(train_jobs::APP_VERSION_UNIQUE)
            {
                OrchestratorError::TrainJobRefused(format!(
                    "A train job of app `{}` is already running.",
                    new.app
                ))
            } else {
                err.into()
            }
        })?;
        let created = actor.did(
            AuditAction::TrainJobCreate,
            TargetKind::TrainJob,
            job.job.id,
        );
        audit::insert(&mut *tx, &created).await?;
        let mut subs = Vec::with_capacity(model_ids.len());
        for (model_id, share) in model_ids.iter().zip(shares) {
            let gpu_count = i32::try_from(*share).map_err(anyhow::Error::from)?;
            let sub_id = train_jobs::insert_sub(
                &mut *tx,
                TrainJobId(job.job.id),
                ModelId(*model_id),
                gpu_count,
            )
            .await?;
            subs.push(sub_id);
        }
        let workers = match placed {
            Ok(placements) => {
                let models: Vec<(Uuid, &ModelLaunch, u32)> = subs
                    .iter()
                    .zip(launches)
                    .zip(shares)
                    .map(|((sub, launch), share)| (*sub, launch, *share))
                    .collect();
                self.plan_train_workers(&mut tx, &job, &models, placements)
                    .await?
            }
            Err(reason) => {
                train_jobs::set_waiting(&mut *tx, job.job.id, Some(&reason)).await?;
                job.job.waiting_reason = Some(reason);
                Vec::new()
            }
        };
        tx.commit().await?;
        Ok((job, workers))
    }

    /// Writes the workers of a job's sub-jobs — (sub-job, model, GPU share) — at their
    /// placements, in the order [`queue::worker_requests`] gives: a sub-job's several workers
    /// share its trials, since each asks [`Orchestrator::next_trial`] of the same sub-job.
    async fn plan_train_workers(
        &self,
        tx: &mut sqlx::PgConnection,
        job: &TrainJobRecord,
        subs: &[(Uuid, &ModelLaunch, u32)],
        placements: Vec<Placement>,
    ) -> OrchestratorResult<Vec<Planned>> {
        let mut placements = placements.into_iter();
        let mut workers = Vec::new();
        for (sub_id, launch, share) in subs {
            let owners = Owners {
                job: job.user_id,
                model: launch.owner,
            };
            for _ in 0..queue::worker_count(*share, job.job.budget.cpu_workers_per_model) {
                let placement = placements
                    .next()
                    .ok_or_else(|| anyhow::anyhow!("a worker without its placement"))?;
                let planned = self
                    .plan(
                        &mut *tx,
                        ServiceType::Train,
                        job.job.id,
                        placement,
                        launch.image.clone(),
                        Some(owners),
                    )
                    .await?;
                services::insert_train_worker(
                    &mut *tx,
                    ServiceId(planned.id),
                    SubTrainJobId(*sub_id),
                )
                .await?;
                workers.push(planned);
            }
        }
        Ok(workers)
    }

    /// Launches a train job's written workers. When one cannot be launched, those launched are
    /// stopped and the job, its sub-jobs and workers are ERRORED with the reason.
    async fn launch_train_workers(
        &self,
        job_id: Uuid,
        workers: &[Planned],
    ) -> OrchestratorResult<()> {
        let mut launched: Vec<(Uuid, String)> = Vec::new();
        for planned in workers {
            let err = match self.launch(planned).await? {
                Ok(done) => {
                    launched.push((planned.id, done.backend_id));
                    continue;
                }
                Err(err) => err,
            };
            let reason = format!("Cannot launch a train worker: {err}");
            tracing::error!(job = %job_id, "{reason}");
            for (id, backend_id) in &launched {
                if let Err(e) = self.backend.stop(*id, backend_id).await {
                    tracing::error!(service = %id, error = %e, "cannot stop a worker");
                }
            }
            for planned in workers {
                services::finish(
                    &self.pool,
                    planned.id,
                    ServiceStatus::Errored,
                    Some(&reason),
                )
                .await?;
            }
            self.end_train_job(job_id, JobStatus::Errored, Some(&reason), None)
                .await?;
            return Err(OrchestratorError::Backend(reason));
        }
        Ok(())
    }

    /// Ends a train job and its sub-jobs that are still live (a job that waited no longer
    /// does), in one transaction with `event`'s audit row when a user ended it.
    async fn end_train_job(
        &self,
        job_id: Uuid,
        to: JobStatus,
        error: Option<&str>,
        event: Option<&NewAuditEvent>,
    ) -> StoreResult<()> {
        let mut tx = self.pool.begin().await?;
        train_jobs::set_waiting(&mut *tx, job_id, None).await?;
        for sub in train_jobs::list_subs(&mut *tx, job_id).await? {
            train_jobs::finish_sub(&mut *tx, sub.id, to, error).await?;
        }
        train_jobs::finish(&mut *tx, job_id, to, error).await?;
        if let Some(event) = event {
            audit::insert(&mut *tx, event).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Ends the unfinished trials of a worker ERRORED with `reason`, counted in
    /// `rafiki_trials_finished_total`.
    async fn error_trials_of_worker(&self, worker_id: Uuid, reason: &str) -> StoreResult<()> {
        let ended = trials::error_in_flight_of_worker(&self.pool, worker_id, reason).await?;
        self.metrics.trials_errored(ended);
        Ok(())
    }

    /// Ends the unfinished trials of a train job ERRORED with `reason`, counted in
    /// `rafiki_trials_finished_total`.
    async fn error_trials_of_job(&self, train_job_id: Uuid, reason: &str) -> StoreResult<()> {
        let ended = trials::error_in_flight_of_job(&self.pool, train_job_id, reason).await?;
        self.metrics.trials_errored(ended);
        Ok(())
    }

    /// Stops a train job synchronously: when this returns its workers are gone (a waiting job
    /// has none), its in-flight trials are ERRORED, and it reads STOPPED (unless it had
    /// already ended), written with `event`, the stop's audit row. Jobs waiting for the GPUs it
    /// held are started.
    pub async fn stop_train_job(
        &self,
        train_job_id: Uuid,
        event: &NewAuditEvent,
    ) -> OrchestratorResult<()> {
        let _guard = self.lock.lock().await;
        for (_, service) in services::list_train_workers(&self.pool, train_job_id).await? {
            self.stop_service(service.id, service.backend_id.as_deref())
                .await?;
        }
        self.error_trials_of_job(train_job_id, "The train job was stopped.")
            .await?;
        self.end_train_job(train_job_id, JobStatus::Stopped, None, Some(event))
            .await?;
        self.admit_waiting().await
    }

    /// Marks a service STOPPED (so its token stops working, and its GPUs are free), then stops
    /// it.
    async fn stop_service(&self, id: Uuid, backend_id: Option<&str>) -> OrchestratorResult<()> {
        services::finish(&self.pool, id, ServiceStatus::Stopped, None).await?;
        if let Some(backend_id) = backend_id {
            self.backend.stop(id, backend_id).await.map_err(|err| {
                OrchestratorError::Backend(format!("Cannot stop service {id}: {err}"))
            })?;
        }
        Ok(())
    }
}
