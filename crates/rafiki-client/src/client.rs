//! [`Client`]: every method of Rafiki's Python client, over the REST contract
//! (`CONTRACT.md`), with the same names and defaults.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use futures_util::TryStreamExt;
use rafiki_types::audit::{AuditAction, AuditEvent};
use rafiki_types::dataset::{CreatedDataset, Dataset};
use rafiki_types::inference::{
    CreateInferenceJobRequest, CreatedInferenceJob, InferenceJob, InferenceJobRef, PredictRequest,
    PredictResponse, RunningInferenceJob,
};
use rafiki_types::model::{
    AvailableModel, Dependencies, DependencyPins, Model, ModelAccessRight, ModelRef,
};
use rafiki_types::train::{CreateTrainJobRequest, TrainJob, TrainJobRef, Trial, TrialLogs};
use rafiki_types::user::{
    BanUserRequest, CreateUserRequest, CreatedUser, LoginRequest, LoginResponse, User, UserType,
};
use reqwest::multipart::{Form, Part};
use reqwest::{Method, RequestBuilder, Response, StatusCode, Url};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use uuid::Uuid;

use crate::error::{ClientError, Result};
use crate::params::{decode_params, Parameters};

/// `app_version` meaning "the latest version of the app".
pub const LATEST: i32 = -1;

/// A job budget: `{option: amount}`, e.g. `{"MODEL_TRIAL_COUNT": 5}`.
pub type Budget = BTreeMap<String, serde_json::Value>;

/// The keys of a train job's [`Budget`] (Rafiki's `BudgetOption`).
#[derive(Debug, Clone, Copy)]
pub struct BudgetOption;

impl BudgetOption {
    /// GPUs for the whole job, split evenly over its models (client default 0).
    pub const GPU_COUNT: &'static str = "GPU_COUNT";
    /// Hours per model (client default 0.1).
    pub const TIME_HOURS: &'static str = "TIME_HOURS";
    /// Trials per model; -1 (the server's default) means no limit.
    pub const MODEL_TRIAL_COUNT: &'static str = "MODEL_TRIAL_COUNT";
    /// Train workers sharing the trials of each model without GPUs (server default 1; not
    /// Rafiki's).
    pub const CPU_WORKERS_PER_MODEL: &'static str = "CPU_WORKERS_PER_MODEL";
    /// Early stopping of bad trials: `MEDIAN` or `ASHA`; absent (the default), none. Not
    /// Rafiki's, like the other `PRUNE_*` options (docs/pruning.md).
    pub const PRUNER: &'static str = "PRUNER";
    /// The logged metric that judges trials (required with [`Self::PRUNER`]).
    pub const PRUNE_METRIC: &'static str = "PRUNE_METRIC";
    /// `MAX` (the default: higher is better) or `MIN`.
    pub const PRUNE_MODE: &'static str = "PRUNE_MODE";
    /// The logged metric that numbers steps (e.g. `epoch`).
    pub const PRUNE_STEP_METRIC: &'static str = "PRUNE_STEP_METRIC";
    /// No trial is judged before this step; ASHA's first rung (default 1).
    pub const PRUNE_MIN_STEP: &'static str = "PRUNE_MIN_STEP";
    /// ASHA's reduction factor eta (default 3).
    pub const PRUNE_REDUCTION_FACTOR: &'static str = "PRUNE_REDUCTION_FACTOR";
    /// How many other trials the median rule waits for at a step (default 4).
    pub const PRUNE_WARMUP_TRIALS: &'static str = "PRUNE_WARMUP_TRIALS";
}

/// The keys of an inference job's [`Budget`] (Rafiki's `InferenceBudgetOption`).
#[derive(Debug, Clone, Copy)]
pub struct InferenceBudgetOption;

impl InferenceBudgetOption {
    /// GPUs for the whole job, split over its deployed trials (client default 0).
    pub const GPU_COUNT: &'static str = "GPU_COUNT";
}

/// The logged-in user, as [`Client::login`] returns it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CurrentUser {
    /// The user's id.
    pub id: Uuid,
    /// Their type.
    pub user_type: UserType,
}

/// A login session: the bearer token and whose it is. Programs that keep a session across
/// runs (like the `rafiki` CLI) save it and give it back with [`Client::set_session`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// The bearer token (valid for one hour).
    pub token: String,
    /// Whose token it is.
    pub user: CurrentUser,
}

/// `{id}` of a job that [`Client::stop_all_jobs`] stopped.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct JobId {
    /// The job's id.
    pub id: Uuid,
}

/// `POST /actions/stop_all_jobs` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoppedJobs {
    /// The train jobs that were stopped.
    pub train_jobs: Vec<JobId>,
    /// The inference jobs that were stopped.
    pub inference_jobs: Vec<JobId>,
}

/// A trial's saved parameters: the bytes the server stored, and their decoded form.
#[derive(Debug, Clone, PartialEq)]
pub struct TrialParameters {
    /// The parameters file, byte for byte (`docs/parameters.md`).
    pub bytes: Vec<u8>,
    /// What the model's `dump_parameters()` returned.
    pub params: Parameters,
}

