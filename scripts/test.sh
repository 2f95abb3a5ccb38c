#!/usr/bin/env bash
# `make test`: the whole suite on the embedded default, then again on PostgreSQL + Redis.
# The second pass needs those services; where they are absent it is skipped, saying why, except
# under CI, where a skipped service is a failure.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=.venv/bin/python
PG_URL=${TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/ragsite}
REDIS=${TEST_REDIS_URL:-redis://127.0.0.1:6379/15}

# Pass 1 measures coverage of the app code, branches counted (pyproject.toml's
# [tool.coverage.*]; in-process only), and prints the files not fully covered. The floor applies
# to the whole suite only: a run of a few tests (arguments given) prints the report without it.
FLOOR=${COVERAGE_FLOOR:-88}
COVERAGE=(--cov --cov-report=term-missing:skip-covered)
if [ $# -eq 0 ]; then COVERAGE+=(--cov-fail-under="$FLOOR"); fi

echo "== pass 1: embedded default (SQLite, in-memory channel layer), with coverage =="
$PY -m pytest "${COVERAGE[@]}" "$@"
first=$?

reachable() {  # host port
  $PY -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()" "$1" "$2" 2>/dev/null
}
missing=""
reachable 127.0.0.1 5432 || missing="PostgreSQL on 127.0.0.1:5432"
reachable 127.0.0.1 6379 || missing="${missing:+$missing and }Redis on 127.0.0.1:6379"
if [ -n "$missing" ]; then
  echo "== pass 2 (PostgreSQL + Redis) SKIPPED: service unavailable: $missing =="
  if [ "${CI:-}" = "true" ]; then echo "CI needs both services: failing."; exit 1; fi
  exit $first
fi

echo "== pass 2: scale-out (PostgreSQL + Redis) =="
DATABASE_URL=$PG_URL REDIS_URL=$REDIS DJANGO_SECRET_KEY=${DJANGO_SECRET_KEY:-test-only-secret} \
  RAGSITE_TEST_SCALEOUT=1 $PY -m pytest "$@"
second=$?
[ $first -eq 0 ] && [ $second -eq 0 ]
