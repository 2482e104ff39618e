//! Faults (issue 6, suite 2) through the library, on a manual clock: a channel that hangs, and
//! stored records damaged in each way a disk or a bad build can damage them. Channel errors with
//! retries are in `engine.rs` and `webhook.rs`; a full disk under the real store is in
//! `disk_full.rs`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tickler::store::Record;
use tickler::{Clock, Entity, EntityId, ManualClock, MemoryStore, Outcome, Span, Store};
use tickler_tests::gate::Gate;
use tickler_tests::{Harness, StoreKind, at, id, reviewer_report, shipped_config};

/// How long a test waits for something that must happen before it calls the engine stuck (a
/// bound against hanging, not a timing assertion).
const STUCK: Duration = Duration::from_secs(30);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_channel_holds_up_neither_other_channels_nor_the_timer() {
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_config(dir.path());
    let clock = ManualClock::new(at("2026-03-01T04:00:00Z"));
    let gate = Arc::new(Gate::closed());
    let builder = config
        .engine_builder(Arc::new(MemoryStore::new()), Arc::new(clock.clone()))
        .unwrap();
    // Contacts deliver through "rapidpro", which hangs; due dates through the file outbox.
    let engine = builder
        .channel("rapidpro", gate.clone())
        .open()
        .await
        .unwrap();
    let contact = tickler_tests::join_karma_contact(&engine).await;
    let first_contact = engine
        .show(&contact)
        .await
        .unwrap()
        .active
        .values()
        .map(|r| r.planned_at)
        .min()
        .unwrap();
    // A due date whose first reminder falls a few hours after the contact's first interaction,
    // within that interaction's grace (6 h).
    let review = id("due/review-1");
    let due = first_contact.saturating_add(Span::hours(50)).ceil_to_hour();
    engine
        .create(&review, reviewer_report(Some(&due.to_string())))
        .await
        .unwrap();
    let pre_due = engine
        .show(&review)
        .await
        .unwrap()
        .active
        .values()
        .map(|r| r.planned_at)
        .min()
        .unwrap();
    assert!(pre_due > first_contact);
    let mut past_events = engine.subscribe();

    // Time passes both instants in one step; the contact's delivery hangs in the gate.
    clock.set(pre_due);
    let sent = tokio::time::timeout(STUCK, async {
        loop {
            let past = past_events.recv().await.unwrap();
            if past.entity == review {
                return past;
            }
        }
    })
    .await
    .expect("the due date's reminder was sent while the other channel hung");
    assert!(matches!(sent.outcome, Outcome::Sent { .. }), "{sent:?}");
    // The two wakes run concurrently: the contact's may reach the gate after the review's was
    // sent. It must reach it, and stay there.
    tokio::time::timeout(STUCK, gate.arrived.notified())
        .await
        .expect("the contact's delivery reached the gate");
    assert_eq!(
        *gate.waiting.lock().unwrap(),
        [format!("{contact}#conversation-a#0")],
        "the contact's delivery is still in the gate"
    );
    assert!(engine.history(&contact).await.unwrap().is_empty());

    // Opened, the gate lets the held delivery end as sent, once.
    gate.open.add_permits(1);
    engine.settle().await.unwrap();
    let history = engine.history(&contact).await.unwrap();
    assert_eq!(history.len(), 1);
    assert!(matches!(history[0].outcome, Outcome::Sent { .. }));
    engine.shutdown().await.unwrap();
}

/// The ways stored bytes go bad, applied to event 2 of an entity's log.
fn damage(kind: &str, bytes: &mut Vec<u8>) {
    match kind {
        "flipped bit" => bytes[5] ^= 0x10,
        "truncated" => bytes.truncate(bytes.len() / 2),
        "empty" => bytes.clear(),
        // A record that checks out, of an event type this build does not know (written by a
        // newer build, say).
        "unknown event type" => {
            let mut record = Record::decode(bytes).unwrap();
            record.event_type = 9_999;
            *bytes = record.encode();
        }
        // A record that checks out, whose payload is not the event its type says.
        "garbled payload" => {
            let mut record = Record::decode(bytes).unwrap();
            record.payload = vec![0xff; record.payload.len()];
            *bytes = record.encode();
        }
        other => unreachable!("no damage called {other}"),
    }
}

