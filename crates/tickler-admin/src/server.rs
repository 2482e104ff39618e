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
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore, mpsc, watch};

use crate::Error;
use crate::dispatch::After;
use crate::family::Families;
use crate::protocol::{Call, REQUEST_LEN_MAX, Reply, Request, parse_request};
use crate::role::{Access, Peer, Role};
use crate::route::Target;
use crate::views::PastEventView;

/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// Once a request has started, all of it must arrive within this (a slow client cannot hold a
/// connection task for ever, one byte at a time).
pub const REQUEST_READ_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A bound socket and who may use it.
pub struct Socket {
    pub listener: UnixListener,
    pub path: PathBuf,
    pub access: Access,
}

/// How long a stopping daemon waits for the requests in flight to be answered before it stops
/// the engine anyway (their outcome is then unknown to their clients, as after a crash).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// What every connection task shares.
#[derive(Clone)]
struct Shared {
    target: Target,
    families: Families,
    stop: Arc<Notify>,
    /// Becomes `true` when the daemon stops: connections finish the request they are serving
    /// and take no more.
    stopping: watch::Receiver<bool>,
    /// Held (never used) by every connection task, through its copy of `Shared`: once every
    /// copy is dropped, the receiver in `serve` sees the channel close.
    #[allow(dead_code)]
    open: mpsc::Sender<()>,
    slots: Arc<Slots>,
}

/// Serves the sockets until a `shutdown` request arrives or `stop` is notified, then stops
/// accepting, lets each connection finish the request it is serving (up to `DRAIN_TIMEOUT`)
/// and removes the socket files. The engine is the caller's to shut down afterwards.
pub async fn serve(engine: Engine, families: Families, sockets: Vec<Socket>, stop: Arc<Notify>) {
    serve_target(Target::Single(engine), families, sockets, stop).await;
}

/// [`serve`], for a single engine or a cluster node's shards.
pub async fn serve_target(
    target: Target,
    families: Families,
    sockets: Vec<Socket>,
    stop: Arc<Notify>,
) {
    let (stopping_tx, stopping) = watch::channel(false);
    let (open, mut all_closed) = mpsc::channel(1);
    let shared = Shared {
        target,
        families,
        stop: stop.clone(),
        stopping,
        open,
        slots: Arc::new(Slots::new()),
    };
    let mut paths = Vec::new();
    for socket in sockets {
        paths.push(socket.path.clone());
        tokio::spawn(accept_loop(socket, shared.clone()));
    }
    drop(shared);
    stop.notified().await;
    let _ = stopping_tx.send(true);
    if tokio::time::timeout(DRAIN_TIMEOUT, all_closed.recv())
        .await
        .is_err()
    {
        tracing::warn!(
            "admin requests still in flight after {} s; stopping without their replies",
            DRAIN_TIMEOUT.as_secs()
        );
    }
    for path in paths {
        let _ = std::fs::remove_file(&path);
    }
}

