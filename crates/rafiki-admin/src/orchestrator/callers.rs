//! Who calls the internal API, as the orchestrator gets it: a train worker with its sub-job and
//! job, an inference worker with its job, trial and sub-job, a predictor with its job. The
//! extractors that resolve a service token into these are in `crate::auth::service`.

use rafiki_store::inference_jobs::InferenceJobRecord;
use rafiki_store::services::ServiceRecord;
use rafiki_store::train_jobs::{SubTrainJob, TrainJobRecord};
use rafiki_store::trials::TrialRecord;

/// A train worker: its service, the sub-job (model) it tunes and that sub-job's train job.
#[derive(Debug, Clone)]
pub struct TrainWorker {
    /// The calling service.
    pub service: ServiceRecord,
    /// The sub-job whose model it tunes.
    pub sub: SubTrainJob,
    /// The sub-job's train job.
    pub job: TrainJobRecord,
}

/// An inference worker: its service, its inference job, the trial it serves and that trial's
/// sub-job (its model).
#[derive(Debug, Clone)]
pub struct InferenceWorker {
    /// The calling service.
    pub service: ServiceRecord,
    /// The inference job.
    pub job: InferenceJobRecord,
    /// The trial it serves.
    pub trial: TrialRecord,
    /// The trial's sub-job.
    pub sub: SubTrainJob,
}

/// A predictor: its service and its inference job.
#[derive(Debug, Clone)]
pub struct Predictor {
    /// The calling service.
    pub service: ServiceRecord,
    /// The inference job it fronts.
    pub job: InferenceJobRecord,
}

/// A worker that runs a model: the routes both kinds call (model files, environment reports).
/// Boxed: the records are large and of different sizes.
#[derive(Debug, Clone)]
pub enum ModelWorker {
    /// A train worker.
    Train(Box<TrainWorker>),
    /// An inference worker.
    Inference(Box<InferenceWorker>),
}

impl ModelWorker {
    /// The calling service.
    pub fn service(&self) -> &ServiceRecord {
        match self {
            ModelWorker::Train(w) => &w.service,
            ModelWorker::Inference(w) => &w.service,
        }
    }

    /// The model it runs.
    pub fn model_id(&self) -> uuid::Uuid {
        match self {
            ModelWorker::Train(w) => w.sub.model_id,
            ModelWorker::Inference(w) => w.sub.model_id,
        }
    }
}
