//! Clock trouble (issue 6, time suite): the manual clock jumps forward (1 h, 1 d, 30 d) and
//! back (10 min, 1 h) in the middle of an hourly series. Whatever the jumps, nothing fires before
//! it is due, no key is delivered twice, no timer is left behind, and what was processed too late
//! ends as unsent "missed" with the reason recorded (the misfire policy), never sent late beyond
//! its grace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use tickler::{CreateEntity, MemoryStore, Outcome, Span, UnsentReason, Zone};
use tickler_tests::{Harness, StoreKind, at, config_dir, copy_dir, id};

/// An hourly series of 960 (40 days), a 2-hour grace: the rule the jumps are run against.
const POLICY: &str = r#"
name = "hourly"
version = 1
entity_kind = "hourly"
[anchors.start]
[[rules]]
name = "tick"
kind = "tick"
anchor = "start"
every = "1h"
count = 960
grace = "2h"
template = "hourly/tick"
"#;

/// A daily reminder at 09:00 in the recipient's zone, for 20 days.
const DAILY: &str = r#"
name = "daily"
version = 1
entity_kind = "daily"
[anchors.start]
[[rules]]
name = "morning"
kind = "tick"
anchor = "start"
every = "1d"
count = 20
at = { mode = "local", time = "09:00" }
template = "hourly/tick"
"#;

