//! Scenarios, one behaviour each.

use tickler_wheel::{WHEEL_RANGE_MS, Wheel};

use crate::START_MS;

const ALL: usize = usize::MAX;
const SECOND_MS: u64 = 1_000;
const DAY_MS: u64 = 24 * 60 * 60 * SECOND_MS;
const YEAR_MS: u64 = 365 * DAY_MS;

#[test]
fn fires_at_its_exact_deadline_not_a_millisecond_earlier() {
    let mut wheel = Wheel::new(START_MS);
    let deadline_ms = START_MS + 90 * SECOND_MS + 7;
    wheel.insert("call mum", deadline_ms);

    assert_eq!(wheel.poll(deadline_ms - 1, ALL), []);
    assert!(wheel.contains(&"call mum"));
    assert_eq!(wheel.poll(deadline_ms, ALL), [("call mum", deadline_ms)]);
    assert!(wheel.is_empty());
    assert_eq!(wheel.poll(deadline_ms + 1, ALL), []);
}

#[test]
fn fires_when_a_poll_jumps_past_the_deadline_and_reports_the_deadline_not_the_poll_time() {
    let mut wheel = Wheel::new(START_MS);
    wheel.insert("a", START_MS + 5 * SECOND_MS);

    assert_eq!(
        wheel.poll(START_MS + DAY_MS, ALL),
        [("a", START_MS + 5 * SECOND_MS)]
    );
}

#[test]
fn remove_prevents_firing_and_returns_the_deadline() {
    let mut wheel = Wheel::new(START_MS);
    wheel.insert("a", START_MS + 10);
    wheel.insert("b", START_MS + 10);

    assert_eq!(wheel.remove(&"a"), Some(START_MS + 10));
    assert_eq!(wheel.remove(&"a"), None);
    assert!(!wheel.contains(&"a"));
    assert_eq!(wheel.len(), 1);
    assert_eq!(wheel.poll(START_MS + 10, ALL), [("b", START_MS + 10)]);
}

#[test]
fn reinsert_moves_the_deadline_and_returns_the_previous_one() {
    let mut wheel = Wheel::new(START_MS);
    assert_eq!(wheel.insert("later", START_MS + 100), None);
    assert_eq!(wheel.insert("sooner", START_MS + 100), None);

    assert_eq!(
        wheel.insert("later", START_MS + 5 * DAY_MS),
        Some(START_MS + 100)
    );
    assert_eq!(wheel.insert("sooner", START_MS + 3), Some(START_MS + 100));
    assert_eq!(wheel.len(), 2);
    assert_eq!(wheel.deadline(&"later"), Some(START_MS + 5 * DAY_MS));

    assert_eq!(wheel.poll(START_MS + 3, ALL), [("sooner", START_MS + 3)]);
    assert_eq!(wheel.poll(START_MS + 5 * DAY_MS - 1, ALL), []);
    assert_eq!(
        wheel.poll(START_MS + 5 * DAY_MS, ALL),
        [("later", START_MS + 5 * DAY_MS)]
    );
}

#[test]
fn past_deadline_expires_on_the_next_poll() {
    let mut wheel = Wheel::new(START_MS);
    wheel.poll(START_MS + DAY_MS, ALL);

    wheel.insert("overdue", START_MS + 5);
    assert_eq!(wheel.next_deadline(), Some(START_MS + 5));
    assert_eq!(
        wheel.poll(START_MS + DAY_MS, ALL),
        [("overdue", START_MS + 5)]
    );
}

#[test]
fn deadline_equal_to_the_current_time_expires_on_the_next_poll() {
    let mut wheel = Wheel::new(START_MS);
    wheel.insert("now", START_MS);

    assert_eq!(wheel.poll(START_MS, ALL), [("now", START_MS)]);

    wheel.insert("again now", START_MS);
    assert_eq!(wheel.poll(START_MS, ALL), [("again now", START_MS)]);
}

#[test]
fn overdue_entries_come_before_entries_that_just_came_due() {
    let mut wheel = Wheel::new(START_MS);
    wheel.poll(START_MS + 1_000, ALL);
    wheel.insert("due at 1500", START_MS + 1_500);
    wheel.insert("overdue at 200", START_MS + 200);
    wheel.insert("due at 1000", START_MS + 1_000);

    assert_eq!(
        wheel.poll(START_MS + 2_000, ALL),
        [
            ("overdue at 200", START_MS + 200),
            ("due at 1000", START_MS + 1_000),
            ("due at 1500", START_MS + 1_500),
        ]
    );
}

