//! The webhook channel against a real HTTP server on loopback: retries with the same key, the
//! signature, Retry-After, no retry on a 4xx, redirects not followed, a server that is down.

use std::sync::Arc;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;
use tickler::{
    Engine, EntityId, Event, ManualClock, MemoryStore, Outcome, Payload, Span, UnsentReason,
    WebhookChannel, WebhookConfig,
};
use tickler_tests::http::{Answer, HttpServer};
use tickler_tests::{at, shipped_config};

const SECRET: &[u8] = b"webhook test secret";

struct Setup {
    engine: Engine,
    store: Arc<MemoryStore>,
    contact: EntityId,
    _dir: tempfile::TempDir,
}

/// An engine whose "rapidpro" channel posts to `url`, with one contact who joined the karma
/// group before its first window opened (its first interaction is on 2026-03-02).
async fn setup(url: &str) -> Setup {
    setup_with_timeout(url, std::time::Duration::from_secs(5)).await
}

/// Like `setup`, with the channel's total timeout per request.
async fn setup_with_timeout(url: &str, timeout: std::time::Duration) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let mut config = shipped_config(dir.path());
    config.engine.delivery.jitter = 0.0;
    let store = Arc::new(MemoryStore::new());
    let webhook = WebhookChannel::new(WebhookConfig {
        name: "rapidpro".into(),
        url: url.into(),
        allow_hosts: vec!["127.0.0.1".into()],
        allow_private: true,
        secret: SECRET.to_vec(),
        signature_header: "x-tickler-signature".into(),
        connect_timeout: std::time::Duration::from_secs(2),
        timeout,
        payload: Payload::Body,
    })
    .unwrap();
    let builder = config
        .engine_builder(
            store.clone(),
            Arc::new(ManualClock::new(at("2026-03-02T04:00:00Z"))),
        )
        .unwrap();
    let engine = builder
        .channel("rapidpro", Arc::new(webhook))
        .open()
        .await
        .unwrap();
    let contact = tickler_tests::join_karma_contact(&engine).await;
    Setup {
        engine,
        store,
        contact,
        _dir: dir,
    }
}

fn signature(body: &[u8]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(SECRET).unwrap();
    mac.update(body);
    let hex: String = mac
        .finalize()
        .into_bytes()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    format!("sha256={hex}")
}