/// The shipped policies and templates plus the hourly and daily policies, in `dir`.
fn config_with_hourly(dir: &Path) -> (std::path::PathBuf, std::path::PathBuf) {
    let policies = dir.join("policies");
    let templates = dir.join("templates");
    copy_dir(&config_dir().join("policies"), &policies);
    copy_dir(&config_dir().join("templates"), &templates);
    std::fs::write(policies.join("hourly.toml"), POLICY).unwrap();
    std::fs::write(policies.join("daily.toml"), DAILY).unwrap();
    std::fs::create_dir_all(templates.join("hourly")).unwrap();
    std::fs::write(templates.join("hourly/tick.subject.j2"), "Tick").unwrap();
    std::fs::write(
        templates.join("hourly/tick.text.j2"),
        "Tick {{ occurrence.index }}",
    )
    .unwrap();
    (policies, templates)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn jumps_forward_and_back_never_fire_early_twice_or_late_beyond_grace_and_leave_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (policies, templates) = config_with_hourly(dir.path());
    let start = at("2026-03-01T09:30:00Z");
    let h = Harness::start_with(
        dir.path(),
        StoreKind::Memory(Arc::new(MemoryStore::new())),
        start,
        |config| {
            config.policies = Some(policies);
            config.templates = Some(templates);
        },
    )
    .await;
    let entity = id("hourly/series");
    h.engine
        .create(
            &entity,
            CreateEntity {
                policy: "hourly".into(),
                workflow: None,
                recipient: "r@example.org".into(),
                zone: Zone::UTC,
                anchors: BTreeMap::from([("start".to_owned(), at("2026-03-01T10:00:00Z"))]),
                attributes: BTreeMap::new(),
            },
        )
        .await
        .unwrap();

    let now = |h: &Harness| h.engine.now();
    let jump = |h: &Harness, by: Span| now(h).saturating_add(by);
    h.engine.advance(Span::hours(3)).await.unwrap();
    for step in [
        Span::hours(1),     // forward 1 h: the overdue one goes, late but within grace
        Span::days(1),      // forward 1 d: most of the day is beyond grace
        Span::minutes(-10), // back 10 min
        Span::hours(-1),    // back 1 h
        Span::days(30),     // forward 30 d
    ] {
        let to = jump(&h, step);
        h.engine.set_time(to).await.unwrap();
        h.engine.advance(Span::hours(2)).await.unwrap();
    }
    // To the end of the series and past its grace.
    h.engine.advance(Span::days(10)).await.unwrap();

    // Nothing fired early; no key twice.
    let outbox = h.outbox();
    let mut keys = BTreeSet::new();
    for message in &outbox {
        assert!(
            message.fired_at >= message.due_at,
            "{} fired at {} before it was due at {}",
            message.idempotency_key,
            message.fired_at,
            message.due_at
        );
        assert!(
            keys.insert(message.idempotency_key.clone()),
            "{} delivered twice",
            message.idempotency_key
        );
        // Sent late only within the grace.
        assert!(
            message.fired_at.as_millis() - message.due_at.as_millis() <= Span::hours(2).as_millis(),
            "{} sent {} ms late",
            message.idempotency_key,
            message.fired_at.as_millis() - message.due_at.as_millis()
        );
    }

    // No timer left behind: every occurrence ended, sent or missed, once.
    let state = h.engine.show(&entity).await.unwrap();
    assert!(
        state.active.is_empty(),
        "still active: {:?}",
        state.active.keys()
    );
    let history = h.engine.history(&entity).await.unwrap();
    assert_eq!(history.len(), 960);
    let occurrences: BTreeSet<_> = history.iter().map(|p| p.occurrence.clone()).collect();
    assert_eq!(occurrences.len(), 960);
    let (mut sent, mut missed) = (0, 0);
    for past in &history {
        match &past.outcome {
            Outcome::Sent { .. } => sent += 1,
            Outcome::Unsent {
                reason: UnsentReason::Missed,
                detail,
                ..
            } => {
                assert!(detail.contains("beyond its grace of 2h"), "{detail}");
                missed += 1;
            }
            other => panic!("{}: unexpected {other:?}", past.occurrence),
        }
    }
    assert_eq!(sent, outbox.len());
    // The 1-day and 30-day jumps each left most of what they skipped beyond the grace.
    assert!(missed > 700, "{missed} missed, {sent} sent");
    assert_eq!(sent + missed, 960);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recipient_changing_zone_mid_schedule_gets_each_day_once_at_the_new_local_time() {
    let dir = tempfile::tempdir().unwrap();
    let (policies, templates) = config_with_hourly(dir.path());
    let h = Harness::start_with(
        dir.path(),
        StoreKind::Memory(Arc::new(MemoryStore::new())),
        at("2026-03-01T06:00:00Z"),
        |config| {
            config.policies = Some(policies);
            config.templates = Some(templates);
        },
    )
    .await;
    let entity = id("daily/mornings");
    h.engine
        .create(
            &entity,
            CreateEntity {
                policy: "daily".into(),
                workflow: None,
                recipient: "r@example.org".into(),
                zone: Zone::parse("Europe/Paris").unwrap(),
                anchors: BTreeMap::from([("start".to_owned(), at("2026-03-01T06:00:00Z"))]),
                attributes: BTreeMap::new(),
            },
        )
        .await
        .unwrap();
    // Five Paris mornings (09:00 CET = 08:00Z), then, at 10:30 Paris on the sixth day (its
    // morning already sent), the recipient moves to New York.
    h.engine.advance(Span::hours(5 * 24 + 3)).await.unwrap(); // 03-06 09:00Z
    assert_eq!(h.outbox().len(), 6);
    h.engine
        .execute(
            &entity,
            tickler::Command::ChangeRecipient {
                recipient: None,
                zone: Some(Zone::parse("America/New_York").unwrap()),
            },
        )
        .await
        .unwrap();
    h.engine.advance(Span::days(25)).await.unwrap();

    let outbox = h.outbox();
    // Each of the 20 days once: the sixth is not sent again at 09:00 New York time.
    let keys: BTreeSet<_> = outbox.iter().map(|m| m.idempotency_key.clone()).collect();
    assert_eq!((outbox.len(), keys.len()), (20, 20));
    let paris: chrono_tz::Tz = "Europe/Paris".parse().unwrap();
    let new_york: chrono_tz::Tz = "America/New_York".parse().unwrap();
    for (n, message) in outbox.iter().enumerate() {
        let fired = message.fired_at.to_chrono();
        let (zone, day) = if n < 6 { (paris, n) } else { (new_york, n) };
        let local = fired.with_timezone(&zone);
        assert_eq!(
            local.format("%d %H:%M").to_string(),
            format!("{:02} 09:00", day + 1),
            "message {n} fired at {fired}"
        );
    }
}
