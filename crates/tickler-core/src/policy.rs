//! Policies: named, versioned lists of rules, kept as data in `config/policies/*.toml`.
//!
//! A policy is parsed once, validated as a whole ([`Policy::validate`]) and then used read-only by
//! `decide`. Events record the decisions a policy led to (planned instants, outcomes), never the
//! policy itself, so editing a policy file never changes how an existing log replays.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveTime;
use serde::{Deserialize, Serialize};

pub use crate::rule::{Audience, AudienceFile, Repeat, Rule, RuleFile, Series, Step, Until};
use crate::{AttrValue, Error, RuleName, Span};

/// The most occurrences one series rule may plan for one entity: a bound on planning work and
/// state size, and a guard against `every = "1ms"` mistakes.
pub const SERIES_LEN_MAX: u32 = 1_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    pub name: String,
    pub version: u32,
    /// The entity kind this policy applies to: the `kind` in `kind/key` ids.
    pub entity_kind: String,
    #[serde(default)]
    pub description: String,
    /// The root of every random draw this policy makes (see `seed.rs`).
    #[serde(default)]
    pub seed: u64,
    /// Every anchor an entity of this policy may carry, with how it is normalised.
    #[serde(default)]
    pub anchors: BTreeMap<String, AnchorSpec>,
    /// Named starting points for an entity (Aperta's workflow templates): default anchors.
    #[serde(default)]
    pub workflows: BTreeMap<String, Workflow>,
    /// The workflow a create that names none starts from (e.g. `reviewer-report`). The one
    /// place this default is decided: the CLI, the protocol and an embedder all leave it out.
    #[serde(default)]
    pub default_workflow: Option<String>,
    /// The reasons an entity may be completed with; empty means any reason.
    #[serde(default)]
    pub completion_reasons: Vec<String>,
    /// The contact group this policy runs for: joining the group creates the entity, leaving it
    /// completes the entity (Ona's campaigns).
    #[serde(default)]
    pub group: Option<String>,
    /// No two occurrences of one entity are planned closer than this; a window draw that would
    /// be moves later in its window, or to the next day's.
    #[serde(default)]
    pub min_gap: Option<Span>,
    /// Attributes the policy knows, with their types and allowed values; others are refused.
    /// Empty: any attribute is accepted as given.
    #[serde(default)]
    pub attributes: BTreeMap<String, AttributeSpec>,
    /// Pairs of anchors in the order they must keep, e.g. `["start", "due"]`: a command that
    /// would put the second before the first is refused.
    #[serde(default)]
    pub anchor_order: Vec<[String; 2]>,
    /// The entity's phases, in order: each lasts until its anchor (the last has none).
    #[serde(default)]
    pub phases: Vec<PhaseSpec>,
    /// Entities of this policy are settings others read (a tenant, a programme): the engine keeps
    /// their latest state in memory, as the directory `decide` and templates consult.
    #[serde(default)]
    pub directory: bool,
    /// The directory entity whose switches govern this policy's entities, e.g. `tenant/{tenant}`
    /// (`{name}` is the entity's attribute `name`). Its attributes `enqueue` and
    /// `enqueue_<kind>` set to false plan nothing of that kind for entities created from then on
    /// (they are recorded in the new entity's `not_enqueued` list); `deliver` and
    /// `deliver_<kind>` set to false end occurrences as unsent "delivery disabled" when they fire.
    #[serde(default)]
    pub switches: Option<String>,

    pub rules: Vec<Rule>,
}

/// The attribute recording the kinds a kill switch kept from being planned for an entity.
pub const NOT_ENQUEUED: &str = "not_enqueued";

