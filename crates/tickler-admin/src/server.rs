//! The admin socket server: one task per connection, newline-delimited JSON.
//!
//! The socket lives in a directory only the service user can enter (mode 0700) and is itself
//! mode 0600; a request longer than `REQUEST_LEN_MAX` is refused before it is buffered whole; an
//! idle connection is closed. One client's slow or bad request never blocks another's.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tickler_engine::Engine;
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::Notify;

use crate::Error;
use crate::dispatch::{After, dispatch};
use crate::protocol::{REQUEST_LEN_MAX, Reply, parse_request};

/// A connection that sends nothing for this long is closed.
pub const IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// Binds the socket at `path`, creating its private directory. A stale socket file left by a
/// killed daemon is replaced; a live one is an error.
pub async fn bind(path: &Path) -> Result<UnixListener, Error> {
    fn io(what: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> Error + use<> {
        let path = path.to_owned();
        move |source| Error::Io { what, path, source }
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(io("cannot create the socket directory", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(io("cannot restrict the socket directory", dir))?;
    if path.exists() {
        if UnixStream::connect(path).await.is_ok() {
            return Err(Error::AlreadyServing {
                path: path.to_owned(),
            });
        }
        std::fs::remove_file(path).map_err(io("cannot remove the stale socket", path))?;
    }
    let listener = UnixListener::bind(path).map_err(io("cannot bind the admin socket", path))?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600))
        .map_err(io("cannot restrict the admin socket", path))?;
    Ok(listener)
}

/// Serves until a `shutdown` request arrives or `stop` is notified. Returns the socket path's
/// removal result.
pub async fn serve(engine: Engine, listener: UnixListener, path: PathBuf, stop: Arc<Notify>) {
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    let engine = engine.clone();
                    let stop = stop.clone();
                    tokio::spawn(async move {
                        if let Err(err) = connection(engine, stream, stop).await {
                            tracing::debug!(error = %err, "admin connection ended with an error");
                        }
                    });
                }
                Err(err) => {
                    tracing::warn!(error = %err, "cannot accept an admin connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            _ = stop.notified() => break,
        }
    }
    let _ = std::fs::remove_file(&path);
}

async fn connection(engine: Engine, stream: UnixStream, stop: Arc<Notify>) -> std::io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read);
    loop {
        let line = match tokio::time::timeout(IDLE_TIMEOUT, read_line(&mut reader, REQUEST_LEN_MAX))
            .await
        {
            Err(_) => return Ok(()), // idle
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
        let (reply, after) = match parse_request(&line) {
            Err(err) => (
                Reply::error(err.id, err.code, err.message),
                After::KeepServing,
            ),
            Ok((id, request)) => {
                let (result, after) = dispatch(&engine, request).await;
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
