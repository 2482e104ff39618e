//! The web dashboard (`dashboard_listen`), tried as support staff and operators use it: in a
//! real headless Chromium, driven through WebDriver, against the real daemon on a manual clock.
//! Logging in, an entity's timeline and story, a failure retried from the page, a channel
//! paused from the page; and what must not work: a page without a session, markup in a value,
//! an action without its CSRF token or without the operator's token.

mod support;
#[path = "support/webdriver.rs"]
mod webdriver;

use std::path::{Path, PathBuf};

use support::http::{Answer, HttpServer};
use support::{Daemon, create_due, free_port, ok, result};
use webdriver::Browser;

const START: &str = "2026-03-01T09:00:00Z";
const SECRET_ENV: &str = "TICKLER_TEST_SECRET";

/// A daemon in `work` with the dashboard on a free loopback port, the config changed first
/// by `adjust`; and the dashboard's address.
async fn serving_dashboard(work: &Path, adjust: impl FnOnce(&Path)) -> (Daemon, String) {
    let port = free_port();
    let setting = format!("dashboard_listen = \"127.0.0.1:{port}\"");
    adjust(&support::write_config_with(work, START, &setting));
    let mut daemon = Daemon::configure(work, START, "manual");
    daemon.env = vec![(SECRET_ENV.into(), "secret".into())];
    daemon.restart().await;
    (daemon, format!("http://127.0.0.1:{port}"))
}

fn token(daemon: &Daemon, operator: bool) -> String {
    let mut args = vec!["dashboard", "token"];
    if operator {
        args.push("--operator");
    }
    ok(&daemon.cli(&args)).trim().to_owned()
}

/// Types `token` into the login form and submits it.
async fn submit_token(browser: &Browser, base: &str, token: &str) {
    browser.goto(&format!("{base}/login")).await;
    let field = browser.find("#token").await;
    browser.type_into(&field, token).await;
    browser.click(&browser.find("#log-in").await).await;
}

/// Logs the browser in with `token`, and waits for the signed-in page.
async fn log_in(browser: &Browser, base: &str, token: &str) {
    submit_token(browser, base, token).await;
    browser.wait_for("header nav").await;
}

