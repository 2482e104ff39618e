#!/usr/bin/env python3
"""Writes records-v2.json: golden vectors for tickler record format v2.

v2 keeps v1's record envelope (its vectors are in records-v1.json) and replaces v1's event and
head keyspaces by log entries: key `L | entity | last seq`, value `varint count || count x
(varint length || record)`. Written from proto/record-format.md, not from the Rust code. Re-run
only when adding vectors: existing vectors must never change (python3 gen_records_v2.py).
"""
import json
import pathlib
import struct
import sys

sys.dont_write_bytecode = True
from recordspec import entity, envelope, occurrence, varint, with_crc  # noqa: E402

TYPICAL_MS = 1_772_701_200_000  # 2026-03-05T09:00:00Z
ENTITY = "due/review-42"

EMPTY = with_crc(envelope(1, 1, 0, b""))
TYPICAL = with_crc(envelope(1, 3, TYPICAL_MS, b"hello"))
LONG = with_crc(envelope(2, 300, TYPICAL_MS, bytes(i % 256 for i in range(300))))


def log_value(records):
    return varint(len(records)) + b"".join(varint(len(r)) + r for r in records)


def log_entry(name, last_seq, records):
    return {
        "name": name,
        "entity": ENTITY,
        "last_seq": last_seq,
        "key_hex": (b"L" + entity(ENTITY) + struct.pack(">Q", last_seq)).hex(),
        "value_hex": log_value(records).hex(),
        "records_hex": [r.hex() for r in records],
    }


log_entries = [
    log_entry("one event", 1, [TYPICAL]),
    log_entry("three events of one command, one of them over 127 bytes", 4, [EMPTY, TYPICAL, LONG]),
]


def invalid(name, raw, error):
    return {"name": name, "hex": raw.hex(), "error": error}


invalid_log_entries = [
    invalid("empty", b"", "truncated"),
    invalid("no events", varint(0), "holds 0 events"),
    invalid("a record longer than what is left", varint(1) + varint(len(TYPICAL) + 1) + TYPICAL, "are left"),
    invalid("a byte after the records", log_value([TYPICAL]) + b"\x00", "unexpected bytes after"),
    invalid("overlong count", b"\x81\x00" + varint(len(TYPICAL)) + TYPICAL, "shortest encoding"),
]

keys = [
    {"name": "past event", "kind": "past_event", "entity": ENTITY, "occurrence": "pre-due#0",
     "hex": (b"P" + entity(ENTITY) + occurrence("pre-due#0")).hex()},
    {"name": "timer", "kind": "timer", "due_ms": TYPICAL_MS, "entity": ENTITY, "occurrence": "pre-due#0",
     "hex": (b"T" + struct.pack(">Q", TYPICAL_MS) + entity(ENTITY) + occurrence("pre-due#0")).hex()},
    {"name": "format marker", "kind": "meta", "meta_name": "format",
     "hex": b"Mformat".hex(), "value_hex": b"tickler-store-v2".hex()},
]

document = {
    "format": "tickler record format v2",
    "spec": "proto/record-format.md",
    "generator": "proto/golden/gen_records_v2.py",
    "log_entries": log_entries,
    "invalid_log_entries": invalid_log_entries,
    "keys": keys,
}

path = pathlib.Path(__file__).with_name("records-v2.json")
path.write_text(json.dumps(document, indent=2) + "\n")
print(f"wrote {path}")
