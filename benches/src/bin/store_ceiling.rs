//! The storage ceiling of tickler on sled (issue 7): the engine's own writes for the load
//! protocol, replayed against a fresh `SledStore` with nothing else running. It answers "how
//! much of the gap to the targets is sled's": whatever the engine does, it cannot schedule or
//! fire faster than its store takes these writes.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin store_ceiling -- [N] [GROUP]   (100000; 64)
//! ```
//!
//! 1. Capture: the engine runs the `oneshot` policy on the in-memory store, behind a wrapper
//!    that keeps a copy of every commit batch. N timers are created (64 callers), then the
//!    manual clock passes their due instant and all N fire through a channel that does nothing.
//! 2. Replay: the schedule phase's batches, then the fire phase's, are applied in their order to
//!    a fresh sled store in `$TMPDIR`, GROUP batches per `commit_group` and one flush per group
//!    (what `GroupCommit` does with GROUP waiting commits), once per durability level. No reads,
//!    no actors, no channel: the rates are what the store alone allows.
//!
//! Output: a table on stderr, one JSON line per durability level on stdout.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use tickler::store::{CommitBatch, CommitReceipt, Durability, Error, forward_store_methods};
use tickler::{
    Channel, DeliveryError, Engine, ManualClock, MemoryStore, Message, SledStore, Span, Store,
    Timestamp, async_trait,
};
use tickler_benches::protocol::run_callers;
use tickler_benches::shipped_config;

const CALLERS: usize = 64;

/// The in-memory store, keeping a copy of every batch committed through it.
struct RecordingStore {
    inner: MemoryStore,
    batches: Mutex<Vec<CommitBatch>>,
}

impl RecordingStore {
    fn take(&self) -> Vec<CommitBatch> {
        std::mem::take(&mut *self.batches.lock().unwrap())
    }
}

impl Store for RecordingStore {
    fn commit(&self, batch: CommitBatch) -> Result<CommitReceipt, Error> {
        let receipt = self.inner.commit(batch.clone())?;
        self.batches.lock().unwrap().push(batch);
        Ok(receipt)
    }
    fn commit_group(&self, batches: Vec<CommitBatch>) -> Vec<Result<CommitReceipt, Error>> {
        let results = self.inner.commit_group(batches.clone());
        let mut kept = self.batches.lock().unwrap();
        for (batch, result) in batches.into_iter().zip(&results) {
            if result.is_ok() {
                kept.push(batch);
            }
        }
        results
    }
    forward_store_methods!(inner: flush, last_seq, read_events, snapshot, past_events,
        past_event, timers_after, timers_from, entities_after, index_members, meta, set_meta,
        stats);
}

struct Discard;

#[async_trait]
impl Channel for Discard {
    async fn deliver(&self, _message: &Message) -> Result<String, DeliveryError> {
        Ok(String::new())
    }
}

/// What one phase's batches hold: how many batches, and the store entries they write.
#[derive(Default, Clone, Copy)]
struct Shape {
    batches: usize,
    events: usize,
    entries: usize,
}

fn shape(batches: &[CommitBatch]) -> Shape {
    let mut shape = Shape {
        batches: batches.len(),
        ..Shape::default()
    };
    for batch in batches {
        shape.events += batch.events.len();
        shape.entries += batch.keys_written();
    }
    shape
}

