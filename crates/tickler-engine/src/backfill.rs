//! "Send for date D" (Open edX's backfill, for any policy): processes the occurrences due in a
//! past range that are still waiting, even while delivery is paused for their policy.

use serde::Serialize;
use tickler_core::{Command, EntityId, OccurrenceId, Timestamp};
use tickler_store::TimerEntry;

use crate::Error;
use crate::engine::Engine;
use crate::metrics::Origin;
use crate::paging::timer_pages;
use crate::shared::execute;

/// What a `backfill` woke.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize)]
pub struct Backfill {
    /// Occurrences due in the range that were still waiting, now processed.
    pub woken: Vec<(EntityId, OccurrenceId)>,
}

impl Engine {
    /// Processes the occurrences of `policy` due in [from, to) that are still waiting (delivery
    /// was paused for the policy, or the occurrences were held up), even while the pause lasts.
    /// What already has a past event is not in the timer index any more, so nothing is sent
    /// twice; late ones beyond the rule's grace end as missed.
    pub async fn backfill(
        &self,
        policy: &str,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Backfill, Error> {
        self.catalog().policy(policy)?;
        let now = self.now();
        if to > now || from >= to {
            return Err(Error::Arguments {
                what: "backfill".into(),
                reason: format!(
                    "the range [{from}, {to}) must be non-empty and end by now ({now})"
                ),
            });
        }
        let store = self.shared().store.clone();
        // Each page resumes strictly after the last (instant, entity, occurrence) read: however
        // many timers wait at one instant, every one is read once.
        let mut result = Backfill::default();
        'scan: for page in timer_pages(store.as_ref(), Some(from)) {
            for entry in page? {
                if entry.due >= to {
                    break 'scan;
                }
                if self.wake_for_backfill(policy, &entry).await? {
                    result.woken.push((entry.entity, entry.occurrence));
                }
            }
        }
        self.settle().await?;
        Ok(result)
    }

    /// Wakes the entry's occurrence if its entity is under `policy`; whether anything happened.
    async fn wake_for_backfill(&self, policy: &str, entry: &TimerEntry) -> Result<bool, Error> {
        let Ok(entity) = self.show(&entry.entity).await else {
            return Ok(false);
        };
        // An attempt under way reports its own result: a wake would say it never will.
        let delivering = entity
            .active
            .get(&entry.occurrence)
            .is_some_and(tickler_core::ActiveReminder::is_delivering);
        if entity.policy != policy || delivering {
            return Ok(false);
        }
        let wake = Command::Wake {
            occurrence: entry.occurrence.clone(),
        };
        match execute(self.shared(), &entry.entity, wake, Origin::Engine).await {
            Ok(applied) => Ok(!applied.events.is_empty()),
            Err(Error::Rejected(_)) => Ok(false),
            Err(err) => Err(err),
        }
    }
}