/// Called as an upload streams: `(bytes sent so far, total bytes)`.
pub type Progress = Arc<dyn Fn(u64, u64) + Send + Sync>;

/// Connects to a running Rafiki admin. Cheap to clone; clones share connections (and copy the
/// session).
#[derive(Clone)]
pub struct Client {
    http: reqwest::Client,
    admin_host: String,
    admin_port: u16,
    session: Option<Session>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The token stays out of logs.
        f.debug_struct("Client")
            .field("admin_host", &self.admin_host)
            .field("admin_port", &self.admin_port)
            .field("user", &self.session.as_ref().map(|s| &s.user))
            .finish()
    }
}

/// How long a connection may take to open, and how long a read may stall (Rafiki's client
/// waited 300 s).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
const READ_TIMEOUT: Duration = Duration::from_secs(300);
/// Read size of streamed uploads.
const UPLOAD_CHUNK: usize = 256 * 1024;

impl Client {
    /// A client of the admin at `admin_host:admin_port` (Rafiki's defaults: `127.0.0.1`,
    /// `3000`). Nothing is sent until the first call.
    ///
    /// ```no_run
    /// let client = rafiki_client::Client::new("127.0.0.1", 3000);
    /// ```
    pub fn new(admin_host: impl Into<String>, admin_port: u16) -> Self {
        let http = reqwest::Client::builder()
            .connect_timeout(CONNECT_TIMEOUT)
            .read_timeout(READ_TIMEOUT)
            .build()
            .unwrap_or_default();
        Client {
            http,
            admin_host: admin_host.into(),
            admin_port,
            session: None,
        }
    }

    /// A client of the admin named by the environment as Rafiki's client reads it:
    /// `RAFIKI_ADDR` (default `127.0.0.1`) and `ADMIN_EXT_PORT` (default `3000`).
    ///
    /// ```no_run
    /// let client = rafiki_client::Client::from_env();
    /// ```
    pub fn from_env() -> Self {
        let host = std::env::var("RAFIKI_ADDR").unwrap_or_else(|_| "127.0.0.1".to_owned());
        let port = std::env::var("ADMIN_EXT_PORT")
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or(3000);
        Client::new(host, port)
    }

    /// The admin's host.
    ///
    /// ```
    /// let client = rafiki_client::Client::new("10.0.0.5", 3000);
    /// assert_eq!(client.admin_host(), "10.0.0.5");
    /// ```
    pub fn admin_host(&self) -> &str {
        &self.admin_host
    }

    /// The admin's port.
    ///
    /// ```
    /// let client = rafiki_client::Client::new("10.0.0.5", 3000);
    /// assert_eq!(client.admin_port(), 3000);
    /// ```
    pub fn admin_port(&self) -> u16 {
        self.admin_port
    }

    // --- session ---

