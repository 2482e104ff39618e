//! The behaviour every [`ShardLog`] must have (`scale-out.md` §6), as functions that take a
//! fresh fixture and panic on a violation. [`shard_log_conformance_tests!`] turns them into one
//! test per case:
//!
//! ```no_run
//! mod memory {
//!     tickler_cluster::shard_log_conformance_tests!(tickler_cluster::conformance::MemoryFixture::new);
//! }
//! ```

use std::time::Duration;

use async_trait::async_trait;

use crate::{LogError, ManualTime, MemoryShardLog, NodeInfo, ShardLog, ShardState};

/// The lease the cases take: long, because no case waits for it; a fixture lets it expire by
/// moving the log's clock (`let_pass`).
pub const TTL: Duration = Duration::from_secs(60);

/// A fresh log with at least two shards, and a way to let leases expire.
#[async_trait]
pub trait Fixture: Send + Sync {
    fn log(&self) -> &dyn ShardLog;
    /// Moves the log's clock on by `time`, as far as leases and heartbeats are concerned.
    async fn let_pass(&self, time: Duration);
}

/// The memory log on a manual clock.
pub struct MemoryFixture {
    log: MemoryShardLog,
    time: ManualTime,
}

impl MemoryFixture {
    pub async fn new() -> MemoryFixture {
        let time = ManualTime::default();
        MemoryFixture {
            log: MemoryShardLog::with_manual_time(4, time.clone()),
            time,
        }
    }
}

#[async_trait]
impl Fixture for MemoryFixture {
    fn log(&self) -> &dyn ShardLog {
        &self.log
    }

    async fn let_pass(&self, time: Duration) {
        self.time.advance(time);
    }
}

/// Expands to one `#[tokio::test]` per case. `$make` is an async function returning a fresh
/// [`Fixture`].
#[macro_export]
macro_rules! shard_log_conformance_tests {
    ($make:expr) => {
        $crate::__shard_log_cases!(tests $make);
    };
}

/// Expands to the cases run one after the other, in the current async block, each on a fixture
/// `$make` returns (for a log whose server the test starts and stops once).
#[macro_export]
macro_rules! shard_log_conformance_in_sequence {
    ($make:expr) => {
        $crate::__shard_log_cases!(sequence $make)
    };
}

#[doc(hidden)]
#[macro_export]
macro_rules! __shard_log_cases {
    ($mode:ident $make:expr) => {
        $crate::__shard_log_cases! { @$mode $make;
            appends_are_read_back_in_order,
            reads_are_paged,
            acquire_raises_the_epoch_and_returns_the_head,
            a_held_shard_is_refused_until_its_lease_expires,
            a_released_shard_can_be_taken_at_once,
            an_append_under_a_stale_epoch_is_fenced,
            an_append_after_a_wrong_head_is_a_conflict,
            an_identical_re_append_is_accepted_and_different_bytes_conflict,
            renew_after_a_steal_is_lost,
            racing_acquire_and_append_have_exactly_one_outcome,
            shards_are_independent,
            an_unknown_shard_is_named,
            live_nodes_are_those_that_heartbeated_within_the_window,
            the_shard_map_names_each_holder_and_whether_its_lease_is_current,
        }
    };
    (@tests $make:expr; $($case:ident),* $(,)?) => {
        $(
            #[tokio::test]
            async fn $case() {
                let fixture = $make().await;
                $crate::conformance::$case(&fixture).await;
            }
        )*
    };
    (@sequence $make:expr; $($case:ident),* $(,)?) => {
        $(
            eprintln!("shard log conformance: {}", stringify!($case));
            $crate::conformance::$case(&$make().await).await;
        )*
    };
}

pub async fn appends_are_read_back_in_order(fixture: &impl Fixture) {
    let log = fixture.log();
    let lease = log.acquire(0, "a", TTL).await.unwrap();
    for (after, bytes) in [b"one".as_slice(), b"two", b"three"].iter().enumerate() {
        let seq = log.append(0, lease.epoch, after as u64, bytes).await;
        assert_eq!(seq, Ok(after as u64 + 1));
    }
    let records = log.read_after(0, 0, 10).await.unwrap();
    let read: Vec<_> = records
        .iter()
        .map(|r| (r.seq, r.epoch, &r.bytes[..]))
        .collect();
    assert_eq!(
        read,
        [
            (1, lease.epoch, b"one".as_slice()),
            (2, lease.epoch, b"two"),
            (3, lease.epoch, b"three")
        ]
    );
    assert_eq!(log.head(0).await, Ok(3));
}

