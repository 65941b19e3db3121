//! Authentication and authorisation: password hashing, JWTs, the in-memory ban list, and the
//! extractors that put a route's role rule in its handler's signature.

pub mod bans;
pub mod extract;
pub mod jwt;
pub mod password;
