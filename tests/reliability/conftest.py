"""Fixtures of the reliability tests: a small fake Fashion-MNIST and a real ``striate`` process."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.data.helpers import fake_fashion_mnist, make_idx_set

ROOT = Path(__file__).resolve().parents[2]
# The training run of the process tests: 7 epochs of 20 steps, with random crops and flips,
# Adam and a per-batch OneCycle schedule, so optimizer, scheduler, loader and augmentation
# states all have to survive a resume.
TRAIN = ("train", "--epochs", "7", "--batch-size", "10", "--augment", "--schedule", "onecycle",
         "--seed", "11", "--no-progress")


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """A 200/40-image Fashion-MNIST look-alike under tmp_path/data, accepted by the registry here."""
    return fake_fashion_mnist(tmp_path, monkeypatch, n_train=200, n_test=40, seed=3)[0]


def striate_process(data_dir: Path, *args: str, **popen: object) -> subprocess.Popen:
    """Start ``striate ARGS`` (tests/reliability/launch.py) as a real process on the fake data.

    The process sees no matplotlib (a stub package that fails to import comes first on
    its path): training then skips curves.png, which would take most of these short runs.
    """
    shim = data_dir.parent / "no-matplotlib" / "matplotlib"
    shim.mkdir(parents=True, exist_ok=True)
    (shim / "__init__.py").write_text("raise ImportError('matplotlib is hidden from this test process')\n")
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1",
               HOME=str(data_dir.parent / "home"),
               PYTHONPATH=os.pathsep.join([str(shim.parent), str(ROOT)]))
    env.pop("STRIATE_DATA", None)
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.launch", str(data_dir), *args],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **popen)


@pytest.fixture(scope="session")
def fake_data_dir(tmp_path_factory):
    """The fake Fashion-MNIST files only (for processes started with striate_process)."""
    root = tmp_path_factory.mktemp("reliability") / "data"
    make_idx_set(root / "fashion-mnist", n_train=200, n_test=40, seed=3)
    return root


@pytest.fixture(scope="session")
def reference_run(fake_data_dir):
    """The output folder of TRAIN run once, never interrupted."""
    out = fake_data_dir.parent / "reference"
    p = striate_process(fake_data_dir, *TRAIN, "--data-dir", str(fake_data_dir), "--out", str(out))
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return out
