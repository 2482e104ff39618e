//! Runs a parsed request against the engine and shapes the reply.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Value, json};
use tickler_core::{AttrValue, Command, CreateEntity, EntityId, Outcome, Timestamp, UnsentReason};
use tickler_engine::{DUE_LEN_MAX, Engine, Error, JoinGroup, ListFilter, PauseScope};

use crate::family::Families;
use crate::protocol::{
    BackfillArgs, Call, Cancel, ChangeRecipient, ClockAdvance, ClockSet, Complete, Due, DueCreate,
    DueMove, EntityCreate, Explain, Export, FailuresArgs, GroupArg, GroupJoin, GroupLeave, History,
    List, MoveAnchor, MoveAnchors, PAGE_LEN_MAX, PauseArgs, Request, SetAttribute, SnapshotArgs,
    Toggle,
};
use crate::views::{AppliedView, EntityView, PastEventView};

/// The policy `due.*` commands work with.
pub const DUE_DATE_POLICY: &str = "due-date";

/// What the server does after replying.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum After {
    KeepServing,
    Shutdown,
}

pub async fn dispatch(
    engine: &Engine,
    families: &Families,
    call: Call,
) -> (Result<Value, Error>, After) {
    match call {
        Call::Request(Request::Shutdown) => (
            run(engine, families, Request::Shutdown).await,
            After::Shutdown,
        ),
        Call::Request(request) => (run(engine, families, request).await, After::KeepServing),
        Call::Family(call) => (
            families.run(engine, &call.cmd, call.args).await,
            After::KeepServing,
        ),
    }
}

async fn run(engine: &Engine, families: &Families, request: Request) -> Result<Value, Error> {
    match request {
        Request::Status => status(engine).await,
        Request::DueCreate(args) => due_create(engine, args).await,
        Request::DueMove(args) => due_move(engine, args).await,
        Request::DueComplete(args) | Request::EntityComplete(args) => {
            due_complete(engine, args).await
        }
        Request::EntityCreate(args) => entity_create(engine, args).await,
        Request::EntityMoveAnchor(args) => entity_move_anchor(engine, args).await,
        Request::EntityMoveAnchors(args) => entity_move_anchors(engine, args).await,
        Request::Backfill(args) => backfill(engine, families, args).await,
        Request::EntitySetAttribute(args) => entity_set_attribute(engine, args).await,
        Request::EntityChangeRecipient(args) => entity_change_recipient(engine, args).await,
        Request::GroupJoin(args) => group_join(engine, args).await,
        Request::EntityReplan(args) => apply(engine, &args.entity, Command::Replan).await,
        Request::GroupReplan(args) => group_replan(engine, args).await,
        Request::GroupLeave(args) => group_leave(engine, args).await,
        Request::Toggle(args) => toggle(engine, args).await,
        Request::Show(args) => to_value(&entity_view(engine, &engine.show(&args.entity).await?)),
        Request::History(args) => history(engine, args).await,
        Request::List(args) => list(engine, args).await,
        Request::Failures(args) => failures(engine, args).await,
        Request::Due(args) => due(engine, args).await,
        Request::Explain(args) => explain(engine, args).await,
        Request::Cancel(args) => cancel(engine, args).await,
        Request::Retry(args) => match (args.entity.clone(), args.all) {
            (Some(entity), false) => {
                apply(
                    engine,
                    &entity,
                    Command::Retry {
                        occurrence: args.occurrence.clone(),
                        reason: args.reason_or_default(),
                    },
                )
                .await
            }
            (None, true) => retry_all(engine, &args.reason_or_default()).await,
            _ => Err(Error::Arguments {
                what: "retry".into(),
                reason: "give either an entity (and optionally an occurrence) or all = true".into(),
            }),
        },
        Request::Pause(args) => pause(engine, args).await,
        Request::Resume(args) => resume(engine, args).await,
        Request::Export(args) => export(engine, args).await,
        Request::Snapshot(args) => snapshot(engine, args).await,
        Request::Metrics => Ok(json!({ "text": engine.metrics_text().await? })),
        Request::ClockNow => Ok(clock(engine)),
        Request::ClockAdvance(args) => clock_advance(engine, args).await,
        Request::ClockSet(args) => clock_set(engine, args).await,
        Request::Shutdown => Ok(json!({ "shutting_down": true })),
        // The server streams a watch itself; reaching here means a caller bypassed it.
        Request::Watch => Err(Error::Arguments {
            what: "watch".into(),
            reason: "watch streams past events on a socket connection; it has no single reply"
                .into(),
        }),
    }
}

