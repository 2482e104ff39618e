//! Runs the real `tickler` binary: a daemon on a manual clock in a temporary directory, with a
//! copy of the shipped config.

#![allow(dead_code)] // each test binary uses a different part

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use tickler_admin::Client;

/// The real HTTP server of the channel tests, as a receiver for a daemon's webhook channel.
#[path = "../../../../tests/src/http.rs"]
pub mod http;

pub const BIN: &str = env!("CARGO_BIN_EXE_tickler");
/// How long a daemon may take to start listening before the test gives up (a readiness bound,
/// not a timing assertion: it only turns a hang into a failure).
const START_TIMEOUT: Duration = Duration::from_secs(30);

pub struct Daemon {
    pub child: Option<Child>,
    pub work: PathBuf,
    pub config: PathBuf,
    pub data_dir: PathBuf,
    pub socket: PathBuf,
    pub clock: &'static str,
    /// Extra environment variables of the daemon process (a webhook's signing secret).
    pub env: Vec<(String, String)>,
    /// The umask the daemon process starts with, if not this process's.
    pub umask: Option<&'static str>,
}

/// The tickler binary as a command; with a umask, a shell sets it and then becomes tickler
/// (`exec`).
fn tickler_command(umask: Option<&str>) -> Command {
    match umask {
        Some(umask) => {
            let mut shell = Command::new("sh");
            shell
                .arg("-c")
                .arg(format!("umask {umask}; exec \"$0\" \"$@\""))
                .arg(BIN);
            shell
        }
        None => Command::new(BIN),
    }
}

/// Copies the repository's `config/` into `work/config`, with the manual clock starting at
/// `manual_start`.
pub fn write_config(work: &Path, manual_start: &str) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config");
    let target = work.join("config");
    copy_dir(&source, &target);
    // The daemon tests start from an empty store: the demo sites and courses of
    // config/learning would be entities they do not expect (tests/tests/learner.rs covers them).
    std::fs::remove_dir_all(target.join("learning")).unwrap();
    let path = target.join("tickler.toml");
    let text = std::fs::read_to_string(&path).unwrap();
    let text = text.replace(
        "# manual_clock_start = \"2026-03-01T09:00:00Z\"",
        &format!("manual_clock_start = \"{manual_start}\""),
    );
    assert!(
        text.contains(manual_start),
        "the shipped config has the manual_clock_start line"
    );
    std::fs::write(&path, text).unwrap();
    path
}

/// As `write_config`, with `setting` (a line of TOML) added at the top level.
pub fn write_config_with(work: &Path, manual_start: &str, setting: &str) -> PathBuf {
    let config = write_config(work, manual_start);
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "data_dir = \"data\"",
        &format!("data_dir = \"data\"\n{setting}"),
    );
    std::fs::write(&config, text).unwrap();
    config
}

/// Runs `serve` with the config written in `work`, which must refuse to start: its stderr.
/// The data directory must not have been created.
pub fn refused_at_start(work: &Path, manual_start: &str) -> String {
    let daemon = Daemon::configure(work, manual_start, "manual");
    let data = daemon.data_dir.to_str().unwrap().to_owned();
    let refused = run_to_exit(&daemon, &["serve", "--data-dir", &data]);
    assert!(!refused.status.success());
    assert!(
        !daemon.data_dir.exists(),
        "refused before the data directory"
    );
    String::from_utf8_lossy(&refused.stderr).into_owned()
}

/// Points the shipped config's `file` channel (the due-date policy's) at a webhook `url` on
/// loopback, signed with the secret in the environment variable `secret_env`.
pub fn deliver_to_webhook(config: &Path, url: &str, secret_env: &str) {
    let text = std::fs::read_to_string(config).unwrap();
    let file_channel =
        "[channels.file]\nkind = \"file\"\npath = \"outbox.jsonl\"        # relative to data_dir\n";
    assert!(
        text.contains(file_channel),
        "the shipped config has the file channel"
    );
    let webhook = format!(
        "[channels.file]\nkind = \"webhook\"\nurl = \"{url}\"\nallow_hosts = [\"127.0.0.1\"]\n\
         allow_private = true\nsecret_env = \"{secret_env}\"\n"
    );
    std::fs::write(config, text.replace(file_channel, &webhook)).unwrap();
}

