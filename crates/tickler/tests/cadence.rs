//! Contact cadences end to end through the real daemon: a group of 100 contacts in several time
//! zones joins, 46 days pass, and every contact has received exactly its 16 interactions
//! (12 of conversation A, 4 of B), each inside its own local 09:00-21:00 window.

mod support;

use std::collections::BTreeMap;

use serde_json::Value;
use support::Daemon;
use tickler::{Span, Timestamp, Zone};
use tickler_admin::Request;
use tickler_admin::protocol::{ClockAdvance, GroupJoin, GroupLeave};

const ZONES: [&str; 5] = [
    "Africa/Nairobi",
    "America/New_York",
    "Europe/London",
    "Asia/Kolkata",
    "Australia/Lord_Howe",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_group_of_100_contacts_receives_exactly_its_cadence_inside_each_window() {
    let work = tempfile::tempdir().unwrap();
    let daemon = Daemon::start(work.path(), "2026-03-01T00:00:00Z").await;
    let mut client = daemon.client().await;
    for n in 0..100 {
        let join = Request::GroupJoin(GroupJoin {
            group: "karma".into(),
            contact: format!("c-{n:03}"),
            recipient: format!("tel:+2547000{n:05}"),
            zone: Zone::parse(ZONES[n % ZONES.len()]).unwrap(),
            anchors: BTreeMap::new(),
            attributes: BTreeMap::new(),
        });
        let reply = client.call(join).await.unwrap();
        assert!(reply.ok, "{:?}", reply.error);
    }
    // One contact leaves right away: nothing is sent to it.
    let leave = Request::GroupLeave(GroupLeave {
        group: "karma".into(),
        contact: "c-099".into(),
    });
    assert!(client.call(leave).await.unwrap().ok);

    let reply = client
        .call(Request::ClockAdvance(ClockAdvance { by: Span::days(46) }))
        .await
        .unwrap();
    assert!(reply.ok, "{:?}", reply.error);

    let text = std::fs::read_to_string(daemon.data_dir.join("rapidpro-outbox.jsonl")).unwrap();
    let mut per_contact: BTreeMap<String, Vec<Value>> = BTreeMap::new();
    for line in text.lines() {
        let message: Value = serde_json::from_str(line).unwrap();
        per_contact
            .entry(message["entity"].as_str().unwrap().to_owned())
            .or_default()
            .push(message);
    }
    assert_eq!(per_contact.len(), 99, "every contact but the one that left");
    for (n, (entity, messages)) in per_contact.iter().enumerate() {
        let zone = Zone::parse(ZONES[n % ZONES.len()]).unwrap();
        let a = messages
            .iter()
            .filter(|m| m["kind"] == "conversation-a")
            .count();
        let b = messages
            .iter()
            .filter(|m| m["kind"] == "conversation-b")
            .count();
        assert_eq!((a, b), (12, 4), "{entity}");
        let mut keys: Vec<&str> = messages
            .iter()
            .map(|m| m["idempotency_key"].as_str().unwrap())
            .collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), 16, "{entity}: a key delivered twice");
        for message in messages {
            let fired = Timestamp::parse(message["fired_at"].as_str().unwrap()).unwrap();
            let due = Timestamp::parse(message["due_at"].as_str().unwrap()).unwrap();
            assert_eq!(fired, due, "{entity}: sent at its own instant");
            let local = zone.local(fired).time();
            let hour = chrono::Timelike::hour(&local);
            assert!((9..21).contains(&hour), "{entity}: {local} in {zone}");
        }
    }
}
