//! Status enums of jobs, trials and services, each with its transition table, and the kinds of
//! services (what they do, which backend runs them). The store derives the SQL guard of every
//! status move (the statuses it may come from) from these tables and refuses a move they do not
//! allow, so no code path can move a status backwards.

wire_enum!(
    /// Status of a train job, a sub-job (one model of a train job) or an inference job.
    JobStatus {
        /// Created; services being launched.
        Started,
        /// A worker is running a trial (train) or serving (inference).
        Running,
        /// Budget reached or stopped by the user.
        Stopped,
        /// Failed; the reason is in the job's or trial's error.
        Errored,
    }
);

wire_enum!(
    /// Status of a trial.
    TrialStatus {
        /// Proposed, not yet running.
        Pending,
        /// A worker is training or evaluating it.
        Running,
        /// Trained and scored.
        Completed,
        /// The model raised, the worker died, or the job was stopped mid-trial.
        Errored,
        /// Stopped early by the job's pruner (beyond Rafiki, docs/pruning.md): neither an error
        /// nor scored.
        Pruned,
    }
);

wire_enum!(
    /// Status of a service (a worker process/container or a predictor).
    ServiceStatus {
        /// Recorded, launch requested.
        Started,
        /// The backend is bringing it up.
        Deploying,
        /// Up and reporting.
        Running,
        /// Failed to start or crashed for good.
        Errored,
        /// Stopped on purpose.
        Stopped,
    }
);

wire_enum!(
    /// What a service does.
    ServiceType {
        /// A train worker.
        Train,
        /// An advisor (Rafiki ran these as services; here they live in the admin).
        Advisor,
        /// A predictor.
        Predict,
        /// An inference worker.
        Inference,
    }
);

wire_enum!(
    /// Where services (workers, predictors) run; stored in `services.backend`, and read from
    /// the admin's `RAFIKI_BACKEND` (lowercase, like the stored names).
    case = "lowercase",
    BackendKind {
        /// Child processes of the admin on this host: the embedded default.
        Process,
        /// Docker containers through the engine's API.
        Docker,
        /// Docker Swarm services through a manager's engine API.
        Swarm,
    }
);

impl JobStatus {
    /// The live statuses: the job's services may be running. Queries take their sets from
    /// here (`rafiki_store`'s `status_sets`).
    pub const LIVE: [JobStatus; 2] = [JobStatus::Started, JobStatus::Running];

    /// Whether the job is still live (its services may be running).
    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }

    /// The transition table: live statuses move forward; STOPPED and ERRORED are final.
    pub fn can_become(self, next: JobStatus) -> bool {
        use JobStatus::*;
        matches!(
            (self, next),
            (Started, Running | Stopped | Errored) | (Running, Stopped | Errored)
        )
    }
}

impl TrialStatus {
    /// The statuses of a trial a worker holds and has not finished.
    pub const UNFINISHED: [TrialStatus; 2] = [TrialStatus::Pending, TrialStatus::Running];

    /// The transition table: PENDING -> RUNNING -> COMPLETED | ERRORED | PRUNED; a pending
    /// trial can also be ERRORED (its worker died before starting it).
    pub fn can_become(self, next: TrialStatus) -> bool {
        use TrialStatus::*;
        matches!(
            (self, next),
            (Pending, Running | Errored) | (Running, Completed | Errored | Pruned)
        )
    }
}

impl ServiceStatus {
    /// The statuses of a service that may still be running.
    pub const LIVE: [ServiceStatus; 3] = [
        ServiceStatus::Started,
        ServiceStatus::Deploying,
        ServiceStatus::Running,
    ];

    /// Whether the service may still be running.
    pub fn is_live(self) -> bool {
        Self::LIVE.contains(&self)
    }

    /// The transition table: STARTED -> DEPLOYING -> RUNNING, any live status -> ERRORED or
    /// STOPPED; the final statuses never change.
    pub fn can_become(self, next: ServiceStatus) -> bool {
        use ServiceStatus::*;
        match (self, next) {
            (Started, Deploying | Running) | (Deploying, Running) => true,
            (from, Errored | Stopped) => from.is_live(),
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use strum::VariantArray;

    #[test]
    fn final_statuses_never_move() {
        for next in JobStatus::VARIANTS {
            assert!(!JobStatus::Stopped.can_become(*next));
            assert!(!JobStatus::Errored.can_become(*next));
        }
        for next in TrialStatus::VARIANTS {
            assert!(!TrialStatus::Completed.can_become(*next));
            assert!(!TrialStatus::Errored.can_become(*next));
            assert!(!TrialStatus::Pruned.can_become(*next));
        }
        for next in ServiceStatus::VARIANTS {
            assert!(!ServiceStatus::Stopped.can_become(*next));
            assert!(!ServiceStatus::Errored.can_become(*next));
        }
    }

    #[test]
    fn statuses_move_forward_only() {
        assert!(JobStatus::Started.can_become(JobStatus::Running));
        assert!(!JobStatus::Running.can_become(JobStatus::Started));
        assert!(TrialStatus::Pending.can_become(TrialStatus::Running));
        assert!(!TrialStatus::Pending.can_become(TrialStatus::Completed));
        assert!(ServiceStatus::Deploying.can_become(ServiceStatus::Running));
        assert!(!ServiceStatus::Running.can_become(ServiceStatus::Deploying));
    }

    #[test]
    fn wire_names_are_the_contracts() {
        assert_eq!(JobStatus::Running.to_string(), "RUNNING");
        assert_eq!(
            serde_json::to_value(ServiceType::Inference).unwrap(),
            "INFERENCE"
        );
        assert_eq!(
            "COMPLETED".parse::<TrialStatus>().unwrap(),
            TrialStatus::Completed
        );
        assert_eq!(BackendKind::Process.to_string(), "process");
        assert_eq!(
            serde_json::from_value::<BackendKind>("docker".into()).unwrap(),
            BackendKind::Docker
        );
        assert_eq!(BackendKind::Swarm.to_string(), "swarm");
    }
}
