//! The due-date chasing policy (Aperta's "Automated Chasing"), given / when / then.
//!
//! Each test starts from the shipped policy file, feeds commands at explicit instants and checks
//! the events `decide` returns and the state `evolve` folds them into.

use std::collections::BTreeMap;

use tickler_core::{
    Cause, Command, Context, CreateEntity, DeliveryPolicy, DeliveryResult, Entity, EntityId, Event,
    OccurrenceId, Outcome, PastEvent, Phase, PlanCause, Policy, Rejection, Span, Timestamp,
    UnsentReason, Zone, decide, fold,
};

const POLICY: &str = include_str!("../../../config/policies/due-date.toml");

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn occ(text: &str) -> OccurrenceId {
    OccurrenceId::parse(text).unwrap()
}

/// An entity's log, grown one accepted command at a time.
struct Chase {
    id: EntityId,
    policy: Policy,
    delivery: DeliveryPolicy,
    log: Vec<(u64, Timestamp, Event)>,
}

impl Chase {
    fn new() -> Chase {
        Chase {
            id: EntityId::parse("due/review-42").unwrap(),
            policy: Policy::from_toml(POLICY).unwrap(),
            delivery: DeliveryPolicy {
                jitter: 0.0,
                ..DeliveryPolicy::default()
            },
            log: Vec::new(),
        }
    }

    /// A reviewer report created at 2026-03-01 09:30 with the workflow's default length.
    fn created() -> Chase {
        let mut chase = Chase::new();
        chase
            .when(at("2026-03-01T09:30:00Z"), create(None))
            .unwrap();
        chase
    }

    fn state(&self) -> Option<Entity> {
        fold(&self.id, None, self.log.iter().map(|(s, t, e)| (*s, *t, e)))
            .unwrap()
            .0
    }

    fn past_events(&self) -> Vec<PastEvent> {
        fold(&self.id, None, self.log.iter().map(|(s, t, e)| (*s, *t, e)))
            .unwrap()
            .1
    }

    /// Decides `command` at `now`; appends the events if accepted.
    fn when(&mut self, now: Timestamp, command: Command) -> Result<Vec<Event>, Rejection> {
        let ctx = Context {
            now,
            policy: &self.policy,
            delivery: &self.delivery,
            directory: &tickler_core::NO_DIRECTORY,
        };
        let events = decide(self.state().as_ref(), &self.id, &command, &ctx)?;
        for event in &events {
            let seq = self.log.len() as u64 + 1;
            self.log.push((seq, now, event.clone()));
        }
        Ok(events)
    }

    fn planned(&self) -> Vec<(String, Timestamp, &'static str)> {
        self.state()
            .unwrap()
            .active
            .values()
            .map(|r| (r.occurrence.to_string(), r.planned_at, r.state_label()))
            .collect()
    }

    /// Wakes the occurrence at `now` and, if an attempt starts, records it delivered.
    fn fire(&mut self, now: Timestamp, occurrence: &str) -> Vec<Event> {
        let mut events = self
            .when(
                now,
                Command::Wake {
                    occurrence: occ(occurrence),
                },
            )
            .unwrap();
        if let Some(Event::DeliveryStarted { attempt, .. }) = events.first().cloned() {
            events.extend(self.when(now, delivered(occurrence, attempt)).unwrap());
        }
        events
    }
}

fn create(due_at: Option<&str>) -> Command {
    Command::Create(CreateEntity {
        policy: "due-date".into(),
        workflow: Some("reviewer-report".into()),
        recipient: "reviewer@example.org".into(),
        zone: Zone::parse("Europe/Paris").unwrap(),
        anchors: due_at
            .map(|d| BTreeMap::from([("due_at".to_owned(), at(d))]))
            .unwrap_or_default(),
        attributes: BTreeMap::new(),
    })
}

fn delivered(occurrence: &str, attempt: u32) -> Command {
    Command::RecordDelivery {
        occurrence: occ(occurrence),
        attempt,
        result: DeliveryResult::Delivered {
            channel: "file".into(),
            receipt: "line 1".into(),
        },
    }
}

