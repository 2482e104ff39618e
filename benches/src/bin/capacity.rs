//! Capacity and recovery (issue 7): memory and disk per pending timer, and recovery after
//! `kill -9`, with the engine in this process on a sled store in `$TMPDIR`.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin capacity -- pending [N]            (1000000)
//! cargo run --release -p tickler-benches --bin capacity -- recovery [E] [K]       (1000000 100000)
//! ```
//!
//! - `pending N`: N one-shot timers due in a day are created by 64 callers; then every actor is
//!   passivated and the resident memory added by the N timers is divided by N. The engine is
//!   restarted: time to ready and memory then. Disk bytes per event against the record's size.
//! - `recovery E K`: a child process creates E/2 timers (each is 2 events while pending), K of
//!   them due 5 s after the fill ends and the rest in a day, and is SIGKILLed once the K are
//!   overdue. This process then opens the same store on the system clock (fire-rate limit
//!   lifted) and measures: time to ready, time to the first overdue delivery, the catch-up rate
//!   until all K past events are durable, and how many of the K were lost (never delivered).
//!
//! Output: lines for people on stderr, one JSON line on stdout.

use std::collections::HashSet;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::json;
use tickler::{
    Channel, Clock, CreateEntity, DeliveryError, Engine, EntityId, ManualClock, Message, SledStore,
    Store, SystemClock, Timestamp, Zone, async_trait,
};
use tickler_benches::protocol::wall_ms;
use tickler_benches::{fill, rss_kib, shipped_config};

const CALLERS: usize = 64;
/// Far enough that nothing falls due during a run.
const A_DAY_MS: f64 = 86_400_000.0;
/// How long the tool waits for the K overdue timers before counting the missing as lost.
const CATCH_UP_WAIT_MAX: Duration = Duration::from_secs(600);

/// Records deliveries: which timers, how many, and when the first came.
#[derive(Default)]
struct Deliveries {
    keys: std::sync::Mutex<HashSet<String>>,
    count: AtomicU64,
    first_ms: std::sync::Mutex<Option<f64>>,
}

#[async_trait]
impl Channel for Deliveries {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        self.first_ms.lock().unwrap().get_or_insert_with(wall_ms);
        self.keys
            .lock()
            .unwrap()
            .insert(message.idempotency_key.clone());
        self.count.fetch_add(1, Ordering::Relaxed);
        Ok(String::new())
    }
}

/// The engine on `dir`'s sled store, and how long opening the store alone took (the part of a
/// restart that is sled's own recovery, before the engine reads anything).
async fn open(dir: &Path, clock: Arc<dyn Clock>, channel: Arc<Deliveries>) -> (Engine, Duration) {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut options = shipped_config(dir).engine;
    options.fire_rate_max_per_s = u32::MAX;
    let started = Instant::now();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("store")).unwrap());
    let store_opened = started.elapsed();
    let engine = Engine::builder()
        .options(options)
        .store(store)
        .clock(clock)
        .catalog(
            tickler::load_catalog(&config.join("policies"), &config.join("templates")).unwrap(),
        )
        .channel("file", channel)
        .open()
        .await
        .unwrap();
    (engine, store_opened)
}

fn timer(i: usize, due_ms: f64) -> (EntityId, CreateEntity) {
    let id = EntityId::parse(&format!("timer/t{i}")).unwrap();
    let create = CreateEntity {
        policy: "oneshot".into(),
        workflow: None,
        recipient: format!("r{i}@example.org"),
        zone: Zone::UTC,
        anchors: [(
            "at".to_owned(),
            Timestamp::from_millis(due_ms as i64).unwrap(),
        )]
        .into(),
        attributes: Default::default(),
    };
    (id, create)
}

/// Passivates until no actor is left (a few rounds: actors finish their last message first).
async fn passivate_all(engine: &Engine) {
    for _ in 0..50 {
        engine.passivate_idle();
        tokio::time::sleep(Duration::from_millis(100)).await;
        if engine.status().await.unwrap().actors == 0 {
            return;
        }
    }
}

