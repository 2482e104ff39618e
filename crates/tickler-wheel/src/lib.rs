//! A hierarchical timing wheel for the engine's near-term timers.
//!
//! The wheel is a pure data structure in the style of tokio's timer wheel: it never reads a
//! clock. Its owner drives it with [`Wheel::poll`], passing absolute UTC milliseconds, and gets
//! back the entries whose deadline has come, in ascending `(deadline, key)` order. Nothing fires
//! early: level 0 has a resolution of one millisecond, so a deadline needs no rounding.
//!
//! # Levels
//!
//! A deadline is filed at the lowest level whose aligned window also contains the wheel's cursor
//! (the highest bit in which deadline and cursor differ picks the level). When the cursor reaches
//! a slot of a higher level, the slot's entries cascade down to finer levels.
//!
//! | level    | slot width                        | range: 64 slots                              |
//! | -------- | --------------------------------- | -------------------------------------------- |
//! | 0        | 1 ms                              | 64 ms                                        |
//! | 1        | 64 ms                             | 4 096 ms (4.1 s)                             |
//! | 2        | 4 096 ms (4.1 s)                  | 262 144 ms (4.4 min)                         |
//! | 3        | 262 144 ms (4.4 min)              | 16 777 216 ms (4.7 h)                        |
//! | 4        | 16 777 216 ms (4.7 h)             | 1 073 741 824 ms (12.4 days)                 |
//! | 5        | 1 073 741 824 ms (12.4 days)      | 68 719 476 736 ms (795 days, 2.2 years)      |
//! | overflow | -                                 | beyond the cursor's level-5 window           |
//!
//! Slot width of level `n` is `TICK_MS << (SLOT_BITS * n)`; the range of level 5 is
//! [`WHEEL_RANGE_MS`]. Windows are aligned to multiples of their range, so the overflow (a
//! `BTreeSet`) holds the deadlines outside the cursor's current [`WHEEL_RANGE_MS`] window, even
//! near ones when that window is about to end; they are filed into the levels when the cursor
//! enters their window.
//!
//! Each slot is a small indexed min-heap on the deadline, so [`Wheel::next_deadline`] is exact
//! without cascading anything. An index by key makes [`Wheel::insert`] and [`Wheel::remove`]
//! O(1) amortised plus the heap's sift (O(1) on average for insert, O(log n) at worst).

mod arena;
mod level;
mod slot;
mod wheel;

pub use wheel::Wheel;

/// Bits of a deadline that one level resolves.
pub const SLOT_BITS: u32 = 6;

/// Slots in one level: one bit each in the level's `u64` occupancy bitmap.
pub const SLOTS_PER_LEVEL: usize = 1 << SLOT_BITS;

/// Levels in the wheel; deadlines beyond the top level go to the overflow.
pub const LEVELS: usize = 6;

/// Width of a level-0 slot: the wheel's resolution.
pub const TICK_MS: u64 = 1;

/// Span of the top level: the aligned window of deadlines the levels can hold.
pub const WHEEL_RANGE_MS: u64 = TICK_MS << (SLOT_BITS as usize * LEVELS);

/// Entries the wheel can hold at once; entries are addressed by `u32` internally.
pub const ENTRIES_MAX: usize = u32::MAX as usize;

const _: () = assert!(
    SLOTS_PER_LEVEL == u64::BITS as usize,
    "one occupancy bit per slot"
);
const _: () = assert!(TICK_MS == 1, "level 0 must hold exact milliseconds");
const _: () = assert!(
    WHEEL_RANGE_MS >= 2 * 365 * 24 * 60 * 60 * 1000,
    "the levels must cover about two years"
);
const _: () = assert!(LEVELS <= u8::MAX as usize, "a level number fits in a byte");
