//! Conditions and audiences, evaluated against an entity's state: at plan time (`applies_when`,
//! with no clock) and at fire time (`conditions`, with `now`).

use crate::policy::{Audience, Condition, Rule};
use crate::{Cause, Entity, Timestamp, UnsentReason};

/// The first condition that is false, described; `None` when all hold. `now` is `None` at plan
/// time, where time-dependent conditions are refused by policy validation.
pub fn first_false(
    conditions: &[Condition],
    rule: &Rule,
    entity: &Entity,
    now: Option<Timestamp>,
) -> Option<String> {
    first_failure(conditions, rule, entity, now).map(|failure| failure.text)
}

/// Like [`first_false`], with the unsent reason the failure gives ("opted out" for an opt-out,
/// "condition false" otherwise) and the failure as fields.
pub fn first_failure(
    conditions: &[Condition],
    rule: &Rule,
    entity: &Entity,
    now: Option<Timestamp>,
) -> Option<Failure> {
    conditions.iter().find_map(|condition| {
        let text = why_false(condition, rule, entity, now)?;
        let reason = match condition {
            Condition::NotOptedOut { .. } => UnsentReason::OptedOut,
            _ => UnsentReason::ConditionFalse,
        };
        Some(Failure {
            reason,
            text,
            cause: cause_of(condition, rule, entity),
        })
    })
}

/// A condition found false.
pub struct Failure {
    pub reason: UnsentReason,
    /// In words: "attribute upgraded is true".
    pub text: String,
    pub cause: Cause,
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

/// The condition as fields: its type as policies spell it, what it reads, the value read.
fn cause_of(condition: &Condition, rule: &Rule, entity: &Entity) -> Cause {
    let attribute = |kind: &str, name: &str| Cause::Condition {
        condition: kind.to_owned(),
        subject: name.to_owned(),
        value: entity.attributes.get(name).map(|v| v.to_string()),
    };
    let anchor = |kind: &str, name: &str| Cause::Condition {
        condition: kind.to_owned(),
        subject: name.to_owned(),
        value: entity.anchors.get(name).map(|t| t.to_string()),
    };
    match condition {
        Condition::AttributeNotTrue { name } => attribute("attribute-not-true", name),
        Condition::AttributeTrue { name } => attribute("attribute-true", name),
        Condition::AttributeNotFalse { name } => attribute("attribute-not-false", name),
        Condition::AttributeEquals { name, .. } => attribute("attribute-equals", name),
        Condition::AttributeNotEmpty { name } => attribute("attribute-not-empty", name),
        Condition::NotOptedOut { name } => attribute("not-opted-out", name),
        Condition::AnchorSet { anchor: name } => anchor("anchor-set", name),
        Condition::AnchorNotSet { anchor: name } => anchor("anchor-not-set", name),
        Condition::AnchorInFuture { anchor: name } => anchor("anchor-in-future", name),
        Condition::AudienceNotEmpty => Cause::Condition {
            condition: "audience-not-empty".to_owned(),
            subject: describe_audience(&rule.audience),
            value: audience(&rule.audience, entity).map(|a| format!("{} address(es)", a.len())),
        },
    }
}

/// "invitees except answered, saved".
fn describe_audience(audience: &Audience) -> String {
    match audience {
        Audience::Recipient => "the recipient".to_owned(),
        Audience::Attribute(attribute) => attribute.clone(),
        Audience::List { list, except } if except.is_empty() => list.clone(),
        Audience::List { list, except } => format!("{list} except {}", except_lists(except, ", ")),
    }
}

/// "no one in invitees is left: all are in answered".
fn describe_empty(audience: &Audience) -> String {
    match audience {
        Audience::Recipient => "no recipient".to_owned(),
        Audience::Attribute(attribute) => format!("attribute {attribute} holds no address"),
        Audience::List { list, except } if except.is_empty() => {
            format!("the list {list} is empty")
        }
        Audience::List { list, except } => format!(
            "no one in {list} is left once {} are left out",
            except_lists(except, " and ")
        ),
    }
}

fn except_lists(except: &[crate::policy::Except], separator: &str) -> String {
    let lists: Vec<&str> = except.iter().map(|e| e.list.as_str()).collect();
    lists.join(separator)
}

/// The addresses an occurrence of a rule with this audience goes to, sorted and without
/// duplicates; `None` for the entity's own recipient (a single delivery).
pub fn audience(audience: &Audience, entity: &Entity) -> Option<Vec<String>> {
    let (mut addresses, except): (Vec<String>, &[crate::policy::Except]) = match audience {
        Audience::Recipient => return None,
        Audience::Attribute(attribute) => match entity.attributes.get(attribute) {
            Some(crate::AttrValue::Text(address)) if !address.is_empty() => {
                (vec![address.clone()], &[])
            }
            _ => (Vec::new(), &[]),
        },
        Audience::List { list, except } => (
            entity
                .attributes
                .get(list)
                .map(|value| value.as_list().to_vec())
                .unwrap_or_default(),
            except,
        ),
    };
    for except in except {
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
