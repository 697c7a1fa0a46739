"""VGG-11/13/16/19 (+BN): torchvision's keys, shapes and exact parameter counts; small runs."""

from __future__ import annotations

import math

import numpy as np
import pytest

from striate import models
from striate.errors import ConfigError, ShapeError
from tests.models._util import compare_model, forward_backward, state_shapes
from tests.util import torch_or_skip

COUNTS = {"vgg11": 132_863_336, "vgg11_bn": 132_868_840, "vgg13": 133_047_848,
          "vgg13_bn": 133_053_736, "vgg16": 138_357_544, "vgg16_bn": 138_365_992,
          "vgg19": 143_667_240, "vgg19_bn": 143_678_248}


@pytest.fixture(scope="module")
def vgg16():
    """One real VGG-16 (torchvision init), shared: building 138M weights takes seconds."""
    return models.vgg16(num_classes=1000, rng=0)


@pytest.mark.parametrize("name", sorted(COUNTS))
def test_parameter_count_keys_and_shapes(name, fast_init):
    net = models.get_model(name)
    assert net.num_parameters() == COUNTS[name]
    assert list(dict(net.named_children())) == ["features", "avgpool", "flatten", "classifier"]
    torch_or_skip()
    from tests.models import _torch_ref

    depth, bn = int(name[3:5]), name.endswith("_bn")
    ref = _torch_ref.vgg(depth, bn, device="meta")        # no memory, no init
    assert state_shapes(net.state_dict()) == state_shapes(ref.state_dict())


def test_vgg16_count_init_and_small_forward(vgg16):
    assert vgg16.num_parameters() == 138_357_544
    conv = vgg16.features[0]                              # kaiming_normal_(fan_out, relu)
    assert abs(conv.weight.data.std() / math.sqrt(2 / (64 * 9)) - 1) < 0.1
    assert not conv.bias.data.any()
    fc = vgg16.classifier[0]                              # N(0, 0.01^2)
    assert abs(fc.weight.data[:256].std() / 0.01 - 1) < 0.01 and not fc.bias.data.any()
    x = np.random.default_rng(0).random((1, 3, 32, 32)).astype(np.float32)
    forward_backward(vgg16, x, 1000)                      # 32x32 -> 1x1 -> (7, 7) adaptive
    with pytest.raises(ShapeError, match=r"features\.\d+ \(MaxPool2d\)"):
        vgg16(np.zeros((1, 3, 16, 16), np.float32))       # the fifth pool gets a 1x1 map


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_vgg11_bn_features_match_torch(dtype, fast_init):
    torch_or_skip()
    from tests.models import _torch_ref

    net = models.vgg11_bn()
    rng = np.random.default_rng(1)
    for p in net.features.parameters():                   # fast_init left them unset
        p.data[...] = rng.normal(0, 0.1, p.data.shape)
    net.features.to(dtype)
    ref = _torch_ref.vgg(11, True, device="meta").features.to_empty(device="cpu")
    convs_before_bn = tuple(f"{i}.bias" for i, m in enumerate(net.features)
                            if type(m).__name__ == "Conv2d")
    assert len(convs_before_bn) == 8
    compare_model(net.features, ref, rng.random((2, 3, 32, 32)), dtype, zero_grads=convs_before_bn)


def test_options_and_errors(fast_init):
    net = models.vgg13_bn(num_classes=7, in_channels=1, dropout=0.2)
    assert net.features[0].weight.data.shape == (64, 1, 3, 3)
    assert net.classifier[6].weight.data.shape == (7, 4096)
    assert net.classifier[2].p == 0.2 and net.classifier[5].p == 0.2
    with pytest.raises(ConfigError, match=r"vgg19: dropout must be a probability in \[0, 1\); received 1.0"):
        models.vgg19(dropout=1.0)