#[test]
fn max_limits_a_poll_and_the_rest_come_first_on_the_next_poll_in_order() {
    let mut wheel = Wheel::new(START_MS);
    for (key, offset_ms) in [
        ("e", 9),
        ("d", 7),
        ("c", 7),
        ("b", 3),
        ("a", 1),
        ("f", 5_000),
    ] {
        wheel.insert(key, START_MS + offset_ms);
    }

    assert_eq!(
        wheel.poll(START_MS + 10, 2),
        [("a", START_MS + 1), ("b", START_MS + 3)]
    );
    assert_eq!(wheel.len(), 4);
    assert_eq!(wheel.next_deadline(), Some(START_MS + 7));
    assert_eq!(wheel.poll(START_MS + 10, 1), [("c", START_MS + 7)]);
    assert_eq!(
        wheel.poll(START_MS + 6_000, ALL),
        [
            ("d", START_MS + 7),
            ("e", START_MS + 9),
            ("f", START_MS + 5_000)
        ]
    );
}

#[test]
fn max_of_zero_returns_nothing_and_keeps_everything() {
    let mut wheel = Wheel::new(START_MS);
    wheel.insert("a", START_MS + 1);

    assert_eq!(wheel.poll(START_MS + 10, 0), []);
    assert_eq!(wheel.now(), START_MS + 10);
    assert_eq!(wheel.poll(START_MS + 10, ALL), [("a", START_MS + 1)]);
}

#[test]
fn ties_are_ordered_by_key_whatever_the_insertion_order() {
    let mut wheel = Wheel::new(START_MS);
    let deadline_ms = START_MS + 3 * DAY_MS;
    for key in ["m", "z", "a", "q", "b"] {
        wheel.insert(key, deadline_ms);
    }

    let keys: Vec<&str> = wheel
        .poll(deadline_ms, ALL)
        .into_iter()
        .map(|(key, _)| key)
        .collect();
    assert_eq!(keys, ["a", "b", "m", "q", "z"]);
}

#[test]
fn ties_cut_by_max_resume_at_the_next_key() {
    let mut wheel = Wheel::new(START_MS);
    for key in [5, 3, 1, 4, 2] {
        wheel.insert(key, START_MS + 64);
    }
    wheel.insert(0, START_MS + 65);

    assert_eq!(
        wheel.poll(START_MS + 65, 2),
        [(1, START_MS + 64), (2, START_MS + 64)]
    );
    wheel.insert(0, START_MS + 64);
    assert_eq!(
        wheel.poll(START_MS + 65, ALL),
        [
            (0, START_MS + 64),
            (3, START_MS + 64),
            (4, START_MS + 64),
            (5, START_MS + 64)
        ]
    );
}

#[test]
fn polling_backwards_in_time_fires_nothing_new() {
    let mut wheel = Wheel::new(START_MS);
    wheel.insert("a", START_MS + 100);
    wheel.insert("b", START_MS + 200);
    wheel.insert("c", START_MS + 300);
    assert_eq!(wheel.poll(START_MS + 250, 1), [("a", START_MS + 100)]);

    assert_eq!(wheel.poll(START_MS + 150, ALL), []);
    assert_eq!(wheel.now(), START_MS + 250);
    assert_eq!(wheel.poll(START_MS, ALL), []);
    assert_eq!(wheel.poll(START_MS + 250, ALL), [("b", START_MS + 200)]);
    assert_eq!(wheel.poll(START_MS + 299, ALL), []);
    assert_eq!(wheel.poll(START_MS + 300, ALL), [("c", START_MS + 300)]);
}

#[test]
fn polling_backwards_still_returns_leftovers_due_by_then() {
    let mut wheel = Wheel::new(START_MS);
    wheel.insert("a", START_MS + 100);
    wheel.insert("b", START_MS + 200);
    assert_eq!(wheel.poll(START_MS + 250, 0), []);

    assert_eq!(wheel.poll(START_MS + 150, ALL), [("a", START_MS + 100)]);
    assert_eq!(wheel.poll(START_MS + 250, ALL), [("b", START_MS + 200)]);
}

#[test]
fn now_is_the_largest_time_polled() {
    let mut wheel: Wheel<u32> = Wheel::new(START_MS);
    assert_eq!(wheel.now(), START_MS);
    wheel.poll(START_MS + 10, ALL);
    wheel.poll(START_MS + 5, ALL);
    assert_eq!(wheel.now(), START_MS + 10);
}

