//! The peer benchmark protocol (`benches/peers/README.md`), the same rules as
//! `benches/peers/protocol.mjs`: N one-shot timers due evenly over a window of W ms, scheduled by
//! C concurrent callers after a lead L chosen from a calibration batch; per-timer bookkeeping;
//! the end-of-run rule; nearest-rank percentiles; one JSON line.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};

use crate::cpu::ForeignCpuMeter;

/// Timers in the calibration batch, as the peers.
pub const CALIBRATION_JOBS: usize = 2_000;

#[derive(Clone, Copy, Debug)]
pub struct Params {
    pub n: usize,
    pub window_ms: u64,
    pub callers: usize,
    /// The floor for the lead.
    pub lead_min_ms: u64,
    /// See `Tracker::finished`.
    pub timeout_ms: u64,
}

impl Params {
    /// N W C from the arguments given (or env `N`, `W`, `C`), knobs from env, as the peers.
    pub fn from(args: &[String]) -> Result<Params, String> {
        let num = |arg: Option<&String>, env: &str, default: u64| -> Result<u64, String> {
            let text = arg.cloned().or_else(|| std::env::var(env).ok());
            match text {
                None => Ok(default),
                Some(text) => text
                    .parse()
                    .map_err(|_| format!("{env} must be a whole number, not {text:?}")),
            }
        };
        let params = Params {
            n: num(args.first(), "N", 10_000)? as usize,
            window_ms: num(args.get(1), "W", 2_000)?,
            callers: num(args.get(2), "C", 64)? as usize,
            lead_min_ms: num(None, "LEAD_MS", 5_000)?,
            timeout_ms: num(None, "TIMEOUT_MS", 60_000)?,
        };
        if params.n == 0 || params.callers == 0 {
            return Err(format!("N and C must be at least 1: {params:?}"));
        }
        Ok(params)
    }

    /// L = max(LEAD_MS, ceil(1.5 × the projected time to schedule N) + 1 s).
    pub fn lead_ms(&self, calibration_count: usize, calibration_ms: f64) -> u64 {
        let projected_ms = self.n as f64 / calibration_count as f64 * calibration_ms;
        self.lead_min_ms
            .max((1.5 * projected_ms).ceil() as u64 + 1_000)
    }
}

/// Milliseconds since the epoch, with sub-millisecond precision.
pub fn wall_ms() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("the clock is after 1970")
        .as_secs_f64()
        * 1e3
}

/// How long each call took to be acknowledged (ms), in call order per caller; `percentile`
/// after sorting.
pub type CallLatencies = Arc<Mutex<Vec<f64>>>;

/// Runs `call(0..count)` from `callers` concurrent tasks, each taking the next index once its
/// previous call was acknowledged; returns the ms from the first call to the last acknowledgement,
/// and each call's latency.
pub async fn run_callers<F, Fut>(count: usize, callers: usize, call: F) -> (f64, CallLatencies)
where
    F: Fn(usize) -> Fut + Send + Sync + 'static,
    Fut: Future<Output = ()> + Send,
{
    let started = std::time::Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let call = Arc::new(call);
    let latencies: CallLatencies = Arc::new(Mutex::new(Vec::with_capacity(count)));
    let mut tasks = Vec::new();
    for _ in 0..callers.min(count) {
        let (next, call, latencies) = (next.clone(), call.clone(), latencies.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let called = std::time::Instant::now();
                call(i).await;
                let ms = called.elapsed().as_secs_f64() * 1e3;
                latencies.lock().unwrap().push(ms);
            }
        }));
    }
    for task in tasks {
        task.await.expect("a caller task panicked");
    }
    (started.elapsed().as_secs_f64() * 1e3, latencies)
}

/// p50 / p99 / max of call latencies, for the JSON line.
pub fn latency_summary(latencies: &CallLatencies) -> Value {
    let mut sorted = latencies.lock().unwrap().clone();
    sorted.sort_by(f64::total_cmp);
    let p = |q| percentile(&sorted, q).map_or(Value::Null, round1);
    json!({"p50": p(0.5), "p99": p(0.99), "max": sorted.last().copied().map_or(Value::Null, round1)})
}

/// Per-timer bookkeeping: due instant, first fire, completion (all wall ms), and repeats.
pub struct Tracker {
    pub due: Vec<f64>,
    state: Mutex<TrackerState>,
}

struct TrackerState {
    fired: Vec<f64>,
    done: Vec<f64>,
    fired_count: usize,
    done_count: usize,
    dup: usize,
    last_progress: f64,
}

impl Tracker {
    /// due_i = floor(t0 + L + i·W/N).
    pub fn new(params: &Params, t0: f64, lead_ms: u64) -> Tracker {
        let due = (0..params.n)
            .map(|i| {
                (t0 + lead_ms as f64 + (i as f64 * params.window_ms as f64) / params.n as f64)
                    .floor()
            })
            .collect();
        Tracker {
            due,
            state: Mutex::new(TrackerState {
                fired: vec![f64::NAN; params.n],
                done: vec![f64::NAN; params.n],
                fired_count: 0,
                done_count: 0,
                dup: 0,
                last_progress: wall_ms(),
            }),
        }
    }

    /// Timer `i` fired (its channel was called) at `at`; a second fire is a repeat.
    pub fn fire(&self, i: usize, at: f64) {
        let mut state = self.state.lock().unwrap();
        if state.fired[i].is_nan() {
            state.fired[i] = at;
            state.fired_count += 1;
        } else {
            state.dup += 1;
        }
        state.last_progress = at;
    }

