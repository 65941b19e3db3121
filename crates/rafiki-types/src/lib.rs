//! Domain types shared by every Rafiki-rs crate: the wire DTOs of the contract, the status
//! enums with their transition tables, and the knob (search space) types. Serde only, no I/O,
//! so the admin, workers, predictor and clients agree on one definition.
//!
//! The `openapi` feature adds `utoipa` schemas for the admin's OpenAPI document.

pub mod dataset;
pub mod error;
pub mod inference;
pub mod integer;
pub mod internal;
pub mod knob;
pub mod model;
pub mod proposal;
pub mod status;
pub mod time;
pub mod train;
pub mod user;
