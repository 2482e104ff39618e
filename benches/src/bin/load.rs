//! The load generator (issue 7): tickler on the peers' protocol (`benches/peers/README.md`),
//! printing the same JSON line as `benches/peers/bullmq.mjs` and `pgboss.mjs`.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin load -- [N] [W] [C] [--daemon] [--durability process|device]
//!     [--store sled|memory] [--actors-max K]
//! ```
//!
//! N one-shot timers (the `oneshot` policy of `benches/config/`) due evenly over W ms are created
//! by C concurrent callers on a sled store in `$TMPDIR`, after a lead chosen from a calibration
//! batch; each create returns only once durable. The engine runs on the system clock with its
//! fire-rate limit lifted (the peers have none). A timer *fires* when its channel is called; it
//! is *complete* when its past event is durable (the engine publishes a past event after its
//! commit's flush).
//!
//! - library (default): the engine in this process; callers are tasks calling `Engine::create`,
//!   the channel is an in-process recorder, completions come from `Engine::subscribe`;
//! - `--daemon`: `target/release/tickler serve` (or `$TICKLER_BIN`) as a child process; callers
//!   are C admin-socket connections sending `entity.create`, the channel is a webhook to an HTTP
//!   receiver in this process (keep-alive), completions come from a `watch` connection.
//!
//! - `--store memory`: the library on the in-memory store: nothing is durable, so this is what
//!   the engine itself costs, the ceiling any store could reach.
//! - `--actors-max K` (library only): the registry's cap on live entity actors (the shipped
//!   config's `actors_max`, 2,000, otherwise), and no passivation after scheduling, so up to K
//!   entities are still live when their timers fire: what the actor life cycle (stop, then
//!   spawn and replay at the wake) costs the fire path, against the memory live actors hold.
//!
//! stdout: one JSON line; stderr: progress, then the same figures as a table. Extras in the
//! line: peak RSS, memory per pending timer (resident memory added by scheduling N timers),
//! bytes on disk per event against the encoded record (and, on sled, once the store is compacted
//! as `tickler compact` does), the store's write and flush timings (from
//! the engine's metrics histograms, the library's or with `--daemon` the daemon's), and how long the whole machine was stalled on
//! I/O during the run (`io_full_stall_ms`, from `/proc/pressure/io`). With env `LATE_CSV=path`, each timer's
//! due instant and lateness go to that file as well.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::json;
use tickler::store::{Durability, GroupCommitStats};
use tickler::{
    Channel, CreateEntity, DeliveryError, Engine, EntityId, Message, SledStore, Store, SystemClock,
    Timestamp, async_trait,
};
use tickler_admin::protocol::EntityCreate;
use tickler_admin::{Client, Request};
use tickler_benches::cpu::{ForeignCpuMeter, busy_pct_over_a_second, io_full_stall_us};
use tickler_benches::daemon::{Daemon, rss_kib_of};
use tickler_benches::protocol::{
    CALIBRATION_JOBS, CallLatencies, Params, RunFacts, Tracker, latency_summary, report,
    run_callers, sleep_until, wall_ms,
};
use tickler_benches::{receiver, rss_kib, shipped_config};

fn bench_config() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config")
}

/// `timer/t<i>`, or a key of its occurrence (`timer/t<i>#fire#0`) → i.
fn timer_index(text: &str) -> Option<usize> {
    let entity = text.split('#').next()?;
    entity.strip_prefix("timer/t")?.parse().ok()
}

fn timer(i: usize, due_ms: f64) -> (EntityId, CreateEntity) {
    tickler_benches::oneshot_timer(i, Timestamp::from_millis(due_ms as i64).unwrap())
}

/// What a run measured besides the tracker.
struct Outcome {
    schedule_ms: f64,
    schedule_latencies: CallLatencies,
    rss_before_kib: u64,
    rss_scheduled_kib: u64,
    rss_peak_kib: u64,
    disk_bytes: u64,
    /// The store's size once copied into a fresh sled database (`tickler compact`), sled only.
    disk_bytes_compacted: Option<u64>,
    events: u64,
    completion_lagged: u64,
    /// The library's group commit, and its store timings (from its metrics).
    group_commit: Option<(GroupCommitStats, serde_json::Value)>,
    /// The daemon's store timings, from its metrics.
    daemon_store_timings: Option<serde_json::Value>,
}

// ---- library mode -----------------------------------------------------------------------------

