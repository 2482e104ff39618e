//! What fired and what failed, hour by hour over the last day, for the overview's chart.
//!
//! Counted from the engine's stream of past events as they close, in memory: the chart starts
//! empty when the daemon starts (the page says since when). Reading a day of past events back
//! from the store for every page view would cost a scan of the whole store.

use std::collections::BTreeMap;
use std::sync::Mutex;

use serde::Serialize;
use tickler_core::{Outcome, PastEvent, Timestamp, UnsentReason};

/// Hours the chart covers.
pub const HOURS: i64 = 24;
const HOUR_MS: i64 = 3_600_000;

/// Counts of one hour.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct HourCounts {
    pub sent: u64,
    /// Ended in a system error (a channel that kept failing).
    pub failed: u64,
    /// Ended unsent for any other reason (completed, moved, stale…): decided, not broken.
    pub suppressed: u64,
}

/// One bar of the chart: the hour it starts at and its counts.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Hour {
    pub start: Timestamp,
    pub counts: HourCounts,
}

#[derive(Default)]
pub struct Activity {
    /// Counts by hour (milliseconds since the epoch / one hour).
    hours: Mutex<BTreeMap<i64, HourCounts>>,
}

impl Activity {
    /// Counts `past` in the hour it closed.
    pub fn record(&self, past: &PastEvent) {
        let hour = past.closed_at.as_millis().div_euclid(HOUR_MS);
        let mut hours = self.hours.lock().expect("activity lock");
        let counts = hours.entry(hour).or_default();
        match &past.outcome {
            Outcome::Sent { .. } => counts.sent += 1,
            Outcome::Unsent {
                reason: UnsentReason::SystemError,
                ..
            } => counts.failed += 1,
            Outcome::Unsent { .. } => counts.suppressed += 1,
        }
        // Keep a little more than the window: the engine's clock may be moved back.
        while hours.len() > 2 * HOURS as usize {
            hours.pop_first();
        }
    }

    /// The `HOURS` hours up to and including the one `now` is in, oldest first.
    pub fn last_day(&self, now: Timestamp) -> Vec<Hour> {
        let last = now.as_millis().div_euclid(HOUR_MS);
        let hours = self.hours.lock().expect("activity lock");
        (last - HOURS + 1..=last)
            .filter_map(|hour| {
                Some(Hour {
                    start: Timestamp::from_millis(hour * HOUR_MS)?,
                    counts: hours.get(&hour).copied().unwrap_or_default(),
                })
            })
            .collect()
    }
}
