//! The engine end to end through the library, on a manual clock: due-date chasing, restarts,
//! and the record every occurrence leaves.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use tickler::{Clock, Command, MemoryStore, Outcome, PastEvent, Span, UnsentReason};
use tickler_tests::{Harness, StoreKind, at, id, read_outbox, reviewer_report};

fn outcome_of(past: &[PastEvent], occurrence: &str) -> String {
    past.iter()
        .find(|p| p.occurrence.to_string() == occurrence)
        .map(|p| p.outcome.label())
        .unwrap_or_else(|| "none".into())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_due_date_is_chased_moved_and_completed_with_every_outcome_on_record() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start(
        dir.path(),
        StoreKind::Memory(store),
        at("2026-03-01T09:30:00Z"),
    )
    .await;
    let review = id("due/review-42");
    h.engine
        .create(&review, reviewer_report(None))
        .await
        .unwrap();

    // Nine days later the pre-due reminder (due 03-11 10:00, minus two days) has gone out, at
    // its own instant, and nothing else has.
    let fired = h.engine.advance(Span::days(9)).await.unwrap();
    assert_eq!(fired, 1);
    let outbox = h.outbox();
    assert_eq!(outbox.len(), 1);
    assert_eq!(outbox[0].idempotency_key, "due/review-42#pre-due#0");
    assert_eq!(outbox[0].due_at, at("2026-03-09T10:00:00Z"));
    assert_eq!(outbox[0].fired_at, at("2026-03-09T10:00:00Z"));
    assert_eq!(outbox[0].recipient, "reviewer@example.org");
    assert_eq!(outbox[0].kind, "due-soon");
    assert!(
        outbox[0].subject.contains("Review of manuscript 42"),
        "{}",
        outbox[0].subject
    );
    assert!(
        outbox[0].body.contains("Wed 11 Mar 2026, 11:00 CET"),
        "{}",
        outbox[0].body
    );

    // The editor extends the due date by nine days: the chasers move; the sent reminder stays
    // in history and a new pre-due reminder is armed for the new date.
    h.engine
        .execute(
            &review,
            Command::MoveAnchor {
                anchor: "due_at".into(),
                to: at("2026-03-20T10:00:00Z"),
            },
        )
        .await
        .unwrap();
    let entity = h.engine.show(&review).await.unwrap();
    let planned: BTreeMap<String, String> = entity
        .active
        .values()
        .map(|r| (r.occurrence.to_string(), r.planned_at.to_string()))
        .collect();
    assert_eq!(
        planned,
        BTreeMap::from([
            ("first-late#0".to_owned(), "2026-03-22T10:00:00Z".to_owned()),
            ("pre-due#1".to_owned(), "2026-03-18T10:00:00Z".to_owned()),
            (
                "second-late#0".to_owned(),
                "2026-03-24T10:00:00Z".to_owned()
            ),
        ])
    );

    h.engine.advance(Span::days(11)).await.unwrap();
    let outbox = h.outbox();
    let sent: Vec<(&str, String)> = outbox
        .iter()
        .map(|m| (m.idempotency_key.as_str(), m.fired_at.to_string()))
        .collect();
    assert_eq!(
        sent,
        [
            ("due/review-42#pre-due#0", "2026-03-09T10:00:00Z".to_owned()),
            ("due/review-42#pre-due#1", "2026-03-18T10:00:00Z".to_owned()),
        ]
    );

    // The review is submitted: the chasers still pending end as unsent "completed".
    h.engine
        .execute(
            &review,
            Command::Complete {
                reason: "review-submitted".into(),
            },
        )
        .await
        .unwrap();
    h.engine.advance(Span::days(10)).await.unwrap();
    assert_eq!(h.outbox().len(), 2, "nothing is sent after completion");
    let history = h.engine.history(&review).await.unwrap();
    assert_eq!(history.len(), 4);
    assert_eq!(outcome_of(&history, "pre-due#0"), "sent");
    assert_eq!(outcome_of(&history, "pre-due#1"), "sent");
    assert_eq!(outcome_of(&history, "first-late#0"), "unsent: completed");
    assert_eq!(outcome_of(&history, "second-late#0"), "unsent: completed");
    assert!(h.engine.show(&review).await.unwrap().active.is_empty());
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_toggled_off_is_recorded_as_deactivated_and_nothing_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let review = id("due/review-7");
    h.engine
        .create(&review, reviewer_report(None))
        .await
        .unwrap();
    let toggle = |occurrence: &str, enabled| Command::Toggle {
        occurrence: occurrence.parse().unwrap(),
        enabled,
    };
    h.engine
        .execute(&review, toggle("pre-due#0", false))
        .await
        .unwrap();
    h.engine
        .execute(&review, toggle("first-late#0", false))
        .await
        .unwrap();
    h.engine
        .execute(&review, toggle("first-late#0", true))
        .await
        .unwrap();
    h.engine.advance(Span::days(13)).await.unwrap();
    let keys: Vec<String> = h.outbox().into_iter().map(|m| m.idempotency_key).collect();
    assert_eq!(keys, ["due/review-7#first-late#0"]);
    let history = h.engine.history(&review).await.unwrap();
    assert_eq!(outcome_of(&history, "pre-due#0"), "unsent: deactivated");
    // A processed event cannot be toggled.
    let err = h
        .engine
        .execute(&review, toggle("pre-due#0", true))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "already_processed");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_due_date_into_the_past_retires_the_reminder_instead_of_sending_it_late() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let review = id("due/review-8");
    h.engine
        .create(&review, reviewer_report(Some("2026-03-10T10:00:00Z")))
        .await
        .unwrap();
    h.engine.advance(Span::days(6)).await.unwrap(); // 03-07 09:30: pre-due (03-08 10:00) still pending
    h.engine
        .execute(
            &review,
            Command::MoveAnchor {
                anchor: "due_at".into(),
                to: at("2026-03-08T10:00:00Z"),
            },
        )
        .await
        .unwrap();
    let history = h.engine.history(&review).await.unwrap();
    assert_eq!(outcome_of(&history, "pre-due#0"), "unsent: not-applicable");
    h.engine.advance(Span::days(10)).await.unwrap();
    let keys: BTreeSet<String> = h.outbox().into_iter().map(|m| m.idempotency_key).collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "due/review-8#first-late#0".to_owned(),
            "due/review-8#second-late#0".to_owned()
        ])
    );
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_restart_overdue_events_fire_once_and_past_events_are_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(dir.path(), StoreKind::Sled, at("2026-03-01T09:30:00Z")).await;
    let first = id("due/review-1");
    let second = id("due/review-2");
    h.engine
        .create(&first, reviewer_report(Some("2026-03-05T10:00:00Z")))
        .await
        .unwrap();
    h.engine
        .create(&second, reviewer_report(Some("2026-03-05T11:00:00Z")))
        .await
        .unwrap();
    // Up to 03-03 10:30: both pre-due reminders (03-03 10:00 and 11:00)... only the first fired.
    h.engine
        .advance(Span::from_millis(
            at("2026-03-03T10:30:00Z")
                .since(at("2026-03-01T09:30:00Z"))
                .as_millis(),
        ))
        .await
        .unwrap();
    let history_before = h.engine.history(&first).await.unwrap();
    assert_eq!(history_before.len(), 1);
    let raw_before = h.store.past_events(&first).unwrap();
    let (store, clock) = h.stop().await;
    drop(store);

    // Down for a while: the clock moves past the second pre-due and the first chaser of neither.
    clock.set(at("2026-03-03T11:30:00Z"));
    let h = Harness::start(dir.path(), StoreKind::Sled, at("2026-03-03T11:30:00Z")).await;
    h.engine.settle().await.unwrap();
    assert_eq!(h.engine.history(&second).await.unwrap().len(), 1);
    assert_eq!(
        outcome_of(&h.engine.history(&second).await.unwrap(), "pre-due#0"),
        "sent"
    );
    assert_eq!(
        h.store.past_events(&first).unwrap(),
        raw_before,
        "past events are write-once"
    );
    let keys: Vec<String> = h.outbox().into_iter().map(|m| m.idempotency_key).collect();
    assert_eq!(keys.len(), 2);
    assert_eq!(
        keys.iter().collect::<BTreeSet<_>>().len(),
        2,
        "no key twice: {keys:?}"
    );

    // Far past its grace: the first chaser of review-1 (03-07 10:00) is missed, not sent, when
    // the engine comes back two days after it.
    let (store, _) = h.stop().await;
    drop(store);
    let h = Harness::start(dir.path(), StoreKind::Sled, at("2026-03-09T10:30:00Z")).await;
    h.engine.settle().await.unwrap();
    let history = h.engine.history(&first).await.unwrap();
    let missed = history
        .iter()
        .find(|p| p.occurrence.to_string() == "first-late#0")
        .unwrap();
    assert!(matches!(
        &missed.outcome,
        Outcome::Unsent { reason: UnsentReason::Missed, detail, .. } if detail.contains("beyond its grace of 1d")
    ));
    assert_eq!(h.store.past_events(&first).unwrap()[..1], raw_before[..1]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedders_receive_past_events_as_they_are_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let mut stream = h.engine.subscribe();
    h.engine
        .create(&id("due/review-9"), reviewer_report(None))
        .await
        .unwrap();
    h.engine.advance(Span::days(9)).await.unwrap();
    let past = stream.try_recv().unwrap();
    assert_eq!(past.idempotency_key.as_str(), "due/review-9#pre-due#0");
    assert!(matches!(past.outcome, Outcome::Sent { attempts: 1, .. }));
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_commands_are_refused_with_the_value_named_and_nothing_written() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let review = id("due/review-10");
    let err = h
        .engine
        .create(&review, reviewer_report(Some("2026-02-01T00:00:00Z")))
        .await
        .unwrap_err();
    assert_eq!(err.code(), "anchor_before_creation");
    assert!(err.to_string().contains("2026-02-01T00:00:00Z"), "{err}");
    assert_eq!(h.store.last_seq(&review).unwrap(), 0);
    let err = h.engine.show(&review).await.unwrap_err();
    assert_eq!(err.code(), "unknown_entity");
    let mut create = reviewer_report(None);
    create.policy = "no-such-policy".into();
    let err = h.engine.create(&review, create).await.unwrap_err();
    assert_eq!(err.code(), "unknown_policy");
    assert!(err.to_string().contains("\"no-such-policy\""), "{err}");
    let err = h.engine.advance(Span::days(-1)).await.unwrap_err();
    assert!(err.to_string().contains("-1d"), "{err}");
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_entity_whose_commit_failed_is_restarted_from_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start(
        dir.path(),
        StoreKind::Memory(store.clone()),
        at("2026-03-01T09:30:00Z"),
    )
    .await;
    let review = id("due/review-11");
    h.engine
        .create(&review, reviewer_report(None))
        .await
        .unwrap();
    let toggle = |enabled| Command::Toggle {
        occurrence: "pre-due#0".parse().unwrap(),
        enabled,
    };

    // The write is refused before it is applied: an error, and the next actor replays a log
    // without it.
    store.fail_next_commits(1);
    let err = h.engine.execute(&review, toggle(false)).await.unwrap_err();
    assert_eq!(err.code(), "storage_error");
    let entity = h.engine.show(&review).await.unwrap();
    assert!(entity.active[&"pre-due#0".parse().unwrap()].enabled);

    // The write is applied but its flush fails: the outcome is unknown to the caller; the fresh
    // actor's replay shows what the store holds, and the entity keeps working.
    store.fail_next_flushes(1);
    let err = h.engine.execute(&review, toggle(false)).await.unwrap_err();
    assert_eq!(err.code(), "storage_error");
    let entity = h.engine.show(&review).await.unwrap();
    assert!(!entity.active[&"pre-due#0".parse().unwrap()].enabled);
    assert_eq!(entity.version, 5);
    h.engine.execute(&review, toggle(true)).await.unwrap();
    h.engine.advance(Span::days(9)).await.unwrap();
    assert_eq!(h.outbox().len(), 1);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_record_quarantines_its_entity_and_the_others_keep_running() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let h = Harness::start(
        dir.path(),
        StoreKind::Memory(store.clone()),
        at("2026-03-01T09:30:00Z"),
    )
    .await;
    let broken = id("due/review-12");
    let healthy = id("due/review-13");
    h.engine
        .create(&broken, reviewer_report(None))
        .await
        .unwrap();
    h.engine
        .create(&healthy, reviewer_report(None))
        .await
        .unwrap();
    let (store_handle, clock) = h.stop().await;
    drop(store_handle);
    assert!(store.corrupt_event(&broken, 2, |bytes| bytes[3] ^= 0x40));

    let h = Harness::start(dir.path(), StoreKind::Memory(store.clone()), clock.now()).await;
    // The broken entity's timers still fire, but it refuses them and every command.
    h.engine.advance(Span::days(9)).await.unwrap();
    let err = h.engine.show(&broken).await.unwrap_err();
    assert_eq!(err.code(), "quarantined");
    assert!(err.to_string().contains("event 2"), "{err}");
    let status = h.engine.status().await.unwrap();
    assert!(
        status.quarantined.contains_key("due/review-12"),
        "{:?}",
        status.quarantined
    );
    let keys: Vec<String> = h.outbox().into_iter().map(|m| m.idempotency_key).collect();
    assert_eq!(keys, ["due/review-13#pre-due#0"]);
    h.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn far_future_timers_stay_in_the_index_until_they_come_near() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    for n in 0..20 {
        let due = at("2026-06-01T10:00:00Z").saturating_add(Span::hours(n));
        h.engine
            .create(
                &id(&format!("due/far-{n}")),
                reviewer_report(Some(&due.to_string())),
            )
            .await
            .unwrap();
    }
    let status = h.engine.status().await.unwrap();
    assert_eq!(
        status.timers_in_memory, 0,
        "60 timers months away are not in memory"
    );
    assert_eq!(status.next_due, Some(at("2026-05-30T10:00:00Z")));
    // Advancing to just before the first pre-due reminder loads it (it is within the horizon).
    let to_first = at("2026-05-30T09:55:00Z").since(h.engine.now());
    h.engine.advance(to_first).await.unwrap();
    let status = h.engine.status().await.unwrap();
    assert_eq!(status.timers_in_memory, 1);
    h.engine.advance(Span::days(10)).await.unwrap();
    assert_eq!(h.outbox().len(), 60);
    h.stop().await;
}

