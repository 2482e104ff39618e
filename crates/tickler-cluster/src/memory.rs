//! The shard log in memory: the contract's reference, with a clock and faults the tests drive.

use std::collections::{BTreeMap, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use async_trait::async_trait;

use crate::shard_log::{
    Epoch, Lease, LogError, LogRecord, NodeInfo, Seq, ShardId, ShardLog, ShardState,
};

/// A clock the test moves: the time since its start, in milliseconds.
#[derive(Clone, Debug, Default)]
pub struct ManualTime(Arc<AtomicU64>);

impl ManualTime {
    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }

    fn now(&self) -> Duration {
        Duration::from_millis(self.0.load(Ordering::SeqCst))
    }
}

/// What the next call to the log suffers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// The call fails without taking effect (the database is unreachable).
    Unavailable,
    /// The call takes effect, then fails as if the connection dropped before the reply: its
    /// caller cannot tell it from `Unavailable`.
    ReplyLost,
}

enum Clock {
    System(Instant),
    Manual(ManualTime),
}

#[derive(Default)]
struct Shard {
    epoch: Epoch,
    owner: Option<String>,
    /// Since the clock's start; `None`: never leased, or released.
    lease_until: Option<Duration>,
    records: Vec<LogRecord>,
}

pub struct MemoryShardLog {
    shards: Vec<Mutex<Shard>>,
    /// Each node's admin socket and last heartbeat, since the clock's start.
    nodes: Mutex<BTreeMap<String, (String, Duration)>>,
    clock: Clock,
    faults: Mutex<VecDeque<Fault>>,
}

impl MemoryShardLog {
    /// `shards` shards (0 to `shards - 1`), leases timed by the system's monotonic clock.
    pub fn new(shards: u32) -> MemoryShardLog {
        MemoryShardLog::with_clock(shards, Clock::System(Instant::now()))
    }

    /// Leases timed by `time`, which only the test moves.
    pub fn with_manual_time(shards: u32, time: ManualTime) -> MemoryShardLog {
        MemoryShardLog::with_clock(shards, Clock::Manual(time))
    }

    fn with_clock(shards: u32, clock: Clock) -> MemoryShardLog {
        MemoryShardLog {
            shards: (0..shards).map(|_| Mutex::default()).collect(),
            nodes: Mutex::default(),
            clock,
            faults: Mutex::default(),
        }
    }

    /// The next calls, one fault each, in order.
    pub fn inject(&self, fault: Fault) {
        lock(&self.faults).push_back(fault);
    }

    fn now(&self) -> Duration {
        match &self.clock {
            Clock::System(start) => start.elapsed(),
            Clock::Manual(time) => time.now(),
        }
    }

    fn shard(&self, shard: ShardId) -> Result<MutexGuard<'_, Shard>, LogError> {
        let last = self.shards.len().saturating_sub(1) as ShardId;
        self.shards
            .get(shard as usize)
            .map(lock)
            .ok_or(LogError::NoSuchShard { shard, last })
    }

    /// Runs `step` on the shard under the next fault, if any.
    fn call<T>(
        &self,
        shard: ShardId,
        step: impl FnOnce(&mut Shard, Duration) -> Result<T, LogError>,
    ) -> Result<T, LogError> {
        let fault = lock(&self.faults).pop_front();
        if fault == Some(Fault::Unavailable) {
            return Err(LogError::Unavailable(
                "injected: the log is unreachable".into(),
            ));
        }
        let now = self.now();
        let result = step(&mut *self.shard(shard)?, now);
        match fault {
            Some(Fault::ReplyLost) => Err(LogError::Unavailable(
                "injected: the connection dropped before the reply".into(),
            )),
            _ => result,
        }
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn head_of(state: &Shard) -> Seq {
    state.records.len() as Seq
}

#[async_trait]
impl ShardLog for MemoryShardLog {
    async fn acquire(&self, shard: ShardId, node: &str, ttl: Duration) -> Result<Lease, LogError> {
        self.call(shard, |state, now| {
            if let (Some(until), Some(owner)) = (state.lease_until, &state.owner)
                && until >= now
            {
                return Err(LogError::Held {
                    shard,
                    owner: owner.clone(),
                });
            }
            state.epoch += 1;
            state.owner = Some(node.to_owned());
            state.lease_until = Some(now + ttl);
            Ok(Lease {
                shard,
                epoch: state.epoch,
                head: head_of(state),
            })
        })
    }

    async fn renew(&self, shard: ShardId, epoch: Epoch, ttl: Duration) -> Result<(), LogError> {
        self.call(shard, |state, now| {
            if state.epoch != epoch {
                return Err(LogError::Lost {
                    shard,
                    epoch,
                    current: state.epoch,
                });
            }
            state.lease_until = Some(now + ttl);
            Ok(())
        })
    }

    async fn release(&self, shard: ShardId, epoch: Epoch) -> Result<(), LogError> {
        self.call(shard, |state, _| {
            if state.epoch == epoch {
                state.lease_until = None;
            }
            Ok(())
        })
    }

    async fn append(
        &self,
        shard: ShardId,
        epoch: Epoch,
        after: Seq,
        bytes: &[u8],
    ) -> Result<Seq, LogError> {
        self.call(shard, |state, _| {
            let seq = after + 1;
            let head = head_of(state);
            if let Some(existing) = state.records.get(after as usize) {
                if existing.epoch == epoch && existing.bytes == bytes {
                    return Ok(seq);
                }
            } else if state.epoch == epoch && head == after {
                state.records.push(LogRecord {
                    seq,
                    epoch,
                    bytes: bytes.to_vec(),
                });
                return Ok(seq);
            }
            if state.epoch != epoch {
                return Err(LogError::Fenced {
                    shard,
                    epoch,
                    current: state.epoch,
                });
            }
            Err(LogError::Conflict { shard, seq, head })
        })
    }

    async fn read_after(
        &self,
        shard: ShardId,
        after: Seq,
        max: usize,
    ) -> Result<Vec<LogRecord>, LogError> {
        self.call(shard, |state, _| {
            let start = (after as usize).min(state.records.len());
            let end = start.saturating_add(max).min(state.records.len());
            Ok(state.records[start..end].to_vec())
        })
    }

    async fn head(&self, shard: ShardId) -> Result<Seq, LogError> {
        self.call(shard, |state, _| Ok(head_of(state)))
    }

    async fn heartbeat(&self, node: &str, admin_addr: &str) -> Result<(), LogError> {
        self.call(0, |_, now| {
            lock(&self.nodes).insert(node.to_owned(), (admin_addr.to_owned(), now));
            Ok(())
        })
    }

    async fn live_nodes(&self, within: Duration) -> Result<Vec<NodeInfo>, LogError> {
        self.call(0, |_, now| {
            Ok(lock(&self.nodes)
                .iter()
                .filter(|(_, (_, seen))| now.saturating_sub(*seen) <= within)
                .map(|(node, (admin_addr, _))| NodeInfo {
                    node: node.clone(),
                    admin_addr: admin_addr.clone(),
                })
                .collect())
        })
    }

    async fn shard_map(&self) -> Result<Vec<ShardState>, LogError> {
        let now = self.now();
        Ok((0..self.shards.len() as ShardId)
            .map(|shard| {
                let state = lock(&self.shards[shard as usize]);
                ShardState {
                    shard,
                    epoch: state.epoch,
                    owner: state.owner.clone(),
                    leased: state.lease_until.is_some_and(|until| until >= now),
                }
            })
            .collect())
    }
}
