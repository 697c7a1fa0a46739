"""AlexNet: torchvision's layout (``alexnet``) and the 2012 paper's (``alexnet_2012``)."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

from .._random import get_rng
from ..nn.activation import ReLU
from ..nn.container import Sequential
from ..nn.conv import Conv2d
from ..nn.dropout import Dropout
from ..nn.linear import Flatten, Linear
from ..nn.normalization import LocalResponseNorm
from ..nn.pooling import AdaptiveAvgPool2d, MaxPool2d
from ._common import check_int, check_prob, check_spatial, conv_out
from .registry import register

__all__ = ["alexnet", "alexnet_2012"]


@register("alexnet")
def alexnet(num_classes: int = 1000, in_channels: int = 3, *, dropout: float = 0.5,
            dtype: Any = None, rng: Any = None) -> Sequential:
    """AlexNet as torchvision builds it (the "one weird trick" single-tower variant).

    features: Conv2d(in, 64, 11, stride 4, padding 2), ReLU, MaxPool2d(3, 2),
    Conv2d(64, 192, 5, padding 2), ReLU, MaxPool2d(3, 2), Conv2d(192, 384, 3, padding 1),
    ReLU, Conv2d(384, 256, 3, padding 1), ReLU, Conv2d(256, 256, 3, padding 1), ReLU,
    MaxPool2d(3, 2); avgpool: AdaptiveAvgPool2d((6, 6)); flatten;
    classifier: Dropout, Linear(9216, 4096), ReLU, Dropout, Linear(4096, 4096), ReLU,
    Linear(4096, num_classes).  State-dict keys equal torchvision's
    (``features.0.weight`` ... ``classifier.6.bias``); weights get torch's default init,
    as torchvision's do.

    Args:
        num_classes: outputs (logits).
        in_channels: input channels.
        dropout: drop probability of both Dropout layers.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights and the dropout masks.

    Shape:
        (N, in_channels, H, W) -> (N, num_classes), H, W >= 63 (224 is the usual size);
        the adaptive pool makes the classifier independent of the input size.

    Returns:
        A Sequential with children features, avgpool, flatten, classifier;
        61,100,840 parameters at 1000 classes.
    """
    name = "alexnet"
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    p = check_prob(name, "dropout", dropout)
    g = get_rng(rng)
    features = Sequential(
        Conv2d(in_channels, 64, 11, stride=4, padding=2, dtype=dtype, rng=g), ReLU(),
        MaxPool2d(3, stride=2),
        Conv2d(64, 192, 5, padding=2, dtype=dtype, rng=g), ReLU(),
        MaxPool2d(3, stride=2),
        Conv2d(192, 384, 3, padding=1, dtype=dtype, rng=g), ReLU(),
        Conv2d(384, 256, 3, padding=1, dtype=dtype, rng=g), ReLU(),
        Conv2d(256, 256, 3, padding=1, dtype=dtype, rng=g), ReLU(),
        MaxPool2d(3, stride=2),
    )
    classifier = Sequential(
        Dropout(p, rng=g),
        Linear(256 * 6 * 6, 4096, dtype=dtype, rng=g), ReLU(),
        Dropout(p, rng=g),
        Linear(4096, 4096, dtype=dtype, rng=g), ReLU(),
        Linear(4096, num_classes, dtype=dtype, rng=g),
    )
    return Sequential(OrderedDict([
        ("features", features),
        ("avgpool", AdaptiveAvgPool2d((6, 6))),
        ("flatten", Flatten()),                                       # (N, 256*6*6)
        ("classifier", classifier),
    ]))


@register("alexnet_2012")
def alexnet_2012(num_classes: int = 1000, in_channels: int = 3, *, input_size: int = 227,
                 dropout: float = 0.5, dtype: Any = None, rng: Any = None) -> Sequential:
    """AlexNet as in the 2012 paper, in Caffe's bvlc_alexnet layout (two-tower groups).

    Named layers (Caffe's names): conv1 Conv2d(in, 96, 11, stride 4), relu1,
    norm1 LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1), pool1 MaxPool2d(3, 2),
    conv2 Conv2d(96, 256, 5, padding 2, groups 2), relu2, norm2, pool2,
    conv3 Conv2d(256, 384, 3, padding 1), relu3, conv4 Conv2d(384, 384, 3, padding 1,
    groups 2), relu4, conv5 Conv2d(384, 256, 3, padding 1, groups 2), relu5,
    pool5 MaxPool2d(3, 2), flatten, fc6 Linear(256*S*S, 4096), relu6, drop6,
    fc7 Linear(4096, 4096), relu7, drop7, fc8 Linear(4096, num_classes).
    Caffe's LRN divides alpha by local_size exactly as torch's LocalResponseNorm
    does, so the same (5, 1e-4, 0.75, 1) apply.  The ``groups=2`` convolutions
    are the paper's two GPU towers.  Weights get torch's default init (not
    Caffe's Gaussian fillers).

    Args:
        num_classes: outputs (logits).
        in_channels: input channels.
        input_size: the input's height = width (227, as Caffe); it sets fc6's size,
            S = 6 for 227: 227 -> 55 (conv1) -> 27 (pool1) -> 13 (pool2) -> 6 (pool5).
        dropout: drop probability of drop6 and drop7.
        dtype: parameter dtype (float32 by default).
        rng: generator (or seed) for the initial weights and the dropout masks.

    Shape:
        (N, in_channels, input_size, input_size) -> (N, num_classes).

    Returns:
        The Sequential model; exactly 60,965,224 parameters at 1000 classes.
    """
    name = "alexnet_2012"
    num_classes = check_int(name, "num_classes", num_classes)
    in_channels = check_int(name, "in_channels", in_channels)
    input_size = check_int(name, "input_size", input_size)
    p = check_prob(name, "dropout", dropout)
    side = conv_out(conv_out(input_size, 11, 4), 3, 2)
    side = conv_out(conv_out(side, 5, 1, 2), 3, 2)
    side = conv_out(side, 3, 2)
    check_spatial(name, input_size, side, "fc6")
    g = get_rng(rng)

    def lrn() -> LocalResponseNorm:
        return LocalResponseNorm(5, alpha=1e-4, beta=0.75, k=1.0)

    return Sequential(OrderedDict([
        ("conv1", Conv2d(in_channels, 96, 11, stride=4, dtype=dtype, rng=g)),
        ("relu1", ReLU()), ("norm1", lrn()), ("pool1", MaxPool2d(3, stride=2)),
        ("conv2", Conv2d(96, 256, 5, padding=2, groups=2, dtype=dtype, rng=g)),
        ("relu2", ReLU()), ("norm2", lrn()), ("pool2", MaxPool2d(3, stride=2)),
        ("conv3", Conv2d(256, 384, 3, padding=1, dtype=dtype, rng=g)), ("relu3", ReLU()),
        ("conv4", Conv2d(384, 384, 3, padding=1, groups=2, dtype=dtype, rng=g)), ("relu4", ReLU()),
        ("conv5", Conv2d(384, 256, 3, padding=1, groups=2, dtype=dtype, rng=g)), ("relu5", ReLU()),
        ("pool5", MaxPool2d(3, stride=2)),
        ("flatten", Flatten()),                                       # (N, 256*S*S)
        ("fc6", Linear(256 * side * side, 4096, dtype=dtype, rng=g)),
        ("relu6", ReLU()), ("drop6", Dropout(p, rng=g)),
        ("fc7", Linear(4096, 4096, dtype=dtype, rng=g)),
        ("relu7", ReLU()), ("drop7", Dropout(p, rng=g)),
        ("fc8", Linear(4096, num_classes, dtype=dtype, rng=g)),
    ]))
