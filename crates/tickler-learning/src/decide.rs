//! The pure decisions of learner schedules: what an enrolment becomes, as functions of the
//! site's and the course's settings (directory entities) and the enrolment itself.
//!
//! A schedule is an entity `schedule/<course>/<learner>` under the `learner-schedule` policy. Its
//! anchors are derived here: `start = max(enrolment, course start)`, the upgrade deadline
//! `min(start + deadline days, verified expiry)` (deadline days resolved course > org > site >
//! 21; none when the course opts out or has no verified track), and copies of the course's end
//! and verified expiry. Everything the policy's rules read is on the schedule itself, so a plan
//! depends only on the schedule's log; a course change reaches its schedules as commands built
//! by [`course_change`].

use std::collections::BTreeMap;

use tickler_core::{AttrValue, CreateEntity, Entity, EntityId, Span, Timestamp, Zone};

/// The policy schedules run under, and the kinds of its directory entities.
pub const SCHEDULE_POLICY: &str = "learner-schedule";
pub const SCHEDULE_KIND: &str = "schedule";
pub const SITE_KIND: &str = "site";
pub const COURSE_KIND: &str = "course";
pub const LEARNER_KIND: &str = "learner";
pub const SITE_POLICY: &str = "site";
pub const COURSE_POLICY: &str = "course";
pub const LEARNER_POLICY: &str = "learner";
/// The completion reason of an unenrolment.
pub const UNENROLLED: &str = "unenrolled";
/// Deadline days when neither course, org nor site says (Open edX's default).
pub const DEFAULT_DEADLINE_DAYS: i64 = 21;
/// Delivery time when neither learner nor site says.
pub const DEFAULT_DELIVERY_TIME: &str = "09:00";

/// One enrolment, as a platform sends it.
#[derive(
    Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize, schemars::JsonSchema,
)]
#[serde(deny_unknown_fields)]
pub struct Enrolment {
    /// The learner's id on the platform (part of the schedule's id).
    pub learner: String,
    pub email: String,
    #[serde(default)]
    pub name: String,
    /// The course key, e.g. `course-v1:edX+DemoX+2026`.
    pub course: String,
    /// When the learner enrolled; the engine's now when absent.
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub enrolled_at: Option<Timestamp>,
    /// The learner's IANA zone; the site's default zone when absent.
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::ZoneText>")]
    pub zone: Option<Zone>,
    /// `audit` (default) or `verified`.
    #[serde(default = "default_track")]
    pub track: String,
    /// The learner's local delivery time, `HH:MM`; the site's when absent.
    #[serde(default)]
    pub delivery_time: Option<String>,
}

fn default_track() -> String {
    "audit".to_owned()
}

/// What an enrolment leads to.
#[derive(Clone, Debug, PartialEq)]
pub enum Decision {
    /// No schedule: schedule creation is off for the site and the course.
    NoSchedule { reason: String },
    /// A schedule entity to create (held-back learners get one too, with nothing planned: the
    /// record of who was held back and why).
    Schedule { id: EntityId, create: CreateEntity },
}

/// Why an enrolment cannot be decided.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LearnerError {
    #[error("course {course} has no start date")]
    CourseWithoutStart { course: EntityId },
    #[error("invalid {what} {value:?}: {reason}")]
    Invalid {
        what: &'static str,
        value: String,
        reason: String,
    },
}

/// The site entity of a site name, the course entity of a course key, the schedule of a
/// learner in a course.
pub fn site_id(site: &str) -> Result<EntityId, LearnerError> {
    id(SITE_KIND, site, "site")
}

pub fn course_id(course: &str) -> Result<EntityId, LearnerError> {
    if course.contains('/') {
        // A schedule id is `schedule/<course>/<learner>`: a '/' in the course would make the
        // schedules of one course a prefix of another's.
        return Err(LearnerError::Invalid {
            what: "course key",
            value: course.to_owned(),
            reason: "must not contain '/' (use the course-v1:Org+Number+Run form)".into(),
        });
    }
    id(COURSE_KIND, course, "course")
}

