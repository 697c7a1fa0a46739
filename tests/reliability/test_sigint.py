"""Issue 7: Ctrl-C (SIGINT) during training saves a checkpoint and exits cleanly.

The first SIGINT is deferred to the next step boundary: the trainer writes a
checkpoint of that exact point (mid-epoch: loader position, running metrics)
and raises TrainingInterrupted; the command line prints one line saying where
the checkpoint is and how to resume, and exits with 130.  Resuming ends with the
same weights and metrics, bit for bit, as a run never interrupted.
"""

from __future__ import annotations

import json
import random
import re
import signal
import sys
import time

import numpy as np
import pytest

import striate
from striate import nn, optim
from striate.data import Compose, DataLoader, RandomHorizontalFlip, ToFloat
from striate.errors import TrainingInterrupted
from striate.train import Trainer, load_checkpoint
from tests.reliability.conftest import TRAIN, striate_process
from tests.reliability.test_sigkill_resume import assert_same_run
from tests.util import blobs

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")



class SigintAt:
    """A DataLoader that sends this process SIGINT as it hands out the given batches.

    ``at`` maps a batch number (counted over all epochs from 1) to how many SIGINTs
    to send then; everything else (length, data set, state) is the wrapped loader's.
    """

    def __init__(self, loader, at=None, signum=signal.SIGINT):
        self.loader, self.at, self.count = loader, dict(at or {}), 0
        self.dataset, self.signum = loader.dataset, signum

    def __len__(self):
        return len(self.loader)

    def __iter__(self):
        for item in self.loader:
            self.count += 1
            for _ in range(self.at.get(self.count, 0)):
                # Only with the trainer's handler in place: the default one would stop pytest.
                assert signal.getsignal(self.signum) not in (signal.default_int_handler, signal.SIG_DFL)
                signal.raise_signal(self.signum)
            yield item

    def state_dict(self):
        return self.loader.state_dict()

    def load_state_dict(self, state):
        self.loader.load_state_dict(state)


def make(seed=0, out=None, at=None, signum=signal.SIGINT):
    striate.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(), nn.Linear(64, 2))
    opt = optim.Adam(model.parameters(), lr=0.01)
    sched = optim.OneCycleLR(opt, max_lr=0.01, epochs=3, steps_per_epoch=6)
    train = DataLoader(blobs(96, 1), batch_size=16, shuffle=True, rng=np.random.default_rng(seed),
                       transform=Compose([RandomHorizontalFlip(rng=np.random.default_rng(seed + 7)),
                                          ToFloat()]))
    test = DataLoader(blobs(40, 2), batch_size=20, transform=ToFloat())
    return Trainer(model, nn.CrossEntropyLoss(), opt, SigintAt(train, at, signum), val_loader=test,
                   scheduler=sched, scheduler_step="batch", epochs=3, out_dir=out, progress=False,
                   log=None)


def assert_same(a, b):
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert np.array_equal(va, vb), k
    strip = [{k: v for k, v in r.items() if k not in ("seconds", "items_per_s")} for r in a.history]
    assert strip == [{k: v for k, v in r.items() if k not in ("seconds", "items_per_s")}
                     for r in b.history]


@pytest.fixture(scope="module")
def uninterrupted():
    t = make(seed=5)
    t.fit()
    return t


def test_sigint_mid_epoch_saves_that_step_and_resume_is_bit_identical(tmp_path, uninterrupted):
    t = make(seed=5, out=tmp_path, at={9: 1})              # batch 3 of epoch 2
    with pytest.raises(TrainingInterrupted) as info:
        t.fit()
    path = str(tmp_path / "checkpoint.npz")
    assert str(info.value) == f"interrupted at epoch 2, step 9 (batch 3); checkpoint saved to {path}"
    assert info.value.checkpoint == path
    assert isinstance(info.value, KeyboardInterrupt)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler   # handler put back
    st = load_checkpoint(path)
    assert (st["epoch"], st["step"], st["partial"]["batches"]) == (1, 9, 3)
    assert st["loader"]["position"] == 3
    assert [r["epoch"] for r in st["history"]] == [1]

    striate.manual_seed(999)                               # a new process: nothing in memory
    resumed = make(seed=77, out=tmp_path)
    resumed.resume(path)
    resumed.fit()
    assert resumed.step == uninterrupted.step == 18
    assert_same(uninterrupted, resumed)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s)["epoch"] for s in lines] == [1, 2, 3]