pub async fn reads_are_paged(fixture: &impl Fixture) {
    let log = fixture.log();
    let lease = log.acquire(0, "a", TTL).await.unwrap();
    for after in 0..5 {
        log.append(0, lease.epoch, after, &[after as u8])
            .await
            .unwrap();
    }
    let page = |after, max| async move {
        let records = log.read_after(0, after, max).await.unwrap();
        records.iter().map(|r| r.seq).collect::<Vec<_>>()
    };
    assert_eq!(page(0, 2).await, [1, 2]);
    assert_eq!(page(2, 2).await, [3, 4]);
    assert_eq!(page(4, 2).await, [5]);
    assert_eq!(page(5, 2).await, Vec::<u64>::new());
}

pub async fn acquire_raises_the_epoch_and_returns_the_head(fixture: &impl Fixture) {
    let log = fixture.log();
    let first = log.acquire(0, "a", TTL).await.unwrap();
    log.append(0, first.epoch, 0, b"x").await.unwrap();
    log.release(0, first.epoch).await.unwrap();
    let second = log.acquire(0, "b", TTL).await.unwrap();
    assert_eq!(second.epoch, first.epoch + 1);
    assert_eq!((first.head, second.head), (0, 1));
}

pub async fn a_held_shard_is_refused_until_its_lease_expires(fixture: &impl Fixture) {
    let log = fixture.log();
    let held = log.acquire(0, "a", TTL).await.unwrap();
    assert_eq!(
        log.acquire(0, "b", TTL).await,
        Err(LogError::Held {
            shard: 0,
            owner: "a".into()
        })
    );
    fixture.let_pass(TTL * 2).await;
    let taken = log.acquire(0, "b", TTL).await.unwrap();
    assert_eq!(taken.epoch, held.epoch + 1);
}

pub async fn a_released_shard_can_be_taken_at_once(fixture: &impl Fixture) {
    let log = fixture.log();
    let held = log
        .acquire(0, "a", Duration::from_secs(3600))
        .await
        .unwrap();
    log.release(0, held.epoch).await.unwrap();
    assert_eq!(
        log.acquire(0, "b", TTL).await.map(|lease| lease.epoch),
        Ok(held.epoch + 1)
    );
}

pub async fn an_append_under_a_stale_epoch_is_fenced(fixture: &impl Fixture) {
    let log = fixture.log();
    let old = log.acquire(0, "a", TTL).await.unwrap();
    fixture.let_pass(TTL * 2).await;
    let new = log.acquire(0, "b", TTL).await.unwrap();
    assert_eq!(
        log.append(0, old.epoch, 0, b"zombie").await,
        Err(LogError::Fenced {
            shard: 0,
            epoch: old.epoch,
            current: new.epoch
        })
    );
    assert_eq!(log.head(0).await, Ok(0), "the zombie wrote nothing");
    assert_eq!(log.append(0, new.epoch, 0, b"owner").await, Ok(1));
}

pub async fn an_append_after_a_wrong_head_is_a_conflict(fixture: &impl Fixture) {
    let log = fixture.log();
    let lease = log.acquire(0, "a", TTL).await.unwrap();
    log.append(0, lease.epoch, 0, b"one").await.unwrap();
    for after in [0, 2] {
        assert_eq!(
            log.append(0, lease.epoch, after, b"other").await,
            Err(LogError::Conflict {
                shard: 0,
                seq: after + 1,
                head: 1
            }),
            "after {after}"
        );
    }
    assert_eq!(log.head(0).await, Ok(1));
}

pub async fn an_identical_re_append_is_accepted_and_different_bytes_conflict(
    fixture: &impl Fixture,
) {
    let log = fixture.log();
    let lease = log.acquire(0, "a", TTL).await.unwrap();
    log.append(0, lease.epoch, 0, b"one").await.unwrap();
    log.append(0, lease.epoch, 1, b"two").await.unwrap();
    // The outcome of an append was unknown: appending the same record again settles it.
    assert_eq!(log.append(0, lease.epoch, 0, b"one").await, Ok(1));
    assert!(matches!(
        log.append(0, lease.epoch, 0, b"uno").await,
        Err(LogError::Conflict { seq: 1, .. })
    ));
    let bytes: Vec<_> = log.read_after(0, 0, 10).await.unwrap();
    assert_eq!(bytes.len(), 2, "nothing was appended twice");
}

