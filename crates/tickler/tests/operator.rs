//! The operator surface through the real daemon and CLI: list, history filters, the due dry run,
//! pause and resume, cancel, retry, explain, snapshot, metrics (the protocol's; HTTP's are in
//! `http.rs`), import and export; and the offline tools: audit, compact, simulate.

mod support;

use std::io::{Read, Write};
use std::process::Output;

use serde_json::Value;
use support::Daemon;

fn json(output: &Output) -> Value {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let reply: Value = serde_json::from_slice(&output.stdout).unwrap();
    reply["result"].clone()
}

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn create(daemon: &Daemon, task: &str, due: &str) {
    ok(&daemon.cli(&[
        "due-date",
        "create",
        task,
        "--recipient",
        &format!("{task}@example.org"),
        "--zone",
        "Europe/Paris",
        "--due",
        due,
    ]));
}

/// Two due dates and a contact, on a daemon whose clock is at 2026-03-01T09:30:00Z.
async fn two_reviews_and_a_contact(work: &std::path::Path) -> Daemon {
    let daemon = Daemon::start(work, "2026-03-01T09:30:00Z").await;
    create(&daemon, "review-1", "2026-03-11T10:00:00Z");
    create(&daemon, "review-2", "2026-03-12T10:00:00Z");
    ok(&daemon.cli(&[
        "group",
        "join",
        "karma",
        "c-1",
        "--recipient",
        "tel:+254700000001",
    ]));
    daemon
}

