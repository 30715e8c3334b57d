#!/usr/bin/env bash
# A throw-away local PostgreSQL server for Optuna studies: for the tests and for trying multi-worker tuning
# on one machine (a real multi-machine setup uses a managed server: docs/guide_tune.md).
#
#   URL=$(scripts/postgres.sh start)     # prints postgresql://postgres@localhost:PORT/optuna
#   sb3-snn train --algo ddqn --env CartPole-v1 -optimize --storage "$URL" --study-name s1 ...
#   scripts/postgres.sh stop "$URL"      # stops the server and deletes its data
#
# The server listens on localhost only, on a free port, with its data in a new temporary folder, and trusts
# local connections (no password): do not use it for anything that must be kept. PostgreSQL refuses to run as
# root, so as root the server runs as the unprivileged system user $SB3_SNN_PG_USER (default sb3snn, created
# if missing). The binaries are found with pg_config, else in the newest /usr/lib/postgresql/*/bin
# (override with PG_BIN). Messages go to stderr; stdout carries only the URL.
set -euo pipefail

PG_USER=${SB3_SNN_PG_USER:-sb3snn}
DB=optuna

find_bin() {
  if [ -n "${PG_BIN:-}" ]; then echo "$PG_BIN"; return; fi
  if command -v pg_config >/dev/null && [ -x "$(pg_config --bindir)/initdb" ]; then pg_config --bindir; return; fi
  local dir
  dir=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$dir" ] || [ ! -x "$dir/initdb" ]; then
    echo "postgres.sh: no PostgreSQL server binaries (initdb); install PostgreSQL or set PG_BIN" >&2
    exit 1
  fi
  echo "$dir"
}

# run a PostgreSQL binary as the server's user (root cannot run the server)
as_pg() {
  if [ "$(id -u)" = 0 ]; then runuser -u "$PG_USER" -- "$@"; else "$@"; fi
}

free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

start() {
  local bin base port
  bin=$(find_bin)
  if [ "$(id -u)" = 0 ] && ! id -u "$PG_USER" >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin "$PG_USER"
  fi
  # /tmp, not $TMPDIR: the server's user must be able to reach the folder
  base=$(mktemp -d /tmp/sb3snn-postgres.XXXXXX)
  [ "$(id -u)" = 0 ] && chown "$PG_USER" "$base"
  as_pg "$bin/initdb" -D "$base/data" -U postgres --auth=trust -E UTF8 >"$base/initdb.log" 2>&1 \
    || { cat "$base/initdb.log" >&2; exit 1; }
  for attempt in 1 2 3 4 5; do
    port=$(free_port)
    if as_pg "$bin/pg_ctl" -D "$base/data" -l "$base/server.log" -w -t 60 \
        -o "-p $port -k $base -c listen_addresses=localhost -c max_connections=200" start >&2; then
      break
    fi
    [ "$attempt" = 5 ] && { echo "postgres.sh: the server did not start; log:" >&2; cat "$base/server.log" >&2; exit 1; }
  done
  as_pg "$bin/createdb" -h localhost -p "$port" -U postgres "$DB"
  echo "postgres.sh: server on port $port, data in $base; stop: scripts/postgres.sh stop URL" >&2
  echo "postgresql://postgres@localhost:$port/$DB"
}

stop() {
  local url=$1 bin port data
  bin=$(find_bin)
  port=$(echo "$url" | sed -E 's#.*@localhost:([0-9]+)/.*#\1#')
  data=$(as_pg "$bin/psql" -h localhost -p "$port" -U postgres -d "$DB" -Atc "SHOW data_directory")
  as_pg "$bin/pg_ctl" -D "$data" -m fast -w stop >&2
  case "$data" in
    /tmp/sb3snn-postgres.*/data) rm -rf "$(dirname "$data")" ;;
    *) echo "postgres.sh: left $data in place (not a folder this script made)" >&2 ;;
  esac
}

case "${1:-}" in
  start) start ;;
  stop) [ $# -eq 2 ] || { echo "usage: scripts/postgres.sh stop URL" >&2; exit 2; }; stop "$2" ;;
  *) echo "usage: scripts/postgres.sh start | stop URL" >&2; exit 2 ;;
esac
