"""Issue 7: disk full, unwritable folders and non-finite steps lose nothing.

A failing checkpoint write (ENOSPC simulated in fsync) raises StorageError and
leaves the previous checkpoint byte for byte as it was, with no temporary file
behind; a folder without room for a checkpoint is refused before the first step;
an unwritable output folder is a one-line error on the command line; a
non-finite loss or gradient stops the run naming the layer and step, with the
last good checkpoint intact.
"""

from __future__ import annotations

import errno
import os
import re
from collections import namedtuple

import numpy as np
import pytest

import striate
from striate import cli, nn, optim
from striate.data import DataLoader, ToFloat
from striate.errors import NonFiniteError, StorageError
from striate.serialize import atomic_savez, read_npz
from striate.train import Trainer, load_checkpoint
from striate.train import checkpoint as checkpoint_module
from tests.util import blobs



def make(out=None, extra=None, epochs=3, **kw):
    striate.manual_seed(0)
    layers = [nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Flatten(), nn.Linear(64, 2)]
    if extra is not None:
        layers.insert(1, extra)
    model = nn.Sequential(*layers)
    train = DataLoader(blobs(48, 1), batch_size=8, shuffle=True, rng=np.random.default_rng(0),
                       transform=ToFloat())
    return Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.05, momentum=0.9),
                   train, epochs=epochs, out_dir=out, progress=False, log=None, **kw)


def temporaries(folder):
    return [p.name for p in folder.iterdir() if p.name.startswith(".tmp-")]


class FailingFsync:
    """os.fsync that raises ENOSPC on its calls number ``fail_on`` (1-based)."""

    def __init__(self, *fail_on):
        self.fail_on, self.calls, self.real = set(fail_on), 0, os.fsync

    def __call__(self, fd):
        self.calls += 1
        if self.calls in self.fail_on:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real(fd)


# -- disk full ---------------------------------------------------------------------------------------

