//! Group commit: commits share flushes, and none is acknowledged before a flush that started
//! after it.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tickler_core::{EntityId, Timestamp};
use tickler_store::{
    CommitBatch, CommitReceipt, CommitTimings, Error, GroupCommit, MemoryStore, Record, Store,
};
use tokio::sync::mpsc;

/// A memory store that watches commits and flushes: which commit index each entity's commit
/// got, and up to which index flushes that completed had started after.
#[derive(Default)]
struct Probe {
    inner: MemoryStore,
    /// Makes each flush take this long, so commits pile up behind it.
    flush_delay: Duration,
    commits_returned: AtomicU64,
    commit_index: Mutex<HashMap<EntityId, u64>>,
    /// The largest `commits_returned` seen at the start of a flush that has completed.
    flushed_through: AtomicU64,
    /// When set, each flush reports its start here and then waits for a go on `gate`.
    started: Option<mpsc::UnboundedSender<()>>,
    gate: Option<Mutex<mpsc::UnboundedReceiver<()>>>,
}

impl Store for Probe {
    fn commit(&self, batch: CommitBatch) -> Result<CommitReceipt, Error> {
        let entity = batch.entity.clone();
        let receipt = self.inner.commit(batch)?;
        let index = self.commits_returned.fetch_add(1, Ordering::SeqCst) + 1;
        if let Some(entity) = entity {
            self.commit_index.lock().unwrap().insert(entity, index);
        }
        Ok(receipt)
    }

    fn flush(&self) -> Result<(), Error> {
        let covers = self.commits_returned.load(Ordering::SeqCst);
        if let (Some(started), Some(gate)) = (&self.started, &self.gate) {
            started.send(()).unwrap();
            gate.lock().unwrap().blocking_recv().unwrap();
        }
        std::thread::sleep(self.flush_delay);
        self.inner.flush()?;
        self.flushed_through.fetch_max(covers, Ordering::SeqCst);
        Ok(())
    }

    tickler_store::forward_store_methods!(inner: last_seq, read_events, snapshot, past_events,
        past_event, timers_after, timers_from, entities_after, index_members, meta, set_meta,
        stats);
}

/// Timings as group commit reports them: each write's and each flush's duration.
#[derive(Default)]
struct Timings {
    writes: Mutex<Vec<Duration>>,
    flushes: Mutex<Vec<(Duration, bool)>>,
}

impl CommitTimings for Timings {
    fn wrote(&self, took: Duration) {
        self.writes.lock().unwrap().push(took);
    }

    fn flushed(&self, took: Duration, failed: bool) {
        self.flushes.lock().unwrap().push((took, failed));
    }
}

fn entity(n: usize) -> EntityId {
    EntityId::new("due", &format!("task-{n}")).unwrap()
}

