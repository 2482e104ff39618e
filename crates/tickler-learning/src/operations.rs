//! Learner schedules (the `learner-schedule` policy, after Open edX's Schedules app) as an
//! embedder or the admin socket drives them: sites and courses are set, enrolments become
//! schedules, course changes reach every schedule of the course, and a course's messages can be
//! previewed before it is turned on.
//!
//! What an enrolment or a course change means is decided by the pure functions of
//! [`crate::decide`]; this module reads the directory (sites, courses), finds the schedules
//! concerned and sends their entities the resulting commands, through the engine's public API.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tickler_core::{AttrValue, Command, Entity, EntityId, Rejection, Timestamp, Zone};
use tickler_engine::{Applied, Engine, Error, IndexScan, Upsert, text_attribute as text_attr};

use crate::Enrolment;
use crate::decide::{
    self as learner, COURSE_POLICY, Decision, LEARNER_POLICY, SCHEDULE_KIND, SCHEDULE_POLICY,
    SITE_POLICY, UNENROLLED,
};
use crate::error::{unknown_course, unknown_site};

/// A site's settings; `None` leaves a setting as it is.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SiteSettings {
    pub site: String,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub create_schedules: Option<bool>,
    /// The fraction of new enrolments held back in a control group, 0 to 1.
    #[serde(default)]
    pub hold_back_ratio: Option<f64>,
    #[serde(default)]
    pub deadline_days: Option<i64>,
    /// Deadline days by course org, e.g. `{"MITx": 14}`.
    #[serde(default)]
    pub org_deadline_days: Option<BTreeMap<String, i64>>,
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::ZoneText>")]
    pub default_zone: Option<Zone>,
    /// `HH:MM`, the learners' local delivery time unless they give theirs.
    #[serde(default)]
    pub delivery_time: Option<String>,
    #[serde(default)]
    pub lms_url: Option<String>,
    /// Kill switches: `enqueue`, `deliver`, or per kind `enqueue_<kind>`, `deliver_<kind>`
    /// (kinds: recurring_nudge, upgrade_reminder, course_update).
    #[serde(default)]
    pub switches: BTreeMap<String, bool>,
}

/// A course's settings; `None` leaves a setting as it is. A new course needs `site` and `start`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CourseSettings {
    pub course: String,
    #[serde(default)]
    pub site: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub org: Option<String>,
    /// `self` or `instructor`.
    #[serde(default)]
    pub pacing: Option<String>,
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub start: Option<Timestamp>,
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub end: Option<Timestamp>,
    #[serde(default)]
    pub verified: Option<bool>,
    #[serde(default)]
    #[schemars(with = "Option<tickler_admin::schema::InstantText>")]
    pub verified_expiry: Option<Timestamp>,
    #[serde(default)]
    pub create_schedules: Option<bool>,
    #[serde(default)]
    pub deadline_days: Option<i64>,
    #[serde(default)]
    pub deadline_opt_out: Option<bool>,
    /// Section highlights in course order: week n sends section n's.
    #[serde(default)]
    pub highlights: Option<Vec<Highlight>>,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Highlight {
    #[serde(default)]
    pub section: String,
    /// One highlight per line.
    pub highlights: String,
}

/// What a course change did to its schedules.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct CourseChange {
    pub version: u64,
    /// Schedules whose anchors or attributes changed (and were re-planned).
    pub schedules_updated: u64,
    /// Schedules already ended (unenrolled), left as they are.
    pub schedules_ended: u64,
    /// Schedules the change could not reach ("id: why"); it is retried on the next
    /// `course.set` of the course and at the next start until none is left.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub schedules_failed: Vec<String>,
}

/// The engine extension that finishes course changes left part way when it opens.
pub(crate) struct FinishCourseChanges;

#[async_trait]
impl tickler_engine::Extension for FinishCourseChanges {
    fn name(&self) -> &'static str {
        "learner schedules: course changes"
    }

    async fn on_open(&self, engine: &Engine) -> Result<(), Error> {
        finish_course_fan_outs(engine).await
    }
}

