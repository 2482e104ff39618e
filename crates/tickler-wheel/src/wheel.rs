//! The wheel: its public API, the poll loop and cascading.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::hash::Hash;

use crate::arena::{Arena, Node, Place};
use crate::level::{Expiration, Level, level_for, slot_for};
use crate::slot::Item;
use crate::{LEVELS, WHEEL_RANGE_MS};

/// A hierarchical timing wheel keyed by `K`, driven by [`Wheel::poll`].
///
/// Invariants, with the cursor at `elapsed_ms` (at most [`Wheel::now`]):
/// - every entry with a deadline before the cursor is in `due`, which may also hold entries
///   due exactly at the cursor;
/// - every other entry is in the level and slot given by `level_for` / `slot_for` as of the
///   time it was filed, or in `overflow`; the cursor never passes an occupied slot's start
///   without processing the slot, so every filing stays valid.
///
/// Hence `due` ≤ level 0 ≤ level 1 ≤ … ≤ level 5 ≤ overflow in deadline order, and within a
/// level, slots are in deadline order from the cursor's slot on.
pub struct Wheel<K> {
    now_ms: u64,
    elapsed_ms: u64,
    levels: Box<[Level; LEVELS]>,
    overflow: BTreeSet<(u64, u32)>,
    due: BTreeSet<(u64, K)>,
    index: HashMap<K, u32>,
    arena: Arena<K>,
    /// Reused buffer for the items of a slot being processed.
    scratch: Vec<Item>,
}

impl<K: Clone + Eq + Hash + Ord> Wheel<K> {
    /// A wheel whose current time is `now_ms`.
    pub fn new(now_ms: u64) -> Self {
        Self {
            now_ms,
            elapsed_ms: now_ms,
            levels: Box::new(std::array::from_fn(Level::new)),
            overflow: BTreeSet::new(),
            due: BTreeSet::new(),
            index: HashMap::new(),
            arena: Arena::new(),
            scratch: Vec::new(),
        }
    }

    /// Inserts or moves `key` to fire at `deadline_ms`; returns the previous deadline if the key
    /// was present.
    ///
    /// A deadline at or before the wheel's current time expires on the next poll whose `now_ms`
    /// reaches it (any poll that does not go backwards).
    ///
    /// # Panics
    /// If the wheel already holds [`crate::ENTRIES_MAX`] entries.
    pub fn insert(&mut self, key: K, deadline_ms: u64) -> Option<u64> {
        let id = match self.index.entry(key) {
            Entry::Occupied(entry) => {
                let id = *entry.get();
                self.unfile(id);
                let node = self.arena.get_mut(id);
                let previous_ms = std::mem::replace(&mut node.deadline_ms, deadline_ms);
                self.file(id);
                return Some(previous_ms);
            }
            Entry::Vacant(entry) => {
                let id = self.arena.alloc(Node {
                    key: entry.key().clone(),
                    deadline_ms,
                    place: Place::Due,
                });
                entry.insert(id);
                id
            }
        };
        self.file(id);
        None
    }

    /// Removes `key`; returns its deadline if it was present.
    pub fn remove(&mut self, key: &K) -> Option<u64> {
        let id = self.index.remove(key)?;
        self.unfile(id);
        Some(self.arena.release(id).deadline_ms)
    }

    pub fn deadline(&self, key: &K) -> Option<u64> {
        self.index
            .get(key)
            .map(|&id| self.arena.get(id).deadline_ms)
    }

