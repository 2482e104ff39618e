//! The engine's instruments: what `metrics` exposes (the Prometheus text format, through
//! prometheus-client) and the two short windows `status` reports.
//!
//! Counters count since the process started; histograms time what an operator asks about: how
//! late wakes fire, how long the store's writes and flushes take, how long each channel takes to
//! deliver. Rates and quantiles over a window are the scraper's business (PromQL's `rate` and
//! `histogram_quantile`): a figure kept here since the start would stop moving after a busy
//! first hour. `status` is a contract of its own (`proto/admin-protocol.md`): the firing lag of
//! the last wakes and the system errors of the last hour, each kept in a bounded window.
//!
//! Labels are few and bounded: a channel (named in the config), an origin, a protocol error
//! code, an outcome and its reason. No entity, recipient or message text is ever a label.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::sync::atomic::AtomicU64;
use std::time::{Duration, Instant};

use prometheus_client::encoding::{EncodeLabel, EncodeLabelSet, LabelSetEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;
use tickler_core::{DeliveryResult, Outcome, UnsentReason};

use crate::operations::EngineStatus;

/// The `Content-Type` of [`Engine::metrics_text`](crate::Engine::metrics_text)'s exposition:
/// the Prometheus text format, version 0.0.4.
pub const METRICS_CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// How many recent wakes the firing-lag figures of `status` cover.
const LAG_WINDOW_LEN: usize = 1_024;
/// `status` counts system errors over this last span (real time).
const ERROR_WINDOW: Duration = Duration::from_secs(3_600);
/// A bound on the error window's memory: more errors than this in an hour are counted as this.
const ERROR_WINDOW_LEN_MAX: usize = 100_000;

/// How late wakes fire, in seconds: the wheel ticks in milliseconds and the lateness targets are
/// tens of them (`BENCHMARKS.md`); a catch-up after downtime is minutes to hours late.
const LATENESS_BUCKETS: [f64; 16] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0, 60.0, 300.0, 1_800.0,
    3_600.0,
];
/// A store write or flush, in seconds: a flush takes about a millisecond on a quiet disk, tens
/// of them on a busy one, and seconds when something is wrong.
const STORE_BUCKETS: [f64; 16] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0,
];
/// One message handed to a channel, in seconds: a file or a digest takes under a millisecond, a
/// webhook or SMTP round trip tens to hundreds, a timeout up to the delivery lease.
const DELIVERY_BUCKETS: [f64; 14] = [
    0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// Where a command came from: a caller of the engine's API (the protocol, a policy family, an
/// embedder), or the engine itself (wakes, delivery results, collecting into a digest that may
/// not exist yet). Rejections of the engine's own commands are mostly expected (a digest is
/// looked up before it is created), so they must not read as refusals of anyone's request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Origin {
    Caller,
    Engine,
}

