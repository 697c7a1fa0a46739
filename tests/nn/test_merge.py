"""Merge layers (Concat, Add, Mul): PyTorch oracle, finite differences, errors."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate.errors import ConfigError, DTypeError, ShapeError, StateError
from striate.nn import Add, Concat, Mul
from tests.util import compare_with_torch, torch_or_skip


def _torch_merge(kind: str, dim: int = 1):
    torch = torch_or_skip()

    class TorchMerge(torch.nn.Module):
        def forward(self, *xs):
            if kind == "cat":
                return torch.cat(xs, dim)
            out = xs[0]
            for x in xs[1:]:
                out = out + x if kind == "add" else out * x
            return out

    return TorchMerge()


def _inputs(shapes, seed=0):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in shapes]


CAT_CASES = [
    (1, [(2, 3, 4, 4), (2, 5, 4, 4)]),
    (1, [(2, 1, 3, 3), (2, 2, 3, 3), (2, 4, 3, 3)]),
    (0, [(1, 3, 2, 2), (3, 3, 2, 2)]),
    (-1, [(2, 3, 2), (2, 3, 5)]),
    (2, [(2, 3, 1, 4), (2, 3, 6, 4)]),
    (1, [(4, 7)]),
]


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("dim,shapes", CAT_CASES)
def test_concat_matches_torch(dim, shapes, dtype):
    layer = Concat(dim=dim)
    y = compare_with_torch(layer, _torch_merge("cat", dim), _inputs(shapes), dtype)
    assert y.shape[dim] == sum(s[dim] for s in shapes)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind,cls", [("add", Add), ("mul", Mul)])
@pytest.mark.parametrize("k,shape", [(1, (2, 3)), (2, (2, 3, 4, 4)), (3, (1, 2, 3, 3)), (4, (5,))])
def test_add_mul_match_torch(kind, cls, k, shape, dtype):
    compare_with_torch(cls(), _torch_merge(kind), _inputs([shape] * k, seed=k), dtype)


def test_concat_backward_returns_exact_slices():
    a, b = np.ones((1, 2, 2, 2)), np.zeros((1, 3, 2, 2))
    layer = Concat()
    y = layer(a, b)
    dy = np.arange(y.size, dtype=np.float64).reshape(y.shape)
    da, db = layer.backward(dy)
    np.testing.assert_array_equal(da, dy[:, :2])
    np.testing.assert_array_equal(db, dy[:, 2:])


def test_add_gradients_are_independent_arrays():
    layer = Add()
    layer(np.ones((2, 2)), np.ones((2, 2)))
    g0, g1 = layer.backward(np.full((2, 2), 3.0))
    np.testing.assert_array_equal(g1, np.full((2, 2), 3.0))
    g0[...] = -1.0   # a consumer editing its gradient in place must not touch the other
    np.testing.assert_array_equal(g1, np.full((2, 2), 3.0))


def test_mul_with_zeros_is_exact():
    x0 = np.array([[0.0, 2.0]])
    x1 = np.array([[3.0, 0.0]])
    x2 = np.array([[5.0, 7.0]])
    layer = Mul()
    np.testing.assert_array_equal(layer(x0, x1, x2), [[0.0, 0.0]])
    g0, g1, g2 = layer.backward(np.ones((1, 2)))
    np.testing.assert_array_equal(g0, [[15.0, 0.0]])
    np.testing.assert_array_equal(g1, [[0.0, 14.0]])
    np.testing.assert_array_equal(g2, [[0.0, 0.0]])


@pytest.mark.parametrize("layer,shapes", [
    (Concat(1), [(2, 2, 3, 3), (2, 3, 3, 3), (2, 1, 3, 3)]),
    (Concat(-2), [(2, 2, 3), (2, 4, 3)]),
    (Add(), [(2, 3, 4)] * 3),
    (Mul(), [(2, 3, 4)] * 3),
])
def test_gradcheck(layer, shapes):
    err = striate.gradcheck(layer, *_inputs(shapes, seed=3))
    assert err < 1e-7


def test_dtype_follows_inputs():
    y = Add()(np.ones((2, 2), np.float32), np.ones((2, 2), np.float32))
    assert y.dtype == np.float32
    y = Concat()(np.ones((1, 1), np.float32), np.ones((1, 2), np.float64))
    assert y.dtype == np.float64


def test_add_shape_mismatch_names_both_shapes():
    with pytest.raises(ShapeError, match=r"Add.*\(2, 3\).*\(3, 2\)"):
        Add()(np.ones((2, 3)), np.ones((3, 2)))


def test_mul_shape_mismatch():
    with pytest.raises(ShapeError, match=r"Mul.*\(2, 3\).*input 2 of shape \(2, 4\)"):
        Mul()(np.ones((2, 3)), np.ones((2, 3)), np.ones((2, 4)))


def test_concat_mismatch_off_axis():
    with pytest.raises(ShapeError, match=r"Concat.*every axis but 1.*\(2, 3, 4, 4\).*\(2, 3, 5, 4\)"):
        Concat(1)(np.ones((2, 3, 4, 4)), np.ones((2, 3, 5, 4)))
    with pytest.raises(ShapeError, match=r"\(2, 3\).*\(2, 3, 1\)"):
        Concat(1)(np.ones((2, 3)), np.ones((2, 3, 1)))


def test_concat_dim_out_of_range():
    with pytest.raises(ShapeError, match=r"dim 4 is out of range.*\(2, 3\)"):
        Concat(4)(np.ones((2, 3)), np.ones((2, 3)))


def test_bad_config_and_inputs():
    with pytest.raises(ConfigError, match="1.5"):
        Concat(dim=1.5)
    with pytest.raises(ConfigError, match="True"):
        Concat(dim=True)
    with pytest.raises(ShapeError, match="at least 1 input.*received 0"):
        Add()()
    with pytest.raises(DTypeError, match="Concat.*int64"):
        Concat()(np.ones((1, 2), dtype=np.int64), np.ones((1, 2)))
    with pytest.raises(StateError, match="Add.*backward"):
        Add().backward(np.ones(2))
