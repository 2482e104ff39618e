//! Cluster mode (issue 25): three real daemons on loopback share a PostgreSQL shard log
//! (started by the test, `initdb` in a temporary directory), S = 8. Deliveries go to a webhook
//! receiver in this process, which records every raw attempt.
//!
//! - `kill -9` of the node with the most shards, mid-run: its shards are taken at the next
//!   epoch and the torture checker's categories hold: nothing lost, nothing unexpected, nothing
//!   early, no occurrence under two keys; a key repeats only if its first attempt came from the
//!   killed node before the kill. Afterwards every shard passes `tickler audit` and equals the
//!   store rebuilt from PostgreSQL.
//!
//! PostgreSQL missing: skipped, unless `TICKLER_REQUIRE_PG` is set (CI), then failed.

mod support;

// The benchmarks' `start_durable` is not used here.
#[path = "../../../tests/src/postgres.rs"]
#[allow(dead_code)]
mod postgres;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use postgres::PgServer;
use serde_json::Value;
use support::BIN;
use support::http::{Answer, HttpServer};
use tickler::{Store, Timestamp};
use tickler_admin::protocol::EntityCreate;
use tickler_admin::{Call, Client, Request};
use tickler_cluster::{PgOptions, PgShardLog, ShardLog, catch_up, shard_of};

const SHARDS: u32 = 8;
const NODES: [&str; 3] = ["node-a", "node-b", "node-c"];
const REMINDERS: usize = 2_000;
const SECRET_ENV: &str = "TICKLER_CLUSTER_SECRET";
/// One generous bound on the whole run, so a hang fails instead of blocking CI: not a latency
/// assertion.
const DEADLINE: Duration = Duration::from_secs(180);

/// A policy with one reminder at an instant the test gives, so reminders fall due within
/// seconds on the system clock.
const PING_POLICY: &str = r#"
name = "ping"
version = 1
entity_kind = "ping"
description = "One reminder at the instant given (cluster tests)."
seed = 1

[anchors.at]
required = true

[[rules]]
name = "at"
kind = "ping"
anchor = "at"
offset = "0s"
grace = "1d"
channel = "file"
template = "ping/at"
"#;

struct Node {
    name: &'static str,
    dir: PathBuf,
    child: Option<Child>,
    /// Stopped with SIGSTOP: alive, but neither heartbeating nor serving.
    paused: bool,
}

impl Node {
    fn socket(&self) -> PathBuf {
        self.dir.join("admin/tickler.sock")
    }

    fn kill(&mut self) {
        let mut child = self.child.take().expect("the node runs");
        child.kill().unwrap();
        child.wait().unwrap();
    }

    /// SIGSTOP (`pause`) or SIGCONT.
    fn signal(&mut self, pause: bool) {
        let pid = self.child.as_ref().expect("the node runs").id();
        let signal = if pause { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .arg(signal)
            .arg(pid.to_string())
            .status()
            .unwrap();
        assert!(status.success());
        self.paused = pause;
    }
}

struct Cluster {
    _pg: PgServer,
    url: String,
    work: tempfile::TempDir,
    config: PathBuf,
    nodes: Vec<Node>,
}

impl Cluster {
    /// PostgreSQL, the config (webhook to `receiver`, the ping policy) and three nodes.
    async fn start(receiver: &HttpServer) -> Option<Cluster> {
        let pg = PgServer::start()?;
        let url = pg.url("postgres");
        let work = tempfile::tempdir().unwrap();
        let config = support::write_config(work.path(), "2026-03-01T09:00:00Z");
        support::deliver_to_webhook(&config, &receiver.url("/deliveries"), SECRET_ENV);
        let config_dir = config.parent().unwrap();
        std::fs::write(config_dir.join("policies/ping.toml"), PING_POLICY).unwrap();
        std::fs::create_dir_all(config_dir.join("templates/ping")).unwrap();
        std::fs::write(
            config_dir.join("templates/ping/at.subject.j2"),
            "ping {{ entity.key }}",
        )
        .unwrap();
        std::fs::write(config_dir.join("templates/ping/at.text.j2"), "ping").unwrap();
        let mut cluster = Cluster {
            _pg: pg,
            url,
            work,
            config,
            nodes: Vec::new(),
        };
        for name in NODES {
            cluster.spawn(name);
        }
        Some(cluster)
    }

