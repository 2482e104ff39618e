//! Counters and gauges for `status` and `metrics` (Prometheus text format). Kept in memory since
//! the process started; the durable truth stays in the store.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// How many recent wakes the firing-lag figures cover.
const LAG_WINDOW_LEN: usize = 1_024;
/// System errors are counted over this last span (real time).
const ERROR_WINDOW: Duration = Duration::from_secs(3_600);
/// A bound on the error window's memory: more errors than this in an hour are counted as this.
const ERROR_WINDOW_LEN_MAX: usize = 100_000;

#[derive(Default)]
pub struct Metrics {
    pub commands: AtomicU64,
    pub wakes: AtomicU64,
    rejected: Mutex<BTreeMap<&'static str, u64>>,
    deliveries: Mutex<BTreeMap<(String, &'static str), u64>>,
    past_events: Mutex<BTreeMap<String, u64>>,
    lags_ms: Mutex<VecDeque<i64>>,
    errors: Mutex<VecDeque<Instant>>,
}

/// Firing lag over the recent wakes: how late each was handed to its entity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FiringLag {
    pub last_ms: i64,
    pub max_ms: i64,
    pub samples: usize,
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Metrics {
    pub fn command(&self) {
        self.commands.fetch_add(1, Ordering::Relaxed);
    }

    pub fn rejected(&self, code: &'static str) {
        *lock(&self.rejected).entry(code).or_default() += 1;
    }

    pub fn wake(&self, lag_ms: i64) {
        self.wakes.fetch_add(1, Ordering::Relaxed);
        let mut lags = lock(&self.lags_ms);
        if lags.len() == LAG_WINDOW_LEN {
            lags.pop_front();
        }
        lags.push_back(lag_ms.max(0));
    }

    pub fn delivery(&self, channel: &str, result: &'static str) {
        *lock(&self.deliveries)
            .entry((channel.to_owned(), result))
            .or_default() += 1;
    }

    pub fn past_event(&self, outcome: &str, system_error: bool) {
        *lock(&self.past_events)
            .entry(outcome.to_owned())
            .or_default() += 1;
        if system_error {
            let mut errors = lock(&self.errors);
            if errors.len() == ERROR_WINDOW_LEN_MAX {
                errors.pop_front();
            }
            errors.push_back(Instant::now());
        }
    }

    pub fn firing_lag(&self) -> FiringLag {
        let lags = lock(&self.lags_ms);
        FiringLag {
            last_ms: lags.back().copied().unwrap_or(0),
            max_ms: lags.iter().copied().max().unwrap_or(0),
            samples: lags.len(),
        }
    }

    /// System errors (unsent "system error" past events) in the last hour.
    pub fn errors_last_hour(&self) -> usize {
        let mut errors = lock(&self.errors);
        while errors.front().is_some_and(|at| at.elapsed() > ERROR_WINDOW) {
            errors.pop_front();
        }
        errors.len()
    }

    /// The Prometheus text exposition, with the gauges the caller adds.
    pub fn render(&self, gauges: &[(&str, &str, f64)]) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, samples: Vec<(String, u64)>| {
            let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {value}");
            }
        };
        counter(
            "tickler_commands_total",
            "Commands handled by entity actors.",
            vec![(String::new(), self.commands.load(Ordering::Relaxed))],
        );
        counter(
            "tickler_commands_rejected_total",
            "Commands refused, by error code.",
            lock(&self.rejected)
                .iter()
                .map(|(code, n)| (format!("{{code=\"{code}\"}}"), *n))
                .collect(),
        );
        counter(
            "tickler_wakes_total",
            "Wakes handed from the timer to entities.",
            vec![(String::new(), self.wakes.load(Ordering::Relaxed))],
        );
        counter(
            "tickler_deliveries_total",
            "Delivery attempts, by channel and result.",
            lock(&self.deliveries)
                .iter()
                .map(|((channel, result), n)| {
                    (
                        format!("{{channel=\"{}\",result=\"{result}\"}}", escape(channel)),
                        *n,
                    )
                })
                .collect(),
        );
        counter(
            "tickler_past_events_total",
            "Past events recorded, by outcome.",
            lock(&self.past_events)
                .iter()
                .map(|(outcome, n)| (format!("{{outcome=\"{}\"}}", escape(outcome)), *n))
                .collect(),
        );
        let lag = self.firing_lag();
        let mut all_gauges: Vec<(&str, &str, f64)> = vec![
            (
                "tickler_firing_lag_last_ms",
                "Lateness of the last wake.",
                lag.last_ms as f64,
            ),
            (
                "tickler_firing_lag_max_ms",
                "Largest lateness over the recent wakes.",
                lag.max_ms as f64,
            ),
            (
                "tickler_system_errors_last_hour",
                "Occurrences that ended in a system error in the last hour.",
                self.errors_last_hour() as f64,
            ),
        ];
        all_gauges.extend_from_slice(gauges);
        for (name, help, value) in all_gauges {
            let _ = writeln!(
                out,
                "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {value}"
            );
        }
        out
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_exposition_is_prometheus_text() {
        let metrics = Metrics::default();
        metrics.command();
        metrics.rejected("unknown_entity");
        metrics.delivery("file", "delivered");
        metrics.past_event("unsent: system-error", true);
        metrics.wake(12);
        let text = metrics.render(&[("tickler_actors", "Entity actors running.", 3.0)]);
        assert!(text.contains("tickler_commands_total 1\n"), "{text}");
        assert!(
            text.contains("tickler_commands_rejected_total{code=\"unknown_entity\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("tickler_deliveries_total{channel=\"file\",result=\"delivered\"} 1\n"),
            "{text}"
        );
        assert!(
            text.contains("tickler_system_errors_last_hour 1\n"),
            "{text}"
        );
        assert!(
            text.contains("# TYPE tickler_actors gauge\ntickler_actors 3\n"),
            "{text}"
        );
        assert_eq!(metrics.firing_lag().last_ms, 12);
    }
}
