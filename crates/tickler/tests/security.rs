//! Security regressions (issue 6) against the real daemon: what it creates is private whatever
//! umask it starts with, a huge request is refused without being buffered, and neither a
//! recipient's address nor a channel's secret reaches its log. (Other users refused by the
//! peer-credential check: `operator.rs`; webhook destinations in every spelling and redirects:
//! the webhook channel's tests; CR/LF in email headers: the SMTP channel's tests.)

mod support;

use std::io::{Read, Write};
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
        .replace("format = \"human\"", "format = \"json\"")
        // Each occurrence's end is DEBUG; the test reads those lines too.
        .replace(
            "filter = \"info\"",
            "filter = \"info,tickler_engine=debug\"",
        );
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

/// Runs `tickler serve` with these arguments, expecting it to refuse and exit by itself.
fn serve_refused(daemon: &Daemon, args: &[&str]) -> String {
    let output = support::run_to_exit(daemon, args);
    assert!(!output.status.success(), "serve started with {args:?}");
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn mode(path: &Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

/// Issue 20 (H2): the admin socket's directory is never chmod-ed when it exists. A shared
/// directory others can write (like /tmp) is refused, by name, and left as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_in_a_directory_others_can_write_is_refused_and_the_directory_left_alone() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::configure(work.path(), START, "manual");
    let shared = work.path().join("shared");
    std::fs::create_dir(&shared).unwrap();
    std::fs::set_permissions(&shared, std::fs::Permissions::from_mode(0o1777)).unwrap();
    let socket = shared.join("tickler.sock");
    let stderr = serve_refused(
        &daemon,
        &[
            "--socket",
            socket.to_str().unwrap(),
            "serve",
            "--clock",
            "manual",
        ],
    );
    assert!(
        stderr.contains("writable by its group or by others (mode 1777)")
            && stderr.contains("shared"),
        "{stderr}"
    );
    assert_eq!(
        mode(&shared),
        0o1777,
        "the sticky shared directory is as it was"
    );
}

/// Issue 20 (H2): a relative socket path puts the socket in the working directory, whose mode
/// stays what it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_in_the_working_directory_leaves_its_mode_alone() {
    let work = tempfile::tempdir().unwrap();
    std::fs::set_permissions(work.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut daemon = Daemon::configure(work.path(), START, "manual");
    daemon.socket = work.path().join("tickler.sock");
    // The daemon's socket from the config, moved to the working directory by a relative path.
    let config = std::fs::read_to_string(&daemon.config).unwrap();
    let config = format!("socket = \"tickler.sock\"\n{config}");
    std::fs::write(&daemon.config, config).unwrap();
    daemon.restart().await;
    assert_eq!(mode(work.path()), 0o755);
    assert_eq!(mode(&daemon.socket), 0o600);
    daemon.kill();
}

/// Issue 20 (M4): an `admin/` directory that is a link to a directory others can write is
/// refused: its target keeps its mode and gets no socket another user could replace.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_admin_directory_that_is_a_symlink_is_refused() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::configure(work.path(), START, "manual");
    let elsewhere = work.path().join("elsewhere");
    std::fs::create_dir(&elsewhere).unwrap();
    std::fs::set_permissions(&elsewhere, std::fs::Permissions::from_mode(0o1777)).unwrap();
    std::fs::create_dir_all(&daemon.data_dir).unwrap();
    std::fs::set_permissions(&daemon.data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::symlink(&elsewhere, daemon.data_dir.join("admin")).unwrap();
    let data = daemon.data_dir.to_str().unwrap().to_owned();
    let stderr = serve_refused(
        &daemon,
        &["serve", "--data-dir", &data, "--clock", "manual"],
    );
    assert!(
        stderr.contains("symbolic link") && stderr.contains("admin"),
        "{stderr}"
    );
    assert_eq!(mode(&elsewhere), 0o1777);
    assert!(
        std::fs::read_dir(&elsewhere).unwrap().next().is_none(),
        "no socket in it"
    );
}

/// Issue 20 (M4): a data directory another user created (and so controls) is refused, naming
/// its owner; so is one others can write. Needs root to hand a directory to another uid.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_data_directory_another_user_owns_or_can_write_is_refused_naming_the_owner() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::configure(work.path(), START, "manual");
    std::fs::create_dir_all(&daemon.data_dir).unwrap();
    let data = daemon.data_dir.to_str().unwrap().to_owned();
    std::fs::set_permissions(&daemon.data_dir, std::fs::Permissions::from_mode(0o777)).unwrap();
    let stderr = serve_refused(
        &daemon,
        &["serve", "--data-dir", &data, "--clock", "manual"],
    );
    assert!(
        stderr.contains("mode 0777") && stderr.contains(&data),
        "{stderr}"
    );
    assert!(!daemon.data_dir.join("store").exists(), "nothing written");

    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("NOT RUN: handing the directory to another uid needs root");
        return;
    }
    std::fs::set_permissions(&daemon.data_dir, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::os::unix::fs::chown(&daemon.data_dir, Some(65534), Some(65534)).unwrap();
    let stderr = serve_refused(
        &daemon,
        &["serve", "--data-dir", &data, "--clock", "manual"],
    );
    assert!(stderr.contains("owned by uid 65534"), "{stderr}");
    assert!(!daemon.data_dir.join("store").exists(), "nothing written");

    // Another user's socket where ours goes: never connected to or removed (it could answer
    // in the daemon's place).
    std::os::unix::fs::chown(&daemon.data_dir, Some(0), Some(0)).unwrap();
    let admin = daemon.data_dir.join("admin");
    std::fs::create_dir(&admin).unwrap();
    std::fs::set_permissions(&admin, std::fs::Permissions::from_mode(0o700)).unwrap();
    let theirs = std::os::unix::net::UnixListener::bind(admin.join("tickler.sock")).unwrap();
    std::os::unix::fs::chown(admin.join("tickler.sock"), Some(65534), Some(65534)).unwrap();
    let stderr = serve_refused(
        &daemon,
        &["serve", "--data-dir", &data, "--clock", "manual"],
    );
    assert!(
        stderr.contains("admin socket") && stderr.contains("owned by uid 65534"),
        "{stderr}"
    );
    assert!(admin.join("tickler.sock").exists(), "left in place");
    drop(theirs);
}

