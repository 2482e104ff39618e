//! Why an occurrence ended unsent, as fields a program can read: which date or attribute, its
//! value, when it changed, which grace or staleness cutoff, which condition and the value that
//! made it false. `decide` records a [`Cause`] (`Event::CauseRecorded`) right before the
//! `OccurrenceUnsent` it explains, whose `detail` is the same cause in words ([`Cause::describe`]),
//! so `explain` names the cause without consulting a policy that may have changed since.
//!
//! Persisted (postcard): variants and fields are only appended.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::{AttrValue, Span, Timestamp};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Cause {
    /// A date the rule depends on no longer lets the occurrence be: `value` (none: cleared),
    /// changed at `changed_at` (the instant of the command that changed it; none when it did not
    /// change in the command that ended the occurrence).
    Anchor {
        anchor: String,
        value: Option<Timestamp>,
        changed_at: Option<Timestamp>,
        bound: Bound,
        /// The occurrence's instant when it ended (for `MovedIntoPast`, where the change put it).
        occurrence_at: Timestamp,
    },
    /// An attribute the rule's plan depends on (a series' count, a kind kept out when the
    /// entity was created) no longer includes the occurrence.
    Attribute {
        name: String,
        value: Option<AttrValue>,
        changed_at: Option<Timestamp>,
    },
    /// Planned for `at`, which had already passed when it was planned.
    PassedWhenPlanned { at: Timestamp },
    /// Processed `late` after its instant, beyond its misfire grace.
    BeyondGrace {
        processed_at: Timestamp,
        late: Span,
        grace: Span,
    },
    /// Processed at or after its staleness cutoff, `anchor` (`value`) plus `offset`.
    PastStaleness {
        processed_at: Timestamp,
        anchor: String,
        value: Timestamp,
        offset: Span,
        cutoff: Timestamp,
    },
    /// A condition of the rule was false: its type (`attribute-equals`, `audience-not-empty`…),
    /// the attribute, anchor or audience it reads, and the value read (none: not set).
    Condition {
        condition: String,
        subject: String,
        value: Option<String>,
    },
    /// Its instant would fall after 9999-12-31T23:59:59.999Z, the last one tickler represents
    /// (a date near the end of the range plus the rule's offset or time of day).
    BeyondRange { anchor: String, value: Timestamp },
}

/// How a date bounds a rule's occurrences.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Bound {
    /// `not_after`: no occurrence at or after the date (a nudge after the programme's end).
    NotAfter,
    /// `until`: a series ends at the date (inclusive).
    Until,
    /// `until` with `until_exclusive`: a series ends strictly before the date (reminders
    /// strictly before the due date).
    UntilExclusive,
    /// The rule's own anchor moved, and the occurrence's instant with it into the past.
    MovedIntoPast,
    /// The date the rule needs was cleared.
    Cleared,
}

impl Cause {
    /// The cause in words, for an event's `detail` and for `explain`.
    pub fn describe(&self) -> String {
        match self {
            Cause::Anchor {
                anchor,
                value,
                changed_at,
                bound,
                occurrence_at,
            } => describe_anchor(anchor, *value, *changed_at, *bound, *occurrence_at),
            Cause::Attribute {
                name,
                value,
                changed_at,
            } => {
                let value = value
                    .as_ref()
                    .map_or("cleared".to_owned(), |v| format!("set to {v}"));
                let when = changed_at.map(|t| format!(" on {t}")).unwrap_or_default();
                format!(
                    "attribute {name} {value}{when} leaves this occurrence out of its rule's plan"
                )
            }
            Cause::PassedWhenPlanned { at } => {
                format!("planned for {at}, which had passed when it was planned")
            }
            Cause::BeyondGrace {
                processed_at,
                late,
                grace,
            } => format!("processed at {processed_at}, {late} late, beyond its grace of {grace}"),
            Cause::PastStaleness {
                processed_at,
                anchor,
                value,
                offset,
                cutoff,
            } => {
                let offset = match offset.as_millis() {
                    0 => String::new(),
                    ms if ms < 0 => format!(" {offset}"),
                    _ => format!(" +{offset}"),
                };
                format!(
                    "processed at {processed_at}, past its staleness cutoff {cutoff} \
                     ({anchor} {value}{offset})"
                )
            }
            Cause::BeyondRange { anchor, value } => format!(
                "{anchor} {value} puts this occurrence after 9999-12-31T23:59:59.999Z, the last \
                 instant tickler represents"
            ),
            Cause::Condition {
                condition,
                subject,
                value,
            } => {
                let value = value.as_deref().unwrap_or("not set");
                format!("condition {condition} on {subject} is false ({subject}: {value})")
            }
        }
    }
}

fn describe_anchor(
    anchor: &str,
    value: Option<Timestamp>,
    changed_at: Option<Timestamp>,
    bound: Bound,
    occurrence_at: Timestamp,
) -> String {
    let change = match (value, changed_at) {
        (Some(value), Some(on)) => format!("{anchor} moved to {value} on {on}"),
        (Some(value), None) => format!("{anchor} is {value}"),
        (None, Some(on)) => format!("{anchor} was cleared on {on}"),
        (None, None) => format!("{anchor} is not set"),
    };
    let effect = match bound {
        Bound::NotAfter => format!(
            "before this occurrence's instant {occurrence_at} (none may be at or after {anchor})"
        ),
        Bound::Until => {
            format!("and the series ends at {anchor}, before this occurrence ({occurrence_at})")
        }
        Bound::UntilExclusive => format!(
            "and the series runs strictly before {anchor}, which this occurrence ({occurrence_at}) no longer does"
        ),
        Bound::MovedIntoPast => {
            format!("which put this occurrence at {occurrence_at}, already past")
        }
        Bound::Cleared => "and the rule needs it".to_owned(),
    };
    format!("{change}, {effect}")
}

impl fmt::Display for Cause {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.describe())
    }
}
