//! Thundering herd (issue 6, suite 4): a cohort due at 09:00 in one zone, and the engine
//! restarted at 08:59:58 on a clock that then runs on its own.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin herd -- learners [N] [RATE]   (100000, 5000)
//! cargo run --release -p tickler-benches --bin herd -- exact [N] [RATE]
//! ```
//!
//! - `learners`: N learners enrolled in one self-paced course of a site delivering at 09:00
//!   Europe/Paris, all with their first nudge on 2026-03-02. The learner-schedule policy spreads
//!   each learner's messages over the hour (a draw per learner), so the spread window is
//!   09:00–10:00. The restarted clock runs 60 times faster than real time (the hour takes a
//!   minute), so the herd is 100,000 messages in a minute of real time.
//! - `exact`: N due dates whose pre-due reminders all fall at exactly 09:00 (no spread), on a
//!   real-time clock: the worst case, which only the rate limit spreads. Its window is the
//!   drain time N / RATE.
//!
//! Both fill a sled store through the engine, stop it, open it again at 08:59:58 with
//! `fire_rate_max_per_s = RATE`, record every delivery of the herd, and check:
//! nothing early; the most deliveries in any one second of real time not above RATE; p99 of
//! (delivery − 09:00) within the window (plus one second of real time); nothing lost;
//! nothing duplicated. They exit 1 if a check fails. Output: a table, then one JSON line.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tickler::LearnerSchedules as _;

use tickler::learner::Enrolment;
use tickler::{
    Clock, CourseSettings, CreateEntity, Engine, EntityId, ManualClock, SiteSettings, SledStore,
    Span, Store, Timestamp, Zone,
};
use tickler_benches::{
    OffsetClock, Recorder, fill, most_in_any_window, percentile, shipped_config,
};

const CALLERS: usize = 64;
/// How long the tool waits past the end of the window before it counts what is missing as lost.
const DRAIN_GRACE: Duration = Duration::from_secs(60);
const COURSE: &str = "course-v1:Herd+A+2026";

/// 09:00 in Paris (UTC+1 in March) on the herd's day.
fn nine() -> Timestamp {
    Timestamp::parse("2026-03-02T08:00:00Z").unwrap()
}

struct Mode {
    name: &'static str,
    /// The channel the herd's messages go through.
    channel: &'static str,
    /// Which delivered keys belong to the herd.
    herd_key: fn(&str) -> bool,
    /// How much faster than real time the restarted clock runs.
    speed: u32,
}

async fn open(
    dir: &std::path::Path,
    clock: Arc<dyn Clock>,
    rate: u32,
    mode: &Mode,
    recorder: Arc<Recorder>,
) -> Engine {
    let mut config = shipped_config(dir);
    config.engine.fire_rate_max_per_s = rate;
    let store: Arc<dyn Store> = Arc::new(SledStore::open(&dir.join("store")).unwrap());
    let builder = config.engine_builder(store, clock).unwrap();
    builder
        .channel(mode.channel, recorder)
        .open()
        .await
        .unwrap()
}

