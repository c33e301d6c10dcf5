#!/usr/bin/env bash
# make test: system packages, a throwaway PostgreSQL, then the whole suite on both databases.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure-system-packages.sh

pgdir=$(mktemp -d /tmp/carbonbook-pg.XXXXXX)
cleanup() { scripts/pg-cluster.sh stop "$pgdir"; }
trap cleanup EXIT INT TERM

if url=$(PG_FAST=1 scripts/pg-cluster.sh start "$pgdir"); then
  export CARBONBOOK_TEST_PG_URL="$url"
  echo "PostgreSQL for the tests: $url"
else
  if [ "${CI:-}" = true ]; then
    echo "error: PostgreSQL could not be started and CI=true: the suite must run on both databases" >&2
    exit 1
  fi
  echo "WARNING: no PostgreSQL; running on SQLite only (tests marked postgres are skipped)" >&2
fi
if [ -x /usr/bin/chromium ]; then export CARBONBOOK_TEST_CHROMIUM=/usr/bin/chromium; fi

# shellcheck disable=SC2086
.venv/bin/python -m pytest ${PYTEST_ARGS:--q -p no:cacheprovider}
