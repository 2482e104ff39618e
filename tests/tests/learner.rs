//! Learner schedules (issue 3) through the library on a manual clock, with the shipped config:
//! the `site`, `course`, `learner-schedule` and `learner-digest` policies, delivering one email
//! per learner per slot into the "email" outbox. Each test is one behaviour of the issue.

use std::collections::{BTreeMap, BTreeSet};
use tickler::LearnerSchedules as _;

use chrono::Timelike;
use tickler::Clock as _;
use tickler::learner::Enrolment;
use tickler::{
    AttrValue, CourseSettings, Engine, Enrolled, Entity, EntityId, Error, Highlight, Message,
    Outcome, PauseScope, PreviewRequest, SiteSettings, Span, Timestamp, UnsentReason, Zone,
};
use tickler_tests::{Harness, at, copy_dir, id, read_outbox};

const COURSE: &str = "course-v1:Demo+Py101+2026";
const OTHER_COURSE: &str = "course-v1:Demo+Stats+2026";

fn site() -> SiteSettings {
    SiteSettings {
        site: "demo".into(),
        name: Some("Demo University".into()),
        create_schedules: Some(true),
        default_zone: Some(Zone::parse("Europe/Paris").unwrap()),
        delivery_time: Some("09:00".into()),
        lms_url: Some("https://lms.demo.example".into()),
        ..SiteSettings::default()
    }
}

/// A self-paced course with a verified track, started 03-01, ending 06-01.
fn course(key: &str) -> CourseSettings {
    CourseSettings {
        course: key.into(),
        site: Some("demo".into()),
        name: Some(format!("Course {key}")),
        org: Some("Demo".into()),
        pacing: Some("self".into()),
        start: Some(at("2026-03-01T00:00:00Z")),
        end: Some(at("2026-06-01T00:00:00Z")),
        verified: Some(true),
        ..CourseSettings::default()
    }
}

fn enrolment(learner: &str, course: &str, enrolled_at: &str) -> Enrolment {
    Enrolment {
        learner: learner.into(),
        email: format!("{learner}@example.org"),
        name: format!("Learner {learner}"),
        course: course.into(),
        enrolled_at: Some(at(enrolled_at)),
        zone: None,
        track: "audit".into(),
        delivery_time: None,
    }
}

async fn setup(h: &Harness, site: SiteSettings, courses: &[CourseSettings]) {
    h.engine.set_site(&site).await.unwrap();
    for course in courses {
        h.engine.set_course(course).await.unwrap();
    }
}

async fn enroll(engine: &Engine, enrolment: &Enrolment) -> EntityId {
    match engine.enroll(enrolment).await.unwrap() {
        Enrolled::Scheduled { schedule, .. } => schedule,
        other => panic!("expected a schedule, got {other:?}"),
    }
}

fn schedule(course: &str, learner: &str) -> EntityId {
    id(&format!("schedule/{course}/{learner}"))
}

/// (rule, planned_at) of the pending occurrences, in time order.
fn pending(entity: &Entity) -> Vec<(String, Timestamp)> {
    let mut pending: Vec<_> = entity
        .active
        .values()
        .map(|r| (r.occurrence.rule.to_string(), r.planned_at))
        .collect();
    pending.sort_by_key(|(rule, at)| (*at, rule.clone()));
    pending
}

fn rules(entity: &Entity) -> Vec<String> {
    pending(entity).into_iter().map(|(rule, _)| rule).collect()
}

fn local(at: Timestamp, zone: &str) -> chrono::DateTime<chrono_tz::Tz> {
    at.to_chrono()
        .with_timezone(&zone.parse::<chrono_tz::Tz>().unwrap())
}

fn email(h: &Harness) -> Vec<Message> {
    read_outbox(&h.data_dir.join("email-outbox.jsonl"))
}

/// The unsent reason of each ended occurrence of an entity, by rule.
async fn unsent(h: &Harness, entity: &EntityId) -> BTreeMap<String, UnsentReason> {
    h.engine
        .history(entity)
        .await
        .unwrap()
        .into_iter()
        .filter_map(|past| match past.outcome {
            Outcome::Unsent { reason, .. } => Some((past.occurrence.rule.to_string(), reason)),
            Outcome::Sent { .. } => None,
        })
        .collect()
}

