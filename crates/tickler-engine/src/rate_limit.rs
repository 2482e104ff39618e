//! The fire-rate limit: at most `rate` wakes leave the timer in any one-second window (real
//! time), handed out smoothly.
//!
//! A plain token bucket holding a second's worth would let a herd out at twice the rate in its
//! first second (the full bucket, then the refill), so the window itself is kept: a log of the
//! recent grants, at most one entry per timer tick (or per message, for `OutgoingRate`, whose
//! window is a little longer than a second: see `OUTGOING_SLACK`). Within the window a small
//! bucket (a twentieth of a second's worth) spreads the wakes out, so a backlog drains as a
//! steady stream rather than one burst a second. Instants are arguments, so the arithmetic is
//! tested without a clock.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// The window the limit applies to.
const WINDOW: Duration = Duration::from_secs(1);
/// How much longer than a second the outgoing limit's window is. A message reaches its channel
/// a little after its grant, by a delay that varies (the task is scheduled, the channel's lock
/// taken); with a window of exactly one second, two grants one second apart could arrive less
/// than a second apart, one more than the limit within a second as the channel counts (the
/// 100k herd saw 5,001 against 5,000). Any second at the channel then holds at most the limit
/// as long as that delay varies by less than this; it costs 1 % of the drain rate at the limit.
const OUTGOING_SLACK: Duration = Duration::from_millis(10);
/// How many windows' fraction the smoothing bucket holds.
const SMOOTHING_PER_WINDOW: usize = 20;

pub(crate) struct RateLimit {
    rate: usize,
    /// At most `rate` grants within any span this long.
    window: Duration,
    tokens: f64,
    capacity: f64,
    last: Instant,
    /// Grants of the last window: when, and how many.
    granted: VecDeque<(Instant, usize)>,
    in_window: usize,
}

impl RateLimit {
    pub fn new(rate_per_s: u32, now: Instant) -> RateLimit {
        RateLimit::with_window(rate_per_s, WINDOW, now)
    }

    /// At most `rate_per_s` grants within any span of `window` (one second or more), refilled
    /// at `rate_per_s`.
    fn with_window(rate_per_s: u32, window: Duration, now: Instant) -> RateLimit {
        let rate = rate_per_s.max(1) as usize;
        let capacity = (rate / SMOOTHING_PER_WINDOW).max(1) as f64;
        RateLimit {
            rate,
            window,
            tokens: capacity,
            capacity,
            last: now,
            granted: VecDeque::new(),
            in_window: 0,
        }
    }

    /// How many of `wanted` wakes may go at `now`.
    pub fn take(&mut self, wanted: usize, now: Instant) -> usize {
        while let Some(&(at, count)) = self.granted.front() {
            if now.saturating_duration_since(at) < self.window {
                break;
            }
            self.in_window -= count;
            self.granted.pop_front();
        }
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate as f64).min(self.capacity);
        let granted = (self.tokens.floor() as usize)
            .min(wanted)
            .min(self.rate - self.in_window);
        if granted > 0 {
            self.tokens -= granted as f64;
            self.granted.push_back((now, granted));
            self.in_window += granted;
        }
        granted
    }

    /// How long until `take` can grant again (if nothing is given back meanwhile).
    pub fn wait(&self, now: Instant) -> Duration {
        if self.in_window >= self.rate {
            // The window is full: the oldest grant must leave it.
            return self.granted.front().map_or(Duration::ZERO, |(at, _)| {
                (*at + self.window).saturating_duration_since(now)
            });
        }
        let missing = (1.0 - self.tokens).max(0.0);
        Duration::from_secs_f64(missing / self.rate as f64)
    }

    /// Wakes taken by the last `take` but not used: back in the bucket and out of the window.
    pub fn give_back(&mut self, unused: usize) {
        let Some(last) = self.granted.back_mut() else {
            return;
        };
        let unused = unused.min(last.1);
        last.1 -= unused;
        self.in_window -= unused;
        self.tokens = (self.tokens + unused as f64).min(self.capacity);
    }
}

/// The same limit where messages leave the engine for their channels: deliveries follow the
/// group commits of their wakes and arrive in bunches, so limiting wakes alone lets a second's
/// worth of messages bunch past the rate. Waiters queue in order (a fair async mutex); only the
/// first sleeps, until the limit can grant again.
pub(crate) struct OutgoingRate {
    limit: tokio::sync::Mutex<RateLimit>,
}

impl OutgoingRate {
    pub fn new(rate_per_s: u32) -> OutgoingRate {
        OutgoingRate {
            limit: tokio::sync::Mutex::new(RateLimit::with_window(
                rate_per_s,
                WINDOW + OUTGOING_SLACK,
                Instant::now(),
            )),
        }
    }

