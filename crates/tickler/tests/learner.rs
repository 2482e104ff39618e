//! Learner schedules through the real daemon and its CLI: a site and a course set, a CSV of
//! enrolments imported (bad rows reported, the import resumed), 30 days advanced, and the email
//! outbox checked: one email per learner per slot, the expected messages, each key once.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;
use support::Daemon;

const COURSE: &str = "course-v1:Demo+Py101+2026";
const STATS: &str = "course-v1:Demo+Stats+2026";

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn email_outbox(daemon: &Daemon) -> Vec<Value> {
    std::fs::read_to_string(daemon.data_dir.join("email-outbox.jsonl"))
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_imported_cohort_gets_its_nudges_and_highlights_over_thirty_days() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    ok(&daemon.cli(&[
        "site",
        "set",
        "demo",
        "--create-schedules",
        "true",
        "--default-zone",
        "Europe/Paris",
        "--lms-url",
        "https://lms.demo.example",
    ]));
    ok(&daemon.cli(&[
        "course",
        "set",
        COURSE,
        "--site",
        "demo",
        "--name",
        "Python 101",
        "--pacing",
        "self",
        "--start",
        "2026-03-01T00:00:00Z",
        "--end",
        "2026-06-01T00:00:00Z",
    ]));
    let highlights = work.path().join("highlights.json");
    std::fs::write(
        &highlights,
        r#"[{"section": "Basics", "highlights": "Averages\nSpread"},
            {"section": "Tests", "highlights": "t-test"}]"#,
    )
    .unwrap();
    ok(&daemon.cli(&[
        "course",
        "set",
        STATS,
        "--site",
        "demo",
        "--name",
        "Statistics",
        "--start",
        "2026-03-01T00:00:00Z",
        "--highlights",
        highlights.to_str().unwrap(),
    ]));

    // 40 learners in Python 101, the first 10 also in Statistics, and two bad rows.
    let mut csv = String::from("learner,email,name,course,enrolled_at,zone\n");
    for n in 0..40 {
        csv.push_str(&format!(
            "l{n},l{n}@example.org,Learner {n},{COURSE},2026-03-01T10:00:00Z,\n"
        ));
    }
    for n in 0..10 {
        csv.push_str(&format!(
            "l{n},l{n}@example.org,Learner {n},{STATS},2026-03-01T10:00:00Z,\n"
        ));
    }
    csv.push_str(&format!(
        "bad1,bad1@example.org,Bad,{COURSE},2026-03-32T10:00:00Z,\n"
    ));
    csv.push_str(&format!(
        "bad2,bad2@example.org,Bad,{COURSE},,Moon/Tranquility\n"
    ));
    let file = work.path().join("enrolments.csv");
    std::fs::write(&file, csv).unwrap();
    let file = file.to_str().unwrap();
    let report = work.path().join("report.jsonl");
    let import = daemon.cli(&[
        "learner",
        "import",
        "--file",
        file,
        "--report",
        report.to_str().unwrap(),
    ]);
    assert!(!import.status.success(), "bad rows make the import fail");
    let stdout = String::from_utf8_lossy(&import.stdout);
    assert!(
        stdout.contains("52 row(s)") && stdout.contains("50 scheduled"),
        "{stdout}"
    );
    let reported: Vec<Value> = std::fs::read_to_string(&report)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let mut bad: Vec<(u64, String)> = reported
        .iter()
        .map(|r| {
            (
                r["line"].as_u64().unwrap(),
                r["error"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    bad.sort();
    assert_eq!(bad.len(), 2, "{bad:?}");
    assert_eq!(bad[0].0, 52);
    assert!(bad[0].1.contains("2026-03-32T10:00:00Z"), "{}", bad[0].1);
    assert_eq!(bad[1].0, 53);
    assert!(bad[1].1.contains("Moon/Tranquility"), "{}", bad[1].1);

    // Resuming sends nothing again: every row is behind the checkpoint.
    let resumed = ok(&daemon.cli(&["learner", "import", "--file", file, "--resume"]));
    assert!(resumed.contains("resumed after line 53"), "{resumed}");
    // Importing again from the start is harmless too: enrolments are idempotent. Its report
    // (default path) replaces a symbolic link planted there instead of writing through it
    // (issue 20, L9).
    let victim = work.path().join("victim.conf");
    std::fs::write(&victim, "untouched").unwrap();
    let default_report = format!("{file}.report.jsonl");
    let _ = std::fs::remove_file(&default_report); // the resumed run's
    std::os::unix::fs::symlink(&victim, &default_report).unwrap();
    let again = daemon.cli(&["learner", "import", "--file", file]);
    assert!(String::from_utf8_lossy(&again.stdout).contains("50 exists"));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    let report_meta = std::fs::symlink_metadata(&default_report).unwrap();
    assert!(report_meta.is_file());
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&report_meta.permissions()) & 0o777,
        0o600
    );

    let shown = ok(&daemon.cli(&["learner", "show", "--course", COURSE, "--learner", "l3"]));
    assert!(
        shown.contains("nudge-3d#0") && !shown.contains("upgrade-reminder"),
        "{shown}"
    );

    ok(&daemon.cli(&["clock", "advance", "30d"]));
    let mails = email_outbox(&daemon);
    let keys: BTreeSet<&str> = mails
        .iter()
        .map(|m| m["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(keys.len(), mails.len(), "every email key once");
    let mut per_learner: BTreeMap<&str, Vec<&str>> = BTreeMap::new();
    for mail in &mails {
        per_learner
            .entry(mail["recipient"].as_str().unwrap())
            .or_default()
            .push(mail["body"].as_str().unwrap());
    }
    assert_eq!(per_learner.len(), 40);
    // Python 101 only: three nudges (days 3, 10, 19), three emails.
    assert_eq!(per_learner["l20@example.org"].len(), 3);
    // Both courses: the nudges and the two weekly highlights fall on different days (3, 7,
    // 10, 14, 19): five emails.
    let both = &per_learner["l5@example.org"];
    assert_eq!(both.len(), 5, "{both:#?}");
    assert!(
        both.iter()
            .any(|body| body.contains("- Averages") && body.contains("- Spread"))
    );
    assert!(both.iter().any(|body| body.contains("- t-test")));
    assert!(!per_learner.contains_key("bad1@example.org"));

    // The audit of one schedule: each message sent once, with its own key.
    let history = ok(&daemon.cli(&[
        "--json",
        "learner",
        "history",
        "--course",
        COURSE,
        "--learner",
        "l5",
    ]));
    let history: Value = serde_json::from_str(&history).unwrap();
    let sent: Vec<&str> = history["result"]["past_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["idempotency_key"].as_str().unwrap())
        .collect();
    assert_eq!(
        sent,
        [
            "schedule/course-v1:Demo+Py101+2026/l5#nudge-3d#0",
            "schedule/course-v1:Demo+Py101+2026/l5#nudge-10d#0",
            "schedule/course-v1:Demo+Py101+2026/l5#nudge-19d#0",
        ]
    );

    // Unknown course or site: a clear error and a non-zero exit.
    let err = daemon.cli(&[
        "course",
        "set",
        "course-v1:X+Y+1",
        "--site",
        "nowhere",
        "--start",
        "2026-03-01T00:00:00Z",
    ]);
    assert!(!err.status.success());
    assert!(String::from_utf8_lossy(&err.stderr).contains("unknown site \"nowhere\""));
}
