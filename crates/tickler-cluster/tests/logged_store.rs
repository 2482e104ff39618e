//! The logged store: what reaches the shard log, when callers are answered, and what happens
//! when the log refuses.

use std::sync::Arc;
use std::time::Duration;

use tickler_cluster::log_record::{self, LogOp};
use tickler_cluster::{
    CatchUpError, Fault, Lease, LocalCopy, LoggedStore, ManualTime, MemoryShardLog, ShardLog,
    catch_up, take_over,
};
use tickler_core::{EntityId, OccurrenceId, Timestamp};
use tickler_store::{
    CommitBatch, Error, GroupCommit, IndexEntry, MemoryStore, Record, Snapshot, Store, TimerEntry,
};

const SHARD: u32 = 3;
const TTL: Duration = Duration::from_secs(60);

fn entity(id: &str) -> EntityId {
    EntityId::parse(id).unwrap()
}

fn record(payload: &str) -> Record {
    Record {
        format_version: 1,
        event_type: 1,
        recorded_at: Timestamp::from_millis(1_000).unwrap(),
        payload: payload.as_bytes().to_vec(),
    }
}

fn timer(due_ms: i64, id: &str, occurrence: &str) -> TimerEntry {
    TimerEntry {
        due: Timestamp::from_millis(due_ms).unwrap(),
        entity: entity(id),
        occurrence: OccurrenceId::parse(occurrence).unwrap(),
    }
}

fn batch(id: &str, expected_seq: u64, payloads: &[&str]) -> CommitBatch {
    CommitBatch {
        entity: Some(entity(id)),
        expected_seq,
        events: payloads.iter().map(|p| record(p)).collect(),
        ..CommitBatch::default()
    }
}

/// A log with the shard acquired by `node-a`, and that node's store over an empty copy.
async fn owned_store(log: &Arc<MemoryShardLog>) -> (Lease, Arc<MemoryStore>, LoggedStore) {
    let lease = log.acquire(SHARD, "node-a", TTL).await.unwrap();
    let local = Arc::new(MemoryStore::new());
    let store = take_over(local.clone(), log.clone(), &lease).await.unwrap();
    (lease, local, store)
}