def test_enospc_while_writing_a_file_keeps_the_previous_one(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    atomic_savez(path, {"w": np.arange(5.0)})
    before = path.read_bytes()
    monkeypatch.setattr(os, "fsync", FailingFsync(1))
    with pytest.raises(StorageError, match=re.escape(f"cannot write {path}: No space left on device "
                                                     "(the previous file is unchanged)")):
        atomic_savez(path, {"w": np.zeros(1000)})
    assert path.read_bytes() == before
    assert temporaries(tmp_path) == []
    assert isinstance(StorageError("x"), OSError)


def test_unwritable_folder_for_a_new_file_writes_nothing(tmp_path):
    path = tmp_path / "not-a-folder" / "m.npz"
    (tmp_path / "not-a-folder").write_text("a file")
    with pytest.raises(StorageError, match=r"cannot write .*not-a-folder/m\.npz: Not a directory "
                                           r"\(nothing was written\)"):
        atomic_savez(path, {"w": np.zeros(3)})


def test_enospc_at_a_checkpoint_stops_training_with_the_previous_checkpoint_intact(tmp_path, monkeypatch):
    full = make(epochs=3)
    full.fit()
    t = make(out=tmp_path, epochs=3)
    # fsync calls per epoch: checkpoint, then metrics.jsonl; the 3rd is epoch 2's checkpoint.
    monkeypatch.setattr(os, "fsync", FailingFsync(3))
    with pytest.raises(StorageError) as info:
        t.fit()
    path = tmp_path / "checkpoint.npz"
    assert str(info.value) == (f"training stopped after epoch 2: cannot write {path}: No space left on "
                               "device (the previous file is unchanged); the checkpoint of epoch 1 is "
                               "intact. Free some space, then resume (--resume)")
    assert load_checkpoint(path)["epoch"] == 1
    assert temporaries(tmp_path) == []
    monkeypatch.undo()
    resumed = make(out=tmp_path, epochs=3)
    resumed.resume(path)
    resumed.fit()
    for (k, va), vb in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert np.array_equal(va, vb), k


def test_too_little_free_space_is_refused_before_training(tmp_path, monkeypatch):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoint_module.shutil, "disk_usage", lambda p: usage(10**9, 10**9 - 5000, 5000))
    t = make(out=tmp_path / "run")
    before = t.model.state_dict()
    with pytest.raises(StorageError, match=r"run: only 0\.0 MiB free; a checkpoint of this model needs "
                                           r"about 1\.0 MiB, twice that while it is replaced"):
        t.fit()
    assert t.step == 0 and not (tmp_path / "run" / "checkpoint.npz").exists()
    for k, v in t.model.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_too_little_free_space_on_the_command_line(tmp_path, monkeypatch, capsys, fake_fashion):
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(checkpoint_module.shutil, "disk_usage", lambda p: usage(10**9, 10**9, 0))
    code = cli.main(["train", "--epochs", "1", "--data-dir", str(fake_fashion), "--out",
                     str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert re.search(r"^striate train: error: StorageError: .*run: only 0\.0 MiB free", err), err


# -- unwritable output folder ----------------------------------------------------------------------------

def test_unwritable_out_folder_is_reported_before_training(tmp_path, capsys):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    code = cli.main(["train", "--out", str(blocker / "run"), "--no-progress"])
    err = capsys.readouterr().err
    assert code == 2
    assert err.strip() == (f"striate train: error: ConfigError: --out {blocker / 'run'}: cannot write "
                           "there (Not a directory)")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root may write anywhere")
def test_read_only_out_folder_is_reported_before_training(tmp_path, capsys):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o500)
    code = cli.main(["train", "--out", str(ro), "--no-progress"])
    assert code == 2 and "cannot write there (Permission denied)" in capsys.readouterr().err


def test_trainer_out_dir_that_cannot_be_created(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(StorageError, match=r"Trainer: cannot create the output folder .*file/run "
                                           r"\((Not a directory|File exists)\)"):
        make(out=tmp_path / "file" / "run").fit()


def test_temporaries_of_a_killed_write_are_removed_on_the_next_run(tmp_path):
    (tmp_path / ".tmp-ab12cd_9.npz").write_bytes(b"half a checkpoint")
    (tmp_path / ".tmp-zz99yy00").write_text("half a metrics file")
    (tmp_path / ".tmp-keep-me.txt").write_text("not ours")
    make(out=tmp_path, epochs=1).fit()
    assert temporaries(tmp_path) == [".tmp-keep-me.txt"]


# -- non-finite loss or gradient ---------------------------------------------------------------------

class Bomb(nn.Module):
    """Identity until armed; then its output ('forward') or input gradient ('backward') is Inf."""

    def __init__(self):
        super().__init__()
        self.armed = None

    def forward(self, x):
        self._keep(True)
        return x * np.float32(np.inf) if self.armed == "forward" else x

    def backward(self, dy):
        self._take()
        return dy * np.float32(np.inf) if self.armed == "backward" else dy


def arm_after_epoch_1(mode):
    def callback(trainer, record):
        trainer.model[1].armed = mode
    return callback


def test_nonfinite_output_stops_naming_layer_and_step_with_checkpoint_intact(tmp_path):
    t = make(out=tmp_path, extra=Bomb(), on_epoch_end=arm_after_epoch_1("forward"))
    path = tmp_path / "checkpoint.npz"
    with pytest.raises(NonFiniteError) as info:
        t.fit()
    assert str(info.value) == (
        f"training stopped at epoch 2, step 7: loss is nan; first non-finite output: 1 (Bomb). "
        f"The last good checkpoint ({path}) is intact. Lower the learning rate, or pass "
        f"on_nonfinite='skip' (--skip-nonfinite).")
    st = load_checkpoint(path)
    assert (st["epoch"], st["step"]) == (1, 6)
    for k, v in st["model"].items():                     # the weights after epoch 1, untouched
        assert np.all(np.isfinite(v)), k


def test_nonfinite_gradient_stops_naming_the_parameter(tmp_path):
    t = make(out=tmp_path, extra=Bomb(), on_epoch_end=arm_after_epoch_1("backward"))
    with pytest.raises(NonFiniteError, match=r"^training stopped at epoch 2, step 7: the gradient of "
                                             r"0\.weight is not finite\. The last good checkpoint"):
        t.fit()
    assert load_checkpoint(tmp_path / "checkpoint.npz")["epoch"] == 1


def test_skip_option_drops_nonfinite_steps_and_goes_on(tmp_path):
    t = make(out=tmp_path, extra=Bomb(), on_epoch_end=arm_after_epoch_1("backward"),
             on_nonfinite="skip")
    t.fit()
    assert (t.epoch, t.step, t.skipped_steps) == (3, 6, 12)
    weights = read_npz(tmp_path / "checkpoint.npz")
    assert all(np.all(np.isfinite(v)) for k, v in weights.items() if v.dtype.kind == "f")