/// The store meta entry listing courses whose last change has not reached all their schedules.
const COURSE_FAN_OUTS_META: &str = "course-fan-outs";

/// What an enrolment became.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "kebab-case")]
pub enum Enrolled {
    /// A schedule was created; `held_back` ones plan nothing (the control group).
    Scheduled {
        schedule: EntityId,
        held_back: bool,
        pending: usize,
    },
    /// The schedule existed already (an enrolment sent twice): nothing changed.
    Exists { schedule: EntityId },
    /// Schedule creation is off for the site and the course.
    NoSchedule { reason: String },
}

/// One message a preview lists.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PreviewMessage {
    pub at: Timestamp,
    pub schedule: EntityId,
    pub rule: String,
    pub kind: String,
    /// `schedule`: an existing schedule's pending occurrence; `sample`: a simulated enrolment.
    pub source: &'static str,
}

/// Messages per UTC day and kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct PreviewCount {
    pub day: String,
    pub kind: String,
    pub count: u64,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Preview {
    pub messages: Vec<PreviewMessage>,
    pub counts: Vec<PreviewCount>,
    /// Simulated learners that the hold-back put in the control group.
    pub held_back: u64,
}

/// Simulated learners (`sample` and `enrolments` together) one preview may run: each is
/// planned in memory, so an unbounded count is an unbounded allocation.
pub const PREVIEW_LEARNERS_MAX: usize = 100_000;
/// Messages one preview may list (its counts include all).
pub const PREVIEW_LIMIT_MAX: usize = 10_000;
const PREVIEW_LIMIT_DEFAULT: usize = 1_000;

fn check_preview_size(request: &PreviewRequest, limit: usize) -> Result<(), Error> {
    let learners = request
        .enrolments
        .len()
        .saturating_add(request.sample as usize);
    let refuse = |reason: String| {
        Err(Error::Arguments {
            what: "preview".into(),
            reason,
        })
    };
    if learners > PREVIEW_LEARNERS_MAX {
        return refuse(format!(
            "sample {} and {} enrolments simulate {learners} learners; at most \
             {PREVIEW_LEARNERS_MAX} per preview (preview a sample of them)",
            request.sample,
            request.enrolments.len()
        ));
    }
    if limit > PREVIEW_LIMIT_MAX {
        return refuse(format!(
            "limit {limit} is above the most a preview lists, {PREVIEW_LIMIT_MAX} (the counts \
             cover every message)"
        ));
    }
    Ok(())
}

/// Keeps the first `limit` messages in time order.
fn keep_first(messages: &mut Vec<PreviewMessage>, limit: usize) {
    messages.sort_by(|a, b| (a.at, &a.schedule, &a.rule).cmp(&(b.at, &b.schedule, &b.rule)));
    messages.truncate(limit);
}

/// What to preview: a course's existing schedules and/or simulated enrolments.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PreviewRequest {
    pub course: String,
    #[schemars(with = "tickler_admin::schema::InstantText")]
    pub from: Timestamp,
    #[schemars(with = "tickler_admin::schema::InstantText")]
    pub to: Timestamp,
    /// Simulated enrolments (as if schedule creation were on), e.g. a sample of real learners.
    #[serde(default)]
    pub enrolments: Vec<Enrolment>,
    /// This many more simulated learners enrolling at `from` in the site's default zone (with
    /// `enrolments`, at most [`PREVIEW_LEARNERS_MAX`]).
    #[serde(default)]
    pub sample: u32,
    /// Include the course's existing schedules (default true).
    #[serde(default = "yes")]
    pub existing: bool,
    /// At most this many messages are listed (counts include all); default 1,000, at most
    /// [`PREVIEW_LIMIT_MAX`].
    #[serde(default)]
    pub limit: Option<usize>,
}

fn yes() -> bool {
    true
}

