//! Course evaluations end to end through the library on a manual clock (issue 4): the whole
//! notification chain, reminders to those who have not answered, date edits, deletion, and the
//! consolidated daily digest, as the shipped config delivers them (the "email" outbox).

use std::collections::BTreeMap;
use tickler::Evaluations as _;

use tickler::{
    AttrValue, Command, CreateEntity, EntityId, Message, Outcome, Response, Span, UnsentReason,
    Zone,
};
use tickler_tests::{Harness, at, id, read_outbox};

const STUDENTS: [&str; 3] = ["a@example.org", "b@example.org", "c@example.org"];

fn list(items: &[&str]) -> AttrValue {
    AttrValue::List(items.iter().map(|s| s.to_string()).collect())
}

/// An evaluation open 03-02 10:00 to 03-09 10:00 (seven days), results to instructors on 03-10.
fn evaluation(title: &str, reminder: &str, extra: &[(&str, AttrValue)]) -> CreateEntity {
    let mut attributes = BTreeMap::from([
        ("title".to_owned(), AttrValue::Text(title.into())),
        (
            "owner".to_owned(),
            AttrValue::Text("owner@example.org".into()),
        ),
        ("students".to_owned(), list(&STUDENTS)),
        ("instructors".to_owned(), list(&["prof@example.org"])),
        ("reminder".to_owned(), AttrValue::Text(reminder.into())),
    ]);
    for (name, value) in extra {
        attributes.insert(name.to_string(), value.clone());
    }
    CreateEntity {
        policy: "evaluation".into(),
        workflow: None,
        recipient: "owner@example.org".into(),
        zone: Zone::parse("Europe/Paris").unwrap(),
        anchors: BTreeMap::from([
            ("start".to_owned(), at("2026-03-02T10:00:00Z")),
            ("due".to_owned(), at("2026-03-09T10:00:00Z")),
            ("view_instructors".to_owned(), at("2026-03-10T10:00:00Z")),
        ]),
        attributes,
    }
}

fn email(h: &Harness) -> Vec<Message> {
    read_outbox(&h.data_dir.join("email-outbox.jsonl"))
}

