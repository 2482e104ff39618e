#!/usr/bin/env bash
# The widest line of the CLI's main outputs at COLUMNS=80, on the same small store (issue 22's
# before/after). Usage: tests/output_widths.sh BINARY CONFIG_DIR [LABEL]
#   tests/output_widths.sh target/debug/tickler config after
# For a build of another commit: git worktree add /tmp/before COMMIT, build it there, and pass
# /tmp/before's binary and /tmp/before/config.
set -euo pipefail
BIN=$(realpath "$1"); CONF=$(realpath "$2"); LABEL=${3:-}
WORK=$(mktemp -d); cd "$WORK"; cp -r "$CONF" config; rm -rf config/learning
sed -i 's/^# manual_clock_start = .*/manual_clock_start = "2026-03-01T09:30:00Z"/' config/tickler.toml
"$BIN" serve --clock manual 2> serve.log &
for _ in $(seq 100); do "$BIN" clock now > /dev/null 2>&1 && break; sleep 0.1; done
"$BIN" due-date create review-of-a-long-manuscript-title-42 --recipient \
    a.reviewer.with.a.long.address@example.org --zone America/Argentina/Buenos_Aires > /dev/null
"$BIN" eval create course-101 --title "Course 101" --owner owner@example.org \
    --students a@example.org,b@example.org,c@example.org --start 2026-03-02T08:00:00Z \
    --due 2026-03-09T17:00:00Z --view 2026-03-10T08:00:00Z --reminder every-1d \
    --zone Europe/Paris > /dev/null
"$BIN" group join karma c-1 --recipient tel:+254700000001 --zone Africa/Nairobi > /dev/null
"$BIN" clock advance 12d > /dev/null
export COLUMNS=80
widest() {
    local out; out=$("$BIN" "$@" 2>&1)
    printf '%s\n' "$out" | python3 -c 'import sys; print(max(len(l.rstrip("\n")) for l in sys.stdin))'
}
for command in "show due/review-of-a-long-manuscript-title-42" "show eval/course-101" \
    "history eval/course-101" "history contact/karma/c-1" "list" "status" \
    "due --from 2026-03-01T00:00:00Z --to 2026-05-01T00:00:00Z" \
    "explain due/review-of-a-long-manuscript-title-42"; do
    # shellcheck disable=SC2086 # the command's words
    echo "$LABEL | tickler $command | $(widest $command)"
done
"$BIN" shutdown > /dev/null 2>&1 || true
rm -rf "$WORK"
