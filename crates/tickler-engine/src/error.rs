use thiserror::Error;
use tickler_core::{EntityId, Rejection};

/// Everything the engine can refuse or fail with. Messages name the offending value.
#[derive(Debug, Error)]
pub enum Error {
    /// The command was refused by the domain; nothing was written.
    #[error(transparent)]
    Rejected(#[from] Rejection),
    /// A value that does not parse (an id, an instant).
    #[error(transparent)]
    Invalid(#[from] tickler_core::Error),
    #[error("unknown policy {value:?} (known: {known})")]
    UnknownPolicy { value: String, known: String },
    #[error("unknown group {value:?} (groups with a policy: {known})")]
    UnknownGroup { value: String, known: String },
    #[error("unknown channel {value:?} (known: {known})")]
    UnknownChannel { value: String, known: String },
    /// The entity's log failed a check; it takes no commands until repaired. Others run on.
    #[error("entity {entity} is quarantined: {reason}")]
    Quarantined { entity: EntityId, reason: String },
    #[error("storage error: {0}")]
    Store(#[from] tickler_store::Error),
    #[error("invalid configuration: {what}: {reason}")]
    Config { what: String, reason: String },
    #[error("the engine runs on the system clock; only a manual clock can be moved")]
    ClockNotManual,
    /// A policy family's own refusal (an unknown directory entry, a value not on a list), with
    /// the admin protocol's code for it. The message names the value and what to do.
    #[error("{message}")]
    Family { code: &'static str, message: String },
    /// Arguments that contradict each other or are missing.
    #[error("invalid arguments for {what}: {reason}")]
    Arguments { what: String, reason: String },
    #[error("the engine is shutting down")]
    ShuttingDown,
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The stable error code of the admin protocol (`proto/admin-protocol.md`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Rejected(rejection) => rejection.code(),
            Error::Invalid(_) | Error::Arguments { .. } => "invalid_arguments",
            Error::Family { code, .. } => code,
            Error::UnknownPolicy { .. } => "unknown_policy",
            Error::UnknownChannel { .. } => "unknown_channel",
            Error::UnknownGroup { .. } => "unknown_group",
            Error::Quarantined { .. } => "quarantined",
            Error::Store(_) => "storage_error",
            Error::Config { .. } => "invalid_config",
            Error::ClockNotManual => "clock_not_manual",
            Error::ShuttingDown => "shutting_down",
            Error::Internal(_) => "internal_error",
        }
    }
}
