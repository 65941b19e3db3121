//! The queue of train jobs waiting for GPUs (beyond Rafiki, which refuses them). A job whose
//! GPUs are not free when it is submitted is written with its sub-jobs but no workers, STARTED
//! on the wire, with `waiting_reason` saying what it waits for. [`Orchestrator::admit_waiting`]
//! starts waiting jobs in submission order as devices free up: after a stop, and at every
//! supervision step (which also catches nodes coming back or being labelled). A job needing
//! GPUs that cannot start holds back the GPU jobs behind it, so a large job is not starved by
//! smaller ones; a job needing none never waits behind GPU jobs. The queue is the database:
//! it survives an admin restart.

use rafiki_store::train_jobs::{self, TrainJobRecord};
use rafiki_store::StoreResult;
use rafiki_types::status::JobStatus;

use super::error::OrchestratorResult;
use super::{ModelLaunch, Orchestrator};
use crate::cluster::placement::{self, Placement};

/// How many workers a sub-job with `share` GPUs gets: one per GPU, or, with none, the
/// budget's `cpu_workers` (`CPU_WORKERS_PER_MODEL`, which a model with GPUs ignores).
pub fn worker_count(share: u32, cpu_workers: u32) -> u32 {
    if share == 0 {
        cpu_workers
    } else {
        share
    }
}

/// The GPU requests of a job's workers, given each sub-job's GPU share: one worker per GPU,
/// or `cpu_workers` workers without GPUs for a share of none.
pub fn worker_requests(shares: &[u32], cpu_workers: u32) -> Vec<usize> {
    shares
        .iter()
        .flat_map(|share| {
            let gpus = usize::from(*share > 0);
            vec![gpus; worker_count(*share, cpu_workers) as usize]
        })
        .collect()
}

/// The reason of a job that waits behind `ahead` earlier waiting jobs.
pub fn behind(requests: &[usize], ahead: usize) -> String {
    let asked: usize = requests.iter().sum();
    format!(
        "waiting for {asked} GPU{}; {ahead} earlier job{} waiting first",
        if asked == 1 { "" } else { "s" },
        if ahead == 1 { "" } else { "s" }
    )
}

impl Orchestrator {
    /// Starts the waiting jobs that fit now, in submission order, and brings the others'
    /// reasons up to date. Call with the lock held.
    pub(super) async fn admit_waiting(&self) -> OrchestratorResult<()> {
        let waiting = train_jobs::list_waiting(&self.pool).await?;
        let mut ahead = 0;
        for job in waiting {
            let shares: Vec<u32> = train_jobs::list_subs(&self.pool, job.job.id)
                .await?
                .iter()
                .map(|s| u32::try_from(s.gpu_count).unwrap_or(0))
                .collect();
            let requests = worker_requests(&shares, job.job.budget.cpu_workers_per_model);
            let needs_gpus = requests.iter().any(|r| *r > 0);
            let reason = if needs_gpus && ahead > 0 {
                behind(&requests, ahead)
            } else {
                match placement::place(&self.cluster().await?.loads(), &requests) {
                    Ok(placements) => {
                        self.admit(&job, placements).await?;
                        continue;
                    }
                    Err(shortage) => shortage.to_string(),
                }
            };
            if needs_gpus {
                ahead += 1;
            }
            if job.job.waiting_reason.as_deref() != Some(reason.as_str()) {
                train_jobs::set_waiting(&self.pool, job.job.id, Some(&reason)).await?;
            }
        }
        Ok(())
    }

    /// Starts a waiting job at these placements: its workers are written, it stops waiting
    /// (one transaction), and they are launched. A model that may no longer run here (its
    /// image left the allow-list, or it was deleted) ends the job ERRORED.
    async fn admit(&self, job: &TrainJobRecord, placements: Vec<Placement>) -> StoreResult<()> {
        let subs = train_jobs::list_subs(&self.pool, job.job.id).await?;
        let mut launches: Vec<ModelLaunch> = Vec::with_capacity(subs.len());
        for sub in &subs {
            match self.model_launch(sub.model_id).await {
                Ok(launch) => launches.push(launch),
                Err(refusal) => {
                    return self
                        .end_train_job(
                            job.job.id,
                            JobStatus::Errored,
                            Some(&refusal.to_string()),
                            None,
                        )
                        .await;
                }
            }
        }
        let models: Vec<_> = subs
            .iter()
            .zip(&launches)
            .map(|(sub, launch)| (sub.id, launch, u32::try_from(sub.gpu_count).unwrap_or(0)))
            .collect();
        let written = async {
            let mut tx = self.pool.begin().await?;
            let workers = self
                .plan_train_workers(&mut tx, job, &models, placements)
                .await?;
            train_jobs::set_waiting(&mut *tx, job.job.id, None).await?;
            tx.commit().await?;
            OrchestratorResult::Ok(workers)
        }
        .await;
        let workers = match written {
            Ok(workers) => workers,
            Err(err) => {
                tracing::error!(job = %job.job.id, error = %err, "cannot start a waiting job");
                return Ok(());
            }
        };
        tracing::info!(job = %job.job.id, workers = workers.len(), "a waiting job starts");
        if let Err(err) = self.launch_train_workers(job.job.id, &workers).await {
            // The job is ERRORED with the reason by then.
            tracing::error!(job = %job.job.id, error = %err, "a waiting job could not start");
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn workers_get_one_gpu_each_or_none() {
        assert_eq!(worker_requests(&[2, 0, 1], 1), vec![1, 1, 0, 1]);
        assert_eq!(worker_requests(&[], 1), Vec::<usize>::new());
        // CPU_WORKERS_PER_MODEL: workers for the model without GPUs only.
        assert_eq!(worker_requests(&[2, 0, 1], 3), vec![1, 1, 0, 0, 0, 1]);
        assert_eq!(worker_requests(&[0, 0], 2), vec![0, 0, 0, 0]);
        assert_eq!(
            behind(&[1, 1], 1),
            "waiting for 2 GPUs; 1 earlier job waiting first"
        );
    }
}