async fn status(engine: &Engine) -> Result<Value, Error> {
    let mut status = engine.status().await?;
    // The counts need a scan of the store: when it cannot be read (damage, a full disk)
    // they are left out and the error listed, and the rest of the status is still given.
    let stats = engine
        .store_stats()
        .map_err(|err| status.storage_errors.push(err.to_string()))
        .ok();
    let stat = |pick: fn(&_) -> u64| stats.as_ref().map(pick);
    Ok(json!({
        "version": status.version,
        "protocol": crate::protocol::PROTOCOL_VERSION,
        "uptime_ms": status.uptime_ms,
        "clock": status.clock,
        "now": status.now,
        "actors": status.actors,
        "entities": stat(|s| s.entities),
        "events": stat(|s| s.events),
        "past_events": stat(|s| s.past_events),
        "pending_timers": stat(|s| s.timers),
        "timers_in_memory": status.timers_in_memory,
        "wakes_in_flight": status.wakes_in_flight,
        "next_due": status.next_due,
        "fired": status.fired,
        "firing_lag_ms": status.firing_lag,
        "retries_in_flight": status.retries_in_flight,
        "errored": status.errored,
        "errors_last_hour": status.errors_last_hour,
        "paused": status.paused,
        "parked": status.parked,
        "store_bytes": stat(|s| s.size_on_disk),
        "quarantined": status.quarantined,
        "storage_errors": status.storage_errors,
    }))
}

async fn due_create(engine: &Engine, args: DueCreate) -> Result<Value, Error> {
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
    create_entity(engine, &args.entity, create).await
}

async fn due_move(engine: &Engine, args: DueMove) -> Result<Value, Error> {
    apply(engine, &args.entity, move_anchor("due_at", args.due_at)).await
}

async fn due_complete(engine: &Engine, args: Complete) -> Result<Value, Error> {
    apply(
        engine,
        &args.entity,
        Command::Complete {
            reason: args.reason,
        },
    )
    .await
}

async fn entity_create(engine: &Engine, args: EntityCreate) -> Result<Value, Error> {
    let create = CreateEntity {
        policy: args.policy,
        workflow: args.workflow,
        recipient: args.recipient,
        zone: args.zone,
        anchors: args.anchors,
        attributes: args.attributes,
    };
    create_entity(engine, &args.entity, create).await
}

async fn entity_move_anchor(engine: &Engine, args: MoveAnchor) -> Result<Value, Error> {
    apply(engine, &args.entity, move_anchor(&args.anchor, args.to)).await
}

async fn entity_move_anchors(engine: &Engine, args: MoveAnchors) -> Result<Value, Error> {
    apply(engine, &args.entity, Command::MoveAnchors { to: args.to }).await
}

async fn backfill(
    engine: &Engine,
    families: &Families,
    args: BackfillArgs,
) -> Result<Value, Error> {
    let policy = args
        .policy
        .or_else(|| families.backfill_policy().map(str::to_owned))
        .ok_or_else(|| Error::Arguments {
            what: "backfill".into(),
            reason: "give the policy whose waiting occurrences to process".into(),
        })?;
    let backfill = engine.backfill(&policy, args.from, args.to).await?;
    let woken: Vec<Value> = backfill
        .woken
        .iter()
        .map(|(entity, occurrence)| json!({ "entity": entity, "occurrence": occurrence }))
        .collect();
    Ok(json!({ "woken": woken }))
}

async fn entity_set_attribute(engine: &Engine, args: SetAttribute) -> Result<Value, Error> {
    let command = Command::SetAttribute {
        name: args.name,
        value: args.value,
    };
    apply(engine, &args.entity, command).await
}

async fn entity_change_recipient(engine: &Engine, args: ChangeRecipient) -> Result<Value, Error> {
    let command = Command::ChangeRecipient {
        recipient: args.recipient,
        zone: args.zone,
    };
    apply(engine, &args.entity, command).await
}

