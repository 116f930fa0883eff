#!/usr/bin/env bash
# README command 1: install from the locks, then run the demo on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
# exec: SIGTERM/SIGHUP reach the demo itself, which stops everything it started (as on Ctrl-C).
exec .venv/bin/python scripts/demo.py "$@"
