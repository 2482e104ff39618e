//! A private PostgreSQL server for a test: `initdb` in a temporary directory (as `postgres` when
//! root, since PostgreSQL refuses to run as root), listening on a unix socket only, stopped when
//! dropped. Where PostgreSQL is not installed the test is skipped, unless `TICKLER_REQUIRE_PG` is
//! set (CI sets it), which makes it fail instead.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The port names the socket file only (`.s.PGSQL.<port>` in a private directory).
const PORT: u16 = 5432;

pub struct PgServer {
    bin: PathBuf,
    dir: tempfile::TempDir,
}

impl PgServer {
    /// Starts a fresh server, or returns `None` (after saying why) where PostgreSQL is missing
    /// and not required.
    pub fn start() -> Option<PgServer> {
        PgServer::start_with(false)
    }

    /// A server that syncs its commits to disk (`fsync` on, PostgreSQL's default), for
    /// benchmarks: the tests' servers skip the sync, which only slows them.
    pub fn start_durable() -> Option<PgServer> {
        PgServer::start_with(true)
    }

    fn start_with(fsync: bool) -> Option<PgServer> {
        let Some(bin) = pg_bin() else {
            if std::env::var_os("TICKLER_REQUIRE_PG").is_some() {
                panic!(
                    "TICKLER_REQUIRE_PG is set but no PostgreSQL is installed \
                     (/usr/lib/postgresql/*/bin/initdb): apt-get install postgresql"
                );
            }
            eprintln!("skipped: PostgreSQL is not installed (set TICKLER_REQUIRE_PG to fail)");
            return None;
        };
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("sock")).unwrap();
        if is_root() {
            run(Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()));
        }
        let data = dir.path().join("data");
        run(as_pg(&bin.join("initdb"))
            .args(["-U", "postgres", "-A", "trust", "--no-sync", "-D"])
            .arg(&data));
        let options = format!(
            "-p {PORT} -k {} -c listen_addresses='' -c fsync={}",
            dir.path().join("sock").display(),
            if fsync { "on" } else { "off" }
        );
        run(as_pg(&bin.join("pg_ctl"))
            .args(["-w", "-t", "60", "-D"])
            .arg(&data)
            .arg("-l")
            .arg(dir.path().join("postgres.log"))
            .args(["-o", &options, "start"]));
        Some(PgServer { bin, dir })
    }

    /// A connection string for `database` on this server.
    pub fn url(&self, database: &str) -> String {
        format!(
            "host={} port={PORT} user=postgres dbname={database}",
            self.dir.path().join("sock").display()
        )
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let _ = as_pg(&self.bin.join("pg_ctl"))
            .args(["-m", "immediate", "-D"])
            .arg(self.dir.path().join("data"))
            .arg("stop")
            .output();
    }
}

fn pg_bin() -> Option<PathBuf> {
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|entry| Some(entry.ok()?.path().join("bin")))
        .filter(|bin| bin.join("initdb").exists())
        .collect();
    versions.sort_by_key(|bin| {
        bin.parent()
            .and_then(|version| version.file_name()?.to_str()?.parse::<u32>().ok())
    });
    versions.pop()
}

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

fn as_pg(program: &Path) -> Command {
    if is_root() {
        let mut command = Command::new("runuser");
        command.args(["-u", "postgres", "--"]).arg(program);
        command
    } else {
        Command::new(program)
    }
}

fn run(command: &mut Command) {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{command:?}: {}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}
