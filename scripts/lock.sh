#!/usr/bin/env bash
# Re-resolve the exact-version locks from requirements/*.in (needs network to PyPI).
set -euo pipefail
cd "$(dirname "$0")/.."
for name in main bqemulator; do
  uv pip compile --quiet --python-version 3.11 --generate-hashes \
    "requirements/$name.in" -o "requirements/$name.lock"
done
