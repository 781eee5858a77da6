#!/usr/bin/env bash
# Stop the test PostgreSQL server that .ci/start-postgres.sh started (same SYMBIOSIS_PG_DIR); nothing to do
# when it is not running. With --remove, also delete its folder (the cluster and its data).
set -euo pipefail
dir="${SYMBIOSIS_PG_DIR:-/tmp/symbiosis-postgres}"
bin=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$candidate/pg_ctl" ]; then bin="$candidate"; break; fi
done
if [ -n "$bin" ] && [ -f "$dir/data/PG_VERSION" ]; then
  if [ "$(id -u)" = "0" ]; then
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 \
      && runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  else
    "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1 && "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
  fi
fi
rm -f "$dir/port"
if [ "${1:-}" = "--remove" ]; then
  rm -rf "$dir"
fi
