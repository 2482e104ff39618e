//! The admin socket server: one task per connection, newline-delimited JSON.
//!
//! The socket lives in a directory only the service user can enter (mode 0700) and is itself
//! mode 0600; a request longer than `REQUEST_LEN_MAX` is refused before it is buffered whole; an
//! idle connection is closed. One client's slow or bad request never blocks another's.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tickler_engine::{Engine, private_fs};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::Error;
use crate::dispatch::{After, dispatch};
use crate::family::Families;
use crate::protocol::{Call, REQUEST_LEN_MAX, Reply, Request, parse_request};
use crate::views::PastEventView;

/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Once a request has started, all of it must arrive within this (a slow client cannot hold a
/// connection task for ever, one byte at a time).
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);

/// Who may use the socket, beyond the file permissions.
#[derive(Clone, Debug, Default)]
pub struct Access {
    /// Peer user ids allowed (checked with SO_PEERCRED). The daemon's own uid and root are always
    /// allowed.
    pub uids: Vec<u32>,
    /// A group whose members (by the peer's primary group) may connect: the socket becomes
    /// 0660 and its directory 0750, owned by that group.
    pub group: Option<u32>,
}

impl Access {
    /// Whether a peer with this uid and primary gid may send requests.
    pub fn allows(&self, daemon_uid: u32, uid: u32, gid: u32) -> bool {
        uid == daemon_uid || uid == 0 || self.uids.contains(&uid) || self.group == Some(gid)
    }
}