pub async fn renew_after_a_steal_is_lost(fixture: &impl Fixture) {
    let log = fixture.log();
    let old = log.acquire(0, "a", TTL).await.unwrap();
    assert_eq!(log.renew(0, old.epoch, TTL).await, Ok(()));
    fixture.let_pass(TTL * 2).await;
    let new = log.acquire(0, "b", TTL).await.unwrap();
    assert_eq!(
        log.renew(0, old.epoch, TTL).await,
        Err(LogError::Lost {
            shard: 0,
            epoch: old.epoch,
            current: new.epoch
        })
    );
}

/// An owner past its lease appends while another node takes the shard: either the append landed
/// first (and the new lease's head includes it) or the takeover did (and the append is fenced),
/// never both and never neither.
pub async fn racing_acquire_and_append_have_exactly_one_outcome(fixture: &impl Fixture) {
    let log = fixture.log();
    let mut owner = log.acquire(0, "a", TTL).await.unwrap();
    for round in 0..20u8 {
        let head = log.head(0).await.unwrap();
        fixture.let_pass(TTL * 2).await;
        let record = [round];
        let append = log.append(0, owner.epoch, head, &record);
        let acquire = log.acquire(0, "b", TTL);
        // Started in both orders, so a log that answers at once shows both outcomes.
        let (appended, taken) = if round % 2 == 0 {
            tokio::join!(append, acquire)
        } else {
            let (taken, appended) = tokio::join!(acquire, append);
            (appended, taken)
        };
        let taken = taken.unwrap();
        match appended {
            Ok(seq) => assert_eq!(taken.head, seq, "round {round}: the append came first"),
            Err(LogError::Fenced { current, .. }) => {
                assert_eq!(current, taken.epoch, "round {round}");
                assert_eq!(taken.head, head, "round {round}: the takeover came first");
            }
            Err(other) => panic!("round {round}: {other}"),
        }
        owner = taken;
    }
}

pub async fn shards_are_independent(fixture: &impl Fixture) {
    let log = fixture.log();
    let zero = log.acquire(0, "a", TTL).await.unwrap();
    let one = log.acquire(1, "b", TTL).await.unwrap();
    log.append(0, zero.epoch, 0, b"zero").await.unwrap();
    assert_eq!(log.head(1).await, Ok(0));
    assert_eq!(log.append(1, one.epoch, 0, b"one").await, Ok(1));
    assert_eq!(log.read_after(1, 0, 10).await.unwrap()[0].bytes, b"one");
}

pub async fn an_unknown_shard_is_named(fixture: &impl Fixture) {
    let log = fixture.log();
    let err = log.acquire(u32::MAX, "a", TTL).await.unwrap_err();
    assert!(
        matches!(
            err,
            LogError::NoSuchShard {
                shard: u32::MAX,
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains(&u32::MAX.to_string()), "{err}");
}

pub async fn live_nodes_are_those_that_heartbeated_within_the_window(fixture: &impl Fixture) {
    let log = fixture.log();
    log.heartbeat("b", "/run/b.sock").await.unwrap();
    log.heartbeat("a", "/run/a-old.sock").await.unwrap();
    log.heartbeat("a", "/run/a.sock").await.unwrap();
    let node = |node: &str, admin_addr: &str| NodeInfo {
        node: node.to_owned(),
        admin_addr: admin_addr.to_owned(),
    };
    assert_eq!(
        log.live_nodes(TTL).await.unwrap(),
        [node("a", "/run/a.sock"), node("b", "/run/b.sock")]
    );
    fixture.let_pass(TTL * 2).await;
    log.heartbeat("b", "/run/b.sock").await.unwrap();
    assert_eq!(
        log.live_nodes(TTL).await.unwrap(),
        [node("b", "/run/b.sock")]
    );
}

pub async fn the_shard_map_names_each_holder_and_whether_its_lease_is_current(
    fixture: &impl Fixture,
) {
    let log = fixture.log();
    let lease = log.acquire(1, "a", TTL).await.unwrap();
    let map = log.shard_map().await.unwrap();
    assert_eq!(
        map[0],
        ShardState {
            shard: 0,
            epoch: 0,
            owner: None,
            leased: false
        }
    );
    assert_eq!(
        map[1],
        ShardState {
            shard: 1,
            epoch: lease.epoch,
            owner: Some("a".to_owned()),
            leased: true
        }
    );
    fixture.let_pass(TTL * 2).await;
    assert!(!log.shard_map().await.unwrap()[1].leased);
    let stolen = log.acquire(1, "b", TTL).await.unwrap();
    log.release(1, stolen.epoch).await.unwrap();
    let map = log.shard_map().await.unwrap();
    assert_eq!(map[1].owner.as_deref(), Some("b"));
    assert_eq!(map[1].epoch, lease.epoch + 1);
    assert!(!map[1].leased, "released");
}