    pub fn contains(&self, key: &K) -> bool {
        self.index.contains_key(key)
    }

    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }

    /// The exact earliest deadline among all entries (`None` if empty).
    ///
    /// O(`LEVELS`): the earliest entry is at the top of the heap of the first occupied slot of
    /// the first occupied level.
    pub fn next_deadline(&self) -> Option<u64> {
        if let Some(&(deadline_ms, _)) = self.due.first() {
            return Some(deadline_ms);
        }
        for level in self.levels.iter() {
            if let Some(expiration) = level.next_expiration(self.elapsed_ms) {
                return level.slot(expiration.slot).earliest_ms();
            }
        }
        self.overflow.first().map(|&(deadline_ms, _)| deadline_ms)
    }

    /// The wheel's current time: the largest `now_ms` polled so far, or the start.
    pub fn now(&self) -> u64 {
        self.now_ms
    }

    /// Advances the wheel to `now_ms` and returns up to `max` expired entries (deadline ≤
    /// `now_ms`) as `(key, deadline)`, in ascending `(deadline, key)` order.
    ///
    /// Entries not returned because of `max` stay and come first on the next poll. Time never
    /// goes backwards: an earlier `now_ms` than [`Wheel::now`] expires nothing new, and still
    /// returns nothing with a deadline after `now_ms`.
    ///
    /// The result is always the `max` smallest `(deadline, key)` pairs with deadline ≤ `now_ms`,
    /// so successive polls come out in order, except that an entry inserted with a deadline
    /// already passed comes out on the next poll, before later ones.
    pub fn poll(&mut self, now_ms: u64, max: usize) -> Vec<(K, u64)> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut expired = Vec::with_capacity(max.min(self.len()));
        while expired.len() < max {
            if self.elapsed_ms <= now_ms && self.levels[0].is_occupied(slot_for(self.elapsed_ms, 0))
            {
                self.expire_cursor_slot(max, &mut expired);
                continue;
            }
            if let Some(&(deadline_ms, _)) = self.due.first() {
                // Everything outside `due` is due at or after the cursor, hence after this.
                if deadline_ms > now_ms {
                    break;
                }
                expired.push(self.expire_first_due());
                continue;
            }
            if self.elapsed_ms >= now_ms {
                break;
            }
            match self.next_expiration() {
                Some(next) if next.start_ms() <= now_ms => self.process(next),
                _ => {
                    self.elapsed_ms = now_ms;
                    break;
                }
            }
        }
        debug_assert!(expired.len() <= max);
        debug_assert!(
            self.elapsed_ms <= self.now_ms,
            "cursor ahead of the wheel's time"
        );
        debug_assert!(
            expired
                .iter()
                .all(|&(_, deadline_ms)| deadline_ms <= now_ms)
        );
        debug_assert!(expired.is_sorted_by(|a, b| (a.1, &a.0) < (b.1, &b.0)));
        expired
    }

    /// Files `id` by its deadline relative to the cursor.
    fn file(&mut self, id: u32) {
        let elapsed_ms = self.elapsed_ms;
        let node = self.arena.get_mut(id);
        let deadline_ms = node.deadline_ms;
        if deadline_ms < elapsed_ms {
            node.place = Place::Due;
            self.due.insert((deadline_ms, node.key.clone()));
            return;
        }
        match level_for(elapsed_ms, deadline_ms) {
            Some(level) => {
                let slot = slot_for(deadline_ms, level);
                node.place = Place::Level {
                    level: level as u8,
                    slot: slot as u8,
                };
                let item = Item {
                    deadline_ms,
                    node: id,
                };
                self.levels[level].push(slot, item, &mut self.arena.positions);
            }
            None => {
                node.place = Place::Overflow;
                self.overflow.insert((deadline_ms, id));
            }
        }
    }

    /// Takes `id` out of wherever it is filed, leaving it in the arena and the index.
    fn unfile(&mut self, id: u32) {
        let node = self.arena.get(id);
        let deadline_ms = node.deadline_ms;
        let removed = match node.place {
            Place::Due => self.due.remove(&(deadline_ms, node.key.clone())),
            Place::Overflow => self.overflow.remove(&(deadline_ms, id)),
            Place::Level { level, slot } => {
                let level = &mut self.levels[level as usize];
                let item = level.remove(slot as usize, id, &mut self.arena.positions);
                item.deadline_ms == deadline_ms
            }
        };
        debug_assert!(removed, "entry not where its node says");
    }

    /// What the cursor must process next after its own level-0 slot.
    fn next_expiration(&self) -> Option<Next> {
        for level in self.levels.iter() {
            if let Some(expiration) = level.next_expiration(self.elapsed_ms) {
                return Some(Next::Slot(expiration));
            }
        }
        let &(deadline_ms, _) = self.overflow.first()?;
        Some(Next::OverflowWindow {
            start_ms: deadline_ms & !(WHEEL_RANGE_MS - 1),
        })
    }

    /// Moves the cursor to where `next` starts and files its entries on finer levels. A level-0
    /// slot needs nothing more: the poll loop expires the cursor's slot.
    fn process(&mut self, next: Next) {
        debug_assert!(
            next.start_ms() > self.elapsed_ms,
            "cursor not moving forwards"
        );
        self.elapsed_ms = next.start_ms();
        match next {
            Next::Slot(Expiration { level: 0, .. }) => {}
            Next::Slot(expiration) => self.cascade(expiration),
            Next::OverflowWindow { .. } => {
                let window = self.elapsed_ms / WHEEL_RANGE_MS;
                while let Some(&(deadline_ms, id)) = self.overflow.first()
                    && deadline_ms / WHEEL_RANGE_MS == window
                {
                    self.overflow.pop_first();
                    self.file(id);
                    debug_assert!(matches!(self.arena.get(id).place, Place::Level { .. }));
                }
            }
        }
    }

    fn cascade(&mut self, expiration: Expiration) {
        let mut items = std::mem::take(&mut self.scratch);
        self.levels[expiration.level].take_into(expiration.slot, &mut items);
        for item in items.drain(..) {
            self.file(item.node);
            debug_assert!(matches!(
                self.arena.get(item.node).place,
                Place::Level { level, .. } if (level as usize) < expiration.level
            ));
        }
        self.scratch = items;
    }

    /// Expires the entries due exactly at the cursor, in key order: straight into `expired` as
    /// far as `max` allows when nothing else is due, into `due` otherwise.
    fn expire_cursor_slot(&mut self, max: usize, expired: &mut Vec<(K, u64)>) {
        let mut items = std::mem::take(&mut self.scratch);
        self.levels[0].take_into(slot_for(self.elapsed_ms, 0), &mut items);
        debug_assert!(items.iter().all(|item| item.deadline_ms == self.elapsed_ms));
        let arena = &self.arena;
        items.sort_unstable_by(|a, b| arena.get(a.node).key.cmp(&arena.get(b.node).key));
        let direct = if self.due.is_empty() {
            (max - expired.len()).min(items.len())
        } else {
            0
        };
        for (n, item) in items.drain(..).enumerate() {
            if n < direct {
                let node = self.arena.release(item.node);
                let indexed = self.index.remove(&node.key);
                debug_assert_eq!(indexed, Some(item.node));
                expired.push((node.key, node.deadline_ms));
            } else {
                let node = self.arena.get_mut(item.node);
                node.place = Place::Due;
                self.due.insert((node.deadline_ms, node.key.clone()));
            }
        }
        self.scratch = items;
    }

    fn expire_first_due(&mut self) -> (K, u64) {
        let (deadline_ms, key) = self.due.pop_first().expect("due is not empty");
        let id = self.index.remove(&key).expect("due entry is indexed");
        let node = self.arena.release(id);
        debug_assert_eq!((node.place, node.deadline_ms), (Place::Due, deadline_ms));
        (key, deadline_ms)
    }
}

/// The next thing the cursor must process.
#[derive(Clone, Copy, Debug)]
enum Next {
    Slot(Expiration),
    /// The overflow's earliest deadline falls in the top-level window starting here.
    OverflowWindow {
        start_ms: u64,
    },
}

impl Next {
    fn start_ms(self) -> u64 {
        match self {
            Next::Slot(expiration) => expiration.start_ms,
            Next::OverflowWindow { start_ms } => start_ms,
        }
    }
}

impl<K> fmt::Debug for Wheel<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Wheel")
            .field("now_ms", &self.now_ms)
            .field("elapsed_ms", &self.elapsed_ms)
            .field("len", &self.index.len())
            .finish_non_exhaustive()
    }
}
