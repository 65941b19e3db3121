//! What the orchestrator decides when its services call in (the internal API's handlers parse
//! and authorise, then ask here): a service reporting for work moves to RUNNING; a train
//! worker's knob config picks its advisor or ends its model ERRORED; the next trial is the
//! advisor's decision, recorded RUNNING in the same transaction; a train worker's failure
//! ends its model; a predictor's polls move it to DEPLOYING, then RUNNING.

use std::time::Instant;

use chrono::Utc;
use rafiki_store::services::{self, ServiceRecord};
use rafiki_store::{models, train_jobs, trials};
use rafiki_types::ids::{ServiceId, SubTrainJobId, TrainJobId};
use rafiki_types::internal::{
    BlobRef, KnobConfigAccepted, NextTrial, TrialAssignment, WorkerModel,
};
use rafiki_types::knob::{validate_knob_config, KnobConfig};
use rafiki_types::status::{JobStatus, ServiceStatus, TrialStatus};
use uuid::Uuid;

use super::callers::{Predictor, TrainWorker};
use super::error::{OrchestratorError, OrchestratorResult};
use super::Orchestrator;

/// A model as its workers get it (train and inference alike).
pub fn worker_model(model: &models::ModelRecord) -> WorkerModel {
    WorkerModel {
        id: model.id,
        name: model.name.clone(),
        model_class: model.model_class.clone(),
        dependencies: model.dependencies.clone().into_iter().collect(),
        dependency_pins: model.dependency_pins,
        file: blob(model.id, &model.sha256, model.size_bytes),
    }
}

/// A stored blob as a worker downloads it.
pub fn blob(id: Uuid, sha256: &str, size: u64) -> BlobRef {
    BlobRef {
        id,
        sha256: sha256.to_owned(),
        size_bytes: i64::try_from(size).unwrap_or(i64::MAX),
    }
}

impl Orchestrator {
    /// A service reports for work: STARTED or DEPLOYING -> RUNNING (a no-op once running).
    pub async fn mark_running(&self, service: &ServiceRecord) -> OrchestratorResult<()> {
        if service.status != ServiceStatus::Running {
            services::set_status(
                &self.pool,
                service.id,
                service.status,
                ServiceStatus::Running,
                None,
            )
            .await?;
        }
        Ok(())
    }

    /// A train worker's model's search space: picks its advisor, or, when the config is not
    /// valid, ends the model's sub-job ERRORED with the reason.
    pub async fn accept_knob_config(
        &self,
        worker: &TrainWorker,
        raw: &serde_json::Value,
    ) -> OrchestratorResult<KnobConfigAccepted> {
        let parsed = serde_json::from_value::<KnobConfig>(raw.clone())
            .map_err(|e| e.to_string())
            .and_then(|config| {
                validate_knob_config(&config)
                    .map(|()| config)
                    .map_err(|e| e.to_string())
            });
        let config = match parsed {
            Ok(config) => config,
            Err(reason) => {
                let error = format!("The model's knob config is invalid: {reason}");
                train_jobs::finish_sub(&self.pool, worker.sub.id, JobStatus::Errored, Some(&error))
                    .await?;
                return Err(OrchestratorError::ModelRefused(error));
            }
        };
        let budget = rafiki_advisor::Budget::from_options(
            worker.job.job.budget.time_hours,
            worker.job.job.budget.model_trial_count,
        );
        let advisor = rafiki_advisor::advisor_type(&config, budget);
        train_jobs::set_knob_config(&self.pool, worker.sub.id, advisor, raw).await?;
        Ok(KnobConfigAccepted {
            advisor_type: advisor,
        })
    }

