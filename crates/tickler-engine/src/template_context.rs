//! What a template sees, built only as far as the template looks.
//!
//! Building the whole context for every message was most of a message's cost: every anchor
//! formatted three ways in the entity's zone, every attribute converted, each string copied into
//! minijinja's values, for templates that mostly read two or three fields. minijinja lists the
//! variables a template names (`undeclared_variables`, attribute chains included: `entity.key`,
//! `entity.anchors.due.local`); [`Needs`] keeps that list for a template's files, and the context
//! holds a field only if some listed path reaches it. A template that names a whole object
//! (`{{ entity }}`), or that includes, imports or extends another template (whose variables the
//! list does not show), gets everything, as before.

use std::collections::BTreeMap;

use serde::Serialize;
use tickler_core::{ActiveReminder, AttrValue, Entity, Timestamp, Zone};

/// The variable paths one template's files read, split at the dots.
#[derive(Clone, Debug, Default)]
pub(crate) struct Needs {
    paths: Vec<Vec<String>>,
    everything: bool,
}

impl Needs {
    /// From the paths minijinja lists for each file and the files' sources.
    pub(crate) fn of<'a>(
        paths: impl IntoIterator<Item = String>,
        sources: impl IntoIterator<Item = &'a str>,
    ) -> Needs {
        let opaque = sources.into_iter().any(|source| {
            ["include", "import", "extends"]
                .iter()
                .any(|tag| source.contains(tag))
        });
        Needs {
            paths: paths
                .into_iter()
                .map(|path| path.split('.').map(str::to_owned).collect())
                .collect(),
            everything: opaque,
        }
    }

    /// Whether the field at `path` is read: some listed path runs through it (reads it or
    /// something inside it), or stops above it (reads the object holding it whole).
    fn wants(&self, path: &[&str]) -> bool {
        self.everything
            || self.paths.iter().any(|listed| {
                listed
                    .iter()
                    .zip(path)
                    .all(|(listed, wanted)| listed == wanted)
            })
    }
}

/// The context of one message: see the module documentation.
#[derive(Serialize)]
pub(crate) struct RenderContext<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    entity: Option<EntityContext<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    occurrence: Option<OccurrenceContext<'a>>,
    /// Who this message goes to: the entity's recipient, or one address of the rule's audience.
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<&'a str>,
}

#[derive(Serialize)]
struct EntityContext<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    key: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    policy: Option<&'a str>,
    /// `None` inside: the entity has no workflow (templates see `none`).
    #[serde(skip_serializing_if = "Option::is_none")]
    workflow: Option<Option<&'a str>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    recipient: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attributes: Option<&'a BTreeMap<String, AttrValue>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    anchors: Option<BTreeMap<&'a str, InstantContext>>,
}

#[derive(Serialize)]
struct OccurrenceContext<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    index: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    planned_at: Option<InstantContext>,
    #[serde(skip_serializing_if = "Option::is_none")]
    attempt: Option<u32>,
}

/// An instant as templates want it: UTC for machines, local for people.
#[derive(Serialize)]
struct InstantContext {
    #[serde(skip_serializing_if = "Option::is_none")]
    utc: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    local: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    date: Option<String>,
}

impl InstantContext {
    /// The parts of the instant at `path` that `needs` reads; `None` if it reads none.
    fn new(at: Timestamp, zone: Zone, needs: &Needs, path: &[&str]) -> Option<InstantContext> {
        let part = |name: &str| {
            let mut full = path.to_vec();
            full.push(name);
            needs.wants(&full)
        };
        let (utc, local, date) = (part("utc"), part("local"), part("date"));
        if !(utc || local || date) {
            return None;
        }
        let in_zone = (local || date).then(|| at.to_chrono().with_timezone(&zone.tz()));
        let format = |pattern: &str| in_zone.map(|t| t.format(pattern).to_string());
        Some(InstantContext {
            utc: utc.then(|| at.to_string()),
            local: local.then(|| format("%a %-d %b %Y, %H:%M %Z")).flatten(),
            date: date.then(|| format("%-d %B %Y")).flatten(),
        })
    }
}