/// Calls the tracker for each timer the channel is asked to deliver.
struct FireRecorder {
    tracker: Option<Arc<Tracker>>,
}

#[async_trait]
impl Channel for FireRecorder {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        let at = wall_ms();
        if let (Some(tracker), Some(i)) = (&self.tracker, timer_index(&message.entity)) {
            tracker.fire(i, at);
        }
        Ok(String::new())
    }
}

/// How the library-mode engine is set up.
#[derive(Clone, Copy)]
struct LibrarySetup {
    store: StoreChoice,
    /// `Some`: the registry's cap, and entities are left live after scheduling.
    actors_max: Option<usize>,
}

/// Where the engine keeps its data.
#[derive(Clone, Copy, PartialEq, Eq)]
enum StoreChoice {
    Sled(Durability),
    /// The in-memory store: nothing is durable; what the engine costs without a disk.
    Memory,
}

async fn open_engine(dir: &Path, setup: LibrarySetup, tracker: Option<Arc<Tracker>>) -> Engine {
    let mut options = shipped_config(dir).engine;
    // Capacity is what is measured: the peers run without a rate limit too.
    options.fire_rate_max_per_s = u32::MAX;
    if let Some(actors_max) = setup.actors_max {
        options.actors_max = actors_max;
    }
    let store: Arc<dyn Store> = match setup.store {
        StoreChoice::Sled(durability) => {
            Arc::new(SledStore::open_with(&dir.join("store"), durability).unwrap())
        }
        StoreChoice::Memory => Arc::new(tickler::MemoryStore::new()),
    };
    let config = bench_config();
    Engine::builder()
        .options(options)
        .store(store)
        .clock(Arc::new(SystemClock))
        .catalog(
            tickler::load_catalog(&config.join("policies"), &config.join("templates")).unwrap(),
        )
        .channel("file", Arc::new(FireRecorder { tracker }))
        .open()
        .await
        .unwrap()
}

async fn schedule_library(
    engine: &Engine,
    count: usize,
    callers: usize,
    due: Arc<dyn Fn(usize) -> f64 + Send + Sync>,
) -> (f64, CallLatencies) {
    let engine = engine.clone();
    run_callers(count, callers, move |i| {
        let (engine, due) = (engine.clone(), due.clone());
        async move {
            let due_ms = due(i);
            let (id, create) = timer(i, due_ms);
            note_if_created_after_due(due_ms);
            engine.create(&id, create).await.unwrap();
        }
    })
    .await
}

/// What the store in `dir` takes on disk after `tickler compact` (the same copy into a fresh
/// sled database), as sled counts it.
fn compacted_size(dir: &Path) -> u64 {
    let copy = dir.join("store.compacted");
    SledStore::open(&dir.join("store"))
        .unwrap()
        .copy_into(&copy)
        .unwrap();
    SledStore::open(&copy)
        .unwrap()
        .stats()
        .unwrap()
        .size_on_disk
}

async fn calibrate_library(params: &Params, setup: LibrarySetup, count: usize) -> f64 {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let engine = open_engine(dir.path(), setup, None).await;
    let in_an_hour = wall_ms() + 3_600_000.0;
    let (ms, _) = schedule_library(
        &engine,
        count,
        params.callers,
        Arc::new(move |_| in_an_hour),
    )
    .await;
    engine.shutdown().await.unwrap();
    ms
}

async fn run_library(
    params: &Params,
    setup: LibrarySetup,
    tracker: Arc<Tracker>,
    meter: &mut ForeignCpuMeter,
) -> Outcome {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let engine = open_engine(dir.path(), setup, Some(tracker.clone())).await;
    let mut past_events = engine.subscribe();
    let completions = {
        let tracker = tracker.clone();
        tokio::spawn(async move {
            let mut lagged = 0;
            loop {
                match past_events.recv().await {
                    Ok(past) => {
                        if let Some(i) = timer_index(past.entity.as_str()) {
                            tracker.done(i, wall_ms());
                        }
                    }
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(n)) => lagged += n,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => return lagged,
                }
            }
        })
    };
    let (rss_before_kib, _) = rss_kib();
    let due = tracker.clone();
    let (schedule_ms, schedule_latencies) = schedule_library(
        &engine,
        params.n,
        params.callers,
        Arc::new(move |i| due.due[i]),
    )
    .await;
    if setup.actors_max.is_none() {
        engine.passivate_idle();
    }
    let (rss_scheduled_kib, _) = rss_kib();
    fire_phase(params, &tracker, meter, schedule_ms).await;
    let stats = engine.store_stats().unwrap();
    let group_commit = engine.group_commit_stats();
    let store_timings = store_timings(&engine.metrics_text().await.unwrap());
    engine.shutdown().await.unwrap();
    drop(engine);
    let completion_lagged = completions.await.unwrap();
    let disk_bytes_compacted =
        matches!(setup.store, StoreChoice::Sled(_)).then(|| compacted_size(dir.path()));
    Outcome {
        schedule_ms,
        schedule_latencies,
        rss_before_kib,
        rss_scheduled_kib,
        rss_peak_kib: rss_kib().1,
        disk_bytes: stats.size_on_disk,
        disk_bytes_compacted,
        events: stats.events,
        completion_lagged,
        group_commit: Some((group_commit, store_timings)),
        daemon_store_timings: None,
    }
}