/// A free loopback port (free when asked; whoever is given it binds it right after).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).unwrap();
        }
    }
}

impl Daemon {
    /// Starts `tickler serve --clock manual` in `work` and waits until it answers.
    pub async fn start(work: &Path, manual_start: &str) -> Daemon {
        Daemon::start_with_clock(work, manual_start, "manual").await
    }

    /// Starts `tickler serve --clock <clock>` in `work` and waits until it answers.
    pub async fn start_with_clock(work: &Path, manual_start: &str, clock: &'static str) -> Daemon {
        Daemon::start_with_env(work, manual_start, clock, Vec::new()).await
    }

    /// Starts `tickler serve --clock <clock>` in `work` with extra environment variables.
    pub async fn start_with_env(
        work: &Path,
        manual_start: &str,
        clock: &'static str,
        env: Vec<(String, String)>,
    ) -> Daemon {
        let mut daemon = Daemon::configure(work, manual_start, clock);
        daemon.env = env;
        daemon.restart().await;
        daemon
    }

    /// A daemon in `work`, configured but not started: set its fields, then `restart` it.
    pub fn configure(work: &Path, manual_start: &str, clock: &'static str) -> Daemon {
        let config = work.join("config/tickler.toml");
        if !config.exists() {
            write_config(work, manual_start);
        }
        Daemon {
            child: None,
            work: work.to_owned(),
            config,
            data_dir: work.join("data"),
            socket: work.join("data/admin/tickler.sock"),
            clock,
            env: Vec::new(),
            umask: None,
        }
    }

    /// Starts the daemon process (again) on the same directories and waits until it answers.
    pub async fn restart(&mut self) {
        self.spawn_only();
        self.wait_until_answering().await;
    }