fn failed(occurrence: &str, attempt: u32, permanent: bool) -> Command {
    Command::RecordDelivery {
        occurrence: occ(occurrence),
        attempt,
        result: DeliveryResult::Failed {
            error: "503 Service Unavailable".into(),
            permanent,
            retry_after: None,
        },
    }
}

fn unsent_reason(event: &Event) -> Option<(String, UnsentReason)> {
    match event {
        Event::OccurrenceUnsent {
            occurrence, reason, ..
        } => Some((occurrence.to_string(), *reason)),
        _ => None,
    }
}

#[test]
fn creating_from_a_workflow_template_defaults_the_due_date_and_plans_three_events() {
    let chase = Chase::created();
    let entity = chase.state().unwrap();
    // 10 days after 09:30, rounded up to the hour; the original is remembered.
    assert_eq!(entity.anchors["due_at"], at("2026-03-11T10:00:00Z"));
    assert_eq!(
        entity.anchors["originally_due_at"],
        at("2026-03-11T10:00:00Z")
    );
    assert_eq!(
        chase.planned(),
        [
            (
                "first-late#0".into(),
                at("2026-03-13T10:00:00Z"),
                "pending-on"
            ),
            ("pre-due#0".into(), at("2026-03-09T10:00:00Z"), "pending-on"),
            (
                "second-late#0".into(),
                at("2026-03-15T10:00:00Z"),
                "pending-on"
            ),
        ]
    );
    assert!(chase.log.iter().all(|(_, _, e)| !matches!(
        e,
        Event::OccurrencePlanned {
            cause: PlanCause::AnchorMoved,
            ..
        }
    )));
}

#[test]
fn an_explicit_due_date_is_rounded_up_to_the_hour() {
    let mut chase = Chase::new();
    chase
        .when(
            at("2026-03-01T09:30:00Z"),
            create(Some("2026-03-20T16:05:00Z")),
        )
        .unwrap();
    let entity = chase.state().unwrap();
    assert_eq!(entity.anchors["due_at"], at("2026-03-20T17:00:00Z"));
    assert_eq!(chase.planned()[1].1, at("2026-03-18T17:00:00Z"));
}

#[test]
fn an_event_whose_time_has_already_passed_at_creation_is_not_armed_but_recorded_not_applicable() {
    let mut chase = Chase::new();
    let events = chase
        .when(
            at("2026-03-01T09:30:00Z"),
            create(Some("2026-03-02T12:00:00Z")),
        )
        .unwrap();
    let planned: Vec<String> = chase.planned().into_iter().map(|p| p.0).collect();
    assert_eq!(planned, ["first-late#0", "second-late#0"]);
    // "Due in two days" was already wrong when the task was created: no reminder, but a record
    // that says why, so the request did not vanish.
    let unsent: Vec<_> = events.iter().filter_map(unsent_reason).collect();
    assert_eq!(unsent, [("pre-due#0".into(), UnsentReason::NotApplicable)]);
    let past = chase.past_events();
    assert_eq!(past.len(), 1);
    assert!(matches!(
        &past[0].outcome,
        Outcome::Unsent { reason: UnsentReason::NotApplicable, detail, .. }
            if detail == "planned for 2026-02-28T12:00:00Z, which had passed when it was planned"
    ));
    // A later command does not record the same slot again.
    let events = chase
        .when(
            at("2026-03-01T10:00:00Z"),
            Command::MoveAnchor {
                anchor: "due_at".into(),
                to: at("2026-03-02T18:00:00Z"),
            },
        )
        .unwrap();
    assert!(
        events.iter().all(|e| unsent_reason(e).is_none()),
        "{events:?}"
    );
    assert_eq!(chase.past_events().len(), 1);
}