async fn sent_rules(h: &Harness, entity: &EntityId) -> Vec<String> {
    h.engine
        .history(entity)
        .await
        .unwrap()
        .into_iter()
        .filter(|past| matches!(past.outcome, Outcome::Sent { .. }))
        .map(|past| past.occurrence.rule.to_string())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_enrolment_creates_a_schedule_starting_at_the_later_of_enrolment_and_course_start() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let mut late_course = course(OTHER_COURSE);
    late_course.start = Some(at("2026-03-10T00:00:00Z"));
    setup(&h, site(), &[course(COURSE), late_course]).await;

    let early = enroll(&h.engine, &enrolment("ana", COURSE, "2026-03-01T09:00:00Z")).await;
    let s = h.engine.show(&early).await.unwrap();
    assert_eq!(s.anchors["start"], at("2026-03-01T09:00:00Z"));
    // 21 days by default.
    assert_eq!(s.anchors["upgrade_deadline"], at("2026-03-22T09:00:00Z"));
    assert_eq!(
        s.attributes["experience"],
        AttrValue::Text("default".into())
    );
    assert_eq!(s.recipient, "ana@example.org");
    assert_eq!(s.zone.name(), "Europe/Paris", "the site's default zone");

    // Enrolled before the course starts: the schedule starts with the course.
    let before = enroll(
        &h.engine,
        &enrolment("ana", OTHER_COURSE, "2026-03-01T09:00:00Z"),
    )
    .await;
    let s = h.engine.show(&before).await.unwrap();
    assert_eq!(s.anchors["start"], at("2026-03-10T00:00:00Z"));
    assert_eq!(s.anchors["upgrade_deadline"], at("2026-03-31T00:00:00Z"));

    // Sending the same enrolment again changes nothing.
    let again = h
        .engine
        .enroll(&enrolment("ana", COURSE, "2026-03-01T09:00:00Z"))
        .await
        .unwrap();
    assert_eq!(again, Enrolled::Exists { schedule: early });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_days_resolve_course_then_org_then_site_and_an_opt_out_gives_no_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let mut s = site();
    s.deadline_days = Some(30);
    s.org_deadline_days = Some(BTreeMap::from([("MITx".to_owned(), 14)]));
    let own = CourseSettings {
        deadline_days: Some(7),
        ..course("course-v1:Demo+Own+1")
    };
    let org = CourseSettings {
        org: Some("MITx".into()),
        ..course("course-v1:MITx+Org+1")
    };
    let site_wide = course("course-v1:Demo+Site+1");
    let opted_out = CourseSettings {
        deadline_opt_out: Some(true),
        ..course("course-v1:Demo+None+1")
    };
    let expiring = CourseSettings {
        verified_expiry: Some(at("2026-03-05T00:00:00Z")),
        ..course("course-v1:Demo+Expiring+1")
    };
    setup(&h, s, &[own, org, site_wide, opted_out, expiring]).await;
    let deadline = |course: &'static str| {
        let engine = &h.engine;
        async move {
            let id = enroll(engine, &enrolment("bo", course, "2026-03-01T12:00:00Z")).await;
            engine
                .show(&id)
                .await
                .unwrap()
                .anchors
                .get("upgrade_deadline")
                .copied()
        }
    };
    assert_eq!(
        deadline("course-v1:Demo+Own+1").await,
        Some(at("2026-03-08T12:00:00Z"))
    );
    assert_eq!(
        deadline("course-v1:MITx+Org+1").await,
        Some(at("2026-03-15T12:00:00Z"))
    );
    assert_eq!(
        deadline("course-v1:Demo+Site+1").await,
        Some(at("2026-03-31T12:00:00Z"))
    );
    assert_eq!(deadline("course-v1:Demo+None+1").await, None);
    // Never after the verified track's expiry.
    assert_eq!(
        deadline("course-v1:Demo+Expiring+1").await,
        Some(at("2026-03-05T00:00:00Z"))
    );
    let none = h
        .engine
        .show(&schedule("course-v1:Demo+None+1", "bo"))
        .await
        .unwrap();
    assert!(!rules(&none).contains(&"upgrade-reminder".to_owned()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_creation_follows_the_course_flag_over_the_site_flag() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let off_site = SiteSettings {
        create_schedules: Some(false),
        ..site()
    };
    let on_course = CourseSettings {
        create_schedules: Some(true),
        ..course(OTHER_COURSE)
    };
    setup(&h, off_site, &[course(COURSE), on_course]).await;
    let off = h
        .engine
        .enroll(&enrolment("cy", COURSE, "2026-03-01T10:00:00Z"))
        .await
        .unwrap();
    assert!(
        matches!(&off, Enrolled::NoSchedule { reason } if reason.contains("create_schedules is off")),
        "{off:?}"
    );
    assert!(h.engine.show(&schedule(COURSE, "cy")).await.is_err());
    enroll(
        &h.engine,
        &enrolment("cy", OTHER_COURSE, "2026-03-01T10:00:00Z"),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn held_back_learners_get_a_schedule_with_nothing_planned_and_the_reason_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(
        &h,
        SiteSettings {
            hold_back_ratio: Some(0.5),
            ..site()
        },
        &[course(COURSE)],
    )
    .await;
    let mut held = BTreeSet::new();
    for n in 0..40 {
        let learner = format!("l{n}");
        match h
            .engine
            .enroll(&enrolment(&learner, COURSE, "2026-03-01T10:00:00Z"))
            .await
            .unwrap()
        {
            Enrolled::Scheduled {
                schedule,
                held_back: true,
                pending,
            } => {
                assert_eq!(pending, 0);
                let s = h.engine.show(&schedule).await.unwrap();
                let AttrValue::Text(reason) = &s.attributes["held_back_reason"] else {
                    panic!("no reason on {schedule}");
                };
                assert!(reason.contains("hold_back_ratio 0.5"), "{reason}");
                held.insert(learner);
            }
            Enrolled::Scheduled { pending, .. } => assert!(pending > 0),
            other => panic!("{other:?}"),
        }
    }
    // About half, and the same ones on any machine: the draw is seeded by (learner, course).
    assert!((10..=30).contains(&held.len()), "{held:?}");
    let seed = h.engine.catalog().policy("learner-schedule").unwrap().seed;
    for n in 0..40 {
        let learner = format!("l{n}");
        let draw = tickler::learner::hold_back_draw(seed, &learner, COURSE);
        assert_eq!(draw < 0.5, held.contains(&learner), "{learner}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nudges_go_at_3_10_and_19_days_at_the_local_delivery_hour_for_self_paced_courses() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let instructor_paced = CourseSettings {
        pacing: Some("instructor".into()),
        ..course(OTHER_COURSE)
    };
    setup(&h, site(), &[course(COURSE), instructor_paced]).await;
    let id = enroll(&h.engine, &enrolment("di", COURSE, "2026-03-01T10:00:00Z")).await;
    let s = h.engine.show(&id).await.unwrap();
    let nudges: Vec<_> = pending(&s)
        .into_iter()
        .filter(|(rule, _)| rule.starts_with("nudge"))
        .collect();
    let days: Vec<String> = nudges
        .iter()
        .map(|(_, at)| local(*at, "Europe/Paris").format("%m-%d %H").to_string())
        .collect();
    assert_eq!(days, ["03-04 09", "03-11 09", "03-20 09"]);

    let id = enroll(
        &h.engine,
        &enrolment("di", OTHER_COURSE, "2026-03-01T10:00:00Z"),
    )
    .await;
    let s = h.engine.show(&id).await.unwrap();
    assert!(
        !rules(&s).iter().any(|r| r.starts_with("nudge")),
        "{:?}",
        rules(&s)
    );

    // A course that ends before day 19 stops the last nudge.
    let mut short = course("course-v1:Demo+Short+1");
    short.end = Some(at("2026-03-15T00:00:00Z"));
    h.engine.set_course(&short).await.unwrap();
    let id = enroll(
        &h.engine,
        &enrolment("di", "course-v1:Demo+Short+1", "2026-03-01T10:00:00Z"),
    )
    .await;
    let s = h.engine.show(&id).await.unwrap();
    let r = rules(&s);
    assert!(
        r.contains(&"nudge-10d".to_owned()) && !r.contains(&"nudge-19d".to_owned()),
        "{r:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_upgrade_reminder_goes_two_days_before_the_deadline_unless_the_learner_upgraded() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let audit_only = CourseSettings {
        verified: Some(false),
        ..course(OTHER_COURSE)
    };
    setup(&h, site(), &[course(COURSE), audit_only]).await;
    let stays = enroll(&h.engine, &enrolment("ed", COURSE, "2026-03-01T10:00:00Z")).await;
    let upgrades = enroll(&h.engine, &enrolment("fa", COURSE, "2026-03-01T10:00:00Z")).await;
    let s = h.engine.show(&stays).await.unwrap();
    let reminder = pending(&s)
        .into_iter()
        .find(|(rule, _)| rule == "upgrade-reminder")
        .expect("an upgrade reminder");
    // Deadline 03-22 10:00 UTC; two days before, at the local delivery hour.
    assert_eq!(
        local(reminder.1, "Europe/Paris")
            .format("%m-%d %H")
            .to_string(),
        "03-20 09"
    );
    // No verified track: no reminder.
    let audit = enroll(
        &h.engine,
        &enrolment("ed", OTHER_COURSE, "2026-03-01T10:00:00Z"),
    )
    .await;
    assert!(!rules(&h.engine.show(&audit).await.unwrap()).contains(&"upgrade-reminder".into()));

    h.engine.advance(Span::days(5)).await.unwrap();
    h.engine
        .change_track(COURSE, "fa", "verified")
        .await
        .unwrap();
    assert_eq!(
        unsent(&h, &upgrades).await.get("upgrade-reminder"),
        Some(&UnsentReason::ConditionFalse)
    );
    h.engine.advance(Span::days(25)).await.unwrap();
    assert!(
        sent_rules(&h, &stays)
            .await
            .contains(&"upgrade-reminder".to_owned())
    );
    assert!(
        !sent_rules(&h, &upgrades)
            .await
            .contains(&"upgrade-reminder".to_owned())
    );
    let bodies: Vec<String> = email(&h)
        .into_iter()
        .filter(|m| m.recipient == "ed@example.org")
        .map(|m| m.body)
        .collect();
    assert!(
        bodies
            .iter()
            .any(|s| s.contains("Upgrade by 22 March 2026")),
        "{bodies:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn weekly_highlights_send_section_n_in_week_n_while_sections_with_highlights_remain() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let with_highlights = CourseSettings {
        highlights: Some(vec![
            Highlight {
                section: "Getting started".into(),
                highlights: "Install Python\nYour first program".into(),
            },
            Highlight {
                section: "Data".into(),
                highlights: "Lists and dicts".into(),
            },
            Highlight {
                section: "Wrap-up".into(),
                highlights: String::new(),
            },
        ]),
        ..course(COURSE)
    };
    setup(&h, site(), &[with_highlights, course(OTHER_COURSE)]).await;
    let id = enroll(&h.engine, &enrolment("gu", COURSE, "2026-03-01T10:00:00Z")).await;
    let s = h.engine.show(&id).await.unwrap();
    assert_eq!(
        s.attributes["experience"],
        AttrValue::Text("course-updates".into())
    );
    let updates: Vec<String> = pending(&s)
        .into_iter()
        .filter(|(rule, _)| rule == "course-update")
        .map(|(_, at)| local(at, "Europe/Paris").format("%m-%d").to_string())
        .collect();
    assert_eq!(updates, ["03-08", "03-15"], "two sections have highlights");
    // The course-updates experience sends no nudges; a course without highlights no updates.
    assert!(!rules(&s).iter().any(|r| r.starts_with("nudge")));
    let other = enroll(
        &h.engine,
        &enrolment("gu", OTHER_COURSE, "2026-03-01T10:00:00Z"),
    )
    .await;
    assert!(!rules(&h.engine.show(&other).await.unwrap()).contains(&"course-update".into()));

    h.engine.advance(Span::days(16)).await.unwrap();
    let bodies: Vec<String> = email(&h)
        .into_iter()
        .filter(|m| m.subject.contains("Welcome to week"))
        .map(|m| m.body)
        .collect();
    assert_eq!(bodies.len(), 2, "{bodies:?}");
    assert!(bodies[0].contains("Getting started") && bodies[0].contains("- Install Python"));
    assert!(bodies[1].contains("- Lists and dicts"), "{}", bodies[1]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_switches_stop_enqueueing_for_new_schedules_and_delivery_at_fire_time() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    let before = enroll(&h.engine, &enrolment("ha", COURSE, "2026-03-01T10:00:00Z")).await;
    let mut off = site();
    off.switches = BTreeMap::from([("enqueue_recurring_nudge".to_owned(), false)]);
    h.engine.set_site(&off).await.unwrap();
    let after = enroll(&h.engine, &enrolment("io", COURSE, "2026-03-01T10:00:00Z")).await;
    let s = h.engine.show(&after).await.unwrap();
    assert!(
        !rules(&s).iter().any(|r| r.starts_with("nudge")),
        "{:?}",
        rules(&s)
    );
    assert!(rules(&s).contains(&"upgrade-reminder".to_owned()));
    assert_eq!(
        s.attributes["not_enqueued"],
        AttrValue::List(vec!["recurring_nudge".into()])
    );
    // Schedules planned before keep their nudges; delivery off ends them unsent when they fire.
    assert!(rules(&h.engine.show(&before).await.unwrap()).contains(&"nudge-3d".to_owned()));
    let mut deliver_off = site();
    deliver_off.switches = BTreeMap::from([("deliver".to_owned(), false)]);
    h.engine.set_site(&deliver_off).await.unwrap();
    h.engine.advance(Span::days(4)).await.unwrap();
    assert_eq!(
        unsent(&h, &before).await.get("nudge-3d"),
        Some(&UnsentReason::DeliveryDisabled)
    );
    assert!(email(&h).is_empty());
    // Back on: the next one goes.
    let mut on = site();
    on.switches = BTreeMap::from([("deliver".to_owned(), true)]);
    h.engine.set_site(&on).await.unwrap();
    h.engine.advance(Span::days(7)).await.unwrap();
    assert_eq!(sent_rules(&h, &before).await, ["nudge-10d"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_opted_out_learner_gets_nothing_more_from_that_course_or_from_any() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE), course(OTHER_COURSE)]).await;
    let one = enroll(&h.engine, &enrolment("jo", COURSE, "2026-03-01T10:00:00Z")).await;
    let two = enroll(
        &h.engine,
        &enrolment("jo", OTHER_COURSE, "2026-03-01T10:00:00Z"),
    )
    .await;
    h.engine
        .opt_out("demo", "jo", "jo@example.org", Some(COURSE))
        .await
        .unwrap();
    assert!(h.engine.show(&one).await.unwrap().active.is_empty());
    assert_eq!(
        unsent(&h, &one).await.get("nudge-3d"),
        Some(&UnsentReason::OptedOut)
    );
    assert!(!h.engine.show(&two).await.unwrap().active.is_empty());

    // Unsubscribed from everything: the other course stops, and a later enrolment plans nothing.
    let changed = h
        .engine
        .opt_out("demo", "jo", "jo@example.org", None)
        .await
        .unwrap();
    assert_eq!(changed, 1);
    assert!(h.engine.show(&two).await.unwrap().active.is_empty());
    h.engine
        .set_course(&course("course-v1:Demo+Third+1"))
        .await
        .unwrap();
    let three = enroll(
        &h.engine,
        &enrolment("jo", "course-v1:Demo+Third+1", "2026-03-02T10:00:00Z"),
    )
    .await;
    assert!(h.engine.show(&three).await.unwrap().active.is_empty());
    h.engine.advance(Span::days(30)).await.unwrap();
    assert!(email(&h).is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_in_several_courses_gets_one_email_per_slot_with_one_key_per_occurrence() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE), course(OTHER_COURSE)]).await;
    let one = enroll(&h.engine, &enrolment("ka", COURSE, "2026-03-01T10:00:00Z")).await;
    let two = enroll(
        &h.engine,
        &enrolment("ka", OTHER_COURSE, "2026-03-01T11:00:00Z"),
    )
    .await;
    // Same learner, same slot: the same minute.
    let first = |s: &Entity| pending(s)[0].1;
    assert_eq!(
        first(&h.engine.show(&one).await.unwrap()),
        first(&h.engine.show(&two).await.unwrap())
    );
    h.engine.advance(Span::days(4)).await.unwrap();
    let mails = email(&h);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert!(mails[0].body.contains(&format!("Course {COURSE}")));
    assert!(mails[0].body.contains(&format!("Course {OTHER_COURSE}")));
    assert!(mails[0].html.as_deref().unwrap_or("").contains("<strong>"));
    // The audit keeps one past event per occurrence, each with its own key.
    for s in [&one, &two] {
        assert_eq!(sent_rules(&h, s).await, ["nudge-3d"]);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivery_is_at_the_learners_local_hour_across_dst_and_spread_over_the_hour() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    // New York moves to summer time on 2026-03-08, between day 3 and day 10.
    let mut e = enrolment("lu", COURSE, "2026-03-02T15:00:00Z");
    e.zone = Some(Zone::parse("America/New_York").unwrap());
    e.delivery_time = Some("18:30".into());
    let id = enroll(&h.engine, &e).await;
    let s = h.engine.show(&id).await.unwrap();
    let nudges: Vec<_> = pending(&s)
        .into_iter()
        .filter(|(rule, _)| rule.starts_with("nudge"))
        .map(|(_, at)| at)
        .collect();
    // Minutes after the local delivery time: the same every day, within the first 50 minutes
    // of the learner's hour (the digest leaves 10 minutes after).
    let after_delivery_time = |at: Timestamp| {
        let local = local(at, "America/New_York");
        (local.hour() * 60 + local.minute()) as i64 - (18 * 60 + 30)
    };
    let minutes = after_delivery_time(nudges[0]);
    assert!((0..50).contains(&minutes), "{minutes}");
    for at in &nudges {
        assert_eq!(
            after_delivery_time(*at),
            minutes,
            "{at}: the same minute every day"
        );
    }
    use chrono::Offset;
    let utc_offset = |at: Timestamp| {
        local(at, "America/New_York")
            .offset()
            .fix()
            .local_minus_utc()
    };
    assert_eq!(utc_offset(nudges[0]), -5 * 3600, "EST");
    assert_eq!(utc_offset(nudges[1]), -4 * 3600, "EDT");

    // A cohort enrolled the same day is spread across the hour.
    let mut minutes = BTreeSet::new();
    for n in 0..30 {
        let id = enroll(
            &h.engine,
            &enrolment(&format!("c{n}"), COURSE, "2026-03-01T10:00:00Z"),
        )
        .await;
        let first = pending(&h.engine.show(&id).await.unwrap())[0].1;
        let local = local(first, "Europe/Paris");
        assert_eq!(local.hour(), 9);
        minutes.insert(local.minute());
    }
    assert!(minutes.len() >= 10, "{minutes:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn course_and_track_changes_reanchor_schedules_and_unenrolment_cancels_them() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    let mo = enroll(&h.engine, &enrolment("mo", COURSE, "2026-03-01T10:00:00Z")).await;
    let ne = enroll(&h.engine, &enrolment("ne", COURSE, "2026-03-01T10:00:00Z")).await;
    let quits = enroll(&h.engine, &enrolment("ol", COURSE, "2026-03-01T10:00:00Z")).await;
    h.engine.unenroll(COURSE, "ol").await.unwrap();
    assert_eq!(
        unsent(&h, &quits).await.get("nudge-3d"),
        Some(&UnsentReason::Completed)
    );

    // The course start moves to 03-05: every schedule starts then.
    let change = h
        .engine
        .set_course(&CourseSettings {
            course: COURSE.into(),
            start: Some(at("2026-03-05T00:00:00Z")),
            ..CourseSettings::default()
        })
        .await
        .unwrap();
    assert_eq!((change.schedules_updated, change.schedules_ended), (2, 1));
    let s = h.engine.show(&mo).await.unwrap();
    assert_eq!(s.anchors["start"], at("2026-03-05T00:00:00Z"));
    assert_eq!(
        local(pending(&s)[0].1, "Europe/Paris")
            .format("%m-%d")
            .to_string(),
        "03-08"
    );

    // The end moves earlier: later messages go out of the plan.
    h.engine
        .set_course(&CourseSettings {
            course: COURSE.into(),
            end: Some(at("2026-03-16T00:00:00Z")),
            ..CourseSettings::default()
        })
        .await
        .unwrap();
    let r = rules(&h.engine.show(&mo).await.unwrap());
    assert_eq!(r, ["nudge-3d", "nudge-10d"], "{r:?}");

    // A track change restarts the schedule: verified from now, audit from the enrolment (never
    // before the course start).
    h.clock.set(at("2026-03-06T12:00:00Z"));
    h.engine
        .change_track(COURSE, "ne", "verified")
        .await
        .unwrap();
    assert_eq!(
        h.engine.show(&ne).await.unwrap().anchors["start"],
        at("2026-03-06T12:00:00Z")
    );
    h.engine.change_track(COURSE, "ne", "audit").await.unwrap();
    assert_eq!(
        h.engine.show(&ne).await.unwrap().anchors["start"],
        at("2026-03-05T00:00:00Z")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_carry_course_learner_links_and_the_deadline_in_the_learners_zone() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    let mut e = enrolment("pi", COURSE, "2026-03-01T10:00:00Z");
    e.zone = Some(Zone::parse("Asia/Tokyo").unwrap());
    enroll(&h.engine, &e).await;
    h.engine.advance(Span::days(21)).await.unwrap();
    let mails = email(&h);
    let upgrade = mails
        .iter()
        .find(|m| m.body.contains("verified track"))
        .expect("an upgrade reminder");
    assert!(
        upgrade.body.contains("Hello Learner pi"),
        "{}",
        upgrade.body
    );
    assert!(
        upgrade.body.contains("Sun 22 Mar 2026, 19:00 JST"),
        "{}",
        upgrade.body
    );
    assert!(upgrade.body.contains(&format!(
        "https://lms.demo.example/verify_student/upgrade/{COURSE}/"
    )));
    assert!(upgrade.body.contains(&format!(
        "https://lms.demo.example/notifications/unsubscribe/pi/{COURSE}"
    )));
    let html = upgrade.html.as_deref().unwrap();
    // HTML-escaped ('/' is &#x2f; in attributes), which browsers read back as the same link.
    assert!(
        html.contains("lms.demo.example/verify_student/upgrade/"),
        "{html}"
    );
    assert!(
        html.contains("<strong>Course course-v1:Demo+Py101+2026</strong>"),
        "{html}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backfill_sends_a_past_days_waiting_occurrences_once() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    let id = enroll(&h.engine, &enrolment("qu", COURSE, "2026-03-01T10:00:00Z")).await;
    // The sender was held up (delivery paused) through day 3.
    h.engine
        .set_paused(&PauseScope::Policy("learner-schedule".into()), true)
        .await
        .unwrap();
    h.engine.advance(Span::days(4)).await.unwrap(); // 03-05 09:30 UTC
    assert!(h.engine.history(&id).await.unwrap().is_empty());
    let day = |d: &str| at(&format!("2026-03-{d}T00:00:00Z"));
    let first = h
        .engine
        .backfill("learner-schedule", day("04"), day("05"))
        .await
        .unwrap();
    assert_eq!(first.woken.len(), 1, "{first:?}");
    assert_eq!(first.woken[0].1.rule.as_str(), "nudge-3d");

    assert_eq!(sent_rules(&h, &id).await, ["nudge-3d"]);
    // Again: nothing left to send for that day.
    let again = h
        .engine
        .backfill("learner-schedule", day("04"), day("05"))
        .await
        .unwrap();
    assert!(again.woken.is_empty());
    h.engine.advance(Span::hours(1)).await.unwrap();
    assert_eq!(email(&h).len(), 1);
    // A range that has not ended yet is refused.
    let err = h
        .engine
        .backfill("learner-schedule", day("05"), day("07"))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("end by now"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_lists_what_a_course_would_send_without_sending_or_storing_anything() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    // One real learner, whose email shows that this engine does send.
    enroll(
        &h.engine,
        &enrolment("real", COURSE, "2026-03-01T10:00:00Z"),
    )
    .await;
    let entities_before = h.engine.store_stats().unwrap();
    let preview = h
        .engine
        .preview(&PreviewRequest {
            course: COURSE.into(),
            from: at("2026-03-01T10:00:00Z"),
            to: at("2026-03-31T10:00:00Z"),
            enrolments: Vec::new(),
            sample: 10,
            existing: false,
            limit: None,
        })
        .await
        .unwrap();
    // Ten learners: three nudges and one upgrade reminder each within 30 days.
    assert_eq!(preview.messages.len(), 40, "{:?}", preview.counts);
    let count = |day: &str, kind: &str| {
        preview
            .counts
            .iter()
            .find(|c| c.day == day && c.kind == kind)
            .map_or(0, |c| c.count)
    };
    assert_eq!(count("2026-03-04", "recurring_nudge"), 10);
    assert_eq!(count("2026-03-20", "upgrade_reminder"), 10);
    assert_eq!(h.engine.store_stats().unwrap(), entities_before);
    h.engine.advance(Span::days(30)).await.unwrap();
    let recipients: BTreeSet<String> = email(&h).into_iter().map(|m| m.recipient).collect();
    assert_eq!(
        recipients,
        BTreeSet::from(["real@example.org".to_owned()]),
        "only the real learner was emailed"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_enrolments_are_refused_naming_the_value() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    let err = h
        .engine
        .enroll(&enrolment(
            "ra",
            "course-v1:Nope+1+1",
            "2026-03-01T10:00:00Z",
        ))
        .await
        .unwrap_err();
    assert!(
        err.code() == "unknown_course" && err.to_string().contains("\"course-v1:Nope+1+1\""),
        "{err}"
    );
    let err = h
        .engine
        .set_course(&CourseSettings {
            site: Some("nowhere".into()),
            ..course("course-v1:Demo+X+1")
        })
        .await
        .unwrap_err();
    assert!(
        err.code() == "unknown_site" && err.to_string().contains("\"nowhere\""),
        "{err}"
    );
    let mut bad = enrolment("ra", COURSE, "2026-03-01T10:00:00Z");
    bad.track = "gold".into();
    let err = h.engine.enroll(&bad).await.unwrap_err();
    assert!(err.to_string().contains("\"gold\""), "{err}");
    let mut bad = enrolment("ra", COURSE, "2026-03-01T10:00:00Z");
    bad.delivery_time = Some("25:00".into());
    let err = h.engine.enroll(&bad).await.unwrap_err();
    assert!(err.to_string().contains("25:00"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shipped_seeds_create_the_demo_site_and_courses_once_and_run_time_changes_stay() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start(
        dir.path(),
        tickler_tests::StoreKind::Sled,
        at("2026-03-01T09:30:00Z"),
    )
    .await;
    let site = h
        .engine
        .directory_entity(&id("site/demo"))
        .expect("the demo site");
    assert_eq!(site.attributes["create_schedules"], AttrValue::Bool(true));
    let stats = id("course/course-v1:DemoX+Stats+2026");
    let course = h.engine.directory_entity(&stats).expect("a demo course");
    assert_eq!(
        course.attributes["pacing"],
        AttrValue::Text("instructor".into())
    );
    h.engine
        .set_course(&CourseSettings {
            course: "course-v1:DemoX+Stats+2026".into(),
            pacing: Some("self".into()),
            ..CourseSettings::default()
        })
        .await
        .unwrap();
    let (_, clock) = h.stop().await;
    // Reopened on the same store: the seed is not applied again over the change.
    let h = Harness::start(
        dir.path(),
        tickler_tests::StoreKind::Sled,
        tickler::Clock::now(&clock),
    )
    .await;
    let course = h.engine.directory_entity(&stats).unwrap();
    assert_eq!(course.attributes["pacing"], AttrValue::Text("self".into()));
    assert_eq!(course.version, 2, "created once, changed once");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_enrolment_keeps_live_actors_near_the_cap() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::start_with(
        dir.path(),
        tickler_tests::StoreKind::Memory(std::sync::Arc::new(tickler::MemoryStore::new())),
        at("2026-03-01T09:30:00Z"),
        |config| config.engine.actors_max = 50,
    )
    .await;
    setup(&h, site(), &[course(COURSE)]).await;
    for n in 0..400 {
        enroll(
            &h.engine,
            &enrolment(&format!("b{n}"), COURSE, "2026-03-01T10:00:00Z"),
        )
        .await;
    }
    // Idle for far less than passivate_after (5 minutes): only the cap stops them. The
    // passivator runs every half second; wait for it, not for a duration.
    let mut actors = usize::MAX;
    for _ in 0..200 {
        actors = h.engine.status().await.unwrap().actors;
        if actors <= 50 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    assert!(actors <= 50, "{actors} actors live");
    // Passivated schedules come back from their logs when needed.
    let s = h.engine.show(&schedule(COURSE, "b0")).await.unwrap();
    assert_eq!(rules(&s).len(), 4);
}

#[test]
fn a_schedule_template_with_an_unknown_variable_or_missing_is_refused_at_load_time() {
    let shipped = tickler_tests::config_dir();
    let dir = tempfile::tempdir().unwrap();
    let templates = dir.path().join("templates");
    copy_dir(&shipped.join("templates"), &templates);
    let policies = shipped.join("policies");
    assert!(tickler::load_catalog(&policies, &templates).is_ok());

    let file = templates.join("schedule/upgrade-reminder.text.j2");
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("course_name", "course_nmae")).unwrap();
    let err = tickler::load_catalog(&policies, &templates)
        .err()
        .unwrap()
        .to_string();
    assert!(err.contains("schedule/upgrade-reminder.text.j2"), "{err}");
    std::fs::write(&file, text).unwrap();

    std::fs::remove_file(templates.join("schedule/course-update.subject.j2")).unwrap();
    let err = tickler::load_catalog(&policies, &templates)
        .err()
        .unwrap()
        .to_string();
    assert!(
        err.contains("template \"schedule/course-update\" not found"),
        "{err}"
    );
}

/// The instant local `time` on `date` resolves to in `zone`, computed here with chrono-tz alone:
/// a time in a DST gap moves to the gap's end, an ambiguous one takes the earlier instant.
fn resolve_local(zone: chrono_tz::Tz, date: chrono::NaiveDate, time: chrono::NaiveTime) -> i64 {
    use chrono::TimeZone;
    let mut local = date.and_time(time);
    loop {
        match zone.from_local_datetime(&local) {
            chrono::LocalResult::Single(t) => return t.timestamp_millis(),
            chrono::LocalResult::Ambiguous(earlier, _) => return earlier.timestamp_millis(),
            chrono::LocalResult::None => local += chrono::Duration::minutes(1),
        }
    }
}

/// The start of the delivery hour an email sent at `sent` belongs to: the latest instant the
/// learner's local delivery time resolved to, on the sending day or the day before, not after it.
fn delivery_hour_start(zone: chrono_tz::Tz, time: chrono::NaiveTime, sent: Timestamp) -> i64 {
    let day = sent.to_chrono().with_timezone(&zone).date_naive();
    [day.pred_opt().unwrap(), day]
        .into_iter()
        .map(|date| resolve_local(zone, date, time))
        .filter(|start| *start <= sent.as_millis())
        .max()
        .expect("the day before always started earlier")
}

/// Issue 19: Open edX sends a learner's messages within their delivery hour. Learners in zones
/// north and south of the equator, with and without DST, at delivery times across the day (in
/// DST gaps and overlaps, and late enough to run past midnight), enrolled so that their nudges
/// straddle both DST transitions of 2026, some in two courses: every email the engine sends
/// leaves within [delivery time, delivery time + 1 h) of its day, one per learner per slot.
/// (Through the whole engine, each distinct instant a step of the manual clock: a few hundred
/// learners here; `crates/tickler-core/tests/learner.rs` checks the plans of thousands.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_learners_email_leaves_within_their_delivery_hour_across_both_dst_transitions() {
    const LEARNERS: usize = 352; // each zone × cohort × time twice
    let zones = [
        "America/New_York",
        "Europe/Paris",
        "Australia/Sydney",
        "America/Santiago",
        "Asia/Kolkata",
        "Pacific/Chatham",
        "Europe/London",
        "America/Los_Angeles",
    ];
    let times = [
        "00:00", "01:30", "02:30", "03:10", "06:45", "09:00", "12:20", "18:30", "21:55", "23:15",
        "23:40",
    ];
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let mut long = course(COURSE);
    long.end = Some(at("2027-06-30T00:00:00Z"));
    let mut other = course(OTHER_COURSE);
    other.end = long.end;
    setup(&h, site(), &[long, other]).await;
    let mut learners = BTreeMap::new();
    for n in 0..LEARNERS {
        // Spring: nudges on 03-05 .. 04-18 (US 03-08, EU 03-29, south 04-05). Autumn: 10-04 ..
        // 11-18 (south 10-04, EU 10-25, US 11-01).
        let enrolled = if (n / zones.len()).is_multiple_of(2) {
            at("2026-03-02T00:00:00Z").saturating_add(Span::hours((n * 7 % 600) as i64))
        } else {
            at("2026-10-01T00:00:00Z").saturating_add(Span::hours((n * 7 % 620) as i64))
        };
        let learner = format!("l{n}");
        let (zone, time) = (zones[n % zones.len()], times[(n / 16) % times.len()]);
        let courses: &[&str] = if n % 5 == 0 {
            &[COURSE, OTHER_COURSE]
        } else {
            &[COURSE]
        };
        for course in courses {
            let mut e = enrolment(&learner, course, "2026-03-01T00:00:00Z");
            e.enrolled_at = Some(enrolled);
            e.zone = Some(Zone::parse(zone).unwrap());
            e.delivery_time = Some(time.into());
            enroll(&h.engine, &e).await;
        }
        learners.insert(format!("{learner}@example.org"), (zone, time));
    }
    h.engine.advance(Span::days(290)).await.unwrap();

    let mails = email(&h);
    let mut slots: BTreeMap<(String, i64), usize> = BTreeMap::new();
    let mut outside = Vec::new();
    for mail in &mails {
        let (zone, time) = learners[&mail.recipient];
        let zone: chrono_tz::Tz = zone.parse().unwrap();
        let time = chrono::NaiveTime::parse_from_str(time, "%H:%M").unwrap();
        let start = delivery_hour_start(zone, time, mail.fired_at);
        if mail.fired_at.as_millis() >= start + 3_600_000 {
            outside.push(format!(
                "{} at {} ({zone} {time})",
                mail.recipient, mail.fired_at
            ));
        }
        *slots.entry((mail.recipient.clone(), start)).or_default() += 1;
    }
    assert!(
        outside.is_empty(),
        "{} of {} emails left after their hour, e.g. {:?}",
        outside.len(),
        mails.len(),
        &outside[..outside.len().min(5)]
    );
    assert!(
        slots.values().all(|count| *count == 1),
        "one email per learner per slot"
    );
    // Every learner got the three nudges of their slots (two courses' nudges share an email).
    assert_eq!(slots.len(), LEARNERS * 3, "{} emails", mails.len());
}

/// Issue 19: `explain` names the cause. A course end moved earlier than a nudge's day ends the
/// nudge "not applicable", and the explanation says which date moved, to what and when, in words
/// and as fields.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_course_end_that_moved_before_a_nudge() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    let ana = enroll(&h.engine, &enrolment("ana", COURSE, "2026-03-01T10:00:00Z")).await;
    // On 03-12 the course end moves to 03-16, before the 19-day nudge (03-20).
    h.clock.set(at("2026-03-12T10:00:00Z"));
    h.engine
        .set_course(&CourseSettings {
            course: COURSE.into(),
            end: Some(at("2026-03-16T00:00:00Z")),
            ..CourseSettings::default()
        })
        .await
        .unwrap();
    let nudge = "nudge-19d#0".parse().unwrap();
    let explanation = h.engine.explain(&ana, Some(&nudge)).unwrap();
    let story = &explanation.occurrences[0];
    assert_eq!(story.status, "unsent: not-applicable");
    let planned_at = match &story.cause {
        Some(tickler::Cause::Anchor {
            anchor,
            value,
            changed_at,
            bound,
            occurrence_at,
        }) => {
            assert_eq!(anchor, "course_end");
            assert_eq!(*value, Some(at("2026-03-16T00:00:00Z")));
            assert_eq!(*changed_at, Some(at("2026-03-12T10:00:00Z")));
            assert_eq!(*bound, tickler::Bound::NotAfter);
            *occurrence_at
        }
        other => panic!("{other:?}"),
    };
    assert_eq!(
        local(planned_at, "Europe/Paris")
            .format("%m-%d")
            .to_string(),
        "03-20"
    );
    let last = &story.lines.last().unwrap().text;
    assert!(
        last.contains("course_end moved to 2026-03-16T00:00:00Z on 2026-03-12T10:00:00Z, before this occurrence's instant"),
        "{last}"
    );
    // As JSON (the protocol's explain), the cause is fields, not only words.
    let json = serde_json::to_value(story).unwrap();
    assert_eq!(json["cause"]["anchor"]["bound"], "not-after");
    assert_eq!(
        json["cause"]["anchor"]["changed_at"],
        "2026-03-12T10:00:00Z"
    );
}

/// Issue 20 (M6): a preview's size is bounded: too many simulated learners or too long a list
/// is refused, naming the value and the limit, and a listing keeps only what it shows while its
/// counts still cover every message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_preview_refuses_an_unbounded_sample_and_lists_only_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    let request = |sample: u32, limit: Option<usize>| PreviewRequest {
        course: COURSE.into(),
        from: at("2026-03-01T10:00:00Z"),
        to: at("2026-03-31T10:00:00Z"),
        enrolments: Vec::new(),
        sample,
        existing: false,
        limit,
    };
    let err = h
        .engine
        .preview(&request(u32::MAX, None))
        .await
        .unwrap_err();
    assert!(
        matches!(err, Error::Arguments { .. })
            && err.to_string().contains("sample 4294967295")
            && err.to_string().contains("at most 100000"),
        "{err}"
    );
    let err = h
        .engine
        .preview(&request(1, Some(10_001)))
        .await
        .unwrap_err();
    assert!(err.to_string().contains("limit 10001"), "{err}");

    let preview = h.engine.preview(&request(50, Some(7))).await.unwrap();
    assert_eq!(preview.messages.len(), 7);
    let total: u64 = preview.counts.iter().map(|c| c.count).sum();
    assert_eq!(total, 50 * 4, "three nudges and an upgrade reminder each");
    let first = preview.messages.iter().map(|m| m.at).collect::<Vec<_>>();
    assert!(
        first.windows(2).all(|w| w[0] <= w[1]),
        "the earliest, in order"
    );
}

/// Issue 20 (L7): day counts are bounded where they enter, named when refused, and never wrap
/// into a deadline at the start (i64::MIN) or a day before it (i64::MAX).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deadline_days_beyond_their_range_are_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    setup(&h, site(), &[course(COURSE)]).await;
    for days in [i64::MIN, -1, 3651, i64::MAX] {
        let err = h
            .engine
            .set_site(&SiteSettings {
                deadline_days: Some(days),
                ..site()
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("deadline_days") && err.contains("out of range") && err.contains("3650"),
            "{days}: {err}"
        );
        let err = h
            .engine
            .set_course(&CourseSettings {
                deadline_days: Some(days),
                ..course(COURSE)
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("out of range"), "{days}: {err}");
        let err = h
            .engine
            .set_site(&SiteSettings {
                org_deadline_days: Some(BTreeMap::from([("Demo".to_owned(), days)])),
                ..site()
            })
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("\"Demo\"") && err.contains(&days.to_string()),
            "{days}: {err}"
        );
    }
    assert_eq!(
        Span::days(i64::MAX).as_millis(),
        i64::MAX,
        "saturates, never wraps"
    );
    assert_eq!(Span::days(i64::MIN).as_millis(), i64::MIN);
}

/// Issue 20 (M7): a course change that cannot reach one of its schedules (here a damaged,
/// quarantined one) still reaches the others, says which failed, and is recorded as work to
/// finish: a repeat of the same `course.set` tries again (it used to be a no-op), and once the
/// schedule can be read again the next start finishes the change without being asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_course_change_reaches_every_schedule_eventually_past_one_that_fails() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(tickler::MemoryStore::new());
    let h = Harness::start(
        dir.path(),
        tickler_tests::StoreKind::Memory(store.clone()),
        at("2026-03-01T09:30:00Z"),
    )
    .await;
    setup(&h, site(), &[course(COURSE)]).await;
    let learners = ["a", "m", "z"].map(|l| l.to_owned());
    for learner in &learners {
        enroll(
            &h.engine,
            &enrolment(learner, COURSE, "2026-03-01T10:00:00Z"),
        )
        .await;
    }
    let (_, clock) = h.stop().await;
    let broken = schedule(COURSE, "m");
    let mut saved = Vec::new();
    assert!(store.corrupt_event(&broken, 2, |bytes| {
        saved = bytes.clone();
        bytes.truncate(3);
    }));
    let h = Harness::start(
        dir.path(),
        tickler_tests::StoreKind::Memory(store.clone()),
        clock.now(),
    )
    .await;

    let earlier_end = CourseSettings {
        course: COURSE.into(),
        end: Some(at("2026-03-16T00:00:00Z")),
        ..CourseSettings::default()
    };
    let change = h.engine.set_course(&earlier_end).await.unwrap();
    assert_eq!(change.schedules_updated, 2, "a and z, past m");
    assert_eq!(
        change.schedules_failed.len(),
        1,
        "{:?}",
        change.schedules_failed
    );
    assert!(change.schedules_failed[0].starts_with(&broken.to_string()));
    let end = |s: &Entity| s.anchors.get("course_end").copied();
    for learner in ["a", "z"] {
        let s = h.engine.show(&schedule(COURSE, learner)).await.unwrap();
        assert_eq!(end(&s), Some(at("2026-03-16T00:00:00Z")), "{learner}");
    }
    // The same request again is not a no-op: the change is still owed to m.
    let again = h.engine.set_course(&earlier_end).await.unwrap();
    assert_eq!(
        (again.schedules_updated, again.schedules_failed.len()),
        (0, 1)
    );

    // The schedule is repaired while the daemon is down; the next start finishes the change.
    let (_, clock) = h.stop().await;
    assert!(store.corrupt_event(&broken, 2, |bytes| *bytes = saved.clone()));
    let h = Harness::start(
        dir.path(),
        tickler_tests::StoreKind::Memory(store),
        clock.now(),
    )
    .await;
    let m = h.engine.show(&broken).await.unwrap();
    assert_eq!(end(&m), Some(at("2026-03-16T00:00:00Z")));
}

/// Issue 20 (I4): a site's LMS address, the href of every link in its emails, is an http(s)
/// address; a `javascript:` one is refused by name.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_lms_url_that_is_not_http_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let h = Harness::in_memory(dir.path()).await;
    let err = h
        .engine
        .set_site(&SiteSettings {
            lms_url: Some("javascript:alert(document.domain)//".into()),
            ..site()
        })
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("javascript:alert") && err.contains("https://"),
        "{err}"
    );
}