/// The entity of a learner at a site (their unsubscribe from all of the site's email).
pub fn learner_id(site: &str, learner: &str) -> Result<EntityId, LearnerError> {
    if learner.contains('/') || site.contains('/') {
        return Err(LearnerError::Invalid {
            what: "learner id",
            value: format!("{site}/{learner}"),
            reason: "neither site nor learner may contain '/'".into(),
        });
    }
    id(LEARNER_KIND, &format!("{site}/{learner}"), "learner id")
}

/// The prefix of every schedule id of a course.
pub fn schedule_prefix(course: &str) -> String {
    format!("{SCHEDULE_KIND}/{course}/")
}

pub fn schedule_id(course: &str, learner: &str) -> Result<EntityId, LearnerError> {
    course_id(course)?;
    if learner.contains('/') {
        return Err(LearnerError::Invalid {
            what: "learner id",
            value: learner.to_owned(),
            reason: "must not contain '/'".into(),
        });
    }
    id(SCHEDULE_KIND, &format!("{course}/{learner}"), "learner id")
}

fn id(kind: &str, key: &str, what: &'static str) -> Result<EntityId, LearnerError> {
    EntityId::new(kind, key).map_err(|err| LearnerError::Invalid {
        what,
        value: key.to_owned(),
        reason: err.to_string(),
    })
}

fn text<'a>(entity: &'a Entity, name: &str) -> Option<&'a str> {
    match entity.attributes.get(name) {
        Some(AttrValue::Text(value)) if !value.is_empty() => Some(value),
        _ => None,
    }
}

fn flag(entity: &Entity, name: &str) -> Option<bool> {
    match entity.attributes.get(name) {
        Some(AttrValue::Bool(value)) => Some(*value),
        _ => None,
    }
}

fn int(entity: &Entity, name: &str) -> Option<i64> {
    match entity.attributes.get(name) {
        Some(AttrValue::Int(value)) => Some(*value),
        _ => None,
    }
}

/// The site's hold-back ratio, in [0, 1].
pub fn hold_back_ratio(site: &Entity) -> Result<f64, LearnerError> {
    let Some(text) = text(site, "hold_back_ratio") else {
        return Ok(0.0);
    };
    match text.parse::<f64>() {
        Ok(ratio) if (0.0..=1.0).contains(&ratio) => Ok(ratio),
        _ => Err(LearnerError::Invalid {
            what: "hold_back_ratio",
            value: text.to_owned(),
            reason: "expected a number from 0 to 1, e.g. \"0.1\"".into(),
        }),
    }
}

/// The learner's draw in [0, 1) for the hold-back: the same for a (learner, course) on every
/// machine and every run, so re-sending an enrolment never changes the choice.
pub fn hold_back_draw(seed: u64, learner: &str, course: &str) -> f64 {
    tickler_core::seed::Draw::new(seed, &[b"hold-back", learner.as_bytes(), course.as_bytes()])
        .fraction()
}

/// The deadline days that apply: course, then the course's org at the site, then the site,
/// then 21. `None`: the course opted out of upgrade deadlines.
pub fn deadline_days(site: &Entity, course: &Entity) -> Option<i64> {
    if flag(course, "deadline_opt_out") == Some(true) {
        return None;
    }
    if let Some(days) = int(course, "deadline_days") {
        return Some(days);
    }
    let org_days =
        text(course, "org").and_then(|org| match site.attributes.get("org_deadline_days") {
            Some(AttrValue::Table(rows)) => rows
                .iter()
                .find(|row| row.get("org").map(String::as_str) == Some(org))
                .and_then(|row| row.get("days"))
                .and_then(|days| days.parse::<i64>().ok()),
            _ => None,
        });
    Some(
        org_days
            .or_else(|| int(site, "deadline_days"))
            .unwrap_or(DEFAULT_DEADLINE_DAYS),
    )
}

/// How many leading sections of the course have highlights.
pub fn highlight_weeks(course: &Entity) -> i64 {
    match course.attributes.get("highlights") {
        Some(AttrValue::Table(rows)) => rows
            .iter()
            .take_while(|row| row.get("highlights").is_some_and(|h| !h.trim().is_empty()))
            .count() as i64,
        _ => 0,
    }
}