async fn logged_ops(log: &MemoryShardLog) -> Vec<Vec<LogOp>> {
    let records = log.read_after(SHARD, 0, 1_000).await.unwrap();
    records
        .iter()
        .map(|r| log_record::decode(&r.bytes).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_batches_that_pass_are_logged_in_order() {
    let log = Arc::new(MemoryShardLog::new(8));
    let (_, _, store) = owned_store(&log).await;
    store.commit(batch("due/b", 0, &["b1"])).unwrap();
    store.flush().unwrap();
    let results = store.commit_group(vec![
        batch("due/a", 0, &["a1"]),
        batch("due/b", 0, &["stale"]),
        batch("due/c", 0, &["c1"]),
    ]);
    assert!(results[0].is_ok() && results[1].is_err() && results[2].is_ok());
    store.flush().unwrap();
    assert_eq!(
        logged_ops(&log).await,
        [
            vec![LogOp::Commit(batch("due/b", 0, &["b1"]))],
            vec![
                LogOp::Commit(batch("due/a", 0, &["a1"])),
                LogOp::Commit(batch("due/c", 0, &["c1"]))
            ],
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_refused_whole_logs_nothing() {
    let log = Arc::new(MemoryShardLog::new(8));
    let (_, _, store) = owned_store(&log).await;
    store.commit(batch("due/a", 0, &["a1"])).unwrap();
    store.flush().unwrap();
    assert!(store.commit(batch("due/a", 0, &["stale"])).is_err());
    store.flush().unwrap();
    assert_eq!(log.head(SHARD).await.unwrap(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_is_answered_only_after_its_append() {
    let log = Arc::new(MemoryShardLog::new(8));
    let (_, _, store) = owned_store(&log).await;
    let group = GroupCommit::new(Arc::new(store));
    group.commit(batch("due/a", 0, &["a1"])).await.unwrap();
    assert_eq!(
        logged_ops(&log).await,
        [vec![LogOp::Commit(batch("due/a", 0, &["a1"]))]]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fenced_flush_fails_every_waiter_and_stops_reads() {
    let time = ManualTime::default();
    let log = Arc::new(MemoryShardLog::with_manual_time(8, time.clone()));
    let (_, _, store) = owned_store(&log).await;
    let store = Arc::new(store);
    let group = GroupCommit::new(store.clone());
    group.commit(batch("due/a", 0, &["a1"])).await.unwrap();

    time.advance(TTL * 2);
    let thief = log.acquire(SHARD, "node-b", TTL).await.unwrap();
    let (first, second) = tokio::join!(
        group.commit(batch("due/a", 1, &["a2"])),
        group.commit(batch("due/b", 0, &["b1"])),
    );
    assert!(matches!(first, Err(Error::Stopped { .. })), "{first:?}");
    assert!(matches!(second, Err(Error::Stopped { .. })), "{second:?}");
    let read = store.read_events(&entity("due/a"), 0);
    assert!(matches!(read, Err(Error::Stopped { .. })), "{read:?}");
    assert!(matches!(
        store.commit(batch("due/c", 0, &["c1"])),
        Err(Error::Stopped { .. })
    ));
    assert!(store.stopped().unwrap().contains("fenced"));
    assert_eq!(log.head(SHARD).await.unwrap(), thief.head);
    assert_eq!(thief.head, 1, "only the acknowledged commit is in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_append_whose_reply_was_lost_is_settled_by_appending_again() {
    let log = Arc::new(MemoryShardLog::new(8));
    let (_, _, store) = owned_store(&log).await;
    store.commit(batch("due/a", 0, &["a1"])).unwrap();
    log.inject(Fault::ReplyLost);
    store.flush().unwrap();
    assert_eq!(log.head(SHARD).await.unwrap(), 1);
    assert_eq!(store.stopped(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_log_that_stays_unreachable_stops_the_store() {
    let log = Arc::new(MemoryShardLog::new(8));
    let (_, _, store) = owned_store(&log).await;
    store.commit(batch("due/a", 0, &["a1"])).unwrap();
    for _ in 0..4 {
        log.inject(Fault::Unavailable);
    }
    assert!(matches!(store.flush(), Err(Error::Stopped { .. })));
    assert!(
        store
            .stopped()
            .unwrap()
            .contains("may or may not be in the log")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_store_rebuilt_from_the_log_equals_the_live_one_key_for_key() {
    let log = Arc::new(MemoryShardLog::new(8));
    let (lease, live, store) = owned_store(&log).await;
    write_a_bit_of_everything(&store);
    store.flush().unwrap();

    let rebuilt = MemoryStore::new();
    let head = log.head(SHARD).await.unwrap();
    assert_eq!(
        catch_up::catch_up(&rebuilt, &*log, SHARD, 0, head)
            .await
            .unwrap(),
        head
    );
    assert_eq!(contents(&rebuilt), contents(&*live));
    assert!(head > lease.head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_behind_the_log_catches_up_from_its_stamp() {
    let log = Arc::new(MemoryShardLog::new(8));
    let (_, live, store) = owned_store(&log).await;
    store.commit(batch("due/a", 0, &["a1"])).unwrap();
    store.flush().unwrap();
    let copy = Arc::new(MemoryStore::new());
    catch_up::catch_up(&*copy, &*log, SHARD, 0, 1)
        .await
        .unwrap();
    store.commit(batch("due/a", 1, &["a2"])).unwrap();
    store.flush().unwrap();
    drop(store);

    let check = catch_up::check_local_copy(&*copy, &*log, SHARD)
        .await
        .unwrap();
    assert_eq!(check, LocalCopy::Behind { position: 1 });
    let lease = log.acquire(SHARD, "node-b", TTL).await;
    // The first lease is still live: release it as a graceful stop would.
    assert!(lease.is_err());
    log.release(SHARD, 1).await.unwrap();
    let lease = log.acquire(SHARD, "node-b", TTL).await.unwrap();
    take_over(copy.clone(), log.clone(), &lease).await.unwrap();
    assert_eq!(contents(&*copy), contents(&*live));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_ahead_of_the_log_is_detected_and_rebuilt() {
    let log = Arc::new(MemoryShardLog::new(8));
    let (lease, local, store) = owned_store(&log).await;
    store.commit(batch("due/a", 0, &["a1"])).unwrap();
    store.flush().unwrap();
    // Applied locally, then the node dies before the append.
    store.commit(batch("due/a", 1, &["never-logged"])).unwrap();
    drop(store);
    log.release(SHARD, lease.epoch).await.unwrap();

    let lease = log.acquire(SHARD, "node-a", TTL).await.unwrap();
    let check = catch_up::check_local_copy(&*local, &*log, SHARD)
        .await
        .unwrap();
    assert_eq!(check, LocalCopy::Ahead { position: 2 });
    let refused = take_over(local.clone(), log.clone(), &lease).await;
    assert!(matches!(
        refused,
        Err(CatchUpError::Ahead {
            position: 2,
            head: 1,
            ..
        })
    ));

    let fresh = Arc::new(MemoryStore::new());
    let rebuilt = take_over(fresh, log.clone(), &lease).await.unwrap();
    assert_eq!(rebuilt.read_events(&entity("due/a"), 0).unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_copy_with_data_but_no_stamp_is_not_taken_for_the_shard() {
    let log = Arc::new(MemoryShardLog::new(8));
    let lease = log.acquire(SHARD, "node-a", TTL).await.unwrap();
    let single_node = Arc::new(MemoryStore::new());
    single_node.commit(batch("due/a", 0, &["a1"])).unwrap();
    let refused = take_over(single_node, log.clone(), &lease).await;
    assert!(matches!(refused, Err(CatchUpError::Unstamped { .. })));
}

fn write_a_bit_of_everything(store: &LoggedStore) {
    store
        .commit(CommitBatch {
            timers_insert: vec![timer(5_000, "due/a", "remind#0")],
            index_insert: vec![IndexEntry {
                index: "policy".to_owned(),
                member: "due/a".to_owned(),
            }],
            ..batch("due/a", 0, &["created"])
        })
        .unwrap();
    store.set_meta("pause", b"all").unwrap();
    let results = store.commit_group(vec![
        CommitBatch {
            past_events: vec![(OccurrenceId::parse("remind#0").unwrap(), record("fired"))],
            timers_remove: vec![timer(5_000, "due/a", "remind#0")],
            snapshot: Some(Snapshot {
                seq: 2,
                record: record("state"),
            }),
            ..batch("due/a", 1, &["fired"])
        },
        batch("due/b", 0, &["b1"]),
    ]);
    assert!(results.iter().all(Result::is_ok), "{results:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deposed_owners_copy_is_ahead_even_where_its_last_record_equals_the_logs() {
    let time = ManualTime::default();
    let log = Arc::new(MemoryShardLog::with_manual_time(8, time.clone()));
    let (_, zombie_copy, zombie) = owned_store(&log).await;
    // Applied locally, never appended: the owner was paused before its flush.
    zombie.commit(batch("due/a", 0, &["only-here"])).unwrap();
    zombie.commit(batch("due/c", 0, &["c1"])).unwrap();

    time.advance(TTL * 2);
    let lease = log.acquire(SHARD, "node-b", TTL).await.unwrap();
    let successor = take_over(Arc::new(MemoryStore::new()), log.clone(), &lease)
        .await
        .unwrap();
    successor.commit(batch("due/b", 0, &["b1"])).unwrap();
    successor.flush().unwrap();
    // The same batch as the zombie's second record, at the same position.
    successor.commit(batch("due/c", 0, &["c1"])).unwrap();
    successor.flush().unwrap();

    let check = catch_up::check_local_copy(&*zombie_copy, &*log, SHARD)
        .await
        .unwrap();
    assert_eq!(check, LocalCopy::Ahead { position: 2 });
}

/// The comparison key for key: every listing, the test's index and metas included.
fn contents(store: &dyn Store) -> String {
    tickler_store::conformance::listing(
        store,
        &["policy"],
        &["pause", tickler_cluster::POSITION_META],
    )
}
