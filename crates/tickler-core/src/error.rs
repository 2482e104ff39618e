use thiserror::Error;

/// A value that does not parse or validate. Every message names the offending value.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum Error {
    #[error(
        "invalid instant {value:?}: expected RFC 3339 between 1970 and 9999, e.g. 2026-03-05T10:00:00Z"
    )]
    InvalidInstant { value: String },
    #[error("invalid duration {value:?}: {reason}")]
    InvalidSpan { value: String, reason: String },
    #[error("invalid entity id {value:?}: {reason}")]
    InvalidEntityId { value: String, reason: String },
    #[error(
        "invalid {what} {value:?}: expected 1-64 of a-z, 0-9, '-', '_', starting with a letter"
    )]
    InvalidName { what: &'static str, value: String },
    #[error("invalid occurrence id {value:?}: expected rule#index, e.g. pre-due#0")]
    InvalidOccurrenceId { value: String },
    /// `hint` is "did you mean X?" when a zone is close to the value, else an example.
    #[error("unknown time zone {value:?}: {hint}")]
    InvalidZone { value: String, hint: String },
    #[error("invalid policy {policy:?}: {reason}")]
    InvalidPolicy { policy: String, reason: String },
}
