//! A policy's rule, typed: what its series, its audience and its bounds can be, with the
//! combinations the file format allows but that mean nothing (a `count` without a series, an
//! audience that is both an attribute and a list, `until_exclusive` without `until`) made
//! unrepresentable. The TOML format is [`RuleFile`]'s, unchanged; a rule is read through it and
//! refused there, naming the rule and what is wrong.

use serde::{Deserialize, Serialize};

use crate::policy::{
    AnchorOffset, ChannelIf, Condition, Except, MovedIntoPast, Pattern, PerPeriod, SERIES_LEN_MAX,
    TimeOfDay, Truncate,
};
use crate::{RuleName, Span};

/// One rule: when an occurrence is planned, what it sends, and what is checked when it fires.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RuleFile", into = "RuleFile")]
pub struct Rule {
    pub name: RuleName,
    /// The message kind: what kill switches, templates and digests group by.
    pub kind: String,
    /// The anchor the rule counts from.
    pub anchor: String,
    /// Signed offset from the anchor to the first occurrence.
    pub offset: Span,
    /// One occurrence, or a series from the first.
    pub series: Series,
    /// No occurrence is planned at or after this point (nothing after the programme has ended):
    /// moving it earlier takes later occurrences out of the plan.
    pub not_after: Option<AnchorOffset>,
    /// The time of day in the recipient's zone; the computed instant when absent.
    pub at: TimeOfDay,
    /// An attribute holding the recipient's preferred `HH:MM`: when set, it replaces the time of
    /// day of every occurrence planned from then on (a draw it replaces is still made, so
    /// clearing the preference brings back the same drawn times).
    pub preferred_time: Option<String>,
    /// Applied last: Aperta truncates its chasing events to the hour.
    pub truncate: Truncate,
    /// Checked when the occurrence fires; the first false one makes it unsent.
    pub conditions: Vec<Condition>,
    /// Never send at or after this point (a "due tomorrow" after the due date is wrong).
    pub stale_after: Option<AnchorOffset>,
    /// How late an occurrence may still be sent, e.g. after downtime; later ones are missed.
    pub grace: Option<Span>,
    /// What happens to a pending occurrence an anchor edit moves into the past.
    pub if_moved_into_past: MovedIntoPast,
    /// Checked when planning: a rule whose conditions are false plans nothing, and its pending
    /// occurrences end as unsent "condition false" (everyone responded; the notice is off).
    /// Time-dependent conditions are not allowed here (plans do not depend on the clock).
    pub applies_when: Vec<Condition>,
    /// Occurrences due sooner than this after the moment they are planned are not planned
    /// (Sakai: the first reminder at least 3 minutes ahead).
    pub min_lead: Option<Span>,
    /// Who an occurrence goes to.
    pub audience: Audience,
    /// Makes the rule a digest sender: it sends the items collected in this list attribute.
    /// When its attempt starts the items move to `sending` (new ones keep arriving in the list);
    /// when it ends, `sending` is cleared (sent) or returned to the list (not sent), and a new
    /// cycle starts if items are waiting.
    pub collects: Option<String>,
    /// The channel name; the engine's default channel when absent.
    pub channel: Option<String>,
    /// Another channel for entities whose attribute is true (an entity in consolidated mode
    /// sends through the digest channel instead).
    pub channel_if: Option<ChannelIf>,
    /// The template name under `config/templates/`.
    pub template: String,
}

/// How many occurrences a rule plans.
#[derive(Clone, Debug, PartialEq)]
pub enum Series {
    /// One, at the anchor plus the offset.
    Once,
    /// A series from the anchor plus the offset.
    Repeat(Repeat),
}

/// A series: its step, where it ends (at least one bound), and the slots it keeps.
#[derive(Clone, Debug, PartialEq)]
pub struct Repeat {
    pub step: Step,
    /// The series stops at this point.
    pub until: Option<Until>,
    /// At most this many occurrences.
    pub count: Option<u32>,
    /// At most as many occurrences as this integer attribute says (a programme's number of
    /// weeks with highlights); none when it is absent.
    pub count_attribute: Option<String>,
    /// Keeps only some positions of the series: slot `n` is planned when `n % period` is one of
    /// `slots`. Two rules over the same grid with complementary patterns share it (conversation A
    /// on three slots of four, B on the fourth), and keep the grid's slot numbers.
    pub pattern: Option<Pattern>,
}

