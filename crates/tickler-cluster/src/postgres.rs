//! The shard log in PostgreSQL (`scale-out.md` §5.3): every lease change and append is one
//! statement, so PostgreSQL's row lock on the shard is the only agreement between nodes.

use std::time::Duration;

use async_trait::async_trait;
use tokio_postgres::{Client, NoTls};

use crate::shard_log::{
    Epoch, Lease, LogError, LogRecord, NodeInfo, Seq, ShardId, ShardLog, ShardState,
};

/// The version of the tables below (`proto/shard-log.md`): a node refuses a database whose
/// tables another version made.
pub const SCHEMA_FORMAT: i32 = 1;

/// The tables, created if absent. `tickler_cluster` holds S, fixed when the cluster is created,
/// and the schema's format.
const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS tickler_cluster (
    id boolean PRIMARY KEY DEFAULT true CHECK (id),
    shards integer NOT NULL,
    format integer NOT NULL
);
CREATE TABLE IF NOT EXISTS tickler_shard (
    shard integer PRIMARY KEY,
    epoch bigint NOT NULL DEFAULT 0,
    owner text,
    lease_until timestamptz NOT NULL DEFAULT '-infinity',
    head bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS tickler_node (
    node text PRIMARY KEY,
    admin_addr text NOT NULL,
    heartbeat timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS tickler_log (
    shard integer NOT NULL,
    seq bigint NOT NULL,
    epoch bigint NOT NULL,
    record bytea NOT NULL,
    PRIMARY KEY (shard, seq)
);";

/// The advisory lock key taken while the tables are created ("tickler" in ASCII).
const SCHEMA_LOCK: i64 = 0x0074_6963_6b6c_6572;

/// A lease is granted only when the last one has expired (by PostgreSQL's clock) or was
/// released; the epoch goes up in the same statement.
const ACQUIRE: &str = "
UPDATE tickler_shard
   SET epoch = epoch + 1, owner = $2, lease_until = clock_timestamp() + make_interval(secs => $3)
 WHERE shard = $1 AND lease_until < clock_timestamp()
RETURNING epoch, head";

const RENEW: &str = "
UPDATE tickler_shard SET lease_until = clock_timestamp() + make_interval(secs => $3)
 WHERE shard = $1 AND epoch = $2";

const RELEASE: &str =
    "UPDATE tickler_shard SET lease_until = '-infinity' WHERE shard = $1 AND epoch = $2";

/// The fenced append: the head moves only under the caller's epoch and from the head it names,
/// and the record is written in the same statement (one implicit transaction).
const APPEND: &str = "
WITH moved AS (
    UPDATE tickler_shard SET head = head + 1
     WHERE shard = $1 AND epoch = $2 AND head = $3
    RETURNING head
)
INSERT INTO tickler_log (shard, seq, epoch, record) SELECT $1, head, $2, $4 FROM moved
RETURNING seq";

/// Why an append was refused: the shard's epoch and head, and the record already at the seq.
const APPEND_REFUSED: &str = "
SELECT s.epoch, s.head, l.epoch, l.record
  FROM tickler_shard s
  LEFT JOIN tickler_log l ON l.shard = s.shard AND l.seq = $2
 WHERE s.shard = $1";

const HEARTBEAT: &str = "
INSERT INTO tickler_node (node, admin_addr, heartbeat) VALUES ($1, $2, clock_timestamp())
ON CONFLICT (node) DO UPDATE SET admin_addr = $2, heartbeat = clock_timestamp()";

const LIVE_NODES: &str = "
SELECT node, admin_addr FROM tickler_node
 WHERE heartbeat >= clock_timestamp() - make_interval(secs => $1) ORDER BY node";

const SHARD_MAP: &str = "
SELECT shard, epoch, owner, lease_until >= clock_timestamp() FROM tickler_shard ORDER BY shard";

pub struct PgShardLog {
    client: Client,
    shards: u32,
}

/// How a node connects to the cluster's shard log.
#[derive(Clone, Debug)]
pub struct PgOptions {
    /// S: fixed when the cluster is created; a node configured otherwise is refused.
    pub shards: u32,
    /// Accept a server whose commits can be lost (no synchronous standby, or
    /// `synchronous_commit` off or local): for development and tests only, since a failover
    /// may then lose acknowledged reminders.
    pub allow_async: bool,
}

impl PgShardLog {
    /// Connects (`url`: a libpq connection string or URL; no TLS), checks the server's commits
    /// are synchronous (unless allowed otherwise), creates the tables if need be, and checks
    /// that the cluster has `options.shards` shards, recording it if it is new.
    pub async fn connect(url: &str, options: &PgOptions) -> Result<PgShardLog, LogError> {
        let shards = options.shards;
        let (client, connection) = tokio_postgres::connect(url, NoTls)
            .await
            .map_err(unavailable)?;
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                // Every later call fails with `Unavailable`, which says why.
                tracing::warn!(error = %err, "the PostgreSQL connection of the shard log ended");
            }
        });
        if let Some(reason) = asynchronous(&client).await?
            && !options.allow_async
        {
            return Err(LogError::Asynchronous { reason });
        }
        // Nodes starting together would race on `CREATE TABLE IF NOT EXISTS` (PostgreSQL
        // checks the name before it takes a lock): one transaction-scoped advisory lock orders them.
        client
            .batch_execute(&format!(
                "BEGIN; SELECT pg_advisory_xact_lock({SCHEMA_LOCK}); {SCHEMA} COMMIT;"
            ))
            .await
            .map_err(unavailable)?;
        client
            .execute(
                "INSERT INTO tickler_cluster (shards, format) VALUES ($1, $2) \
                 ON CONFLICT DO NOTHING",
                &[&(shards as i32), &SCHEMA_FORMAT],
            )
            .await
            .map_err(unavailable)?;
        let row = client
            .query_one("SELECT shards, format FROM tickler_cluster", &[])
            .await
            .map_err(unavailable)?;
        let format = row.get::<_, i32>(1);
        if format != SCHEMA_FORMAT {
            return Err(LogError::SchemaFormat {
                found: format,
                known: SCHEMA_FORMAT,
            });
        }
        let recorded = row.get::<_, i32>(0) as u32;
        if recorded != shards {
            return Err(LogError::ShardCount {
                configured: shards,
                recorded,
            });
        }
        client
            .execute(
                "INSERT INTO tickler_shard (shard) SELECT generate_series(0, $1 - 1) \
                 ON CONFLICT DO NOTHING",
                &[&(shards as i32)],
            )
            .await
            .map_err(unavailable)?;
        Ok(PgShardLog { client, shards })
    }

    fn check(&self, shard: ShardId) -> Result<i32, LogError> {
        if shard >= self.shards {
            return Err(LogError::NoSuchShard {
                shard,
                last: self.shards - 1,
            });
        }
        Ok(shard as i32)
    }

    async fn refused_append(
        &self,
        shard: ShardId,
        epoch: Epoch,
        seq: Seq,
        bytes: &[u8],
    ) -> Result<Seq, LogError> {
        let row = self
            .client
            .query_one(APPEND_REFUSED, &[&(shard as i32), &(seq as i64)])
            .await
            .map_err(unavailable)?;
        let (current, head) = (row.get::<_, i64>(0) as Epoch, row.get::<_, i64>(1) as Seq);
        let existing: Option<(i64, Vec<u8>)> = row
            .get::<_, Option<i64>>(2)
            .map(|written_by| (written_by, row.get(3)));
        match existing {
            Some((written_by, record)) if written_by as Epoch == epoch && record == bytes => {
                Ok(seq)
            }
            _ if current != epoch => Err(LogError::Fenced {
                shard,
                epoch,
                current,
            }),
            _ => Err(LogError::Conflict { shard, seq, head }),
        }
    }
}

