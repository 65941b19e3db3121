//! rafiki-admin: Rafiki's REST API server (`../shared/CONTRACT.md`). It is the only process
//! that touches Postgres; it authenticates users, enforces the role rules, and (as the issues
//! land) orchestrates train and inference jobs through a backend.
//!
//! `main.rs` is thin; everything is here so tests start the real server.

pub mod archive;
pub mod auth;
pub mod backend;
pub mod config;
pub mod dataset_url;
pub mod environments;
pub mod error;
pub mod extract;
pub mod gpus;
pub mod images;
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
