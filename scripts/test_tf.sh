#!/usr/bin/env bash
# Check the online server against real TensorFlow in one command: install the optional `tf`
# extra into .venv on top of the locked environment (the locks pin every other package and
# stay as they are), then run the TensorFlow tests. scripts/bootstrap.sh removes TensorFlow
# again at its next sync; this script puts it back.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/bootstrap.sh
uv pip install --quiet --python .venv/bin/python --constraint requirements/main.lock "tensorflow-cpu>=2.16"
exec .venv/bin/python -m pytest -p no:cacheprovider -q tests/online/test_tf_model.py "$@"
