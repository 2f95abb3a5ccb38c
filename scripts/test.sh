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
# [tool.coverage.*]), in the tests' process and in the Python processes they start (servers,
# manage.py commands), and prints the files not fully covered. The floor applies to the whole suite only: a run of a few tests (arguments given)
# prints the report without it.
FLOOR=${COVERAGE_FLOOR:-90}
COVERAGE=(--cov --cov-report=term-missing:skip-covered)
if [ $# -eq 0 ]; then COVERAGE+=(--cov-fail-under="$FLOOR"); fi

reachable() {  # host port
  $PY -c "import socket,sys; socket.create_connection((sys.argv[1], int(sys.argv[2])), 2).close()" "$1" "$2" 2>/dev/null
}
missing=""
reachable 127.0.0.1 5432 || missing="PostgreSQL on 127.0.0.1:5432"
reachable 127.0.0.1 6379 || missing="${missing:+$missing and }Redis on 127.0.0.1:6379"

# The two passes run at once (TEST_PASSES=serial: one after the other): much of the suite waits
# on servers, streams and browsers rather than computing, so together they take little longer
# than the slower one. Each has a data directory of its own; pass 2's output is printed whole
# after pass 1's.
scratch=$(mktemp -d)
cleanup() {
  if [ -n "${pass2_pid:-}" ]; then kill "$pass2_pid" 2>/dev/null; fi
  rm -rf "$scratch"
}
trap cleanup EXIT
mkdir -p "$scratch/data1" "$scratch/data2"

pass2() {
  DATABASE_URL=$PG_URL REDIS_URL=$REDIS DJANGO_SECRET_KEY=${DJANGO_SECRET_KEY:-test-only-secret} \
    RAGSITE_TEST_SCALEOUT=1 RAGSITE_DATA_DIR="$scratch/data2" $PY -m pytest "$@"
}

second=0
if [ -z "$missing" ] && [ "${TEST_PASSES:-parallel}" != "serial" ]; then
  echo "== pass 2 (PostgreSQL + Redis) started beside pass 1; its report follows pass 1's =="
  pass2 "$@" > "$scratch/pass2.log" 2>&1 &
  pass2_pid=$!
fi

echo "== pass 1: embedded default (SQLite, in-memory channel layer), with coverage =="
RAGSITE_DATA_DIR="$scratch/data1" $PY -m pytest "${COVERAGE[@]}" "$@"
first=$?

if [ -n "$missing" ]; then
  echo "== pass 2 (PostgreSQL + Redis) SKIPPED: service unavailable: $missing =="
  if [ "${CI:-}" = "true" ]; then echo "CI needs both services: failing."; exit 1; fi
  exit $first
fi

echo "== pass 2: scale-out (PostgreSQL + Redis) =="
if [ -n "${pass2_pid:-}" ]; then
  wait "$pass2_pid"
  second=$?
  pass2_pid=""
  cat "$scratch/pass2.log"
else
  pass2 "$@"
  second=$?
fi
[ $first -eq 0 ] && [ $second -eq 0 ]