/// Binds the socket at `path`, creating its private directory. A stale socket file left by a
/// killed daemon is replaced; a live one is an error.
pub async fn bind(path: &Path, access: &Access) -> Result<UnixListener, Error> {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let path = path.to_owned();
        move |source| Error::Io { what, path, source }
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let (dir_mode, socket_mode) = match access.group {
        Some(_) => (0o750, 0o660),
        None => (0o700, 0o600),
    };
    // Only a directory tickler creates gets its mode (and group); an existing one (the working
    // directory, /run) is left as it is, and must be this user's and writable by no one else,
    // or another user could put their own socket in its place.
    private_fs::private_dir(dir, dir_mode, access.group).map_err(|source| Error::Untrusted {
        what: "the admin socket's directory",
        source,
    })?;
    if let Ok(meta) = std::fs::symlink_metadata(path) {
        if meta.file_type().is_symlink() || meta.uid() != private_fs::effective_uid() {
            // Someone else's socket (or a link to one): never connect through it or remove it.
            let source = match meta.file_type().is_symlink() {
                true => private_fs::TrustError::Symlink {
                    path: path.to_owned(),
                },
                false => private_fs::TrustError::NotOwned {
                    path: path.to_owned(),
                    owner: meta.uid(),
                    me: private_fs::effective_uid(),
                },
            };
            return Err(Error::Untrusted {
                what: "the admin socket",
                source,
            });
        }
        if UnixStream::connect(path).await.is_ok() {
            return Err(Error::AlreadyServing {
                path: path.to_owned(),
            });
        }
        std::fs::remove_file(path).map_err(io("cannot remove the stale socket", path))?;
    }
    let listener = UnixListener::bind(path).map_err(io("cannot bind the admin socket", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(socket_mode))
        .map_err(io("cannot restrict the admin socket", path))?;
    if let Some(gid) = access.group {
        std::os::unix::fs::chown(path, None, Some(gid))
            .map_err(io("cannot give the admin socket to its group", path))?;
    }
    Ok(listener)
}

/// Serves until a `shutdown` request arrives or `stop` is notified. Returns the socket path's
/// removal result.
pub async fn serve(
    engine: Engine,
    families: Families,
    listener: UnixListener,
    path: PathBuf,
    access: Access,
    stop: Arc<Notify>,
) {
    // The daemon's own uid: the owner of the socket it just created.
    let daemon_uid = std::fs::metadata(&path)
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap_or(0);
    let access = Arc::new(access);
    let slots = Slots::new();
    let mut accept_errors = WarnEvery::new(ACCEPT_ERROR_WARN_EVERY);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let engine = engine.clone();
                    let families = families.clone();
                    let stop = stop.clone();
                    let access = access.clone();
                    let slot = slots.take(&stream, daemon_uid);
                    tokio::spawn(async move {
                        let Some(_slot) = slot else {
                            return refuse_busy(stream).await;
                        };
                        if let Err(err) = connection(engine, &families, stream, &access, daemon_uid, stop).await {
                            tracing::debug!(error = %err, "admin connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    // Out of descriptors, say: back off instead of spinning, and say so now and
                    // then rather than 20 times a second.
                    accept_errors.warn(|| tracing::warn!(error = %err, "cannot accept an admin connection"));
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.notified() => break,
        }
    }
    let _ = std::fs::remove_file(&path);
}

/// How many admin connections may be open at once; beyond it a new one gets one
/// `too_many_connections` reply and is closed, so a runaway script cannot take every
/// descriptor. A few more are kept for root and the daemon's own user, so an operator can
/// still get in to see what is going on.
pub const CONNECTIONS_MAX: usize = 256;
pub const CONNECTIONS_RESERVED_FOR_OPERATORS: usize = 8;
const ACCEPT_ERROR_WARN_EVERY: Duration = Duration::from_secs(10);

struct Slots {
    anyone: Arc<Semaphore>,
    operators: Arc<Semaphore>,
}

impl Slots {
    fn new() -> Slots {
        Slots {
            anyone: Arc::new(Semaphore::new(CONNECTIONS_MAX)),
            operators: Arc::new(Semaphore::new(CONNECTIONS_RESERVED_FOR_OPERATORS)),
        }
    }

    fn take(&self, stream: &UnixStream, daemon_uid: u32) -> Option<OwnedSemaphorePermit> {
        if let Ok(slot) = self.anyone.clone().try_acquire_owned() {
            return Some(slot);
        }
        let uid = stream.peer_cred().ok()?.uid();
        (uid == 0 || uid == daemon_uid)
            .then(|| self.operators.clone().try_acquire_owned().ok())
            .flatten()
    }
}

async fn refuse_busy(stream: UnixStream) {
    let (_, mut write) = stream.into_split();
    let reply = Reply::error(
        Value::Null,
        "too_many_connections",
        format!(
            "the daemon already has {CONNECTIONS_MAX} admin connections open (the most it keeps); \
             close idle ones and try again"
        ),
    );
    let _ = write_reply(&mut write, &reply).await;
}

/// A warning said at most once per period, with how many were held back.
pub(crate) struct WarnEvery {
    period: Duration,
    last: Option<std::time::Instant>,
}

impl WarnEvery {
    pub(crate) fn new(period: Duration) -> WarnEvery {
        WarnEvery { period, last: None }
    }

    pub(crate) fn warn(&mut self, say: impl FnOnce()) {
        let now = std::time::Instant::now();
        if self
            .last
            .is_none_or(|last| now.duration_since(last) >= self.period)
        {
            self.last = Some(now);
            say();
        }
    }
}

async fn connection(
    engine: Engine,
    families: &Families,
    stream: UnixStream,
    access: &Access,
    daemon_uid: u32,
    stop: Arc<Notify>,
) -> std::io::Result<()> {
    let peer = stream.peer_cred()?;
    let (read, mut write) = stream.into_split();
    if !access.allows(daemon_uid, peer.uid(), peer.gid()) {
        tracing::warn!(
            uid = peer.uid(),
            "refused an admin connection from a user not allowed"
        );
        let reply = Reply::error(
            Value::Null,
            "forbidden",
            format!(
                "uid {} may not use this socket (allowed: the daemon's user, root, and admin_uids / socket_group in the config)",
                peer.uid()
            ),
        );
        return write_reply(&mut write, &reply).await;
    }
    let mut reader = BufReader::new(read);
    loop {
        // Wait (up to the idle timeout) for a request to start, then give it a bounded time to
        // arrive whole.
        match tokio::time::timeout(IDLE_TIMEOUT, reader.fill_buf()).await {
            Err(_) => return Ok(()),
            Ok(Err(err)) => return Err(err),
            Ok(Ok([])) => return Ok(()),
            Ok(Ok(_)) => {}
        }
        let line = match tokio::time::timeout(
            REQUEST_READ_TIMEOUT,
            read_line(&mut reader, REQUEST_LEN_MAX),
        )
        .await
        {
            Err(_) => {
                let reply = Reply::error(
                    Value::Null,
                    "request_timeout",
                    format!(
                        "the request did not arrive whole within {} s; the connection is closed",
                        REQUEST_READ_TIMEOUT.as_secs()
                    ),
                );
                write_reply(&mut write, &reply).await?;
                return Ok(());
            }
            Ok(Err(err)) => return Err(err),
            Ok(Ok(Line::End)) => return Ok(()),
            Ok(Ok(Line::TooLong)) => {
                let reply = Reply::error(
                    Value::Null,
                    "request_too_large",
                    format!(
                        "the request is longer than {REQUEST_LEN_MAX} bytes; the connection is closed"
                    ),
                );
                write_reply(&mut write, &reply).await?;
                return Ok(());
            }
            Ok(Ok(Line::Complete(line))) => line,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let (reply, after) = match parse_request(&line, families) {
            Err(err) => (
                Reply::error(err.id, err.code, err.message),
                After::KeepServing,
            ),
            Ok((id, Call::Request(Request::Watch))) => {
                // The connection now carries past events until the client goes away.
                return watch(&engine, id, &mut write).await;
            }
            Ok((id, request)) => {
                let (result, after) = dispatch(&engine, families, request).await;
                let reply = match result {
                    Ok(result) => Reply::ok(id, result),
                    Err(err) => Reply::error(id, err.code(), err.to_string()),
                };
                (reply, after)
            }
        };
        write_reply(&mut write, &reply).await?;
        if after == After::Shutdown {
            stop.notify_one();
            return Ok(());
        }
    }
}

/// Streams every past event as it is recorded, one reply line each (all with the request's id),
/// after a first line saying the watch started. A client too slow to keep up is told how many it
/// missed (it can read them back with `history`).
async fn watch(
    engine: &Engine,
    id: Value,
    write: &mut tokio::net::unix::OwnedWriteHalf,
) -> std::io::Result<()> {
    let mut stream = engine.subscribe();
    write_reply(
        write,
        &Reply::ok(id.clone(), serde_json::json!({ "watching": "past events" })),
    )
    .await?;
    loop {
        let reply = match stream.recv().await {
            Ok(past) => Reply::ok(
                id.clone(),
                serde_json::json!({ "entity": past.entity, "past_event": PastEventView::new(&past) }),
            ),
            Err(tokio::sync::broadcast::error::RecvError::Lagged(missed)) => Reply::error(
                id.clone(),
                "watch_lagged",
                format!(
                    "{missed} past events were missed by this slow watcher; read them with history"
                ),
            ),
            Err(tokio::sync::broadcast::error::RecvError::Closed) => return Ok(()),
        };
        write_reply(write, &reply).await?;
    }
}

async fn write_reply(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    reply: &Reply,
) -> std::io::Result<()> {
    let mut bytes = serde_json::to_vec(reply).expect("replies always encode");
    bytes.push(b'\n');
    write.write_all(&bytes).await
}

enum Line {
    Complete(Vec<u8>),
    TooLong,
    End,
}

/// Reads up to and without the next newline, holding at most `len_max` bytes.
async fn read_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    len_max: usize,
) -> std::io::Result<Line> {
    let mut line = Vec::new();
    loop {
        let available = reader.fill_buf().await?;
        if available.is_empty() {
            // A last request without its newline still counts.
            return Ok(if line.is_empty() {
                Line::End
            } else {
                Line::Complete(line)
            });
        }
        let (chunk, found) = match available.iter().position(|b| *b == b'\n') {
            Some(at) => (&available[..at], Some(at)),
            None => (available, None),
        };
        if line.len() + chunk.len() >= len_max {
            return Ok(Line::TooLong);
        }
        line.extend_from_slice(chunk);
        let consumed = found.map_or(chunk.len(), |at| at + 1);
        reader.consume(consumed);
        if found.is_some() {
            return Ok(Line::Complete(line));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_line_over_the_limit_is_refused_before_it_is_buffered_whole() {
        let data = vec![b'x'; 10_000];
        let mut reader = BufReader::with_capacity(512, &data[..]);
        assert!(matches!(
            read_line(&mut reader, 1_000).await.unwrap(),
            Line::TooLong
        ));
        let mut reader = BufReader::new(&b"{\"a\":1}\n{\"b\":2}"[..]);
        assert!(
            matches!(read_line(&mut reader, 1_000).await.unwrap(), Line::Complete(l) if l == b"{\"a\":1}")
        );
        assert!(
            matches!(read_line(&mut reader, 1_000).await.unwrap(), Line::Complete(l) if l == b"{\"b\":2}")
        );
        assert!(matches!(
            read_line(&mut reader, 1_000).await.unwrap(),
            Line::End
        ));
    }
}