    /// Starts the daemon process without waiting for it (to kill it during recovery).
    pub fn spawn_only(&mut self) {
        assert!(self.child.is_none(), "the daemon is already running");
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.work.join("daemon.log"))
            .unwrap();
        let child = tickler_command(self.umask)
            .arg("--config")
            .arg(&self.config)
            .arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--clock")
            .arg(self.clock)
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .current_dir(&self.work)
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("the tickler binary starts");
        self.child = Some(child);
    }

    async fn wait_until_answering(&mut self) {
        let started = Instant::now();
        loop {
            if let Ok(mut client) = Client::connect(&self.socket).await
                && client.call(tickler_admin::Request::ClockNow).await.is_ok()
            {
                return;
            }
            if let Some(status) = self.child.as_mut().unwrap().try_wait().unwrap() {
                panic!(
                    "the daemon exited with {status}; see {}",
                    self.work.join("daemon.log").display()
                );
            }
            assert!(
                started.elapsed() < START_TIMEOUT,
                "the daemon did not start listening"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    pub async fn client(&self) -> Client {
        Client::connect(&self.socket).await.unwrap()
    }

    /// SIGKILL: no shutdown code runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            child.kill().unwrap();
            child.wait().unwrap();
        }
    }

    /// Runs the CLI against this daemon.
    pub fn cli(&self, args: &[&str]) -> Output {
        self.cli_under_umask(None, args)
    }

    /// Runs the CLI against this daemon, started with `umask` if given, as a careless shell
    /// would start it.
    pub fn cli_under_umask(&self, umask: Option<&str>, args: &[&str]) -> Output {
        tickler_command(umask)
            .arg("--config")
            .arg(&self.config)
            .arg("--socket")
            .arg(&self.socket)
            .args(args)
            .current_dir(&self.work)
            .output()
            .unwrap()
    }

    pub fn outbox_keys(&self) -> Vec<String> {
        let path = self.data_dir.join("outbox.jsonl");
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines()
            .map(|line| {
                let message: serde_json::Value =
                    serde_json::from_str(line).expect("outbox lines are JSON");
                message["idempotency_key"].as_str().unwrap().to_owned()
            })
            .collect()
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A hang guard for a process expected to exit on its own (not a timing assertion).
const EXIT_WAIT_MAX: Duration = Duration::from_secs(30);

/// Runs a tickler command (with the daemon's config) that must end by itself, such as a
/// `serve` that must refuse to start; kills it and fails the test if it does not end.
pub fn run_to_exit(daemon: &Daemon, args: &[&str]) -> Output {
    let child = Command::new(BIN)
        .arg("--config")
        .arg(&daemon.config)
        .args(args)
        .current_dir(&daemon.work)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let pid = child.id();
    let waiter = std::thread::spawn(move || child.wait_with_output().unwrap());
    while !waiter.is_finished() {
        if started.elapsed() > EXIT_WAIT_MAX {
            // SAFETY: kill(2) on the pid of a child this test spawned.
            unsafe { libc::kill(pid as i32, libc::SIGKILL) };
            panic!("`tickler {}` did not exit by itself", args.join(" "));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    waiter.join().unwrap()
}

/// Runs a tickler command with the config of `work` (`work/config/tickler.toml`), in `work`.
pub fn run_tickler(work: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .arg("--config")
        .arg(work.join("config/tickler.toml"))
        .args(args)
        .current_dir(work)
        .output()
        .unwrap()
}

/// Creates due date `due/<task>` for `<task>@example.org`, due at `due`.
pub fn create_due(daemon: &Daemon, task: &str, due: &str) {
    ok(&daemon.cli(&[
        "due-date",
        "create",
        task,
        "--recipient",
        &format!("{task}@example.org"),
        "--due",
        due,
    ]));
}

/// Asserts that a command succeeded; its stdout.
pub fn ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The `result` of a successful command run with `--json`.
pub fn result(output: &Output) -> serde_json::Value {
    let reply: serde_json::Value = serde_json::from_str(&ok(output)).unwrap();
    reply["result"].clone()
}

/// A daemon whose contact cadence delivers through a webhook to `port` on loopback, where
/// nothing listens until the test says so.
pub async fn with_contacts_on_a_webhook(work: &Path, port: u16) -> Daemon {
    let config = write_config(work, "2026-03-02T04:00:00Z");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "[channels.rapidpro]\nkind = \"file\"\npath = \"rapidpro-outbox.jsonl\"",
        &format!(
            "[channels.rapidpro]\nkind = \"webhook\"\nurl = \"http://127.0.0.1:{port}/flows\"\nallow_hosts = [\"127.0.0.1\"]\nallow_private = true\nsecret_env = \"PATH\"\npayload = \"body\"\nconnect_timeout = \"1s\"\ntimeout = \"2s\""
        ),
    );
    assert!(text.contains("kind = \"webhook\""));
    std::fs::write(&config, text).unwrap();
    Daemon::start(work, "2026-03-02T04:00:00Z").await
}

/// Runs `tickler --socket SOCKET status --json` until the daemon `child` answers, and returns
/// the answer; fails the test if the daemon exits first or does not answer in time (a hang
/// guard, not a timing assertion).
pub fn run_cli_until_answered(socket: &Path, child: &mut Child) -> String {
    let started = Instant::now();
    loop {
        let output = Command::new(BIN)
            .arg("--socket")
            .arg(socket)
            .args(["status", "--json"])
            .output()
            .unwrap();
        if output.status.success() {
            return String::from_utf8(output.stdout).unwrap();
        }
        if let Some(status) = child.try_wait().unwrap() {
            panic!("the daemon exited with {status} before answering");
        }
        assert!(
            started.elapsed() < START_TIMEOUT,
            "the daemon did not start listening"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
