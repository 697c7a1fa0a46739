#!/usr/bin/env bash
# The whole test suite: set up .venv with the test extras (torch==2.13.0 as the oracle,
# onnx, onnxruntime, pillow) and run pytest.
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/venv.sh test
exec .venv/bin/python -m pytest "$@"
