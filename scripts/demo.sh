#!/usr/bin/env bash
# README command 1: install from the locks, then run the demo on the embedded default.
set -euo pipefail
cd "$(dirname "$0")/.."
# The default demo needs no system package; the Celery and Kubernetes ones need redis-server.
case " $* " in
  *" --executor celery "*|*" --executor kubernetes "*|*" --executor=celery "*|*" --executor=kubernetes "*)
    export SOMLIER_SYSTEM_PACKAGES=${SOMLIER_SYSTEM_PACKAGES:-redis} ;;
  *) export SOMLIER_SYSTEM_PACKAGES=${SOMLIER_SYSTEM_PACKAGES:-none} ;;
esac
bash scripts/bootstrap.sh
# exec: SIGTERM/SIGHUP reach the demo itself, which stops everything it started (as on Ctrl-C).
exec .venv/bin/python scripts/demo.py "$@"
