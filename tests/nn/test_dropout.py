"""Dropout and Dropout2d: mask statistics, exact backward, eval identity, determinism, errors.

Random masks cannot be compared with PyTorch's value for value; torch's
semantics are checked indirectly (values kept are x / (1 - p), eval is the
identity, channel masks are per (n, c)).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

import striate
from striate import gradcheck, nn
from striate.errors import ConfigError, DTypeError, ShapeError, StateError
from striate.functional import dropout as FD

DTYPES = [np.float64, np.float32]


def _fraction_bound(p: float, n: int) -> float:
    """Six standard deviations of the dropped fraction of n Bernoulli(p) draws."""
    return 6 * math.sqrt(p * (1 - p) / n)


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_statistics(p):
    x = np.ones((200, 500))
    y = nn.Dropout(p, rng=np.random.default_rng(1))(x)
    dropped = np.mean(y == 0)
    assert abs(dropped - p) < _fraction_bound(p, x.size)
    assert abs(y.mean() - 1.0) < _fraction_bound(p, x.size) / (1 - p)   # mean preserved
    kept = y[y != 0]
    np.testing.assert_array_equal(kept, np.full(kept.shape, 1 / (1 - p)))


@pytest.mark.parametrize("dtype", DTYPES)
def test_dropout_scale_and_exact_backward(dtype):
    rng = np.random.default_rng(2)
    x = (rng.uniform(0.5, 2.0, (4, 6, 5)) * rng.choice([-1, 1], (4, 6, 5))).astype(dtype)
    layer = nn.Dropout(0.3, rng=3)
    y = layer(x)
    assert y.dtype == dtype
    keep = y != 0                                      # x has no zeros
    assert 0 < keep.mean() < 1
    np.testing.assert_array_equal(y[keep], (x * dtype(1 / 0.7))[keep])
    dy = rng.standard_normal(x.shape).astype(dtype)
    dx = layer.backward(dy)
    assert dx.dtype == dtype
    np.testing.assert_array_equal(dx, np.where(keep, dy * dtype(1 / 0.7), 0))


def test_dropout_scale_matches_torch():
    torch = pytest.importorskip("torch")
    p = 0.3
    ty = torch.nn.Dropout(p)(torch.ones(2000, dtype=torch.float64)).numpy()
    y = nn.Dropout(p, rng=4)(np.ones(2000))
    np.testing.assert_allclose(np.unique(ty[ty != 0]), np.unique(y[y != 0]), rtol=1e-15)
    tmod = torch.nn.Dropout(p).eval()
    xt = torch.randn(5, 4, dtype=torch.float64)
    np.testing.assert_array_equal(tmod(xt).numpy(), nn.Dropout(p).eval()(xt.numpy()))


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
def test_eval_is_identity(cls):
    x = np.random.default_rng(5).standard_normal((2, 3, 4, 4))
    layer = cls(0.6, rng=0).eval()
    y = layer(x)
    np.testing.assert_array_equal(y, x)
    dy = np.random.default_rng(6).standard_normal(x.shape)
    np.testing.assert_array_equal(layer.backward(dy), dy)


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
def test_zero_p_is_identity_in_training(cls):
    x = np.random.default_rng(7).standard_normal((2, 3, 4))
    layer = cls(0.0)
    np.testing.assert_array_equal(layer(x), x)
    np.testing.assert_array_equal(layer.backward(x), x)


@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
def test_determinism_with_seeded_generator(cls):
    x = np.ones((4, 8, 3, 3))
    a = cls(0.5, rng=np.random.default_rng(11))(x)
    b = cls(0.5, rng=np.random.default_rng(11))(x)
    c = cls(0.5, rng=np.random.default_rng(12))(x)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    layer = cls(0.5, rng=13)
    assert not np.array_equal(layer(x), layer(x))       # fresh mask each call


def test_default_generator_follows_manual_seed():
    layer = nn.Dropout(0.5)                              # built before seeding
    x = np.ones(1000)
    striate.manual_seed(21)
    a = layer(x)
    striate.manual_seed(21)
    b = layer(x)
    np.testing.assert_array_equal(a, b)
    assert layer.rng is striate.default_generator()
    layer.rng = np.random.default_rng(3)
    assert layer.rng is not striate.default_generator()


@pytest.mark.parametrize("shape", [(6, 40, 5, 5), (6, 40, 7)])
def test_dropout2d_zeroes_whole_channels(shape):
    rng = np.random.default_rng(8)
    x = rng.uniform(0.5, 1.5, shape)
    p = 0.4
    layer = nn.Dropout2d(p, rng=9)
    y = layer(x)
    axes = tuple(range(2, len(shape)))
    zero = np.all(y == 0, axis=axes)                     # (N, C)
    whole = np.all(y != 0, axis=axes)
    assert np.all(zero | whole)                          # each map all kept or all dropped
    assert abs(zero.mean() - p) < _fraction_bound(p, zero.size)
    np.testing.assert_allclose(y[y != 0], (x / (1 - p))[y != 0], rtol=1e-15)
    dy = rng.standard_normal(shape)
    keep = whole.reshape(whole.shape + (1,) * len(axes))
    np.testing.assert_array_equal(layer.backward(dy), np.where(keep, dy / (1 - p), 0))


@pytest.mark.parametrize("make,shape", [
    (lambda: nn.Dropout(0.4, rng=1), (3, 4, 2)),
    (lambda: nn.Dropout2d(0.4, rng=2), (3, 4, 2, 2)),
])
def test_gradcheck_replays_mask(make, shape):
    x = np.random.default_rng(3).standard_normal(shape)
    assert gradcheck(make(), x) < 1e-6


def test_kernels_directly():
    x = np.arange(1.0, 13.0).reshape(2, 3, 2)
    y, cache = FD.channel_dropout_forward(x, p=0.5, rng=np.random.default_rng(0))
    assert cache.keep.shape == (2, 3, 1) and cache.scale == 2.0
    np.testing.assert_array_equal(y, x * cache.keep * 2.0)
    np.testing.assert_array_equal(FD.dropout_backward(np.ones_like(x), cache), cache.keep * 2.0 * np.ones_like(x))


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("cls", [nn.Dropout, nn.Dropout2d])
@pytest.mark.parametrize("p", [-0.1, 1, 1.0, 1.5, "0.5", True, None])
def test_bad_p(cls, p):
    with pytest.raises(ConfigError) as info:
        cls(p)
    msg = str(info.value)
    assert cls.__name__ in msg and "p must be" in msg and repr(p) in msg


def test_bad_rng():
    with pytest.raises(ConfigError, match="rng"):
        nn.Dropout(0.5, rng="seed")


@pytest.mark.parametrize("shape", [(5, 4), (2, 3, 4, 5, 6)])
def test_dropout2d_bad_rank(shape):
    with pytest.raises(ShapeError, match=r"Dropout2d expects input \(N, C, H, W\) or \(N, C, L\); received "
                       + str(shape).replace("(", r"\(").replace(")", r"\)")):
        nn.Dropout2d()(np.zeros(shape))


def test_dropout_dtype_and_state_errors():
    with pytest.raises(DTypeError, match="Dropout"):
        nn.Dropout()(np.ones((2, 3), np.int32))
    with pytest.raises(StateError, match="Dropout2d"):
        nn.Dropout2d().backward(np.ones((1, 2, 3, 3)))


def test_repr():
    assert repr(nn.Dropout()) == "Dropout(p=0.5, inplace=False)"
    assert repr(nn.Dropout2d(0.2, inplace=True)) == "Dropout2d(p=0.2, inplace=True)"
