//! The README's tour, run as a reader runs it: every command of its `sh` blocks from "A
//! five-minute tour" up to "Operating it", verbatim and in order, in one shell, in a directory
//! holding the shipped `config/` and `examples/`. Two things a reader does by hand are done by
//! the harness, outside the README's text: `cargo build --release` (the test's binary is put
//! where the alias expects it), and waiting for a daemon started with `&` to answer before
//! typing the next command. What the prose promises is then checked in each command's output.

mod support;

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

/// The commands of the tour's `sh` blocks, `\`-continued lines joined.
fn tour_commands(readme: &str) -> Vec<String> {
    let start = readme
        .find("## A five-minute tour")
        .expect("the README has the tour");
    let end = readme
        .find("## Operating it")
        .expect("the README has Operating it");
    let mut commands = Vec::new();
    let mut in_block = false;
    let mut pending = String::new();
    for line in readme[start..end].lines() {
        if line.starts_with("```") {
            in_block = line == "```sh";
            continue;
        }
        if !in_block || line.trim().is_empty() {
            continue;
        }
        match line.strip_suffix('\\') {
            Some(head) => pending.push_str(head),
            None => {
                pending.push_str(line);
                commands.push(std::mem::take(&mut pending));
            }
        }
    }
    commands
}

/// The shell script: each README command verbatim, preceded by a marker naming it; after a
/// command that starts a daemon in the background, a wait until it answers.
fn script(commands: &[String]) -> String {
    let mut script = String::from(
        "shopt -s expand_aliases\n\
         trap 'kill -9 $(jobs -p) 2>/dev/null' EXIT  # no daemon outlives the tour\n\
         cargo() { :; }  # the harness built the binary\n\
         __ready() { for _ in $(seq 600); do ./target/release/tickler clock now >/dev/null 2>&1 && return; sleep 0.05; done; echo 'the daemon did not answer'; exit 1; }\n",
    );
    for (index, command) in commands.iter().enumerate() {
        script.push_str(&format!("echo '### {index}'\n{command}\n"));
        if command.contains("tickler serve") && command.contains(" &") {
            script.push_str("__ready\n");
        }
    }
    script.push_str("tickler shutdown\n");
    script
}

/// Each command's output (stdout and stderr), keyed by the command.
fn outputs_by_command(commands: &[String], text: &str) -> BTreeMap<String, String> {
    let mut outputs = BTreeMap::new();
    let mut current: Option<usize> = None;
    for line in text.lines() {
        if let Some(index) = line.strip_prefix("### ") {
            current = index.parse().ok();
            continue;
        }
        if let Some(index) = current {
            let entry: &mut String = outputs.entry(commands[index].clone()).or_default();
            entry.push_str(line);
            entry.push('\n');
        }
    }
    outputs
}

fn output_of<'a>(outputs: &'a BTreeMap<String, String>, command_start: &str) -> &'a str {
    outputs
        .iter()
        .find(|(command, _)| command.starts_with(command_start))
        .map(|(_, output)| output.as_str())
        .unwrap_or_else(|| {
            panic!("no output of a tour command starting with {command_start:?}: {outputs:#?}")
        })
}

#[test]
fn the_readme_tour_runs_as_written_and_does_what_its_prose_says() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let readme = std::fs::read_to_string(repo.join("README.md")).unwrap();
    let commands = tour_commands(&readme);
    assert!(commands.len() > 30, "{commands:?}");
    let work = tempfile::tempdir().unwrap();
    support::copy_dir(&repo.join("config"), &work.path().join("config"));
    support::copy_dir(&repo.join("examples"), &work.path().join("examples"));
    std::fs::create_dir_all(work.path().join("target/release")).unwrap();
    std::os::unix::fs::symlink(support::BIN, work.path().join("target/release/tickler")).unwrap();
    // Into files, not pipes: a daemon left in the background must not hold the test's pipe.
    let out_path = work.path().join("tour.out");
    let err_path = work.path().join("tour.err");
    let status = Command::new("bash")
        .arg("-c")
        .arg(script(&commands))
        .current_dir(work.path())
        .env_remove("TICKLER_CONFIG")
        .env_remove("TICKLER_SOCKET")
        .env_remove("TICKLER_DATA_DIR")
        .env("COLUMNS", "100")
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap())
        .status()
        .unwrap();
    let stdout = std::fs::read_to_string(&out_path).unwrap();
    let text = format!("{stdout}{}", std::fs::read_to_string(&err_path).unwrap());
    assert!(
        status.success(),
        "the tour's shell failed ({status}):\n{text}"
    );
    let outputs = outputs_by_command(&commands, &stdout);
    let log = std::fs::read_to_string(work.path().join("tickler.log")).unwrap_or_default();
    let says = |command: &str, expected: &[&str]| {
        let said = output_of(&outputs, command);
        for part in expected {
            assert!(
                said.contains(part),
                "`{command}` should say {part:?}; it said:\n{said}\n--- whole run:\n{text}\n--- log:\n{log}"
            );
        }
    };
    // Three reminders planned: two days before, two and four days after.
    says(
        "tickler due-date create review-42",
        &["created, 3 × occurrence-planned"],
    );
    says(
        "tickler show due/review-42",
        &["pre-due#0", "first-late#0", "second-late#0"],
    );
    // Nine days later the first reminder went out; the chaser switched off waits, off.
    says("tail -1 data/outbox.jsonl", &["due/review-42#pre-due#0"]);
    says(
        "tickler history due/review-42",
        &["pre-due#0", "sent via file"],
    );
    says("tickler due-date move review-42", &["anchor-moved"]);
    // Completing ends what was pending, and says so.
    says("tickler due-date complete review-42", &["completed"]);
    says("tickler status", &["quarantined", "none"]);
    says(
        "tickler replay due/review-42 --as-of",
        &["as of 2026-03-05", "pre-due#0"],
    );
    says("tickler replay due/review-42 --events", &["\"events\""]);
    // The contact cadence: an interaction every 3 days for 45 days, day 0 to day 45.
    says(
        "wc -l data/rapidpro-outbox.jsonl",
        &["16 data/rapidpro-outbox.jsonl"],
    );
    says("tickler group leave karma c-2", &["completed"]);
    says(
        "tickler eval respond course-101 b@example.org",
        &["1 of 3 students have answered"],
    );
    says("tickler show eval/course-101", &["phase: in-queue"]);
    says("tickler learner enroll", &["message(s) planned"]);
    says(
        "tickler learner import --file examples/enrolments.csv   #",
        &["3 row(s)", "0 failed"],
    );
    says(
        "tickler learner import --file examples/enrolments.csv --resume",
        &["resumed after line"],
    );
    says("tickler preview", &["held back"]);
    says("tickler backfill", &["occurrence(s) processed"]);
    assert!(
        !text.contains("error:"),
        "a tour command failed:\n{text}\n--- log:\n{log}"
    );
}
