//! Delivery: render the message, hand it to its channel, report the result to the entity.
//!
//! Runs in its own task, outside the entity actor, so a slow channel holds up neither the
//! entity nor the timer. Each channel bounds its own concurrency.
//!
//! An occurrence goes either to the entity's recipient (one message, keyed by the occurrence)
//! or, when its rule names an audience, to each address the core decided at fire time (one
//! message each, keyed `<occurrence key>/<address>` (see `IdempotencyKey::for_address`), so a retry re-sends only to those not yet
//! reached and a receiver can drop a repeat per address).

use std::sync::Arc;
use std::time::Duration;

use tickler_core::{DeliveryResult, Entity, OccurrenceId, RecipientResult, Timestamp, Zone};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::channel::{DeliveryError, Message};
use crate::digest;
use crate::shared::{Shared, Target};

/// A delivery ready to run: the channel to use and, per recipient, the rendered message or why
/// it cannot be made (a permanent failure: retrying a template that does not render cannot help).
pub(crate) struct Job {
    channel: String,
    /// The zone of the entity, for digests created from its messages.
    zone: Zone,
    fan_out: bool,
    messages: Vec<(String, Result<Message, String>)>,
}

/// What an attempt did: one result, or one per recipient of a fan-out.
pub(crate) enum Report {
    Single(DeliveryResult),
    FanOut {
        channel: String,
        results: Vec<RecipientResult>,
    },
}

/// Renders the attempt's messages. `recipients` is `Some` for a fan-out (the addresses the core
/// chose), `None` for a delivery to the entity's recipient.
pub(crate) fn prepare(
    shared: &Shared,
    entity: &Entity,
    occurrence: &OccurrenceId,
    attempt: u32,
    recipients: Option<&[String]>,
    now: Timestamp,
) -> Job {
    let reminder = &entity.active[occurrence];
    let rule = shared
        .catalog
        .policy(&entity.policy)
        .ok()
        .and_then(|policy| policy.rule(&occurrence.rule).cloned());
    let channel = shared.channel_of(entity, &occurrence.rule);
    let key = reminder.idempotency_key(&entity.id);
    let fan_out = recipients.is_some();
    let to: Vec<String> = match recipients {
        Some(addresses) => addresses.to_vec(),
        None => vec![entity.recipient.clone()],
    };
    let messages = to
        .into_iter()
        .map(|recipient| {
            let message = match &rule {
                None => Err(format!(
                    "rule {} is not in policy {}",
                    occurrence.rule, entity.policy
                )),
                Some(rule) => shared
                    .catalog
                    .templates()
                    .render(&rule.template, entity, reminder, attempt, &recipient)
                    .map(|rendered| Message {
                        idempotency_key: if fan_out {
                            key.for_address(&recipient)
                        } else {
                            key.to_string()
                        },
                        entity: entity.id.to_string(),
                        rule: occurrence.rule.to_string(),
                        kind: reminder.kind.clone(),
                        recipient: recipient.clone(),
                        channel: channel.clone(),
                        due_at: reminder.planned_at,
                        fired_at: now,
                        attempt,
                        subject: rendered.subject,
                        body: rendered.body,
                        html: rendered.html,
                    }),
            };
            (recipient, message)
        })
        .collect();
    Job {
        channel,
        zone: entity.zone,
        fan_out,
        messages,
    }
}

pub(crate) async fn run(shared: &Arc<Shared>, job: Job) -> Report {
    // Give up on the attempt before its lease ends, so the result (a timeout) is recorded by
    // this process rather than inferred after a restart.
    let lease_ms = shared.options.delivery.lease.as_millis().max(1) as u64;
    let budget = Duration::from_millis(lease_ms * 9 / 10);
    let deadline = Instant::now() + budget;
    if !job.fan_out {
        let (_, message) = job.messages.into_iter().next().expect("one message");
        return Report::Single(
            deliver_one(shared, &job.channel, job.zone, message, deadline).await,
        );
    }
    // Each message waits for a permit of its channel, so a large audience queues behind the
    // channel's bound rather than opening hundreds of connections.
    let mut tasks = JoinSet::new();
    for (index, (recipient, message)) in job.messages.into_iter().enumerate() {
        let shared = shared.clone();
        let channel = job.channel.clone();
        tasks.spawn(async move {
            let result = deliver_one(&shared, &channel, job.zone, message, deadline).await;
            (index, RecipientResult { recipient, result })
        });
    }
    let mut results = Vec::with_capacity(tasks.len());
    while let Some(joined) = tasks.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            // A panicking channel is a bug; the recipients it had stay unreported and are retried.
            Err(err) => tracing::error!(error = %err, "a delivery task failed"),
        }
    }
    results.sort_by_key(|(index, _)| *index);
    Report::FanOut {
        channel: job.channel,
        results: results.into_iter().map(|(_, result)| result).collect(),
    }
}

async fn deliver_one(
    shared: &Arc<Shared>,
    channel: &str,
    zone: Zone,
    message: Result<Message, String>,
    deadline: Instant,
) -> DeliveryResult {
    let failed = |error: String, permanent| DeliveryResult::Failed {
        error,
        permanent,
        retry_after: None,
    };
    let message = match message {
        Ok(message) => message,
        Err(error) => return failed(error, true),
    };
    let Some(slot) = shared.channels.get(channel) else {
        return failed(format!("unknown channel {channel:?}"), true);
    };
    // Timed from the channel's call, not from the wait for a permit or the outgoing rate: the
    // histogram is the channel's latency, and a herd held back by the rate limit is not.
    let mut called = None;
    let attempt = async {
        let Ok(_permit) = slot.permits.acquire().await else {
            return Err(DeliveryError::Transient(
                "the engine is shutting down".into(),
            ));
        };
        match &slot.target {
            Target::External(external) => {
                shared.outgoing.acquire().await;
                called = Some(Instant::now());
                external.deliver(&message).await
            }
            Target::Digest(target) => {
                called = Some(Instant::now());
                digest::collect(shared, target, &message, zone).await
            }
        }
    };
    let answer = tokio::time::timeout_at(deadline, attempt).await;
    if let Some(called) = called {
        let delivered = matches!(answer, Ok(Ok(_)));
        shared
            .metrics
            .delivered_in(channel, delivered, called.elapsed());
    }
    match answer {
        Ok(Ok(receipt)) => DeliveryResult::Delivered {
            channel: channel.to_owned(),
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
            format!("no answer from channel {channel} before the attempt's deadline"),
            false,
        ),
    }
}
