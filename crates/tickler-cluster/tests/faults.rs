//! The memory log's injected faults, which the logged store's tests rely on.

use std::time::Duration;

use tickler_cluster::{Fault, LogError, MemoryShardLog, ShardLog};

const TTL: Duration = Duration::from_secs(60);

#[tokio::test]
async fn an_unavailable_log_takes_no_effect() {
    let log = MemoryShardLog::new(1);
    let lease = log.acquire(0, "a", TTL).await.unwrap();
    log.inject(Fault::Unavailable);
    assert!(matches!(
        log.append(0, lease.epoch, 0, b"x").await,
        Err(LogError::Unavailable(_))
    ));
    assert_eq!(log.head(0).await, Ok(0));
}

#[tokio::test]
async fn a_lost_reply_took_effect_and_an_identical_re_append_settles_it() {
    let log = MemoryShardLog::new(1);
    let lease = log.acquire(0, "a", TTL).await.unwrap();
    log.inject(Fault::ReplyLost);
    assert!(matches!(
        log.append(0, lease.epoch, 0, b"x").await,
        Err(LogError::Unavailable(_))
    ));
    assert_eq!(log.head(0).await, Ok(1), "the append took effect");
    assert_eq!(log.append(0, lease.epoch, 0, b"x").await, Ok(1));
    assert_eq!(log.head(0).await, Ok(1));
}

/// Only expiry is checked here (a sleep can only be longer than asked): that a lease is held
/// before it is, is the conformance suite's case, on a manual clock.
#[tokio::test]
async fn on_the_system_clock_an_expired_lease_can_be_taken() {
    let log = MemoryShardLog::new(1);
    let first = log
        .acquire(0, "a", Duration::from_millis(20))
        .await
        .unwrap();
    tokio::time::sleep(Duration::from_millis(40)).await;
    let second = log.acquire(0, "b", TTL).await.unwrap();
    assert_eq!(second.epoch, first.epoch + 1);
}