/// A store that, once armed, fails one commit and then panics when the actor reads its state
/// back: a stand-in for a bug inside an actor (commits run on the group-commit thread, reads on
/// the actor).
struct PanicOnce {
    inner: Arc<MemoryStore>,
    armed: std::sync::atomic::AtomicBool,
    panic_on_read: std::sync::atomic::AtomicBool,
}

impl tickler::Store for PanicOnce {
    fn commit_group(
        &self,
        batches: Vec<tickler::store::CommitBatch>,
    ) -> Vec<Result<tickler::store::CommitReceipt, tickler::store::Error>> {
        if self.armed.swap(false, std::sync::atomic::Ordering::SeqCst) {
            self.panic_on_read
                .store(true, std::sync::atomic::Ordering::SeqCst);
            let failure = tickler::store::Error::Io("injected commit failure".into());
            return vec![Err(failure); batches.len()];
        }
        self.inner.commit_group(batches)
    }
    tickler::store::forward_store_methods!(inner: commit, flush, last_seq, read_events);
    fn snapshot(
        &self,
        entity: &tickler::EntityId,
    ) -> Result<Option<tickler::store::Snapshot>, tickler::store::Error> {
        if self
            .panic_on_read
            .swap(false, std::sync::atomic::Ordering::SeqCst)
        {
            panic!("injected panic inside an entity actor");
        }
        self.inner.snapshot(entity)
    }
    tickler::store::forward_store_methods!(inner: past_events, past_event, timers_after,
        timers_from, entities_after, index_members, meta, set_meta, stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crashed_entity_actor_is_replaced_by_one_that_replays_its_log() {
    let dir = tempfile::tempdir().unwrap();
    let memory = Arc::new(MemoryStore::new());
    let store = Arc::new(PanicOnce {
        inner: memory.clone(),
        armed: std::sync::atomic::AtomicBool::new(false),
        panic_on_read: std::sync::atomic::AtomicBool::new(false),
    });
    let config = tickler_tests::shipped_config(dir.path());
    let clock = tickler::ManualClock::new(at("2026-03-01T09:30:00Z"));
    let engine = config
        .open_engine(store.clone(), Arc::new(clock))
        .await
        .unwrap();
    let review = id("due/review-14");
    engine.create(&review, reviewer_report(None)).await.unwrap();

    store.armed.store(true, std::sync::atomic::Ordering::SeqCst);
    let toggle = |enabled| Command::Toggle {
        occurrence: "pre-due#0".parse().unwrap(),
        enabled,
    };
    // Both commands are queued before the actor crashes on the first: the second, which the
    // dead actor never took, reaches a fresh actor, rebuilt from the log, and works.
    let (crashed, queued_behind) = tokio::join!(
        engine.execute(&review, toggle(false)),
        engine.execute(&review, toggle(false))
    );
    let err = crashed.unwrap_err();
    assert_eq!(err.code(), "internal_error", "{err}");
    assert_eq!(queued_behind.unwrap().version, 5);
    // And so does the next one (it changes nothing: the reminder is already off).
    let applied = engine.execute(&review, toggle(false)).await.unwrap();
    assert_eq!(applied.version, 5);
    assert!(!engine.show(&review).await.unwrap().active[&"pre-due#0".parse().unwrap()].enabled);
    engine.shutdown().await.unwrap();
}

/// A store whose commits wait while it is held: a woken entity cannot finish handling its
/// wake, so the wake stays in flight and the test can count how many the timer lets out.
struct HeldCommits {
    inner: Arc<MemoryStore>,
    held: std::sync::Mutex<bool>,
    released: std::sync::Condvar,
}

impl HeldCommits {
    fn set_held(&self, held: bool) {
        *self.held.lock().unwrap() = held;
        self.released.notify_all();
    }
}

impl tickler::Store for HeldCommits {
    fn commit_group(
        &self,
        batches: Vec<tickler::store::CommitBatch>,
    ) -> Vec<Result<tickler::store::CommitReceipt, tickler::store::Error>> {
        // Called on the group-commit thread, which may block.
        let held = self.held.lock().unwrap();
        drop(self.released.wait_while(held, |held| *held).unwrap());
        self.inner.commit_group(batches)
    }
    tickler::store::forward_store_methods!(inner: commit, flush, last_seq, read_events, snapshot,
        past_events, past_event, timers_after, timers_from, entities_after, index_members, meta,
        set_meta, stats);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wakes_in_flight_are_bounded_by_their_setting_and_by_the_actor_cap() {
    const REPORTS: usize = 30;
    // (wake_in_flight_max, actors_max, wakes the timer may hand out at once)
    for (wake_in_flight_max, actors_max, bound) in [(5, 100, 5), (100, 8, 8)] {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(HeldCommits {
            inner: Arc::new(MemoryStore::new()),
            held: std::sync::Mutex::new(false),
            released: std::sync::Condvar::new(),
        });
        let mut config = tickler_tests::shipped_config(dir.path());
        config.engine.wake_in_flight_max = wake_in_flight_max;
        config.engine.actors_max = actors_max;
        let clock = tickler::ManualClock::new(at("2026-03-01T09:30:00Z"));
        let engine = config
            .open_engine(store.clone(), Arc::new(clock.clone()))
            .await
            .unwrap();
        // Thirty reports due at the same instant: thirty pre-due reminders wake together.
        for n in 0..REPORTS {
            engine
                .create(
                    &id(&format!("due/review-{n}")),
                    reviewer_report(Some("2026-03-11T10:00:00Z")),
                )
                .await
                .unwrap();
        }
        store.set_held(true);
        clock.set(at("2026-03-09T10:00:01Z"));
        // The timer hands out every wake it may in one tick; none can finish while commits are
        // held, so the first count above zero is the bound the timer kept.
        let in_flight = loop {
            let in_flight = engine.status().await.unwrap().wakes_in_flight;
            if in_flight > 0 {
                break in_flight;
            }
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        };
        // Released before asserting, so that a failure does not leave the engine blocked.
        store.set_held(false);
        assert_eq!(
            in_flight, bound,
            "wake_in_flight_max {wake_in_flight_max}, actors_max {actors_max}"
        );
        // The rest follow: every report's reminder is delivered once.
        let fired = engine.advance(Span::minutes(1)).await.unwrap();
        let mut delivered: Vec<String> = read_outbox(&dir.path().join("outbox.jsonl"))
            .into_iter()
            .map(|message| message.idempotency_key)
            .collect();
        delivered.sort();
        delivered.dedup();
        assert_eq!(
            delivered.len(),
            REPORTS,
            "{fired} fired in the last advance"
        );
        engine.shutdown().await.unwrap();
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_limit_of_zero_is_refused_by_name_when_the_engine_opens() {
    type Zero = fn(&mut tickler::EngineOptions);
    let zeros: [(&str, Zero); 4] = [
        ("actors_max", |options| options.actors_max = 0),
        ("fire_rate_max_per_s", |options| {
            options.fire_rate_max_per_s = 0
        }),
        ("wake_in_flight_max", |options| {
            options.wake_in_flight_max = 0
        }),
        ("channel_in_flight_max", |options| {
            options.channel_in_flight_max = 0
        }),
    ];
    for (name, zero) in zeros {
        let dir = tempfile::tempdir().unwrap();
        let mut config = tickler_tests::shipped_config(dir.path());
        zero(&mut config.engine);
        let store = Arc::new(MemoryStore::new());
        let clock = tickler::ManualClock::new(at("2026-03-01T09:30:00Z"));
        let Err(err) = config.open_engine(store.clone(), Arc::new(clock)).await else {
            panic!("an engine opened with {name} = 0");
        };
        assert_eq!(err.code(), "invalid_config", "{err}");
        assert_eq!(
            err.to_string(),
            format!("invalid configuration: engine option {name}: must be at least 1, not 0")
        );
        assert_eq!(
            tickler::Store::stats(&*store).unwrap().events,
            0,
            "nothing written"
        );
    }
}

/// A channel that fails transiently a number of times, then delivers; it records every attempt.
struct Flaky {
    failures_left: std::sync::atomic::AtomicU32,
    attempts: std::sync::Mutex<Vec<(String, u32, tickler::Timestamp)>>,
}

#[tickler::async_trait]
impl tickler::Channel for Flaky {
    async fn deliver(&self, message: &tickler::Message) -> Result<String, tickler::DeliveryError> {
        self.attempts.lock().unwrap().push((
            message.idempotency_key.clone(),
            message.attempt,
            message.fired_at,
        ));
        let left = self.failures_left.load(std::sync::atomic::Ordering::SeqCst);
        if left > 0 {
            self.failures_left
                .store(left - 1, std::sync::atomic::Ordering::SeqCst);
            return Err(tickler::DeliveryError::Transient(
                "503 Service Unavailable".into(),
            ));
        }
        Ok("accepted".into())
    }
}

async fn engine_with_channel(dir: &std::path::Path, channel: Arc<Flaky>) -> tickler::Engine {
    let mut config = tickler_tests::shipped_config(dir);
    config.engine.delivery.jitter = 0.0;
    let clock = tickler::ManualClock::new(at("2026-03-01T09:30:00Z"));
    // The shipped channels (the other policies need theirs), with "file" replaced.
    config
        .engine_builder(Arc::new(MemoryStore::new()), Arc::new(clock))
        .unwrap()
        .channel("file", channel)
        .open()
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failing_channel_is_retried_with_backoff_under_the_same_key_until_it_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let channel = Arc::new(Flaky {
        failures_left: 2.into(),
        attempts: Default::default(),
    });
    let engine = engine_with_channel(dir.path(), channel.clone()).await;
    let review = id("due/review-15");
    engine.create(&review, reviewer_report(None)).await.unwrap();
    engine.advance(Span::days(9)).await.unwrap();
    let attempts = channel.attempts.lock().unwrap().clone();
    assert_eq!(
        attempts,
        [
            (
                "due/review-15#pre-due#0".to_owned(),
                1,
                at("2026-03-09T10:00:00Z")
            ),
            (
                "due/review-15#pre-due#0".to_owned(),
                2,
                at("2026-03-09T10:00:01Z")
            ),
            (
                "due/review-15#pre-due#0".to_owned(),
                3,
                at("2026-03-09T10:00:03Z")
            ),
        ]
    );
    let history = engine.history(&review).await.unwrap();
    assert!(matches!(
        history[0].outcome,
        Outcome::Sent { attempts: 3, .. }
    ));
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_down_past_the_retry_budget_ends_as_unsent_system_error() {
    let dir = tempfile::tempdir().unwrap();
    let channel = Arc::new(Flaky {
        failures_left: 1_000.into(),
        attempts: Default::default(),
    });
    let engine = engine_with_channel(dir.path(), channel.clone()).await;
    let review = id("due/review-16");
    engine.create(&review, reviewer_report(None)).await.unwrap();
    engine.advance(Span::days(9)).await.unwrap();
    assert_eq!(
        channel.attempts.lock().unwrap().len(),
        5,
        "max_attempts in the shipped config"
    );
    let history = engine.history(&review).await.unwrap();
    assert!(matches!(
        &history[0].outcome,
        Outcome::Unsent { reason: UnsentReason::SystemError, attempts: 5, detail }
            if detail == "gave up after 5 attempts: 503 Service Unavailable"
    ));
    engine.shutdown().await.unwrap();
}
