//! Finding failures: the occurrences that ended in a system error and were not retried, with
//! what an operator needs to act on each (where it went, the last error, when, how often).

use serde::Serialize;
use tickler_core::{Entity, EntityId, OccurrenceId, Outcome, PastEvent, Timestamp, index};

use crate::engine::Engine;
use crate::paging::index_pages;
use crate::{Error, ListFilter};

/// One occurrence that ended in a system error and waits for an operator's `retry`.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub entity: EntityId,
    pub occurrence: OccurrenceId,
    pub policy: String,
    pub kind: String,
    pub channel: String,
    /// The last attempt's error, whole (tables shorten it).
    pub error: String,
    /// When it ended in the error.
    pub failed_at: Option<Timestamp>,
    pub attempts: u32,
    /// The errored index's key of this failure: the `after` of the next page.
    pub cursor: String,
}

/// An entity read for its failures, or why it could not be.
type Read = Result<(Entity, Vec<PastEvent>), String>;

/// A page of failures and the cursor to continue from.
#[derive(Clone, Debug, Serialize)]
pub struct Failures {
    pub failures: Vec<Failure>,
    pub next: Option<String>,
}

impl Engine {
    /// Errored occurrences in the index's order after `after`, at most `limit`, those of the
    /// filter's policy and channel only (the filter's kind and recipient are not used). An
    /// unknown policy or channel is an error listing the known ones.
    pub async fn failures(
        &self,
        filter: &ListFilter,
        channel: Option<&str>,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Failures, Error> {
        if let Some(policy) = &filter.policy {
            self.catalog().policy(policy)?;
        }
        if let Some(channel) = channel {
            self.check_channel(channel)?;
        }
        let mut failures = Vec::new();
        let mut last: Option<(EntityId, Read)> = None;
        let store = self.shared().store.as_ref();
        for page in index_pages(store, index::ERRORED, after.map(str::to_owned)) {
            for member in page? {
                let (entity, occurrence) = split_member(&member)?;
                if last.as_ref().is_none_or(|(id, _)| id != &entity) {
                    last = Some((entity.clone(), self.read_for_failures(&entity).await?));
                }
                let (_, read) = last.as_ref().expect("read just above");
                let Some(failure) = self.failure(&entity, read, occurrence, member) else {
                    continue;
                };
                let wanted = filter.policy.as_ref().is_none_or(|p| p == &failure.policy)
                    && channel.is_none_or(|c| c == failure.channel);
                if wanted {
                    failures.push(failure);
                    if failures.len() == limit {
                        let next = failures.last().map(|f| f.cursor.clone());
                        return Ok(Failures { failures, next });
                    }
                }
            }
        }
        Ok(Failures {
            failures,
            next: None,
        })
    }

    /// The entity and its past events; a quarantined entity's reason instead (its failures
    /// are still listed, with that reason as their error).
    async fn read_for_failures(&self, entity: &EntityId) -> Result<Read, Error> {
        let state = match self.show(entity).await {
            Ok(state) => state,
            Err(Error::Quarantined { reason, .. }) => return Ok(Err(reason)),
            Err(err) => return Err(err),
        };
        match self.history(entity).await {
            Ok(past) => Ok(Ok((state, past))),
            Err(Error::Quarantined { reason, .. }) => Ok(Err(reason)),
            Err(err) => Err(err),
        }
    }

    fn failure(
        &self,
        id: &EntityId,
        read: &Read,
        occurrence: OccurrenceId,
        cursor: String,
    ) -> Option<Failure> {
        let (entity, past) = match read {
            Ok(read) => read,
            Err(reason) => {
                return Some(Failure {
                    entity: id.clone(),
                    occurrence,
                    policy: String::new(),
                    kind: String::new(),
                    channel: String::new(),
                    error: format!("the entity is quarantined: {reason}"),
                    failed_at: None,
                    attempts: 0,
                    cursor,
                });
            }
        };
        // The index is updated with the entity's state: a member the state no longer has
        // was retried between the index page and the read.
        let errored = entity.errored.get(&occurrence)?;
        let ended = past
            .iter()
            .rev()
            .find(|event| event.occurrence == occurrence);
        let (error, attempts) = match ended.map(|event| &event.outcome) {
            Some(Outcome::Unsent {
                detail, attempts, ..
            }) => (detail.clone(), *attempts),
            _ => (String::new(), 0),
        };
        Some(Failure {
            entity: entity.id.clone(),
            policy: entity.policy.clone(),
            kind: errored.kind.clone(),
            channel: self.shared().channel_of(entity, &occurrence.rule),
            occurrence,
            error,
            failed_at: ended.map(|event| event.closed_at),
            attempts,
            cursor,
        })
    }

    /// Refuses a channel the engine does not have, listing those it has.
    pub(crate) fn check_channel(&self, name: &str) -> Result<(), Error> {
        let channels = &self.shared().channels;
        if channels.contains_key(name) {
            return Ok(());
        }
        Err(Error::UnknownChannel {
            value: name.to_owned(),
            known: channels.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }
}

/// `entity#rule#index`: the entity key may itself hold '#', the rule and index not.
pub(crate) fn split_member(member: &str) -> Result<(EntityId, OccurrenceId), Error> {
    let mut parts = member.rsplitn(3, '#');
    let (index, rule, entity) = (parts.next(), parts.next(), parts.next());
    let (Some(index), Some(rule), Some(entity)) = (index, rule, entity) else {
        return Err(Error::Internal(format!(
            "malformed errored index member {member:?}"
        )));
    };
    let occurrence = format!("{rule}#{index}").parse().map_err(|err| {
        Error::Internal(format!("malformed errored index member {member:?}: {err}"))
    })?;
    Ok((EntityId::parse(entity)?, occurrence))
}
