//! Course evaluations through the real daemon and its CLI: created with `tickler eval create`,
//! answered, the daemon killed (-9) and restarted mid-course, and the email outbox checked for
//! exactly the notices due, each key once.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::Daemon;

fn email_outbox(daemon: &Daemon) -> Vec<Value> {
    std::fs::read_to_string(daemon.data_dir.join("email-outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_evaluation_runs_through_the_cli_and_survives_a_kill_without_duplicates() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let created = daemon.cli(&[
        "eval",
        "create",
        "course-101",
        "--title",
        "Course 101",
        "--owner",
        "owner@example.org",
        "--students",
        "a@example.org,b@example.org,c@example.org",
        "--instructors",
        "prof@example.org",
        "--start",
        "2026-03-02T10:00:00Z",
        "--due",
        "2026-03-09T10:00:00Z",
        "--view",
        "2026-03-10T10:00:00Z",
        "--reminder",
        "every-1d",
        "--zone",
        "Europe/Paris",
    ]);
    let text = ok(&created);
    assert!(text.contains("phase: in-queue"), "{text}");

    // Bad input: a clear error naming the value, a non-zero exit, nothing written.
    let refused = daemon.cli(&[
        "eval",
        "create",
        "course-102",
        "--title",
        "Course 102",
        "--owner",
        "owner@example.org",
        "--start",
        "2026-03-02T10:00:00Z",
        "--due",
        "2026-03-09T10:00:00Z",
        "--reminder",
        "every-9d",
    ]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("\"every-9d\""), "{stderr}");
    let missing = daemon.cli(&["show", "eval/course-102"]);
    assert!(!missing.status.success(), "nothing half-written");

    ok(&daemon.cli(&["clock", "advance", "49h"])); // 03-03 10:30, after the first reminder
    ok(&daemon.cli(&["eval", "respond", "course-101", "b@example.org"]));
    ok(&daemon.cli(&["clock", "advance", "1d"])); // 03-04 10:30
    let show = ok(&daemon.cli(&["show", "eval/course-101"]));
    assert!(show.contains("phase: active"), "{show}");

    // Killed without warning, restarted: nothing lost, nothing sent twice.
    daemon.kill();
    daemon.restart().await;
    ok(&daemon.cli(&["clock", "advance", "8d"])); // 03-12 10:30

    let messages = email_outbox(&daemon);
    let mut keys: Vec<&str> = messages
        .iter()
        .map(|m| m["idempotency_key"].as_str().unwrap())
        .collect();
    keys.sort();
    let total = keys.len();
    keys.dedup();
    assert_eq!(keys.len(), total, "a key delivered twice");
    let mut per_rule: BTreeMap<&str, usize> = BTreeMap::new();
    for message in &messages {
        *per_rule
            .entry(message["rule"].as_str().unwrap())
            .or_default() += 1;
    }
    assert_eq!(
        per_rule,
        BTreeMap::from([
            ("created", 1),
            ("available", 3),
            // 03-03 to all three, 03-04 to 03-07 to the two who have not answered.
            ("reminder-every-1d", 3 + 4 * 2),
            ("closed-at-due", 1),
            ("viewable-instructors", 1),
        ])
    );
    assert!(
        messages
            .iter()
            .filter(|m| m["rule"] == "reminder-every-1d" && m["fired_at"] != "2026-03-03T10:00:00Z")
            .all(|m| m["recipient"] != "b@example.org"),
        "b answered on 03-03"
    );
    let show = ok(&daemon.cli(&["show", "eval/course-101"]));
    assert!(show.contains("phase: viewable"), "{show}");
}