/// review-1's due date moved from 03-11 to 03-20 on 03-05, then time up to 03-23.
fn move_review_1_and_run_to_the_23rd(daemon: &Daemon) {
    ok(&daemon.cli(&["clock", "set", "2026-03-05T08:00:00Z"]));
    ok(&daemon.cli(&[
        "due-date",
        "move",
        "review-1",
        "--to",
        "2026-03-20T10:00:00Z",
    ]));
    ok(&daemon.cli(&["clock", "advance", "18d"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn list_filters_by_policy_kind_and_recipient_and_pages() {
    let work = tempfile::tempdir().unwrap();
    let daemon = two_reviews_and_a_contact(work.path()).await;
    let all = json(&daemon.cli(&["--json", "list"]));
    assert_eq!(all["entities"].as_array().unwrap().len(), 3);
    let due = json(&daemon.cli(&["--json", "list", "--policy", "due-date"]));
    let ids: Vec<&str> = due["entities"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["entity"].as_str().unwrap())
        .collect();
    assert_eq!(ids, ["due/review-1", "due/review-2"]);
    let contacts = json(&daemon.cli(&["--json", "list", "--kind", "contact"]));
    assert_eq!(contacts["entities"][0]["entity"], "contact/karma/c-1");
    assert_eq!(contacts["entities"][0]["active"], 16);
    let mine = json(&daemon.cli(&["--json", "list", "--recipient", "review-2@example.org"]));
    assert_eq!(mine["entities"].as_array().unwrap().len(), 1);
    let page = json(&daemon.cli(&["--json", "list", "--limit", "1"]));
    assert_eq!(page["entities"].as_array().unwrap().len(), 1);
    assert!(!page["next"].is_null());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_due_dry_run_lists_what_falls_due_and_sends_nothing() {
    let work = tempfile::tempdir().unwrap();
    let daemon = two_reviews_and_a_contact(work.path()).await;
    // What falls due on 03-09 and 03-10: the two pre-due reminders; nothing is sent by asking.
    let dry = json(&daemon.cli(&[
        "--json",
        "due",
        "--from",
        "2026-03-09T00:00:00Z",
        "--to",
        "2026-03-11T00:00:00Z",
    ]));
    let entries: Vec<(String, String)> = dry["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["entity"].as_str().unwrap().to_owned(),
                e["occurrence"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    // Two pre-due reminders, and the contact's conversation B on day 9 (03-10).
    assert_eq!(
        entries,
        [
            ("due/review-1".to_owned(), "pre-due#0".to_owned()),
            ("due/review-2".to_owned(), "pre-due#0".to_owned()),
            (
                "contact/karma/c-1".to_owned(),
                "conversation-b#0".to_owned()
            ),
        ]
    );
    assert_eq!(dry["entries"][0]["kind"], "due-soon");
    assert_eq!(dry["entries"][0]["state"], "pending-on");
    assert!(daemon.outbox_keys().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_tells_a_rescheduled_then_sent_occurrence_line_by_line() {
    let work = tempfile::tempdir().unwrap();
    let daemon = two_reviews_and_a_contact(work.path()).await;
    move_review_1_and_run_to_the_23rd(&daemon);
    let explained = json(&daemon.cli(&["--json", "explain", "due/review-1", "first-late#0"]));
    let story = &explained["occurrences"][0];
    let history = json(&daemon.cli(&["--json", "history", "due/review-1"]));
    let receipt = history["past_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["occurrence"] == "first-late#0")
        .map(|p| p["receipt"].as_str().unwrap().to_owned())
        .unwrap();
    assert_eq!(story["status"], "sent");
    let lines: Vec<&str> = story["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect();
    assert_eq!(
        lines,
        [
            "planned for 2026-03-13 11:00 Europe/Paris by rule first-late (2d after due_at 2026-03-11 11:00 Europe/Paris) when the entity was created",
            "moved from 2026-03-13 11:00 Europe/Paris to 2026-03-22 11:00 Europe/Paris because due_at moved from 2026-03-11 11:00 Europe/Paris to 2026-03-20 11:00 Europe/Paris",
            "attempt 1 started at 2026-03-22 11:00 Europe/Paris",
            format!("sent at 2026-03-22 11:00 Europe/Paris through file, attempt 1 ({receipt})")
                .as_str(),
        ]
    );
    let human = ok(&daemon.cli(&["explain", "due/review-1"]));
    assert!(
        human.contains("pre-due#0 (sent)") && human.contains("second-late#0 (pending-on)"),
        "{human}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn history_filters_by_outcome_and_time() {
    let work = tempfile::tempdir().unwrap();
    let daemon = two_reviews_and_a_contact(work.path()).await;
    move_review_1_and_run_to_the_23rd(&daemon);
    let sent = json(&daemon.cli(&["--json", "history", "due/review-1", "--outcome", "sent"]));
    assert_eq!(
        sent["past_events"].as_array().unwrap().len(),
        2,
        "pre-due#0 and first-late#0"
    );
    let before = json(&daemon.cli(&[
        "--json",
        "history",
        "due/review-1",
        "--until",
        "2026-03-20T00:00:00Z",
    ]));
    let occurrences: Vec<&str> = before["past_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["occurrence"].as_str().unwrap())
        .collect();
    assert_eq!(occurrences, ["pre-due#0"]);
    let missed = json(&daemon.cli(&["--json", "history", "due/review-1", "--outcome", "missed"]));
    assert_eq!(missed["past_events"], serde_json::json!([]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_holds_due_occurrences_and_resume_releases_them_in_order() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    create(&daemon, "review-1", "2026-03-11T10:00:00Z");
    create(&daemon, "review-2", "2026-03-11T11:00:00Z");
    let paused = ok(&daemon.cli(&["pause", "--channel", "file"]));
    assert!(paused.contains("channel file"), "{paused}");
    ok(&daemon.cli(&["clock", "advance", "8d2h"])); // both pre-due reminders fell due
    assert!(
        daemon.outbox_keys().is_empty(),
        "nothing is delivered while paused"
    );
    let status = json(&daemon.cli(&["--json", "status"]));
    assert_eq!(status["parked"], 2);
    assert_eq!(status["paused"]["channels"], serde_json::json!(["file"]));
    // A pause outlives a restart.
    daemon.kill();
    daemon.restart().await;
    ok(&daemon.cli(&["clock", "advance", "1h"]));
    assert!(daemon.outbox_keys().is_empty());
    let unknown = daemon.cli(&["pause", "--channel", "pigeon"]);
    assert_eq!(unknown.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("\"pigeon\""));

    ok(&daemon.cli(&["resume", "--channel", "file"]));
    ok(&daemon.cli(&["clock", "advance", "1m"]));
    let mut delivered = daemon.outbox_keys();
    delivered.sort();
    assert_eq!(
        delivered,
        ["due/review-1#pre-due#0", "due/review-2#pre-due#0"]
    );
    let status = json(&daemon.cli(&["--json", "status"]));
    assert_eq!(status["parked"], 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_cancels_one_occurrence_or_a_whole_entity() {
    let work = tempfile::tempdir().unwrap();
    support::write_config(work.path(), "2026-03-02T04:00:00Z");
    let daemon = Daemon::start(work.path(), "2026-03-02T04:00:00Z").await;
    create(&daemon, "review-1", "2026-03-11T10:00:00Z");
    create(&daemon, "review-2", "2026-03-11T10:00:00Z");
    let cancelled = json(&daemon.cli(&["--json", "cancel", "due/review-1", "first-late#0"]));
    assert_eq!(cancelled["past_events"][0]["reason"], "deactivated");
    assert_eq!(
        cancelled["past_events"][0]["detail"],
        "cancelled by an operator"
    );
    let cancelled = json(&daemon.cli(&["--json", "cancel", "due/review-2"]));
    assert_eq!(cancelled["state"]["completed"]["reason"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bulk_retry_re_delivers_what_ended_in_a_system_error_once_the_receiver_is_back() {
    let work = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = support::with_contacts_on_a_webhook(work.path(), port).await;
    ok(&daemon.cli(&[
        "group",
        "join",
        "karma",
        "c-1",
        "--recipient",
        "tel:+254700000001",
        "--zone",
        "Africa/Nairobi",
    ]));
    // The first interaction fails five times and ends as a system error.
    ok(&daemon.cli(&["clock", "advance", "1d"]));
    let status = json(&daemon.cli(&["--json", "status"]));
    assert_eq!(status["errored"], 1, "{status}");
    assert_eq!(status["errors_last_hour"], 1);
    let errored = json(&daemon.cli(&[
        "--json",
        "history",
        "contact/karma/c-1",
        "--outcome",
        "system-error",
    ]));
    assert_eq!(errored["past_events"][0]["attempts"], 5);
    let metrics = ok(&daemon.cli(&["metrics"]));
    assert!(
        metrics.contains(
            "tickler_deliveries_total{channel=\"rapidpro\",outcome=\"failed\",reason=\"transient\"} 5"
        ),
        "{metrics}"
    );

    // The platform comes back; a bulk retry arms a new occurrence for the slot, which goes out.
    let listener = std::net::TcpListener::bind(("127.0.0.1", port)).unwrap();
    let server = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = vec![0u8; 64 * 1024];
        let _ = stream.read(&mut request);
        stream
            .write_all(b"HTTP/1.1 201 Created\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
            .unwrap();
    });
    let retried = ok(&daemon.cli(&["retry", "--all"]));
    assert!(
        retried.contains("retried 1 occurrence(s) of 1 entity"),
        "{retried}"
    );
    ok(&daemon.cli(&["clock", "advance", "1m"]));
    server.join().unwrap();
    let sent = json(&daemon.cli(&[
        "--json",
        "history",
        "contact/karma/c-1",
        "--outcome",
        "sent",
    ]));
    // A new occurrence (the next index of the rule: 0..11 were planned at join) for the slot.
    assert_eq!(sent["past_events"][0]["occurrence"], "conversation-a#12");
    assert_eq!(json(&daemon.cli(&["--json", "status"]))["errored"], 0);
    let nothing = daemon.cli(&["retry", "contact/karma/c-1", "conversation-a#0"]);
    assert_eq!(nothing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&nothing.stderr).contains("not_errored"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_is_written_for_every_entity() {
    let work = tempfile::tempdir().unwrap();
    support::write_config(work.path(), "2026-03-02T04:00:00Z");
    let daemon = Daemon::start(work.path(), "2026-03-02T04:00:00Z").await;
    for name in ["review-1", "review-2", "review-3"] {
        create(&daemon, name, "2026-03-11T10:00:00Z");
    }
    assert!(ok(&daemon.cli(&["snapshot"])).contains("3 snapshot(s) written"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_commands_and_time_every_group_commit_flush() {
    let work = tempfile::tempdir().unwrap();
    support::write_config(work.path(), "2026-03-02T04:00:00Z");
    let daemon = Daemon::start(work.path(), "2026-03-02T04:00:00Z").await;
    create(&daemon, "review-1", "2026-03-11T10:00:00Z");
    let metrics = ok(&daemon.cli(&["metrics"]));
    let sample = |series: &str| -> f64 {
        let prefix = format!("{series} ");
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(&prefix))
            .unwrap_or_else(|| panic!("no {series} in {metrics}"))
            .parse()
            .unwrap()
    };
    assert!(
        metrics.contains("# TYPE tickler_commands_total counter"),
        "{metrics}"
    );
    assert_eq!(sample("tickler_commands_total{origin=\"caller\"}"), 1.0);
    assert!(
        metrics.contains("# TYPE tickler_store_flush_duration_seconds histogram"),
        "{metrics}"
    );
    let flushes = sample("tickler_store_flush_duration_seconds_count");
    assert!(flushes > 0.0, "{metrics}");
    assert_eq!(
        sample("tickler_store_flush_duration_seconds_bucket{le=\"+Inf\"}"),
        flushes
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_writes_every_event_and_import_runs_a_file_of_requests() {
    let work = tempfile::tempdir().unwrap();
    support::write_config(work.path(), "2026-03-02T04:00:00Z");
    let daemon = Daemon::start(work.path(), "2026-03-02T04:00:00Z").await;
    create(&daemon, "review-1", "2026-03-11T10:00:00Z");
    create(&daemon, "review-2", "2026-03-11T10:00:00Z");
    let exported = work.path().join("export.jsonl");
    ok(&daemon.cli(&["export", "--output", exported.to_str().unwrap()]));
    let lines = std::fs::read_to_string(&exported).unwrap();
    let status = json(&daemon.cli(&["--json", "status"]));
    assert_eq!(
        lines.lines().count() as u64,
        status["events"].as_u64().unwrap()
    );
    assert!(lines.lines().next().unwrap().contains("\"Created\""));

    let requests = work.path().join("import.jsonl");
    std::fs::write(
        &requests,
        "{\"cmd\":\"due.create\",\"args\":{\"entity\":\"due/imported-1\",\"recipient\":\"a@example.org\",\"workflow\":\"reviewer-report\"}}\n\
         {\"cmd\":\"due.create\",\"args\":{\"entity\":\"due/imported-2\",\"recipient\":\"b@example.org\",\"workflow\":\"revision\"}}\n\
         {\"cmd\":\"due.create\",\"args\":{\"entity\":\"due/imported-3\",\"recipient\":\"\"}}\n",
    )
    .unwrap();
    let imported = daemon.cli(&["import", requests.to_str().unwrap()]);
    assert_eq!(imported.status.code(), Some(1), "one line fails");
    let stderr = String::from_utf8_lossy(&imported.stderr);
    assert!(
        stderr.contains("line 3") && stderr.contains("invalid recipient"),
        "{stderr}"
    );
    assert!(String::from_utf8_lossy(&imported.stdout).contains("imported 2 line(s), 1 failed"));
    let due = json(&daemon.cli(&["--json", "list", "--policy", "due-date"]));
    assert_eq!(due["entities"].as_array().unwrap().len(), 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn audit_finds_a_corrupt_record_a_gap_and_a_tampered_past_event() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    create(&daemon, "review-1", "2026-03-11T10:00:00Z");
    create(&daemon, "review-2", "2026-03-11T10:00:00Z");
    ok(&daemon.cli(&["clock", "advance", "9d"]));
    ok(&daemon.cli(&["shutdown"]));
    let child = daemon.child.take().unwrap();
    let _ = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await;

    let audit = |data_dir: &std::path::Path| {
        daemon.cli(&["audit", "--data-dir", data_dir.to_str().unwrap()])
    };
    let clean = audit(&daemon.data_dir);
    assert!(
        String::from_utf8_lossy(&clean.stdout).contains("0 finding(s)"),
        "{}",
        String::from_utf8_lossy(&clean.stdout)
    );
    assert!(clean.status.success());

    let copy = |name: &str| {
        let target = work.path().join(name);
        support::copy_dir(&daemon.data_dir, &target);
        target
    };
    let review = tickler::EntityId::parse("due/review-1").unwrap();
    // 1. A flipped bit in a record.
    let corrupt = copy("corrupt");
    {
        let store = tickler::SledStore::open(&corrupt.join("store")).unwrap();
        let mut bytes = tickler::Store::read_events(&store, &review, 1).unwrap()[0]
            .record
            .encode();
        bytes[3] ^= 0x01;
        store.overwrite_event_for_tests(&review, 2, &bytes).unwrap();
        tickler::Store::flush(&store).unwrap();
    }
    // 2. A gap in the sequence numbers.
    let gap = copy("gap");
    {
        let store = tickler::SledStore::open(&gap.join("store")).unwrap();
        store.delete_event_for_tests(&review, 3).unwrap();
        tickler::Store::flush(&store).unwrap();
    }
    // 3. A past event rewritten to say something its log never said.
    let tampered = copy("tampered");
    {
        let store = tickler::SledStore::open(&tampered.join("store")).unwrap();
        let occurrence = tickler::OccurrenceId::parse("pre-due#0").unwrap();
        let record = tickler::Store::past_event(&store, &review, &occurrence)
            .unwrap()
            .unwrap();
        let mut past = tickler::codec::decode_past_event(&record).unwrap();
        past.outcome = tickler::Outcome::Unsent {
            reason: tickler::UnsentReason::OptedOut,
            detail: "never happened".into(),
            attempts: 0,
        };
        store
            .overwrite_past_event_for_tests(
                &review,
                &occurrence,
                &tickler::codec::encode_past_event(&past),
            )
            .unwrap();
        tickler::Store::flush(&store).unwrap();
    }
    for (dir, expected) in [
        (&corrupt, "corrupt"),
        (
            &gap,
            "event 3 of entity due/review-1 is corrupt: missing from the log",
        ),
        (
            &tampered,
            "past event pre-due#0 differs from the one its log event",
        ),
    ] {
        let output = audit(dir);
        assert_eq!(output.status.code(), Some(1), "{}", dir.display());
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            stdout.contains("due/review-1") && stdout.contains(expected),
            "{expected}: {stdout}"
        );
        assert!(
            !stdout.contains("due/review-2:"),
            "the other entity is clean: {stdout}"
        );
    }

    // Compaction keeps every entry: the compacted store audits clean and replays the same.
    let compacted = copy("compacted");
    let output = daemon.cli(&["compact", "--data-dir", compacted.to_str().unwrap()]);
    assert!(ok(&output).contains("compacted"));
    assert!(audit(&compacted).status.success());
    let replay = |dir: &std::path::Path| {
        ok(&daemon.cli(&[
            "--json",
            "replay",
            "--data-dir",
            dir.to_str().unwrap(),
            "due/review-1",
        ]))
    };
    assert_eq!(replay(&compacted), replay(&daemon.data_dir));
}

#[test]
fn a_config_with_a_zero_limit_is_refused_before_the_data_directory_is_touched() {
    let work = tempfile::tempdir().unwrap();
    let config = support::write_config(work.path(), "2026-03-01T09:00:00Z");
    let text = std::fs::read_to_string(&config).unwrap();
    let zeroed = text.replace("wake_in_flight_max = 1000 ", "wake_in_flight_max = 0 ");
    assert_ne!(text, zeroed, "the shipped config sets wake_in_flight_max");
    std::fs::write(&config, zeroed).unwrap();
    let data = work.path().join("data");
    let mut serve = std::process::Command::new(support::BIN)
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .arg("--data-dir")
        .arg(&data)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // A daemon that accepted the config would serve forever: it is stopped, and the test fails,
    // instead of hanging (a bound against hanging, not a timing assertion).
    let give_up = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while serve.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > give_up {
            serve.kill().unwrap();
            panic!("the daemon started with wake_in_flight_max = 0");
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let output = serve.wait_with_output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("wake_in_flight_max") && stderr.contains("must be at least 1, not 0"),
        "{stderr}"
    );
    assert!(!data.exists(), "nothing was written");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulate_prints_what_a_scenario_would_send_without_a_daemon() {
    let work = tempfile::tempdir().unwrap();
    let config = support::write_config(work.path(), "2026-03-01T09:30:00Z");
    let scenario = work.path().join("scenario.jsonl");
    std::fs::write(
        &scenario,
        "{\"at\":\"2026-03-01T09:30:00Z\",\"cmd\":\"due.create\",\"args\":{\"entity\":\"due/sim-1\",\"recipient\":\"a@example.org\",\"workflow\":\"reviewer-report\"}}\n\
         {\"at\":\"2026-03-02T04:00:00Z\",\"cmd\":\"group.join\",\"args\":{\"group\":\"karma\",\"contact\":\"c-1\",\"recipient\":\"tel:+1\",\"zone\":\"Africa/Nairobi\"}}\n\
         {\"at\":\"2026-03-12T00:00:00Z\",\"cmd\":\"due.complete\",\"args\":{\"entity\":\"due/sim-1\",\"reason\":\"review-submitted\"}}\n",
    )
    .unwrap();
    let output = std::process::Command::new(support::BIN)
        .args([
            "--config",
            config.to_str().unwrap(),
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--until",
            "50d",
            "--format",
            "json",
        ])
        .current_dir(work.path())
        .output()
        .unwrap();
    let result: Value = serde_json::from_slice(&ok(&output).into_bytes()).unwrap();
    let count = |kind: &str, outcome: &str| -> u64 {
        result["counts"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|c| c["kind"] == kind && c["outcome"] == outcome)
            .map(|c| c["count"].as_u64().unwrap())
            .sum()
    };
    assert_eq!(count("due-soon", "sent"), 1);
    assert_eq!(count("overdue", "unsent: completed"), 2);
    assert_eq!(count("conversation-a", "sent"), 12);
    assert_eq!(count("conversation-b", "sent"), 4);
    // Nothing was written anywhere: the simulation had no data directory.
    assert!(!work.path().join("data").exists());
    let csv = std::process::Command::new(support::BIN)
        .args([
            "--config",
            config.to_str().unwrap(),
            "simulate",
            "--scenario",
            scenario.to_str().unwrap(),
            "--until",
            "50d",
            "--format",
            "csv",
        ])
        .current_dir(work.path())
        .output()
        .unwrap();
    assert!(ok(&csv).starts_with("day,kind,outcome,count\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_user_is_refused_by_the_peer_credential_check() {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    if uid_line.split_whitespace().nth(2) != Some("0") {
        // Running a client as another user needs root; the check itself is also unit-tested
        // in tickler-admin (server::tests).
        eprintln!("not root: the cross-user test needs root to run a client as another user");
        return;
    }
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    // Open the file permissions wide, so that only the peer-credential check stands in the way.
    use std::os::unix::fs::PermissionsExt;
    for dir in [
        work.path().to_path_buf(),
        daemon.data_dir.clone(),
        daemon.data_dir.join("admin"),
    ] {
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    }
    std::fs::set_permissions(&daemon.socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let output = std::process::Command::new(support::BIN)
        .args(["--socket", daemon.socket.to_str().unwrap(), "status"])
        .current_dir("/")
        .uid(65534)
        .gid(65534)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("uid 65534 may not use this socket") && stderr.contains("forbidden"),
        "{stderr}"
    );
    // The daemon's own user is still served.
    assert!(daemon.cli(&["status"]).status.success());
}

use std::os::unix::process::CommandExt;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn watch_streams_past_events_as_they_are_recorded() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let mut watcher = daemon.client().await;
    let first = watcher.call(tickler_admin::Request::Watch).await.unwrap();
    assert_eq!(first.result.unwrap()["watching"], "past events");
    create(&daemon, "review-1", "2026-03-11T10:00:00Z");
    ok(&daemon.cli(&["clock", "advance", "9d"]));
    let event = watcher.next_reply().await.unwrap();
    let result = event.result.unwrap();
    assert_eq!(result["entity"], "due/review-1");
    assert_eq!(result["past_event"]["occurrence"], "pre-due#0");
    assert_eq!(result["past_event"]["outcome"], "sent");
    assert_eq!(event.id, first.id, "every line answers the watch request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_name_entities_and_occurrences_but_never_recipients() {
    let work = tempfile::tempdir().unwrap();
    let config = support::write_config(work.path(), "2026-03-01T09:30:00Z");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("format = \"human\"", "format = \"json\"")
        // Each occurrence's end is DEBUG (routine); the test reads those lines too.
        .replace(
            "filter = \"info\"",
            "filter = \"info,tickler_engine=debug\"",
        );
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    ok(&daemon.cli(&[
        "due-date",
        "create",
        "review-1",
        "--recipient",
        "secret.person@example.org",
        "--due",
        "2026-03-11T10:00:00Z",
    ]));
    ok(&daemon.cli(&["clock", "advance", "9d"]));
    ok(&daemon.cli(&["shutdown"]));
    let log = std::fs::read_to_string(work.path().join("daemon.log")).unwrap();
    let ended: Vec<Value> = log
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter(|line| line["fields"]["message"] == "occurrence ended")
        .collect();
    assert_eq!(ended.len(), 1, "{log}");
    assert_eq!(ended[0]["fields"]["entity"], "due/review-1");
    assert_eq!(ended[0]["fields"]["occurrence"], "pre-due#0");
    assert!(
        !log.contains("secret.person"),
        "a recipient's address reached the log:\n{log}"
    );
}

/// Issue 19: `tickler retry` re-delivers under the occurrence's original idempotency key. The
/// receiver accepts each request but answers too late (it has the message; the daemon saw a
/// timeout), so the occurrence ends in a system error; the operator's retry reaches it with the
/// same key, and history and explain show a retry of the original, with the reason.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_retry_through_the_cli_keeps_the_occurrences_key() {
    use support::http::{Answer, HttpServer};
    let work = tempfile::tempdir().unwrap();
    let receiver =
        HttpServer::start(vec![Answer::hang(), Answer::hang(), Answer::status(201)]).await;
    let config = support::write_config(work.path(), "2026-03-01T09:00:00Z");
    support::deliver_to_webhook(&config, &receiver.url("/hook"), "TICKLER_TEST_SECRET");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace(
            "secret_env = \"TICKLER_TEST_SECRET\"\n",
            "secret_env = \"TICKLER_TEST_SECRET\"\ntimeout = \"300ms\"\n",
        )
        .replace("max_attempts = 5", "max_attempts = 2");
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::configure(work.path(), "2026-03-01T09:00:00Z", "manual");
    daemon.env = vec![("TICKLER_TEST_SECRET".into(), "secret".into())];
    daemon.restart().await;
    create(&daemon, "review-1", "2026-03-11T10:00:00Z");
    ok(&daemon.cli(&["clock", "advance", "9d"]));
    let history = json(&daemon.cli(&["history", "due/review-1", "--json"]));
    let first = &history["past_events"][0];
    assert_eq!(first["occurrence"], "pre-due#0");
    assert_eq!(first["reason"], "system-error", "{history}");

    ok(&daemon.cli(&[
        "retry",
        "due/review-1",
        "pre-due#0",
        "--reason",
        "receiver fixed",
    ]));
    ok(&daemon.cli(&["clock", "advance", "1m"]));

    let keys: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(
        keys, ["due/review-1#pre-due#0"; 3],
        "two timed-out attempts, then the retry"
    );
    let history = json(&daemon.cli(&["history", "due/review-1", "--json"]));
    let retry = history["past_events"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["occurrence"] == "pre-due#1")
        .expect("the retry ended")
        .clone();
    assert_eq!(retry["outcome"], "sent", "{retry}");
    assert_eq!(retry["retry_of"], "pre-due#0");
    assert_eq!(retry["idempotency_key"], "due/review-1#pre-due#0");
    let table = ok(&daemon.cli(&["history", "due/review-1"]));
    assert!(table.contains("pre-due#1 (retry of pre-due#0)"), "{table}");
    let explanation = json(&daemon.cli(&["explain", "due/review-1", "pre-due#0", "--json"]));
    let lines = explanation["occurrences"][0]["lines"].to_string();
    assert!(
        lines.contains("retried by an operator") && lines.contains("receiver fixed"),
        "{lines}"
    );
}

/// Issue 19: after downtime, `explain --json` says which cutoff made each reminder "missed":
/// the staleness cutoff (its date and offset) or the grace (how late, against what).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn explain_names_the_cutoff_or_grace_that_made_a_reminder_missed() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:00:00Z").await;
    create(&daemon, "late-1", "2026-03-11T10:00:00Z");
    // Down from 03-01 until after the first chaser's grace: one jump, as a restart after
    // downtime processes what is overdue.
    ok(&daemon.cli(&["clock", "set", "2026-03-15T12:00:00Z"]));
    let explanation = json(&daemon.cli(&["explain", "due/late-1", "--json"]));
    let story = |occurrence: &str| {
        explanation["occurrences"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["occurrence"] == occurrence)
            .unwrap_or_else(|| panic!("{occurrence} in {explanation}"))
            .clone()
    };
    let pre_due = story("pre-due#0");
    assert_eq!(pre_due["status"], "unsent: missed", "{pre_due}");
    let stale = &pre_due["cause"]["past-staleness"];
    assert_eq!(stale["anchor"], "due_at", "{pre_due}");
    assert_eq!(stale["processed_at"], "2026-03-15T12:00:00Z");
    let first_late = story("first-late#0");
    assert_eq!(first_late["status"], "unsent: missed", "{first_late}");
    let grace = &first_late["cause"]["beyond-grace"];
    assert_eq!(grace["grace"], "1d", "{first_late}");
    assert_eq!(grace["processed_at"], "2026-03-15T12:00:00Z");
}

/// Issue 20 (L4): a text value with control characters (a terminal escape sequence) is refused
/// by name, and nothing is written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_value_with_control_characters_is_refused_naming_the_character() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    create(&daemon, "x", "2026-03-11T10:00:00Z");
    let before = json(&daemon.cli(&["show", "due/x", "--json"]))["version"].clone();
    let refused = daemon.cli(&[
        "entity",
        "set-attribute",
        "due/x",
        "title",
        "\"\\u001b]0;PWNED\\u0007\\u001b[2J\"",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("U+001B") && stderr.contains("title") && !stderr.contains('\u{1b}'),
        "{stderr:?}"
    );
    assert_eq!(
        json(&daemon.cli(&["show", "due/x", "--json"]))["version"],
        before
    );
}

/// Issue 20 (L1, L2, L10): the end of the accepted range. A reminder that would fall after
/// 9999-12-31 ends with a record saying so; a local time past the end does not panic an entity;
/// a timer at the very last instant fires, so a clock advance to the end returns.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_last_instant_is_handled_without_panics_hangs_or_silent_drops() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    // L10: the late chasers (2 and 4 days after due) cannot be represented.
    create(&daemon, "end", "9999-12-31T20:00:00Z");
    let history = json(&daemon.cli(&["history", "due/end", "--json"]));
    let past = history["past_events"].as_array().unwrap();
    for rule in ["first-late", "second-late"] {
        let ended = past
            .iter()
            .find(|p| p["rule"] == rule)
            .unwrap_or_else(|| panic!("{rule} has no record: {history}"));
        assert_eq!(ended["reason"], "not-applicable", "{ended}");
        assert!(
            ended["detail"]
                .as_str()
                .unwrap()
                .contains("after 9999-12-31T23:59:59.999Z"),
            "{ended}"
        );
    }
    // L1: a local time on 9999-12-31 in a zone behind UTC is past the end: recorded, no panic.
    ok(&daemon.cli(&[
        "group",
        "join",
        "karma",
        "p0",
        "--recipient",
        "tel:+1",
        "--zone",
        "Etc/GMT+12",
        "--registered-at",
        "9999-12-16T12:00:00Z",
    ]));
    // L2: an evaluation whose dates are the last instant; advancing to the end returns.
    ok(&daemon.cli(&[
        "eval",
        "create",
        "max",
        "--title",
        "t",
        "--owner",
        "o@example.org",
        "--students",
        "a@example.org",
        "--start",
        "9999-12-31T23:59:59.999Z",
        "--due",
        "9999-12-31T23:59:59.999Z",
    ]));
    let socket = daemon.socket.to_str().unwrap().to_owned();
    let advanced = support::run_to_exit(
        &daemon,
        &[
            "--socket",
            &socket,
            "clock",
            "advance",
            "9223372036854775807ms",
        ],
    );
    ok(&advanced);
    let status = json(&daemon.cli(&["status", "--json"]));
    assert_eq!(status["now"], "9999-12-31T23:59:59.999Z");
}

/// Issue 20 (I1): `list` with a limit of 0 is refused by name (it used to list one entity).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_list_limit_of_zero_is_refused_by_name() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    create(&daemon, "a", "2026-03-11T10:00:00Z");
    let refused = daemon.cli(&["list", "--limit", "0"]);
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("limit 0") && stderr.contains("invalid_arguments"),
        "{stderr}"
    );
}