    /// Returns when one more message may go.
    pub async fn acquire(&self) {
        let mut limit = self.limit.lock().await;
        loop {
            let now = Instant::now();
            if limit.take(1, now) == 1 {
                return;
            }
            let wait = limit.wait(now).max(Duration::from_micros(100));
            tokio::time::sleep(wait).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Drives the limit with a backlog larger than it lets through, one call per `step`, for
    /// `seconds`; returns (offset, granted) per call.
    fn drain(rate: u32, step: Duration, seconds: u64) -> Vec<(Duration, usize)> {
        let start = Instant::now();
        let mut limit = RateLimit::new(rate, start);
        let mut grants = Vec::new();
        let mut offset = Duration::ZERO;
        while offset < Duration::from_secs(seconds) {
            let granted = limit.take(usize::MAX, start + offset);
            grants.push((offset, granted));
            offset += step;
        }
        grants
    }

    /// The most granted (or arrived) within any one second: a window sliding over the
    /// instants in order.
    fn most_in_any_second(grants: &[(Duration, usize)]) -> usize {
        let mut sorted = grants.to_vec();
        sorted.sort_unstable();
        let (mut most, mut in_window, mut from) = (0, 0, 0);
        for &(at, count) in &sorted {
            in_window += count;
            while at >= sorted[from].0 + WINDOW {
                in_window -= sorted[from].1;
                from += 1;
            }
            most = most.max(in_window);
        }
        most
    }

    #[test]
    fn a_backlog_never_gets_more_than_the_rate_in_any_one_second_window() {
        for (rate, step_ms) in [(5_000, 5), (5_000, 1), (100, 7), (3, 50), (50_000, 5)] {
            let grants = drain(rate, Duration::from_millis(step_ms), 4);
            let most = most_in_any_second(&grants);
            assert!(most <= rate as usize, "rate {rate}: {most} in one window");
            // And it lets the backlog out at the rate, not far below it.
            let total: usize = grants.iter().map(|(_, n)| n).sum();
            assert!(
                total as f64 >= f64::from(rate) * 4.0 * 0.95,
                "rate {rate}: only {total} in 4 s"
            );
        }
    }

    #[test]
    fn the_first_second_after_a_start_is_not_a_burst() {
        let grants = drain(5_000, Duration::from_millis(5), 1);
        let first_50_ms: usize = grants
            .iter()
            .filter(|(at, _)| *at < Duration::from_millis(50))
            .map(|(_, n)| n)
            .sum();
        // A twentieth of a second's worth up front, then the refill: about 500, not 5,000.
        assert!(first_50_ms <= 5_000 / 20 * 2 + 1, "{first_50_ms}");
    }

    #[test]
    fn outgoing_grants_stay_within_the_rate_at_the_channel_despite_a_varying_delay() {
        let rate = 5_000;
        // The worst case for the channel: every message granted in an even second arrives late
        // by almost the slack, every other one on time, so a second at the channel can take in
        // a second and a bit of grants.
        let late_by = OUTGOING_SLACK - Duration::from_micros(1);
        let arrivals = |mut limit: RateLimit, start: Instant| {
            let mut arrivals = Vec::new();
            let mut offset = Duration::ZERO;
            while offset < Duration::from_secs(4) {
                let late = if offset.as_secs().is_multiple_of(2) {
                    late_by
                } else {
                    Duration::ZERO
                };
                for _ in 0..limit.take(usize::MAX, start + offset) {
                    arrivals.push((offset + late, 1));
                }
                offset += Duration::from_micros(100);
            }
            arrivals
        };
        let start = Instant::now();
        let outgoing = arrivals(
            RateLimit::with_window(rate, WINDOW + OUTGOING_SLACK, start),
            start,
        );
        let most = most_in_any_second(&outgoing);
        assert!(most <= rate as usize, "{most} arrived within one second");
        // The slack costs about 1 % of the drain rate.
        assert!(
            outgoing.len() as f64 >= f64::from(rate) * 4.0 * 0.95,
            "{}",
            outgoing.len()
        );
        // Without it, the same delays put more than the rate into one second.
        let tight = arrivals(RateLimit::new(rate, start), start);
        assert!(most_in_any_second(&tight) > rate as usize);
    }

    #[test]
    fn wakes_given_back_can_go_again_within_the_window() {
        let start = Instant::now();
        let mut limit = RateLimit::new(100, start);
        assert_eq!(limit.take(5, start), 5);
        limit.give_back(5);
        assert_eq!(limit.in_window, 0);
        assert_eq!(limit.take(5, start), 5);
    }
}

#[cfg(test)]
mod wait_tests {
    use super::*;

    #[test]
    fn the_wait_is_until_a_token_or_until_the_oldest_grant_leaves_the_window() {
        let start = Instant::now();
        let mut limit = RateLimit::new(20, start);
        // One token up front (a twentieth of 20/s), then one every 50 ms.
        assert_eq!(limit.take(10, start), 1);
        let wait = limit.wait(start);
        assert!(
            wait > Duration::from_millis(45) && wait <= Duration::from_millis(50),
            "{wait:?}"
        );
        // Full window: 20 granted within the second; the next waits for the first to leave.
        let mut at = start;
        for _ in 0..19 {
            at += Duration::from_millis(50);
            assert_eq!(limit.take(1, at), 1);
        }
        at += Duration::from_millis(10);
        assert_eq!(limit.take(1, at), 0);
        assert_eq!(
            limit.wait(at),
            (start + WINDOW).saturating_duration_since(at)
        );
    }
}
