//! Login rate limits: how many `POST /tokens` attempts one client address and one account may
//! make per minute, so passwords cannot be guessed at the speed of the hardware.
//!
//! Every attempt counts, right or wrong, and it is counted *before* the password is checked:
//! counting only failures would need the verdict first, and a burst of concurrent guesses would
//! all be let through before the first failure was recorded. The limits are token buckets
//! (GCRA, the `governor` crate): `n` per minute allows a burst of `n`, then one more every
//! `60/n` seconds. An account's limit can be spent by anyone who knows its email, so a flood
//! of wrong guesses also keeps its owner out while it lasts; that is the price of limiting per
//! account at all, and the per-address limit keeps one attacker from doing it cheaply.
//!
//! The client address is the TCP peer. IPv6 clients are limited per /64 (one customer's
//! network usually holds a whole /64), and IPv4-mapped IPv6 addresses count as their IPv4
//! address. Behind a reverse proxy every client has the proxy's address.

use std::net::{IpAddr, Ipv6Addr};
use std::num::NonZeroU32;
use std::time::Duration;

use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use rafiki_types::error::ErrorName;
use sha2::{Digest, Sha256};

use crate::error::ApiError;

/// The per-address and per-account login limits.
pub struct LoginLimits {
    per_address: Option<DefaultKeyedRateLimiter<IpAddr>>,
    /// Keyed by a digest of the lowercased email, so a key costs 32 bytes however long the
    /// email a client sends.
    per_account: Option<DefaultKeyedRateLimiter<[u8; 32]>>,
    clock: DefaultClock,
}

/// A login refused because a limit is spent: 429 `TooManyRequestsError` with `Retry-After`.
#[derive(Debug)]
pub struct TooManyAttempts {
    /// Which limit: "from this address" or "for this account".
    scope: &'static str,
    /// When the next attempt will be allowed.
    wait: Duration,
}

impl LoginLimits {
    /// Limits of `per_address` and `per_account` attempts per minute; 0 turns a limit off.
    pub fn new(per_address: u32, per_account: u32) -> Self {
        LoginLimits {
            per_address: keyed(per_address),
            per_account: keyed(per_account),
            clock: DefaultClock::default(),
        }
    }

    /// Counts one login attempt from `address` for `email`, or refuses it. The account's
    /// allowance is not spent on attempts the address limit refuses.
    pub fn check(&self, address: IpAddr, email: &str) -> Result<(), TooManyAttempts> {
        if let Some(limiter) = &self.per_address {
            limiter
                .check_key(&client_key(address))
                .map_err(|not_until| TooManyAttempts {
                    scope: "from this address",
                    wait: not_until.wait_time_from(self.clock.now()),
                })?;
        }
        if let Some(limiter) = &self.per_account {
            let account: [u8; 32] = Sha256::digest(email.to_lowercase().as_bytes()).into();
            limiter
                .check_key(&account)
                .map_err(|not_until| TooManyAttempts {
                    scope: "for this account",
                    wait: not_until.wait_time_from(self.clock.now()),
                })?;
        }
        Ok(())
    }

    /// Forgets addresses and accounts whose allowance is full again, so the tables hold only
    /// recent clients. Called periodically by the server.
    pub fn forget_idle(&self) {
        if let Some(limiter) = &self.per_address {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
        if let Some(limiter) = &self.per_account {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// A limiter of `per_minute` attempts per key, or none for 0.
fn keyed<K: Clone + Eq + std::hash::Hash>(per_minute: u32) -> Option<DefaultKeyedRateLimiter<K>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

/// The key of a client address: IPv4 as is, IPv6 by its /64 network.
fn client_key(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V4(_) => address,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from_bits(v6.to_bits() & !((1u128 << 64) - 1))),
        },
    }
}

impl TooManyAttempts {
    /// Whole seconds until the next attempt is allowed, at least 1 (`Retry-After` has no
    /// fractions, and 0 would invite an immediate retry that is still refused).
    pub fn retry_after_secs(&self) -> u64 {
        let whole = self.wait.as_secs() + u64::from(self.wait.subsec_nanos() > 0);
        whole.max(1)
    }
}

impl TooManyAttempts {
    /// What the client is told.
    pub fn message(&self) -> String {
        format!(
            "Too many login attempts {}; try again in {} s.",
            self.scope,
            self.retry_after_secs()
        )
    }
}

impl IntoResponse for TooManyAttempts {
    fn into_response(self) -> Response {
        let secs = self.retry_after_secs();
        let error = ApiError::new(ErrorName::TooManyRequestsError, self.message());
        ([(RETRY_AFTER, secs.to_string())], error).into_response()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_a_limit_per_64_and_mapped_ipv4_is_ipv4() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
    }

    #[test]
    fn retry_after_rounds_up_to_whole_seconds() {
        let wait = |wait| TooManyAttempts { scope: "", wait };
        assert_eq!(wait(Duration::from_millis(2500)).retry_after_secs(), 3);
        assert_eq!(wait(Duration::from_secs(3)).retry_after_secs(), 3);
        assert_eq!(wait(Duration::ZERO).retry_after_secs(), 1);
    }
}
