//! The shard log contract: leases with epochs, and the fenced append.

use std::time::Duration;

use async_trait::async_trait;

/// A virtual shard: `stable_hash(entity id) mod S`, S fixed when the cluster is created.
pub type ShardId = u32;
/// Raised by every acquisition of a shard; an append under an older one is fenced.
pub type Epoch = u64;
/// A position in a shard's log: the first record is 1, 0 is "before the first".
pub type Seq = u64;

/// A shard held by this node: its epoch, and the log's head when it was acquired.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Lease {
    pub shard: ShardId,
    pub epoch: Epoch,
    pub head: Seq,
}

/// One record of a shard's log, with the epoch that appended it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    pub seq: Seq,
    pub epoch: Epoch,
    pub bytes: Vec<u8>,
}

/// A node that heartbeats, and the admin socket it serves (where clients are sent).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeInfo {
    pub node: String,
    pub admin_addr: String,
}

/// Who holds a shard, as the log records it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardState {
    pub shard: ShardId,
    pub epoch: Epoch,
    /// The last node to acquire it (`None`: never acquired).
    pub owner: Option<String>,
    /// Whether that node's lease is current (not expired, not released).
    pub leased: bool,
}

#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogError {
    #[error(
        "shard {shard} is leased to node {owner} until its lease expires; it can be taken after"
    )]
    Held { shard: ShardId, owner: String },
    #[error(
        "shard {shard}: epoch {epoch} is fenced by epoch {current}: another node owns the shard, \
         stop serving it"
    )]
    Fenced {
        shard: ShardId,
        epoch: Epoch,
        current: Epoch,
    },
    #[error(
        "shard {shard}: cannot append at {seq}: the log's head is {head} and its record {seq} \
         differs; the local copy is behind or ahead of the log and must be rebuilt from it"
    )]
    Conflict { shard: ShardId, seq: Seq, head: Seq },
    #[error(
        "shard {shard}: the lease of epoch {epoch} is lost (the shard is at epoch {current}); \
         stop serving it"
    )]
    Lost {
        shard: ShardId,
        epoch: Epoch,
        current: Epoch,
    },
    #[error(
        "this node is configured with {configured} shards, but the cluster was created with \
         {recorded}: the shard count is fixed when a cluster is created; set it to {recorded}"
    )]
    ShardCount { configured: u32, recorded: u32 },
    #[error(
        "the shard log's tables are of format {found}, this tickler knows format {known}: run \
         the tickler version that made them, or one that migrates them"
    )]
    SchemaFormat { found: i32, known: i32 },
    #[error(
        "the shard log's PostgreSQL can lose acknowledged commits ({reason}): configure a \
         synchronous standby and synchronous_commit = on, or allow an asynchronous log \
         (development only)"
    )]
    Asynchronous { reason: String },
    #[error("shard {shard} does not exist: the cluster has shards 0 to {last}")]
    NoSuchShard { shard: ShardId, last: ShardId },
    /// The log could not be reached, or did not answer: for an append, whether it took effect
    /// is unknown until the record is read back (or appended again: an identical re-append is
    /// accepted).
    #[error("the shard log is unavailable: {0}")]
    Unavailable(String),
}

/// The log of every shard, and the leases on them.
#[async_trait]
pub trait ShardLog: Send + Sync {
    /// Takes `shard` for `node` for `ttl`, if its lease has expired or was released: the epoch
    /// goes up by one, and the lease carries the log's head.
    async fn acquire(&self, shard: ShardId, node: &str, ttl: Duration) -> Result<Lease, LogError>;

    /// Extends the lease of `epoch` by `ttl` from now; `Lost` if another epoch took the shard.
    async fn renew(&self, shard: ShardId, epoch: Epoch, ttl: Duration) -> Result<(), LogError>;

    /// Gives the shard up at once (a graceful stop), so another node need not wait for expiry.
    async fn release(&self, shard: ShardId, epoch: Epoch) -> Result<(), LogError>;

    /// Appends `bytes` as record `after + 1`, if `epoch` is the shard's and its head is `after`:
    /// one atomic step. Appending again the record already at `after + 1` (the same bytes, from
    /// the same epoch) is accepted: it settles an append whose outcome was unknown.
    async fn append(
        &self,
        shard: ShardId,
        epoch: Epoch,
        after: Seq,
        bytes: &[u8],
    ) -> Result<Seq, LogError>;

    /// Up to `max` records after `after`, in order.
    async fn read_after(
        &self,
        shard: ShardId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<LogRecord>, LogError>;

    /// The seq of the shard's last record (0 if none).
    async fn head(&self, shard: ShardId) -> Result<Seq, LogError>;

    /// Records that `node` is alive and serves its admin socket at `admin_addr`.
    async fn heartbeat(&self, node: &str, admin_addr: &str) -> Result<(), LogError>;

    /// The nodes that heartbeated at most `within` ago (by the log's clock), ordered by name.
    async fn live_nodes(&self, within: Duration) -> Result<Vec<NodeInfo>, LogError>;

    /// Every shard's epoch and holder, ordered by shard.
    async fn shard_map(&self) -> Result<Vec<ShardState>, LogError>;
}