def test_fit_again_after_an_interrupt_continues_in_memory(uninterrupted):
    t = make(seed=5, at={4: 1})
    with pytest.raises(TrainingInterrupted, match=r"interrupted at epoch 1, step 4 \(batch 4\) \(no "
                                                  r"out_dir: nothing saved\)"):
        t.fit()
    t.fit()
    assert_same(uninterrupted, t)


def test_sigint_on_the_last_batch_finishes_the_epoch_and_stops_there(tmp_path, uninterrupted):
    t = make(seed=5, out=tmp_path, at={6: 1})              # the last batch of epoch 1
    with pytest.raises(TrainingInterrupted, match=r"^interrupted after epoch 1; checkpoint saved to "):
        t.fit()
    st = load_checkpoint(tmp_path / "checkpoint.npz")
    assert (st["epoch"], st["step"], st["partial"]) == (1, 6, None)
    resumed = make(seed=8, out=tmp_path)
    resumed.resume(tmp_path / "checkpoint.npz")
    resumed.fit()
    assert_same(uninterrupted, resumed)


def test_second_sigint_stops_at_once_and_keeps_the_last_checkpoint(tmp_path):
    t = make(seed=5, out=tmp_path, at={8: 2})       # Ctrl-C, Ctrl-C
    with pytest.raises(KeyboardInterrupt) as info:
        t.fit()
    assert not isinstance(info.value, TrainingInterrupted)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    st = load_checkpoint(tmp_path / "checkpoint.npz")    # the epoch-1 checkpoint, intact
    assert (st["epoch"], st["step"], st["partial"]) == (1, 6, None)


def test_ctrl_c_on_the_command_line_saves_exits_130_and_resumes_bit_identical(
        fake_data_dir, reference_run, tmp_path):
    data, out = fake_data_dir, tmp_path / "run"
    args = [*TRAIN, "--data-dir", str(data), "--out", str(out)]
    p = striate_process(data, *args)
    while not p.stdout.readline().startswith("epoch 2/"):
        assert p.poll() is None, p.stderr.read()
    time.sleep(random.Random(3).uniform(0.0, 0.1))
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130, err
    last = err.strip().splitlines()[-1]
    ckpt = str(out / "checkpoint.npz")
    assert re.fullmatch(rf"striate train: interrupted (at epoch 3, step \d+ \(batch \d+\)|after epoch 3); "
                        rf"checkpoint saved to {re.escape(ckpt)}; to continue, run the same command "
                        rf"with --resume", last), last
    assert "Traceback" not in err
    p = striate_process(data, *args, "--resume")
    text, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    assert "resumed from" in text
    assert_same_run(reference_run, out)


class PlainBatches:
    """An iterable of batches without state_dict (it cannot resume mid-epoch) that sends SIGINT."""

    def __init__(self, batches, at):
        self.batches, self.at, self.count = batches, at, 0

    def __len__(self):
        return len(self.batches)

    def __iter__(self):
        for item in self.batches:
            self.count += 1
            if self.count == self.at:
                assert signal.getsignal(signal.SIGINT) is not signal.default_int_handler
                signal.raise_signal(signal.SIGINT)
            yield item


def test_loader_without_state_points_at_the_last_epoch_checkpoint(tmp_path):
    data = blobs(32, 1)
    batches = [(data.images[i:i + 8].astype(np.float32), data.labels[i:i + 8]) for i in range(0, 32, 8)]
    t = make(seed=1, out=tmp_path)
    t.train_loader = PlainBatches(batches, at=6)          # batch 2 of epoch 2
    with pytest.raises(TrainingInterrupted) as info:
        t.fit()
    path = str(tmp_path / "checkpoint.npz")
    assert str(info.value) == (f"interrupted at epoch 2, step 6 (batch 2); the loader cannot resume "
                               f"mid-epoch: resume from the checkpoint of epoch 1, {path}")
    assert info.value.checkpoint == path and load_checkpoint(path)["epoch"] == 1


def test_sigterm_is_handled_like_ctrl_c_and_resume_is_bit_identical(tmp_path, uninterrupted):
    """A scheduler's SIGTERM: checkpoint at the next step boundary, handler put back, resumable."""
    t = make(seed=5, out=tmp_path, at={9: 1}, signum=signal.SIGTERM)
    with pytest.raises(TrainingInterrupted) as info:
        t.fit()
    assert "interrupted at epoch 2, step 9" in str(info.value)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL
    resumed = make(seed=77, out=tmp_path)
    resumed.resume(str(tmp_path / "checkpoint.npz"))
    resumed.fit()
    assert_same(uninterrupted, resumed)