#[test]
fn bad_creations_are_rejected_naming_the_value_and_write_nothing() {
    let now = at("2026-03-01T09:30:00Z");
    let cases: Vec<(Command, &str)> = vec![
        (
            create(Some("2026-02-27T00:00:00Z")),
            "anchor_before_creation",
        ),
        (
            Command::Create(CreateEntity {
                workflow: Some("peer-review".into()),
                ..match create(None) {
                    Command::Create(c) => c,
                    _ => unreachable!(),
                }
            }),
            "unknown_workflow",
        ),
        (
            Command::Create(CreateEntity {
                recipient: "".into(),
                ..match create(None) {
                    Command::Create(c) => c,
                    _ => unreachable!(),
                }
            }),
            "invalid_recipient",
        ),
        (
            Command::Create(CreateEntity {
                anchors: BTreeMap::from([("dew_at".to_owned(), now)]),
                ..match create(None) {
                    Command::Create(c) => c,
                    _ => unreachable!(),
                }
            }),
            "unknown_anchor",
        ),
    ];
    for (command, code) in cases {
        let mut chase = Chase::new();
        let rejection = chase.when(now, command).unwrap_err();
        assert_eq!(rejection.code(), code, "{rejection}");
        assert!(chase.log.is_empty());
    }
    // A policy without a default workflow: a create naming neither a workflow nor a due date
    // lacks its required anchor.
    let mut chase = Chase::new();
    chase.policy.default_workflow = None;
    let no_workflow = Command::Create(CreateEntity {
        workflow: None,
        ..match create(None) {
            Command::Create(c) => c,
            _ => unreachable!(),
        }
    });
    let rejection = chase.when(now, no_workflow).unwrap_err();
    assert_eq!(rejection.code(), "missing_anchor", "{rejection}");
    assert!(chase.log.is_empty());
    let mut chase = Chase::new();
    chase.id = EntityId::parse("learner/ada").unwrap();
    let rejection = chase.when(now, create(None)).unwrap_err();
    assert_eq!(rejection.code(), "wrong_kind");
    assert!(rejection.to_string().contains("\"learner\""), "{rejection}");

    let mut chase = Chase::created();
    let before = chase.log.len();
    let rejection = chase.when(now, create(None)).unwrap_err();
    assert_eq!(
        rejection,
        Rejection::AlreadyExists {
            entity: chase.id.clone()
        }
    );
    assert_eq!(chase.log.len(), before);
}

