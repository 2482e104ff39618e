//! Properties over random command sequences: the live engine and a replay of its log agree, the
//! timer index is exactly the set of pending wakes, and past events are exactly what the log
//! says they are.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use proptest::prelude::*;
use tickler::{Command, CreateEntity, Entity, EntityId, MemoryStore, Span, Store, Zone};
use tickler_tests::{Harness, StoreKind, at};

#[derive(Clone, Debug)]
enum Op {
    Create {
        entity: usize,
        due_in_hours: i64,
    },
    Move {
        entity: usize,
        due_in_hours: i64,
    },
    Toggle {
        entity: usize,
        rule: usize,
        index: u32,
        enabled: bool,
    },
    Complete {
        entity: usize,
    },
    Advance {
        hours: i64,
    },
}

const ENTITIES: usize = 4;
const RULES: [&str; 3] = ["pre-due", "first-late", "second-late"];

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0..ENTITIES, 1i64..400).prop_map(|(entity, due_in_hours)| Op::Create {
            entity,
            due_in_hours
        }),
        (0..ENTITIES, -100i64..400).prop_map(|(entity, due_in_hours)| Op::Move {
            entity,
            due_in_hours
        }),
        (0..ENTITIES, 0..RULES.len(), 0u32..3, any::<bool>()).prop_map(
            |(entity, rule, index, enabled)| Op::Toggle {
                entity,
                rule,
                index,
                enabled
            }
        ),
        (0..ENTITIES).prop_map(|entity| Op::Complete { entity }),
        (1i64..120).prop_map(|hours| Op::Advance { hours }),
    ]
}

fn entity_id(n: usize) -> EntityId {
    EntityId::parse(&format!("due/prop-{n}")).unwrap()
}

async fn run(ops: Vec<Op>) -> Result<(), TestCaseError> {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    // Snapshots every few events, so actors restarting mid-run replay snapshot + tail.
    let h = Harness::start_with(
        dir.path(),
        StoreKind::Memory(store.clone()),
        at("2026-03-01T09:30:00Z"),
        |config| {
            config.engine.snapshot_every = 3;
        },
    )
    .await;
    for op in ops {
        let now = h.engine.now();
        // Rejections (a toggle of a processed occurrence, a move of a completed task) are part
        // of the game: they must write nothing, which the final checks cover.
        let _: Result<(), tickler::Error> = match op {
            Op::Create {
                entity,
                due_in_hours,
            } => h
                .engine
                .create(
                    &entity_id(entity),
                    CreateEntity {
                        policy: "due-date".into(),
                        workflow: Some("reviewer-report".into()),
                        recipient: "r@example.org".into(),
                        zone: Zone::parse("America/New_York").unwrap(),
                        anchors: BTreeMap::from([(
                            "due_at".to_owned(),
                            now.saturating_add(Span::hours(due_in_hours)),
                        )]),
                        attributes: BTreeMap::new(),
                    },
                )
                .await
                .map(drop),
            Op::Move {
                entity,
                due_in_hours,
            } => {
                let to = now.saturating_add(Span::hours(due_in_hours));
                h.engine
                    .execute(
                        &entity_id(entity),
                        Command::MoveAnchor {
                            anchor: "due_at".into(),
                            to,
                        },
                    )
                    .await
                    .map(drop)
            }
            Op::Toggle {
                entity,
                rule,
                index,
                enabled,
            } => {
                let occurrence = format!("{}#{index}", RULES[rule]).parse().unwrap();
                h.engine
                    .execute(
                        &entity_id(entity),
                        Command::Toggle {
                            occurrence,
                            enabled,
                        },
                    )
                    .await
                    .map(drop)
            }
            Op::Complete { entity } => h
                .engine
                .execute(
                    &entity_id(entity),
                    Command::Complete {
                        reason: "cancelled".into(),
                    },
                )
                .await
                .map(drop),
            Op::Advance { hours } => h.engine.advance(Span::hours(hours)).await.map(drop),
        };
        // Some actors stop between commands and come back by replaying.
        h.engine.passivate_idle();
    }

    let mut expected_timers = BTreeSet::new();
    for n in 0..ENTITIES {
        let id = entity_id(n);
        let live: Option<Entity> = h.engine.show(&id).await.ok();
        let replayed = tickler::replay::replay(store.as_ref(), &id, None).ok();
        prop_assert_eq!(
            live.as_ref(),
            replayed.as_ref().map(|r| &r.entity),
            "live and replayed state of {}",
            id
        );
        let Some(live) = live else { continue };
        for (due, occurrence) in live.timers() {
            expected_timers.insert((due, id.clone(), occurrence));
        }
        let stored: BTreeMap<_, _> = h
            .engine
            .history(&id)
            .await
            .unwrap()
            .into_iter()
            .map(|p| (p.occurrence.clone(), p))
            .collect();
        let from_log: BTreeMap<_, _> = replayed
            .unwrap()
            .past_events
            .into_iter()
            .map(|p| (p.occurrence.clone(), p))
            .collect();
        prop_assert_eq!(
            stored,
            from_log,
            "stored past events of {} are the log's",
            id
        );
    }
    let index: BTreeSet<_> = store
        .timers_after(None, usize::MAX)
        .unwrap()
        .into_iter()
        .map(|t| (t.due, t.entity, t.occurrence))
        .collect();
    prop_assert_eq!(
        index,
        expected_timers,
        "the timer index is the set of pending wakes"
    );
    h.stop().await;
    Ok(())
}

/// 48 cases in CI; `PROPTEST_CASES=n` for a longer run.
fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: cases(), ..ProptestConfig::default() })]

    #[test]
    fn replay_equals_live_state_and_the_timer_index_equals_pending_wakes(ops in proptest::collection::vec(op(), 1..40)) {
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        runtime.block_on(run(ops))?;
    }
}
