//! One level of the wheel: 64 slots and a bitmap of the occupied ones, plus the index
//! arithmetic that maps a deadline to a level and a slot.

use crate::slot::{Item, Positions, Slot};
use crate::{LEVELS, SLOT_BITS, SLOTS_PER_LEVEL, TICK_MS};

const SLOT_MASK: u64 = SLOTS_PER_LEVEL as u64 - 1;

/// Width of one slot of `level`.
pub(crate) const fn slot_width_ms(level: usize) -> u64 {
    TICK_MS << (SLOT_BITS as usize * level)
}

/// Span of all the slots of `level`; level `LEVELS - 1` spans [`crate::WHEEL_RANGE_MS`].
pub(crate) const fn level_range_ms(level: usize) -> u64 {
    slot_width_ms(level + 1)
}

const _: () = assert!(level_range_ms(LEVELS - 1) == crate::WHEEL_RANGE_MS);

/// The level at which a deadline is filed when the cursor is at `elapsed_ms`, or `None` if it is
/// outside the cursor's top-level window and belongs in the overflow.
///
/// The highest bit in which the two differ names the finest aligned window holding both.
/// Setting the low `SLOT_BITS` bits makes equal values land on level 0.
pub(crate) fn level_for(elapsed_ms: u64, deadline_ms: u64) -> Option<usize> {
    debug_assert!(deadline_ms >= elapsed_ms, "deadline behind the cursor");
    let masked = (elapsed_ms ^ deadline_ms) | SLOT_MASK;
    let highest_bit = (u64::BITS - 1 - masked.leading_zeros()) as usize;
    let level = highest_bit / SLOT_BITS as usize;
    (level < LEVELS).then_some(level)
}

/// The slot of `level` that holds `deadline_ms`.
pub(crate) fn slot_for(deadline_ms: u64, level: usize) -> usize {
    ((deadline_ms >> (SLOT_BITS as usize * level)) & SLOT_MASK) as usize
}

/// The next slot of a level that the cursor must process.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Expiration {
    pub level: usize,
    pub slot: usize,
    /// When the slot's window starts: the cursor moves here to process it.
    pub start_ms: u64,
}

#[derive(Debug)]
pub(crate) struct Level {
    level: usize,
    occupied: u64,
    slots: [Slot; SLOTS_PER_LEVEL],
}

impl Level {
    pub fn new(level: usize) -> Self {
        debug_assert!(level < LEVELS);
        Self {
            level,
            occupied: 0,
            slots: std::array::from_fn(|_| Slot::default()),
        }
    }

    pub fn is_occupied(&self, slot: usize) -> bool {
        self.occupied & (1 << slot) != 0
    }

    pub fn slot(&self, slot: usize) -> &Slot {
        &self.slots[slot]
    }

    pub fn push(&mut self, slot: usize, item: Item, positions: &mut Positions) {
        self.slots[slot].push(item, positions);
        self.occupied |= 1 << slot;
    }

    pub fn remove(&mut self, slot: usize, node: u32, positions: &mut Positions) -> Item {
        let item = self.slots[slot].remove(node, positions);
        if self.slots[slot].is_empty() {
            self.occupied &= !(1 << slot);
        }
        item
    }

    pub fn take_into(&mut self, slot: usize, into: &mut Vec<Item>) {
        self.slots[slot].take_into(into);
        self.occupied &= !(1 << slot);
    }

    /// The first occupied slot at or after the cursor's slot.
    ///
    /// Unlike tokio, which lets its top level wrap around, nothing here is ever filed behind the
    /// cursor (far deadlines go to the overflow), so the search never wraps. Above level 0 the
    /// cursor's own slot is always empty: its entries were filed on finer levels.
    pub fn next_expiration(&self, elapsed_ms: u64) -> Option<Expiration> {
        let cursor_slot = slot_for(elapsed_ms, self.level);
        debug_assert_eq!(
            self.occupied & !(u64::MAX << cursor_slot),
            0,
            "level {} has entries behind the cursor",
            self.level
        );
        debug_assert!(
            self.level == 0 || !self.is_occupied(cursor_slot),
            "level {} holds the cursor's own slot",
            self.level
        );
        if self.occupied == 0 {
            return None;
        }
        let slot = self.occupied.trailing_zeros() as usize;
        let level_start_ms = elapsed_ms & !(level_range_ms(self.level) - 1);
        let start_ms = level_start_ms + slot as u64 * slot_width_ms(self.level);
        debug_assert!(start_ms >= elapsed_ms);
        Some(Expiration {
            level: self.level,
            slot,
            start_ms,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn level_widths_multiply_by_sixty_four() {
        let widths: Vec<u64> = (0..LEVELS).map(slot_width_ms).collect();
        assert_eq!(widths, [1, 64, 4_096, 262_144, 16_777_216, 1_073_741_824]);
        assert_eq!(level_range_ms(LEVELS - 1), 68_719_476_736);
    }

    #[test]
    fn a_deadline_goes_to_the_finest_aligned_window_shared_with_the_cursor() {
        assert_eq!(level_for(0, 0), Some(0));
        assert_eq!(level_for(0, 63), Some(0));
        assert_eq!(level_for(0, 64), Some(1));
        assert_eq!(level_for(63, 64), Some(1));
        assert_eq!(level_for(64, 127), Some(0));
        assert_eq!(level_for(0, 4_095), Some(1));
        assert_eq!(level_for(0, 4_096), Some(2));
        assert_eq!(level_for(0, crate::WHEEL_RANGE_MS - 1), Some(LEVELS - 1));
        assert_eq!(level_for(0, crate::WHEEL_RANGE_MS), None);
        assert_eq!(
            level_for(crate::WHEEL_RANGE_MS - 1, crate::WHEEL_RANGE_MS),
            None
        );
        assert_eq!(level_for(0, u64::MAX), None);
    }

    #[test]
    fn slot_is_the_deadline_digit_of_the_level() {
        let deadline_ms = (5 << 12) | (7 << 6) | 9;
        assert_eq!(slot_for(deadline_ms, 0), 9);
        assert_eq!(slot_for(deadline_ms, 1), 7);
        assert_eq!(slot_for(deadline_ms, 2), 5);
        assert_eq!(slot_for(deadline_ms, 3), 0);
    }
}
