//! A seeded simulation of cluster mode (issue 25): two hosts, each a real `LeaseHost` running
//! real engines on `LoggedStore`s over its own in-memory copies, share a `MemoryShardLog` whose
//! leases run on a manual clock. Due dates are created through the owning host, time moves
//! (each host's engines on their own manual clock), and host B is now and then paused past its
//! leases: it neither ticks nor moves its clock, so host A takes its shards over; when it wakes,
//! its clock jumps and its engines, which still hold the old epoch, try to fire what fell due.
//!
//! Checked after every step: epochs never decrease along a shard's log, its positions run
//! 1, 2, 3… (each written once), nothing is delivered before it is due, no occurrence goes out
//! under two keys, and every delivery was preceded by a `DeliveryStarted` the log accepted from
//! the delivering engine's epoch. At the end: every acknowledged create is in the log.
//!
//! `CLUSTER_SIM_SEEDS=n` runs n seeds (default 20); a failure names its seed.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickler::config::Config;
use tickler::{
    Channel, Clock, Command, DeliveryError, Engine, EntityId, Event, ManualClock, MemoryStore,
    Message, Span, Store, Timestamp, async_trait,
};
use tickler_cluster::log_record::{self, LogOp};
use tickler_cluster::{
    CatchUpError, HostConfig, Lease, LeaseHost, LoggedStore, ManualTime, MemoryShardLog, ShardId,
    ShardLog, ShardMap, ShardRunner, shard_of, take_over,
};
use tickler_core::seed::SplitMix64 as Rng;
use tickler_tests::{at, reviewer_report, shipped_config};

const SHARDS: u32 = 4;
const TTL: Duration = Duration::from_secs(60);
const STEPS: usize = 40;
const START: &str = "2026-03-01T07:00:00Z";

/// One call of a channel: which engine made it, and what it sent.
#[derive(Clone, Debug)]
struct Delivery {
    host: &'static str,
    epoch: u64,
    key: String,
    entity: String,
    due_at: Timestamp,
    called_at: Timestamp,
}

struct Recorder {
    host: &'static str,
    epoch: u64,
    clock: ManualClock,
    seen: Arc<Mutex<Vec<Delivery>>>,
}

#[async_trait]
impl Channel for Recorder {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        self.seen.lock().unwrap().push(Delivery {
            host: self.host,
            epoch: self.epoch,
            key: message.idempotency_key.clone(),
            entity: message.entity.clone(),
            due_at: message.due_at,
            called_at: self.clock.now(),
        });
        Ok("recorded".into())
    }
}

/// A host's shards: its local copies (kept across stops, as a node's disk is) and the engines
/// serving them.
struct Runner {
    name: &'static str,
    config: Config,
    clock: ManualClock,
    log: Arc<MemoryShardLog>,
    copies: Mutex<BTreeMap<ShardId, Arc<MemoryStore>>>,
    engines: Mutex<BTreeMap<ShardId, (Engine, Arc<LoggedStore>)>>,
    seen: Arc<Mutex<Vec<Delivery>>>,
}

impl Runner {
    fn copy(&self, shard: ShardId, fresh: bool) -> Arc<MemoryStore> {
        let mut copies = self.copies.lock().unwrap();
        if fresh {
            copies.remove(&shard);
        }
        copies.entry(shard).or_default().clone()
    }

    fn engines(&self) -> Vec<Engine> {
        let engines = self.engines.lock().unwrap();
        engines.values().map(|(engine, _)| engine.clone()).collect()
    }

    fn engine_for(&self, entity: &EntityId) -> Option<Engine> {
        let engines = self.engines.lock().unwrap();
        let (engine, store) = engines.get(&shard_of(entity, SHARDS))?;
        store.stopped().is_none().then(|| engine.clone())
    }
}