#[async_trait]
impl crate::LearnerSchedules for Engine {
    async fn set_site(&self, settings: &SiteSettings) -> Result<Applied, Error> {
        let id = learner::site_id(&settings.site)?;
        check_org_deadline_days(self, settings)?;
        if let Some(url) = &settings.lms_url
            && !(url.starts_with("https://") || url.starts_with("http://"))
        {
            // It is the href of every link in the schedules' emails.
            return Err(Error::Arguments {
                what: "site.set".into(),
                reason: format!("lms_url {url:?} must be an http:// or https:// address"),
            });
        }
        let mut attributes: BTreeMap<String, AttrValue> = BTreeMap::new();
        let text = |value: &Option<String>| value.clone().map(AttrValue::Text);
        for (name, value) in [
            ("name", text(&settings.name)),
            (
                "create_schedules",
                settings.create_schedules.map(AttrValue::Bool),
            ),
            (
                "hold_back_ratio",
                settings
                    .hold_back_ratio
                    .map(|r| AttrValue::Text(r.to_string())),
            ),
            ("deadline_days", settings.deadline_days.map(AttrValue::Int)),
            (
                "org_deadline_days",
                settings.org_deadline_days.as_ref().map(|days| {
                    AttrValue::Table(
                        days.iter()
                            .map(|(org, days)| {
                                BTreeMap::from([
                                    ("org".to_owned(), org.clone()),
                                    ("days".to_owned(), days.to_string()),
                                ])
                            })
                            .collect(),
                    )
                }),
            ),
            (
                "default_zone",
                settings
                    .default_zone
                    .map(|z| AttrValue::Text(z.name().to_owned())),
            ),
            ("delivery_time", text(&settings.delivery_time)),
            ("lms_url", text(&settings.lms_url)),
        ] {
            if let Some(value) = value {
                attributes.insert(name.to_owned(), value);
            }
        }
        for (name, on) in &settings.switches {
            attributes.insert(name.clone(), AttrValue::Bool(*on));
        }
        // Checked here, not at the first enrolment: a bad ratio or time is the caller's mistake.
        if let Some(ratio) = settings.hold_back_ratio
            && !(0.0..=1.0).contains(&ratio)
        {
            return Err(Error::Arguments {
                what: "site.set".into(),
                reason: format!("hold_back_ratio {ratio} is not between 0 and 1"),
            });
        }
        if let Some(time) = &settings.delivery_time {
            tickler_core::policy::LocalTime::parse(time).map_err(|err| Error::Arguments {
                what: "site.set".into(),
                reason: format!("delivery_time {time:?}: {err}"),
            })?;
        }
        self.upsert(
            &id,
            directory(SITE_POLICY, &id, BTreeMap::new(), attributes),
        )
        .await
    }

    async fn set_course(&self, settings: &CourseSettings) -> Result<CourseChange, Error> {
        let id = learner::course_id(&settings.course)?;
        let existing = self.directory_entity(&id);
        let site = match (&settings.site, &existing) {
            (Some(site), _) => site.clone(),
            (None, Some(course)) => text_attr(course, "site").unwrap_or_default(),
            (None, None) => {
                return Err(Error::Arguments {
                    what: "course.set".into(),
                    reason: format!("course {} is new: give its site", settings.course),
                });
            }
        };
        let site_entity = find_site(self, &site)?;
        let mut anchors = BTreeMap::new();
        for (name, at) in [
            ("start", settings.start),
            ("end", settings.end),
            ("verified_expiry", settings.verified_expiry),
        ] {
            if let Some(at) = at {
                anchors.insert(name.to_owned(), at);
            }
        }
        let mut attributes = BTreeMap::from([("site".to_owned(), AttrValue::Text(site))]);
        let text = |value: &Option<String>| value.clone().map(AttrValue::Text);
        for (name, value) in [
            ("name", text(&settings.name)),
            ("org", text(&settings.org)),
            ("pacing", text(&settings.pacing)),
            ("verified", settings.verified.map(AttrValue::Bool)),
            (
                "create_schedules",
                settings.create_schedules.map(AttrValue::Bool),
            ),
            ("deadline_days", settings.deadline_days.map(AttrValue::Int)),
            (
                "deadline_opt_out",
                settings.deadline_opt_out.map(AttrValue::Bool),
            ),
            (
                "highlights",
                settings.highlights.as_ref().map(|sections| {
                    AttrValue::Table(
                        sections
                            .iter()
                            .map(|h| {
                                BTreeMap::from([
                                    ("section".to_owned(), h.section.clone()),
                                    ("highlights".to_owned(), h.highlights.clone()),
                                ])
                            })
                            .collect(),
                    )
                }),
            ),
        ] {
            if let Some(value) = value {
                attributes.insert(name.to_owned(), value);
            }
        }
        // A change of an existing course reaches each of its schedules. That fan-out is recorded
        // as work to finish before the course is written, and cleared only once every schedule
        // took it: a schedule that fails, or a crash part way, leaves it to the next
        // `course.set` of the course or the next start, which converge (the change each
        // schedule needs is computed from its state and the course's, so a repeat is harmless).
        let fan_out = existing.is_some();
        if fan_out {
            mark_course_fan_out(self, &settings.course, true).await?;
        }
        let applied = self
            .upsert(&id, directory(COURSE_POLICY, &id, anchors, attributes))
            .await?;
        let mut change = CourseChange {
            version: applied.version,
            ..CourseChange::default()
        };
        if fan_out {
            fan_out_course(self, &settings.course, &site_entity, &mut change).await?;
        }
        Ok(change)
    }

