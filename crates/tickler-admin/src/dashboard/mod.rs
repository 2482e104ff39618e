//! The web dashboard: what support staff and operators look at (overview, search, an entity's
//! timeline and story, what is due, failures, pauses, a family's preview), server-rendered from the same commands
//! the admin socket answers, so a page never says something the socket would not.
//!
//! Off unless the daemon is given an address; loopback unless allowed otherwise, and then
//! behind a proxy that terminates TLS. Every page needs a session opened with one of the two
//! tokens the binary keeps (`auth`); actions need the operator's token and the session's CSRF
//! token.
//! No script runs on a page: the Content-Security-Policy allows none, styles come from one
//! stylesheet served here, charts are SVG drawn on the server.

mod actions;
mod activity;
pub mod auth;
mod chart;
mod entity;
mod pages;
mod preview;
mod render;
mod search;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tickler_engine::Engine;
use tokio::sync::Notify;

pub use auth::{Clearance, Tokens, random_hex};

use crate::Error;
use crate::family::Families;
use crate::http::Endpoint;

/// What every response says about itself: no script, no frame, no outside resource, nothing
/// cached (pages hold recipients' addresses).
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
     form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Binds the dashboard on `addr`: a non-loopback address only if `allow_non_loopback`.
pub async fn bind(addr: SocketAddr, allow_non_loopback: bool) -> Result<Endpoint, Error> {
    if !addr.ip().is_loopback() && !allow_non_loopback {
        return Err(Error::NonLoopbackDashboard { addr });
    }
    crate::http::bind(addr, true).await
}

/// The dashboard's state, shared by every request.
#[derive(Clone)]
pub struct Dashboard(Arc<Inner>);

struct Inner {
    engine: Engine,
    families: Families,
    sessions: auth::Sessions,
    activity: activity::Activity,
    pages: render::Pages,
    started_at: tickler_core::Timestamp,
}

impl Dashboard {
    /// A dashboard on `engine`, its logins checked against `tokens`.
    pub fn new(engine: Engine, families: Families, tokens: Arc<dyn Tokens>) -> Dashboard {
        Dashboard(Arc::new(Inner {
            started_at: engine.now(),
            engine,
            families,
            sessions: auth::Sessions::new(tokens),
            activity: activity::Activity::default(),
            pages: render::Pages::new(),
        }))
    }

    /// Serves on `endpoint` until `stop` is notified, counting past events for the overview.
    pub async fn serve(self, endpoint: Endpoint, stop: Arc<Notify>) {
        let loopback_only = endpoint.loopback_only();
        let mut past_events = self.0.engine.subscribe();
        let counting = self.clone();
        let counter = tokio::spawn(async move {
            use tokio::sync::broadcast::error::RecvError;
            loop {
                match past_events.recv().await {
                    Ok(past) => counting.0.activity.record(&past),
                    // A burst beyond the stream's buffer: the chart undercounts, never stops.
                    Err(RecvError::Lagged(_)) => continue,
                    Err(RecvError::Closed) => break,
                }
            }
        });
        let app = crate::http::guard_host(router(self), loopback_only);
        endpoint.serve_router(app, stop).await;
        counter.abort();
    }
}

fn router(dashboard: Dashboard) -> Router {
    let signed_in = Router::new()
        .route("/", get(pages::overview))
        .route("/search", get(search::search).post(search::search))
        .route("/entity", get(entity::entity))
        .route("/due", get(pages::due))
        .route("/failures", get(pages::failures))
        .route("/failures/retry", post(actions::retry))
        .route("/failures/cancel", post(actions::cancel))
        .route("/pauses", get(pages::pauses).post(actions::pause))
        .route("/preview", get(preview::preview))
        .route("/logout", post(actions::log_out))
        .route_layer(middleware::from_fn_with_state(
            dashboard.clone(),
            require_session,
        ));
    Router::new()
        .route("/login", get(actions::login_form).post(actions::log_in))
        .route("/dashboard.css", get(stylesheet))
        .merge(signed_in)
        .fallback(not_found)
        .layer(middleware::from_fn(security_headers))
        .with_state(dashboard)
}

/// Lets a request through only with an open session, which handlers then read; anything else
/// gets 401 and the login form, no data.
async fn require_session(
    State(dashboard): State<Dashboard>,
    mut request: Request,
    next: Next,
) -> Response {
    let signed = session_id(request.headers())
        .and_then(|id| dashboard.0.sessions.check(&id, Instant::now()));
    match signed {
        Some(signed) => {
            request.extensions_mut().insert(signed);
            next.run(request).await
        }
        None => dashboard.0.pages.login(StatusCode::UNAUTHORIZED, None),
    }
}

/// The session id in the request's cookie, if any.
fn session_id(headers: &axum::http::HeaderMap) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .filter_map(|cookie| cookie.trim().split_once('='))
        .find(|(name, _)| *name == auth::SESSION_COOKIE)
        .map(|(_, value)| value.to_owned())
}

async fn security_headers(request: Request, next: Next) -> Response {
    let mut response = next.run(request).await;
    let headers = response.headers_mut();
    for (name, value) in [
        (header::CONTENT_SECURITY_POLICY, CONTENT_SECURITY_POLICY),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::CACHE_CONTROL, "no-store"),
    ] {
        headers.insert(name, HeaderValue::from_static(value));
    }
    response
}

async fn stylesheet() -> Response {
    let css = include_str!("dashboard.css");
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], css).into_response()
}

async fn not_found() -> (StatusCode, &'static str) {
    (StatusCode::NOT_FOUND, "no such page\n")
}
