//! Time is injected: the engine reads `now` only through a [`Clock`].
//!
//! [`SystemClock`] is the wall clock. [`ManualClock`] only moves when told to, which lets a test
//! (or an operator with `serve --clock manual`) run a 45-day cadence in milliseconds. Sleeping is
//! part of the clock so that the timer wheel sleeps on manual time when the clock is manual.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use tickler_core::{Span, Timestamp};
use tokio::sync::watch;

/// The longest the timer sleeps on the system clock before looking again, so that a wall-clock
/// jump (NTP step, suspended VM) is noticed within this bound rather than after a long sleep.
const SYSTEM_SLEEP_MAX: Duration = Duration::from_secs(1);

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
        let wait_ms = deadline.since(self.now()).as_millis().max(0) as u64;
        tokio::time::sleep(Duration::from_millis(wait_ms).min(SYSTEM_SLEEP_MAX)).await;
    }
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
