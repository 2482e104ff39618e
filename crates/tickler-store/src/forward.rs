//! [`forward_store_methods!`](crate::forward_store_methods): a wrapper store (a fault injector
//! in a test, a recorder in a benchmark) writes the one or two methods it changes and forwards
//! the others to the store it wraps, without restating each signature.

/// The paths the macro expands to, so that a caller needs no dependency on `tickler-core`.
#[doc(hidden)]
pub mod __paths {
    pub use tickler_core::{EntityId, OccurrenceId, Timestamp};

    pub use crate::{
        CommitBatch, CommitReceipt, Error, Record, Snapshot, Stamp, StoreStats, StoredEvent,
        TimerEntry,
    };
}

/// Inside an `impl Store for Wrapper`, implements the named [`Store`](crate::Store) methods by
/// calling the same method on the field `$field` (anything that derefs to a `Store`):
///
/// ```
/// use tickler_store::{forward_store_methods, CommitBatch, CommitReceipt, Error, MemoryStore, Store};
///
/// /// Counts commits, changes nothing else.
/// struct Counting {
///     inner: MemoryStore,
///     commits: std::sync::atomic::AtomicU64,
/// }
///
/// impl Store for Counting {
///     fn commit(&self, batch: CommitBatch) -> Result<CommitReceipt, Error> {
///         self.commits.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
///         self.inner.commit(batch)
///     }
///     forward_store_methods!(inner: flush, last_seq, read_events, snapshot, past_events,
///         past_event, timers_after, timers_from, entities_after, index_members, meta, set_meta,
///         stats);
/// }
///
/// let store = Counting { inner: MemoryStore::new(), commits: Default::default() };
/// store.flush().unwrap();
/// assert_eq!(store.stats().unwrap().events, 0);
/// ```
///
/// `commit_group` is left out of the list above, so `Counting` gets the trait's default, which
/// goes through its own `commit`; name it to forward it too. A method the list omits and the
/// trait requires fails to compile, as a forgotten one should.
#[macro_export]
macro_rules! forward_store_methods {
    ($field:ident : $($method:ident),+ $(,)?) => {
        $( $crate::forward_store_methods!(@one $field $method); )+
    };
    (@one $field:ident commit) => {
        fn commit(
            &self,
            batch: $crate::__paths::CommitBatch,
        ) -> Result<$crate::__paths::CommitReceipt, $crate::__paths::Error> {
            self.$field.commit(batch)
        }
    };
    (@one $field:ident commit_group) => {
        fn commit_group(
            &self,
            batches: Vec<$crate::__paths::CommitBatch>,
        ) -> Vec<Result<$crate::__paths::CommitReceipt, $crate::__paths::Error>> {
            self.$field.commit_group(batches)
        }
    };
    (@one $field:ident commit_group_stamped) => {
        fn commit_group_stamped(
            &self,
            batches: Vec<$crate::__paths::CommitBatch>,
            stamp: &mut $crate::__paths::Stamp<'_>,
        ) -> Result<
            Vec<Result<$crate::__paths::CommitReceipt, $crate::__paths::Error>>,
            $crate::__paths::Error,
        > {
            self.$field.commit_group_stamped(batches, stamp)
        }
    };
    (@one $field:ident flush) => {
        fn flush(&self) -> Result<(), $crate::__paths::Error> {
            self.$field.flush()
        }
    };
    (@one $field:ident last_seq) => {
        fn last_seq(
            &self,
            entity: &$crate::__paths::EntityId,
        ) -> Result<u64, $crate::__paths::Error> {
            self.$field.last_seq(entity)
        }
    };
    (@one $field:ident read_events) => {
        fn read_events(
            &self,
            entity: &$crate::__paths::EntityId,
            after_seq: u64,
        ) -> Result<Vec<$crate::__paths::StoredEvent>, $crate::__paths::Error> {
            self.$field.read_events(entity, after_seq)
        }
    };
    (@one $field:ident snapshot) => {
        fn snapshot(
            &self,
            entity: &$crate::__paths::EntityId,
        ) -> Result<Option<$crate::__paths::Snapshot>, $crate::__paths::Error> {
            self.$field.snapshot(entity)
        }
    };
    (@one $field:ident past_events) => {
        fn past_events(
            &self,
            entity: &$crate::__paths::EntityId,
        ) -> Result<
            Vec<($crate::__paths::OccurrenceId, $crate::__paths::Record)>,
            $crate::__paths::Error,
        > {
            self.$field.past_events(entity)
        }
    };
    (@one $field:ident past_event) => {
        fn past_event(
            &self,
            entity: &$crate::__paths::EntityId,
            occurrence: &$crate::__paths::OccurrenceId,
        ) -> Result<Option<$crate::__paths::Record>, $crate::__paths::Error> {
            self.$field.past_event(entity, occurrence)
        }
    };
    (@one $field:ident timers_after) => {
        fn timers_after(
            &self,
            after: Option<&$crate::__paths::TimerEntry>,
            limit: usize,
        ) -> Result<Vec<$crate::__paths::TimerEntry>, $crate::__paths::Error> {
            self.$field.timers_after(after, limit)
        }
    };
    (@one $field:ident timers_from) => {
        fn timers_from(
            &self,
            due: $crate::__paths::Timestamp,
            limit: usize,
        ) -> Result<Vec<$crate::__paths::TimerEntry>, $crate::__paths::Error> {
            self.$field.timers_from(due, limit)
        }
    };
    (@one $field:ident entities_after) => {
        fn entities_after(
            &self,
            after: Option<&$crate::__paths::EntityId>,
            limit: usize,
        ) -> Result<Vec<$crate::__paths::EntityId>, $crate::__paths::Error> {
            self.$field.entities_after(after, limit)
        }
    };
    (@one $field:ident index_members) => {
        fn index_members(
            &self,
            index: &str,
            after: Option<&str>,
            limit: usize,
        ) -> Result<Vec<String>, $crate::__paths::Error> {
            self.$field.index_members(index, after, limit)
        }
    };
    (@one $field:ident meta) => {
        fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, $crate::__paths::Error> {
            self.$field.meta(name)
        }
    };
    (@one $field:ident set_meta) => {
        fn set_meta(&self, name: &str, value: &[u8]) -> Result<(), $crate::__paths::Error> {
            self.$field.set_meta(name, value)
        }
    };
    (@one $field:ident stats) => {
        fn stats(&self) -> Result<$crate::__paths::StoreStats, $crate::__paths::Error> {
            self.$field.stats()
        }
    };
}