/// The upgrade deadline of a schedule starting at `start`, if the course has an open verified
/// track and has not opted out.
pub fn upgrade_deadline(site: &Entity, course: &Entity, start: Timestamp) -> Option<Timestamp> {
    if flag(course, "verified") != Some(true) {
        return None;
    }
    let days = deadline_days(site, course)?;
    let by_days = start.checked_add(Span::days(days))?;
    Some(match course.anchors.get("verified_expiry") {
        Some(expiry) => by_days.min(*expiry),
        None => by_days,
    })
}

/// The anchors a schedule takes from its course, given when its start is counted from
/// (`start_basis`: the enrolment, or a track change).
pub fn derived_anchors(
    site: &Entity,
    course: &Entity,
    start_basis: Timestamp,
) -> Result<BTreeMap<String, Timestamp>, LearnerError> {
    let course_start =
        course
            .anchors
            .get("start")
            .copied()
            .ok_or_else(|| LearnerError::CourseWithoutStart {
                course: course.id.clone(),
            })?;
    let start = start_basis.max(course_start);
    let mut anchors = BTreeMap::from([
        ("start_basis".to_owned(), start_basis),
        ("start".to_owned(), start),
    ]);
    if let Some(deadline) = upgrade_deadline(site, course, start) {
        anchors.insert("upgrade_deadline".into(), deadline);
    }
    for (from, to) in [
        ("end", "course_end"),
        ("verified_expiry", "verified_expiry"),
    ] {
        if let Some(at) = course.anchors.get(from) {
            anchors.insert(to.to_owned(), *at);
        }
    }
    Ok(anchors)
}

/// The schedule attributes that follow the course (copied so the plan reads only the schedule).
pub fn course_attributes(course: &Entity) -> BTreeMap<String, AttrValue> {
    let weeks = highlight_weeks(course);
    let experience = if weeks > 0 {
        "course-updates"
    } else {
        "default"
    };
    BTreeMap::from([
        (
            "course_name".to_owned(),
            AttrValue::Text(text(course, "name").unwrap_or(course.id.key()).to_owned()),
        ),
        (
            "pacing".to_owned(),
            AttrValue::Text(text(course, "pacing").unwrap_or("self").to_owned()),
        ),
        (
            "experience".to_owned(),
            AttrValue::Text(experience.to_owned()),
        ),
        ("highlight_weeks".to_owned(), AttrValue::Int(weeks)),
        (
            "highlights".to_owned(),
            match course.attributes.get("highlights") {
                Some(AttrValue::Table(rows)) => AttrValue::Table(rows.clone()),
                _ => AttrValue::Table(Vec::new()),
            },
        ),
    ])
}

