//! Integration tests of the admin through HTTP, each against a fresh database.

mod audit;
mod auth;
mod console;
mod console_jobs;
mod console_models;
mod console_trials;
mod dataset_urls;
mod datasets;
mod db_outage;
mod docker;
mod environments;
mod faults;
mod gpu_queue;
mod helpers;
mod inference_jobs;
mod models;
mod multinode;
mod nul_text;
mod observability;
mod quotas;
mod security;
mod server;
mod slow_clients;
mod swarm;
mod train_jobs;
mod users;
