#!/usr/bin/env bash
# The main job: train fashion_cnn on Fashion-MNIST for 10 epochs and print the test accuracy.
# Sets up .venv, then finds the data: ../shared/data (this project's machines), $STRIATE_DATA,
# the user cache, /usr/share/datasets (Debian's dataset-fashion-mnist), else downloads it
# (checksum-verified); offline and root on Debian, it installs dataset-fashion-mnist.
# Extra arguments go to `striate train` (e.g. --epochs 2).
set -euo pipefail
cd "$(dirname "$0")"
bash scripts/venv.sh images,jit
PY=.venv/bin/python
if [ -z "${STRIATE_DATA:-}" ] && [ -d ../shared/data/fashion-mnist ]; then
  export STRIATE_DATA="$(cd ../shared/data && pwd)"
fi
if ! "$PY" -c "from striate.data import load_dataset as L; L('fashion-mnist', 'train'); L('fashion-mnist', 'test')" 2>/tmp/striate-data-$$.log; then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "Fashion-MNIST not found and not downloadable; installing Debian's dataset-fashion-mnist" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dataset-fashion-mnist >&2
  else
    cat /tmp/striate-data-$$.log >&2
    rm -f /tmp/striate-data-$$.log
    exit 2
  fi
fi
rm -f /tmp/striate-data-$$.log
exec "$PY" -m striate train --model fashion_cnn --dataset fashion-mnist --epochs 10 \
  --schedule cosine --out runs/fashion_cnn "$@"
