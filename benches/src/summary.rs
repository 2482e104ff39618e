//! The human half of the load generator's output: its JSON line (stdout, for scripts and
//! `benches/peers/compare.mjs`) rendered as a table (stderr, for whoever ran it).

use comfy_table::{Table, presets::UTF8_BORDERS_ONLY};
use serde_json::Value;

/// The load generator's JSON line as a two-column table. A figure the line does not carry (the
/// daemon has no in-process completion lag, the memory store no disk) is left out, not shown
/// as zero.
pub fn load_table(line: &Value) -> String {
    let mut table = Table::new();
    table.load_style(UTF8_BORDERS_ONLY);
    table.set_header(["figure", "value"]);
    let mut row = |name: &str, value: Option<String>| {
        if let Some(value) = value {
            table.add_row([name.to_owned(), value]);
        }
    };
    let text = |path: &str| line.pointer(path).and_then(plain);
    let number = |path: &str| line.pointer(path).and_then(Value::as_f64);
    let rate = |path: &str| number(path).map(|n| format!("{}/s", thousands(n)));
    let ms = |path: &str| number(path).map(|n| format!("{n} ms"));

    row("system", text("/system"));
    row("durability", text("/durability"));
    row(
        "timers, window, callers",
        match (text("/n"), text("/window_ms"), text("/callers")) {
            (Some(n), Some(w), Some(c)) => Some(format!("{n} due over {w} ms, {c} callers")),
            _ => None,
        },
    );
    row("durable schedules", rate("/schedule_per_s"));
    row(
        "schedule call p50 / p99 / max",
        quantiles(line, "/schedule_call_ms", &["p50", "p99", "max"]),
    );
    row("fires with a durable past event", rate("/fire_per_s"));
    row(
        "late p50 / p99 / p99.9 / max",
        quantiles(line, "/late_ms", &["p50", "p99", "p999", "max"]),
    );
    row("early (must be 0)", text("/early"));
    row("lost", text("/lost"));
    row("delivered twice", text("/dup"));
    row(
        "peak RSS",
        number("/peak_rss_kib").map(|kib| mib(kib * 1024.0)),
    );
    row(
        "RSS per pending timer",
        number("/pending_timer_bytes").map(|b| format!("{} B", thousands(b))),
    );
    row(
        "disk per event (record)",
        match (
            number("/disk_bytes_per_event"),
            text("/created_record_bytes"),
        ) {
            (Some(disk), Some(record)) if disk > 0.0 => {
                Some(format!("{} B ({record} B)", thousands(disk)))
            }
            _ => None,
        },
    );
    row(
        "commits per group (groups)",
        match (
            number("/group_commit/commits_per_group"),
            text("/group_commit/groups"),
        ) {
            (Some(per), Some(groups)) => Some(format!("{per:.1} ({groups})")),
            _ => None,
        },
    );
    row(
        "group write p50 / p99 (buckets)",
        quantiles(line, "/group_commit/write_ms", &["p50", "p99"]),
    );
    row(
        "flush p50 / p99 (buckets)",
        quantiles(line, "/group_commit/flush_ms", &["p50", "p99"]),
    );
    row("lead before the first due", ms("/lead_ms"));
    row(
        "other processes' CPU",
        number("/host/foreign_cpu_pct").map(|pct| format!("{pct} %")),
    );
    row(
        "machine stalled on I/O (PSI full)",
        number("/io_full_stall_ms").map(|ms| format!("{ms:.0} ms")),
    );
    table.to_string()
}

/// A scalar as text, without JSON's quotes.
fn plain(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The millisecond figures `keys` of the object at `path`, as `a / b / c ms`; `None` unless the
/// line has them all.
fn quantiles(line: &Value, path: &str, keys: &[&str]) -> Option<String> {
    let object = line.pointer(path)?;
    let parts = keys
        .iter()
        .map(|key| object.get(key).and_then(plain))
        .collect::<Option<Vec<_>>>()?;
    Some(format!("{} ms", parts.join(" / ")))
}

/// A whole number with thousands separators (`12,345`), rounded.
fn thousands(n: f64) -> String {
    let digits = format!("{:.0}", n.abs());
    let mut grouped = String::new();
    for (i, digit) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            grouped.push(',');
        }
        grouped.push(digit);
    }
    if n < 0.0 && digits != "0" {
        grouped.insert(0, '-');
    }
    grouped
}

