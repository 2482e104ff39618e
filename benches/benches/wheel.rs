//! The timing wheel with 100k timers spread over a day: insert, cancel and expire.
//!
//! Criterion reports the time for all 100k operations and the throughput in elements per
//! second; the time per operation is the reciprocal of the throughput.

use std::hint::black_box;

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use tickler_wheel::Wheel;

const TIMERS: u64 = 100_000;
const START_MS: u64 = 1_780_000_000_000;
const SPREAD_MS: u64 = 24 * 60 * 60 * 1_000;
/// Clock step and batch size of the stepwise expiry, as an engine tick might use them.
const STEP_MS: u64 = 1_000;
const BATCH_MAX: usize = 256;

/// `(key, deadline)` pairs with deadlines scattered over `SPREAD_MS` by splitmix64.
fn timers() -> Vec<(u64, u64)> {
    let mut rng = tickler_core::seed::SplitMix64(0x5EED);
    (0..TIMERS)
        .map(|key| (key, START_MS + 1 + rng.below(SPREAD_MS)))
        .collect()
}

fn filled(timers: &[(u64, u64)]) -> Wheel<u64> {
    let mut wheel = Wheel::new(START_MS);
    for &(key, deadline_ms) in timers {
        wheel.insert(key, deadline_ms);
    }
    wheel
}

fn wheel_100k(c: &mut Criterion) {
    let timers = timers();
    let mut group = c.benchmark_group("wheel_100k");
    group.throughput(Throughput::Elements(TIMERS));
    group.sample_size(10);

    group.bench_function("insert", |b| {
        b.iter_batched(
            || Wheel::new(START_MS),
            |mut wheel| {
                for &(key, deadline_ms) in &timers {
                    wheel.insert(key, deadline_ms);
                }
                wheel
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("remove", |b| {
        b.iter_batched(
            || filled(&timers),
            |mut wheel| {
                for (key, _) in &timers {
                    black_box(wheel.remove(key));
                }
                wheel
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("expire_all_in_one_poll", |b| {
        b.iter_batched(
            || filled(&timers),
            |mut wheel| {
                let expired = wheel.poll(START_MS + SPREAD_MS, usize::MAX);
                assert_eq!(expired.len(), TIMERS as usize);
                (wheel, expired)
            },
            BatchSize::PerIteration,
        )
    });

    group.bench_function("expire_stepwise", |b| {
        b.iter_batched(
            || filled(&timers),
            |mut wheel| {
                let mut now_ms = START_MS;
                while !wheel.is_empty() {
                    now_ms += STEP_MS;
                    black_box(wheel.poll(now_ms, BATCH_MAX));
                }
                wheel
            },
            BatchSize::PerIteration,
        )
    });

    group.finish();
}

criterion_group!(benches, wheel_100k);
criterion_main!(benches);