/// Why an acknowledged commit of this server could be lost, if it could.
async fn asynchronous(client: &Client) -> Result<Option<String>, LogError> {
    let setting = |name: &'static str| async move {
        let row = client
            .query_one(&format!("SHOW {name}"), &[])
            .await
            .map_err(unavailable)?;
        Ok::<String, LogError>(row.get(0))
    };
    let commit = setting("synchronous_commit").await?;
    let standbys = setting("synchronous_standby_names").await?;
    Ok(if matches!(commit.as_str(), "off" | "local") {
        Some(format!("synchronous_commit is {commit}"))
    } else if standbys.trim().is_empty() {
        Some("synchronous_standby_names is empty: no standby confirms a commit".to_owned())
    } else {
        None
    })
}

/// The error with what PostgreSQL said, when it said something ("db error" alone names
/// nothing).
fn unavailable(err: tokio_postgres::Error) -> LogError {
    LogError::Unavailable(match err.as_db_error() {
        Some(db) => format!("PostgreSQL error {}: {}", db.code().code(), db.message()),
        None => err.to_string(),
    })
}

#[async_trait]
impl ShardLog for PgShardLog {
    async fn acquire(&self, shard: ShardId, node: &str, ttl: Duration) -> Result<Lease, LogError> {
        let id = self.check(shard)?;
        let rows = self
            .client
            .query(ACQUIRE, &[&id, &node, &ttl.as_secs_f64()])
            .await
            .map_err(unavailable)?;
        if let Some(row) = rows.first() {
            return Ok(Lease {
                shard,
                epoch: row.get::<_, i64>(0) as Epoch,
                head: row.get::<_, i64>(1) as Seq,
            });
        }
        let row = self
            .client
            .query_one("SELECT owner FROM tickler_shard WHERE shard = $1", &[&id])
            .await
            .map_err(unavailable)?;
        Err(LogError::Held {
            shard,
            owner: row.get::<_, Option<String>>(0).unwrap_or_default(),
        })
    }

