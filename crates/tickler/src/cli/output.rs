//! Human output: tables for people; `--json` prints the daemon's reply untouched for scripts.

use serde_json::Value;
use tickler_admin::terminal::{self, column_min, instant_cell, shorten, summarise, table};
use tickler_admin::{Call, Request};

/// The most characters of an error a table cell shows (`--json` has it whole).
const ERROR_CELL_LEN: usize = 60;

pub fn print(call: &Call, result: &Value) {
    match call {
        Call::Request(request) => print_generic(request, result),
        Call::Family(call) => {
            if tickler_learning::cli::print(&call.cmd, result) {
                return;
            }
            match call.cmd.as_str() {
                "eval.respond" => print_response(&call.args, result),
                _ => print_applied(result),
            }
        }
    }
}

fn print_generic(request: &Request, result: &Value) {
    match request {
        Request::Status => print_status(result),
        Request::Failures(_) => print_failures(result),
        Request::Show(_) => print_entity(result),
        Request::History(_) => print_past_events(&result["past_events"]),
        Request::ClockNow | Request::ClockAdvance(_) | Request::ClockSet(_) => {
            let mut line = format!(
                "now {} ({} clock)",
                text(&result["now"]),
                text(&result["clock"])
            );
            if let Some(fired) = result.get("fired") {
                line.push_str(&format!("; {fired} wake(s) processed"));
            }
            out!("{line}");
        }
        Request::Shutdown => out!("the daemon is shutting down"),
        Request::GroupReplan(_) => {
            let changed = result["changed"].as_array().cloned().unwrap_or_default();
            out!("{} member(s) re-planned", changed.len());
            for applied in &changed {
                print_applied(applied);
            }
        }
        Request::GroupJoin(_) | Request::GroupLeave(_) => {
            for applied in result["entities"].as_array().into_iter().flatten() {
                print_applied(applied);
            }
        }
        Request::List(_) => print_list(result),
        Request::Due(_) => print_due(result),
        Request::Explain(_) => print_explanation(result),
        Request::Pause(_) | Request::Resume(_) => match pause_scopes(&result["paused"]).as_str() {
            "none" => out!("nothing is paused"),
            scopes => out!("paused: {scopes}"),
        },
        Request::Retry(_) if result.get("retried").is_some() => print_retried(result),
        Request::Snapshot(_) => out!("{} snapshot(s) written", text(&result["snapshots"])),
        Request::Metrics => out!("{}", result["text"].as_str().unwrap_or_default().trim_end()),
        Request::Backfill(_) => {
            let woken = result["woken"].as_array().cloned().unwrap_or_default();
            out!("{} occurrence(s) processed", woken.len());
            for each in &woken {
                out!("  {} {}", text(&each["entity"]), text(&each["occurrence"]));
            }
        }
        _ => print_applied(result),
    }
}

