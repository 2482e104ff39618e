//! Counting work in flight (wakes being handled, deliveries under way) so that the manual clock
//! can wait until the engine is quiet before it moves time again. That is what makes
//! "advance 30 days" process every occurrence at its own instant, in due order.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;

#[derive(Clone, Default)]
pub struct Activity {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    in_flight: AtomicI64,
    idle: Notify,
}

/// One unit of work; dropping it ends the work, wherever that happens.
pub struct ActivityGuard {
    inner: Arc<Inner>,
}

impl Activity {
    pub fn begin(&self) -> ActivityGuard {
        self.inner.in_flight.fetch_add(1, Ordering::SeqCst);
        ActivityGuard {
            inner: self.inner.clone(),
        }
    }

    pub fn in_flight(&self) -> i64 {
        self.inner.in_flight.load(Ordering::SeqCst)
    }

    /// Returns once nothing is in flight.
    pub async fn idle(&self) {
        loop {
            let notified = self.inner.idle.notified();
            tokio::pin!(notified);
            // Register before checking, so a guard dropped in between still wakes us.
            notified.as_mut().enable();
            if self.in_flight() == 0 {
                return;
            }
            notified.await;
        }
    }
}

impl Drop for ActivityGuard {
    fn drop(&mut self) {
        let before = self.inner.in_flight.fetch_sub(1, Ordering::SeqCst);
        debug_assert!(before > 0, "more work ended than began");
        if before == 1 {
            self.inner.idle.notify_waiters();
        }
    }
}

impl std::fmt::Debug for ActivityGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ActivityGuard")
    }
}
