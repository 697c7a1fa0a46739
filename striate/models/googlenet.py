"""GoogLeNet (Inception v1, Szegedy et al. 2014) as torchvision's batch-normalised version."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from .._random import get_rng
from ..nn.blocks import BasicConv2d, InceptionModule
from ..nn.container import Sequential
from ..nn.dropout import Dropout
from ..nn.linear import Flatten, Linear
from ..nn.pooling import AdaptiveAvgPool2d, MaxPool2d
from ._common import check_choice, check_int, check_prob, trunc_normal_init_
from .registry import register

__all__ = ["googlenet"]

# name: (in_channels, ch1x1, ch3x3red, ch3x3, ch5x5red, ch5x5, pool_proj), table 1 of the paper.
_INCEPTIONS = {
    "3a": (192, 64, 96, 128, 16, 32, 32),
    "3b": (256, 128, 128, 192, 32, 96, 64),
    "4a": (480, 192, 96, 208, 16, 48, 64),
    "4b": (512, 160, 112, 224, 24, 64, 64),
    "4c": (512, 128, 128, 256, 24, 64, 64),
    "4d": (512, 112, 144, 288, 32, 64, 64),
    "4e": (528, 256, 160, 320, 32, 128, 128),
    "5a": (832, 256, 160, 320, 32, 128, 128),
    "5b": (832, 384, 192, 384, 48, 128, 128),
}


def _inception(key: str, branch3_kernel: int, dt: np.dtype, g: np.random.Generator) -> InceptionModule:
    """InceptionModule ``key`` of table 1, with branch3's second conv ``branch3_kernel`` wide
    (3 is torchvision's layout, 5 the paper's)."""
    return InceptionModule(*_INCEPTIONS[key], branch3_kernel=branch3_kernel, dtype=dt, rng=g)


@register("googlenet")
def googlenet(num_classes: int = 1000, in_channels: int = 3, *, branch3_kernel: int = 3,
              dropout: float = 0.2, dtype: Any = None, rng: Any = None) -> Sequential:
    """GoogLeNet without auxiliary heads, torchvision's layout and state-dict keys.

    conv1 BasicConv2d(in, 64, 7, stride 2, padding 3), maxpool1 MaxPool2d(3, 2, ceil),
    conv2 BasicConv2d(64, 64, 1), conv3 BasicConv2d(64, 192, 3, padding 1),
    maxpool2 MaxPool2d(3, 2, ceil), inception3a, inception3b, maxpool3 MaxPool2d(3, 2, ceil),
    inception4a..4e, maxpool4 MaxPool2d(2, 2, ceil), inception5a, inception5b,
    avgpool AdaptiveAvgPool2d((1, 1)), flatten, dropout, fc Linear(1024, num_classes).
    BasicConv2d is Conv2d(bias=False), BatchNorm2d(eps=0.001), ReLU.  Init as
    torchvision: Conv and Linear weights trunc_normal_(0, 0.01, a=-2, b=2), biases 0,
    BatchNorm 1/0.

    Args:
        num_classes: outputs of fc (logits).
        in_channels: input channels of conv1.
        branch3_kernel: kernel of the Inception modules' "5x5" branch.  3 (default)
            is torchvision's (its known deviation from the paper, kept for its
            pretrained weights) and gives torchvision's 6,624,904 parameters;
            5 is the paper's and gives 7,005,832.
        dropout: drop probability before fc.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights and the dropout mask.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); the stem and the pools divide
        H, W by 32 (ceil), the adaptive pool averages what is left (7x7 at 224).

    Returns:
        A Sequential with torchvision's child names; 6,624,904 parameters at 1000
        classes (branch3_kernel=3).
    """
    name = "googlenet"
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    branch3_kernel = check_choice(name, "branch3_kernel", branch3_kernel, (3, 5))
    p = check_prob(name, "dropout", dropout)
    dt = np.dtype(dtype or np.float32)
    g = get_rng(rng)

    def inception(key: str) -> InceptionModule:
        return _inception(key, branch3_kernel, dt, g)

    model = Sequential(OrderedDict([
        ("conv1", BasicConv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, dtype=dt, rng=g)),
        ("maxpool1", MaxPool2d(3, stride=2, ceil_mode=True)),
        ("conv2", BasicConv2d(64, 64, kernel_size=1, dtype=dt, rng=g)),
        ("conv3", BasicConv2d(64, 192, kernel_size=3, padding=1, dtype=dt, rng=g)),
        ("maxpool2", MaxPool2d(3, stride=2, ceil_mode=True)),
        ("inception3a", inception("3a")),
        ("inception3b", inception("3b")),
        ("maxpool3", MaxPool2d(3, stride=2, ceil_mode=True)),
        ("inception4a", inception("4a")),
        ("inception4b", inception("4b")),
        ("inception4c", inception("4c")),
        ("inception4d", inception("4d")),
        ("inception4e", inception("4e")),
        ("maxpool4", MaxPool2d(2, stride=2, ceil_mode=True)),
        ("inception5a", inception("5a")),
        ("inception5b", inception("5b")),
        ("avgpool", AdaptiveAvgPool2d((1, 1))),
        ("flatten", Flatten()),                                       # (N, 1024)
        ("dropout", Dropout(p, rng=g)),
        ("fc", Linear(1024, num_classes, dtype=dt, rng=g)),
    ]))
    trunc_normal_init_(model, 0.01, g)
    return model