#[test]
fn far_future_deadlines_beyond_the_top_level_fire_at_their_deadline() {
    let mut wheel = Wheel::new(START_MS);
    let in_five_years_ms = START_MS + 5 * YEAR_MS + 123;
    let in_two_ranges_ms = START_MS + 2 * WHEEL_RANGE_MS;
    wheel.insert("five years", in_five_years_ms);
    wheel.insert("two ranges", in_two_ranges_ms);
    wheel.insert("end of time", u64::MAX);
    assert_eq!(wheel.next_deadline(), Some(in_two_ranges_ms));

    assert_eq!(wheel.poll(in_two_ranges_ms - 1, ALL), []);
    assert_eq!(
        wheel.poll(in_two_ranges_ms, ALL),
        [("two ranges", in_two_ranges_ms)]
    );
    assert_eq!(wheel.next_deadline(), Some(in_five_years_ms));
    assert_eq!(wheel.poll(in_five_years_ms - 1, ALL), []);
    assert_eq!(
        wheel.poll(in_five_years_ms, ALL),
        [("five years", in_five_years_ms)]
    );
    assert_eq!(wheel.poll(u64::MAX - 1, ALL), []);
    assert_eq!(wheel.poll(u64::MAX, ALL), [("end of time", u64::MAX)]);
}

#[test]
fn a_near_deadline_across_the_top_window_boundary_fires_on_time() {
    let window_end_ms = (START_MS / WHEEL_RANGE_MS + 1) * WHEEL_RANGE_MS;
    let mut wheel = Wheel::new(window_end_ms - 3);
    wheel.insert("before", window_end_ms - 1);
    wheel.insert("across", window_end_ms + 1);

    assert_eq!(wheel.next_deadline(), Some(window_end_ms - 1));
    assert_eq!(
        wheel.poll(window_end_ms - 1, ALL),
        [("before", window_end_ms - 1)]
    );
    assert_eq!(wheel.next_deadline(), Some(window_end_ms + 1));
    assert_eq!(wheel.poll(window_end_ms, ALL), []);
    assert_eq!(
        wheel.poll(window_end_ms + 1, ALL),
        [("across", window_end_ms + 1)]
    );
}

#[test]
fn next_deadline_is_exact_after_cascades() {
    let mut wheel = Wheel::new(START_MS);
    assert_eq!(wheel.next_deadline(), None);
    // Several entries share one coarse slot; the earliest is neither first nor last inserted.
    let base_ms = START_MS + 10 * DAY_MS;
    for (key, offset_ms) in [
        ("x", 5_000_000),
        ("y", 1_234),
        ("z", 9_999_999),
        ("w", 77_777),
    ] {
        wheel.insert(key, base_ms + offset_ms);
    }
    assert_eq!(wheel.next_deadline(), Some(base_ms + 1_234));

    let mut expected = vec![1_234, 77_777, 5_000_000, 9_999_999];
    let mut now_ms = START_MS;
    while !expected.is_empty() {
        // Step by uneven amounts so cascades happen at every level on the way.
        now_ms += 1 + (now_ms % 7_919) * 97;
        let fired = wheel.poll(now_ms, ALL);
        expected.retain(|&offset_ms| base_ms + offset_ms > now_ms);
        assert_eq!(wheel.len(), expected.len(), "after polling {fired:?}");
        assert_eq!(
            wheel.next_deadline(),
            expected.first().map(|offset_ms| base_ms + offset_ms)
        );
    }
}

#[test]
fn next_deadline_follows_removal_of_the_earliest_entry() {
    let mut wheel = Wheel::new(START_MS);
    wheel.insert("a", START_MS + DAY_MS + 3);
    wheel.insert("b", START_MS + DAY_MS + 1);
    wheel.insert("c", START_MS + DAY_MS + 2);

    wheel.remove(&"b");
    assert_eq!(wheel.next_deadline(), Some(START_MS + DAY_MS + 2));
    wheel.remove(&"c");
    assert_eq!(wheel.next_deadline(), Some(START_MS + DAY_MS + 3));
    wheel.remove(&"a");
    assert_eq!(wheel.next_deadline(), None);
}

#[test]
fn len_contains_and_deadline_track_entries() {
    let mut wheel = Wheel::new(START_MS);
    assert!(wheel.is_empty());
    wheel.insert(7_u64, START_MS + 1);
    wheel.insert(8_u64, START_MS + 2);
    assert_eq!(
        (wheel.len(), wheel.contains(&7), wheel.deadline(&8)),
        (2, true, Some(START_MS + 2))
    );

    wheel.poll(START_MS + 1, ALL);
    assert_eq!(
        (wheel.len(), wheel.contains(&7), wheel.deadline(&7)),
        (1, false, None)
    );
}
