//! The optional metrics endpoint: `GET /metrics` on a loopback TCP port, in the Prometheus text
//! format. Deliberately minimal (one request per connection, no keep-alive, bounded headers): it
//! serves a scraper on the same host, nothing else.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tickler_engine::Engine;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::{Notify, Semaphore};

use crate::Error;

/// The most request bytes read before answering (a scrape's request line and headers).
const REQUEST_HEAD_LEN_MAX: usize = 8 * 1024;
const READ_TIMEOUT: Duration = Duration::from_secs(2);
/// Scrapes served at once; a scraper needs one.
pub const CONNECTIONS_MAX: usize = 16;

/// Binds the endpoint; only loopback addresses are accepted.
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    if !addr.ip().is_loopback() {
        return Err(Error::Io {
            what: "the metrics endpoint must listen on loopback, not",
            path: addr.to_string().into(),
            source: std::io::Error::from(std::io::ErrorKind::InvalidInput),
        });
    }
    TcpListener::bind(addr).await.map_err(|source| Error::Io {
        what: "cannot bind the metrics endpoint",
        path: addr.to_string().into(),
        source,
    })
}

pub async fn serve(engine: Engine, listener: TcpListener, stop: Arc<Notify>) {
    let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
    let mut accept_errors = crate::server::WarnEvery::new(Duration::from_secs(10));
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let mut stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(err) => {
                        // Out of descriptors, say: back off rather than spin on accept.
                        accept_errors.warn(|| tracing::warn!(error = %err, "cannot accept a metrics connection"));
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                // Any local user can reach loopback: beyond the cap a connection is closed at
                // once, so idle ones cannot take the daemon's descriptors.
                let Ok(slot) = slots.clone().try_acquire_owned() else {
                    drop(stream);
                    continue;
                };
                let engine = engine.clone();
                tokio::spawn(async move {
                    let _slot = slot;
                    let mut head = vec![0u8; REQUEST_HEAD_LEN_MAX];
                    let read = tokio::time::timeout(READ_TIMEOUT, stream.read(&mut head)).await;
                    let Ok(Ok(read)) = read else { return };
                    let request = String::from_utf8_lossy(&head[..read]);
                    let (status, body) = if request.starts_with("GET /metrics ") || request.starts_with("GET /metrics?") {
                        match engine.metrics_text().await {
                            Ok(text) => ("200 OK", text),
                            Err(err) => ("503 Service Unavailable", format!("{err}\n")),
                        }
                    } else {
                        ("404 Not Found", "only GET /metrics is served here\n".to_owned())
                    };
                    let response = format!(
                        "HTTP/1.1 {status}\r\ncontent-type: text/plain; version=0.0.4\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = stream.write_all(response.as_bytes()).await;
                    let _ = stream.shutdown().await;
                });
            }
            _ = stop.notified() => break,
        }
    }
}
