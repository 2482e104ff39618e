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
//!
//! How long each write and flush took is told to a [`CommitTimings`] (the engine's histograms);
//! this crate keeps counts only, and no latency figures of its own.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tokio::sync::oneshot;

use crate::{CommitBatch, CommitReceipt, Error, Store};

type Waiter = oneshot::Sender<Result<(), Error>>;
type Committer = oneshot::Sender<Result<CommitReceipt, Error>>;

/// A cloneable handle to the flusher thread; the thread stops when the last handle is dropped.
#[derive(Clone)]
pub struct GroupCommit {
    handle: Arc<Handle>,
}

/// Told how long each group's store write and each flush took. Called on the group-commit
/// thread between a write and its flush, so it must return at once (record and go).
pub trait CommitTimings: Send + Sync {
    /// `Store::commit_group` applied a group of commits in `took`.
    fn wrote(&self, took: Duration);
    /// A flush ended after `took`; `failed` if it returned an error.
    fn flushed(&self, took: Duration, failed: bool);
}

/// Counters for benchmarks, status and readiness.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct GroupCommitStats {
    /// Flushes performed, and how many of them failed.
    pub flushes: u64,
    pub flushes_failed: u64,
    /// Whether the latest flush failed: as far as anyone knows, the store takes no writes now
    /// (a full disk, an I/O error), until a flush succeeds again.
    pub latest_flush_failed: bool,
    /// Waiters (commits and `durable` calls) answered by those flushes.
    pub waiters_served: u64,
    /// Commits applied, and the groups they were applied in.
    pub commits: u64,
    pub commit_groups: u64,
    /// The most waiters one flush answered.
    pub largest_group: u64,
    /// Waiters queued for the next flush right now.
    pub waiting: u64,
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
    timings: Option<Arc<dyn CommitTimings>>,
    flushes: AtomicU64,
    flushes_failed: AtomicU64,
    latest_flush_failed: AtomicBool,
    waiters_served: AtomicU64,
    largest_group: AtomicU64,
    commits: AtomicU64,
    commit_groups: AtomicU64,
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
        GroupCommit::start(store, None)
    }

    /// Starts the flusher thread for `store`, telling `timings` how long each write and flush
    /// took.
    pub fn with_timings(store: Arc<dyn Store>, timings: Arc<dyn CommitTimings>) -> GroupCommit {
        GroupCommit::start(store, Some(timings))
    }

    fn start(store: Arc<dyn Store>, timings: Option<Arc<dyn CommitTimings>>) -> GroupCommit {
        let shared = Arc::new(Shared {
            store,
            queue: Mutex::new(Queue::default()),
            queued: Condvar::new(),
            timings,
            flushes: AtomicU64::new(0),
            flushes_failed: AtomicU64::new(0),
            latest_flush_failed: AtomicBool::new(false),
            waiters_served: AtomicU64::new(0),
            largest_group: AtomicU64::new(0),
            commits: AtomicU64::new(0),
            commit_groups: AtomicU64::new(0),
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
            flushes_failed: shared.flushes_failed.load(Ordering::Relaxed),
            latest_flush_failed: shared.latest_flush_failed.load(Ordering::Relaxed),
            waiters_served: shared.waiters_served.load(Ordering::Relaxed),
            largest_group: shared.largest_group.load(Ordering::Relaxed),
            commits: shared.commits.load(Ordering::Relaxed),
            commit_groups: shared.commit_groups.load(Ordering::Relaxed),
            waiting: {
                let queue = shared.queue();
                (queue.commits.len() + queue.waiters.len()) as u64
            },
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
            if let Some(timings) = &shared.timings {
                timings.wrote(started.elapsed());
            }
            results
        };
        // Refused commits wrote nothing: a group of only those needs no flush.
        if waiters.is_empty() && !results.iter().any(Result::is_ok) {
            for (committer, result) in committers.into_iter().zip(results) {
                let _ = committer.send(result);
            }
            continue;
        }
        let group = (committers.len() + waiters.len()) as u64;
        let flushed = flush(shared, count, group);
        // A waiter whose caller gave up (dropped its future) no longer listens.
        for (committer, result) in committers.into_iter().zip(results) {
            let _ = committer.send(result.and_then(|receipt| flushed.clone().map(|()| receipt)));
        }
        for waiter in waiters {
            let _ = waiter.send(flushed.clone());
        }
    }
}

/// Flushes for a group of `commits` commits and `group` waiters in all, timing and counting the
/// flush; what every waiter of the group is answered.
fn flush(shared: &Shared, commits: usize, group: u64) -> Result<(), Error> {
    let started = Instant::now();
    let flushed = catch_unwind(AssertUnwindSafe(|| shared.store.flush()))
        .unwrap_or_else(|_| Err(Error::Io("the store's flush panicked".to_owned())));
    if let Some(timings) = &shared.timings {
        timings.flushed(started.elapsed(), flushed.is_err());
    }
    shared
        .latest_flush_failed
        .store(flushed.is_err(), Ordering::Relaxed);
    if let Err(error) = &flushed {
        shared.flushes_failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!(%error, commits, waiters = group, "group-commit flush failed");
    }
    shared.flushes.fetch_add(1, Ordering::Relaxed);
    shared.waiters_served.fetch_add(group, Ordering::Relaxed);
    shared.largest_group.fetch_max(group, Ordering::Relaxed);
    if commits > 0 {
        shared.commits.fetch_add(commits as u64, Ordering::Relaxed);
        shared.commit_groups.fetch_add(1, Ordering::Relaxed);
    }
    flushed
}
