"""Training curves from a metrics log, and curves.png written by the Trainer and by striate train."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from striate import nn, optim
from striate.data import ArrayDataset, DataLoader
from striate.errors import DataError
from striate.train import Trainer
from striate.viz import curve_series, epoch_curves_writer, plot_curves, read_metrics
from tests.viz.helpers import assert_png

RECORDS = [
    {"epoch": 1, "lr": 0.001, "train_loss": 0.9, "train_accuracy": 0.6, "val_loss": 0.8,
     "val_accuracy": 0.70, "seconds": 1.0},
    {"epoch": 2, "lr": 0.001, "train_loss": 0.5, "train_accuracy": 0.8, "val_loss": 0.6,
     "val_accuracy": 0.75},
    {"epoch": 3, "lr": 0.001, "train_loss": 0.3, "train_accuracy": 0.9, "val_loss": 0.7,
     "val_accuracy": 0.74},
]


def write_log(folder, records=RECORDS):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


def test_read_metrics_from_a_folder_or_a_file(tmp_path):
    run = write_log(tmp_path / "run")
    assert read_metrics(run) == RECORDS
    assert read_metrics(run / "metrics.jsonl") == RECORDS


def test_curve_series_numbers_with_missing_values_as_nan():
    recs = RECORDS[:2] + [{"epoch": 3, "train_loss": 0.2, "train_accuracy": 0.95}]
    s = curve_series(recs)
    np.testing.assert_array_equal(s["epoch"], [1, 2, 3])
    np.testing.assert_array_equal(s["train_loss"], [0.9, 0.5, 0.2])
    np.testing.assert_array_equal(s["val_accuracy"][:2], [0.70, 0.75])
    assert np.isnan(s["val_accuracy"][2])
    assert "val_loss" not in curve_series([{"epoch": 1, "train_loss": 1.0}])


def test_plot_curves_writes_a_png_of_the_given_size(tmp_path):
    pytest.importorskip("matplotlib")
    run = write_log(tmp_path / "run")
    path = plot_curves(run, tmp_path / "c.png", size=(640, 300))
    assert path == str(tmp_path / "c.png")
    assert_png(path, (640, 300))
    assert_png(plot_curves(RECORDS[:1], tmp_path / "one.png"), (1000, 400))   # one epoch, defaults


@pytest.mark.parametrize("text, message", [
    ("", "holds no epoch"),
    ('{"epoch": 1}\nnot json\n', "line 2: not JSON"),
    ('{"loss": 1}\n', "line 1: expected an object with an 'epoch' key"),
])
def test_bad_metrics_logs_raise_data_error(tmp_path, text, message):
    (tmp_path / "metrics.jsonl").write_text(text)
    with pytest.raises(DataError, match=message):
        read_metrics(tmp_path)


def test_missing_metrics_log(tmp_path):
    with pytest.raises(DataError, match="no metrics log"):
        plot_curves(tmp_path, tmp_path / "c.png")


def _tiny_trainer(out_dir, epochs, on_epoch_end):
    rng = np.random.default_rng(0)
    data = ArrayDataset(rng.normal(size=(24, 4)).astype(np.float32), rng.integers(0, 3, 24))
    model = nn.Sequential(nn.Linear(4, 3, rng=rng))
    return Trainer(model, nn.CrossEntropyLoss(), optim.SGD(model.parameters(), lr=0.1),
                   DataLoader(data, batch_size=8), val_loader=DataLoader(data, batch_size=8),
                   epochs=epochs, out_dir=out_dir, progress=False, log=None, on_epoch_end=on_epoch_end)


def test_trainer_callback_redraws_curves_after_every_epoch(tmp_path, monkeypatch):
    pytest.importorskip("matplotlib")
    seen = []
    writer = epoch_curves_writer(tmp_path, log=None)

    def spy(trainer, record):
        writer(trainer, record)
        seen.append(read_metrics(tmp_path)[-1]["epoch"])
        assert_png(tmp_path / "curves.png", (1000, 400))

    _tiny_trainer(tmp_path, 2, spy).fit()
    assert seen == [1, 2]


def test_without_matplotlib_training_goes_on_and_says_so_once(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    lines = []
    history = _tiny_trainer(tmp_path, 3, epoch_curves_writer(tmp_path, log=lines.append)).fit()
    assert len(history) == 3
    assert len(lines) == 1 and "matplotlib is not installed" in lines[0]
    assert not (tmp_path / "curves.png").exists()
