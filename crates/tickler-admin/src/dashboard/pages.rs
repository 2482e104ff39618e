//! The Overview, Due, Failures and Pauses pages, and how every page asks the engine: through
//! the protocol's own commands (`status`, `due`, `failures`…), as the socket would answer.

use std::collections::BTreeMap;

use axum::Extension;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tickler_core::{Span, Timestamp};

use super::auth::Signed;
use super::{Dashboard, chart};
use crate::dispatch::{After, dispatch};
use crate::protocol::{Call, FamilyCall, Request};

/// Rows on a page of search results or failures.
pub(super) const PAGE_LEN: usize = 50;

impl Dashboard {
    /// Runs protocol command `cmd` (generic or a family's) with `args` (a JSON object, or null
    /// for none), as the socket would; an error is the reply's message.
    pub(super) async fn call(&self, cmd: &str, args: Value) -> Result<Value, String> {
        let line = match args {
            Value::Null => json!({ "cmd": cmd }),
            args => json!({ "cmd": cmd, "args": args }),
        };
        let call = if self.0.families.serves(cmd) {
            Call::Family(FamilyCall {
                cmd: cmd.to_owned(),
                args: line["args"].clone(),
            })
        } else {
            let request: Request =
                serde_json::from_value(line).map_err(|err| format!("{cmd}: {err}"))?;
            Call::Request(request)
        };
        let (reply, after) = dispatch(&self.0.engine, &self.0.families, call).await;
        debug_assert_eq!(
            after,
            After::KeepServing,
            "the dashboard never stops the daemon"
        );
        reply.map_err(|err| err.to_string())
    }

    fn now(&self) -> Timestamp {
        self.0.engine.now()
    }

    pub(super) fn show(
        &self,
        signed: &Signed,
        page: &str,
        template: &str,
        content: impl Serialize,
    ) -> Response {
        self.0
            .pages
            .page(signed, page, self.now(), template, content)
    }

    /// The policy an entity id's kind belongs to (`kind/key`), as the catalog maps kinds to
    /// policies; `kind <kind>` when none or several claim it.
    fn policy_of(&self, entity: &str) -> String {
        let kind = entity.split('/').next().unwrap_or_default();
        let catalog = self.0.engine.catalog();
        let mut claiming = catalog.policies().filter(|p| p.entity_kind == kind);
        match (claiming.next(), claiming.next()) {
            (Some(policy), None) => policy.name.clone(),
            _ => format!("kind {kind}"),
        }
    }

    pub(super) fn problem(&self, signed: &Signed, status: StatusCode, message: &str) -> Response {
        self.0.pages.problem(signed, status, message)
    }
}

pub async fn overview(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
) -> Response {
    let status = match dashboard.call("status", Value::Null).await {
        Ok(status) => status,
        Err(err) => return dashboard.problem(&signed, StatusCode::SERVICE_UNAVAILABLE, &err),
    };
    let hours = dashboard.0.activity.last_day(dashboard.now());
    let totals = hours.iter().fold((0, 0, 0), |(s, f, u), hour| {
        let c = hour.counts;
        (s + c.sent, f + c.failed, u + c.suppressed)
    });
    let content = json!({
        "status": status,
        "bars": chart::bars(&hours),
        "chart_width": chart::BARS_WIDTH,
        "chart_height": chart::BARS_HEIGHT,
        "day": { "sent": totals.0, "failed": totals.1, "suppressed": totals.2 },
        "counting_since": dashboard.0.started_at,
    });
    dashboard.show(&signed, "overview", "overview.html", content)
}

pub(super) fn non_empty(text: &str) -> Option<&str> {
    Some(text.trim()).filter(|t| !t.is_empty())
}

