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
            // 03-03 to all three, 03-04 to 03-08 (the day before due) to the two who have not
            // answered.
            ("reminder-every-1d", 3 + 5 * 2),
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

/// Sends one protocol request line over the admin socket; the reply must be ok.
async fn request(client: &mut tickler_admin::Client, line: &str) -> Value {
    let reply = client
        .send_raw(format!("{line}\n").as_bytes())
        .await
        .unwrap();
    let reply = serde_json::to_value(&reply).unwrap();
    assert_eq!(reply["ok"], true, "{line} -> {reply}");
    reply
}

fn reminder_days(daemon: &Daemon) -> Vec<String> {
    let mut days: Vec<String> = email_outbox(daemon)
        .iter()
        .filter(|m| m["rule"] == "reminder-every-2d")
        .map(|m| m["due_at"].as_str().unwrap()[..10].to_owned())
        .collect();
    days.dedup();
    days
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_the_socket_sakais_last_reminder_goes_out_and_an_extension_continues_the_series() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:00:00Z").await;
    let mut client = daemon.client().await;
    // Start 03-02 08:00 (day 0), due 03-09 08:00 (day 7), every 2 days: days 2, 4 and 6.
    request(
        &mut client,
        r#"{"v":1,"id":1,"cmd":"eval.create","args":{"entity":"eval/sakai","title":"Sakai","owner":"owner@example.org","students":["a@example.org"],"dates":{"start":"2026-03-02T08:00:00Z","due":"2026-03-09T08:00:00Z","view":"2026-03-20T08:00:00Z"},"reminder":"every-2d"}}"#,
    )
    .await;
    // Day 2 12:00: the first reminder is out.
    request(
        &mut client,
        r#"{"v":1,"id":2,"cmd":"clock.advance","args":{"by":"75h"}}"#,
    )
    .await;
    assert_eq!(reminder_days(&daemon), ["2026-03-04"]);
    // The editor extends the due date to day 10 (03-12 08:00): the series stays aligned to the
    // start and now runs through day 8 (day 10 is the due date itself).
    request(
        &mut client,
        r#"{"v":1,"id":3,"cmd":"eval.move-dates","args":{"entity":"eval/sakai","dates":{"due":"2026-03-12T08:00:00Z"}}}"#,
    )
    .await;
    request(
        &mut client,
        r#"{"v":1,"id":4,"cmd":"clock.advance","args":{"by":"10d"}}"#,
    )
    .await;
    assert_eq!(
        reminder_days(&daemon),
        ["2026-03-04", "2026-03-06", "2026-03-08", "2026-03-10"]
    );
    let closed = email_outbox(&daemon)
        .into_iter()
        .filter(|m| m["rule"] == "closed-at-due")
        .map(|m| m["due_at"].as_str().unwrap().to_owned())
        .collect::<Vec<_>>();
    assert_eq!(closed, ["2026-03-12T08:00:00Z"]);
}

/// Issue 19: `explain --json` names why each reminder ended unsent, as fields: the due date that
/// moved (to what, when) for one no longer before it, the condition and the value read for one
/// whose audience emptied.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_moved_due_date_and_the_false_condition_as_fields() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:00:00Z").await;
    let mut client = daemon.client().await;
    request(
        &mut client,
        r#"{"v":1,"id":1,"cmd":"eval.create","args":{"entity":"eval/why","title":"Why","owner":"owner@example.org","students":["a@example.org"],"dates":{"start":"2026-03-02T08:00:00Z","due":"2026-03-09T08:00:00Z","view":"2026-03-20T08:00:00Z"},"reminder":"every-2d"}}"#,
    )
    .await;
    ok(&daemon.cli(&["clock", "advance", "75h"])); // 03-04 12:00, the first reminder is out
    // The due date moves to 03-07 00:00: the 03-08 reminder is no longer before it.
    ok(&daemon.cli(&["eval", "move-dates", "why", "--due", "2026-03-07T00:00:00Z"]));
    let explained = |occurrence: &str| {
        let output = daemon.cli(&["explain", "eval/why", occurrence, "--json"]);
        let reply: Value = serde_json::from_slice(&ok(&output).into_bytes()).unwrap();
        reply["result"]["occurrences"][0].clone()
    };
    let dropped = explained("reminder-every-2d#2");
    assert_eq!(dropped["status"], "unsent: not-applicable", "{dropped}");
    let cause = &dropped["cause"]["anchor"];
    assert_eq!(cause["anchor"], "due", "{dropped}");
    assert_eq!(cause["value"], "2026-03-07T00:00:00Z");
    assert_eq!(cause["changed_at"], "2026-03-04T12:00:00Z");
    assert_eq!(cause["bound"], "until-exclusive");
    assert_eq!(cause["occurrence_at"], "2026-03-08T08:00:00Z");
    assert!(
        dropped["lines"].to_string().contains(
            "due moved to 2026-03-07T00:00:00Z on 2026-03-04T12:00:00Z, and the series runs strictly before due"
        ),
        "{dropped}"
    );

    // The only student answers: the 03-06 reminder has no one left to remind.
    ok(&daemon.cli(&["eval", "respond", "why", "a@example.org"]));
    let emptied = explained("reminder-every-2d#1");
    assert_eq!(emptied["status"], "unsent: condition-false", "{emptied}");
    let cause = &emptied["cause"]["condition"];
    assert_eq!(cause["condition"], "audience-not-empty", "{emptied}");
    assert_eq!(cause["subject"], "students except respondents, in_progress");
    assert_eq!(cause["value"], "0 address(es)");
}
