//! Group commit: one write and one flush shared by every commit waiting when they start.
//!
//! A dedicated OS thread loops: wait for at least one commit or `durable` call, take all of them
//! queued so far, apply the commits as one group (`Store::commit_group`: each checked on its
//! own, those that pass written together), flush, and hand each its result. The flush starts
//! after every write it answers for: exactly what durability needs. Commits arriving while a
//! group is written queue up and share the next one, so N concurrent commands cost about two
//! writes and two flushes, not N of each (sled pays a global lock and two log-buffer rolls per
//! write, whatever its size). The store's calls block, which is why they run on this thread
//! rather than on the async runtime.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::Instant;

use tokio::sync::oneshot;

use crate::latency::{LatencyHistogram, LatencySummary};
use crate::{CommitBatch, CommitReceipt, Error, Store};

type Waiter = oneshot::Sender<Result<(), Error>>;
type Committer = oneshot::Sender<Result<CommitReceipt, Error>>;

/// A cloneable handle to the flusher thread; the thread stops when the last handle is dropped.
#[derive(Clone)]
pub struct GroupCommit {
    handle: Arc<Handle>,
}

/// Counters for benchmarks and status.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Flushes performed.
    pub flushes: u64,
    /// Waiters (commits and `durable` calls) answered by those flushes.
    pub waiters_served: u64,
    /// Commits applied, and the groups they were applied in.
    pub commits: u64,
    pub commit_groups: u64,
    /// The most waiters one flush answered.
    pub largest_group: u64,
    /// Waiters queued for the next flush right now.
    pub waiting: u64,
    /// How long the store took to apply each group's commits (`Store::commit_group`).
    pub write: LatencySummary,
    /// How long each flush took: what every commit waits for at least once.
    pub flush: LatencySummary,
}

/// Owned by the handles only: dropping it stops and joins the thread.
struct Handle {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

/// Owned by the handles and the thread.
struct Shared {
    store: Arc<dyn Store>,
    queue: Mutex<Queue>,
    queued: Condvar,
    flushes: AtomicU64,
    waiters_served: AtomicU64,
    largest_group: AtomicU64,
    commits: AtomicU64,
    commit_groups: AtomicU64,
    write_latency: LatencyHistogram,
    flush_latency: LatencyHistogram,
}

#[derive(Default)]
struct Queue {
    commits: Vec<(CommitBatch, Committer)>,
    waiters: Vec<Waiter>,
    closed: bool,
}

impl Queue {
    fn is_empty(&self) -> bool {
        self.commits.is_empty() && self.waiters.is_empty()
    }
}

impl GroupCommit {
    /// Starts the flusher thread for `store`.
    pub fn new(store: Arc<dyn Store>) -> GroupCommit {
        let shared = Arc::new(Shared {
            store,
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            flushes: AtomicU64::new(0),
            waiters_served: AtomicU64::new(0),
            largest_group: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_groups: AtomicU64::new(0),
            write_latency: LatencyHistogram::new(),
            flush_latency: LatencyHistogram::new(),
        });
        let thread = std::thread::Builder::new()
            .name("tickler-group-commit".to_owned())
            .spawn({
                let shared = Arc::clone(&shared);
                move || run(&shared)
            })
            .expect("the OS can start the group-commit thread");
        GroupCommit {
            handle: Arc::new(Handle {
                shared,
                thread: Some(thread),
            }),
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.handle.shared.store
    }

    /// Commits the batch with whatever else is waiting, then waits for the flush after that
    /// write: when this returns `Ok`, the commit is durable. A flush failure is returned as the
    /// error even though the commit is applied (visible, but not known to be durable).
    pub async fn commit(&self, batch: CommitBatch) -> Result<CommitReceipt, Error> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut queue = self.handle.shared.queue();
            queue.commits.push((batch, sender));
        }
        self.handle.shared.queued.notify_one();
        receiver.await.unwrap_or_else(|_| {
            Err(Error::Io(
                "the group-commit thread stopped before committing".to_owned(),
            ))
        })
    }

