//! The daemon's HTTP endpoint, for a scraper and an orchestrator's probes:
//!
//! - `GET /metrics`: the Prometheus text exposition, the same text as the protocol's `metrics`;
//! - `GET /healthz`: 200 while the process serves (even while the engine is still opening);
//! - `GET /readyz`: 200 once the engine is ready, 503 with the reason otherwise (what *ready*
//!   means: `Engine::unready`, and the engine must have finished opening);
//!
//! and `HEAD` of each (headers, no body); 404 for any other path, 405 with an `Allow` header for
//! any other method. Read-only: nothing here changes the engine.
//!
//! axum routes; hyper serves each connection itself rather than through `axum::serve`, which
//! sets no timer, for what a port that any local user can reach needs: a header read timeout
//! (an idle keep-alive connection, or a client that sends its request slowly, is closed), a cap
//! on the connections served at once (one more is closed at once, so idle ones cannot take the
//! daemon's descriptors) and a lifetime bound (a client that stops reading its responses).
//! Keep-alive works within those bounds.
//!
//! On a loopback address only requests whose `Host` names this machine are served: a page in a
//! local browser could otherwise reach the port under another name (DNS rebinding).

use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tickler_engine::{Engine, METRICS_CONTENT_TYPE};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, OwnedSemaphorePermit, Semaphore};

use crate::Error;

/// Connections served at once; a scraper and a prober need one each.
pub const CONNECTIONS_MAX: usize = 16;
/// How long a connection may take to send a request's head, counted from when the endpoint
/// starts waiting for it: on a new connection and between two requests of a kept-alive one.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);
/// The longest a connection is served; then it is closed after its response in progress.
const CONNECTION_LIFETIME_MAX: Duration = Duration::from_secs(300);
/// How long a connection being closed may take to finish its response.
const CLOSE_GRACE: Duration = Duration::from_secs(2);
/// A request's head beyond this many bytes is refused (the least hyper takes).
const REQUEST_HEAD_LEN_MAX: usize = 8 * 1024;

/// The engine the endpoint reports on, once it is open: until then `/healthz` answers and
/// `/readyz` says the engine is still opening.
#[derive(Clone, Default)]
pub struct OpenedEngine(Arc<OnceLock<Engine>>);

impl OpenedEngine {
    /// The engine finished opening (recovery is over): the endpoint reports on it from now on.
    pub fn opened(&self, engine: Engine) {
        let _ = self.0.set(engine);
    }

    fn get(&self) -> Option<&Engine> {
        self.0.get()
    }
}

/// A bound endpoint, not serving yet.
pub struct Endpoint {
    listener: TcpListener,
    loopback_only: bool,
}

/// Binds the endpoint on `addr`. A non-loopback address is refused unless `allow_non_loopback`:
/// anyone who can reach it reads the metrics.
pub async fn bind(addr: SocketAddr, allow_non_loopback: bool) -> Result<Endpoint, Error> {
    let loopback_only = addr.ip().is_loopback();
    if !loopback_only && !allow_non_loopback {
        return Err(Error::NonLoopbackHttp { addr });
    }
    let listener = TcpListener::bind(addr).await.map_err(|source| Error::Io {
        what: "cannot bind the HTTP endpoint on",
        path: addr.to_string().into(),
        source,
    })?;
    Ok(Endpoint {
        listener,
        loopback_only,
    })
}

