//! A Rust client of the Rafiki-rs admin: every method of Rafiki's Python client, with the same
//! names and defaults, typed with the DTOs of `rafiki-types`. The `rafiki` command-line client
//! in this crate is built on it.
//!
//! ```no_run
//! # async fn run() -> rafiki_client::Result<()> {
//! use rafiki_client::{Budget, BudgetOption, Client, LATEST};
//! use std::path::Path;
//!
//! let mut client = Client::new("127.0.0.1", 3000);
//! client.login("superadmin@rafiki", "rafiki").await?;
//! let task = "TABULAR_CLASSIFICATION";
//! let train = client.create_dataset("train", task, Some(Path::new("train.csv")), None).await?;
//! let val = client.create_dataset("val", task, Some(Path::new("val.csv")), None).await?;
//! let budget = Budget::from([(BudgetOption::MODEL_TRIAL_COUNT.to_owned(), 3.into())]);
//! client.create_train_job("app", task, train.id, val.id, budget, None, None).await?;
//! let best = client.get_best_trials_of_train_job("app", LATEST, 2).await?;
//! # Ok(()) }
//! ```
//!
//! Failures are [`ClientError`]s: the server's own errors keep its error name (e.g.
//! `InvalidTrainJobError`) and message; connection, file and decoding failures have names of
//! their own. Trial parameters are decoded by [`params`], a reader of the format in
//! `docs/parameters.md`.

mod client;
pub mod error;
pub mod params;

pub use client::{
    AuditQuery, Budget, BudgetOption, Client, CurrentUser, InferenceBudgetOption, JobId, Progress,
    Session, StoppedJobs, TrialParameters, LATEST,
};
pub use error::{ClientError, Result};
/// The wire types of the contract, as this client returns them.
pub use rafiki_types as types;
