#!/usr/bin/env bash
# Runs every fuzz target for SECONDS each (default 60) on a scratch copy of its seed corpus, so
# the checked-in corpus stays the seeds. Needs cargo-fuzz (`cargo install cargo-fuzz --locked`).
# It runs on the stable toolchain without a sanitizer (-s none): coverage-guided, and every
# panic, failed assertion or overflow check is a finding. A crash leaves its input in
# tests/fuzz/artifacts/<target>/; make it a regression test, then fix the code.
# FUZZ_BUILD=dev builds unoptimised (a quarter of the build time, for CI's short smoke run).
#   tests/fuzz/run.sh [SECONDS] [TARGET...]
set -euo pipefail
cd "$(dirname "$0")/../.."
seconds="${1:-60}"
shift || true
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  targets=(admin_request log_record policy_config template_render)
fi
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
profile=()
[ "${FUZZ_BUILD:-release}" = dev ] && profile=(--dev)
cargo +stable fuzz build "${profile[@]}" --fuzz-dir tests/fuzz -s none
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  cp tests/fuzz/corpus/"$target"/* "$scratch/$target"/
  echo "== fuzz $target for ${seconds}s"
  cargo +stable fuzz run "${profile[@]}" --fuzz-dir tests/fuzz -s none "$target" "$scratch/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 2>&1 \
    | grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY' || true
  # grep hides libFuzzer's chatter; its exit status is the run's.
  test "${PIPESTATUS[0]}" -eq 0
done
