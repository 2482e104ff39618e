//! A shard's store in cluster mode: commits are checked and applied to the local copy as on a
//! single node, and a flush is one fenced append of what they wrote to the shard's log. The
//! log, not the local disk, is what makes a commit durable: callers (through `GroupCommit`)
//! are answered only once the append has committed.
//!
//! Each commit group becomes one log record, numbered when it is applied: only the lease's
//! holder appends, so the next position is known. The local copy records that position and the
//! record's checksum (the *stamp*) in the same atomic write as the data, so after a crash the
//! copy says exactly which record it reflects, and a copy that got ahead of the log (applied,
//! never appended) is recognised at takeover ([`crate::catch_up`]).
//!
//! A fenced append, or one whose outcome stays unknown, stops the store for good: every later
//! read and write fails with [`Error::Stopped`], so no actor adopts a write the log may not
//! hold. The node then stops serving the shard; whoever serves it next rebuilds from the log.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::time::Duration;

use tickler_core::{EntityId, OccurrenceId, Timestamp};
use tickler_store::{
    CommitBatch, CommitReceipt, Error, Record, Snapshot, Stamp, Store, StoreStats, StoredEvent,
    TimerEntry,
};

use crate::log_record::{self, LogOp};
use crate::position::{POSITION_META, Position};
use crate::shard_log::{Epoch, Lease, LogError, Seq, ShardId, ShardLog};

/// How often an append whose outcome is unknown is tried again (an identical re-append settles
/// it), and the pause before each try, before the store stops.
const APPEND_RETRY_PAUSES: [Duration; 3] = [
    Duration::from_millis(50),
    Duration::from_millis(200),
    Duration::from_millis(800),
];

pub struct LoggedStore {
    inner: Arc<dyn Store>,
    log: Arc<dyn ShardLog>,
    runtime: tokio::runtime::Handle,
    shard: ShardId,
    epoch: Epoch,
    appender: Mutex<Appender>,
    /// One flush at a time, so records are appended in order.
    flushing: Mutex<()>,
    stopped: OnceLock<String>,
}

/// Records applied locally, waiting for their append.
struct Appender {
    /// The last record known to be in the log.
    head: Seq,
    pending: VecDeque<(Seq, Vec<u8>)>,
}

impl Appender {
    fn next_seq(&self) -> Seq {
        self.head + self.pending.len() as Seq + 1
    }
}

impl LoggedStore {
    /// The store of a shard held under `lease`, over a local copy already caught up to the
    /// lease's head (see [`crate::catch_up::take_over`]). Appends run on `runtime`.
    pub fn new(
        inner: Arc<dyn Store>,
        log: Arc<dyn ShardLog>,
        runtime: tokio::runtime::Handle,
        lease: &Lease,
    ) -> LoggedStore {
        LoggedStore {
            inner,
            log,
            runtime,
            shard: lease.shard,
            epoch: lease.epoch,
            appender: Mutex::new(Appender {
                head: lease.head,
                pending: VecDeque::new(),
            }),
            flushing: Mutex::new(()),
            stopped: OnceLock::new(),
        }
    }

    pub fn shard(&self) -> ShardId {
        self.shard
    }

    pub fn epoch(&self) -> Epoch {
        self.epoch
    }

    /// Why the store stopped, if it has.
    pub fn stopped(&self) -> Option<&str> {
        self.stopped.get().map(String::as_str)
    }

    /// Stops the store for good when its node stops serving the shard: work of the old engine
    /// that outlives its shutdown (a delivery finishing late) must not write into a copy the
    /// node may serve again, under a newer epoch, from the same directory.
    pub fn retire(&self) {
        let _ = self
            .stopped
            .set("the node stopped serving the shard".to_owned());
    }

    /// The last record this store knows to be in the log.
    pub fn head(&self) -> Seq {
        self.appender().head
    }

    fn appender(&self) -> MutexGuard<'_, Appender> {
        // Every change to the appender is a push or a pop: a panic leaves it consistent.
        self.appender.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn running(&self) -> Result<(), Error> {
        match self.stopped.get() {
            Some(reason) => Err(Error::Stopped {
                reason: reason.clone(),
            }),
            None => Ok(()),
        }
    }

    fn stop(&self, reason: String) -> Error {
        tracing::error!(shard = self.shard, epoch = self.epoch, %reason, "shard store stopped");
        let _ = self.stopped.set(reason);
        Error::Stopped {
            reason: self.stopped.get().cloned().unwrap_or_default(),
        }
    }

    /// Applies `batches` and `metas` locally in one write stamped with the next log position,
    /// and queues their record for the next flush. Only what passed its checks is logged.
    fn apply(
        &self,
        batches: Vec<CommitBatch>,
        metas: Vec<(String, Vec<u8>)>,
    ) -> Result<Vec<Result<CommitReceipt, Error>>, Error> {
        self.running()?;
        let mut appender = self.appender();
        let seq = appender.next_seq();
        let mut record = None;
        let results = self.inner.commit_group_stamped(batches, &mut |accepted| {
            let mut ops: Vec<LogOp> = accepted
                .iter()
                .map(|batch| LogOp::Commit((*batch).clone()))
                .collect();
            ops.extend(metas.iter().map(|(name, value)| LogOp::SetMeta {
                name: name.clone(),
                value: value.clone(),
            }));
            if ops.is_empty() {
                return Ok(Vec::new());
            }
            let bytes = log_record::encode(&ops);
            let stamp = Position::of(seq, self.epoch, &bytes).encode();
            record = Some(bytes);
            let mut writes = metas.clone();
            writes.push((POSITION_META.to_owned(), stamp));
            Ok(writes)
        })?;
        if let Some(bytes) = record {
            appender.pending.push_back((seq, bytes));
        }
        Ok(results)
    }