const DAMAGES: [&str; 5] = [
    "flipped bit",
    "truncated",
    "empty",
    "unknown event type",
    "garbled payload",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_kind_of_corrupt_record_quarantines_its_entity_and_every_other_recovers_identically() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start_with(
        dir.path(),
        StoreKind::Memory(store.clone()),
        at("2026-03-01T09:30:00Z"),
        // No snapshots: every restart replays the whole log, damaged event included.
        |config| config.engine.snapshot_every = 1_000,
    )
    .await;
    let damaged: Vec<EntityId> = (0..DAMAGES.len())
        .map(|n| id(&format!("due/damaged-{n}")))
        .collect();
    let healthy: Vec<EntityId> = (0..10).map(|n| id(&format!("due/healthy-{n}"))).collect();
    for entity in damaged.iter().chain(&healthy) {
        h.engine
            .create(entity, reviewer_report(None))
            .await
            .unwrap();
        // A second event, so that event 2 exists.
        h.engine
            .execute(
                entity,
                tickler::Command::Toggle {
                    occurrence: "first-late#0".parse().unwrap(),
                    enabled: false,
                },
            )
            .await
            .unwrap();
    }
    let mut before: BTreeMap<EntityId, Entity> = BTreeMap::new();
    for entity in &healthy {
        before.insert(entity.clone(), h.engine.show(entity).await.unwrap());
    }
    let (_, clock) = h.stop().await;
    let lengths: Vec<u64> = damaged
        .iter()
        .map(|e| Store::last_seq(store.as_ref(), e).unwrap())
        .collect();
    for (entity, kind) in damaged.iter().zip(DAMAGES) {
        assert!(store.corrupt_event(entity, 2, |bytes| damage(kind, bytes)));
    }

    let h = Harness::start(dir.path(), StoreKind::Memory(store.clone()), clock.now()).await;
    for entity in &healthy {
        assert_eq!(
            h.engine.show(entity).await.unwrap(),
            before[entity],
            "{entity} recovers as it was"
        );
    }
    for (entity, kind) in damaged.iter().zip(DAMAGES) {
        let err = h.engine.show(entity).await.unwrap_err();
        assert_eq!(err.code(), "quarantined", "{kind}: {err}");
        assert!(
            err.to_string().contains("event 2"),
            "{kind}: the error names the event: {err}"
        );
        let err = h
            .engine
            .execute(
                entity,
                tickler::Command::Complete {
                    reason: "review-submitted".into(),
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "quarantined", "{kind}: commands are refused");
    }
    let status = h.engine.status().await.unwrap();
    for entity in &damaged {
        assert!(
            status.quarantined.contains_key(&entity.to_string()),
            "{entity} is listed: {:?}",
            status.quarantined
        );
    }
    assert_eq!(status.quarantined.len(), damaged.len());

    // Time goes on: every healthy reminder fires; the damaged entities' wakes are refused and
    // nothing of theirs is sent.
    h.engine.advance(Span::days(15)).await.unwrap();
    let mut sent: Vec<String> = h.outbox().into_iter().map(|m| m.idempotency_key).collect();
    sent.sort();
    let mut expected: Vec<String> = healthy
        .iter()
        .flat_map(|e| [format!("{e}#pre-due#0"), format!("{e}#second-late#0")])
        .collect();
    expected.sort();
    assert_eq!(sent, expected);
    for (entity, length) in damaged.iter().zip(lengths) {
        assert_eq!(
            Store::last_seq(store.as_ref(), entity).unwrap(),
            length,
            "nothing was appended to {entity}'s damaged log"
        );
    }
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_the_store_fails_every_operation_commands_fail_with_a_storage_error_and_nothing_is_lost()
 {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start(
        dir.path(),
        StoreKind::Memory(store.clone()),
        at("2026-03-01T09:30:00Z"),
    )
    .await;
    let acknowledged: Vec<EntityId> = (0..3).map(|n| id(&format!("due/before-{n}"))).collect();
    for entity in &acknowledged {
        h.engine
            .create(entity, reviewer_report(None))
            .await
            .unwrap();
    }
    // Half of them are read back from the store on their next command.
    h.engine.passivate_idle();

    store.set_unavailable(true);
    let refused = id("due/during");
    let err = h
        .engine
        .create(&refused, reviewer_report(None))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "storage_error", "{err}");
    assert!(err.to_string().contains("no space left"), "{err}");
    for entity in &acknowledged {
        let err = h
            .engine
            .execute(
                entity,
                tickler::Command::Toggle {
                    occurrence: "first-late#0".parse().unwrap(),
                    enabled: false,
                },
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), "storage_error", "{entity}: {err}");
        let err = h.engine.show(entity).await.unwrap_err();
        assert_eq!(err.code(), "storage_error", "not quarantined: {err}");
    }

    // `status`, where an operator looks first, still answers, naming what it cannot read
    // (issue 20, M8).
    let status = h.engine.status().await.unwrap();
    assert_eq!((status.errored, status.retries_in_flight), (None, None));
    assert!(
        status
            .storage_errors
            .iter()
            .any(|e| e.contains("no space left")),
        "{:?}",
        status.storage_errors
    );

    // The disk has room again: the same engine serves, with everything acknowledged.
    store.set_unavailable(false);
    assert!(h.engine.status().await.unwrap().storage_errors.is_empty());
    assert!(h.engine.status().await.unwrap().quarantined.is_empty());
    for entity in &acknowledged {
        assert!(h.engine.show(entity).await.unwrap().active.len() == 3);
    }
    assert_eq!(
        h.engine.show(&refused).await.unwrap_err().code(),
        "unknown_entity",
        "the refused create left nothing"
    );
    h.engine.advance(Span::days(15)).await.unwrap();
    let mut sent: Vec<String> = h.outbox().into_iter().map(|m| m.idempotency_key).collect();
    sent.sort();
    let mut expected: Vec<String> = acknowledged
        .iter()
        .flat_map(|e| ["pre-due", "first-late", "second-late"].map(|rule| format!("{e}#{rule}#0")))
        .collect();
    expected.sort();
    assert_eq!(sent, expected);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_flush_failed_but_which_was_stored_still_wakes_at_its_new_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start(
        dir.path(),
        StoreKind::Memory(store.clone()),
        at("2026-03-01T09:40:00Z"),
    )
    .await;
    // A neighbour with a wake at 10:00 too, sorting after the one the move below will store,
    // paged in from the index as 10:00 comes within the timer's horizon: the timer's cursor in
    // the index is past the point where the move's wake will go.
    let neighbour = id("due/zz-neighbour");
    h.engine
        .create(&neighbour, reviewer_report(Some("2026-03-03T10:00:00Z")))
        .await
        .unwrap();
    h.engine.advance(Span::minutes(15)).await.unwrap();
    let review = id("due/review-1");
    h.engine
        .create(&review, reviewer_report(Some("2026-03-11T10:00:00Z")))
        .await
        .unwrap();
    // The move is applied, its flush fails: the caller hears an error (outcome unknown), and the
    // store holds a pre-due reminder five minutes away, in the part of the index the timer has
    // already paged in and will not read again: the timer must be told.
    store.fail_next_flushes(1);
    let err = h
        .engine
        .execute(
            &review,
            tickler::Command::MoveAnchor {
                anchor: "due_at".into(),
                to: at("2026-03-03T10:00:00Z"),
            },
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), "storage_error");
    let moved = h.engine.show(&review).await.unwrap();
    assert_eq!(moved.anchors["due_at"], at("2026-03-03T10:00:00Z"));

    h.engine.advance(Span::hours(1)).await.unwrap();
    let mut sent: Vec<(String, tickler::Timestamp)> = h
        .outbox()
        .into_iter()
        .map(|m| (m.idempotency_key, m.fired_at))
        .collect();
    sent.sort();
    assert_eq!(
        sent,
        [
            (
                "due/review-1#pre-due#0".to_owned(),
                at("2026-03-01T10:00:00Z")
            ),
            (
                "due/zz-neighbour#pre-due#0".to_owned(),
                at("2026-03-01T10:00:00Z")
            )
        ]
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_advance_over_a_wake_whose_commit_failed_retries_it_and_moves_on() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    // With a two-hour horizon the timer pages the index in at 08:10 (until 10:10) and next at
    // 09:10, so nothing re-reads the index between the failed wake at 09:00 and its retry.
    let h = Harness::start_with(
        dir.path(),
        StoreKind::Memory(store.clone()),
        at("2026-03-01T08:10:00Z"),
        |config| config.engine.timer_horizon = Span::hours(2),
    )
    .await;
    let review = id("due/review-1");
    h.engine
        .create(&review, reviewer_report(Some("2026-03-03T09:00:00Z")))
        .await
        .unwrap();

    // The wake at 09:00 fails to commit: it is retried a second later, and the clock moves on
    // (the index still says 09:00, which must not hold the advance at 09:00 for ever).
    store.fail_next_commits(1);
    tokio::time::timeout(STUCK, h.engine.advance(Span::hours(1)))
        .await
        .expect("the advance is not stuck on the failed wake")
        .unwrap();
    let sent: Vec<(String, tickler::Timestamp)> = h
        .outbox()
        .into_iter()
        .map(|m| (m.idempotency_key, m.fired_at))
        .collect();
    assert_eq!(
        sent,
        [(
            "due/review-1#pre-due#0".to_owned(),
            at("2026-03-01T09:00:01Z")
        )]
    );
    h.stop().await;
}
