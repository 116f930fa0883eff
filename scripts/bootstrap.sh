#!/usr/bin/env bash
# Install everything SoMLier needs on a fresh machine, from the committed locks only:
#   .venv             the provider, Airflow, MLflow, the BigQuery client, tests and tools
#   .venv-bqemulator  the local BigQuery emulator (kept apart: it pins its own sqlglot/starlette)
#   Debian packages, only when missing (nothing downloads a binary at run time):
#     chromium, chromium-driver  headless Chromium for the browser tests
#     redis-server               the Celery broker of the production-shaped local Airflow
#                                (PostgreSQL comes as a wheel in the lock; README: "Why these servers")
#   SOMLIER_SYSTEM_PACKAGES=all (default: the tests need them) | redis (the Celery demos) | none
#   (the default demo needs no system package, so it needs no root either)
# Safe to run again: an up-to-date environment is left as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
UV_VERSION=0.13.9

log() { printf '\033[1m[bootstrap]\033[0m %s\n' "$*" >&2; }

if ! command -v uv >/dev/null 2>&1 || [ "$(uv --version | cut -d' ' -f2)" != "$UV_VERSION" ]; then
  log "installing uv $UV_VERSION"
  python3 -m pip install --quiet --disable-pip-version-check "uv==$UV_VERSION"
fi

sync_env() {  # sync_env DIR LOCK
  local dir=$1 lock=$2 stamp="$1/.somlier-lock.sha256"
  local want; want=$(sha256sum "$lock" setup.cfg | sha256sum | cut -d' ' -f1)
  if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
    return 0
  fi
  log "installing $lock into $dir"
  [ -x "$dir/bin/python" ] || uv venv --quiet --python 3.11 "$dir"
  # Bytecode is compiled at install: with PYTHONDONTWRITEBYTECODE set (as on CI) every
  # import would otherwise recompile Airflow, MLflow and pandas from source.
  uv pip sync --quiet --compile-bytecode --python "$dir/bin/python" --require-hashes "$lock"
  echo "$want" > "$stamp"
}

install_debian_packages() {  # the servers and browser the tests drive, only those missing
  local wanted=${SOMLIER_SYSTEM_PACKAGES:-all} missing=()
  case "$wanted" in
    all|redis|none) ;;
    *) log "SOMLIER_SYSTEM_PACKAGES must be all, redis or none, got '$wanted'"; exit 2 ;;
  esac
  if [ "$wanted" = all ]; then
    { command -v chromium && command -v chromedriver; } >/dev/null 2>&1 || missing+=(chromium chromium-driver)
  fi
  if [ "$wanted" != none ]; then
    command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
  fi
  [ ${#missing[@]} -eq 0 ] && return 0
  local as_root=()
  if [ "$(id -u)" != 0 ]; then
    if ! command -v sudo >/dev/null 2>&1 || ! command -v apt-get >/dev/null 2>&1; then
      log "missing ${missing[*]}: install them as root once (apt-get install -y ${missing[*]})"; exit 1
    fi
    as_root=(sudo -n)
  fi
  log "installing ${missing[*]} (Debian packages)"
  export DEBIAN_FRONTEND=noninteractive
  "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 update -qq
  # The project starts its own servers on free ports when it needs them; none runs as a service.
  "${as_root[@]}" apt-get -o DPkg::Lock::Timeout=300 install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

install_debian_packages
sync_env .venv requirements/main.lock
sync_env .venv-bqemulator requirements/bqemulator.lock
# The provider itself, editable, without touching the locked dependencies.
if ! uv pip show --quiet --python .venv/bin/python airflow-provider-somlier >/dev/null 2>&1; then
  log "installing airflow-provider-somlier (editable)"
  uv pip install --quiet --python .venv/bin/python --no-deps -e .
fi
log "ready: .venv ($(.venv/bin/python -c 'import airflow; print("airflow", airflow.__version__)'))"
