"""Pooling layers: MaxPool, AvgPool, LPPool (1-D, 2-D), adaptive and global pooling."""

from __future__ import annotations

import itertools
import re

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, DTypeError, ShapeError, StateError
from tests.util import assert_close, compare_with_torch, torch_or_skip

DTYPES = [np.float64, np.float32]


def _input(shape, seed=0, ties=False, dtype=np.float64):
    """Random normal input; with ties, small integers so windows hold equal maxima."""
    rng = np.random.default_rng(seed)
    x = rng.integers(-2, 3, size=shape) if ties else rng.standard_normal(shape)
    return x.astype(dtype)


def _thin(dtype, i: int) -> bool:
    """Skip every other grid point in float32 (float64 runs them all) to keep the tests fast."""
    return np.dtype(dtype) == np.float32 and i % 4 in (1, 2)


def _torch_fits(make_torch, shape) -> bool:
    """Whether torch accepts this configuration (its output-size check)."""
    torch = torch_or_skip()
    try:
        make_torch()(torch.zeros(shape, dtype=torch.float64))
    except RuntimeError:
        return False
    return True


def _compare_or_refuse(layer, make_torch, x, dtype):
    """Compare with torch, or check striate refuses what torch refuses."""
    if _torch_fits(make_torch, x.shape):
        compare_with_torch(layer, make_torch(), [x], dtype)
        return 1
    with pytest.raises(ShapeError, match="larger than the padded input"):
        layer(x)
    return 0