/// Where the tests leave their screenshots (CI keeps them; `docs/` has committed copies).
fn screenshot_path(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/dashboard-screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

/// A plain HTTP client that keeps no cookie unless told: what a script outside the browser sees.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The page at `path` as a session with `cookie` reads it.
async fn page(base: &str, path: &str, cookie: &str) -> reqwest::Response {
    let request = http().get(format!("{base}{path}")).header("cookie", cookie);
    request.send().await.unwrap()
}

/// A session cookie for `token`, from the login form, as a browser would get it.
async fn session_cookie(base: &str, token: &str) -> String {
    let response = http()
        .post(format!("{base}/login"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(format!("token={token}"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 303);
    let cookie = response.headers()["set-cookie"]
        .to_str()
        .unwrap()
        .to_owned();
    for attribute in ["HttpOnly", "SameSite=Strict"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    cookie.split(';').next().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_session_every_page_is_401_with_no_data_and_the_token_opens_it() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, base) = serving_dashboard(work.path(), |_| {}).await;
    create_due(&daemon, "essay-1", "2026-03-05T17:00:00Z");
    for path in [
        "/",
        "/entity?id=due/essay-1",
        "/failures",
        "/due",
        "/pauses",
    ] {
        let response = http().get(format!("{base}{path}")).send().await.unwrap();
        assert_eq!(response.status(), 401, "{path}");
        let body = response.text().await.unwrap();
        assert!(!body.contains("essay-1"), "{path} shows data: {body}");
    }
    let Some(browser) = Browser::start().await else {
        return;
    };
    submit_token(&browser, &base, "not-the-token").await;
    let refused = browser.text(&browser.wait_for("#problem").await).await;
    assert!(refused.contains("tickler dashboard token"), "{refused}");

    log_in(&browser, &base, &token(&daemon, false)).await;
    assert_eq!(browser.current_url().await, format!("{base}/"));
    assert_eq!(browser.text(&browser.find("#entities").await).await, "1");
    assert_eq!(browser.text(&browser.find("#clock").await).await, "manual");
    assert_eq!(
        browser.find_all("#activity rect").await.len(),
        0,
        "nothing fired yet"
    );
    ok(&daemon.cli(&["clock", "advance", "3d"]));
    browser.goto(&format!("{base}/")).await;
    let sent = browser.find_all("#activity rect.sent").await;
    assert_eq!(sent.len(), 1, "the hour the reminder went out has its bar");
    browser.screenshot(&screenshot_path("overview.png")).await;
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_entity_timeline_shows_planned_moved_and_sent_in_order_each_explained() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, base) = serving_dashboard(work.path(), |_| {}).await;
    create_due(&daemon, "essay-1", "2026-03-05T17:00:00Z");
    ok(&daemon.cli(&["clock", "advance", "1h"]));
    let moved = "2026-03-06T17:00:00Z";
    ok(&daemon.cli(&["due-date", "move", "due/essay-1", "--to", moved]));
    ok(&daemon.cli(&["clock", "advance", "4d"]));
    let Some(browser) = Browser::start().await else {
        return;
    };
    log_in(&browser, &base, &token(&daemon, false)).await;
    browser.goto(&format!("{base}/entity?id=due/essay-1")).await;

    let mut lanes = Vec::new();
    for point in browser.find_all("#timeline a.point").await {
        let lane = browser.attribute(&point, "data-lane").await.unwrap();
        let seq = browser.attribute(&point, "data-seq").await.unwrap();
        let row = browser.find(&format!("#event-{seq} .explain")).await;
        lanes.push((lane, browser.text(&row).await));
    }
    let first = |wanted: &str| {
        lanes
            .iter()
            .position(|(lane, _)| lane == wanted)
            .unwrap_or_else(|| panic!("no {wanted} point in {lanes:?}"))
    };
    let (planned, moved_at, sent) = (first("planned"), first("moved"), first("sent"));
    assert!(planned < moved_at && moved_at < sent, "{lanes:?}");
    assert!(lanes[planned].1.contains("planned for"), "{lanes:?}");
    assert!(lanes[moved_at].1.contains("due_at moved"), "{lanes:?}");
    assert!(lanes[sent].1.contains("sent"), "{lanes:?}");
    browser.screenshot(&screenshot_path("entity.png")).await;

    // As of before the move: the entity as it was then, with no moved point yet.
    let as_of = browser.find("#as-of").await;
    browser.type_into(&as_of, "2026-03-01T09:30:00Z").await;
    browser.click(&browser.find("#show-as-of").await).await;
    let note = browser.text(&browser.wait_for("#as-of-note").await).await;
    assert!(note.contains("2026-03-01T09:30:00Z"), "{note}");
    let points = browser.find_all("#timeline a.point.moved").await;
    assert!(points.is_empty(), "nothing had moved by then");
    browser.quit().await;
}

/// The due-date channel pointed at a loopback port where nothing listens, two attempts.
fn deliver_to_closed_port(config: &Path, port: u16) {
    let url = format!("http://127.0.0.1:{port}/hook");
    support::deliver_to_webhook(config, &url, SECRET_ENV);
    let text = std::fs::read_to_string(config)
        .unwrap()
        .replace("max_attempts = 5", "max_attempts = 2");
    std::fs::write(config, text).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failure_retried_from_the_page_is_delivered_under_the_same_key() {
    let work = tempfile::tempdir().unwrap();
    let port = free_port();
    let (daemon, base) =
        serving_dashboard(work.path(), |config| deliver_to_closed_port(config, port)).await;
    create_due(&daemon, "review-1", "2026-03-11T10:00:00Z");
    create_due(&daemon, "review-2", "2026-03-11T10:00:00Z");
    // Each pre-due reminder's first attempt fails: each waits for its second.
    ok(&daemon.cli(&["clock", "set", "2026-03-09T10:00:00Z"]));
    let Some(browser) = Browser::start().await else {
        return;
    };
    log_in(&browser, &base, &token(&daemon, true)).await;
    browser.goto(&format!("{base}/failures")).await;
    assert_eq!(browser.find_all("#retrying tbody tr").await.len(), 2);
    assert!(!browser.find_all("#no-failures").await.is_empty());
    // Review-2's is cancelled while it waits; review-1's second attempt fails too.
    let cancel = "#retrying tr[data-entity='due/review-2'] button.cancel";
    browser.click(&browser.find(cancel).await).await;
    let done = browser.text(&browser.wait_for("#done").await).await;
    assert_eq!(done, "due/review-2 pre-due#0 cancelled");
    ok(&daemon.cli(&["clock", "advance", "1d"]));
    let history = result(&daemon.cli(&["--json", "history", "due/review-2"]));
    let ended = &history["past_events"][0];
    assert_eq!(ended["reason"], "deactivated", "{history}");
    assert_eq!(ended["detail"], "cancelled by an operator", "{history}");
    browser.goto(&format!("{base}/failures")).await;
    assert!(!browser.find_all("#no-retrying").await.is_empty());
    let row = browser
        .text(&browser.find("#failures tbody tr").await)
        .await;
    assert!(
        row.contains("due/review-1") && row.contains("pre-due#0"),
        "{row}"
    );
    assert!(
        row.to_lowercase().contains("connect"),
        "the last error is shown: {row}"
    );

    let receiver =
        HttpServer::start_on(&format!("127.0.0.1:{port}"), vec![Answer::status(201)]).await;
    browser
        .click(&browser.find("#failures button.retry").await)
        .await;
    let done = browser.text(&browser.wait_for("#done").await).await;
    assert!(done.contains("retry of due/review-1 pre-due#0"), "{done}");
    ok(&daemon.cli(&["clock", "advance", "1m"]));
    let keys: Vec<String> = receiver
        .requests()
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(
        keys,
        ["due/review-1#pre-due#0"],
        "one delivery, the original key"
    );
    browser.goto(&format!("{base}/failures")).await;
    assert!(!browser.find_all("#no-failures").await.is_empty());
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_channel_paused_from_the_page_is_paused_for_the_socket_too() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, base) = serving_dashboard(work.path(), |_| {}).await;
    let Some(browser) = Browser::start().await else {
        return;
    };
    // Read-only staff see the pauses but get no button.
    log_in(&browser, &base, &token(&daemon, false)).await;
    browser.goto(&format!("{base}/pauses")).await;
    assert!(browser.find_all("#pauses button").await.is_empty());
    browser
        .click(&browser.find("header form button").await)
        .await;
    browser.wait_for("#token").await;

    log_in(&browser, &base, &token(&daemon, true)).await;
    browser.goto(&format!("{base}/pauses")).await;
    let pause_file = "#pauses tr[data-scope=channel][data-name=file] button";
    browser.click(&browser.find(pause_file).await).await;
    let done = browser.text(&browser.wait_for("#done").await).await;
    assert_eq!(done, "channel file paused");
    let status = result(&daemon.cli(&["status", "--json"]));
    assert_eq!(
        status["paused"]["channels"],
        serde_json::json!(["file"]),
        "{status}"
    );
    assert_eq!(status["paused"]["all"], false);
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn markup_in_an_attribute_is_shown_as_text_and_no_script_runs() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, base) = serving_dashboard(work.path(), |_| {}).await;
    create_due(&daemon, "essay-1", "2026-03-05T17:00:00Z");
    let markup = "<script>alert(1)</script>";
    let value = serde_json::to_string(markup).unwrap();
    ok(&daemon.cli(&["entity", "set-attribute", "due/essay-1", "title", &value]));
    let Some(browser) = Browser::start().await else {
        return;
    };
    log_in(&browser, &base, &token(&daemon, false)).await;
    browser.goto(&format!("{base}/entity?id=due/essay-1")).await;
    let shown = browser.text(&browser.find("#attributes td").await).await;
    assert_eq!(shown, markup);
    assert!(
        browser.find_all("script").await.is_empty(),
        "no script element on the page"
    );
    // An alert would block the next command with "unexpected alert open".
    let source = browser.source().await;
    assert!(source.contains("&lt;script&gt;"), "{source}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_without_the_csrf_token_or_the_operators_token_changes_nothing() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, base) = serving_dashboard(work.path(), |_| {}).await;
    let pause_all = |cookie: Option<String>, csrf: &str| {
        let mut request = http()
            .post(format!("{base}/pauses"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(format!("csrf={csrf}&action=pause&scope=all&name="));
        if let Some(cookie) = cookie {
            request = request.header("cookie", cookie);
        }
        request.send()
    };
    let unsigned = pause_all(None, "").await.unwrap();
    assert_eq!(unsigned.status(), 401);
    let operator = session_cookie(&base, &token(&daemon, true)).await;
    let forged = pause_all(Some(operator.clone()), "forged").await.unwrap();
    assert_eq!(forged.status(), 403);
    assert!(forged.text().await.unwrap().contains("CSRF"));
    let missing = pause_all(Some(operator), "").await.unwrap();
    assert_eq!(missing.status(), 403);

    // A read-only session with its own, valid CSRF token is refused too.
    let reader = session_cookie(&base, &token(&daemon, false)).await;
    let page = page(&base, "/pauses", &reader).await.text().await.unwrap();
    let csrf = page
        .split("name=\"csrf\" value=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("the page's forms carry the CSRF token")
        .to_owned();
    let read_only = pause_all(Some(reader), &csrf).await.unwrap();
    assert_eq!(read_only.status(), 403);
    assert!(read_only.text().await.unwrap().contains("operator"));
    let status = result(&daemon.cli(&["status", "--json"]));
    assert_eq!(status["paused"]["all"], false, "{status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_token_ends_its_sessions_and_the_token_files_are_private() {
    use std::os::unix::fs::PermissionsExt;
    let work = tempfile::tempdir().unwrap();
    let (daemon, base) = serving_dashboard(work.path(), |_| {}).await;
    let cookie = session_cookie(&base, &token(&daemon, false)).await;
    assert_eq!(page(&base, "/", &cookie).await.status(), 200);
    for file in ["dashboard.token", "dashboard-operator.token"] {
        let mode = std::fs::metadata(daemon.data_dir.join(file))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{file}");
    }
    let new = ok(&daemon.cli(&["dashboard", "rotate-token"]))
        .trim()
        .to_owned();
    assert_eq!(page(&base, "/", &cookie).await.status(), 401);
    let renewed = session_cookie(&base, &new).await;
    assert_eq!(page(&base, "/", &renewed).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_by_id_prefix_and_recipient_and_due_lists_what_fires() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, base) = serving_dashboard(work.path(), |_| {}).await;
    create_due(&daemon, "essay-1", "2026-03-05T17:00:00Z");
    create_due(&daemon, "essay-2", "2026-03-20T17:00:00Z");
    create_due(&daemon, "review-1", "2026-03-05T17:00:00Z");
    let cookie = session_cookie(&base, &token(&daemon, false)).await;
    let search = |form: &'static str| {
        http()
            .post(format!("{base}/search"))
            .header("cookie", &cookie)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form)
            .send()
    };
    let found = search("q=due%2Fessay").await.unwrap().text().await.unwrap();
    assert!(
        found.contains("essay-1") && found.contains("essay-2"),
        "{found}"
    );
    assert!(!found.contains("review-1"), "{found}");
    let exact = search("q=due%2Freview-1")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(exact.contains("review-1@example.org"), "{exact}");
    let by_recipient = search("recipient=essay-2%40example.org").await.unwrap();
    let by_recipient = by_recipient.text().await.unwrap();
    assert!(by_recipient.contains("due&#x2f;essay-2"), "{by_recipient}");
    assert!(!by_recipient.contains("essay-1"), "{by_recipient}");
    let none = search("q=nothing%2Fhere")
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(none.contains("id=\"no-results\""), "{none}");

    let week = page(&base, "/due?range=week", &cookie).await;
    let week = week.text().await.unwrap();
    // Within 7 days of 09:00 on 1 March: the pre-due (3rd) and first-late (7th) reminders of
    // the two due on the 5th.
    assert!(
        week.contains("due&#x2f;essay-1") && week.contains("due&#x2f;review-1"),
        "{week}"
    );
    assert!(!week.contains("due&#x2f;essay-2"), "{week}");
    let counts = week
        .split("id=\"due-counts\"")
        .nth(1)
        .expect("the counts table");
    assert!(
        counts.contains("<td>due-date</td><td>4</td>"),
        "by policy: {counts}"
    );
    let backwards = "/due?range=custom&from=2026-03-09T00:00:00Z&to=2026-03-01T00:00:00Z";
    let bad = page(&base, backwards, &cookie).await;
    assert_eq!(bad.status(), 400);
    assert!(bad.text().await.unwrap().contains("before it starts"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_preview_page_charts_a_courses_dry_run_per_day() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, base) = serving_dashboard(work.path(), |_| {}).await;
    ok(&daemon.cli(&["site", "set", "demo"]));
    let course = ["course", "set", "c-1", "--site", "demo"];
    ok(&daemon.cli(&[&course[..], &["--start", "2026-03-01T00:00:00Z"]].concat()));
    let (from, to) = ("2026-03-01T00:00:00Z", "2026-04-01T00:00:00Z");
    let expected = result(&daemon.cli(&[
        "--json", "preview", "--course", "c-1", "--from", from, "--to", to, "--sample", "20",
    ]));
    let total: u64 = expected["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["count"].as_u64().unwrap())
        .sum();
    assert!(total > 0, "the sample gets messages: {expected}");
    let Some(browser) = Browser::start().await else {
        return;
    };
    log_in(&browser, &base, &token(&daemon, false)).await;
    browser.goto(&format!("{base}/preview")).await;
    for (field, value) in [
        ("#subject", "c-1"),
        ("#from", from),
        ("#to", to),
        ("#sample", "20"),
    ] {
        browser.type_into(&browser.find(field).await, value).await;
    }
    browser.click(&browser.find("#run-preview").await).await;
    let said = browser
        .text(&browser.wait_for("#preview-total").await)
        .await;
    assert!(
        said.starts_with(&format!("{total} messages")),
        "{said} (the CLI's total: {total})"
    );
    let days: std::collections::BTreeSet<&str> = expected["counts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["day"].as_str().unwrap())
        .collect();
    assert_eq!(
        browser.find_all("#preview-chart g.day").await.len(),
        days.len()
    );

    browser
        .goto(&format!(
            "{base}/preview?subject=no-such-course&from={from}&to={to}"
        ))
        .await;
    let refused = browser.text(&browser.find("#problem").await).await;
    assert!(refused.contains("no-such-course"), "{refused}");
    browser.quit().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_loopback_dashboard_is_refused_at_start_unless_allowed_explicitly() {
    let work = tempfile::tempdir().unwrap();
    support::write_config_with(work.path(), START, "dashboard_listen = \"0.0.0.0:8090\"");
    let stderr = support::refused_at_start(work.path(), START);
    assert!(
        stderr.contains("dashboard_listen = \"0.0.0.0:8090\" is not a loopback address")
            && stderr.contains("dashboard_allow_non_loopback = true")
            && stderr.contains("TLS"),
        "{stderr}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_page_forbids_scripts_frames_and_caching() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, base) = serving_dashboard(work.path(), |_| {}).await;
    let cookie = session_cookie(&base, &token(&daemon, false)).await;
    for (path, signed_in) in [
        ("/login", false),
        ("/", true),
        ("/due", true),
        ("/nope", true),
    ] {
        let mut request = http().get(format!("{base}{path}"));
        if signed_in {
            request = request.header("cookie", &cookie);
        }
        let response = request.send().await.unwrap();
        let header = |name: &str| response.headers()[name].to_str().unwrap().to_owned();
        let policy = header("content-security-policy");
        assert!(policy.starts_with("default-src 'none'"), "{path}: {policy}");
        assert!(
            !policy.contains("script-src"),
            "{path}: no script source at all"
        );
        assert_eq!(header("x-frame-options"), "DENY", "{path}");
        assert_eq!(header("cache-control"), "no-store", "{path}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cluster_node_refuses_a_dashboard_rather_than_show_part_of_the_cluster() {
    let work = tempfile::tempdir().unwrap();
    support::write_config_with(work.path(), START, "dashboard_listen = \"127.0.0.1:8090\"");
    let cluster = work.path().join("node-a.toml");
    std::fs::write(
        &cluster,
        "node = \"node-a\"\npostgres_url = \"host=/nowhere\"\n",
    )
    .unwrap();
    let daemon = Daemon::configure(work.path(), START, "system");
    let refused = support::run_to_exit(&daemon, &["serve", "--cluster", cluster.to_str().unwrap()]);
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("does not serve the dashboard yet")
            && stderr.contains("remove dashboard_listen"),
        "{stderr}"
    );
    assert!(
        !daemon.data_dir.exists(),
        "refused before the data directory"
    );
}
