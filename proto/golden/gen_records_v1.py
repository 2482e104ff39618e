#!/usr/bin/env python3
"""Writes records-v1.json: golden vectors for tickler record format v1.

An independent implementation of proto/record-format.md (postcard varints and zigzag, CRC-32
from zlib, big-endian keys), written from the spec and not from the Rust code, so that the Rust
test that decodes and re-encodes these vectors checks the code against the spec. Re-run only
when adding vectors: existing vectors must never change (python3 gen_records_v1.py).
"""
import json
import pathlib
import struct
import sys

sys.dont_write_bytecode = True
from recordspec import entity, envelope, occurrence, record, varint, with_crc  # noqa: E402


TYPICAL_MS = 1_772_701_200_000  # 2026-03-05T09:00:00Z
MAX_MS = 253_402_300_799_999  # 9999-12-31T23:59:59.999Z
ENTITY = "due/review-42"

records = [
    record("empty payload at the epoch", 1, 1, 0, b""),
    record("typical", 1, 3, TYPICAL_MS, b"hello"),
    record("largest recorded_at", 1, 2, MAX_MS, b"\x00\xff"),
    record("300-byte payload: two-byte length varint", 2, 300, TYPICAL_MS, bytes(i % 256 for i in range(300))),
    record("largest format_version and event_type: three-byte varints", 65535, 65535, 1, b"x"),
]

typical = bytes.fromhex(records[1]["hex"])
typical_env = typical[:-4]


def invalid(name, raw, error):
    return {"name": name, "hex": raw.hex(), "error": error}


invalid_records = [
    invalid("empty", b"", "shorter than the 4-byte checksum"),
    invalid("shorter than the checksum", typical[:3], "shorter than the 4-byte checksum"),
    invalid("bad checksum", typical[:-1] + bytes([typical[-1] ^ 0x01]), "checksum mismatch"),
    invalid("flipped envelope bit", bytes([typical[0] ^ 0x02]) + typical[1:], "checksum mismatch"),
    invalid("truncated by one byte", typical[:-1], "checksum mismatch"),
    invalid("envelope cut inside the payload, checksum recomputed", with_crc(typical_env[:-1]), "envelope does not decode"),
    invalid("byte after the envelope, checksum recomputed", with_crc(typical_env + b"\x00"), "unexpected bytes after the envelope"),
    invalid("negative recorded_at", with_crc(envelope(1, 1, -1, b"")), "outside the accepted range"),
    invalid("recorded_at after 9999", with_crc(envelope(1, 1, MAX_MS + 1, b"")), "outside the accepted range"),
    invalid("format_version varint overflows u16", with_crc(varint(65536) + typical_env[1:]), "envelope does not decode"),
]

keys = [
    {"name": "event 1", "kind": "event", "entity": ENTITY, "seq": 1,
     "hex": (b"E" + entity(ENTITY) + struct.pack(">Q", 1)).hex()},
    {"name": "event 258", "kind": "event", "entity": ENTITY, "seq": 258,
     "hex": (b"E" + entity(ENTITY) + struct.pack(">Q", 258)).hex()},
    {"name": "head", "kind": "head", "entity": ENTITY, "last_seq": 3,
     "hex": (b"H" + entity(ENTITY)).hex(), "value_hex": struct.pack(">Q", 3).hex()},
    {"name": "past event", "kind": "past_event", "entity": ENTITY, "occurrence": "pre-due#0",
     "hex": (b"P" + entity(ENTITY) + occurrence("pre-due#0")).hex()},
    {"name": "timer", "kind": "timer", "due_ms": TYPICAL_MS, "entity": ENTITY, "occurrence": "pre-due#0",
     "hex": (b"T" + struct.pack(">Q", TYPICAL_MS) + entity(ENTITY) + occurrence("pre-due#0")).hex()},
    {"name": "snapshot", "kind": "snapshot", "entity": ENTITY, "seq": 3, "record": "typical",
     "hex": (b"S" + entity(ENTITY)).hex(), "value_hex": (struct.pack(">Q", 3) + typical).hex()},
    {"name": "format marker", "kind": "meta", "meta_name": "format",
     "hex": b"Mformat".hex(), "value_hex": b"tickler-store-v1".hex()},
]

document = {
    "format": "tickler record format v1",
    "spec": "proto/record-format.md",
    "generator": "proto/golden/gen_records_v1.py",
    "records": records,
    "invalid_records": invalid_records,
    "keys": keys,
}

path = pathlib.Path(__file__).with_name("records-v1.json")
path.write_text(json.dumps(document, indent=2) + "\n")
print(f"wrote {path}")
