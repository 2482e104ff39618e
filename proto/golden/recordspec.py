"""The record envelope and key encodings of proto/record-format.md, written from the spec and not
from the Rust code: shared by the golden vector generators (gen_records_v1.py, gen_records_v2.py).
"""
import struct
import zlib


def varint(n):
    assert n >= 0
    out = bytearray()
    while True:
        byte = n & 0x7F
        n >>= 7
        if n:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def zigzag(n):
    return (n << 1) ^ (n >> 63)


def envelope(format_version, event_type, recorded_at_ms, payload):
    return (
        varint(format_version)
        + varint(event_type)
        + varint(zigzag(recorded_at_ms) & 0xFFFFFFFFFFFFFFFF)
        + varint(len(payload))
        + payload
    )


def with_crc(env):
    return env + struct.pack("<I", zlib.crc32(env))


def record(name, format_version, event_type, recorded_at_ms, payload):
    return {
        "name": name,
        "hex": with_crc(envelope(format_version, event_type, recorded_at_ms, payload)).hex(),
        "format_version": format_version,
        "event_type": event_type,
        "recorded_at_ms": recorded_at_ms,
        "payload_hex": payload.hex(),
    }


def entity(text):
    raw = text.encode()
    return struct.pack(">H", len(raw)) + raw


def occurrence(text):
    rule, index = text.rsplit("#", 1)
    return entity(rule) + struct.pack(">I", int(index))
