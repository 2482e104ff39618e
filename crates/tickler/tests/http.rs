//! The daemon's HTTP endpoint (`http_listen`), spoken to over a plain TCP connection so that
//! every byte of a response is seen: `GET /metrics` in the Prometheus text format, `/healthz`,
//! `/readyz`, `HEAD`, a wrong path or method, keep-alive; and the address it may listen on.

mod support;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;

use support::{Daemon, create_due, free_port, ok};

const START: &str = "2026-03-01T09:30:00Z";

/// A response as read off the connection.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, value)| value.as_str())
    }
}

/// A daemon serving HTTP on a loopback port, and the port.
async fn serving_http(work: &std::path::Path) -> (Daemon, u16) {
    let port = free_port();
    listen_on(work, &format!("http_listen = \"127.0.0.1:{port}\""));
    (Daemon::start(work, START).await, port)
}

/// Writes the shipped config into `work` with `setting` added at the top level.
fn listen_on(work: &std::path::Path, setting: &str) {
    support::write_config_with(work, START, setting);
}

/// Sends `method path` on `stream` and reads one response: its head, then as many body bytes
/// as its `content-length` says (none for `HEAD`).
fn exchange(stream: &mut TcpStream, method: &str, path: &str) -> Response {
    let request = format!("{method} {path} HTTP/1.1\r\nhost: localhost\r\n\r\n");
    stream.write_all(request.as_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut line = String::new();
    reader.read_line(&mut line).unwrap();
    let status = line.split_whitespace().nth(1).unwrap().parse().unwrap();
    let mut headers = Vec::new();
    loop {
        line.clear();
        reader.read_line(&mut line).unwrap();
        let Some((name, value)) = line.trim_end().split_once(':') else {
            break; // the blank line ending the head
        };
        headers.push((name.to_owned(), value.trim().to_owned()));
    }
    let mut response = Response {
        status,
        headers,
        body: String::new(),
    };
    if method != "HEAD" {
        let len: usize = response.header("content-length").unwrap().parse().unwrap();
        let mut body = vec![0; len];
        reader.read_exact(&mut body).unwrap();
        response.body = String::from_utf8(body).unwrap();
    }
    response
}

fn get(port: u16, path: &str) -> Response {
    exchange(
        &mut TcpStream::connect(("127.0.0.1", port)).unwrap(),
        "GET",
        path,
    )
}

/// The value of the one sample `series` (name and labels as exposed), if it is there.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|line| line.strip_prefix(series)?.strip_prefix(' '))
        .map(|value| value.parse().unwrap())
}

