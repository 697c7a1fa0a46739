"""Trainer: learning, logs, checkpoints, bit-identical resume, early stopping, non-finite stops."""

from __future__ import annotations

import json

import numpy as np
import pytest

import striate
from striate import nn, optim
from striate.data import Compose, DataLoader, RandomHorizontalFlip, ToFloat
from striate.errors import ConfigError, NonFiniteError
from striate.train import Trainer, evaluate, load_checkpoint
from tests.util import blobs



def make(seed=0, epochs=3, out=None, **kw):
    striate.manual_seed(seed)
    model = nn.Sequential(nn.Conv2d(1, 4, 3), nn.ReLU(), nn.Dropout(0.2), nn.Flatten(), nn.Linear(64, 2))
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    sched = optim.StepLR(opt, step_size=2, gamma=0.5)
    train = DataLoader(blobs(96, 1), batch_size=16, shuffle=True, rng=np.random.default_rng(seed),
                       transform=Compose([RandomHorizontalFlip(rng=np.random.default_rng(seed + 7)), ToFloat()]))
    test = DataLoader(blobs(40, 2), batch_size=20, transform=ToFloat())
    return Trainer(model, nn.CrossEntropyLoss(), opt, train, val_loader=test, scheduler=sched,
                   epochs=epochs, out_dir=out, progress=False, log=None, **kw)


def test_fit_learns_and_logs(tmp_path):
    t = make(out=tmp_path, epochs=4)
    hist = t.fit()
    assert [r["epoch"] for r in hist] == [1, 2, 3, 4]
    assert [r["lr"] for r in hist] == [0.05, 0.05, 0.025, 0.025]
    assert hist[-1]["val_accuracy"] == 1.0
    assert hist[-1]["train_loss"] < hist[0]["train_loss"]
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(line)["epoch"] for line in lines] == [1, 2, 3, 4]
    assert load_checkpoint(tmp_path / "checkpoint.npz")["epoch"] == 4


def test_same_seed_same_weights_bit_for_bit():
    # Built and run one after the other: layers without their own rng draw from the
    # package default generator, which make() re-seeds (as torch.manual_seed would).
    a = make(seed=3)
    a.fit()
    b = make(seed=3)
    b.fit()
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert np.array_equal(va, vb), k


def test_resume_is_bit_identical(tmp_path):
    full = make(seed=5, epochs=4)
    full.fit()
    first = make(seed=5, epochs=2, out=tmp_path)
    first.fit()
    striate.manual_seed(12345)   # the interrupted process is gone; its generator states too
    resumed = make(seed=99, epochs=4, out=tmp_path)   # other seed: everything must come from the file
    resumed.resume(tmp_path / "checkpoint.npz")
    assert resumed.epoch == 2
    resumed.fit()
    for (k, va), vb in zip(full.model.state_dict().items(), resumed.model.state_dict().values()):
        assert np.array_equal(va, vb), k
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert len((tmp_path / "metrics.jsonl").read_text().splitlines()) == 4


def test_early_stopping(tmp_path):
    t = make(epochs=30, early_stopping=2, monitor="val_accuracy")  # 1.0 cannot improve
    t.fit()
    assert t.stopped_early and t.epoch < 30


class Exploding(nn.Module):
    def forward(self, x):
        self._keep(True)
        return x * np.float32(np.inf)

    def backward(self, dy):
        return dy


def test_nonfinite_loss_stops_naming_layer(tmp_path):
    t = make(out=tmp_path)
    t.model.add_module("5", Exploding())
    with pytest.raises(NonFiniteError, match=r"epoch 1, step 1: loss is nan; first non-finite output: 5 \(Exploding\)"):
        t.fit()


def test_nonfinite_skip_option():
    t = make(on_nonfinite="skip", epochs=1)
    t.model.add_module("5", Exploding())
    before = t.model.state_dict()
    t.fit()
    assert t.skipped_steps == len(t.train_loader) and t.step == 0
    for k, v in t.model.state_dict().items():
        assert np.array_equal(v, before[k]), k


def test_evaluate_confusion_matrix():
    t = make(epochs=3)
    t.fit()
    metrics, cm = evaluate(t.model, t.val_loader, t.criterion, 2)
    assert cm.sum() == 40 and cm.shape == (2, 2)
    assert metrics["accuracy"] == np.trace(cm) / 40


def test_bad_arguments():
    with pytest.raises(ConfigError, match="epochs must be a positive int; received 0"):
        make(epochs=0)
