//! One place decides defaults: the policy file. The CLI leaves out what the user left out, so
//! `tickler due-date create` and a `due.create` request without `workflow` both get the
//! policy's `default_workflow`, whatever it is.

mod support;

use support::{Daemon, ok, result};
use tickler_admin::FamilyCall;

const START: &str = "2026-03-01T09:30:00Z";

/// A daemon whose due-date policy starts a create without a workflow from `revision`.
async fn revision_by_default(work: &std::path::Path) -> Daemon {
    let mut daemon = Daemon::configure(work, START, "manual");
    let policy = work.join("config/policies/due-date.toml");
    let text = std::fs::read_to_string(&policy).unwrap();
    let line = "default_workflow = \"reviewer-report\"";
    assert!(text.contains(line));
    std::fs::write(
        &policy,
        text.replace(line, "default_workflow = \"revision\""),
    )
    .unwrap();
    daemon.restart().await;
    daemon
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_leaves_the_workflow_to_the_policys_default() {
    let work = tempfile::tempdir().unwrap();
    let daemon = revision_by_default(work.path()).await;
    ok(&daemon.cli(&[
        "due-date",
        "create",
        "review-1",
        "--recipient",
        "r@example.org",
    ]));
    let shown = result(&daemon.cli(&["show", "due/review-1", "--json"]));
    assert_eq!(shown["workflow"], "revision");
    // Fourteen days, rounded up to the hour.
    assert_eq!(shown["anchors"]["due_at"], "2026-03-15T10:00:00Z");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_without_a_workflow_gets_the_same_default_as_the_cli() {
    let work = tempfile::tempdir().unwrap();
    let daemon = revision_by_default(work.path()).await;
    let mut client = daemon.client().await;
    let args = serde_json::json!({"entity": "due/review-2", "recipient": "r@example.org"});
    let reply = client
        .call(FamilyCall::new("due.create", &args))
        .await
        .unwrap();
    assert_eq!(reply.result.unwrap()["state"]["workflow"], "revision");
}
