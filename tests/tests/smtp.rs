//! The SMTP channel against a real SMTP server on loopback (`tests/fixtures/smtp_server.py`,
//! aiosmtpd, installed by `.ci/run`): what the relay receives, a deferral (4xx) retried with
//! backoff under the same Message-ID, refusals (5xx) on record with the relay's reply, and a
//! relay that is not there.

use std::collections::BTreeMap;

use tickler::config::ChannelConfig;
use tickler::{AttrValue, CreateEntity, Outcome, PastEvent, SmtpTls, Span, UnsentReason, Zone};
use tickler_tests::smtp::SmtpServer;
use tickler_tests::{Harness, StoreKind, TEST_START, at, id};

fn smtp(port: u16) -> ChannelConfig {
    ChannelConfig::Smtp {
        host: "127.0.0.1".into(),
        port,
        tls: SmtpTls::None,
        username_env: None,
        password_env: None,
        from: "Course evaluations <evaluations@example.org>".into(),
        reply_to: Some("helpdesk@example.org".into()),
        timeout: Span::seconds(5),
    }
}

async fn harness(dir: &std::path::Path, port: u16) -> Harness {
    let store = StoreKind::Memory(std::sync::Arc::new(tickler::MemoryStore::new()));
    Harness::start_with(dir, store, at(TEST_START), |config| {
        config.channels.insert("email".into(), smtp(port));
        config.engine.delivery.jitter = 0.0;
    })
    .await
}

fn evaluation(owner: &str, students: &[&str]) -> CreateEntity {
    CreateEntity {
        policy: "evaluation".into(),
        workflow: None,
        recipient: owner.into(),
        zone: Zone::parse("Europe/Paris").unwrap(),
        anchors: BTreeMap::from([
            ("start".to_owned(), at("2026-03-02T10:00:00Z")),
            ("due".to_owned(), at("2026-03-09T10:00:00Z")),
        ]),
        attributes: BTreeMap::from([
            ("title".to_owned(), AttrValue::Text("Course 101".into())),
            ("owner".to_owned(), AttrValue::Text(owner.into())),
            (
                "students".to_owned(),
                AttrValue::List(students.iter().map(|s| s.to_string()).collect()),
            ),
            ("reminder".to_owned(), AttrValue::Text("every-3d".into())),
        ]),
    }
}

