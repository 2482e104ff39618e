//! A create sent twice: the retry of a client that timed out is the same request and succeeds;
//! a different request for the same id is a conflict naming what differs. And a create that
//! names no workflow starts from the policy's default one.

use std::collections::BTreeMap;

use tickler_core::{
    AttrValue, Command, Context, CreateEntity, DeliveryPolicy, Entity, EntityId, Event, Policy,
    Rejection, Timestamp, Zone, check_repeated_create, decide, fold,
};

const POLICY: &str = include_str!("../../../config/policies/due-date.toml");

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn id() -> EntityId {
    EntityId::parse("due/review-42").unwrap()
}

fn request() -> CreateEntity {
    CreateEntity {
        policy: "due-date".into(),
        workflow: None,
        recipient: "reviewer@example.org".into(),
        zone: Zone::parse("Europe/Paris").unwrap(),
        anchors: BTreeMap::new(),
        attributes: BTreeMap::from([("title".to_owned(), AttrValue::Text("Review".into()))]),
    }
}

/// The log of an entity: created by `create` at `created_at`, then `later` commands at `now`.
struct Log {
    policy: Policy,
    delivery: DeliveryPolicy,
    events: Vec<(u64, Timestamp, Event)>,
}

impl Log {
    fn created(create: CreateEntity, created_at: Timestamp) -> Log {
        let mut log = Log {
            policy: Policy::from_toml(POLICY).unwrap(),
            delivery: DeliveryPolicy::default(),
            events: Vec::new(),
        };
        log.apply(Command::Create(create), created_at);
        log
    }

    fn ctx(&self, now: Timestamp) -> Context<'_> {
        Context {
            now,
            policy: &self.policy,
            delivery: &self.delivery,
            directory: &tickler_core::NO_DIRECTORY,
        }
    }

    fn state(&self) -> Option<Entity> {
        let events = self.events.iter().map(|(s, t, e)| (*s, *t, e));
        fold(&id(), None, events).unwrap().0
    }

    fn apply(&mut self, command: Command, now: Timestamp) {
        let events = decide(self.state().as_ref(), &id(), &command, &self.ctx(now)).unwrap();
        for event in events {
            self.events.push((self.events.len() as u64 + 1, now, event));
        }
    }

    /// What the repeat check says of `create` arriving at `now`.
    fn repeat(&self, create: &CreateEntity, now: Timestamp) -> Result<(), Rejection> {
        let (_, created_at, created) = &self.events[0];
        check_repeated_create(&id(), created, *created_at, create, &self.ctx(now))
    }
}

fn conflict_field(result: Result<(), Rejection>) -> String {
    match result {
        Err(Rejection::Conflict { field, .. }) => field,
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[test]
fn a_create_without_a_workflow_starts_from_the_policys_default_workflow() {
    let log = Log::created(request(), at("2026-03-01T09:30:00Z"));
    let state = log.state().unwrap();
    assert_eq!(state.workflow.as_deref(), Some("reviewer-report"));
    // reviewer-report: ten days, rounded up to the hour.
    assert_eq!(state.anchors["due_at"], at("2026-03-11T10:00:00Z"));
}

#[test]
fn the_identical_request_repeated_later_is_a_repeat_even_though_its_defaults_came_from_now() {
    let log = Log::created(request(), at("2026-03-01T09:30:00Z"));
    assert_eq!(log.repeat(&request(), at("2026-03-01T09:45:12Z")), Ok(()));
}

#[test]
fn the_identical_request_is_a_repeat_after_the_due_date_moved() {
    let mut log = Log::created(request(), at("2026-03-01T09:30:00Z"));
    let move_due = Command::MoveAnchor {
        anchor: "due_at".into(),
        to: at("2026-03-20T10:00:00Z"),
    };
    log.apply(move_due, at("2026-03-02T09:00:00Z"));
    assert_eq!(log.repeat(&request(), at("2026-03-03T09:00:00Z")), Ok(()));
}

#[test]
fn naming_the_default_workflow_repeats_a_request_that_left_it_out() {
    let log = Log::created(request(), at("2026-03-01T09:30:00Z"));
    let named = CreateEntity {
        workflow: Some("reviewer-report".into()),
        ..request()
    };
    assert_eq!(log.repeat(&named, at("2026-03-01T09:31:00Z")), Ok(()));
}

#[test]
fn a_different_due_date_is_a_conflict_naming_the_anchor_and_both_values() {
    let log = Log::created(request(), at("2026-03-01T09:30:00Z"));
    let other = CreateEntity {
        anchors: BTreeMap::from([("due_at".to_owned(), at("2026-03-15T10:00:00Z"))]),
        ..request()
    };
    let rejection = log.repeat(&other, at("2026-03-01T09:31:00Z")).unwrap_err();
    assert_eq!(rejection.code(), "conflict");
    let message = rejection.to_string();
    assert!(message.contains("anchors.due_at"), "{message}");
    assert!(message.contains("2026-03-11T10:00:00Z"), "{message}");
    assert!(message.contains("2026-03-15T10:00:00Z"), "{message}");
}

#[test]
fn a_different_recipient_zone_workflow_or_attribute_is_a_conflict_naming_it() {
    let log = Log::created(request(), at("2026-03-01T09:30:00Z"));
    let now = at("2026-03-01T09:31:00Z");
    let cases = [
        (
            CreateEntity {
                recipient: "someone-else@example.org".into(),
                ..request()
            },
            "recipient",
        ),
        (
            CreateEntity {
                zone: Zone::UTC,
                ..request()
            },
            "zone",
        ),
        (
            CreateEntity {
                workflow: Some("revision".into()),
                ..request()
            },
            "workflow",
        ),
        (
            CreateEntity {
                attributes: BTreeMap::new(),
                ..request()
            },
            "attributes.title",
        ),
    ];
    for (other, field) in cases {
        assert_eq!(conflict_field(log.repeat(&other, now)), field);
    }
}

#[test]
fn a_request_under_another_policy_is_a_conflict_naming_the_policy() {
    let log = Log::created(request(), at("2026-03-01T09:30:00Z"));
    let other = CreateEntity {
        policy: "contact-cadence".into(),
        ..request()
    };
    assert_eq!(
        conflict_field(log.repeat(&other, at("2026-03-01T09:31:00Z"))),
        "policy"
    );
}

#[test]
fn a_default_workflow_the_policy_does_not_have_is_refused_when_the_policy_loads() {
    let text = POLICY.replace(
        "default_workflow = \"reviewer-report\"",
        "default_workflow = \"reviewer-reprot\"",
    );
    let err = Policy::from_toml(&text).unwrap_err().to_string();
    assert!(err.contains("\"reviewer-reprot\""), "{err}");
    assert!(err.contains("reviewer-report, revision"), "{err}");
}