async fn fill_learners(engine: &Engine, herd: usize) -> Duration {
    let paris = Zone::parse("Europe/Paris").unwrap();
    engine
        .set_site(&SiteSettings {
            site: "herd".into(),
            create_schedules: Some(true),
            default_zone: Some(paris),
            delivery_time: Some("09:00".into()),
            lms_url: Some("https://lms.herd.example".into()),
            ..SiteSettings::default()
        })
        .await
        .unwrap();
    engine
        .set_course(&CourseSettings {
            course: COURSE.into(),
            site: Some("herd".into()),
            name: Some("Herd 101".into()),
            org: Some("Herd".into()),
            pacing: Some("self".into()),
            start: Some(Timestamp::parse("2026-02-01T00:00:00Z").unwrap()),
            end: Some(Timestamp::parse("2026-06-01T00:00:00Z").unwrap()),
            verified: Some(false),
            ..CourseSettings::default()
        })
        .await
        .unwrap();
    // Enrolled on 02-27 at noon: the first nudge (start + 3 days) is on 03-02 at 09:00 + spread.
    let enrolled_at = Timestamp::parse("2026-02-27T11:00:00Z").unwrap();
    let started = Instant::now();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CALLERS {
        let (engine, next) = (engine.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= herd {
                    break;
                }
                let learner = format!("l{i:07}");
                engine
                    .enroll(&Enrolment {
                        email: format!("{learner}@example.org"),
                        name: learner.clone(),
                        learner,
                        course: COURSE.into(),
                        enrolled_at: Some(enrolled_at),
                        zone: None,
                        track: "audit".into(),
                        delivery_time: None,
                    })
                    .await
                    .unwrap();
                if i.is_multiple_of(64) {
                    engine.passivate_idle();
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    started.elapsed()
}

async fn fill_exact(engine: &Engine, herd: usize) -> Duration {
    let paris = Zone::parse("Europe/Paris").unwrap();
    let due_at = nine().saturating_add(Span::days(2));
    fill(engine, herd, CALLERS, move |i| {
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
    .await
}

#[tokio::main]
async fn main() {
    let mut args = std::env::args().skip(1);
    let mode = match args.next().as_deref() {
        Some("learners") => Mode {
            name: "learners",
            channel: "learner-digest",
            herd_key: |key| key.contains("#nudge-3d#"),
            speed: 60,
        },
        Some("exact") => Mode {
            name: "exact",
            channel: "file",
            herd_key: |key| key.ends_with("#pre-due#0"),
            speed: 1,
        },
        _ => {
            eprintln!("usage: herd learners|exact [N] [RATE]");
            std::process::exit(2);
        }
    };
    let herd: usize = args
        .next()
        .map_or(100_000, |n| n.parse().expect("N is a number"));
    let rate: u32 = args
        .next()
        .map_or(5_000, |n| n.parse().expect("RATE is a number"));
    let dir = tempfile::tempdir().unwrap();

    let fill_clock = Arc::new(ManualClock::new(
        Timestamp::parse("2026-02-27T11:00:00Z").unwrap(),
    ));
    let unused = Recorder::new(fill_clock.clone());
    let engine = open(dir.path(), fill_clock, rate, &mode, unused).await;
    let took = match mode.name {
        "learners" => fill_learners(&engine, herd).await,
        _ => fill_exact(&engine, herd).await,
    };
    engine.shutdown().await.unwrap();
    drop(engine);
    eprintln!(
        "filled {herd} in {took:.2?} ({:.0}/s)",
        herd as f64 / took.as_secs_f64()
    );

    // The restart, two seconds (of the engine's clock) before the herd.
    let clock: Arc<dyn Clock> = Arc::new(OffsetClock::starting_at(
        nine().saturating_add(Span::seconds(-2)),
        mode.speed,
    ));
    let recorder = Recorder::new(clock.clone());
    let started = Instant::now();
    let engine = open(dir.path(), clock.clone(), rate, &mode, recorder.clone()).await;
    let ready = started.elapsed();
    // The window in the engine's time: the spread hour, or the least time the rate allows.
    let window = match mode.name {
        "learners" => Duration::from_secs(3_600),
        _ => Duration::from_secs_f64(herd as f64 / f64::from(rate)),
    };
    let real_window = window / mode.speed;
    let give_up = Instant::now() + Duration::from_secs(2) + real_window + DRAIN_GRACE;
    let herd_count = |recorder: &Recorder| {
        let arrivals = recorder.arrivals.lock().unwrap();
        arrivals.iter().filter(|a| (mode.herd_key)(&a.key)).count()
    };
    while herd_count(&recorder) < herd && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = started.elapsed();
    engine.shutdown().await.unwrap();

    let arrivals: Vec<_> = recorder
        .arrivals
        .lock()
        .unwrap()
        .iter()
        .filter(|a| (mode.herd_key)(&a.key))
        .cloned()
        .collect();
    let mut by_key: HashMap<&str, usize> = HashMap::new();
    for arrival in &arrivals {
        *by_key.entry(&arrival.key).or_default() += 1;
    }
    let lost = herd.saturating_sub(by_key.len());
    let duplicated = by_key.values().filter(|n| **n > 1).count();
    let early = arrivals.iter().filter(|a| a.at < a.due_at).count();
    // Lateness against 09:00 (the window's start), in the engine's time.
    let mut from_nine: Vec<i64> = arrivals
        .iter()
        .map(|a| a.at.since(nine()).as_millis())
        .collect();
    from_nine.sort_unstable();
    // Lateness against each message's own planned instant, in real milliseconds.
    let mut behind_plan: Vec<i64> = arrivals
        .iter()
        .map(|a| a.at.since(a.due_at).as_millis() / i64::from(mode.speed))
        .collect();
    behind_plan.sort_unstable();
    let mut instants: Vec<Instant> = arrivals.iter().map(|a| a.instant).collect();
    instants.sort_unstable();
    let most_per_s = most_in_any_window(&instants, Duration::from_secs(1));
    let quantiles = |v: &[i64]| {
        (
            percentile(v, 0.5),
            percentile(v, 0.99),
            v.last().copied().unwrap_or(0),
        )
    };
    let (p50, p99, max) = quantiles(&from_nine);
    let (plan_p50, plan_p99, plan_max) = quantiles(&behind_plan);
    let window_ms = window.as_millis() as i64 + 1_000 * i64::from(mode.speed);
    let checks = [
        ("nothing early", early == 0),
        ("rate within the limit", most_per_s <= rate as usize),
        (
            "p99 of (delivery - 09:00) within the window",
            p99 <= window_ms,
        ),
        ("nothing lost", lost == 0),
        ("nothing duplicated", duplicated == 0),
    ];

    println!(
        "herd ({}) of {herd} due from 09:00 Europe/Paris, restart at 08:59:58, clock x{}, rate limit {rate}/s",
        mode.name, mode.speed
    );
    println!(
        "  ready after restart            {:>9.1} ms",
        ready.as_secs_f64() * 1e3
    );
    println!(
        "  delivered                      {:>9}   in {drained:.1?} of real time",
        arrivals.len()
    );
    println!("  most in any 1 s (real)         {most_per_s:>9}   (limit {rate})");
    println!(
        "  delivery - 09:00  p50/p99/max  {p50} / {p99} / {max} ms engine time   (window {window_ms} ms)"
    );
    println!("  behind its plan   p50/p99/max  {plan_p50} / {plan_p99} / {plan_max} ms real time");
    println!("  early {early}, lost {lost}, duplicated {duplicated}");
    for (check, passed) in &checks {
        println!("  {:<46} {}", check, if *passed { "pass" } else { "FAIL" });
    }
    println!(
        "{}",
        serde_json::json!({
            "bench": "herd", "mode": mode.name, "n": herd, "rate_limit_per_s": rate,
            "clock_speed": mode.speed, "ready_ms": ready.as_millis(),
            "delivered": arrivals.len(), "most_in_any_second": most_per_s,
            "from_nine_p50_ms": p50, "from_nine_p99_ms": p99, "from_nine_max_ms": max,
            "behind_plan_p50_ms": plan_p50, "behind_plan_p99_ms": plan_p99,
            "behind_plan_max_ms": plan_max, "window_ms": window_ms, "early": early,
            "lost": lost, "duplicated": duplicated,
            "pass": checks.iter().all(|(_, passed)| *passed),
        })
    );
    if !checks.iter().all(|(_, passed)| *passed) {
        std::process::exit(1);
    }
}
