//! Settings of the network channels that a configuration names whether or not this build has
//! the channel (the `webhook` and `smtp` features): a config file parses the same either way,
//! and a build without the channel says so when the channel is opened.

use serde::Deserialize;

/// What the request body is.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Payload {
    /// The whole message as JSON (the outbox line's fields).
    #[default]
    Message,
    /// The message's rendered body, which must be JSON (a template written for the API).
    Body,
}

/// How the connection to the relay is protected.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Deserialize, serde::Serialize, schemars::JsonSchema,
)]
#[serde(rename_all = "kebab-case")]
pub enum SmtpTls {
    /// Plaintext: only for a relay on loopback or a trusted local network (and tests).
    None,
    /// Plaintext, upgraded with STARTTLS before anything else is sent; refused if the relay
    /// does not offer it (no silent downgrade). Usually port 587.
    Starttls,
    /// TLS from the first byte (SMTPS). Usually port 465.
    Tls,
}
