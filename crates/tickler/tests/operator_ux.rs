//! Issue 22, through the real binary: failures are found, output fits a terminal, mistakes get
//! an answer pointing the right way, and the binary alone is enough to start.

mod support;

use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{BIN, Daemon, ok, result};

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// A command that must fail with exit 1 and say `expected` on stderr.
fn refused(output: &Output, expected: &[&str]) {
    assert_eq!(output.status.code(), Some(1), "{}", stdout(output));
    let message = stderr(output);
    for part in expected {
        assert!(message.contains(part), "{part:?} not in {message:?}");
    }
}

/// The contact cadence delivers through a webhook on a port where nothing listens: its first
/// interaction ends in a system error after five attempts.
async fn a_failed_interaction(work: &Path) -> Daemon {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let daemon = support::with_contacts_on_a_webhook(work, port).await;
    ok(&daemon.cli(&[
        "group",
        "join",
        "karma",
        "c-1",
        "--recipient",
        "tel:+254700000001",
    ]));
    ok(&daemon.cli(&["clock", "advance", "1d"]));
    daemon
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_lists_each_errored_occurrence_with_its_channel_and_last_error() {
    let work = tempfile::tempdir().unwrap();
    let daemon = a_failed_interaction(work.path()).await;
    let page = result(&daemon.cli(&["--json", "failures"]));
    let failure = &page["failures"][0];
    assert_eq!(failure["entity"], "contact/karma/c-1", "{page}");
    assert_eq!(failure["occurrence"], "conversation-a#0");
    assert_eq!(failure["channel"], "rapidpro");
    assert_eq!(failure["attempts"], 5);
    assert!(!failure["error"].as_str().unwrap().is_empty(), "{page}");
    let by_channel = result(&daemon.cli(&["--json", "failures", "--channel", "file"]));
    assert_eq!(by_channel["failures"], Value::Array(vec![]));
    let table = ok(&daemon.cli(&["failures"]));
    assert!(
        table.contains("contact/karma/c-1") && table.contains("rapidpro"),
        "{table}"
    );
    let listed = result(&daemon.cli(&["--json", "list", "--kind", "contact"]));
    assert_eq!(listed["entities"][0]["errored"], 1, "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_failure_is_logged_at_warn_without_the_recipient() {
    let work = tempfile::tempdir().unwrap();
    let daemon = a_failed_interaction(work.path()).await;
    ok(&daemon.cli(&["shutdown"]));
    let log = std::fs::read_to_string(work.path().join("daemon.log")).unwrap();
    let warning = log
        .lines()
        .find(|line| line.contains("delivery failed for good"))
        .unwrap_or_else(|| panic!("no warning in {log}"));
    assert!(warning.contains("WARN"), "{warning}");
    assert!(warning.contains("contact/karma/c-1") && warning.contains("rapidpro"));
    assert!(
        !log.contains("254700000001"),
        "the recipient reached the log"
    );
    assert!(
        !log.contains("occurrence ended"),
        "per-occurrence chatter is DEBUG"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_all_names_each_occurrence_it_retried() {
    let work = tempfile::tempdir().unwrap();
    let daemon = a_failed_interaction(work.path()).await;
    let said = ok(&daemon.cli(&["retry", "--all"]));
    assert!(
        said.contains("retried 1 occurrence(s) of 1 entity")
            && said.contains("contact/karma/c-1 conversation-a#0"),
        "{said}"
    );
}

/// An evaluation of three students, open 03-02 to 03-09 with daily reminders; what the CLI said.
fn create_course_101(daemon: &Daemon) -> String {
    ok(&daemon.cli(&[
        "eval",
        "create",
        "course-101",
        "--title",
        "Course 101",
        "--owner",
        "owner@example.org",
        "--students",
        "a@example.org,b@example.org,c@example.org",
        "--start",
        "2026-03-02T08:00:00Z",
        "--due",
        "2026-03-09T17:00:00Z",
        "--view",
        "2026-03-10T08:00:00Z",
        "--reminder",
        "every-1d",
        "--zone",
        "Europe/Paris",
    ]))
}

/// Site `demo` and its course `c-1`, starting 2026-03-01.
fn a_site_and_course(daemon: &Daemon) {
    ok(&daemon.cli(&["site", "set", "demo"]));
    ok(&daemon.cli(&[
        "course",
        "set",
        "c-1",
        "--site",
        "demo",
        "--start",
        "2026-03-01T00:00:00Z",
    ]));
}

/// The CLI run with `COLUMNS` set, as a terminal of that width would.
fn at_width(daemon: &Daemon, columns: u16, args: &[&str]) -> String {
    let output = Command::new(BIN)
        .arg("--config")
        .arg(&daemon.config)
        .arg("--socket")
        .arg(&daemon.socket)
        .args(args)
        .env("COLUMNS", columns.to_string())
        .current_dir(&daemon.work)
        .output()
        .unwrap();
    ok(&output)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_main_tables_fit_an_80_column_terminal() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    ok(&daemon.cli(&[
        "due-date",
        "create",
        "review-of-a-long-manuscript-title-42",
        "--recipient",
        "a.reviewer.with.a.long.address@example.org",
        "--zone",
        "America/Argentina/Buenos_Aires",
    ]));
    create_course_101(&daemon);
    ok(&daemon.cli(&["clock", "advance", "12d"]));
    let review = "due/review-of-a-long-manuscript-title-42";
    for args in [
        &["show", review][..],
        &["show", "eval/course-101"],
        &["history", "eval/course-101"],
        &["list"],
        &["status"],
        &[
            "due",
            "--from",
            "2026-03-01T00:00:00Z",
            "--to",
            "2026-04-01T00:00:00Z",
        ],
        &["explain", review],
        &["failures"],
    ] {
        let text = at_width(&daemon, 80, args);
        for line in text.lines() {
            assert!(
                line.chars().count() <= 80,
                "`{}` prints a line of {} columns:\n{text}",
                args.join(" "),
                line.chars().count()
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn output_summarises_repeats_and_shows_attributes_and_answers() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let created = create_course_101(&daemon);
    assert!(
        created.contains("created, 11 × occurrence-planned"),
        "{created}"
    );
    let answered = ok(&daemon.cli(&["eval", "respond", "course-101", "b@example.org"]));
    assert_eq!(answered.lines().count(), 1, "{answered}");
    assert!(
        answered.contains("1 of 3 students have answered"),
        "{answered}"
    );
    let shown = ok(&daemon.cli(&["show", "eval/course-101"]));
    assert!(
        shown.contains("students: (3) a@example.org, b@example.org"),
        "{shown}"
    );
    assert!(shown.contains("respondents: (1) b@example.org"), "{shown}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_puts_what_needs_an_operator_first_in_human_units() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let status = ok(&daemon.cli(&["status"]));
    let rows: Vec<&str> = status.lines().filter(|l| l.starts_with('│')).collect();
    assert!(rows[0].contains("quarantined"), "{status}");
    assert!(status.contains(" B ") || status.contains("KiB"), "{status}");
    assert!(!status.contains('{'), "no raw JSON in {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_filter_value_is_refused_listing_the_valid_ones() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    refused(
        &daemon.cli(&["list", "--policy", "duedate"]),
        &["\"duedate\"", "due-date"],
    );
    refused(
        &daemon.cli(&["list", "--kind", "dew"]),
        &["\"dew\"", "due, "],
    );
    refused(
        &daemon.cli(&["failures", "--channel", "pigeon"]),
        &["\"pigeon\"", "rapidpro"],
    );
    ok(&daemon.cli(&["due-date", "create", "r-1", "--recipient", "r@example.org"]));
    refused(
        &daemon.cli(&["history", "due/r-1", "--outcome", "sentt"]),
        &["\"sentt\"", "system-error"],
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mistakes_get_an_answer_that_points_the_right_way() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let zone = daemon.cli(&[
        "due-date",
        "create",
        "r-1",
        "--recipient",
        "r@x.org",
        "--zone",
        "europe/paris",
    ]);
    refused(&zone, &["did you mean Europe/Paris?"]);
    refused(
        &daemon.cli(&["clock", "advance", "--", "-1d"]),
        &["negative", "[invalid_arguments]"],
    );
    ok(&daemon.cli(&["due-date", "create", "r-1", "--recipient", "r@example.org"]));
    ok(&daemon.cli(&["shutdown"]));
    let data = daemon.data_dir.to_str().unwrap();
    wait_for_unlock(&daemon);
    let before = daemon.cli(&[
        "replay",
        "--data-dir",
        data,
        "due/r-1",
        "--as-of",
        "2026-01-01T00:00:00Z",
    ]);
    refused(
        &before,
        &["did not exist yet", "created at 2026-03-01T09:30:00Z"],
    );
}

/// The daemon releases the data directory's lock when its process ends.
fn wait_for_unlock(daemon: &Daemon) {
    let started = Instant::now();
    while daemon.socket.exists() && started.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn cannot_connect_names_the_absolute_socket_and_how_it_was_chosen_once() {
    let work = tempfile::tempdir().unwrap();
    let output = Command::new(BIN)
        .args(["--data-dir", "elsewhere", "status"])
        .current_dir(work.path())
        .output()
        .unwrap();
    let socket = work.path().join("elsewhere/admin/tickler.sock");
    let message = stderr(&output);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        message.matches(socket.to_str().unwrap()).count(),
        1,
        "{message}"
    );
    assert!(
        message.contains("--data-dir or TICKLER_DATA_DIR"),
        "{message}"
    );
}

#[test]
fn with_json_every_error_is_one_json_object_on_stdout() {
    let work = tempfile::tempdir().unwrap();
    for (args, code) in [
        (&["--json", "status"][..], "cannot_connect"),
        (&["--json", "list", "--limit", "many"], "usage"),
    ] {
        let output = Command::new(BIN)
            .args(args)
            .current_dir(work.path())
            .output()
            .unwrap();
        assert_ne!(output.status.code(), Some(0));
        let error: Value = serde_json::from_slice(&output.stdout).unwrap();
        assert_eq!(error["ok"], false);
        assert_eq!(error["error"]["code"], code, "{error}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_daemons_error_with_json_is_its_reply_printed_once() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let output = daemon.cli(&["--json", "show", "due/nope"]);
    assert_eq!(output.status.code(), Some(1));
    let reply: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(reply["ok"], false);
    assert_eq!(reply["error"]["code"], "unknown_entity");
}

/// `tickler serve` in an empty directory, with only the binary.
fn serve_alone(dir: &Path, extra: &[&str]) -> std::process::Child {
    Command::new(BIN)
        .args(["serve", "--clock", "manual"])
        .args(extra)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

fn in_dir(dir: &Path, args: &[&str]) -> Output {
    Command::new(BIN)
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap()
}

fn wait_answering(dir: &Path) {
    let started = Instant::now();
    while !in_dir(dir, &["clock", "now"]).status.success() {
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "the daemon did not answer"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn the_binary_alone_serves_the_built_in_policies_without_demo_data() {
    let work = tempfile::tempdir().unwrap();
    let dir = work.path();
    let shown: Value =
        serde_json::from_str(&ok(&in_dir(dir, &["--json", "config", "show"]))).unwrap();
    assert_eq!(shown["config"], "the built-in defaults");
    assert_eq!(shown["policies"]["from"], "built-in policies");
    let mut daemon = serve_alone(dir, &["--start", "2030-01-01T09:00:00Z"]);
    wait_answering(dir);
    ok(&in_dir(
        dir,
        &["due-date", "create", "r-1", "--recipient", "r@example.org"],
    ));
    refused(&in_dir(dir, &["show", "site/demo"]), &["unknown_entity"]);
    ok(&in_dir(dir, &["shutdown"]));
    daemon.wait().unwrap();
    let mut daemon = serve_alone(dir, &["--demo"]);
    wait_answering(dir);
    ok(&in_dir(dir, &["show", "site/demo"]));
    let now = ok(&in_dir(dir, &["clock", "now"]));
    assert!(
        now.contains("2030-01-01T09:00:00Z"),
        "resumes where --start began: {now}"
    );
    ok(&in_dir(dir, &["shutdown"]));
    daemon.wait().unwrap();
}

#[test]
fn a_broken_config_is_reported_before_anything_is_created() {
    let work = tempfile::tempdir().unwrap();
    std::fs::write(work.path().join("bad.toml"), "policies = \"nowhere\"\n").unwrap();
    let output = in_dir(work.path(), &["--config", "bad.toml", "serve"]);
    refused(&output, &["nowhere"]);
    assert!(
        !work.path().join("data").exists(),
        "the data directory was created"
    );
}

#[test]
fn clients_find_the_daemon_through_tickler_data_dir_from_anywhere() {
    let work = tempfile::tempdir().unwrap();
    let serving = work.path().join("srv");
    std::fs::create_dir(&serving).unwrap();
    let mut daemon = serve_alone(&serving, &[]);
    wait_answering(&serving);
    let output = Command::new(BIN)
        .arg("status")
        .env("TICKLER_DATA_DIR", serving.join("data"))
        .current_dir(work.path())
        .output()
        .unwrap();
    ok(&output);
    ok(&in_dir(&serving, &["shutdown"]));
    daemon.wait().unwrap();
}

#[test]
fn the_version_names_the_commit() {
    let version = ok(&Command::new(BIN).arg("--version").output().unwrap());
    assert!(version.contains("(commit "), "{version}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_learner_import_leaves_no_empty_report_and_speaks_json() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    refused(
        &daemon.cli(&["learner", "import", "--file", "missing.csv"]),
        &["missing.csv"],
    );
    assert!(!work.path().join("missing.csv.report.jsonl").exists());
    a_site_and_course(&daemon);
    std::fs::write(
        work.path().join("good.csv"),
        "learner,email,course\nana,ana@example.org,c-1\n",
    )
    .unwrap();
    let summary: Value = serde_json::from_str(&ok(
        &daemon.cli(&["--json", "learner", "import", "--file", "good.csv"])
    ))
    .unwrap();
    assert_eq!(summary["failed"], 0, "{summary}");
    assert!(!work.path().join("good.csv.report.jsonl").exists());
}

#[test]
fn the_manual_page_documents_every_command() {
    // roff writes a hyphen as `\-`.
    let page = ok(&Command::new(BIN).arg("man").output().unwrap()).replace("\\-", "-");
    assert!(
        page.starts_with(".ie") || page.contains(".TH tickler"),
        "{page}"
    );
    for command in ["failures", "due-date", "replay", "config"] {
        assert!(
            page.contains(command),
            "{command} is not in the manual page"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn instants_take_dates_local_times_and_now_relative_shorthands() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let created = result(&daemon.cli(&[
        "--json",
        "due-date",
        "create",
        "r-1",
        "--recipient",
        "r@example.org",
        "--zone",
        "Europe/Paris",
        "--due",
        "now+14d",
    ]));
    assert_eq!(
        created["state"]["anchors"]["due_at"],
        "2026-03-15T10:00:00Z"
    );
    // A local time is read in the entity's zone (Paris: UTC+1 in January).
    let moved = result(&daemon.cli(&[
        "--json",
        "due-date",
        "move",
        "r-1",
        "--to",
        "2030-01-01T10:00",
    ]));
    assert_eq!(moved["state"]["anchors"]["due_at"], "2030-01-01T09:00:00Z");
    let due = result(&daemon.cli(&["--json", "due", "--within", "7d"]));
    assert_eq!(due["from"], "2026-03-01T09:30:00Z");
    assert_eq!(due["to"], "2026-03-08T09:30:00Z");
    let typo = daemon.cli(&["due", "--within", "7d", "--from", "tomorrow"]);
    assert_eq!(typo.status.code(), Some(2), "a usage error");
    assert!(stderr(&typo).contains("now+7d"), "{}", stderr(&typo));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn preview_says_when_it_listed_only_part() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    a_site_and_course(&daemon);
    let preview = ok(&daemon.cli(&[
        "preview",
        "--course",
        "c-1",
        "--from",
        "2026-03-01T00:00:00Z",
        "--to",
        "2026-04-01T00:00:00Z",
        "--sample",
        "20",
        "--limit",
        "5",
    ]));
    assert!(preview.contains("showing 5 of"), "{preview}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn import_and_compact_answer_in_json_with_json() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), "2026-03-01T09:30:00Z").await;
    let requests = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples/requests.jsonl");
    let imported: Value = serde_json::from_str(&ok(&daemon.cli(&[
        "--json",
        "import",
        requests.to_str().unwrap(),
    ])))
    .unwrap();
    assert_eq!(imported["imported"], 3, "{imported}");
    ok(&daemon.cli(&["shutdown"]));
    daemon.kill();
    let data = daemon.data_dir.to_str().unwrap().to_owned();
    let compacted: Value = serde_json::from_str(&ok(&daemon.cli(&[
        "--json",
        "compact",
        "--data-dir",
        &data,
    ])))
    .unwrap();
    assert!(compacted["entries"].as_u64().unwrap() > 0, "{compacted}");
}
