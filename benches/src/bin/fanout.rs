//! Evaluations at course scale: how fast one notice reaches a large audience, how fast answers
//! are recorded, and how fast a morning's digests go out.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin fanout -- [STUDENTS] [--smtp PORT]
//! ```
//!
//! STUDENTS (default 1000) take one evaluation on a sled store, through the shipped evaluation
//! policy, on a manual clock:
//!
//! 1. the available notice, one message per student (the fan-out), through the email channel:
//!    the file outbox by default, or an SMTP relay on 127.0.0.1:PORT with `--smtp` (for example
//!    `python3 tests/fixtures/smtp_server.py /tmp/received.jsonl`, which prints its port);
//! 2. every student answering (`record_response`), 64 at a time;
//! 3. consolidated mode: five evaluations for the same students, collected into one digest per
//!    student, then the morning's digests sent.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tickler::Evaluations as _;

use tickler::config::{ChannelConfig, Config};
use tickler::{
    AttrValue, CreateEntity, EntityId, ManualClock, Response, SledStore, SmtpTls, Span, Store,
    Timestamp, Zone,
};

const CALLERS: usize = 64;
const CONSOLIDATED_EVALUATIONS: usize = 5;

fn at(text: &str) -> Timestamp {
    Timestamp::parse(text).unwrap()
}

fn evaluation(students: &[String], consolidated: bool) -> CreateEntity {
    CreateEntity {
        policy: "evaluation".into(),
        workflow: None,
        recipient: "owner@example.org".into(),
        zone: Zone::parse("Europe/Paris").unwrap(),
        anchors: BTreeMap::from([
            ("start".to_owned(), at("2026-03-02T10:00:00Z")),
            ("due".to_owned(), at("2026-03-09T10:00:00Z")),
        ]),
        attributes: BTreeMap::from([
            (
                "title".to_owned(),
                AttrValue::Text("Course evaluation".into()),
            ),
            (
                "owner".to_owned(),
                AttrValue::Text("owner@example.org".into()),
            ),
            ("students".to_owned(), AttrValue::List(students.to_vec())),
            ("reminder".to_owned(), AttrValue::Text("every-2d".into())),
            ("consolidated".to_owned(), AttrValue::Bool(consolidated)),
        ]),
    }
}

fn rate(count: usize, elapsed: Duration) -> String {
    format!(
        "{count} in {:.2} s ({:.0}/s)",
        elapsed.as_secs_f64(),
        count as f64 / elapsed.as_secs_f64()
    )
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mut students_len = 1000usize;
    let mut smtp_port: Option<u16> = None;
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--smtp" => smtp_port = args.next().and_then(|p| p.parse().ok()),
            other => students_len = other.parse().expect("STUDENTS is a number"),
        }
    }
    let dir = tempfile::tempdir().unwrap();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    let mut config = Config::load(&root.join("tickler.toml")).expect("the shipped config loads");
    config.data_dir = dir.path().to_owned();
    config.engine.fire_rate_max_per_s = 1_000_000;
    if let Some(port) = smtp_port {
        config.channels.insert(
            "email".into(),
            ChannelConfig::Smtp {
                host: "127.0.0.1".into(),
                port,
                tls: SmtpTls::None,
                username_env: None,
                password_env: None,
                from: "evaluations@example.org".into(),
                reply_to: None,
                timeout: Span::seconds(20),
            },
        );
    }
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.path().join("store")).unwrap());
    let clock = ManualClock::new(at("2026-03-01T09:30:00Z"));
    let engine = config
        .open_engine(store, Arc::new(clock.clone()))
        .await
        .unwrap();
    let students: Vec<String> = (0..students_len)
        .map(|n| format!("student-{n:05}@example.org"))
        .collect();
    let channel = match smtp_port {
        Some(port) => format!("SMTP relay 127.0.0.1:{port}"),
        None => "file outbox".to_owned(),
    };
    println!("{students_len} students, email through the {channel}");

    // 1. The available notice to every student.
    let eval = EntityId::parse("eval/course").unwrap();
    engine
        .create(&eval, evaluation(&students, false))
        .await
        .unwrap();
    engine.advance(Span::minutes(10)).await.unwrap(); // the created notice, out of the way
    let started = Instant::now();
    engine.set_time(at("2026-03-02T10:00:00Z")).await.unwrap();
    let fan_out = started.elapsed();
    let history = engine.history(&eval).await.unwrap();
    let available = history
        .iter()
        .find(|p| p.rule.as_str() == "available")
        .expect("the available notice ended");
    println!(
        "available notice: {} ({:?})",
        rate(students_len, fan_out),
        available.outcome
    );

    // 2. Every student answers.
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for chunk in students.chunks(students_len.div_ceil(CALLERS)) {
        let engine = engine.clone();
        let eval = eval.clone();
        let chunk = chunk.to_vec();
        tasks.spawn(async move {
            for student in chunk {
                engine
                    .record_response(&eval, &student, Response::Submitted)
                    .await
                    .unwrap();
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    println!(
        "responses recorded ({CALLERS} callers): {}",
        rate(students_len, started.elapsed())
    );

    // 3. Consolidated: several evaluations collected into one digest per student.
    let started = Instant::now();
    for n in 0..CONSOLIDATED_EVALUATIONS {
        let id = EntityId::parse(&format!("eval/consolidated-{n}")).unwrap();
        let mut create = evaluation(&students, true);
        create
            .anchors
            .insert("start".into(), at("2026-03-02T12:00:00Z"));
        engine.create(&id, create).await.unwrap();
    }
    engine.set_time(at("2026-03-02T12:00:00Z")).await.unwrap();
    let collected = CONSOLIDATED_EVALUATIONS * students_len;
    println!(
        "notices collected into digests ({CONSOLIDATED_EVALUATIONS} evaluations): {}",
        rate(collected, started.elapsed())
    );
    let started = Instant::now();
    engine.set_time(at("2026-03-03T07:00:00Z")).await.unwrap();
    println!(
        "morning digests sent: {}",
        rate(students_len, started.elapsed())
    );
    let sample = EntityId::parse(&format!("digest/evaluation-digest/{}", students[0])).unwrap();
    let digest = engine.history(&sample).await.unwrap();
    println!(
        "first student's digest: {:?}",
        digest.first().map(|p| &p.outcome)
    );
    engine.shutdown().await.unwrap();
}