    /// Timer `i`'s completion (its past event) was durable at `at`.
    pub fn done(&self, i: usize, at: f64) {
        let mut state = self.state.lock().unwrap();
        if state.done[i].is_nan() {
            state.done[i] = at;
            state.done_count += 1;
        }
        state.last_progress = at;
    }

    pub fn done_count(&self) -> usize {
        self.state.lock().unwrap().done_count
    }

    /// The end-of-run rule: every timer completed; or TIMEOUT_MS past the last due instant
    /// and no progress for TIMEOUT_MS; or 30 minutes past the last due instant.
    pub fn finished(&self, params: &Params) -> bool {
        let state = self.state.lock().unwrap();
        let now = wall_ms();
        let last_due = *self.due.last().expect("N is at least 1");
        let timeout = params.timeout_ms as f64;
        state.done_count == self.due.len()
            || (now > last_due + timeout && now - state.last_progress > timeout)
            || now > last_due + 30.0 * 60.0 * 1e3
    }
}

/// Nearest-rank percentile of an ascending slice.
pub fn percentile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    Some(sorted[rank - 1])
}

fn round1(x: f64) -> Value {
    if x.is_finite() {
        json!((x * 10.0).round() / 10.0)
    } else {
        Value::Null
    }
}

/// What a run measured besides the tracker.
pub struct RunFacts {
    pub system: String,
    pub schedule_ms: f64,
    pub lead_ms: u64,
    pub durability: String,
    pub busy_pct_before: f64,
    pub extra: Value,
}

/// The run's JSON line, in the peers' shape.
pub fn report(
    params: &Params,
    tracker: &Tracker,
    meter: &mut ForeignCpuMeter,
    facts: RunFacts,
) -> Value {
    let state = tracker.state.lock().unwrap();
    let mut late = Vec::new();
    let mut early = 0;
    let mut first_fire = f64::INFINITY;
    let mut last_done = f64::NEG_INFINITY;
    for i in 0..params.n {
        if state.fired[i].is_nan() {
            continue;
        }
        let lateness = state.fired[i] - tracker.due[i];
        late.push(lateness);
        if lateness < 0.0 {
            early += 1;
        }
        first_fire = first_fire.min(state.fired[i]);
        if !state.done[i].is_nan() {
            last_done = last_done.max(state.done[i]);
        }
    }
    if let Some(path) = std::env::var_os("LATE_CSV") {
        write_lateness_csv(&path, tracker, &state.fired);
    }
    late.sort_by(f64::total_cmp);
    let p = |q| percentile(&late, q).map_or(Value::Null, round1);
    let mut out = json!({
        "system": facts.system,
        "n": params.n,
        "window_ms": params.window_ms,
        "callers": params.callers,
        "schedule_per_s": round1(params.n as f64 / facts.schedule_ms * 1e3),
        "fire_per_s": round1(state.done_count as f64 / (last_done - first_fire) * 1e3),
        "late_ms": {"p50": p(0.5), "p99": p(0.99), "p999": p(0.999),
                    "max": late.last().copied().map_or(Value::Null, round1)},
        "early": early,
        "lost": params.n - state.fired_count,
        "durability": facts.durability,
        "versions": {"tickler": env!("CARGO_PKG_VERSION"), "sled": "0.34.7"},
        "lead_ms": facts.lead_ms,
        "schedule_ms": round1(facts.schedule_ms),
        "schedule_done_before_first_due": facts.schedule_ms < facts.lead_ms as f64,
        "dup": state.dup,
        "completed": state.done_count,
        "host": {
            "cpus": std::thread::available_parallelism().map_or(1, |n| n.get()),
            "busy_pct_before": round1(facts.busy_pct_before),
            "foreign_cpu_pct": round1(meter.pct()),
        },
    });
    if let (Value::Object(out), Value::Object(extra)) = (&mut out, facts.extra) {
        out.extend(extra);
    }
    out
}

/// With env `LATE_CSV=path`, the run also writes each fired timer's due instant (ms after the
/// first one) and its lateness (ms), in due order: to see when in the window lateness arose.
fn write_lateness_csv(path: &std::ffi::OsStr, tracker: &Tracker, fired: &[f64]) {
    let first_due = tracker.due[0];
    let mut csv = String::from("due_ms,late_ms\n");
    for (due, fired) in tracker.due.iter().zip(fired) {
        if !fired.is_nan() {
            csv.push_str(&format!("{:.0},{:.3}\n", due - first_due, fired - due));
        }
    }
    if let Err(err) = std::fs::write(path, csv) {
        eprintln!("cannot write LATE_CSV {path:?}: {err}");
    }
}

/// Sleeps in small steps until `deadline` (wall ms) or `done()`.
pub async fn sleep_until(deadline_ms: f64, done: impl Fn() -> bool) {
    while wall_ms() < deadline_ms && !done() {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// The encoded bytes of the `Created` event an engine records for `create`, at the epoch: what
/// the benches compare bytes on disk with.
pub fn created_record(create: tickler::CreateEntity) -> Vec<u8> {
    let event = tickler::Event::Created {
        policy: create.policy,
        policy_version: 1,
        workflow: None,
        recipient: create.recipient,
        zone: create.zone,
        anchors: create.anchors,
        attributes: create.attributes,
    };
    tickler::codec::encode_event(&event, tickler::Timestamp::EPOCH).encode()
}
