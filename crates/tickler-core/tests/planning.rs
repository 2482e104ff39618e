//! The rule model beyond the due-date policy: series, local times, windows, conditions. These
//! are the building blocks the other policies of PRODUCT.md are made of.

use std::collections::BTreeMap;

use tickler_core::plan::plan;
use tickler_core::{
    AttrValue, Command, Context, CreateEntity, DeliveryPolicy, Entity, EntityId, Event,
    OccurrenceId, Policy, Timestamp, UnsentReason, Zone, decide, evolve,
};

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn policy(rules: &str) -> Policy {
    Policy::from_toml(&format!(
        r#"
        name = "test"
        version = 1
        entity_kind = "eval"
        seed = 42
        [anchors.start]
        [anchors.due]
        {rules}
        "#
    ))
    .unwrap()
}

fn entity(policy: &Policy, zone: &str, anchors: &[(&str, &str)]) -> Entity {
    let id = EntityId::parse("eval/97").unwrap();
    let created = Event::Created {
        policy: policy.name.clone(),
        policy_version: 1,
        workflow: None,
        recipient: "student@example.org".into(),
        zone: Zone::parse(zone).unwrap(),
        anchors: anchors
            .iter()
            .map(|(k, v)| (k.to_string(), at(v)))
            .collect(),
        attributes: BTreeMap::new(),
    };
    evolve(None, &id, &created, at("2026-01-01T00:00:00Z"), 1).unwrap()
}

fn instants(policy: &Policy, entity: &Entity) -> Vec<String> {
    plan(policy, entity)
        .iter()
        .map(|p| p.at.to_string())
        .collect()
}

/// Creating an entity of the test policy that starts on 1 March and is due on 5 March (UTC).
fn create_starting_march_1st_due_march_5th(attributes: BTreeMap<String, AttrValue>) -> Command {
    Command::Create(CreateEntity {
        policy: "test".into(),
        workflow: None,
        recipient: "s@example.org".into(),
        zone: Zone::UTC,
        anchors: BTreeMap::from([
            ("start".to_owned(), at("2026-03-01T00:00:00Z")),
            ("due".to_owned(), at("2026-03-05T00:00:00Z")),
        ]),
        attributes,
    })
}

#[test]
fn a_series_every_n_days_is_aligned_to_its_anchor_and_stops_at_its_bound() {
    let policy = policy(
        r#"
        [[rules]]
        name = "reminder"
        kind = "reminder"
        anchor = "start"
        offset = "1d"
        every = "1d"
        until = { anchor = "due", offset = "-1d" }
        template = "t"
        "#,
    );
    let entity = entity(
        &policy,
        "UTC",
        &[
            ("start", "2026-03-01T09:00:00Z"),
            ("due", "2026-03-08T09:00:00Z"),
        ],
    );
    assert_eq!(
        instants(&policy, &entity),
        [
            "2026-03-02T09:00:00Z",
            "2026-03-03T09:00:00Z",
            "2026-03-04T09:00:00Z",
            "2026-03-05T09:00:00Z",
            "2026-03-06T09:00:00Z",
            "2026-03-07T09:00:00Z",
        ]
    );
}

#[test]
fn a_counted_series_plans_exactly_count_occurrences() {
    let policy = policy(
        r#"
        [[rules]]
        name = "cadence"
        kind = "a"
        anchor = "start"
        every = "3d"
        count = 16
        template = "t"
        "#,
    );
    let entity = entity(&policy, "UTC", &[("start", "2026-03-01T00:00:00Z")]);
    let planned = plan(&policy, &entity);
    assert_eq!(planned.len(), 16);
    assert_eq!(planned[15].at, at("2026-04-15T00:00:00Z"), "day 45");
}

#[test]
fn a_local_time_rule_keeps_the_wall_clock_across_a_dst_change() {
    let policy = policy(
        r#"
        [[rules]]
        name = "daily"
        kind = "daily"
        anchor = "start"
        every = "1d"
        count = 3
        at = { mode = "local", time = "09:00" }
        template = "t"
        "#,
    );
    // Paris moves to summer time on 2026-03-29.
    let entity = entity(
        &policy,
        "Europe/Paris",
        &[("start", "2026-03-28T07:00:00Z")],
    );
    assert_eq!(
        instants(&policy, &entity),
        [
            "2026-03-28T08:00:00Z",
            "2026-03-29T07:00:00Z",
            "2026-03-30T07:00:00Z"
        ]
    );
}

#[test]
fn window_draws_stay_inside_the_local_window_and_are_reproducible() {
    let policy = policy(
        r#"
        [[rules]]
        name = "nudge"
        kind = "nudge"
        anchor = "start"
        every = "1d"
        count = 200
        at = { mode = "window", start = "09:00", end = "21:00" }
        template = "t"
        "#,
    );
    let entity = entity(
        &policy,
        "America/New_York",
        &[("start", "2026-01-01T12:00:00Z")],
    );
    let first = plan(&policy, &entity);
    assert_eq!(first, plan(&policy, &entity));
    let zone = Zone::parse("America/New_York").unwrap();
    let mut hours = std::collections::BTreeSet::new();
    for p in &first {
        let local = zone.local(p.at);
        let hour = chrono::Timelike::hour(&local);
        assert!((9..21).contains(&hour), "{} is {local} local", p.at);
        hours.insert(hour);
    }
    assert_eq!(
        hours.len(),
        12,
        "every hour of the window is used: {hours:?}"
    );
}

