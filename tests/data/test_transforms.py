"""Batch transforms: exact results on small arrays against per-image loop references."""

from __future__ import annotations

import numpy as np
import pytest

from striate.data import Compose, Normalize, RandomCrop, RandomHorizontalFlip, ToFloat
from striate.errors import ConfigError, DTypeError, ShapeError


def _batch(n=5, c=2, h=4, w=5, seed=0):
    return np.random.default_rng(seed).integers(1, 256, (n, c, h, w), dtype=np.uint8)


def test_to_float():
    x = np.array([[[[0, 1, 128, 255]]]], dtype=np.uint8)
    y = ToFloat()(x)
    assert y.dtype == np.float32
    np.testing.assert_array_equal(y, x.astype(np.float32) * np.float32(1 / 255))
    assert y[0, 0, 0, 3] == 1.0 and y[0, 0, 0, 0] == 0.0
    y64 = ToFloat(scale=0.5, dtype=np.float64)(x)
    assert y64.dtype == np.float64
    np.testing.assert_array_equal(y64, [[[[0, 0.5, 64, 127.5]]]])
    with pytest.raises(ConfigError, match="scale must be a finite number; received nan"):
        ToFloat(float("nan"))
    with pytest.raises(ConfigError, match="dtype must be float32 or float64; received int32"):
        ToFloat(dtype=np.int32)


def test_normalize_per_channel():
    x = _batch().astype(np.float64)
    y = Normalize([10.0, 20.0], [2.0, 4.0])(x)
    expected = np.empty_like(x)
    for c, (m, s) in enumerate(((10.0, 2.0), (20.0, 4.0))):
        expected[:, c] = (x[:, c] - m) / s
    np.testing.assert_array_equal(y, expected)
    assert y.dtype == np.float64
    y32 = Normalize(0.5, 0.25)(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, (x - 0.5) / 0.25, rtol=1e-6)


def test_normalize_errors():
    with pytest.raises(ShapeError, match=r"Normalize expects input \(N, 3, H, W\); received \(5, 2, 4, 5\)"):
        Normalize([0, 0, 0], [1, 1, 1])(_batch().astype(np.float32))
    with pytest.raises(DTypeError, match="apply ToFloat first.*uint8"):
        Normalize([0, 0], [1, 1])(_batch())
    with pytest.raises(ConfigError, match="std must be positive"):
        Normalize([0, 0], [1, 0])
    with pytest.raises(ConfigError, match="same length"):
        Normalize([0, 0], [1, 1, 1])


def _crop_reference(x, size, pads, rows, cols):
    left, top, right, bottom = pads
    padded = np.zeros((x.shape[0], x.shape[1], x.shape[2] + top + bottom, x.shape[3] + left + right),
                      dtype=x.dtype)
    padded[:, :, top:top + x.shape[2], left:left + x.shape[3]] = x
    return np.stack([padded[i, :, r:r + size[0], c:c + size[1]] for i, (r, c) in enumerate(zip(rows, cols))])


@pytest.mark.parametrize("size,padding,pads", [
    (4, 0, (0, 0, 0, 0)), (3, 1, (1, 1, 1, 1)), ((4, 5), 2, (2, 2, 2, 2)),
    ((2, 3), (1, 2), (1, 2, 1, 2)), ((5, 4), (0, 1, 3, 2), (0, 1, 3, 2)),
])
def test_random_crop_matches_reference(size, padding, pads):
    x = _batch()
    crop = RandomCrop(size, padding=padding, rng=np.random.default_rng(7))
    y = crop(x)
    draws = np.random.default_rng(7)
    h, w = (size, size) if isinstance(size, int) else size
    rows = draws.integers(0, x.shape[2] + pads[1] + pads[3] - h + 1, size=len(x))
    cols = draws.integers(0, x.shape[3] + pads[0] + pads[2] - w + 1, size=len(x))
    assert y.dtype == np.uint8 and y.shape == (5, 2, h, w)
    np.testing.assert_array_equal(y, _crop_reference(x, (h, w), pads, rows, cols))


def test_random_crop_offsets_vary_and_padding_is_zero():
    x = np.ones((200, 1, 2, 2), dtype=np.float32)
    y = RandomCrop(2, padding=1, rng=3)(x)
    sums = y.sum(axis=(1, 2, 3))
    assert set(sums.tolist()) == {1.0, 2.0, 4.0}  # corner, edge and centre offsets all occur


def test_random_crop_errors():
    with pytest.raises(ShapeError, match=r"crop \(6, 6\) is larger than the padded input; received "
                                         r"\(5, 2, 4, 5\)"):
        RandomCrop(6)(_batch())
    with pytest.raises(ShapeError, match=r"RandomCrop expects input \(N, C, H, W\); received \(4, 5\)"):
        RandomCrop(2)(np.zeros((4, 5)))
    with pytest.raises(ConfigError, match="padding must be non-negative ints; received -1"):
        RandomCrop(2, padding=-1)
    with pytest.raises(ConfigError, match=r"padding must be an int or a sequence of 2 or 4 ints; received \(1, 2, 3\)"):
        RandomCrop(2, padding=(1, 2, 3))
    with pytest.raises(ConfigError, match="RandomCrop size must be >= 1; received 0"):
        RandomCrop(0)


def test_random_horizontal_flip_matches_reference():
    x = _batch(n=8)
    y = RandomHorizontalFlip(p=0.5, rng=np.random.default_rng(11))(x)
    flips = np.random.default_rng(11).random(8) < 0.5
    assert 0 < flips.sum() < 8
    expected = np.stack([xi[:, :, ::-1] if f else xi for xi, f in zip(x, flips)])
    np.testing.assert_array_equal(y, expected)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=0.0, rng=1)(x), x)
    np.testing.assert_array_equal(RandomHorizontalFlip(p=1.0, rng=1)(x), x[..., ::-1])
    before = x.copy()
    RandomHorizontalFlip(p=1.0, rng=1)(x)
    np.testing.assert_array_equal(x, before)  # input untouched
    for p in (-0.1, 1.5, True, "0.5"):
        with pytest.raises(ConfigError, match="p must be in \\[0, 1\\]"):
            RandomHorizontalFlip(p=p)


def test_compose_applies_in_order():
    x = _batch()
    t = Compose([RandomCrop(3, rng=5), ToFloat(), Normalize([0.5, 0.5], [0.5, 0.5])])
    y = t(x)
    expected = (RandomCrop(3, rng=5)(x).astype(np.float32) * np.float32(1 / 255) - 0.5) / 0.5
    np.testing.assert_allclose(y, expected, rtol=0, atol=1e-6)
    assert y.dtype == np.float32
    with pytest.raises(ConfigError, match="transform 1 is not callable; received 3"):
        Compose([ToFloat(), 3])