fn append(n: usize, expected_seq: u64) -> CommitBatch {
    CommitBatch {
        entity: Some(entity(n)),
        expected_seq,
        events: vec![Record {
            format_version: 1,
            event_type: 1,
            recorded_at: Timestamp::EPOCH,
            payload: n.to_be_bytes().to_vec(),
        }],
        ..CommitBatch::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_commits_share_flushes_and_each_waits_for_one_started_after_it() {
    const TASKS: usize = 200;
    let probe = Arc::new(Probe {
        flush_delay: Duration::from_millis(5),
        ..Probe::default()
    });
    let timings = Arc::new(Timings::default());
    let group = GroupCommit::with_timings(probe.clone(), timings.clone());
    let tasks: Vec<_> = (0..TASKS)
        .map(|n| {
            let group = group.clone();
            let probe = probe.clone();
            tokio::spawn(async move {
                let receipt = group.commit(append(n, 0)).await.unwrap();
                assert_eq!(receipt.last_seq, 1);
                let index = probe.commit_index.lock().unwrap()[&entity(n)];
                let flushed = probe.flushed_through.load(Ordering::SeqCst);
                assert!(
                    flushed >= index,
                    "commit {index} acknowledged, but flushes only cover {flushed}"
                );
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap();
    }
    let stats = group.stats();
    assert_eq!(stats.waiters_served, TASKS as u64);
    assert_eq!(stats.waiting, 0);
    assert!(
        stats.flushes < TASKS as u64,
        "group commit must share flushes: {stats:?}"
    );
    assert!(stats.largest_group > 1, "{stats:?}");
    assert_eq!(probe.stats().unwrap().events, TASKS as u64);

    // Every write and flush was timed; each flush slept 5 ms, so none took less.
    let writes = timings.writes.lock().unwrap().len() as u64;
    let flushes = timings.flushes.lock().unwrap().clone();
    assert_eq!(writes, stats.commit_groups, "{stats:?}");
    assert_eq!(flushes.len() as u64, stats.flushes, "{stats:?}");
    assert!(
        flushes
            .iter()
            .all(|(took, failed)| *took >= Duration::from_millis(5) && !failed),
        "{flushes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_flush_fails_every_commit_that_waited_on_it() {
    const WAITERS: usize = 5;
    let (started_tx, mut started) = mpsc::unbounded_channel();
    let (gate, gate_rx) = mpsc::unbounded_channel();
    let probe = Arc::new(Probe {
        started: Some(started_tx),
        gate: Some(Mutex::new(gate_rx)),
        ..Probe::default()
    });
    let group = GroupCommit::new(probe.clone());

    // Round 1 holds the flusher while the others queue up behind it.
    let first = tokio::spawn({
        let group = group.clone();
        async move { group.durable().await }
    });
    started.recv().await.unwrap();
    let waiting: Vec<_> = (0..WAITERS)
        .map(|n| {
            let group = group.clone();
            tokio::spawn(async move { group.commit(append(n, 0)).await })
        })
        .collect();
    // Each waiter queues right after its commit returns; wait for all of them to be queued.
    while group.stats().waiting < WAITERS as u64 {
        tokio::task::yield_now().await;
    }
    gate.send(()).unwrap();
    first.await.unwrap().unwrap();

    // Round 2 serves all five at once, and fails.
    started.recv().await.unwrap();
    probe.inner.fail_next_flushes(1);
    gate.send(()).unwrap();
    for task in waiting {
        let err = task.await.unwrap().unwrap_err();
        assert_eq!(err, Error::Io("injected flush failure".to_owned()));
    }
    // The commits were applied (visible), only their durability is unknown.
    assert_eq!(probe.last_seq(&entity(0)).unwrap(), 1);
    let stats = group.stats();
    assert!(stats.latest_flush_failed, "{stats:?}");

    // Later rounds succeed again.
    gate.send(()).unwrap();
    group.commit(append(0, 1)).await.unwrap();
    let stats = group.stats();
    assert_eq!((stats.flushes, stats.largest_group), (3, WAITERS as u64));
    assert_eq!(stats.flushes_failed, 1);
    assert!(!stats.latest_flush_failed, "{stats:?}");
}

#[tokio::test]
async fn durable_waits_for_a_flush_without_committing() {
    let store = Arc::new(MemoryStore::new());
    let group = GroupCommit::new(store.clone());
    store.set_meta("clock", b"1").unwrap();
    group.durable().await.unwrap();
    let stats = group.stats();
    assert_eq!((stats.flushes, stats.waiters_served), (1, 1));
}

#[tokio::test]
async fn a_refused_commit_returns_at_once_without_a_flush() {
    let group = GroupCommit::new(Arc::new(MemoryStore::new()));
    let err = group.commit(append(0, 3)).await.unwrap_err();
    assert!(matches!(err, Error::VersionConflict { .. }), "{err}");
    assert_eq!(group.stats().flushes, 0);
}

#[tokio::test]
async fn dropping_the_last_handle_stops_the_flusher_and_releases_the_store() {
    let store: Arc<dyn Store> = Arc::new(MemoryStore::new());
    let group = GroupCommit::new(store.clone());
    let clone = group.clone();
    clone.commit(append(0, 0)).await.unwrap();
    assert_eq!(Arc::strong_count(&store), 2);
    drop(group);
    assert_eq!(Arc::strong_count(&store), 2, "a handle is still alive");
    drop(clone);
    assert_eq!(Arc::strong_count(&store), 1);
}
