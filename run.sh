#!/usr/bin/env bash
# The main job: set up .venv and run striate's demo (trains a small CNN, prints its loss falling).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/venv.sh images
exec .venv/bin/python -m striate.demo "$@"