#[async_trait]
impl ShardRunner for Runner {
    async fn start(&self, lease: Lease) -> Result<(), String> {
        let shard = lease.shard;
        let store = match take_over(self.copy(shard, false), self.log.clone(), &lease).await {
            Err(CatchUpError::Ahead { .. } | CatchUpError::Unstamped { .. }) => {
                take_over(self.copy(shard, true), self.log.clone(), &lease).await
            }
            other => other,
        }
        .map_err(|e| e.to_string())?;
        let store = Arc::new(store);
        let recorder = Recorder {
            host: self.name,
            epoch: lease.epoch,
            clock: self.clock.clone(),
            seen: self.seen.clone(),
        };
        let engine = self
            .config
            .engine_builder(store.clone(), Arc::new(self.clock.clone()))
            .map_err(|e| e.to_string())?
            .channel("file", Arc::new(recorder))
            .open()
            .await
            .map_err(|e| e.to_string())?;
        self.engines.lock().unwrap().insert(shard, (engine, store));
        Ok(())
    }

    async fn stop(&self, shard: ShardId) {
        let served = self.engines.lock().unwrap().remove(&shard);
        if let Some((engine, store)) = served {
            // A fenced engine's last flush fails: that is the point.
            let _ = engine.shutdown().await;
            store.retire();
        }
    }

    fn failed(&self, shard: ShardId) -> Option<String> {
        let engines = self.engines.lock().unwrap();
        let (_, store) = engines.get(&shard)?;
        store.stopped().map(str::to_owned)
    }
}

struct Host {
    lease_host: LeaseHost,
    runner: Arc<Runner>,
    paused: bool,
}

fn host(
    name: &'static str,
    log: &Arc<MemoryShardLog>,
    config: &Config,
    seen: &Arc<Mutex<Vec<Delivery>>>,
) -> Host {
    let runner = Arc::new(Runner {
        name,
        config: config.clone(),
        clock: ManualClock::new(at(START)),
        log: log.clone(),
        copies: Mutex::default(),
        engines: Mutex::default(),
        seen: seen.clone(),
    });
    let config = HostConfig {
        node: name.to_owned(),
        admin_addr: format!("/run/{name}.sock"),
        shards: SHARDS,
        lease_ttl: TTL,
        settle: Duration::ZERO,
        moves_per_tick: 2,
    };
    Host {
        lease_host: LeaseHost::new(
            log.clone(),
            config,
            runner.clone(),
            Arc::new(ShardMap::default()),
        ),
        runner,
        paused: false,
    }
}

/// What a run needs between steps.
struct World {
    log: Arc<MemoryShardLog>,
    time: ManualTime,
    hosts: [Host; 2],
    seen: Arc<Mutex<Vec<Delivery>>>,
    acked: BTreeSet<String>,
    trace: Vec<String>,
}

