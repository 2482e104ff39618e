//! Issue 20, rule 1: the data directory has one owner at a time, offline tools included, and an
//! interrupted compaction is finished or discarded, never mistaken for an empty directory. Real
//! processes, real SIGKILLs: `compact` is stopped at a named point (`TICKLER_FAILPOINT`) so the
//! kill lands exactly where the review's races did.

mod support;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use support::{BIN, Daemon, run_to_exit};

const START: &str = "2026-03-01T09:30:00Z";
const ENTITIES: usize = 30;

fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A stopped daemon's data directory holding `ENTITIES` due dates.
async fn populated(work: &Path) -> Daemon {
    let mut daemon = Daemon::start(work, START).await;
    for n in 0..ENTITIES {
        ok(&daemon.cli(&[
            "due-date",
            "create",
            &format!("d-{n}"),
            "--recipient",
            &format!("d-{n}@example.org"),
            "--due",
            "2026-03-20T10:00:00Z",
        ]));
    }
    ok(&daemon.cli(&["shutdown"]));
    if let Some(mut child) = daemon.child.take() {
        child.wait().unwrap();
    }
    daemon
}

/// `tickler compact` on the data directory, stopped at `failpoint`; returns once it is there.
fn compact_until(data_dir: &Path, failpoint: &str) -> Child {
    let mut child = Command::new(BIN)
        .args(["compact", "--data-dir"])
        .arg(data_dir)
        .env("TICKLER_FAILPOINT", failpoint)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let line = lines
        .next()
        .expect("compact printed something")
        .expect("compact's stderr reads");
    assert!(line.contains(&format!("failpoint {failpoint}")), "{line}");
    child
}

fn entities(daemon: &Daemon) -> u64 {
    let output = ok(&daemon.cli(&["status", "--json"]));
    let reply: serde_json::Value = serde_json::from_str(&output).unwrap();
    reply["result"]["entities"].as_u64().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn while_compact_holds_the_data_directory_serve_and_the_offline_tools_are_refused() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = populated(work.path()).await;
    let data = daemon.data_dir.to_str().unwrap().to_owned();
    // The copy is made and checked; the swap is next (where `serve` used to slip in).
    let mut compact = compact_until(&daemon.data_dir, "compact-before-swap");
    for args in [
        vec!["serve", "--data-dir", &data, "--clock", "manual"],
        vec!["audit", "--data-dir", &data],
        vec!["replay", "due/d-1", "--data-dir", &data],
        vec!["compact", "--data-dir", &data],
    ] {
        let output = run_to_exit(&daemon, &args);
        assert!(!output.status.success(), "{args:?} ran beside compact");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains("is in use by another tickler process"),
            "{args:?}: {stderr}"
        );
    }
    // Killed before its swap: the next daemon discards the copy and serves the store as it was.
    compact.kill().unwrap();
    compact.wait().unwrap();
    assert!(daemon.data_dir.join("store.compacting").exists());
    daemon.restart().await;
    assert_eq!(entities(&daemon), ENTITIES as u64);
    assert!(!daemon.data_dir.join("store.compacting").exists());
    daemon.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_compaction_killed_between_its_renames_is_finished_not_replaced_by_an_empty_store() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = populated(work.path()).await;
    let mut compact = compact_until(&daemon.data_dir, "compact-between-renames");
    compact.kill().unwrap(); // SIGKILL
    compact.wait().unwrap();
    // No `store` now: only the old one moved aside and the checked copy.
    assert!(!daemon.data_dir.join("store").exists());
    assert!(daemon.data_dir.join("store.before-compaction").exists());
    assert!(daemon.data_dir.join("store.compacting").exists());

    daemon.restart().await;
    assert_eq!(
        entities(&daemon),
        ENTITIES as u64,
        "the compacted store, not a new one"
    );
    ok(&daemon.cli(&["shutdown"]));
    if let Some(mut child) = daemon.child.take() {
        child.wait().unwrap();
    }
    for leftover in ["store.before-compaction", "store.compacting"] {
        assert!(!daemon.data_dir.join(leftover).exists(), "{leftover}");
    }
    let audit = Command::new(BIN)
        .args(["audit", "--data-dir"])
        .arg(&daemon.data_dir)
        .output()
        .unwrap();
    ok(&audit);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_to_start_an_empty_store_beside_compaction_leftovers_it_cannot_finish() {
    let work = tempfile::tempdir().unwrap();
    let daemon = populated(work.path()).await;
    // Only a copy, no store and no old one: not a state a compaction leaves (a hand edit).
    std::fs::rename(
        daemon.data_dir.join("store"),
        daemon.data_dir.join("store.compacting"),
    )
    .unwrap();
    let data = daemon.data_dir.to_str().unwrap().to_owned();
    let output = run_to_exit(
        &daemon,
        &["serve", "--data-dir", &data, "--clock", "manual"],
    );
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("holds no store but") && stderr.contains("store.compacting"),
        "{stderr}"
    );
    assert!(
        !daemon.data_dir.join("store").exists(),
        "no empty store was created"
    );
}

