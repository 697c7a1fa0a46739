"""ResNets: torchvision's ImageNet ResNet-18/34/50 and He et al.'s CIFAR ResNet-20/32/56."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np

from .._random import get_rng
from ..nn.activation import ReLU
from ..nn.blocks import BasicBlock, Bottleneck, conv1x1, conv3x3
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.linear import Flatten, Linear
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d, MaxPool2d
from ._common import check_int, kaiming_conv_init_
from .registry import register

__all__ = ["resnet18", "resnet34", "resnet50", "resnet20", "resnet32", "resnet56"]


def _stage(block: type, inplanes: int, planes: int, blocks: int, stride: int,
           dtype: Any, rng: np.random.Generator) -> tuple[Sequential, int]:
    """torchvision's _make_layer: ``blocks`` blocks, the first with stride and projection.

    The first block gets downsample = Sequential(conv1x1(stride), BatchNorm2d) when the
    stride is not 1 or the channel count changes (option B of He et al.).

    Returns:
        The stage and its output channels (planes * block.expansion).
    """
    out = planes * block.expansion
    downsample = None
    if stride != 1 or inplanes != out:
        downsample = Sequential(conv1x1(inplanes, out, stride, dtype=dtype, rng=rng),
                                BatchNorm2d(out, dtype=dtype))
    layers = [block(inplanes, planes, stride, downsample, dtype=dtype, rng=rng)]
    layers += [block(out, planes, dtype=dtype, rng=rng) for _ in range(1, blocks)]
    return Sequential(*layers), out


def _imagenet_resnet(name: str, block: type, depths: tuple[int, ...], num_classes: int,
                     in_channels: int, dtype: Any, rng: Any) -> Sequential:
    """torchvision's ResNet: stem, layer1..layer4 (64/128/256/512 planes), avgpool, fc.

    conv1 Conv2d(in, 64, 7, stride 2, padding 3, bias=False), bn1, relu,
    maxpool MaxPool2d(3, 2, padding 1), layer1 (stride 1), layer2..4 (stride 2),
    avgpool AdaptiveAvgPool2d((1, 1)), flatten, fc Linear(512*expansion, num_classes).
    Init as torchvision: convs kaiming_normal_(fan_out, relu), BatchNorm 1/0, fc
    torch's default Linear init (zero_init_residual=False).
    """
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    dt = np.dtype(dtype or np.float32)
    g = get_rng(rng)
    parts: list[tuple[str, Any]] = [
        ("conv1", Conv2d(in_channels, 64, 7, stride=2, padding=3, bias=False, dtype=dt, rng=g)),
        ("bn1", BatchNorm2d(64, dtype=dt)),
        ("relu", ReLU()),
        ("maxpool", MaxPool2d(3, stride=2, padding=1)),
    ]
    channels = 64
    for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
        stage, channels = _stage(block, channels, planes, depth, 1 if i == 0 else 2, dt, g)
        parts.append((f"layer{i + 1}", stage))
    parts += [
        ("avgpool", AdaptiveAvgPool2d((1, 1))),
        ("flatten", Flatten()),                                       # (N, 512*expansion)
        ("fc", Linear(channels, num_classes, dtype=dt, rng=g)),
    ]
    model = Sequential(OrderedDict(parts))
    kaiming_conv_init_(model, g)
    return model


@register("resnet18")
def resnet18(num_classes: int = 1000, in_channels: int = 3, *, dtype: Any = None,
             rng: Any = None) -> Sequential:
    """ResNet-18: BasicBlocks [2, 2, 2, 2], torchvision's layout and keys.

    Args:
        num_classes: outputs of fc (logits).
        in_channels: input channels of conv1.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); the stem and the three strided
        stages divide H, W by 32 (ceil), the adaptive pool averages what is left.

    Returns:
        A Sequential (conv1, bn1, relu, maxpool, layer1..4, avgpool, flatten, fc);
        11,689,512 parameters at 1000 classes.
    """
    return _imagenet_resnet("resnet18", BasicBlock, (2, 2, 2, 2), num_classes, in_channels, dtype, rng)


@register("resnet34")
def resnet34(num_classes: int = 1000, in_channels: int = 3, *, dtype: Any = None,
             rng: Any = None) -> Sequential:
    """ResNet-34: BasicBlocks [3, 4, 6, 3], torchvision's layout and keys.

    Args:
        num_classes: outputs of fc (logits).
        in_channels: input channels of conv1.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes), as :func:`resnet18`.

    Returns:
        A Sequential as :func:`resnet18`; 21,797,672 parameters at 1000 classes.
    """
    return _imagenet_resnet("resnet34", BasicBlock, (3, 4, 6, 3), num_classes, in_channels, dtype, rng)


@register("resnet50")
def resnet50(num_classes: int = 1000, in_channels: int = 3, *, dtype: Any = None,
             rng: Any = None) -> Sequential:
    """ResNet-50 (v1.5: stride in the 3x3): Bottlenecks [3, 4, 6, 3], torchvision's layout.

    Args:
        num_classes: outputs of fc (logits).
        in_channels: input channels of conv1.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes), as :func:`resnet18`.

    Returns:
        A Sequential as :func:`resnet18` (fc takes 2048 features); 25,557,032
        parameters at 1000 classes.
    """
    return _imagenet_resnet("resnet50", Bottleneck, (3, 4, 6, 3), num_classes, in_channels, dtype, rng)


def _cifar_resnet(name: str, n: int, num_classes: int, in_channels: int, dtype: Any,
                  rng: Any) -> Sequential:
    """He et al. (2016) section 4.2 CIFAR ResNet with 6n+2 layers, option-B shortcuts.

    conv1 Conv2d(in, 16, 3, padding 1, bias=False), bn1, relu, layer1 (n BasicBlocks,
    16 channels), layer2 (n, 32, first stride 2), layer3 (n, 64, first stride 2),
    avgpool AdaptiveAvgPool2d((1, 1)), flatten, fc Linear(64, num_classes).  Where
    the shape changes (first block of layer2 and layer3) the shortcut is a
    projection, Sequential(conv1x1 stride 2, BatchNorm2d) (the paper's option B;
    its CIFAR experiments used option A, zero-padded identity shortcuts, which
    need no parameters).  Init as torchvision's ResNet.
    """
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    dt = np.dtype(dtype or np.float32)
    g = get_rng(rng)
    parts: list[tuple[str, Any]] = [
        ("conv1", conv3x3(in_channels, 16, dtype=dt, rng=g)),
        ("bn1", BatchNorm2d(16, dtype=dt)),
        ("relu", ReLU()),
    ]
    channels = 16
    for i, planes in enumerate((16, 32, 64)):
        stage, channels = _stage(BasicBlock, channels, planes, n, 1 if i == 0 else 2, dt, g)
        parts.append((f"layer{i + 1}", stage))
    parts += [
        ("avgpool", AdaptiveAvgPool2d((1, 1))),
        ("flatten", Flatten()),                                       # (N, 64)
        ("fc", Linear(channels, num_classes, dtype=dt, rng=g)),
    ]
    model = Sequential(OrderedDict(parts))
    kaiming_conv_init_(model, g)
    return model



_CIFAR_DOC = """ResNet-{depth} for CIFAR (He et al. 2016): 3 stages of {n} BasicBlocks, option-B shortcuts.

    Args:
        num_classes: outputs of fc (logits; 10 for CIFAR-10).
        in_channels: input channels of conv1.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes); 32x32 -> 32, 16, 8 in the three
        stages (H_out = ceil(H / 4)), then global average pooling.

    Returns:
        A Sequential (conv1, bn1, relu, layer1..3, avgpool, flatten, fc) (see
        ``_cifar_resnet``); {params:,} parameters at 10 classes.
    """


def _cifar_variant(n: int, params: int) -> Any:
    """Register resnet<6n+2>, documented with its parameter count."""
    name = f"resnet{6 * n + 2}"

    def builder(num_classes: int = 10, in_channels: int = 3, *, dtype: Any = None,
                rng: Any = None) -> Sequential:
        return _cifar_resnet(name, n, num_classes, in_channels, dtype, rng)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = _CIFAR_DOC.format(depth=6 * n + 2, n=n, params=params)
    return register(name)(builder)


resnet20 = _cifar_variant(3, 272_474)
resnet32 = _cifar_variant(5, 466_906)
resnet56 = _cifar_variant(9, 855_770)