/// The entity a reference template such as `tenant/{tenant}` names for this entity: each `{name}`
/// is replaced by the entity's text attribute `name`. `None` when an attribute is missing or the
/// result is not a valid id.
pub fn resolve_ref(template: &str, entity: &crate::Entity) -> Option<crate::EntityId> {
    let mut resolved = String::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        resolved.push_str(&rest[..open]);
        let close = rest[open..].find('}')? + open;
        let name = &rest[open + 1..close];
        match entity.attributes.get(name)? {
            AttrValue::Text(value) => resolved.push_str(value),
            _ => return None,
        }
        rest = &rest[close + 1..];
    }
    resolved.push_str(rest);
    crate::EntityId::parse(&resolved).ok()
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorSpec {
    /// Creation is refused when the anchor has neither a value nor a workflow default.
    #[serde(default)]
    pub required: bool,
    #[serde(default)]
    pub round: Rounding,
    /// When set, the first value this anchor takes is also kept under this name and never moves
    /// (Aperta's `originally_due_at`).
    #[serde(default)]
    pub keep_original: Option<String>,
    /// Refuse a value earlier than the entity's creation (a due date before the task existed).
    #[serde(default)]
    pub not_before_creation: bool,
    /// When creation gives no value (and no workflow default applies), the anchor is the
    /// creation instant plus this span: a contact joining a group without a registration date
    /// starts its cadence now.
    #[serde(default)]
    pub default_offset: Option<Span>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rounding {
    #[default]
    None,
    /// Up to the next whole UTC hour (Aperta rounds due dates this way).
    UpHour,
}

/// What an attribute may hold.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributeSpec {
    #[serde(default)]
    pub kind: AttributeKind,
    /// The value when creation gives none.
    #[serde(default)]
    pub default: Option<AttrValue>,
    /// When not empty, the value must be one of these.
    #[serde(default)]
    pub one_of: Vec<AttrValue>,
    /// For a table: the fields its records may have (any, when empty). Templates are checked
    /// against a sample record with these fields.
    #[serde(default)]
    pub columns: Vec<String>,
    /// For an int: the smallest and largest value allowed (a day count far beyond any use
    /// would overflow the instants computed from it).
    #[serde(default)]
    pub min: Option<i64>,
    #[serde(default)]
    pub max: Option<i64>,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum AttributeKind {
    #[default]
    Any,
    Bool,
    Int,
    Text,
    List,
    /// Records with text fields (a programme's weekly highlights).
    Table,
    /// One recipient address: non-empty, no whitespace or control characters.
    Address,
    /// A list of recipient addresses.
    Addresses,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PhaseSpec {
    pub name: String,
    /// The phase lasts until this anchor (when set); the last phase has none.
    #[serde(default)]
    pub until: Option<String>,
}

/// Addresses left out of an audience: those of a list attribute, unless a flag attribute is true.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Except {
    pub list: String,
    #[serde(default)]
    pub unless: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Workflow {
    #[serde(default)]
    pub title: String,
    /// Anchors given no value at creation default to the creation instant plus this span.
    #[serde(default)]
    pub defaults: BTreeMap<String, Span>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChannelIf {
    pub attribute: String,
    pub channel: String,
}

/// The phase an entity is in at `now`: the first whose bound anchor is set and still ahead.
pub fn phase_at<'a>(
    policy: &'a Policy,
    entity: &crate::Entity,
    now: crate::Timestamp,
) -> Option<&'a str> {
    let mut last = None;
    for phase in &policy.phases {
        match &phase.until {
            Some(anchor) => match entity.anchors.get(anchor) {
                Some(until) if *until > now => return Some(&phase.name),
                Some(_) => last = Some(phase.name.as_str()),
                None => {}
            },
            None => return Some(&phase.name),
        }
    }
    last
}

/// A point defined relative to an anchor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnchorOffset {
    pub anchor: String,
    #[serde(default)]
    pub offset: Span,
}

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "mode", rename_all = "kebab-case", deny_unknown_fields)]
pub enum TimeOfDay {
    /// The instant the anchor and offset give.
    #[default]
    Exact,
    /// A fixed local time on the local date of the computed instant; with `next`, never before
    /// the computed instant (the next day's when that day's is already past).
    Local {
        time: LocalTime,
        #[serde(default)]
        next: bool,
        /// Spread across this span after the time by a seeded draw, so a cohort does not reach
        /// the channel in one burst. The draw is the same for every rule and day of an entity, or
        /// of all entities sharing the attribute `spread_by` (one recipient's entities send together).
        #[serde(default)]
        spread: Option<Span>,
        #[serde(default)]
        spread_by: Option<String>,
    },
    /// A seeded random minute within [start, end) on the local date of the computed instant.
    /// With `spread`, the rules naming the same spread group share the window's hours: every
    /// hour is used once, in a seeded order, before any hour repeats.
    Window {
        start: LocalTime,
        end: LocalTime,
        #[serde(default)]
        spread: Option<String>,
    },
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PerPeriod {
    pub times: u32,
    pub period: Span,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Pattern {
    pub period: u32,
    pub slots: Vec<u32>,
}

/// `HH:MM` local wall-clock time, from `00:00` to `24:00` (the end of the day, valid only as
/// the end of a window). Kept as minutes since midnight.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct LocalTime(u32);

const END_OF_DAY_MINUTE: u32 = 24 * 60;

impl LocalTime {
    pub fn parse(text: &str) -> Result<LocalTime, Error> {
        let invalid = || Error::InvalidPolicy {
            policy: String::new(),
            reason: format!(
                "invalid local time {text:?}: expected HH:MM from 00:00 to 24:00, e.g. 09:00"
            ),
        };
        let (hours, minutes) = text.split_once(':').ok_or_else(invalid)?;
        if hours.len() != 2 || minutes.len() != 2 {
            return Err(invalid());
        }
        let hours: u32 = hours.parse().map_err(|_| invalid())?;
        let minutes: u32 = minutes.parse().map_err(|_| invalid())?;
        let minute = hours * 60 + minutes;
        if minutes >= 60 || minute > END_OF_DAY_MINUTE {
            return Err(invalid());
        }
        Ok(LocalTime(minute))
    }

    /// Minutes since midnight, 0 to 1440.
    pub fn minute(self) -> u32 {
        self.0
    }

    /// `24:00`, the end of the day.
    pub fn is_end_of_day(self) -> bool {
        self.0 == END_OF_DAY_MINUTE
    }

    /// The wall-clock time; `None` for `24:00`.
    pub fn time(self) -> Option<NaiveTime> {
        NaiveTime::from_num_seconds_from_midnight_opt(self.0 * 60, 0)
            .filter(|_| !self.is_end_of_day())
    }
}

impl TryFrom<String> for LocalTime {
    type Error = Error;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        LocalTime::parse(&value)
    }
}

impl From<LocalTime> for String {
    fn from(time: LocalTime) -> String {
        format!("{:02}:{:02}", time.0 / 60, time.0 % 60)
    }
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Truncate {
    #[default]
    None,
    Hour,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum MovedIntoPast {
    /// Close it as unsent "not applicable": never send a reminder late because of an edit.
    #[default]
    NotApplicable,
    /// Send it now instead (for steps that must happen, such as closing a survey).
    FireNow,
}

/// A condition checked at fire time against the entity as it is then.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Condition {
    /// The attribute is absent or false (not responded, not upgraded, not opted out).
    AttributeNotTrue {
        name: String,
    },
    /// The attribute is true.
    AttributeTrue {
        name: String,
    },
    /// The anchor is set and still in the future (programme not ended). Fire time only.
    AnchorInFuture {
        anchor: String,
    },
    /// The attribute is absent or true (a notice not switched off).
    AttributeNotFalse {
        name: String,
    },
    /// The attribute holds exactly this value.
    AttributeEquals {
        name: String,
        value: AttrValue,
    },
    /// The attribute is set and is not an empty list or text.
    AttributeNotEmpty {
        name: String,
    },
    AnchorSet {
        anchor: String,
    },
    AnchorNotSet {
        anchor: String,
    },
    /// The rule's audience has at least one address (someone has not responded yet).
    AudienceNotEmpty,
    /// The attribute is absent or false; when it is true the occurrence ends as unsent "opted
    /// out" rather than "condition false".
    NotOptedOut {
        name: String,
    },
}

impl Policy {
    /// Parses a policy from TOML and validates it.
    pub fn from_toml(text: &str) -> Result<Policy, Error> {
        let policy: Policy = toml::from_str(text).map_err(|err| Error::InvalidPolicy {
            policy: String::new(),
            reason: err.to_string(),
        })?;
        policy.validate()?;
        Ok(policy)
    }

