#!/usr/bin/env bash
# kill -9 torture of the offline tools (compact, audit, replay, and export into a file) beside a
# daemon a supervisor keeps restarting (CI runs 6 rounds inside `cargo test`):
#   tests/offline_torture.sh 200 [SEED]
# Prints the rounds, the entities acknowledged (all must be present after every round), the
# tools and exports killed mid-run, the daemon starts refused while a tool held the data
# directory, and whether the final audit is clean.
set -euo pipefail
cd "$(dirname "$0")/.."
OFFLINE_TORTURE_ROUNDS="${1:-200}" OFFLINE_TORTURE_SEED="${2:-20261206}" \
  cargo test --release -p tickler --test offline_torture -- --nocapture
