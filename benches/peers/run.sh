#!/usr/bin/env bash
# run.sh [N] [W] [C] — measure tickler and the peers once each, print one JSON
# line per system on stdout (progress goes to stderr), then, on stderr, a table
# of tickler's figures beside the peers' as ratios (compare.mjs), all from this
# one run. SYSTEMS picks which (default "tickler tickler-device bullmq pgboss";
# also "tickler-daemon"); tickler's measurer is `benches/src/bin/load.rs`,
# built here in release mode;
# WAIT_QUIET=1 waits (up to ~5 min) for the machine to be idle before each one;
# MAX_TRIES=n measures a system again when other work disturbed its run.
#
# Each system gets a fresh private server, started just before its measurer and
# stopped right after it, so the two never share the 2 cores and no state
# carries over: Redis on 127.0.0.1:6390, PostgreSQL on 127.0.0.1:5440 (unix
# socket in the temp dir), data under one temp dir that is removed on exit.
set -euo pipefail
N=${1:-10000}
W=${2:-2000}
C=${3:-64}
SYSTEMS=${SYSTEMS:-tickler tickler-device bullmq pgboss}
REDIS_PORT=6390
PG_PORT=5440
here=$(cd "$(dirname "$0")" && pwd)
PGBIN=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -1)
[ -x "$PGBIN/initdb" ] && command -v redis-server >/dev/null && [ -d "$here/node_modules" ] ||
  { echo "run.sh: run install.sh first" >&2; exit 1; }

# The temp dir must be on a real disk: on tmpfs every fsync is free and the
# durability settings would mean nothing.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/tickler-peers.XXXXXX")
if [ "$(stat -f -c %T "$tmp")" = tmpfs ]; then
  echo "run.sh: $tmp is on tmpfs; set TMPDIR to a disk-backed directory" >&2
  rm -rf "$tmp"; exit 1
fi
chmod 755 "$tmp" # the postgres user must reach its subdirectory

redis_pid=
pg_dir="$tmp/pg"

lines="$tmp/lines.jsonl"
root=$(cd "$here/../.." && pwd)
load_bin="$root/target/release/load"
if grep -qw 'tickler[a-z-]*' <<<"$SYSTEMS"; then
  echo "run.sh: building tickler's load generator (release)" >&2
  (cd "$root" && cargo build --release --locked -q -p tickler -p tickler-benches --bin load --bin tickler) >&2
fi

# PostgreSQL refuses to run as root: when root, run its tools as `postgres`.
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }

