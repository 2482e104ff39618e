//! The admin protocol, version 1: newline-delimited JSON requests and replies over a Unix
//! socket. `proto/admin-protocol.md` is the specification; this file is its implementation.
//!
//! A request is `{"v": 1, "id": <any>, "cmd": "<command>", "args": {...}}`; a reply is
//! `{"v": 1, "id": <same>, "ok": true, "result": ...}` or
//! `{"v": 1, "id": <same>, "ok": false, "error": {"code": "...", "message": "..."}}`.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use tickler_core::{AttrValue, EntityId, OccurrenceId, Span, Timestamp, Zone};

use crate::family::Families;

pub const PROTOCOL_VERSION: u32 = 1;

/// The largest request accepted, newline included. Longer ones are refused before they are
/// buffered whole.
pub const REQUEST_LEN_MAX: usize = 1024 * 1024;

/// Every command of version 1, as written in `cmd`.
pub const COMMANDS: &[&str] = &[
    "status",
    "due.create",
    "due.move",
    "due.complete",
    "entity.create",
    "entity.move-anchor",
    "entity.move-anchors",
    "entity.set-attribute",
    "entity.complete",
    "entity.change-recipient",
    "entity.replan",
    "backfill",
    "group.join",
    "group.leave",
    "group.replan",
    "toggle",
    "show",
    "history",
    "list",
    "failures",
    "due",
    "explain",
    "cancel",
    "retry",
    "pause",
    "resume",
    "export",
    "snapshot",
    "metrics",
    "watch",
    "clock.now",
    "clock.advance",
    "clock.set",
    "shutdown",
];

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(tag = "cmd", content = "args")]
pub enum Request {
    #[serde(rename = "status")]
    Status,
    #[serde(rename = "due.create")]
    DueCreate(DueCreate),
    #[serde(rename = "due.move")]
    DueMove(DueMove),
    #[serde(rename = "due.complete")]
    DueComplete(Complete),
    #[serde(rename = "entity.create")]
    EntityCreate(EntityCreate),
    #[serde(rename = "entity.move-anchor")]
    EntityMoveAnchor(MoveAnchor),
    #[serde(rename = "entity.move-anchors")]
    EntityMoveAnchors(MoveAnchors),
    #[serde(rename = "entity.set-attribute")]
    EntitySetAttribute(SetAttribute),
    #[serde(rename = "entity.complete")]
    EntityComplete(Complete),
    #[serde(rename = "entity.change-recipient")]
    EntityChangeRecipient(ChangeRecipient),
    #[serde(rename = "entity.replan")]
    EntityReplan(EntityArg),
    #[serde(rename = "backfill")]
    Backfill(BackfillArgs),
    #[serde(rename = "group.join")]
    GroupJoin(GroupJoin),
    #[serde(rename = "group.leave")]
    GroupLeave(GroupLeave),
    #[serde(rename = "group.replan")]
    GroupReplan(GroupArg),
    #[serde(rename = "toggle")]
    Toggle(Toggle),
    #[serde(rename = "show")]
    Show(EntityArg),
    #[serde(rename = "history")]
    History(History),
    #[serde(rename = "list")]
    List(List),
    #[serde(rename = "failures")]
    Failures(FailuresArgs),
    #[serde(rename = "due")]
    Due(Due),
    #[serde(rename = "explain")]
    Explain(Explain),
    #[serde(rename = "cancel")]
    Cancel(Cancel),
    #[serde(rename = "retry")]
    Retry(Retry),
    #[serde(rename = "pause")]
    Pause(PauseArgs),
    #[serde(rename = "resume")]
    Resume(PauseArgs),
    #[serde(rename = "export")]
    Export(Export),
    #[serde(rename = "snapshot")]
    Snapshot(SnapshotArgs),
    #[serde(rename = "metrics")]
    Metrics,
    /// Turns the connection into a stream of past events (the socket's `Engine::subscribe`).
    #[serde(rename = "watch")]
    Watch,
    #[serde(rename = "clock.now")]
    ClockNow,
    #[serde(rename = "clock.advance")]
    ClockAdvance(ClockAdvance),
    #[serde(rename = "clock.set")]
    ClockSet(ClockSet),
    #[serde(rename = "shutdown")]
    Shutdown,
}

