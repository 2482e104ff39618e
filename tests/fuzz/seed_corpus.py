#!/usr/bin/env python3
"""Writes the fuzz targets' seed corpora from the repository's own contracts: the admin
protocol's example requests, the golden record and event vectors, the shipped policies and
config, and hostile template values. Run it after a contract changes; its output is checked in."""
import glob
import json
import os

here = os.path.dirname(os.path.abspath(__file__))
repo = os.path.normpath(os.path.join(here, "..", ".."))
root = os.path.join(here, "corpus")
for target in ["admin_request", "log_record", "policy_config", "template_render"]:
    os.makedirs(os.path.join(root, target), exist_ok=True)

n = 0
for line in open(os.path.join(repo, "proto", "admin-protocol.md"), encoding="utf-8"):
    if line.startswith("> {"):
        n += 1
        with open(os.path.join(root, "admin_request", f"spec-{n:03}"), "w") as f:
            f.write(line[2:])


def hexes(value):
    if isinstance(value, dict):
        for key, inner in value.items():
            if key == "hex" and isinstance(inner, str):
                yield inner
            else:
                yield from hexes(inner)
    elif isinstance(value, list):
        for inner in value:
            yield from hexes(inner)


for name in ["records-v1.json", "events-v1.json"]:
    vectors = json.load(open(os.path.join(repo, "proto", "golden", name)))
    for i, h in enumerate(hexes(vectors)):
        with open(os.path.join(root, "log_record", f"{name[:-5]}-{i:03}"), "wb") as f:
            f.write(bytes.fromhex(h))

files = glob.glob(os.path.join(repo, "config", "policies", "*.toml"))
files += [os.path.join(repo, "config", "tickler.toml"),
          os.path.join(repo, "config", "learning", "demo.toml")]
for path in files:
    name = os.path.basename(os.path.dirname(path)) + "-" + os.path.basename(path)
    with open(os.path.join(root, "policy_config", name), "w") as f:
        f.write(open(path, encoding="utf-8").read())

# The first byte picks the template; fields are separated by U+001F.
hostile = [
    b"\x00<script>alert(1)</script>\x1fWeek 1\x1fa\nb\x1fsubject\x1fbody\x1f<b>x</b>",
    b"\x03{{ 7*7 }}\x1f{% for x in range(99999999) %}x{% endfor %}\x1f\x1f\x1f\x1f",
    b"\x05Ana & \"Bob\" <bob@example.org>\x1f\x1f\x1f\x1f\x1f",
    b"\x02" + "é漢字\u202e".encode() + b"\x1f\r\nBcc: x@example.org\x1f\x1f\x1f\x1f",
]
for i, seed in enumerate(hostile):
    with open(os.path.join(root, "template_render", f"seed-{i}"), "wb") as f:
        f.write(seed)
