//! A bulk import of enrolments through the real daemon: its rate, the daemon's memory while it
//! runs and after its actors are passivated, and whether every schedule survives a `kill -9`
//! right after the import reported success.
//!
//! ```text
//! cargo build --release -p tickler
//! cargo run --release -p tickler-benches --bin learner_import -- [ENROLMENTS]
//! ```
//!
//! ENROLMENTS (default 100,000) rows of a CSV file, over two self-paced courses with a verified
//! track (each schedule plans three nudges and an upgrade reminder), go through
//! `tickler learner import` (16 connections) into a daemon on its sled store with a manual
//! clock. The daemon's resident memory is sampled every 100 ms from /proc.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use tickler_benches::daemon::{Daemon, rss_kib_of, tickler_binary};

const COURSES: [&str; 2] = ["course-v1:Bench+A+2026", "course-v1:Bench+B+2026"];
/// How long an idle actor lives in this run (the shipped default is five minutes).
const PASSIVATE_AFTER: &str = "2s";

fn main() {
    let enrolments: usize = std::env::args()
        .nth(1)
        .map(|n| n.parse().expect("ENROLMENTS is a number"))
        .unwrap_or(100_000);
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let binary = tickler_binary();
    let work = tempfile::tempdir().unwrap();
    let config = write_config(&root.join("config"), work.path());
    let cli = |args: &[&str]| {
        let output = Command::new(&binary)
            .arg("--config")
            .arg(&config)
            .args(args)
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "tickler {args:?}: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    let status = |field: &str| -> u64 {
        let text = cli(&["--json", "status"]);
        let reply: serde_json::Value = serde_json::from_str(&text).unwrap();
        reply["result"][field].as_u64().unwrap_or(0)
    };

    let start = || {
        Daemon::start(
            &config,
            &work.path().join("data/admin/tickler.sock"),
            &["--clock", "manual"],
            &[],
            &work.path().join("daemon.log"),
        )
    };
    let mut daemon = start();
    let baseline = rss_kib_of(daemon.pid());
    cli(&[
        "site",
        "set",
        "bench",
        "--create-schedules",
        "true",
        "--default-zone",
        "Europe/Paris",
    ]);
    for course in COURSES {
        cli(&[
            "course",
            "set",
            course,
            "--site",
            "bench",
            "--pacing",
            "self",
            "--verified",
            "true",
            "--start",
            "2026-03-01T00:00:00Z",
            "--end",
            "2026-09-01T00:00:00Z",
        ]);
    }
    let file = work.path().join("enrolments.csv");
    let mut csv = std::io::BufWriter::new(std::fs::File::create(&file).unwrap());
    writeln!(csv, "learner,email,name,course,enrolled_at,zone").unwrap();
    const ZONES: [&str; 4] = ["", "America/New_York", "Asia/Tokyo", "Europe/London"];
    for n in 0..enrolments {
        writeln!(
            csv,
            "l{n},l{n}@example.org,Learner {n},{},2026-03-{:02}T{:02}:00:00Z,{}",
            COURSES[n % 2],
            1 + n % 28,
            n % 24,
            ZONES[n % 4]
        )
        .unwrap();
    }
    csv.flush().unwrap();
    drop(csv);

    // Sample the daemon's memory while it imports.
    let pid = daemon.pid();
    let stop = Arc::new(AtomicBool::new(false));
    let peak = Arc::new(AtomicU64::new(0));
    let sampler = {
        let (stop, peak) = (stop.clone(), peak.clone());
        std::thread::spawn(move || {
            let mut samples = Vec::new();
            let started = Instant::now();
            while !stop.load(Ordering::Relaxed) {
                let rss = rss_kib_of(pid);
                peak.fetch_max(rss, Ordering::Relaxed);
                samples.push((started.elapsed(), rss));
                std::thread::sleep(Duration::from_millis(100));
            }
            samples
        })
    };
    let started = Instant::now();
    let summary = cli(&["learner", "import", "--file", file.to_str().unwrap()]);
    let elapsed = started.elapsed();
    stop.store(true, Ordering::Relaxed);
    let samples = sampler.join().unwrap();
    let after_import = rss_kib_of(pid);
    let actors_after_import = status("actors");
    std::thread::sleep(Duration::from_secs(4));
    let actors_idle = status("actors");
    let rss_idle = rss_kib_of(pid);
    let timers = status("pending_timers");
    let store_bytes = status("store_bytes");

    // Durability: kill -9 and count what a restarted daemon finds.
    daemon.kill();
    let restarted_at = Instant::now();
    let mut daemon = start();
    let ready = restarted_at.elapsed();
    let entities = status("entities");
    let timers_after = status("pending_timers");
    let rss_restarted = rss_kib_of(daemon.pid());
    let _ = cli(&["shutdown"]);
    daemon.wait();

    println!("{}", summary.trim());
    println!(
        "imported {enrolments} enrolments in {:.2} s: {:.0} enrolments/s (durable: each reply follows its commit's flush)",
        elapsed.as_secs_f64(),
        enrolments as f64 / elapsed.as_secs_f64()
    );
    println!(
        "daemon RSS: {} MiB at start, peak {} MiB during the import, {} MiB right after",
        baseline / 1024,
        peak.load(Ordering::Relaxed) / 1024,
        after_import / 1024
    );
    let quarter = samples.len() / 4;
    if quarter > 0 {
        let at = |i: usize| samples[i.min(samples.len() - 1)];
        println!(
            "  RSS at 25/50/75/100% of the import: {} / {} / {} / {} MiB",
            at(quarter).1 / 1024,
            at(2 * quarter).1 / 1024,
            at(3 * quarter).1 / 1024,
            at(samples.len() - 1).1 / 1024
        );
    }
    println!("store on disk: {} MiB", store_bytes / (1024 * 1024));
    println!(
        "actors: {actors_after_import} live right after, {actors_idle} after {PASSIVATE_AFTER} idle + 2 s; RSS then {} MiB",
        rss_idle / 1024
    );
    println!(
        "after kill -9 and restart ({} ms to ready): {entities} entities (expected {}), {timers_after} pending timers (before the kill: {timers}); RSS {} MiB",
        ready.as_millis(),
        enrolments + 1 + COURSES.len(),
        rss_restarted / 1024
    );
    assert_eq!(
        entities as usize,
        enrolments + 1 + COURSES.len(),
        "every schedule survives"
    );
    assert_eq!(timers_after, timers, "every timer survives");
}

/// The shipped config with the data in `work`, a manual clock, short passivation, and no seeds.
fn write_config(shipped: &Path, work: &Path) -> PathBuf {
    let text = std::fs::read_to_string(shipped.join("tickler.toml")).unwrap();
    let text = text
        .replace(
            "data_dir = \"data\"",
            &format!("data_dir = {:?}", work.join("data")),
        )
        .replace(
            "policies = \"policies\"",
            &format!("policies = {:?}", shipped.join("policies")),
        )
        .replace(
            "templates = \"templates\"",
            &format!("templates = {:?}", shipped.join("templates")),
        )
        .replace(
            "# manual_clock_start = \"2026-03-01T09:00:00Z\"",
            "manual_clock_start = \"2026-03-01T00:00:00Z\"\nlearning = \"no-seeds\"",
        )
        .replace(
            "passivate_after = \"5m\"",
            &format!("passivate_after = {PASSIVATE_AFTER:?}"),
        );
    assert!(text.contains("no-seeds") && text.contains(PASSIVATE_AFTER));
    let path = work.join("tickler.toml");
    std::fs::write(&path, text).unwrap();
    path
}
