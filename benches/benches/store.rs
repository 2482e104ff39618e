//! The store: record encode/decode, and durable appends to sled with and without group commit.
//!
//! Throughput is in appends (elements) per second. `no_flush` is the ceiling (visible, not
//! durable). `flush_each` is the baseline: one thread, commit then flush, one flush per append.
//! `group_commit_64_tasks` runs 64 tokio tasks appending through one `GroupCommit`, so appends
//! waiting on the same flush share it.
//!
//! Run: `cargo bench -p tickler-benches --bench store`.

use std::hint::black_box;
use std::sync::Arc;
use std::time::{Duration, Instant};

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use tickler_core::{EntityId, Timestamp};
use tickler_store::{CommitBatch, GroupCommit, Record, SledStore, Store};

/// About the size of an engine event payload.
const PAYLOAD_LEN: usize = 100;
const TASKS: u64 = 64;

fn record() -> Record {
    Record {
        format_version: 1,
        event_type: 3,
        recorded_at: Timestamp::from_millis(1_772_701_200_000).expect("in range"),
        payload: vec![0x5a; PAYLOAD_LEN],
    }
}

fn entity(n: u64) -> EntityId {
    EntityId::new("bench", &format!("entity-{n}")).expect("valid id")
}

fn append(entity: &EntityId, expected_seq: u64) -> CommitBatch {
    CommitBatch {
        entity: Some(entity.clone()),
        expected_seq,
        events: vec![record()],
        ..CommitBatch::default()
    }
}

fn record_codec(c: &mut Criterion) {
    let mut group = c.benchmark_group("record");
    group.throughput(Throughput::Elements(1));
    let record = record();
    let bytes = record.encode();
    group.bench_function("encode_100b", |b| b.iter(|| black_box(&record).encode()));
    group.bench_function("decode_100b", |b| {
        b.iter(|| Record::decode(black_box(&bytes)).expect("valid"))
    });
    group.finish();
}

fn durable_append(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut group = c.benchmark_group("sled_durable_append");
    group
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(4));

    let store = Arc::new(SledStore::open(&dir.path().join("flush-each")).expect("opens"));
    group.throughput(Throughput::Elements(1));
    // The ceiling: appends that are visible but not yet durable.
    group.bench_function("no_flush", |b| {
        let e = entity(1);
        b.iter_custom(|iters| {
            let mut seq = store.last_seq(&e).expect("reads");
            let start = Instant::now();
            for _ in 0..iters {
                seq = store.commit(append(&e, seq)).expect("commits").last_seq;
            }
            start.elapsed()
        })
    });
    group.bench_function("flush_each", |b| {
        let e = entity(0);
        b.iter_custom(|iters| {
            let mut seq = store.last_seq(&e).expect("reads");
            let start = Instant::now();
            for _ in 0..iters {
                seq = store.commit(append(&e, seq)).expect("commits").last_seq;
                store.flush().expect("flushes");
            }
            start.elapsed()
        })
    });
    drop(store);

    let store: Arc<dyn Store> =
        Arc::new(SledStore::open(&dir.path().join("group-commit")).expect("opens"));
    let commits = GroupCommit::new(store.clone());
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    // One iteration is one append by each of the 64 tasks.
    group.throughput(Throughput::Elements(TASKS));
    group.bench_function("group_commit_64_tasks", |b| {
        b.iter_custom(|iters| {
            runtime.block_on(async {
                let start = Instant::now();
                let tasks: Vec<_> = (0..TASKS)
                    .map(|n| {
                        let commits = commits.clone();
                        tokio::spawn(async move {
                            let e = entity(n);
                            let mut seq = commits.store().last_seq(&e).expect("reads");
                            for _ in 0..iters {
                                seq = commits
                                    .commit(append(&e, seq))
                                    .await
                                    .expect("commits")
                                    .last_seq;
                            }
                        })
                    })
                    .collect();
                for task in tasks {
                    task.await.expect("task");
                }
                start.elapsed()
            })
        })
    });
    group.finish();
    let stats = commits.stats();
    eprintln!(
        "group commit: {} appends in {} flushes ({:.1} per flush, largest group {})",
        stats.waiters_served,
        stats.flushes,
        stats.waiters_served as f64 / stats.flushes.max(1) as f64,
        stats.largest_group
    );
}

criterion_group!(benches, record_codec, durable_append);
criterion_main!(benches);
