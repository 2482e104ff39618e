//! Issue 20: `kill -9` torture of the offline tools. Each round a supervisor (as systemd's
//! `Restart=always` would) keeps trying to start `serve` while `compact`, `audit` or `replay`
//! runs on the same data directory, and the tool is killed at a random moment; so is `export`
//! (through the daemon) into a file. After every round: the daemon starts on the store, every
//! acknowledged entity is there, `tickler audit` is clean, and an export file is either absent
//! or whole. CI runs a few rounds; `tests/offline_torture.sh ROUNDS [SEED]` runs more and prints
//! the figures.

mod support;

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use support::{BIN, Daemon};

const START: &str = "2026-03-01T09:30:00Z";
/// A hang guard for the supervisor's retries (not a timing assertion).
const SERVE_WAIT_MAX: Duration = Duration::from_secs(60);

/// xorshift64*: a seeded stream of kill delays, the same for the same seed.
struct Draws(u64);

impl Draws {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d) % n
    }
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

fn create_batch(daemon: &Daemon, from: usize, count: usize) {
    let requests = daemon.work.join("batch.jsonl");
    let lines: Vec<String> = (from..from + count)
        .map(|n| {
            format!(
                "{{\"v\":1,\"cmd\":\"due.create\",\"args\":{{\"entity\":\"due/t{n}\",\"recipient\":\"t{n}@example.org\",\"workflow\":\"reviewer-report\"}}}}"
            )
        })
        .collect();
    std::fs::write(&requests, lines.join("\n") + "\n").unwrap();
    ok(&daemon.cli(&["import", requests.to_str().unwrap()]));
}

fn entities(daemon: &Daemon) -> u64 {
    let reply: serde_json::Value =
        serde_json::from_str(&ok(&daemon.cli(&["status", "--json"]))).unwrap();
    reply["result"]["entities"].as_u64().unwrap()
}

fn stop(daemon: &mut Daemon) {
    if let Some(mut child) = daemon.child.take() {
        let _ = daemon.cli(&["shutdown"]);
        child.wait().unwrap();
    }
}

/// The supervisor: starts `serve` again and again until one stays up and answers. A start
/// refused because another process holds the data directory is expected while a tool runs.
async fn supervise_until_serving(daemon: &mut Daemon) -> u64 {
    let started = Instant::now();
    let mut refused = 0;
    loop {
        daemon.spawn_only();
        let mut child = daemon.child.take().unwrap();
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                assert_ne!(status.code(), Some(101), "serve panicked");
                refused += 1;
                break;
            }
            if tickler_admin::Client::connect(&daemon.socket).await.is_ok() {
                daemon.child = Some(child);
                return refused;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(started.elapsed() < SERVE_WAIT_MAX, "serve never came up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs an offline tool and SIGKILLs it after `delay_ms` (it may finish first).
fn kill_tool_after(daemon: &Daemon, args: &[&str], delay_ms: u64) -> bool {
    let mut child = Command::new(BIN)
        .args(args)
        .current_dir(&daemon.work)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(delay_ms));
    let killed = child.try_wait().unwrap().is_none();
    let _ = child.kill();
    let status = child.wait().unwrap();
    assert_ne!(status.code(), Some(101), "{args:?} panicked");
    killed
}

fn audit_clean(data_dir: &Path) {
    ok(&Command::new(BIN)
        .args(["audit", "--data-dir"])
        .arg(data_dir)
        .output()
        .unwrap());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_tools_killed_at_random_moments_beside_a_restarting_daemon_lose_nothing() {
    let rounds: u64 = std::env::var("OFFLINE_TORTURE_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(6);
    let seed: u64 = std::env::var("OFFLINE_TORTURE_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(20_261_206);
    let mut draws = Draws(seed | 1);
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), START).await;
    let data = daemon.data_dir.to_str().unwrap().to_owned();
    let mut acknowledged = 0;
    let (mut killed, mut refused_starts, mut exports_cut) = (0, 0, 0);
    for round in 0..rounds {
        create_batch(&daemon, acknowledged, 200);
        acknowledged += 200;

        // An export through the daemon, killed part way: the target is whole or untouched.
        let export = daemon.work.join(format!("export-{round}.jsonl"));
        let socket = daemon.socket.to_str().unwrap().to_owned();
        let config = daemon.config.to_str().unwrap().to_owned();
        let cut = kill_tool_after(
            &daemon,
            &[
                "--config",
                &config,
                "--socket",
                &socket,
                "export",
                "--output",
                export.to_str().unwrap(),
            ],
            draws.below(150),
        );
        exports_cut += u64::from(cut);
        if export.exists() {
            let lines = std::fs::read_to_string(&export).unwrap();
            let events: usize = lines.lines().count();
            assert!(
                lines.ends_with('\n') && events >= acknowledged,
                "a partial export at {}",
                export.display()
            );
        }

        // The daemon goes down (cleanly or not), a tool runs, the supervisor keeps restarting.
        if draws.below(2) == 0 {
            daemon.kill();
        } else {
            stop(&mut daemon);
        }
        let tool: Vec<&str> = match draws.below(3) {
            0 => vec!["compact", "--data-dir", &data],
            1 => vec!["audit", "--data-dir", &data],
            _ => vec!["replay", "due/t1", "--data-dir", &data],
        };
        let delay = draws.below(120);
        let tool_thread = {
            let args: Vec<String> = tool.iter().map(|s| s.to_string()).collect();
            let daemon_view = Daemon::configure(&daemon.work, START, "manual");
            std::thread::spawn(move || {
                let args: Vec<&str> = args.iter().map(String::as_str).collect();
                kill_tool_after(&daemon_view, &args, delay)
            })
        };
        refused_starts += supervise_until_serving(&mut daemon).await;
        killed += u64::from(tool_thread.join().unwrap());
        assert_eq!(
            entities(&daemon),
            acknowledged as u64,
            "round {round}: after {tool:?}"
        );
    }
    stop(&mut daemon);
    audit_clean(&daemon.data_dir);
    println!(
        "offline torture: {rounds} rounds (seed {seed}), {acknowledged} entities acknowledged and \
         all present; {killed} tools and {exports_cut} exports killed mid-run; {refused_starts} \
         daemon starts refused while a tool held the data directory; audit clean"
    );
}
