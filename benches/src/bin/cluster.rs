//! What cluster mode costs one node (issue 25), measured against a private PostgreSQL that
//! syncs its commits (`initdb` in `$TMPDIR`, `fsync` on, no standby: a synchronous standby adds
//! one network round trip per append on top of what is measured here).
//!
//! ```text
//! cargo run --release -p tickler-benches --bin cluster -- [N] [C]
//! ```
//!
//! 1. **The log's cost:** N one-shot timers (due in a day, so nothing fires) created by C
//!    concurrent callers, each call returning once durable, first on a single node's sled store
//!    (`durability = "process"`), then on a `LoggedStore` over a fresh sled copy, whose flush is
//!    the fenced append to PostgreSQL. Reported: creates/s of each and their ratio, appends/s,
//!    commits per append, and the bytes per event the log takes in PostgreSQL.
//! 2. **Takeover:** the shard is released and taken again by a node with no copy: the time to
//!    catch a fresh sled copy up from the whole log, and to open an engine on it.
//! 3. **Failover:** two daemons (`target/release/tickler serve --cluster`, S = 8, lease TTL 2 s)
//!    deliver 800 timers due over 8 s to a webhook receiver in this process; 3 s in, the node
//!    with the most shards is killed (SIGKILL). Reported: the time from the kill to the first
//!    arrival of one of its timers due after the kill (so sent by the survivor, overdue by
//!    then), and the worst lateness of its timers against the survivor's own.
//! 4. **One node against three:** N timers (due in a day) created through the admin sockets of
//!    a one-node and then a three-node cluster (S = 8, a fresh database each), by C callers that
//!    keep one connection per node and send each create to its shard's owner, as a client that
//!    knows the shard map does. Reported: durable creates/s of each and their ratio. On this
//!    2-core machine the three nodes share the same cores and disk: no speed-up is expected.
//!
//! stdout: one JSON line; stderr: the same as a table.

// The tests' private server; `start` (without fsync) is theirs.
#[path = "../../../tests/src/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;
use std::sync::Mutex;

use tickler::{CallbackChannel, Clock, Engine, EntityId, SledStore, Store, SystemClock};
use tickler_admin::protocol::EntityCreate;
use tickler_admin::{Call, Client, Request};
use tickler_benches::daemon::Daemon;
use tickler_benches::{fill, oneshot_timer, shipped_config};
use tickler_cluster::{Lease, LoggedStore, PgOptions, PgShardLog, ShardLog, shard_of, take_over};

const LEASE_TTL: Duration = Duration::from_secs(600);

async fn engine_on(store: Arc<dyn Store>, dir: &Path) -> Engine {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    Engine::builder()
        .options(shipped_config(dir).engine)
        .store(store)
        .clock(Arc::new(SystemClock))
        .catalog(
            tickler::load_catalog(&config.join("policies"), &config.join("templates")).unwrap(),
        )
        .channel(
            "file",
            Arc::new(CallbackChannel(|_: &tickler::Message| {
                Ok("dropped".to_owned())
            })),
        )
        .open()
        .await
        .unwrap()
}

/// Creates `count` timers due in a day from `callers` tasks; returns the seconds it took.
async fn load(engine: &Engine, count: usize, callers: usize) -> f64 {
    let at = SystemClock.now().saturating_add(tickler::Span::days(1));
    fill(engine, count, callers, move |i| oneshot_timer(i, at))
        .await
        .as_secs_f64()
}

async fn logged_store(log: &Arc<PgShardLog>, lease: &Lease, dir: &Path) -> Arc<LoggedStore> {
    let local: Arc<dyn Store> = Arc::new(SledStore::open(dir).unwrap());
    Arc::new(take_over(local, log.clone(), lease).await.unwrap())
}

