//! What the load tools share: an allocator that can count, the shipped config, a concurrent
//! fill through the engine, a channel that records when each delivery arrived, a clock that
//! starts at a chosen instant and runs in real time, and percentiles. `protocol` holds the peers' benchmark protocol, `cpu` how
//! undisturbed a run was, `daemon` the real daemon as a child process, `receiver` an HTTP
//! endpoint for its webhook channel and `summary` the load generator's table.

pub mod alloc_count;
pub mod cpu;
pub mod daemon;
pub mod protocol;
pub mod receiver;
pub mod summary;

/// Every binary and criterion bench of this crate runs on the daemon's allocator (see
/// `crates/tickler/src/main.rs`), so the library's figures are the daemon's; `alloc_count`
/// counts what goes through it.
#[global_allocator]
static ALLOCATOR: alloc_count::Counting<mimalloc::MiMalloc> =
    alloc_count::Counting::new(mimalloc::MiMalloc);

use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tickler::config::Config;
use tickler::{
    Channel, Clock, CreateEntity, DeliveryError, Engine, EntityId, Message, Span, Timestamp,
    async_trait,
};

/// The repository's `config/tickler.toml`, with its data directory moved to `data_dir`.
pub fn shipped_config(data_dir: &Path) -> Config {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut config = Config::load(&root.join("tickler.toml")).expect("the shipped config loads");
    config.data_dir = data_dir.to_owned();
    config
}

/// Timer `i` of the load protocol: `timer/t<i>` under the `oneshot` policy of `benches/config`,
/// firing once at `at`.
pub fn oneshot_timer(i: usize, at: Timestamp) -> (EntityId, CreateEntity) {
    let id = EntityId::parse(&format!("timer/t{i}")).unwrap();
    let create = CreateEntity {
        policy: "oneshot".into(),
        workflow: None,
        recipient: format!("r{i}@example.org"),
        zone: tickler::Zone::UTC,
        anchors: [("at".to_owned(), at)].into(),
        attributes: Default::default(),
    };
    (id, create)
}

/// Creates entities `0..count` (`create(i)` says which and how) from `callers` concurrent
/// tasks, each call returning once durable; returns how long it took.
pub async fn fill(
    engine: &Engine,
    count: usize,
    callers: usize,
    create: impl Fn(usize) -> (EntityId, CreateEntity) + Send + Sync + 'static,
) -> Duration {
    let started = Instant::now();
    let next = Arc::new(AtomicU64::new(0));
    let create = Arc::new(create);
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (engine, next, create) = (engine.clone(), next.clone(), create.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed) as usize;
                if i >= count {
                    break;
                }
                let (id, entity) = create(i);
                engine.create(&id, entity).await.unwrap();
                // Bulk loads keep few actors alive: the registry's `actors_max` applies too.
                if i.is_multiple_of(64) {
                    engine.passivate_idle();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

/// One delivery as the channel saw it.
#[derive(Clone, Debug)]
pub struct Arrival {
    pub key: String,
    pub due_at: Timestamp,
    /// The engine's clock when the channel was called.
    pub at: Timestamp,
    /// Real time, for rates.
    pub instant: Instant,
}

/// A channel that records every delivery and accepts it.
pub struct Recorder {
    clock: Arc<dyn Clock>,
    pub arrivals: Mutex<Vec<Arrival>>,
}

impl Recorder {
    pub fn new(clock: Arc<dyn Clock>) -> Arc<Recorder> {
        Arc::new(Recorder {
            clock,
            arrivals: Mutex::new(Vec::new()),
        })
    }

    pub fn count(&self) -> usize {
        self.arrivals.lock().unwrap().len()
    }
}

#[async_trait]
impl Channel for Recorder {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        let arrival = Arrival {
            key: message.idempotency_key.clone(),
            due_at: message.due_at,
            at: self.clock.now(),
            instant: Instant::now(),
        };
        self.arrivals.lock().unwrap().push(arrival);
        Ok(String::new())
    }
}

/// A clock that reads `start` when created and then runs `speed` times faster than real time: a
/// restart "at 08:59:58" without waiting for that hour, and an hour of deliveries in a minute.
pub struct OffsetClock {
    start: Timestamp,
    origin: Instant,
    speed: u32,
}

impl OffsetClock {
    pub fn starting_at(start: Timestamp, speed: u32) -> OffsetClock {
        OffsetClock {
            start,
            origin: Instant::now(),
            speed: speed.max(1),
        }
    }
}

#[async_trait]
impl Clock for OffsetClock {
    fn now(&self) -> Timestamp {
        let elapsed_ms = self.origin.elapsed().as_millis() as i64 * i64::from(self.speed);
        self.start.saturating_add(Span::from_millis(elapsed_ms))
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let wait_ms = deadline.since(self.now()).as_millis() / i64::from(self.speed);
        tokio::time::sleep(Duration::from_millis(wait_ms.clamp(0, 1_000) as u64)).await;
    }
}

/// The value at quantile `q` (0..=1) of sorted values.
pub fn percentile(sorted: &[i64], q: f64) -> i64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = ((sorted.len() - 1) as f64 * q).round() as usize;
    sorted[rank]
}

/// The most values in any window of `width` over sorted instants.
pub fn most_in_any_window(sorted: &[Instant], width: Duration) -> usize {
    let mut most = 0;
    let mut from = 0;
    for (to, at) in sorted.iter().enumerate() {
        while at.duration_since(sorted[from]) >= width {
            from += 1;
        }
        most = most.max(to - from + 1);
    }
    most
}

/// This process's resident memory now and at its peak, in KiB (Linux).
pub fn rss_kib() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}