    async fn renew(&self, shard: ShardId, epoch: Epoch, ttl: Duration) -> Result<(), LogError> {
        let id = self.check(shard)?;
        let renewed = self
            .client
            .execute(RENEW, &[&id, &(epoch as i64), &ttl.as_secs_f64()])
            .await
            .map_err(unavailable)?;
        if renewed == 1 {
            return Ok(());
        }
        let row = self
            .client
            .query_one("SELECT epoch FROM tickler_shard WHERE shard = $1", &[&id])
            .await
            .map_err(unavailable)?;
        Err(LogError::Lost {
            shard,
            epoch,
            current: row.get::<_, i64>(0) as Epoch,
        })
    }

    async fn release(&self, shard: ShardId, epoch: Epoch) -> Result<(), LogError> {
        let id = self.check(shard)?;
        self.client
            .execute(RELEASE, &[&id, &(epoch as i64)])
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn append(
        &self,
        shard: ShardId,
        epoch: Epoch,
        after: Seq,
        bytes: &[u8],
    ) -> Result<Seq, LogError> {
        let id = self.check(shard)?;
        let rows = self
            .client
            .query(APPEND, &[&id, &(epoch as i64), &(after as i64), &bytes])
            .await
            .map_err(unavailable)?;
        match rows.first() {
            Some(row) => Ok(row.get::<_, i64>(0) as Seq),
            None => self.refused_append(shard, epoch, after + 1, bytes).await,
        }
    }

    async fn read_after(
        &self,
        shard: ShardId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<LogRecord>, LogError> {
        let id = self.check(shard)?;
        let rows = self
            .client
            .query(
                "SELECT seq, epoch, record FROM tickler_log \
                 WHERE shard = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                &[&id, &(after as i64), &(max.min(i64::MAX as usize) as i64)],
            )
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| LogRecord {
                seq: row.get::<_, i64>(0) as Seq,
                epoch: row.get::<_, i64>(1) as Epoch,
                bytes: row.get(2),
            })
            .collect())
    }

    async fn head(&self, shard: ShardId) -> Result<Seq, LogError> {
        let id = self.check(shard)?;
        let row = self
            .client
            .query_one("SELECT head FROM tickler_shard WHERE shard = $1", &[&id])
            .await
            .map_err(unavailable)?;
        Ok(row.get::<_, i64>(0) as Seq)
    }
    async fn heartbeat(&self, node: &str, admin_addr: &str) -> Result<(), LogError> {
        self.client
            .execute(HEARTBEAT, &[&node, &admin_addr])
            .await
            .map_err(unavailable)?;
        Ok(())
    }

    async fn live_nodes(&self, within: Duration) -> Result<Vec<NodeInfo>, LogError> {
        let rows = self
            .client
            .query(LIVE_NODES, &[&within.as_secs_f64()])
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| NodeInfo {
                node: row.get(0),
                admin_addr: row.get(1),
            })
            .collect())
    }

    async fn shard_map(&self) -> Result<Vec<ShardState>, LogError> {
        let rows = self
            .client
            .query(SHARD_MAP, &[])
            .await
            .map_err(unavailable)?;
        Ok(rows
            .iter()
            .map(|row| ShardState {
                shard: row.get::<_, i32>(0) as ShardId,
                epoch: row.get::<_, i64>(1) as Epoch,
                owner: row.get(2),
                leased: row.get(3),
            })
            .collect())
    }
}
