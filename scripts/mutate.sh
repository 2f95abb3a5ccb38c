#!/usr/bin/env bash
# Mutation testing: a score per module (scripts/mutate.py says how). Not part of `make test`.
#   scripts/mutate.sh [module.py ...]
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python scripts/mutate.py "$@"
