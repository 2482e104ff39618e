//! A create sent again. The same request (a client retrying after a timeout) succeeds with
//! nothing written; different content is a conflict naming the first field that differs, so a
//! client never gets `already_exists` for its own request and never mistakes another's entity
//! for its own.
//!
//! The request is compared with the entity's `Created` event, not with its state now: a due date
//! moved since is still the same creation, and a retry of that creation must not look like a
//! change. The request is decided again as of the creation instant, so defaults computed from
//! "now" (a workflow's length, an anchor's default offset) come out as they did the first time.

use std::collections::BTreeMap;

use crate::command::{CreateEntity, Rejection};
use crate::context::Context;
use crate::decide::decide;
use crate::event::Event;
use crate::policy::NOT_ENQUEUED;
use crate::{AttrValue, Command, EntityId, Timestamp};

/// Whether `create` repeats the creation recorded as `created` (the entity's first event, written
/// at `created_at`): `Ok` if it does, `Rejection::Conflict` naming the first differing field if
/// not, or the rejection the request earns on its own (an unknown workflow, say).
pub fn check_repeated_create(
    id: &EntityId,
    created: &Event,
    created_at: Timestamp,
    create: &CreateEntity,
    ctx: &Context,
) -> Result<(), Rejection> {
    let Event::Created {
        policy: recorded_policy,
        ..
    } = created
    else {
        return Err(Rejection::AlreadyExists { entity: id.clone() });
    };
    if *recorded_policy != create.policy {
        return Err(conflict(id, "policy", recorded_policy, &create.policy));
    }
    let then = Context {
        now: created_at,
        ..*ctx
    };
    let decided = decide(None, id, &Command::Create(create.clone()), &then)?;
    match decided.first() {
        Some(again) => first_difference(created, again)
            .map_or(Ok(()), |(field, recorded, given)| {
                Err(conflict(id, &field, &recorded, &given))
            }),
        None => Err(Rejection::AlreadyExists { entity: id.clone() }),
    }
}

fn conflict(id: &EntityId, field: &str, recorded: &str, given: &str) -> Rejection {
    Rejection::Conflict {
        entity: id.clone(),
        field: field.to_owned(),
        recorded: recorded.to_owned(),
        given: given.to_owned(),
    }
}

/// The first field in which two `Created` events differ: (field, recorded, given). The
/// `not_enqueued` attribute is left out: it records the kill switches at creation, not the
/// request.
fn first_difference(recorded: &Event, given: &Event) -> Option<(String, String, String)> {
    let (
        Event::Created {
            workflow: w1,
            recipient: r1,
            zone: z1,
            anchors: a1,
            attributes: t1,
            ..
        },
        Event::Created {
            workflow: w2,
            recipient: r2,
            zone: z2,
            anchors: a2,
            attributes: t2,
            ..
        },
    ) = (recorded, given)
    else {
        return None;
    };
    let text = |w: &Option<String>| w.clone().unwrap_or_else(|| "none".to_owned());
    if w1 != w2 {
        return Some(("workflow".into(), text(w1), text(w2)));
    }
    if r1 != r2 {
        return Some(("recipient".into(), r1.clone(), r2.clone()));
    }
    if z1 != z2 {
        return Some(("zone".into(), z1.to_string(), z2.to_string()));
    }
    let instant =
        |at: Option<&Timestamp>| at.map_or_else(|| "none".to_owned(), Timestamp::to_string);
    if let Some(name) = differing_key(a1, a2) {
        let (r, g) = (instant(a1.get(&name)), instant(a2.get(&name)));
        return Some((format!("anchors.{name}"), r, g));
    }
    let (t1, t2) = (requested(t1), requested(t2));
    let value = |v: Option<&&AttrValue>| v.map_or_else(|| "none".to_owned(), |v| v.to_string());
    differing_key(&t1, &t2).map(|name| {
        let (r, g) = (value(t1.get(&name)), value(t2.get(&name)));
        (format!("attributes.{name}"), r, g)
    })
}

fn requested(attributes: &BTreeMap<String, AttrValue>) -> BTreeMap<String, &AttrValue> {
    attributes
        .iter()
        .filter(|(name, _)| name.as_str() != NOT_ENQUEUED)
        .map(|(name, value)| (name.clone(), value))
        .collect()
}

/// The first key (in order) whose value differs or that only one map has.
fn differing_key<V: PartialEq>(a: &BTreeMap<String, V>, b: &BTreeMap<String, V>) -> Option<String> {
    a.keys()
        .chain(b.keys())
        .filter(|key| a.get(*key) != b.get(*key))
        .min()
        .cloned()
}