#[test]
fn commands_to_an_entity_that_does_not_exist_are_rejected() {
    let mut chase = Chase::new();
    let err = chase
        .when(
            at("2026-03-01T09:30:00Z"),
            Command::Complete {
                reason: "cancelled".into(),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "unknown_entity");
    assert!(err.to_string().contains("due/review-42"));
}

#[test]
fn nothing_fires_before_its_time() {
    let mut chase = Chase::created();
    let events = chase
        .when(
            at("2026-03-09T09:59:59.999Z"),
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        )
        .unwrap();
    assert!(events.is_empty());
}

#[test]
fn at_its_time_an_event_is_recorded_as_started_then_sent() {
    let mut chase = Chase::created();
    let now = at("2026-03-09T10:00:00Z");
    let started = chase
        .when(
            now,
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        )
        .unwrap();
    assert_eq!(
        started,
        [Event::DeliveryStarted {
            occurrence: occ("pre-due#0"),
            attempt: 1,
            lease_until: at("2026-03-09T10:01:00Z"),
        }]
    );
    assert_eq!(chase.planned()[1].2, "processing");
    chase.when(now, delivered("pre-due#0", 1)).unwrap();
    let past = chase.past_events();
    assert_eq!(past.len(), 1);
    assert_eq!(past[0].idempotency_key.as_str(), "due/review-42#pre-due#0");
    assert_eq!(past[0].kind, "due-soon");
    assert_eq!(
        past[0].outcome,
        Outcome::Sent {
            channel: "file".into(),
            receipt: "line 1".into(),
            attempts: 1
        }
    );
    assert!(
        !chase
            .state()
            .unwrap()
            .active
            .contains_key(&occ("pre-due#0"))
    );
}

#[test]
fn a_pending_event_toggled_off_ends_as_unsent_deactivated_and_can_be_switched_back_on() {
    let mut chase = Chase::created();
    let now = at("2026-03-02T00:00:00Z");
    let toggle = |occurrence: &str, enabled| Command::Toggle {
        occurrence: occ(occurrence),
        enabled,
    };
    chase.when(now, toggle("pre-due#0", false)).unwrap();
    chase.when(now, toggle("first-late#0", false)).unwrap();
    assert_eq!(chase.planned()[1].2, "pending-off");
    // Toggling to the state it is already in changes nothing.
    assert!(
        chase
            .when(now, toggle("pre-due#0", false))
            .unwrap()
            .is_empty()
    );
    chase.when(now, toggle("first-late#0", true)).unwrap();

    let events = chase.fire(at("2026-03-09T10:00:00Z"), "pre-due#0");
    assert_eq!(
        unsent_reason(&events[0]),
        Some(("pre-due#0".into(), UnsentReason::Deactivated))
    );
    let events = chase.fire(at("2026-03-13T10:00:00Z"), "first-late#0");
    assert!(matches!(events.last(), Some(Event::OccurrenceSent { .. })));
}

#[test]
fn toggling_a_processed_or_unknown_event_is_rejected() {
    let mut chase = Chase::created();
    chase.fire(at("2026-03-09T10:00:00Z"), "pre-due#0");
    let now = at("2026-03-09T11:00:00Z");
    let err = chase
        .when(
            now,
            Command::Toggle {
                occurrence: occ("pre-due#0"),
                enabled: false,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "already_processed");
    assert!(err.to_string().contains("pre-due#0"), "{err}");
    let err = chase
        .when(
            now,
            Command::Toggle {
                occurrence: occ("pre-due#7"),
                enabled: false,
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "unknown_occurrence");
}

#[test]
fn moving_the_due_date_later_moves_every_pending_event() {
    let mut chase = Chase::created();
    let events = chase
        .when(
            at("2026-03-05T08:00:00Z"),
            Command::MoveAnchor {
                anchor: "due_at".into(),
                to: at("2026-03-18T10:00:00Z"),
            },
        )
        .unwrap();
    assert_eq!(events.len(), 4, "{events:?}");
    assert_eq!(
        chase.planned(),
        [
            (
                "first-late#0".into(),
                at("2026-03-20T10:00:00Z"),
                "pending-on"
            ),
            ("pre-due#0".into(), at("2026-03-16T10:00:00Z"), "pending-on"),
            (
                "second-late#0".into(),
                at("2026-03-22T10:00:00Z"),
                "pending-on"
            ),
        ]
    );
    // The original due date is kept.
    assert_eq!(
        chase.state().unwrap().anchors["originally_due_at"],
        at("2026-03-11T10:00:00Z")
    );
}

#[test]
fn an_event_moved_into_the_past_becomes_not_applicable_and_is_never_sent_late() {
    let mut chase = Chase::created();
    let now = at("2026-03-05T08:00:00Z");
    let events = chase
        .when(
            now,
            Command::MoveAnchor {
                anchor: "due_at".into(),
                to: at("2026-03-06T10:00:00Z"),
            },
        )
        .unwrap();
    let unsent: Vec<_> = events.iter().filter_map(unsent_reason).collect();
    assert_eq!(unsent, [("pre-due#0".into(), UnsentReason::NotApplicable)]);
    let past = chase.past_events();
    assert!(matches!(
        &past[0].outcome,
        Outcome::Unsent { reason: UnsentReason::NotApplicable, detail, .. }
            if detail.contains("2026-03-04T10:00:00Z")
    ));
    assert_eq!(chase.planned().len(), 2);
}

#[test]
fn an_event_moved_back_into_the_future_is_armed_again_under_a_new_index() {
    let mut chase = Chase::created();
    let move_to = |to: &str| Command::MoveAnchor {
        anchor: "due_at".into(),
        to: at(to),
    };
    chase
        .when(at("2026-03-05T08:00:00Z"), move_to("2026-03-06T10:00:00Z"))
        .unwrap();
    let events = chase
        .when(at("2026-03-05T09:00:00Z"), move_to("2026-03-12T10:00:00Z"))
        .unwrap();
    assert!(events.iter().any(|e| matches!(
        e,
        Event::OccurrencePlanned { occurrence, at: when, cause: PlanCause::AnchorMoved, .. }
            if occurrence == &occ("pre-due#1") && *when == at("2026-03-10T10:00:00Z")
    )));
    // The retired occurrence stays retired.
    assert_eq!(chase.past_events().len(), 1);
}

#[test]
fn a_sent_event_stays_in_history_and_a_new_occurrence_is_armed_for_the_new_date() {
    let mut chase = Chase::created();
    chase.fire(at("2026-03-09T10:00:00Z"), "pre-due#0");
    let sent_before = chase.past_events();
    chase
        .when(
            at("2026-03-10T08:00:00Z"),
            Command::MoveAnchor {
                anchor: "due_at".into(),
                to: at("2026-03-25T10:00:00Z"),
            },
        )
        .unwrap();
    assert_eq!(chase.past_events()[..1], sent_before[..]);
    let planned = chase.planned();
    assert!(planned.contains(&("pre-due#1".into(), at("2026-03-23T10:00:00Z"), "pending-on")));
    // Moving the date again moves the new occurrence; the sent one is untouched.
    chase
        .when(
            at("2026-03-10T09:00:00Z"),
            Command::MoveAnchor {
                anchor: "due_at".into(),
                to: at("2026-03-26T10:00:00Z"),
            },
        )
        .unwrap();
    assert!(chase.planned().contains(&(
        "pre-due#1".into(),
        at("2026-03-24T10:00:00Z"),
        "pending-on"
    )));
    assert_eq!(chase.past_events()[..1], sent_before[..]);
}

#[test]
fn completing_the_task_turns_every_pending_event_into_unsent_completed() {
    let mut chase = Chase::created();
    chase.fire(at("2026-03-09T10:00:00Z"), "pre-due#0");
    let events = chase
        .when(
            at("2026-03-10T12:00:00Z"),
            Command::Complete {
                reason: "review-submitted".into(),
            },
        )
        .unwrap();
    let unsent: Vec<_> = events.iter().filter_map(unsent_reason).collect();
    assert_eq!(
        unsent,
        [
            ("first-late#0".into(), UnsentReason::Completed),
            ("second-late#0".into(), UnsentReason::Completed),
        ]
    );
    let state = chase.state().unwrap();
    assert!(state.active.is_empty());
    assert_eq!(state.completed.unwrap().reason, "review-submitted");
    assert_eq!(chase.past_events().len(), 3);
    // A completed task takes no more edits.
    let err = chase
        .when(
            at("2026-03-10T13:00:00Z"),
            Command::MoveAnchor {
                anchor: "due_at".into(),
                to: at("2026-03-30T10:00:00Z"),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "entity_completed");
}

#[test]
fn an_unknown_completion_reason_is_rejected() {
    let mut chase = Chase::created();
    let err = chase
        .when(
            at("2026-03-02T00:00:00Z"),
            Command::Complete {
                reason: "bored".into(),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "unknown_completion_reason");
    assert!(err.to_string().contains("\"bored\""));
}

#[test]
fn an_attempt_under_way_when_the_task_completes_is_left_to_finish_and_recorded_truthfully() {
    let mut chase = Chase::created();
    let now = at("2026-03-09T10:00:00Z");
    chase
        .when(
            now,
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        )
        .unwrap();
    let events = chase
        .when(
            now,
            Command::Complete {
                reason: "review-submitted".into(),
            },
        )
        .unwrap();
    assert!(
        !events
            .iter()
            .any(|e| unsent_reason(e).is_some_and(|(o, _)| o == "pre-due#0"))
    );
    chase.when(now, delivered("pre-due#0", 1)).unwrap();
    let sent = chase
        .past_events()
        .into_iter()
        .find(|p| p.occurrence == occ("pre-due#0"));
    assert!(matches!(sent.unwrap().outcome, Outcome::Sent { .. }));
}

#[test]
fn an_attempt_cut_short_by_a_crash_after_completion_is_recorded_as_of_unknown_outcome() {
    let mut chase = Chase::created();
    let now = at("2026-03-09T10:00:00Z");
    let started = chase
        .when(
            now,
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        )
        .unwrap();
    let Some(Event::DeliveryStarted { lease_until, .. }) = started.first().cloned() else {
        panic!("the attempt did not start: {started:?}");
    };
    // The process stops before the channel's result is recorded; the task is completed after
    // the restart; then the attempt's lease runs out.
    chase
        .when(
            now.saturating_add(Span::minutes(1)),
            Command::Complete {
                reason: "review-submitted".into(),
            },
        )
        .unwrap();
    let events = chase
        .when(
            lease_until,
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        )
        .unwrap();
    assert!(
        !events
            .iter()
            .any(|e| matches!(e, Event::DeliveryStarted { .. })),
        "no new attempt for a completed task: {events:?}"
    );
    let past = chase.past_events();
    let record = past
        .iter()
        .find(|p| p.occurrence == occ("pre-due#0"))
        .unwrap();
    assert!(
        matches!(
            &record.outcome,
            Outcome::Unsent { reason: UnsentReason::Completed, detail, .. }
                if detail.contains("attempt 1 was under way") && detail.contains("outcome is unknown")
        ),
        "{:?}",
        record.outcome
    );
}

#[test]
fn transient_failures_retry_with_backoff_then_become_a_system_error() {
    let mut chase = Chase::created();
    let mut now = at("2026-03-13T10:00:00Z");
    chase
        .when(
            now,
            Command::Wake {
                occurrence: occ("first-late#0"),
            },
        )
        .unwrap();
    for attempt in 1..5u32 {
        let events = chase
            .when(now, failed("first-late#0", attempt, false))
            .unwrap();
        let Event::DeliveryFailed { retry_at, .. } = &events[0] else {
            panic!("expected a retry, got {events:?}")
        };
        // Without jitter the delays are 1 s, 2 s, 4 s, 8 s.
        assert_eq!(retry_at.since(now), Span::seconds(1 << (attempt - 1)));
        now = *retry_at;
        let events = chase
            .when(
                now,
                Command::Wake {
                    occurrence: occ("first-late#0"),
                },
            )
            .unwrap();
        assert!(matches!(events[0], Event::DeliveryStarted { attempt: a, .. } if a == attempt + 1));
    }
    let events = chase.when(now, failed("first-late#0", 5, false)).unwrap();
    assert_eq!(
        unsent_reason(&events[0]),
        Some(("first-late#0".into(), UnsentReason::SystemError))
    );
    let past = chase.past_events();
    assert!(matches!(
        &past[0].outcome,
        Outcome::Unsent { reason: UnsentReason::SystemError, attempts: 5, detail }
            if detail.contains("gave up after 5 attempts") && detail.contains("503")
    ));
}

#[test]
fn a_permanent_failure_is_not_retried() {
    let mut chase = Chase::created();
    let now = at("2026-03-13T10:00:00Z");
    chase
        .when(
            now,
            Command::Wake {
                occurrence: occ("first-late#0"),
            },
        )
        .unwrap();
    let events = chase.when(now, failed("first-late#0", 1, true)).unwrap();
    assert_eq!(
        unsent_reason(&events[0]),
        Some(("first-late#0".into(), UnsentReason::SystemError))
    );
}

#[test]
fn an_attempt_whose_lease_ran_out_is_retried_under_the_same_occurrence() {
    let mut chase = Chase::created();
    chase
        .when(
            at("2026-03-09T10:00:00Z"),
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        )
        .unwrap();
    // The process died mid-delivery; after restart the lease has passed.
    let events = chase
        .when(
            at("2026-03-09T10:05:00Z"),
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        )
        .unwrap();
    assert!(
        matches!(&events[0], Event::DeliveryFailed { attempt: 1, error, .. } if error.contains("outcome unknown"))
    );
    // A late answer for the abandoned attempt changes nothing.
    assert!(
        chase
            .when(at("2026-03-09T10:05:00Z"), delivered("pre-due#0", 2))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn after_downtime_an_event_past_its_grace_or_cutoff_is_missed() {
    let mut chase = Chase::created();
    // The pre-due reminder (planned 2026-03-09 10:00) processed after the due date: stale.
    let events = chase.fire(at("2026-03-11T10:00:00Z"), "pre-due#0");
    assert!(matches!(
        &events[1],
        Event::OccurrenceUnsent { reason: UnsentReason::Missed, detail, .. }
            if detail.contains("staleness cutoff 2026-03-11T10:00:00Z (due_at")
    ));
    // The cause is recorded first, as fields: which cutoff, from which date.
    assert!(
        matches!(
            &events[0],
            Event::CauseRecorded { cause: Cause::PastStaleness { anchor, cutoff, processed_at, .. }, .. }
                if anchor == "due_at" && *cutoff == at("2026-03-11T10:00:00Z")
                    && *processed_at == at("2026-03-11T10:00:00Z")
        ),
        "{events:?}"
    );
    // The first chaser 25 hours late: beyond its 1-day grace.
    let events = chase.fire(at("2026-03-14T11:00:00Z"), "first-late#0");
    assert!(matches!(
        &events[1],
        Event::OccurrenceUnsent { reason: UnsentReason::Missed, detail, .. } if detail.contains("1d1h late")
    ));
    assert!(
        matches!(
            &events[0],
            Event::CauseRecorded { cause: Cause::BeyondGrace { late, grace, .. }, .. }
                if *late == Span::hours(25) && *grace == Span::days(1)
        ),
        "{events:?}"
    );
    // The second chaser 1 hour late: within its grace, sent late.
    let events = chase.fire(at("2026-03-15T11:00:00Z"), "second-late#0");
    assert!(matches!(events.last(), Some(Event::OccurrenceSent { .. })));
}

#[test]
fn the_state_is_the_fold_of_the_log_with_gap_free_sequence_numbers() {
    let mut chase = Chase::created();
    chase.fire(at("2026-03-09T10:00:00Z"), "pre-due#0");
    let names: Vec<&str> = chase.log.iter().map(|(_, _, event)| event.name()).collect();
    assert_eq!(
        names,
        [
            "created",
            "occurrence-planned",
            "occurrence-planned",
            "occurrence-planned",
            "delivery-started",
            "occurrence-sent"
        ]
    );
    // The version is the sequence number of the last event folded: six.
    assert_eq!(chase.state().unwrap().version, 6);
    let mut broken = chase.log.clone();
    broken.remove(2);
    let err = fold(&chase.id, None, broken.iter().map(|(s, t, e)| (*s, *t, e))).unwrap_err();
    assert!(err.to_string().contains("gap"), "{err}");
}

#[test]
fn the_wake_times_follow_the_phase_of_each_reminder() {
    let mut chase = Chase::created();
    let now = at("2026-03-09T10:00:00Z");
    chase
        .when(
            now,
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        )
        .unwrap();
    let state = chase.state().unwrap();
    // In memory the attempt wakes when its lease ends; the store's index keeps its planned
    // instant, so a restart finds the attempt at once.
    assert_eq!(
        state.wakes()[0],
        (at("2026-03-09T10:01:00Z"), occ("pre-due#0"))
    );
    assert_eq!(
        state.timers()[0],
        (at("2026-03-09T10:00:00Z"), occ("pre-due#0"))
    );
    assert!(matches!(
        state.active[&occ("pre-due#0")].phase,
        Phase::Delivering { attempt: 1, .. }
    ));
    assert_eq!(state.next_wake(), Some(at("2026-03-09T10:01:00Z")));
}

#[test]
fn whether_two_states_share_their_index_entries_is_known_without_building_them() {
    // Pending, delivering, retry-waiting, errored, a move and a completion: every pair of
    // states met on the way agrees with comparing the entries themselves.
    let mut chase = Chase::created();
    let mut states = vec![chase.state().unwrap()];
    let steps = [
        (
            "2026-03-09T10:00:00Z",
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        ),
        ("2026-03-09T10:00:01Z", failed("pre-due#0", 1, false)),
        (
            "2026-03-09T10:30:00Z",
            Command::Wake {
                occurrence: occ("pre-due#0"),
            },
        ),
        ("2026-03-09T10:30:01Z", failed("pre-due#0", 2, true)),
        (
            "2026-03-09T11:00:00Z",
            Command::MoveAnchors {
                to: [("due_at".to_owned(), at("2026-03-20T10:00:00Z"))].into(),
            },
        ),
        (
            "2026-03-09T12:00:00Z",
            Command::Complete {
                reason: "review-submitted".to_owned(),
            },
        ),
    ];
    for (now, command) in steps {
        chase.when(at(now), command).unwrap();
        states.push(chase.state().unwrap());
    }
    assert!(states.iter().any(|s| !s.errored.is_empty()));
    for a in &states {
        for b in &states {
            assert_eq!(
                a.same_index_entries(b),
                a.index_entries() == b.index_entries(),
                "{a:#?}\n{b:#?}"
            );
            assert_eq!(
                a.index_facts().hold_for(b),
                a.index_entries() == b.index_entries(),
                "the facts kept across a command decide as the state would: {a:#?}\n{b:#?}"
            );
        }
    }
}
