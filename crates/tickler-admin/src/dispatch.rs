//! Runs a parsed request against the engine and shapes the reply.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use tickler_core::{AttrValue, Command, CreateEntity, EntityId, Timestamp};
use tickler_engine::{Engine, Error, JoinGroup};

use crate::protocol::Request;
use crate::views::{AppliedView, EntityView, PastEventView};

/// The policy `due.*` commands work with.
pub const DUE_DATE_POLICY: &str = "due-date";

/// What the server does after replying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    KeepServing,
    Shutdown,
}

pub async fn dispatch(engine: &Engine, request: Request) -> (Result<Value, Error>, After) {
    let after = if request == Request::Shutdown {
        After::Shutdown
    } else {
        After::KeepServing
    };
    (run(engine, request).await, after)
}

async fn run(engine: &Engine, request: Request) -> Result<Value, Error> {
    match request {
        Request::Status => {
            let status = engine.status().await?;
            let stats = engine.store_stats()?;
            Ok(json!({
                "version": status.version,
                "protocol": crate::protocol::PROTOCOL_VERSION,
                "uptime_ms": status.uptime_ms,
                "clock": status.clock,
                "now": status.now,
                "actors": status.actors,
                "entities": stats.entities,
                "events": stats.events,
                "past_events": stats.past_events,
                "pending_timers": stats.timers,
                "timers_in_memory": status.timers_in_memory,
                "wakes_in_flight": status.wakes_in_flight,
                "next_due": status.next_due,
                "fired": status.fired,
                "store_bytes": stats.size_on_disk,
                "quarantined": status.quarantined,
            }))
        }
        Request::DueCreate(args) => {
            let mut attributes = BTreeMap::new();
            if let Some(title) = args.title {
                attributes.insert("title".to_owned(), AttrValue::Text(title));
            }
            let anchors = args
                .due_at
                .map(|due| BTreeMap::from([("due_at".to_owned(), due)]))
                .unwrap_or_default();
            let create = CreateEntity {
                policy: DUE_DATE_POLICY.to_owned(),
                workflow: args.workflow,
                recipient: args.recipient,
                zone: args.zone,
                anchors,
                attributes,
            };
            apply(engine, &args.entity, Command::Create(create)).await
        }
        Request::DueMove(args) => {
            apply(engine, &args.entity, move_anchor("due_at", args.due_at)).await
        }
        Request::DueComplete(args) | Request::EntityComplete(args) => {
            apply(
                engine,
                &args.entity,
                Command::Complete {
                    reason: args.reason,
                },
            )
            .await
        }
        Request::EntityCreate(args) => {
            let create = CreateEntity {
                policy: args.policy,
                workflow: args.workflow,
                recipient: args.recipient,
                zone: args.zone,
                anchors: args.anchors,
                attributes: args.attributes,
            };
            apply(engine, &args.entity, Command::Create(create)).await
        }
        Request::EntityMoveAnchor(args) => {
            apply(engine, &args.entity, move_anchor(&args.anchor, args.to)).await
        }
        Request::EntitySetAttribute(args) => {
            let command = Command::SetAttribute {
                name: args.name,
                value: args.value,
            };
            apply(engine, &args.entity, command).await
        }
        Request::EntityChangeRecipient(args) => {
            let command = Command::ChangeRecipient {
                recipient: args.recipient,
                zone: args.zone,
            };
            apply(engine, &args.entity, command).await
        }
        Request::GroupJoin(args) => {
            let join = JoinGroup {
                contact: args.contact.clone(),
                recipient: args.recipient,
                zone: args.zone,
                anchors: args.anchors,
                attributes: args.attributes,
            };
            let applied = engine.join_group(&args.group, join).await?;
            group_reply(engine, &args.group, &args.contact, applied).await
        }
        Request::EntityReplan(args) => apply(engine, &args.entity, Command::Replan).await,
        Request::GroupReplan(args) => {
            let applied = engine.replan_group(&args.group).await?;
            let mut entities = Vec::new();
            for (id, applied) in &applied {
                entities.push(AppliedView::new(id, applied, None));
            }
            to_value(&json!({ "group": args.group, "changed": entities }))
        }
        Request::GroupLeave(args) => {
            let applied = engine.leave_group(&args.group, &args.contact).await?;
            group_reply(engine, &args.group, &args.contact, applied).await
        }
        Request::Toggle(args) => {
            let command = Command::Toggle {
                occurrence: args.occurrence,
                enabled: args.enabled,
            };
            apply(engine, &args.entity, command).await
        }
        Request::Show(args) => to_value(&EntityView::new(&engine.show(&args.entity).await?)),
        Request::History(args) => {
            let past = engine.history(&args.entity).await?;
            to_value(&json!({
                "entity": args.entity,
                "past_events": past.iter().map(PastEventView::new).collect::<Vec<_>>(),
            }))
        }
        Request::ClockNow => Ok(clock(engine)),
        Request::ClockAdvance(args) => {
            let fired = engine.advance(args.by).await?;
            let mut reply = clock(engine);
            reply["fired"] = json!(fired);
            Ok(reply)
        }
        Request::ClockSet(args) => {
            engine.set_time(args.to).await?;
            Ok(clock(engine))
        }
        Request::Shutdown => Ok(json!({ "shutting_down": true })),
    }
}

fn move_anchor(anchor: &str, to: Timestamp) -> Command {
    Command::MoveAnchor {
        anchor: anchor.to_owned(),
        to,
    }
}

fn clock(engine: &Engine) -> Value {
    json!({
        "clock": if engine.is_manual_clock() { "manual" } else { "system" },
        "now": engine.now(),
    })
}

async fn apply(engine: &Engine, entity: &EntityId, command: Command) -> Result<Value, Error> {
    let applied = engine.execute(entity, command).await?;
    let state = engine.show(entity).await.ok();
    to_value(&AppliedView::new(entity, &applied, state.as_ref()))
}

async fn group_reply(
    engine: &Engine,
    group: &str,
    contact: &str,
    applied: Vec<(EntityId, tickler_engine::Applied)>,
) -> Result<Value, Error> {
    let mut entities = Vec::new();
    for (id, applied) in &applied {
        let state = engine.show(id).await.ok();
        entities.push(AppliedView::new(id, applied, state.as_ref()));
    }
    to_value(&json!({ "group": group, "contact": contact, "entities": entities }))
}

fn to_value<T: Serialize>(value: &T) -> Result<Value, Error> {
    serde_json::to_value(value)
        .map_err(|err| Error::Internal(format!("cannot encode a reply: {err}")))
}
