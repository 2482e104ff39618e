//! Human output: tables for people; `--json` prints the daemon's reply untouched for scripts.

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::Value;
use tickler_admin::{Call, Request};

pub fn print(call: &Call, result: &Value) {
    match call {
        Call::Request(request) => print_generic(request, result),
        Call::Family(call) => {
            if tickler_learning::cli::print(&call.cmd, result) {
                return;
            }
            match call.cmd.as_str() {
                "eval.respond" => {
                    for applied in result["applied"].as_array().into_iter().flatten() {
                        print_applied(applied);
                    }
                }
                _ => print_applied(result),
            }
        }
    }
}

fn print_generic(request: &Request, result: &Value) {
    match request {
        Request::Status => print_pairs(result),
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
        Request::Pause(_) | Request::Resume(_) => {
            let paused = &result["paused"];
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
            if scopes.is_empty() {
                out!("nothing is paused");
            } else {
                out!("paused: {}", scopes.join(", "));
            }
        }
        Request::Retry(_) if result.get("retried_entities").is_some() => {
            let retried = result["retried_entities"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            out!(
                "retried the errored occurrences of {} entities",
                retried.len()
            );
        }
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

fn table(header: &[&str]) -> Table {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(header.iter().copied());
    table
}

fn print_pairs(result: &Value) {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    if let Value::Object(map) = result {
        for (key, value) in map {
            let shown = match value {
                Value::Object(inner) if inner.is_empty() => "none".to_owned(),
                Value::Object(_) => serde_json::to_string(value).unwrap_or_default(),
                other => text(other),
            };
            table.add_row(vec![key.clone(), shown]);
        }
    }
    out!("{table}");
}

fn print_applied(result: &Value) {
    let events: Vec<String> = result["events"]
        .as_array()
        .map(|events| events.iter().map(text).collect())
        .unwrap_or_default();
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
            events.join(", ")
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
    out!(
        "{}  policy {} v{}{}  recipient {}  zone {}  version {}",
        text(&entity["entity"]),
        text(&entity["policy"]),
        text(&entity["policy_version"]),
        entity["workflow"]
            .as_str()
            .map(|w| format!(" ({w})"))
            .unwrap_or_default(),
        text(&entity["recipient"]),
        text(&entity["zone"]),
        text(&entity["version"]),
    );
    if let Value::Object(anchors) = &entity["anchors"] {
        for (name, at) in anchors {
            out!("  {name}: {}", text(at));
        }
    }
    if let Some(phase) = entity["phase"].as_str() {
        out!("  phase: {phase}");
    }
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
    let mut table = table(&[
        "OCCURRENCE",
        "KIND",
        "PLANNED (UTC)",
        "LOCAL",
        "STATE",
        "ATTEMPTS",
    ]);
    for reminder in &active {
        table.add_row(vec![
            text(&reminder["occurrence"]),
            text(&reminder["kind"]),
            text(&reminder["planned_at"]),
            text(&reminder["planned_local"]),
            text(&reminder["state"]),
            text(&reminder["attempts"]),
        ]);
    }
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
            text(&row["detail"])
        };
        let occurrence = match row["retry_of"].as_str() {
            Some(original) => format!("{} (retry of {original})", text(&row["occurrence"])),
            None => text(&row["occurrence"]),
        };
        table.add_row(vec![
            occurrence,
            text(&row["kind"]),
            text(&row["planned_at"]),
            text(&row["closed_at"]),
            outcome,
            detail,
        ]);
    }
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
        "NEXT WAKE (UTC)",
        "COMPLETED",
    ]);
    for entity in &entities {
        table.add_row(vec![
            text(&entity["entity"]),
            text(&entity["policy"]),
            text(&entity["recipient"]),
            text(&entity["active"]),
            text(&entity["next_wake"]),
            text(&entity["completed"]),
        ]);
    }
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
            text(&entry["due"]),
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
        out!("  {}", text(&line["text"]));
    }
    for story in result["occurrences"].as_array().into_iter().flatten() {
        out!(
            "{} ({})",
            text(&story["occurrence"]),
            text(&story["status"])
        );
        for line in story["lines"].as_array().into_iter().flatten() {
            out!("  - {}", text(&line["text"]));
        }
    }
}