    async fn enroll(&self, enrolment: &Enrolment) -> Result<Enrolled, Error> {
        let mut enrolment = enrolment.clone();
        enrolment.enrolled_at.get_or_insert_with(|| self.now());
        let enrolment = &enrolment;
        let course = find_course(self, &enrolment.course)?;
        let site_name = text_attr(&course, "site").unwrap_or_default();
        let site = find_site(self, &site_name)?;
        let opted_out = opted_out_all(self, &site_name, &enrolment.learner).await?;
        let seed = self.catalog().policy(SCHEDULE_POLICY)?.seed;
        match learner::decide_enrolment(&site, &course, enrolment, seed, opted_out)? {
            Decision::NoSchedule { reason } => Ok(Enrolled::NoSchedule { reason }),
            Decision::Schedule { id, create } => {
                let held_back = create
                    .attributes
                    .get("held_back")
                    .is_some_and(AttrValue::is_true);
                // Enrolling an enrolled learner again keeps the schedule they have, whether or
                // not this enrolment says the same.
                match self.create(&id, create).await {
                    Ok(applied) if applied.events.is_empty() => {
                        Ok(Enrolled::Exists { schedule: id })
                    }
                    Ok(_) => {
                        let pending = self.show(&id).await?.active.len();
                        Ok(Enrolled::Scheduled {
                            schedule: id,
                            held_back,
                            pending,
                        })
                    }
                    Err(Error::Rejected(Rejection::Conflict { .. })) => {
                        Ok(Enrolled::Exists { schedule: id })
                    }
                    Err(err) => Err(err),
                }
            }
        }
    }

    async fn unenroll(&self, course: &str, learner_key: &str) -> Result<Applied, Error> {
        let id = learner::schedule_id(course, learner_key)?;
        let applied = self
            .execute(
                &id,
                Command::Complete {
                    reason: UNENROLLED.to_owned(),
                },
            )
            .await?;
        let recipient = self.show(&id).await?.recipient;
        self.withdraw_from_digests(&id, &[recipient]).await?;
        Ok(applied)
    }

    async fn change_track(
        &self,
        course: &str,
        learner_key: &str,
        track: &str,
    ) -> Result<Applied, Error> {
        if !matches!(track, "audit" | "verified") {
            return Err(Error::Arguments {
                what: "track".into(),
                reason: format!("{track:?} is not audit or verified"),
            });
        }
        let id = learner::schedule_id(course, learner_key)?;
        let schedule = self.show(&id).await?;
        let course_entity = find_course(self, course)?;
        let site = find_site(self, &text_attr(&course_entity, "site").unwrap_or_default())?;
        let basis = learner::track_change_basis(&schedule, track, self.now());
        let anchors = learner::derived_anchors(&site, &course_entity, basis)?;
        let attributes = BTreeMap::from([
            ("track".to_owned(), Some(AttrValue::Text(track.to_owned()))),
            (
                "upgraded".to_owned(),
                Some(AttrValue::Bool(track == "verified")),
            ),
        ]);
        self.execute(
            &id,
            Command::Update {
                anchors,
                attributes,
            },
        )
        .await
    }

