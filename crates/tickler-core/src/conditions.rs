//! Conditions and audiences, evaluated against an entity's state: at plan time (`applies_when`,
//! with no clock) and at fire time (`conditions`, with `now`).

use crate::policy::{Audience, Condition, Rule};
use crate::{Entity, Timestamp, UnsentReason};

/// The first condition that is false, described; `None` when all hold. `now` is `None` at plan
/// time, where time-dependent conditions are refused by policy validation.
pub fn first_false(
    conditions: &[Condition],
    rule: &Rule,
    entity: &Entity,
    now: Option<Timestamp>,
) -> Option<String> {
    first_failure(conditions, rule, entity, now).map(|(_, why)| why)
}

/// Like [`first_false`], with the unsent reason the failure gives: "opted out" for an opt-out,
/// "condition false" otherwise.
pub fn first_failure(
    conditions: &[Condition],
    rule: &Rule,
    entity: &Entity,
    now: Option<Timestamp>,
) -> Option<(UnsentReason, String)> {
    conditions.iter().find_map(|condition| {
        let why = why_false(condition, rule, entity, now)?;
        let reason = match condition {
            Condition::NotOptedOut { .. } => UnsentReason::OptedOut,
            _ => UnsentReason::ConditionFalse,
        };
        Some((reason, why))
    })
}

fn why_false(
    condition: &Condition,
    rule: &Rule,
    entity: &Entity,
    now: Option<Timestamp>,
) -> Option<String> {
    let attribute = |name: &str| entity.attributes.get(name);
    match condition {
        Condition::AttributeNotTrue { name } => attribute(name)
            .is_some_and(|value| value.is_true())
            .then(|| format!("attribute {name} is true")),
        Condition::AttributeTrue { name } => (!attribute(name)
            .is_some_and(|value| value.is_true()))
        .then(|| format!("attribute {name} is not true")),
        Condition::AttributeNotFalse { name } => {
            matches!(attribute(name), Some(crate::AttrValue::Bool(false)))
                .then(|| format!("attribute {name} is false"))
        }
        Condition::AttributeEquals { name, value } => {
            (attribute(name) != Some(value)).then(|| format!("attribute {name} is not {value:?}"))
        }
        Condition::AttributeNotEmpty { name } => attribute(name)
            .is_none_or(|value| value.is_empty())
            .then(|| format!("attribute {name} is empty")),
        Condition::AnchorSet { anchor } => {
            (!entity.anchors.contains_key(anchor)).then(|| format!("{anchor} is not set"))
        }
        Condition::AnchorNotSet { anchor } => entity
            .anchors
            .get(anchor)
            .map(|at| format!("{anchor} is set ({at})")),
        Condition::AnchorInFuture { anchor } => match (entity.anchors.get(anchor), now) {
            (Some(at), Some(now)) if *at > now => None,
            (Some(at), _) => Some(format!("{anchor} {at} is not in the future")),
            (None, _) => Some(format!("{anchor} is not set")),
        },
        Condition::NotOptedOut { name } => attribute(name)
            .is_some_and(|value| value.is_true())
            .then(|| format!("the recipient opted out ({name} is true)")),

        Condition::AudienceNotEmpty => match audience(&rule.audience, entity) {
            Some(addresses) if addresses.is_empty() => Some(describe_empty(&rule.audience)),
            _ => None,
        },
    }
}

/// "no one in students is left: all are in respondents".
fn describe_empty(audience: &Audience) -> String {
    match (&audience.list, &audience.attribute) {
        (Some(list), _) => {
            let except: Vec<&str> = audience.except.iter().map(|e| e.list.as_str()).collect();
            if except.is_empty() {
                format!("the list {list} is empty")
            } else {
                format!(
                    "no one in {list} is left once {} are left out",
                    except.join(" and ")
                )
            }
        }
        (None, Some(attribute)) => format!("attribute {attribute} holds no address"),
        (None, None) => "no recipient".to_owned(),
    }
}

/// The addresses an occurrence of a rule with this audience goes to, sorted and without
/// duplicates; `None` for the entity's own recipient (a single delivery).
pub fn audience(audience: &Audience, entity: &Entity) -> Option<Vec<String>> {
    if audience.is_recipient() {
        return None;
    }
    let mut addresses: Vec<String> = match (&audience.attribute, &audience.list) {
        (Some(attribute), _) => match entity.attributes.get(attribute) {
            Some(crate::AttrValue::Text(address)) if !address.is_empty() => vec![address.clone()],
            _ => Vec::new(),
        },
        (None, Some(list)) => entity
            .attributes
            .get(list)
            .map(|value| value.as_list().to_vec())
            .unwrap_or_default(),
        (None, None) => unreachable!("checked by is_recipient"),
    };
    for except in &audience.except {
        let waived = except
            .unless
            .as_ref()
            .is_some_and(|flag| entity.attributes.get(flag).is_some_and(|v| v.is_true()));
        if waived {
            continue;
        }
        if let Some(left_out) = entity.attributes.get(&except.list) {
            addresses.retain(|address| !left_out.as_list().contains(address));
        }
    }
    addresses.sort();
    addresses.dedup();
    Some(addresses)
}
