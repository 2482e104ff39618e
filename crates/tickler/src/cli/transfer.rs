//! `tickler import` and `tickler export`: JSON lines in and out through the admin socket, with a
//! progress bar for long work.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;

use anyhow::{Context, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;
use tickler::EntityId;
use tickler_admin::protocol::{Export, PROTOCOL_VERSION};
use tickler_admin::{Client, Request};

/// Entities per export page.
const EXPORT_PAGE_ENTITIES: usize = 200;

/// Concurrent connections an import uses: commands on different connections share the
/// daemon's flushes (group commit), which one connection sending in turn cannot.
const IMPORT_CONNECTIONS: usize = 16;

/// Sends each line of `file` (an admin request without `v`, e.g.
/// `{"cmd":"due.create","args":{...}}`) and reports the lines that failed. Lines about one
/// entity (`args.entity`) go through one connection, in file order; different entities go in
/// parallel.
pub async fn import(socket: &Path, file: &Path, json: bool) -> anyhow::Result<()> {
    let text =
        std::fs::File::open(file).with_context(|| format!("cannot open {}", file.display()))?;
    let lines: Vec<String> = BufReader::new(text).lines().collect::<Result<_, _>>()?;
    let bar = ProgressBar::new(lines.len() as u64).with_style(
        ProgressStyle::with_template("importing {bar:40} {pos}/{len} lines ({per_sec}, {eta})")
            .expect("a valid template"),
    );
    let mut lanes: Vec<Vec<(usize, Vec<u8>)>> = vec![Vec::new(); IMPORT_CONNECTIONS];
    let mut failures: Vec<(usize, String)> = Vec::new();
    for (number, line) in lines.iter().enumerate() {
        let number = number + 1;
        if line.trim().is_empty() {
            bar.inc(1);
            continue;
        }
        let Ok(Value::Object(mut object)) = serde_json::from_str::<Value>(line) else {
            failures.push((number, "not a JSON object".to_owned()));
            bar.inc(1);
            continue;
        };
        let lane = object
            .get("args")
            .and_then(|args| args.get("entity"))
            .and_then(Value::as_str)
            .map_or(0, lane_of);
        object.insert("v".into(), Value::from(PROTOCOL_VERSION));
        object.insert("id".into(), Value::from(number));
        let mut bytes = serde_json::to_vec(&object)?;
        bytes.push(b'\n');
        lanes[lane].push((number, bytes));
    }
    let mut workers = Vec::new();
    for lane in lanes.into_iter().filter(|lane| !lane.is_empty()) {
        let socket = socket.to_owned();
        let bar = bar.clone();
        workers.push(tokio::spawn(async move {
            let mut client = Client::connect(&socket).await?;
            let mut failed = Vec::new();
            for (number, bytes) in lane {
                let reply = client.send_raw(&bytes).await?;
                if let Some(error) = reply.error {
                    failed.push((number, format!("{} [{}]", error.message, error.code)));
                }
                bar.inc(1);
            }
            Ok::<_, tickler_admin::Error>(failed)
        }));
    }
    for worker in workers {
        failures.extend(worker.await??);
    }
    bar.finish_and_clear();
    failures.sort();
    let sent = lines.iter().filter(|l| !l.trim().is_empty()).count();
    if json {
        let failed: Vec<Value> = failures
            .iter()
            .map(|(line, error)| serde_json::json!({ "line": line, "error": error }))
            .collect();
        let summary = serde_json::json!({ "imported": sent - failures.len(), "failed": failed });
        out!("{}", serde_json::to_string_pretty(&summary)?);
    } else {
        for (number, message) in &failures {
            eprintln!("line {number}: {message}");
        }
        out!(
            "imported {} line(s), {} failed",
            sent - failures.len(),
            failures.len()
        );
    }
    if !failures.is_empty() {
        bail!("{} line(s) of {} failed", failures.len(), file.display());
    }
    Ok(())
}

/// The connection an entity's lines go through (stable for the whole import).
fn lane_of(entity: &str) -> usize {
    entity.bytes().fold(0usize, |h, b| {
        h.wrapping_mul(31).wrapping_add(usize::from(b))
    }) % IMPORT_CONNECTIONS
}

/// Writes every entity's log, one event per line.
pub async fn export(socket: &Path, output: Option<&Path>) -> anyhow::Result<()> {
    let mut client = Client::connect(socket).await?;
    let status = client.call(Request::Status).await?;
    let total = status
        .result
        .as_ref()
        .and_then(|r| r["events"].as_u64())
        .unwrap_or(0);
    let bar = ProgressBar::new(total).with_style(
        ProgressStyle::with_template("exporting {bar:40} {pos}/{len} events ({eta})")
            .expect("a valid template"),
    );
    // An export holds every recipient's address: written to a new private file, renamed over
    // the target once complete (a link there is replaced, not followed).
    let mut file = output
        .map(|path| {
            tickler::private_fs::PrivateFile::create(path)
                .with_context(|| format!("cannot create {}", path.display()))
        })
        .transpose()?;
    let mut sink: Box<dyn Write + '_> = match file.as_mut() {
        Some(file) => Box::new(std::io::BufWriter::new(file)),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let mut after: Option<EntityId> = None;
    let mut written = 0u64;
    loop {
        let request = Request::Export(Export {
            after: after.clone(),
            entities: Some(EXPORT_PAGE_ENTITIES),
        });
        let reply = client.call(request).await?;
        if let Some(error) = reply.error {
            bail!("{} [{}]", error.message, error.code);
        }
        let result = reply.result.unwrap_or_default();
        for event in result["events"].as_array().into_iter().flatten() {
            serde_json::to_writer(&mut sink, event)?;
            sink.write_all(b"\n")?;
            written += 1;
            bar.inc(1);
        }
        match result["next"].as_str() {
            Some(next) => after = Some(EntityId::parse(next)?),
            None => break,
        }
    }
    sink.flush()?;
    drop(sink);
    if let Some(file) = file {
        file.commit()?;
    }
    bar.finish_and_clear();
    eprintln!("exported {written} events");
    Ok(())
}

/// Prints each past event the daemon records, as it is recorded.
pub async fn watch(socket: &Path, json: bool) -> anyhow::Result<()> {
    let mut client = Client::connect(socket).await?;
    let first = client.call(Request::Watch).await?;
    if let Some(error) = first.error {
        bail!("{} [{}]", error.message, error.code);
    }
    loop {
        let reply = client.next_reply().await?;
        if json {
            out!("{}", serde_json::to_string(&reply)?);
            continue;
        }
        match (reply.result, reply.error) {
            (Some(result), _) => {
                let past = &result["past_event"];
                let outcome = match past["reason"].as_str() {
                    Some(reason) => format!(
                        "unsent: {reason} ({})",
                        past["detail"].as_str().unwrap_or_default()
                    ),
                    None => format!("sent via {}", past["channel"].as_str().unwrap_or_default()),
                };
                out!(
                    "{}  {}  {}  {outcome}",
                    past["closed_at"].as_str().unwrap_or_default(),
                    result["entity"].as_str().unwrap_or_default(),
                    past["occurrence"].as_str().unwrap_or_default()
                );
            }
            (None, Some(error)) => eprintln!("{} [{}]", error.message, error.code),
            (None, None) => {}
        }
    }
}
