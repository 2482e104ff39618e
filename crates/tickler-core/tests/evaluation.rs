//! The evaluation policy (Sakai's notification chain) and the digest mechanics, given / when /
//! then, through `decide` and `evolve` with the shipped policy files.

use std::collections::BTreeMap;

use tickler_core::policy::phase_at;
use tickler_core::{
    AttrValue, Command, Context, CreateEntity, DeliveryPolicy, DeliveryResult, Entity, EntityId,
    Event, OccurrenceId, Policy, RecipientResult, Rejection, Timestamp, UnsentReason, Zone, decide,
    fold,
};

const EVALUATION: &str = include_str!("../../../config/policies/evaluation.toml");
const DIGEST: &str = include_str!("../../../config/policies/evaluation-digest.toml");

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn occ(text: &str) -> OccurrenceId {
    text.parse().unwrap()
}

fn list(items: &[&str]) -> AttrValue {
    AttrValue::List(items.iter().map(|s| s.to_string()).collect())
}

struct Log {
    id: EntityId,
    policy: Policy,
    delivery: DeliveryPolicy,
    events: Vec<(u64, Timestamp, Event)>,
}

impl Log {
    fn new(id: &str, policy: &str) -> Log {
        Log {
            id: EntityId::parse(id).unwrap(),
            policy: Policy::from_toml(policy).unwrap(),
            delivery: DeliveryPolicy {
                jitter: 0.0,
                ..DeliveryPolicy::default()
            },
            events: Vec::new(),
        }
    }

    fn state(&self) -> Entity {
        fold(
            &self.id,
            None,
            self.events.iter().map(|(s, t, e)| (*s, *t, e)),
        )
        .unwrap()
        .0
        .unwrap()
    }

    fn when(&mut self, now: &str, command: Command) -> Result<Vec<Event>, Rejection> {
        let now = at(now);
        let state = fold(
            &self.id,
            None,
            self.events.iter().map(|(s, t, e)| (*s, *t, e)),
        )
        .unwrap()
        .0;
        let ctx = Context {
            now,
            policy: &self.policy,
            delivery: &self.delivery,
            directory: &tickler_core::NO_DIRECTORY,
        };
        let events = decide(state.as_ref(), &self.id, &command, &ctx)?;
        for event in &events {
            let seq = self.events.len() as u64 + 1;
            self.events.push((seq, now, event.clone()));
        }
        Ok(events)
    }

    /// (occurrence, planned instant), by instant.
    fn pending(&self) -> Vec<(String, String)> {
        let mut pending: Vec<_> = self
            .state()
            .active
            .values()
            .map(|r| (r.occurrence.to_string(), r.planned_at.to_string()))
            .collect();
        pending.sort_by(|a, b| a.1.cmp(&b.1).then(a.0.cmp(&b.0)));
        pending
    }

    fn pending_of(&self, prefix: &str) -> Vec<String> {
        self.pending()
            .into_iter()
            .filter(|(o, _)| o.starts_with(prefix))
            .map(|(_, t)| t)
            .collect()
    }

    /// Wakes the occurrence at its time; returns the recipients of the fan-out it started.
    fn fire(&mut self, occurrence: &str) -> Vec<Event> {
        let planned = self.state().active[&occ(occurrence)].planned_at.to_string();
        self.when(
            &planned,
            Command::Wake {
                occurrence: occ(occurrence),
            },
        )
        .unwrap()
    }

    /// Wakes it and reports every recipient delivered.
    fn deliver(&mut self, occurrence: &str) -> Vec<String> {
        let events = self.fire(occurrence);
        let Some(Event::FanOutStarted {
            recipients,
            attempt,
            ..
        }) = events
            .iter()
            .find(|e| matches!(e, Event::FanOutStarted { .. }))
            .cloned()
        else {
            panic!("{occurrence} did not fan out: {events:?}");
        };
        let planned = self.state().active[&occ(occurrence)].planned_at.to_string();
        let results = recipients
            .iter()
            .map(|r| RecipientResult {
                recipient: r.clone(),
                result: DeliveryResult::Delivered {
                    channel: "email".into(),
                    receipt: "250 OK".into(),
                },
            })
            .collect();
        self.when(
            &planned,
            Command::RecordFanOut {
                occurrence: occ(occurrence),
                attempt,
                channel: "email".into(),
                results,
            },
        )
        .unwrap();
        recipients
    }
}

