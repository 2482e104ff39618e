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
failed=()
for target in "${targets[@]}"; do
  mkdir -p "$scratch/$target"
  cp tests/fuzz/corpus/"$target"/* "$scratch/$target"/
  echo "== fuzz $target for ${seconds}s"
  # libFuzzer's chatter goes to a log; its summary lines are shown. A crash is a finding
  # whatever the exit status says (cargo fuzz may report it as 0 after printing it).
  set +e
  cargo +stable fuzz run "${profile[@]}" --fuzz-dir tests/fuzz -s none "$target" "$scratch/$target" -- \
    -max_total_time="$seconds" -print_final_stats=1 -timeout=10 -rss_limit_mb=2048 \
    > "$scratch/$target.log" 2>&1
  status=$?
  set -e
  grep -E '^(Done|stat::number_of_executed_units|stat::peak_rss_mb)|ERROR|panicked|SUMMARY' "$scratch/$target.log" || true
  if [ "$status" -ne 0 ] || grep -qE 'SUMMARY: libFuzzer|panicked' "$scratch/$target.log"; then
    failed+=("$target")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzz findings in: ${failed[*]} (inputs in tests/fuzz/artifacts/)"
  exit 1
fi