// ---- daemon mode ------------------------------------------------------------------------------

const SECRET_ENV: &str = "TICKLER_LOAD_SECRET";

/// Timers whose create call started at or after their due instant (a run whose scheduling
/// outlasted its lead). The one-shot policy says `if_moved_into_past = "fire-now"`, so such a timer
/// fires as soon as it is created, late; the count says how many of the late fires are that.
static CREATED_AFTER_DUE: AtomicUsize = AtomicUsize::new(0);

fn note_if_created_after_due(due_ms: f64) {
    if wall_ms() >= due_ms {
        CREATED_AFTER_DUE.fetch_add(1, Ordering::Relaxed);
    }
}

/// A daemon on a fresh data directory in `work`, whose timers are delivered to `receiver`.
fn start_daemon(work: &Path, durability: Durability, receiver: std::net::SocketAddr) -> Daemon {
    let config = bench_config();
    let text = format!(
        "data_dir = {data:?}\npolicies = {policies:?}\ntemplates = {templates:?}\n\
         learning = {learning:?}\nclock = \"system\"\ndurability = {durability:?}\n\n\
         [log]\nfilter = \"warn\"\n\n\
         [engine]\nfire_rate_max_per_s = {rate}\n\n\
         [channels.file]\nkind = \"webhook\"\nurl = \"http://{receiver}/fire\"\n\
         allow_hosts = [\"127.0.0.1\"]\nallow_private = true\nsecret_env = \"{SECRET_ENV}\"\n",
        data = work.join("data"),
        policies = config.join("policies"),
        templates = config.join("templates"),
        learning = work.join("no-seeds"),
        durability = durability.name(),
        rate = u32::MAX,
    );
    let path = work.join("tickler.toml");
    std::fs::write(&path, text).unwrap();
    Daemon::start(
        &path,
        &work.join("data/admin/tickler.sock"),
        &[],
        &[(SECRET_ENV, "load")],
        &work.join("daemon.log"),
    )
}

