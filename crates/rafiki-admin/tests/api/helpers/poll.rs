//! Waiting for something to happen: a condition checked again and again until a deadline, so
//! that a test waits as long as it takes and no longer, and says what it waited for when it
//! fails. (A bare sleep guesses how long things take: too short is a flaky test, too long a
//! slow one.)

use std::fmt::Display;
use std::time::{Duration, Instant};

/// Checks every `every` until `check` answers `Ok`, and returns what it answered; `Err` is
/// what `check` saw instead. Past `within`, fails saying `what` was awaited and what was last
/// seen.
pub async fn until<T, Seen: Display>(
    what: &str,
    within: Duration,
    every: Duration,
    mut check: impl AsyncFnMut() -> Result<T, Seen>,
) -> T {
    let deadline = Instant::now() + within;
    loop {
        match check().await {
            Ok(done) => return done,
            Err(seen) => assert!(
                Instant::now() < deadline,
                "{what}: not within {within:?}; last seen: {seen}"
            ),
        }
        tokio::time::sleep(every).await;
    }
}