    async fn opt_out(
        &self,
        site: &str,
        learner_key: &str,
        email: &str,
        course: Option<&str>,
    ) -> Result<u64, Error> {
        find_site(self, site)?;
        let opted_out = Command::SetAttribute {
            name: "opted_out".into(),
            value: Some(AttrValue::Bool(true)),
        };
        if let Some(course) = course {
            let id = learner::schedule_id(course, learner_key)?;
            self.execute(&id, opted_out).await?;
            return Ok(1);
        }
        let learner_entity = learner::learner_id(site, learner_key)?;
        let attributes = BTreeMap::from([
            ("site".to_owned(), AttrValue::Text(site.to_owned())),
            (
                "learner".to_owned(),
                AttrValue::Text(learner_key.to_owned()),
            ),
            ("opted_out_all".to_owned(), AttrValue::Bool(true)),
        ]);
        self.upsert(
            &learner_entity,
            Upsert {
                policy: LEARNER_POLICY.to_owned(),
                recipient: email.to_owned(),
                anchors: BTreeMap::new(),
                attributes,
            },
        )
        .await?;
        // Every schedule of this learner at this site, found through the recipient index.
        let mut changed = 0;
        let mut scan = IndexScan::recipient(email);
        while let Some(page) = self.next_page(&mut scan)? {
            for id in page {
                if id.kind() != SCHEDULE_KIND {
                    continue;
                }
                let schedule = self.show(&id).await?;
                if schedule.is_completed()
                    || text_attr(&schedule, "site").as_deref() != Some(site)
                    || text_attr(&schedule, "learner").as_deref() != Some(learner_key)
                {
                    continue;
                }
                if !self
                    .execute(&id, opted_out.clone())
                    .await?
                    .events
                    .is_empty()
                {
                    changed += 1;
                }
            }
        }
        Ok(changed)
    }

