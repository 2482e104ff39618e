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
        self.postgres_url_or(std::env::var(POSTGRES_URL_ENV).ok())
    }

    /// The file's URL, else `from_env` (the variable's value, if set).
    fn postgres_url_or(&self, from_env: Option<String>) -> Result<String, Error> {
        match (&self.postgres_url, from_env) {
            (Some(url), _) => Ok(url.clone()),
            (None, Some(url)) if !url.is_empty() => Ok(url),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<ClusterFile, Error> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("cluster.toml");
        std::fs::write(&path, text).unwrap();
        ClusterFile::load(&path)
    }

    fn refusal(text: &str) -> String {
        load(text).unwrap_err().to_string()
    }

    #[test]
    fn a_minimal_file_takes_the_defaults() {
        let file = load("node = \"node-a\"\npostgres_url = \"host=/run/pg\"\n").unwrap();
        assert_eq!(file.shards, 256);
        assert_eq!(file.lease_ttl(), Duration::from_secs(10));
        assert!(!file.allow_async_log);
        assert_eq!(file.postgres_url().unwrap(), "host=/run/pg");
    }

    #[test]
    fn bad_values_are_refused_naming_the_setting_and_the_value() {
        let text = refusal("node = \"node a\"\n");
        assert!(text.contains("node = \"node a\""), "{text}");
        let text = refusal("node = \"a\"\nshards = 0\n");
        assert!(text.contains("shards = 0"), "{text}");
        let text = refusal("node = \"a\"\nlease_ttl_ms = 50\n");
        assert!(text.contains("lease_ttl_ms = 50"), "{text}");
        let text = refusal("node = \"a\"\nshard = 8\n");
        assert!(text.contains("unknown field `shard`"), "{text}");
    }

    #[test]
    fn the_url_comes_from_the_file_else_the_environment_else_an_error_says_where_to_put_one() {
        let file = load("node = \"a\"\n").unwrap();
        let from_env = file.postgres_url_or(Some("host=/env".to_owned())).unwrap();
        assert_eq!(from_env, "host=/env");
        let text = file.postgres_url_or(None).unwrap_err().to_string();
        assert!(
            text.contains("postgres_url") && text.contains(POSTGRES_URL_ENV),
            "{text}"
        );
        let file = load("node = \"a\"\npostgres_url = \"host=/file\"\n").unwrap();
        let from_file = file.postgres_url_or(Some("host=/env".to_owned())).unwrap();
        assert_eq!(from_file, "host=/file");
    }
}
