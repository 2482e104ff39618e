//! The PostgreSQL shard log (issue 25) against a private server: the conformance suite, two
//! nodes racing for one shard, and the guards a node meets when it connects.

use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use tickler_cluster::conformance::{Fixture, TTL};
use tickler_cluster::{LogError, PgOptions, PgShardLog, ShardLog};
use tickler_tests::postgres::PgServer;
use tokio_postgres::{Client, NoTls};

struct PgFixture {
    log: PgShardLog,
    /// A connection of the test's own, to move the leases' clock.
    admin: Client,
}

#[tickler::async_trait]
impl Fixture for PgFixture {
    fn log(&self) -> &dyn ShardLog {
        &self.log
    }

    /// Leases expire by PostgreSQL's clock: moving them back is time passing, without a sleep.
    async fn let_pass(&self, time: Duration) {
        self.admin
            .execute(
                "UPDATE tickler_shard SET lease_until = lease_until - make_interval(secs => $1)",
                &[&time.as_secs_f64()],
            )
            .await
            .unwrap();
        self.admin
            .execute(
                "UPDATE tickler_node SET heartbeat = heartbeat - make_interval(secs => $1)",
                &[&time.as_secs_f64()],
            )
            .await
            .unwrap();
    }
}

/// The test server has no standby: its log is asynchronous, allowed here.
fn options(shards: u32) -> PgOptions {
    PgOptions {
        shards,
        allow_async: true,
    }
}

async fn connect(url: &str) -> Client {
    let (client, connection) = tokio_postgres::connect(url, NoTls).await.unwrap();
    tokio::spawn(connection);
    client
}

/// A fresh database on `server`.
async fn database(server: &PgServer) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let name = format!("shard_log_{}", NEXT.fetch_add(1, Ordering::Relaxed));
    connect(&server.url("postgres"))
        .await
        .batch_execute(&format!("CREATE DATABASE {name}"))
        .await
        .unwrap();
    name
}

async fn fixture(server: &PgServer) -> PgFixture {
    let url = server.url(&database(server).await);
    PgFixture {
        log: PgShardLog::connect(&url, &options(4)).await.unwrap(),
        admin: connect(&url).await,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_postgres_shard_log_passes_the_conformance_suite() {
    let Some(server) = PgServer::start() else {
        return;
    };
    tickler_cluster::shard_log_conformance_in_sequence!(|| fixture(&server));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_nodes_racing_for_a_free_shard_exactly_one_gets_it() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.url(&database(&server).await);
    let a = PgShardLog::connect(&url, &options(8)).await.unwrap();
    let b = PgShardLog::connect(&url, &options(8)).await.unwrap();
    for shard in 0..8 {
        let (by_a, by_b) = tokio::join!(a.acquire(shard, "a", TTL), b.acquire(shard, "b", TTL));
        let won: Vec<_> = [&by_a, &by_b].into_iter().filter(|r| r.is_ok()).collect();
        assert_eq!(won.len(), 1, "shard {shard}: {by_a:?} {by_b:?}");
        let loser = if by_a.is_ok() { &by_b } else { &by_a };
        assert!(matches!(loser, Err(LogError::Held { .. })), "{loser:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_configured_with_another_shard_count_is_refused() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.url(&database(&server).await);
    PgShardLog::connect(&url, &options(8)).await.unwrap();
    let refused = PgShardLog::connect(&url, &options(16)).await.err().unwrap();
    assert_eq!(
        refused,
        LogError::ShardCount {
            configured: 16,
            recorded: 8
        }
    );
    assert!(refused.to_string().contains("set it to 8"), "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_can_lose_acknowledged_commits_is_refused_unless_allowed() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.url(&database(&server).await);
    let strict = PgOptions {
        shards: 8,
        allow_async: false,
    };
    let refused = PgShardLog::connect(&url, &strict).await.err().unwrap();
    assert!(
        matches!(&refused, LogError::Asynchronous { reason } if reason.contains("synchronous_standby_names")),
        "{refused}"
    );
    assert!(
        refused.to_string().contains("synchronous standby"),
        "{refused}"
    );
    // Refused before anything was created.
    let tables = connect(&url)
        .await
        .query(
            "SELECT 1 FROM pg_tables WHERE tablename = 'tickler_shard'",
            &[],
        )
        .await
        .unwrap();
    assert!(tables.is_empty());
    assert!(PgShardLog::connect(&url, &options(8)).await.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tables_of_another_schema_format_are_refused() {
    let Some(server) = PgServer::start() else {
        return;
    };
    let url = server.url(&database(&server).await);
    PgShardLog::connect(&url, &options(8)).await.unwrap();
    connect(&url)
        .await
        .execute("UPDATE tickler_cluster SET format = format + 1", &[])
        .await
        .unwrap();
    let refused = PgShardLog::connect(&url, &options(8)).await.err().unwrap();
    assert_eq!(
        refused,
        LogError::SchemaFormat {
            found: tickler_cluster::SCHEMA_FORMAT + 1,
            known: tickler_cluster::SCHEMA_FORMAT
        }
    );
}
