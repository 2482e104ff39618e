//! Security regressions (issue 6) against the real daemon: what it creates is private whatever
//! umask it starts with, a huge request is refused without being buffered, and neither a
//! recipient's address nor a channel's secret reaches its log. (Other users refused by the
//! peer-credential check: `operator.rs`; webhook destinations in every spelling and redirects:
//! the webhook channel's tests; CR/LF in email headers: the SMTP channel's tests.)

mod support;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use support::Daemon;
use support::http::{Answer, HttpServer};
use tickler_admin::Request;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};

const START: &str = "2026-03-01T09:30:00Z";

fn ok(output: &std::process::Output) -> String {
    assert!(
        output.status.success(),
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// A due date for someone: what makes the daemon write a recipient's address to its store.
fn create_a_due_date(daemon: &Daemon) {
    ok(&daemon.cli(&[
        "due-date",
        "create",
        "review-1",
        "--recipient",
        "someone@example.org",
    ]));
}

/// Every path under `dir` whose mode lets its group or others in, with that mode.
fn shared_paths(dir: &Path) -> Vec<String> {
    let mut shared = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let mode = entry.metadata().unwrap().permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            shared.push(format!("{:o} {}", mode, entry.path().display()));
        }
        if entry.file_type().unwrap().is_dir() {
            shared.extend(shared_paths(&entry.path()));
        }
    }
    shared
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn what_the_daemon_creates_is_private_even_under_umask_000() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::configure(work.path(), START, "manual");
    daemon.umask = Some("000");
    daemon.restart().await;
    create_a_due_date(&daemon);
    // The outbox is created by the first delivery.
    ok(&daemon.cli(&["clock", "advance", "9d"]));
    assert!(daemon.data_dir.join("outbox.jsonl").exists());
    let mode = |path: &Path| std::fs::metadata(path).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&daemon.data_dir), 0o700);
    assert_eq!(mode(daemon.socket.parent().unwrap()), 0o700);
    assert_eq!(mode(&daemon.socket), 0o600);
    assert_eq!(shared_paths(&daemon.data_dir), Vec::<String>::new());
    daemon.kill();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_offline_tools_keep_the_data_private_even_under_umask_000() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::configure(work.path(), START, "manual");
    daemon.restart().await;
    create_a_due_date(&daemon);
    daemon.kill();
    // Opening a store, even only to read it, makes sled write files into it (a new snapshot
    // of its page table): they must be as private as the daemon's own.
    let data_dir = daemon.data_dir.to_str().unwrap().to_owned();
    ok(&daemon.cli_under_umask(Some("000"), &["audit", "--data-dir", &data_dir]));
    ok(&daemon.cli_under_umask(
        Some("000"),
        &["replay", "--data-dir", &data_dir, "due/review-1"],
    ));
    assert_eq!(shared_paths(&daemon.data_dir), Vec::<String>::new());
}

/// Peak resident memory of a process, from /proc (kB).
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_mib_request_is_refused_without_being_buffered() {
    const REQUEST_LEN: usize = 100 * 1024 * 1024;
    const CHUNK_LEN: usize = 1024 * 1024;
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), START).await;
    let pid = daemon.child.as_ref().unwrap().id();
    // What the idle daemon already holds (the allocator's arenas, sled's cache) is not the
    // request's doing; only growth beyond it is.
    assert!(
        daemon
            .client()
            .await
            .call(Request::Status)
            .await
            .unwrap()
            .ok
    );
    let baseline = peak_rss_kib(pid);

    let stream = tokio::net::UnixStream::connect(&daemon.socket)
        .await
        .unwrap();
    let (read, mut write) = stream.into_split();
    // One line of 100 MiB without a newline, sent while the reply is read: the daemon stops
    // reading after its 1 MiB limit and closes, so most of the writes fail, as they should.
    let writer = tokio::spawn(async move {
        let chunk = vec![b'x'; CHUNK_LEN];
        for _ in 0..REQUEST_LEN / CHUNK_LEN {
            if write.write_all(&chunk).await.is_err() {
                return;
            }
        }
    });
    let mut line = String::new();
    BufReader::new(read).read_line(&mut line).await.unwrap();
    writer.await.unwrap();
    let reply: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(reply["error"]["code"], "request_too_large", "{reply}");

    // The daemon never held the request: its peak memory grew by far less than 100 MiB.
    let peak = peak_rss_kib(pid);
    assert!(
        peak - baseline < 32 * 1024,
        "the daemon's peak resident memory grew from {baseline} kB to {peak} kB"
    );
    // And it serves the next client.
    let mut client = daemon.client().await;
    assert!(client.call(Request::Status).await.unwrap().ok);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neither_a_recipient_nor_a_channel_secret_reaches_the_log() {
    const SECRET: &str = "hmac-key-that-must-stay-secret";
    const RECIPIENT: &str = "private.person@example.org";
    let work = tempfile::tempdir().unwrap();
    // The first delivery fails (a 500), so error paths log too.
    let receiver = HttpServer::start(vec![Answer::status(500), Answer::status(200)]).await;
    let config = support::write_config(work.path(), START);
    support::deliver_to_webhook(&config, &receiver.url("/hook"), "TICKLER_TEST_SECRET");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("format = \"human\"", "format = \"json\"");
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::configure(work.path(), START, "manual");
    daemon.env = vec![("TICKLER_TEST_SECRET".into(), SECRET.into())];
    daemon.restart().await;
    ok(&daemon.cli(&[
        "due-date",
        "create",
        "review-1",
        "--recipient",
        RECIPIENT,
        "--due",
        "2026-03-11T10:00:00Z",
    ]));
    ok(&daemon.cli(&["clock", "advance", "9d"]));
    ok(&daemon.cli(&["shutdown"]));
    let requests = receiver.requests();
    assert_eq!(requests.len(), 2, "a failure, then the retry");
    assert!(
        String::from_utf8_lossy(&requests[1].body).contains(RECIPIENT),
        "the receiver gets the address"
    );

    let log = std::fs::read_to_string(work.path().join("daemon.log")).unwrap();
    assert!(
        log.contains("\"outcome\":\"sent\""),
        "the log is the JSON log of this run:\n{log}"
    );
    assert!(
        !log.contains("private.person"),
        "a recipient's address reached the log:\n{log}"
    );
    assert!(
        !log.contains(SECRET),
        "the webhook's secret reached the log:\n{log}"
    );
}