/// The distance between a series' occurrences.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Step {
    /// One occurrence every span, aligned to the first.
    Every(Span),
    /// `times` occurrences per `period` (e.g. 3 a week), spread evenly over each period (on
    /// whole days when the period is whole days).
    PerPeriod(PerPeriod),
}

/// A series' end at a date.
#[derive(Clone, Debug, PartialEq)]
pub struct Until {
    pub bound: AnchorOffset,
    /// Stop strictly before the bound (Sakai: every reminder strictly before due); otherwise an
    /// occurrence exactly on it is planned.
    pub exclusive: bool,
}

/// Who an occurrence goes to.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub enum Audience {
    /// The entity's own recipient: a single delivery.
    #[default]
    Recipient,
    /// The address held by a text attribute (an owner): one delivery per address.
    Attribute(String),
    /// The addresses of a list attribute, but those of the `except` lists: a fan-out, one
    /// delivery per address, each with its own idempotency key.
    List { list: String, except: Vec<Except> },
}

impl Audience {
    /// The entity's own recipient (a single delivery).
    pub fn is_recipient(&self) -> bool {
        *self == Audience::Recipient
    }
}

impl Rule {
    /// The series, when the rule plans one.
    pub fn repeat(&self) -> Option<&Repeat> {
        match &self.series {
            Series::Once => None,
            Series::Repeat(repeat) => Some(repeat),
        }
    }

    /// The series' end at a date, when it has one.
    pub fn until(&self) -> Option<&Until> {
        self.repeat().and_then(|repeat| repeat.until.as_ref())
    }

    /// The channel this rule delivers through for this entity; `default` when the rule names none.
    pub fn channel_for(&self, entity: &crate::Entity, default: &str) -> String {
        if let Some(choice) = &self.channel_if
            && entity
                .attributes
                .get(&choice.attribute)
                .is_some_and(|v| v.is_true())
        {
            return choice.channel.clone();
        }
        self.channel.clone().unwrap_or_else(|| default.to_owned())
    }
}

/// A rule as the policy file writes it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFile {
    pub name: RuleName,
    pub kind: String,
    pub anchor: String,
    #[serde(default)]
    pub offset: Span,
    #[serde(default)]
    pub every: Option<Span>,
    #[serde(default)]
    pub until: Option<AnchorOffset>,
    #[serde(default)]
    pub count: Option<u32>,
    #[serde(default)]
    pub count_attribute: Option<String>,
    #[serde(default)]
    pub not_after: Option<AnchorOffset>,
    #[serde(default)]
    pub per_period: Option<PerPeriod>,
    #[serde(default)]
    pub pattern: Option<Pattern>,
    #[serde(default)]
    pub at: TimeOfDay,
    #[serde(default)]
    pub preferred_time: Option<String>,
    #[serde(default)]
    pub truncate: Truncate,
    #[serde(default)]
    pub conditions: Vec<Condition>,
    #[serde(default)]
    pub stale_after: Option<AnchorOffset>,
    #[serde(default)]
    pub grace: Option<Span>,
    #[serde(default)]
    pub if_moved_into_past: MovedIntoPast,
    #[serde(default)]
    pub applies_when: Vec<Condition>,
    #[serde(default)]
    pub until_exclusive: bool,
    #[serde(default)]
    pub min_lead: Option<Span>,
    #[serde(default)]
    pub audience: AudienceFile,
    #[serde(default)]
    pub collects: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub channel_if: Option<ChannelIf>,
    pub template: String,
}

/// An audience as the policy file writes it: `attribute`, or `list` with `except`, or neither.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AudienceFile {
    #[serde(default)]
    pub attribute: Option<String>,
    #[serde(default)]
    pub list: Option<String>,
    #[serde(default)]
    pub except: Vec<Except>,
}

