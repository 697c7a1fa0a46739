"""MobileNet v1 (Howard et al. 2017): depthwise-separable convolutions, Keras's layout."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from .._random import get_rng
from ..errors import ConfigError
from ..nn.activation import ReLU6
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.dropout import Dropout
from ..nn.linear import Flatten
from ..nn.module import Module
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d
from ._common import check_int, check_prob, glorot_conv_init_
from .registry import register

__all__ = ["mobilenet_v1"]

# (pointwise filters at alpha 1, stride of the depthwise conv) of blocks 1..13.
_BLOCKS = [(64, 1), (128, 2), (128, 1), (256, 2), (256, 1), (512, 2),
           (512, 1), (512, 1), (512, 1), (512, 1), (512, 1), (1024, 2), (1024, 1)]


def _bn(channels: int, dt: np.dtype) -> BatchNorm2d:
    """Keras's BatchNormalization defaults: epsilon 1e-3, momentum 0.99 (torch's 0.01)."""
    return BatchNorm2d(channels, eps=1e-3, momentum=0.01, dtype=dt)


def _check_alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float, np.floating)) or not alpha > 0:
        raise ConfigError(f"mobilenet_v1: alpha must be a number > 0; received {alpha!r}")
    if int(32 * alpha) < 1:
        raise ConfigError(f"mobilenet_v1: alpha {alpha!r} leaves conv1 with no filters (int(32*alpha) = 0)")
    return float(alpha)


@register("mobilenet_v1")
def mobilenet_v1(num_classes: int = 1000, in_channels: int = 3, *, alpha: float = 1.0,
                 depth_multiplier: int = 1, dropout: float = 1e-3, dtype: Any = None,
                 rng: Any = None) -> Sequential:
    """MobileNet v1 as keras.applications.MobileNet builds it (without the softmax).

    Named layers (Keras's names): conv1 Conv2d(in, int(32a), 3, stride 2, padding 1,
    bias=False), conv1_bn, conv1_relu ReLU6; then for blocks i = 1..13 with pointwise
    filters f = int(F_i * a) (F = 64, 128, 128, 256, 256, 512 x6, 1024, 1024; stride 2
    at blocks 2, 4, 6, 12): conv_dw_i Conv2d(c, c*dm, 3, stride, padding 1, groups c,
    bias=False), conv_dw_i_bn, conv_dw_i_relu ReLU6, conv_pw_i Conv2d(c*dm, f, 1,
    bias=False), conv_pw_i_bn, conv_pw_i_relu ReLU6; then global_pool
    AdaptiveAvgPool2d(1), dropout, conv_preds Conv2d(int(1024a), num_classes, 1) (with
    bias), reshape Flatten.  BatchNorm2d uses Keras's eps 1e-3 and momentum 0.99
    (torch momentum 0.01).  Weights get Keras's init: glorot_uniform kernels, zero
    bias.  Strided convs pad 1 on every side where Keras pads (0, 1) (bottom/right
    only): the sizes and parameter counts agree, the sampling grid is shifted.

    Args:
        num_classes: outputs of conv_preds (logits; Keras adds a softmax).
        in_channels: input channels of conv1.
        alpha: width multiplier (1.0, 0.75, 0.5, 0.25 in the paper).
        depth_multiplier: channel multiplier of the depthwise convolutions.
        dropout: drop probability before conv_preds (Keras's default 1e-3).
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights and the dropout mask.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); five stride-2 convs give
        ceil(H / 32) x ceil(W / 32) before the global pool (7x7 at 224).

    Returns:
        The Sequential model; 4,231,976 parameters at alpha 1.0 and 1000 classes
        (Keras's trainable count; the BatchNorm running statistics are buffers).
    """
    name = "mobilenet_v1"
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    alpha = _check_alpha(alpha)
    dm = check_int(name, "depth_multiplier", depth_multiplier)
    p = check_prob(name, "dropout", dropout)
    dt = np.dtype(dtype or np.float32)
    g = get_rng(rng)
    c = int(32 * alpha)
    layers: list[tuple[str, Module]] = [
        ("conv1", Conv2d(in_channels, c, 3, stride=2, padding=1, bias=False, dtype=dt, rng=g)),
        ("conv1_bn", _bn(c, dt)),
        ("conv1_relu", ReLU6()),
    ]
    for i, (filters, stride) in enumerate(_BLOCKS, start=1):
        f = max(int(filters * alpha), 1)
        layers += [
            (f"conv_dw_{i}", Conv2d(c, c * dm, 3, stride=stride, padding=1, groups=c, bias=False,
                                    dtype=dt, rng=g)),
            (f"conv_dw_{i}_bn", _bn(c * dm, dt)),
            (f"conv_dw_{i}_relu", ReLU6()),
            (f"conv_pw_{i}", Conv2d(c * dm, f, 1, bias=False, dtype=dt, rng=g)),
            (f"conv_pw_{i}_bn", _bn(f, dt)),
            (f"conv_pw_{i}_relu", ReLU6()),
        ]
        c = f
    layers += [
        ("global_pool", AdaptiveAvgPool2d(1)),                        # (N, C, 1, 1)
        ("dropout", Dropout(p, rng=g)),
        ("conv_preds", Conv2d(c, num_classes, 1, dtype=dt, rng=g)),  # (N, classes, 1, 1)
        ("reshape", Flatten()),                                       # (N, classes)
    ]
    model = Sequential(OrderedDict(layers))
    glorot_conv_init_(model, g)
    return model
