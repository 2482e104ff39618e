//! Message templates: minijinja, loaded from files only (never compiled from request input).
//!
//! A template named `due/pre-due` is two files under the templates directory:
//! `due/pre-due.subject.j2` and `due/pre-due.text.j2`, and optionally a third,
//! `due/pre-due.html.j2`, the HTML part of an email (auto-escaped, unlike the other two). Undefined variables are errors, and every
//! template a policy names is rendered once against a sample entity when the catalog loads, so a
//! typo fails at start-up, not at 3 a.m.

use std::collections::{BTreeMap, HashMap};

use minijinja::value::Serde;
use minijinja::{Environment, UndefinedBehavior, Value};
use tickler_core::{ActiveReminder, Entity};

use crate::Error;
use crate::template_context::{Needs, RenderContext};

/// Bounds the work one render may do, so a hostile attribute value cannot make a template loop
/// for ever.
const RENDER_FUEL_MAX: u64 = 200_000;

pub const SUBJECT_SUFFIX: &str = ".subject.j2";
pub const TEXT_SUFFIX: &str = ".text.j2";
pub const HTML_SUFFIX: &str = ".html.j2";

pub struct Templates {
    env: Environment<'static>,
    names: Vec<String>,
    /// Per template name (with a subject file): its files and what they read.
    prepared: HashMap<String, Prepared>,
}

/// A template's file names, worked out once, and the context fields its files read.
struct Prepared {
    subject: String,
    text: String,
    html: Option<String>,
    needs: Needs,
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
        for (file, source) in &files {
            if let Some(name) = file.strip_suffix(SUBJECT_SUFFIX) {
                names.push(name.to_owned());
            }
            env.add_template_owned(file.clone(), source.clone())
                .map_err(|err| Error::Config {
                    what: format!("template {file}"),
                    reason: err.to_string(),
                })?;
        }
        let prepared = names
            .iter()
            .map(|name| (name.clone(), Prepared::new(&env, &files, name)))
            .collect();
        Ok(Templates {
            env,
            names,
            prepared,
        })
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
        let Some(prepared) = self.prepared.get(name) else {
            return Err(format!(
                "template {name}{SUBJECT_SUFFIX}: template not found"
            ));
        };
        let context = Value::from(Serde(RenderContext::new(
            &prepared.needs,
            entity,
            reminder,
            attempt,
            recipient,
        )));
        let render = |file: &str| {
            self.env
                .get_template(file)
                .and_then(|template| template.render(&context))
                .map_err(|err| format!("template {file}: {err:#}"))
        };
        let html = match &prepared.html {
            Some(file) => Some(render(file)?),
            None => None,
        };
        Ok(Rendered {
            subject: render(&prepared.subject)?.trim().to_owned(),
            body: render(&prepared.text)?,
            html,
        })
    }
}

impl Prepared {
    fn new(env: &Environment<'static>, sources: &BTreeMap<String, String>, name: &str) -> Prepared {
        let subject = format!("{name}{SUBJECT_SUFFIX}");
        let text = format!("{name}{TEXT_SUFFIX}");
        let html = format!("{name}{HTML_SUFFIX}");
        let html = sources.contains_key(&html).then_some(html);
        let files: Vec<&String> = [&subject, &text].into_iter().chain(&html).collect();
        let paths = files
            .iter()
            .filter_map(|file| env.get_template(file).ok())
            .flat_map(|template| template.undeclared_variables(true));
        let texts = files
            .iter()
            .filter_map(|file| sources.get(*file).map(String::as_str));
        Prepared {
            needs: Needs::of(paths, texts),
            subject,
            text,
            html,
        }
    }
}

#[cfg(test)]
mod tests {
    use tickler_core::{AttrValue, EntityId, Event, OccurrenceId, Timestamp, Zone, evolve};

    use super::*;

    /// Every part of the context a template can read, several of them twice.
    const TEXT: &str = "{{ entity.id }} {{ entity.kind }} {{ entity.key }} {{ entity.policy }} \
        {{ entity.workflow }} {{ entity.recipient }} {{ entity.zone }} \
        {{ entity.attributes.title | default(entity.key) }} \
        {% for name, value in entity.attributes | items %}{{ name }}={{ value }};{% endfor %} \
        {{ entity.anchors.due_at.local }} {{ entity.anchors.due_at.date }} \
        {{ occurrence.id }} {{ occurrence.rule }} {{ occurrence.index + 1 }} {{ occurrence.kind }} \
        {{ occurrence.planned_at.utc }} {{ occurrence.planned_at.date }} {{ occurrence.attempt }} \
        {{ recipient }}";

    fn templates(subject: &str, html: &str) -> Templates {
        Templates::from_sources(BTreeMap::from([
            ("t.subject.j2".to_owned(), subject.to_owned()),
            ("t.text.j2".to_owned(), TEXT.to_owned()),
            ("t.html.j2".to_owned(), html.to_owned()),
        ]))
        .unwrap()
    }

    fn sample() -> (Entity, ActiveReminder) {
        let at = Timestamp::from_millis(1_767_225_600_000).unwrap();
        let id = EntityId::new("due", "review-42").unwrap();
        let created = Event::Created {
            policy: "due-date".into(),
            policy_version: 1,
            workflow: Some("reviewer-report".into()),
            recipient: "r@example.org".into(),
            zone: Zone::parse("Europe/Paris").unwrap(),
            anchors: BTreeMap::from([("due_at".to_owned(), at)]),
            attributes: BTreeMap::from([
                ("title".to_owned(), AttrValue::Text("Review <42>".into())),
                ("pages".to_owned(), AttrValue::Int(12)),
            ]),
        };
        let entity = evolve(None, &id, &created, at, 1).unwrap();
        let occurrence = OccurrenceId::new("pre-due".parse().unwrap(), 0);
        let reminder = ActiveReminder::pending(&occurrence, 0, "due-soon", at, None);
        (entity, reminder)
    }

    #[test]
    fn a_message_reads_the_same_whatever_the_context_leaves_out() {
        let (entity, reminder) = sample();
        let render = |templates: Templates| {
            templates
                .render("t", &entity, &reminder, 2, "to@example.org")
                .unwrap()
        };
        // A template that includes another is given the whole context (see `template_context`);
        // the comment makes these three such templates without changing what they print.
        let lean = render(templates(
            "{{ entity.key }}",
            "<p>{{ entity.attributes.title }}</p>",
        ));
        let whole = render(templates(
            "{# include #}{{ entity.key }}",
            "<p>{{ entity.attributes.title }}</p>",
        ));
        assert_eq!(lean, whole);
        assert!(
            lean.body.contains("Thu 1 Jan 2026, 01:00 CET"),
            "{}",
            lean.body
        );
        assert!(
            lean.body.contains("pre-due#0 pre-due 1 due-soon"),
            "{}",
            lean.body
        );
        assert_eq!(lean.html.as_deref(), Some("<p>Review &lt;42&gt;</p>"));
    }

    #[test]
    fn a_field_no_template_reads_is_still_an_error_if_named_by_mistake() {
        let (entity, reminder) = sample();
        let templates = templates("{{ entity.kye }}", "");
        let err = templates
            .render("t", &entity, &reminder, 1, "to@example.org")
            .unwrap_err();
        assert!(err.contains("t.subject.j2"), "{err}");
    }
}
