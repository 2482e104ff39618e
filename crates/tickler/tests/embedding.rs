//! Embedding the engine with the typed API: a catalog of only the policies used, the builders,
//! and the notices an embedder observes (planned, moved, about to fire).

use std::sync::Arc;

use tickler::{
    Builders, Engine, LogChannel, ManualClock, MemoryStore, Notice, Span, Timestamp, Zone,
};
use tokio::sync::broadcast::Receiver;

const START: &str = "2026-03-01T09:30:00Z";

/// An engine of the due-date policy only, on a manual clock, delivering to the log.
async fn due_dates_only() -> Engine {
    let clock = ManualClock::new(Timestamp::parse(START).unwrap());
    Engine::builder()
        .store(Arc::new(MemoryStore::new()))
        .catalog(tickler::builtin_catalog(&["due-date"]).unwrap())
        .clock(Arc::new(clock.clone()))
        .channel("file", Arc::new(LogChannel))
        .open()
        .await
        .unwrap()
}

fn drain(notices: &mut Receiver<Notice>) -> Vec<Notice> {
    std::iter::from_fn(|| notices.try_recv().ok()).collect()
}

#[tokio::test]
async fn an_engine_of_only_the_due_date_policy_needs_only_the_channel_that_policy_names() {
    let engine = due_dates_only().await;
    assert_eq!(engine.catalog().policies().count(), 1);
    // The whole built-in catalog names more channels: opening it with one is refused.
    let whole = Engine::builder()
        .store(Arc::new(MemoryStore::new()))
        .catalog(tickler::builtin_catalog(&[]).unwrap())
        .channel("file", Arc::new(LogChannel))
        .open()
        .await;
    assert!(whole.is_err());
}

#[tokio::test]
async fn a_misspelt_policy_is_refused_naming_the_built_in_ones() {
    let Err(err) = tickler::builtin_catalog(&["due-dates"]) else {
        panic!("a policy that is not built in was accepted");
    };
    let err = err.to_string();
    assert!(err.contains("\"due-dates\""), "{err}");
    assert!(err.contains("due-date, "), "{err}");
}

#[tokio::test]
async fn the_due_date_builder_creates_a_due_date_with_its_reminders_planned() {
    let engine = due_dates_only().await;
    let review = engine
        .due_date("review-42")
        .recipient("reviewer@example.org")
        .zone(Zone::parse("Europe/Paris").unwrap())
        .title("Review of manuscript 42")
        .create()
        .await
        .unwrap();
    assert_eq!(review.id.to_string(), "due/review-42");
    assert_eq!(review.workflow.as_deref(), Some("reviewer-report"));
    assert_eq!(review.active.len(), 3);
}

#[tokio::test]
async fn the_builder_sent_twice_is_one_creation_and_a_different_one_is_a_conflict() {
    let engine = due_dates_only().await;
    let create = || {
        engine
            .due_date("review-42")
            .recipient("reviewer@example.org")
    };
    let first = create().create().await.unwrap();
    let again = create().create().await.unwrap();
    assert_eq!(first, again);
    let other = create().workflow("revision").create().await.unwrap_err();
    assert_eq!(other.code(), "conflict");
    assert!(other.to_string().contains("workflow"), "{other}");
}

#[tokio::test]
async fn a_misspelt_workflow_or_a_missing_recipient_is_a_clear_error() {
    let engine = due_dates_only().await;
    let typo = engine
        .due_date("review-1")
        .recipient("reviewer@example.org")
        .workflow("reviewer-reprot")
        .create()
        .await
        .unwrap_err()
        .to_string();
    assert!(
        typo.contains("\"reviewer-reprot\"") && typo.contains("\"due-date\""),
        "{typo}"
    );
    let nobody = engine.due_date("review-2").create().await.unwrap_err();
    assert!(nobody.to_string().contains(".recipient("), "{nobody}");
}

#[tokio::test]
async fn notices_report_each_occurrence_planned_moved_and_about_to_fire() {
    let engine = due_dates_only().await;
    let mut notices = engine.notices();
    let review = engine
        .due_date("review-42")
        .recipient("reviewer@example.org")
        .due_at(Timestamp::parse("2026-03-11T10:00:00Z").unwrap())
        .create()
        .await
        .unwrap();
    let planned = drain(&mut notices);
    assert_eq!(planned.len(), 3);
    assert!(
        matches!(&planned[0], Notice::Planned { entity, kind, .. } if entity == &review.id && kind == "due-soon")
    );

    let later = Timestamp::parse("2026-03-12T10:00:00Z").unwrap();
    engine
        .execute(
            &review.id,
            tickler::Command::MoveAnchor {
                anchor: "due_at".into(),
                to: later,
            },
        )
        .await
        .unwrap();
    let moved = drain(&mut notices);
    assert_eq!(moved.len(), 3);
    assert!(
        moved.iter().all(|n| matches!(n, Notice::Moved { .. })),
        "{moved:?}"
    );

    // The pre-due reminder, two days before the moved due date: 2026-03-10 10:00.
    engine.advance(Span::days(10)).await.unwrap();
    let fired = drain(&mut notices);
    assert!(
        fired.iter().any(|n| matches!(n, Notice::Firing { occurrence, attempt: 1, .. } if occurrence.to_string() == "pre-due#0")),
        "{fired:?}"
    );
}
