"""Convolution filters: per-filter normalisation, the mosaics, the PNG."""

from __future__ import annotations

import numpy as np
import pytest

from striate import nn
from striate.errors import ConfigError
from striate.viz import filter_tiles, first_conv, normalize_per_filter, plot_filters
from tests.viz.helpers import assert_png, tiny_cnn


def test_normalize_per_filter_numbers():
    w = np.array([
        [[[-2.0, 0.0], [2.0, 1.0]], [[0.0, 0.0], [0.0, -1.0]]],    # filter 0: min -2, max 2
        [[[3.0, 3.0], [3.0, 3.0]], [[3.0, 3.0], [3.0, 3.0]]],      # filter 1: constant
        [[[0.0, 10.0], [5.0, 0.0]], [[0.0, 0.0], [0.0, 0.0]]],     # filter 2: min 0, max 10
    ])                                                             # (3, 2, 2, 2)
    n = normalize_per_filter(w)
    np.testing.assert_allclose(n[0], [[[0.0, 0.5], [1.0, 0.75]], [[0.5, 0.5], [0.5, 0.25]]])
    np.testing.assert_allclose(n[1], 0.5)
    np.testing.assert_allclose(n[2], [[[0.0, 1.0], [0.5, 0.0]], [[0.0, 0.0], [0.0, 0.0]]])
    # each filter spans [0, 1] whatever its scale: a filter times 1000 looks the same
    scaled = w.copy()
    scaled[0] *= 1000
    np.testing.assert_allclose(normalize_per_filter(scaled), n)


def test_normalize_refuses_a_non_conv_weight():
    with pytest.raises(ConfigError, match=r"received shape \(3, 4\)"):
        normalize_per_filter(np.zeros((3, 4)))


def test_rgb_tiles_for_three_input_channels():
    w = np.random.default_rng(0).normal(size=(5, 3, 3, 3))
    mosaic, n, kind = filter_tiles(w)
    assert kind == "rgb" and n == 5
    assert mosaic.shape == (2 * 4 - 1, 3 * 4 - 1, 3)                      # 3 columns, 2 rows, RGB
    np.testing.assert_allclose(mosaic[:3, :3], normalize_per_filter(w)[0].transpose(1, 2, 0))


def test_grey_tiles_for_one_input_channel_and_max_filters():
    w = np.random.default_rng(1).normal(size=(16, 1, 5, 5))
    mosaic, n, kind = filter_tiles(w, max_filters=9)
    assert kind == "grey" and n == 9 and mosaic.shape == (3 * 6 - 1, 3 * 6 - 1)
    np.testing.assert_allclose(mosaic[6:11, 12:17], normalize_per_filter(w)[5, 0])


def test_deeper_layers_channel_by_channel():
    w = np.random.default_rng(2).normal(size=(4, 6, 3, 3))
    mosaic, n, kind = filter_tiles(w)
    assert kind == "channels" and mosaic.shape == (4 * 4 - 1, 6 * 4 - 1)   # rows filters, cols channels
    norm = normalize_per_filter(w)
    np.testing.assert_allclose(mosaic[8:11, 20:23], norm[2, 5])
    # normalised per filter, not per channel: filter 2 spans [0, 1] over its 6 channels together
    cells = np.stack([mosaic[8:11, 4 * i:4 * i + 3] for i in range(6)])   # (6, 3, 3)
    assert cells.min() == 0.0 and cells.max() == 1.0
    assert (cells.max(axis=(1, 2)) < 1.0).sum() >= 4


def test_plot_filters_first_conv_and_a_named_layer(tmp_path):
    pytest.importorskip("matplotlib")
    model = tiny_cnn(channels=3)
    assert first_conv(model)[0] == "0"
    assert_png(plot_filters(model, tmp_path / "f.png", size=(300, 200)), (300, 200))
    pixels = assert_png(plot_filters(model, tmp_path / "f4.png", layer="4"))
    assert pixels.shape[1] == 640                                           # default width


def test_plot_filters_errors(tmp_path):
    model = tiny_cnn()
    with pytest.raises(ConfigError, match=r"no layer '9'; the layers are: 0 \(Conv2d\), 1 \(BatchNorm2d\)"):
        plot_filters(model, tmp_path / "f.png", layer="9")
    with pytest.raises(ConfigError, match=r"2 \(ReLU\) has no 4-D convolution weight"):
        plot_filters(model, tmp_path / "f.png", layer="2")
    with pytest.raises(ConfigError, match="no 2-D convolution"):
        plot_filters(nn.Sequential(nn.Linear(3, 2)), tmp_path / "f.png")
