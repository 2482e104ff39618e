//! A seeded randomized test against a model: a sorted set of `(deadline, key)`.
//!
//! Every step does a random insert, remove or poll (random `max`, time jumps small, huge and
//! backwards) on both, and asserts identical results and an identical `next_deadline`.
//! A failure prints its seed; replay it with `WHEEL_MODEL_SEED=<seed> cargo test -p
//! tickler-wheel model`. `WHEEL_MODEL_SEEDS=<n>` runs more seeds.

use std::collections::{BTreeSet, HashMap};
use std::panic::{self, AssertUnwindSafe};

use tickler_core::seed::SplitMix64;
use tickler_wheel::{LEVELS, SLOTS_PER_LEVEL, WHEEL_RANGE_MS, Wheel};

use crate::START_MS;

const SEEDS_DEFAULT: u64 = 300;
const STEPS_PER_SEED: usize = 1_500;

/// The tests' one seeded generator, with the picks this model needs.
struct Rng(SplitMix64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        assert!(bound > 0);
        self.0.below(bound)
    }

    fn percent(&mut self) -> u64 {
        self.below(100)
    }

    /// A slot width of a random level, or the top level's whole range.
    fn level_width_ms(&mut self) -> u64 {
        (SLOTS_PER_LEVEL as u64).pow(self.below(LEVELS as u64 + 1) as u32)
    }
}

#[derive(Default)]
struct Model {
    now_ms: u64,
    entries: BTreeSet<(u64, u32)>,
    deadlines: HashMap<u32, u64>,
}

impl Model {
    fn insert(&mut self, key: u32, deadline_ms: u64) -> Option<u64> {
        let previous_ms = self.remove(&key);
        self.entries.insert((deadline_ms, key));
        self.deadlines.insert(key, deadline_ms);
        previous_ms
    }

    fn remove(&mut self, key: &u32) -> Option<u64> {
        let deadline_ms = self.deadlines.remove(key)?;
        self.entries.remove(&(deadline_ms, *key));
        Some(deadline_ms)
    }

    fn poll(&mut self, now_ms: u64, max: usize) -> Vec<(u32, u64)> {
        self.now_ms = self.now_ms.max(now_ms);
        let mut expired = Vec::new();
        while expired.len() < max {
            match self.entries.first() {
                Some(&(deadline_ms, key)) if deadline_ms <= now_ms => {
                    self.remove(&key);
                    expired.push((key, deadline_ms));
                }
                _ => break,
            }
        }
        expired
    }

    fn next_deadline(&self) -> Option<u64> {
        self.entries.first().map(|&(deadline_ms, _)| deadline_ms)
    }
}

#[derive(Debug)]
enum Op {
    Insert(u32, u64),
    Remove(u32),
    Poll(u64, usize),
}

fn random_start_ms(rng: &mut Rng) -> u64 {
    let window_end_ms = (START_MS / WHEEL_RANGE_MS + 1) * WHEEL_RANGE_MS;
    match rng.below(4) {
        0 => 0,
        1 => START_MS,
        2 => window_end_ms - rng.below(10_000),
        _ => rng.below(1 << 44),
    }
}

fn random_deadline_ms(rng: &mut Rng, now_ms: u64) -> u64 {
    match rng.percent() {
        0..10 => now_ms.saturating_sub(rng.below(10_000)),
        10..15 => now_ms,
        15..45 => now_ms.saturating_add(rng.below(100)),
        45..60 => {
            let boundary_ms = rng.level_width_ms();
            (now_ms.saturating_add(boundary_ms) - 1).saturating_add(rng.below(3))
        }
        60..65 => {
            let width_ms = rng.level_width_ms();
            let aligned_ms = now_ms.div_ceil(width_ms).saturating_mul(width_ms);
            aligned_ms.saturating_sub(1).saturating_add(rng.below(3))
        }
        65..88 => {
            let width_ms = rng.level_width_ms();
            now_ms.saturating_add(rng.below(width_ms.saturating_mul(SLOTS_PER_LEVEL as u64)))
        }
        88..98 => now_ms.saturating_add(rng.below(4) * 64),
        _ => u64::MAX - rng.below(3),
    }
}

fn random_poll_ms(rng: &mut Rng, now_ms: u64) -> u64 {
    match rng.percent() {
        0..10 => now_ms.saturating_sub(rng.below(5_000)),
        10..20 => now_ms,
        20..55 => now_ms.saturating_add(rng.below(70)),
        55..80 => {
            let width_ms = rng.level_width_ms();
            now_ms.saturating_add(rng.below(width_ms))
        }
        80..90 => {
            let width_ms = rng.level_width_ms();
            let aligned_ms = now_ms.div_ceil(width_ms).saturating_mul(width_ms);
            aligned_ms.saturating_sub(1).saturating_add(rng.below(3))
        }
        90..99 => now_ms.saturating_add(rng.below(3 * WHEEL_RANGE_MS)),
        _ => u64::MAX - rng.below(3),
    }
}

fn random_op(rng: &mut Rng, model: &Model, key_space: u64) -> Op {
    let key = rng.below(key_space) as u32;
    match rng.percent() {
        0..45 => Op::Insert(key, random_deadline_ms(rng, model.now_ms)),
        45..60 => Op::Remove(key),
        _ => {
            let max = if rng.below(3) == 0 {
                usize::MAX
            } else {
                rng.below(6) as usize
            };
            Op::Poll(random_poll_ms(rng, model.now_ms), max)
        }
    }
}

fn run(seed: u64) {
    let mut rng = Rng(SplitMix64(seed));
    let key_space = [4, 64, 1_024][rng.below(3) as usize];
    let start_ms = random_start_ms(&mut rng);
    let mut wheel = Wheel::new(start_ms);
    let mut model = Model {
        now_ms: start_ms,
        ..Model::default()
    };
    for step in 0..STEPS_PER_SEED {
        let op = random_op(&mut rng, &model, key_space);
        let context = format!("seed {seed}, step {step}, {op:?}");
        match op {
            Op::Insert(key, deadline_ms) => assert_eq!(
                wheel.insert(key, deadline_ms),
                model.insert(key, deadline_ms),
                "{context}"
            ),
            Op::Remove(key) => {
                assert_eq!(wheel.remove(&key), model.remove(&key), "{context}")
            }
            Op::Poll(now_ms, max) => {
                assert_eq!(
                    wheel.poll(now_ms, max),
                    model.poll(now_ms, max),
                    "{context}"
                )
            }
        }
        assert_eq!(wheel.next_deadline(), model.next_deadline(), "{context}");
        assert_eq!(wheel.len(), model.entries.len(), "{context}");
        assert_eq!(wheel.now(), model.now_ms, "{context}");
    }
}

fn env_u64(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value} is not a number")),
    )
}

#[test]
fn random_operations_match_a_sorted_set_model() {
    let seeds = match env_u64("WHEEL_MODEL_SEED") {
        Some(seed) => seed..seed + 1,
        None => 0..env_u64("WHEEL_MODEL_SEEDS").unwrap_or(SEEDS_DEFAULT),
    };
    for seed in seeds {
        if let Err(panic) = panic::catch_unwind(AssertUnwindSafe(|| run(seed))) {
            eprintln!("model test failed; replay with WHEEL_MODEL_SEED={seed}");
            panic::resume_unwind(panic);
        }
    }
}