/// The log's size in PostgreSQL: the table with its index and TOAST, and its records alone.
async fn log_bytes(url: &str) -> (i64, i64) {
    let (client, connection) = tokio_postgres::connect(url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let row = client
        .query_one(
            "SELECT pg_total_relation_size('tickler_log'), sum(octet_length(record))::bigint \
             FROM tickler_log",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let count: usize = args.next().map_or(25_000, |a| a.parse().unwrap());
    let callers: usize = args.next().map_or(64, |a| a.parse().unwrap());
    let pg = postgres::PgServer::start_durable().expect("PostgreSQL is installed");
    let url = pg.url("postgres");
    let work = tempfile::tempdir().unwrap();

    // 1a. A single node.
    let single: Arc<dyn Store> = Arc::new(SledStore::open(&work.path().join("single")).unwrap());
    let engine = engine_on(single.clone(), work.path()).await;
    let single_secs = load(&engine, count, callers).await;
    engine.shutdown().await.unwrap();
    let events = single.stats().unwrap().events;

    // 1b. The same on a logged store.
    let log = Arc::new(
        PgShardLog::connect(
            &url,
            &PgOptions {
                shards: 1,
                allow_async: true,
            },
        )
        .await
        .unwrap(),
    );
    let lease = log.acquire(0, "bench", LEASE_TTL).await.unwrap();
    let logged = logged_store(&log, &lease, &work.path().join("logged")).await;
    let engine = engine_on(logged.clone(), work.path()).await;
    let logged_secs = load(&engine, count, callers).await;
    engine.shutdown().await.unwrap();
    logged.retire();
    let appends = log.head(0).await.unwrap();
    let (table_bytes, record_bytes) = log_bytes(&url).await;

    // 2. Takeover by a node with no copy.
    log.release(0, lease.epoch).await.unwrap();
    let lease = log.acquire(0, "bench-2", LEASE_TTL).await.unwrap();
    let started = Instant::now();
    let taken = logged_store(&log, &lease, &work.path().join("taken")).await;
    let catch_up_secs = started.elapsed().as_secs_f64();
    let engine = engine_on(taken.clone(), work.path()).await;
    let takeover_secs = started.elapsed().as_secs_f64();
    let taken_events = taken.stats().unwrap().events;
    engine.shutdown().await.unwrap();

    drop(log);
    // A cluster of 8 shards needs a database of its own: this one was made with 1.
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .batch_execute("CREATE DATABASE failover")
        .await
        .unwrap();
    let failover = failover(&pg.url("failover"), work.path()).await;

    let one_node =
        cluster_creates_per_s(&pg, &client, "load1", 1, work.path(), count, callers).await;
    let three_nodes =
        cluster_creates_per_s(&pg, &client, "load3", 3, work.path(), count, callers).await;

    let figures = json!({
        "cluster_one_node_creates_per_s": one_node,
        "cluster_three_nodes_creates_per_s": three_nodes,
        "three_nodes_over_one": three_nodes / one_node,
        "failover_kill_to_first_overdue_fire_ms": failover.first_fire_ms,
        "failover_worst_lateness_of_its_timers_ms": failover.worst_moved_ms,
        "failover_worst_lateness_of_the_others_ms": failover.worst_other_ms,
        "failover_shards_moved": failover.moved,
        "timers": count,
        "callers": callers,
        "events": events,
        "single_node_creates_per_s": count as f64 / single_secs,
        "logged_creates_per_s": count as f64 / logged_secs,
        "logged_over_single": single_secs / logged_secs,
        "appends": appends,
        "appends_per_s": appends as f64 / logged_secs,
        "commits_per_append": count as f64 / appends as f64,
        "log_table_bytes_per_event": table_bytes as f64 / events as f64,
        "log_record_bytes_per_event": record_bytes as f64 / events as f64,
        "takeover_events": taken_events,
        "takeover_catch_up_s": catch_up_secs,
        "takeover_with_engine_open_s": takeover_secs,
        "catch_up_events_per_s": taken_events as f64 / catch_up_secs,
    });
    println!("{figures}");
    for (name, value) in figures.as_object().unwrap() {
        eprintln!("{name:>30}  {value}");
    }
}

const FAILOVER_SHARDS: u32 = 8;
const FAILOVER_TIMERS: usize = 800;
const SECRET_ENV: &str = "TICKLER_CLUSTER_BENCH_SECRET";

struct Failover {
    first_fire_ms: f64,
    worst_moved_ms: f64,
    worst_other_ms: f64,
    moved: usize,
}

/// A node's config: the bench's one-shot policy, deliveries to the receiver.
fn node_config(work: &Path, receiver: std::net::SocketAddr) -> std::path::PathBuf {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("config");
    let text = format!(
        "policies = {policies:?}\ntemplates = {templates:?}\nlearning = {learning:?}\n\
         clock = \"system\"\n\n[log]\nfilter = \"warn\"\n\n\
         [channels.file]\nkind = \"webhook\"\nurl = \"http://{receiver}/fire\"\n\
         allow_hosts = [\"127.0.0.1\"]\nallow_private = true\nsecret_env = \"{SECRET_ENV}\"\n",
        policies = config.join("policies"),
        templates = config.join("templates"),
        learning = work.join("no-seeds"),
    );
    let path = work.join("node.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn start_node(work: &Path, config: &Path, url: &str, name: &str) -> Daemon {
    let cluster = work.join(format!("{name}.cluster.toml"));
    std::fs::write(
        &cluster,
        format!(
            "node = \"{name}\"\npostgres_url = \"{url}\"\nshards = {FAILOVER_SHARDS}\n\
             lease_ttl_ms = 2000\nsettle_ms = 1000\nallow_async_log = true\n"
        ),
    )
    .unwrap();
    let dir = work.join(name);
    let (dir_arg, cluster_arg) = (dir.display().to_string(), cluster.display().to_string());
    Daemon::start(
        config,
        &dir.join("admin/tickler.sock"),
        &["--data-dir", &dir_arg, "--cluster", &cluster_arg],
        &[(SECRET_ENV, "bench")],
        &work.join(format!("{name}.log")),
    )
}

/// The shards each node serves, once all are served.
async fn served(nodes: &[&Daemon]) -> Vec<Vec<u32>> {
    loop {
        let mut all = Vec::new();
        for node in nodes {
            let mut client = Client::connect(&node.socket).await.unwrap();
            let reply = client.call(Request::Status).await.unwrap();
            let result = reply.result.unwrap_or_default();
            let shards: Vec<u32> = result["served"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|s| s["shard"].as_u64().map(|s| s as u32))
                .collect();
            all.push(shards);
        }
        if all.iter().map(Vec::len).sum::<usize>() == FAILOVER_SHARDS as usize {
            return all;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn failover(url: &str, work: &Path) -> Failover {
    let arrivals: Arc<Mutex<Vec<(String, Instant)>>> = Arc::default();
    let receiver = {
        let arrivals = arrivals.clone();
        tickler_benches::receiver::start(move |key| {
            arrivals
                .lock()
                .unwrap()
                .push((key.to_owned(), Instant::now()));
        })
        .await
    };
    let config = node_config(work, receiver);
    let mut a = start_node(work, &config, url, "node-a");
    let mut b = start_node(work, &config, url, "node-b");
    served(&[&a, &b]).await;
    let first_due = SystemClock.now().saturating_add(tickler::Span::seconds(4));
    let due = |i: usize| first_due.saturating_add(tickler::Span::from_millis((i * 10) as i64));
    let base = Instant::now() + Duration::from_secs(4);
    for i in 0..FAILOVER_TIMERS {
        let (id, create) = oneshot_timer(i, due(i));
        let call = create_call(id, create);
        let socket = if i % 2 == 0 { &a.socket } else { &b.socket };
        let reply = tickler_admin::client::call_routed(socket, call)
            .await
            .unwrap();
        assert!(reply.ok, "{:?}", reply.error);
    }
    tokio::time::sleep_until((base + Duration::from_millis(2_500)).into()).await;
    // Asked again just before the kill: shards move while the nodes settle.
    let shards = served(&[&a, &b]).await;
    let (victim, lost) = if shards[0].len() >= shards[1].len() {
        (&mut a, shards[0].clone())
    } else {
        (&mut b, shards[1].clone())
    };
    tokio::time::sleep_until((base + Duration::from_secs(3)).into()).await;
    let killed_at = Instant::now();
    victim.kill();
    let deadline = Instant::now() + Duration::from_secs(60);
    while arrivals.lock().unwrap().len() < FAILOVER_TIMERS && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    a.kill();
    b.kill();
    let arrivals = arrivals.lock().unwrap().clone();
    let moved = |key: &str| {
        let entity: EntityId = key.split('#').next().unwrap().parse().unwrap();
        lost.contains(&shard_of(&entity, FAILOVER_SHARDS))
    };
    let index = |key: &str| -> usize { key.split('#').next().unwrap()[7..].parse().unwrap() };
    let lateness = |key: &str, at: Instant| {
        let due_at = base + Duration::from_millis((index(key) * 10) as u64);
        at.saturating_duration_since(due_at).as_secs_f64() * 1000.0
    };
    // Due after the kill, so only the survivor can have sent it (an arrival of an earlier one
    // may be the dead node's last request, still in a socket buffer).
    let due_after_kill =
        |key: &str| base + Duration::from_millis((index(key) * 10) as u64) >= killed_at;
    let first_fire_ms = arrivals
        .iter()
        .filter(|(key, _)| moved(key) && due_after_kill(key))
        .map(|(_, at)| at.duration_since(killed_at).as_secs_f64() * 1000.0)
        .fold(f64::INFINITY, f64::min);
    let worst = |wanted: bool| {
        arrivals
            .iter()
            .filter(|(key, _)| moved(key) == wanted)
            .map(|(key, at)| lateness(key, *at))
            .fold(0.0, f64::max)
    };
    Failover {
        first_fire_ms,
        worst_moved_ms: worst(true),
        worst_other_ms: worst(false),
        moved: lost.len(),
    }
}

/// Durable creates/s through the sockets of a cluster of `nodes` nodes on database `database`.
async fn cluster_creates_per_s(
    pg: &postgres::PgServer,
    admin: &tokio_postgres::Client,
    database: &str,
    nodes: usize,
    work: &Path,
    count: usize,
    callers: usize,
) -> f64 {
    admin
        .batch_execute(&format!("CREATE DATABASE {database}"))
        .await
        .unwrap();
    let work = work.join(database);
    std::fs::create_dir_all(&work).unwrap();
    let receiver = tickler_benches::receiver::start(|_| {}).await;
    let config = node_config(&work, receiver);
    let url = pg.url(database);
    let mut daemons: Vec<Daemon> = ["node-a", "node-b", "node-c"][..nodes]
        .iter()
        .map(|name| start_node(&work, &config, &url, name))
        .collect();
    let owners = settled_owners(&daemons.iter().collect::<Vec<_>>()).await;
    let sockets: Arc<Vec<std::path::PathBuf>> =
        Arc::new(daemons.iter().map(|d| d.socket.clone()).collect());
    let owners = Arc::new(owners);
    let at = SystemClock.now().saturating_add(tickler::Span::days(1));
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..callers {
        let (sockets, owners, next) = (sockets.clone(), owners.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut clients = Vec::new();
            for socket in sockets.iter() {
                clients.push(Client::connect(socket).await.unwrap());
            }
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= count {
                    break;
                }
                let (id, create) = oneshot_timer(i, at);
                let owner = owners[shard_of(&id, FAILOVER_SHARDS) as usize];
                let reply = clients[owner].call(create_call(id, create)).await.unwrap();
                assert!(reply.ok, "{:?}", reply.error);
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let per_s = count as f64 / started.elapsed().as_secs_f64();
    for daemon in &mut daemons {
        daemon.kill();
    }
    per_s
}

fn create_call(entity: EntityId, create: tickler::CreateEntity) -> Call {
    Call::Request(Request::EntityCreate(EntityCreate {
        entity,
        policy: create.policy,
        workflow: None,
        recipient: create.recipient,
        zone: create.zone,
        anchors: create.anchors,
        attributes: create.attributes,
    }))
}

/// Which node serves each shard, once every node serves one and the map has not moved for two
/// seconds (nodes settle, then shards move to their desired owners a few at a time).
async fn settled_owners(nodes: &[&Daemon]) -> Vec<usize> {
    let mut last: Option<Vec<usize>> = None;
    loop {
        let served = served(nodes).await;
        let mut owners = vec![0; FAILOVER_SHARDS as usize];
        for (node, shards) in served.iter().enumerate() {
            for shard in shards {
                owners[*shard as usize] = node;
            }
        }
        let everyone = served.iter().all(|shards| !shards.is_empty());
        if everyone && last.as_ref() == Some(&owners) {
            return owners;
        }
        last = everyone.then_some(owners);
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}
