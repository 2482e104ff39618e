//! The Python client (`clients/python`) and its example (`examples/python`), tested against the
//! real daemon: this runs their unittest suite with this build's binary, so `cargo test` (and
//! CI) runs it too. The suite starts its own daemons; it fails, never skips, without them.

use std::path::Path;
use std::process::Command;

#[test]
fn the_python_clients_suite_passes_against_this_builds_daemon() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let output = Command::new("python3")
        .args([
            "-m",
            "unittest",
            "discover",
            "-s",
            "clients/python/tests",
            "-v",
        ])
        .current_dir(&repo)
        .env("TICKLER_BIN", env!("CARGO_BIN_EXE_tickler"))
        // No bytecode files left in the checkout.
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("python3 runs (the README's test command installs what the tests need)");
    let report = String::from_utf8_lossy(&output.stderr);
    assert!(
        output.status.success(),
        "the Python suite failed:\n{report}"
    );
    // A suite that found nothing to run would pass too: it must have run the client's tests.
    let ran = report
        .lines()
        .find_map(|line| line.strip_prefix("Ran "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|count| count.parse::<u32>().ok())
        .unwrap_or(0);
    assert!(ran >= 50, "only {ran} Python tests ran:\n{report}");
    assert!(
        !report.contains("skipped"),
        "a Python test was skipped:\n{report}"
    );
}