#[test]
fn conditions_are_checked_at_fire_time() {
    let policy = policy(
        r#"
        [[rules]]
        name = "reminder"
        kind = "reminder"
        anchor = "start"
        offset = "1d"
        conditions = [
            { type = "attribute-not-true", name = "responded" },
            { type = "anchor-in-future", anchor = "due" },
        ]
        template = "t"
        "#,
    );
    let id = EntityId::parse("eval/97").unwrap();
    let delivery = DeliveryPolicy::default();
    let run = |attributes: BTreeMap<String, AttrValue>| {
        let ctx = |now| Context {
            now,
            policy: &policy,
            delivery: &delivery,
            directory: &tickler_core::NO_DIRECTORY,
        };
        let create = create_starting_march_1st_due_march_5th(attributes);
        let t0 = at("2026-02-01T00:00:00Z");
        let mut state: Option<Entity> = None;
        for (seq, event) in decide(None, &id, &create, &ctx(t0))
            .unwrap()
            .iter()
            .enumerate()
        {
            state = Some(evolve(state, &id, event, t0, seq as u64 + 1).unwrap());
        }
        let wake = Command::Wake {
            occurrence: OccurrenceId::parse("reminder#0").unwrap(),
        };
        decide(state.as_ref(), &id, &wake, &ctx(at("2026-03-02T00:00:00Z"))).unwrap()
    };
    assert!(matches!(
        run(BTreeMap::new())[0],
        Event::DeliveryStarted { .. }
    ));
    let responded = BTreeMap::from([("responded".to_owned(), AttrValue::Bool(true))]);
    let events = run(responded);
    assert!(matches!(
        &events[1],
        Event::OccurrenceUnsent { reason: UnsentReason::ConditionFalse, detail, .. } if detail == "attribute responded is true"
    ));
    // The condition, what it read and the value that made it false, as fields.
    assert_eq!(
        events[0],
        Event::CauseRecorded {
            occurrence: OccurrenceId::parse("reminder#0").unwrap(),
            cause: tickler_core::Cause::Condition {
                condition: "attribute-not-true".into(),
                subject: "responded".into(),
                value: Some("true".into()),
            },
        }
    );
}

#[test]
fn a_slot_already_past_when_planned_fires_at_once_if_its_rule_says_fire_now() {
    let policy = policy(
        r#"
        [[rules]]
        name = "closing"
        kind = "closing"
        anchor = "due"
        offset = "0s"
        if_moved_into_past = "fire-now"
        template = "t"

        [[rules]]
        name = "opening"
        kind = "opening"
        anchor = "start"
        offset = "0s"
        template = "t"
        "#,
    );
    let id = EntityId::parse("eval/97").unwrap();
    let delivery = DeliveryPolicy::default();
    let now = at("2026-03-10T08:00:00Z");
    let ctx = Context {
        now,
        policy: &policy,
        delivery: &delivery,
        directory: &tickler_core::NO_DIRECTORY,
    };
    // Both dates had passed when the entity was created.
    let create = create_starting_march_1st_due_march_5th(BTreeMap::new());
    let events = decide(None, &id, &create, &ctx).unwrap();
    let planned: Vec<(String, Timestamp)> = events
        .iter()
        .filter_map(|e| match e {
            Event::OccurrencePlanned { occurrence, at, .. } => Some((occurrence.to_string(), *at)),
            _ => None,
        })
        .collect();
    assert_eq!(
        planned,
        [
            ("closing#0".into(), now),
            ("opening#0".into(), at("2026-03-01T00:00:00Z"))
        ]
    );
    let unsent: Vec<String> = events
        .iter()
        .filter_map(|e| match e {
            Event::OccurrenceUnsent {
                occurrence,
                reason: UnsentReason::NotApplicable,
                ..
            } => Some(occurrence.to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        unsent,
        ["opening#0"],
        "the rule without fire-now is recorded, not armed"
    );
}

#[test]
fn k_times_per_period_spreads_occurrences_over_whole_days() {
    let policy = policy(
        r#"
        [[rules]]
        name = "thrice-weekly"
        kind = "nudge"
        anchor = "start"
        per_period = { times = 3, period = "7d" }
        count = 6
        template = "t"
        "#,
    );
    let entity = entity(&policy, "UTC", &[("start", "2026-03-02T10:00:00Z")]);
    assert_eq!(
        instants(&policy, &entity),
        [
            "2026-03-02T10:00:00Z",
            "2026-03-04T10:00:00Z",
            "2026-03-06T10:00:00Z",
            "2026-03-09T10:00:00Z",
            "2026-03-11T10:00:00Z",
            "2026-03-13T10:00:00Z",
        ]
    );
}
