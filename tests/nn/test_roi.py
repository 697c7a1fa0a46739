"""RoIPool against a naive loop that follows torchvision's CPU kernel line by line.

torchvision is not installable here, so the reference is ``_reference`` below:
the loops of torchvision/csrc/ops/cpu/roi_pool_kernel.cpp in Python, with C's
round (halves away from zero), int casts and float arithmetic in the input dtype.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, DTypeError, ShapeError
from striate.functional.roi import c_round, roi_pool_backward, roi_pool_forward
from tests.util import assert_close

FLT_MAX = float(np.finfo(np.float32).max)


def _c_round_scalar(v: float) -> int:
    return int(math.floor(abs(v) + 0.5)) * (1 if v >= 0 else -1)


def _reference(x, rois, ph, pw, scale, dy):
    """torchvision's roi_pool forward and backward, one box, channel and bin at a time."""
    t = x.dtype.type
    n, c, h, w = x.shape
    k = rois.shape[0]
    out = np.zeros((k, c, ph, pw), dtype=x.dtype)
    dx = np.zeros_like(x)
    for r in range(k):
        b = int(rois[r, 0])
        sw, sh, ew, eh = (_c_round_scalar(float(t(rois[r, i]) * t(scale))) for i in (1, 2, 3, 4))
        rw, rh = max(ew - sw + 1, 1), max(eh - sh + 1, 1)
        bh, bw = t(rh) / t(ph), t(rw) / t(pw)
        for i in range(ph):
            for j in range(pw):
                hs = min(max(int(math.floor(t(i) * bh)) + sh, 0), h)
                he = min(max(int(math.ceil(t(i + 1) * bh)) + sh, 0), h)
                ws = min(max(int(math.floor(t(j) * bw)) + sw, 0), w)
                we = min(max(int(math.ceil(t(j + 1) * bw)) + sw, 0), w)
                empty = he <= hs or we <= ws
                for ch in range(c):
                    best, arg = (0.0 if empty else -FLT_MAX), None
                    for yy in range(hs, he):
                        for xx in range(ws, we):
                            if x[b, ch, yy, xx] > best:
                                best, arg = x[b, ch, yy, xx], (yy, xx)
                    out[r, ch, i, j] = best
                    if arg is not None:
                        dx[b, ch, arg[0], arg[1]] += dy[r, ch, i, j]
    return out, dx


def _boxes(rng, k, n, size, extra=()):
    """Random boxes [b, x1, y1, x2, y2] in image pixels, some hanging off the map."""
    b = rng.integers(0, n, size=(k, 1))
    p = rng.uniform(-4, size + 4, size=(k, 4))
    return np.concatenate([b, p], axis=1).tolist() + list(extra)


