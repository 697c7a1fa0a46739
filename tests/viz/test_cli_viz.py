"""`striate viz ...` end to end on a tiny fake Fashion-MNIST, and curves.png from `striate train`."""

from __future__ import annotations

import json
import re
import sys

import numpy as np
import pytest

import striate
from striate import cli
from striate.models import get_model
from tests.data.helpers import fake_fashion_mnist
from tests.viz.helpers import assert_png

CLASSES = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
           "Bag", "Ankle boot"]


@pytest.fixture
def fake_fashion(tmp_path, monkeypatch):
    """A 40/20-image Fashion-MNIST look-alike in data_dir, accepted by the checksum registry."""
    return str(fake_fashion_mnist(tmp_path, monkeypatch, n_train=40, n_test=20, seed=5)[0])


@pytest.fixture
def model_file(tmp_path):
    model = get_model("fashion_cnn", num_classes=10, rng=0)
    path = tmp_path / "run" / "model.npz"
    path.parent.mkdir()
    striate.save(model, path, metadata={"classes": CLASSES, "mean": [0.286], "std": [0.353],
                                        "input_shape": [1, 28, 28], "dataset": "fashion-mnist"})
    return str(path)


@pytest.fixture
def image_file(tmp_path):
    Image = pytest.importorskip("PIL.Image")
    pixels = np.random.default_rng(0).integers(0, 256, (40, 30, 3), dtype=np.uint8)
    path = tmp_path / "shirt photo.png"
    Image.fromarray(pixels).save(path)                                    # RGB 30x40: converted, resized
    return str(path)


def run(capsys, *argv):
    code = cli.main([str(a) for a in argv])
    out = capsys.readouterr()
    return code, out.out, out.err


def ok(capsys, *argv, size=None):
    code, out, err = run(capsys, *argv)
    assert code == 0, err
    path = out.strip().splitlines()[-1]
    assert_png(path, size)
    return path, out


def test_viz_curves(tmp_path, capsys):
    pytest.importorskip("matplotlib")
    run_dir = tmp_path / "r"
    run_dir.mkdir()
    (run_dir / "metrics.jsonl").write_text("".join(
        json.dumps({"epoch": e, "train_loss": 1 / e, "train_accuracy": 1 - 1 / (e + 1),
                    "val_loss": 1.2 / e, "val_accuracy": 0.9 - 1 / (e + 2)}) + "\n" for e in (1, 2, 3)))
    path, _ = ok(capsys, "viz", "curves", run_dir, size=(1000, 400))
    assert path == str(run_dir / "curves.png")


def test_viz_filters_default_and_layer(model_file, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path, _ = ok(capsys, "viz", "filters", model_file)
    assert path == str(tmp_path / "run" / "filters.png")
    path, _ = ok(capsys, "viz", "filters", model_file, "--layer", "4", "--out", tmp_path / "f4.png")
    assert path == str(tmp_path / "f4.png")


def test_viz_maps_from_a_file_and_from_the_data_set(model_file, image_file, fake_fashion, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path, _ = ok(capsys, "viz", "maps", model_file, image_file, "--layer", "2")
    assert path == str(tmp_path / "run" / "maps-2-shirt_photo.png")
    path, _ = ok(capsys, "viz", "maps", model_file, "--dataset", "fashion-mnist", "--index", "3",
                 "--data-dir", fake_fashion, "--layer", "6")
    assert path.endswith("maps-6-fashion-mnist-test-3.png")


def test_viz_saliency_and_grad_cam(model_file, image_file, fake_fashion, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path, _ = ok(capsys, "viz", "saliency", model_file, image_file, size=(900, 340))
    assert path.endswith("saliency-shirt_photo.png")
    path, _ = ok(capsys, "viz", "saliency", model_file, "--dataset", "fashion-mnist", "--data-dir",
                 fake_fashion, "--grad-cam", "--layer", "4", "--target", "trouser",
                 "--out", tmp_path / "g.png")
    assert path == str(tmp_path / "g.png")


def test_viz_confusion_and_misclassified(model_file, fake_fashion, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    path, out = ok(capsys, "viz", "confusion", model_file, "--dataset", "fashion-mnist",
                   "--data-dir", fake_fashion, "--text")
    assert path.endswith("confusion-fashion-mnist-test.png")
    assert "true \\ predicted" in out and "T-shirt/to" in out
    path, _ = ok(capsys, "viz", "misclassified", model_file, "--dataset", "fashion-mnist",
                 "--data-dir", fake_fashion, "--count", "4", size=(4 * 170, 240))
    assert path.endswith("misclassified-fashion-mnist-test.png")


@pytest.mark.parametrize("argv, message", [
    (["maps", "{model}", "{image}", "--layer", "features.3"],
     r"no layer 'features.3'; the layers are: 0 \(Conv2d\), 1 \(BatchNorm2d\)"),
    (["maps", "{model}", "--layer", "2"], "give either an IMAGE file or --dataset"),
    (["saliency", "{model}", "{image}", "--grad-cam"], "--grad-cam needs --layer"),
    (["saliency", "{model}", "{image}", "--target", "Hat"], "--target must be a class index or name"),
    (["saliency", "{model}", "{image}", "--target", "10"], "received '10'"),
    (["filters", "{model}", "--out", "x.jpg"], "must end in .png"),
    (["curves", "{tmp}"], "no metrics log"),
    (["filters", "{tmp}/nothing.npz"], ""),
])
def test_viz_user_errors_exit_2(argv, message, model_file, image_file, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    argv = [a.format(model=model_file, image=image_file, tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, "viz", *argv)
    assert code == 2 and out == ""
    assert err.startswith("striate viz: error: ")
    assert message == "" or re.search(message, err), err


def test_viz_missing_required_argument_exits_2(model_file, capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["viz", "maps", model_file])
    assert e.value.code == 2


def test_train_writes_curves_png(fake_fashion, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    out = tmp_path / "train"
    code, _, err = run(capsys, "train", "--epochs", "2", "--batch-size", "20", "--data-dir",
                       fake_fashion, "--out", out, "--no-progress")
    assert code == 0, err
    assert_png(out / "curves.png", (1000, 400))


def test_train_without_matplotlib_still_trains(fake_fashion, tmp_path, capsys, monkeypatch):
    for name in ("matplotlib", "matplotlib.figure", "matplotlib.backends.backend_agg"):
        monkeypatch.setitem(sys.modules, name, None)
    out = tmp_path / "train"
    code, stdout, err = run(capsys, "train", "--epochs", "2", "--batch-size", "20", "--data-dir",
                            fake_fashion, "--out", out, "--no-progress")
    assert code == 0, err
    assert stdout.count("matplotlib is not installed") == 1
    assert (out / "model.npz").exists() and not (out / "curves.png").exists()
