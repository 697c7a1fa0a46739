#!/usr/bin/env bash
# Create (or reuse) the project's virtual environment in .venv and install
# striate into it with the extras named in $1 (e.g. "test").  Sourced by
# run.sh and test.sh; every install step of the project is here.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PY="${PYTHON:-python3}"
if [ ! -x "$ROOT/.venv/bin/python" ]; then
  "$PY" -m venv "$ROOT/.venv"
fi
VPY="$ROOT/.venv/bin/python"
extras="${1:-}"
stamp="$ROOT/.venv/.striate-installed-${extras:-base}"
if [ ! -f "$stamp" ] || [ "$ROOT/pyproject.toml" -nt "$stamp" ]; then
  "$VPY" -m pip install --quiet --disable-pip-version-check --upgrade pip >/dev/null 2>&1 || true
  if [ -n "$extras" ]; then
    "$VPY" -m pip install --quiet --disable-pip-version-check -e "$ROOT[$extras]"
  else
    "$VPY" -m pip install --quiet --disable-pip-version-check -e "$ROOT"
  fi
  touch "$stamp"
fi
