//! Start-up with many pending timers: how long a restarted engine takes to be ready, and how fast
//! it catches up when all of them are overdue.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin startup -- [TIMERS]   (default 100000)
//! ```
//!
//! It fills a sled store through the engine (due dates of the shipped due-date policy, three
//! timers each, created by 64 concurrent callers so group commit applies), stops the engine, and
//! then measures three restarts on a manual clock:
//!
//! 1. timers all in the future: time to ready (`Engine::open` returned);
//! 2. clock moved past the first reminder of every task: time to ready, time to the first
//!    delivery, and the catch-up rate until every overdue reminder is recorded;
//! 3. the same store again, to show the second start-up does not grow with what was processed.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tickler::config::Config;
use tickler::{
    Channel, CreateEntity, DeliveryError, Engine, EntityId, ManualClock, Message, SledStore, Span,
    Store, Timestamp, Zone, async_trait,
};
use tickler_benches::{fill, shipped_config};

const CALLERS: usize = 64;
const TIMERS_PER_ENTITY: usize = 3;

/// Counts deliveries and remembers when the first one arrived.
struct Counter {
    delivered: AtomicU64,
    first: std::sync::Mutex<Option<Instant>>,
}

#[async_trait]
impl Channel for Counter {
    async fn deliver(&self, _message: &Message) -> Result<String, DeliveryError> {
        self.first.lock().unwrap().get_or_insert_with(Instant::now);
        self.delivered.fetch_add(1, Ordering::Relaxed);
        Ok(String::new())
    }
}

fn config(dir: &std::path::Path) -> Config {
    let mut config = shipped_config(dir);
    config.engine.fire_rate_max_per_s = 1_000_000;
    config
}

async fn open(dir: &std::path::Path, now: Timestamp, counter: Arc<Counter>) -> (Engine, Duration) {
    let started = Instant::now();
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("store")).unwrap());
    let config = config(dir);
    let engine = Engine::builder()
        .options(config.engine.clone())
        .store(store)
        .clock(Arc::new(ManualClock::new(now)))
        .catalog(config.catalog().unwrap())
        .channel("file", counter.clone())
        .channel("rapidpro", counter)
        .open()
        .await
        .unwrap();
    (engine, started.elapsed())
}

fn counter() -> Arc<Counter> {
    Arc::new(Counter {
        delivered: AtomicU64::new(0),
        first: std::sync::Mutex::new(None),
    })
}

#[tokio::main]
async fn main() {
    let timers: usize = std::env::args()
        .nth(1)
        .map_or(100_000, |n| n.parse().expect("TIMERS is a number"));
    let entities = timers.div_ceil(TIMERS_PER_ENTITY);
    let dir = tempfile::tempdir().unwrap();
    let t0 = Timestamp::parse("2026-03-01T00:00:00Z").unwrap();
    // Due dates spread over a day, ten days out: pre-due reminders on day 8.
    let due = move |i: usize| {
        t0.saturating_add(Span::days(10))
            .saturating_add(Span::from_millis((i as i64 * 86_400_000) / entities as i64))
    };

    let (engine, _) = open(dir.path(), t0, counter()).await;
    let fill = fill(&engine, entities, CALLERS, move |i| {
        let id = EntityId::parse(&format!("due/bench-{i:07}")).unwrap();
        let create = CreateEntity {
            policy: "due-date".into(),
            workflow: Some("reviewer-report".into()),
            recipient: format!("r{i}@example.org"),
            zone: Zone::UTC,
            anchors: BTreeMap::from([("due_at".to_owned(), due(i))]),
            attributes: BTreeMap::new(),
        };
        (id, create)
    })
    .await;
    let stats = engine.store_stats().unwrap();
    engine.shutdown().await.unwrap();
    drop(engine);
    println!(
        "filled: {entities} due dates, {} pending timers, {} events in {:.2?} ({:.0} durable creates/s with {CALLERS} callers); store {} MB on disk",
        stats.timers,
        stats.events,
        fill,
        entities as f64 / fill.as_secs_f64(),
        stats.size_on_disk / 1_000_000
    );

    // 1. Every timer in the future.
    let (engine, ready) = open(dir.path(), t0.saturating_add(Span::days(1)), counter()).await;
    println!(
        "restart, {} timers pending in the future: ready in {ready:.2?}",
        stats.timers
    );
    engine.shutdown().await.unwrap();
    drop(engine);

    // 2. The pre-due reminder of every task overdue (day 8.5 .. 9 of 10): catch-up.
    let counter_2 = counter();
    let late = t0
        .saturating_add(Span::days(9))
        .saturating_add(Span::hours(1));
    let started = Instant::now();
    let (engine, ready) = open(dir.path(), late, counter_2.clone()).await;
    engine.settle().await.unwrap();
    let done = started.elapsed();
    let delivered = counter_2.delivered.load(Ordering::Relaxed);
    let first = counter_2
        .first
        .lock()
        .unwrap()
        .map(|at| at.duration_since(started));
    println!(
        "restart, {delivered} overdue: ready in {ready:.2?}, first overdue delivery {:.2?} after start, all recorded in {done:.2?} ({:.0}/s catch-up)",
        first.unwrap_or_default(),
        delivered as f64 / (done - ready).as_secs_f64()
    );
    engine.shutdown().await.unwrap();
    drop(engine);

    // 3. Again, with the catch-up behind it.
    let (engine, ready) = open(dir.path(), late, counter()).await;
    println!("restart after catch-up: ready in {ready:.2?}");
    engine.shutdown().await.unwrap();
}