/// Open descriptors of a process.
fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

/// Issue 20 (M3): idle connections to the metrics endpoint, which any local user can open,
/// cannot take the daemon's descriptors: beyond its cap they are closed at once, and the daemon
/// keeps serving its admin socket. (Configured under the key's former name, `metrics_listen`,
/// which stays accepted.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_metrics_connections_cannot_take_the_daemons_descriptors() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let work = tempfile::tempdir().unwrap();
    let config = support::write_config(work.path(), START);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "data_dir = \"data\"",
        &format!("data_dir = \"data\"\nmetrics_listen = \"127.0.0.1:{port}\""),
    );
    std::fs::write(&config, text).unwrap();
    let mut daemon = Daemon::start(work.path(), START).await;
    let pid = daemon.child.as_ref().unwrap().id();
    let before = open_fds(pid);
    let idle: Vec<_> = (0..300)
        .filter_map(|_| std::net::TcpStream::connect(("127.0.0.1", port)).ok())
        .collect();
    // A probe behind them in the accept queue: once it is answered or closed, the daemon has
    // taken every idle connection before it. Each is either held (up to the cap) or closed.
    let mut probe = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    let _ = probe.write_all(b"GET /metrics HTTP/1.1\r\nconnection: close\r\n\r\n");
    let _ = probe.read_to_string(&mut String::new());
    let mut client = daemon.client().await;
    assert!(client.call(Request::Status).await.unwrap().ok);
    let during = open_fds(pid);
    assert!(
        during <= before + tickler_admin::http::CONNECTIONS_MAX + 4,
        "{} idle connections held {} descriptors of the daemon ({before} before)",
        idle.len(),
        during
    );
    drop(idle);
    daemon.kill();
}

/// Issue 20 (L8): admin connections are capped too; one beyond the cap gets a clear
/// `too_many_connections` reply, and the daemon serves again once they close.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_connections_beyond_the_cap_are_refused_with_a_reply() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), START).await;
    let cap = tickler_admin::server::CONNECTIONS_MAX
        + tickler_admin::server::CONNECTIONS_RESERVED_FOR_OPERATORS;
    let mut idle = Vec::new();
    for _ in 0..cap {
        let stream = tokio::net::UnixStream::connect(&daemon.socket)
            .await
            .unwrap();
        idle.push(stream);
    }
    // Wait until the daemon has taken them all (each idle one holds a slot).
    let mut refused = String::new();
    for _ in 0..500 {
        let mut extra = tokio::net::UnixStream::connect(&daemon.socket)
            .await
            .unwrap();
        // A refused connection gets its reply at once and is closed: the request may not even
        // be taken (a broken pipe), but the reply is there to read.
        let _ = extra
            .write_all(b"{\"v\":1,\"id\":1,\"cmd\":\"status\"}\n")
            .await;
        let mut line = String::new();
        let _ = BufReader::new(&mut extra).read_line(&mut line).await;
        if line.contains("too_many_connections") {
            refused = line;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(refused.contains("\"ok\":false"), "{refused}");
    drop(idle);
    let mut served = false;
    for _ in 0..500 {
        if let Ok(reply) = daemon.client().await.call(Request::Status).await
            && reply.ok
        {
            served = true;
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    assert!(served, "the daemon serves again once the connections close");
    daemon.kill();
}

/// Issue 20 (L9): an export is written to a new private file and renamed into place: an
/// existing file's loose mode is not kept, and a symbolic link at the path is replaced, its
/// target untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_export_never_keeps_a_loose_mode_or_writes_through_a_link() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), START).await;
    create_a_due_date(&daemon);
    let loose = work.path().join("loose.jsonl");
    std::fs::write(&loose, "old").unwrap();
    std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o666)).unwrap();
    ok(&daemon.cli(&["export", "--output", loose.to_str().unwrap()]));
    assert_eq!(mode(&loose), 0o600);
    assert!(
        std::fs::read_to_string(&loose)
            .unwrap()
            .contains("someone@example.org")
    );

    let victim = work.path().join("victim.conf");
    std::fs::write(&victim, "untouched").unwrap();
    let link = work.path().join("link.jsonl");
    std::os::unix::fs::symlink(&victim, &link).unwrap();
    ok(&daemon.cli(&["export", "--output", link.to_str().unwrap()]));
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "untouched");
    assert!(std::fs::symlink_metadata(&link).unwrap().is_file());
    assert_eq!(mode(&link), 0o600);
}
