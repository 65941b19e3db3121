//! Integration tests of the admin through HTTP, each against a fresh database.

mod auth;
mod helpers;
mod server;
mod users;
