//! `tickler serve --cluster FILE`: a node of a cluster whose shard logs live in PostgreSQL.
//!
//! The node runs a lease host (`tickler_cluster::LeaseHost`) and, for each shard it holds, one
//! engine on a [`LoggedStore`] over the shard's own sled directory,
//! `<data dir>/shards/<shard>`, caught up from the log before it serves. The admin socket
//! sends each command to the engine of its entity's shard, or answers `not_owner` naming the
//! node that serves it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use anyhow::Context;
use serde_json::{Value, json};
use tickler::cluster_file::ClusterFile;
use tickler::config::{ClockMode, Config};
use tickler::data_dir::DataDir;
use tickler::{Clock, Engine, EntityId, SledStore, Store, SystemClock};
use tickler_admin::{OwnerBody, Shards, Target};
use tickler_cluster::{
    CatchUpError, HostConfig, Lease, LeaseHost, LoggedStore, PgOptions, PgShardLog, ShardId,
    ShardLog, ShardMap, ShardRunner, shard_of, take_over,
};
use tokio::sync::Notify;

/// Shards handed to their desired owner per tick when nodes join.
const MOVES_PER_TICK: usize = 2;

pub async fn run(
    config: Config,
    cluster_path: &Path,
    socket: Option<PathBuf>,
) -> anyhow::Result<()> {
    let cluster = ClusterFile::load(cluster_path)?;
    let mut config = config;
    if let Some(socket) = socket {
        config.socket = Some(socket);
    }
    if config.clock == ClockMode::Manual {
        anyhow::bail!(
            "cluster mode runs on the system clock: every node fires on its own, so a manual \
             clock cannot be moved for all of them; remove clock = \"manual\" or --clock manual"
        );
    }
    if let Some(addr) = config.dashboard_listen {
        anyhow::bail!(
            "dashboard_listen = \"{addr}\": a cluster node does not serve the dashboard yet (its \
             pages would show this node's shards only); remove dashboard_listen from the \
             configuration of the nodes"
        );
    }
    super::serve::init_logging(&config);
    config.catalog()?;
    let locked = DataDir::create_and_lock(&config.data_dir)?;
    let log: Arc<dyn ShardLog> = Arc::new(
        PgShardLog::connect(
            &cluster.postgres_url()?,
            &PgOptions {
                shards: cluster.shards,
                allow_async: cluster.allow_async_log,
            },
        )
        .await
        .context("cannot open the shard log")?,
    );
    let sockets = super::serve::bind_sockets(&config).await?;
    let admin_addr = std::path::absolute(config.socket_path())?;
    let map = Arc::new(ShardMap::default());
    let node = Arc::new(Node {
        config,
        cluster: cluster.clone(),
        shards_dir: locked.join("shards"),
        log: log.clone(),
        map: map.clone(),
        engines: Mutex::default(),
    });
    let host = LeaseHost::new(
        log,
        HostConfig {
            node: cluster.node.clone(),
            admin_addr: admin_addr.display().to_string(),
            shards: cluster.shards,
            lease_ttl: cluster.lease_ttl(),
            settle: cluster.settle(),
            moves_per_tick: MOVES_PER_TICK,
        },
        node.clone(),
        map,
    );
    tracing::info!(node = %cluster.node, shards = cluster.shards, socket = %admin_addr.display(), "tickler cluster node serving");
    serve(node, host, sockets).await;
    drop(locked);
    tracing::info!("tickler cluster node stopped");
    Ok(())
}

/// Serves the admin sockets until a signal or `shutdown`, then stops the host, which stops
/// every shard's engine and releases its lease.
async fn serve(node: Arc<Node>, host: LeaseHost, sockets: Vec<tickler_admin::server::Socket>) {
    let stop = Arc::new(Notify::new());
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            super::serve::wait_for_signal().await;
            tracing::info!("signal received; shutting down");
            stop.notify_one();
        });
    }
    let host_stop = Arc::new(Notify::new());
    let hosting = tokio::spawn(host.run(host_stop.clone()));
    let families = Config::command_families();
    tickler_admin::server::serve_target(Target::Sharded(node), families, sockets, stop).await;
    host_stop.notify_one();
    let _ = hosting.await;
}

/// One shard served here: its engine and the store under it.
struct Served {
    engine: Engine,
    store: Arc<LoggedStore>,
}

struct Node {
    config: Config,
    cluster: ClusterFile,
    shards_dir: PathBuf,
    log: Arc<dyn ShardLog>,
    map: Arc<ShardMap>,
    engines: Mutex<BTreeMap<ShardId, (Served, DataDir)>>,
}