    pub fn rule(&self, name: &RuleName) -> Option<&Rule> {
        self.rules.iter().find(|rule| &rule.name == name)
    }

    /// Every workflow default names a known anchor, and the default workflow exists.
    fn validate_workflows(&self) -> Result<(), String> {
        for (workflow, spec) in &self.workflows {
            if let Some(anchor) = spec
                .defaults
                .keys()
                .find(|a| !self.anchors.contains_key(*a))
            {
                return Err(format!(
                    "workflow {workflow:?} sets a default for unknown anchor {anchor:?}"
                ));
            }
        }
        match &self.default_workflow {
            Some(workflow) if !self.workflows.contains_key(workflow) => {
                let known: Vec<&str> = self.workflows.keys().map(String::as_str).collect();
                Err(format!(
                    "default_workflow {workflow:?} is not one of its workflows ({})",
                    if known.is_empty() {
                        "it has none".to_owned()
                    } else {
                        known.join(", ")
                    }
                ))
            }
            _ => Ok(()),
        }
    }

    /// Checks the policy as a whole, so that a mistake is found when the file is loaded rather
    /// than when a reminder fires at 3 a.m.
    pub fn validate(&self) -> Result<(), Error> {
        let fail = |reason: String| Error::InvalidPolicy {
            policy: self.name.clone(),
            reason,
        };
        crate::EntityId::new(&self.entity_kind, "x").map_err(|_| {
            fail(format!(
                "entity_kind {:?} must be 1-32 of a-z, 0-9, '-', '_'",
                self.entity_kind
            ))
        })?;
        if self.name.is_empty() {
            return Err(fail("the policy has no name".into()));
        }
        if self.min_gap.is_some_and(|gap| gap.is_negative()) {
            return Err(fail("min_gap must not be negative".into()));
        }
        let anchor_known = |name: &str| self.anchors.contains_key(name);
        for (name, spec) in &self.anchors {
            if let Some(original) = &spec.keep_original
                && (original == name || self.anchors.contains_key(original))
            {
                return Err(fail(format!(
                    "anchor {name:?} keeps its original as {original:?}, which must be a new name"
                )));
            }
        }
        for pair in &self.anchor_order {
            if let Some(unknown) = pair.iter().find(|a| !anchor_known(a)) {
                return Err(fail(format!(
                    "anchor_order names unknown anchor {unknown:?}"
                )));
            }
        }
        for phase in &self.phases {
            if let Some(anchor) = &phase.until
                && !anchor_known(anchor)
            {
                return Err(fail(format!(
                    "phase {:?} lasts until unknown anchor {anchor:?}",
                    phase.name
                )));
            }
        }
        self.validate_workflows().map_err(fail)?;
        let mut names = BTreeSet::new();
        for rule in &self.rules {
            if !names.insert(&rule.name) {
                return Err(fail(format!(
                    "rule {:?}: the name is used twice",
                    rule.name.as_str()
                )));
            }
            self.check_rule(rule)
                .map_err(|reason| fail(format!("rule {:?}: {reason}", rule.name.as_str())))?;
        }
        if let Some(template) = &self.switches
            && (!template.contains('/')
                || template.matches('{').count() != template.matches('}').count())
        {
            return Err(fail(format!(
                "switches = {template:?} must look like kind/{{attribute}}"
            )));
        }
        self.check_attribute_specs().map_err(fail)
    }