impl World {
    async fn new(data_dir: &std::path::Path) -> World {
        let time = ManualTime::default();
        let log = Arc::new(MemoryShardLog::with_manual_time(SHARDS, time.clone()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let config = shipped_config(data_dir);
        let hosts = [
            host("host-a", &log, &config, &seen),
            host("host-b", &log, &config, &seen),
        ];
        let mut world = World {
            log,
            time,
            hosts,
            seen,
            acked: BTreeSet::new(),
            trace: Vec::new(),
        };
        for _ in 0..4 {
            world.tick().await;
        }
        world
    }

    /// Lease time moves a third of the TTL and every host that is not paused ticks.
    async fn tick(&mut self) {
        self.time.advance(TTL / 3);
        for host in self.hosts.iter_mut().filter(|h| !h.paused) {
            host.lease_host.tick().await;
        }
    }

    async fn create(&mut self, rng: &mut Rng, n: usize) {
        let id: EntityId = format!("due/sim-{n}").parse().unwrap();
        let engine = self
            .hosts
            .iter()
            .filter(|h| !h.paused)
            .find_map(|h| h.runner.engine_for(&id));
        let Some(engine) = engine else {
            return;
        };
        let due = engine
            .now()
            .saturating_add(Span::hours(1 + rng.below(72) as i64));
        let create = reviewer_report(Some(&due.to_string()));
        if engine.execute(&id, Command::Create(create)).await.is_ok() {
            self.acked.insert(id.to_string());
        }
    }

    /// Moves the clock of every host that is not paused by `by`, engines firing on the way.
    async fn advance(&mut self, by: Span) {
        for host in self.hosts.iter().filter(|h| !h.paused) {
            let target = host.runner.clock.now().saturating_add(by);
            for engine in host.runner.engines() {
                let _ = engine.set_time(target).await;
            }
            host.runner.clock.set(target);
        }
    }

    /// Host B wakes: its clock jumps to A's, its engines fire what fell due meanwhile.
    async fn wake_b(&mut self) {
        let now = self.hosts[0].runner.clock.now();
        let b = &mut self.hosts[1];
        b.paused = false;
        for engine in b.runner.engines() {
            let _ = engine.set_time(now).await;
        }
        b.runner.clock.set(now);
    }
}

/// What the log holds of one entity: (shard seq, epoch, expected seq, events), for a failure's
/// message.
async fn entity_history(log: &MemoryShardLog, entity: &str) -> Vec<String> {
    let mut lines = Vec::new();
    for shard in 0..SHARDS {
        for record in log.read_after(shard, 0, usize::MAX).await.unwrap() {
            for op in log_record::decode(&record.bytes).unwrap() {
                let LogOp::Commit(batch) = op else { continue };
                if batch.entity.as_ref().is_none_or(|e| e.as_str() != entity) {
                    continue;
                }
                let events: Vec<String> = batch
                    .events
                    .iter()
                    .map(|e| match tickler::codec::decode_event(e) {
                        Ok(event) => format!("{event:?}").chars().take(60).collect(),
                        Err(err) => format!("undecodable: {err}"),
                    })
                    .collect();
                lines.push(format!(
                    "seq {} epoch {} expected {}: {events:?}",
                    record.seq, record.epoch, batch.expected_seq
                ));
            }
        }
    }
    lines
}

/// Every `DeliveryStarted` the log holds, as (epoch, entity, occurrence).
async fn accepted_starts(log: &MemoryShardLog) -> BTreeSet<(u64, String, String)> {
    let mut starts = BTreeSet::new();
    for shard in 0..SHARDS {
        for record in log.read_after(shard, 0, usize::MAX).await.unwrap() {
            for op in log_record::decode(&record.bytes).unwrap() {
                let LogOp::Commit(batch) = op else { continue };
                let Some(entity) = batch.entity else { continue };
                for event in &batch.events {
                    if let Ok(Event::DeliveryStarted { occurrence, .. }) =
                        tickler::codec::decode_event(event)
                    {
                        starts.insert((record.epoch, entity.to_string(), occurrence.to_string()));
                    }
                }
            }
        }
    }
    starts
}

async fn check(world: &World, seed: u64) {
    let fail = |what: String| -> ! {
        panic!("seed {seed}: {what}\ntrace:\n{}", world.trace.join("\n"));
    };
    for shard in 0..SHARDS {
        let records = world.log.read_after(shard, 0, usize::MAX).await.unwrap();
        for (index, record) in records.iter().enumerate() {
            if record.seq != index as u64 + 1 {
                fail(format!(
                    "shard {shard}: record {index} is at seq {}",
                    record.seq
                ));
            }
        }
        if records.windows(2).any(|pair| pair[0].epoch > pair[1].epoch) {
            fail(format!("shard {shard}: an epoch went back"));
        }
    }
    // Deliveries first: each one's DeliveryStarted was appended before it was made, so the log
    // read after them holds it (engines may still be working while this runs).
    let seen = world.seen.lock().unwrap().clone();
    let starts = accepted_starts(&world.log).await;
    let mut keys: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for delivery in &seen {
        if delivery.called_at < delivery.due_at {
            fail(format!("early: {delivery:?}"));
        }
        let occurrence = delivery.key[delivery.entity.len() + 1..].to_owned();
        let started = (delivery.epoch, delivery.entity.clone(), occurrence.clone());
        if !starts.contains(&started) {
            let of_entity = entity_history(&world.log, &delivery.entity).await;
            let map = world.log.shard_map().await.unwrap();
            fail(format!(
                "no accepted DeliveryStarted before {delivery:?}; the log has {of_entity:?}; \
                 shards {map:?}"
            ));
        }
        keys.entry(format!("{}#{occurrence}", delivery.entity))
            .or_default()
            .insert(delivery.key.clone());
    }
    if let Some((occurrence, keys)) = keys.iter().find(|(_, keys)| keys.len() > 1) {
        fail(format!("{occurrence} under keys {keys:?}"));
    }
}

/// Every acknowledged create is in a store rebuilt from the log alone.
async fn acknowledged_creates_are_in_the_log(world: &World, seed: u64) {
    let rebuilt: Vec<MemoryStore> = rebuild_from_log(&world.log).await;
    for entity in &world.acked {
        let id: EntityId = entity.parse().unwrap();
        let store = &rebuilt[shard_of(&id, SHARDS) as usize];
        assert!(
            store.last_seq(&id).unwrap() > 0,
            "seed {seed}: acknowledged {entity} is not in the log"
        );
    }
}

async fn rebuild_from_log(log: &MemoryShardLog) -> Vec<MemoryStore> {
    let mut stores = Vec::new();
    for shard in 0..SHARDS {
        let store = MemoryStore::new();
        let head = log.head(shard).await.unwrap();
        if let Err(err) = tickler_cluster::catch_up::catch_up(&store, log, shard, 0, head).await {
            panic!("the log alone does not replay: {err}");
        }
        stores.push(store);
    }
    stores
}

/// Acknowledged creates, deliveries, and those made by host-b.
async fn run(seed: u64) -> (usize, usize, usize) {
    let dir = tempfile::tempdir().unwrap();
    let mut world = World::new(dir.path()).await;
    let mut rng = Rng(seed);
    let mut created = 0;
    let mut paused_for = 0;
    for step in 0..STEPS {
        match rng.below(10) {
            0..4 => {
                for _ in 0..1 + rng.below(4) {
                    created += 1;
                    world.create(&mut rng, created).await;
                }
                world.trace.push(format!("{step}: created up to {created}"));
            }
            4..8 => {
                let by = Span::minutes(rng.below(24 * 60) as i64);
                world.advance(by).await;
                world.trace.push(format!("{step}: advanced {by}"));
            }
            _ if !world.hosts[1].paused => {
                world.hosts[1].paused = true;
                paused_for = 0;
                world.trace.push(format!("{step}: host-b paused"));
            }
            _ => {}
        }
        if world.hosts[1].paused {
            paused_for += 1;
            // Past its leases (three ticks is one TTL), then woken.
            if paused_for > 4 {
                world.wake_b().await;
                world.trace.push(format!("{step}: host-b woken"));
            }
        }
        world.tick().await;
        check(&world, seed).await;
    }
    if world.hosts[1].paused {
        world.wake_b().await;
    }
    for _ in 0..3 {
        world.tick().await;
    }
    world.advance(Span::days(10)).await;
    check(&world, seed).await;
    acknowledged_creates_are_in_the_log(&world, seed).await;
    let deliveries = world.seen.lock().unwrap().len();
    let by_b = world
        .seen
        .lock()
        .unwrap()
        .iter()
        .filter(|d| d.host == "host-b")
        .count();
    world
        .trace
        .push(format!("deliveries: {deliveries}, {by_b} by host-b"));
    for host in &world.hosts {
        for engine in host.runner.engines() {
            let _ = engine.shutdown().await;
        }
    }
    (world.acked.len(), deliveries, by_b)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hosts_one_paused_past_its_leases_keep_the_cluster_invariants() {
    let seeds: u64 = std::env::var("CLUSTER_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let (mut acked, mut delivered, mut by_b) = (0, 0, 0);
    for seed in 1..=seeds {
        let (a, d, b) = run(seed).await;
        acked += a;
        delivered += d;
        by_b += b;
    }
    println!(
        "{seeds} seeds: {acked} acknowledged creates, {delivered} deliveries ({by_b} by host-b)"
    );
    assert!(
        acked > 0 && by_b > 0 && by_b < delivered,
        "the simulation exercised too little: both hosts must deliver"
    );
}