impl Endpoint {
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.listener.local_addr().ok()
    }

    /// Serves until `stop` is notified.
    pub async fn serve(self, engine: OpenedEngine, stop: Arc<Notify>) {
        let app = router(Served {
            engine,
            loopback_only: self.loopback_only,
        });
        self.serve_router(app, stop).await
    }

    /// Whether the endpoint listens on loopback only (and so serves loopback `Host`s only).
    pub(crate) fn loopback_only(&self) -> bool {
        self.loopback_only
    }

    /// Serves `app` under this endpoint's connection bounds until `stop` is notified.
    pub(crate) async fn serve_router(self, app: Router, stop: Arc<Notify>) {
        let slots = Arc::new(Semaphore::new(CONNECTIONS_MAX));
        let mut accept_errors = crate::server::WarnEvery::new(Duration::from_secs(10));
        loop {
            tokio::select! {
                accepted = self.listener.accept() => {
                    let stream = match accepted {
                        Ok((stream, _)) => stream,
                        Err(err) => {
                            // Out of descriptors, say: back off rather than spin on accept.
                            accept_errors.warn(|| tracing::warn!(error = %err, "cannot accept an HTTP connection"));
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    };
                    // Beyond the cap a connection is closed at once, unanswered.
                    let Ok(slot) = slots.clone().try_acquire_owned() else {
                        drop(stream);
                        continue;
                    };
                    tokio::spawn(connection(stream, app.clone(), slot));
                }
                _ = stop.notified() => break,
            }
        }
    }
}

/// Serves one connection's requests, holding its slot until it closes.
async fn connection(stream: TcpStream, app: Router, _slot: OwnedSemaphorePermit) {
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT)
        .max_buf_size(REQUEST_HEAD_LEN_MAX)
        .keep_alive(true);
    let served = http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(app));
    tokio::pin!(served);
    tokio::select! {
        _ = served.as_mut() => return,
        _ = tokio::time::sleep(CONNECTION_LIFETIME_MAX) => served.as_mut().graceful_shutdown(),
    }
    let _ = tokio::time::timeout(CLOSE_GRACE, served).await;
}

#[derive(Clone)]
struct Served {
    engine: OpenedEngine,
    loopback_only: bool,
}

fn router(served: Served) -> Router {
    let loopback_only = served.loopback_only;
    let app = Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        .with_state(served);
    guard_host(app, loopback_only)
}

/// Refuses, on a loopback endpoint, requests whose `Host` names another machine.
pub(crate) fn guard_host(app: Router, loopback_only: bool) -> Router {
    app.layer(middleware::from_fn_with_state(
        loopback_only,
        addressed_to_this_machine,
    ))
}

async fn addressed_to_this_machine(
    State(loopback_only): State<bool>,
    request: Request,
    next: Next,
) -> Response {
    let host = request
        .headers()
        .get(header::HOST)
        .map(|host| host.to_str().unwrap_or_default());
    if loopback_only && !host.is_none_or(loopback_host) {
        let refusal = "only requests with a loopback Host are served\n";
        return (StatusCode::FORBIDDEN, refusal).into_response();
    }
    next.run(request).await
}

async fn metrics(State(served): State<Served>) -> Response {
    let Some(engine) = served.engine.get() else {
        return unavailable("the engine is still opening".to_owned());
    };
    match engine.metrics_text().await {
        Ok(text) => ([(header::CONTENT_TYPE, METRICS_CONTENT_TYPE)], text).into_response(),
        Err(err) => unavailable(err.to_string()),
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(served): State<Served>) -> Response {
    let unready = match served.engine.get() {
        None => Some("the engine is still opening (recovery has not finished)".to_owned()),
        Some(engine) => engine.unready().await,
    };
    match unready {
        None => "ready\n".into_response(),
        Some(reason) => unavailable(format!("not ready: {reason}")),
    }
}

async fn not_found() -> (StatusCode, &'static str) {
    let served = "only /metrics, /healthz and /readyz are served here\n";
    (StatusCode::NOT_FOUND, served)
}

fn unavailable(reason: String) -> Response {
    (StatusCode::SERVICE_UNAVAILABLE, format!("{reason}\n")).into_response()
}

/// Whether a `Host` header names this machine: `localhost` or a loopback address, with any
/// port.
fn loopback_host(host: &str) -> bool {
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
            assert!(loopback_host(host), "{host}");
        }
        for host in ["attacker.example:9464", "10.0.0.1:9464", "[fe80::1]:9464"] {
            assert!(!loopback_host(host), "{host}");
        }
    }
}
