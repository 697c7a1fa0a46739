"""lenet5: layers, the 61,706 parameters, PyTorch oracle, finite differences, errors."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate import models
from striate.errors import ConfigError
from tests.models._util import compare_model, forward_backward
from tests.util import torch_or_skip


def test_layers_and_parameter_count():
    net = models.lenet5()
    assert list(dict(net.named_children())) == ["c1", "act1", "s2", "c3", "act3", "s4", "c5",
                                                "act5", "flatten", "f6", "act6", "output"]
    assert type(net.act1).__name__ == "Tanh" and type(net.s2).__name__ == "AvgPool2d"
    assert net.num_parameters() == 61_706
    assert type(models.lenet5(activation="relu").act3).__name__ == "ReLU"
    mnist = models.lenet5(padding=2, input_size=28)
    assert mnist.num_parameters() == 61_706
    assert mnist(np.zeros((1, 1, 28, 28), np.float32)).shape == (1, 10)
    wide = models.lenet5(input_size=36)                   # C5 sees 2x2 maps
    assert wide.f6.weight.data.shape == (84, 480)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("activation,padding,size", [("tanh", 0, 32), ("relu", 2, 28)])
def test_matches_torch(dtype, activation, padding, size):
    torch = torch_or_skip()
    from tests.models import _torch_ref

    net = models.lenet5(activation=activation, padding=padding, input_size=size, dtype=dtype, rng=0)
    act = torch.nn.Tanh if activation == "tanh" else torch.nn.ReLU
    ref = _torch_ref.lenet5(act=act, padding=padding)
    assert list(net.state_dict()) == list(ref.state_dict())
    compare_model(net, ref, np.random.default_rng(1).random((3, 1, size, size)), dtype)


def test_forward_backward_and_gradcheck():
    net = models.lenet5(4, 2, rng=0)
    x = np.random.default_rng(3).standard_normal((2, 2, 32, 32))
    forward_backward(net, x.astype(np.float32), 4)
    assert striate.gradcheck(net, x, max_per_tensor=6) < 1e-6


def test_errors():
    with pytest.raises(ConfigError, match=r"lenet5: activation must be one of \('tanh', 'relu'\); received 'sigmoid'"):
        models.lenet5(activation="sigmoid")
    with pytest.raises(ConfigError, match="lenet5: input_size 28 is too small"):
        models.lenet5(input_size=28, padding=0)           # 28x28 needs padding=2
    # padding=None (default) pads 28x28 up to the paper's 32x32
    assert models.lenet5(input_size=28).c1.padding == (2, 2)
    assert models.lenet5().c1.padding == (0, 0)
    with pytest.raises(ConfigError, match=r"lenet5: padding must be an int >= 0; received -1"):
        models.lenet5(padding=-1)
