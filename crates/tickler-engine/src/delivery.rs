//! Delivery: render the message, hand it to its channel, report the result to the entity.
//!
//! Runs in its own task, outside the entity actor, so a slow channel holds up neither the
//! entity nor the timer. Each channel bounds its own concurrency.

use std::time::Duration;

use tickler_core::{DeliveryResult, Entity, OccurrenceId, Timestamp};

use crate::channel::{DeliveryError, Message};
use crate::shared::Shared;

/// A delivery ready to run: the channel to use and the rendered message, or why it cannot be
/// made (a permanent failure: retrying a template that does not render cannot help).
pub(crate) struct Job {
    channel: String,
    message: Result<Message, String>,
}

pub(crate) fn prepare(
    shared: &Shared,
    entity: &Entity,
    occurrence: &OccurrenceId,
    attempt: u32,
    now: Timestamp,
) -> Job {
    let reminder = &entity.active[occurrence];
    let rule = shared
        .catalog
        .policy(&entity.policy)
        .ok()
        .and_then(|policy| policy.rule(&occurrence.rule).cloned());
    let channel = rule
        .as_ref()
        .and_then(|rule| rule.channel.clone())
        .unwrap_or_else(|| shared.options.default_channel.clone());
    let message = match rule {
        None => Err(format!(
            "rule {} is not in policy {}",
            occurrence.rule, entity.policy
        )),
        Some(rule) => shared
            .catalog
            .templates()
            .render(&rule.template, entity, reminder, attempt)
            .map(|rendered| Message {
                idempotency_key: occurrence.idempotency_key(&entity.id).to_string(),
                entity: entity.id.to_string(),
                rule: occurrence.rule.to_string(),
                kind: reminder.kind.clone(),
                recipient: entity.recipient.clone(),
                channel: channel.clone(),
                due_at: reminder.planned_at,
                fired_at: now,
                attempt,
                subject: rendered.subject,
                body: rendered.body,
            }),
    };
    Job { channel, message }
}

pub(crate) async fn run(shared: &Shared, job: Job) -> DeliveryResult {
    let failed = |error: String, permanent| DeliveryResult::Failed {
        error,
        permanent,
        retry_after: None,
    };
    let message = match job.message {
        Ok(message) => message,
        Err(error) => return failed(error, true),
    };
    let Some(slot) = shared.channels.get(&job.channel) else {
        return failed(format!("unknown channel {:?}", job.channel), true);
    };
    let Ok(_permit) = slot.permits.acquire().await else {
        return failed("the engine is shutting down".into(), false);
    };
    // Give up on the attempt before its lease ends, so the result (a timeout) is recorded by
    // this process rather than inferred after a restart.
    let lease_ms = shared.options.delivery.lease.as_millis().max(1) as u64;
    let timeout = Duration::from_millis(lease_ms * 9 / 10);
    match tokio::time::timeout(timeout, slot.channel.deliver(&message)).await {
        Ok(Ok(receipt)) => DeliveryResult::Delivered {
            channel: job.channel,
            receipt,
        },
        Ok(Err(DeliveryError::Transient(error))) => failed(error, false),
        Ok(Err(DeliveryError::Permanent(error))) => failed(error, true),
        Ok(Err(DeliveryError::RetryAfter { message, after })) => DeliveryResult::Failed {
            error: message,
            permanent: false,
            retry_after: Some(after),
        },
        Err(_) => failed(
            format!("no answer from channel {} within {timeout:?}", job.channel),
            false,
        ),
    }
}
