//! The delivery retry schedule: exponential backoff with jitter, bounded by attempts.
//!
//! Jitter is drawn from the occurrence's idempotency key and the attempt number, so the schedule
//! is random across occurrences (no synchronised retry storms) yet identical on replay.

use serde::{Deserialize, Serialize};

use crate::seed::Draw;
use crate::{IdempotencyKey, Span};

/// How deliveries are retried (`[engine.delivery]`; its schema documents the configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(deny_unknown_fields, default)]
pub struct DeliveryPolicy {
    /// Attempts before an occurrence becomes unsent "system error", the first included.
    pub max_attempts: u32,
    /// The delay after the first failure; doubled after each further one.
    #[schemars(with = "String")]
    pub backoff_initial: Span,
    /// The longest delay between two attempts.
    #[schemars(with = "String")]
    pub backoff_max: Span,
    /// 0 = none; 0.5 = each delay is drawn from [0.75, 1.25) of its nominal value.
    pub jitter: f64,
    /// How long an attempt may take before its outcome counts as unknown and it is retried.
    #[schemars(with = "String")]
    pub lease: Span,
}

impl Default for DeliveryPolicy {
    fn default() -> Self {
        DeliveryPolicy {
            max_attempts: 5,
            backoff_initial: Span::seconds(1),
            backoff_max: Span::minutes(5),
            jitter: 0.5,
            lease: Span::seconds(60),
        }
    }
}

impl DeliveryPolicy {
    /// The delay before attempt `failed_attempt + 1`.
    pub fn backoff(&self, key: &IdempotencyKey, failed_attempt: u32) -> Span {
        let doublings = failed_attempt.saturating_sub(1).min(32);
        let nominal = self
            .backoff_initial
            .as_millis()
            .saturating_mul(1i64 << doublings)
            .min(self.backoff_max.as_millis())
            .max(0);
        let jitter = self.jitter.clamp(0.0, 1.0);
        let attempt_text = failed_attempt.to_string();
        let fraction = Draw::new(0, &[key.as_str().as_bytes(), attempt_text.as_bytes()]).fraction();
        let factor = 1.0 - jitter / 2.0 + jitter * fraction;
        Span::from_millis((nominal as f64 * factor).round() as i64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{EntityId, OccurrenceId};

    fn key(n: u32) -> IdempotencyKey {
        OccurrenceId::parse(&format!("late#{n}"))
            .unwrap()
            .idempotency_key(&EntityId::parse("due/x").unwrap())
    }

    #[test]
    fn backoff_doubles_within_the_jitter_band_and_caps() {
        let policy = DeliveryPolicy::default();
        for attempt in 1..=12u32 {
            let nominal = (1000i64 << (attempt - 1)).min(300_000);
            let delay = policy.backoff(&key(0), attempt).as_millis();
            assert!(
                delay >= nominal * 3 / 4 && delay <= nominal * 5 / 4,
                "attempt {attempt}: {delay} ms vs nominal {nominal} ms"
            );
        }
    }

    #[test]
    fn jitter_differs_between_occurrences_but_not_between_replays() {
        let policy = DeliveryPolicy::default();
        assert_eq!(policy.backoff(&key(1), 3), policy.backoff(&key(1), 3));
        let delays: std::collections::BTreeSet<_> =
            (0..20).map(|n| policy.backoff(&key(n), 3)).collect();
        assert!(delays.len() > 10, "jitter spreads retries: {delays:?}");
    }

    #[test]
    fn without_jitter_the_schedule_is_exact() {
        let policy = DeliveryPolicy {
            jitter: 0.0,
            ..DeliveryPolicy::default()
        };
        let delays: Vec<i64> = (1..=4)
            .map(|a| policy.backoff(&key(0), a).as_millis())
            .collect();
        assert_eq!(delays, [1_000, 2_000, 4_000, 8_000]);
    }
}