    /// Logs in; later calls are made as this user. Returns `{id, user_type}`.
    ///
    /// ```no_run
    /// # async fn run() -> rafiki_client::Result<()> {
    /// let mut client = rafiki_client::Client::new("127.0.0.1", 3000);
    /// let me = client.login("superadmin@rafiki", "rafiki").await?;
    /// println!("logged in as {} ({})", me.id, me.user_type);
    /// # Ok(()) }
    /// ```
    pub async fn login(&mut self, email: &str, password: &str) -> Result<CurrentUser> {
        let body = LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
        };
        let req = self.request(Method::POST, &["tokens"])?.json(&body);
        let answer: LoginResponse = self.json(req).await?;
        let user = CurrentUser {
            id: answer.user_id,
            user_type: answer.user_type,
        };
        self.session = Some(Session {
            token: answer.token,
            user: user.clone(),
        });
        Ok(user)
    }

    /// The logged-in user, or `None`.
    ///
    /// ```no_run
    /// # let client = rafiki_client::Client::new("127.0.0.1", 3000);
    /// if let Some(user) = client.get_current_user() {
    ///     println!("{} is a {}", user.id, user.user_type);
    /// }
    /// ```
    pub fn get_current_user(&self) -> Option<&CurrentUser> {
        self.session.as_ref().map(|s| &s.user)
    }

    /// Forgets the login session (tokens are not revoked on the server: they expire).
    ///
    /// ```no_run
    /// # let mut client = rafiki_client::Client::new("127.0.0.1", 3000);
    /// client.logout();
    /// assert!(client.get_current_user().is_none());
    /// ```
    pub fn logout(&mut self) {
        self.session = None;
    }

    /// The current session (token and user), to save and restore later.
    ///
    /// ```no_run
    /// # let client = rafiki_client::Client::new("127.0.0.1", 3000);
    /// let saved = client.session().cloned();
    /// ```
    pub fn session(&self) -> Option<&Session> {
        self.session.as_ref()
    }

    /// Uses a saved session: later calls are made with its token.
    ///
    /// ```no_run
    /// # fn saved() -> rafiki_client::Session { unimplemented!() }
    /// let mut client = rafiki_client::Client::new("127.0.0.1", 3000);
    /// client.set_session(saved());
    /// ```
    pub fn set_session(&mut self, session: Session) {
        self.session = Some(session);
    }

    // --- users ---

    /// Creates a user (admins only; only the superadmin creates admins).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// use rafiki_client::types::user::UserType;
    /// let user = client
    ///     .create_user("dev@example.com", "a-password", UserType::ModelDeveloper)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_user(
        &self,
        email: &str,
        password: &str,
        user_type: UserType,
    ) -> Result<CreatedUser> {
        let body = CreateUserRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            user_type: user_type.to_string(),
        };
        self.json(self.request(Method::POST, &["users"])?.json(&body))
            .await
    }

    /// Lists every user (admins only).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// for user in client.get_users().await? {
    ///     println!("{} {} banned: {:?}", user.email, user.user_type, user.banned_date);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_users(&self) -> Result<Vec<User>> {
        self.json(self.request(Method::GET, &["users"])?).await
    }

    /// Bans a user for good: they can no longer log in and their tokens stop working (admins
    /// only).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let banned = client.ban_user("dev@example.com").await?;
    /// assert!(banned.banned_date.is_some());
    /// # Ok(()) }
    /// ```
    pub async fn ban_user(&self, email: &str) -> Result<User> {
        let body = BanUserRequest {
            email: email.to_owned(),
        };
        self.json(self.request(Method::DELETE, &["users"])?.json(&body))
            .await
    }

    // --- datasets ---

    /// Creates a dataset from a local file (`dataset_path`, streamed from disk) or from a
    /// `dataset_url` the server downloads. Give one of the two.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// use std::path::Path;
    /// let train = client
    ///     .create_dataset("wine-train", "TABULAR_CLASSIFICATION", Some(Path::new("data/wine_train.csv")), None)
    ///     .await?;
    /// let remote = client
    ///     .create_dataset("remote", "TABULAR_CLASSIFICATION", None, Some("https://example.com/wine.csv"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_dataset(
        &self,
        name: &str,
        task: &str,
        dataset_path: Option<&Path>,
        dataset_url: Option<&str>,
    ) -> Result<CreatedDataset> {
        self.upload_dataset(name, task, dataset_path, dataset_url, None)
            .await
    }

    /// [`Client::create_dataset`] from a file, calling `progress(sent, total)` as it streams.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// use std::{path::Path, sync::Arc};
    /// let progress = Arc::new(|sent: u64, total: u64| eprintln!("{sent}/{total} bytes"));
    /// client
    ///     .create_dataset_with_progress("big", "IMAGE_CLASSIFICATION", Path::new("big.zip"), progress)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn create_dataset_with_progress(
        &self,
        name: &str,
        task: &str,
        dataset_path: &Path,
        progress: Progress,
    ) -> Result<CreatedDataset> {
        self.upload_dataset(name, task, Some(dataset_path), None, Some(progress))
            .await
    }

    async fn upload_dataset(
        &self,
        name: &str,
        task: &str,
        dataset_path: Option<&Path>,
        dataset_url: Option<&str>,
        progress: Option<Progress>,
    ) -> Result<CreatedDataset> {
        let mut form = Form::new()
            .text("name", name.to_owned())
            .text("task", task.to_owned());
        if let Some(url) = dataset_url {
            form = form.text("dataset_url", url.to_owned());
        }
        if let Some(path) = dataset_path {
            form = form.part("dataset", file_part(path, progress).await?);
        }
        self.json(self.request(Method::POST, &["datasets"])?.multipart(form))
            .await
    }

    /// Lists the caller's datasets (every user's for admins), optionally of one task.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let datasets = client.get_datasets(Some("IMAGE_CLASSIFICATION")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_datasets(&self, task: Option<&str>) -> Result<Vec<Dataset>> {
        let req = self.request(Method::GET, &["datasets"])?;
        self.json(with_query(req, &[("task", task)])).await
    }

    // --- models ---

    /// Uploads a model: one Python file defining `model_class`. `dependencies` is sent as JSON
    /// text (`None` sends `null`, meaning none), `access_right` defaults to PRIVATE in
    /// Rafiki (`ModelAccessRight::default()`), `docker_image` to the server's worker image.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// use std::path::Path;
    /// use rafiki_client::types::model::{Dependencies, ModelAccessRight};
    /// let deps = Dependencies::from([("scikit-learn".to_owned(), "1.5.2".to_owned())]);
    /// let model = client
    ///     .create_model(
    ///         "mlp",
    ///         "TABULAR_CLASSIFICATION",
    ///         Path::new("examples/models/tabular_classification/SkMlpClf.py"),
    ///         "SkMlpClf",
    ///         Some(&deps),
    ///         ModelAccessRight::default(),
    ///         None,
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[allow(clippy::too_many_arguments)] // Rafiki's signature, argument for argument.
    pub async fn create_model(
        &self,
        name: &str,
        task: &str,
        model_file_path: &Path,
        model_class: &str,
        dependencies: Option<&Dependencies>,
        access_right: ModelAccessRight,
        docker_image: Option<&str>,
    ) -> Result<ModelRef> {
        self.create_model_with_pins(
            name,
            task,
            model_file_path,
            model_class,
            dependencies,
            access_right,
            docker_image,
            None,
        )
        .await
    }

    /// [`Client::create_model`] with the model's `dependency_pins` (an addition to Rafiki):
    /// what workers do with a pinned dependency that has no distribution for their Python,
    /// `strict` (the model fails, naming the nearest installable versions) or `nearest`
    /// (the nearest release is installed instead, with a warning). `None` leaves it to the
    /// server's `RAFIKI_DEPENDENCY_PINS`.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// use std::path::Path;
    /// use rafiki_client::types::model::{Dependencies, DependencyPins, ModelAccessRight};
    /// let deps = Dependencies::from([("scikit-learn".to_owned(), "0.20.0".to_owned())]);
    /// let model = client
    ///     .create_model_with_pins(
    ///         "old-mlp",
    ///         "TABULAR_CLASSIFICATION",
    ///         Path::new("examples/models/tabular_classification/SkMlpClf.py"),
    ///         "SkMlpClf",
    ///         Some(&deps),
    ///         ModelAccessRight::default(),
    ///         None,
    ///         Some(DependencyPins::Nearest),
    ///     )
    ///     .await?;
    /// # Ok(()) }
    /// ```
    #[allow(clippy::too_many_arguments)] // Rafiki's arguments, then the addition.
    pub async fn create_model_with_pins(
        &self,
        name: &str,
        task: &str,
        model_file_path: &Path,
        model_class: &str,
        dependencies: Option<&Dependencies>,
        access_right: ModelAccessRight,
        docker_image: Option<&str>,
        dependency_pins: Option<DependencyPins>,
    ) -> Result<ModelRef> {
        let dependencies = serde_json::to_string(&dependencies)
            .map_err(|e| ClientError::InvalidArgument(format!("dependencies: {e}")))?;
        let mut form = Form::new()
            .text("name", name.to_owned())
            .text("task", task.to_owned())
            .text("model_class", model_class.to_owned())
            .text("dependencies", dependencies)
            .text("access_right", access_right.to_string());
        if let Some(image) = docker_image {
            form = form.text("docker_image", image.to_owned());
        }
        if let Some(pins) = dependency_pins {
            form = form.text("dependency_pins", pins.to_string());
        }
        form = form.part("model_file_bytes", file_part(model_file_path, None).await?);
        self.json(self.request(Method::POST, &["models"])?.multipart(form))
            .await
    }

    /// One model's details.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, model_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let model = client.get_model(model_id).await?;
    /// println!("{} ({}) by {}", model.name, model.model_class, model.user_id);
    /// # Ok(()) }
    /// ```
    pub async fn get_model(&self, model_id: Uuid) -> Result<Model> {
        let id = model_id.to_string();
        self.json(self.request(Method::GET, &["models", &id])?)
            .await
    }

    /// Saves a model's file to `out_model_file_path` (streamed; the file appears whole or not
    /// at all); returns the model's details.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, model_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let model = client
    ///     .download_model_file(model_id, std::path::Path::new("model.py"))
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn download_model_file(
        &self,
        model_id: Uuid,
        out_model_file_path: &Path,
    ) -> Result<Model> {
        let id = model_id.to_string();
        let req = self.request(Method::GET, &["models", &id, "model_file"])?;
        let res = self.send(req).await?;
        expect_content_type(&res, "application/octet-stream")?;
        save_body(res, out_model_file_path).await?;
        self.get_model(model_id).await
    }

    /// Lists the models the caller may use (own or public), optionally of one task.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let models = client.get_available_models(Some("TABULAR_CLASSIFICATION")).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_available_models(&self, task: Option<&str>) -> Result<Vec<AvailableModel>> {
        let req = self.request(Method::GET, &["models", "available"])?;
        self.json(with_query(req, &[("task", task)])).await
    }

    /// Deletes a model that no train job uses (owner or admins).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, model_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let deleted = client.delete_model(model_id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn delete_model(&self, model_id: Uuid) -> Result<ModelRef> {
        let id = model_id.to_string();
        self.json(self.request(Method::DELETE, &["models", &id])?)
            .await
    }

    // --- train jobs ---

    /// Creates and starts a train job. `budget` is `{BudgetOption: amount}`; this client
    /// fills in `TIME_HOURS` = 0.1 and `GPU_COUNT` = 0 where it has none, as Rafiki's did.
    /// `model_ids` = `None` trains every model available to the caller for `task`.
    /// `train_args` are passed to every model's `train()`.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, train: uuid::Uuid, val: uuid::Uuid) -> rafiki_client::Result<()> {
    /// use rafiki_client::{Budget, BudgetOption};
    /// let budget = Budget::from([(BudgetOption::MODEL_TRIAL_COUNT.to_owned(), 5.into())]);
    /// let job = client
    ///     .create_train_job(
    ///         "wine",
    ///         "TABULAR_CLASSIFICATION",
    ///         train,
    ///         val,
    ///         budget,
    ///         None,
    ///         Some(serde_json::json!({"target": "target"})),
    ///     )
    ///     .await?;
    /// println!("{} version {}", job.app, job.app_version);
    /// # Ok(()) }
    /// ```
    #[allow(clippy::too_many_arguments)] // Rafiki's signature, argument for argument.
    pub async fn create_train_job(
        &self,
        app: &str,
        task: &str,
        train_dataset_id: Uuid,
        val_dataset_id: Uuid,
        budget: Budget,
        model_ids: Option<Vec<Uuid>>,
        train_args: Option<serde_json::Value>,
    ) -> Result<TrainJobRef> {
        let model_ids = match model_ids {
            Some(ids) => ids,
            None => self
                .get_available_models(Some(task))
                .await?
                .into_iter()
                .map(|m| m.id)
                .collect(),
        };
        let body = CreateTrainJobRequest {
            app: app.to_owned(),
            task: task.to_owned(),
            train_dataset_id,
            val_dataset_id,
            budget: train_budget(budget),
            model_ids,
            train_args,
        };
        self.json(self.request(Method::POST, &["train_jobs"])?.json(&body))
            .await
    }

    /// Lists a user's train jobs, newest first (another user's only for admins).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let me = client.get_current_user().expect("logged in").id;
    /// let jobs = client.get_train_jobs_by_user(me).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_train_jobs_by_user(&self, user_id: Uuid) -> Result<Vec<TrainJob>> {
        let req = self.request(Method::GET, &["train_jobs"])?;
        let user_id = user_id.to_string();
        self.json(with_query(req, &[("user_id", Some(&user_id))]))
            .await
    }

    /// Lists the caller's train jobs of `app`, highest version first.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let versions = client.get_train_jobs_of_app("wine").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_train_jobs_of_app(&self, app: &str) -> Result<Vec<TrainJob>> {
        self.json(self.request(Method::GET, &["train_jobs", app])?)
            .await
    }

    /// One of the caller's train jobs; `app_version` = [`LATEST`] (-1) for the latest.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let job = client.get_train_job("wine", rafiki_client::LATEST).await?;
    /// println!("{:?}", job.status);
    /// # Ok(()) }
    /// ```
    pub async fn get_train_job(&self, app: &str, app_version: i32) -> Result<TrainJob> {
        let v = app_version.to_string();
        self.json(self.request(Method::GET, &["train_jobs", app, &v])?)
            .await
    }

    /// Stops a train job; it reads STOPPED and its workers are gone when this returns.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// client.stop_train_job("wine", rafiki_client::LATEST).await?;
    /// # Ok(()) }
    /// ```
    pub async fn stop_train_job(&self, app: &str, app_version: i32) -> Result<TrainJobRef> {
        let v = app_version.to_string();
        self.json(self.request(Method::POST, &["train_jobs", app, &v, "stop"])?)
            .await
    }

    // --- trials ---

    /// One trial.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let trial = client.get_trial(trial_id).await?;
    /// println!("{:?} {:?}", trial.status, trial.score);
    /// # Ok(()) }
    /// ```
    pub async fn get_trial(&self, trial_id: Uuid) -> Result<Trial> {
        let id = trial_id.to_string();
        self.json(self.request(Method::GET, &["trials", &id])?)
            .await
    }

    /// The best completed trials with saved parameters, by descending score (Rafiki's default
    /// `max_count` is 2).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let best = client
    ///     .get_best_trials_of_train_job("wine", rafiki_client::LATEST, 2)
    ///     .await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_best_trials_of_train_job(
        &self,
        app: &str,
        app_version: i32,
        max_count: u32,
    ) -> Result<Vec<Trial>> {
        let v = app_version.to_string();
        let req = self.request(Method::GET, &["train_jobs", app, &v, "trials"])?;
        let max_count = max_count.to_string();
        self.json(with_query(
            req,
            &[("type", Some("best")), ("max_count", Some(&max_count))],
        ))
        .await
    }

    /// Every trial of a train job (up to the server's page of 1000), newest first.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let trials = client.get_trials_of_train_job("wine", rafiki_client::LATEST).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_trials_of_train_job(&self, app: &str, app_version: i32) -> Result<Vec<Trial>> {
        let v = app_version.to_string();
        self.json(self.request(Method::GET, &["train_jobs", app, &v, "trials"])?)
            .await
    }

    /// A trial's logs: the plots its model declared, its metrics and messages, in logging
    /// order.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let logs = client.get_trial_logs(trial_id).await?;
    /// for m in &logs.messages {
    ///     println!("{} {}", m.time, m.message);
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_trial_logs(&self, trial_id: Uuid) -> Result<TrialLogs> {
        let id = trial_id.to_string();
        self.json(self.request(Method::GET, &["trials", &id, "logs"])?)
            .await
    }

    /// A trial's saved parameters: the stored bytes and their decoded form
    /// (`docs/parameters.md`).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, trial_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let saved = client.get_trial_parameters(trial_id).await?;
    /// for (name, value) in saved.params.iter() {
    ///     println!("{name}: {}", value.kind());
    /// }
    /// std::fs::write("params.bin", &saved.bytes).unwrap();
    /// # Ok(()) }
    /// ```
    pub async fn get_trial_parameters(&self, trial_id: Uuid) -> Result<TrialParameters> {
        let id = trial_id.to_string();
        let bytes = self
            .bytes(self.request(Method::GET, &["trials", &id, "parameters"])?)
            .await?;
        let params = decode_params(&bytes)?;
        Ok(TrialParameters { bytes, params })
    }

    // --- inference jobs ---

    /// Deploys the best trial of each model of a stopped train job behind a predictor.
    /// `budget` is `{InferenceBudgetOption: amount}`; `GPU_COUNT` defaults to 0.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let job = client
    ///     .create_inference_job("wine", rafiki_client::LATEST, rafiki_client::Budget::new())
    ///     .await?;
    /// println!("predictor at {}", job.predictor_host);
    /// # Ok(()) }
    /// ```
    pub async fn create_inference_job(
        &self,
        app: &str,
        app_version: i32,
        budget: Budget,
    ) -> Result<CreatedInferenceJob> {
        let mut full = Budget::from([(InferenceBudgetOption::GPU_COUNT.to_owned(), 0.into())]);
        full.extend(budget);
        let body = CreateInferenceJobRequest {
            app: app.to_owned(),
            app_version,
            budget: full,
        };
        self.json(self.request(Method::POST, &["inference_jobs"])?.json(&body))
            .await
    }

    /// Lists a user's inference jobs (another user's only for admins).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client, user_id: uuid::Uuid) -> rafiki_client::Result<()> {
    /// let jobs = client.get_inference_jobs_by_user(user_id).await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_inference_jobs_by_user(&self, user_id: Uuid) -> Result<Vec<InferenceJob>> {
        let req = self.request(Method::GET, &["inference_jobs"])?;
        let user_id = user_id.to_string();
        self.json(with_query(req, &[("user_id", Some(&user_id))]))
            .await
    }

    /// Lists the caller's inference jobs of `app`, newest first.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let jobs = client.get_inference_jobs_of_app("wine").await?;
    /// # Ok(()) }
    /// ```
    pub async fn get_inference_jobs_of_app(&self, app: &str) -> Result<Vec<InferenceJob>> {
        self.json(self.request(Method::GET, &["inference_jobs", app])?)
            .await
    }

    /// The running (STARTED or RUNNING) inference job of a train job, with its
    /// `predictor_host`; `InvalidRunningInferenceJobError` when there is none.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let job = client.get_running_inference_job("wine", rafiki_client::LATEST).await?;
    /// println!("{}", job.predictor_host);
    /// # Ok(()) }
    /// ```
    pub async fn get_running_inference_job(
        &self,
        app: &str,
        app_version: i32,
    ) -> Result<RunningInferenceJob> {
        let v = app_version.to_string();
        self.json(self.request(Method::GET, &["inference_jobs", app, &v])?)
            .await
    }

    /// Stops an inference job; it reads STOPPED when this returns.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// client.stop_inference_job("wine", rafiki_client::LATEST).await?;
    /// # Ok(()) }
    /// ```
    pub async fn stop_inference_job(&self, app: &str, app_version: i32) -> Result<InferenceJobRef> {
        let v = app_version.to_string();
        self.json(self.request(Method::POST, &["inference_jobs", app, &v, "stop"])?)
            .await
    }

    // --- administration ---

    /// Stops every live train and inference job of every user (superadmin only).
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// let stopped = client.stop_all_jobs().await?;
    /// println!("{} train jobs stopped", stopped.train_jobs.len());
    /// # Ok(()) }
    /// ```
    pub async fn stop_all_jobs(&self) -> Result<StoppedJobs> {
        self.json(self.request(Method::POST, &["actions", "stop_all_jobs"])?)
            .await
    }

    /// Lists audit events (who did what, from where; admins only), newest first, as `query`
    /// filters and pages them.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// use rafiki_client::types::audit::AuditAction;
    /// let query = rafiki_client::AuditQuery {
    ///     action: Some(AuditAction::TrainJobStop),
    ///     ..Default::default()
    /// };
    /// for event in client.get_audit_events(&query).await? {
    ///     println!("{} {:?} {}", event.time, event.actor_id, event.target_id.unwrap_or_default());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn get_audit_events(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let actor = query.actor.map(|id| id.to_string());
        let since = query.since.map(|t| t.to_rfc3339());
        let until = query.until.map(|t| t.to_rfc3339());
        let limit = query.limit.map(|n| n.to_string());
        let offset = query.offset.map(|n| n.to_string());
        let params = [
            ("actor", actor.as_deref()),
            ("action", query.action.map(<&str>::from)),
            ("since", since.as_deref()),
            ("until", until.as_deref()),
            ("limit", limit.as_deref()),
            ("offset", offset.as_deref()),
        ];
        self.json(with_query(self.request(Method::GET, &["audit"])?, &params))
            .await
    }

    // --- predictions ---

    /// Sends queries to a predictor (`predictor_host` is the `host:port` of
    /// [`Client::get_running_inference_job`]; a full `http(s)://` URL also works). One
    /// `PredictRequest::Query` answers in `prediction`, `PredictRequest::Queries` in
    /// `predictions`. No login is needed and the admin token is not sent.
    ///
    /// ```no_run
    /// # async fn run(client: rafiki_client::Client) -> rafiki_client::Result<()> {
    /// use rafiki_client::types::inference::PredictRequest;
    /// let host = client.get_running_inference_job("wine", -1).await?.predictor_host;
    /// let one = client
    ///     .predict(&host, &PredictRequest::Query(serde_json::json!({"alcohol": 13.2})))
    ///     .await?;
    /// println!("{:?}", one.prediction);
    /// # Ok(()) }
    /// ```
    pub async fn predict(
        &self,
        predictor_host: &str,
        request: &PredictRequest,
    ) -> Result<PredictResponse> {
        let base = if predictor_host.contains("://") {
            predictor_host.trim_end_matches('/').to_owned()
        } else {
            format!("http://{predictor_host}")
        };
        let url = Url::parse(&format!("{base}/predict")).map_err(|e| {
            ClientError::InvalidArgument(format!("predictor host {predictor_host:?}: {e}"))
        })?;
        self.json(self.http.post(url).json(request)).await
    }

    // --- private ---

    fn url(&self, segments: &[&str]) -> Result<Url> {
        let host = if self.admin_host.contains(':') && !self.admin_host.starts_with('[') {
            format!("[{}]", self.admin_host)
        } else {
            self.admin_host.clone()
        };
        let invalid = |e: String| ClientError::InvalidArgument(format!("admin host {host:?}: {e}"));
        let mut url = Url::parse(&format!("http://{host}:{}/", self.admin_port))
            .map_err(|e| invalid(e.to_string()))?;
        url.path_segments_mut()
            .map_err(|()| invalid("not a base URL".to_owned()))?
            .clear()
            .extend(segments);
        Ok(url)
    }

    fn request(&self, method: Method, segments: &[&str]) -> Result<RequestBuilder> {
        let mut req = self.http.request(method, self.url(segments)?);
        if let Some(session) = &self.session {
            req = req.bearer_auth(&session.token);
        }
        Ok(req)
    }

    /// Sends a request; any answer but 200 becomes the server's error.
    async fn send(&self, req: RequestBuilder) -> Result<Response> {
        let (http, request) = req.build_split();
        let request = request.map_err(|e| ClientError::InvalidArgument(e.to_string()))?;
        let url = request.url().to_string();
        let res = http
            .execute(request)
            .await
            .map_err(|e| ClientError::connection(&url, &e))?;
        if res.status() != StatusCode::OK {
            let status = res.status().as_u16();
            let body = res
                .bytes()
                .await
                .map_err(|e| ClientError::connection(&url, &e))?;
            return Err(ClientError::from_response(status, &body));
        }
        Ok(res)
    }

    async fn json<T: DeserializeOwned>(&self, req: RequestBuilder) -> Result<T> {
        let res = self.send(req).await?;
        expect_content_type(&res, "application/json")?;
        let url = res.url().to_string();
        let body = res
            .bytes()
            .await
            .map_err(|e| ClientError::connection(&url, &e))?;
        serde_json::from_slice(&body).map_err(|e| {
            ClientError::InvalidResponse(format!(
                "{url} answered JSON this client cannot read: {e}"
            ))
        })
    }

    async fn bytes(&self, req: RequestBuilder) -> Result<Vec<u8>> {
        let res = self.send(req).await?;
        expect_content_type(&res, "application/octet-stream")?;
        let url = res.url().to_string();
        let body = res
            .bytes()
            .await
            .map_err(|e| ClientError::connection(&url, &e))?;
        Ok(body.to_vec())
    }
}

