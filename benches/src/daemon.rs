//! The real daemon as a child process: the release binary, started on a config and stopped
//! (or killed) by the load tools.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// How long the tools wait for a daemon to listen before giving up (its start-up recovers
/// whatever the store holds; 30 s bounds a hang, it is not a figure).
const START_WAIT_MAX: Duration = Duration::from_secs(30);

/// `$TICKLER_BIN`, or the workspace's release build of `tickler`.
pub fn tickler_binary() -> PathBuf {
    let binary = std::env::var_os("TICKLER_BIN").map_or_else(
        || Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/release/tickler"),
        PathBuf::from,
    );
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --release -p tickler` first (or set TICKLER_BIN)",
        binary.display()
    );
    binary
}

pub struct Daemon {
    child: Option<Child>,
    pub socket: PathBuf,
}

impl Daemon {
    /// Starts `tickler --config CONFIG serve ARGS` (its log in `log`), and waits until its
    /// socket accepts connections.
    pub fn start(
        config: &Path,
        socket: &Path,
        args: &[&str],
        env: &[(&str, &str)],
        log: &Path,
    ) -> Daemon {
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .unwrap();
        let child = Command::new(tickler_binary())
            .arg("--config")
            .arg(config)
            .arg("serve")
            .args(args)
            .envs(env.iter().copied())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log_file))
            .spawn()
            .unwrap();
        let mut daemon = Daemon {
            child: Some(child),
            socket: socket.to_owned(),
        };
        let waited = std::time::Instant::now();
        while std::os::unix::net::UnixStream::connect(socket).is_err() {
            if waited.elapsed() > START_WAIT_MAX {
                daemon.kill();
                panic!("the daemon did not start; see {}", log.display());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        daemon
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the daemon runs").id()
    }

    /// SIGKILL: nothing of its shutdown runs.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Waits for the daemon to exit (after a `shutdown` request).
    pub fn wait(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A process's resident memory, in KiB (0 if unreadable).
pub fn rss_kib_of(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("VmRSS:"))
                .and_then(|value| value.trim().trim_end_matches(" kB").parse().ok())
        })
        .unwrap_or(0)
}
