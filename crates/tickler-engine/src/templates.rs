//! Message templates: minijinja, loaded from files only (never compiled from request input).
//!
//! A template named `due/pre-due` is two files under the templates directory:
//! `due/pre-due.subject.j2` and `due/pre-due.text.j2`, and optionally a third,
//! `due/pre-due.html.j2`, the HTML part of an email (auto-escaped, unlike the other two). Undefined variables are errors, and every
//! template a policy names is rendered once against a sample entity when the catalog loads, so a
//! typo fails at start-up, not at 3 a.m.

use std::collections::BTreeMap;

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use serde::Serialize;
use tickler_core::{ActiveReminder, AttrValue, Entity, Timestamp, Zone};

use crate::Error;

/// Bounds the work one render may do, so a hostile attribute value cannot make a template loop
/// for ever.
const RENDER_FUEL_MAX: u64 = 200_000;

pub const SUBJECT_SUFFIX: &str = ".subject.j2";
pub const TEXT_SUFFIX: &str = ".text.j2";
pub const HTML_SUFFIX: &str = ".html.j2";

pub struct Templates {
    env: Environment<'static>,
    names: Vec<String>,
}

/// A rendered message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub body: String,
    /// The HTML part, when the template has one.
    pub html: Option<String>,
}

impl Templates {
    /// Builds templates from (file name relative to the templates dir, source) pairs.
    pub fn from_sources(files: BTreeMap<String, String>) -> Result<Templates, Error> {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env.set_fuel(Some(RENDER_FUEL_MAX));
        // Only the HTML part is escaped: subjects and text bodies are plain text, where `&amp;`
        // would be a visible mistake.
        env.set_auto_escape_callback(|file| {
            if file.ends_with(HTML_SUFFIX) {
                minijinja::AutoEscape::Html
            } else {
                minijinja::AutoEscape::None
            }
        });
        let mut names = Vec::new();
        for (file, source) in files {
            if let Some(name) = file.strip_suffix(SUBJECT_SUFFIX) {
                names.push(name.to_owned());
            }
            env.add_template_owned(file.clone(), source)
                .map_err(|err| Error::Config {
                    what: format!("template {file}"),
                    reason: err.to_string(),
                })?;
        }
        Ok(Templates { env, names })
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn contains(&self, name: &str) -> bool {
        self.env
            .get_template(&format!("{name}{SUBJECT_SUFFIX}"))
            .is_ok()
            && self
                .env
                .get_template(&format!("{name}{TEXT_SUFFIX}"))
                .is_ok()
    }

    /// Renders template `name` for one recipient of an occurrence.
    pub fn render(
        &self,
        name: &str,
        entity: &Entity,
        reminder: &ActiveReminder,
        attempt: u32,
        recipient: &str,
    ) -> Result<Rendered, String> {
        let context = Value::from(Serde(RenderContext::new(
            entity, reminder, attempt, recipient,
        )));
        let render = |suffix: &str| {
            let file = format!("{name}{suffix}");
            self.env
                .get_template(&file)
                .and_then(|template| template.render(&context))
                .map_err(|err| format!("template {file}: {err:#}"))
        };
        let html_file = format!("{name}{HTML_SUFFIX}");
        let html = match self.env.get_template(&html_file) {
            Ok(_) => Some(render(HTML_SUFFIX)?),
            Err(_) => None,
        };
        Ok(Rendered {
            subject: render(SUBJECT_SUFFIX)?.trim().to_owned(),
            body: render(TEXT_SUFFIX)?,
            html,
        })
    }
}

/// What a template sees.
#[derive(Serialize)]
struct RenderContext<'a> {
    entity: EntityContext<'a>,
    occurrence: OccurrenceContext<'a>,
    /// Who this message goes to: the entity's recipient, or one address of the rule's audience.
    recipient: &'a str,
}

#[derive(Serialize)]
struct EntityContext<'a> {
    id: &'a str,
    kind: &'a str,
    key: &'a str,
    policy: &'a str,
    workflow: Option<&'a str>,
    recipient: &'a str,
    zone: &'a str,
    attributes: &'a BTreeMap<String, AttrValue>,
    anchors: BTreeMap<&'a str, InstantContext>,
}

#[derive(Serialize)]
struct OccurrenceContext<'a> {
    id: String,
    rule: &'a str,
    index: u32,
    kind: &'a str,
    planned_at: InstantContext,
    attempt: u32,
}

/// An instant as templates want it: UTC for machines, local for people.
#[derive(Serialize)]
struct InstantContext {
    utc: String,
    local: String,
    date: String,
}

impl InstantContext {
    fn new(at: Timestamp, zone: Zone) -> InstantContext {
        let local = at.to_chrono().with_timezone(&zone.tz());
        InstantContext {
            utc: at.to_string(),
            local: local.format("%a %-d %b %Y, %H:%M %Z").to_string(),
            date: local.format("%-d %B %Y").to_string(),
        }
    }
}

impl<'a> RenderContext<'a> {
    fn new(
        entity: &'a Entity,
        reminder: &'a ActiveReminder,
        attempt: u32,
        recipient: &'a str,
    ) -> RenderContext<'a> {
        RenderContext {
            recipient,
            entity: EntityContext {
                id: entity.id.as_str(),
                kind: entity.id.kind(),
                key: entity.id.key(),
                policy: &entity.policy,
                workflow: entity.workflow.as_deref(),
                recipient: &entity.recipient,
                zone: entity.zone.name(),
                attributes: &entity.attributes,
                anchors: entity
                    .anchors
                    .iter()
                    .map(|(name, at)| (name.as_str(), InstantContext::new(*at, entity.zone)))
                    .collect(),
            },
            occurrence: OccurrenceContext {
                id: reminder.occurrence.to_string(),
                rule: reminder.occurrence.rule.as_str(),
                index: reminder.occurrence.index,
                kind: &reminder.kind,
                planned_at: InstantContext::new(reminder.planned_at, entity.zone),
                attempt,
            },
        }
    }
}
