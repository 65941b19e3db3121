//! The request the examples make of an advisor, as the admin does for one worker: the whole
//! history passed back in, at a fixed time at the start of the budget.

use chrono::{TimeZone, Utc};
use rafiki_advisor::{Budget, PastTrial, Request};
use rafiki_types::knob::KnobConfig;

/// A request for the trial after `history`.
pub fn request<'a>(
    config: &'a KnobConfig,
    budget: Budget,
    history: &'a [PastTrial],
    seed: u64,
) -> Request<'a> {
    let started_at = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    Request {
        config,
        budget,
        history,
        trial_no: history.len() as u32 + 1,
        started_at,
        now: started_at,
        seed,
        worker_id: None,
    }
}