/// A 7-day evaluation: start 03-02 10:00, due 03-09 10:00, daily reminders, three students.
fn evaluation(reminder: &str, extra: &[(&str, AttrValue)]) -> Log {
    let mut log = Log::new("eval/97", EVALUATION);
    let mut attributes = BTreeMap::from([
        (
            "title".to_owned(),
            AttrValue::Text("Course evaluation".into()),
        ),
        (
            "owner".to_owned(),
            AttrValue::Text("owner@example.org".into()),
        ),
        (
            "students".to_owned(),
            list(&["a@example.org", "b@example.org", "c@example.org"]),
        ),
        ("instructors".to_owned(), list(&["prof@example.org"])),
        ("reminder".to_owned(), AttrValue::Text(reminder.into())),
    ]);
    for (name, value) in extra {
        attributes.insert(name.to_string(), value.clone());
    }
    log.when(
        "2026-03-01T09:00:00Z",
        Command::Create(CreateEntity {
            policy: "evaluation".into(),
            workflow: None,
            recipient: "owner@example.org".into(),
            zone: Zone::UTC,
            anchors: BTreeMap::from([
                ("start".to_owned(), at("2026-03-02T10:00:00Z")),
                ("due".to_owned(), at("2026-03-09T10:00:00Z")),
                ("view_instructors".to_owned(), at("2026-03-10T10:00:00Z")),
                ("view_students".to_owned(), at("2026-03-12T10:00:00Z")),
            ]),
            attributes,
        }),
    )
    .unwrap();
    log
}

#[test]
fn daily_reminders_are_aligned_to_the_start_up_to_the_last_boundary_before_due() {
    let log = evaluation("every-1d", &[]);
    assert_eq!(
        log.pending_of("reminder-every-1d"),
        [
            "2026-03-03T10:00:00Z",
            "2026-03-04T10:00:00Z",
            "2026-03-05T10:00:00Z",
            "2026-03-06T10:00:00Z",
            "2026-03-07T10:00:00Z",
            "2026-03-08T10:00:00Z",
        ],
        "the last one exactly one interval before due is the one students most need"
    );
    assert!(
        log.pending_of("reminder-every-2d").is_empty(),
        "only the chosen interval applies"
    );
    let three = evaluation("every-3d", &[]);
    assert_eq!(
        three.pending_of("reminder-every-3d"),
        ["2026-03-05T10:00:00Z", "2026-03-08T10:00:00Z"]
    );
    let seven = evaluation("every-7d", &[]);
    assert!(
        seven.pending_of("reminder-every-7d").is_empty(),
        "day 7 is the due date itself"
    );
}

#[test]
fn the_chain_is_planned_from_the_dates() {
    let log = evaluation("never", &[]);
    assert_eq!(
        log.pending(),
        [
            ("created#0".to_owned(), "2026-03-01T09:05:00Z".to_owned()),
            ("available#0".to_owned(), "2026-03-02T10:00:00Z".to_owned()),
            (
                "closed-at-due#0".to_owned(),
                "2026-03-09T10:00:00Z".to_owned()
            ),
            (
                "viewable-instructors#0".to_owned(),
                "2026-03-10T10:00:00Z".to_owned()
            ),
        ],
        "no reminders when they are off; students see results only when allowed"
    );
    let policy = Policy::from_toml(EVALUATION).unwrap();
    let state = log.state();
    assert_eq!(
        phase_at(&policy, &state, at("2026-03-01T12:00:00Z")),
        Some("in-queue")
    );
    assert_eq!(
        phase_at(&policy, &state, at("2026-03-05T12:00:00Z")),
        Some("active")
    );
    assert_eq!(
        phase_at(&policy, &state, at("2026-03-09T12:00:00Z")),
        Some("closed"),
        "no stop date: no grace"
    );
    assert_eq!(
        phase_at(&policy, &state, at("2026-03-11T12:00:00Z")),
        Some("viewable")
    );
}

#[test]
fn the_created_notice_goes_to_the_owner_unless_the_evaluation_is_deleted_first() {
    let mut log = evaluation("never", &[]);
    assert_eq!(log.deliver("created#0"), ["owner@example.org"]);
    let mut deleted = evaluation("never", &[]);
    let events = deleted
        .when(
            "2026-03-01T09:02:00Z",
            Command::Complete {
                reason: "deleted".into(),
            },
        )
        .unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::OccurrenceUnsent { occurrence, reason: UnsentReason::Completed, .. } if occurrence == &occ("created#0"))));
}

#[test]
fn the_available_notice_goes_to_every_student_and_can_be_switched_off() {
    let mut log = evaluation("never", &[]);
    assert_eq!(
        log.deliver("available#0"),
        ["a@example.org", "b@example.org", "c@example.org"]
    );
    let off = evaluation("never", &[("available_notice", AttrValue::Bool(false))]);
    assert!(off.pending_of("available").is_empty());
}