    async fn preview(&self, request: &PreviewRequest) -> Result<Preview, Error> {
        if request.from >= request.to {
            return Err(Error::Arguments {
                what: "preview".into(),
                reason: format!("from {} is not before to {}", request.from, request.to),
            });
        }
        let limit = request.limit.unwrap_or(PREVIEW_LIMIT_DEFAULT);
        check_preview_size(request, limit)?;
        let course = find_course(self, &request.course)?;
        let site_name = text_attr(&course, "site").unwrap_or_default();
        let mut site = find_site(self, &site_name)?;
        let mut messages = Vec::new();
        let mut counts: BTreeMap<(String, String), u64> = BTreeMap::new();
        let mut in_range = |entity: &Entity, source: &'static str| {
            for reminder in entity.active.values() {
                if reminder.planned_at >= request.from && reminder.planned_at < request.to {
                    let day = reminder
                        .planned_at
                        .to_chrono()
                        .format("%Y-%m-%d")
                        .to_string();
                    *counts.entry((day, reminder.kind.clone())).or_default() += 1;
                    messages.push(PreviewMessage {
                        at: reminder.planned_at,
                        schedule: entity.id.clone(),
                        rule: reminder.occurrence.rule.to_string(),
                        kind: reminder.kind.clone(),
                        source,
                    });
                    // Only the first `limit` are listed: keep at most twice that many.
                    if messages.len() >= 2 * limit.max(1) {
                        keep_first(&mut messages, limit);
                    }
                }
            }
        };
        if request.existing {
            let mut scan = schedules_of(&request.course);
            while let Some(page) = self.next_page(&mut scan)? {
                for id in page {
                    in_range(&self.show(&id).await?, "schedule");
                }
            }
        }
        // Simulated as if schedule creation were on: the point is to see before turning it on.
        site.attributes
            .insert("create_schedules".into(), AttrValue::Bool(true));
        let mut course_on = course.clone();
        course_on
            .attributes
            .insert("create_schedules".into(), AttrValue::Bool(true));
        let policy = self.catalog().policy(SCHEDULE_POLICY)?.clone();
        let sample = (1..=request.sample).map(|n| Enrolment {
            learner: format!("sample-{n}"),
            email: format!("sample-{n}@example.org"),
            name: format!("Sample learner {n}"),
            course: request.course.clone(),
            enrolled_at: Some(request.from),
            zone: None,
            track: "audit".into(),
            delivery_time: None,
        });
        let mut held_back = 0;
        for mut enrolment in request.enrolments.iter().cloned().chain(sample) {
            enrolment.enrolled_at.get_or_insert(request.from);
            let decision =
                learner::decide_enrolment(&site, &course_on, &enrolment, policy.seed, false)?;
            let Decision::Schedule { id, create } = decision else {
                continue;
            };
            if create
                .attributes
                .get("held_back")
                .is_some_and(AttrValue::is_true)
            {
                held_back += 1;
            }
            let enrolled_at = enrolment.enrolled_at.unwrap_or(request.from);
            let entity = self.simulate_create(&id, create, enrolled_at)?;
            in_range(&entity, "sample");
        }
        keep_first(&mut messages, limit);
        Ok(Preview {
            messages,
            counts: counts
                .into_iter()
                .map(|((day, kind), count)| PreviewCount { day, kind, count })
                .collect(),
            held_back,
        })
    }

    async fn course_schedules(&self, course: &str, limit: usize) -> Result<Vec<EntityId>, Error> {
        self.collect_scan(schedules_of(course), limit)
    }
}

/// Brings every schedule of the course in line with it, past schedules that fail (they are
/// listed); the course's fan-out stays recorded until none does.
async fn fan_out_course(
    engine: &Engine,
    course_key: &str,
    site: &Entity,
    change: &mut CourseChange,
) -> Result<(), Error> {
    let course = find_course(engine, course_key)?;
    let mut scan = schedules_of(course_key);
    while let Some(page) = engine.next_page(&mut scan)? {
        for schedule_id in page {
            let updated = async {
                let schedule = engine.show(&schedule_id).await?;
                if schedule.is_completed() {
                    return Ok(None);
                }
                let (anchors, attributes) = learner::course_change(&schedule, site, &course)?;
                if anchors.is_empty() && attributes.is_empty() {
                    return Ok(Some(false));
                }
                let command = Command::Update {
                    anchors,
                    attributes: attributes.into_iter().map(|(k, v)| (k, Some(v))).collect(),
                };
                engine
                    .execute(&schedule_id, command)
                    .await
                    .map(|_| Some(true))
            };
            match updated.await {
                Ok(None) => change.schedules_ended += 1,
                Ok(Some(true)) => change.schedules_updated += 1,
                Ok(Some(false)) => {}
                Err(err) => {
                    tracing::warn!(schedule = %schedule_id, error = %err, "a course change did not reach a schedule; it will be retried");
                    change
                        .schedules_failed
                        .push(format!("{schedule_id}: {err}"));
                }
            }
        }
    }
    if change.schedules_failed.is_empty() {
        mark_course_fan_out(engine, course_key, false).await?;
    }
    Ok(())
}

/// Records (or clears) that a course's change has not reached all its schedules yet.
async fn mark_course_fan_out(
    engine: &Engine,
    course_key: &str,
    pending: bool,
) -> Result<(), Error> {
    let mut courses = pending_course_fan_outs(engine)?;
    let changed = if pending {
        courses.insert(course_key.to_owned())
    } else {
        courses.remove(course_key)
    };
    if changed {
        let bytes = serde_json::to_vec(&courses).expect("a set of strings encodes");
        engine.set_meta(COURSE_FAN_OUTS_META, &bytes).await?;
    }
    Ok(())
}