    /// The worker's next trial, recorded RUNNING in the same transaction as the advisor's
    /// decision (the sub-job's row locked, so a model's workers are served one at a time), or
    /// `BUDGET_SPENT`.
    pub async fn next_trial(&self, worker: &TrainWorker) -> OrchestratorResult<NextTrial> {
        let mut tx = self.pool.begin().await?;
        let Some(sub) = train_jobs::lock_sub(&mut *tx, worker.sub.id).await? else {
            return Ok(NextTrial::BudgetSpent);
        };
        let job = train_jobs::get(&mut *tx, sub.train_job_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("train job of {} is gone", sub.id))?;
        if !sub.status.is_live() || !job.job.status.is_live() {
            return Ok(NextTrial::BudgetSpent);
        }
        // A worker runs one trial at a time. An unfinished trial it never touched is one whose
        // assignment was lost on the way (the worker retried): hand it out again. One it
        // touched and left is abandoned (counted once the transaction commits).
        let mut abandoned = 0;
        if let Some((trial, touched)) =
            trials::unfinished_of_worker(&mut tx, worker.service.id).await?
        {
            if !touched {
                tx.commit().await?;
                return Ok(NextTrial::Trial {
                    trial: TrialAssignment {
                        id: trial.trial.id,
                        no: trial.trial.no,
                        proposal: trial.trial.proposal,
                    },
                });
            }
            abandoned = trials::error_in_flight_of_worker(
                &mut *tx,
                worker.service.id,
                "The worker asked for another trial without finishing this one.",
            )
            .await?;
        }
        let raw_config = sub.knob_config.clone().ok_or_else(|| {
            OrchestratorError::OutOfOrder(
                "Report the model's knob config before asking for trials.".into(),
            )
        })?;
        let config: KnobConfig = serde_json::from_value(raw_config).map_err(anyhow::Error::from)?;
        let history = advisor_history(trials::history(&mut *tx, sub.id).await?);
        let worker_key = worker.service.id.to_string();
        let trial_no = u32::try_from(history.len() + 1).map_err(anyhow::Error::from)?;
        let request = rafiki_advisor::Request {
            config: &config,
            budget: rafiki_advisor::Budget::from_options(
                job.job.budget.time_hours,
                job.job.budget.model_trial_count,
            ),
            history: &history,
            trial_no,
            // Installing dependencies and loading the model came before: not charged.
            started_at: sub.budget_clock_start(),
            now: Utc::now(),
            seed: advisor_seed(sub.id),
            worker_id: Some(&worker_key),
        };
        let proposing = Instant::now();
        let decision = rafiki_advisor::propose(&request).map_err(anyhow::Error::from)?;
        self.metrics.advisor_proposed(
            rafiki_advisor::advisor_type(&config, request.budget),
            proposing.elapsed(),
        );
        let proposal = match decision {
            rafiki_advisor::Decision::BudgetSpent => {
                // Kept for supervision: a worker gone after this answer ended its work.
                train_jobs::mark_budget_spent(&mut *tx, sub.id).await?;
                tx.commit().await?;
                self.metrics.trials_errored(abandoned);
                return Ok(NextTrial::BudgetSpent);
            }
            rafiki_advisor::Decision::Propose(proposal) => proposal,
        };
        let id = trials::insert_running(
            &mut *tx,
            TrainJobId(job.job.id),
            SubTrainJobId(sub.id),
            ServiceId(worker.service.id),
            &proposal,
        )
        .await?;
        // The first trial moves the model and the job to RUNNING (guarded: once).
        train_jobs::mark_sub_running(&mut *tx, sub.id).await?;
        train_jobs::mark_running(&mut *tx, job.job.id).await?;
        tx.commit().await?;
        self.metrics.trials_errored(abandoned);
        let no = i32::try_from(proposal.trial_no).map_err(anyhow::Error::from)?;
        Ok(NextTrial::Trial {
            trial: TrialAssignment { id, no, proposal },
        })
    }

    /// A train worker's model cannot be tuned: its trial in flight and its sub-job ERRORED.
    pub async fn train_worker_failed(
        &self,
        worker: &TrainWorker,
        error: &str,
    ) -> OrchestratorResult<()> {
        self.error_trials_of_worker(worker.service.id, error)
            .await?;
        train_jobs::finish_sub(&self.pool, worker.sub.id, JobStatus::Errored, Some(error)).await?;
        Ok(())
    }

    /// A predictor polled and was told of `serving` workers. A job must not read RUNNING
    /// before its predictor can answer, and an answer in flight proves nothing. The predictor
    /// polls in a loop (apply the answer, wait, ask again), so the first answer that lists
    /// serving workers moves it to DEPLOYING, and the next call, which it only makes once it
    /// has applied that answer, to RUNNING.
    pub async fn predictor_polled(
        &self,
        predictor: &Predictor,
        serving: usize,
    ) -> OrchestratorResult<()> {
        let service = &predictor.service;
        let next = match service.status {
            _ if serving == 0 => None,
            ServiceStatus::Started => Some(ServiceStatus::Deploying),
            ServiceStatus::Deploying => Some(ServiceStatus::Running),
            _ => None,
        };
        if let Some(next) = next {
            services::set_status(&self.pool, service.id, service.status, next, None).await?;
        }
        Ok(())
    }
}

/// A model's trials as its advisor reads them: unfinished ones count as running.
fn advisor_history(history: Vec<trials::TrialHistoryItem>) -> Vec<rafiki_advisor::PastTrial> {
    history
        .into_iter()
        .map(|t| {
            let past = match t.status {
                TrialStatus::Completed => rafiki_advisor::PastTrial {
                    proposal: t.proposal,
                    state: rafiki_advisor::TrialState::Completed,
                    score: t.score,
                    worker_id: None,
                },
                TrialStatus::Errored => rafiki_advisor::PastTrial::errored(t.proposal),
                TrialStatus::Pruned => rafiki_advisor::PastTrial {
                    proposal: t.proposal,
                    state: rafiki_advisor::TrialState::Pruned,
                    score: None,
                    worker_id: None,
                },
                TrialStatus::Pending | TrialStatus::Running => {
                    rafiki_advisor::PastTrial::running(t.proposal)
                }
            };
            match t.worker_id {
                Some(id) => past.on_worker(id.to_string()),
                None => past,
            }
        })
        .collect()
}

/// The advisor's seed for a model: from its sub-job's id, so a model's proposals are
/// reproducible and two models of a job differ.
fn advisor_seed(sub_id: Uuid) -> u64 {
    let bytes = sub_id.as_bytes();
    u64::from_le_bytes([
        bytes[0], bytes[1], bytes[2], bytes[3], bytes[4], bytes[5], bytes[6], bytes[7],
    ])
}
