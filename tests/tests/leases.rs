//! An attempt's lease lives in the memory of the process that started the attempt (issue 24):
//! starting a delivery writes no timer entry, and after a restart an attempt that was under
//! way is found lost at once rather than when its lease would have ended.

use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, Ordering};

use tickler::store::{CommitBatch, CommitReceipt, Error, forward_store_methods};
use tickler::{MemoryStore, OccurrenceId, Phase, Store};
use tickler_tests::{Harness, StoreKind, TEST_START, at, id, reviewer_report};

/// The memory store, keeping every batch committed through it and refusing, while armed, the
/// commits that record a past event (a delivery's result).
struct Watched {
    inner: Arc<MemoryStore>,
    batches: Mutex<Vec<CommitBatch>>,
    refuse_results: AtomicBool,
}

impl Watched {
    fn new(inner: Arc<MemoryStore>) -> Arc<Watched> {
        Arc::new(Watched {
            inner,
            batches: Mutex::new(Vec::new()),
            refuse_results: AtomicBool::new(false),
        })
    }

    fn take(&self) -> Vec<CommitBatch> {
        std::mem::take(&mut *self.batches.lock().unwrap())
    }
}

impl Store for Watched {
    fn commit(&self, batch: CommitBatch) -> Result<CommitReceipt, Error> {
        let mut results = self.commit_group(vec![batch]);
        results.pop().expect("one result per batch")
    }

    fn commit_group(&self, batches: Vec<CommitBatch>) -> Vec<Result<CommitReceipt, Error>> {
        let refuse = self.refuse_results.load(Ordering::SeqCst);
        let (refused, passed): (Vec<_>, Vec<_>) = batches
            .into_iter()
            .enumerate()
            .partition(|(_, batch)| refuse && !batch.past_events.is_empty());
        let mut results: Vec<Option<Result<CommitReceipt, Error>>> =
            (0..refused.len() + passed.len()).map(|_| None).collect();
        for (i, _) in &refused {
            results[*i] = Some(Err(Error::Io(
                "injected: the result cannot be written".into(),
            )));
        }
        let (positions, passed): (Vec<usize>, Vec<CommitBatch>) = passed.into_iter().unzip();
        self.batches.lock().unwrap().extend(passed.iter().cloned());
        for (i, result) in positions.into_iter().zip(self.inner.commit_group(passed)) {
            results[i] = Some(result);
        }
        results.into_iter().map(Option::unwrap).collect()
    }

    forward_store_methods!(inner: flush, last_seq, read_events, snapshot, past_events,
        past_event, timers_after, timers_from, entities_after, index_members, meta, set_meta,
        stats);
}

async fn start(dir: &std::path::Path, store: Arc<Watched>, now: &str) -> Harness {
    Harness::start(dir, StoreKind::Other(store), at(now)).await
}

fn occurrence(text: &str) -> OccurrenceId {
    text.parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn starting_an_attempt_writes_no_timer_entry_and_its_result_removes_the_planned_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = Watched::new(Arc::new(MemoryStore::new()));
    let h = start(dir.path(), store.clone(), TEST_START).await;
    let report = id("due/review-1");
    h.engine
        .create(&report, reviewer_report(Some("2026-03-05T10:00:00Z")))
        .await
        .unwrap();
    store.take();

    // The pre-due reminder (03-03 10:00) fires: one commit starts the attempt, one records it.
    h.clock.set(at("2026-03-03T10:00:01Z"));
    h.engine.settle().await.unwrap();
    let fire = store.take();
    assert_eq!(fire.len(), 2, "{fire:#?}");
    let (started, recorded) = (&fire[0], &fire[1]);
    assert!(started.past_events.is_empty());
    assert!(
        started.timers_insert.is_empty() && started.timers_remove.is_empty(),
        "the attempt's lease is not written to the index: {started:#?}"
    );
    assert_eq!(recorded.past_events.len(), 1);
    let removed: Vec<_> = recorded
        .timers_remove
        .iter()
        .map(|entry| (entry.due, entry.occurrence.clone()))
        .collect();
    assert_eq!(
        removed,
        [(at("2026-03-03T10:00:00Z"), occurrence("pre-due#0"))],
        "the entry the reminder was planned at goes when it ends"
    );
    h.stop().await;
}

