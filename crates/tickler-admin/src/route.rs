//! Where the admin server sends a request: the node's one engine, or, in cluster mode, the
//! engine of the shard the request's entity lives in. A command for a shard another node
//! serves is answered `not_owner`, naming that node's socket; a command that spans entities is
//! refused in cluster mode (cross-shard routing is the next milestone).

use std::sync::Arc;

use serde_json::Value;
use tickler_core::EntityId;
use tickler_engine::Engine;

use crate::dispatch::{After, dispatch};
use crate::family::Families;
use crate::protocol::{Call, OwnerBody, Reply, Request};

/// The engines of the shards a cluster node serves, and where the others are.
pub trait Shards: Send + Sync {
    /// The engine serving `entity`'s shard on this node, or where that shard is served.
    fn engine_for(&self, entity: &EntityId) -> Result<Engine, OwnerBody>;
    /// The node's cluster status: which shards it serves, at which epochs, who has the rest.
    fn status(&self) -> Value;
    /// The node's clock reading (cluster nodes run on the system clock).
    fn now(&self) -> tickler_core::Timestamp;
}

#[derive(Clone)]
pub enum Target {
    /// A single node: every request goes to its engine.
    Single(Engine),
    /// A cluster node: requests go to the engine of their entity's shard.
    Sharded(Arc<dyn Shards>),
}

impl Target {
    /// Runs a parsed request and makes its reply.
    pub async fn run(&self, families: &Families, id: Value, call: Call) -> (Reply, After) {
        match self {
            Target::Single(engine) => reply(id, dispatch(engine, families, call).await),
            Target::Sharded(shards) => run_sharded(&**shards, families, id, call).await,
        }
    }
}

fn reply(
    id: Value,
    (result, after): (Result<Value, tickler_engine::Error>, After),
) -> (Reply, After) {
    let reply = match result {
        Ok(result) => Reply::ok(id, result),
        Err(err) => Reply::error(id, err.code(), err.to_string()),
    };
    (reply, after)
}

async fn run_sharded(
    shards: &dyn Shards,
    families: &Families,
    id: Value,
    call: Call,
) -> (Reply, After) {
    let request = match call {
        Call::Request(request) => request,
        Call::Family(call) => return (refuse_spanning(id, &call.cmd), After::KeepServing),
    };
    match request {
        Request::Status => (Reply::ok(id, shards.status()), After::KeepServing),
        Request::ClockNow => (
            Reply::ok(
                id,
                serde_json::json!({ "clock": "system", "now": shards.now() }),
            ),
            After::KeepServing,
        ),
        Request::Shutdown => (
            Reply::ok(id, serde_json::json!({ "shutting_down": true })),
            After::Shutdown,
        ),
        request => {
            let Some(entity) = request.single_entity().cloned() else {
                return (
                    refuse_spanning(id, &request_name(&request)),
                    After::KeepServing,
                );
            };
            match shards.engine_for(&entity) {
                Ok(engine) => reply(
                    id,
                    dispatch(&engine, families, Call::Request(request)).await,
                ),
                Err(owner) => (
                    Reply::not_owner(id, entity.as_str(), owner),
                    After::KeepServing,
                ),
            }
        }
    }
}

fn refuse_spanning(id: Value, cmd: &str) -> Reply {
    Reply::error(
        id,
        "not_in_cluster_mode",
        format!(
            "`{cmd}` spans entities or the whole node, which cluster mode does not route yet \
             (the next milestone); it serves status and the commands on one entity (due.*, \
             entity.*, show, history, explain, toggle, cancel, retry of one entity)"
        ),
    )
}

/// The command name of a request, as clients spell it.
fn request_name(request: &Request) -> String {
    serde_json::to_value(request)
        .ok()
        .and_then(|value| value.get("cmd").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| "this command".to_owned())
}