    /// Waits for a flush that started after this call: makes every write that returned before
    /// it (e.g. a `set_meta`) durable.
    pub async fn durable(&self) -> Result<(), Error> {
        let (sender, receiver) = oneshot::channel();
        {
            let mut queue = self.handle.shared.queue();
            queue.waiters.push(sender);
        }
        self.handle.shared.queued.notify_one();
        receiver.await.unwrap_or_else(|_| {
            Err(Error::Io(
                "the group-commit thread stopped before flushing".to_owned(),
            ))
        })
    }

    pub fn stats(&self) -> GroupCommitStats {
        let shared = &self.handle.shared;
        GroupCommitStats {
            flushes: shared.flushes.load(Ordering::Relaxed),
            waiters_served: shared.waiters_served.load(Ordering::Relaxed),
            largest_group: shared.largest_group.load(Ordering::Relaxed),
            commits: shared.commits.load(Ordering::Relaxed),
            commit_groups: shared.commit_groups.load(Ordering::Relaxed),
            waiting: {
                let queue = shared.queue();
                (queue.commits.len() + queue.waiters.len()) as u64
            },
            write: shared.write_latency.summary(),
            flush: shared.flush_latency.summary(),
        }
    }
}

impl Shared {
    /// Waiters are only pushed and drained whole, so a poisoned queue is still consistent.
    fn queue(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for Handle {
    /// Stops the thread and waits for it, so the store is released when this returns. That may
    /// block for the one flush in progress: no waiter can be left, since each holds a handle.
    fn drop(&mut self) {
        self.shared.queue().closed = true;
        self.shared.queued.notify_one();
        if let Some(thread) = self.thread.take()
            && thread.join().is_err()
        {
            tracing::error!("the group-commit thread panicked");
        }
    }
}

fn run(shared: &Shared) {
    loop {
        let (commits, waiters) = {
            let mut queue = shared.queue();
            while queue.is_empty() && !queue.closed {
                queue = shared
                    .queued
                    .wait(queue)
                    .unwrap_or_else(PoisonError::into_inner);
            }
            if queue.is_empty() {
                return;
            }
            (
                std::mem::take(&mut queue.commits),
                std::mem::take(&mut queue.waiters),
            )
        };
        // A panicking store must not strand the waiters of this and every later round.
        let (batches, committers): (Vec<_>, Vec<_>) = commits.into_iter().unzip();
        let count = batches.len();
        let results = if batches.is_empty() {
            Vec::new()
        } else {
            let started = Instant::now();
            let results = catch_unwind(AssertUnwindSafe(|| shared.store.commit_group(batches)))
                .unwrap_or_else(|_| {
                    vec![Err(Error::Io("the store's commit panicked".to_owned())); count]
                });
            shared.write_latency.record(started.elapsed());
            results
        };
        // Refused commits wrote nothing: a group of only those needs no flush.
        if waiters.is_empty() && !results.iter().any(Result::is_ok) {
            for (committer, result) in committers.into_iter().zip(results) {
                let _ = committer.send(result);
            }
            continue;
        }
        let started = Instant::now();
        let flushed = catch_unwind(AssertUnwindSafe(|| shared.store.flush()))
            .unwrap_or_else(|_| Err(Error::Io("the store's flush panicked".to_owned())));
        shared.flush_latency.record(started.elapsed());
        if let Err(error) = &flushed {
            tracing::error!(%error, commits = count, waiters = waiters.len(), "group-commit flush failed");
        }
        let group = (committers.len() + waiters.len()) as u64;
        shared.flushes.fetch_add(1, Ordering::Relaxed);
        shared.waiters_served.fetch_add(group, Ordering::Relaxed);
        shared.largest_group.fetch_max(group, Ordering::Relaxed);
        if count > 0 {
            shared.commits.fetch_add(count as u64, Ordering::Relaxed);
            shared.commit_groups.fetch_add(1, Ordering::Relaxed);
        }
        // A waiter whose caller gave up (dropped its future) no longer listens.
        for (committer, result) in committers.into_iter().zip(results) {
            let _ = committer.send(result.and_then(|receipt| flushed.clone().map(|()| receipt)));
        }
        for waiter in waiters {
            let _ = waiter.send(flushed.clone());
        }
    }
}
