//! Roles on the admin socket, through the real daemon: the application socket makes everyone
//! who opens it an app, root included; an app's operator command is refused as `forbidden`
//! naming its role, and the connection goes on serving. (The Python client's suite runs an app
//! as another uid on the main socket: `clients/python/tests/test_roles.py`.)

mod support;

use serde_json::json;
use support::{Daemon, run_to_exit};
use tickler_admin::{Client, FamilyCall, Request};

const START: &str = "2026-03-01T09:30:00Z";

/// A daemon whose config adds an application socket at `<work>/app/tickler.sock`.
async fn with_app_socket(work: &std::path::Path) -> (Daemon, std::path::PathBuf) {
    let mut daemon = Daemon::configure(work, START, "manual");
    let app_socket = work.join("app/tickler.sock");
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    let line = "# app_socket = \"/run/tickler/app/tickler.sock\"";
    assert!(text.contains(line), "the shipped config shows app_socket");
    let text = text.replace(
        line,
        &format!("app_socket = {:?}", app_socket.to_str().unwrap()),
    );
    std::fs::write(&daemon.config, text).unwrap();
    daemon.restart().await;
    (daemon, app_socket)
}

fn due_create(entity: &str) -> FamilyCall {
    FamilyCall::new(
        "due.create",
        &json!({"entity": entity, "recipient": "reviewer@example.org"}),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_application_socket_an_app_creates_and_reads() {
    let work = tempfile::tempdir().unwrap();
    let (_daemon, app_socket) = with_app_socket(work.path()).await;
    let mut app = Client::connect(&app_socket).await.unwrap();
    let created = app.call(due_create("due/review-1")).await.unwrap();
    assert!(created.ok, "{created:?}");
    let shown = app
        .call(FamilyCall::new("show", &json!({"entity": "due/review-1"})))
        .await
        .unwrap();
    assert_eq!(shown.result.unwrap()["workflow"], "reviewer-report");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn on_the_application_socket_even_root_may_not_stop_the_daemon_or_move_its_clock() {
    let work = tempfile::tempdir().unwrap();
    let (daemon, app_socket) = with_app_socket(work.path()).await;
    let mut app = Client::connect(&app_socket).await.unwrap();
    for request in [
        Request::Shutdown,
        Request::ClockAdvance(tickler_admin::protocol::ClockAdvance {
            by: tickler_core::Span::days(1),
        }),
    ] {
        let reply = app.call(request).await.unwrap();
        let error = reply.error.expect("refused");
        assert_eq!(error.code, "forbidden");
        assert!(error.message.contains("the app role"), "{}", error.message);
    }
    // The connection still serves what an app may do, and the daemon runs on.
    assert!(app.call(due_create("due/review-2")).await.unwrap().ok);
    let mut operator = daemon.client().await;
    let now = operator.call(Request::ClockNow).await.unwrap();
    assert_eq!(now.result.unwrap()["now"], START);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_command_on_the_application_socket_is_unknown_not_forbidden() {
    let work = tempfile::tempdir().unwrap();
    let (_daemon, app_socket) = with_app_socket(work.path()).await;
    let mut app = Client::connect(&app_socket).await.unwrap();
    let reply = app
        .send_raw(b"{\"v\":1,\"id\":7,\"cmd\":\"due.crate\",\"args\":{}}\n")
        .await
        .unwrap();
    assert_eq!(reply.error.unwrap().code, "unknown_command");
    assert_eq!(reply.id, json!(7));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_application_socket_in_the_admin_sockets_directory_is_refused_at_start() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::configure(work.path(), START, "manual");
    let text = std::fs::read_to_string(&daemon.config).unwrap();
    let text = text.replace(
        "# app_socket = \"/run/tickler/app/tickler.sock\"",
        "app_socket = \"data/admin/app.sock\"",
    );
    std::fs::write(&daemon.config, text).unwrap();
    let output = run_to_exit(&daemon, &["serve", "--data-dir", "data"]);
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("app_socket") && stderr.contains("directory of its own"),
        "{stderr}"
    );
}