/// Checks `text` against the Prometheus text format: `# HELP` and `# TYPE` lines, and samples
/// `name{labels} value` of a declared metric (a histogram's as `_bucket`, `_sum`, `_count`).
fn assert_prometheus_text(text: &str) {
    let mut declared: Vec<(String, String)> = Vec::new();
    for line in text.lines() {
        if let Some(help) = line.strip_prefix("# HELP ") {
            assert!(help.contains(' '), "a help without text: {line}");
        } else if let Some(declaration) = line.strip_prefix("# TYPE ") {
            let (name, kind) = declaration.split_once(' ').unwrap();
            assert!(["counter", "gauge", "histogram"].contains(&kind), "{line}");
            declared.push((name.to_owned(), kind.to_owned()));
        } else {
            let (series, value) = line.rsplit_once(' ').unwrap();
            assert!(value.parse::<f64>().is_ok(), "not a number: {line}");
            let name = series.split('{').next().unwrap();
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "{line}"
            );
            assert!(
                series == name || (series.ends_with("\"}") && series.contains("=\"")),
                "malformed labels: {line}"
            );
            let of_declared = declared.iter().any(|(declared, kind)| {
                name == declared
                    || (kind == "histogram"
                        && ["_bucket", "_sum", "_count"]
                            .iter()
                            .any(|suffix| name == format!("{declared}{suffix}")))
            });
            assert!(of_declared, "a sample of no declared metric: {line}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_are_prometheus_text_with_a_firing_lateness_histogram_once_a_reminder_fired() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, port) = serving_http(work.path()).await;
    create_due(&daemon, "review-1", "2026-03-11T10:00:00Z");
    // The reminder two days before the due date fires (its past event is then written).
    ok(&daemon.cli(&["clock", "advance", "9d"]));

    let response = get(port, "/metrics");
    assert_eq!(response.status, 200, "{response:?}");
    assert_eq!(
        response.header("content-type"),
        Some("text/plain; version=0.0.4; charset=utf-8")
    );
    let text = &response.body;
    assert_prometheus_text(text);
    assert!(
        text.contains("# TYPE tickler_firing_lateness_seconds histogram\n"),
        "{text}"
    );
    let count = sample(text, "tickler_firing_lateness_seconds_count").unwrap();
    assert!(count >= 1.0, "{text}");
    assert_eq!(
        sample(text, "tickler_firing_lateness_seconds_bucket{le=\"+Inf\"}"),
        Some(count)
    );
    assert!(
        sample(text, "tickler_firing_lateness_seconds_sum").is_some(),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_protocols_metrics_command_returns_the_same_exposition() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, port) = serving_http(work.path()).await;
    create_due(&daemon, "review-1", "2026-03-11T10:00:00Z");
    // Nothing moves between the two reads but the uptime.
    let without_uptime = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|line| !line.starts_with("tickler_uptime_seconds "))
            .map(str::to_owned)
            .collect()
    };
    let over_http = get(port, "/metrics").body;
    let over_socket = ok(&daemon.cli(&["metrics"]));
    assert_eq!(without_uptime(&over_http), without_uptime(&over_socket));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_metric_exposed_is_in_the_spec() {
    let spec = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/http.md"),
    )
    .unwrap();
    let work = tempfile::tempdir().unwrap();
    let (daemon, port) = serving_http(work.path()).await;
    create_due(&daemon, "review-1", "2026-03-11T10:00:00Z");
    ok(&daemon.cli(&["clock", "advance", "9d"]));
    let text = get(port, "/metrics").body;
    let undocumented: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.split(' ').next())
        .filter(|name| !spec.contains(&format!("| `{name}` |")))
        .collect();
    assert!(
        undocumented.is_empty(),
        "not in proto/http.md: {undocumented:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_answers_with_the_headers_and_no_body() {
    let work = tempfile::tempdir().unwrap();
    let (_daemon, port) = serving_http(work.path()).await;
    for path in ["/metrics", "/healthz", "/readyz"] {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let head = exchange(&mut stream, "HEAD", path);
        assert_eq!(head.status, 200, "{path}: {head:?}");
        assert!(head.header("content-type").is_some(), "{path}: {head:?}");
        // Had a body been sent, it would come before this second response's status line.
        let after = exchange(&mut stream, "GET", "/healthz");
        assert_eq!((after.status, after.body.as_str()), (200, "ok\n"), "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_path_is_not_found() {
    let work = tempfile::tempdir().unwrap();
    let (_daemon, port) = serving_http(work.path()).await;
    let response = get(port, "/secrets");
    assert_eq!(response.status, 404, "{response:?}");
    assert!(response.body.contains("/metrics"), "{response:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_method_is_refused_with_the_methods_allowed() {
    let work = tempfile::tempdir().unwrap();
    let (_daemon, port) = serving_http(work.path()).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let response = exchange(&mut stream, "POST", "/metrics");
    assert_eq!(response.status, 405, "{response:?}");
    let mut allowed: Vec<&str> = response
        .header("allow")
        .unwrap()
        .split(',')
        .map(str::trim)
        .collect();
    allowed.sort_unstable();
    assert_eq!(allowed, ["GET", "HEAD"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_kept_alive_connection_serves_several_requests() {
    let work = tempfile::tempdir().unwrap();
    let (_daemon, port) = serving_http(work.path()).await;
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let first = exchange(&mut stream, "GET", "/metrics");
    let second = exchange(&mut stream, "GET", "/metrics");
    assert_eq!((first.status, second.status), (200, 200));
    assert!(second.body.contains("# TYPE tickler_wakes_total counter"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_says_the_process_serves() {
    let work = tempfile::tempdir().unwrap();
    let (_daemon, port) = serving_http(work.path()).await;
    let response = get(port, "/healthz");
    assert_eq!((response.status, response.body.as_str()), (200, "ok\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readyz_says_a_healthy_daemon_is_ready() {
    let work = tempfile::tempdir().unwrap();
    let (_daemon, port) = serving_http(work.path()).await;
    let response = get(port, "/readyz");
    assert_eq!((response.status, response.body.as_str()), (200, "ready\n"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_address_is_refused_at_start_unless_allowed_explicitly() {
    let work = tempfile::tempdir().unwrap();
    listen_on(work.path(), "http_listen = \"0.0.0.0:9464\"");
    let stderr = support::refused_at_start(work.path(), START);
    assert!(
        stderr.contains("http_listen = \"0.0.0.0:9464\" is not a loopback address")
            && stderr.contains("set http_allow_non_loopback = true"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_channels_delivery_latency_is_a_histogram() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, port) = serving_http(work.path()).await;
    create_due(&daemon, "review-1", "2026-03-11T10:00:00Z");
    ok(&daemon.cli(&["clock", "advance", "9d"]));
    assert_eq!(daemon.outbox_keys().len(), 1, "the reminder went out");

    let text = get(port, "/metrics").body;
    assert!(
        text.contains("# TYPE tickler_delivery_duration_seconds histogram\n"),
        "{text}"
    );
    let file = "{channel=\"file\",outcome=\"delivered\"";
    assert_eq!(
        sample(
            &text,
            &format!("tickler_delivery_duration_seconds_count{file}}}")
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            &format!("tickler_delivery_duration_seconds_bucket{file},le=\"+Inf\"}}")
        ),
        Some(1.0),
        "{text}"
    );
}

/// A digest is looked up before it is created: the engine's own collect into it is refused
/// once (`unknown_entity`). That is the engine's business, not a caller's refused request.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engines_own_lookups_are_not_counted_as_callers_rejected_commands() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, port) = serving_http(work.path()).await;
    ok(&daemon.cli(&[
        "eval",
        "create",
        "course-101",
        "--title",
        "Course 101",
        "--owner",
        "owner@example.org",
        "--students",
        "a@example.org",
        "--start",
        "2026-03-02T10:00:00Z",
        "--due",
        "2026-03-09T10:00:00Z",
        "--consolidated",
    ]));
    // The available notice fires at the start, into a@example.org's digest: created on first use.
    ok(&daemon.cli(&["clock", "advance", "25h"]));
    ok(&daemon.cli(&["show", "digest/evaluation-digest/a@example.org"]));

    let text = get(port, "/metrics").body;
    assert_eq!(
        sample(
            &text,
            "tickler_commands_rejected_total{origin=\"engine\",code=\"unknown_entity\"}"
        ),
        Some(1.0),
        "{text}"
    );
    assert!(
        !text.contains("tickler_commands_rejected_total{origin=\"caller\""),
        "{text}"
    );
}
