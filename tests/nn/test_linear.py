"""Linear, Flatten, Identity: PyTorch oracle, finite differences, errors."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError, ShapeError
from tests.util import compare_with_torch, torch_or_skip


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape,bias", [((1, 7), True), ((5, 7), False), ((2, 3, 7), True)])
def test_linear_matches_torch(dtype, shape, bias):
    torch = torch_or_skip()
    layer = nn.Linear(7, 4, bias=bias, rng=0).to(dtype)
    compare_with_torch(layer, torch.nn.Linear(7, 4, bias=bias), [np.random.default_rng(1).standard_normal(shape)], dtype)


@pytest.mark.parametrize("start,end,shape", [(1, -1, (2, 3, 4, 5)), (0, -1, (2, 3, 4)), (2, 3, (2, 3, 4, 5)), (1, 2, (2, 3, 4, 5))])
def test_flatten_matches_torch(start, end, shape):
    torch = torch_or_skip()
    x = np.random.default_rng(2).standard_normal(shape)
    compare_with_torch(nn.Flatten(start, end), torch.nn.Flatten(start, end), [x])


def test_linear_gradcheck():
    x = np.random.default_rng(3).standard_normal((4, 6))
    assert striate.gradcheck(nn.Linear(6, 3, rng=0), x) < 1e-6
    assert striate.gradcheck(nn.Linear(6, 3, bias=False, rng=0), x.reshape(2, 2, 6)) < 1e-6


def test_flatten_and_identity_gradcheck():
    x = np.random.default_rng(4).standard_normal((2, 3, 4))
    assert striate.gradcheck(nn.Sequential(nn.Flatten(), nn.Identity(), nn.Linear(12, 2, rng=0)), x) < 1e-6


def test_linear_default_init_bounds():
    layer = nn.Linear(100, 50, rng=0)
    bound = 1 / np.sqrt(100)
    assert np.abs(layer.weight.data).max() <= bound
    assert abs(layer.weight.data.std() - bound / np.sqrt(3)) < 0.05 * bound
    assert np.abs(layer.bias.data).max() <= bound


def test_linear_wrong_features():
    model = nn.Sequential(nn.Flatten(), nn.Linear(12, 3))
    with pytest.raises(ShapeError, match=r"^1 \(Linear\) expects input \(N, 12\); received \(2, 16\)"):
        model(np.zeros((2, 4, 2, 2), np.float32))


def test_linear_bad_arguments():
    with pytest.raises(ConfigError, match="out_features must be a positive int; received -2"):
        nn.Linear(3, -2)


def test_flatten_bad_axes():
    with pytest.raises(ConfigError, match=r"cannot flatten axes 3..-1 of an input of shape \(2, 3\)"):
        nn.Flatten(3)(np.zeros((2, 3)))
