#!/usr/bin/env bash
# README command 2: install from the locks, then run the whole test suite.
#   ./scripts/test.sh            everything (what CI runs)
#   ./scripts/test.sh --quick    unit and in-process tests only, for everyday work
# The 15 slowest tests are listed at the end. Any other arguments go to pytest
# (e.g. a path, -k EXPR, -x; -n 0 runs in one process).
# The tests run on SOMLIER_TEST_WORKERS pytest-xdist workers (default 3); tests/conftest.py
# keeps each module on one worker and the modules that start a whole Airflow on one worker in turn.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
args=(-n "${SOMLIER_TEST_WORKERS:-3}" --dist loadscope --no-loadscope-reorder --durations 15)
for arg in "$@"; do
  if [ "$arg" = "--quick" ]; then
    args+=(-m "not slow")
  else
    args+=("$arg")
  fi
done
exec .venv/bin/python -m pytest -p no:cacheprovider ${args[@]+"${args[@]}"}