async fn pending(count: usize) {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let (engine, _) = open(dir.path(), Arc::new(SystemClock), Arc::default()).await;
    passivate_all(&engine).await;
    let (rss_before, _) = rss_kib();
    let due = wall_ms() + A_DAY_MS;
    let took = fill(&engine, count, CALLERS, move |i| timer(i, due)).await;
    passivate_all(&engine).await;
    let (rss_after, rss_peak) = rss_kib();
    let stats = engine.store_stats().unwrap();
    engine.shutdown().await.unwrap();
    drop(engine);
    eprintln!(
        "{count} pending timers created in {took:.1?} ({:.0}/s); RSS {rss_before} -> {rss_after} KiB, peak {rss_peak} KiB",
        count as f64 / took.as_secs_f64()
    );

    let started = Instant::now();
    let (engine, store_open) = open(dir.path(), Arc::new(SystemClock), Arc::default()).await;
    let ready = started.elapsed();
    let (rss_restarted, _) = rss_kib();
    let status = engine.status().await.unwrap();
    engine.shutdown().await.unwrap();
    let per_pending = (rss_after.saturating_sub(rss_before) * 1024) as f64 / count as f64;
    eprintln!(
        "restart: ready in {ready:.1?} (sled's open {store_open:.1?}), RSS {rss_restarted} KiB, {} timers in memory; {per_pending:.0} bytes of RSS per pending timer",
        status.timers_in_memory
    );
    println!(
        "{}",
        json!({
            "bench": "pending", "pending": count, "create_per_s": count as f64 / took.as_secs_f64(),
            "rss_before_kib": rss_before, "rss_after_kib": rss_after, "rss_peak_kib": rss_peak,
            "rss_bytes_per_pending": per_pending,
            "restart_ready_ms": ready.as_millis(),
            "restart_store_open_ms": store_open.as_millis(), "restart_rss_kib": rss_restarted,
            "timers_in_memory_after_restart": status.timers_in_memory,
            "disk_bytes": stats.size_on_disk, "events": stats.events,
            "disk_bytes_per_event": stats.size_on_disk as f64 / stats.events.max(1) as f64,
        })
    );
}

/// The child of `recovery`: fills the store, says so on stdout, and waits to be killed.
async fn recovery_child(dir: &Path, events: usize, overdue: usize) {
    // A clock that stays at the start: nothing falls due in the child, which only fills.
    let clock = ManualClock::new(Timestamp::from_millis(wall_ms() as i64).unwrap());
    let (engine, _) = open(dir, Arc::new(clock), Arc::default()).await;
    let timers = events / 2;
    // First the timers due in a day; their rate sizes the margin for the K due soon, which must
    // all be created before they fall due.
    let far = wall_ms() + A_DAY_MS;
    let took_far = fill(&engine, timers - overdue, CALLERS, move |i| {
        timer(overdue + i, far)
    })
    .await;
    let rate = (timers - overdue).max(1) as f64 / took_far.as_secs_f64();
    let due_soon = wall_ms() + overdue as f64 / rate * 1e3 * 2.0 + 5_000.0;
    let took_soon = fill(&engine, overdue, CALLERS, move |i| timer(i, due_soon)).await;
    println!(
        "filled {timers} {} {}",
        (took_far + took_soon).as_millis(),
        due_soon as i64
    );
    // Idle until SIGKILL.
    loop {
        tokio::time::sleep(Duration::from_secs(3_600)).await;
    }
}

