//! Contact cadences through the engine on a manual clock: a group join, a preferred time set
//! and cleared mid-cadence, and a policy edit re-planned for the whole group.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::Timelike;
use tickler::{AttrValue, Command, Engine, JoinGroup, ManualClock, MemoryStore, Span, Zone};
use tickler_tests::{at, read_outbox, shipped_config};

const NAIROBI: &str = "Africa/Nairobi";

async fn open(
    dir: &std::path::Path,
    store: Arc<MemoryStore>,
    clock: ManualClock,
    policy_edit: impl Fn(String) -> String,
) -> Engine {
    let config = shipped_config(dir);
    // A copy of the shipped policies, edited, so that a test can change a plan between runs.
    let policies = dir.join("policies");
    std::fs::create_dir_all(&policies).unwrap();
    for entry in std::fs::read_dir(config.policies_dir().unwrap()).unwrap() {
        let path = entry.unwrap().path();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(policies.join(path.file_name().unwrap()), policy_edit(text)).unwrap();
    }
    config
        .engine_builder(store, Arc::new(clock))
        .unwrap()
        .catalog(tickler::load_catalog(&policies, &config.templates_dir().unwrap()).unwrap())
        .open()
        .await
        .unwrap()
}

fn join(contact: &str) -> JoinGroup {
    JoinGroup {
        contact: contact.into(),
        recipient: format!("tel:{contact}"),
        zone: Zone::parse(NAIROBI).unwrap(),
        anchors: BTreeMap::new(),
        attributes: BTreeMap::new(),
    }
}

fn local_hour_minute(t: tickler::Timestamp) -> (u32, u32) {
    let local = Zone::parse(NAIROBI).unwrap().local(t);
    (local.hour(), local.minute())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preferred_time_set_mid_cadence_applies_to_every_later_interaction() {
    let dir = tempfile::tempdir().unwrap();
    let clock = ManualClock::new(at("2026-03-02T04:00:00Z")); // 07:00 in Nairobi
    let engine = open(dir.path(), Arc::new(MemoryStore::new()), clock, |text| text).await;
    let joined = engine.join_group("karma", join("c-1")).await.unwrap();
    let contact = joined[0].0.clone();
    engine.advance(Span::days(4)).await.unwrap(); // days 0 and 3 sent at their drawn times
    engine
        .execute(
            &contact,
            Command::SetAttribute {
                name: "preferred_time".into(),
                value: Some(AttrValue::Text("18:30".into())),
            },
        )
        .await
        .unwrap();
    engine.advance(Span::days(43)).await.unwrap();
    let outbox = read_outbox(&dir.path().join("rapidpro-outbox.jsonl"));
    assert_eq!(outbox.len(), 16);
    let times: Vec<(u32, u32)> = outbox
        .iter()
        .map(|m| local_hour_minute(m.fired_at))
        .collect();
    assert!(times[..2].iter().all(|t| *t != (18, 30)), "{times:?}");
    assert!(times[2..].iter().all(|t| *t == (18, 30)), "{times:?}");
    engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_policy_edit_is_applied_to_the_groups_pending_interactions_by_a_replan() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(MemoryStore::new());
    let clock = ManualClock::new(at("2026-03-02T04:00:00Z"));
    let engine = open(dir.path(), store.clone(), clock.clone(), |text| text).await;
    for contact in ["c-1", "c-2", "c-3"] {
        engine.join_group("karma", join(contact)).await.unwrap();
    }
    engine.advance(Span::days(4)).await.unwrap();
    engine.shutdown().await.unwrap();
    drop(engine);

    // The team extends the cadence to day 57 and restarts.
    let engine = open(dir.path(), store, clock, |text| {
        text.replace("count = 16", "count = 20").replace(
            "version = 1\nentity_kind = \"contact\"",
            "version = 2\nentity_kind = \"contact\"",
        )
    })
    .await;
    let changed = engine.replan_group("karma").await.unwrap();
    assert_eq!(changed.len(), 3);
    for (id, _) in &changed {
        let entity = engine.show(id).await.unwrap();
        assert_eq!(entity.active.len(), 18, "{id}: 20 in all, 2 already sent");
        assert_eq!(entity.policy_version, 2);
    }
    assert!(
        engine.replan_group("karma").await.unwrap().is_empty(),
        "nothing left to change"
    );
    engine.advance(Span::days(60)).await.unwrap();
    let outbox = read_outbox(&dir.path().join("rapidpro-outbox.jsonl"));
    assert_eq!(outbox.len(), 60);
    engine.shutdown().await.unwrap();
}
