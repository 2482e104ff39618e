//! The one way the engine reads a long list out of the store: a page at a time, resuming after
//! the last key of the previous page, with one named page length.
//!
//! Every scan goes through [`Pages`], so no caller resumes from an inclusive bound (which reads
//! the same page forever when a page's worth of entries share one key) or collects a whole
//! index at once.

use tickler_core::{EntityId, Timestamp, index};
use tickler_store::{Store, TimerEntry};

use crate::Error;
use crate::engine::Engine;

/// How many keys one read of the store returns, for every scan the engine makes.
pub const PAGE_LEN: usize = 512;

/// Reads pages from `read(after, PAGE_LEN)` until a short page. `key` gives the cursor an item
/// leaves for the next read; the next page starts strictly after it.
pub struct Pages<T, K, R, F> {
    read: R,
    key: F,
    after: Option<K>,
    done: bool,
    _item: std::marker::PhantomData<fn() -> T>,
}

impl<T, K, R, F> Pages<T, K, R, F>
where
    R: FnMut(Option<&K>, usize) -> Result<Vec<T>, Error>,
    F: Fn(&T) -> K,
{
    pub fn new(after: Option<K>, read: R, key: F) -> Self {
        Pages {
            read,
            key,
            after,
            done: false,
            _item: std::marker::PhantomData,
        }
    }
}

impl<T, K, R, F> Iterator for Pages<T, K, R, F>
where
    R: FnMut(Option<&K>, usize) -> Result<Vec<T>, Error>,
    F: Fn(&T) -> K,
{
    type Item = Result<Vec<T>, Error>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let page = match (self.read)(self.after.as_ref(), PAGE_LEN) {
            Ok(page) => page,
            Err(err) => {
                self.done = true;
                return Some(Err(err));
            }
        };
        self.done = page.len() < PAGE_LEN;
        match page.last() {
            Some(last) => self.after = Some((self.key)(last)),
            None => return None,
        }
        Some(Ok(page))
    }
}

/// The members of the secondary index `index`, a page at a time, from after `after`.
pub(crate) fn index_pages<'a>(
    store: &'a dyn Store,
    index: &'a str,
    after: Option<String>,
) -> impl Iterator<Item = Result<Vec<String>, Error>> + Send + 'a {
    Pages::new(
        after,
        move |after: Option<&String>, len| {
            Ok(store.index_members(index, after.map(String::as_str), len)?)
        },
        String::clone,
    )
}

/// Every entity id in the store, a page at a time, from after `after`.
pub(crate) fn entity_pages(
    store: &dyn Store,
    after: Option<EntityId>,
) -> impl Iterator<Item = Result<Vec<EntityId>, Error>> + Send + '_ {
    Pages::new(
        after,
        move |after: Option<&EntityId>, len| Ok(store.entities_after(after, len)?),
        EntityId::clone,
    )
}

/// The timer index in due order from `from` on (every timer when `from` is `None`), a page at
/// a time.
pub(crate) fn timer_pages(
    store: &dyn Store,
    from: Option<Timestamp>,
) -> impl Iterator<Item = Result<Vec<TimerEntry>, Error>> + Send + '_ {
    Pages::new(
        None,
        move |after: Option<&TimerEntry>, len| match (after, from) {
            (None, Some(from)) => Ok(store.timers_from(from, len)?),
            (after, _) => Ok(store.timers_after(after, len)?),
        },
        TimerEntry::clone,
    )
}

/// A resumable walk over the entities of one index whose ids start with a prefix (the members
/// of a group, the entities of one kind under one parent). Reads only matching members, and one
/// page at a time, so a caller can act on each (an `await` per entity) without holding the
/// whole list: see [`Engine::next_page`].
#[derive(Clone, Debug)]
pub struct IndexScan {
    index: String,
    prefix: String,
    after: String,
    done: bool,
}

impl IndexScan {
    /// Entities of `kind` whose ids start with `prefix` (which includes the kind, `kind/...`).
    pub fn kind_with_prefix(kind: &str, prefix: &str) -> IndexScan {
        IndexScan::of(index::kind(kind), prefix)
    }

    /// Every entity addressed to `recipient`.
    pub fn recipient(recipient: &str) -> IndexScan {
        IndexScan::of(index::recipient(recipient), "")
    }

    fn of(index: String, prefix: &str) -> IndexScan {
        IndexScan {
            index,
            prefix: prefix.to_owned(),
            // The prefix itself sorts just before every id that extends it.
            after: prefix.to_owned(),
            done: false,
        }
    }
}

impl Engine {
    /// The next page of `scan` (`None` once it is exhausted).
    pub fn next_page(&self, scan: &mut IndexScan) -> Result<Option<Vec<EntityId>>, Error> {
        if scan.done {
            return Ok(None);
        }
        let after = (!scan.after.is_empty()).then_some(scan.after.as_str());
        let page = self
            .shared()
            .store
            .index_members(&scan.index, after, PAGE_LEN)?;
        scan.done = page.len() < PAGE_LEN;
        let mut ids = Vec::with_capacity(page.len());
        for member in &page {
            if !member.starts_with(&scan.prefix) {
                scan.done = true;
                break;
            }
            ids.push(EntityId::parse(member)?);
        }
        if let Some(last) = page.last() {
            scan.after = last.clone();
        }
        if ids.is_empty() && scan.done {
            return Ok(None);
        }
        Ok(Some(ids))
    }

    /// Every id `scan` finds, at most `limit`: for callers that need the list itself.
    pub fn collect_scan(&self, mut scan: IndexScan, limit: usize) -> Result<Vec<EntityId>, Error> {
        let mut found = Vec::new();
        while let Some(page) = self.next_page(&mut scan)? {
            for id in page {
                if found.len() == limit {
                    return Ok(found);
                }
                found.push(id);
            }
        }
        Ok(found)
    }
}