/// Issue 20 (M8): a data file cut short, on which sled 0.34 panics as it opens, is reported by
/// every tool and by `serve` as damage naming the file, with exit code 1, not a panic (101).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_truncated_store_is_reported_as_damage_by_every_tool_not_a_panic() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), START).await;
    // A store of several sled segments (about 20 MB), written by the daemon as in production.
    let requests = work.path().join("requests.jsonl");
    let title = "t".repeat(200);
    let lines: Vec<String> = (0..6_000)
        .map(|n| {
            format!(
                "{{\"v\":1,\"id\":{n},\"cmd\":\"due.create\",\"args\":{{\"entity\":\"due/d{n}\",\"recipient\":\"r{n}@example.org\",\"workflow\":\"reviewer-report\",\"title\":\"{title}\"}}}}"
            )
        })
        .collect();
    std::fs::write(&requests, lines.join("\n") + "\n").unwrap();
    ok(&daemon.cli(&["import", requests.to_str().unwrap()]));
    ok(&daemon.cli(&["shutdown"]));
    daemon.child.take().unwrap().wait().unwrap();
    // An offline tool opens it once (sled writes its page table then), as after any restart.
    let data = daemon.data_dir.to_str().unwrap().to_owned();
    assert!(
        run_to_exit(&daemon, &["audit", "--data-dir", &data])
            .status
            .success()
    );
    // Cut at several points: sled panics on some, reports corruption on others, and on
    // others recovers the log up to the cut. None may end in a panic (exit 101); every refusal
    // names the damaged file.
    let mut damaged = None;
    for (n, len) in [
        600_000u64, 800_000, 1_000_000, 2_000_000, 3_000_000, 5_000_000,
    ]
    .into_iter()
    .enumerate()
    {
        let copy = work.path().join(format!("cut-{n}"));
        support::copy_dir(&daemon.data_dir, &copy);
        let db = copy.join("store/db");
        std::fs::OpenOptions::new()
            .write(true)
            .open(&db)
            .unwrap()
            .set_len(len)
            .unwrap();
        let dir = copy.to_str().unwrap().to_owned();
        let output = run_to_exit(&daemon, &["audit", "--data-dir", &dir]);
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert_ne!(output.status.code(), Some(101), "cut at {len}: {stderr}");
        if !output.status.success() {
            assert!(
                stderr.contains("is damaged") && stderr.contains(&db.display().to_string()),
                "cut at {len}: {stderr}"
            );
            damaged.get_or_insert((dir, db));
        }
    }
    let (dir, db) = damaged.expect("at least one cut damages the store beyond what sled recovers");
    for args in [
        vec!["replay", "due/d1", "--data-dir", &dir],
        vec!["compact", "--data-dir", &dir],
        vec!["serve", "--data-dir", &dir, "--clock", "manual"],
    ] {
        let output = run_to_exit(&daemon, &args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(
            stderr.contains("is damaged") && stderr.contains(&db.display().to_string()),
            "{args:?}: {stderr}"
        );
    }
}
