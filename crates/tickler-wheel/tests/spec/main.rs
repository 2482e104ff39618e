//! The wheel's specification: scenarios, a sweep of every level boundary, and a seeded model test.

mod boundaries;
mod model;
mod scenarios;

/// A plausible wall-clock start: 2026-05-28T20:26:40Z in UTC milliseconds.
pub const START_MS: u64 = 1_780_000_000_000;
