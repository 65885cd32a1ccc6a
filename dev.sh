#!/usr/bin/env bash
# bertlab's two entry points. Each one sets up everything it needs on a fresh machine first
# (a virtualenv in .venv with the package and its dependencies from PyPI), then runs.
#   ./dev.sh demo [args]   the main job: a short training with bertlab.Watch, prints what it
#                          recorded and writes a saved run (see README)
#   ./dev.sh test [args]   the whole test suite (pytest args may follow)
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY="$VENV/bin/python"

setup() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
  fi
  # Reinstall only when the declared dependencies changed (stamp = hash of pyproject.toml).
  local stamp="$VENV/.bertlab-installed"
  local want
  want=$(sha256sum pyproject.toml | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$PY" -m pip install --quiet --upgrade pip
    "$PY" -m pip install --quiet -e ".[dev]"
    echo "$want" > "$stamp"
  fi
}

cmd=${1:-}
shift || true
case "$cmd" in
  demo)
    setup
    export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
    exec "$PY" -m bertlab demo "$@"
    ;;
  test)
    setup
    export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
    "$PY" -m ruff check bertlab tests benchmarks
    exec "$PY" -m pytest "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo|test [args]" >&2
    exit 2
    ;;
esac