#[test]
fn a_student_who_answers_gets_no_later_reminder_and_when_all_have_answered_reminders_end() {
    let mut log = evaluation("every-1d", &[]);
    assert_eq!(log.deliver("reminder-every-1d#0").len(), 3);
    log.when(
        "2026-03-03T12:00:00Z",
        Command::AddToList {
            name: "respondents".into(),
            value: "b@example.org".into(),
        },
    )
    .unwrap();
    assert_eq!(
        log.deliver("reminder-every-1d#1"),
        ["a@example.org", "c@example.org"]
    );
    log.when(
        "2026-03-04T12:00:00Z",
        Command::AddToList {
            name: "respondents".into(),
            value: "a@example.org".into(),
        },
    )
    .unwrap();
    let events = log
        .when(
            "2026-03-04T13:00:00Z",
            Command::AddToList {
                name: "respondents".into(),
                value: "c@example.org".into(),
            },
        )
        .unwrap();
    let ended: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            Event::OccurrenceUnsent {
                occurrence,
                reason,
                detail,
            } => Some((occurrence.to_string(), *reason, detail.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(ended.len(), 4, "the four reminders left: {ended:?}");
    assert!(
        ended
            .iter()
            .all(|(_, r, d)| *r == UnsentReason::ConditionFalse
                && d.contains("no one in students is left"))
    );
    assert!(log.pending_of("reminder").is_empty());
}

#[test]
fn in_progress_takers_are_reminded_only_when_saving_is_allowed() {
    let mut log = evaluation("every-1d", &[("in_progress", list(&["a@example.org"]))]);
    assert_eq!(
        log.deliver("reminder-every-1d#0"),
        ["b@example.org", "c@example.org"]
    );
    let mut saving = evaluation(
        "every-1d",
        &[
            ("in_progress", list(&["a@example.org"])),
            ("allow_saving", AttrValue::Bool(true)),
        ],
    );
    assert_eq!(saving.deliver("reminder-every-1d#0").len(), 3);
}

#[test]
fn a_24_hour_reminder_fires_once_a_day_before_due() {
    let log = evaluation("24h-before-due", &[]);
    assert_eq!(log.pending_of("reminder-24h"), ["2026-03-08T10:00:00Z"]);
    assert!(log.pending_of("reminder-every").is_empty());
}

#[test]
fn extending_the_due_date_after_two_reminders_arms_more_and_moves_the_chain() {
    let mut log = evaluation("every-1d", &[]);
    log.deliver("reminder-every-1d#0");
    log.deliver("reminder-every-1d#1");
    // Results come after the due date, so the view dates move first.
    for (anchor, to) in [
        ("view_students", "2026-03-15T10:00:00Z"),
        ("view_instructors", "2026-03-14T10:00:00Z"),
        ("due", "2026-03-12T10:00:00Z"),
    ] {
        log.when(
            "2026-03-04T12:00:00Z",
            Command::MoveAnchor {
                anchor: anchor.into(),
                to: at(to),
            },
        )
        .unwrap();
    }
    assert_eq!(
        log.pending_of("reminder-every-1d"),
        [
            "2026-03-05T10:00:00Z",
            "2026-03-06T10:00:00Z",
            "2026-03-07T10:00:00Z",
            "2026-03-08T10:00:00Z",
            "2026-03-09T10:00:00Z",
            "2026-03-10T10:00:00Z",
            "2026-03-11T10:00:00Z",
        ]
    );
    assert_eq!(log.pending_of("closed-at-due"), ["2026-03-12T10:00:00Z"]);
}

#[test]
fn a_step_whose_date_passed_is_not_applicable_except_closing_which_happens_now() {
    let mut log = evaluation("never", &[]);
    log.deliver("created#0");
    log.deliver("available#0");
    // On 03-05 the due date is moved back to 03-04: closing is due now, not skipped.
    let events = log
        .when(
            "2026-03-05T12:00:00Z",
            Command::MoveAnchor {
                anchor: "due".into(),
                to: at("2026-03-04T10:00:00Z"),
            },
        )
        .unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::OccurrenceRescheduled { occurrence, to, .. } if occurrence == &occ("closed-at-due#0") && *to == at("2026-03-05T12:00:00Z"))), "{events:?}");
    // A view date moved into the past is not applicable: no late results notice.
    let mut log = evaluation("never", &[("results_to_students", AttrValue::Bool(true))]);
    let events = log
        .when(
            "2026-03-12T12:00:00Z",
            Command::MoveAnchor {
                anchor: "view_students".into(),
                to: at("2026-03-11T10:00:00Z"),
            },
        )
        .unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::OccurrenceUnsent { occurrence, reason: UnsentReason::NotApplicable, .. } if occurrence == &occ("viewable-students#0"))), "{events:?}");
}

