//! Engine settings, with the defaults `config/tickler.toml` documents.

use serde::{Deserialize, Serialize};
use tickler_core::{DeliveryPolicy, Span};

use crate::error::Error;

/// The engine's settings (`[engine]`; its schema documents the configuration).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(default, deny_unknown_fields)]
pub struct EngineOptions {
    /// A snapshot is written with the command that brings this many events since the last one,
    /// bounding what an entity replays when its actor starts.
    pub snapshot_every: u64,
    /// An entity actor idle this long (real time) is stopped; it replays on its next message.
    #[schemars(with = "String")]
    pub passivate_after: Span,
    /// At most about this many entity actors live at once: beyond it, the least recently used
    /// idle ones are passivated early (within 50 ms), so a bulk import of any size runs
    /// in bounded memory. An actor with work under way is never stopped.
    pub actors_max: usize,
    /// At most this many wakes leave the timer, and at most this many messages enter external
    /// channels, in any one-second window (real time), spread out within it: after downtime, or
    /// when a herd falls due at once, the backlog drains at this rate instead of in one burst.
    pub fire_rate_max_per_s: u32,
    /// At most this many wakes handed to entities and not yet handled (and never more than
    /// `actors_max`: each wake holds its entity's actor until it is handled). Small enough that
    /// a catch-up delivers its first overdue reminder within about a tenth of a second, instead
    /// of first starting an actor for every wake.
    pub wake_in_flight_max: usize,
    /// Timers due within this span of now are kept in memory; later ones stay in the store's
    /// timer index until they come near.
    #[schemars(with = "String")]
    pub timer_horizon: Span,
    /// The channel of rules that name none.
    pub default_channel: String,
    /// Deliveries under way at once per channel.
    pub channel_in_flight_max: usize,
    /// How deliveries are retried.
    pub delivery: DeliveryPolicy,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            snapshot_every: 64,
            passivate_after: Span::minutes(5),
            actors_max: 2_000,
            fire_rate_max_per_s: 5_000,
            wake_in_flight_max: 1_000,
            timer_horizon: Span::minutes(10),
            default_channel: "file".to_owned(),
            channel_in_flight_max: 64,
            delivery: DeliveryPolicy::default(),
        }
    }
}

impl EngineOptions {
    /// Refuses a limit of zero, naming the option: no actor, wake or delivery could ever go, so
    /// an engine would start and silently never remind anyone.
    pub fn check(&self) -> Result<(), Error> {
        let limits = [
            ("actors_max", self.actors_max as u64),
            ("fire_rate_max_per_s", u64::from(self.fire_rate_max_per_s)),
            ("wake_in_flight_max", self.wake_in_flight_max as u64),
            ("channel_in_flight_max", self.channel_in_flight_max as u64),
        ];
        match limits.iter().find(|(_, value)| *value == 0) {
            Some((name, _)) => Err(Error::Config {
                what: format!("engine option {name}"),
                reason: "must be at least 1, not 0".into(),
            }),
            None => Ok(()),
        }
    }
}
