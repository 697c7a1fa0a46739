"""Issue 7: SIGKILL at random moments loses nothing, and resuming ends bit-identical.

A real ``striate train`` process (tests/reliability/launch.py: the command line on
a fake Fashion-MNIST) is killed with SIGKILL after seeded random delays and
restarted with ``--resume`` until it completes; its final model file, checkpoint
and per-epoch metrics must equal, bit for bit, those of a run never interrupted.
A second test kills a process that does nothing but write checkpoints, so the
kills land inside writes, and checks the checkpoint on disk is always whole.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from striate.serialize import read_npz
from striate.train import load_checkpoint
from tests.reliability.conftest import ROOT, TRAIN, striate_process

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

TIMING = ("seconds", "items_per_s")


def weights(path):
    return {k: v for k, v in read_npz(path).items() if k != "__architecture__"}


def history(out):
    lines = (out / "metrics.jsonl").read_text().splitlines()
    return [{k: v for k, v in json.loads(line).items() if k not in TIMING} for line in lines]


def finish(p, timeout=60):
    out, err = p.communicate(timeout=timeout)
    assert p.returncode == 0, err
    return out


def kill_at_random_moment(p, rng):
    """SIGKILL ``p`` after 0, 1 or 2 finished epochs plus a random delay.

    Returns (killed, the standard output read meanwhile).
    """
    epochs_to_see = rng.choice([0, 1, 1, 2])
    seen, lines = 0, []
    while seen < epochs_to_see:
        lines.append(p.stdout.readline())
        if not lines[-1]:
            return False, "".join(lines)                    # finished before we struck
        seen += lines[-1].startswith("epoch ")
    time.sleep(rng.uniform(0.2, 0.6) if epochs_to_see == 0 else rng.uniform(0.0, 0.3))
    if p.poll() is not None:
        return False, "".join(lines)
    p.send_signal(signal.SIGKILL)
    p.communicate()
    return True, "".join(lines)


def assert_same_run(ref, out, log=()):
    """model.npz, checkpoint weights and per-epoch metrics of two runs are bit-identical."""
    a, b = weights(ref / "model.npz"), weights(out / "model.npz")
    assert sorted(a) == sorted(b)
    for k in a:
        assert np.array_equal(a[k], b[k]), (k, log)
    ca, cb = load_checkpoint(ref / "checkpoint.npz"), load_checkpoint(out / "checkpoint.npz")
    assert ca["step"] == cb["step"] == 7 * 20
    for k in ca["model"]:
        assert np.array_equal(ca["model"][k], cb["model"][k]), k
    assert history(out) == history(ref)                   # losses and accuracies, bit for bit
    assert not [p.name for p in out.iterdir() if p.name.startswith(".tmp-")]


def test_sigkill_at_random_moments_then_resume_is_bit_identical(fake_data_dir, reference_run, tmp_path):
    data = fake_data_dir
    out = tmp_path / "killed"
    rng = random.Random(4)
    kills, log = 0, []                                     # log: what each process did
    for attempt in range(12):
        ckpt = out / "checkpoint.npz"
        start = load_checkpoint(ckpt)["epoch"] if ckpt.exists() else None
        resume = [] if start is None else ["--resume"]
        p = striate_process(data, *TRAIN, "--data-dir", str(data), "--out", str(out), *resume)
        killed, text = kill_at_random_moment(p, rng) if kills < 4 else (False, "")
        if killed:
            kills += 1
            log.append(f"from epoch {start}: killed")
            continue
        text += finish(p)
        log.append(f"from epoch {start}: finished")
        break
    else:
        pytest.fail("the killed run never completed")
    assert kills >= 3, log
    assert "resumed from" in text and any("killed" in e and "None" not in e for e in log), log
    assert_same_run(reference_run, out, log)


WRITER = """
import sys
import numpy as np
from striate.train.checkpoint import save_checkpoint

path, n = sys.argv[1], 0
while True:
    n += 1
    save_checkpoint(path, {"model": {"w": np.full(400_000, n, np.float32)}, "epoch": n,
                           "history": [{"epoch": n}]})
    if n == 1:
        print("writing", flush=True)
"""


def test_sigkill_during_checkpoint_writes_leaves_a_whole_checkpoint(tmp_path):
    path = tmp_path / "checkpoint.npz"
    rng = random.Random(5)
    torn, seen = 0, []
    for _ in range(6):
        p = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], cwd=ROOT,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdout.readline() == "writing\n", p.stderr.read()
        time.sleep(rng.uniform(0.0, 0.1))
        p.send_signal(signal.SIGKILL)
        p.communicate()
        torn += any(q.name.startswith(".tmp-") for q in tmp_path.iterdir())
        st = load_checkpoint(path)                          # always readable ...
        n = st["epoch"]
        assert st["history"] == [{"epoch": n}]
        assert np.array_equal(st["model"]["w"], np.full(400_000, n, np.float32))   # ... and whole
        seen.append(n)
    assert torn >= 1, "no kill landed inside a write"
    assert max(seen) > 1
