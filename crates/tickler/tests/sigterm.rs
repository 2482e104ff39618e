//! SIGTERM under load, as systemd stops the service: the daemon finishes the requests in
//! flight, takes no more, and exits 0; every create it acknowledged is in the store after a
//! restart, and no reminder is delivered twice, then or after.

mod support;

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use serde_json::json;
use support::Daemon;
use tickler_admin::{Client, FamilyCall};

const START: &str = "2026-03-01T09:30:00Z";
/// Callers creating due dates at once while the daemon is told to stop.
const CALLERS: usize = 8;
/// Creates acknowledged before the signal is sent: enough that it arrives mid-stream.
const ACKNOWLEDGED_BEFORE_SIGNAL: usize = 200;

/// Creates due dates (ten days from the daemon's now: the workflow's default) until the daemon
/// stops answering; records each one the daemon acknowledged.
async fn create_until_refused(
    daemon_socket: std::path::PathBuf,
    caller: usize,
    acked: Arc<Mutex<Vec<String>>>,
) {
    let Ok(mut client) = Client::connect(&daemon_socket).await else {
        return;
    };
    for n in 0.. {
        let entity = format!("due/load-{caller}-{n}");
        let create = FamilyCall::new(
            "entity.create",
            &json!({"entity": entity, "policy": "due-date", "recipient": "r@example.org"}),
        );
        match client.call(create).await {
            Ok(reply) if reply.ok => acked.lock().unwrap().push(entity),
            // A reply that is an error (shutting down), or none: the daemon is stopping.
            _ => return,
        }
    }
}

fn terminate(daemon: &mut Daemon) -> std::process::ExitStatus {
    let mut child = daemon.child.take().expect("the daemon runs");
    let pid = i32::try_from(child.id()).unwrap();
    // SAFETY: kill(2) on the pid of a child this test started and has not reaped.
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    child.wait().unwrap()
}

fn duplicates(keys: &[String]) -> Vec<&String> {
    let mut seen = BTreeSet::new();
    keys.iter().filter(|key| !seen.insert(*key)).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_under_load_loses_nothing_acknowledged_and_delivers_nothing_twice() {
    let work = tempfile::tempdir().unwrap();
    let mut daemon = Daemon::start(work.path(), START).await;
    // Reminders fire (and are delivered to the outbox) while the load runs.
    let mut firing = daemon.client().await;
    let acked = Arc::new(Mutex::new(Vec::new()));
    let callers: Vec<_> = (0..CALLERS)
        .map(|caller| {
            tokio::spawn(create_until_refused(
                daemon.socket.clone(),
                caller,
                acked.clone(),
            ))
        })
        .collect();
    // Six hours a step: the first reminders fire after 32 steps, while creates go on.
    let mut steps = 0;
    while acked.lock().unwrap().len() < ACKNOWLEDGED_BEFORE_SIGNAL {
        let advance = FamilyCall::new("clock.advance", &json!({"by": "6h"}));
        assert!(firing.call(advance).await.unwrap().ok);
        steps += 1;
        assert!(
            steps < 100_000,
            "the callers stopped creating before the signal"
        );
    }
    let status = terminate(&mut daemon);
    assert_eq!(status.code(), Some(0), "SIGTERM is a clean stop");
    for caller in callers {
        caller.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(acked.len() >= ACKNOWLEDGED_BEFORE_SIGNAL);
    assert!(duplicates(&daemon.outbox_keys()).is_empty());

    daemon.restart().await;
    let mut client = daemon.client().await;
    for entity in &acked {
        let shown = client
            .call(FamilyCall::new("show", &json!({"entity": entity})))
            .await
            .unwrap();
        assert!(
            shown.ok,
            "{entity} was acknowledged before SIGTERM and is lost: {shown:?}"
        );
    }
    // Everything still pending fires after the restart, each key once.
    let advance = FamilyCall::new("clock.advance", &json!({"by": "30d"}));
    assert!(client.call(advance).await.unwrap().ok);
    let keys = daemon.outbox_keys();
    assert!(duplicates(&keys).is_empty(), "{:?}", duplicates(&keys));
    // Each acknowledged due date's reminders were delivered: its pre-due one at least.
    let delivered: BTreeSet<&str> = keys.iter().map(String::as_str).collect();
    for entity in &acked {
        let key = format!("{entity}#pre-due#0");
        assert!(
            delivered.contains(key.as_str()),
            "{key} was never delivered"
        );
    }
}
