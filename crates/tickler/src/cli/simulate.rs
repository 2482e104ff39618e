//! `tickler simulate`: run a scenario on a throwaway engine (memory store, manual clock, every
//! channel replaced by an in-process collector) and print what would be sent, when, and what
//! would not and why. A course team sees a policy's effect before turning it on.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tickler::config::Config;
use tickler::{
    CallbackChannel, Channel, Clock, Engine, EntityId, ManualClock, MemoryStore, Outcome,
    PastEvent, Span, SystemClock, Timestamp,
};
use tickler_admin::dispatch::dispatch;
use tickler_admin::parse_request;

use crate::SimulateFormat;

pub async fn run(
    config: &Config,
    scenario: &Path,
    until: Span,
    start: Option<Timestamp>,
    format: SimulateFormat,
    sample: usize,
) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(scenario)
        .with_context(|| format!("cannot read {}", scenario.display()))?;
    let families = tickler::config::Config::command_families();
    let mut steps = Vec::new();
    for (number, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Value::Object(mut object) = serde_json::from_str::<Value>(line)
            .with_context(|| format!("{}: line {} is not JSON", scenario.display(), number + 1))?
        else {
            bail!(
                "{}: line {} is not a JSON object",
                scenario.display(),
                number + 1
            );
        };
        let at = match object.remove("at") {
            Some(Value::String(at)) => Some(
                Timestamp::parse(&at)
                    .with_context(|| format!("{}: line {}", scenario.display(), number + 1))?,
            ),
            Some(other) => bail!(
                "{}: line {}: \"at\" must be an instant, not {other}",
                scenario.display(),
                number + 1
            ),
            None => None,
        };
        object.insert("v".into(), json!(tickler_admin::PROTOCOL_VERSION));
        let (_, request) =
            parse_request(&serde_json::to_vec(&object)?, &families).map_err(|err| {
                anyhow::anyhow!(
                    "{}: line {}: {} [{}]",
                    scenario.display(),
                    number + 1,
                    err.message,
                    err.code
                )
            })?;
        steps.push((number + 1, at, request));
    }
    let start = start
        .or_else(|| steps.iter().find_map(|(_, at, _)| *at))
        .unwrap_or_else(|| SystemClock.now());
    let end = start.saturating_add(until);

    let clock = ManualClock::new(start);
    let collector: Arc<dyn Channel> = Arc::new(CallbackChannel(|_: &tickler::Message| {
        Ok("simulated".to_owned())
    }));
    let mut builder = Engine::builder()
        .options(config.engine.clone())
        .store(Arc::new(MemoryStore::new()))
        .clock(Arc::new(clock.clone()))
        .catalog(config.catalog()?)
        .extension(tickler_learning::extension());
    let mut channels: BTreeSet<String> = config.channels.keys().cloned().collect();
    channels.insert(config.engine.default_channel.clone());
    for name in &channels {
        builder = builder.channel(name, collector.clone());
    }
    let engine = builder.open().await?;
    let mut stream = engine.subscribe();
    let recorder = tokio::spawn(async move {
        let mut all = Vec::new();
        while let Ok(past) = stream.recv().await {
            all.push(past);
        }
        all
    });

    for (line, at, request) in steps {
        if let Some(at) = at {
            let now = engine.now();
            if at > now {
                engine.advance(at.since(now)).await?;
            }
        }
        if let (Err(err), _) = dispatch(&engine, &families, request).await {
            eprintln!(
                "{}: line {line}: {err} [{}]",
                scenario.display(),
                err.code()
            );
        }
    }
    let now = engine.now();
    if end > now {
        engine.advance(end.since(now)).await?;
    }
    engine.shutdown().await?;
    drop(engine);
    let past = recorder.await?;
    report(&past, start, end, format, sample)
}

fn outcome_of(past: &PastEvent) -> String {
    match &past.outcome {
        Outcome::Sent { .. } => "sent".to_owned(),
        Outcome::Unsent { reason, .. } => format!("unsent: {reason}"),
    }
}

fn report(
    past: &[PastEvent],
    start: Timestamp,
    end: Timestamp,
    format: SimulateFormat,
    sample: usize,
) -> anyhow::Result<()> {
    // (day, kind, outcome) -> count, by the instant each occurrence ended.
    let mut counts: BTreeMap<(String, String, String), u64> = BTreeMap::new();
    for event in past {
        let day = event.closed_at.to_chrono().format("%Y-%m-%d").to_string();
        *counts
            .entry((day, event.kind.clone(), outcome_of(event)))
            .or_default() += 1;
    }
    let mut sampled: Vec<EntityId> = Vec::new();
    for event in past {
        if sampled.len() < sample && !sampled.contains(&event.entity) {
            sampled.push(event.entity.clone());
        }
    }
    let timeline: Vec<&PastEvent> = past
        .iter()
        .filter(|p| sampled.contains(&p.entity))
        .collect();
    match format {
        SimulateFormat::Json => {
            let counts: Vec<Value> = counts
                .iter()
                .map(|((day, kind, outcome), n)| json!({"day": day, "kind": kind, "outcome": outcome, "count": n}))
                .collect();
            let timeline: Vec<Value> = timeline
                .iter()
                .map(|p| json!({"at": p.closed_at, "entity": p.entity, "occurrence": p.occurrence, "kind": p.kind, "outcome": outcome_of(p)}))
                .collect();
            out!(
                "{}",
                serde_json::to_string_pretty(
                    &json!({"from": start, "to": end, "counts": counts, "timeline": timeline})
                )?
            );
        }
        SimulateFormat::Csv => {
            out!("day,kind,outcome,count");
            for ((day, kind, outcome), n) in &counts {
                out!("{day},{kind},{outcome},{n}");
            }
        }
        SimulateFormat::Table => {
            out!(
                "simulated from {start} to {end}: {} occurrence(s) ended",
                past.len()
            );
            let mut table =
                tickler_admin::terminal::table(&["DAY (UTC)", "KIND", "OUTCOME", "COUNT"]);
            for ((day, kind, outcome), n) in &counts {
                table.add_row(vec![
                    day.clone(),
                    kind.clone(),
                    outcome.clone(),
                    n.to_string(),
                ]);
            }
            out!("{table}");
            for entity in &sampled {
                out!("{entity}");
                for p in timeline.iter().filter(|p| &p.entity == entity) {
                    out!(
                        "  {}  {:<20} {}",
                        p.closed_at,
                        p.occurrence.to_string(),
                        outcome_of(p)
                    );
                }
            }
        }
    }
    Ok(())
}
