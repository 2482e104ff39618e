//! The admin protocol (specified in `proto/admin-protocol.md`), its socket server and a client,
//! and the HTTP endpoint for metrics and health probes.
//!
//! API boundary: the protocol's request and reply shapes are a versioned contract with every
//! script and operator that drives the daemon.

pub mod client;
pub mod dashboard;
pub mod dispatch;
mod error;
pub mod family;
pub mod http;
pub mod protocol;
pub mod role;
pub mod route;
pub mod schema;
pub mod server;
pub mod terminal;
pub mod time_arg;
pub mod views;

pub use client::Client;
pub use error::Error;
pub use family::{CommandFamily, DryRun, Families, parse_args};
pub use protocol::{
    Call, FamilyCall, OwnerBody, PROTOCOL_VERSION, REQUEST_LEN_MAX, Reply, Request, parse_request,
};
pub use role::{Access, Role};
pub use route::{Shards, Target};
