//! What a signed-in person can do from a page: log in and out, and, with the operator's token,
//! retry or cancel a failed occurrence and pause or resume delivery. Every action is a form
//! posted with the session's CSRF token; a refused one changes nothing and says why.

use std::time::Instant;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{Clearance, SESSION_COOKIE, SESSION_LIFETIME, Signed, csrf_matches};
use super::{Dashboard, session_id};

/// Why a session may not run an action, if it may not.
fn refusal(signed: &Signed, csrf: &str) -> Option<(StatusCode, &'static str)> {
    if !csrf_matches(signed, csrf) {
        return Some((
            StatusCode::FORBIDDEN,
            "the form's CSRF token is missing or stale: reload the page and try again",
        ));
    }
    if signed.clearance != Clearance::Operator {
        return Some((
            StatusCode::FORBIDDEN,
            "this needs the operator's token: log out and log in with the one \
             `tickler dashboard token --operator` prints",
        ));
    }
    None
}

pub async fn login_form(State(dashboard): State<Dashboard>) -> Response {
    dashboard.0.pages.login(StatusCode::OK, None)
}

#[derive(Deserialize)]
pub struct LogIn {
    #[serde(default)]
    token: String,
}

/// Exchanges a token for a session cookie, once.
pub async fn log_in(
    State(dashboard): State<Dashboard>,
    axum::Form(form): axum::Form<LogIn>,
) -> Response {
    let Some(id) = dashboard.0.sessions.log_in(&form.token, Instant::now()) else {
        let message = "that token opens nothing: `tickler dashboard token` prints the read-only \
                       one, `tickler dashboard token --operator` the operator's";
        return dashboard
            .0
            .pages
            .login(StatusCode::UNAUTHORIZED, Some(message));
    };
    let cookie = format!(
        "{SESSION_COOKIE}={id}; Path=/; HttpOnly; SameSite=Strict; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    );
    with_cookie(Redirect::to("/").into_response(), &cookie)
}

#[derive(Deserialize)]
pub struct CsrfOnly {
    #[serde(default)]
    csrf: String,
}

pub async fn log_out(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    headers: HeaderMap,
    axum::Form(form): axum::Form<CsrfOnly>,
) -> Response {
    if !csrf_matches(&signed, &form.csrf) {
        let message = "the form's CSRF token is missing or stale: reload the page";
        return dashboard.problem(&signed, StatusCode::FORBIDDEN, message);
    }
    if let Some(id) = session_id(&headers) {
        dashboard.0.sessions.log_out(&id);
    }
    let cookie = format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0");
    with_cookie(Redirect::to("/login").into_response(), &cookie)
}

fn with_cookie(mut response: Response, cookie: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

#[derive(Deserialize)]
pub struct OccurrenceForm {
    #[serde(default)]
    csrf: String,
    entity: String,
    occurrence: String,
}

/// Retries a failed occurrence: the engine plans it again under the same idempotency key.
pub async fn retry(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    axum::Form(form): axum::Form<OccurrenceForm>,
) -> Response {
    let args = json!({
        "entity": form.entity, "occurrence": form.occurrence,
        "reason": "retried from the dashboard",
    });
    let done = format!("retry of {} {} planned", form.entity, form.occurrence);
    act(
        &dashboard,
        &signed,
        &form.csrf,
        "retry",
        args,
        "/failures",
        done,
    )
    .await
}

/// Cancels an occurrence still waiting (for its time, or its next attempt): it ends unsent
/// (deactivated), and nothing sends it.
pub async fn cancel(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    axum::Form(form): axum::Form<OccurrenceForm>,
) -> Response {
    let args = json!({ "entity": form.entity, "occurrence": form.occurrence });
    let done = format!("{} {} cancelled", form.entity, form.occurrence);
    act(
        &dashboard,
        &signed,
        &form.csrf,
        "cancel",
        args,
        "/failures",
        done,
    )
    .await
}

#[derive(Deserialize)]
pub struct PauseForm {
    #[serde(default)]
    csrf: String,
    /// pause or resume.
    action: String,
    /// all, channel or policy.
    scope: String,
    #[serde(default)]
    name: String,
}

/// Pauses or resumes all delivery, a channel or a policy.
pub async fn pause(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    axum::Form(form): axum::Form<PauseForm>,
) -> Response {
    let name = form.name.trim();
    let (args, what) = match (form.scope.as_str(), name) {
        ("all", _) => (json!({}), "all delivery".to_owned()),
        ("channel" | "policy", "") => {
            let message = format!("name the {} to {}", form.scope, form.action);
            return dashboard.problem(&signed, StatusCode::BAD_REQUEST, &message);
        }
        ("channel", name) => (json!({ "channel": name }), format!("channel {name}")),
        ("policy", name) => (json!({ "policy": name }), format!("policy {name}")),
        (other, _) => {
            let message = format!("scope {other:?} is not one of all, channel, policy");
            return dashboard.problem(&signed, StatusCode::BAD_REQUEST, &message);
        }
    };
    let (cmd, done) = match form.action.as_str() {
        "pause" => ("pause", format!("{what} paused")),
        "resume" => ("resume", format!("{what} resumed")),
        other => {
            let message = format!("action {other:?} is not one of pause, resume");
            return dashboard.problem(&signed, StatusCode::BAD_REQUEST, &message);
        }
    };
    act(&dashboard, &signed, &form.csrf, cmd, args, "/pauses", done).await
}

/// Runs `cmd` if the session may, then sends the browser back to `page` saying `done`; a
/// refusal or an error is shown instead, and nothing was changed.
async fn act(
    dashboard: &Dashboard,
    signed: &Signed,
    csrf: &str,
    cmd: &str,
    args: Value,
    page: &str,
    done: String,
) -> Response {
    if let Some((status, message)) = refusal(signed, csrf) {
        return dashboard.problem(signed, status, message);
    }
    match dashboard.call(cmd, args).await {
        Ok(_) => {
            let query = serde_urlencoded::to_string([("done", done)]).unwrap_or_default();
            Redirect::to(&format!("{page}?{query}")).into_response()
        }
        Err(err) => dashboard.problem(signed, StatusCode::CONFLICT, &err),
    }
}