/// (fired_at, recipient) of the messages of one rule, in outbox order.
fn sent_by(h: &Harness, rule: &str) -> Vec<(String, String)> {
    email(h)
        .into_iter()
        .filter(|m| m.rule == rule)
        .map(|m| (m.fired_at.to_string(), m.recipient))
        .collect()
}

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seven_day_evaluation_runs_its_chain_and_reminds_only_those_who_have_not_answered() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await; // 03-01 09:30
    let eval = id("eval/course-101");
    h.engine
        .create(&eval, evaluation("Course 101", "every-1d", &[]))
        .await
        .unwrap();

    // Created notice to the owner after its five-minute grace; the available notice to every
    // student at start, each with its own key.
    h.engine.advance(Span::days(1)).await.unwrap(); // 03-02 09:30
    assert_eq!(
        sent_by(&h, "created"),
        pairs(&[("2026-03-01T09:35:00Z", "owner@example.org")])
    );
    h.engine.advance(Span::hours(1)).await.unwrap(); // 03-02 10:30
    // Deliveries to an audience run concurrently: outbox order is not theirs.
    let mut available: Vec<String> = email(&h)
        .into_iter()
        .filter(|m| m.rule == "available")
        .map(|m| m.idempotency_key)
        .collect();
    available.sort();
    assert_eq!(
        available,
        [
            "eval/course-101#available#0/a@example.org",
            "eval/course-101#available#0/b@example.org",
            "eval/course-101#available#0/c@example.org",
        ]
    );

    // The first reminder reaches all three; b answers before the second.
    h.engine.advance(Span::hours(26)).await.unwrap(); // 03-03 12:30
    let applied = h
        .engine
        .record_response(&eval, "b@example.org", Response::Submitted)
        .await
        .unwrap();
    assert!(!applied.is_empty());
    // Someone who is not a participant cannot answer.
    let err = h
        .engine
        .record_response(&eval, "stranger@example.org", Response::Submitted)
        .await
        .unwrap_err();
    assert!(
        err.code() == "not_a_participant" && err.to_string().contains("\"stranger@example.org\""),
        "{err}"
    );

    h.engine.advance(Span::days(9)).await.unwrap(); // 03-12 12:30
    let mut expected = vec![
        ("2026-03-03T10:00:00Z", "a@example.org"),
        ("2026-03-03T10:00:00Z", "b@example.org"),
        ("2026-03-03T10:00:00Z", "c@example.org"),
    ];
    for day in ["04", "05", "06", "07", "08"] {
        let when: &'static str = Box::leak(format!("2026-03-{day}T10:00:00Z").into_boxed_str());
        expected.push((when, "a@example.org"));
        expected.push((when, "c@example.org"));
    }
    let mut reminders = sent_by(&h, "reminder-every-1d");
    reminders.sort();
    assert_eq!(
        reminders,
        pairs(&expected),
        "aligned to the start, the last one day before due, none to b after answering"
    );
    assert_eq!(
        sent_by(&h, "closed-at-due"),
        pairs(&[("2026-03-09T10:00:00Z", "owner@example.org")])
    );
    assert_eq!(
        sent_by(&h, "viewable-instructors"),
        pairs(&[("2026-03-10T10:00:00Z", "prof@example.org")])
    );
    assert!(
        sent_by(&h, "viewable-students").is_empty(),
        "students see results only when allowed"
    );

    // Every decision is on record: each reminder occurrence says whom it reached.
    let history = h.engine.history(&eval).await.unwrap();
    let second = history
        .iter()
        .find(|p| p.occurrence.to_string() == "reminder-every-1d#1")
        .unwrap();
    assert!(
        matches!(&second.outcome, Outcome::Sent { receipt, .. } if receipt == "delivered to 2 recipient(s)"),
        "{:?}",
        second.outcome
    );
    let closed = email(&h)
        .into_iter()
        .find(|m| m.rule == "closed-at-due")
        .unwrap();
    assert!(
        closed.body.contains("1 of 3 students answered"),
        "{}",
        closed.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_24_hour_reminder_goes_once_the_day_before_due() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let eval = id("eval/course-102");
    h.engine
        .create(&eval, evaluation("Course 102", "24h-before-due", &[]))
        .await
        .unwrap();
    h.engine.advance(Span::days(10)).await.unwrap();
    let mut reminders = sent_by(&h, "reminder-24h");
    reminders.sort();
    assert_eq!(
        reminders,
        pairs(&[
            ("2026-03-08T10:00:00Z", "a@example.org"),
            ("2026-03-08T10:00:00Z", "b@example.org"),
            ("2026-03-08T10:00:00Z", "c@example.org"),
        ])
    );
    assert!(
        email(&h)
            .iter()
            .all(|m| !m.rule.starts_with("reminder-every"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extending_the_due_date_after_two_reminders_arms_more_and_moves_closing() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let eval = id("eval/course-103");
    h.engine
        .create(&eval, evaluation("Course 103", "every-1d", &[]))
        .await
        .unwrap();
    h.engine.advance(Span::hours(75)).await.unwrap(); // 03-04 12:30
    assert_eq!(
        sent_by(&h, "reminder-every-1d").len(),
        6,
        "two rounds of three"
    );
    // Results come after the due date, so the view date moves first.
    for (anchor, to) in [
        ("view_instructors", "2026-03-13T10:00:00Z"),
        ("due", "2026-03-12T10:00:00Z"),
    ] {
        h.engine
            .execute(
                &eval,
                Command::MoveAnchor {
                    anchor: anchor.into(),
                    to: at(to),
                },
            )
            .await
            .unwrap();
    }
    h.engine.advance(Span::days(10)).await.unwrap();
    let mut days: Vec<String> = sent_by(&h, "reminder-every-1d")
        .into_iter()
        .map(|(when, _)| when[..10].to_owned())
        .collect();
    days.dedup();
    assert_eq!(
        days,
        [
            "2026-03-03",
            "2026-03-04",
            "2026-03-05",
            "2026-03-06",
            "2026-03-07",
            "2026-03-08",
            "2026-03-09",
            "2026-03-10",
            "2026-03-11"
        ]
    );
    assert_eq!(
        sent_by(&h, "closed-at-due"),
        pairs(&[("2026-03-12T10:00:00Z", "owner@example.org")])
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_everyone_has_answered_the_pending_reminders_end_as_condition_false() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let eval = id("eval/course-104");
    h.engine
        .create(&eval, evaluation("Course 104", "every-2d", &[]))
        .await
        .unwrap();
    h.engine.advance(Span::days(2)).await.unwrap(); // 03-03 09:30
    for student in STUDENTS {
        h.engine
            .record_response(&eval, student, Response::Submitted)
            .await
            .unwrap();
    }
    h.engine.advance(Span::days(10)).await.unwrap();
    assert!(sent_by(&h, "reminder-every-2d").is_empty());
    let history = h.engine.history(&eval).await.unwrap();
    let ended: Vec<_> = history
        .iter()
        .filter(|p| p.rule.as_str() == "reminder-every-2d")
        .map(|p| p.outcome.clone())
        .collect();
    assert_eq!(
        ended.len(),
        3,
        "the 03-04, 03-06 and 03-08 reminders: {ended:?}"
    );
    assert!(ended.iter().all(|o| matches!(
        o,
        Outcome::Unsent { reason: UnsentReason::ConditionFalse, detail, .. } if detail.contains("no one in students is left")
    )), "{ended:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn saving_without_submitting_is_reminded_only_when_the_evaluation_allows_saving() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let strict = id("eval/strict");
    let lenient = id("eval/lenient");
    h.engine
        .create(&strict, evaluation("Strict", "every-7d", &[]))
        .await
        .unwrap();
    h.engine
        .create(
            &lenient,
            evaluation(
                "Lenient",
                "every-7d",
                &[("allow_saving", AttrValue::Bool(true))],
            ),
        )
        .await
        .unwrap();
    // A seven-day interval needs more than seven days before due: moving due to 03-20 (and the
    // view date after it) leaves room for one reminder, on 03-09.
    for eval in [&strict, &lenient] {
        h.engine
            .execute(
                eval,
                Command::MoveAnchor {
                    anchor: "view_instructors".into(),
                    to: at("2026-03-21T10:00:00Z"),
                },
            )
            .await
            .unwrap();
        h.engine
            .execute(
                eval,
                Command::MoveAnchor {
                    anchor: "due".into(),
                    to: at("2026-03-20T10:00:00Z"),
                },
            )
            .await
            .unwrap();
        h.engine
            .record_response(eval, "a@example.org", Response::Saved)
            .await
            .unwrap();
    }
    h.engine.advance(Span::days(9)).await.unwrap(); // 03-10 09:30
    let to = |entity: &EntityId| -> Vec<String> {
        let mut to: Vec<String> = email(&h)
            .into_iter()
            .filter(|m| m.rule == "reminder-every-7d" && m.entity == entity.as_str())
            .map(|m| m.recipient)
            .collect();
        to.sort();
        to
    };
    assert_eq!(to(&strict), ["b@example.org", "c@example.org"]);
    assert_eq!(
        to(&lenient),
        ["a@example.org", "b@example.org", "c@example.org"]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deleting_an_evaluation_within_the_grace_cancels_the_created_notice() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let eval = id("eval/mistake");
    h.engine
        .create(&eval, evaluation("Mistake", "every-1d", &[]))
        .await
        .unwrap();
    h.engine.advance(Span::minutes(2)).await.unwrap();
    h.engine
        .execute(
            &eval,
            Command::Complete {
                reason: "deleted".into(),
            },
        )
        .await
        .unwrap();
    h.engine.advance(Span::days(12)).await.unwrap();
    assert!(email(&h).is_empty(), "{:?}", email(&h));
    let history = h.engine.history(&eval).await.unwrap();
    let created = history
        .iter()
        .find(|p| p.rule.as_str() == "created")
        .unwrap();
    assert!(matches!(
        created.outcome,
        Outcome::Unsent {
            reason: UnsentReason::Completed,
            ..
        }
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn consolidated_evaluations_reach_each_student_in_one_digest_a_day() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let consolidated = [("consolidated", AttrValue::Bool(true))];
    let (one, two) = (id("eval/one"), id("eval/two"));
    h.engine
        .create(&one, evaluation("One", "every-1d", &consolidated))
        .await
        .unwrap();
    h.engine
        .create(&two, evaluation("Two", "every-1d", &consolidated))
        .await
        .unwrap();

    // Both become available on 03-02 10:00: no message then, one digest per student at 08:00
    // Paris the next morning listing both.
    h.engine.advance(Span::hours(25)).await.unwrap(); // 03-02 10:30
    assert!(sent_by(&h, "available").is_empty());
    assert!(sent_by(&h, "daily").is_empty());
    h.engine.advance(Span::hours(21)).await.unwrap(); // 03-03 07:30
    let mut digests: Vec<Message> = email(&h)
        .into_iter()
        .filter(|m| m.rule == "daily")
        .collect();
    digests.sort_by(|x, y| x.recipient.cmp(&y.recipient));
    assert_eq!(
        digests
            .iter()
            .map(|m| (m.recipient.as_str(), m.fired_at.to_string()))
            .collect::<Vec<_>>(),
        STUDENTS
            .iter()
            .map(|s| (*s, "2026-03-03T07:00:00Z".to_owned()))
            .collect::<Vec<_>>()
    );
    assert_eq!(digests[0].subject, "Your evaluations (2)");
    assert!(
        digests[0]
            .body
            .contains("- Evaluation available: One\n- Evaluation available: Two"),
        "{}",
        digests[0].body
    );
    assert_eq!(
        digests[0].idempotency_key,
        "digest/evaluation-digest/a@example.org#daily#0"
    );

    // b answers One after the 03-03 reminders were collected: b's next digest lists only Two.
    h.engine.advance(Span::hours(5)).await.unwrap(); // 03-03 12:30
    h.engine
        .record_response(&one, "b@example.org", Response::Submitted)
        .await
        .unwrap();
    h.engine.advance(Span::days(1)).await.unwrap(); // 03-04 12:30
    let second: Vec<Message> = email(&h)
        .into_iter()
        .filter(|m| m.rule == "daily" && m.fired_at == at("2026-03-04T07:00:00Z"))
        .collect();
    assert_eq!(second.len(), 3, "one digest per student per day");
    let b = second
        .iter()
        .find(|m| m.recipient == "b@example.org")
        .unwrap();
    assert_eq!(b.subject, "Your evaluations (1)");
    assert!(
        b.body.contains("Reminder: please complete Two"),
        "{}",
        b.body
    );
    assert!(!b.body.contains("One"), "{}", b.body);
    assert_eq!(
        b.idempotency_key, "digest/evaluation-digest/b@example.org#daily#1",
        "a key of its own per student and day"
    );
    // Nothing of a consolidated evaluation went out on its own.
    assert!(
        email(&h)
            .iter()
            .all(|m| m.rule == "daily" || m.rule == "created")
    );
}

/// Issue 20 (L5): the security review's pair, an evaluation `eval/c` with a student
/// `s#available#0/x` and an evaluation `eval/c#available#0/s` with a student `x`, used to give
/// both available notices one key: the file outbox kept one line and both were recorded sent.
/// Each now has its own key, and each reaches its student.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_entities_deliveries_never_share_an_idempotency_key() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    for (entity, student) in [("eval/c", "s#available#0/x"), ("eval/c#available#0/s", "x")] {
        let create = evaluation(
            "Course",
            "never",
            &[("students", AttrValue::List(vec![student.to_owned()]))],
        );
        h.engine.create(&id(entity), create).await.unwrap();
    }
    h.engine.advance(Span::days(2)).await.unwrap(); // past the start, 03-02 10:00
    let available: Vec<Message> = email(&h)
        .into_iter()
        .filter(|m| m.rule == "available")
        .collect();
    let keys: std::collections::BTreeSet<&str> = available
        .iter()
        .map(|m| m.idempotency_key.as_str())
        .collect();
    assert_eq!(available.len(), 2, "{available:?}");
    assert_eq!(keys.len(), 2, "{keys:?}");
}
