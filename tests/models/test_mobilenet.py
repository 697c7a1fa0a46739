"""MobileNet v1 in Keras's layout: 4,231,976 parameters, width multiplier, depth multiplier."""

from __future__ import annotations

import math

import numpy as np
import pytest

from striate import models
from striate.errors import ConfigError
from tests.models._util import compare_model, forward_backward
from tests.util import torch_or_skip

FILTERS = [64, 128, 128, 256, 256, 512, 512, 512, 512, 512, 512, 1024, 1024]


def keras_count(alpha: float, classes: int, dm: int = 1) -> int:
    """Keras's trainable count: conv kernels, BN gamma/beta, conv_preds kernel+bias."""
    c = int(32 * alpha)
    total = 3 * c * 9 + 2 * c
    for f in FILTERS:
        f = int(f * alpha)
        total += 9 * c * dm + 2 * c * dm + c * dm * f + 2 * f
        c = f
    return total + c * classes + classes


def test_count_layers_and_init():
    net = models.mobilenet_v1(rng=0)
    assert net.num_parameters() == 4_231_976 == keras_count(1.0, 1000)
    names = list(dict(net.named_children()))
    assert names[:6] == ["conv1", "conv1_bn", "conv1_relu", "conv_dw_1", "conv_dw_1_bn", "conv_dw_1_relu"]
    assert names[-7:] == ["conv_pw_13", "conv_pw_13_bn", "conv_pw_13_relu", "global_pool", "dropout",
                          "conv_preds", "reshape"]
    strided = [n for n, m in net.named_children() if n.startswith("conv_dw_") and
               type(m).__name__ == "Conv2d" and m.stride == (2, 2)]
    assert strided == ["conv_dw_2", "conv_dw_4", "conv_dw_6", "conv_dw_12"]
    assert net.conv_dw_5.groups == 256 and net.conv_dw_5.bias is None
    assert net.conv_preds.bias is not None and not net.conv_preds.bias.data.any()
    assert (net.conv1_bn.eps, net.conv1_bn.momentum, net.dropout.p) == (1e-3, 0.01, 1e-3)
    w = net.conv_pw_7.weight.data                         # glorot_uniform, bound sqrt(6/(in+out))
    bound = math.sqrt(6 / (512 + 512))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound


@pytest.mark.parametrize("alpha,dm", [(0.75, 1), (0.5, 1), (0.25, 2)])
def test_width_and_depth_multipliers(alpha, dm):
    net = models.mobilenet_v1(num_classes=10, alpha=alpha, depth_multiplier=dm)
    assert net.num_parameters() == keras_count(alpha, 10, dm)


def test_forward_backward_small_variants():
    net = models.mobilenet_v1(num_classes=10, in_channels=1, alpha=0.25, rng=0)
    forward_backward(net, np.random.default_rng(0).random((2, 1, 64, 64)).astype(np.float32), 10)


@pytest.mark.parametrize("dtype,alpha", [(np.float64, 0.25), (np.float32, 0.5)])
def test_matches_torch(dtype, alpha):
    torch_or_skip()
    from tests.models import _torch_ref

    net = models.mobilenet_v1(num_classes=10, alpha=alpha, dropout=0.0, dtype=dtype, rng=1)
    ref = _torch_ref.mobilenet_v1(10, alpha)
    ref.dropout.p = 0.0
    assert list(net.state_dict()) == list(ref.state_dict())
    if dtype == np.float32:
        net.eval()
    compare_model(net, ref, np.random.default_rng(2).standard_normal((2, 3, 64, 64)), dtype)


def test_errors():
    with pytest.raises(ConfigError, match="mobilenet_v1: alpha must be a number > 0; received 0"):
        models.mobilenet_v1(alpha=0)
    with pytest.raises(ConfigError, match=r"mobilenet_v1: alpha 0.01 leaves conv1 with no filters"):
        models.mobilenet_v1(alpha=0.01)
    with pytest.raises(ConfigError, match="mobilenet_v1: depth_multiplier must be an int >= 1; received 0"):
        models.mobilenet_v1(depth_multiplier=0)
