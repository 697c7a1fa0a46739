"""Batch norm fused with ReLU (and a residual): functional.norm_relu and BatchNorm2d.forward_relu.

The compiled path (llvmlite) is checked against the unfused NumPy path, PyTorch and
central differences; the NumPy path (STRIATE_JIT=0) against the same references.
"""

from __future__ import annotations

import numpy as np
import pytest

from striate import gradcheck, nn
from striate.errors import ShapeError, StateError
from striate.functional import _jit
from striate.functional import activation as A
from striate.functional import norm as N
from striate.functional import norm_relu as R
from tests.util import assert_close, to_torch, torch_or_skip

ROUTES = ["compiled", "numpy"]


@pytest.fixture(params=ROUTES)
def route(request, monkeypatch):
    if request.param == "compiled" and not _jit.jit_available():
        pytest.skip("llvmlite is not installed (the compiled kernels)")
    if request.param == "numpy":
        monkeypatch.setenv("STRIATE_JIT", "0")
    return request.param


def _data(dtype, seed=0, shape=(3, 4, 5, 7)):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(shape).astype(dtype)
    r = rng.standard_normal(shape).astype(dtype)
    w = rng.uniform(0.5, 1.5, shape[1]).astype(dtype)
    b = rng.standard_normal(shape[1]).astype(dtype)
    dy = rng.standard_normal(shape).astype(dtype)
    return x, r, w, b, dy


def _unfused(x, w, b, r, dy):
    """batch norm, add, relu one after the other: outputs and gradients (dx, dr, dw, db)."""
    _, mean, var = N.batch_centred_moments(x)
    y, c = N.batch_norm_forward(x, mean, var, w, b)
    if r is not None:
        y = y + r
    y, m = A.relu_forward(y)
    g = A.relu_backward(dy, m)
    dx, dw, db = N.batch_norm_backward(g, c)
    return y, dx, (g if r is not None else None), dw, db


def _fused(x, w, b, r, dy):
    _, mean, var = N.batch_centred_moments(x)
    y, cache = R.batch_norm_relu_forward(x, mean, var, w, b, residual=r)
    return (y, *R.batch_norm_relu_backward(dy, cache)), cache


@pytest.mark.parametrize("residual", [False, True])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_fused_equals_the_three_operations(route, dtype, residual):
    x, r, w, b, dy = _data(dtype)
    got, cache = _fused(x, w, b, r if residual else None, dy)
    want = _unfused(x, w, b, r if residual else None, dy)
    for name, a, e in zip(("y", "dx", "dresidual", "dweight", "dbias"), got, want):
        if e is None:
            assert a is None, name
        else:
            assert a.dtype == dtype and a.shape == e.shape, name
            assert_close(a, e, dtype, name)
    # the compiled path without a residual keeps no mask: it recomputes it
    kept_mask = cache.mask is not None
    assert kept_mask == (route == "numpy" or residual)
    assert (got[0] > 0).mean() > 0.3 and (got[0] == 0).mean() > 0.2     # both sides of the ReLU


@pytest.mark.parametrize("residual", [False, True])
def test_matches_torch_float64(route, residual):
    torch = torch_or_skip()
    x, r, w, b, dy = _data(np.float64, seed=1, shape=(4, 3, 6, 6))
    (y, dx, dr, dw, db), _ = _fused(x, w, b, r if residual else None, dy)
    tx, tr, tw, tb = to_torch(x), to_torch(r), to_torch(w), to_torch(b)
    ty = torch.nn.functional.batch_norm(tx, None, None, tw, tb, training=True, eps=1e-5)
    if residual:
        ty = ty + tr
    ty = torch.relu(ty)
    ty.backward(torch.from_numpy(dy))
    assert_close(y, ty.detach().numpy(), what="y")
    assert_close(dx, tx.grad.numpy(), what="dx")
    assert_close(dw, tw.grad.numpy(), what="dweight")
    assert_close(db, tb.grad.numpy(), what="dbias")
    if residual:
        assert_close(dr, tr.grad.numpy(), what="dresidual")


@pytest.mark.parametrize("residual", [False, True])
def test_finite_differences(route, residual):
    x, r, w, b, _ = _data(np.float64, seed=2, shape=(3, 2, 4, 5))

    def fn(x, w, b, r):
        _, mean, var = N.batch_centred_moments(x)
        return R.batch_norm_relu_forward(x, mean, var, w, b, residual=r if residual else None)

    def backward(dy, cache):
        dx, dr, dw, db = R.batch_norm_relu_backward(dy, cache)
        return dx, dw, db, dr

    assert gradcheck(fn, x, w, b, r, backward=backward) < 1e-6


