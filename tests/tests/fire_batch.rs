//! The batched fire path (issue 24): a passivated entity's due reminder is fired without an
//! actor, and a command for it while its delivery is under way is not held up by that delivery.

use std::sync::Arc;
use std::time::Duration;

use tickler::{Engine, EntityId, ManualClock, MemoryStore, Outcome, Span};
use tickler_tests::gate::Gate;
use tickler_tests::{Harness, at, id, reviewer_report, shipped_config};

/// How long a test waits for something that must happen before it calls the engine stuck (a
/// bound against hanging, not a timing assertion).
const STUCK: Duration = Duration::from_secs(30);

/// Waits until every actor has passivated (they stop asynchronously after `passivate_idle`).
async fn passivate_all(engine: &Engine) {
    engine.passivate_idle();
    tokio::time::timeout(STUCK, async {
        while engine.status().await.unwrap().actors > 0 {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    })
    .await
    .expect("idle actors passivate");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_passivated_entitys_due_reminders_are_sent_and_recorded_without_starting_its_actor() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let review = id("due/review-1");
    h.engine
        .create(&review, reviewer_report(Some("2026-03-05T12:00:00Z")))
        .await
        .unwrap();
    passivate_all(&h.engine).await;

    let fired = h.engine.advance(Span::days(10)).await.unwrap();

    assert!(fired > 0);
    let history = h.engine.history(&review).await.unwrap();
    assert_eq!(history.len() as u64, fired, "{history:?}");
    assert!(
        history
            .iter()
            .all(|past| matches!(past.outcome, Outcome::Sent { .. })),
        "{history:?}"
    );
    assert_eq!(h.outbox().len() as u64, fired);
    assert_eq!(
        h.engine.status().await.unwrap().actors,
        0,
        "the fires ran on the batched path, not through a started actor"
    );
    h.stop().await;
}

/// An engine whose contacts deliver through `gate`, with one passivated contact.
async fn contact_behind(gate: Arc<Gate>, clock: &ManualClock) -> (Engine, EntityId) {
    let dir = tempfile::tempdir().unwrap();
    let config = shipped_config(dir.path());
    let engine = config
        .engine_builder(Arc::new(MemoryStore::new()), Arc::new(clock.clone()))
        .unwrap()
        .channel("rapidpro", gate)
        .open()
        .await
        .unwrap();
    let contact = tickler_tests::join_karma_contact(&engine).await;
    passivate_all(&engine).await;
    (engine, contact)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_command_while_a_batched_fire_waits_on_its_delivery_is_answered_before_the_delivery_ends()
{
    let gate = Arc::new(Gate::closed());
    let clock = ManualClock::new(at("2026-03-01T04:00:00Z"));
    let (engine, contact) = contact_behind(gate.clone(), &clock).await;
    let first = engine.show(&contact).await.unwrap();
    let due = first.active.values().map(|r| r.planned_at).min().unwrap();
    passivate_all(&engine).await;

    clock.set(due);
    tokio::time::timeout(STUCK, gate.arrived.notified())
        .await
        .expect("the contact's delivery reached the gate");

    // The gate is closed: this answer cannot wait for the delivery to end.
    let during = tokio::time::timeout(STUCK, engine.show(&contact))
        .await
        .expect("a command is answered while the delivery hangs")
        .unwrap();
    assert!(
        during.active.values().any(|r| r.is_delivering()),
        "the attempt was recorded before delivery: {during:?}"
    );
    assert!(engine.history(&contact).await.unwrap().is_empty());

    // Opened, the gate lets the delivery end; its result reaches the entity's actor, once.
    gate.open.add_permits(1);
    engine.settle().await.unwrap();
    let history = engine.history(&contact).await.unwrap();
    assert_eq!(history.len(), 1, "{history:?}");
    assert!(
        matches!(history[0].outcome, Outcome::Sent { .. }),
        "{history:?}"
    );
    assert_eq!(gate.waiting.lock().unwrap().len(), 1, "delivered once");
    engine.shutdown().await.unwrap();
}