async fn schedule_daemon(
    socket: &Path,
    count: usize,
    callers: usize,
    due: Arc<dyn Fn(usize) -> f64 + Send + Sync>,
) -> (f64, CallLatencies) {
    let started = std::time::Instant::now();
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = CallLatencies::default();
    let mut tasks = Vec::new();
    for _ in 0..callers.min(count) {
        let (next, due, socket) = (next.clone(), due.clone(), socket.to_owned());
        let latencies = latencies.clone();
        tasks.push(tokio::spawn(async move {
            let mut client = Client::connect(&socket).await.unwrap();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let due_ms = due(i);
                let (entity, create) = timer(i, due_ms);
                note_if_created_after_due(due_ms);
                let request = Request::EntityCreate(EntityCreate {
                    entity,
                    policy: create.policy,
                    workflow: None,
                    recipient: create.recipient,
                    zone: create.zone,
                    anchors: create.anchors,
                    attributes: create.attributes,
                });
                let called = std::time::Instant::now();
                let reply = client.call(request).await.unwrap();
                let ms = called.elapsed().as_secs_f64() * 1e3;
                latencies.lock().unwrap().push(ms);
                assert!(reply.ok, "entity.create refused: {:?}", reply.error);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    (started.elapsed().as_secs_f64() * 1e3, latencies)
}

async fn calibrate_daemon(params: &Params, durability: Durability, count: usize) -> f64 {
    let work = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let receiver = receiver::start(|_| {}).await;
    let mut daemon = start_daemon(work.path(), durability, receiver);
    let in_an_hour = wall_ms() + 3_600_000.0;
    let (ms, _) = schedule_daemon(
        &daemon.socket,
        count,
        params.callers,
        Arc::new(move |_| in_an_hour),
    )
    .await;
    daemon.kill();
    ms
}

async fn run_daemon(
    params: &Params,
    durability: Durability,
    tracker: Arc<Tracker>,
    meter: &mut ForeignCpuMeter,
) -> Outcome {
    let work = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let fires = tracker.clone();
    let receiver = receiver::start(move |key| {
        if let Some(i) = timer_index(key) {
            fires.fire(i, wall_ms());
        }
    })
    .await;
    let mut daemon = start_daemon(work.path(), durability, receiver);
    meter.also(daemon.pid());
    let mut watch = Client::connect(&daemon.socket).await.unwrap();
    assert!(watch.call(Request::Watch).await.unwrap().ok);
    let completions = {
        let tracker = tracker.clone();
        tokio::spawn(async move {
            let mut lagged = 0;
            while let Ok(reply) = watch.next_reply().await {
                match (reply.result, reply.error) {
                    (Some(result), _) => {
                        if let Some(i) = result["entity"].as_str().and_then(timer_index) {
                            tracker.done(i, wall_ms());
                        }
                    }
                    // "N past events were missed by this slow watcher"
                    (None, Some(error)) if error.code == "watch_lagged" => {
                        lagged += error
                            .message
                            .split_whitespace()
                            .next()
                            .and_then(|n| n.parse::<u64>().ok())
                            .unwrap_or(0);
                    }
                    _ => {}
                }
            }
            lagged
        })
    };
    let rss_before_kib = rss_kib_of(daemon.pid());
    let due = tracker.clone();
    let (schedule_ms, schedule_latencies) = schedule_daemon(
        &daemon.socket,
        params.n,
        params.callers,
        Arc::new(move |i| due.due[i]),
    )
    .await;
    let rss_scheduled_kib = rss_kib_of(daemon.pid());
    fire_phase(params, &tracker, meter, schedule_ms).await;
    let mut client = Client::connect(&daemon.socket).await.unwrap();
    let status = client.call(Request::Status).await.unwrap().result.unwrap();
    let metrics = client.call(Request::Metrics).await.unwrap().result.unwrap();
    let store_timings = store_timings(metrics["text"].as_str().unwrap_or_default());
    let rss_peak_kib = std::fs::read_to_string(format!("/proc/{}/status", daemon.pid()))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches(" kB").parse().ok())
        })
        .unwrap_or(0);
    let _ = client.call(Request::Shutdown).await;
    daemon.wait();
    let completion_lagged = completions.await.unwrap();
    Outcome {
        schedule_ms,
        schedule_latencies,
        rss_before_kib,
        rss_scheduled_kib,
        rss_peak_kib,
        disk_bytes: status["store_bytes"].as_u64().unwrap_or(0),
        disk_bytes_compacted: None,
        events: status["events"].as_u64().unwrap_or(0),
        completion_lagged,
        group_commit: None,
        daemon_store_timings: Some(store_timings),
    }
}

/// The store's write and flush timings from an engine's `metrics` (the library's or the
/// daemon's): p50 and p99 in milliseconds, estimated from the histograms' buckets as
/// Prometheus's `histogram_quantile` does (linear within a bucket), so within a bucket's width;
/// `null` for a histogram with nothing in it.
fn store_timings(metrics: &str) -> serde_json::Value {
    let ms = |name: &str, q: f64| {
        histogram_quantile(metrics, name, q).map(|seconds| (seconds * 1e4).round() / 10.0)
    };
    let timings = |name: &str| json!({"p50": ms(name, 0.5), "p99": ms(name, 0.99)});
    json!({
        "flush_ms": timings("tickler_store_flush_duration_seconds"),
        "write_ms": timings("tickler_store_write_duration_seconds"),
    })
}

/// The `q` quantile of the histogram `name` in a Prometheus text exposition: the bucket holding
/// the `q * count`-th value, interpolated linearly between its bounds; the highest finite bound
/// when it falls in the `+Inf` bucket.
fn histogram_quantile(metrics: &str, name: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, f64)> = metrics
        .lines()
        .filter_map(|line| {
            let (le, count) = line.strip_prefix(&prefix)?.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0.0 {
        return None;
    }
    let rank = q * total;
    let (mut lower, mut below) = (0.0, 0.0);
    for (upper, cumulative) in buckets {
        if cumulative >= rank {
            if upper.is_infinite() {
                return Some(lower);
            }
            return Some(lower + (upper - lower) * (rank - below) / (cumulative - below));
        }
        (lower, below) = (upper, cumulative);
    }
    None
}

// ---- the protocol -----------------------------------------------------------------------------

/// Waits out the lead (not metered), then meters firing until the end-of-run rule holds.
async fn fire_phase(
    params: &Params,
    tracker: &Tracker,
    meter: &mut ForeignCpuMeter,
    schedule_ms: f64,
) {
    meter.pause();
    eprintln!(
        "scheduled {} in {schedule_ms:.0} ms ({:.0}/s)",
        params.n,
        params.n as f64 / schedule_ms * 1e3
    );
    sleep_until(tracker.due[0] - 200.0, || false).await;
    meter.resume();
    while !tracker.finished(params) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

struct Args {
    params: Params,
    durability: Durability,
    daemon: bool,
    memory: bool,
    actors_max: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut positional = Vec::new();
    let mut durability = Durability::Process;
    let mut daemon = false;
    let mut memory = false;
    let mut actors_max = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--daemon" => daemon = true,
            "--store" => {
                memory = match args.next().as_deref() {
                    Some("sled") => false,
                    Some("memory") => true,
                    other => return Err(format!("--store sled|memory, not {other:?}")),
                }
            }
            "--durability" => {
                durability = match args.next().as_deref() {
                    Some("process") => Durability::Process,
                    Some("device") => Durability::Device,
                    other => return Err(format!("--durability process|device, not {other:?}")),
                }
            }
            "--actors-max" => {
                let value = args.next();
                actors_max = match value.as_deref().map(str::parse::<usize>) {
                    Some(Ok(k)) if k > 0 => Some(k),
                    _ => {
                        return Err(format!(
                            "--actors-max takes a positive count, not {value:?}"
                        ));
                    }
                }
            }
            flag if flag.starts_with("--") => return Err(format!("unknown option {flag}")),
            _ => positional.push(arg),
        }
    }
    if positional.len() > 3 {
        return Err(format!("at most N W C, not {positional:?}"));
    }
    if daemon && memory {
        return Err("--store memory is for the library; the daemon keeps its data in sled".into());
    }
    if daemon && actors_max.is_some() {
        return Err(
            "--actors-max is for the library; the daemon's cap is `actors_max` in its config"
                .into(),
        );
    }
    Ok(Args {
        params: Params::from(&positional)?,
        durability,
        daemon,
        memory,
        actors_max,
    })
}

/// Group commit's figures for the JSON line: how many commits shared each store write and
/// flush, and how long those took (`store_timings`).
fn group_commit_json(
    (stats, timings): &(GroupCommitStats, serde_json::Value),
) -> serde_json::Value {
    json!({
        "commits": stats.commits,
        "groups": stats.commit_groups,
        "flushes": stats.flushes,
        "commits_per_group": stats.commits as f64 / stats.commit_groups.max(1) as f64,
        "write_ms": timings["write_ms"],
        "flush_ms": timings["flush_ms"],
    })
}

/// The encoded size of a timer's first record, to compare the disk's bytes per event with.
fn created_record_len() -> usize {
    let (_, create) = timer(0, 0.0);
    tickler_benches::protocol::created_record(create).len()
}

#[tokio::main]
async fn main() {
    let Args {
        params,
        durability,
        daemon,
        memory,
        actors_max,
    } = parse_args().unwrap_or_else(|err| {
        eprintln!(
            "load: {err}\nusage: load [N] [W] [C] [--daemon] [--durability process|device] [--store sled|memory] [--actors-max K]"
        );
        std::process::exit(2);
    });

    let setup = LibrarySetup {
        store: if memory {
            StoreChoice::Memory
        } else {
            StoreChoice::Sled(durability)
        },
        actors_max,
    };
    // Calibration into a throw-away store: the lead that keeps scheduling before firing.
    let calibration_count = params.n.min(CALIBRATION_JOBS);
    let calibration_ms = if daemon {
        calibrate_daemon(&params, durability, calibration_count).await
    } else {
        calibrate_library(&params, setup, calibration_count).await
    };
    let lead_ms = params.lead_ms(calibration_count, calibration_ms);
    eprintln!(
        "calibration: {calibration_count} timers in {calibration_ms:.0} ms; lead {lead_ms} ms"
    );

    let busy_pct_before = busy_pct_over_a_second();
    let tracker = Arc::new(Tracker::new(&params, wall_ms(), lead_ms));
    let mut meter = ForeignCpuMeter::started(None);
    let io_stall_before = io_full_stall_us();
    let outcome = if daemon {
        run_daemon(&params, durability, tracker.clone(), &mut meter).await
    } else {
        run_library(&params, setup, tracker.clone(), &mut meter).await
    };

    let io_stall_ms = io_stall_before
        .zip(io_full_stall_us())
        .map(|(before, after)| after.saturating_sub(before) as f64 / 1e3);
    let (system, worker, completion) = if memory {
        (
            "tickler+memory",
            "library on the in-memory store (nothing durable: the engine's own ceiling), system clock, fire_rate_max_per_s lifted",
            "past event published after its commit (Engine::subscribe)",
        )
    } else if daemon {
        (
            "tickler+sled (daemon)",
            "tickler serve, system clock, fire_rate_max_per_s lifted; callers on C admin-socket connections; webhook channel to a keep-alive HTTP receiver",
            "past event streamed by the daemon's watch after its commit's flush",
        )
    } else {
        (
            "tickler+sled",
            "library, system clock, fire_rate_max_per_s lifted, group commit",
            "past event published after its commit's flush (Engine::subscribe)",
        )
    };
    let line = report(
        &params,
        &tracker,
        &mut meter,
        RunFacts {
            system: system.into(),
            schedule_ms: outcome.schedule_ms,
            lead_ms,
            durability: match (memory, durability) {
                (true, _) => "none: in-memory store".into(),
                (false, Durability::Process) => {
                    "sled flush (sync_file_range) before each reply: survives kill -9".into()
                }
                (false, Durability::Device) => {
                    "sled flush + fdatasync before each reply: survives power loss".into()
                }
            },
            busy_pct_before,
            extra: json!({
                "worker": worker,
                "completion": completion,
                "completion_lagged": outcome.completion_lagged,
                "created_after_due": CREATED_AFTER_DUE.load(Ordering::Relaxed),
                "schedule_call_ms": latency_summary(&outcome.schedule_latencies),
                "peak_rss_kib": outcome.rss_peak_kib,
                // Live actors when `--actors-max` is given; passivated entities otherwise.
                "actors_max": actors_max,
                "pending_timer_bytes": (outcome.rss_scheduled_kib.saturating_sub(outcome.rss_before_kib) * 1024) as f64
                    / params.n as f64,
                "disk_bytes": outcome.disk_bytes,
                "events": outcome.events,
                "disk_bytes_per_event": outcome.disk_bytes as f64 / outcome.events.max(1) as f64,
                "disk_bytes_per_event_compacted": outcome
                    .disk_bytes_compacted
                    .map(|bytes| bytes as f64 / outcome.events.max(1) as f64),
                "created_record_bytes": created_record_len(),
                // The machine's disk stalled everything for this long during the run (PSI).
                "io_full_stall_ms": io_stall_ms,
                "group_commit": outcome
                    .group_commit
                    .as_ref()
                    .map(group_commit_json)
                    .or(outcome.daemon_store_timings),
            }),
        },
    );
    eprintln!("{}", tickler_benches::summary::load_table(&line));
    println!("{line}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_timings_are_estimated_from_the_histograms_buckets_in_milliseconds() {
        let metrics = "# TYPE tickler_store_flush_duration_seconds histogram\n\
                       tickler_store_flush_duration_seconds_bucket{le=\"0.001\"} 50\n\
                       tickler_store_flush_duration_seconds_bucket{le=\"0.0025\"} 80\n\
                       tickler_store_flush_duration_seconds_bucket{le=\"0.005\"} 100\n\
                       tickler_store_flush_duration_seconds_bucket{le=\"+Inf\"} 100\n\
                       tickler_store_flush_duration_seconds_sum 0.12\n\
                       tickler_store_flush_duration_seconds_count 100\n";
        assert_eq!(
            store_timings(metrics),
            json!({"flush_ms": {"p50": 1.0, "p99": 4.9}, "write_ms": {"p50": null, "p99": null}})
        );
    }

    #[test]
    fn a_quantile_in_the_overflow_bucket_is_the_highest_finite_bound() {
        let metrics = "h_bucket{le=\"1\"} 1\nh_bucket{le=\"+Inf\"} 10\n";
        assert_eq!(histogram_quantile(metrics, "h", 0.99), Some(1.0));
    }
}
