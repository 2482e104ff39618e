//! Time is injected: the engine reads `now` only through a [`Clock`].
//!
//! [`SystemClock`] is the wall clock. [`ManualClock`] only moves when told to, which lets a test
//! (or an operator with `serve --clock manual`) run a 45-day cadence in milliseconds. Sleeping is
//! part of the clock so that the timer wheel sleeps on manual time when the clock is manual.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use async_trait::async_trait;
use tickler_core::{Span, Timestamp};
use tokio::sync::watch;

/// The longest the timer sleeps on the system clock before looking again, so that a wall-clock
/// jump (NTP step, suspended VM) is noticed within this bound rather than after a long sleep.
const SYSTEM_SLEEP_MAX: Duration = Duration::from_secs(1);

/// tokio's timer counts whole milliseconds and rounds each deadline up to its next tick, so a
/// sleep through it ends up to about 2 ms after its deadline, 1 ms on average: at 5k reminders
/// a second that was most of a reminder's median lateness. The last stretch before a deadline,
/// at most this long, is slept on a blocking thread instead, whose OS timer ends within tens of
/// microseconds of it (BENCHMARKS.md, "The timer's last millisecond").
const PRECISE_STRETCH: Duration = Duration::from_millis(3);

#[async_trait]
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> Timestamp;

    /// Returns once `now() >= deadline`, or earlier (callers re-check `now`).
    async fn sleep_until(&self, deadline: Timestamp);

    /// The manual clock behind this one, if it is manual.
    fn as_manual(&self) -> Option<&ManualClock> {
        None
    }
}

#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

#[async_trait]
impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_chrono(&chrono::Utc::now())
            .expect("the system clock is between 1970 and 9999")
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let Some(remaining) = wall_time_until(deadline) else {
            return;
        };
        if remaining > PRECISE_STRETCH {
            // Wakes 1-3 ms before the deadline; the caller looks again and comes back here.
            let coarse = (remaining - PRECISE_STRETCH).min(SYSTEM_SLEEP_MAX);
            tokio::time::sleep(coarse).await;
        } else {
            sleep_precisely(remaining).await;
        }
    }
}

/// Sleeps on a thread of tokio's blocking pool, not on a worker (so it is meant for short
/// stretches: at most PRECISE_STRETCH here). If the caller is dropped meanwhile, the blocking
/// thread just finishes its sleep.
async fn sleep_precisely(length: Duration) {
    let _ = tokio::task::spawn_blocking(move || std::thread::sleep(length)).await;
}

/// How long until the wall clock reaches `deadline`, to the nanosecond; `None` if it has.
fn wall_time_until(deadline: Timestamp) -> Option<Duration> {
    let deadline = SystemTime::UNIX_EPOCH
        .checked_add(Duration::from_millis(deadline.as_millis().max(0) as u64))?;
    deadline
        .duration_since(SystemTime::now())
        .ok()
        .filter(|remaining| !remaining.is_zero())
}

/// A clock that moves only by [`ManualClock::set`] / [`ManualClock::advance`]. Clones share time.
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<watch::Sender<Timestamp>>,
}

impl ManualClock {
    pub fn new(start: Timestamp) -> ManualClock {
        ManualClock {
            now: Arc::new(watch::Sender::new(start)),
        }
    }

    /// Moves the clock to `at`, forwards or backwards (a backward jump fires nothing).
    pub fn set(&self, at: Timestamp) {
        self.now.send_replace(at);
    }

    pub fn advance(&self, by: Span) {
        let now = *self.now.borrow();
        self.set(now.saturating_add(by));
    }
}

#[async_trait]
impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.now.borrow()
    }

    async fn sleep_until(&self, deadline: Timestamp) {
        let mut changes = self.now.subscribe();
        // Err only if the sender is gone, which cannot happen while `self` holds it.
        let _ = changes.wait_for(|now| *now >= deadline).await;
    }

    fn as_manual(&self) -> Option<&ManualClock> {
        Some(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// On a single-threaded runtime, other tasks keep running while the timer sleeps its last
    /// stretch, and the sleep lasts as long as asked.
    #[tokio::test(flavor = "current_thread")]
    async fn a_precise_sleep_neither_blocks_the_runtime_nor_ends_early() {
        use std::sync::atomic::{AtomicU64, Ordering};

        let other_task_steps = Arc::new(AtomicU64::new(0));
        let other_task = {
            let steps = other_task_steps.clone();
            tokio::spawn(async move {
                loop {
                    steps.fetch_add(1, Ordering::Relaxed);
                    tokio::task::yield_now().await;
                }
            })
        };
        let started = std::time::Instant::now();
        sleep_precisely(Duration::from_millis(20)).await;
        assert!(started.elapsed() >= Duration::from_millis(20));
        assert!(
            other_task_steps.load(Ordering::Relaxed) > 0,
            "the only worker thread ran another task while the timer slept"
        );
        other_task.abort();
    }

    #[test]
    fn the_wall_time_until_a_past_deadline_is_none() {
        let past = SystemClock.now().saturating_add(Span::from_millis(-1));
        assert_eq!(wall_time_until(past), None);
        assert_eq!(wall_time_until(Timestamp::EPOCH), None);
    }

    #[tokio::test]
    async fn a_manual_sleeper_wakes_when_the_clock_reaches_its_deadline() {
        let clock = ManualClock::new(Timestamp::from_millis(1_000).unwrap());
        let sleeper = {
            let clock = clock.clone();
            tokio::spawn(async move {
                clock
                    .sleep_until(Timestamp::from_millis(5_000).unwrap())
                    .await
            })
        };
        clock.advance(Span::seconds(1));
        tokio::task::yield_now().await;
        assert!(!sleeper.is_finished());
        clock.advance(Span::seconds(3));
        sleeper.await.unwrap();
        assert_eq!(clock.now().as_millis(), 5_000);
    }
}
