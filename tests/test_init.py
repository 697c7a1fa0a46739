"""striate.init: gains, fans and the distributions of every initialiser (against torch.nn.init)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import striate
from striate import init, nn
from striate.errors import ConfigError
from striate.nn.parameter import Parameter
from tests.util import torch_or_skip

SHAPE = (128, 64, 3, 3)                 # 73,728 values: moments to well under 1 %
FAN_IN, FAN_OUT = 64 * 9, 128 * 9

NONLINEARITIES = ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                  "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu")


def test_calculate_gain_matches_torch():
    torch = torch_or_skip()
    for name in NONLINEARITIES:
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name), rel=1e-15)
    for slope in (0, 0.2, math.sqrt(5), 3):
        assert init.calculate_gain("leaky_relu", slope) == \
            pytest.approx(torch.nn.init.calculate_gain("leaky_relu", slope), rel=1e-15)


def test_calculate_gain_values():
    assert init.calculate_gain("relu") == pytest.approx(math.sqrt(2))
    assert init.calculate_gain("tanh") == pytest.approx(5 / 3)
    assert init.calculate_gain("leaky_relu") == pytest.approx(math.sqrt(2 / (1 + 0.01 ** 2)))
    assert init.calculate_gain("leaky_relu", math.sqrt(5)) == pytest.approx(math.sqrt(1 / 3))
    with pytest.raises(ConfigError, match="unsupported nonlinearity 'swish'"):
        init.calculate_gain("swish")
    with pytest.raises(ConfigError, match="negative_slope.*'steep'"):
        init.calculate_gain("leaky_relu", "steep")


@pytest.mark.parametrize("shape", ((7, 3), (8, 3, 5, 5), (2, 6, 7), (4, 2, 3, 1, 2), (1, 1)))
def test_fan_in_and_fan_out(shape):
    rf = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    assert init.fan_in_and_fan_out(shape) == (shape[1] * rf, shape[0] * rf)
    torch = torch_or_skip()
    assert init.fan_in_and_fan_out(shape) == torch.nn.init._calculate_fan_in_and_fan_out(torch.empty(shape))


def test_fan_needs_two_dimensions():
    with pytest.raises(ConfigError, match="at least 2 dimensions; received shape \\(5,\\)"):
        init.fan_in_and_fan_out((5,))
    with pytest.raises(ConfigError, match="at least 2"):
        init.xavier_uniform_(np.zeros(5))


# (our function, torch's, kwargs, "uniform"/"normal", the bound (uniform) or std (normal))
CASES = [
    ("xavier_uniform_", dict(), "uniform", math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("xavier_uniform_", dict(gain=2.5), "uniform", 2.5 * math.sqrt(6 / (FAN_IN + FAN_OUT))),
    ("xavier_normal_", dict(gain=0.7), "normal", 0.7 * math.sqrt(2 / (FAN_IN + FAN_OUT))),
    ("kaiming_uniform_", dict(), "uniform", math.sqrt(2) * math.sqrt(3 / FAN_IN)),
    ("kaiming_uniform_", dict(a=math.sqrt(5)), "uniform", 1 / math.sqrt(FAN_IN)),
    ("kaiming_uniform_", dict(mode="fan_out", nonlinearity="relu"), "uniform", math.sqrt(6 / FAN_OUT)),
    ("kaiming_uniform_", dict(mode="FAN_OUT", nonlinearity="tanh"), "uniform", 5 / 3 * math.sqrt(3 / FAN_OUT)),
    ("kaiming_normal_", dict(), "normal", math.sqrt(2 / FAN_IN)),
    ("kaiming_normal_", dict(a=0.2, mode="fan_out"), "normal", math.sqrt(2 / 1.04) / math.sqrt(FAN_OUT)),
    ("kaiming_normal_", dict(nonlinearity="linear"), "normal", 1 / math.sqrt(FAN_IN)),
    ("uniform_", dict(a=-0.3, b=0.3), "uniform", 0.3),
    ("normal_", dict(mean=0.0, std=0.05), "normal", 0.05),
]
IDS = [f"{c[0]}{i}" for i, c in enumerate(CASES)]


def _check_distribution(w: np.ndarray, kind: str, scale: float) -> None:
    """Moments and bounds of a sample of U(-scale, scale) or N(0, scale^2)."""
    n = w.size
    if kind == "uniform":
        assert np.abs(w).max() <= scale
        assert np.abs(w).max() > 0.999 * scale                           # the bound is reached
        assert w.std() == pytest.approx(scale / math.sqrt(3), rel=0.01)
        assert abs(w.mean()) < 5 * scale / math.sqrt(3 * n)
    else:
        assert w.std() == pytest.approx(scale, rel=0.01)
        assert abs(w.mean()) < 5 * scale / math.sqrt(n)
        assert np.mean(np.abs(w) < scale) == pytest.approx(0.6827, abs=0.01)   # it is Gaussian
        assert np.abs(w).max() > 3.5 * scale                              # with Gaussian tails


@pytest.mark.parametrize("fn,kw,kind,scale", CASES, ids=IDS)
def test_distribution_matches_formula(fn, kw, kind, scale):
    w = np.empty(SHAPE, dtype=np.float64)
    out = getattr(init, fn)(w, **kw, rng=np.random.default_rng(0))
    assert out is w
    _check_distribution(w, kind, scale)


@pytest.mark.parametrize("fn,kw,kind,scale", CASES, ids=IDS)
def test_distribution_matches_torch(fn, kw, kind, scale):
    torch = torch_or_skip()
    t = torch.empty(SHAPE, dtype=torch.float64)
    getattr(torch.nn.init, fn)(t, **kw, generator=torch.Generator().manual_seed(0))
    tw = t.numpy()
    w = getattr(init, fn)(np.empty(SHAPE), **kw, rng=np.random.default_rng(0))
    assert w.std() == pytest.approx(tw.std(), rel=0.02)
    if kind == "uniform":
        assert np.abs(w).max() == pytest.approx(np.abs(tw).max(), rel=1e-3)
        assert w.min() == pytest.approx(tw.min(), rel=1e-3)


def test_default_layer_init_matches_torch_layers():
    torch = torch_or_skip()
    cases = ((nn.Linear(300, 40, rng=0), torch.nn.Linear(300, 40)),
             (nn.Conv2d(16, 32, 3, rng=0), torch.nn.Conv2d(16, 32, 3)),
             (nn.Conv1d(12, 24, 5, groups=3, rng=0), torch.nn.Conv1d(12, 24, 5, groups=3)))
    for ours, theirs in cases:
        for name, p in ours.named_parameters():
            tp = dict(theirs.named_parameters())[name].detach().numpy()
            fan_in = ours.weight.data[0].size
            bound = 1 / math.sqrt(fan_in)
            assert np.abs(p.data).max() <= bound and np.abs(tp).max() <= bound + 1e-7
            assert np.abs(p.data).max() > 0.5 * bound and np.abs(tp).max() > 0.5 * bound
            if p.data.size > 1000:                                    # both fill U(-bound, bound)
                assert np.abs(p.data).max() == pytest.approx(np.abs(tp).max(), rel=0.01)
                assert p.data.std() == pytest.approx(tp.std(), rel=0.05)
                assert p.data.std() == pytest.approx(bound / math.sqrt(3), rel=0.03)


def test_default_layer_init_with_a_seed_draws_weight_and_bias_independently():
    w, b = Parameter(np.empty((50, 20))), Parameter(np.empty(20))
    init.default_layer_init_(w, b, 20, rng=0)
    # both bounds are 1/sqrt(20): with a seed re-used per call, b would equal w's first row
    assert not np.allclose(b.data, w.data.reshape(-1)[:20])
    w2, b2 = Parameter(np.empty((50, 20))), Parameter(np.empty(20))
    init.default_layer_init_(w2, b2, 20, rng=0)
    assert np.array_equal(w.data, w2.data) and np.array_equal(b.data, b2.data)


def test_seeding_dtype_and_parameters():
    a = init.kaiming_normal_(np.empty((6, 4), np.float32), rng=np.random.default_rng(5))
    b = init.kaiming_normal_(np.empty((6, 4), np.float32), rng=5)
    assert a.dtype == np.float32 and np.array_equal(a, b)
    striate.manual_seed(11)
    c = init.xavier_uniform_(np.empty((6, 4)))
    striate.manual_seed(11)
    d = init.xavier_uniform_(np.empty((6, 4)))
    assert np.array_equal(c, d) and not np.array_equal(c, init.xavier_uniform_(np.empty((6, 4))))
    p = Parameter(np.empty((3, 2), np.float64))
    assert init.uniform_(p, -1, 1, rng=0) is p and np.abs(p.data).max() <= 1


def test_constant_zeros_ones():
    w = np.empty((2, 3), np.float32)
    assert np.all(init.constant_(w, 0.25) == np.float32(0.25))
    assert np.all(init.zeros_(w) == 0) and np.all(init.ones_(Parameter(w)).data == 1)


def test_keras_aliases():
    assert init.he_uniform_ is init.kaiming_uniform_ and init.glorot_normal_ is init.xavier_normal_


def test_empty_tensors_are_a_no_op_like_torch():
    for fn in (init.xavier_uniform_, init.xavier_normal_, init.kaiming_uniform_, init.kaiming_normal_):
        for shape in ((0, 5), (5, 0), (0, 0, 3, 3)):
            w = np.empty(shape)
            assert fn(w, rng=0) is w


def test_bad_arguments():
    with pytest.raises(ConfigError, match="mode.*'fan_avg'"):
        init.kaiming_uniform_(np.empty((3, 3)), mode="fan_avg")
    with pytest.raises(ConfigError, match="uniform_ expects a <= b; received a=1, b=0"):
        init.uniform_(np.empty(3), 1, 0)
    with pytest.raises(ConfigError, match="std >= 0; received std=-1"):
        init.normal_(np.empty(3), 0.0, -1)


def test_skip_init_leaves_weights_alone_and_restores():
    from striate import nn

    with striate.init.skip_init():
        layer = nn.Linear(3, 2, rng=0)
        t = np.full(4, 7.0)
        striate.init.normal_(t, rng=0)
        striate.init.zeros_(t)
        assert np.all(t == 7.0)
    assert layer.weight.shape == (2, 3)
    fresh = nn.Linear(3, 2, rng=0)                         # outside: initialised again
    assert np.abs(fresh.weight.data).max() <= 1 / np.sqrt(3)
    assert np.any(fresh.weight.data != 0)
