//! The service packaging (`packaging/`): the systemd unit passes `systemd-analyze verify`, its
//! command line is one this binary serves with (and stops cleanly from on SIGTERM, as systemd
//! stops it), and the container image runs the same command line.

mod support;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

fn packaging(file: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../packaging")
        .join(file)
}

/// The unit's `ExecStart=` words.
fn exec_start() -> Vec<String> {
    let unit = std::fs::read_to_string(packaging("tickler.service")).unwrap();
    let line = unit
        .lines()
        .find_map(|line| line.strip_prefix("ExecStart="))
        .expect("the unit has an ExecStart line");
    line.split_whitespace().map(str::to_owned).collect()
}

#[test]
fn the_systemd_unit_passes_systemd_analyze_verify() {
    let work = tempfile::tempdir().unwrap();
    // verify checks that the command exists: point it at this build's binary.
    let unit = std::fs::read_to_string(packaging("tickler.service"))
        .unwrap()
        .replace("/usr/bin/tickler", support::BIN);
    let path = work.path().join("tickler.service");
    std::fs::write(&path, unit).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .expect("systemd-analyze is installed (.ci/run installs systemd)");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    assert!(
        stderr.trim().is_empty(),
        "systemd-analyze has remarks:\n{stderr}"
    );
}

#[test]
fn the_container_image_runs_the_units_command_line() {
    let containerfile = std::fs::read_to_string(packaging("Containerfile")).unwrap();
    let words = |line: &str| -> Vec<String> { serde_json::from_str(line).unwrap() };
    let entrypoint = containerfile
        .lines()
        .find_map(|line| line.strip_prefix("ENTRYPOINT "))
        .map(words)
        .unwrap();
    let cmd = containerfile
        .lines()
        .find_map(|line| line.strip_prefix("CMD "))
        .map(words)
        .unwrap();
    assert_eq!([entrypoint, cmd].concat(), exec_start());
}

#[test]
fn the_units_command_line_serves_and_a_sigterm_stops_it_with_exit_status_0() {
    let work = tempfile::tempdir().unwrap();
    let state = work.path().join("var/lib/tickler");
    let run = work.path().join("run/tickler");
    // What StateDirectory= and RuntimeDirectory= create before the service starts.
    std::fs::create_dir_all(&state).unwrap();
    std::fs::create_dir_all(&run).unwrap();
    let words: Vec<String> = exec_start()
        .iter()
        .map(|word| {
            word.replace("/usr/bin/tickler", support::BIN)
                .replace("/var/lib/tickler", state.to_str().unwrap())
                .replace("/run/tickler", run.to_str().unwrap())
        })
        .collect();
    let mut child = Command::new(&words[0])
        .args(&words[1..])
        .current_dir(work.path())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let socket = run.join("admin/tickler.sock");
    let status = support::run_cli_until_answered(&socket, &mut child);
    assert!(status.contains("entities"), "{status}");
    assert!(
        state.join("store").exists(),
        "the store is in the state directory"
    );
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let started = Instant::now();
    let exit = loop {
        if let Some(exit) = child.try_wait().unwrap() {
            break exit;
        }
        // A hang guard, not a timing assertion.
        assert!(
            started.elapsed() < Duration::from_secs(60),
            "no exit after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    assert_eq!(exit.code(), Some(0));
    assert!(!socket.exists(), "the socket is removed on a clean stop");
}