/// A due date for a task, under the `due-date` policy.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DueCreate {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    /// The workflow template giving the default length, e.g. `reviewer-report`.
    #[serde(default)]
    pub workflow: Option<String>,
    pub recipient: String,
    #[serde(default)]
    #[schemars(with = "crate::schema::ZoneText")]
    pub zone: Zone,
    /// Rounded up to the next hour; default: the workflow's length from now.
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::InstantText>")]
    pub due_at: Option<Timestamp>,
    /// What the task is called in messages.
    #[serde(default)]
    pub title: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DueMove {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    #[schemars(with = "crate::schema::InstantText")]
    pub due_at: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Complete {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityCreate {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    pub policy: String,
    #[serde(default)]
    pub workflow: Option<String>,
    pub recipient: String,
    #[serde(default)]
    #[schemars(with = "crate::schema::ZoneText")]
    pub zone: Zone,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, crate::schema::InstantText>")]
    pub anchors: BTreeMap<String, Timestamp>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, crate::schema::AttrJson>")]
    pub attributes: BTreeMap<String, AttrValue>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveAnchor {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    pub anchor: String,
    #[schemars(with = "crate::schema::InstantText")]
    pub to: Timestamp,
}

/// Several anchors moved in one decision (their order checked on the result).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MoveAnchors {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    #[schemars(with = "BTreeMap<String, crate::schema::InstantText>")]
    pub to: BTreeMap<String, Timestamp>,
}

/// Process what of `policy` fell due in [from, to) and is still waiting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BackfillArgs {
    /// Default: the policy a command family names for it (a family may name one).
    #[serde(default)]
    pub policy: Option<String>,
    #[schemars(with = "crate::schema::InstantText")]
    pub from: Timestamp,
    #[schemars(with = "crate::schema::InstantText")]
    pub to: Timestamp,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SetAttribute {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    pub name: String,
    /// `null` clears the attribute.
    #[schemars(with = "Option<crate::schema::AttrJson>")]
    pub value: Option<AttrValue>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ChangeRecipient {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    #[serde(default)]
    pub recipient: Option<String>,
    /// A new IANA zone: pending occurrences are re-planned in it.
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::ZoneText>")]
    pub zone: Option<Zone>,
}

/// A contact joins a group: each policy running for the group starts its cadence.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupJoin {
    pub group: String,
    /// The contact's id on the messaging platform; the entity is `<kind>/<group>/<contact>`.
    pub contact: String,
    pub recipient: String,
    #[serde(default)]
    #[schemars(with = "crate::schema::ZoneText")]
    pub zone: Zone,
    /// Anchors such as `registered_at` (default: the policy's, e.g. now).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, crate::schema::InstantText>")]
    pub anchors: BTreeMap<String, Timestamp>,
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, crate::schema::AttrJson>")]
    pub attributes: BTreeMap<String, AttrValue>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupArg {
    pub group: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GroupLeave {
    pub group: String,
    pub contact: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Toggle {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    #[schemars(with = "crate::schema::OccurrenceText")]
    pub occurrence: OccurrenceId,
    pub enabled: bool,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EntityArg {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
}

/// The most items one `list` or `export` page returns.
pub const PAGE_LEN_MAX: usize = 1_000;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct History {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    /// `sent`, `unsent`, or an unsent reason such as `missed`.
    #[serde(default)]
    pub outcome: Option<String>,
    /// Only past events closed at or after this instant.
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::InstantText>")]
    pub since: Option<Timestamp>,
    /// Only past events closed before this instant.
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::InstantText>")]
    pub until: Option<Timestamp>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct List {
    #[serde(default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub policy: Option<String>,
    #[serde(default)]
    pub recipient: Option<String>,
    /// Continue after this entity (the previous page's `next`).
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many (default 100, at most 1,000).
    #[serde(default)]
    pub limit: Option<usize>,
}

/// Occurrences that ended in a system error and wait for a `retry`.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FailuresArgs {
    /// Only those of this policy.
    #[serde(default)]
    pub policy: Option<String>,
    /// Only those of this channel.
    #[serde(default)]
    pub channel: Option<String>,
    /// Continue after this one (the previous page's `next`).
    #[serde(default)]
    pub after: Option<String>,
    /// At most this many (default 100, at most 1,000).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Due {
    #[schemars(with = "crate::schema::InstantText")]
    pub from: Timestamp,
    #[schemars(with = "crate::schema::InstantText")]
    pub to: Timestamp,
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Explain {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::OccurrenceText>")]
    pub occurrence: Option<OccurrenceId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Cancel {
    #[schemars(with = "crate::schema::IdText")]
    pub entity: EntityId,
    /// One pending occurrence; without it the whole entity is completed as `cancelled`.
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::OccurrenceText>")]
    pub occurrence: Option<OccurrenceId>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Retry {
    /// The entity whose errored occurrences to retry; without it, `all` must be true.
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::IdText>")]
    pub entity: Option<EntityId>,
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::OccurrenceText>")]
    pub occurrence: Option<OccurrenceId>,
    /// Retry every errored occurrence of every entity.
    #[serde(default)]
    pub all: bool,
    /// Why the operator retries (recorded with the retry); default "retried by an operator".
    #[serde(default)]
    pub reason: Option<String>,
}

impl Retry {
    pub fn reason_or_default(&self) -> String {
        self.reason
            .clone()
            .unwrap_or_else(|| "retried by an operator".to_owned())
    }
}

/// A pause scope: a channel, a policy, or (neither) all delivery.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseArgs {
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub policy: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Export {
    /// Continue after this entity (the previous page's `next`).
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::IdText>")]
    pub after: Option<EntityId>,
    /// Entities per page (default 100, at most 1,000).
    #[serde(default)]
    pub entities: Option<usize>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SnapshotArgs {
    /// One entity; without it, every entity.
    #[serde(default)]
    #[schemars(with = "Option<crate::schema::IdText>")]
    pub entity: Option<EntityId>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockAdvance {
    #[schemars(with = "crate::schema::SpanText")]
    pub by: Span,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ClockSet {
    #[schemars(with = "crate::schema::InstantText")]
    pub to: Timestamp,
}

/// A request of a command family (`<family>.<verb>`): its command and its arguments,
/// which the family parses (see [`crate::family::CommandFamily`]).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FamilyCall {
    pub cmd: String,
    pub args: Value,
}

/// Anything a client can send: a generic request, or one of a command family.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Call {
    Request(Request),
    Family(FamilyCall),
}

impl From<Request> for Call {
    fn from(request: Request) -> Call {
        Call::Request(request)
    }
}

impl From<FamilyCall> for Call {
    fn from(call: FamilyCall) -> Call {
        Call::Family(call)
    }
}

impl FamilyCall {
    /// A family command with these arguments (any serializable struct).
    pub fn new(cmd: &str, args: &impl Serialize) -> FamilyCall {
        FamilyCall {
            cmd: cmd.to_owned(),
            args: serde_json::to_value(args).expect("request arguments always encode"),
        }
    }
}

impl Request {
    /// The one entity the request reads or changes, if it is confined to one: what cluster
    /// mode routes by. `None` for commands that span entities or the node.
    pub fn single_entity(&self) -> Option<&EntityId> {
        match self {
            Request::DueCreate(args) => Some(&args.entity),
            Request::DueMove(args) => Some(&args.entity),
            Request::DueComplete(args) | Request::EntityComplete(args) => Some(&args.entity),
            Request::EntityCreate(args) => Some(&args.entity),
            Request::EntityMoveAnchor(args) => Some(&args.entity),
            Request::EntityMoveAnchors(args) => Some(&args.entity),
            Request::EntitySetAttribute(args) => Some(&args.entity),
            Request::EntityChangeRecipient(args) => Some(&args.entity),
            Request::EntityReplan(args) | Request::Show(args) => Some(&args.entity),
            Request::Toggle(args) => Some(&args.entity),
            Request::History(args) => Some(&args.entity),
            Request::Explain(args) => Some(&args.entity),
            Request::Cancel(args) => Some(&args.entity),
            Request::Retry(args) if !args.all => args.entity.as_ref(),
            _ => None,
        }
    }
}

/// The envelope of a request as sent by a client.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Envelope {
    pub v: u32,
    pub id: Value,
    #[serde(flatten)]
    pub call: Call,
}

/// A reply's error: a stable code (see the spec's table) and a message naming the value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct ErrorBody {
    pub code: String,
    pub message: String,
    /// With `not_owner`: where the entity's shard is served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<OwnerBody>,
}

/// Where a shard is served (cluster mode): the reply to a command sent to another node.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct OwnerBody {
    pub shard: u32,
    pub epoch: u64,
    /// The node holding the shard's lease; absent while no node holds it (a takeover).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
    /// That node's admin socket: send the command there.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub socket: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Reply {
    pub v: u32,
    pub id: Value,
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub result: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

impl Reply {
    pub fn ok(id: Value, result: Value) -> Reply {
        Reply {
            v: PROTOCOL_VERSION,
            id,
            ok: true,
            result: Some(result),
            error: None,
        }
    }

    pub fn error(id: Value, code: &str, message: impl Into<String>) -> Reply {
        Reply {
            v: PROTOCOL_VERSION,
            id,
            ok: false,
            result: None,
            error: Some(ErrorBody {
                code: code.to_owned(),
                message: message.into(),
                owner: None,
            }),
        }
    }

    /// `not_owner`: this node does not serve the entity's shard; `owner` says who does.
    pub fn not_owner(id: Value, entity: &str, owner: OwnerBody) -> Reply {
        let message = match (&owner.node, &owner.socket) {
            (Some(node), Some(socket)) => format!(
                "entity {entity} is in shard {} served by node {node}: send the command to \
                 {socket}",
                owner.shard
            ),
            _ => format!(
                "entity {entity} is in shard {}, which no node serves right now (a takeover \
                 is under way): try again in a few seconds",
                owner.shard
            ),
        };
        let mut reply = Reply::error(id, "not_owner", message);
        if let Some(error) = &mut reply.error {
            error.owner = Some(owner);
        }
        reply
    }
}

/// Why a line is not a request we can run. Each becomes an error reply.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParseError {
    pub id: Value,
    pub code: &'static str,
    pub message: String,
}

/// Parses one request line (without its newline): a generic command, or one of `families`.
pub fn parse_request(line: &[u8], families: &Families) -> Result<(Value, Call), ParseError> {
    let fail = |id: Value, code, message: String| ParseError { id, code, message };
    let value: Value = serde_json::from_slice(line).map_err(|err| {
        fail(
            Value::Null,
            "malformed_request",
            format!("the request is not valid JSON: {err}"),
        )
    })?;
    let Value::Object(mut object) = value else {
        return Err(fail(
            Value::Null,
            "malformed_request",
            "the request must be a JSON object".into(),
        ));
    };
    let id = object.remove("id").unwrap_or(Value::Null);
    match object.remove("v") {
        Some(Value::Number(v)) if v.as_u64() == Some(u64::from(PROTOCOL_VERSION)) => {}
        Some(other) => {
            return Err(fail(
                id,
                "unsupported_version",
                format!(
                    "protocol version {other} is not supported; this daemon speaks version {PROTOCOL_VERSION}"
                ),
            ));
        }
        None => {
            return Err(fail(
                id,
                "malformed_request",
                "the request has no \"v\" (protocol version)".into(),
            ));
        }
    }
    let command = match object.get("cmd") {
        Some(Value::String(command)) => command.clone(),
        _ => {
            return Err(fail(
                id,
                "malformed_request",
                "the request has no \"cmd\" string".into(),
            ));
        }
    };
    let family = families.serves(&command);
    if !COMMANDS.contains(&command.as_str()) && !family {
        let mut known = COMMANDS.to_vec();
        known.extend(families.commands());
        return Err(fail(
            id,
            "unknown_command",
            format!("unknown command {command:?} (known: {})", known.join(", ")),
        ));
    }
    if let Some(extra) = object.keys().find(|key| *key != "cmd" && *key != "args") {
        return Err(fail(
            id,
            "malformed_request",
            format!("unknown request field {extra:?}"),
        ));
    }
    if family {
        // A family command whose arguments are all optional may leave `args` out too.
        let args = object
            .remove("args")
            .unwrap_or_else(|| Value::Object(Default::default()));
        return Ok((id, Call::Family(FamilyCall { cmd: command, args })));
    }
    let request = generic_request(object).map_err(|message| {
        fail(
            id.clone(),
            "invalid_arguments",
            format!("{command}: {message}"),
        )
    })?;
    Ok((id, Call::Request(request)))
}

/// A generic command's request from its `cmd` and `args`; a command with no arguments also
/// takes `"args": {}` or `null`, and one whose arguments are all optional no `args`.
fn generic_request(mut object: serde_json::Map<String, Value>) -> Result<Request, String> {
    let no_args = object
        .get("args")
        .is_none_or(|args| args.is_null() || args.as_object().is_some_and(|a| a.is_empty()));
    if no_args {
        let mut without_args = object.clone();
        without_args.remove("args");
        if let Ok(request) = serde_json::from_value(Value::Object(without_args)) {
            return Ok(request);
        }
        object.insert("args".into(), Value::Object(Default::default()));
    }
    serde_json::from_value(Value::Object(object)).map_err(|err| plain_message(&err.to_string()))
}

/// serde's message with the Rust type names it may quote put in the protocol's words: a
/// client sees JSON shapes, not `struct DueCreate` or `unit`.
pub(crate) fn plain_message(message: &str) -> String {
    let words: Vec<&str> = message.split(' ').collect();
    let mut plain: Vec<&str> = Vec::with_capacity(words.len());
    let mut index = 0;
    while index < words.len() {
        // Only right after serde's "expected": our own messages may say "unit" (of a span).
        let after_expected = index > 0 && words[index - 1] == "expected";
        let (replacement, taken) = match (words[index], words.get(index + 1)) {
            ("struct", Some(_)) if after_expected => ("an object", 2),
            ("enum", Some(_)) if after_expected => ("one of the documented values", 2),
            ("unit", Some(&"variant")) if after_expected => ("no arguments", 3),
            ("unit", _) if after_expected => ("no arguments", 1),
            (word, _) => (word, 1),
        };
        plain.push(replacement);
        index += taken;
    }
    plain.join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_parses_with_its_id_and_arguments() {
        let line = br#"{"v":1,"id":7,"cmd":"due.move","args":{"entity":"due/r-1","due_at":"2026-03-20T10:00:00Z"}}"#;
        let (id, request) = parse_request(line, &Families::default()).unwrap();
        assert_eq!(id, Value::from(7));
        assert!(matches!(
            request,
            Call::Request(Request::DueMove(DueMove { .. }))
        ));
        let (_, request) =
            parse_request(br#"{"v":1,"cmd":"status"}"#, &Families::default()).unwrap();
        assert_eq!(request, Call::Request(Request::Status));
    }

    /// Issue 22: `"args": {}` is how many clients send "no arguments".
    #[test]
    fn a_command_without_arguments_takes_empty_args() {
        for line in [
            &br#"{"v":1,"cmd":"status","args":{}}"#[..],
            br#"{"v":1,"cmd":"status","args":null}"#,
            br#"{"v":1,"cmd":"clock.now","args":{}}"#,
            br#"{"v":1,"cmd":"clock.now"}"#,
            br#"{"v":1,"cmd":"list"}"#,
        ] {
            let (_, request) = parse_request(line, &Families::default()).unwrap();
            assert!(matches!(request, Call::Request(_)));
        }
    }

    /// Issue 22: no reply names a Rust type.
    #[test]
    fn argument_errors_speak_json_not_rust() {
        for line in [
            &br#"{"v":1,"cmd":"status","args":{"x":1}}"#[..],
            br#"{"v":1,"cmd":"due.move","args":"due/x"}"#,
            br#"{"v":1,"cmd":"list","args":[1]}"#,
            br#"{"v":1,"cmd":"clock.now","args":{"x":1}}"#,
        ] {
            let err = parse_request(line, &Families::default()).unwrap_err();
            assert_eq!(err.code, "invalid_arguments", "{}", err.message);
            for rust in ["struct", "unit", "DueMove", "List", "Request::", "ClockNow"] {
                assert!(!err.message.contains(rust), "{rust} in {:?}", err.message);
            }
        }
    }

    /// Issue 20 (I1): commands whose arguments are all optional take a request without `args`.
    #[test]
    fn args_may_be_left_out_when_every_argument_is_optional() {
        for command in ["list", "export", "snapshot", "pause", "resume", "retry"] {
            let line = format!(r#"{{"v":1,"cmd":"{command}"}}"#);
            let parsed = parse_request(line.as_bytes(), &Families::default());
            assert!(
                parsed.is_ok(),
                "{command}: {:?}",
                parsed.err().map(|e| e.message)
            );
        }
        let err = parse_request(br#"{"v":1,"cmd":"show"}"#, &Families::default()).unwrap_err();
        assert_eq!(err.code, "invalid_arguments");
    }

    #[test]
    fn bad_requests_get_a_code_and_a_message_naming_the_value() {
        for (line, code, named) in [
            (&b"{not json"[..], "malformed_request", "not valid JSON"),
            (br#"[1,2]"#, "malformed_request", "JSON object"),
            (br#"{"cmd":"status"}"#, "malformed_request", "\"v\""),
            (br#"{"v":2,"cmd":"status"}"#, "unsupported_version", "version 2"),
            (br#"{"v":1,"cmd":"launch"}"#, "unknown_command", "\"launch\""),
            (br#"{"v":1,"cmd":"status","extra":1}"#, "malformed_request", "\"extra\""),
            (br#"{"v":1,"cmd":"due.move","args":{"entity":"due/x","due_at":"yesterday"}}"#, "invalid_arguments", "\"yesterday\""),
            (br#"{"v":1,"cmd":"due.move","args":{"entity":"x","due_at":"2026-03-20T10:00:00Z"}}"#, "invalid_arguments", "\"x\""),
            (br#"{"v":1,"cmd":"clock.advance","args":{"by":"3 days"}}"#, "invalid_arguments", "\"3 days\""),
            (br#"{"v":1,"cmd":"show","args":{"entity":"due/x","colour":1}}"#, "invalid_arguments", "colour"),
        ] {
            let err = parse_request(line, &Families::default()).unwrap_err();
            assert_eq!(err.code, code, "{}", String::from_utf8_lossy(line));
            assert!(err.message.contains(named), "{}: {}", code, err.message);
        }
    }
}
