//! The load generator (issue 7): tickler on the peers' protocol (`benches/peers/README.md`),
//! printing the same JSON line as `benches/peers/bullmq.mjs` and `pgboss.mjs`.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin load -- [N] [W] [C] [--durability process|device]
//! ```
//!
//! N one-shot timers (the `oneshot` policy of `benches/config/`) due evenly over W ms are created
//! through the engine by C concurrent callers on a sled store in `$TMPDIR`, after a lead chosen
//! from a calibration batch; each create returns only once durable. The engine runs on the
//! system clock with its fire-rate limit lifted (the peers have none), and a channel records when
//! each timer fired; a timer is complete when its past event is durable (the engine publishes a
//! past event after its commit's flush). stdout: one JSON line; stderr: progress and a table.
//!
//! Extras in the line: peak RSS, memory per pending timer (resident memory added by scheduling
//! N timers), and bytes on disk per event against the encoded record.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;
use tickler::store::Durability;
use tickler::{
    Catalog, Channel, CreateEntity, DeliveryError, Engine, EntityId, Message, SledStore, Store,
    SystemClock, Timestamp, Zone, async_trait,
};
use tickler_benches::cpu::{ForeignCpuMeter, busy_pct_over_a_second};
use tickler_benches::protocol::{
    CALIBRATION_JOBS, Params, RunFacts, Tracker, report, run_callers, sleep_until, wall_ms,
};
use tickler_benches::{rss_kib, shipped_config};

/// Calls the tracker for each timer the channel is asked to deliver.
struct FireRecorder {
    tracker: Arc<Tracker>,
}

/// `timer/t<i>` → i.
fn timer_index(entity: &str) -> Option<usize> {
    entity.strip_prefix("timer/t")?.parse().ok()
}

#[async_trait]
impl Channel for FireRecorder {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        let at = wall_ms();
        if let Some(i) = timer_index(&message.entity) {
            self.tracker.fire(i, at);
        }
        Ok(String::new())
    }
}

/// A channel for the calibration engine, whose timers never fall due during the run.
struct Discard;

#[async_trait]
impl Channel for Discard {
    async fn deliver(&self, _message: &Message) -> Result<String, DeliveryError> {
        Ok(String::new())
    }
}

async fn open(dir: &std::path::Path, durability: Durability, channel: Arc<dyn Channel>) -> Engine {
    let bench_config = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let mut options = shipped_config(dir).engine;
    // Capacity is what is measured: the peers run without a rate limit too.
    options.fire_rate_max_per_s = u32::MAX;
    let store: Arc<dyn Store> =
        Arc::new(SledStore::open_with(&dir.join("store"), durability).unwrap());
    Engine::builder()
        .options(options)
        .store(store)
        .clock(Arc::new(SystemClock))
        .catalog(
            Catalog::load(
                &bench_config.join("policies"),
                &bench_config.join("templates"),
            )
            .unwrap(),
        )
        .channel("file", channel)
        .open()
        .await
        .unwrap()
}

fn timer(i: usize, due_ms: f64) -> (EntityId, CreateEntity) {
    let id = EntityId::parse(&format!("timer/t{i}")).unwrap();
    let at = Timestamp::from_millis(due_ms as i64).unwrap();
    let create = CreateEntity {
        policy: "oneshot".into(),
        workflow: None,
        recipient: format!("r{i}@example.org"),
        zone: Zone::UTC,
        anchors: [("at".to_owned(), at)].into(),
        attributes: Default::default(),
    };
    (id, create)
}

/// Schedules timers `0..count` due at `due(i)` from `callers` tasks; returns the ms it took.
async fn schedule(
    engine: &Engine,
    count: usize,
    callers: usize,
    due: impl Fn(usize) -> f64 + Send + Sync + 'static,
) -> f64 {
    let engine = engine.clone();
    let due = Arc::new(due);
    run_callers(count, callers, move |i| {
        let (engine, due) = (engine.clone(), due.clone());
        async move {
            let (id, create) = timer(i, due(i));
            engine.create(&id, create).await.unwrap();
        }
    })
    .await
}