    /// What is wrong with one rule in this policy (its anchors, its time of day, its bounds).
    fn check_rule(&self, rule: &Rule) -> Result<(), String> {
        let anchor_known = |name: &str| self.anchors.contains_key(name);
        if rule.kind.is_empty() || rule.template.is_empty() {
            return Err("kind and template must not be empty".into());
        }
        let mut anchors = vec![rule.anchor.as_str()];
        anchors.extend(rule.until().map(|u| u.bound.anchor.as_str()));
        anchors.extend(rule.not_after.iter().map(|u| u.anchor.as_str()));
        anchors.extend(rule.stale_after.iter().map(|s| s.anchor.as_str()));
        anchors.extend(rule.conditions.iter().filter_map(|c| match c {
            Condition::AnchorInFuture { anchor } => Some(anchor.as_str()),
            _ => None,
        }));
        if let Some(unknown) = anchors.into_iter().find(|a| !anchor_known(a)) {
            return Err(format!(
                "unknown anchor {unknown:?} (declare it under [anchors])"
            ));
        }
        match &rule.at {
            TimeOfDay::Local {
                spread: Some(spread),
                ..
            } if spread.as_millis() <= 0 || spread.as_millis() > 86_400_000 => {
                return Err(format!(
                    "spread = {spread} must be positive and at most a day"
                ));
            }
            TimeOfDay::Local { time, .. } if time.is_end_of_day() => {
                return Err("a local time of 24:00 is the end of the day; use 00:00".into());
            }
            TimeOfDay::Window { start, .. } if start.is_end_of_day() => {
                return Err("a window cannot start at 24:00".into());
            }
            _ => {}
        }
        if let TimeOfDay::Window { start, end, .. } = &rule.at
            && start >= end
        {
            return Err(format!(
                "window end {} is not after its start {}",
                String::from(*end),
                String::from(*start)
            ));
        }
        if let Some(name) = &rule.preferred_time
            && crate::RuleName::parse(name).is_err()
        {
            return Err(format!(
                "preferred_time names an invalid attribute {name:?}"
            ));
        }
        if let Some(bad) = rule
            .applies_when
            .iter()
            .find(|c| matches!(c, Condition::AnchorInFuture { .. }))
        {
            return Err(format!(
                "applies_when cannot use {bad:?}: plans do not depend on the clock (use it in conditions)"
            ));
        }
        if rule.min_lead.is_some_and(|lead| lead.is_negative()) {
            return Err("min_lead must not be negative".into());
        }
        if rule.grace.is_some_and(|grace| grace.is_negative()) {
            return Err("grace must not be negative".into());
        }
        Ok(())
    }

