//! tickler: a durable reminder engine.
//!
//! Embed it: build an [`Engine`] from a store, a catalog of policies and templates, a clock and
//! channels (or from a `tickler.toml` with [`config::Config`]), then send it [`Command`]s and
//! receive deliveries through your [`Channel`]s and past events through
//! [`Engine::subscribe`]. Run it as a daemon: `tickler serve`.
//!
//! This crate is the API boundary for embedders: it re-exports what they need from the
//! workspace's internal crates, which are not published on their own.

pub mod builders;
pub mod catalog_files;
pub mod cluster_file;
pub mod config;
pub mod config_reference;
pub mod dashboard_tokens;
pub mod data_dir;
pub mod embedded;
pub mod peer_groups;

pub use builders::{Builders, DueDate, NewEntity};
pub use catalog_files::{load_catalog, load_templates};
pub use embedded::builtin_catalog;

/// For implementing [`Channel`] without depending on `async-trait` yourself.
pub use async_trait::async_trait;

pub use tickler_core::{
    ActiveReminder, AttrValue, Bound, Cause, Command, CreateEntity, DeliveryPolicy, DeliveryResult,
    Entity, EntityId, Event, IdempotencyKey, OccurrenceId, Outcome, PastEvent, Phase, Policy,
    Rejection, Span, Timestamp, UnsentReason, Zone, fold, policy,
};
pub use tickler_engine::private_fs;
pub use tickler_engine::{
    Applied, CallbackChannel, Catalog, Channel, Clock, DeliveryError, Engine, EngineBuilder,
    EngineOptions, EngineStatus, Error, FileChannel, JoinGroup, LEFT_GROUP, LogChannel,
    ManualClock, Message, Payload, SystemClock, Templates, audit, codec, replay,
};
pub use tickler_engine::{Backfill, Extension, IndexScan, PAGE_LEN, Upsert};
pub use tickler_engine::{
    DigestChannel, DigestKey, DueEntry, ExplainLine, Explanation, ExportedEvent, FiringLag,
    ListFilter, Notice, OccurrenceStory, PauseScope, Pauses, SmtpTls, digest_entity,
};
#[cfg(feature = "smtp")]
pub use tickler_engine::{SmtpChannel, SmtpConfig, message_id};
#[cfg(feature = "webhook")]
pub use tickler_engine::{WebhookChannel, WebhookConfig};
/// Course evaluations, a policy family: `use tickler::Evaluations` to drive them.
pub use tickler_evaluation as evaluation;
pub use tickler_evaluation::{Evaluations, Response};
/// Learner schedules, a policy family: `use tickler::LearnerSchedules` to drive them.
pub use tickler_learning as learner;
pub use tickler_learning::{
    CourseChange, CourseSettings, Enrolled, Highlight, LearnerSchedules, Preview, PreviewCount,
    PreviewMessage, PreviewRequest, SiteSettings,
};
pub use tickler_store::{MemoryStore, SledStore, Store};

/// The storage boundary, for embedders who bring their own `Store`.
pub use tickler_store as store;

/// The README's Rust blocks, compiled and run as doc-tests: the embedding example there is a
/// program that works as written.
#[cfg(doctest)]
#[doc = include_str!("../../../README.md")]
pub struct ReadmeDoctests;
