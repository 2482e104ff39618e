//! The tickler engine: the imperative shell around `tickler-core`.
//!
//! Entity actors (ractor) own their entity's log and decide through the pure core; a timer actor
//! wakes them at their invocation times from a durable timer index; deliveries go out through
//! [`Channel`]s. [`Engine`] is the facade an embedder holds and the daemon drives.

mod activity;
pub mod audit;
mod backfill;
mod catalog;
pub mod channel;
mod clock;
pub mod codec;
mod create;
mod delivery;
mod digest;
mod engine;
mod entity_actor;
mod error;
mod explain;
mod extension;
mod failures;
mod fire_batch;
mod metrics;
mod notice;
mod operations;
mod options;
mod paging;
mod pause;
pub mod private_fs;
mod rate_limit;
mod registry;
pub mod replay;
pub mod restore;
mod shared;
mod template_context;
pub mod templates;
mod timer;

pub use backfill::Backfill;
pub use catalog::Catalog;
pub use channel::{
    CallbackChannel, Channel, DeliveryError, FileChannel, LogChannel, Message, Payload, SmtpTls,
};
#[cfg(feature = "smtp")]
pub use channel::{SmtpChannel, SmtpConfig, message_id};
#[cfg(feature = "webhook")]
pub use channel::{WebhookChannel, WebhookConfig};
pub use clock::{Clock, ManualClock, SystemClock};
pub use digest::{DigestChannel, DigestKey, digest_entity};
pub use engine::{Engine, EngineBuilder, JoinGroup, LEFT_GROUP, stored_manual_clock};
pub use entity_actor::Applied;
pub use error::Error;
pub use explain::{ExplainLine, Explanation, OccurrenceStory};
pub use extension::{Extension, Upsert, text_attribute};
pub use failures::{Failure, Failures};
pub use metrics::{FiringLag, METRICS_CONTENT_TYPE};
pub use notice::{NOTICE_STREAM_CAPACITY, Notice};
pub use operations::{DUE_LEN_MAX, DueEntry, EngineStatus, ExportedEvent, ListFilter};
pub use options::EngineOptions;
pub use paging::{IndexScan, PAGE_LEN};
pub use pause::{PauseScope, Pauses};
pub use templates::{Rendered, Templates};