impl Origin {
    fn label(self) -> &'static str {
        match self {
            Origin::Caller => "caller",
            Origin::Engine => "engine",
        }
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabels {
    origin: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RejectionLabels {
    origin: &'static str,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChannelOutcome {
    channel: String,
    outcome: &'static str,
}

/// A delivery's channel, an outcome and, when it has one, its reason (`delivered` and `sent`
/// have none). A label that does not apply is left out rather than exposed empty.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
struct OutcomeReason {
    channel: Option<String>,
    outcome: &'static str,
    reason: Option<&'static str>,
}

impl EncodeLabelSet for OutcomeReason {
    fn encode(&self, encoder: &mut LabelSetEncoder) -> Result<(), std::fmt::Error> {
        if let Some(channel) = &self.channel {
            ("channel", channel.as_str()).encode(encoder.encode_label())?;
        }
        ("outcome", self.outcome).encode(encoder.encode_label())?;
        if let Some(reason) = self.reason {
            ("reason", reason).encode(encoder.encode_label())?;
        }
        Ok(())
    }
}

type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

/// A gauge read from `status` at each scrape.
type Reading = fn(&EngineStatus) -> f64;

const GAUGES: [(&str, &str, Reading); 8] = [
    ("tickler_actors", "Entity actors running", |s| {
        s.actors as f64
    }),
    (
        "tickler_timers_in_memory",
        "Timers held in the in-memory wheel",
        |s| s.timers_in_memory as f64,
    ),
    (
        "tickler_wakes_in_flight",
        "Wakes handed to entities and not yet handled",
        |s| s.wakes_in_flight as f64,
    ),
    (
        "tickler_retries_in_flight",
        "Occurrences waiting for their next delivery attempt (NaN: the store could not be read)",
        |s| s.retries_in_flight.map_or(f64::NAN, |n| n as f64),
    ),
    (
        "tickler_errored",
        "Occurrences that ended in a system error and were not retried (NaN: unreadable)",
        |s| s.errored.map_or(f64::NAN, |n| n as f64),
    ),
    ("tickler_parked", "Wakes held by a pause", |s| {
        s.parked as f64
    }),
    (
        "tickler_quarantined",
        "Entities whose log failed a check",
        |s| s.quarantined.len() as f64,
    ),
    (
        "tickler_uptime_seconds",
        "Seconds since the engine started",
        |s| s.uptime_ms as f64 / 1000.0,
    ),
];

pub(crate) struct Metrics {
    registry: Registry,
    commands: Family<OriginLabels, Counter>,
    rejected: Family<RejectionLabels, Counter>,
    wakes: Counter,
    lateness: Histogram,
    deliveries: Family<OutcomeReason, Counter>,
    delivery_duration: HistogramFamily<ChannelOutcome>,
    past_events: Family<OutcomeReason, Counter>,
    store_write: Histogram,
    store_flush: Histogram,
    store_flush_failures: Counter,
    gauges: Vec<(Gauge<f64, AtomicU64>, Reading)>,
    lags_ms: Mutex<VecDeque<i64>>,
    errors: Mutex<VecDeque<Instant>>,
}

/// Firing lag over the recent wakes: how late each was handed to its entity.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct FiringLag {
    pub last_ms: i64,
    pub max_ms: i64,
    /// The median and the 99th percentile (nearest rank) of the window.
    pub p50_ms: i64,
    pub p99_ms: i64,
    pub samples: usize,
}

/// The nearest-rank `percent` percentile of `sorted` (ascending), 0 when it is empty.
fn percentile(sorted: &[i64], percent: usize) -> i64 {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted.get(rank - 1).copied().unwrap_or(0)
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Default for Metrics {
    fn default() -> Metrics {
        let metrics = Metrics {
            registry: Registry::default(),
            commands: Family::default(),
            rejected: Family::default(),
            wakes: Counter::default(),
            lateness: Histogram::new(LATENESS_BUCKETS),
            deliveries: Family::default(),
            delivery_duration: Family::new_with_constructor(|| Histogram::new(DELIVERY_BUCKETS)),
            past_events: Family::default(),
            store_write: Histogram::new(STORE_BUCKETS),
            store_flush: Histogram::new(STORE_BUCKETS),
            store_flush_failures: Counter::default(),
            gauges: GAUGES
                .iter()
                .map(|(_, _, reading)| (Gauge::default(), *reading))
                .collect(),
            lags_ms: Mutex::new(VecDeque::new()),
            errors: Mutex::new(VecDeque::new()),
        };
        // Both series from the start, at zero: a rate needs a first sample to start from.
        for origin in [Origin::Caller, Origin::Engine] {
            let origin = origin.label();
            let _ = metrics.commands.get_or_create(&OriginLabels { origin });
        }
        metrics.registered()
    }
}

impl Metrics {
    /// Registers every instrument under its name (counters gain `_total` when exposed).
    fn registered(mut self) -> Metrics {
        let r = &mut self.registry;
        r.register(
            "tickler_commands",
            "Commands handled by entity actors, by origin (caller: the API; engine: its own)",
            self.commands.clone(),
        );
        r.register(
            "tickler_commands_rejected",
            "Commands refused, by origin and error code",
            self.rejected.clone(),
        );
        r.register(
            "tickler_wakes",
            "Wakes handed from the timer to entities",
            self.wakes.clone(),
        );
        r.register(
            "tickler_firing_lateness_seconds",
            "How long after its due time each wake was handed to its entity",
            self.lateness.clone(),
        );
        r.register(
            "tickler_deliveries",
            "Delivery attempts' results, by channel, outcome and, for a failure, reason",
            self.deliveries.clone(),
        );
        r.register(
            "tickler_delivery_duration_seconds",
            "How long a channel took to deliver one message (or to fail), by channel and outcome",
            self.delivery_duration.clone(),
        );
        r.register(
            "tickler_past_events",
            "Past events recorded, by outcome and, for an unsent one, reason",
            self.past_events.clone(),
        );
        r.register(
            "tickler_store_write_duration_seconds",
            "How long the store took to apply one group of commits",
            self.store_write.clone(),
        );
        r.register(
            "tickler_store_flush_duration_seconds",
            "How long each group-commit flush took (what every commit waits for at least once)",
            self.store_flush.clone(),
        );
        r.register(
            "tickler_store_flush_failures",
            "Group-commit flushes that failed (their commits were refused)",
            self.store_flush_failures.clone(),
        );
        // prometheus-client ends each help text with a period itself.
        for ((name, help, _), (gauge, _)) in GAUGES.iter().zip(&self.gauges) {
            r.register(*name, *help, gauge.clone());
        }
        self
    }

    pub fn command(&self, origin: Origin, rejection: Option<&'static str>) {
        let origin = origin.label();
        self.commands.get_or_create(&OriginLabels { origin }).inc();
        if let Some(code) = rejection {
            self.rejected
                .get_or_create(&RejectionLabels { origin, code })
                .inc();
        }
    }

    pub fn wake(&self, lateness: Duration) {
        self.wakes.inc();
        self.lateness.observe(lateness.as_secs_f64());
        let mut lags = lock(&self.lags_ms);
        if lags.len() == LAG_WINDOW_LEN {
            lags.pop_front();
        }
        lags.push_back(i64::try_from(lateness.as_millis()).unwrap_or(i64::MAX));
    }

    pub fn delivery(&self, channel: &str, result: &DeliveryResult) {
        let (outcome, reason) = match result {
            DeliveryResult::Delivered { .. } => ("delivered", None),
            DeliveryResult::Failed { permanent, .. } => (
                "failed",
                Some(if *permanent { "permanent" } else { "transient" }),
            ),
        };
        let labels = OutcomeReason {
            channel: Some(channel.to_owned()),
            outcome,
            reason,
        };
        self.deliveries.get_or_create(&labels).inc();
    }

    /// A channel answered one message (or failed to, or ran out of time) after `took`.
    pub fn delivered_in(&self, channel: &str, delivered: bool, took: Duration) {
        let labels = ChannelOutcome {
            channel: channel.to_owned(),
            outcome: if delivered { "delivered" } else { "failed" },
        };
        self.delivery_duration
            .get_or_create(&labels)
            .observe(took.as_secs_f64());
    }

    pub fn past_event(&self, outcome: &Outcome) {
        let (label, reason) = match outcome {
            Outcome::Sent { .. } => ("sent", None),
            Outcome::Unsent { reason, .. } => ("unsent", Some(*reason)),
        };
        let labels = OutcomeReason {
            channel: None,
            outcome: label,
            reason: reason.map(|reason| reason.as_str()),
        };
        self.past_events.get_or_create(&labels).inc();
        if reason == Some(UnsentReason::SystemError) {
            let mut errors = lock(&self.errors);
            if errors.len() == ERROR_WINDOW_LEN_MAX {
                errors.pop_front();
            }
            errors.push_back(Instant::now());
        }
    }

    pub fn firing_lag(&self) -> FiringLag {
        let lags = lock(&self.lags_ms);
        let mut sorted: Vec<i64> = lags.iter().copied().collect();
        sorted.sort_unstable();
        FiringLag {
            last_ms: lags.back().copied().unwrap_or(0),
            max_ms: sorted.last().copied().unwrap_or(0),
            p50_ms: percentile(&sorted, 50),
            p99_ms: percentile(&sorted, 99),
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

    /// The Prometheus text exposition, with the gauges read from `status`.
    pub fn render(&self, status: &EngineStatus) -> String {
        for (gauge, reading) in &self.gauges {
            gauge.set(reading(status));
        }
        self.encode()
    }

    fn encode(&self) -> String {
        let mut text = String::new();
        prometheus_client::encoding::prometheus_text::encode(&mut text, &self.registry)
            .expect("writing to a String cannot fail");
        text
    }
}

/// Group commit tells the engine how long each write and flush took.
impl tickler_store::CommitTimings for Metrics {
    fn wrote(&self, took: Duration) {
        self.store_write.observe(took.as_secs_f64());
    }

    fn flushed(&self, took: Duration, failed: bool) {
        self.store_flush.observe(took.as_secs_f64());
        if failed {
            self.store_flush_failures.inc();
        }
    }
}

#[cfg(test)]
mod tests {
    use tickler_store::CommitTimings;

    use super::*;

    fn sample<'a>(text: &'a str, series: &str) -> Option<&'a str> {
        text.lines()
            .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
    }

    #[test]
    fn lateness_is_a_histogram_in_seconds_with_buckets_a_sum_and_a_count() {
        let metrics = Metrics::default();
        metrics.wake(Duration::from_millis(30));
        metrics.wake(Duration::from_secs(90));
        let text = metrics.encode();
        assert!(
            text.contains("# TYPE tickler_firing_lateness_seconds histogram\n"),
            "{text}"
        );
        let bucket = |le: &str| {
            sample(
                &text,
                &format!("tickler_firing_lateness_seconds_bucket{{le=\"{le}\"}}"),
            )
        };
        assert_eq!(bucket("0.025"), Some("0"), "{text}");
        assert_eq!(bucket("0.05"), Some("1"), "{text}");
        assert_eq!(bucket("300"), Some("2"), "{text}");
        assert_eq!(bucket("+Inf"), Some("2"), "{text}");
        assert_eq!(
            sample(&text, "tickler_firing_lateness_seconds_sum"),
            Some("90.03")
        );
        assert_eq!(
            sample(&text, "tickler_firing_lateness_seconds_count"),
            Some("2")
        );
        assert_eq!(sample(&text, "tickler_wakes_total"), Some("2"), "{text}");
    }

    #[test]
    fn outcome_and_reason_are_separate_labels() {
        let metrics = Metrics::default();
        let failed = DeliveryResult::Failed {
            error: "503".into(),
            permanent: false,
            retry_after: None,
        };
        metrics.delivery("rapidpro", &failed);
        metrics.past_event(&Outcome::Unsent {
            reason: UnsentReason::SystemError,
            detail: String::new(),
            attempts: 5,
        });
        metrics.past_event(&Outcome::Sent {
            channel: "file".into(),
            receipt: String::new(),
            attempts: 1,
        });
        let text = metrics.encode();
        for series in [
            "tickler_deliveries_total{channel=\"rapidpro\",outcome=\"failed\",reason=\"transient\"}",
            "tickler_past_events_total{outcome=\"unsent\",reason=\"system-error\"}",
            "tickler_past_events_total{outcome=\"sent\"}",
        ] {
            assert_eq!(sample(&text, series), Some("1"), "{series} in {text}");
        }
        assert_eq!(metrics.errors_last_hour(), 1);
    }

    #[test]
    fn rejections_are_counted_by_origin() {
        let metrics = Metrics::default();
        metrics.command(Origin::Caller, None);
        metrics.command(Origin::Engine, Some("unknown_entity"));
        let text = metrics.encode();
        for series in [
            "tickler_commands_total{origin=\"caller\"}",
            "tickler_commands_total{origin=\"engine\"}",
            "tickler_commands_rejected_total{origin=\"engine\",code=\"unknown_entity\"}",
        ] {
            assert_eq!(sample(&text, series), Some("1"), "{series} in {text}");
        }
        assert!(
            !text.contains("tickler_commands_rejected_total{origin=\"caller\""),
            "{text}"
        );
    }

    #[test]
    fn store_flushes_are_timed_and_failures_counted() {
        let metrics = Metrics::default();
        metrics.flushed(Duration::from_micros(700), false);
        metrics.flushed(Duration::from_millis(40), true);
        let text = metrics.encode();
        assert_eq!(
            sample(
                &text,
                "tickler_store_flush_duration_seconds_bucket{le=\"0.001\"}"
            ),
            Some("1"),
            "{text}"
        );
        assert_eq!(
            sample(&text, "tickler_store_flush_duration_seconds_count"),
            Some("2")
        );
        assert_eq!(
            sample(&text, "tickler_store_flush_failures_total"),
            Some("1")
        );
    }

    #[test]
    fn status_keeps_the_lag_of_the_last_wakes_in_milliseconds() {
        let metrics = Metrics::default();
        metrics.wake(Duration::from_millis(40));
        metrics.wake(Duration::from_millis(12));
        assert_eq!(
            metrics.firing_lag(),
            FiringLag {
                last_ms: 12,
                max_ms: 40,
                p50_ms: 12,
                p99_ms: 40,
                samples: 2
            }
        );
    }

    #[test]
    fn status_gives_the_median_and_99th_percentile_of_the_lag_by_nearest_rank() {
        let metrics = Metrics::default();
        for ms in (1..=100).rev() {
            metrics.wake(Duration::from_millis(ms));
        }
        let lag = metrics.firing_lag();
        assert_eq!((lag.p50_ms, lag.p99_ms, lag.max_ms), (50, 99, 100));
        assert_eq!(Metrics::default().firing_lag().p99_ms, 0);
    }
}