/// Runs the protocol on the recording store: (schedule batches, fire batches).
async fn capture(n: usize) -> (Vec<CommitBatch>, Vec<CommitBatch>) {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let store = Arc::new(RecordingStore {
        inner: MemoryStore::new(),
        batches: Mutex::new(Vec::new()),
    });
    let start = Timestamp::parse("2027-01-04T08:00:00Z").unwrap();
    let due = start.saturating_add(Span::hours(1));
    let clock = Arc::new(ManualClock::new(start));
    let mut options = shipped_config(dir.path()).engine;
    options.fire_rate_max_per_s = u32::MAX;
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let engine = Engine::builder()
        .options(options)
        .store(store.clone())
        .clock(clock.clone())
        .catalog(
            tickler::load_catalog(&config.join("policies"), &config.join("templates")).unwrap(),
        )
        .channel("file", Arc::new(Discard))
        .open()
        .await
        .unwrap();
    store.take(); // what opening the engine wrote

    let creating = engine.clone();
    run_callers(n, CALLERS, move |i| {
        let engine = creating.clone();
        async move {
            let (id, create) = tickler_benches::oneshot_timer(i, due);
            engine.create(&id, create).await.unwrap();
        }
    })
    .await;
    let scheduled = store.take();

    let mut past_events = engine.subscribe();
    clock.set(due.saturating_add(Span::seconds(1)));
    let mut completed = 0;
    while completed < n {
        match past_events.recv().await {
            Ok(_) => completed += 1,
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => {
                completed += missed as usize
            }
            Err(err) => panic!("the engine stopped publishing past events: {err}"),
        }
    }
    engine.shutdown().await.unwrap();
    let fired = store.take();
    (scheduled, fired)
}

/// Applies the batches to `store` GROUP at a time with one flush per group: seconds taken.
fn replay(store: &SledStore, batches: &[CommitBatch], group: usize) -> f64 {
    let started = Instant::now();
    for chunk in batches.chunks(group) {
        for result in store.commit_group(chunk.to_vec()) {
            result.expect("a captured batch applies to the replayed store");
        }
        store.flush().expect("the store flushes");
    }
    started.elapsed().as_secs_f64()
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |text: &String| match text.parse::<usize>() {
        Ok(value) if value > 0 => value,
        _ => {
            eprintln!(
                "store_ceiling: {text:?} is not a positive count\nusage: store_ceiling [N] [GROUP]"
            );
            std::process::exit(2);
        }
    };
    let n = args.first().map(parse).unwrap_or(100_000);
    let group = args.get(1).map(parse).unwrap_or(64);

    eprintln!("capturing the engine's writes for {n} one-shot timers (memory store)...");
    let (scheduled, fired) = capture(n).await;
    let (schedule_shape, fire_shape) = (shape(&scheduled), shape(&fired));
    eprintln!(
        "schedule: {} batches, {} events, {} store entries; fire: {} batches, {} events, {} store entries",
        schedule_shape.batches,
        schedule_shape.events,
        schedule_shape.entries,
        fire_shape.batches,
        fire_shape.events,
        fire_shape.entries,
    );
    eprintln!(
        "| durability | schedule timers/s | fire timers/s | store entries/s | disk bytes per event |"
    );
    eprintln!("| --- | --- | --- | --- | --- |");
    for durability in [Durability::Process, Durability::Device] {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let store = SledStore::open_with(&dir.path().join("store"), durability).unwrap();
        let schedule_s = replay(&store, &scheduled, group);
        let fire_s = replay(&store, &fired, group);
        let stats = store.stats().unwrap();
        let entries = schedule_shape.entries + fire_shape.entries;
        let entries_per_s = entries as f64 / (schedule_s + fire_s);
        let disk_per_event =
            stats.size_on_disk as f64 / (schedule_shape.events + fire_shape.events) as f64;
        let name = match durability {
            Durability::Process => "process",
            Durability::Device => "device",
        };
        eprintln!(
            "| {name} | {:.0} | {:.0} | {entries_per_s:.0} | {disk_per_event:.0} |",
            n as f64 / schedule_s,
            n as f64 / fire_s,
        );
        println!(
            "{}",
            json!({
                "tool": "store_ceiling",
                "n": n,
                "group": group,
                "durability": name,
                "schedule_per_s": (n as f64 / schedule_s).round(),
                "fire_per_s": (n as f64 / fire_s).round(),
                "store_entries_per_s": entries_per_s.round(),
                "disk_bytes_per_event": disk_per_event,
                "schedule": { "batches": schedule_shape.batches, "events": schedule_shape.events, "entries": schedule_shape.entries },
                "fire": { "batches": fire_shape.batches, "events": fire_shape.events, "entries": fire_shape.entries },
            })
        );
    }
}
