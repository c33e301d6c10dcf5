#!/usr/bin/env bash
# make bench: a PostgreSQL cluster with default durability settings, then the benchmarks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-system-packages.sh
if [ ! -f bench/__main__.py ]; then echo "error: no benchmarks (bench/__main__.py)" >&2; exit 1; fi
pgdir=$(mktemp -d /tmp/carbonbook-bench-pg.XXXXXX)
trap 'scripts/pg-cluster.sh stop "$pgdir"' EXIT INT TERM
if [ -z "${CARBONBOOK_BENCH_PG_URL:-}" ]; then
  CARBONBOOK_BENCH_PG_URL=$(scripts/pg-cluster.sh start "$pgdir")
  export CARBONBOOK_BENCH_PG_URL
fi
# shellcheck disable=SC2086
.venv/bin/python -m bench ${BENCH_ARGS:-}