impl TryFrom<RuleFile> for Rule {
    type Error = String;

    fn try_from(file: RuleFile) -> Result<Rule, String> {
        let name = file.name.as_str().to_owned();
        let fail = |reason: String| format!("rule {name:?}: {reason}");
        let series = series(&file).map_err(fail)?;
        let audience = audience(file.audience).map_err(fail)?;
        Ok(Rule {
            name: file.name,
            kind: file.kind,
            anchor: file.anchor,
            offset: file.offset,
            series,
            not_after: file.not_after,
            at: file.at,
            preferred_time: file.preferred_time,
            truncate: file.truncate,
            conditions: file.conditions,
            stale_after: file.stale_after,
            grace: file.grace,
            if_moved_into_past: file.if_moved_into_past,
            applies_when: file.applies_when,
            min_lead: file.min_lead,
            audience,
            collects: file.collects,
            channel: file.channel,
            channel_if: file.channel_if,
            template: file.template,
        })
    }
}

/// The series the file's `every`, `per_period`, `until`, `count`, `count_attribute`,
/// `pattern` and `until_exclusive` describe, or why they describe none.
fn series(file: &RuleFile) -> Result<Series, String> {
    let step = match (file.every, file.per_period) {
        (Some(_), Some(_)) => return Err("`every` and `per_period` exclude each other".into()),
        (Some(every), None) if every.as_millis() <= 0 => {
            return Err(format!("every = {every} must be positive"));
        }
        (Some(every), None) => Some(Step::Every(every)),
        (None, Some(per)) if per.times == 0 || per.period.as_millis() <= 0 => {
            return Err("per_period needs times >= 1 and a positive period".into());
        }
        (None, Some(per)) => Some(Step::PerPeriod(per)),
        (None, None) => None,
    };
    if file.until_exclusive && file.until.is_none() {
        return Err("until_exclusive needs until".into());
    }
    let Some(step) = step else {
        if file.until.is_some()
            || file.count.is_some()
            || file.pattern.is_some()
            || file.count_attribute.is_some()
        {
            return Err(
                "`until`, `count`, `count_attribute` and `pattern` need `every` or `per_period`"
                    .into(),
            );
        }
        return Ok(Series::Once);
    };
    if file.until.is_none() && file.count.is_none() && file.count_attribute.is_none() {
        return Err("a series needs `until`, `count` or `count_attribute`".into());
    }
    if file
        .count
        .is_some_and(|count| count == 0 || count > SERIES_LEN_MAX)
    {
        return Err(format!("count must be 1..={SERIES_LEN_MAX}"));
    }
    if let Some(pattern) = &file.pattern
        && (pattern.period == 0
            || pattern.slots.is_empty()
            || pattern.slots.iter().any(|s| *s >= pattern.period))
    {
        return Err(format!(
            "pattern slots {:?} must be non-empty and below its period {}",
            pattern.slots, pattern.period
        ));
    }
    Ok(Series::Repeat(Repeat {
        step,
        until: file.until.clone().map(|bound| Until {
            bound,
            exclusive: file.until_exclusive,
        }),
        count: file.count,
        count_attribute: file.count_attribute.clone(),
        pattern: file.pattern.clone(),
    }))
}

fn audience(file: AudienceFile) -> Result<Audience, String> {
    match (file.attribute, file.list) {
        (Some(_), Some(_)) => Err("an audience is an attribute or a list, not both".into()),
        (_, None) if !file.except.is_empty() => Err("audience.except needs audience.list".into()),
        (Some(attribute), None) => Ok(Audience::Attribute(attribute)),
        (None, Some(list)) => Ok(Audience::List {
            list,
            except: file.except,
        }),
        (None, None) => Ok(Audience::Recipient),
    }
}