/// What an enrolment becomes. `seed` is the schedule policy's seed (for the hold-back draw);
/// `opted_out_everywhere`: the learner unsubscribed from all of the site's email.
pub fn decide_enrolment(
    site: &Entity,
    course: &Entity,
    enrolment: &Enrolment,
    seed: u64,
    opted_out_everywhere: bool,
) -> Result<Decision, LearnerError> {
    let site_on = flag(site, "create_schedules").unwrap_or(false);
    let course_on = flag(course, "create_schedules");
    // The course's own flag wins either way; the site's applies when the course says nothing.
    if !course_on.unwrap_or(site_on) {
        let reason = match course_on {
            Some(false) => format!("create_schedules is off for course {}", course.id.key()),
            _ => format!(
                "create_schedules is off for site {} and course {} does not turn it on",
                site.id.key(),
                course.id.key()
            ),
        };
        return Ok(Decision::NoSchedule { reason });
    }
    let id = schedule_id(&enrolment.course, &enrolment.learner)?;
    if !matches!(enrolment.track.as_str(), "audit" | "verified") {
        return Err(LearnerError::Invalid {
            what: "track",
            value: enrolment.track.clone(),
            reason: "expected audit or verified".into(),
        });
    }
    if !tickler_core::is_email_address(&enrolment.email) {
        return Err(LearnerError::Invalid {
            what: "email",
            value: enrolment.email.clone(),
            reason: "expected an email address such as ana@example.org".into(),
        });
    }
    let zone = match enrolment.zone {
        Some(zone) => zone,
        None => match text(site, "default_zone") {
            Some(name) => Zone::parse(name).map_err(|err| LearnerError::Invalid {
                what: "site default_zone",
                value: name.to_owned(),
                reason: err.to_string(),
            })?,
            None => Zone::UTC,
        },
    };
    let delivery_time = enrolment
        .delivery_time
        .clone()
        .or_else(|| text(site, "delivery_time").map(str::to_owned))
        .unwrap_or_else(|| DEFAULT_DELIVERY_TIME.to_owned());
    tickler_core::policy::LocalTime::parse(&delivery_time).map_err(|err| {
        LearnerError::Invalid {
            what: "delivery_time",
            value: delivery_time.clone(),
            reason: err.to_string(),
        }
    })?;
    let enrolled_at = enrolment.enrolled_at.ok_or_else(|| LearnerError::Invalid {
        what: "enrolment",
        value: enrolment.learner.clone(),
        reason: "enrolled_at is missing".into(),
    })?;
    let mut anchors = derived_anchors(site, course, enrolled_at)?;
    anchors.insert("enrolled_at".into(), enrolled_at);
    let mut attributes = course_attributes(course);
    for (name, value) in [
        ("site", site.id.key()),
        ("course", enrolment.course.as_str()),
        ("learner", enrolment.learner.as_str()),
        ("learner_name", enrolment.name.as_str()),
        ("track", enrolment.track.as_str()),
        ("delivery_time", delivery_time.as_str()),
    ] {
        attributes.insert(name.to_owned(), AttrValue::Text(value.to_owned()));
    }
    if let Some(url) = text(site, "lms_url") {
        attributes.insert("lms_url".into(), AttrValue::Text(url.to_owned()));
    }
    attributes.insert(
        "upgraded".into(),
        AttrValue::Bool(enrolment.track == "verified"),
    );
    attributes.insert("opted_out".into(), AttrValue::Bool(opted_out_everywhere));
    let ratio = hold_back_ratio(site)?;
    let draw = hold_back_draw(seed, &enrolment.learner, &enrolment.course);
    let held_back = draw < ratio;
    attributes.insert("held_back".into(), AttrValue::Bool(held_back));
    if held_back {
        attributes.insert(
            "held_back_reason".into(),
            AttrValue::Text(format!(
                "control group: the learner's draw {draw:.4} is below the site's hold_back_ratio {ratio}"
            )),
        );
    }
    Ok(Decision::Schedule {
        id,
        create: CreateEntity {
            policy: SCHEDULE_POLICY.to_owned(),
            workflow: None,
            recipient: enrolment.email.clone(),
            zone,
            anchors,
            attributes,
        },
    })
}

/// Anchors to move and attributes to set on a schedule.
pub type ScheduleChange = (BTreeMap<String, Timestamp>, BTreeMap<String, AttrValue>);

/// The anchors and attributes a schedule should have after its course changed (start, end,
/// verified expiry, highlights, name, pacing): only those that differ.
pub fn course_change(
    schedule: &Entity,
    site: &Entity,
    course: &Entity,
) -> Result<ScheduleChange, LearnerError> {
    let basis = schedule
        .anchors
        .get("start_basis")
        .or_else(|| schedule.anchors.get("enrolled_at"))
        .copied()
        .unwrap_or(schedule.created_at);
    let anchors = derived_anchors(site, course, basis)?
        .into_iter()
        .filter(|(name, at)| schedule.anchors.get(name) != Some(at))
        .collect();
    let attributes = course_attributes(course)
        .into_iter()
        .filter(|(name, value)| schedule.attributes.get(name) != Some(value))
        .collect();
    Ok((anchors, attributes))
}

/// The start basis after a track change: the enrolment for the audit track, otherwise now
/// (the derived start is never before the course start).
pub fn track_change_basis(schedule: &Entity, track: &str, now: Timestamp) -> Timestamp {
    match track {
        "audit" => schedule
            .anchors
            .get("enrolled_at")
            .copied()
            .unwrap_or(schedule.created_at),
        _ => now,
    }
}