fn pending_course_fan_outs(engine: &Engine) -> Result<std::collections::BTreeSet<String>, Error> {
    Ok(match engine.meta(COURSE_FAN_OUTS_META)? {
        Some(bytes) => serde_json::from_slice(&bytes).map_err(|err| {
            Error::Internal(format!(
                "stored {COURSE_FAN_OUTS_META} is not readable: {err}"
            ))
        })?,
        None => Default::default(),
    })
}

/// At start-up: finishes the course changes a crash or a failing schedule left part way.
async fn finish_course_fan_outs(engine: &Engine) -> Result<(), Error> {
    for course_key in pending_course_fan_outs(engine)? {
        let site = match find_course(engine, &course_key)
            .and_then(|course| find_site(engine, &text_attr(&course, "site").unwrap_or_default()))
        {
            Ok(site) => site,
            Err(err) => {
                tracing::warn!(course = %course_key, error = %err, "cannot finish a course change");
                continue;
            }
        };
        let mut change = CourseChange::default();
        fan_out_course(engine, &course_key, &site, &mut change).await?;
        tracing::info!(
            course = %course_key,
            updated = change.schedules_updated,
            failed = change.schedules_failed.len(),
            "finished a course change left part way"
        );
    }
    Ok(())
}

/// An org's deadline days are bounded like the site's own `deadline_days` (the site
/// policy's `min` and `max`): the table that holds them has text cells the policy cannot
/// check.
fn check_org_deadline_days(engine: &Engine, settings: &SiteSettings) -> Result<(), Error> {
    let Some(orgs) = &settings.org_deadline_days else {
        return Ok(());
    };
    let policy = engine.catalog().policy(learner::SITE_POLICY)?;
    let Some(spec) = policy.attributes.get("deadline_days") else {
        return Ok(());
    };
    for (org, days) in orgs {
        if spec.min.is_some_and(|min| *days < min) || spec.max.is_some_and(|max| *days > max) {
            return Err(Error::Arguments {
                what: "site.set".into(),
                reason: format!(
                    "org_deadline_days for {org:?} is {days}: out of range, allowed from {} \
                     to {}",
                    spec.min.map_or("any".to_owned(), |m| m.to_string()),
                    spec.max.map_or("any".to_owned(), |m| m.to_string())
                ),
            });
        }
    }
    Ok(())
}

fn find_site(engine: &Engine, site: &str) -> Result<Entity, Error> {
    let id = learner::site_id(site)?;
    engine
        .directory_entity(&id)
        .ok_or_else(|| unknown_site(site))
}

fn find_course(engine: &Engine, course: &str) -> Result<Entity, Error> {
    let id = learner::course_id(course)?;
    engine
        .directory_entity(&id)
        .ok_or_else(|| unknown_course(course))
}

async fn opted_out_all(engine: &Engine, site: &str, learner_key: &str) -> Result<bool, Error> {
    let id = learner::learner_id(site, learner_key)?;
    // Most learners never opted out: a look at the store spares starting an actor for an
    // entity that does not exist.
    if !engine.exists(&id)? {
        return Ok(false);
    }
    match engine.show(&id).await {
        Ok(entity) => Ok(entity
            .attributes
            .get("opted_out_all")
            .is_some_and(AttrValue::is_true)),
        Err(Error::Rejected(Rejection::UnknownEntity { .. })) => Ok(false),
        Err(err) => Err(err),
    }
}

/// The schedules of a course, from the kind index: only theirs are read.
fn schedules_of(course: &str) -> IndexScan {
    IndexScan::kind_with_prefix(SCHEDULE_KIND, &learner::schedule_prefix(course))
}

/// A directory entity (a site, a course): it sends nothing, and its recipient only names it in
/// listings.
fn directory(
    policy: &str,
    id: &EntityId,
    anchors: BTreeMap<String, Timestamp>,
    attributes: BTreeMap<String, AttrValue>,
) -> Upsert {
    Upsert {
        policy: policy.to_owned(),
        recipient: id.to_string(),
        anchors,
        attributes,
    }
}
