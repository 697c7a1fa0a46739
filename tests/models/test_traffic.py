"""traffic_sign_cnn: layers, parameter count, PyTorch oracle, finite differences, errors."""

from __future__ import annotations

import numpy as np
import pytest

import striate
from striate import models
from striate.errors import ConfigError
from tests.models._util import compare_model, forward_backward
from tests.util import torch_or_skip


def test_layers_and_parameter_count():
    net = models.traffic_sign_cnn()
    assert [type(m).__name__ for m in net] == ["Conv2d", "ReLU", "MaxPool2d", "Conv2d", "ReLU",
                                               "MaxPool2d", "Flatten", "Linear"]
    assert (net[0].out_channels, net[0].kernel_size, net[3].out_channels, net[3].kernel_size) == \
        (4, (5, 5), 10, (5, 5))
    assert net[7].weight.data.shape == (43, 250)
    assert net.num_parameters() == 12_107
    hidden = models.traffic_sign_cnn(10, 1, input_size=48, hidden=32)
    assert hidden[7].weight.data.shape == (32, 10 * 9 * 9) and hidden[9].weight.data.shape == (10, 32)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("hidden", [None, 16])
def test_matches_torch(dtype, hidden):
    torch_or_skip()
    from tests.models import _torch_ref

    net = models.traffic_sign_cnn(hidden=hidden, dtype=dtype, rng=0)
    ref = _torch_ref.traffic_sign_cnn(hidden=hidden)
    assert list(net.state_dict()) == list(ref.state_dict())
    compare_model(net, ref, np.random.default_rng(1).random((2, 3, 32, 32)), dtype)


def test_forward_backward_and_gradcheck():
    net = models.traffic_sign_cnn(5, 1, input_size=16, rng=0)
    x = np.random.default_rng(3).standard_normal((2, 1, 16, 16))
    forward_backward(net, x.astype(np.float32), 5)
    assert striate.gradcheck(net, x, max_per_tensor=8) < 1e-6


def test_errors():
    with pytest.raises(ConfigError, match="traffic_sign_cnn: input_size 12 is too small"):
        models.traffic_sign_cnn(input_size=12)
    with pytest.raises(ConfigError, match=r"traffic_sign_cnn: hidden must be an int >= 1; received 0"):
        models.traffic_sign_cnn(hidden=0)