/// A reviewer report whose pre-due attempt (03-03 10:00) started and delivered but whose result
/// could not be written: in the store it is still under way, as it would be had the process
/// died during the delivery. The engine is stopped; returns its store, the report and its state.
async fn leave_an_attempt_under_way(
    dir: &std::path::Path,
) -> (Arc<MemoryStore>, tickler::EntityId, tickler::Entity) {
    let memory = Arc::new(MemoryStore::new());
    let store = Watched::new(memory.clone());
    let h = start(dir, store.clone(), TEST_START).await;
    let report = id("due/review-1");
    h.engine
        .create(&report, reviewer_report(Some("2026-03-05T10:00:00Z")))
        .await
        .unwrap();
    store.refuse_results.store(true, Ordering::SeqCst);
    h.clock.set(at("2026-03-03T10:00:01Z"));
    h.engine.settle().await.unwrap();
    let state = h.engine.show(&report).await.unwrap();
    assert!(matches!(
        state.active[&occurrence("pre-due#0")].phase,
        Phase::Delivering { .. }
    ));
    h.stop().await;
    (memory, report, state)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_an_attempt_under_way_is_found_lost_at_once_not_when_its_lease_ends() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, report, before) = leave_an_attempt_under_way(dir.path()).await;

    // Back 5 seconds later, well within the attempt's 60 s lease.
    let h = start(dir.path(), Watched::new(memory), "2026-03-03T10:00:06Z").await;
    h.engine.settle().await.unwrap();
    let after = h.engine.show(&report).await.unwrap();
    let reminder = &after.active[&occurrence("pre-due#0")];
    match &reminder.phase {
        Phase::RetryWaiting { attempt, error, .. } => {
            assert_eq!(*attempt, 1);
            assert!(error.contains("outcome unknown"), "{error}");
        }
        other => panic!("the lost attempt is still {other:?}"),
    }
    assert_eq!(
        reminder.idempotency_key(&report),
        before.active[&occurrence("pre-due#0")].idempotency_key(&report),
        "the retry keeps the occurrence's key"
    );
    h.stop().await;
}

/// The index of a store whose writer kept leases in the index: the attempt's entry moved from
/// its planned instant to its lease's end.
fn move_entry_to_lease_end(store: &MemoryStore, report: &tickler::EntityId, lease_end: &str) {
    let entry = |due: &str| tickler::store::TimerEntry {
        due: at(due),
        entity: report.clone(),
        occurrence: occurrence("pre-due#0"),
    };
    store
        .commit(CommitBatch {
            timers_remove: vec![entry("2026-03-03T10:00:00Z")],
            timers_insert: vec![entry(lease_end)],
            ..CommitBatch::default()
        })
        .unwrap();
}

fn audit_findings(store: &dyn Store) -> Vec<String> {
    let report = tickler::audit::audit(store, |_| {}).unwrap();
    report.findings.iter().map(|f| f.what.clone()).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attempt_indexed_at_its_lease_end_by_an_earlier_writer_audits_clean_and_ends_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, report, _) = leave_an_attempt_under_way(dir.path()).await;
    move_entry_to_lease_end(&memory, &report, "2026-03-03T10:01:01Z");
    assert_eq!(audit_findings(memory.as_ref()), Vec::<String>::new());

    // Back after the lease's end: the old entry wakes the entity, which records the attempt as
    // lost and drops the entry with the retry it plans.
    let h = start(
        dir.path(),
        Watched::new(memory.clone()),
        "2026-03-03T10:01:30Z",
    )
    .await;
    h.engine.settle().await.unwrap();
    let after = h.engine.show(&report).await.unwrap();
    assert!(matches!(
        after.active[&occurrence("pre-due#0")].phase,
        Phase::RetryWaiting { attempt: 1, .. }
    ));
    h.stop().await;
    let lease_entries: Vec<_> = memory
        .timers_after(None, usize::MAX)
        .unwrap()
        .into_iter()
        .filter(|entry| entry.due == at("2026-03-03T10:01:01Z"))
        .collect();
    assert_eq!(lease_entries, [], "the lease's entry is gone");
    assert_eq!(audit_findings(memory.as_ref()), Vec::<String>::new());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_index_entry_left_by_an_ended_occurrence_is_removed_when_it_wakes_the_entity() {
    let dir = tempfile::tempdir().unwrap();
    let (memory, report, _) = leave_an_attempt_under_way(dir.path()).await;
    move_entry_to_lease_end(&memory, &report, "2026-03-03T10:01:01Z");

    // Back before the lease's end; the report is handed in, which ends every reminder, the
    // attempt's included, but its entry (where the state does not expect it) stays behind.
    let h = start(
        dir.path(),
        Watched::new(memory.clone()),
        "2026-03-03T10:00:30Z",
    )
    .await;
    h.engine
        .execute(
            &report,
            tickler::Command::Complete {
                reason: "review-submitted".into(),
            },
        )
        .await
        .unwrap();
    let left: Vec<_> = memory.timers_after(None, usize::MAX).unwrap();
    assert_eq!(left.len(), 1, "{left:?}");
    // Its wake finds nothing to do and removes it.
    h.clock.set(at("2026-03-03T10:01:02Z"));
    h.engine.settle().await.unwrap();
    h.stop().await;
    assert_eq!(memory.timers_after(None, usize::MAX).unwrap(), []);
    assert_eq!(audit_findings(memory.as_ref()), Vec::<String>::new());
}
