//! Allocations per scheduled timer and per fire (issue 24): the engine's own cost, counted by
//! the benchmarks' allocator, on the memory store so that sled's allocations are not in it.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin alloc_count -- [N] [--actors-live]   (N = 20000)
//! ```
//!
//! N one-shot timers (`benches/config`'s `oneshot` policy) are created by 64 concurrent callers,
//! each call returning once committed; then the manual clock passes their instant and all N
//! fire through a channel that does nothing. Counted: every allocation in the process while a
//! phase runs (the engine, tokio, the callers' futures and the past-event subscription that
//! tells when the phase is over), divided by N. By default the shipped `actors_max` applies,
//! so most fires wake a passivated entity and replay it; `--actors-live` keeps every entity's
//! actor alive, which shows what the actor life cycle costs.
//!
//! Output: a line per phase on stderr, one JSON line on stdout.

use std::path::Path;
use std::sync::Arc;

use serde_json::json;
use tickler::{
    Channel, DeliveryError, Engine, ManualClock, MemoryStore, Message, Span, Timestamp, async_trait,
};
use tickler_benches::alloc_count::{self, Allocated};
use tickler_benches::protocol::run_callers;
use tickler_benches::shipped_config;

const CALLERS: usize = 64;

struct Discard;

#[async_trait]
impl Channel for Discard {
    async fn deliver(&self, _message: &Message) -> Result<String, DeliveryError> {
        Ok(String::new())
    }
}

async fn open(clock: Arc<ManualClock>, actors_live: bool, n: usize) -> Engine {
    let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
    let mut options = shipped_config(dir.path()).engine;
    options.fire_rate_max_per_s = u32::MAX;
    if actors_live {
        options.actors_max = n + 1;
    }
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    Engine::builder()
        .options(options)
        .store(Arc::new(MemoryStore::new()))
        .clock(clock)
        .catalog(
            tickler::load_catalog(&config.join("policies"), &config.join("templates")).unwrap(),
        )
        .channel("file", Arc::new(Discard))
        .open()
        .await
        .unwrap()
}

async fn schedule(engine: &Engine, n: usize, due: Timestamp) -> Allocated {
    let creating = engine.clone();
    alloc_count::start();
    run_callers(n, CALLERS, move |i| {
        let engine = creating.clone();
        async move {
            let (id, create) = tickler_benches::oneshot_timer(i, due);
            engine.create(&id, create).await.unwrap();
        }
    })
    .await;
    alloc_count::stop()
}

async fn fire(engine: &Engine, clock: &ManualClock, n: usize, due: Timestamp) -> Allocated {
    let mut past_events = engine.subscribe();
    alloc_count::start();
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
    alloc_count::stop()
}

fn usage(problem: &str) -> ! {
    eprintln!("alloc_count: {problem}\nusage: alloc_count [N] [--actors-live]");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let mut n = 20_000;
    let mut actors_live = false;
    for arg in std::env::args().skip(1) {
        match arg.as_str() {
            "--actors-live" => actors_live = true,
            count => match count.parse::<usize>() {
                Ok(value) if value > 0 => n = value,
                _ => usage(&format!(
                    "{count:?} is neither a positive count nor --actors-live"
                )),
            },
        }
    }
    let start = Timestamp::parse("2027-01-04T08:00:00Z").unwrap();
    let due = start.saturating_add(Span::hours(1));
    let clock = Arc::new(ManualClock::new(start));
    let engine = open(clock.clone(), actors_live, n).await;
    let scheduled = schedule(&engine, n, due).await;
    let fired = fire(&engine, &clock, n, due).await;
    engine.shutdown().await.unwrap();

    let per = |total: u64| total as f64 / n as f64;
    let actors = if actors_live { "live" } else { "passivated" };
    for (phase, allocated) in [("schedule", scheduled), ("fire", fired)] {
        eprintln!(
            "{phase}: {:.0} allocations, {:.0} bytes per timer ({n} timers, actors {actors})",
            per(allocated.allocations),
            per(allocated.bytes),
        );
    }
    println!(
        "{}",
        json!({
            "tool": "alloc_count",
            "n": n,
            "actors": actors,
            "schedule": { "allocations_per_timer": per(scheduled.allocations), "bytes_per_timer": per(scheduled.bytes) },
            "fire": { "allocations_per_timer": per(fired.allocations), "bytes_per_timer": per(fired.bytes) },
        })
    );
}