impl From<Rule> for RuleFile {
    fn from(rule: Rule) -> RuleFile {
        let repeat = rule.repeat().cloned();
        let (every, per_period) = match repeat.as_ref().map(|r| r.step) {
            Some(Step::Every(every)) => (Some(every), None),
            Some(Step::PerPeriod(per)) => (None, Some(per)),
            None => (None, None),
        };
        let until = repeat.as_ref().and_then(|r| r.until.clone());
        let audience = match rule.audience {
            Audience::Recipient => AudienceFile::default(),
            Audience::Attribute(attribute) => AudienceFile {
                attribute: Some(attribute),
                ..AudienceFile::default()
            },
            Audience::List { list, except } => AudienceFile {
                attribute: None,
                list: Some(list),
                except,
            },
        };
        RuleFile {
            name: rule.name,
            kind: rule.kind,
            anchor: rule.anchor,
            offset: rule.offset,
            every,
            until_exclusive: until.as_ref().is_some_and(|u| u.exclusive),
            until: until.map(|u| u.bound),
            count: repeat.as_ref().and_then(|r| r.count),
            count_attribute: repeat.as_ref().and_then(|r| r.count_attribute.clone()),
            not_after: rule.not_after,
            per_period,
            pattern: repeat.and_then(|r| r.pattern),
            at: rule.at,
            preferred_time: rule.preferred_time,
            truncate: rule.truncate,
            conditions: rule.conditions,
            stale_after: rule.stale_after,
            grace: rule.grace,
            if_moved_into_past: rule.if_moved_into_past,
            applies_when: rule.applies_when,
            min_lead: rule.min_lead,
            audience,
            collects: rule.collects,
            channel: rule.channel,
            channel_if: rule.channel_if,
            template: rule.template,
        }
    }
}

#[cfg(test)]
mod tests {
    use crate::Policy;

    const POLICY: &str = r#"
        name = "p"
        version = 1
        entity_kind = "task"
        [anchors.due]
        [[rules]]
        name = "r"
        kind = "k"
        anchor = "due"
        template = "t"
    "#;

    fn with_rule_lines(lines: &str) -> String {
        POLICY.replace("template = \"t\"", &format!("template = \"t\"\n{lines}"))
    }

    #[test]
    fn combinations_that_mean_nothing_are_refused_naming_the_rule() {
        for (lines, expected) in [
            (
                "every = \"1d\"\nper_period = { times = 3, period = \"7d\" }\ncount = 3",
                "exclude each other",
            ),
            ("every = \"0s\"\ncount = 3", "must be positive"),
            (
                "per_period = { times = 0, period = \"7d\" }\ncount = 3",
                "times >= 1",
            ),
            ("every = \"1d\"", "a series needs"),
            ("count = 3", "need `every` or `per_period`"),
            (
                "count_attribute = \"weeks\"",
                "need `every` or `per_period`",
            ),
            (
                "until = { anchor = \"due\" }",
                "need `every` or `per_period`",
            ),
            ("every = \"1d\"\ncount = 0", "count must be"),
            (
                "every = \"1d\"\ncount = 3\npattern = { period = 2, slots = [2] }",
                "below its period",
            ),
            ("until_exclusive = true", "until_exclusive needs until"),
            (
                "audience = { attribute = \"owner\", list = \"people\" }",
                "not both",
            ),
            (
                "audience = { except = [{ list = \"done\" }] }",
                "needs audience.list",
            ),
        ] {
            let err = Policy::from_toml(&with_rule_lines(lines))
                .unwrap_err()
                .to_string();
            assert!(
                err.contains("rule \"r\"") && err.contains(expected),
                "{lines}: {err}"
            );
        }
    }

    #[test]
    fn a_rule_reads_into_its_types_and_writes_back_as_it_was_read() {
        let text = with_rule_lines(
            "every = \"1d\"\nuntil = { anchor = \"due\" }\nuntil_exclusive = true\n\
             audience = { list = \"people\", except = [{ list = \"done\" }] }",
        );
        let policy = Policy::from_toml(&text).unwrap();
        let rule = &policy.rules[0];
        let until = rule.until().expect("a series with an end");
        assert!(until.exclusive);
        assert_eq!(until.bound.anchor, "due");
        assert!(
            matches!(&rule.audience, super::Audience::List { list, except } if list == "people" && except.len() == 1)
        );
        let written = toml::to_string(&policy).unwrap();
        assert_eq!(Policy::from_toml(&written).unwrap(), policy);
    }
}