fn text(value: &Value) -> String {
    match value {
        Value::Null => "-".to_owned(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn print_applied(result: &Value) {
    let events = result["events"].as_array().cloned().unwrap_or_default();
    if events.is_empty() {
        out!(
            "{}: nothing changed (version {})",
            text(&result["entity"]),
            text(&result["version"])
        );
    } else {
        out!(
            "{}: version {} ({})",
            text(&result["entity"]),
            text(&result["version"]),
            summarise(events.iter().filter_map(Value::as_str))
        );
    }
    if result["past_events"]
        .as_array()
        .is_some_and(|past| !past.is_empty())
    {
        out!("past events recorded by this command:");
        print_past_events(&result["past_events"]);
    }
    if !result["state"].is_null() {
        print_entity(&result["state"]);
    }
}

fn print_entity(entity: &Value) {
    let workflow = entity["workflow"]
        .as_str()
        .map(|w| format!(", {w}"))
        .unwrap_or_default();
    out!("{}", fit(&text(&entity["entity"])));
    out!(
        "{}",
        fit(&format!(
            "  policy: {} v{}{workflow}, version {}",
            text(&entity["policy"]),
            text(&entity["policy_version"]),
            text(&entity["version"]),
        ))
    );
    // A directory entity (a site, a course) is its own recipient: no address, no zone of its
    // own (a site's default zone is among its attributes).
    if entity["recipient"] != entity["entity"] {
        out!(
            "{}",
            fit(&format!(
                "  recipient: {} ({})",
                text(&entity["recipient"]),
                text(&entity["zone"])
            ))
        );
    }
    if let Value::Object(anchors) = &entity["anchors"] {
        for (name, at) in anchors {
            out!("{}", fit(&format!("  {name}: {}", text(at))));
        }
    }
    if let Some(phase) = entity["phase"].as_str() {
        out!("  phase: {phase}");
    }
    print_attributes(&entity["attributes"]);
    if let Value::Object(completed) = &entity["completed"] {
        out!(
            "  completed: {} at {}",
            text(&completed["reason"]),
            text(&completed["at"])
        );
    }
    let active = entity["active"].as_array().cloned().unwrap_or_default();
    if active.is_empty() {
        out!("  no active reminders");
        return;
    }
    let mut table = table(&["OCCURRENCE", "KIND", "PLANNED (UTC)", "LOCAL", "STATE"]);
    for reminder in &active {
        let state = match reminder["attempts"].as_u64() {
            Some(attempts) if attempts > 0 => {
                format!("{} ({attempts} attempts)", text(&reminder["state"]))
            }
            _ => text(&reminder["state"]),
        };
        table.add_row(vec![
            text(&reminder["occurrence"]),
            text(&reminder["kind"]),
            instant_cell(&reminder["planned_at"]),
            text(&reminder["planned_local"]),
            state,
        ]);
    }
    column_min(&mut table, 0, 14);
    column_min(&mut table, 2, 12);
    out!("{table}");
}

fn print_past_events(past: &Value) {
    let rows = past.as_array().cloned().unwrap_or_default();
    if rows.is_empty() {
        out!("no past events");
        return;
    }
    let mut table = table(&[
        "OCCURRENCE",
        "KIND",
        "PLANNED (UTC)",
        "CLOSED (UTC)",
        "OUTCOME",
        "DETAIL",
    ]);
    for row in &rows {
        let outcome = match row["reason"].as_str() {
            Some(reason) => format!("unsent: {reason}"),
            None => format!("sent via {}", text(&row["channel"])),
        };
        let detail = if row["outcome"] == "sent" {
            format!(
                "{} (attempt {})",
                text(&row["receipt"]),
                text(&row["attempts"])
            )
        } else {
            shorten(&text(&row["detail"]), ERROR_CELL_LEN)
        };
        let occurrence = match row["retry_of"].as_str() {
            Some(original) => format!("{} (retry of {original})", text(&row["occurrence"])),
            None => text(&row["occurrence"]),
        };
        table.add_row(vec![
            occurrence,
            text(&row["kind"]),
            instant_cell(&row["planned_at"]),
            instant_cell(&row["closed_at"]),
            outcome,
            detail,
        ]);
    }
    column_min(&mut table, 0, 14);
    column_min(&mut table, 2, 12);
    column_min(&mut table, 3, 12);
    out!("{table}");
}

/// The same entity and past-event tables, for `replay`, which has no daemon reply.
pub fn print_replay(entity: &Value, past_events: &Value) {
    print_entity(entity);
    print_past_events(past_events);
}

fn print_list(result: &Value) {
    let entities = result["entities"].as_array().cloned().unwrap_or_default();
    if entities.is_empty() {
        out!("no entities");
        return;
    }
    let mut table = table(&[
        "ENTITY",
        "POLICY",
        "RECIPIENT",
        "ACTIVE",
        "ERRORS",
        "NEXT WAKE (UTC)",
        "COMPLETED",
    ]);
    for entity in &entities {
        let errors = match (&entity["error"], &entity["errored"]) {
            (Value::String(error), _) => shorten(error, ERROR_CELL_LEN),
            (_, count) if count == 0 => String::new(),
            (_, count) => text(count),
        };
        // A directory entity (a site, a course) is its own recipient.
        let recipient = match &entity["recipient"] {
            same if same == &entity["entity"] => "-".to_owned(),
            other => text(other),
        };
        table.add_row(vec![
            text(&entity["entity"]),
            text(&entity["policy"]),
            recipient,
            text(&entity["active"]),
            errors,
            instant_cell(&entity["next_wake"]),
            text(&entity["completed"]),
        ]);
    }
    column_min(&mut table, 0, 20);
    column_min(&mut table, 5, 12);
    out!("{table}");
    if !result["next"].is_null() {
        out!("more: --after {}", text(&result["next"]));
    }
}

fn print_due(result: &Value) {
    let entries = result["entries"].as_array().cloned().unwrap_or_default();
    out!(
        "{} due from {} to {}",
        entries.len(),
        text(&result["from"]),
        text(&result["to"])
    );
    if entries.is_empty() {
        return;
    }
    let mut table = table(&[
        "DUE (UTC)",
        "ENTITY",
        "OCCURRENCE",
        "KIND",
        "STATE",
        "CHANNEL",
        "PAUSED",
    ]);
    for entry in &entries {
        table.add_row(vec![
            instant_cell(&entry["due"]),
            text(&entry["entity"]),
            text(&entry["occurrence"]),
            text(&entry["kind"]),
            text(&entry["state"]),
            text(&entry["channel"]),
            if entry["paused"] == true {
                "yes".to_owned()
            } else {
                String::new()
            },
        ]);
    }
    out!("{table}");
}

fn print_explanation(result: &Value) {
    out!("{}", text(&result["entity"]));
    for line in result["entity_lines"].as_array().into_iter().flatten() {
        for part in terminal::wrap(&text(&line["text"]), "  ", "  ") {
            out!("{part}");
        }
    }
    for story in result["occurrences"].as_array().into_iter().flatten() {
        out!(
            "{} ({})",
            text(&story["occurrence"]),
            text(&story["status"])
        );
        for line in story["lines"].as_array().into_iter().flatten() {
            for part in terminal::wrap(&text(&line["text"]), "  - ", "    ") {
                out!("{part}");
            }
        }
    }
}

/// An entity's attributes, one per line: lists (students, who answered) with their count, and
/// cut to a line's width (`show --json` has them whole).
fn print_attributes(attributes: &Value) {
    let Value::Object(attributes) = attributes else {
        return;
    };
    for (name, value) in attributes {
        let shown = match value {
            Value::Array(items) => format!(
                "({}) {}",
                items.len(),
                items.iter().map(text).collect::<Vec<_>>().join(", ")
            ),
            other => text(other),
        };
        out!("{}", fit(&format!("  {name}: {shown}")));
    }
}

fn print_failures(result: &Value) {
    let failures = result["failures"].as_array().cloned().unwrap_or_default();
    if failures.is_empty() {
        out!("no failures: no occurrence waits for a retry");
        return;
    }
    let mut table = table(&[
        "ENTITY",
        "OCCURRENCE",
        "CHANNEL",
        "ATTEMPTS",
        "FAILED (UTC)",
        "LAST ERROR",
    ]);
    for failure in &failures {
        table.add_row(vec![
            text(&failure["entity"]),
            text(&failure["occurrence"]),
            text(&failure["channel"]),
            text(&failure["attempts"]),
            instant_cell(&failure["failed_at"]),
            shorten(&text(&failure["error"]), ERROR_CELL_LEN),
        ]);
    }
    out!("{table}");
    if !result["next"].is_null() {
        out!("more: --after {}", text(&result["next"]));
    }
    out!("retry: tickler retry ENTITY [OCCURRENCE], or tickler retry --all");
}

fn print_retried(result: &Value) {
    let retried = result["retried"].as_array().cloned().unwrap_or_default();
    let entities = result["retried_entities"].as_array().map_or(0, Vec::len);
    if retried.is_empty() {
        out!("nothing to retry: no occurrence ended in a system error");
        return;
    }
    out!(
        "retried {} occurrence(s) of {entities} entit{}, each under its original key:",
        retried.len(),
        if entities == 1 { "y" } else { "ies" }
    );
    for each in &retried {
        out!("  {} {}", text(&each["entity"]), text(&each["occurrence"]));
    }
}

/// `status` in order of importance: what needs an operator first, then time and firing, then
/// sizes; durations and sizes in human units.
/// A cluster node's status: one row per shard, who serves it and at which epoch.
fn print_cluster_status(status: &Value) {
    let served: Vec<&Value> = status["served"].as_array().into_iter().flatten().collect();
    let mut shards = table(&["shard", "node", "epoch", "log head here"]);
    for route in status["routes"].as_array().into_iter().flatten() {
        let head = served
            .iter()
            .find(|s| s["shard"] == route["shard"])
            .map_or_else(String::new, |s| text(&s["head"]));
        let node = match &route["node"] {
            Value::Null => "none (takeover under way)".to_owned(),
            node => text(node),
        };
        shards.add_row([text(&route["shard"]), node, text(&route["epoch"]), head]);
    }
    out!(
        "node {} of a cluster of {} shards, serving {}",
        text(&status["node"]),
        text(&status["shards"]),
        served.len()
    );
    out!("{shards}");
}

fn print_status(status: &Value) {
    if status.get("node").is_some() {
        return print_cluster_status(status);
    }
    let count = |key: &str| match &status[key] {
        Value::Null => "unknown (see storage errors)".to_owned(),
        other => text(other),
    };
    let mut rows: Vec<(&str, String)> = Vec::new();
    let quarantined = status["quarantined"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    rows.push(("quarantined", list_or_none(quarantined.keys().cloned())));
    let storage_errors = status["storage_errors"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    rows.push((
        "storage errors",
        list_or_none(storage_errors.iter().map(text)),
    ));
    rows.push(("errored (tickler failures)", count("errored")));
    rows.push(("errors in the last hour", text(&status["errors_last_hour"])));
    rows.push(("retries waiting", count("retries_in_flight")));
    rows.push(("paused", pause_scopes(&status["paused"])));
    rows.push(("held by a pause", text(&status["parked"])));
    rows.push((
        "now",
        format!(
            "{} ({} clock)",
            text(&status["now"]),
            text(&status["clock"])
        ),
    ));
    rows.push(("next due", text(&status["next_due"])));
    let lag = &status["firing_lag_ms"];
    rows.push((
        "firing lag",
        match (lag["last_ms"].as_u64(), lag["max_ms"].as_u64()) {
            (Some(last), Some(max)) => {
                format!("{} (max {})", terminal::millis(last), terminal::millis(max))
            }
            _ => "none yet".to_owned(),
        },
    ));
    rows.push(("wakes processed", text(&status["fired"])));
    rows.push(("entities", count("entities")));
    rows.push(("pending timers", count("pending_timers")));
    rows.push(("past events", count("past_events")));
    rows.push(("log events", count("events")));
    rows.push((
        "store on disk",
        status["store_bytes"]
            .as_u64()
            .map_or_else(|| count("store_bytes"), terminal::bytes),
    ));
    rows.push(("entity actors", text(&status["actors"])));
    rows.push(("timers in memory", text(&status["timers_in_memory"])));
    rows.push(("wakes in flight", text(&status["wakes_in_flight"])));
    rows.push((
        "uptime",
        status["uptime_ms"]
            .as_u64()
            .map_or_else(String::new, terminal::millis),
    ));
    rows.push((
        "version",
        format!(
            "{} (protocol {})",
            text(&status["version"]),
            text(&status["protocol"])
        ),
    ));
    let mut table = table(&[]);
    for (name, value) in rows {
        table.add_row(vec![name.to_owned(), value]);
    }
    out!("{table}");
}

fn list_or_none(items: impl Iterator<Item = String>) -> String {
    let items: Vec<String> = items.collect();
    if items.is_empty() {
        "none".to_owned()
    } else {
        items.join(", ")
    }
}

/// The scopes a `paused` value holds, in words.
fn pause_scopes(paused: &Value) -> String {
    let mut scopes = Vec::new();
    if paused["all"] == true {
        scopes.push("all delivery".to_owned());
    }
    for channel in paused["channels"].as_array().into_iter().flatten() {
        scopes.push(format!("channel {}", text(channel)));
    }
    for policy in paused["policies"].as_array().into_iter().flatten() {
        scopes.push(format!("policy {}", text(policy)));
    }
    list_or_none(scopes.into_iter())
}

/// One line: who answered, and how many of the students have.
fn print_response(args: &Value, result: &Value) {
    let applied = result["applied"].as_array().cloned().unwrap_or_default();
    let last = applied.last().cloned().unwrap_or_default();
    let attributes = &last["state"]["attributes"];
    let count = |name: &str| attributes[name].as_array().map_or(0, Vec::len);
    let what = if args["saved"] == true {
        "saved a draft"
    } else {
        "answered"
    };
    out!(
        "{}: {} {what}; {} of {} students have answered, {} in progress (version {})",
        text(&result["entity"]),
        text(&result["student"]),
        count("respondents"),
        count("students"),
        count("in_progress"),
        text(&last["version"]),
    );
}

/// A line cut to the output's width, when it has one (`--json` has the whole value).
fn fit(line: &str) -> String {
    match terminal::output_width() {
        Some(width) => shorten(line, usize::from(width)),
        None => line.to_owned(),
    }
}
