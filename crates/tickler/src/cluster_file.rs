//! The cluster file of `tickler serve --cluster FILE`: who this node is and where the shard log
//! lives. The engine's settings (channels, policies, limits) stay in the usual config file and
//! are the same on every node.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use crate::Error;

/// Where the PostgreSQL connection string comes from when the file has none.
pub const POSTGRES_URL_ENV: &str = "TICKLER_POSTGRES_URL";

#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ClusterFile {
    /// This node's id: unique in the cluster, stable across restarts.
    pub node: String,
    /// The shard log's PostgreSQL, as a libpq connection string or URL (no TLS yet: loopback
    /// or a private network only). Absent: the environment variable `TICKLER_POSTGRES_URL`,
    /// which keeps a password out of the file.
    #[serde(default)]
    pub postgres_url: Option<String>,
    /// S: the number of virtual shards, fixed when the cluster is created.
    #[serde(default = "default_shards")]
    pub shards: u32,
    /// How long a shard's lease lasts unrenewed (renewed every third of it): how soon a dead
    /// node's shards are taken over.
    #[serde(default = "default_lease_ttl_ms")]
    pub lease_ttl_ms: u64,
    /// How long a node heartbeats before shards are given to it.
    #[serde(default = "default_settle_ms")]
    pub settle_ms: u64,
    /// Accept a PostgreSQL that can lose acknowledged commits (no synchronous standby):
    /// development and tests only.
    #[serde(default)]
    pub allow_async_log: bool,
}

fn default_shards() -> u32 {
    256
}

fn default_lease_ttl_ms() -> u64 {
    10_000
}

fn default_settle_ms() -> u64 {
    10_000
}

impl ClusterFile {
    pub fn load(path: &Path) -> Result<ClusterFile, Error> {
        let invalid = |reason: String| Error::Config {
            what: format!("cluster file {}", path.display()),
            reason,
        };
        let text = std::fs::read_to_string(path).map_err(|err| invalid(err.to_string()))?;
        let file: ClusterFile = toml::from_str(&text).map_err(|err| invalid(err.to_string()))?;
        file.check().map_err(invalid)?;
        Ok(file)
    }

    fn check(&self) -> Result<(), String> {
        if self.node.is_empty() || !self.node.chars().all(|c| c.is_ascii_graphic()) {
            return Err(format!(
                "node = {:?}: give a non-empty id of printable ASCII characters, unique in the \
                 cluster",
                self.node
            ));
        }
        if !(1..=65_536).contains(&self.shards) {
            return Err(format!(
                "shards = {}: use 1 to 65536 (256 is a good start)",
                self.shards
            ));
        }
        if self.lease_ttl_ms < 300 {
            return Err(format!(
                "lease_ttl_ms = {}: a lease shorter than 300 ms is renewed faster than \
                 PostgreSQL answers under load; use at least 1000",
                self.lease_ttl_ms
            ));
        }
        Ok(())
    }

    /// The PostgreSQL connection string: the file's, else `TICKLER_POSTGRES_URL`'s.
    pub fn postgres_url(&self) -> Result<String, Error> {
        match (&self.postgres_url, std::env::var(POSTGRES_URL_ENV)) {
            (Some(url), _) => Ok(url.clone()),
            (None, Ok(url)) if !url.is_empty() => Ok(url),
            _ => Err(Error::Config {
                what: "cluster file".into(),
                reason: format!(
                    "no PostgreSQL to keep the shard logs in: set postgres_url in the cluster \
                     file, or {POSTGRES_URL_ENV} (e.g. \"host=/run/postgresql user=tickler \
                     dbname=tickler\")"
                ),
            }),
        }
    }

    pub fn lease_ttl(&self) -> Duration {
        Duration::from_millis(self.lease_ttl_ms)
    }

    pub fn settle(&self) -> Duration {
        Duration::from_millis(self.settle_ms)
    }
}
