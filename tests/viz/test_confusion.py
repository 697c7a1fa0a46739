"""The confusion matrix heat map and text, and the most confidently misclassified images."""

from __future__ import annotations

import numpy as np
import pytest

from striate.errors import ConfigError, ShapeError
from striate.nn import no_grad
from striate.viz import (confusion_text, most_confident_mistakes, plot_confusion, plot_misclassified,
                         predict_probs, row_normalize)
from tests.viz.helpers import assert_png, tiny_cnn

CM = np.array([[8, 2, 0], [1, 3, 0], [0, 0, 0]])


def test_row_normalize_numbers():
    np.testing.assert_allclose(row_normalize(CM), [[0.8, 0.2, 0.0], [0.25, 0.75, 0.0], [0, 0, 0]])


def test_plot_confusion_png_with_names(tmp_path):
    pytest.importorskip("matplotlib")
    path = plot_confusion(CM, tmp_path / "cm.png", classes=["T-shirt/top", "Trouser", "Bag"],
                          size=(500, 450))
    assert_png(path, (500, 450))


def test_confusion_text_rows_and_accuracy():
    lines = confusion_text(CM, ["T-shirt/top", "Trouser", "Bag"]).splitlines()
    assert lines[2].split()[-4:] == ["8", "2", "0", "0.8000"]
    assert lines[3].split()[-4:] == ["1", "3", "0", "0.7500"]
    assert lines[4].split()[-1] == "nan"


def test_plot_confusion_errors(tmp_path):
    with pytest.raises(ConfigError, match=r"square .*received shape \(2, 3\)"):
        plot_confusion(np.zeros((2, 3)), tmp_path / "cm.png")
    with pytest.raises(ConfigError, match="2 class names for a 3x3 matrix"):
        plot_confusion(CM, tmp_path / "cm.png", classes=["a", "b"])


def test_most_confident_mistakes_sorted_by_confidence():
    probs = np.array([
        [0.90, 0.05, 0.05],   # 0: right (label 0)
        [0.20, 0.70, 0.10],   # 1: wrong, confidence 0.70
        [0.10, 0.10, 0.80],   # 2: wrong, 0.80
        [0.40, 0.35, 0.25],   # 3: wrong, 0.40
        [0.05, 0.90, 0.05],   # 4: right (label 1)
        [0.15, 0.15, 0.70],   # 5: wrong, 0.70 (ties with 1: data set order kept)
    ])
    labels = np.array([0, 0, 1, 2, 1, 0])
    np.testing.assert_array_equal(most_confident_mistakes(probs, labels, 10), [2, 1, 5, 3])
    np.testing.assert_array_equal(most_confident_mistakes(probs, labels, 2), [2, 1])
    assert most_confident_mistakes(probs, np.argmax(probs, axis=1), 3).size == 0


def test_most_confident_mistakes_errors():
    with pytest.raises(ShapeError, match=r"received \(3, 2\) and \(2,\)"):
        most_confident_mistakes(np.zeros((3, 2)), np.zeros(2, int))
    with pytest.raises(ConfigError, match="received 0"):
        most_confident_mistakes(np.zeros((3, 2)), np.zeros(3, int), 0)


def test_predict_probs_is_the_softmax_in_batches():
    model = tiny_cnn()
    x = np.random.default_rng(0).normal(size=(7, 1, 8, 8)).astype(np.float32)
    probs = predict_probs(model, x, batch_size=3)
    model.eval()
    with no_grad():
        logits = model(x).astype(np.float64)
    ref = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    np.testing.assert_allclose(probs, ref, rtol=1e-5)
    assert probs.shape == (7, 3)


def test_plot_misclassified_png(tmp_path):
    pytest.importorskip("matplotlib")
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (10, 1, 8, 8), dtype=np.uint8)
    probs = rng.dirichlet(np.ones(3), size=10)
    labels = (probs.argmax(axis=1) + 1) % 3                               # all wrong
    path = plot_misclassified(images, labels, probs, tmp_path / "mis.png", classes=["a", "b", "c"],
                              k=6, cols=3)
    assert_png(path, (3 * 170, 2 * 200 + 40))
    with pytest.raises(ConfigError, match="no mistake"):
        plot_misclassified(images, probs.argmax(axis=1), probs, tmp_path / "none.png")
