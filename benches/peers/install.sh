#!/usr/bin/env bash
# Installs what run.sh needs; safe to run again.
#  - Debian's redis-server and postgresql packages, whose own services must not
#    run: run.sh starts private instances (own ports, data in a temp dir), and a
#    packaged server on 6379/5432 would only steal CPU from the measurement.
#  - the pinned node packages (package-lock.json) into ./node_modules.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
services=(redis-server postgresql)

have_all() {
  command -v redis-server >/dev/null && command -v redis-cli >/dev/null &&
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null
}

if ! have_all; then
  [ "$(id -u)" = 0 ] || { echo "install.sh: needs root for apt-get" >&2; exit 1; }
  # policy-rc.d answering 101 tells the packages' maintainer scripts not to
  # start their services. Create one only for this install if none exists.
  if [ ! -e /usr/sbin/policy-rc.d ]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
    chmod +x /usr/sbin/policy-rc.d
    trap 'rm -f /usr/sbin/policy-rc.d' EXIT
  fi
  apt-get update
  DEBIAN_FRONTEND=noninteractive apt-get install -y redis-server postgresql
fi

# Whatever happened above (or on an earlier install): stop the packaged
# services and keep them from starting at boot.
if [ "$(id -u)" = 0 ]; then
  if [ -d /run/systemd/system ]; then
    systemctl disable --now "${services[@]}" >/dev/null 2>&1 || true
  else
    for s in "${services[@]}"; do
      service "$s" stop >/dev/null 2>&1 || true
      update-rc.d "$s" disable >/dev/null 2>&1 || true
    done
  fi
fi

cd "$here"
npm ci --no-audit --no-fund
echo "install.sh: redis $(redis-server --version | grep -o 'v=[^ ]*'), postgresql $(ls /usr/lib/postgresql | sort -V | tail -1), node $(node --version)"