/// `value` if `needs` reads the field at `path`.
fn when<T>(needs: &Needs, path: &[&str], value: impl FnOnce() -> T) -> Option<T> {
    needs.wants(path).then(value)
}

impl<'a> RenderContext<'a> {
    pub(crate) fn new(
        needs: &Needs,
        entity: &'a Entity,
        reminder: &'a ActiveReminder,
        attempt: u32,
        recipient: &'a str,
    ) -> RenderContext<'a> {
        RenderContext {
            recipient: when(needs, &["recipient"], || recipient),
            entity: when(needs, &["entity"], || EntityContext::new(needs, entity)),
            occurrence: when(needs, &["occurrence"], || {
                OccurrenceContext::new(needs, entity.zone, reminder, attempt)
            }),
        }
    }
}

impl<'a> EntityContext<'a> {
    fn new(needs: &Needs, entity: &'a Entity) -> EntityContext<'a> {
        let field = |name: &'static str| ["entity", name];
        let anchors = when(needs, &field("anchors"), || {
            entity
                .anchors
                .iter()
                .filter_map(|(name, at)| {
                    let path = ["entity", "anchors", name.as_str()];
                    InstantContext::new(*at, entity.zone, needs, &path)
                        .map(|instant| (name.as_str(), instant))
                })
                .collect()
        });
        EntityContext {
            id: when(needs, &field("id"), || entity.id.as_str()),
            kind: when(needs, &field("kind"), || entity.id.kind()),
            key: when(needs, &field("key"), || entity.id.key()),
            policy: when(needs, &field("policy"), || entity.policy.as_str()),
            workflow: when(needs, &field("workflow"), || entity.workflow.as_deref()),
            recipient: when(needs, &field("recipient"), || entity.recipient.as_str()),
            zone: when(needs, &field("zone"), || entity.zone.name()),
            attributes: when(needs, &field("attributes"), || &entity.attributes),
            anchors,
        }
    }
}

impl<'a> OccurrenceContext<'a> {
    fn new(
        needs: &Needs,
        zone: Zone,
        reminder: &'a ActiveReminder,
        attempt: u32,
    ) -> OccurrenceContext<'a> {
        let field = |name: &'static str| ["occurrence", name];
        let occurrence = &reminder.occurrence;
        OccurrenceContext {
            id: when(needs, &field("id"), || occurrence.to_string()),
            rule: when(needs, &field("rule"), || occurrence.rule.as_str()),
            index: when(needs, &field("index"), || occurrence.index),
            kind: when(needs, &field("kind"), || reminder.kind.as_str()),
            planned_at: InstantContext::new(reminder.planned_at, zone, needs, &field("planned_at")),
            attempt: when(needs, &field("attempt"), || attempt),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn needs(paths: &[&str]) -> Needs {
        Needs::of(paths.iter().map(|p| (*p).to_owned()), ["{{ x }}"])
    }

    #[test]
    fn a_field_is_wanted_when_a_path_reads_it_inside_it_or_above_it() {
        let needs = needs(&["entity.key", "entity.anchors.due.local", "occurrence"]);
        assert!(needs.wants(&["entity", "key"]));
        assert!(needs.wants(&["entity", "anchors"]));
        assert!(needs.wants(&["entity", "anchors", "due", "local"]));
        assert!(needs.wants(&["occurrence", "planned_at", "date"]));
        assert!(!needs.wants(&["entity", "id"]));
        assert!(!needs.wants(&["entity", "anchors", "due", "utc"]));
        assert!(!needs.wants(&["entity", "anchors", "start"]));
        assert!(!needs.wants(&["recipient"]));
    }

    #[test]
    fn a_template_that_includes_another_gets_everything() {
        let needs = Needs::of(Vec::new(), ["{% include 'footer' %}"]);
        assert!(needs.wants(&["entity", "anchors", "due", "utc"]));
    }
}