    /// Appends the pending records in order, fenced on this store's epoch.
    fn append_pending(&self) -> Result<(), Error> {
        let _flushing = self.flushing.lock().unwrap_or_else(PoisonError::into_inner);
        let pending: Vec<(Seq, Vec<u8>)> = self.appender().pending.iter().cloned().collect();
        for (seq, bytes) in pending {
            self.append_one(seq, &bytes)?;
            let mut appender = self.appender();
            appender.pending.pop_front();
            appender.head = seq;
        }
        Ok(())
    }

    fn append_one(&self, seq: Seq, bytes: &[u8]) -> Result<(), Error> {
        let mut pauses = APPEND_RETRY_PAUSES.iter();
        loop {
            let appended = self.block_on(self.log.append(self.shard, self.epoch, seq - 1, bytes));
            match appended {
                Ok(at) if at == seq => return Ok(()),
                Ok(at) => {
                    return Err(self.stop(format!(
                        "the log placed record {seq} at {at}: the shard log is inconsistent"
                    )));
                }
                Err(LogError::Unavailable(reason)) => match pauses.next() {
                    Some(pause) => {
                        tracing::warn!(shard = self.shard, seq, %reason, "append outcome unknown; trying again");
                        std::thread::sleep(*pause);
                    }
                    None => {
                        return Err(self.stop(format!(
                            "record {seq} may or may not be in the log (it stayed unreachable: \
                             {reason})"
                        )));
                    }
                },
                Err(refused) => return Err(self.stop(refused.to_string())),
            }
        }
    }

    /// Runs `future` to completion from the blocking caller (the group-commit thread, or a
    /// worker of a multi-threaded runtime).
    fn block_on<F: std::future::Future>(&self, future: F) -> F::Output {
        if tokio::runtime::Handle::try_current().is_ok() {
            tokio::task::block_in_place(|| self.runtime.block_on(future))
        } else {
            self.runtime.block_on(future)
        }
    }
}

impl Store for LoggedStore {
    fn commit(&self, batch: CommitBatch) -> Result<CommitReceipt, Error> {
        self.commit_group(vec![batch])
            .pop()
            .expect("one result per batch")
    }

    fn commit_group(&self, batches: Vec<CommitBatch>) -> Vec<Result<CommitReceipt, Error>> {
        let count = batches.len();
        self.apply(batches, Vec::new())
            .unwrap_or_else(|error| vec![Err(error); count])
    }

    /// A logged store keeps its own stamp; stamping it again from outside would let the local
    /// copy and the log disagree, so this is refused.
    fn commit_group_stamped(
        &self,
        _batches: Vec<CommitBatch>,
        _stamp: &mut Stamp<'_>,
    ) -> Result<Vec<Result<CommitReceipt, Error>>, Error> {
        Err(Error::InvalidBatch {
            reason: "a logged store stamps its own groups".to_owned(),
        })
    }

    /// The append is the durability: the local copy is not flushed, since a crash that loses
    /// its tail is repaired from the log at the next takeover.
    fn flush(&self) -> Result<(), Error> {
        self.running()?;
        self.append_pending()
    }

    fn last_seq(&self, entity: &EntityId) -> Result<u64, Error> {
        self.running()?;
        self.inner.last_seq(entity)
    }

    fn read_events(&self, entity: &EntityId, after_seq: u64) -> Result<Vec<StoredEvent>, Error> {
        self.running()?;
        self.inner.read_events(entity, after_seq)
    }

    fn snapshot(&self, entity: &EntityId) -> Result<Option<Snapshot>, Error> {
        self.running()?;
        self.inner.snapshot(entity)
    }

    fn past_events(&self, entity: &EntityId) -> Result<Vec<(OccurrenceId, Record)>, Error> {
        self.running()?;
        self.inner.past_events(entity)
    }

    fn past_event(
        &self,
        entity: &EntityId,
        occurrence: &OccurrenceId,
    ) -> Result<Option<Record>, Error> {
        self.running()?;
        self.inner.past_event(entity, occurrence)
    }

    fn timers_after(
        &self,
        after: Option<&TimerEntry>,
        limit: usize,
    ) -> Result<Vec<TimerEntry>, Error> {
        self.running()?;
        self.inner.timers_after(after, limit)
    }

    fn timers_from(&self, due: Timestamp, limit: usize) -> Result<Vec<TimerEntry>, Error> {
        self.running()?;
        self.inner.timers_from(due, limit)
    }

    fn entities_after(
        &self,
        after: Option<&EntityId>,
        limit: usize,
    ) -> Result<Vec<EntityId>, Error> {
        self.running()?;
        self.inner.entities_after(after, limit)
    }

    fn index_members(
        &self,
        index: &str,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, Error> {
        self.running()?;
        self.inner.index_members(index, after, limit)
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, Error> {
        self.running()?;
        self.inner.meta(name)
    }

    fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), Error> {
        if name == POSITION_META {
            return Err(Error::InvalidMeta {
                name: name.to_owned(),
                reason: "reserved for the shard's log position".to_owned(),
            });
        }
        self.apply(Vec::new(), vec![(name.to_owned(), value.to_vec())])
            .map(drop)
    }

    fn stats(&self) -> Result<StoreStats, Error> {
        self.running()?;
        self.inner.stats()
    }
}