/// The train budget as sent: Rafiki's client defaults under the caller's values.
fn train_budget(budget: Budget) -> Budget {
    let mut full = Budget::from([
        (BudgetOption::TIME_HOURS.to_owned(), 0.1.into()),
        (BudgetOption::GPU_COUNT.to_owned(), 0.into()),
    ]);
    full.extend(budget);
    full
}

/// Adds the query parameters that have a value.
fn with_query(req: RequestBuilder, params: &[(&str, Option<&str>)]) -> RequestBuilder {
    let present: Vec<(&str, &str)> = params
        .iter()
        .filter_map(|(k, v)| v.map(|v| (*k, v)))
        .collect();
    if present.is_empty() {
        req
    } else {
        req.query(&present)
    }
}

/// The filters and page of [`Client::get_audit_events`]; the default asks for the newest
/// events, as many as the server gives in one page.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Only events of this user.
    pub actor: Option<Uuid>,
    /// Only events of this action.
    pub action: Option<AuditAction>,
    /// Only events at or after this time.
    pub since: Option<chrono::DateTime<chrono::Utc>>,
    /// Only events before this time.
    pub until: Option<chrono::DateTime<chrono::Utc>>,
    /// At most this many events.
    pub limit: Option<u32>,
    /// After skipping this many.
    pub offset: Option<u64>,
}

