//! Channels: where a rendered message goes. The engine calls [`Channel::deliver`] with the
//! occurrence's idempotency key after the attempt is durably recorded (decide, record, deliver,
//! acknowledge), so a channel may see the same key again after a crash, and should drop it.

mod file;
mod log;
mod settings;
#[cfg(feature = "smtp")]
mod smtp;
#[cfg(feature = "webhook")]
mod webhook;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use thiserror::Error;
use tickler_core::Timestamp;

pub use file::FileChannel;
pub use log::LogChannel;
pub use settings::{Payload, SmtpTls};
#[cfg(feature = "smtp")]
pub use smtp::{IDEMPOTENCY_HEADER, SmtpChannel, SmtpConfig, message_id};
#[cfg(feature = "webhook")]
pub use webhook::{WebhookChannel, WebhookConfig, is_public};

/// One delivery attempt: the fields of the file outbox line (PRODUCT.md), in that order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub idempotency_key: String,
    pub entity: String,
    pub rule: String,
    pub kind: String,
    pub recipient: String,
    pub channel: String,
    pub due_at: Timestamp,
    pub fired_at: Timestamp,
    pub attempt: u32,
    pub subject: String,
    pub body: String,
    /// The HTML alternative of `body` (email), when the template has an `.html.j2` part. Not in
    /// outbox lines when absent, so they keep PRODUCT.md's fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DeliveryError {
    /// Worth retrying: a timeout, a refused connection, a 5xx, an SMTP 4xx.
    #[error("{0}")]
    Transient(String),
    /// Retrying cannot help: a 4xx, a rejected address.
    #[error("{0}")]
    Permanent(String),
    /// Worth retrying, not before `after` (an HTTP 429 or 503 with `Retry-After`).
    #[error("{message} (retry after {after})")]
    RetryAfter {
        message: String,
        after: tickler_core::Span,
    },
}

#[async_trait]
pub trait Channel: Send + Sync + 'static {
    /// Delivers the message; returns a receipt (a line number, a message id) on success. Must
    /// treat a key it has already delivered as delivered.
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError>;
}

/// A channel made of a closure, for embedders who want deliveries in-process.
pub struct CallbackChannel<F>(pub F);

#[async_trait]
impl<F> Channel for CallbackChannel<F>
where
    F: Fn(&Message) -> Result<String, DeliveryError> + Send + Sync + 'static,
{
    async fn deliver(&self, message: &Message) -> Result<String, DeliveryError> {
        (self.0)(message)
    }
}
