"""AlexNet: torchvision's (61,100,840 parameters) and the 2012 paper's (60,965,224)."""

from __future__ import annotations

import numpy as np
import pytest

from striate import models
from striate.errors import ConfigError
from tests.models._util import compare_model, forward_backward, state_shapes
from tests.util import torch_or_skip


def test_alexnet_count_keys_and_small_forward():
    net = models.alexnet(rng=0)
    assert net.num_parameters() == 61_100_840
    assert list(dict(net.named_children())) == ["features", "avgpool", "flatten", "classifier"]
    x = np.random.default_rng(0).random((1, 3, 64, 64)).astype(np.float32)
    forward_backward(net, x, 1000)                        # 64x64 -> 1x1 -> (6, 6) adaptive
    torch_or_skip()
    from tests.models import _torch_ref

    assert state_shapes(net.state_dict()) == state_shapes(_torch_ref.alexnet(device="meta").state_dict())


def test_alexnet_2012_count_layers_and_small_forward():
    net = models.alexnet_2012(rng=0)
    assert net.num_parameters() == 60_965_224
    assert net.fc6.weight.data.shape == (4096, 9216)
    assert (net.conv2.groups, net.conv4.groups, net.conv5.groups, net.conv3.groups) == (2, 2, 2, 1)
    assert (net.norm1.size, net.norm1.alpha, net.norm1.beta, net.norm1.k) == (5, 1e-4, 0.75, 1.0)
    small = models.alexnet_2012(num_classes=10, input_size=67, rng=0)   # 67 -> 15 -> 7 -> 3 -> 1
    assert small.fc6.weight.data.shape == (4096, 256)
    forward_backward(small, np.random.default_rng(1).random((2, 3, 67, 67)).astype(np.float32), 10)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alexnet_features_match_torch(dtype):
    torch_or_skip()
    from tests.models import _torch_ref

    net = models.alexnet(num_classes=10, rng=2)
    ref = _torch_ref.alexnet(num_classes=10, device="meta")
    net.features.to(dtype)
    x = np.random.default_rng(3).random((2, 3, 67, 67))
    compare_model(net.features, ref.features.to_empty(device="cpu"), x, dtype)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_alexnet_2012_matches_torch(dtype):
    torch_or_skip()
    from tests.models import _torch_ref

    net = models.alexnet_2012(num_classes=10, input_size=67, dropout=0.0, dtype=dtype, rng=4)
    ref = _torch_ref.alexnet_2012(num_classes=10, side=1, p=0.0)
    assert list(net.state_dict()) == list(ref.state_dict())
    compare_model(net, ref, np.random.default_rng(5).random((2, 3, 67, 67)), dtype)


def test_errors():
    with pytest.raises(ConfigError, match="alexnet_2012: input_size 60 is too small"):
        models.alexnet_2012(input_size=60)
    with pytest.raises(ConfigError, match=r"alexnet: dropout must be a probability in \[0, 1\); received -0.1"):
        models.alexnet(dropout=-0.1)