async fn recovery(events: usize, overdue: usize) {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["recovery-child"])
        .arg(dir.path())
        .arg(events.to_string())
        .arg(overdue.to_string())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words.first(), Some(&"filled"), "the child said {line:?}");
    let (fill_ms, due_ms): (u64, f64) = (words[2].parse().unwrap(), words[3].parse().unwrap());
    assert!(
        wall_ms() < due_ms,
        "the fill took longer than planned: the overdue timers fell due before the kill"
    );
    eprintln!(
        "child filled {} timers ({events} events) in {fill_ms} ms; waiting for {overdue} of them to be overdue",
        events / 2
    );
    while wall_ms() < due_ms + 1_000.0 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.kill().unwrap();
    child.wait().unwrap();
    measure_recovery(dir.path(), events, overdue).await;
}

async fn measure_recovery(dir: &Path, events: usize, overdue: usize) {
    let deliveries = Arc::new(Deliveries::default());
    let started_ms = wall_ms();
    let started = Instant::now();
    let (engine, store_open) = open(dir, Arc::new(SystemClock), deliveries.clone()).await;
    let ready = started.elapsed();
    let mut past_events = engine.subscribe();
    let completed = Arc::new(AtomicU64::new(0));
    let last_completion_ms = Arc::new(std::sync::Mutex::new(0.0));
    {
        let (completed, last) = (completed.clone(), last_completion_ms.clone());
        tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                // A catch-up outruns the subscription's buffer: the past events it skipped were
                // published too (after their commit's flush), so they count as completed.
                let published = match past_events.recv().await {
                    Ok(_) => 1,
                    Err(RecvError::Lagged(skipped)) => skipped,
                    Err(RecvError::Closed) => break,
                };
                completed.fetch_add(published, Ordering::Relaxed);
                *last.lock().unwrap() = wall_ms();
            }
        });
    }
    let waited = Instant::now();
    while (completed.load(Ordering::Relaxed) as usize) < overdue
        && waited.elapsed() < CATCH_UP_WAIT_MAX
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let status = engine.status().await.unwrap();
    engine.shutdown().await.unwrap();
    let first_ms = deliveries.first_ms.lock().unwrap().unwrap_or(f64::NAN);
    let last_ms = *last_completion_ms.lock().unwrap();
    let delivered = deliveries.keys.lock().unwrap().len();
    let first_after_ready_ms = first_ms - started_ms - ready.as_secs_f64() * 1e3;
    let catch_up_per_s = overdue as f64 / ((last_ms - first_ms) / 1e3);
    eprintln!(
        "after kill -9 with {events} events and {overdue} overdue: ready in {ready:.1?} (sled's open {store_open:.1?}), first overdue delivery {first_after_ready_ms:.0} ms after ready, \
         catch-up {catch_up_per_s:.0}/s, lost {}",
        overdue.saturating_sub(delivered)
    );
    println!(
        "{}",
        json!({
            "bench": "recovery", "events": events, "overdue": overdue,
            "ready_ms": ready.as_secs_f64() * 1e3,
            "store_open_ms": store_open.as_secs_f64() * 1e3,
            "first_overdue_after_ready_ms": first_after_ready_ms,
            "catch_up_per_s": catch_up_per_s,
            "delivered": delivered, "completed": completed.load(Ordering::Relaxed),
            "lost": overdue.saturating_sub(delivered),
            "duplicates": deliveries.count.load(Ordering::Relaxed) as usize - delivered,
            "quarantined": status.quarantined.len(),
        })
    );
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let num = |i: usize, default: usize| {
        args.get(i)
            .map_or(default, |n| n.parse().expect("a whole number"))
    };
    match args.first().map(String::as_str) {
        Some("pending") => pending(num(1, 1_000_000)).await,
        Some("recovery") => recovery(num(1, 1_000_000), num(2, 100_000)).await,
        Some("recovery-child") => {
            recovery_child(Path::new(&args[1]), num(2, 0), num(3, 0)).await;
        }
        _ => {
            eprintln!("usage: capacity pending [N] | capacity recovery [EVENTS] [OVERDUE]");
            std::process::exit(2);
        }
    }
}