impl Node {
    fn engines(&self) -> MutexGuard<'_, BTreeMap<ShardId, (Served, DataDir)>> {
        self.engines.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Opens the shard's directory and catches its copy up with the log; a copy that is ahead
    /// of the log (or not the shard's) is deleted and rebuilt from the log whole.
    async fn open_shard(&self, lease: &Lease) -> anyhow::Result<(Served, DataDir)> {
        let dir = DataDir::create_and_lock(&self.shards_dir.join(lease.shard.to_string()))?;
        let (store_dir, _) = dir.store_to_serve()?;
        let store = match self.catch_up(&store_dir, lease).await? {
            Ok(store) => store,
            Err(diverged) => {
                tracing::warn!(shard = lease.shard, reason = %diverged, "rebuilding the shard's copy from the log");
                std::fs::remove_dir_all(&store_dir)
                    .with_context(|| format!("cannot remove {}", store_dir.display()))?;
                self.catch_up(&store_dir, lease).await??
            }
        };
        let store = Arc::new(store);
        let clock: Arc<dyn Clock> = Arc::new(SystemClock);
        let engine = self
            .config
            .engine_builder(store.clone(), clock)?
            .open()
            .await?;
        Ok((Served { engine, store }, dir))
    }

    /// The caught-up store, or why the local copy cannot be used.
    async fn catch_up(
        &self,
        store_dir: &Path,
        lease: &Lease,
    ) -> anyhow::Result<Result<LoggedStore, CatchUpError>> {
        let local: Arc<dyn Store> = Arc::new(
            SledStore::open_with(store_dir, self.config.durability.store())
                .with_context(|| format!("cannot open the shard store {}", store_dir.display()))?,
        );
        match take_over(local, self.log.clone(), lease).await {
            Ok(store) => Ok(Ok(store)),
            Err(diverged @ (CatchUpError::Ahead { .. } | CatchUpError::Unstamped { .. })) => {
                Ok(Err(diverged))
            }
            Err(other) => Err(other.into()),
        }
    }
}

#[tickler::async_trait]
impl ShardRunner for Node {
    async fn start(&self, lease: Lease) -> Result<(), String> {
        let shard = lease.shard;
        let opened = self
            .open_shard(&lease)
            .await
            .map_err(|err| format!("{err:#}"))?;
        tracing::info!(shard, epoch = lease.epoch, "serving the shard");
        self.engines().insert(shard, opened);
        Ok(())
    }

    async fn stop(&self, shard: ShardId) {
        let Some((served, dir)) = self.engines().remove(&shard) else {
            return;
        };
        if let Err(error) = served.engine.shutdown().await {
            tracing::warn!(shard, %error, "the shard's engine stopped with an error");
        }
        served.store.retire();
        drop(served);
        drop(dir);
        tracing::info!(shard, "stopped serving the shard");
    }

    fn failed(&self, shard: ShardId) -> Option<String> {
        let engines = self.engines();
        let (served, _) = engines.get(&shard)?;
        served.store.stopped().map(str::to_owned)
    }
}

impl Shards for Node {
    fn engine_for(&self, entity: &EntityId) -> Result<Engine, OwnerBody> {
        let shard = shard_of(entity, self.cluster.shards);
        if let Some((served, _)) = self.engines().get(&shard)
            && served.store.stopped().is_none()
        {
            return Ok(served.engine.clone());
        }
        let route = self.map.route(shard);
        // Named as the owner but not serving (yet, or any more): no socket to go to.
        let elsewhere = route.owner.as_deref() != Some(self.cluster.node.as_str());
        Err(OwnerBody {
            shard,
            epoch: route.epoch,
            node: route.owner.clone().filter(|_| elsewhere),
            socket: route.admin_addr.clone().filter(|_| elsewhere),
        })
    }

    fn now(&self) -> tickler::Timestamp {
        SystemClock.now()
    }

    fn status(&self) -> Value {
        let served: Vec<Value> = self
            .engines()
            .iter()
            .map(|(shard, (served, _))| {
                json!({ "shard": shard, "epoch": served.store.epoch(), "head": served.store.head() })
            })
            .collect();
        let routes: Vec<Value> = self
            .map
            .routes()
            .iter()
            .enumerate()
            .map(|(shard, route)| json!({ "shard": shard, "epoch": route.epoch, "node": route.owner }))
            .collect();
        json!({
            "version": env!("CARGO_PKG_VERSION"),
            "protocol": tickler_admin::PROTOCOL_VERSION,
            "node": self.cluster.node,
            "shards": self.cluster.shards,
            "served": served,
            "routes": routes,
        })
    }
}
