//! rafiki-admin: Rafiki's REST API server (`../shared/CONTRACT.md`). It is the only process
//! that touches Postgres; it authenticates users and services, enforces the role rules, and
//! orchestrates train and inference jobs through a backend.
//!
//! Its seams, each crossed in one hop and only downward:
//! - [`routes`] parse and authorize: who may call is in each handler's signature (the user
//!   extractors of [`auth::extract`], the service extractors of [`auth::service`]); they read
//!   through `rafiki_store` and hold no transactions.
//! - [`orchestrator`] decides: jobs and their services written in one transaction and launched
//!   through a [`backend::Backend`], stops, supervision, and its answers to workers
//!   ([`orchestrator::workers`]). It fails with [`orchestrator::error::OrchestratorError`],
//!   which [`error::ApiError`] turns into the contract's error names with `From`.
//! - `rafiki_store` persists: every line of SQL is there.
//!
//! Beside them, [`metrics`] counts what the three do (its middleware on every route, its
//! counters called by routes and the orchestrator) and serves it to Prometheus.
//!
//! `main.rs` is thin; everything is here so tests start the real server.

pub mod archive;
pub mod audit;
pub mod auth;
pub mod backend;
pub mod cluster;
pub mod config;
pub mod console;
pub mod dataset_url;
pub mod environments;
pub mod error;
pub mod extract;
pub mod gpus;
pub mod images;
pub mod metrics;
pub mod openapi;
pub mod orchestrator;
pub mod paging;
pub mod python_check;
pub mod quotas;
pub mod routes;
pub mod sandbox;
pub mod startup;
pub mod state;
pub mod storage;
pub mod unparsable;
pub mod upload;
pub mod workers_python;