fn outcome<'a>(history: &'a [PastEvent], occurrence: &str) -> &'a Outcome {
    &history
        .iter()
        .find(|p| p.occurrence.to_string() == occurrence)
        .unwrap_or_else(|| panic!("no past event for {occurrence}: {history:?}"))
        .outcome
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_relay_receives_each_notice_with_a_stable_message_id_and_a_deferral_is_retried() {
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path());
    let h = harness(dir.path(), server.port).await;
    let eval = id("eval/course-101");
    let students = [
        "a@example.org",
        "greylist@example.org",
        "reject@example.org",
    ];
    h.engine
        .create(&eval, evaluation("owner@example.org", &students))
        .await
        .unwrap();
    // Through the available notice (03-02 10:00) and its retry one second later.
    h.engine.advance(Span::hours(25)).await.unwrap();

    let received = server.received();
    let to = |address: &str| {
        received
            .iter()
            .filter(|m| m.rcpt_tos == [address])
            .cloned()
            .collect::<Vec<_>>()
    };
    let created = to("owner@example.org");
    assert_eq!(created.len(), 1, "{received:?}");
    let created = &created[0];
    assert_eq!(created.mail_from, "evaluations@example.org");
    assert_eq!(
        created.header("From").as_deref(),
        Some("\"Course evaluations\" <evaluations@example.org>")
    );
    assert_eq!(
        created.header("Reply-To").as_deref(),
        Some("helpdesk@example.org")
    );
    assert_eq!(
        created.header("Subject").as_deref(),
        Some("Evaluation created: Course 101")
    );
    assert_eq!(
        created.header("X-Tickler-Idempotency-Key").as_deref(),
        Some("eval/course-101#created#0/owner@example.org")
    );
    assert_eq!(
        created.header("Message-ID"),
        Some(tickler::message_id(
            "eval/course-101#created#0/owner@example.org",
            "example.org"
        ))
    );
    assert_eq!(
        created.header("Date").as_deref(),
        Some("Sun, 01 Mar 2026 09:35:00 +0000"),
        "dated by the engine's clock"
    );

    // The greylisted student was deferred once (451), then got the notice on the retry, under
    // the same Message-ID a receiver would deduplicate on.
    assert_eq!(to("a@example.org").len(), 1);
    let greylisted = to("greylist@example.org");
    assert_eq!(greylisted.len(), 1, "{received:?}");
    assert_eq!(
        greylisted[0].header("Message-ID"),
        Some(tickler::message_id(
            "eval/course-101#available#0/greylist@example.org",
            "example.org"
        ))
    );
    assert!(to("reject@example.org").is_empty());
    let history = h.engine.history(&eval).await.unwrap();
    match outcome(&history, "available#0") {
        Outcome::Sent {
            receipt, attempts, ..
        } => {
            assert_eq!(*attempts, 2, "one deferral, one retry");
            assert!(
                receipt.starts_with(
                    "delivered to 2 recipient(s); 1 refused (e.g. reject@example.org: "
                ) && receipt.contains("550"),
                "{receipt}"
            );
        }
        other => panic!("{other:?}"),
    }

    // A reminder has a text and an HTML part.
    h.engine.advance(Span::days(3)).await.unwrap(); // past the 03-05 reminder
    let reminder = server
        .received()
        .into_iter()
        .find(|m| {
            m.rcpt_tos == ["a@example.org"]
                && m.header("Subject")
                    .is_some_and(|s| s.starts_with("Reminder"))
        })
        .expect("a reminder reached a@example.org");
    assert!(
        reminder
            .header("Content-Type")
            .is_some_and(|c| c.starts_with("multipart/alternative")),
        "{}",
        reminder.data
    );
    assert!(reminder.data.contains("Content-Type: text/plain"));
    assert!(reminder.data.contains("Content-Type: text/html"));
    assert!(reminder.data.contains("<strong>Course 101</strong>"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refusal_of_the_only_recipient_ends_unsent_with_the_relays_reply() {
    let dir = tempfile::tempdir().unwrap();
    let server = SmtpServer::start(dir.path());
    let h = harness(dir.path(), server.port).await;
    let eval = id("eval/refused");
    h.engine
        .create(
            &eval,
            evaluation("reject-owner@example.org", &["a@example.org"]),
        )
        .await
        .unwrap();
    h.engine.advance(Span::minutes(10)).await.unwrap();
    let history = h.engine.history(&eval).await.unwrap();
    match outcome(&history, "created#0") {
        Outcome::Unsent {
            reason: UnsentReason::SystemError,
            detail,
            ..
        } => assert!(
                        detail.contains("refused the message: permanent error (550): 5.1.1 <reject-owner@example.org>: no such user here"),
            "{detail}"
        ),
        other => panic!("{other:?}"),
    }
    assert!(server.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_relay_that_refuses_connections_is_retried_then_given_up_naming_the_host() {
    let dir = tempfile::tempdir().unwrap();
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let h = harness(dir.path(), port).await;
    let eval = id("eval/no-relay");
    h.engine
        .create(&eval, evaluation("owner@example.org", &["a@example.org"]))
        .await
        .unwrap();
    h.engine.advance(Span::hours(1)).await.unwrap();
    let history = h.engine.history(&eval).await.unwrap();
    match outcome(&history, "created#0") {
        Outcome::Unsent {
            reason: UnsentReason::SystemError,
            detail,
            attempts,
        } => {
            assert_eq!(*attempts, 5, "the configured max_attempts");
            assert!(
                detail.contains(&format!("cannot reach smtp 127.0.0.1:{port}")),
                "{detail}"
            );
        }
        other => panic!("{other:?}"),
    }
}
