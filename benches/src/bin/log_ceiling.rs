//! The storage ceiling of the design BENCHMARKS.md proposes (issue 7): what an append-only log
//! of tickler's own records gives on this machine, group-committed with one `fdatasync` per
//! group, before any engine work. It is a measurement of the storage primitive, not of tickler:
//! no index, no recovery, no engine. It bounds what replacing sled could reach, and shows the
//! disk a log needs per event against sled's.
//!
//! ```text
//! cargo run --release -p tickler-benches --bin log_ceiling -- [N] [GROUP ...]   (1000000; 1 64 1000)
//! ```
//!
//! Each frame is what such a log must hold to rebuild its indexes on start: a length, the
//! event's key (entity id and sequence number, as the sled store keys it) and the record's
//! bytes (the one-shot timer's `Created` event, CRC included, as `load` reports it). A group of
//! G frames is written with one `write` and made durable with one `fdatasync`; a group size of 1
//! is a log without group commit. Each group size writes to a fresh file in `$TMPDIR` (the
//! same disk as the other benchmarks' stores), and writes N frames, or 5,000 with a group of 1
//! (at one sync per record a million would take minutes and say nothing more).
//!
//! Output: a table on stderr, one JSON line per group size on stdout.

use std::fs::OpenOptions;
use std::io::Write;
use std::time::Instant;

use serde_json::json;
use tickler::{CreateEntity, EntityId, Timestamp, Zone};
use tickler_benches::protocol::percentile;

/// Frames written with a group of one: enough for stable percentiles.
const UNGROUPED_FRAMES: usize = 5_000;

/// The bytes of the `Created` event `load` schedules for timer `i` (see `load.rs`).
fn created_record(i: usize) -> Vec<u8> {
    let create = CreateEntity {
        policy: "oneshot".into(),
        workflow: None,
        recipient: format!("r{i}@example.org"),
        zone: Zone::UTC,
        anchors: [("at".to_owned(), Timestamp::EPOCH)].into(),
        attributes: Default::default(),
    };
    tickler_benches::protocol::created_record(create)
}

/// Length, key (entity id, sequence number) and record, as the log would frame one event.
fn frame(i: usize, into: &mut Vec<u8>) -> usize {
    let id = EntityId::parse(&format!("timer/t{i}")).expect("a valid entity id");
    let record = created_record(i);
    let body_len = 1 + id.as_str().len() + 8 + record.len();
    let start = into.len();
    into.extend_from_slice(&(body_len as u32).to_le_bytes());
    into.push(id.as_str().len() as u8);
    into.extend_from_slice(id.as_str().as_bytes());
    into.extend_from_slice(&1u64.to_be_bytes());
    into.extend_from_slice(&record);
    into.len() - start
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parse = |text: &String| {
        text.parse::<usize>().unwrap_or_else(|_| {
            eprintln!("log_ceiling: {text:?} is not a count\nusage: log_ceiling [N] [GROUP ...]");
            std::process::exit(2);
        })
    };
    let n = args.first().map(parse).unwrap_or(1_000_000);
    let groups: Vec<usize> = if args.len() > 1 {
        args[1..].iter().map(parse).collect()
    } else {
        vec![1, 64, 1_000]
    };
    if n == 0 || groups.contains(&0) {
        eprintln!("log_ceiling: N and every group size must be at least 1");
        std::process::exit(2);
    }
    let record_len = created_record(0).len();
    let dir = tempfile::tempdir().expect("a temporary directory");
    eprintln!("N = {n}, record {record_len} bytes; one write and one fdatasync per group");
    eprintln!("| group | frames | records/s | sync p50 / p99 ms | disk bytes per event |");
    eprintln!("| --- | --- | --- | --- | --- |");
    for group in groups {
        let frames = if group == 1 {
            n.min(UNGROUPED_FRAMES)
        } else {
            n
        };
        let path = dir.path().join(format!("log-{group}"));
        let mut file = OpenOptions::new()
            .create_new(true)
            .append(true)
            .open(&path)
            .expect("a new log file");
        let mut buffer = Vec::with_capacity(group * 128);
        let mut sync_ms = Vec::with_capacity(frames / group + 1);
        let started = Instant::now();
        let mut written = 0;
        while written < frames {
            buffer.clear();
            let this_group = group.min(frames - written);
            for i in written..written + this_group {
                frame(i, &mut buffer);
            }
            file.write_all(&buffer).expect("the log takes the write");
            let sync_started = Instant::now();
            file.sync_data().expect("fdatasync succeeds");
            sync_ms.push(sync_started.elapsed().as_secs_f64() * 1e3);
            written += this_group;
        }
        let seconds = started.elapsed().as_secs_f64();
        let disk_bytes = std::fs::metadata(&path).expect("the log exists").len();
        let rate = frames as f64 / seconds;
        let per_event = disk_bytes as f64 / frames as f64;
        sync_ms.sort_by(f64::total_cmp);
        let p50 = percentile(&sync_ms, 0.50).unwrap_or(0.0);
        let p99 = percentile(&sync_ms, 0.99).unwrap_or(0.0);
        eprintln!(
            "| {group} | {frames} | {rate:.0} | {p50:.2} / {p99:.2} | {per_event:.1} ({:.2}× the record) |",
            per_event / record_len as f64
        );
        println!(
            "{}",
            json!({
                "tool": "log_ceiling",
                "group": group,
                "frames": frames,
                "records_per_s": rate.round(),
                "sync_ms": { "p50": p50, "p99": p99 },
                "disk_bytes_per_event": per_event,
                "record_bytes": record_len,
                "durability": "fdatasync per group: survives power loss",
            })
        );
        std::fs::remove_file(&path).expect("the log file is removed");
    }
}