    /// What is wrong with the attribute specs (columns, bounds).
    fn check_attribute_specs(&self) -> Result<(), String> {
        for (name, spec) in &self.attributes {
            if !spec.columns.is_empty() && spec.kind != AttributeKind::Table {
                return Err(format!(
                    "attribute {name:?} has columns but is not kind = \"table\""
                ));
            }
            let bounded = spec.min.is_some() || spec.max.is_some();
            if bounded && spec.kind != AttributeKind::Int {
                return Err(format!(
                    "attribute {name:?} has min or max but is not kind = \"int\""
                ));
            }
            if let (Some(min), Some(max)) = (spec.min, spec.max)
                && min > max
            {
                return Err(format!("attribute {name:?} has min {min} above max {max}"));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MINIMAL: &str = r#"
        name = "due-date"
        version = 1
        entity_kind = "due"
        [anchors.due_at]
        [[rules]]
        name = "pre-due"
        kind = "reminder"
        anchor = "due_at"
        offset = "-2d"
        template = "due/pre-due"
    "#;

    #[test]
    fn a_window_may_end_at_midnight() {
        let text = MINIMAL.replace(
            "offset = \"-2d\"",
            "at = { mode = \"window\", start = \"18:00\", end = \"24:00\" }",
        );
        let policy = Policy::from_toml(&text).unwrap();
        assert!(matches!(policy.rules[0].at, TimeOfDay::Window { end, .. } if end.is_end_of_day()));
        assert_eq!(String::from(LocalTime::parse("24:00").unwrap()), "24:00");
    }

    #[test]
    fn a_minimal_policy_parses_with_defaults() {
        let policy = Policy::from_toml(MINIMAL).unwrap();
        let rule = &policy.rules[0];
        assert_eq!(rule.offset, Span::days(-2));
        assert_eq!(rule.at, TimeOfDay::Exact);
        assert_eq!(rule.if_moved_into_past, MovedIntoPast::NotApplicable);
    }

    #[test]
    fn mistakes_are_found_at_load_time_naming_the_rule_and_value() {
        for (change, expected) in [
            (
                ("anchor = \"due_at\"", "anchor = \"dew_at\""),
                "unknown anchor \"dew_at\"",
            ),
            (("offset = \"-2d\"", "offset = \"-2 days\""), "-2 days"),
            (
                ("offset = \"-2d\"", "every = \"0s\"\ncount = 2"),
                "must be positive",
            ),
            (
                ("offset = \"-2d\"", "every = \"1d\""),
                "needs `until`, `count` or `count_attribute`",
            ),
            (("offset = \"-2d\"", "colour = \"red\""), "colour"),
            (
                (
                    "offset = \"-2d\"",
                    "at = { mode = \"window\", start = \"21:00\", end = \"09:00\" }",
                ),
                "window end 09:00 is not after its start 21:00",
            ),
            (
                (
                    "offset = \"-2d\"",
                    "at = { mode = \"local\", time = \"25:00\" }",
                ),
                "25:00",
            ),
            (
                (
                    "offset = \"-2d\"",
                    "at = { mode = \"local\", time = \"24:00\" }",
                ),
                "use 00:00",
            ),
            (
                (
                    "offset = \"-2d\"",
                    "at = { mode = \"window\", start = \"18:00\", end = \"24:01\" }",
                ),
                "24:01",
            ),
            (
                (
                    "offset = \"-2d\"",
                    "at = { mode = \"window\", start = \"9:00\", end = \"21:00\" }",
                ),
                "9:00",
            ),
            (
                ("offset = \"-2d\"", "pattern = { period = 4, slots = [4] }"),
                "need `every` or `per_period`",
            ),
        ] {
            let text = MINIMAL.replace(change.0, change.1);
            let err = Policy::from_toml(&text).unwrap_err().to_string();
            assert!(err.contains(expected), "{change:?}: {err}");
        }
    }
}