async fn accept_loop(socket: Socket, shared: Shared) {
    // The daemon's own uid: the owner of the socket it just created.
    let daemon_uid = std::fs::metadata(&socket.path)
        .map(|m| m.uid())
        .unwrap_or(0);
    let access = Arc::new(socket.access);
    let mut accept_errors = WarnEvery::new(ACCEPT_ERROR_WARN_EVERY);
    let mut stopping = shared.stopping.clone();
    loop {
        tokio::select! {
            accepted = socket.listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let shared = shared.clone();
                    let access = access.clone();
                    let slot = shared.slots.take(&stream, daemon_uid);
                    tokio::spawn(async move {
                        let Some(_slot) = slot else {
                            return refuse_busy(stream).await;
                        };
                        if let Err(err) = connection(&shared, stream, &access, daemon_uid).await {
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
            _ = stopped(&mut stopping) => return,
        }
    }
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
    shared: &Shared,
    stream: UnixStream,
    access: &Access,
    daemon_uid: u32,
) -> std::io::Result<()> {
    let peer = crate::role::peer(&stream, access.groups_of)?;
    let (read, mut write) = stream.into_split();
    let Some(role) = access.role(daemon_uid, &peer) else {
        return refuse_peer(&mut write, &peer).await;
    };
    let mut reader = BufReader::new(read);
    let mut stopping = shared.stopping.clone();
    loop {
        let line = match next_request(&mut reader, &mut stopping).await? {
            Next::Line(line) => line,
            Next::Close(None) => return Ok(()),
            Next::Close(Some(reply)) => return write_reply(&mut write, &reply).await,
        };
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        if let Some(refusal) = forbidden(role, &peer, &line, &shared.families) {
            write_reply(&mut write, &refusal).await?;
            continue;
        }
        let (reply, after) = match parse_request(&line, &shared.families) {
            Err(err) => (
                Reply::error(err.id, err.code, err.message),
                After::KeepServing,
            ),
            Ok((id, Call::Request(Request::Watch))) => match &shared.target {
                // The connection now carries past events until the client goes away.
                Target::Single(engine) => {
                    return stream_past_events(engine, id, &mut write, &mut stopping).await;
                }
                Target::Sharded(_) => (
                    Reply::error(
                        id,
                        "not_in_cluster_mode",
                        "watch streams one engine's past events; cluster mode does not merge \
                         the shards' streams yet (the next milestone)",
                    ),
                    After::KeepServing,
                ),
            },
            Ok((id, call)) => shared.target.run(&shared.families, id, call).await,
        };
        write_reply(&mut write, &reply).await?;
        if after == After::Shutdown {
            shared.stop.notify_one();
            return Ok(());
        }
    }
}

async fn refuse_peer(
    write: &mut tokio::net::unix::OwnedWriteHalf,
    peer: &Peer,
) -> std::io::Result<()> {
    tracing::warn!(
        uid = peer.uid,
        "refused an admin connection from a user not allowed"
    );
    let reply = Reply::error(
        Value::Null,
        "forbidden",
        format!(
            "uid {} may not use this socket (allowed: the daemon's user, root, and the users and \
             groups of operator_uids / operator_groups / app_uids / app_groups in the config)",
            peer.uid
        ),
    );
    write_reply(write, &reply).await
}

/// The refusal of a command the connection's role may not send, or `None`. Read from the
/// request's `cmd` before its arguments are parsed, so a forbidden command is refused as such
/// whatever its arguments. An operator may send anything, and is spared the extra parse.
fn forbidden(role: Role, peer: &Peer, line: &[u8], families: &Families) -> Option<Reply> {
    #[derive(serde::Deserialize)]
    struct Head {
        #[serde(default)]
        id: Value,
        cmd: Option<String>,
    }
    if role == Role::Operator {
        return None;
    }
    let head: Head = serde_json::from_slice(line).ok()?;
    let cmd = head.cmd?;
    if role.may(&cmd, families) || !is_command(&cmd, families) {
        // An unknown command is `unknown_command`, as for anyone.
        return None;
    }
    Some(Reply::error(
        head.id,
        "forbidden",
        format!(
            "{cmd} is an operator's command and this connection (uid {}) has the {} role; \
             an operator can run it, or give this user the operator role (operator_uids / \
             operator_groups in the daemon's config)",
            peer.uid,
            role.name()
        ),
    ))
}

fn is_command(cmd: &str, families: &Families) -> bool {
    crate::protocol::COMMANDS.contains(&cmd) || families.serves(cmd)
}

/// Resolves once the daemon is stopping.
async fn stopped(stopping: &mut watch::Receiver<bool>) {
    // The guard `wait_for` returns is dropped here, not held across the caller's awaits.
    let _ = stopping.wait_for(|stopping| *stopping).await.map(|_| ());
}

enum Next {
    Line(Vec<u8>),
    /// The connection ends, after this reply if there is one.
    Close(Option<Reply>),
}

/// Waits (up to the idle timeout) for a request to start, then gives it a bounded time to
/// arrive whole. A stopping daemon takes no new request.
async fn next_request<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    stopping: &mut watch::Receiver<bool>,
) -> std::io::Result<Next> {
    tokio::select! {
        started = tokio::time::timeout(IDLE_TIMEOUT, reader.fill_buf()) => match started {
            Err(_) | Ok(Ok([])) => return Ok(Next::Close(None)),
            Ok(Err(err)) => return Err(err),
            Ok(Ok(_)) => {}
        },
        _ = stopped(stopping) => return Ok(Next::Close(None)),
    }
    let read = tokio::time::timeout(REQUEST_READ_TIMEOUT, read_line(reader, REQUEST_LEN_MAX));
    Ok(match read.await {
        Err(_) => Next::Close(Some(Reply::error(
            Value::Null,
            "request_timeout",
            format!(
                "the request did not arrive whole within {} s; the connection is closed",
                REQUEST_READ_TIMEOUT.as_secs()
            ),
        ))),
        Ok(Err(err)) => return Err(err),
        Ok(Ok(Line::End)) => Next::Close(None),
        Ok(Ok(Line::TooLong)) => Next::Close(Some(Reply::error(
            Value::Null,
            "request_too_large",
            format!("the request is longer than {REQUEST_LEN_MAX} bytes; the connection is closed"),
        ))),
        Ok(Ok(Line::Complete(line))) => Next::Line(line),
    })
}

/// Streams every past event as it is recorded, one reply line each (all with the request's id),
/// after a first line saying the watch started. A client too slow to keep up is told how many it
/// missed (it can read them back with `history`). Ends when the daemon stops.
async fn stream_past_events(
    engine: &Engine,
    id: Value,
    write: &mut tokio::net::unix::OwnedWriteHalf,
    stopping: &mut watch::Receiver<bool>,
) -> std::io::Result<()> {
    let mut stream = engine.subscribe();
    write_reply(
        write,
        &Reply::ok(id.clone(), serde_json::json!({ "watching": "past events" })),
    )
    .await?;
    loop {
        let received = tokio::select! {
            received = stream.recv() => received,
            _ = stopped(stopping) => return Ok(()),
        };
        let reply = match received {
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
