//! Past one machine (`../shared/design/scale-out.md`): entities map to a fixed number of virtual
//! shards; each shard's log of commit groups lives in a database every node reaches (PostgreSQL
//! in production), and the only agreement between nodes is that database's compare-and-set.
//!
//! A shard's owner holds a lease and an **epoch**. Acquiring a shard raises its epoch, and every
//! append names the epoch and the head it follows, so an owner that was deposed (paused past its
//! lease, cut off) appends nothing: it learns it is [`LogError::Fenced`]. Lease expiry only
//! decides *when* another node may take over; safety comes from the epoch alone.
//!
//! This crate holds the [`ShardLog`] contract, its PostgreSQL implementation ([`PgShardLog`]),
//! an in-memory one with injectable faults ([`MemoryShardLog`]) and the conformance suite both
//! pass ([`conformance`]); the store a shard's engine runs on ([`LoggedStore`]: a flush is a
//! fenced append) and the takeover that catches a local copy up with the log ([`catch_up`]).

pub mod catch_up;
pub mod conformance;
mod host;
pub mod log_record;
mod logged_store;
mod memory;
mod position;
mod postgres;
mod shard_log;

pub use catch_up::{CatchUpError, LocalCopy, take_over};
pub use host::{HostConfig, LeaseHost, Route, ShardMap, ShardRunner, desired_owner, shard_of};
pub use logged_store::LoggedStore;
pub use memory::{Fault, ManualTime, MemoryShardLog};
pub use position::{POSITION_META, Position};
pub use postgres::{PgOptions, PgShardLog, SCHEMA_FORMAT};
pub use shard_log::{
    Epoch, Lease, LogError, LogRecord, NodeInfo, Seq, ShardId, ShardLog, ShardState,
};
