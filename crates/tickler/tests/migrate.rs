//! `tickler migrate`: a store written by the last release of record format v1 (the fixture
//! `tests/fixtures/store-v1`, made by its `make.sh`) is refused until migrated; once migrated it
//! audits clean, every entity replays to exactly what v1 printed, and the daemon serves it.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;
use support::{BIN, Daemon, ok, result};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../tests/fixtures/store-v1/store-v1.tar.gz"
);
const ENTITIES: [&str; 6] = [
    "due/review-42",
    "due/review-43",
    "due/review-44",
    "contact/karma/c-1",
    "contact/karma/c-2",
    "eval/course-101",
];

/// Unpacks the fixture into `work`: `work/data` (the v1 data directory) and `work/expected`
/// (what the v1 binary printed for it).
fn unpack(work: &Path) {
    let status = Command::new("tar")
        .args(["-xzf", FIXTURE, "-C"])
        .arg(work)
        .status()
        .unwrap();
    assert!(status.success(), "unpacking {FIXTURE}");
}

fn offline(data: &Path, args: &[&str]) -> std::process::Output {
    Command::new(BIN)
        .arg("--data-dir")
        .arg(data)
        .args(args)
        .output()
        .unwrap()
}

fn json_file(path: PathBuf) -> Value {
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn json(stdout: &str) -> Value {
    serde_json::from_str(stdout).unwrap_or_else(|e| panic!("{e}: {stdout}"))
}

/// Runs the README's `tickler migrate` line verbatim in `work` (whose `data` is the fixture).
fn readme_migrate_command(work: &Path) -> std::process::Output {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let line = readme
        .lines()
        .find(|line| line.starts_with("tickler migrate"))
        .expect("the README says how to migrate");
    Command::new("bash")
        .arg("-c")
        .arg(format!("tickler() {{ \"{BIN}\" \"$@\"; }}\n{line}"))
        .current_dir(work)
        .output()
        .unwrap()
}

#[test]
fn a_v1_store_is_refused_naming_the_command_that_upgrades_it() {
    let work = tempfile::tempdir().unwrap();
    unpack(work.path());
    let data = work.path().join("data");
    let refused = offline(&data, &["audit"]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(stderr.contains("record format v1"), "{stderr}");
    assert!(stderr.contains("tickler migrate"), "{stderr}");
}

#[test]
fn a_migrated_v1_store_audits_clean_and_replays_as_v1_did() {
    let work = tempfile::tempdir().unwrap();
    unpack(work.path());
    let (data, expected) = (work.path().join("data"), work.path().join("expected"));
    let said = ok(&readme_migrate_command(work.path()));
    assert!(said.contains("migrated 6 entities (110 events)"), "{said}");
    assert!(data.join("store.v1").is_dir(), "the v1 store is kept");

    let audit = json(&ok(&offline(&data, &["--json", "audit"])));
    assert_eq!(audit, json_file(expected.join("audit.json")));
    assert_eq!(audit["findings"], Value::Array(Vec::new()));
    for entity in ENTITIES {
        let name = entity.replace('/', "_");
        let state = json(&ok(&offline(&data, &["replay", entity, "--json"])));
        assert_eq!(
            state,
            json_file(expected.join(format!("{name}.state.json"))),
            "{entity}"
        );
        let events = json(&ok(&offline(
            &data,
            &["replay", entity, "--events", "--json"],
        )));
        assert_eq!(
            events,
            json_file(expected.join(format!("{name}.events.json"))),
            "{entity}"
        );
    }

    let again = ok(&offline(&data, &["migrate"]));
    assert!(again.contains("nothing to migrate"), "{again}");
}

#[tokio::test]
async fn the_daemon_serves_a_migrated_store_and_fires_what_was_pending() {
    let work = tempfile::tempdir().unwrap();
    unpack(work.path());
    ok(&offline(&work.path().join("data"), &["migrate"]));
    let mut daemon = Daemon::configure(work.path(), "2026-03-01T09:30:00Z", "manual");
    daemon.restart().await;
    let now = result(&daemon.cli(&["--json", "clock", "now"]));
    assert_eq!(
        now["now"], "2026-03-14T09:30:00Z",
        "the clock resumes where v1 left it"
    );
    // due/review-42's second chaser (2026-03-15T10:00Z) was pending when v1 stopped.
    ok(&daemon.cli(&["clock", "advance", "2d"]));
    let history = result(&daemon.cli(&["--json", "history", "due/review-42"]));
    let sent: Vec<&Value> = history["past_events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|event| event["occurrence"] == "second-late#0")
        .collect();
    assert_eq!(sent.len(), 1, "{history}");
    assert_eq!(sent[0]["outcome"], "sent", "{history}");
    let created = daemon.cli(&[
        "due-date",
        "create",
        "review-45",
        "--recipient",
        "new@example.org",
    ]);
    ok(&created);
    ok(&daemon.cli(&["shutdown"]));
    daemon.child.take().unwrap().wait().unwrap();
    let audit = json(&ok(&offline(&daemon.data_dir, &["--json", "audit"])));
    assert_eq!(audit["findings"], Value::Array(Vec::new()), "{audit}");
    assert_eq!(audit["entities"], 7);
}