/// Checks the answer's content type (parameters after `;` ignored, as Rafiki's client did).
fn expect_content_type(res: &Response, expected: &str) -> Result<()> {
    let actual = res
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if actual == expected {
        Ok(())
    } else {
        Err(ClientError::InvalidResponse(format!(
            "{} answered with content type {actual:?}, expected {expected:?}",
            res.url()
        )))
    }
}

/// A multipart file part streaming `path` from disk.
async fn file_part(path: &Path, progress: Option<Progress>) -> Result<Part> {
    let file = tokio::fs::File::open(path)
        .await
        .map_err(|e| ClientError::io(path, e))?;
    let total = file
        .metadata()
        .await
        .map_err(|e| ClientError::io(path, e))?
        .len();
    let stream = tokio_util::io::ReaderStream::with_capacity(file, UPLOAD_CHUNK);
    let body = match progress {
        Some(progress) => {
            let mut sent = 0u64;
            reqwest::Body::wrap_stream(stream.inspect_ok(move |chunk| {
                sent += chunk.len() as u64;
                progress(sent, total);
            }))
        }
        None => reqwest::Body::wrap_stream(stream),
    };
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "file".to_owned());
    Part::stream_with_length(body, total)
        .file_name(file_name)
        .mime_str("application/octet-stream")
        .map_err(|e| ClientError::InvalidArgument(e.to_string()))
}