async fn group_join(engine: &Engine, args: GroupJoin) -> Result<Value, Error> {
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

async fn group_replan(engine: &Engine, args: GroupArg) -> Result<Value, Error> {
    let applied = engine.replan_group(&args.group).await?;
    let mut entities = Vec::new();
    for (id, applied) in &applied {
        entities.push(AppliedView::new(id, applied, None));
    }
    to_value(&json!({ "group": args.group, "changed": entities }))
}

async fn group_leave(engine: &Engine, args: GroupLeave) -> Result<Value, Error> {
    let applied = engine.leave_group(&args.group, &args.contact).await?;
    group_reply(engine, &args.group, &args.contact, applied).await
}

async fn toggle(engine: &Engine, args: Toggle) -> Result<Value, Error> {
    let command = Command::Toggle {
        occurrence: args.occurrence,
        enabled: args.enabled,
    };
    apply(engine, &args.entity, command).await
}

async fn history(engine: &Engine, args: History) -> Result<Value, Error> {
    if let Some(outcome) = &args.outcome {
        check_outcome(outcome)?;
    }
    let past = engine.history(&args.entity).await?;
    let shown: Vec<PastEventView> = past
        .iter()
        .filter(|p| args.since.is_none_or(|since| p.closed_at >= since))
        .filter(|p| args.until.is_none_or(|until| p.closed_at < until))
        .filter(|p| {
            args.outcome
                .as_deref()
                .is_none_or(|wanted| outcome_matches(&p.outcome, wanted))
        })
        .map(PastEventView::new)
        .collect();
    to_value(&json!({ "entity": args.entity, "past_events": shown }))
}

async fn list(engine: &Engine, args: List) -> Result<Value, Error> {
    let limit = page_len("list", args.limit)?;
    if let Some(policy) = &args.policy {
        engine.catalog().policy(policy)?;
    }
    if let Some(kind) = &args.kind {
        check_kind(engine, kind)?;
    }
    let filter = ListFilter {
        kind: args.kind,
        policy: args.policy,
        recipient: args.recipient,
    };
    let ids = engine.list(&filter, args.after.as_deref(), limit).await?;
    let mut entities = Vec::new();
    for id in &ids {
        entities.push(match engine.show(id).await {
            Ok(entity) => json!({
                "entity": id,
                "policy": entity.policy,
                "recipient": entity.recipient,
                "zone": entity.zone,
                "active": entity.active.len(),
                "errored": entity.errored.len(),
                "completed": entity.completed.as_ref().map(|c| c.reason.clone()),
                "next_wake": entity.next_wake(),
            }),
            Err(err) => json!({ "entity": id, "error": err.to_string() }),
        });
    }
    let next = (ids.len() == limit).then(|| ids.last().cloned()).flatten();
    to_value(&json!({ "entities": entities, "next": next }))
}

/// A page length from a request: 1 to `PAGE_LEN_MAX`, `DEFAULT_PAGE_LEN` when not given.
fn page_len(what: &str, limit: Option<usize>) -> Result<usize, Error> {
    if limit == Some(0) {
        return Err(Error::Arguments {
            what: what.into(),
            reason: format!("limit 0 lists nothing; give 1 to {PAGE_LEN_MAX}"),
        });
    }
    Ok(limit.unwrap_or(DEFAULT_PAGE_LEN).min(PAGE_LEN_MAX))
}

/// An entity kind some policy creates; another is a typo, refused with the known kinds.
fn check_kind(engine: &Engine, kind: &str) -> Result<(), Error> {
    let mut known: Vec<&str> = engine
        .catalog()
        .policies()
        .map(|policy| policy.entity_kind.as_str())
        .collect();
    known.sort_unstable();
    known.dedup();
    if known.contains(&kind) {
        return Ok(());
    }
    Err(Error::Arguments {
        what: "kind".into(),
        reason: format!("unknown kind {kind:?} (known: {})", known.join(", ")),
    })
}

async fn failures(engine: &Engine, args: FailuresArgs) -> Result<Value, Error> {
    let limit = page_len("failures", args.limit)?;
    let filter = ListFilter {
        policy: args.policy,
        ..ListFilter::default()
    };
    let page = engine
        .failures(
            &filter,
            args.channel.as_deref(),
            args.after.as_deref(),
            limit,
        )
        .await?;
    to_value(&page)
}

async fn retry_all(engine: &Engine, reason: &str) -> Result<Value, Error> {
    let retried = engine.retry_all_errored(reason).await?;
    let occurrences: Vec<Value> = retried
        .iter()
        .flat_map(|(entity, occurrences)| {
            occurrences
                .iter()
                .map(move |occurrence| json!({ "entity": entity, "occurrence": occurrence }))
        })
        .collect();
    let entities: Vec<&EntityId> = retried.iter().map(|(entity, _)| entity).collect();
    to_value(&json!({ "retried_entities": entities, "retried": occurrences }))
}

async fn due(engine: &Engine, args: Due) -> Result<Value, Error> {
    if args.to < args.from {
        return Err(Error::Arguments {
            what: "due".into(),
            reason: format!("to {} is before from {}", args.to, args.from),
        });
    }
    let limit = args.limit.unwrap_or(DUE_LEN_MAX).min(DUE_LEN_MAX);
    let entries = engine.due_between(args.from, args.to, limit).await?;
    to_value(&json!({ "from": args.from, "to": args.to, "entries": entries }))
}

async fn explain(engine: &Engine, args: Explain) -> Result<Value, Error> {
    to_value(&engine.explain(&args.entity, args.occurrence.as_ref())?)
}

async fn cancel(engine: &Engine, args: Cancel) -> Result<Value, Error> {
    let applied = engine.cancel(&args.entity, args.occurrence).await?;
    let state = engine.show(&args.entity).await.ok();
    to_value(&AppliedView::new(&args.entity, &applied, state.as_ref()))
}

async fn pause(engine: &Engine, args: PauseArgs) -> Result<Value, Error> {
    let pauses = engine.set_paused(&scope(args), true).await?;
    to_value(&json!({ "paused": pauses }))
}

async fn resume(engine: &Engine, args: PauseArgs) -> Result<Value, Error> {
    let pauses = engine.set_paused(&scope(args), false).await?;
    to_value(&json!({ "paused": pauses }))
}

async fn export(engine: &Engine, args: Export) -> Result<Value, Error> {
    let per_page = args
        .entities
        .unwrap_or(DEFAULT_PAGE_LEN)
        .clamp(1, PAGE_LEN_MAX);
    let (events, next) = engine.export_page(args.after.as_ref(), per_page)?;
    to_value(&json!({ "events": events, "next": next }))
}

async fn snapshot(engine: &Engine, args: SnapshotArgs) -> Result<Value, Error> {
    let mut written = 0u64;
    match args.entity {
        Some(entity) => {
            engine.snapshot(&entity).await?;
            written = 1;
        }
        None => {
            let mut after: Option<String> = None;
            loop {
                let page = engine
                    .list(&ListFilter::default(), after.as_deref(), PAGE_LEN_MAX)
                    .await?;
                for id in &page {
                    match engine.snapshot(id).await {
                        Ok(_) => written += 1,
                        Err(Error::Quarantined { .. }) => {}
                        Err(err) => return Err(err),
                    }
                }
                if page.len() < PAGE_LEN_MAX {
                    break;
                }
                after = page.last().map(|id| id.to_string());
            }
        }
    }
    to_value(&json!({ "snapshots": written }))
}

async fn clock_advance(engine: &Engine, args: ClockAdvance) -> Result<Value, Error> {
    let fired = engine.advance(args.by).await?;
    let mut reply = clock(engine);
    reply["fired"] = json!(fired);
    Ok(reply)
}

async fn clock_set(engine: &Engine, args: ClockSet) -> Result<Value, Error> {
    engine.set_time(args.to).await?;
    Ok(clock(engine))
}

/// Entities per `list` or `export` page when the request does not say.
const DEFAULT_PAGE_LEN: usize = 100;

fn scope(args: PauseArgs) -> PauseScope {
    match (args.channel, args.policy) {
        (Some(channel), _) => PauseScope::Channel(channel),
        (None, Some(policy)) => PauseScope::Policy(policy),
        (None, None) => PauseScope::All,
    }
}

/// An `outcome` filter names `sent`, `unsent` or an unsent reason; another is a typo.
fn check_outcome(wanted: &str) -> Result<(), Error> {
    let mut known = vec!["sent", "unsent"];
    known.extend(UnsentReason::ALL.iter().map(UnsentReason::as_str));
    if known.contains(&wanted) {
        return Ok(());
    }
    Err(Error::Arguments {
        what: "outcome".into(),
        reason: format!("unknown outcome {wanted:?} (known: {})", known.join(", ")),
    })
}

/// `sent`, `unsent`, or an unsent reason (`missed`, `system-error`…).
fn outcome_matches(outcome: &Outcome, wanted: &str) -> bool {
    match outcome {
        Outcome::Sent { .. } => wanted == "sent",
        Outcome::Unsent { reason, .. } => wanted == "unsent" || wanted == reason.as_str(),
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

/// A create: the identical request repeated replies as the first did, with no events.
async fn create_entity(
    engine: &Engine,
    entity: &EntityId,
    create: CreateEntity,
) -> Result<Value, Error> {
    let applied = engine.create(entity, create).await?;
    applied_reply(engine, entity, &applied).await
}

async fn apply(engine: &Engine, entity: &EntityId, command: Command) -> Result<Value, Error> {
    let applied = engine.execute(entity, command).await?;
    applied_reply(engine, entity, &applied).await
}

/// What a command did and the entity after it (with its phase).
pub async fn applied_reply(
    engine: &Engine,
    entity: &EntityId,
    applied: &tickler_engine::Applied,
) -> Result<Value, Error> {
    let state = engine.show(entity).await.ok();
    let mut view = AppliedView::new(entity, applied, None);
    view.state = state.as_ref().map(|state| entity_view(engine, state));
    to_value(&view)
}

pub fn entity_view(engine: &Engine, entity: &tickler_core::Entity) -> EntityView {
    EntityView::new(entity).with_phase(engine.phase(entity))
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

/// A reply's result from any serializable value.
pub fn to_value<T: Serialize>(value: &T) -> Result<Value, Error> {
    serde_json::to_value(value)
        .map_err(|err| Error::Internal(format!("cannot encode a reply: {err}")))
}
