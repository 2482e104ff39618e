//! Issue 22: `export` then `restore` into an empty data directory gives the same entities,
//! state, pending reminders and past events; the restored store audits clean; past events are
//! history there, never sent again.

mod support;

use serde_json::Value;
use support::{Daemon, ok, result};

/// Every entity's state (without `phase`, which depends on the clock) and history.
fn everything(daemon: &Daemon) -> Vec<(Value, Value)> {
    let listed = result(&daemon.cli(&["--json", "list", "--limit", "1000"]));
    let mut all = Vec::new();
    for entity in listed["entities"].as_array().unwrap() {
        let id = entity["entity"].as_str().unwrap();
        let mut state = result(&daemon.cli(&["--json", "show", id]));
        state.as_object_mut().unwrap().remove("phase");
        let history = result(&daemon.cli(&["--json", "history", id]));
        all.push((state, history));
    }
    all
}

/// Reviews (one sent to, one completed), a contact cadence under way, an evaluation with an
/// answer: nine days on from 2026-03-01.
fn a_busy_store(daemon: &Daemon) {
    ok(&daemon.cli(&[
        "due-date",
        "create",
        "review-1",
        "--recipient",
        "r1@example.org",
        "--zone",
        "Europe/Paris",
        "--due",
        "2026-03-09T10:00:00Z",
    ]));
    ok(&daemon.cli(&["toggle", "due/review-1", "first-late#0", "--off"]));
    ok(&daemon.cli(&[
        "due-date",
        "create",
        "review-2",
        "--recipient",
        "r2@example.org",
    ]));
    ok(&daemon.cli(&[
        "due-date",
        "complete",
        "review-2",
        "--reason",
        "review-submitted",
    ]));
    ok(&daemon.cli(&[
        "group",
        "join",
        "karma",
        "c-1",
        "--recipient",
        "tel:+254700000001",
    ]));
    ok(&daemon.cli(&[
        "eval",
        "create",
        "course-101",
        "--title",
        "Course 101",
        "--owner",
        "owner@example.org",
        "--students",
        "a@example.org,b@example.org",
        "--start",
        "2026-03-02T08:00:00Z",
        "--due",
        "2026-03-20T17:00:00Z",
        "--view",
        "2026-03-21T08:00:00Z",
        "--reminder",
        "every-2d",
    ]));
    ok(&daemon.cli(&["eval", "respond", "course-101", "b@example.org"]));
    ok(&daemon.cli(&["clock", "advance", "9d"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_restored_into_an_empty_data_directory_is_the_same_store() {
    let first = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(first.path(), "2026-03-01T09:30:00Z").await;
    a_busy_store(&daemon);
    let before = everything(&daemon);
    let status = result(&daemon.cli(&["--json", "status"]));
    let export = first.path().join("export.jsonl");
    ok(&daemon.cli(&["export", "--output", export.to_str().unwrap()]));
    ok(&daemon.cli(&["shutdown"]));

    let second = tempfile::tempdir().unwrap();
    support::write_config(second.path(), "2026-03-10T09:30:00Z");
    let data = second.path().join("data");
    let restore = support::run_tickler(
        second.path(),
        &[
            "restore",
            "--data-dir",
            data.to_str().unwrap(),
            export.to_str().unwrap(),
        ],
    );
    let said = ok(&restore);
    assert!(
        said.contains("past events (history, not sent again)"),
        "{said}"
    );
    ok(&support::run_tickler(
        second.path(),
        &["audit", "--data-dir", data.to_str().unwrap()],
    ));

    let restored = Daemon::start(second.path(), "2026-03-10T09:30:00Z").await;
    assert_eq!(everything(&restored), before);
    let restored_status = result(&restored.cli(&["--json", "status"]));
    for count in ["entities", "events", "past_events", "pending_timers"] {
        assert_eq!(restored_status[count], status[count], "{count}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restore_into_a_data_directory_that_holds_entities_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    ok(&daemon.cli(&[
        "due-date",
        "create",
        "review-1",
        "--recipient",
        "r1@example.org",
    ]));
    let export = work.path().join("export.jsonl");
    ok(&daemon.cli(&["export", "--output", export.to_str().unwrap()]));
    ok(&daemon.cli(&["shutdown"]));
    let data = daemon.data_dir.to_str().unwrap().to_owned();
    let again = support::run_tickler(
        work.path(),
        &["restore", "--data-dir", &data, export.to_str().unwrap()],
    );
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("new, empty data directory"));
}
