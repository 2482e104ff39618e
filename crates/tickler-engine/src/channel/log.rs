use async_trait::async_trait;

use super::{Channel, DeliveryError, Message};

/// Writes each delivery to the `tickler::outbox` tracing target. Recipients' addresses are not
/// logged: logs travel further than outboxes.
#[derive(Debug, Default)]
pub struct LogChannel;

#[async_trait]
impl Channel for LogChannel {
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        tracing::info!(
            target: "tickler::outbox",
            idempotency_key = %message.idempotency_key,
            entity = %message.entity,
            kind = %message.kind,
            attempt = message.attempt,
            subject = %message.subject,
            "delivered"
        );
        Ok("logged".to_owned())
    }
}