#[test]
fn results_are_announced_to_those_allowed_at_their_view_dates() {
    let mut log = evaluation("never", &[("results_to_students", AttrValue::Bool(true))]);
    assert_eq!(log.deliver("viewable-instructors#0"), ["prof@example.org"]);
    assert_eq!(log.deliver("viewable-students#0").len(), 3);
}

#[test]
fn a_stop_date_closes_the_evaluation_at_the_end_of_the_grace() {
    let mut log = evaluation("never", &[]);
    log.when(
        "2026-03-02T00:00:00Z",
        Command::MoveAnchor {
            anchor: "stop".into(),
            to: at("2026-03-10T00:00:00Z"),
        },
    )
    .unwrap();
    assert!(log.pending_of("closed-at-due").is_empty());
    assert_eq!(log.pending_of("closed-at-stop"), ["2026-03-10T00:00:00Z"]);
}

#[test]
fn bad_dates_and_participants_are_refused_naming_the_value() {
    let mut log = Log::new("eval/98", EVALUATION);
    let create = |anchors: &[(&str, &str)], attributes: &[(&str, AttrValue)]| {
        Command::Create(CreateEntity {
            policy: "evaluation".into(),
            workflow: None,
            recipient: "owner@example.org".into(),
            zone: Zone::UTC,
            anchors: anchors
                .iter()
                .map(|(k, v)| (k.to_string(), at(v)))
                .collect(),
            attributes: attributes
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        })
    };
    let dates = [
        ("start", "2026-03-02T10:00:00Z"),
        ("due", "2026-03-09T10:00:00Z"),
    ];
    for (command, code, named) in [
        (
            create(
                &[
                    ("start", "2026-03-09T10:00:00Z"),
                    ("due", "2026-03-02T10:00:00Z"),
                ],
                &[],
            ),
            "anchor_order",
            "due 2026-03-02T10:00:00Z is before start",
        ),
        (
            create(
                &[
                    dates[0],
                    dates[1],
                    ("view_students", "2026-03-08T00:00:00Z"),
                ],
                &[],
            ),
            "anchor_order",
            "view_students 2026-03-08T00:00:00Z is before due",
        ),
        (
            create(&dates, &[("reminder", AttrValue::Text("every-9d".into()))]),
            "invalid_attribute_value",
            "\"every-9d\"",
        ),
        (
            create(
                &dates,
                &[("students", list(&["a@example.org", "Bob Smith"]))],
            ),
            "invalid_attribute_value",
            "\"Bob Smith\"",
        ),
        (
            create(&dates, &[("students", list(&["a@example.org", ""]))]),
            "invalid_attribute_value",
            "\"\"",
        ),
        (
            create(&dates, &[("colour", AttrValue::Text("red".into()))]),
            "invalid_attribute_value",
            "\"colour\"",
        ),
    ] {
        let err = log.when("2026-03-01T09:00:00Z", command).unwrap_err();
        assert_eq!(err.code(), code, "{err}");
        assert!(err.to_string().contains(named), "{err}");
        assert!(log.events.is_empty());
    }
    let mut log = evaluation("never", &[]);
    let err = log
        .when(
            "2026-03-03T00:00:00Z",
            Command::MoveAnchor {
                anchor: "due".into(),
                to: at("2026-03-01T00:00:00Z"),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "anchor_order");
}

#[test]
fn a_fan_out_retries_only_the_recipients_that_failed_and_reports_who_was_refused() {
    let mut log = evaluation("never", &[]);
    let events = log.fire("available#0");
    assert!(matches!(&events[0], Event::FanOutStarted { recipients, .. } if recipients.len() == 3));
    let result = |recipient: &str, result: DeliveryResult| RecipientResult {
        recipient: recipient.into(),
        result,
    };
    let events = log
        .when(
            "2026-03-02T10:00:00Z",
            Command::RecordFanOut {
                occurrence: occ("available#0"),
                attempt: 1,
                channel: "email".into(),
                results: vec![
                    result(
                        "a@example.org",
                        DeliveryResult::Delivered {
                            channel: "email".into(),
                            receipt: "250".into(),
                        },
                    ),
                    result(
                        "b@example.org",
                        DeliveryResult::Failed {
                            error: "421 try later".into(),
                            permanent: false,
                            retry_after: None,
                        },
                    ),
                    result(
                        "c@example.org",
                        DeliveryResult::Failed {
                            error: "550 no such user".into(),
                            permanent: true,
                            retry_after: None,
                        },
                    ),
                ],
            },
        )
        .unwrap();
    assert!(
        matches!(&events[0], Event::RecipientsReported { delivered, refused, .. } if delivered.len() == 1 && refused.len() == 1)
    );
    assert!(
        matches!(&events[1], Event::DeliveryFailed { retry_at, .. } if *retry_at == at("2026-03-02T10:00:01Z"))
    );
    let events = log
        .when(
            "2026-03-02T10:00:01Z",
            Command::Wake {
                occurrence: occ("available#0"),
            },
        )
        .unwrap();
    assert!(
        matches!(&events[0], Event::FanOutStarted { recipients, attempt: 2, .. } if recipients == &["b@example.org".to_owned()])
    );
    let events = log
        .when(
            "2026-03-02T10:00:01Z",
            Command::RecordFanOut {
                occurrence: occ("available#0"),
                attempt: 2,
                channel: "email".into(),
                results: vec![result(
                    "b@example.org",
                    DeliveryResult::Delivered {
                        channel: "email".into(),
                        receipt: "250".into(),
                    },
                )],
            },
        )
        .unwrap();
    assert!(
        matches!(
            events.last(),
            Some(Event::OccurrenceSent { receipt, .. }) if receipt == "delivered to 2 recipient(s); 1 refused (e.g. c@example.org: 550 no such user)"
        ),
        "{events:?}"
    );
}

fn item(key: &str, subject: &str) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("key".to_owned(), key.to_owned()),
        ("subject".to_owned(), subject.to_owned()),
    ])
}