# ---------------------------------------------------------------------------- oracle grids


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_maxpool2d_matches_torch(dtype, k):
    torch = torch_or_skip()
    compared = 0
    grid = itertools.product([1, 2, 3], range(k // 2 + 1), [1, 2], [False, True])
    for i, (s, p, d, ceil) in enumerate(grid):
        if p > 2 or _thin(dtype, i):
            continue
        shape = [(2, 3, 7, 6), (1, 2, 9, 8)][i % 2]
        x = _input(shape, seed=i, ties=i % 3 == 0, dtype=dtype)
        layer = nn.MaxPool2d(k, s, p, d, ceil_mode=ceil)
        compared += _compare_or_refuse(
            layer, lambda: torch.nn.MaxPool2d(k, s, p, d, ceil_mode=ceil), x, dtype)
    assert compared > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool2d_rectangular_matches_torch(dtype):
    torch = torch_or_skip()
    x = _input((2, 2, 8, 11), ties=True, dtype=dtype)
    layer = nn.MaxPool2d((2, 3), (1, 2), (1, 1), (2, 1), ceil_mode=True)
    compare_with_torch(layer, torch.nn.MaxPool2d((2, 3), (1, 2), (1, 1), (2, 1), ceil_mode=True),
                       [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_maxpool1d_matches_torch(dtype):
    torch = torch_or_skip()
    compared = 0
    for i, (k, s, d, ceil) in enumerate(itertools.product([1, 2, 3, 5], [1, 2, 3], [1, 2],
                                                           [False, True])):
        p = i % (k // 2 + 1)
        if _thin(dtype, i):
            continue
        x = _input((2, 3, 11), seed=i, ties=i % 2 == 0, dtype=dtype)
        compared += _compare_or_refuse(
            nn.MaxPool1d(k, s, p, d, ceil_mode=ceil),
            lambda: torch.nn.MaxPool1d(k, s, p, d, ceil_mode=ceil), x, dtype)
    assert compared > 0


def test_maxpool_return_indices_match_torch():
    torch = torch_or_skip()
    for ties in (False, True):
        x = _input((2, 3, 9, 8), ties=ties)
        y, idx = nn.MaxPool2d(3, 2, 1, 2, return_indices=True, ceil_mode=True)(x)
        ty, tidx = torch.nn.MaxPool2d(3, 2, 1, 2, return_indices=True, ceil_mode=True)(
            torch.from_numpy(x))
        np.testing.assert_array_equal(y, ty.numpy())
        np.testing.assert_array_equal(idx, tidx.numpy())
        y1, idx1 = nn.MaxPool1d(3, 2, 1, return_indices=True)(x[:, :, 0])
        _, tidx1 = torch.nn.MaxPool1d(3, 2, 1, return_indices=True)(torch.from_numpy(x[:, :, 0]))
        np.testing.assert_array_equal(idx1, tidx1.numpy())
        assert idx.dtype == np.int64


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_avgpool2d_matches_torch(dtype, k):
    torch = torch_or_skip()
    compared = 0
    grid = itertools.product([1, 2, 3], range(min(k // 2, 2) + 1), [False, True], [True, False])
    for i, (s, p, ceil, cip) in enumerate(grid):
        if _thin(dtype, i):
            continue
        div = 3 if i % 5 == 4 else None
        x = _input([(2, 3, 7, 6), (1, 2, 9, 8)][i % 2], seed=i, dtype=dtype)
        layer = nn.AvgPool2d(k, s, p, ceil, cip, div)
        compared += _compare_or_refuse(
            layer, lambda: torch.nn.AvgPool2d(k, s, p, ceil, cip, div), x, dtype)
    assert compared > 0


@pytest.mark.parametrize("dtype", DTYPES)
def test_avgpool1d_matches_torch(dtype):
    torch = torch_or_skip()
    for i, (k, s, ceil, cip) in enumerate(itertools.product([1, 2, 3, 5], [1, 2, 3],
                                                           [False, True], [True, False])):
        p = i % (k // 2 + 1)
        if _thin(dtype, i):
            continue
        x = _input((2, 3, 11), seed=i, dtype=dtype)
        _compare_or_refuse(nn.AvgPool1d(k, s, p, ceil, cip),
                           lambda: torch.nn.AvgPool1d(k, s, p, ceil, cip), x, dtype)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("p", [1, 2, 3, 1.5, float("inf"), -float("inf")])
def test_lppool2d_matches_torch(dtype, p):
    torch = torch_or_skip()
    for i, (k, s, ceil) in enumerate([(2, None, False), (3, 2, True), ((2, 3), (1, 2), True),
                                      (1, 1, False)]):
        x = _input((2, 3, 7, 8), seed=i, dtype=dtype)
        if p in (3, 1.5):
            x = np.abs(x) + 0.1       # a fractional root of a negative sum is NaN (in torch too)
        compare_with_torch(nn.LPPool2d(p, k, s, ceil), torch.nn.LPPool2d(p, k, s, ceil), [x], dtype)


@pytest.mark.parametrize("dtype", DTYPES)
def test_lppool1d_matches_torch(dtype):
    torch = torch_or_skip()
    for i, (p, k, s, ceil) in enumerate([(2, 3, None, False), (3, 2, 1, True), (1, 3, 2, True),
                                         (float("inf"), 2, 2, False)]):
        x = _input((2, 3, 11), seed=i, dtype=dtype)
        x = np.abs(x) + 0.1 if p == 3 else x
        compare_with_torch(nn.LPPool1d(p, k, s, ceil), torch.nn.LPPool1d(p, k, s, ceil), [x], dtype)


def test_lppool_zero_window_has_zero_gradient():
    torch = torch_or_skip()
    x = _input((1, 2, 4, 6))
    x[:, :, :2, :2] = 0.0                     # one window whose power sum is 0
    y = compare_with_torch(nn.LPPool2d(2, 2), torch.nn.LPPool2d(2, 2), [x])
    layer = nn.LPPool2d(2, 2)
    layer(x)
    dx = layer.backward(np.ones_like(y))
    assert y[0, 0, 0, 0] == 0.0
    np.testing.assert_array_equal(dx[:, :, :2, :2], 0.0)
    assert np.all(np.isfinite(dx))


ADAPTIVE_SIZES = [1, 3, (None, 2), (4, 5), (9, 2), (7, 6)]   # overlap, upsampling, identity


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("out", ADAPTIVE_SIZES)
def test_adaptive_pool2d_matches_torch(dtype, out):
    torch = torch_or_skip()
    for i, shape in enumerate([(2, 3, 7, 6), (1, 2, 5, 9)]):
        x = _input(shape, seed=i, ties=i == 1, dtype=dtype)
        compare_with_torch(nn.AdaptiveAvgPool2d(out), torch.nn.AdaptiveAvgPool2d(out), [x], dtype)
        compare_with_torch(nn.AdaptiveMaxPool2d(out), torch.nn.AdaptiveMaxPool2d(out), [x], dtype)
    y, idx = nn.AdaptiveMaxPool2d(out, return_indices=True)(x)
    _, tidx = torch.nn.AdaptiveMaxPool2d(out, return_indices=True)(torch.from_numpy(x))
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_adaptive_pool1d_matches_torch(dtype):
    torch = torch_or_skip()
    for i, out in enumerate([1, 3, 4, 7, 10]):
        x = _input((2, 3, 7), seed=i, ties=i % 2 == 0, dtype=dtype)
        compare_with_torch(nn.AdaptiveAvgPool1d(out), torch.nn.AdaptiveAvgPool1d(out), [x], dtype)
        compare_with_torch(nn.AdaptiveMaxPool1d(out), torch.nn.AdaptiveMaxPool1d(out), [x], dtype)
    _, idx = nn.AdaptiveMaxPool1d(3, return_indices=True)(x)
    _, tidx = torch.nn.AdaptiveMaxPool1d(3, return_indices=True)(torch.from_numpy(x))
    np.testing.assert_array_equal(idx, tidx.numpy())


@pytest.mark.parametrize("dtype", DTYPES)
def test_global_pools_match_torch_adaptive_one(dtype):
    torch = torch_or_skip()
    for ties in (False, True):
        x = _input((2, 3, 5, 7), ties=ties, dtype=dtype)
        y = compare_with_torch(nn.GlobalAvgPool2d(), torch.nn.AdaptiveAvgPool2d(1), [x], dtype)
        assert y.shape == (2, 3, 1, 1)
        y = compare_with_torch(nn.GlobalMaxPool2d(), torch.nn.AdaptiveMaxPool2d(1), [x], dtype)
        assert y.shape == (2, 3, 1, 1)


# ---------------------------------------------------------------------------- without torch


def test_maxpool_ties_pick_first_maximum():
    x = np.zeros((1, 1, 4, 5))
    layer = nn.MaxPool2d(2, 2, ceil_mode=True)
    y = layer(x)
    dx = layer.backward(np.arange(1.0, 7.0).reshape(1, 1, 2, 3))
    expect = np.zeros((4, 5))
    expect[0::2, 0::2] = np.arange(1.0, 7.0).reshape(2, 3)   # each window's top-left cell
    assert y.shape == (1, 1, 2, 3)
    np.testing.assert_array_equal(dx[0, 0], expect)


def test_maxpool_overlapping_windows_sum_gradients():
    x = np.array([[[[0.0, 5.0, 1.0, 2.0]]]])
    layer = nn.MaxPool2d((1, 2), stride=1)
    np.testing.assert_array_equal(layer(x), [[[[5.0, 5.0, 2.0]]]])
    np.testing.assert_array_equal(layer.backward(np.ones((1, 1, 1, 3))), [[[[0.0, 2.0, 0.0, 1.0]]]])


def test_avgpool_ceil_mode_divisors():
    def both(x, k, s, p):
        inc = nn.AvgPool2d((1, k), (1, s), (0, p), ceil_mode=True)(x.reshape(1, 1, 1, -1))
        exc = nn.AvgPool2d((1, k), (1, s), (0, p), ceil_mode=True, count_include_pad=False)(
            x.reshape(1, 1, 1, -1))
        return inc[0, 0, 0], exc[0, 0, 0]

    # W=5, k=2, s=2, p=1: windows [-1,1), [1,3), [3,5); one at 5 would start in the right
    # padding and is dropped.  The first holds one pad cell: divisor 2 with it, 1 without.
    inc, exc = both(np.arange(1.0, 6.0), 2, 2, 1)
    np.testing.assert_allclose(inc, [0.5, 2.5, 4.5])
    np.testing.assert_allclose(exc, [1.0, 2.5, 4.5])
    # W=4: the last window [3,5) holds x[3] and one right-pad cell.
    inc, exc = both(np.arange(1.0, 5.0), 2, 2, 1)
    np.testing.assert_allclose(inc, [0.5, 2.5, 2.0])
    np.testing.assert_allclose(exc, [1.0, 2.5, 4.0])
    # W=4, k=3, s=2, p=0: the ceil_mode window [2,5) hangs past H+p=4, so even with
    # count_include_pad its divisor is its clipped size 2, not 3.
    inc, exc = both(np.arange(1.0, 5.0), 3, 2, 0)
    np.testing.assert_allclose(inc, [2.0, 3.5])
    np.testing.assert_allclose(exc, [2.0, 3.5])


def test_pool_output_sizes_follow_torch_formula():
    x = np.zeros((1, 1, 6, 6))
    assert nn.MaxPool2d(3, 2)(x).shape == (1, 1, 2, 2)
    assert nn.MaxPool2d(3, 2, ceil_mode=True)(x).shape == (1, 1, 3, 3)
    assert nn.MaxPool2d(2, 2, 1, ceil_mode=True)(x).shape == (1, 1, 4, 4)
    assert nn.AvgPool2d(2, 3, ceil_mode=True)(x).shape == (1, 1, 2, 2)
    assert nn.MaxPool2d(2, 2, dilation=2)(x).shape == (1, 1, 2, 2)


def test_global_pools_equal_adaptive_one():
    x = _input((2, 3, 5, 4), ties=True)
    for glob, adapt in ((nn.GlobalAvgPool2d(), nn.AdaptiveAvgPool2d(1)),
                        (nn.GlobalMaxPool2d(), nn.AdaptiveMaxPool2d((1, 1)))):
        dy = _input((2, 3, 1, 1), seed=1)
        assert_close(glob(x), adapt(x))
        assert_close(glob.backward(dy), adapt.backward(dy))


def test_float32_stays_float32():
    x = _input((1, 2, 6, 6), dtype=np.float32)
    for layer in (nn.MaxPool2d(2), nn.AvgPool2d(3, 1, 1), nn.LPPool2d(2, 2),
                  nn.AdaptiveAvgPool2d(4), nn.AdaptiveMaxPool2d(4), nn.GlobalAvgPool2d(),
                  nn.GlobalMaxPool2d()):
        y = layer(x)
        assert y.dtype == np.float32
        assert layer.backward(np.ones_like(y)).dtype == np.float32


GRADCHECK_LAYERS = [
    (nn.MaxPool2d(3, 2, 1, ceil_mode=True), (2, 2, 7, 6)),
    (nn.MaxPool2d(2, 1, dilation=2), (1, 2, 6, 5)),
    (nn.MaxPool1d(3, 2, 1, ceil_mode=True), (2, 2, 8)),
    (nn.AvgPool2d(3, 2, 1, ceil_mode=True, count_include_pad=False), (2, 2, 7, 6)),
    (nn.AvgPool2d(2, divisor_override=3), (1, 2, 5, 4)),
    (nn.AvgPool1d(3, 2, 1, ceil_mode=True), (2, 2, 8)),
    (nn.LPPool2d(2, 3, 2, ceil_mode=True), (2, 2, 7, 6)),
    (nn.LPPool2d(3, 2), (1, 2, 4, 6)),
    (nn.LPPool1d(1.5, 3), (2, 2, 9)),
    (nn.LPPool2d(float("inf"), 2), (1, 2, 4, 4)),
    (nn.AdaptiveAvgPool2d((3, 4)), (2, 2, 7, 6)),
    (nn.AdaptiveMaxPool2d((4, None)), (2, 2, 7, 5)),
    (nn.AdaptiveAvgPool1d(4), (2, 2, 7)),
    (nn.AdaptiveMaxPool1d(3), (2, 2, 7)),
    (nn.GlobalAvgPool2d(), (2, 3, 4, 5)),
    (nn.GlobalMaxPool2d(), (2, 3, 4, 5)),
]


@pytest.mark.parametrize("layer,shape", GRADCHECK_LAYERS, ids=lambda v: repr(v)[:40])
def test_gradcheck(layer, shape):
    x = _input(shape, seed=3)
    if isinstance(layer, nn.LPPool2d):
        x = np.abs(x) + 0.5
    assert striate.gradcheck(layer, x, max_per_tensor=60) < 1e-6


# ---------------------------------------------------------------------------- errors


@pytest.mark.parametrize("make,bad", [
    (lambda: nn.MaxPool2d(2), np.zeros((1, 4, 4))),
    (lambda: nn.AvgPool2d(2), np.zeros((1, 1, 1, 4, 4))),
    (lambda: nn.MaxPool1d(2), np.zeros((1, 1, 4, 4))),
    (lambda: nn.LPPool2d(2, 2), np.zeros((4, 4))),
    (lambda: nn.AdaptiveAvgPool2d(2), np.zeros((1, 4, 4))),
    (lambda: nn.AdaptiveMaxPool1d(2), np.zeros((1, 4))),
    (lambda: nn.GlobalAvgPool2d(), np.zeros((2, 3))),
    (lambda: nn.GlobalMaxPool2d(), np.zeros((2, 3, 4))),
])
def test_wrong_rank_raises_shape_error(make, bad):
    layer = make()
    pattern = rf"{type(layer).__name__} expects input \(.*\); received {re.escape(str(bad.shape))}"
    with pytest.raises(ShapeError, match=pattern):
        layer(bad)


def test_kernel_larger_than_padded_input():
    with pytest.raises(ShapeError,
                       match=r"MaxPool2d: kernel \(5, 5\).*received input \(1, 1, 4, 4\)"):
        nn.MaxPool2d(5, padding=0)(np.zeros((1, 1, 4, 4)))
    with pytest.raises(ShapeError, match="AvgPool1d: kernel"):
        nn.AvgPool1d(4, padding=1)(np.zeros((1, 1, 1)))
    with pytest.raises(ShapeError, match="LPPool2d: kernel"):
        nn.LPPool2d(2, (1, 3))(np.zeros((1, 1, 4, 2)))
    with pytest.raises(ShapeError, match="non-empty"):
        nn.AdaptiveAvgPool2d(2)(np.zeros((1, 1, 0, 3)))


@pytest.mark.parametrize("make,text", [
    (lambda: nn.MaxPool2d(2, padding=2), "padding=2"),
    (lambda: nn.MaxPool2d((3, 2), padding=(1, 2)), r"padding=\(1, 2\)"),
    (lambda: nn.AvgPool2d(3, padding=2), "padding=2"),
    (lambda: nn.MaxPool1d(1, padding=1), "padding=1"),
    (lambda: nn.MaxPool2d(0), "kernel_size"),
    (lambda: nn.MaxPool2d(2, stride=0), "stride"),
    (lambda: nn.MaxPool2d(2, dilation=0), "dilation"),
    (lambda: nn.AvgPool2d(2, padding=-1), "padding"),
    (lambda: nn.AvgPool2d(2, divisor_override=0), "divisor_override"),
    (lambda: nn.LPPool2d(0, 2), "norm_type"),
    (lambda: nn.LPPool2d(float("nan"), 2), "norm_type"),
    (lambda: nn.AdaptiveAvgPool2d(0), "output_size"),
    (lambda: nn.AdaptiveMaxPool2d((2, 3, 4)), "output_size"),
    (lambda: nn.AdaptiveMaxPool2d((2, -1)), "output_size"),
    (lambda: nn.AdaptiveAvgPool1d("big"), "output_size"),
    (lambda: nn.AdaptiveAvgPool2d(True), "output_size"),
])
def test_bad_arguments_raise_config_error(make, text):
    with pytest.raises(ConfigError, match=text):
        make()


def test_non_float_input_and_backward_before_forward():
    with pytest.raises(DTypeError, match="MaxPool2d expects a floating-point input"):
        nn.MaxPool2d(2)(np.zeros((1, 1, 4, 4), dtype=np.int64))
    with pytest.raises(DTypeError, match="GlobalAvgPool2d"):
        nn.GlobalAvgPool2d()(np.zeros((1, 1, 4, 4), dtype=np.int32))
    with pytest.raises(StateError, match="AvgPool2d"):
        nn.AvgPool2d(2).backward(np.zeros((1, 1, 2, 2)))


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 2, 6, 8), (1, 1, 2, 2), (2, 3, 7, 6), (40, 16, 28, 28)])
def test_max_pool_2x2_inference_path_matches_general_path(dtype, shape):
    """Without argmax, 2x2/stride-2 pooling of even sides takes a two-pass route; it must give
    what the window-by-window route gives, NaN and -inf included (odd sides fall back)."""
    from striate.functional import pool as P

    x = _input(shape, seed=3, dtype=dtype)
    x.flat[::17] = np.nan
    x.flat[5::23] = -np.inf
    kw = dict(kernel_size=(2, 2), stride=(2, 2))
    fast, cache = P.max_pool2d_forward(x, with_argmax=False, **kw)
    ref, _ = P.max_pool2d_forward(x, with_argmax=True, **kw)
    assert cache is None and fast.dtype == x.dtype and fast.shape == ref.shape
    np.testing.assert_array_equal(fast, ref)
    # by hand: the maximum of each 2x2 block (NaN wins, as in torch)
    oh, ow = shape[2] // 2, shape[3] // 2
    blocks = x[:, :, :2 * oh, :2 * ow].reshape(shape[0], shape[1], oh, 2, ow, 2)
    np.testing.assert_array_equal(fast, blocks.max(axis=(3, 5)))
    strided = np.asfortranarray(x)                                  # not C-contiguous
    np.testing.assert_array_equal(P.max_pool2d_forward(strided, with_argmax=False, **kw)[0], ref)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(2, 3, 4, 6), (3, 2, 16, 34), (1, 1, 2, 4), (5, 4, 28, 28)])
def test_compiled_2x2_max_pool_matches_the_numpy_kernel(dtype, shape, monkeypatch):
    """With llvmlite, training-mode 2x2 pooling runs one compiled pass each way; it must give
    the NumPy kernel's maxima, arg-max offsets (first on ties, NaN first) and gradients."""
    pytest.importorskip("llvmlite")
    from striate.functional import pool as P

    rng = np.random.default_rng(7)
    x = rng.integers(-2, 3, size=shape).astype(dtype)                # many ties
    x.flat[::13] = np.nan
    x.flat[4::29] = -np.inf
    x.flat[6::31] = np.inf
    x[..., 0, 0] = x[..., 1, 1] = np.nan                            # two NaNs in one window:
    x[..., 0, 3] = x[..., 1, 2] = np.nan                            # the first one's offset
    kw = dict(kernel_size=(2, 2), stride=(2, 2))
    y, cache = P.max_pool2d_forward(x, **kw)
    dy = rng.standard_normal(y.shape).astype(dtype)
    dx = P.max_pool2d_backward(dy, cache)
    monkeypatch.setenv("STRIATE_JIT", "0")
    y0, cache0 = P.max_pool2d_forward(x, **kw)
    np.testing.assert_array_equal(y, y0)
    np.testing.assert_array_equal(cache.arg, cache0.arg)
    np.testing.assert_array_equal(dx, P.max_pool2d_backward(dy, cache0))
