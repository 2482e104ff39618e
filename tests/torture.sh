#!/usr/bin/env bash
# kill -9 torture for as many cycles as you like (CI runs 20 inside `cargo test`):
#   tests/torture.sh 500 [SEED]
# Prints the seed, the kills, the requests (ok, refused, unknown) and the checker's counts:
# lost, unexpected, duplicated, early, late (all must be 0).
set -euo pipefail
cd "$(dirname "$0")/.."
TORTURE_CYCLES="${1:-500}" TORTURE_SEED="${2:-20261122}" \
  cargo test --release -p tickler --test torture -- --nocapture
