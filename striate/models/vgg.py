"""VGG-11/13/16/19 (Simonyan and Zisserman, 2014), with and without BatchNorm, as torchvision."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .._random import get_rng
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.dropout import Dropout
from ..nn.linear import Flatten, Linear
from ..nn.module import Module
from ..nn.normalization import BatchNorm2d
from ..nn.pooling import AdaptiveAvgPool2d, MaxPool2d
from ._common import check_int, check_prob, kaiming_conv_init_, normal_linear_init_
from .registry import register

__all__ = ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn"]

# Output channels of the 3x3 convolutions; "M" is a 2x2 max pool (torchvision's cfgs A, B, D, E).
_CFGS: dict[int, list[Any]] = {
    11: [64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    13: [64, 64, "M", 128, 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M"],
    16: [64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"],
    19: [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
         512, 512, 512, 512, "M"],
}


def _vgg(depth: int, batch_norm: bool, num_classes: int, in_channels: int, dropout: float,
         dtype: Any, rng: Any) -> Sequential:
    """Build torchvision's VGG: features, avgpool (7x7), flatten, classifier.

    features: the 3x3 convolutions (padding 1) of ``_CFGS[depth]``, each followed by
    [BatchNorm2d and] ReLU, in five stages closed by MaxPool2d(2, 2);
    avgpool: AdaptiveAvgPool2d((7, 7)); flatten; classifier: Linear(25088, 4096),
    ReLU, Dropout, Linear(4096, 4096), ReLU, Dropout, Linear(4096, num_classes).
    State-dict keys equal torchvision's.  Init as torchvision: convs
    kaiming_normal_(fan_out, relu) with zero bias, BatchNorm weight 1 / bias 0,
    Linear N(0, 0.01^2) with zero bias.
    """
    name = f"vgg{depth}" + ("_bn" if batch_norm else "")
    num_classes = check_int(name, "num_classes", num_classes)
    channels = check_int(name, "in_channels", in_channels)
    p = check_prob(name, "dropout", dropout)
    g = get_rng(rng)
    layers: list[Module] = []
    for v in _CFGS[depth]:
        if v == "M":
            layers.append(MaxPool2d(2, stride=2))
            continue
        layers.append(Conv2d(channels, v, 3, padding=1, dtype=dtype, rng=g))
        if batch_norm:
            layers.append(BatchNorm2d(v, dtype=dtype))
        layers.append(ReLU())
        channels = v
    classifier = Sequential(
        Linear(512 * 7 * 7, 4096, dtype=dtype, rng=g), ReLU(), Dropout(p, rng=g),
        Linear(4096, 4096, dtype=dtype, rng=g), ReLU(), Dropout(p, rng=g),
        Linear(4096, num_classes, dtype=dtype, rng=g),
    )
    model = Sequential(OrderedDict([
        ("features", Sequential(*layers)),
        ("avgpool", AdaptiveAvgPool2d((7, 7))),
        ("flatten", Flatten()),                                       # (N, 512*7*7)
        ("classifier", classifier),
    ]))
    kaiming_conv_init_(model, g)
    normal_linear_init_(model, 0.01, g)
    return model



_DOC = """VGG-{depth}{with_bn} (torchvision layout; see ``_vgg``).

    Args:
        num_classes: outputs (logits).
        in_channels: input channels.
        dropout: drop probability of both Dropout layers.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights and the dropout masks.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes), H, W >= 32 (224 usual); five
        2x2 pools divide the size by 32 (floor), the adaptive pool makes it 7x7.

    Returns:
        A Sequential (features, avgpool, flatten, classifier); {params:,} parameters
        at 1000 classes.
    """


def _variant(depth: int, batch_norm: bool, params: int) -> Any:
    """Register the builder vgg<depth>[_bn], documented with its parameter count."""
    name = f"vgg{depth}" + ("_bn" if batch_norm else "")

    def builder(num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.5,
                dtype: Any = None, rng: Any = None) -> Sequential:
        return _vgg(depth, batch_norm, num_classes, in_channels, dropout, dtype, rng)

    builder.__name__ = builder.__qualname__ = name
    builder.__doc__ = _DOC.format(depth=depth, with_bn=" with BatchNorm" if batch_norm else "",
                                  params=params)
    return register(name)(builder)


vgg11 = _variant(11, False, 132_863_336)
vgg11_bn = _variant(11, True, 132_868_840)
vgg13 = _variant(13, False, 133_047_848)
vgg13_bn = _variant(13, True, 133_053_736)
vgg16 = _variant(16, False, 138_357_544)
vgg16_bn = _variant(16, True, 138_365_992)
vgg19 = _variant(19, False, 143_667_240)
vgg19_bn = _variant(19, True, 143_678_248)
