"""striate.gradcheck itself: it passes correct gradients and catches wrong ones."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate import nn
from striate.errors import ConfigError


class WrongGrad(nn.Module):
    """y = 2x, but backward claims dy * 3: gradcheck must notice."""

    def forward(self, x):
        return 2 * x

    def backward(self, dy):
        return 3 * dy


def test_catches_a_wrong_gradient():
    err = striate.gradcheck(WrongGrad(), np.ones((2, 3)))
    assert err == pytest.approx(1 / 3, rel=1e-6)


def test_details_per_tensor():
    rep = striate.gradcheck(nn.Linear(3, 2, rng=0), np.ones((2, 3)), details=True)
    assert set(rep) == {"input0", "weight", "bias"}
    assert max(rep.values()) < 1e-8


def test_original_module_untouched():
    layer = nn.Linear(3, 2, rng=0)
    before = layer.weight.data.copy()
    striate.gradcheck(layer, np.ones((2, 3)))
    assert layer.weight.data.dtype == np.float32
    np.testing.assert_array_equal(layer.weight.data, before)


def test_function_needs_backward():
    with pytest.raises(ConfigError, match="backward="):
        striate.gradcheck(lambda x: (x, None), np.ones(3))


def test_sampled_zero_gradients_are_judged_against_the_whole_tensors_scale():
    """Entries whose true gradient is 0 get rounding noise (~1e-10) from central
    differences; the scale is the whole analytic gradient's, so that noise is no error."""
    mask = np.zeros(50)
    mask[0] = 5.0

    def fn(x):                                             # d/dx = mask, plus rounding noise:
        return (((x + 10.0) - 10.0) - x) + mask * x, None  # (x + 10) - 10 is x to ~1e-15

    def backward(dy, cache):
        return dy * mask

    x = np.random.default_rng(0).standard_normal(50)
    rng = np.random.default_rng(0)                         # gradcheck's draws: projection, sample
    rng.standard_normal(50)
    assert 0 not in rng.choice(50, size=3, replace=False)  # the sample sees zero gradients only
    assert striate.gradcheck(fn, x, backward=backward, max_per_tensor=3) < 1e-8   # was 1.0
    wrong = lambda dy, cache: dy * mask * 1.01             # noqa: E731 - a 1% error is still seen
    assert striate.gradcheck(fn, x, backward=wrong, max_per_tensor=None) > 5e-3