fn parse_args() -> Result<(Params, Durability), String> {
    let mut positional = Vec::new();
    let mut durability = Durability::Process;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--durability" => {
                durability = match args.next().as_deref() {
                    Some("process") => Durability::Process,
                    Some("device") => Durability::Device,
                    other => return Err(format!("--durability process|device, not {other:?}")),
                }
            }
            _ => positional.push(arg),
        }
    }
    Ok((Params::from(&positional)?, durability))
}

#[tokio::main]
async fn main() {
    let (params, durability) = parse_args().unwrap_or_else(|err| {
        eprintln!("load: {err}\nusage: load [N] [W] [C] [--durability process|device]");
        std::process::exit(2);
    });
    let tmp = std::env::temp_dir();

    // Calibration, into a throw-away store: the lead that keeps scheduling before firing.
    let calibration_count = params.n.min(CALIBRATION_JOBS);
    let calibration_ms = {
        let dir = tempfile::tempdir_in(&tmp).unwrap();
        let engine = open(dir.path(), durability, Arc::new(Discard)).await;
        let in_an_hour = wall_ms() + 3_600_000.0;
        let ms = schedule(&engine, calibration_count, params.callers, move |_| {
            in_an_hour
        })
        .await;
        engine.shutdown().await.unwrap();
        ms
    };
    let lead_ms = params.lead_ms(calibration_count, calibration_ms);
    eprintln!(
        "calibration: {calibration_count} timers in {calibration_ms:.0} ms; lead {lead_ms} ms"
    );

    let busy_pct_before = busy_pct_over_a_second();
    let dir = tempfile::tempdir_in(&tmp).unwrap();
    let t0 = wall_ms();
    let tracker = Arc::new(Tracker::new(&params, t0, lead_ms));
    let engine = open(
        dir.path(),
        durability,
        Arc::new(FireRecorder {
            tracker: tracker.clone(),
        }),
    )
    .await;
    // Completions: past events are published once their commit is durable.
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

    let mut meter = ForeignCpuMeter::started(None);
    let (rss_before, _) = rss_kib();
    let schedule_ms = {
        let due = tracker.clone();
        schedule(&engine, params.n, params.callers, move |i| due.due[i]).await
    };
    engine.passivate_idle();
    let (rss_scheduled, _) = rss_kib();
    meter.pause();
    eprintln!(
        "scheduled {} in {schedule_ms:.0} ms ({:.0}/s)",
        params.n,
        params.n as f64 / schedule_ms * 1e3
    );

    // The idle lead is not metered; firing is, from just before the first due instant.
    sleep_until(tracker.due[0] - 200.0, || false).await;
    meter.resume();
    while !tracker.finished(&params) {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let stats = engine.store_stats().unwrap();
    engine.shutdown().await.unwrap();
    drop(engine);
    let lagged = completions.await.unwrap();
    let (_, rss_peak) = rss_kib();

    let record_len = {
        let (_, create) = timer(0, t0);
        let event = tickler::Event::Created {
            policy: create.policy,
            policy_version: 1,
            workflow: None,
            recipient: create.recipient,
            zone: create.zone,
            anchors: create.anchors,
            attributes: create.attributes,
        };
        tickler::codec::encode_event(&event, Timestamp::EPOCH)
            .encode()
            .len()
    };
    let line = report(
        &params,
        &tracker,
        &mut meter,
        RunFacts {
            system: "tickler+sled".into(),
            schedule_ms,
            lead_ms,
            durability: match durability {
                Durability::Process => {
                    "sled flush (sync_file_range) before each reply: survives kill -9".into()
                }
                Durability::Device => {
                    "sled flush + fdatasync before each reply: survives power loss".into()
                }
            },
            busy_pct_before,
            extra: json!({
                "worker": "library, system clock, fire_rate_max_per_s lifted, group commit",
                "completion": "past event published after its commit's flush (Engine::subscribe)",
                "completion_lagged": lagged,
                "peak_rss_kib": rss_peak,
                "pending_timer_bytes": (rss_scheduled.saturating_sub(rss_before) * 1024) as f64
                    / params.n as f64,
                "disk_bytes": stats.size_on_disk,
                "events": stats.events,
                "disk_bytes_per_event": stats.size_on_disk as f64 / stats.events.max(1) as f64,
                "created_record_bytes": record_len,
            }),
        },
    );
    println!("{line}");
}