/// The outcome of the contact's first interaction.
async fn first_outcome(setup: &Setup) -> Outcome {
    let history = setup.engine.history(&setup.contact).await.unwrap();
    history
        .iter()
        .find(|p| p.occurrence.to_string() == "conversation-a#0")
        .expect("the first interaction ended")
        .outcome
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_failing_twice_gets_three_signed_requests_with_one_key_and_one_delivery() {
    let server = HttpServer::start(vec![
        Answer::status(503),
        Answer::status(502),
        Answer::status(201),
    ])
    .await;
    let setup = setup(&server.url("/api/v2/flow_starts.json")).await;
    setup.engine.advance(Span::days(1)).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 3);
    for (n, request) in requests.iter().enumerate() {
        assert_eq!(request.method, "POST");
        assert_eq!(request.path, "/api/v2/flow_starts.json");
        assert_eq!(
            request.headers["idempotency-key"],
            "contact/karma/c-1#conversation-a#0"
        );
        assert_eq!(request.headers["x-tickler-attempt"], (n + 1).to_string());
        assert_eq!(request.headers["content-type"], "application/json");
        assert_eq!(
            request.headers["x-tickler-signature"],
            signature(&request.body)
        );
        let body: Value = serde_json::from_slice(&request.body).unwrap();
        assert_eq!(body["flow"], "karma-conversation-a");
        assert_eq!(body["urns"][0], "tel:+254700000001");
        assert_eq!(body["extra"]["contact"], "c-1");
    }
    assert!(
        matches!(first_outcome(&setup).await, Outcome::Sent { attempts: 3, ref receipt, .. } if receipt == "HTTP 201")
    );
    setup.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_down_past_the_retry_budget_ends_as_a_system_error() {
    let server = HttpServer::start(vec![Answer::status(503)]).await;
    let setup = setup(&server.url("/hook")).await;
    setup.engine.advance(Span::days(1)).await.unwrap();
    assert_eq!(server.requests().len(), 5, "max_attempts");
    assert!(matches!(
        first_outcome(&setup).await,
        Outcome::Unsent { reason: UnsentReason::SystemError, attempts: 5, ref detail } if detail.contains("HTTP 503")
    ));
    setup.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_error_is_not_retried() {
    let server = HttpServer::start(vec![Answer::status(404)]).await;
    let setup = setup(&server.url("/hook")).await;
    setup.engine.advance(Span::days(1)).await.unwrap();
    assert_eq!(server.requests().len(), 1);
    assert!(matches!(
        first_outcome(&setup).await,
        Outcome::Unsent { reason: UnsentReason::SystemError, attempts: 1, ref detail }
            if detail.contains("failed permanently") && detail.contains("HTTP 404")
    ));
    setup.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured() {
    let server = HttpServer::start(vec![
        Answer::status(429).with_header("retry-after", "120"),
        Answer::status(200),
    ])
    .await;
    let setup = setup(&server.url("/hook")).await;
    setup.engine.advance(Span::days(1)).await.unwrap();
    assert_eq!(server.requests().len(), 2);
    let replay = tickler::replay::replay(setup.store.as_ref(), &setup.contact, None).unwrap();
    let failed = replay
        .events
        .iter()
        .find_map(|e| match &e.event {
            Event::DeliveryFailed { retry_at, .. } => Some((e.recorded_at, *retry_at)),
            _ => None,
        })
        .unwrap();
    assert_eq!(
        failed.1.since(failed.0),
        Span::seconds(120),
        "the backoff alone would be 1 s"
    );
    assert!(matches!(
        first_outcome(&setup).await,
        Outcome::Sent { attempts: 2, .. }
    ));
    setup.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redirect_is_not_followed() {
    let server = HttpServer::start(vec![
        Answer::status(302).with_header("location", "http://169.254.169.254/latest"),
    ])
    .await;
    let setup = setup(&server.url("/hook")).await;
    setup.engine.advance(Span::days(1)).await.unwrap();
    assert_eq!(server.requests().len(), 1);
    assert!(matches!(
        first_outcome(&setup).await,
        Outcome::Unsent { reason: UnsentReason::SystemError, ref detail, .. }
            if detail.contains("redirect to http://169.254.169.254 (path not shown) not followed")
    ));
    setup.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_connection_is_retried_then_recorded_with_its_cause() {
    // Bind a port and release it: nothing listens there.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let setup = setup(&format!("http://127.0.0.1:{port}/hook")).await;
    setup.engine.advance(Span::days(1)).await.unwrap();
    assert!(matches!(
        first_outcome(&setup).await,
        Outcome::Unsent { reason: UnsentReason::SystemError, attempts: 5, ref detail }
            if detail.contains("refused")
    ));
    setup.engine.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_never_answers_times_out_each_attempt_then_ends_as_a_system_error() {
    let server = HttpServer::start(vec![Answer::hang()]).await;
    let setup =
        setup_with_timeout(&server.url("/hook"), std::time::Duration::from_millis(200)).await;
    setup.engine.advance(Span::days(1)).await.unwrap();
    // Every attempt reached the server, under the same key, and none was answered.
    let requests = server.requests();
    assert_eq!(requests.len(), 5, "one request per attempt");
    let keys: std::collections::BTreeSet<_> = requests
        .iter()
        .map(|r| r.headers["idempotency-key"].clone())
        .collect();
    assert_eq!(keys.len(), 1, "{keys:?}");
    assert!(
        matches!(
            first_outcome(&setup).await,
            Outcome::Unsent { reason: UnsentReason::SystemError, attempts: 5, ref detail }
                if detail.contains("timed out")
        ),
        "{:?}",
        first_outcome(&setup).await
    );
    setup.engine.shutdown().await.unwrap();
}

/// Issue 19: a receiver that accepts each request but answers too late (it got the message; the
/// engine saw a timeout). After the system error an operator retries: the new attempt carries
/// the occurrence's original key, so the receiver recognises the message it already has.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operators_retry_re_delivers_under_the_original_idempotency_key() {
    let mut script = vec![Answer::hang(); 5];
    script.push(Answer::status(201));
    let server = HttpServer::start(script).await;
    let setup =
        setup_with_timeout(&server.url("/hook"), std::time::Duration::from_millis(200)).await;
    setup.engine.advance(Span::days(1)).await.unwrap();
    assert!(matches!(
        first_outcome(&setup).await,
        Outcome::Unsent {
            reason: UnsentReason::SystemError,
            ..
        }
    ));

    setup
        .engine
        .execute(
            &setup.contact,
            tickler::Command::Retry {
                occurrence: Some("conversation-a#0".parse().unwrap()),
                reason: "the receiver was slow; it has been fixed".into(),
            },
        )
        .await
        .unwrap();
    setup.engine.advance(Span::minutes(1)).await.unwrap();

    let requests = server.requests();
    assert_eq!(requests.len(), 6, "five timed-out attempts, then the retry");
    for request in &requests {
        assert_eq!(
            request.headers["idempotency-key"], "contact/karma/c-1#conversation-a#0",
            "one occurrence, one key"
        );
    }
    // The retry is recorded as such: its own past event (past events are write-once), under the
    // original key, with the operator's reason in the explanation.
    let history = setup.engine.history(&setup.contact).await.unwrap();
    let retried = history
        .iter()
        .find(|p| p.retry_of() == Some("conversation-a#0".parse().unwrap()))
        .unwrap_or_else(|| panic!("the retry ended: {history:?}"));
    assert!(
        matches!(retried.outcome, Outcome::Sent { .. }),
        "{retried:?}"
    );
    assert_eq!(
        retried.idempotency_key.as_str(),
        "contact/karma/c-1#conversation-a#0"
    );
    let explanation = setup
        .engine
        .explain(&setup.contact, Some(&retried.occurrence))
        .unwrap();
    let text: Vec<_> = explanation.occurrences[0]
        .lines
        .iter()
        .map(|l| l.text.clone())
        .collect();
    assert!(
        text[0].contains("retry of conversation-a#0")
            && text[0].contains("the receiver was slow")
            && text[0].contains("contact/karma/c-1#conversation-a#0"),
        "{text:?}"
    );
    setup.engine.shutdown().await.unwrap();
}

/// Issue 20 (L6): a token in the webhook URL's path or query (or in a redirect's location) never
/// reaches a past event, which is kept for ever and shown by history, explain and export.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_in_the_url_never_reaches_a_past_event() {
    for answer in [
        Answer::status(503),
        Answer::status(302).with_header("location", "http://127.0.0.1:9/next?token=LOCSECRET"),
    ] {
        let server = HttpServer::start(vec![answer]).await;
        let url = server.url("/services/T0/B0/PATHSECRET?token=QUERYSECRET");
        let setup = setup(&url).await;
        setup.engine.advance(Span::days(1)).await.unwrap();
        let Outcome::Unsent { detail, .. } = first_outcome(&setup).await else {
            panic!("not a failure")
        };
        assert!(detail.contains("http://127.0.0.1:"), "{detail}");
        for secret in ["PATHSECRET", "QUERYSECRET", "LOCSECRET"] {
            assert!(!detail.contains(secret), "{secret} in {detail}");
        }
        setup.engine.shutdown().await.unwrap();
    }
}
