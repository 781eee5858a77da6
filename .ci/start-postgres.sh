#!/usr/bin/env bash
# Start (or reuse) a PostgreSQL server for the tests, from Debian's `postgresql` package, and print the
# shell line that points the tests at it:
#
#   eval "$(bash .ci/start-postgres.sh)"      # exports SYMBIOSIS_TEST_POSTGRES_URL
#   ...                                       # run the tests
#   bash .ci/stop-postgres.sh                 # stop it (also what .ci/run does on exit)
#
# The cluster lives in SYMBIOSIS_PG_DIR (default /tmp/symbiosis-postgres), listens on 127.0.0.1 only, on
# the first free port from SYMBIOSIS_PG_PORT (default 54329), with trust authentication for local
# connections: a throw-away test server, never a production one. Idempotent: when the cluster in that folder
# is already running, the same URL is printed again and nothing is started, so several scripts (the ledger
# tests, a later web app's tests) can share one server. Run as root, the server runs as the `postgres` user
# (initdb refuses root); run as anyone else, it runs as that user. Creates the database named by
# SYMBIOSIS_PG_DB (default symbiosis_test) if it is missing.
set -euo pipefail
dir="${SYMBIOSIS_PG_DIR:-/tmp/symbiosis-postgres}"
port="${SYMBIOSIS_PG_PORT:-54329}"
db="${SYMBIOSIS_PG_DB:-symbiosis_test}"

bin=""
for candidate in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
  if [ -x "$candidate/initdb" ] && [ -x "$candidate/pg_ctl" ]; then bin="$candidate"; break; fi
done
if [ -z "$bin" ]; then
  echo "PostgreSQL is not installed (no /usr/lib/postgresql/*/bin/initdb): install Debian's postgresql" \
       "package (bash .ci/install-system.sh does, as root)" >&2
  exit 1
fi

if [ "$(id -u)" = "0" ]; then
  owner=postgres
  as_owner() { runuser -u postgres -- "$@"; }
else
  owner="$(id -un)"
  as_owner() { "$@"; }
fi

mkdir -p "$dir"
chown "$owner" "$dir" 2>/dev/null || true
chmod 700 "$dir"
data="$dir/data"

if [ -f "$dir/port" ] && as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
  port="$(cat "$dir/port")"
else
  if [ ! -f "$data/PG_VERSION" ]; then
    as_owner "$bin/initdb" -D "$data" -U postgres --auth=trust --encoding=UTF8 --locale=C >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  # the first port nobody listens on
  while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
    port=$((port + 1))
  done
  as_owner "$bin/pg_ctl" -D "$data" -l "$dir/server.log" -w -t 60 \
    -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=100 -c fsync=off" start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  echo "$port" >"$dir/port"
fi

if ! as_owner "$bin/psql" -h "$dir" -p "$port" -U postgres -d postgres -tAc \
     "SELECT 1 FROM pg_database WHERE datname = '$db'" | grep -q 1; then
  as_owner "$bin/createdb" -h "$dir" -p "$port" -U postgres "$db"
fi
echo "started PostgreSQL ($bin) in $dir on 127.0.0.1:$port, database $db" >&2
echo "export SYMBIOSIS_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/$db"
