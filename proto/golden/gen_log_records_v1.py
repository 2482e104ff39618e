#!/usr/bin/env python3
"""Writes log-records-v1.json: golden vectors for the shard log record, format 1.

Written from proto/log-record.md (and the record envelope of proto/record-format.md, via
recordspec.py), not from the Rust code. Re-run only when adding vectors: existing vectors must
never change (python3 gen_log_records_v1.py).
"""
import json
import pathlib
import sys

sys.dont_write_bytecode = True
from recordspec import envelope, varint, with_crc, zigzag  # noqa: E402

TYPICAL_MS = 1_772_701_200_000  # 2026-03-05T09:00:00Z
STARTED = with_crc(envelope(1, 3, TYPICAL_MS, b"hello"))
SENT = with_crc(envelope(1, 4, TYPICAL_MS + 1_000, b"sent"))
PAST = with_crc(envelope(1, 1, TYPICAL_MS + 1_000, b"past"))
SNAPSHOT = with_crc(envelope(1, 0, TYPICAL_MS + 1_000, b"state"))


def string(text):
    raw = text.encode()
    return varint(len(raw)) + raw


def blob(raw):
    return varint(len(raw)) + raw


def option(value, encode):
    return b"\x00" if value is None else b"\x01" + encode(value)


def seq(items, encode):
    return varint(len(items)) + b"".join(encode(item) for item in items)


def i64(n):
    return varint(zigzag(n) & 0xFFFFFFFFFFFFFFFF)


def timer(t):
    due_ms, entity, occurrence = t
    return i64(due_ms) + string(entity) + string(occurrence)


def pair(p):
    return string(p[0]) + string(p[1])


def batch(b):
    return (
        option(b["entity"], string)
        + varint(b["expected_seq"])
        + seq([bytes.fromhex(h) for h in b["events_hex"]], blob)
        + seq(b["past_events"], lambda p: string(p[0]) + blob(bytes.fromhex(p[1])))
        + seq(b["timers_remove"], timer)
        + seq(b["timers_insert"], timer)
        + option(b["snapshot"], lambda s: varint(s[0]) + blob(bytes.fromhex(s[1])))
        + seq(b["index_remove"], pair)
        + seq(b["index_insert"], pair)
    )


def op(o):
    if "commit" in o:
        return varint(0) + batch(o["commit"])
    meta = o["set_meta"]
    return varint(1) + string(meta["name"]) + blob(bytes.fromhex(meta["value_hex"]))


def record(name, ops, fmt=1):
    return {"name": name, "hex": with_crc(varint(fmt) + seq(ops, op)).hex(), "ops": ops}


def commit(**fields):
    base = {
        "entity": None, "expected_seq": 0, "events_hex": [], "past_events": [],
        "timers_remove": [], "timers_insert": [], "snapshot": None,
        "index_remove": [], "index_insert": [],
    }
    base.update(fields)
    return {"commit": base}


ENTITY = "due/review-42"
valid = [
    record("empty", []),
    record("typical", [
        commit(
            entity=ENTITY, expected_seq=2, events_hex=[SENT.hex()],
            past_events=[["first-late#0", PAST.hex()]],
            timers_remove=[[TYPICAL_MS, ENTITY, "first-late#0"]],
            snapshot=[3, SNAPSHOT.hex()],
            index_remove=[["retrying", ENTITY + "#first-late#0"]],
            index_insert=[["errored", ENTITY + "#first-late#0"]],
        ),
        commit(
            entity="due/review-7", expected_seq=0, events_hex=[STARTED.hex(), SENT.hex()],
            timers_insert=[[TYPICAL_MS - 86_400_000, "due/review-7", "pre-due#0"]],
            index_insert=[["policy/due-date", "due/review-7"]],
        ),
    ]),
    record("meta and a timers-only batch", [
        {"set_meta": {"name": "manual-clock", "value_hex": "0000019cbd3c7c00"}},
        commit(timers_remove=[[0, "due/r", "x#4294967295"]]),
    ]),
]
invalid = [
    {"name": "format 2", "hex": record("format 2", [], fmt=2)["hex"], "error_contains": "format 2"},
    {
        "name": "checksum",
        "hex": (lambda raw: (raw[:-1] + bytes([raw[-1] ^ 1])).hex())(bytes.fromhex(valid[1]["hex"])),
        "error_contains": "checksum",
    },
]

out = pathlib.Path(__file__).with_name("log-records-v1.json")
out.write_text(json.dumps({
    "about": "Shard log records, format 1 (proto/log-record.md); written by gen_log_records_v1.py",
    "valid": valid,
    "invalid": invalid,
}, indent=2) + "\n")
print(f"wrote {out}")