def test_running_statistics_and_no_affine(route):
    x, _, _, _, dy = _data(np.float32, seed=3)
    mean = np.linspace(-0.5, 0.5, 4).astype(np.float32)
    var = np.linspace(0.5, 2.0, 4).astype(np.float32)
    y, cache = R.batch_norm_relu_forward(x, mean, var, None, None, batch_stats=False)
    ref = np.maximum((x - mean[:, None, None]) / np.sqrt(var[:, None, None] + 1e-5), 0)
    assert_close(y, ref, np.float32, "y")
    dx, dr, dw, db = R.batch_norm_relu_backward(dy, cache)
    assert dr is None and dw is None and db is None
    assert_close(dx, dy * (ref > 0) / np.sqrt(var[:, None, None] + 1e-5), np.float32, "dx")


def test_relu_keeps_nan_and_masks_its_gradient(route):
    x = np.array([[[1.0, np.nan, -1.0, 2.0]]], dtype=np.float32).repeat(2, axis=0)   # (2, 1, 4)
    mean, var = np.zeros(1, np.float32), np.ones(1, np.float32)
    for residual in (None, np.zeros_like(x)):
        y, cache = R.batch_norm_relu_forward(x, mean, var, None, None, batch_stats=False,
                                             residual=residual)
        assert np.isnan(y[:, 0, 1]).all() and (y[:, 0, 2] == 0).all() and (y[:, 0, 0] > 0).all()
        dx = R.batch_norm_relu_backward(np.ones_like(x), cache)[0]
        np.testing.assert_array_equal(dx[:, 0, 2], 0.0)                # masked: pre <= 0
        np.testing.assert_array_equal(dx[:, 0, [0, 3]], 1.0 / np.sqrt(np.float32(1 + 1e-5)))


def test_kernel_switched_off_between_forward_and_backward(monkeypatch):
    if not _jit.jit_available():
        pytest.skip("llvmlite is not installed (the compiled kernels)")
    x, _, w, b, dy = _data(np.float32, seed=4)
    (y, dx, _, dw, db), cache = _fused(x, w, b, None, dy)
    assert cache.pre is not None
    monkeypatch.setenv("STRIATE_JIT", "0")
    dx2, _, dw2, db2 = R.batch_norm_relu_backward(dy, cache)
    assert_close(dx2, dx, np.float32, "dx")
    assert_close(dw2, dw, np.float32, "dweight")


def test_residual_of_another_shape_is_refused(route):
    x, r, w, b, _ = _data(np.float32)
    _, mean, var = N.batch_centred_moments(x)
    with pytest.raises(ShapeError, match=r"residual \(3, 4, 5, 6\) must have the input's shape \(3, 4, 5, 7\)"):
        R.batch_norm_relu_forward(x, mean, var, w, b, residual=r[..., :6])
    bn = nn.BatchNorm2d(4)
    with pytest.raises(ShapeError, match="BatchNorm2d.*residual"):
        bn.forward_relu(x, r[:2])
    assert int(bn.num_batches_tracked) == 0 and not bn.running_mean.any()   # nothing updated


def test_layer_forward_relu_matches_layer_then_relu(route):
    x, r, _, _, dy = _data(np.float32, seed=5)
    fused, plain = nn.BatchNorm2d(4), nn.BatchNorm2d(4)
    for layer in (fused, plain):
        layer.weight.data[:] = np.linspace(0.5, 1.5, 4)
        layer.bias.data[:] = np.linspace(-0.2, 0.2, 4)
    y = fused.forward_relu(x, r)
    y_ref, m = A.relu_forward(plain(x) + r)
    assert_close(y, y_ref, np.float32, "y")
    assert_close(fused.running_mean, plain.running_mean, np.float32, "running mean")
    dx, dr = fused.backward_relu(dy)
    g = A.relu_backward(dy, m)
    assert_close(dx, plain.backward(g), np.float32, "dx")
    assert_close(dr, g, np.float32, "dresidual")
    assert_close(fused.weight.grad, plain.weight.grad, np.float32, "dweight")


def test_layer_backward_must_match_its_forward():
    bn = nn.BatchNorm2d(4)
    x = np.random.default_rng(0).standard_normal((2, 4, 3, 3)).astype(np.float32)
    bn.forward_relu(x)
    with pytest.raises(StateError, match="backward_relu"):
        bn.backward(x)
    bn(x)
    with pytest.raises(StateError, match="forward_relu"):
        bn.backward_relu(x)