/// An instant typed in a form: RFC 3339, or a `datetime-local` field's `2026-03-01T09:30`
/// taken as UTC.
pub(super) fn parse_instant(text: &str) -> Result<Timestamp, String> {
    let text = text.trim();
    if let Ok(at) = text.parse::<Timestamp>() {
        return Ok(at);
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M")
        .ok()
        .and_then(|naive| Timestamp::from_millis(naive.and_utc().timestamp_millis()))
        .ok_or_else(|| {
            format!("{text:?} is not an instant: give it as 2026-03-01T09:30:00Z (RFC 3339, UTC)")
        })
}

#[derive(Debug, Default, Deserialize)]
pub struct DueQuery {
    /// today, week, or custom (then from and to).
    #[serde(default)]
    range: String,
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

/// What fires in a range, with the pauses that hold it.
pub async fn due(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<DueQuery>,
) -> Response {
    let (from, to) = match due_range(&query, dashboard.now()) {
        Ok(range) => range,
        Err(err) => return dashboard.problem(&signed, StatusCode::BAD_REQUEST, &err),
    };
    let (due, status) = tokio::join!(
        dashboard.call("due", json!({ "from": from, "to": to })),
        dashboard.call("status", Value::Null),
    );
    let due = match due {
        Ok(due) => due,
        Err(err) => return dashboard.problem(&signed, StatusCode::BAD_REQUEST, &err),
    };
    let mut entries = due["entries"].as_array().cloned().unwrap_or_default();
    let (mut by_channel, mut by_policy) = (BTreeMap::new(), BTreeMap::new());
    for entry in &mut entries {
        let policy = dashboard.policy_of(entry["entity"].as_str().unwrap_or_default());
        let channel = entry["channel"].as_str().unwrap_or("(none)").to_owned();
        *by_channel.entry(channel).or_insert(0) += 1;
        *by_policy.entry(policy.clone()).or_insert(0) += 1;
        entry["policy"] = Value::String(policy);
    }
    let content = json!({
        "range": if query.range.is_empty() { "today" } else { &query.range },
        "from": from, "to": to, "entries": entries,
        "by_channel": by_channel, "by_policy": by_policy,
        "paused": status.ok().map(|s| s["paused"].clone()),
    });
    dashboard.show(&signed, "due", "due.html", content)
}

/// The range a due query names: the UTC day of `now`, the seven days from now, or a chosen one.
fn due_range(query: &DueQuery, now: Timestamp) -> Result<(Timestamp, Timestamp), String> {
    const DAY_MS: i64 = 86_400_000;
    match query.range.as_str() {
        "" | "today" => {
            let start = now.as_millis().div_euclid(DAY_MS) * DAY_MS;
            let start = Timestamp::from_millis(start).ok_or("the clock is out of range")?;
            Ok((start, later(start, DAY_MS)?))
        }
        "week" => Ok((now, later(now, 7 * DAY_MS)?)),
        "custom" => {
            let (from, to) = (parse_instant(&query.from)?, parse_instant(&query.to)?);
            if from >= to {
                return Err(format!("the range ends ({to}) before it starts ({from})"));
            }
            Ok((from, to))
        }
        other => Err(format!("range {other:?} is not one of today, week, custom")),
    }
}

fn later(at: Timestamp, ms: i64) -> Result<Timestamp, String> {
    at.checked_add(Span::from_millis(ms))
        .ok_or_else(|| format!("{at} is too late for a range"))
}

#[derive(Debug, Default, Deserialize)]
pub struct PageQuery {
    #[serde(default)]
    after: String,
    /// What an action just did, said once after its redirect.
    #[serde(default)]
    done: String,
}

/// Occurrences that ended in a system error, with their last error, and the retries in flight.
pub async fn failures(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<PageQuery>,
) -> Response {
    let args = json!({ "after": non_empty(&query.after), "limit": PAGE_LEN });
    let (page, retrying) = tokio::join!(dashboard.call("failures", args), retrying(&dashboard),);
    let page = match page {
        Ok(page) => page,
        Err(err) => return dashboard.problem(&signed, StatusCode::SERVICE_UNAVAILABLE, &err),
    };
    let content = json!({
        "failures": page["failures"], "next": page["next"], "done": non_empty(&query.done),
        "retrying": retrying,
    });
    dashboard.show(&signed, "failures", "failures.html", content)
}

/// Occurrences whose delivery failed and that wait for their next attempt (within a day: the
/// retry schedule's backoff is minutes), soonest first.
async fn retrying(dashboard: &Dashboard) -> Result<Vec<Value>, String> {
    let now = dashboard.now();
    let args = json!({ "from": now, "to": later(now, 86_400_000)? });
    let due = dashboard.call("due", args).await?;
    let entries = due["entries"].as_array().cloned().unwrap_or_default();
    Ok(entries
        .into_iter()
        .filter(|entry| entry["state"] == "retry-waiting")
        .collect())
}

/// What is paused, with the forms to pause and resume.
pub async fn pauses(
    State(dashboard): State<Dashboard>,
    Extension(signed): Extension<Signed>,
    Query(query): Query<PageQuery>,
) -> Response {
    let status = match dashboard.call("status", Value::Null).await {
        Ok(status) => status,
        Err(err) => return dashboard.problem(&signed, StatusCode::SERVICE_UNAVAILABLE, &err),
    };
    let engine = &dashboard.0.engine;
    let policies: Vec<&str> = engine
        .catalog()
        .policies()
        .map(|p| p.name.as_str())
        .collect();
    let content = json!({
        "paused": status["paused"], "done": non_empty(&query.done),
        "channels": engine.channel_names(), "policies": policies,
    });
    dashboard.show(&signed, "pauses", "pauses.html", content)
}
