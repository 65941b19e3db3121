//! Authentication and authorisation: password hashing, JWTs, the in-memory user directory
//! (which users exist, their types and bans), login rate limits, and the extractors that put a
//! route's role rule in its handler's signature: users' in [`extract`], services' (the internal
//! API's callers) in [`service`].

pub mod directory;
pub mod extract;
pub mod jwt;
pub mod limits;
pub mod password;
pub mod service;
