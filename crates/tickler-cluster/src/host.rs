//! The lease host: one per node. Every tick it heartbeats, renews the leases it holds, takes the
//! shards it is the desired owner of, gives up the ones it is not, and stops a shard whose
//! lease or store was lost. What "serving a shard" means (catch up, run an engine) is the
//! [`ShardRunner`]'s business, so this loop knows leases and nothing of engines.
//!
//! The desired owner of a shard is chosen by rendezvous hashing over the settled live nodes:
//! no coordinator, each node computes the same answer from the same heartbeats, and a node
//! joining or leaving moves only the shards it wins or held. Desired ownership is advice; only
//! the lease's compare-and-set grants a shard.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use tickler_core::EntityId;
use tickler_core::seed::stable_hash;
use tokio::sync::Notify;

use crate::shard_log::{Lease, LogError, NodeInfo, ShardId, ShardLog, ShardState};

/// How a node takes part in the cluster.
#[derive(Clone, Debug)]
pub struct HostConfig {
    pub node: String,
    /// The admin socket this node serves, told to clients sent here.
    pub admin_addr: String,
    pub shards: u32,
    /// How long a lease lasts unrenewed; the host renews every third of it.
    pub lease_ttl: Duration,
    /// How long a node must have been heartbeating before shards are given to it, so nodes
    /// starting together do not grab every shard and hand them back.
    pub settle: Duration,
    /// Shards given up per tick to their desired owner (graceful moves), so a joining node
    /// does not make every owner drain at once.
    pub moves_per_tick: usize,
}

/// Serves shards for the host.
#[async_trait]
pub trait ShardRunner: Send + Sync {
    /// Serves the shard under `lease`: catches its local copy up with the log, then starts.
    async fn start(&self, lease: Lease) -> Result<(), String>;
    /// Stops serving the shard, letting what is in flight finish where it can.
    async fn stop(&self, shard: ShardId);
    /// Why the shard's store stopped on its own (fenced, the log unreachable), if it has.
    fn failed(&self, shard: ShardId) -> Option<String>;
}

/// The shard of an entity: `stable_hash(id) mod S`.
pub fn shard_of(entity: &EntityId, shards: u32) -> ShardId {
    (stable_hash(&[entity.as_str().as_bytes()]) % u64::from(shards)) as ShardId
}

/// Where a shard is served, as this node last saw it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Route {
    pub epoch: u64,
    pub owner: Option<String>,
    pub admin_addr: Option<String>,
    /// Whether this node serves it now.
    pub here: bool,
}

/// The routes of every shard, refreshed each tick; read by the admin server.
#[derive(Default)]
pub struct ShardMap {
    routes: RwLock<Vec<Route>>,
}

impl ShardMap {
    pub fn route(&self, shard: ShardId) -> Route {
        let routes = self.routes.read().unwrap_or_else(|p| p.into_inner());
        routes.get(shard as usize).cloned().unwrap_or_default()
    }

    pub fn routes(&self) -> Vec<Route> {
        self.routes
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    fn set(&self, routes: Vec<Route>) {
        *self.routes.write().unwrap_or_else(|p| p.into_inner()) = routes;
    }
}

pub struct LeaseHost {
    log: Arc<dyn ShardLog>,
    config: HostConfig,
    runner: Arc<dyn ShardRunner>,
    held: BTreeMap<ShardId, Lease>,
    /// When this node first saw each live node (itself included).
    first_seen: HashMap<String, Instant>,
    map: Arc<ShardMap>,
}

impl LeaseHost {
    /// A host publishing what it sees of the shards to `map` (which the admin server reads).
    pub fn new(
        log: Arc<dyn ShardLog>,
        config: HostConfig,
        runner: Arc<dyn ShardRunner>,
        map: Arc<ShardMap>,
    ) -> Self {
        LeaseHost {
            log,
            config,
            runner,
            held: BTreeMap::new(),
            first_seen: HashMap::new(),
            map,
        }
    }

    pub fn map(&self) -> Arc<ShardMap> {
        self.map.clone()
    }

    /// The shards this node serves, with their leases.
    pub fn held(&self) -> impl Iterator<Item = &Lease> {
        self.held.values()
    }

    /// Ticks every third of the lease TTL until `stop`, then stops every shard and releases
    /// its lease, so the other nodes take over without waiting for expiry.
    pub async fn run(mut self, stop: Arc<Notify>) {
        let period = self.config.lease_ttl / 3;
        loop {
            self.tick().await;
            tokio::select! {
                _ = tokio::time::sleep(period) => {}
                _ = stop.notified() => break,
            }
        }
        for (shard, lease) in std::mem::take(&mut self.held) {
            self.runner.stop(shard).await;
            if let Err(error) = self.log.release(shard, lease.epoch).await {
                tracing::warn!(shard, %error, "cannot release the lease; it expires on its own");
            }
        }
    }