/// Streams a response body into `path` through a temporary beside it, renamed into place
/// once complete, so a failed download leaves nothing behind.
async fn save_body(mut res: Response, path: &Path) -> Result<()> {
    let url = res.url().to_string();
    let file_name = path.file_name().ok_or_else(|| {
        ClientError::InvalidArgument(format!("{} is not a file path", path.display()))
    })?;
    let mut temp_name = std::ffi::OsString::from(".");
    temp_name.push(file_name);
    temp_name.push(format!(".{}.part", Uuid::new_v4().simple()));
    let temp: PathBuf = path.with_file_name(temp_name);
    let result = async {
        let mut file = tokio::fs::File::create(&temp)
            .await
            .map_err(|e| ClientError::io(&temp, e))?;
        while let Some(chunk) = res
            .chunk()
            .await
            .map_err(|e| ClientError::connection(&url, &e))?
        {
            file.write_all(&chunk)
                .await
                .map_err(|e| ClientError::io(&temp, e))?;
        }
        file.flush().await.map_err(|e| ClientError::io(&temp, e))?;
        drop(file);
        tokio::fs::rename(&temp, path)
            .await
            .map_err(|e| ClientError::io(path, e))
    }
    .await;
    if result.is_err() {
        let _ = tokio::fs::remove_file(&temp).await;
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn train_budgets_get_rafikis_client_defaults_under_the_callers_values() {
        assert_eq!(
            serde_json::to_value(train_budget(Budget::new())).unwrap(),
            json!({"TIME_HOURS": 0.1, "GPU_COUNT": 0})
        );
        let mine = Budget::from([
            ("MODEL_TRIAL_COUNT".to_owned(), json!(3)),
            ("GPU_COUNT".to_owned(), json!(2)),
        ]);
        assert_eq!(
            serde_json::to_value(train_budget(mine)).unwrap(),
            json!({"TIME_HOURS": 0.1, "GPU_COUNT": 2, "MODEL_TRIAL_COUNT": 3})
        );
    }

    #[test]
    fn paths_are_percent_encoded_segments() {
        let client = Client::new("127.0.0.1", 3000);
        let url = client
            .url(&["train_jobs", "my app?#", "-1", "trials"])
            .unwrap();
        assert_eq!(
            url.as_str(),
            "http://127.0.0.1:3000/train_jobs/my%20app%3F%23/-1/trials"
        );
        let v6 = Client::new("::1", 4000).url(&["users"]).unwrap();
        assert_eq!(v6.as_str(), "http://[::1]:4000/users");
        let err = Client::new("bad host", 1).url(&["users"]).unwrap_err();
        assert_eq!(err.name(), "InvalidArgumentError");
    }

    #[test]
    fn the_debug_form_hides_the_token() {
        let mut client = Client::new("h", 1);
        client.set_session(Session {
            token: "secret-token".into(),
            user: CurrentUser {
                id: Uuid::nil(),
                user_type: UserType::Admin,
            },
        });
        let shown = format!("{client:?}");
        assert!(
            !shown.contains("secret-token") && shown.contains("Admin"),
            "{shown}"
        );
    }
}
