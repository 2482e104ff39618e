//! A sweep of the index arithmetic: deadlines just before, at and just after every level
//! boundary, from start times just before, at and just after every level boundary.

use std::collections::{BTreeMap, BTreeSet};

use tickler_wheel::{LEVELS, SLOTS_PER_LEVEL, Wheel};

use crate::START_MS;

const ALL: usize = usize::MAX;

/// Slot widths of every level and then the top level's range: 1, 64, 4096, …, 64^6 ms.
fn boundaries_ms() -> impl Iterator<Item = u64> {
    (0..=LEVELS as u32).map(|level| (SLOTS_PER_LEVEL as u64).pow(level))
}

fn align_up(value_ms: u64, width_ms: u64) -> u64 {
    value_ms.div_ceil(width_ms) * width_ms
}

fn around(value_ms: u64) -> [u64; 3] {
    [
        value_ms.saturating_sub(1),
        value_ms,
        value_ms.saturating_add(1),
    ]
}

fn start_times_ms() -> BTreeSet<u64> {
    let mut starts: BTreeSet<u64> = [0, 1, 63, 64, 65, START_MS].into();
    for width_ms in boundaries_ms() {
        starts.extend(around(align_up(START_MS + 1, width_ms)));
    }
    starts
}

/// Offsets of one, two, 63 and 64 slot widths from the start, and the next one, two and 63
/// aligned boundaries of every level, each ± 1 ms.
fn deadlines_ms(start_ms: u64) -> BTreeSet<u64> {
    let mut deadlines = BTreeSet::from([start_ms, start_ms + 1]);
    for width_ms in boundaries_ms() {
        let aligned_ms = align_up(start_ms + 1, width_ms);
        for slots in [1, 2, 63, 64] {
            deadlines.extend(around(start_ms + slots * width_ms));
        }
        for slots in [0, 1, 62] {
            deadlines.extend(around(aligned_ms + slots * width_ms));
        }
    }
    deadlines.retain(|&deadline_ms| deadline_ms >= start_ms);
    deadlines
}

#[test]
fn every_boundary_deadline_alone_fires_exactly_at_its_deadline() {
    for start_ms in start_times_ms() {
        for deadline_ms in deadlines_ms(start_ms) {
            let context = format!("start {start_ms}, deadline {deadline_ms}");
            let mut wheel = Wheel::new(start_ms);
            wheel.insert("timer", deadline_ms);
            assert_eq!(wheel.next_deadline(), Some(deadline_ms), "{context}");
            if deadline_ms > start_ms {
                assert_eq!(wheel.poll(deadline_ms - 1, ALL), [], "{context}");
                assert_eq!(wheel.next_deadline(), Some(deadline_ms), "{context}");
            }
            assert_eq!(
                wheel.poll(deadline_ms, ALL),
                [("timer", deadline_ms)],
                "{context}"
            );
            assert!(wheel.is_empty(), "{context}");
        }
    }
}

#[test]
fn all_boundary_deadlines_together_fire_exactly_at_their_deadlines_stepping_through_each() {
    for start_ms in start_times_ms() {
        let deadlines = deadlines_ms(start_ms);
        let mut wheel = Wheel::new(start_ms);
        let mut pending = BTreeMap::new();
        for (key, &deadline_ms) in deadlines.iter().enumerate() {
            wheel.insert(key, deadline_ms);
            pending.insert((deadline_ms, key), ());
        }
        // Approach each deadline from a slot width of every level away, then land 1 ms early
        // and exactly on it, so every cascade on the way is crossed.
        let mut poll_times_ms = BTreeSet::new();
        for &deadline_ms in &deadlines {
            for width_ms in boundaries_ms() {
                poll_times_ms.insert(deadline_ms.saturating_sub(width_ms).max(start_ms));
            }
            poll_times_ms.insert(deadline_ms);
        }
        for now_ms in poll_times_ms {
            let context = format!("start {start_ms}, polled at {now_ms}");
            let expected: Vec<(usize, u64)> = pending
                .keys()
                .take_while(|&&(deadline_ms, _)| deadline_ms <= now_ms)
                .map(|&(deadline_ms, key)| (key, deadline_ms))
                .collect();
            for (key, deadline_ms) in &expected {
                pending.remove(&(*deadline_ms, *key));
            }
            assert_eq!(wheel.poll(now_ms, ALL), expected, "{context}");
            let next_ms = pending.keys().next().map(|&(deadline_ms, _)| deadline_ms);
            assert_eq!(wheel.next_deadline(), next_ms, "{context}");
        }
        assert!(wheel.is_empty(), "start {start_ms}");
    }
}

#[test]
fn every_millisecond_across_two_level_one_slots_fires_on_time_from_every_start_offset() {
    let slot_ms = SLOTS_PER_LEVEL as u64;
    let base_ms = align_up(START_MS, slot_ms * slot_ms) - slot_ms;
    for start_offset_ms in 0..slot_ms {
        let start_ms = base_ms + start_offset_ms;
        let mut wheel = Wheel::new(start_ms);
        let end_ms = start_ms + 2 * slot_ms + 1;
        for deadline_ms in start_ms..=end_ms {
            wheel.insert(deadline_ms, deadline_ms);
        }
        for now_ms in start_ms..=end_ms {
            assert_eq!(
                wheel.poll(now_ms, ALL),
                [(now_ms, now_ms)],
                "start {start_ms}, polled at {now_ms}"
            );
        }
        assert!(wheel.is_empty());
    }
}
