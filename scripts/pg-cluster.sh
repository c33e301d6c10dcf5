#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL cluster on a free loopback port, as a non-root user.
#   scripts/pg-cluster.sh start DIR   -> prints the URL on stdout
#   scripts/pg-cluster.sh stop DIR
# Durability settings stay at PostgreSQL's defaults unless PG_FAST=1 (tests set it: a test
# cluster is thrown away, so fsync buys nothing there).
set -euo pipefail
action="$1"; dir="$2"

pg_bin() {
  local found
  found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
  if [ -z "$found" ] && command -v initdb >/dev/null 2>&1; then found=$(dirname "$(command -v initdb)"); fi
  echo "$found"
}

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

case "$action" in
start)
  bin=$(pg_bin)
  [ -n "$bin" ] && [ -x "$bin/initdb" ] || { echo "error: no PostgreSQL server (initdb) found" >&2; exit 1; }
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres "$dir"; chmod 700 "$dir"; user=postgres; else user=$(id -un); fi
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')
  as_owner "$bin/initdb" -D "$dir/data" --auth=trust -E UTF8 --locale=C -U "$user" >"$dir/initdb.log" 2>&1 \
    || { cat "$dir/initdb.log" >&2; exit 1; }
  opts="-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200 -c shared_buffers=256MB"
  if [ "${PG_FAST:-0}" = 1 ]; then opts="$opts -c fsync=off -c synchronous_commit=off -c full_page_writes=off"; fi
  as_owner "$bin/pg_ctl" -D "$dir/data" -o "$opts" -l "$dir/server.log" -w -t 60 start >/dev/null \
    || { cat "$dir/server.log" >&2; exit 1; }
  as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" carbonbook_test
  echo "$port" >"$dir/port"
  echo "postgresql+psycopg://$user@127.0.0.1:$port/carbonbook_test"
  ;;
stop)
  bin=$(pg_bin)
  if [ -d "$dir/data" ]; then as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true; fi
  rm -rf "$dir"
  ;;
*)
  echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
