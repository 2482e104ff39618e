//! The real daemon and CLI: crash safety under SIGKILL, bad input, exit codes, and offline replay.

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use serde_json::{Value, json};
use support::Daemon;
use tickler::{Span, Timestamp, Zone};
use tickler_admin::protocol::{ClockAdvance, DueCreate, DueMove, EntityArg, History, Toggle};
use tickler_admin::{Client, Request};

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

async fn ok(client: &mut Client, request: Request) -> Value {
    let reply = client.call(request.clone()).await.unwrap();
    assert!(reply.ok, "{request:?} failed: {:?}", reply.error);
    reply.result.unwrap()
}

/// A small deterministic generator for kill delays (seeded, printed on failure).
struct Lcg(u64);
impl Lcg {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % bound
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemon_killed_at_any_moment_loses_no_occurrence_and_never_delivers_a_key_twice() {
    let seed = std::env::var("CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_260_301u64);
    println!("CRASH_SEED={seed}");
    let mut random = Lcg(seed);
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let mut client = daemon.client().await;

    // 150 due dates, an hour apart, so reminders fall due all through the run.
    let entities: Vec<String> = (0..150).map(|i| format!("due/crash-{i}")).collect();
    for (i, entity) in entities.iter().enumerate() {
        let due = at("2026-03-04T10:00:00Z").saturating_add(Span::hours(i as i64));
        ok(
            &mut client,
            Request::DueCreate(DueCreate {
                entity: entity.parse().unwrap(),
                workflow: Some("reviewer-report".into()),
                recipient: format!("reviewer-{i}@example.org"),
                zone: Zone::parse("Europe/Paris").unwrap(),
                due_at: Some(due),
                title: None,
            }),
        )
        .await;
    }
    // Some edits along the way: a toggle, a move, a completion.
    let toggle = Request::Toggle(Toggle {
        entity: entities[3].parse().unwrap(),
        occurrence: "first-late#0".parse().unwrap(),
        enabled: false,
    });
    ok(&mut client, toggle).await;

    let mut interrupted = 0;
    for round in 0..8 {
        // Start a day's advance and kill the daemon somewhere inside it (or just after).
        let socket = daemon.socket.clone();
        let advance = tokio::spawn(async move {
            let mut client = Client::connect(&socket).await?;
            client
                .call(Request::ClockAdvance(ClockAdvance {
                    by: Span::hours(20),
                }))
                .await
        });
        tokio::time::sleep(Duration::from_millis(random.below(12))).await;
        daemon.kill();
        // Interrupted or finished: either is fine; the count is printed for the curious.
        if !matches!(advance.await, Ok(Ok(reply)) if reply.ok) {
            interrupted += 1;
        }
        daemon.restart().await;
        let mut client = daemon.client().await;
        if round == 2 {
            let moved = Request::DueMove(DueMove {
                entity: entities[60].parse().unwrap(),
                due_at: at("2026-03-20T10:00:00Z"),
            });
            ok(&mut client, moved).await;
        }
        if round == 4 {
            let complete = Request::DueComplete(tickler_admin::protocol::Complete {
                entity: entities[100].parse().unwrap(),
                reason: "review-submitted".into(),
            });
            ok(&mut client, complete).await;
        }
    }

    println!("{interrupted} of 8 advances were killed mid-way");
    // Let everything that remains run to its end, without kills.
    let mut client = daemon.client().await;
    ok(
        &mut client,
        Request::ClockAdvance(ClockAdvance { by: Span::days(30) }),
    )
    .await;

    let outbox = daemon.outbox_keys();
    let unique: BTreeSet<&String> = outbox.iter().collect();
    assert_eq!(
        unique.len(),
        outbox.len(),
        "a key was delivered twice (seed {seed}): {outbox:?}"
    );

    let mut sent = BTreeSet::new();
    let mut outcomes = BTreeMap::new();
    for entity in &entities {
        let state = ok(
            &mut client,
            Request::Show(EntityArg {
                entity: entity.parse().unwrap(),
            }),
        )
        .await;
        assert_eq!(
            state["active"],
            json!([]),
            "{entity} still has active reminders (seed {seed})"
        );
        let history = ok(
            &mut client,
            Request::History(History {
                entity: entity.parse().unwrap(),
                outcome: None,
                since: None,
                until: None,
            }),
        )
        .await;
        let past = history["past_events"].as_array().unwrap();
        // Every rule ends on record: three occurrences, plus a re-armed one after a move.
        assert!(past.len() >= 2, "{entity}: {past:?}");
        for event in past {
            let key = event["idempotency_key"].as_str().unwrap().to_owned();
            let outcome = format!(
                "{}{}",
                event["outcome"].as_str().unwrap(),
                event["reason"]
                    .as_str()
                    .map(|r| format!(": {r}"))
                    .unwrap_or_default()
            );
            if outcome == "sent" {
                sent.insert(key.clone());
            }
            outcomes.insert(key, outcome);
        }
    }
    let delivered: BTreeSet<String> = outbox.into_iter().collect();
    assert_eq!(
        delivered, sent,
        "the outbox and the sent past events disagree (seed {seed})"
    );
    // Nothing was lost: no occurrence of these policies can end as a system error here, and the
    // only unsent reasons are the ones the edits call for (or missed, for a kill during a
    // catch-up beyond grace, which the log explains).
    for (key, outcome) in &outcomes {
        assert!(
            matches!(
                outcome.as_str(),
                "sent"
                    | "unsent: deactivated"
                    | "unsent: completed"
                    | "unsent: not-applicable"
                    | "unsent: missed"
            ),
            "{key}: {outcome} (seed {seed})"
        );
    }
    assert_eq!(outcomes["due/crash-3#first-late#0"], "unsent: deactivated");
    assert!(
        outcomes.values().filter(|o| *o == "sent").count() >= 300,
        "{outcomes:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_prints_tables_exits_1_on_errors_and_2_on_usage_and_the_daemon_keeps_serving() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;

    let created = daemon.cli(&[
        "due-date",
        "create",
        "review-42",
        "--recipient",
        "reviewer@example.org",
        "--zone",
        "Europe/Paris",
    ]);
    assert!(
        created.status.success(),
        "{}",
        String::from_utf8_lossy(&created.stderr)
    );
    let stdout = String::from_utf8_lossy(&created.stdout);
    assert!(
        stdout.contains("pre-due#0") && stdout.contains("2026-03-09 11:00 CET"),
        "{stdout}"
    );

    let json = daemon.cli(&["--json", "show", "due/review-42"]);
    assert!(json.status.success());
    let reply: Value = serde_json::from_slice(&json.stdout).unwrap();
    assert_eq!(reply["result"]["active"].as_array().unwrap().len(), 3);

    for (args, named) in [
        (
            vec![
                "due-date",
                "create",
                "review-43",
                "--recipient",
                "r@example.org",
                "--due",
                "2026-02-01T00:00:00Z",
            ],
            "2026-02-01T00:00:00Z",
        ),
        (vec!["show", "due/nope"], "due/nope"),
        (
            vec!["toggle", "due/review-42", "pre-due#9", "--off"],
            "pre-due#9",
        ),
        (
            vec![
                "due-date",
                "create",
                "review-42",
                "--recipient",
                "r@example.org",
            ],
            "already exists",
        ),
        (
            vec![
                "due-date",
                "create",
                "review-44",
                "--recipient",
                "r@example.org",
                "--zone",
                "Mars/Base",
            ],
            "Mars/Base",
        ),
    ] {
        let output = daemon.cli(&args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(named), "{args:?}: {stderr}");
    }
    for args in [
        vec!["clock", "advance", "3days"],
        vec!["due-date", "move", "review-42"],
        vec!["frobnicate"],
    ] {
        let output = daemon.cli(&args);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
    }
    // Nothing was written by the refused commands, and the daemon still answers.
    let history = daemon.cli(&["--json", "history", "due/review-42"]);
    let reply: Value = serde_json::from_slice(&history.stdout).unwrap();
    assert_eq!(reply["result"]["past_events"], json!([]));
    // One due date (beside the sites and courses seeded from config/learning).
    let listed = daemon.cli(&["--json", "list", "--kind", "due"]);
    let reply: Value = serde_json::from_slice(&listed.stdout).unwrap();
    assert_eq!(reply["result"]["entities"].as_array().unwrap().len(), 1);

    let advanced = daemon.cli(&["clock", "advance", "9d"]);
    assert!(String::from_utf8_lossy(&advanced.stdout).contains("now 2026-03-10T09:30:00Z"));
    assert_eq!(daemon.outbox_keys(), ["due/review-42#pre-due#0"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn moving_a_system_clock_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start_with_clock(work.path(), "2026-03-01T09:30:00Z", "system").await;
    let output = daemon.cli(&["clock", "advance", "1d"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("clock_not_manual"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn oversized_and_malformed_requests_get_error_replies_and_the_daemon_keeps_serving() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let mut client = daemon.client().await;
    let reply = client.send_raw(b"{\"v\":1,\"cmd\":\n").await.unwrap();
    assert_eq!(reply.error.unwrap().code, "malformed_request");
    let reply = client.send_raw(b"\xff\xfe\n").await.unwrap();
    assert_eq!(reply.error.unwrap().code, "malformed_request");
    let mut huge = vec![b' '; 2 * 1024 * 1024];
    huge.push(b'\n');
    let reply = client.send_raw(&huge).await.unwrap();
    assert_eq!(reply.error.unwrap().code, "request_too_large");
    // A new connection is served as usual.
    let mut client = daemon.client().await;
    assert!(client.call(Request::Status).await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_shows_an_entity_as_of_an_instant_from_the_data_directory_alone() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let created = daemon.cli(&[
        "due-date",
        "create",
        "review-42",
        "--recipient",
        "r@example.org",
    ]);
    assert!(created.status.success());
    assert!(daemon.cli(&["clock", "advance", "9d"]).status.success());
    assert!(
        daemon
            .cli(&[
                "due-date",
                "move",
                "review-42",
                "--to",
                "2026-03-25T10:00:00Z"
            ])
            .status
            .success()
    );
    // While the daemon runs, the store is its own: replay refuses and says why.
    let refused = daemon.cli(&[
        "replay",
        "--data-dir",
        daemon.data_dir.to_str().unwrap(),
        "due/review-42",
    ]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("in use"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    assert!(daemon.cli(&["shutdown"]).status.success());
    let child = daemon.child.take().unwrap();
    let _ = tokio::task::spawn_blocking(move || {
        let mut child = child;
        child.wait()
    })
    .await;

    let data_dir = daemon.data_dir.to_str().unwrap().to_owned();
    let replay = |as_of: &str| {
        let output = daemon.cli(&[
            "--json",
            "replay",
            "--data-dir",
            &data_dir,
            "due/review-42",
            "--as-of",
            as_of,
        ]);
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice::<Value>(&output.stdout).unwrap()
    };
    // Before the reminder went out: three pending, nothing in history.
    let before = replay("2026-03-05T00:00:00Z");
    assert_eq!(before["entity"]["active"].as_array().unwrap().len(), 3);
    assert_eq!(before["past_events"], json!([]));
    assert_eq!(
        before["entity"]["anchors"]["due_at"],
        "2026-03-11T10:00:00Z"
    );
    // After it, and after the due date moved.
    let after = replay("2026-03-10T09:30:00Z");
    assert_eq!(after["past_events"][0]["occurrence"], "pre-due#0");
    assert_eq!(after["past_events"][0]["outcome"], "sent");
    assert_eq!(after["entity"]["anchors"]["due_at"], "2026-03-25T10:00:00Z");
    let human = daemon.cli(&["replay", "--data-dir", &data_dir, "due/review-42"]);
    assert!(String::from_utf8_lossy(&human.stdout).contains("pre-due#1"));
    let unknown = daemon.cli(&["replay", "--data-dir", &data_dir, "due/nope"]);
    assert_eq!(unknown.status.code(), Some(1));
    daemon.kill();
}
