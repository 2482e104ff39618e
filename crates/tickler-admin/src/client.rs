//! A client for the admin socket, used by the CLI and the tests.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;
use tokio::net::unix::{OwnedReadHalf, OwnedWriteHalf};

use crate::Error;
use crate::protocol::{Call, Envelope, PROTOCOL_VERSION, Reply};

pub struct Client {
    path: PathBuf,
    reader: BufReader<OwnedReadHalf>,
    writer: OwnedWriteHalf,
    next_id: u64,
}

impl Client {
    pub async fn connect(path: &Path) -> Result<Client, Error> {
        let stream = UnixStream::connect(path)
            .await
            .map_err(|source| Error::Connect {
                path: path.to_owned(),
                source,
            })?;
        let (read, writer) = stream.into_split();
        Ok(Client {
            path: path.to_owned(),
            reader: BufReader::new(read),
            writer,
            next_id: 1,
        })
    }

    /// Sends a request and waits for its reply (error replies are `Ok` with `ok: false`).
    pub async fn call(&mut self, call: impl Into<Call>) -> Result<Reply, Error> {
        let envelope = Envelope {
            v: PROTOCOL_VERSION,
            id: Value::from(self.next_id),
            call: call.into(),
        };
        self.next_id += 1;
        let mut line = serde_json::to_vec(&envelope).expect("requests always encode");
        line.push(b'\n');
        self.send_raw(&line).await
    }

    /// Reads the next reply line (the replies after the first one of a `watch`).
    pub async fn next_reply(&mut self) -> Result<Reply, Error> {
        let mut reply = String::new();
        let read = self
            .reader
            .read_line(&mut reply)
            .await
            .map_err(|source| Error::Io {
                what: "cannot read from the daemon at",
                path: self.path.clone(),
                source,
            })?;
        if read == 0 {
            return Err(Error::NoReply);
        }
        serde_json::from_str(&reply).map_err(|err| Error::BadReply(err.to_string()))
    }

    /// Sends raw bytes (tests use it for malformed requests) and reads one reply line.
    pub async fn send_raw(&mut self, bytes: &[u8]) -> Result<Reply, Error> {
        let io = |source| Error::Io {
            what: "cannot talk to the daemon at",
            path: self.path.clone(),
            source,
        };
        // The daemon may reply and close before a long request is fully written (it refuses an
        // oversized one early): read its reply even when the write fails.
        let written = self.writer.write_all(bytes).await;
        let mut reply = String::new();
        let read = self.reader.read_line(&mut reply).await;
        match (read, written) {
            (Ok(read), _) if read > 0 => {}
            (_, Err(err)) => return Err(io(err)),
            (Ok(_), Ok(())) => return Err(Error::NoReply),
            (Err(source), Ok(())) => {
                return Err(Error::Io {
                    what: "cannot read from the daemon at",
                    path: self.path.clone(),
                    source,
                });
            }
        }
        serde_json::from_str(&reply).map_err(|err| Error::BadReply(err.to_string()))
    }
}

/// How many replies `not_owner` a routed call follows before it gives the last one back.
pub const NOT_OWNER_FOLLOWS_MAX: usize = 8;
/// The pause before asking again when no node serves the shard (a takeover under way).
const TAKEOVER_PAUSE: std::time::Duration = std::time::Duration::from_millis(500);

/// Sends `call` to the daemon at `path` and, in cluster mode, follows a `not_owner` reply to
/// the socket it names (or asks again after a pause while no node serves the shard), a few
/// times at most. Commands are safe to resend: a node that is not the owner ran nothing.
pub async fn call_routed(path: &Path, call: Call) -> Result<Reply, Error> {
    let mut path = path.to_owned();
    let mut reply = Client::connect(&path).await?.call(call.clone()).await?;
    for _ in 0..NOT_OWNER_FOLLOWS_MAX {
        let Some(owner) = reply
            .error
            .as_ref()
            .filter(|error| error.code == "not_owner")
            .and_then(|error| error.owner.as_ref())
        else {
            break;
        };
        match &owner.socket {
            Some(socket) => path = PathBuf::from(socket),
            None => tokio::time::sleep(TAKEOVER_PAUSE).await,
        }
        reply = Client::connect(&path).await?.call(call.clone()).await?;
    }
    Ok(reply)
}
