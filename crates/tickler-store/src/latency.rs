//! A lock-free latency histogram for the group-commit thread: how long its writes and flushes
//! take, so a slow disk or a slow store shows up as a figure rather than as a guess.
//!
//! Buckets are logarithmic with four steps per power of two (each at most 25 % wide), counted
//! in microseconds: recording is one atomic increment, and a quantile is read as the upper edge
//! of its bucket, never below the true value.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Enough buckets for any `u64` of microseconds: `bucket_of(u64::MAX)` is 251.
const BUCKETS: usize = 252;

pub(crate) struct LatencyHistogram {
    buckets: [AtomicU64; BUCKETS],
    max_us: AtomicU64,
}

/// A summary of a [`LatencyHistogram`]: `p50` and `p99` are upper edges of their buckets (at
/// most 25 % above the true value); `max` is exact. All zero before anything was recorded.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LatencySummary {
    pub count: u64,
    pub p50: Duration,
    pub p99: Duration,
    pub max: Duration,
}

impl LatencyHistogram {
    pub(crate) fn new() -> LatencyHistogram {
        LatencyHistogram {
            buckets: std::array::from_fn(|_| AtomicU64::new(0)),
            max_us: AtomicU64::new(0),
        }
    }

    pub(crate) fn record(&self, took: Duration) {
        let us = u64::try_from(took.as_micros()).unwrap_or(u64::MAX);
        self.buckets[bucket_of(us)].fetch_add(1, Ordering::Relaxed);
        self.max_us.fetch_max(us, Ordering::Relaxed);
    }

    pub(crate) fn summary(&self) -> LatencySummary {
        let counts: Vec<u64> = self
            .buckets
            .iter()
            .map(|bucket| bucket.load(Ordering::Relaxed))
            .collect();
        let count = counts.iter().sum();
        let max_us = self.max_us.load(Ordering::Relaxed);
        // A bucket's upper edge may pass the largest value recorded; the max is exact.
        let quantile = |q: f64| Duration::from_micros(quantile_us(&counts, count, q).min(max_us));
        LatencySummary {
            count,
            p50: quantile(0.50),
            p99: quantile(0.99),
            max: Duration::from_micros(max_us),
        }
    }
}

/// Values below 4 µs have a bucket each; above, a power of two is cut into four.
fn bucket_of(us: u64) -> usize {
    if us < 4 {
        return us as usize;
    }
    let bits = 64 - us.leading_zeros() as usize; // at least 3
    let step = ((us >> (bits - 3)) & 0b11) as usize; // the two bits after the leading one
    (bits - 2) * 4 + step
}

/// The smallest value above every value of `bucket` (saturating at `u64::MAX`).
fn upper_edge_of(bucket: usize) -> u64 {
    if bucket < 4 {
        return bucket as u64 + 1;
    }
    let bits = bucket / 4 + 2;
    let step = (bucket % 4) as u64;
    let width = 1u64 << (bits - 3);
    (1u64 << (bits - 1))
        .saturating_add(step * width)
        .saturating_add(width)
}

/// Nearest rank: the upper edge of the bucket holding the `ceil(q * count)`-th value.
fn quantile_us(counts: &[u64], count: u64, q: f64) -> u64 {
    if count == 0 {
        return 0;
    }
    let rank = ((q * count as f64).ceil() as u64).clamp(1, count);
    let mut seen = 0;
    for (bucket, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return upper_edge_of(bucket);
        }
    }
    unreachable!("the counts sum to `count`")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_value_falls_in_a_bucket_whose_edges_hold_it_within_a_quarter() {
        for us in (0..5_000).chain([1 << 20, (1 << 20) + 1, 123_456_789, u64::MAX / 3]) {
            let bucket = bucket_of(us);
            let upper = upper_edge_of(bucket);
            let lower = if bucket == 0 {
                0
            } else {
                upper_edge_of(bucket - 1)
            };
            assert!(
                lower <= us && us < upper,
                "{us} µs: bucket {bucket} is [{lower}, {upper})"
            );
            assert!(
                us < 4 || (upper - lower) * 4 <= lower,
                "bucket {bucket} [{lower}, {upper}) is wider than a quarter of its start"
            );
        }
        assert_eq!(bucket_of(u64::MAX), BUCKETS - 1);
    }

    #[test]
    fn quantiles_are_upper_edges_never_below_the_truth_and_the_max_is_exact() {
        let histogram = LatencyHistogram::new();
        for us in 1..=1_000u64 {
            histogram.record(Duration::from_micros(us));
        }
        let summary = histogram.summary();
        assert_eq!(summary.count, 1_000);
        assert_eq!(summary.max, Duration::from_micros(1_000));
        let p50 = summary.p50.as_micros() as u64;
        let p99 = summary.p99.as_micros() as u64;
        assert!((500..=625).contains(&p50), "p50 {p50} µs for a true 500");
        assert!(
            (990..=1_000).contains(&p99),
            "p99 {p99} µs for a true 990 (capped by the max)"
        );
    }

    #[test]
    fn a_histogram_that_saw_nothing_summarises_to_zeros() {
        assert_eq!(LatencyHistogram::new().summary(), LatencySummary::default());
    }
}
