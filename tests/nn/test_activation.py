"""Activation layers and the erf/erfc special functions: PyTorch oracle, gradchecks, errors."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from striate import gradcheck, nn
from striate.errors import ConfigError, DTypeError, ShapeError, StateError
from striate.functional import softmax as FS
from striate.functional.special import erf, erfc
from tests.util import assert_close, compare_with_torch, torch_or_skip

DTYPES = [np.float64, np.float32]

# Large negative to large positive, with every kink (0, +-3, 6) exactly present.
VALUES = np.concatenate([
    [-1000.0, -50.0, -20.0, -6.0, -3.0, -1.0, -1e-3, 0.0, 1e-3, 1.0, 3.0, 6.0, 20.0, 50.0, 1000.0],
    np.linspace(-8.0, 8.0, 105),
])
X4 = VALUES.reshape(2, 3, 4, 5)

# (name, striate factory, torch factory name and args): same arguments on both sides.
CASES = [
    ("ReLU", lambda: nn.ReLU(), ("ReLU", ())),
    ("LeakyReLU", lambda: nn.LeakyReLU(), ("LeakyReLU", ())),
    ("LeakyReLU0.2", lambda: nn.LeakyReLU(0.2), ("LeakyReLU", (0.2,))),
    ("ELU", lambda: nn.ELU(), ("ELU", ())),
    ("ELU1.7", lambda: nn.ELU(1.7), ("ELU", (1.7,))),
    ("Sigmoid", lambda: nn.Sigmoid(), ("Sigmoid", ())),
    ("Tanh", lambda: nn.Tanh(), ("Tanh", ())),
    ("Softmax1", lambda: nn.Softmax(dim=1), ("Softmax", (1,))),
    ("Softmax-1", lambda: nn.Softmax(dim=-1), ("Softmax", (-1,))),
    ("LogSoftmax1", lambda: nn.LogSoftmax(dim=1), ("LogSoftmax", (1,))),
    ("LogSoftmax3", lambda: nn.LogSoftmax(dim=3), ("LogSoftmax", (3,))),
    ("ReLU6", lambda: nn.ReLU6(), ("ReLU6", ())),
    ("Hardswish", lambda: nn.Hardswish(), ("Hardswish", ())),
    ("GELU", lambda: nn.GELU(), ("GELU", ())),
    ("GELUtanh", lambda: nn.GELU(approximate="tanh"), ("GELU", ("tanh",))),
    ("Softplus", lambda: nn.Softplus(), ("Softplus", ())),
    ("Softplus2_5", lambda: nn.Softplus(beta=2.0, threshold=5.0), ("Softplus", (2.0, 5.0))),
    ("Softplus-0.5", lambda: nn.Softplus(beta=-0.5), ("Softplus", (-0.5,))),
]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("name,make,tspec", CASES, ids=[c[0] for c in CASES])
def test_matches_torch(name, make, tspec, dtype):
    torch = torch_or_skip()
    layer = make().to(dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")           # stable: no overflow warnings at |x| = 1000
        y = compare_with_torch(layer, getattr(torch.nn, tspec[0])(*tspec[1]), [X4], dtype)
    assert y.dtype == dtype and y.shape == X4.shape


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("num", [1, 3])
def test_prelu_matches_torch(num, dtype):
    torch = torch_or_skip()
    layer = nn.PReLU(num, init=0.1, dtype=dtype)
    layer.weight.data[...] = np.linspace(-0.5, 0.7, num)
    y = compare_with_torch(layer, torch.nn.PReLU(num), [X4], dtype)
    assert y.dtype == dtype
    assert layer.weight.grad is not None and np.any(layer.weight.grad != 0)


@pytest.mark.parametrize("shape", [(7,), (5, 4), (3, 4, 5), (2, 3, 4, 2)])
@pytest.mark.parametrize("cls", ["Softmax", "LogSoftmax"])
def test_softmax_implicit_dim_matches_torch(cls, shape):
    torch = torch_or_skip()
    x = np.random.default_rng(1).standard_normal(shape) * 5
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")            # torch warns about the implicit dim
        compare_with_torch(getattr(nn, cls)(), getattr(torch.nn, cls)(), [x], np.float64)
    expect = 0 if len(shape) in (1, 3) else 1
    assert FS.implicit_softmax_dim(len(shape)) == expect
    if cls == "Softmax":
        np.testing.assert_allclose(nn.Softmax()(x).sum(axis=expect), 1.0, rtol=1e-12)


def test_softmax_of_scalar_is_one():
    layer = nn.Softmax()
    y = layer(np.array(3.5))
    assert y.shape == () and y == 1.0
    assert layer.backward(np.array(2.0)) == 0.0


def _away_from_kinks(shape, seed=0, scale=4.0):
    x = np.random.default_rng(seed).uniform(-scale, scale, size=shape)
    for k in (0.0, -3.0, 3.0, 6.0):
        near = np.abs(x - k) < 1e-2
        x[near] += 0.05
    return x


GRAD_CASES = [(c[0], c[1]) for c in CASES] + [
    ("PReLU1", lambda: nn.PReLU()),
    ("PReLU3", lambda: nn.PReLU(3, init=-0.3)),
]


@pytest.mark.parametrize("name,make", GRAD_CASES, ids=[c[0] for c in GRAD_CASES])
def test_gradcheck(name, make):
    x = _away_from_kinks((2, 3, 2, 3), seed=len(name), scale=7.0)
    assert gradcheck(make(), x) < 1e-6


def test_relu_family_gradients_at_kinks():
    x = np.array([-3.0, 0.0, 3.0, 6.0])
    dy = np.ones(4)
    for layer, want in [(nn.ReLU(), [0, 0, 1, 1]), (nn.ReLU6(), [0, 0, 1, 0]),
                        (nn.LeakyReLU(0.1), [0.1, 0.1, 1, 1]), (nn.ELU(2.0), [2 * np.exp(-3), 2, 1, 1]),
                        (nn.Hardswish(), [0, 0.5, 1, 1])]:
        layer(x)
        np.testing.assert_allclose(layer.backward(dy), want, rtol=1e-15, err_msg=repr(layer))


@pytest.mark.parametrize("dtype", DTYPES)
def test_stable_at_extremes(dtype):
    x = np.array([-1e4, -800.0, 0.0, 800.0, 1e4], dtype=dtype)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        s = nn.Sigmoid()(x)
        sp = nn.Softplus(threshold=1e6)(x)
        sm = nn.Softmax(dim=0)(x)
        ls = nn.LogSoftmax(dim=0)(x)
        g = nn.GELU()(x)
    np.testing.assert_array_equal(s, np.array([0, 0, 0.5, 1, 1], dtype=dtype))
    np.testing.assert_allclose(sp, [0, 0, math.log(2), 800, 1e4], rtol=1e-6)
    np.testing.assert_allclose(sm, [0, 0, 0, 0, 1])
    assert ls[-1] == 0 and ls[0] == dtype(-2e4)
    np.testing.assert_array_equal(g, np.array([0, 0, 0, 800, 1e4], dtype=dtype))


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_dtype_follows_input(dtype):
    x = np.linspace(-2, 2, 120, dtype=dtype).reshape(2, 3, 4, 5)
    for _, make, _ in CASES:
        layer = make()
        assert layer(x).dtype == dtype, repr(layer)
        assert layer.backward(np.ones_like(x)).dtype == dtype, repr(layer)


def test_erf_matches_libm():
    rng = np.random.default_rng(0)
    x = np.concatenate([np.linspace(-7, 7, 4001), rng.standard_normal(2000) * 3,
                        np.linspace(-27, 27, 541), [0.0, 1e-300, 1e-8, 1.0, 2.0, 4.0, -4.0]])
    ref = np.array([math.erf(v) for v in x])
    nz = ref != 0
    assert np.max(np.abs(erf(x) - ref)[nz] / np.abs(ref[nz])) < 2e-15
    refc = np.array([math.erfc(v) for v in x])
    normal = refc > 1e-300                               # denormals carry fewer digits
    assert np.max(np.abs(erfc(x) - refc)[normal] / refc[normal]) < 2e-15
    assert np.max(np.abs(erfc(x) - refc)) < 1e-15


def test_erf_special_values():
    np.testing.assert_array_equal(erf([-np.inf, np.inf, 0.0, 50.0]), [-1.0, 1.0, 0.0, 1.0])
    np.testing.assert_array_equal(erfc([-np.inf, np.inf, 0.0, 50.0, 1e300]), [2.0, 0.0, 1.0, 0.0, 0.0])
    assert np.isnan(erf(np.nan)) and np.isnan(erfc(np.nan))
    assert erf(np.array(0.5)).shape == ()
    assert erf(np.float32(0.5)).dtype == np.float64


def test_gelu_exact_matches_formula():
    x = np.linspace(-10, 10, 201)
    want = np.array([v * 0.5 * math.erfc(-v / math.sqrt(2)) for v in x])
    assert_close(nn.GELU()(x), want, np.float64, "gelu", tol=1e-14)


# --------------------------------------------------------------------- errors
@pytest.mark.parametrize("make,needle", [
    (lambda: nn.LeakyReLU("a"), "'a'"),
    (lambda: nn.LeakyReLU(float("nan")), "nan"),
    (lambda: nn.ELU(alpha=None), "None"),
    (lambda: nn.GELU(approximate="fast"), "'fast'"),
    (lambda: nn.Softplus(beta=0), "beta"),
    (lambda: nn.Softplus(threshold=True), "True"),
    (lambda: nn.Softmax(dim=1.5), "1.5"),
    (lambda: nn.LogSoftmax(dim="1"), "'1'"),
    (lambda: nn.PReLU(0), "0"),
    (lambda: nn.PReLU(2.0), "2.0"),
    (lambda: nn.PReLU(init="x"), "'x'"),
])
def test_bad_arguments(make, needle):
    with pytest.raises(ConfigError) as info:
        make()
    assert needle in str(info.value)


def test_prelu_channel_mismatch():
    layer = nn.PReLU(3)
    with pytest.raises(ShapeError, match=r"PReLU expects input \(N, 3, \*\).*\(2, 4, 5\)"):
        layer(np.zeros((2, 4, 5), np.float32))
    with pytest.raises(ShapeError, match=r"received \(6,\)"):
        layer(np.zeros(6, np.float32))
    assert nn.PReLU(1)(np.zeros(6, np.float32)).shape == (6,)


def test_softmax_dim_out_of_range():
    with pytest.raises(ShapeError, match=r"Softmax expects .*dim=2.*\(3, 4\)"):
        nn.Softmax(dim=2)(np.zeros((3, 4)))
    with pytest.raises(ShapeError, match=r"LogSoftmax expects .*dim=-3"):
        nn.LogSoftmax(dim=-3)(np.zeros((3, 4)))


@pytest.mark.parametrize("make", [c[1] for c in CASES] + [lambda: nn.PReLU()])
def test_integer_input_refused(make):
    layer = make()
    with pytest.raises(DTypeError, match=type(layer).__name__):
        layer(np.arange(6).reshape(2, 3))


def test_backward_before_forward():
    with pytest.raises(StateError, match="GELU"):
        nn.GELU().backward(np.ones(3))


def test_inplace_accepted_and_input_untouched():
    x = np.linspace(-2, 2, 9)
    keep = x.copy()
    for layer in (nn.ReLU(inplace=True), nn.ReLU6(True), nn.LeakyReLU(0.1, True),
                  nn.ELU(1.0, True), nn.Hardswish(True)):
        assert layer.inplace is True
        layer(x)
        np.testing.assert_array_equal(x, keep)
    assert repr(nn.ReLU(inplace=True)) == "ReLU(inplace=True)"
    assert repr(nn.LeakyReLU()) == "LeakyReLU(negative_slope=0.01)"
    assert not isinstance(nn.ReLU6(), nn.ReLU) and not isinstance(nn.LogSoftmax(), nn.Softmax)