EDGE_BOXES = [
    [0, 2.5, 1.5, 9.5, 6.5],      # halves: C rounds away from zero (np.round would go to even)
    [1, 10, 10, 3, 2],            # malformed (x2 < x1): forced to one cell
    [0, 100, 100, 120, 130],      # entirely outside: every bin empty -> 0, no gradient
    [1, -20, -20, -1, -1],        # entirely before the map
    [0, 0, 0, 0, 0],              # a single cell
    [1, -3.5, -2.5, 30, 30],      # larger than the map
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("out,scale", [((2, 2), 1.0), ((3, 4), 0.5), ((7, 7), 0.25), ((1, 1), 1.0)])
def test_matches_torchvision_reference(dtype, out, scale):
    rng = np.random.default_rng(7)
    n, c, h, w = 2, 3, 9, 11
    for ties in (False, True):
        x = (rng.integers(-2, 3, (n, c, h, w)) if ties else rng.standard_normal((n, c, h, w)))
        x = x.astype(dtype)
        rois = np.array(_boxes(rng, 6, n, 12 / scale, EDGE_BOXES), dtype=dtype)
        layer = nn.RoIPool(out, scale)
        y = layer(x, rois)
        dy = rng.standard_normal(y.shape).astype(dtype)
        dx, dboxes = layer.backward(dy)
        ref_y, ref_dx = _reference(x, rois, *out, scale, dy)
        assert dboxes is None
        assert y.dtype == dtype and dx.dtype == dtype
        assert_close(y, ref_y, dtype, "output")
        assert_close(dx, ref_dx, dtype, "features grad")


def test_empty_bins_are_zero_and_pass_no_gradient():
    x = np.random.default_rng(0).standard_normal((1, 2, 4, 4)) - 10.0   # all negative
    layer = nn.RoIPool(2, 1.0)
    y = layer(x, np.array([[0, 50, 50, 60, 60]]))
    dx, _ = layer.backward(np.ones_like(y))
    np.testing.assert_array_equal(y, 0.0)
    np.testing.assert_array_equal(dx, 0.0)


def test_known_values_and_ties():
    x = np.zeros((1, 1, 4, 4))
    x[0, 0, 1, 2] = 3.0
    layer = nn.RoIPool((2, 2), 0.5)
    # corners round(0.5)=1 (half away from zero), round(3.5)=4: 4 cells, bins [1,3) and
    # [3,5) clipped to [3,4) on each axis
    y = layer(x, np.array([[0, 1.0, 1.0, 7.0, 7.0]]))
    np.testing.assert_array_equal(y[0, 0], [[3.0, 0.0], [0.0, 0.0]])
    dx, _ = layer.backward(np.array([[[[1.0, 2.0], [3.0, 4.0]]]]))
    expect = np.zeros((4, 4))
    expect[1, 2] = 1.0            # the maximum
    expect[1, 3] = 2.0            # a tie of zeros: the first cell of bin [1,3) x [3,4)
    expect[3, 1] = 3.0
    expect[3, 3] = 4.0
    np.testing.assert_array_equal(dx[0, 0], expect)


def test_c_round_goes_away_from_zero():
    v = np.array([0.5, 1.5, 2.5, -0.5, -2.5, 2.4999, -1.2], dtype=np.float32)
    np.testing.assert_array_equal(c_round(v), [1, 2, 3, -1, -3, 2, -1])


def test_list_of_boxes_equals_batch_index_form():
    rng = np.random.default_rng(1)
    x = rng.standard_normal((2, 3, 8, 8))
    per_image = [np.array([[0, 0, 5, 5], [2, 1, 7, 3]]), np.array([[1, 1, 6, 7.0]])]
    flat = np.array([[0, 0, 0, 5, 5], [0, 2, 1, 7, 3], [1, 1, 1, 6, 7]], dtype=np.float64)
    layer = nn.RoIPool(3, 1.0)
    np.testing.assert_array_equal(layer(x, per_image), layer(x, flat))


def test_gradcheck_features():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((2, 2, 8, 9))
    rois = np.array([[0, 0, 0, 7, 6], [1, 2.4, 1, 14, 16], [1, 3, 3, 3, 3]], dtype=np.float64)
    assert striate.gradcheck(nn.RoIPool((3, 2), 0.5), x, rois, max_per_tensor=60) < 1e-6

    def fwd(x, boxes):
        return roi_pool_forward(x, boxes, output_size=(2, 3), spatial_scale=1.0)

    assert striate.gradcheck(fwd, x, rois, backward=roi_pool_backward, max_per_tensor=60) < 1e-6


def test_no_boxes():
    layer = nn.RoIPool(2, 1.0)
    y = layer(np.ones((1, 3, 4, 4)), np.zeros((0, 5)))
    assert y.shape == (0, 3, 2, 2)
    dx, _ = layer.backward(y)
    np.testing.assert_array_equal(dx, np.zeros((1, 3, 4, 4)))


@pytest.mark.parametrize("boxes,err,text", [
    (np.zeros((3, 4)), ShapeError, r"boxes \(K, 5\).*received \(3, 4\)"),
    (np.zeros(5), ShapeError, r"received \(5,\)"),
    ([np.zeros((2, 5))], ShapeError, r"boxes\[0\] \(L, 4\)"),
    (np.array([[2, 0, 0, 1, 1]]), ConfigError, r"\[0, 2\).*received 2"),
    (np.array([[-1, 0, 0, 1, 1]]), ConfigError, "received -1"),
    (np.array([[0.5, 0, 0, 1, 1]]), ConfigError, "received 0.5"),
    (np.array([[0, np.nan, 0, 1, 1]]), ConfigError, "finite"),
    (np.array([["a", "b", "c", "d", "e"]]), DTypeError, "numeric"),
])
def test_bad_boxes(boxes, err, text):
    with pytest.raises(err, match="RoIPool"):
        nn.RoIPool(2, 1.0)(np.zeros((2, 1, 4, 4)), boxes)
    with pytest.raises(err, match=text):
        nn.RoIPool(2, 1.0)(np.zeros((2, 1, 4, 4)), boxes)


def test_bad_features_and_arguments():
    with pytest.raises(ShapeError,
                       match=r"RoIPool expects input \(N, C, H, W\); received \(1, 4, 4\)"):
        nn.RoIPool(2, 1.0)(np.zeros((1, 4, 4)), np.zeros((1, 5)))
    with pytest.raises(DTypeError, match="RoIPool"):
        nn.RoIPool(2, 1.0)(np.zeros((1, 1, 4, 4), dtype=np.int64), np.zeros((1, 5)))
    with pytest.raises(ConfigError, match="output_size"):
        nn.RoIPool(0, 1.0)
    with pytest.raises(ConfigError, match="output_size"):
        nn.RoIPool((2, 2, 2), 1.0)
    for bad in (0, -0.5, float("nan"), "1"):
        with pytest.raises(ConfigError, match="spatial_scale"):
            nn.RoIPool(2, bad)
