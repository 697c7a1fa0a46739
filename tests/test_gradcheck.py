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
