//! Embedding tickler in a Rust service, with a channel of your own.
//!
//! Run it with `cargo run -p tickler-examples --example embed`. It opens an engine on a sled store
//! in a temporary directory, with the shipped due-date policy and templates, a manual clock and
//! an in-process channel; creates a reviewer's due date; lets 13 days pass in milliseconds; and
//! prints what was delivered and every past event as the engine records it.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Mutex};

use tickler::{
    Channel, Command, CreateEntity, DeliveryError, DigestChannel, DigestKey, Engine, EntityId,
    ManualClock, Message, SledStore, Span, Timestamp, Zone, async_trait,
};

/// Your delivery code: here it keeps messages in memory; a real one would call your mailer or
/// your chat platform, keyed by `message.idempotency_key` so that a retry is not a duplicate.
#[derive(Default)]
struct Inbox {
    received: Mutex<Vec<Message>>,
}

#[async_trait]
impl Channel for Inbox {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        let mut received = self.received.lock().unwrap();
        if received
            .iter()
            .any(|m| m.idempotency_key == message.idempotency_key)
        {
            return Ok("already delivered".into());
        }
        received.push(message.clone());
        Ok(format!("inbox #{}", received.len()))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let data = tempfile::tempdir()?;
    let inbox = Arc::new(Inbox::default());
    let clock = ManualClock::new(Timestamp::parse("2026-03-01T09:30:00Z")?);

    let engine = Engine::builder()
        .store(Arc::new(SledStore::open(&data.path().join("store"))?))
        .catalog(tickler::load_catalog(
            &config.join("policies"),
            &config.join("templates"),
        )?)
        .clock(Arc::new(clock.clone()))
        // The shipped policies deliver through the channels "file" (due dates), "rapidpro"
        // (contact cadences) and "email" (evaluations); route them all to our inbox. A
        // consolidated evaluation's notices go to "digest", which collects them into one daily
        // digest per student, sent by the evaluation-digest policy through "email".
        .channel("file", inbox.clone())
        .channel("rapidpro", inbox.clone())
        .channel("email", inbox.clone())
        .digest_channel(
            "digest",
            DigestChannel {
                policy: "evaluation-digest".into(),
                list: "items".into(),
                zone: None,
                key: DigestKey::Entity,
            },
        )
        // Learner schedules collect every message of a learner's slot into one email.
        .digest_channel(
            "learner-digest",
            DigestChannel {
                policy: "learner-digest".into(),
                list: "items".into(),
                zone: None,
                key: DigestKey::Occurrence,
            },
        )
        .open()
        .await?;

    // Past events arrive as they are recorded, sent or not.
    let mut past_events = engine.subscribe();
    let printer = tokio::spawn(async move {
        while let Ok(past) = past_events.recv().await {
            println!(
                "past event  {:<34} {}",
                past.idempotency_key.as_str(),
                past.outcome.label()
            );
        }
    });

    let review = EntityId::parse("due/review-42")?;
    engine
        .create(
            &review,
            CreateEntity {
                policy: "due-date".into(),
                workflow: Some("reviewer-report".into()),
                recipient: "reviewer@example.org".into(),
                zone: Zone::parse("Europe/Paris")?,
                anchors: BTreeMap::new(),
                attributes: BTreeMap::from([(
                    "title".into(),
                    tickler::AttrValue::Text("Review of manuscript 42".into()),
                )]),
            },
        )
        .await?;
    for reminder in engine.show(&review).await?.active.values() {
        println!(
            "planned     {:<34} {}",
            reminder.occurrence.to_string(),
            reminder.planned_at
        );
    }

    engine.advance(Span::days(13)).await?; // the pre-due reminder and the first chaser go out
    engine
        .execute(
            &review,
            Command::Complete {
                reason: "review-submitted".into(),
            },
        )
        .await?; // the second chaser is cancelled

    for message in inbox.received.lock().unwrap().iter() {
        println!(
            "delivered   {:<34} at {}: {}",
            message.idempotency_key, message.fired_at, message.subject
        );
    }
    engine.shutdown().await?;
    drop(engine);
    printer.await?;
    Ok(())
}