fn digest() -> Log {
    let mut log = Log::new("digest/evaluation/a@example.org", DIGEST);
    log.when(
        "2026-03-02T09:00:00Z",
        Command::Create(CreateEntity {
            policy: "evaluation-digest".into(),
            workflow: None,
            recipient: "a@example.org".into(),
            zone: Zone::parse("Europe/Paris").unwrap(),
            anchors: BTreeMap::new(),
            attributes: BTreeMap::new(),
        }),
    )
    .unwrap();
    log
}

#[test]
fn a_digest_collects_a_days_items_into_one_message_at_the_next_local_morning() {
    let mut log = digest();
    assert!(
        log.pending().is_empty(),
        "nothing collected, nothing planned"
    );
    log.when(
        "2026-03-02T10:00:00Z",
        Command::Collect {
            list: "items".into(),
            item: item("eval/1", "Evaluation available: One"),
        },
    )
    .unwrap();
    log.when(
        "2026-03-02T15:00:00Z",
        Command::Collect {
            list: "items".into(),
            item: item("eval/2", "Reminder: Two"),
        },
    )
    .unwrap();
    // One message, at 08:00 Paris the next morning, for both.
    assert_eq!(
        log.pending(),
        [("daily#0".to_owned(), "2026-03-03T07:00:00Z".to_owned())]
    );
    let events = log.fire("daily#0");
    assert!(
        events
            .iter()
            .any(|e| matches!(e, Event::DeliveryStarted { .. }))
    );
    let state = log.state();
    assert!(
        matches!(state.attributes.get("items_sending"), Some(AttrValue::Table(rows)) if rows.len() == 2)
    );
    assert!(!state.attributes.contains_key("items"));
    // An item arriving while the digest is being sent waits for the next one.
    log.when(
        "2026-03-03T07:00:00Z",
        Command::Collect {
            list: "items".into(),
            item: item("eval/3", "Reminder: Three"),
        },
    )
    .unwrap();
    let events = log
        .when(
            "2026-03-03T07:00:00Z",
            Command::RecordDelivery {
                occurrence: occ("daily#0"),
                attempt: 1,
                result: DeliveryResult::Delivered {
                    channel: "email".into(),
                    receipt: "250".into(),
                },
            },
        )
        .unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::OccurrencePlanned { occurrence, at: when, .. } if occurrence == &occ("daily#1") && *when == at("2026-03-04T07:00:00Z"))), "{events:?}");
    let state = log.state();
    assert!(!state.attributes.contains_key("items_sending"));
    assert!(
        matches!(state.attributes.get("items"), Some(AttrValue::Table(rows)) if rows.len() == 1)
    );
}

#[test]
fn an_item_discarded_before_the_digest_leaves_nothing_to_send() {
    let mut log = digest();
    log.when(
        "2026-03-02T10:00:00Z",
        Command::Collect {
            list: "items".into(),
            item: item("eval/1", "One"),
        },
    )
    .unwrap();
    let events = log
        .when(
            "2026-03-02T11:00:00Z",
            Command::Discard {
                list: "items".into(),
                key: "eval/1".into(),
            },
        )
        .unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::OccurrenceUnsent { reason: UnsentReason::ConditionFalse, detail, .. } if detail == "attribute items is empty")), "{events:?}");
    let err = log
        .when(
            "2026-03-02T11:00:00Z",
            Command::Collect {
                list: "items".into(),
                item: BTreeMap::new(),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "invalid_item");
}