    fn spawn(&mut self, name: &'static str) {
        let dir = self.work.path().join(name);
        let cluster_file = self.work.path().join(format!("{name}.toml"));
        std::fs::write(
            &cluster_file,
            format!(
                "node = \"{name}\"\npostgres_url = \"{}\"\nshards = {SHARDS}\n\
                 lease_ttl_ms = 2000\nsettle_ms = 1000\nallow_async_log = true\n",
                self.url
            ),
        )
        .unwrap();
        let log = std::fs::File::create(self.work.path().join(format!("{name}.log"))).unwrap();
        let child = Command::new(BIN)
            .arg("--config")
            .arg(&self.config)
            .args(["serve", "--data-dir"])
            .arg(&dir)
            .arg("--cluster")
            .arg(&cluster_file)
            .env(SECRET_ENV, "cluster")
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        self.nodes.push(Node {
            name,
            dir,
            child: Some(child),
            paused: false,
        });
    }

    fn node(&self, name: &str) -> &Node {
        self.nodes.iter().find(|n| n.name == name).unwrap()
    }

    fn node_mut(&mut self, name: &str) -> &mut Node {
        self.nodes.iter_mut().find(|n| n.name == name).unwrap()
    }

    fn live(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.child.is_some() && !n.paused)
    }

    /// Waits until every shard is served by a live node and each node agrees: shard → (node,
    /// epoch).
    async fn settled_routes(&self, started: Instant) -> BTreeMap<u32, (String, u64)> {
        loop {
            assert!(started.elapsed() < DEADLINE, "the shards never settled");
            if let Some(routes) = self.agreed_routes().await {
                return routes;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn agreed_routes(&self) -> Option<BTreeMap<u32, (String, u64)>> {
        let live: BTreeSet<&str> = self.live().map(|n| n.name).collect();
        let mut served = BTreeMap::new();
        let mut seen = None;
        for node in self.live() {
            let status = status(&node.socket()).await?;
            for shard in status["served"].as_array()? {
                let shard_id = shard["shard"].as_u64()? as u32;
                let epoch = shard["epoch"].as_u64()?;
                if served
                    .insert(shard_id, (node.name.to_owned(), epoch))
                    .is_some()
                {
                    return None;
                }
            }
            let routes = status["routes"].clone();
            if seen.as_ref().is_some_and(|r| r != &routes) {
                return None;
            }
            seen = Some(routes);
        }
        let complete = served.len() == SHARDS as usize
            && served
                .values()
                .all(|(node, _)| live.contains(node.as_str()));
        complete.then_some(served)
    }
}

impl Drop for Cluster {
    /// Kills what still runs; after a failure, shows the end of each node's log first.
    fn drop(&mut self) {
        if std::thread::panicking() {
            for name in NODES {
                let log = self.work.path().join(format!("{name}.log"));
                let text = std::fs::read_to_string(log).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let exited = self
                    .nodes
                    .iter_mut()
                    .find(|n| n.name == name)
                    .and_then(|n| n.child.as_mut())
                    .map(|child| child.try_wait());
                eprintln!("--- {name}.log (end; exit {exited:?}) ---");
                for line in &lines[lines.len().saturating_sub(25)..] {
                    eprintln!("{line}");
                }
            }
        }
        for node in &mut self.nodes {
            if let Some(mut child) = node.child.take() {
                let _ = child.kill();
                let _ = child.wait();
            }
        }
    }
}

async fn status(socket: &Path) -> Option<Value> {
    let mut client = Client::connect(socket).await.ok()?;
    let reply = client.call(Request::Status).await.ok()?;
    reply.result.filter(|_| reply.ok)
}

fn ping(n: usize, at: Timestamp) -> Call {
    ping_named(&format!("ping/p{n}"), at)
}

fn timestamp(time: SystemTime) -> Timestamp {
    let ms = time
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis();
    Timestamp::from_millis(ms as i64).unwrap()
}

/// Creates the reminders through every node's socket in turn (the CLI's routing follows
/// `not_owner`), 8 at a time; returns the entities acknowledged, with their instants.
async fn create_reminders(
    sockets: Vec<PathBuf>,
    first_due: SystemTime,
    count: usize,
) -> BTreeMap<String, Timestamp> {
    let sockets = Arc::new(sockets);
    let mut tasks = Vec::new();
    for worker in 0..8 {
        let sockets = sockets.clone();
        tasks.push(tokio::spawn(async move {
            let mut acked = BTreeMap::new();
            for n in (worker..count).step_by(8) {
                // Due over 15 s from `first_due`.
                let at = timestamp(first_due + Duration::from_millis((n * 15_000 / count) as u64));
                let socket = &sockets[n % sockets.len()];
                let reply = tickler_admin::client::call_routed(socket, ping(n, at))
                    .await
                    .unwrap();
                assert!(reply.ok, "create p{n}: {:?}", reply.error);
                acked.insert(format!("ping/p{n}"), at);
            }
            acked
        }));
    }
    let mut acked = BTreeMap::new();
    for task in tasks {
        acked.extend(task.await.unwrap());
    }
    acked
}

/// A settled cluster with reminders created through every node, due over 15 s from
/// `first_due` on.
struct Loaded {
    cluster: Cluster,
    acked: BTreeMap<String, Timestamp>,
    first_due: SystemTime,
    started: Instant,
}

impl Loaded {
    async fn start(receiver: &HttpServer, lead: Duration, count: usize) -> Option<Loaded> {
        let started = Instant::now();
        let cluster = Cluster::start(receiver).await?;
        cluster.settled_routes(started).await;
        let sockets: Vec<PathBuf> = cluster.nodes.iter().map(Node::socket).collect();
        let first_due = SystemTime::now() + lead;
        let acked = create_reminders(sockets, first_due, count).await;
        Some(Loaded {
            cluster,
            acked,
            first_due,
            started,
        })
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_load_loses_nothing_and_sends_nothing_early_or_under_two_keys() {
    let receiver = HttpServer::start(vec![Answer::status(200)]).await;
    let Some(Loaded {
        mut cluster,
        acked,
        first_due,
        started,
    }) = Loaded::start(&receiver, Duration::from_secs(10), REMINDERS).await
    else {
        return;
    };
    println!(
        "{} reminders created in {:?}",
        acked.len(),
        started.elapsed()
    );

    // Kill the node with the most shards five seconds into the run.
    let before = cluster.settled_routes(started).await;
    let victim = busiest(&before);
    let wait = (first_due + Duration::from_secs(5)).duration_since(SystemTime::now());
    tokio::time::sleep(wait.unwrap_or_default()).await;
    let killed_at = SystemTime::now();
    cluster
        .nodes
        .iter_mut()
        .find(|n| n.name == victim)
        .unwrap()
        .kill();
    println!(
        "killed {victim}, which served {:?}",
        shards_of(&before, victim)
    );

    let after = cluster.settled_routes(started).await;
    for shard in shards_of(&before, victim) {
        let (old, new) = (&before[&shard], &after[&shard]);
        assert_ne!(new.0, victim);
        assert_eq!(new.1, old.1 + 1, "shard {shard} is taken at the next epoch");
    }
    wait_for_every_delivery(&receiver, &acked, started).await;
    check_deliveries(&receiver, &acked, &before, victim, killed_at);

    stop_the_live_nodes(&mut cluster).await;
    for (shard, (owner, _)) in &after {
        let dir = cluster
            .node(owner)
            .dir
            .join("shards")
            .join(shard.to_string());
        audit(&dir);
        equals_the_log(&cluster.url, *shard, &dir).await;
    }
}

/// The node serving the most shards.
fn busiest(routes: &BTreeMap<u32, (String, u64)>) -> &'static str {
    NODES
        .iter()
        .max_by_key(|name| shards_of(routes, name).len())
        .unwrap()
}

fn shards_of(routes: &BTreeMap<u32, (String, u64)>, node: &str) -> Vec<u32> {
    routes
        .iter()
        .filter(|(_, (owner, _))| owner == node)
        .map(|(shard, _)| *shard)
        .collect()
}

async fn wait_for_every_delivery(
    receiver: &HttpServer,
    acked: &BTreeMap<String, Timestamp>,
    started: Instant,
) {
    loop {
        let delivered: BTreeSet<String> = receiver
            .requests()
            .iter()
            .map(|r| message(&r.body)["entity"].as_str().unwrap().to_owned())
            .collect();
        let missing = acked.keys().filter(|e| !delivered.contains(*e)).count();
        if missing == 0 {
            return;
        }
        assert!(
            started.elapsed() < DEADLINE,
            "{missing} acknowledged reminders never arrived"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

fn message(body: &[u8]) -> Value {
    serde_json::from_slice(body).unwrap()
}

/// The torture checker's categories, on every raw attempt the receiver saw.
fn check_deliveries(
    receiver: &HttpServer,
    acked: &BTreeMap<String, Timestamp>,
    before: &BTreeMap<u32, (String, u64)>,
    victim: &str,
    deposed_at: SystemTime,
) {
    let mut keys_of: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    // Each key's entity, and when each of its attempts says the occurrence fired.
    let mut attempts: BTreeMap<String, (String, Vec<Timestamp>)> = BTreeMap::new();
    let (mut unexpected, mut early) = (Vec::new(), Vec::new());
    for request in receiver.requests() {
        let message = message(&request.body);
        let entity = message["entity"].as_str().unwrap().to_owned();
        let key = message["idempotency_key"].as_str().unwrap().to_owned();
        let Some(at) = acked.get(&entity) else {
            unexpected.push(entity);
            continue;
        };
        if timestamp(request.received_wall) < *at {
            early.push(format!(
                "{entity}: due {at}, arrived {}",
                timestamp(request.received_wall)
            ));
        }
        let rule = message["rule"].as_str().unwrap().to_owned();
        keys_of
            .entry((entity.clone(), rule))
            .or_default()
            .insert(key.clone());
        let (_, times) = attempts.entry(key).or_insert_with(|| (entity, Vec::new()));
        times.push(message["fired_at"].as_str().unwrap().parse().unwrap());
    }
    let under_two_keys: Vec<_> = keys_of.iter().filter(|(_, keys)| keys.len() > 1).collect();
    let victim_shards = shards_of(before, victim);
    let mut repeats = 0;
    let mut unexplained = Vec::new();
    for (key, (entity, times)) in &attempts {
        if times.len() < 2 {
            continue;
        }
        repeats += times.len() - 1;
        let shard = shard_of(&entity.parse().unwrap(), SHARDS);
        // Only an attempt the deposed node had started may reach the receiver twice: its
        // occurrence fired there, before the kill or pause, in one of its shards.
        let fired_there = times
            .iter()
            .min()
            .is_some_and(|fired| *fired < timestamp(deposed_at));
        if !fired_there || !victim_shards.contains(&shard) {
            unexplained.push(key.clone());
        }
    }
    println!(
        "{} attempts for {} occurrences; {repeats} raw repeats, each of an occurrence the \
         deposed node had fired",
        attempts
            .values()
            .map(|(_, times)| times.len())
            .sum::<usize>(),
        keys_of.len()
    );
    assert_eq!(
        keys_of.len(),
        acked.len(),
        "one occurrence per reminder: nothing lost"
    );
    assert!(unexpected.is_empty(), "unexpected: {unexpected:?}");
    assert!(early.is_empty(), "early: {early:?}");
    assert!(
        under_two_keys.is_empty(),
        "under two keys: {under_two_keys:?}"
    );
    assert!(
        unexplained.is_empty(),
        "repeats not caused by the kill: {unexplained:?}"
    );
}

/// `shutdown` on each live node, which stops its shards and releases their leases.
async fn stop_the_live_nodes(cluster: &mut Cluster) {
    for node in cluster.nodes.iter_mut().filter(|n| n.child.is_some()) {
        let mut client = Client::connect(&node.socket()).await.unwrap();
        let reply = client.call(Request::Shutdown).await.unwrap();
        assert!(reply.ok, "{:?}", reply.error);
        let status = node.child.take().unwrap().wait().unwrap();
        assert!(status.success(), "{} exited with {status}", node.name);
    }
}

fn audit(shard_dir: &Path) {
    let output = Command::new(BIN)
        .args(["audit", "--data-dir"])
        .arg(shard_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "audit of {}: {}{}",
        shard_dir.display(),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The test's own connection to the cluster's shard log (its server has no standby).
async fn shard_log(url: &str) -> PgShardLog {
    let options = PgOptions {
        shards: SHARDS,
        allow_async: true,
    };
    PgShardLog::connect(url, &options).await.unwrap()
}

/// The shard's copy equals a store rebuilt from PostgreSQL alone.
async fn equals_the_log(url: &str, shard: u32, shard_dir: &Path) {
    let log = shard_log(url).await;
    let rebuilt = tickler::MemoryStore::new();
    let head = log.head(shard).await.unwrap();
    catch_up::catch_up(&rebuilt, &log, shard, 0, head)
        .await
        .unwrap();
    let live = tickler::SledStore::open_read_only(&shard_dir.join("store")).unwrap();
    assert_eq!(contents(&live), contents(&rebuilt), "shard {shard}");
}

/// Everything the store trait lists, with the ping policy's indexes and the log position, for
/// a key-for-key comparison.
fn contents(store: &dyn Store) -> String {
    use tickler_core::index;
    let (policy, kind) = (index::policy("ping"), index::kind("ping"));
    let indexes = [
        policy.as_str(),
        kind.as_str(),
        index::RETRYING,
        index::ERRORED,
    ];
    tickler::store::conformance::listing(store, &indexes, &[tickler_cluster::POSITION_META])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_zombie_owner_is_fenced_and_sends_nothing_the_log_did_not_accept() {
    let receiver = HttpServer::start(vec![Answer::status(200)]).await;
    let Some(Loaded {
        mut cluster,
        acked,
        first_due,
        started,
    }) = Loaded::start(&receiver, Duration::from_secs(6), 300).await
    else {
        return;
    };
    let before = cluster.settled_routes(started).await;
    let zombie = busiest(&before);
    let lost_shards = shards_of(&before, zombie);

    // Paused past its leases (TTL 2 s) while its reminders fall due: the others take over.
    let wait = (first_due + Duration::from_secs(2)).duration_since(SystemTime::now());
    tokio::time::sleep(wait.unwrap_or_default()).await;
    let paused_at = SystemTime::now();
    cluster.node_mut(zombie).signal(true);
    let after = cluster.settled_routes(started).await;
    for shard in &lost_shards {
        assert_eq!(after[shard].1, before[shard].1 + 1, "shard {shard}");
    }

    // Woken, it still holds engines for those shards, but nothing it writes is accepted.
    cluster.node_mut(zombie).signal(false);
    let entity = (0..)
        .map(|i| format!("ping/zombie-{i}"))
        .find(|e| lost_shards.contains(&shard_of(&e.parse().unwrap(), SHARDS)))
        .unwrap();
    let mut client = Client::connect(&cluster.node(zombie).socket())
        .await
        .unwrap();
    let reply = client
        .call(ping_named(&entity, timestamp(SystemTime::now())))
        .await
        .unwrap();
    let code = reply.error.as_ref().map(|e| e.code.clone());
    assert!(
        matches!(code.as_deref(), Some("storage_error" | "not_owner")),
        "a write to the deposed owner must not succeed: {reply:?}"
    );

    wait_for_every_delivery(&receiver, &acked, started).await;
    check_deliveries(&receiver, &acked, &before, zombie, paused_at);
    epochs_never_go_back(&cluster.url).await;
    let log = std::fs::read_to_string(cluster.work.path().join(format!("{zombie}.log"))).unwrap();
    assert!(
        log.contains("lease lost; stopping the shard") || log.contains("shard store stopped"),
        "the zombie noticed it was deposed"
    );
}

fn ping_named(entity: &str, at: Timestamp) -> Call {
    Call::Request(Request::EntityCreate(EntityCreate {
        entity: entity.parse().unwrap(),
        policy: "ping".into(),
        workflow: None,
        recipient: format!("{}@example.org", entity.replace('/', "-")),
        zone: Default::default(),
        anchors: [("at".to_owned(), at)].into(),
        attributes: Default::default(),
    }))
}

/// Along each shard's log, epochs only go up: no record of a deposed owner follows one of its
/// successor.
async fn epochs_never_go_back(url: &str) {
    let log = shard_log(url).await;
    for shard in 0..SHARDS {
        let records = log.read_after(shard, 0, usize::MAX).await.unwrap();
        let epochs: Vec<u64> = records.iter().map(|r| r.epoch).collect();
        assert!(
            epochs.windows(2).all(|pair| pair[0] <= pair[1]),
            "shard {shard}: epochs {epochs:?}"
        );
    }
}