    /// One round: heartbeat, renew, move, acquire, and refresh the routes.
    pub async fn tick(&mut self) {
        let config = &self.config;
        if let Err(error) = self.log.heartbeat(&config.node, &config.admin_addr).await {
            tracing::warn!(%error, "cannot heartbeat into the shard log");
        }
        self.renew_or_stop().await;
        let (live, map) = match self.observe().await {
            Ok(seen) => seen,
            Err(error) => {
                tracing::warn!(%error, "cannot read the shard map; serving what is held");
                return;
            }
        };
        let settled = self.settled(&live);
        if settled.iter().any(|node| node.node == self.config.node) {
            self.give_up_moved(&settled).await;
            self.take_desired(&settled, &map).await;
        }
        self.publish(&live, &map);
    }

    async fn renew_or_stop(&mut self) {
        let held: Vec<Lease> = self.held.values().cloned().collect();
        for lease in held {
            let shard = lease.shard;
            if let Some(reason) = self.runner.failed(shard) {
                tracing::error!(shard, %reason, "the shard's store stopped; stopping the shard");
                self.drop_shard(&lease).await;
                continue;
            }
            match self
                .log
                .renew(shard, lease.epoch, self.config.lease_ttl)
                .await
            {
                Ok(()) => {}
                Err(error @ (LogError::Lost { .. } | LogError::Fenced { .. })) => {
                    tracing::error!(shard, %error, "lease lost; stopping the shard");
                    self.runner.stop(shard).await;
                    self.held.remove(&shard);
                }
                // Safety does not rest on the lease: a later append is fenced if it expired.
                Err(error) => tracing::warn!(shard, %error, "cannot renew the lease"),
            }
        }
    }

    async fn drop_shard(&mut self, lease: &Lease) {
        self.runner.stop(lease.shard).await;
        self.held.remove(&lease.shard);
        let _ = self.log.release(lease.shard, lease.epoch).await;
    }

    async fn observe(&self) -> Result<(Vec<NodeInfo>, Vec<ShardState>), LogError> {
        let live = self.log.live_nodes(self.config.lease_ttl).await?;
        let map = self.log.shard_map().await?;
        Ok((live, map))
    }

    /// The live nodes seen for at least `settle`.
    fn settled(&mut self, live: &[NodeInfo]) -> Vec<NodeInfo> {
        let now = Instant::now();
        self.first_seen
            .retain(|node, _| live.iter().any(|info| &info.node == node));
        live.iter()
            .filter(|info| {
                let first = *self.first_seen.entry(info.node.clone()).or_insert(now);
                now.duration_since(first) >= self.config.settle
            })
            .cloned()
            .collect()
    }

    /// Hands shards this node holds but does not win to their desired owner, a few per tick.
    async fn give_up_moved(&mut self, settled: &[NodeInfo]) {
        let moving: Vec<Lease> = self
            .held
            .values()
            .filter(|lease| desired_owner(lease.shard, settled) != Some(&self.config.node))
            .take(self.config.moves_per_tick)
            .cloned()
            .collect();
        for lease in moving {
            tracing::info!(shard = lease.shard, "moving the shard to its desired owner");
            self.drop_shard(&lease).await;
        }
    }

    /// Takes the shards this node wins whose lease is free (expired, released or never taken).
    async fn take_desired(&mut self, settled: &[NodeInfo], map: &[ShardState]) {
        for state in map {
            let shard = state.shard;
            let mine = desired_owner(shard, settled) == Some(&self.config.node);
            if self.held.contains_key(&shard) || state.leased || !mine {
                continue;
            }
            match self
                .log
                .acquire(shard, &self.config.node, self.config.lease_ttl)
                .await
            {
                Ok(lease) => self.start(lease).await,
                Err(LogError::Held { .. }) => {}
                Err(error) => tracing::warn!(shard, %error, "cannot acquire the shard"),
            }
        }
    }

    async fn start(&mut self, lease: Lease) {
        let shard = lease.shard;
        tracing::info!(
            shard,
            epoch = lease.epoch,
            head = lease.head,
            "shard acquired; catching up"
        );
        match self.runner.start(lease.clone()).await {
            Ok(()) => {
                self.held.insert(shard, lease);
            }
            Err(reason) => {
                tracing::error!(shard, %reason, "cannot serve the shard; releasing it");
                let _ = self.log.release(shard, lease.epoch).await;
            }
        }
    }

    fn publish(&self, live: &[NodeInfo], map: &[ShardState]) {
        let addr = |owner: &str| {
            live.iter()
                .find(|info| info.node == owner)
                .map(|info| info.admin_addr.clone())
        };
        let routes = map
            .iter()
            .map(|state| Route {
                epoch: state.epoch,
                owner: state.owner.clone().filter(|_| state.leased),
                admin_addr: state
                    .owner
                    .as_deref()
                    .filter(|_| state.leased)
                    .and_then(addr),
                here: self.held.contains_key(&state.shard),
            })
            .collect();
        self.map.set(routes);
    }
}

/// Rendezvous hashing: the node with the highest hash of (shard, node) wins the shard.
pub fn desired_owner(shard: ShardId, nodes: &[NodeInfo]) -> Option<&String> {
    nodes
        .iter()
        .max_by_key(|info| {
            (
                stable_hash(&[&shard.to_be_bytes(), info.node.as_bytes()]),
                &info.node,
            )
        })
        .map(|info| &info.node)
}