#[test]
fn a_digest_that_could_not_be_sent_keeps_its_items_for_the_next_cycle() {
    let mut log = digest();
    log.when(
        "2026-03-02T10:00:00Z",
        Command::Collect {
            list: "items".into(),
            item: item("eval/1", "One"),
        },
    )
    .unwrap();
    log.fire("daily#0");
    let events = log
        .when(
            "2026-03-03T07:00:00Z",
            Command::RecordDelivery {
                occurrence: occ("daily#0"),
                attempt: 1,
                result: DeliveryResult::Failed {
                    error: "550 mailbox unavailable".into(),
                    permanent: true,
                    retry_after: None,
                },
            },
        )
        .unwrap();
    assert!(events.iter().any(|e| matches!(e, Event::OccurrencePlanned { occurrence, .. } if occurrence == &occ("daily#1"))), "{events:?}");
    assert!(
        matches!(log.state().attributes.get("items"), Some(AttrValue::Table(rows)) if rows.len() == 1)
    );
}

#[test]
fn dates_that_move_together_are_checked_together_and_repaired_once() {
    let mut log = evaluation("every-1d", &[]);
    // Alone, a due date past the view date is refused, and nothing is written...
    let before = log.events.len();
    let err = log
        .when(
            "2026-03-04T12:00:00Z",
            Command::MoveAnchor {
                anchor: "due".into(),
                to: at("2026-03-12T10:00:00Z"),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "anchor_order");
    assert_eq!(log.events.len(), before);
    // ...together with the view dates it is one decision.
    let events = log
        .when(
            "2026-03-04T12:00:00Z",
            Command::MoveAnchors {
                to: BTreeMap::from([
                    ("due".to_owned(), at("2026-03-12T10:00:00Z")),
                    ("view_instructors".to_owned(), at("2026-03-13T10:00:00Z")),
                    ("view_students".to_owned(), at("2026-03-14T10:00:00Z")),
                ]),
            },
        )
        .unwrap();
    assert_eq!(
        events
            .iter()
            .filter(|e| matches!(e, Event::AnchorMoved { .. }))
            .count(),
        3
    );
    assert_eq!(log.pending_of("closed-at-due"), ["2026-03-12T10:00:00Z"]);
    assert_eq!(
        log.pending_of("viewable-instructors"),
        ["2026-03-13T10:00:00Z"]
    );
    assert_eq!(
        log.pending_of("reminder-every-1d")
            .last()
            .map(String::as_str),
        Some("2026-03-11T10:00:00Z")
    );
    // An unknown anchor among them refuses the whole move.
    let err = log
        .when(
            "2026-03-04T12:00:00Z",
            Command::MoveAnchors {
                to: BTreeMap::from([
                    ("due".to_owned(), at("2026-03-13T10:00:00Z")),
                    ("deadline".to_owned(), at("2026-03-13T10:00:00Z")),
                ]),
            },
        )
        .unwrap_err();
    assert_eq!(err.code(), "unknown_anchor");
    assert_eq!(log.pending_of("closed-at-due"), ["2026-03-12T10:00:00Z"]);
}

#[test]
fn a_fan_out_whose_results_were_lost_in_a_crash_is_retried_to_the_same_addresses_and_keys() {
    let mut log = evaluation("never", &[]);
    let events = log.fire("available#0");
    let Some(Event::FanOutStarted {
        lease_until,
        recipients,
        ..
    }) = events.first().cloned()
    else {
        panic!("{events:?}");
    };
    // No result ever comes back (the process died); the lease ends.
    let events = log
        .when(
            &lease_until.to_string(),
            Command::Wake {
                occurrence: occ("available#0"),
            },
        )
        .unwrap();
    let Some(Event::DeliveryFailed {
        retry_at, error, ..
    }) = events.first().cloned()
    else {
        panic!("{events:?}");
    };
    assert!(error.contains("outcome unknown"), "{error}");
    let events = log
        .when(
            &retry_at.to_string(),
            Command::Wake {
                occurrence: occ("available#0"),
            },
        )
        .unwrap();
    assert!(
        matches!(events.first(), Some(Event::FanOutStarted { attempt: 2, recipients: again, .. }) if *again == recipients),
        "{events:?}"
    );
    // Keys are per occurrence and address, not per attempt: a receiver drops the repeat.
    let id = EntityId::parse("eval/97").unwrap();
    assert_eq!(
        occ("available#0").idempotency_key(&id).to_string(),
        "eval/97#available#0"
    );
}

// Sakai's reminder series (issue 19): Sakai decides each next reminder when it schedules one, as
// "if more than one interval is left before the due date, the first start-aligned boundary at
// least 3 minutes from now". Stated directly: every boundary start + k·interval (k ≥ 1) strictly
// before the due date and at least 3 minutes after the series was (re)scheduled.
fn sakai_series(
    start: Timestamp,
    due: Timestamp,
    days: i64,
    scheduled_at: Timestamp,
) -> Vec<String> {
    let earliest = scheduled_at.saturating_add(tickler_core::Span::from_millis(3 * 60_000));
    (1..)
        .map(|k| start.saturating_add(tickler_core::Span::from_millis(k * days * 86_400_000)))
        .take_while(|boundary| *boundary < due)
        .filter(|boundary| *boundary >= earliest)
        .map(|boundary| boundary.to_string())
        .collect()
}

fn hours(start: Timestamp, hours: i64) -> Timestamp {
    start.saturating_add(tickler_core::Span::from_millis(hours * 3_600_000))
}

/// An evaluation created a day before `start`, due `due_hours` after it, results a month later.
fn evaluation_due_after(days: i64, start: Timestamp, due_hours: i64) -> Log {
    let mut log = Log::new("eval/sakai", EVALUATION);
    let due = hours(start, due_hours);
    let view = hours(due, 30 * 24);
    log.when(
        &hours(start, -24).to_string(),
        Command::Create(CreateEntity {
            policy: "evaluation".into(),
            workflow: None,
            recipient: "owner@example.org".into(),
            zone: Zone::UTC,
            anchors: BTreeMap::from([
                ("start".to_owned(), start),
                ("due".to_owned(), due),
                ("view_instructors".to_owned(), view),
                ("view_students".to_owned(), view),
            ]),
            attributes: BTreeMap::from([
                (
                    "owner".to_owned(),
                    AttrValue::Text("owner@example.org".into()),
                ),
                (
                    "students".to_owned(),
                    list(&["a@example.org", "b@example.org"]),
                ),
                (
                    "reminder".to_owned(),
                    AttrValue::Text(format!("every-{days}d")),
                ),
            ]),
        }),
    )
    .unwrap();
    log
}

#[test]
fn the_issues_examples_of_sakais_series_hold() {
    let start = at("2026-03-02T08:00:00Z");
    let day = |d: i64| hours(start, d * 24).to_string();
    for (days, expected) in [
        (1, vec![day(1), day(2), day(3), day(4), day(5), day(6)]),
        (2, vec![day(2), day(4), day(6)]),
        (3, vec![day(3), day(6)]),
        (7, vec![]),
    ] {
        let log = evaluation_due_after(days, start, 7 * 24);
        assert_eq!(
            log.pending_of(&format!("reminder-every-{days}d")),
            expected,
            "every {days} day(s), due on day 7"
        );
    }
}

#[test]
fn every_interval_reminds_at_each_start_aligned_boundary_strictly_before_due() {
    let start = at("2026-03-02T08:00:00Z");
    // Due on a boundary, just before and just after one, between boundaries, within the first
    // interval, and far away.
    let due_offsets_h = [168, 167, 169, 180, 72, 25, 24, 23, 1, 336, 341];
    for days in 1..=7 {
        for due_h in due_offsets_h {
            let log = evaluation_due_after(days, start, due_h);
            assert_eq!(
                log.pending_of(&format!("reminder-every-{days}d")),
                sakai_series(start, hours(start, due_h), days, hours(start, -24)),
                "every {days} day(s), due {due_h} h after the start"
            );
        }
    }
}

#[test]
fn a_due_date_moved_after_reminders_went_out_continues_the_series_aligned_to_the_start() {
    let start = at("2026-03-02T08:00:00Z");
    for days in 1..=7 {
        // The move comes 4 hours after the first boundary (the first reminder, if any, is out).
        let moved_at = hours(start, days * 24 + 4);
        // Later (to a boundary and between two), earlier (before the old due, after now).
        for new_due_h in [10 * 24, 14 * 24 + 5, days * 24 + 30, days * 24 + 5] {
            let rule = format!("reminder-every-{days}d");
            let mut log = evaluation_due_after(days, start, 7 * 24);
            let sent: Vec<String> = log
                .pending()
                .into_iter()
                .filter(|(o, t)| o.starts_with(&rule) && at(t) <= moved_at)
                .map(|(o, _)| o)
                .collect();
            for occurrence in &sent {
                log.deliver(occurrence);
            }
            let events = log
                .when(
                    &moved_at.to_string(),
                    Command::MoveAnchor {
                        anchor: "due".into(),
                        to: hours(start, new_due_h),
                    },
                )
                .unwrap();
            let expected = sakai_series(start, hours(start, new_due_h), days, moved_at);
            assert_eq!(
                log.pending_of(&rule),
                expected,
                "every {days} day(s), due moved on day {days} +4 h to {new_due_h} h after the start"
            );
            // What went out stays in history. What no longer falls before the new due date, and
            // a boundary the extension brings in that had already passed, end "not applicable"
            // in the same command, each with a record.
            let retired = events
                .iter()
                .filter(|e| matches!(e, Event::OccurrenceUnsent { occurrence, reason: UnsentReason::NotApplicable, .. } if occurrence.rule.as_str() == rule))
                .count();
            let old_due = hours(start, 7 * 24);
            let before = sakai_series(start, old_due, days, moved_at);
            let dropped = before.iter().filter(|t| !expected.contains(t)).count();
            let passed_when_planned = sakai_series(start, hours(start, new_due_h), days, start)
                .iter()
                .filter(|t| at(t) >= old_due && at(t) < moved_at)
                .count();
            assert_eq!(
                retired,
                dropped + passed_when_planned,
                "every {days} day(s), due -> {new_due_h} h: {events:?}"
            );
        }
    }
}

/// Issue 19: an operator's retry of a fan-out that ended in a system error (it reached no one:
/// one that reached anyone ends sent) goes to the audience as it is now, under the original
/// occurrence's key, so each address gets its original per-address key.
#[test]
fn a_retried_fan_out_keeps_the_original_key_and_leaves_out_who_answered_meanwhile() {
    let mut log = evaluation("never", &[]);
    log.fire("available#0");
    let refused = |recipient: &str| RecipientResult {
        recipient: recipient.into(),
        result: DeliveryResult::Failed {
            error: "554 relay misconfigured".into(),
            permanent: true,
            retry_after: None,
        },
    };
    let events = log
        .when(
            "2026-03-02T10:00:00Z",
            Command::RecordFanOut {
                occurrence: occ("available#0"),
                attempt: 1,
                channel: "email".into(),
                results: ["a@example.org", "b@example.org", "c@example.org"]
                    .map(refused)
                    .to_vec(),
            },
        )
        .unwrap();
    assert!(
        events.iter().any(|e| matches!(
            e,
            Event::OccurrenceUnsent {
                reason: UnsentReason::SystemError,
                ..
            }
        )),
        "{events:?}"
    );
    log.when(
        "2026-03-02T11:00:00Z",
        Command::AddToList {
            name: "respondents".into(),
            value: "b@example.org".into(),
        },
    )
    .unwrap();
    let events = log
        .when(
            "2026-03-02T12:00:00Z",
            Command::Retry {
                occurrence: Some(occ("available#0")),
                reason: "relay fixed".into(),
            },
        )
        .unwrap();
    let [
        Event::RetryPlanned {
            occurrence,
            retry_of,
            key,
            at: due,
            reason,
        },
    ] = events.as_slice()
    else {
        panic!("{events:?}");
    };
    assert_eq!((retry_of, key), (&occ("available#0"), &occ("available#0")));
    assert_eq!(
        (*due, reason.as_str()),
        (at("2026-03-02T12:00:00Z"), "relay fixed")
    );
    let retry = occurrence.to_string();
    let state = log.state();
    assert_eq!(
        state.active[occurrence].idempotency_key(&state.id).as_str(),
        "eval/97#available#0",
        "the original key, from which each address's key derives"
    );
    assert!(state.errored.is_empty(), "retried");
    let events = log.fire(&retry);
    assert!(
        matches!(&events[0], Event::FanOutStarted { recipients, attempt: 1, .. } if recipients == &["a@example.org".to_owned(), "c@example.org".to_owned()]),
        "{events:?}"
    );
    // A retry of the retry keeps the first key.
    let refusals = ["a@example.org", "c@example.org"].map(refused).to_vec();
    log.when(
        "2026-03-02T12:00:00Z",
        Command::RecordFanOut {
            occurrence: occ(&retry),
            attempt: 1,
            channel: "email".into(),
            results: refusals,
        },
    )
    .unwrap();
    let events = log
        .when(
            "2026-03-02T13:00:00Z",
            Command::Retry {
                occurrence: None,
                reason: "again".into(),
            },
        )
        .unwrap();
    assert!(
        matches!(&events[..], [Event::RetryPlanned { retry_of, key, .. }] if retry_of == &occ(&retry) && key == &occ("available#0")),
        "{events:?}"
    );
}
