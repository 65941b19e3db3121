//! The audit trail's wire types (`GET /audit`): who did what to which resource, from where,
//! in which request, and how it ended.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::user::UserType;

/// The outcome of an action that took effect. Refused or failed actions have the contract's
/// error name instead (`UnauthorizedError`, `InvalidTrainJobError`, ...).
pub const OUTCOME_OK: &str = "OK";

/// What a user did: a stable dotted name, the same on the wire, in the database and in the
/// CLI's `--action` filter. One per mutating route of the API (the console's actions call the
/// same code and record the same names).
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum AuditAction {
    /// `POST /tokens` (or the console's login form), successful or not.
    #[serde(rename = "login")]
    #[strum(serialize = "login")]
    Login,
    /// `POST /users`.
    #[serde(rename = "user.create")]
    #[strum(serialize = "user.create")]
    UserCreate,
    /// `DELETE /users`.
    #[serde(rename = "user.ban")]
    #[strum(serialize = "user.ban")]
    UserBan,
    /// `POST /datasets`.
    #[serde(rename = "dataset.create")]
    #[strum(serialize = "dataset.create")]
    DatasetCreate,
    /// `DELETE /datasets/{id}`.
    #[serde(rename = "dataset.delete")]
    #[strum(serialize = "dataset.delete")]
    DatasetDelete,
    /// `POST /models`.
    #[serde(rename = "model.create")]
    #[strum(serialize = "model.create")]
    ModelCreate,
    /// `DELETE /models/{id}`.
    #[serde(rename = "model.delete")]
    #[strum(serialize = "model.delete")]
    ModelDelete,
    /// `POST /train_jobs`.
    #[serde(rename = "train_job.create")]
    #[strum(serialize = "train_job.create")]
    TrainJobCreate,
    /// `POST /train_jobs/{app}/{app_version}/stop`, and each train job a ban stops.
    #[serde(rename = "train_job.stop")]
    #[strum(serialize = "train_job.stop")]
    TrainJobStop,
    /// `POST /inference_jobs`.
    #[serde(rename = "inference_job.create")]
    #[strum(serialize = "inference_job.create")]
    InferenceJobCreate,
    /// `POST /inference_jobs/{app}/{app_version}/stop`, and each inference job a ban stops.
    #[serde(rename = "inference_job.stop")]
    #[strum(serialize = "inference_job.stop")]
    InferenceJobStop,
    /// `POST /actions/stop_all_jobs`: one row per job it stopped.
    #[serde(rename = "jobs.stop_all")]
    #[strum(serialize = "jobs.stop_all")]
    JobsStopAll,
}

/// The kind of resource an action was done to.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    Serialize,
    Deserialize,
    strum::Display,
    strum::EnumString,
    strum::IntoStaticStr,
)]
#[serde(rename_all = "snake_case")]
#[strum(serialize_all = "snake_case")]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[cfg_attr(feature = "openapi", schema(rename_all = "snake_case"))]
pub enum TargetKind {
    /// A user: its id (or, for a login, the email tried).
    User,
    /// A dataset: its id.
    Dataset,
    /// A model: its id.
    Model,
    /// A train job: its id (or `{app}/{app_version}` for a refused stop).
    TrainJob,
    /// An inference job: its id (or `{app}/{app_version}` for a refused stop).
    InferenceJob,
}

/// One recorded event, as `GET /audit` lists it.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditEvent {
    /// The event's number, increasing: ties of `time` are ordered by it.
    pub id: i64,
    /// When it was recorded (for a change: when its transaction began).
    pub time: DateTime<Utc>,
    /// The user who acted; `null` for a login with an unknown email.
    pub actor_id: Option<Uuid>,
    /// Their type at the time.
    pub actor_role: Option<UserType>,
    /// What they did.
    pub action: AuditAction,
    /// The kind of resource acted on, when there is one.
    pub target_kind: Option<TargetKind>,
    /// Which one: an id, or what the request named (at most 256 characters).
    pub target_id: Option<String>,
    /// `OK`, or the contract's error name of the answer.
    pub outcome: String,
    /// The TCP peer's address (a proxy's, behind one).
    pub client_address: Option<String>,
    /// The request's `x-request-id`.
    pub request_id: Option<String>,
}
