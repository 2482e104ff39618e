//! The catalog: the policies an engine runs and the templates they name, checked together.

use std::collections::BTreeMap;
use std::sync::Arc;

use tickler_core::{
    ActiveReminder, EntityId, Event, OccurrenceId, Policy, Timestamp, Zone, evolve,
};

use crate::Error;
use crate::templates::Templates;

pub struct Catalog {
    policies: BTreeMap<String, Arc<Policy>>,
    templates: Templates,
}

impl Catalog {
    /// Checks that names are unique and that every rule's template exists and renders.
    pub fn new(policies: Vec<Policy>, templates: Templates) -> Result<Catalog, Error> {
        let mut by_name = BTreeMap::new();
        for policy in policies {
            policy.validate().map_err(|err| Error::Config {
                what: format!("policy {}", policy.name),
                reason: err.to_string(),
            })?;
            for rule in &policy.rules {
                check_template(&policy, rule, &templates)?;
            }
            let name = policy.name.clone();
            if by_name.insert(name.clone(), Arc::new(policy)).is_some() {
                return Err(Error::Config {
                    what: format!("policy {name}"),
                    reason: "two policy files use this name".into(),
                });
            }
        }
        Ok(Catalog {
            policies: by_name,
            templates,
        })
    }

    pub fn policy(&self, name: &str) -> Result<&Arc<Policy>, Error> {
        self.policies.get(name).ok_or_else(|| Error::UnknownPolicy {
            value: name.to_owned(),
            known: self.policies.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    pub fn policies(&self) -> impl Iterator<Item = &Arc<Policy>> {
        self.policies.values()
    }

    /// The policies that run for a contact group.
    pub fn policies_for_group(&self, group: &str) -> Vec<&Arc<Policy>> {
        self.policies
            .values()
            .filter(|policy| policy.group.as_deref() == Some(group))
            .collect()
    }

    /// Every group some policy runs for.
    pub fn groups(&self) -> Vec<&str> {
        let mut groups: Vec<&str> = self
            .policies
            .values()
            .filter_map(|p| p.group.as_deref())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        groups
    }

    pub fn templates(&self) -> &Templates {
        &self.templates
    }
}

/// Renders the rule's template for a sample entity with every anchor the policy declares set.
fn check_template(
    policy: &Policy,
    rule: &tickler_core::policy::Rule,
    templates: &Templates,
) -> Result<(), Error> {
    let fail = |reason: String| Error::Config {
        what: format!("policy {} rule {}", policy.name, rule.name),
        reason,
    };
    if !templates.contains(&rule.template) {
        return Err(fail(format!(
            "template {:?} not found: expected {0}.subject.j2 and {0}.text.j2 in the templates directory",
            rule.template
        )));
    }
    let sample_at = Timestamp::from_millis(1_767_225_600_000).expect("2026-01-01 is in range");
    let mut anchors = BTreeMap::new();
    for (name, spec) in &policy.anchors {
        anchors.insert(name.clone(), sample_at);
        if let Some(original) = &spec.keep_original {
            anchors.insert(original.clone(), sample_at);
        }
    }
    let id = EntityId::new(&policy.entity_kind, "sample").expect("validated kind");
    let created = Event::Created {
        policy: policy.name.clone(),
        policy_version: policy.version,
        workflow: policy.workflows.keys().next().cloned(),
        recipient: "sample@example.org".into(),
        zone: Zone::UTC,
        anchors,
        attributes: policy
            .attributes
            .iter()
            .map(|(name, spec)| (name.clone(), sample_value(spec)))
            .collect(),
    };
    let entity = evolve(None, &id, &created, sample_at, 1).expect("a Created event starts a log");
    let occurrence = OccurrenceId::new(rule.name.clone(), 0);
    let reminder = ActiveReminder::pending(&occurrence, 0, &rule.kind, sample_at, None);
    templates
        .render(&rule.template, &entity, &reminder, 1, "sample@example.org")
        .map(|_| ())
        .map_err(fail)
}

/// A value of the attribute's kind for the template check: its default, else a sample (a table
/// gets one record with every declared column), so a template reading an attribute the policy
/// declares renders, and one reading anything else fails.
fn sample_value(spec: &tickler_core::policy::AttributeSpec) -> tickler_core::AttrValue {
    use tickler_core::AttrValue;
    use tickler_core::policy::AttributeKind;
    if let Some(value) = spec
        .default
        .clone()
        .or_else(|| spec.one_of.first().cloned())
    {
        return value;
    }
    match spec.kind {
        AttributeKind::Bool => AttrValue::Bool(false),
        AttributeKind::Int => AttrValue::Int(1),
        AttributeKind::List | AttributeKind::Addresses => {
            AttrValue::List(vec!["sample@example.org".into()])
        }
        AttributeKind::Table => AttrValue::Table(vec![
            spec.columns
                .iter()
                .map(|column| (column.clone(), "sample".to_owned()))
                .collect(),
        ]),
        AttributeKind::Any | AttributeKind::Text | AttributeKind::Address => {
            AttrValue::Text("sample".into())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const POLICY: &str = r#"
        name = "p"
        version = 1
        entity_kind = "due"
        [anchors.due_at]
        [[rules]]
        name = "pre-due"
        kind = "due-soon"
        anchor = "due_at"
        template = "due/pre-due"
    "#;

    fn templates(subject: &str) -> Templates {
        Templates::from_sources(BTreeMap::from([
            ("due/pre-due.subject.j2".to_owned(), subject.to_owned()),
            (
                "due/pre-due.text.j2".to_owned(),
                "Due {{ entity.anchors.due_at.local }}".to_owned(),
            ),
        ]))
        .unwrap()
    }

    #[test]
    fn a_policy_naming_a_missing_template_is_refused_at_load_time() {
        let mut policy = Policy::from_toml(POLICY).unwrap();
        policy.rules[0].template = "due/pre-deu".into();
        let err = Catalog::new(vec![policy], templates("Reminder"))
            .err()
            .unwrap();
        assert!(
            err.to_string()
                .contains("template \"due/pre-deu\" not found"),
            "{err}"
        );
    }

    #[test]
    fn a_template_using_an_unknown_variable_is_refused_at_load_time() {
        let policy = Policy::from_toml(POLICY).unwrap();
        let err = Catalog::new(vec![policy], templates("Hi {{ entity.nmae }}"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("due/pre-due.subject.j2"), "{err}");
        let policy = Policy::from_toml(POLICY).unwrap();
        assert!(Catalog::new(vec![policy], templates("Reminder for {{ entity.key }}")).is_ok());
    }
}
