"""The drawing helpers: mosaics, scaling, PNG writing, and matplotlib as an optional dependency."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from striate.errors import ConfigError, MissingDependencyError
from striate.viz import _figure as F
from tests.viz.helpers import assert_png


def test_tile_places_each_image_in_its_cell_with_padding():
    images = np.arange(5 * 2 * 3, dtype=np.float64).reshape(5, 2, 3) + 1   # 5 images of 2x3
    out = F.tile(images, cols=3, pad=1, fill=-1.0)
    assert out.shape == (2 * 3 - 1, 3 * 4 - 1)                             # rows: 2, cols: 3
    for k in range(5):
        r, c = divmod(k, 3)
        np.testing.assert_array_equal(out[r * 3:r * 3 + 2, c * 4:c * 4 + 3], images[k])
    assert np.all(out[2, :] == -1) and np.all(out[:, 3] == -1)             # the gaps
    assert np.all(out[3:, 8:] == -1)                                       # the empty 6th cell


def test_tile_keeps_rgb_channels():
    images = np.random.default_rng(0).random((4, 2, 2, 3))
    out = F.tile(images, cols=2, pad=0)
    assert out.shape == (4, 4, 3)
    np.testing.assert_array_equal(out[2:, :2], images[2])


def test_minmax_scales_blocks_independently_and_constant_blocks_to_half():
    a = np.array([[1.0, 3.0, 5.0], [2.0, 2.0, 2.0]])
    np.testing.assert_allclose(F.minmax(a, axes=(1,)), [[0.0, 0.5, 1.0], [0.5, 0.5, 0.5]])
    np.testing.assert_allclose(F.minmax(a), [[0.0, 0.5, 1.0], [0.25, 0.25, 0.25]])


def test_display_image_scales_uint8_and_moves_channels_last():
    rgb = np.zeros((3, 2, 2), np.uint8)
    rgb[0] = 255
    shown = F.display_image(rgb)
    assert shown.shape == (2, 2, 3) and np.all(shown[..., 0] == 1.0) and np.all(shown[..., 1:] == 0)
    grey = F.display_image(np.array([[[-1.0, 1.0]]]))
    np.testing.assert_allclose(grey, [[0.0, 1.0]])
    with pytest.raises(ConfigError, match=r"\(C, H, W\).*received \(2, 2, 2\)"):
        F.display_image(np.zeros((2, 2, 2)))


def test_save_png_writes_the_exact_pixel_size(tmp_path):
    pytest.importorskip("matplotlib")
    fig = F.new_figure((123, 77))
    fig.add_axes((0, 0, 1, 1)).imshow(np.eye(4))
    path = F.save_png(fig, tmp_path / "sub" / "x.png")
    assert_png(path, (123, 77))
    assert not [p for p in (tmp_path / "sub").iterdir() if p.name.startswith(".viz-")]


def test_bad_sizes_and_paths_are_refused(tmp_path):
    with pytest.raises(ConfigError, match="received 'out.jpg'"):
        F.check_png_path("out.jpg")
    with pytest.raises(ConfigError, match=r"received \(5, 100\)"):
        F.check_size((5, 100))
    with pytest.raises(ConfigError, match="received 'big'"):
        F.check_size("big")


def test_importing_striate_and_viz_does_not_import_matplotlib():
    code = ("import sys, striate, striate.viz, striate.viz.commands, striate.cli, striate.train.recipe; "
            "print('matplotlib' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_missing_matplotlib_names_the_extra(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.figure", None)
    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_agg", None)
    with pytest.raises(MissingDependencyError, match=r"striate\[viz\]"):
        F.new_figure((100, 100))