stop_redis() {
  if [ -n "$redis_pid" ]; then
    kill "$redis_pid" 2>/dev/null || true # SIGTERM: Redis flushes the AOF and exits
    wait "$redis_pid" 2>/dev/null || true
    redis_pid=
  fi
}
stop_pg() {
  if [ -f "$pg_dir/data/postmaster.pid" ]; then
    as_pg "$PGBIN/pg_ctl" -D "$pg_dir/data" -m fast -w stop >/dev/null || true
  fi
}
cleanup() {
  stop_redis
  stop_pg
  rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM HUP

# % of all CPUs busy over 2 s, from /proc/stat (idle = idle + iowait).
busy_pct() {
  local a b c d e f g h t1 i1
  read -r _ a b c d e f g h _ </proc/stat; t1=$((a+b+c+d+e+f+g+h)); i1=$((d+e))
  sleep 2
  read -r _ a b c d e f g h _ </proc/stat
  echo $(( 100 * ((a+b+c+d+e+f+g+h - t1) - (d+e - i1)) / (a+b+c+d+e+f+g+h - t1) ))
}
# On a shared box another job (a compile) can take both cores mid-run and
# skew every number; optionally wait for 3 quiet samples in a row first.
wait_quiet() {
  [ "${WAIT_QUIET:-0}" = 1 ] || return 0
  local quiet=0 p k
  for k in $(seq 150); do
    p=$(busy_pct)
    if [ "$p" -lt 10 ]; then quiet=$((quiet+1)); [ $quiet -ge 3 ] && return 0
    else
      quiet=0
      [ $((k % 15)) = 1 ] && echo "run.sh: machine ${p}% busy, waiting for quiet" >&2
    fi
  done
  echo "run.sh: machine still busy, measuring anyway" >&2
}

port_free() { ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

start_redis() {
  port_free $REDIS_PORT || { echo "run.sh: port $REDIS_PORT is taken" >&2; return 1; }
  rm -rf "$tmp/redis"; mkdir -p "$tmp/redis" # fresh state for every measurement
  # appendonly + appendfsync everysec: Redis's usual durable setting (an
  # acknowledged write can be lost only in the last ~1 s before a crash).
  # RDB snapshots are off so a background save cannot fork mid-measurement.
  cat >"$tmp/redis/redis.conf" <<EOF
bind 127.0.0.1
port $REDIS_PORT
protected-mode yes
daemonize no
dir $tmp/redis
logfile $tmp/redis/redis.log
appendonly yes
appendfsync everysec
save ""
maxmemory-policy noeviction
EOF
  redis-server "$tmp/redis/redis.conf" &
  redis_pid=$!
  for _ in $(seq 100); do
    redis-cli -p $REDIS_PORT ping >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "run.sh: redis did not start:" >&2; cat "$tmp/redis/redis.log" >&2; return 1
}

start_pg() {
  port_free $PG_PORT || { echo "run.sh: port $PG_PORT is taken" >&2; return 1; }
  rm -rf "$pg_dir"; mkdir -p "$pg_dir/sock" # fresh cluster for every measurement
  [ "$(id -u)" = 0 ] && chown -R postgres:postgres "$pg_dir"
  # trust auth is fine: the server listens on loopback and its socket dir only.
  # --no-sync only skips fsyncing initdb's own files; the server keeps
  # fsync=on and synchronous_commit=on (the defaults), which we do not touch.
  as_pg "$PGBIN/initdb" -D "$pg_dir/data" -U postgres -A trust --no-sync >/dev/null
  as_pg "$PGBIN/pg_ctl" -D "$pg_dir/data" -l "$pg_dir/postgres.log" -w -t 30 \
    -o "-p $PG_PORT -k $pg_dir/sock -c listen_addresses=127.0.0.1" start >/dev/null ||
    { cat "$pg_dir/postgres.log" >&2; return 1; }
}

# One measurement of one system on a fresh server. With MAX_TRIES > 1, a run
# during which other work took more than 5 % of the CPU (the JSON's
# host.foreign_cpu_pct) is thrown away and measured again, up to MAX_TRIES
# times; the last line is printed either way.
measure() {
  local s=$1 try out code foreign
  for try in $(seq "${MAX_TRIES:-1}"); do
    wait_quiet
    code=0
    case $s in
      bullmq)
        start_redis || return 1
        out=$(REDIS_HOST=127.0.0.1 REDIS_PORT=$REDIS_PORT node bullmq.mjs "$N" "$W" "$C") || code=$?
        stop_redis ;;
      pgboss)
        start_pg || return 1
        out=$(PG_URL="postgres://postgres@127.0.0.1:$PG_PORT/postgres" node pgboss.mjs "$N" "$W" "$C") || code=$?
        stop_pg ;;
      # tickler's data goes to $TMPDIR too (the run's disk-backed temp dir).
      tickler) out=$(TMPDIR="$tmp" "$load_bin" "$N" "$W" "$C") || code=$? ;;
      tickler-device) out=$(TMPDIR="$tmp" "$load_bin" "$N" "$W" "$C" --durability device) || code=$? ;;
      tickler-daemon) out=$(TMPDIR="$tmp" "$load_bin" "$N" "$W" "$C" --daemon) || code=$? ;;
      *) echo "run.sh: unknown system $s" >&2; return 2 ;;
    esac
    foreign=$(grep -o '"foreign_cpu_pct":[0-9.]*' <<<"$out" | cut -d: -f2)
    if [ $code != 0 ] || [ -z "$foreign" ] || [ "$try" = "${MAX_TRIES:-1}" ] ||
       awk -v f="$foreign" 'BEGIN { exit !(f < 5) }'; then
      [ -n "$out" ] && printf '%s\n' "$out" | tee -a "$lines"
      return $code
    fi
    echo "run.sh: $s: other work took ${foreign}% of the CPU during the run; measuring again" >&2
  done
}

rc=0
cd "$here"
for s in $SYSTEMS; do
  measure "$s" || rc=$?
done
node compare.mjs <"$lines" >&2 || rc=$?
exit $rc
