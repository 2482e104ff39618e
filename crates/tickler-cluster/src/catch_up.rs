//! Takeover: bring a shard's local copy up to the log's head before serving it.
//!
//! The copy's stamp ([`Position`]) says which record it reflects. If the log holds that record
//! with those bytes, the records after it are applied through the same commit path that
//! produced them, so the copy ends equal to the old owner's. Otherwise the copy holds writes
//! the log never accepted (applied by an owner that crashed, or was fenced, before appending)
//! and must be rebuilt from an empty store.

use std::sync::Arc;

use tickler_store::{CommitBatch, Error, Store};

use crate::log_record::{self, LogOp};
use crate::logged_store::LoggedStore;
use crate::position::{POSITION_META, Position};
use crate::shard_log::{Lease, LogError, LogRecord, Seq, ShardId, ShardLog};

/// Records read from the log per round trip.
const PAGE: usize = 256;

#[derive(Debug, thiserror::Error)]
pub enum CatchUpError {
    #[error(
        "shard {shard}: the local copy is stamped with record {position}, which the log does not \
         hold with those bytes (its head is {head}): the copy has writes the log refused; \
         rebuild it from an empty store"
    )]
    Ahead {
        shard: ShardId,
        position: Seq,
        head: Seq,
    },
    #[error(
        "shard {shard}: the local copy has data but no log position: it is not this shard's copy"
    )]
    Unstamped { shard: ShardId },
    #[error("shard {shard}: {source}")]
    Log { shard: ShardId, source: LogError },
    #[error("shard {shard}: the local store failed: {source}")]
    Store { shard: ShardId, source: Error },
    #[error("shard {shard}: log record {seq} does not decode: {reason}")]
    Record {
        shard: ShardId,
        seq: Seq,
        reason: String,
    },
    #[error(
        "shard {shard}: replaying log record {seq} was refused ({reason}); the log and this \
         build disagree, so the shard is quarantined"
    )]
    Refused {
        shard: ShardId,
        seq: Seq,
        reason: String,
    },
}

/// Where a local copy stands against the log.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LocalCopy {
    /// It reflects the log up to and including `position` (0: an empty copy).
    Behind { position: Seq },
    /// It holds writes the log does not: rebuild it.
    Ahead { position: Seq },
}

/// Compares the copy's stamp with the log.
pub async fn check_local_copy(
    store: &dyn Store,
    log: &dyn ShardLog,
    shard: ShardId,
) -> Result<LocalCopy, CatchUpError> {
    let store_error = |source| CatchUpError::Store { shard, source };
    let stamp = store.meta(POSITION_META).map_err(store_error)?;
    let Some(stamp) = stamp else {
        let empty = store
            .entities_after(None, 1)
            .map_err(store_error)?
            .is_empty()
            && store.timers_after(None, 1).map_err(store_error)?.is_empty();
        return if empty {
            Ok(LocalCopy::Behind { position: 0 })
        } else {
            Err(CatchUpError::Unstamped { shard })
        };
    };
    let position = Position::decode(&stamp).ok_or_else(|| CatchUpError::Store {
        shard,
        source: Error::CorruptEntry {
            what: POSITION_META.to_owned(),
            reason: format!("{} bytes, expected 20", stamp.len()),
        },
    })?;
    let record = log
        .read_after(shard, position.seq.saturating_sub(1), 1)
        .await
        .map_err(|source| CatchUpError::Log { shard, source })?;
    Ok(match record.first() {
        Some(found) if position.names(found.seq, found.epoch, &found.bytes) => LocalCopy::Behind {
            position: position.seq,
        },
        _ => LocalCopy::Ahead {
            position: position.seq,
        },
    })
}

/// Applies the log's records after `from`, up to `to`, to `store`; returns the last applied.
pub async fn catch_up(
    store: &dyn Store,
    log: &dyn ShardLog,
    shard: ShardId,
    from: Seq,
    to: Seq,
) -> Result<Seq, CatchUpError> {
    let mut at = from;
    while at < to {
        let page = log
            .read_after(shard, at, PAGE)
            .await
            .map_err(|source| CatchUpError::Log { shard, source })?;
        if page.is_empty() {
            break;
        }
        for record in page.into_iter().take_while(|record| record.seq <= to) {
            apply_record(store, shard, &record)?;
            at = record.seq;
        }
    }
    Ok(at)
}

/// Applies one record, stamped with its position, all or nothing: a batch refused leaves the
/// copy as it was (stamp included), so a retried takeover starts from the same place.
fn apply_record(store: &dyn Store, shard: ShardId, record: &LogRecord) -> Result<(), CatchUpError> {
    let seq = record.seq;
    let ops = log_record::decode(&record.bytes).map_err(|error| CatchUpError::Record {
        shard,
        seq,
        reason: error.reason,
    })?;
    let (batches, metas) = split_ops(ops);
    let count = batches.len();
    let stamp = Position::of(seq, record.epoch, &record.bytes).encode();
    let mut passed = count;
    let written = store.commit_group_stamped(batches, &mut |accepted| {
        passed = accepted.len();
        if passed != count {
            // Refusing the stamp keeps the whole group unwritten.
            return Err(Error::InvalidBatch {
                reason: format!("only {passed} of its {count} batches apply"),
            });
        }
        let mut writes = metas.clone();
        writes.push((POSITION_META.to_owned(), stamp.clone()));
        Ok(writes)
    });
    match written {
        Ok(_) => Ok(()),
        Err(refused) if passed != count => Err(CatchUpError::Refused {
            shard,
            seq,
            reason: refused.to_string(),
        }),
        Err(source) => Err(CatchUpError::Store { shard, source }),
    }
}

fn split_ops(ops: Vec<LogOp>) -> (Vec<CommitBatch>, Vec<(String, Vec<u8>)>) {
    let mut batches = Vec::new();
    let mut metas = Vec::new();
    for op in ops {
        match op {
            LogOp::Commit(batch) => batches.push(batch),
            LogOp::SetMeta { name, value } => metas.push((name, value)),
        }
    }
    (batches, metas)
}

/// Brings `store` (the shard's local copy) up to the head of `lease` and wraps it for serving.
/// `Ahead` and `Unstamped` mean the caller must rebuild the copy from an empty store.
pub async fn take_over(
    store: Arc<dyn Store>,
    log: Arc<dyn ShardLog>,
    lease: &Lease,
) -> Result<LoggedStore, CatchUpError> {
    let shard = lease.shard;
    let position = match check_local_copy(&*store, &*log, shard).await? {
        LocalCopy::Behind { position } if position <= lease.head => position,
        LocalCopy::Behind { position } | LocalCopy::Ahead { position } => {
            return Err(CatchUpError::Ahead {
                shard,
                position,
                head: lease.head,
            });
        }
    };
    let reached = catch_up(&*store, &*log, shard, position, lease.head).await?;
    if reached != lease.head {
        return Err(CatchUpError::Log {
            shard,
            source: LogError::Unavailable(format!(
                "the log ended at record {reached}, before its head {}",
                lease.head
            )),
        });
    }
    Ok(LoggedStore::new(
        store,
        log,
        tokio::runtime::Handle::current(),
        lease,
    ))
}
