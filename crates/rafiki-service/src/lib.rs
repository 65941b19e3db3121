//! `rafiki-service`: what the services the admin launches (the worker, the predictor) share,
//! so that neither depends on the other's crate.
//!
//! - [`client`]: the internal-API client (`docs/internal-api.md`), with its retries and the
//!   meaning of a 401 (the admin stopped the service).
//! - [`config`]: the settings every service reads alike (admin URL, token, id, where it
//!   listens) and the client's retry policy; each service adds its own variables.
//! - [`predict_secret`]: the inference job's secret, which the predictor sends and inference
//!   workers check.
//! - [`logging`], [`exit`]: a service's `main`: its log set-up (the admin's too), and how the
//!   end of its work becomes an exit code.
//! - [`request_id`]: the `x-request-id` of HTTP requests, for the admin's, the predictor's and
//!   the inference workers' servers alike.
//! - [`metrics`]: what the admin's and the predictor's `/metrics` share (the scrape's answer,
//!   bounded label values of requests).
//!
//! It depends only on `rafiki-types` (and `axum` for [`request_id`]'s middleware,
//! `prometheus-client` for [`metrics`]); the services and the admin depend on it, never the
//! other way.

pub mod client;
pub mod config;
pub mod exit;
pub mod logging;
pub mod metrics;
pub mod predict_secret;
pub mod request_id;
