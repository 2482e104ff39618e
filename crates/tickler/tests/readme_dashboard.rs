//! The README's "Dashboard" section as a reader follows it: its `toml` line added to the
//! shipped configuration, the daemon restarted (by the harness), then its commands run verbatim
//! in one shell, each token they print tried on the login page at the address the README gives.

mod support;

use std::path::Path;
use std::process::Command;

use support::{BIN, Daemon, ok};

/// The lines of the section's blocks of `language`.
fn section_blocks(readme: &str, language: &str) -> Vec<String> {
    let start = readme
        .find("## Dashboard")
        .expect("the README has Dashboard");
    let end = start + readme[start..].find("\n## ").expect("a section follows");
    let mut lines = Vec::new();
    let mut in_block = false;
    for line in readme[start..end].lines() {
        if line.starts_with("```") {
            in_block = line == format!("```{language}");
            continue;
        }
        if in_block && !line.trim().is_empty() {
            lines.push(line.to_owned());
        }
    }
    lines
}

/// What the login form answers `token` at `base`: 303 to the overview, or 401.
async fn log_in_status(base: &str, token: &str) -> u16 {
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    http.post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_readme_dashboard_section_runs_as_written() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let settings = section_blocks(&readme, "toml");
    assert_eq!(settings, ["dashboard_listen = \"127.0.0.1:8090\""]);
    let commands = section_blocks(&readme, "sh");
    assert_eq!(commands.len(), 3, "{commands:?}");

    let work = tempfile::tempdir().unwrap();
    let config = support::write_config(work.path(), "2026-03-01T09:00:00Z");
    let text = std::fs::read_to_string(&config).unwrap().replace(
        "data_dir = \"data\"",
        &format!("data_dir = \"data\"\n{}", settings[0]),
    );
    std::fs::write(&config, text).unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:00:00Z").await;
    let script = format!(
        "set -e\nshopt -s expand_aliases\nalias tickler={BIN}\n{}\n",
        commands.join("\n")
    );
    let output = Command::new("bash")
        .arg("-c")
        .arg(script)
        .current_dir(work.path())
        .env_remove("TICKLER_CONFIG")
        .env_remove("TICKLER_SOCKET")
        .env_remove("TICKLER_DATA_DIR")
        .output()
        .unwrap();
    let printed = ok(&output);
    let tokens: Vec<&str> = printed.lines().collect();
    assert_eq!(tokens.len(), 3, "one token per command: {printed}");
    assert!(tokens.iter().all(|t| t.len() == 64), "{printed}");

    let base = "http://127.0.0.1:8090";
    let (read, old_operator, new_operator) = (tokens[0], tokens[1], tokens[2]);
    assert_eq!(log_in_status(base, read).await, 303, "the read-only token");
    assert_eq!(log_in_status(base, old_operator).await, 401, "rotated away");
    assert_eq!(log_in_status(base, new_operator).await, 303, "the new one");
    drop(daemon);
}
