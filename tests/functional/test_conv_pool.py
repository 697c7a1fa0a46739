"""Convolution + non-overlapping max-pooling as one strided GEMM (striate.functional.conv_pool)."""

import numpy as np
import pytest

import striate
from striate import nn
from striate.functional import conv_pool as CP
from striate.functional.conv import conv2d_forward
from striate.functional.pool import max_pool2d_forward
from tests.nn.test_fusion import _both, _randomise_bn


@pytest.fixture(autouse=True)
def _numpy_routes_only(monkeypatch):
    """The strided-GEMM route is the NumPy routes' (fused inference takes the compiled kernels first)."""
    monkeypatch.setenv("STRIATE_JIT", "0")


def _reference(x, w, b, pads, k):
    y, _ = conv2d_forward(x, w, b, padding=pads, algorithm="im2col")
    return max_pool2d_forward(y, kernel_size=(k, k), stride=(k, k), with_argmax=False)[0]


@pytest.mark.parametrize("k", [2, 3])
@pytest.mark.parametrize("shape,kernel,pads", [
    ((4, 1, 12, 12), (5, 5), ((2, 2), (2, 2))),
    ((3, 3, 11, 9), (3, 3), ((1, 0), (2, 1))),       # odd sides: floor drops the last row/column
    ((2, 2, 7, 8), (2, 3), ((0, 0), (0, 0))),
])
def test_matches_conv_then_pool(k, shape, kernel, pads):
    rng = np.random.default_rng(1)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((5, shape[1]) + kernel)
    b = rng.standard_normal(5)
    for bias in (b, None):
        ref = _reference(x, w, bias, pads, k)
        got = CP.conv2d_max_pool_infer(x, w, bias, padding=pads, k=k)
        assert got.shape == ref.shape and got.dtype == np.float64
        np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)


def test_float32_slices_and_nan(monkeypatch):
    rng = np.random.default_rng(2)
    x = rng.standard_normal((9, 2, 8, 8)).astype(np.float32)
    x[3, 1, 4, 4] = np.nan
    x[6, 0, 0, 7] = np.inf
    x[7, 1, 2, 2] = -np.inf
    w = rng.standard_normal((4, 2, 3, 3)).astype(np.float32)
    b = rng.standard_normal(4).astype(np.float32)
    monkeypatch.setattr(CP, "SLICE_BYTES", 1)                    # one image a slice
    got = CP.conv2d_max_pool_infer(x, w, b, padding=((1, 1), (1, 1)), k=2)
    ref = _reference(x, w, b, ((1, 1), (1, 1)), 2)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(np.isnan(got), np.isnan(ref))
    np.testing.assert_array_equal(np.isinf(got), np.isinf(ref))
    assert np.isnan(got[3]).any() and np.isinf(got[6]).any()     # as conv then pool: no NaN from 0 * inf
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-5)


def test_tiled_weight_shifts_the_kernel_to_each_window_offset():
    w = np.arange(2 * 1 * 2 * 2, dtype=np.float64).reshape(2, 1, 2, 2) + 1
    wt = CP.pool_tiled_weight(w, 2).reshape(2, 2, 2, 1, 3, 3)   # (p, q, O, C, 3, 3)
    np.testing.assert_array_equal(wt[1, 0, 1, 0], [[0, 0, 0], [5, 6, 0], [7, 8, 0]])
    np.testing.assert_array_equal(wt[0, 1, 0, 0], [[0, 1, 2], [0, 3, 4], [0, 0, 0]])
    assert wt.sum() == 4 * w.sum()


def test_fits_only_few_column_rows():
    assert CP.conv2d_max_pool_fits((16, 1, 5, 5), 2)
    assert CP.conv2d_max_pool_fits((64, 3, 3, 3), 2)
    assert not CP.conv2d_max_pool_fits((16, 16, 3, 3), 2)        # 144 rows: arithmetic-bound
    assert not CP.conv2d_max_pool_fits((16, 1, 5, 5), 1)


def _count_calls(monkeypatch):
    from striate.nn import fusion

    calls = []
    original = fusion.conv2d_max_pool_infer
    monkeypatch.setattr(fusion, "conv2d_max_pool_infer",
                        lambda *a, **kw: (calls.append(kw["k"]), original(*a, **kw))[1])
    return calls


@pytest.mark.parametrize("pool,taken", [
    (nn.MaxPool2d(2), True),
    (nn.MaxPool2d(3), True),
    (nn.MaxPool2d(2, ceil_mode=True), False),
    (nn.MaxPool2d(2, padding=1), False),
    (nn.MaxPool2d(3, stride=2), False),                           # overlapping windows
    (nn.MaxPool2d((2, 3)), False),
])
def test_fused_inference_takes_the_route_only_where_it_is_exact(pool, taken, monkeypatch):
    calls = _count_calls(monkeypatch)
    rng = np.random.default_rng(3)
    model = nn.Sequential(nn.Conv2d(1, 6, 5, padding=2, dtype=np.float64, rng=rng),
                          nn.BatchNorm2d(6, dtype=np.float64), nn.ReLU(), pool, nn.Flatten())
    _randomise_bn(model, rng)
    unfused, fused = _both(model, rng.standard_normal((7, 1, 13, 13)))
    np.testing.assert_allclose(fused, unfused, rtol=1e-12, atol=1e-12)
    assert bool(calls) == taken


def test_fused_inference_skips_the_route_for_strided_grouped_or_dilated_convs(monkeypatch):
    calls = _count_calls(monkeypatch)
    rng = np.random.default_rng(4)
    for conv in (nn.Conv2d(2, 4, 3, stride=2, padding=1, rng=rng), nn.Conv2d(2, 4, 3, groups=2, rng=rng),
                 nn.Conv2d(2, 4, 3, dilation=2, padding=2, rng=rng)):
        model = nn.Sequential(conv, nn.ReLU(), nn.MaxPool2d(2)).eval()
        x = rng.standard_normal((3, 2, 12, 12)).astype(np.float32)
        unfused = model(x)                   # grad enabled: every layer on its own
        with striate.no_grad():
            np.testing.assert_allclose(model(x), unfused, rtol=1e-5, atol=1e-5)
    assert calls == []
