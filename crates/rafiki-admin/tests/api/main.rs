//! Integration tests of the admin through HTTP, each against a fresh database.

mod auth;
mod datasets;
mod docker;
mod helpers;
mod inference_jobs;
mod models;
mod quotas;
mod server;
mod train_jobs;
mod uploads;
mod users;