fn mib(bytes: f64) -> String {
    format!("{:.1} MiB", bytes / (1024.0 * 1024.0))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn a_run() -> Value {
        json!({
            "system": "tickler+sled", "durability": "sled flush before each reply",
            "n": 10000, "window_ms": 2000, "callers": 64,
            "schedule_per_s": 11031.4, "fire_per_s": 5004.2,
            "schedule_call_ms": {"p50": 4.5, "p99": 17.5, "max": 40.1},
            "late_ms": {"p50": 2.4, "p99": 18.8, "p999": 30.2, "max": 37.0},
            "early": 0, "lost": 0, "dup": 0,
            "peak_rss_kib": 204800, "pending_timer_bytes": 2094.4,
            "disk_bytes_per_event": 773.2, "created_record_bytes": 44,
            "lead_ms": 7132, "host": {"foreign_cpu_pct": 0.4}, "io_full_stall_ms": 361.06,
            "group_commit": {"commits": 40000, "groups": 3100, "flushes": 3100,
                "commits_per_group": 12.903,
                "write_ms": {"p50": 0.3, "p99": 2.1},
                "flush_ms": {"p50": 1.1, "p99": 5.0}},
        })
    }

    fn row_of<'a>(table: &'a str, figure: &str) -> &'a str {
        table
            .lines()
            .find(|line| line.contains(figure))
            .unwrap_or_else(|| panic!("no row {figure:?} in\n{table}"))
    }

    #[test]
    fn every_figure_of_the_protocol_has_a_row_with_its_value() {
        let table = load_table(&a_run());
        assert!(row_of(&table, "durable schedules").contains("11,031/s"));
        assert!(row_of(&table, "fires with a durable past event").contains("5,004/s"));
        assert!(
            row_of(&table, "late p50 / p99 / p99.9 / max").contains("2.4 / 18.8 / 30.2 / 37.0 ms")
        );
        assert!(row_of(&table, "schedule call p50").contains("4.5 / 17.5 / 40.1 ms"));
        assert!(row_of(&table, "early (must be 0)").contains('0'));
        assert!(row_of(&table, "peak RSS").contains("200.0 MiB"));
        assert!(row_of(&table, "RSS per pending timer").contains("2,094 B"));
        assert!(row_of(&table, "disk per event").contains("773 B (44 B)"));
        assert!(
            row_of(&table, "timers, window, callers")
                .contains("10000 due over 2000 ms, 64 callers")
        );
        assert!(row_of(&table, "commits per group").contains("12.9 (3100)"));
        assert!(row_of(&table, "group write").contains("0.3 / 2.1 ms"));
        assert!(row_of(&table, "flush p50").contains("1.1 / 5.0 ms"));
        assert!(row_of(&table, "stalled on I/O").contains("361 ms"));
    }

    #[test]
    fn a_figure_the_run_did_not_measure_is_left_out_rather_than_shown_as_zero() {
        let mut memory_run = a_run();
        memory_run["disk_bytes_per_event"] = json!(0.0);
        memory_run
            .as_object_mut()
            .unwrap()
            .remove("schedule_call_ms");
        memory_run["group_commit"] = Value::Null; // a run without group commit figures
        memory_run["io_full_stall_ms"] = Value::Null; // a kernel without pressure information
        let table = load_table(&memory_run);
        assert!(!table.contains("disk per event"), "{table}");
        assert!(!table.contains("schedule call"), "{table}");
        assert!(!table.contains("flush p50"), "{table}");
        assert!(!table.contains("stalled on I/O"), "{table}");
        assert!(table.contains("durable schedules"));
    }

    #[test]
    fn thousands_are_grouped_and_rounded() {
        assert_eq!(thousands(0.4), "0");
        assert_eq!(thousands(999.5), "1,000");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-4_200.0), "-4,200");
    }
}
