//! The lease host: shards spread over the live nodes, a silent node's shards are taken at a
//! higher epoch, and a shard whose lease or store is lost stops being served.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickler_cluster::{
    HostConfig, Lease, LeaseHost, ManualTime, MemoryShardLog, ShardId, ShardLog, ShardRunner,
};

const SHARDS: u32 = 8;
const TTL: Duration = Duration::from_secs(6);

/// Serves nothing; remembers what it was told, and can be told a store failed.
#[derive(Default)]
struct Recorder {
    serving: Mutex<BTreeMap<ShardId, Lease>>,
    failed: Mutex<Option<ShardId>>,
}

#[async_trait::async_trait]
impl ShardRunner for Recorder {
    async fn start(&self, lease: Lease) -> Result<(), String> {
        self.serving.lock().unwrap().insert(lease.shard, lease);
        Ok(())
    }

    async fn stop(&self, shard: ShardId) {
        self.serving.lock().unwrap().remove(&shard);
    }

    fn failed(&self, shard: ShardId) -> Option<String> {
        (*self.failed.lock().unwrap() == Some(shard)).then(|| "fenced".to_owned())
    }
}

impl Recorder {
    fn shards(&self) -> Vec<ShardId> {
        self.serving.lock().unwrap().keys().copied().collect()
    }
}

fn host(log: &Arc<MemoryShardLog>, node: &str) -> (LeaseHost, Arc<Recorder>) {
    let runner = Arc::new(Recorder::default());
    let config = HostConfig {
        node: node.to_owned(),
        admin_addr: format!("/run/{node}.sock"),
        shards: SHARDS,
        lease_ttl: TTL,
        settle: Duration::ZERO,
        moves_per_tick: 2,
    };
    (
        LeaseHost::new(log.clone(), config, runner.clone(), Arc::default()),
        runner,
    )
}

#[tokio::test]
async fn shards_spread_over_the_live_nodes_and_each_is_served_once() {
    let log = Arc::new(MemoryShardLog::with_manual_time(
        SHARDS,
        ManualTime::default(),
    ));
    let (mut a, served_a) = host(&log, "node-a");
    let (mut b, served_b) = host(&log, "node-b");
    a.tick().await;
    assert_eq!(
        served_a.shards().len(),
        8,
        "alone, node-a takes every shard"
    );
    for _ in 0..6 {
        b.tick().await;
        a.tick().await;
    }
    let (on_a, on_b) = (served_a.shards(), served_b.shards());
    assert!(!on_a.is_empty() && !on_b.is_empty(), "{on_a:?} {on_b:?}");
    assert_eq!(on_a.len() + on_b.len(), 8);
    assert!(on_a.iter().all(|shard| !on_b.contains(shard)));
    let map = a.map().routes();
    for shard in on_b {
        assert_eq!(map[shard as usize].owner.as_deref(), Some("node-b"));
        assert_eq!(
            map[shard as usize].admin_addr.as_deref(),
            Some("/run/node-b.sock")
        );
        assert!(!map[shard as usize].here);
    }
}

#[tokio::test]
async fn a_silent_nodes_shards_are_taken_at_the_next_epoch_once_its_leases_expire() {
    let time = ManualTime::default();
    let log = Arc::new(MemoryShardLog::with_manual_time(SHARDS, time.clone()));
    let (mut a, served_a) = host(&log, "node-a");
    let (mut b, served_b) = host(&log, "node-b");
    for _ in 0..6 {
        a.tick().await;
        b.tick().await;
    }
    let orphans: Vec<Lease> = served_b.serving.lock().unwrap().values().cloned().collect();
    assert!(!orphans.is_empty());
    time.advance(TTL / 2);
    a.tick().await;
    assert!(
        orphans
            .iter()
            .all(|l| !served_a.shards().contains(&l.shard)),
        "not before the leases expire"
    );
    time.advance(TTL);
    a.tick().await;
    a.tick().await;
    let taken = served_a.serving.lock().unwrap().clone();
    assert_eq!(taken.len(), 8);
    for orphan in orphans {
        assert_eq!(taken[&orphan.shard].epoch, orphan.epoch + 1);
    }
}

#[tokio::test]
async fn a_shard_whose_store_failed_is_stopped_and_released() {
    let log = Arc::new(MemoryShardLog::with_manual_time(
        SHARDS,
        ManualTime::default(),
    ));
    let (mut a, served_a) = host(&log, "node-a");
    a.tick().await;
    *served_a.failed.lock().unwrap() = Some(3);
    a.tick().await;
    // Released, so it is free at once: the same tick's acquire takes it again (epoch + 1),
    // and its runner catches up a fresh copy.
    let map = log.shard_map().await.unwrap();
    assert_eq!(map[3].epoch, 2);
    assert!(a.held().any(|lease| lease.shard == 3 && lease.epoch == 2));
}

#[tokio::test]
async fn a_lost_lease_stops_the_shard() {
    let time = ManualTime::default();
    let log = Arc::new(MemoryShardLog::with_manual_time(SHARDS, time.clone()));
    let (mut a, served_a) = host(&log, "node-a");
    a.tick().await;
    time.advance(TTL * 2);
    log.acquire(5, "intruder", TTL).await.unwrap();
    a.tick().await;
    assert!(!served_a.shards().contains(&5));
    assert!(a.held().all(|lease| lease.shard != 5));
}
