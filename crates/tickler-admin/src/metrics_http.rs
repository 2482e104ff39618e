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
                    let (status, body) = if !loopback_host(&request) {
                        // A page in a local browser could reach loopback under another name
                        // (DNS rebinding): only requests addressed to this machine are served.
                        ("403 Forbidden", "only requests with a loopback Host are served\n".to_owned())
                    } else if request.starts_with("GET /metrics ") || request.starts_with("GET /metrics?") {
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

/// Whether the request's `Host` header (if any) names this machine: `localhost` or a loopback
/// address, with any port.
fn loopback_host(request: &str) -> bool {
    let Some(host) = request.lines().find_map(|line| {
        let (name, value) = line.split_once(':')?;
        name.trim()
            .eq_ignore_ascii_case("host")
            .then(|| value.trim())
    }) else {
        return true; // HTTP/1.0 scrapers may send none
    };
    let name = match host.strip_prefix('[') {
        Some(rest) => rest.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::loopback_host;

    /// Issue 20 (I3): a request carrying another name in its Host (DNS rebinding from a local
    /// browser) is refused; scrapers addressing loopback are served.
    #[test]
    fn only_requests_addressed_to_loopback_are_served() {
        for host in [
            "localhost:9464",
            "127.0.0.1:9464",
            "[::1]:9464",
            "LOCALHOST",
            "127.0.0.1",
        ] {
            assert!(
                loopback_host(&format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n")),
                "{host}"
            );
        }
        assert!(
            loopback_host("GET /metrics HTTP/1.0\r\n\r\n"),
            "no Host at all"
        );
        for host in ["attacker.example:9464", "10.0.0.1:9464", "[fe80::1]:9464"] {
            assert!(
                !loopback_host(&format!("GET /metrics HTTP/1.1\r\nHost: {host}\r\n\r\n")),
                "{host}"
            );
        }
    }
}
