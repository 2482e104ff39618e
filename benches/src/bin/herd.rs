//! Thundering herd (issue 6, suite 4): N reminders due at the same instant, 09:00 in one zone,
//! and the engine restarted at 08:59:58 on a clock that then runs in real time.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin herd -- [N] [RATE]   (defaults 100000, 5000)
//! ```
//!
//! N due dates of the shipped due-date policy, all due on 2026-03-04 at 09:00 Europe/Paris, are
//! created through the engine on a sled store (their pre-due reminders all fall on 2026-03-02
//! at 09:00). The engine stops, and opens again with its clock at 08:59:58 and
//! `fire_rate_max_per_s = RATE`. The tool records every delivery and reports:
//!
//! - time to ready, and whether anything went out early (before 09:00);
//! - the most deliveries in any one-second window, against RATE (pass: not above it);
//! - lateness (delivery − 09:00) p50 / p99 / max, against the drain window N / RATE, the least
//!   time the herd can take at that rate (pass: p99 within it, plus one second);
//! - lost (a reminder never delivered) and duplicated (a key delivered twice): both must be 0.
//!
//! It exits 1 if any check fails. Output: a table, then one JSON line.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tickler::{
    Clock, CreateEntity, Engine, EntityId, ManualClock, SledStore, Store, Timestamp, Zone,
};
use tickler_benches::{
    OffsetClock, Recorder, fill, most_in_any_window, percentile, shipped_config,
};

const CALLERS: usize = 64;
/// How long the tool waits for the herd after the last expected delivery time before it counts
/// what is missing as lost.
const DRAIN_GRACE: Duration = Duration::from_secs(60);

async fn open(
    dir: &std::path::Path,
    clock: Arc<dyn Clock>,
    rate: u32,
    recorder: Arc<Recorder>,
) -> Engine {
    let mut config = shipped_config(dir);
    config.engine.fire_rate_max_per_s = rate;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("store")).unwrap());
    let builder = Engine::builder()
        .options(config.engine.clone())
        .store(store)
        .clock(clock)
        .catalog(config.catalog().unwrap());
    config
        .add_channels(builder)
        .unwrap()
        .channel("file", recorder)
        .open()
        .await
        .unwrap()
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let herd: usize = args
        .next()
        .map_or(100_000, |n| n.parse().expect("N is a number"));
    let rate: u32 = args
        .next()
        .map_or(5_000, |n| n.parse().expect("RATE is a number"));
    let dir = tempfile::tempdir().unwrap();
    let paris = Zone::parse("Europe/Paris").unwrap();
    // 09:00 in Paris (UTC+1 in March): the pre-due reminders of tasks due two days later.
    let nine = Timestamp::parse("2026-03-02T08:00:00Z").unwrap();
    let due_at = Timestamp::parse("2026-03-04T08:00:00Z").unwrap();

    let recorder = Recorder::new(Arc::new(ManualClock::new(nine)));
    let fill_clock = Arc::new(ManualClock::new(
        Timestamp::parse("2026-03-01T12:00:00Z").unwrap(),
    ));
    let engine = open(dir.path(), fill_clock, rate, recorder.clone()).await;
    let took = fill(&engine, herd, CALLERS, move |i| {
        let id = EntityId::parse(&format!("due/herd-{i:07}")).unwrap();
        let create = CreateEntity {
            policy: "due-date".into(),
            workflow: Some("reviewer-report".into()),
            recipient: format!("r{i}@example.org"),
            zone: paris,
            anchors: BTreeMap::from([("due_at".to_owned(), due_at)]),
            attributes: BTreeMap::new(),
        };
        (id, create)
    })
    .await;
    engine.shutdown().await.unwrap();
    drop(engine);
    eprintln!(
        "filled {herd} due dates in {took:.2?} ({:.0}/s)",
        herd as f64 / took.as_secs_f64()
    );

    // The restart, two seconds before the herd.
    let clock: Arc<dyn Clock> = Arc::new(OffsetClock::starting_at(
        nine.saturating_add(tickler::Span::seconds(-2)),
    ));
    let recorder = Recorder::new(clock.clone());
    let started = Instant::now();
    let engine = open(dir.path(), clock.clone(), rate, recorder.clone()).await;
    let ready = started.elapsed();
    let drain = Duration::from_secs_f64(herd as f64 / f64::from(rate));
    let give_up = Instant::now() + Duration::from_secs(2) + drain + DRAIN_GRACE;
    while recorder.count() < herd && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    engine.settle().await.unwrap();
    engine.shutdown().await.unwrap();

    let arrivals = recorder.arrivals.lock().unwrap().clone();
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    for arrival in &arrivals {
        *by_key.entry(&arrival.key).or_default() += 1;
    }
    let herd_keys = by_key.keys().filter(|k| k.ends_with("#pre-due#0")).count();
    let lost = herd - herd_keys;
    let duplicated = by_key.values().filter(|n| **n > 1).count();
    let early = arrivals.iter().filter(|a| a.at < a.due_at).count();
    let mut lateness: Vec<i64> = arrivals
        .iter()
        .map(|a| a.at.since(a.due_at).as_millis())
        .collect();
    lateness.sort_unstable();
    let mut instants: Vec<Instant> = arrivals.iter().map(|a| a.instant).collect();
    instants.sort_unstable();
    let most_per_s = most_in_any_window(&instants, Duration::from_secs(1));
    let (p50, p99, max) = (
        percentile(&lateness, 0.5),
        percentile(&lateness, 0.99),
        lateness.last().copied().unwrap_or(0),
    );
    let window_ms = drain.as_millis() as i64 + 1_000;
    let checks = [
        ("nothing early", early == 0),
        ("rate within the limit", most_per_s <= rate as usize),
        ("p99 lateness within the drain window", p99 <= window_ms),
        ("nothing lost", lost == 0),
        ("nothing duplicated", duplicated == 0),
    ];

    println!("herd of {herd} due at 09:00 Europe/Paris, restart at 08:59:58, rate limit {rate}/s");
    println!(
        "  ready after restart      {:>10.1} ms",
        ready.as_secs_f64() * 1e3
    );
    println!("  delivered                {:>10}", arrivals.len());
    println!("  most in any 1 s window   {most_per_s:>10}   (limit {rate})");
    println!(
        "  lateness p50 / p99 / max {p50:>6} / {p99} / {max} ms   (drain window {window_ms} ms)"
    );
    println!("  early {early}, lost {lost}, duplicated {duplicated}");
    for (check, passed) in &checks {
        println!("  {:<40} {}", check, if *passed { "pass" } else { "FAIL" });
    }
    println!(
        "{}",
        serde_json::json!({
            "bench": "herd", "n": herd, "rate_limit_per_s": rate,
            "ready_ms": ready.as_millis(), "delivered": arrivals.len(),
            "most_in_any_second": most_per_s, "late_p50_ms": p50, "late_p99_ms": p99,
            "late_max_ms": max, "drain_window_ms": window_ms, "early": early, "lost": lost,
            "duplicated": duplicated,
            "pass": checks.iter().all(|(_, passed)| *passed),
        })
    );
    if !checks.iter().all(|(_, passed)| *passed) {
        std::process::exit(1);
    }
}
