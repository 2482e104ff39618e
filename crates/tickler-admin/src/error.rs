use std::path::PathBuf;

use thiserror::Error;

#[derive(Debug, Error)]
pub enum Error {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error(
        "refusing to serve HTTP on {addr}: not a loopback address, so anyone who can reach it \
         reads the metrics; allow a non-loopback address explicitly to serve there"
    )]
    NonLoopbackHttp { addr: std::net::SocketAddr },
    #[error(
        "refusing to serve the dashboard on {addr}: not a loopback address; set \
         dashboard_allow_non_loopback = true to serve there, behind a proxy that terminates TLS \
         (the dashboard speaks plain HTTP and its session cookie would cross the network in clear)"
    )]
    NonLoopbackDashboard { addr: std::net::SocketAddr },
    #[error("another daemon is already serving on {path}")]
    AlreadyServing { path: PathBuf },
    #[error("refusing {what}: {source}")]
    Untrusted {
        what: &'static str,
        source: tickler_engine::private_fs::TrustError,
    },
    #[error("cannot connect to the daemon at {path}: {source} (is `tickler serve` running?)")]
    Connect {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the daemon closed the connection without replying")]
    NoReply,
    #[error("the daemon's reply is not valid: {0}")]
    BadReply(String),
}
