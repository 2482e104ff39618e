//! Pausing delivery: globally, per channel or per policy. While a scope is paused, wakes of the
//! occurrences in it are parked by the timer (nothing is processed, nothing dropped); resuming
//! puts them back, and they are processed then, in due order. An occurrence whose staleness
//! cutoff or grace passed during the pause ends as unsent "missed", with its reason, rather than
//! being sent wrongly late.
//!
//! The set of pauses is kept in the store's meta, so a restarted daemon stays paused.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

/// Where pauses are kept in the store's meta.
pub const PAUSES_META: &str = "pauses";

#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pauses {
    pub all: bool,
    pub channels: BTreeSet<String>,
    pub policies: BTreeSet<String>,
}

/// What `pause` and `resume` act on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PauseScope {
    All,
    Channel(String),
    Policy(String),
}

impl fmt::Display for PauseScope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PauseScope::All => f.write_str("all delivery"),
            PauseScope::Channel(name) => write!(f, "channel {name}"),
            PauseScope::Policy(name) => write!(f, "policy {name}"),
        }
    }
}

impl Pauses {
    /// Whether an occurrence of `policy` delivered through `channel` must wait.
    pub fn holds(&self, policy: &str, channel: &str) -> bool {
        self.all || self.channels.contains(channel) || self.policies.contains(policy)
    }

    /// Applies a pause (`paused`) or a resume; returns whether anything changed.
    pub fn set(&mut self, scope: &PauseScope, paused: bool) -> bool {
        match scope {
            PauseScope::All => std::mem::replace(&mut self.all, paused) != paused,
            PauseScope::Channel(name) if paused => self.channels.insert(name.clone()),
            PauseScope::Channel(name) => self.channels.remove(name),
            PauseScope::Policy(name) if paused => self.policies.insert(name.clone()),
            PauseScope::Policy(name) => self.policies.remove(name),
        }
    }

    pub fn is_empty(&self) -> bool {
        !self.all && self.channels.is_empty() && self.policies.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pause_holds_its_scope_only_and_a_resume_lifts_it() {
        let mut pauses = Pauses::default();
        assert!(pauses.set(&PauseScope::Channel("smtp".into()), true));
        assert!(
            !pauses.set(&PauseScope::Channel("smtp".into()), true),
            "already paused"
        );
        assert!(pauses.holds("due-date", "smtp"));
        assert!(!pauses.holds("due-date", "file"));
        pauses.set(&PauseScope::Policy("contact-cadence".into()), true);
        assert!(pauses.holds("contact-cadence", "rapidpro"));
        pauses.set(&PauseScope::All, true);
        assert!(pauses.holds("anything", "anywhere"));
        pauses.set(&PauseScope::All, false);
        pauses.set(&PauseScope::Channel("smtp".into()), false);
        pauses.set(&PauseScope::Policy("contact-cadence".into()), false);
        assert!(pauses.is_empty());
    }
}
